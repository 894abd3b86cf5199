//! Attention of one decoding step on the CPU, where every row has a single query.
//!
//! Through candle, one step's attention is a batched matmul of rows × heads tiny products
//! (1 × hd · hd × T), a softmax over as many short rows, a second batched matmul, and a
//! `cat` that copies the whole self-attention cache to append one position. Here each
//! (row, head) is one short loop over its keys and values, the self-attention cache is
//! preallocated and appended in place, and the work is split over rayon's pool.
//!
//! The arithmetic is the same as candle's path (dot products, scaling, additive mask or bias,
//! max-subtracted softmax, weighted sum of values); only the order of the float sums differs.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

/// Whether this kernel serves a tensor: f32 on the CPU (GPUs and half precision use candle).
pub fn applies_to(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Self-attention keys and values of a decoding batch, [rows, heads, capacity, hd] each, of
/// which the first `len` positions are filled.
#[derive(Debug)]
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    rows: usize,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

/// Positions reserved at first; the cache doubles when a generation runs longer.
const INITIAL_CAPACITY: usize = 64;

impl KvCache {
    pub fn new(rows: usize, heads: usize, head_dim: usize) -> Self {
        let capacity = INITIAL_CAPACITY;
        Self {
            keys: vec![0.0; rows * heads * capacity * head_dim],
            values: vec![0.0; rows * heads * capacity * head_dim],
            rows,
            heads,
            head_dim,
            capacity,
            len: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Appends one position: `keys`/`values` are [rows, heads · hd] (a step's projections).
    fn push(&mut self, keys: &[f32], values: &[f32]) {
        if self.len == self.capacity {
            self.grow(self.capacity * 2);
        }
        let hd = self.head_dim;
        for (slot, (k, v)) in keys
            .chunks_exact(hd)
            .zip(values.chunks_exact(hd))
            .enumerate()
        {
            // `slot` runs over (row, head) in order.
            let at = (slot * self.capacity + self.len) * hd;
            self.keys[at..at + hd].copy_from_slice(k);
            self.values[at..at + hd].copy_from_slice(v);
        }
        self.len += 1;
    }

    fn grow(&mut self, capacity: usize) {
        let hd = self.head_dim;
        let slots = self.rows * self.heads;
        let mut keys = vec![0.0; slots * capacity * hd];
        let mut values = vec![0.0; slots * capacity * hd];
        for slot in 0..slots {
            let (from, to) = (slot * self.capacity * hd, slot * capacity * hd);
            let used = self.len * hd;
            keys[to..to + used].copy_from_slice(&self.keys[from..from + used]);
            values[to..to + used].copy_from_slice(&self.values[from..from + used]);
        }
        self.keys = keys;
        self.values = values;
        self.capacity = capacity;
    }

    /// Keeps rows `rows` (old indices, in their new order; repeats allowed; at most as many
    /// as there are rows). Rows are moved in place: a row that keeps its own history is not
    /// copied, and only histories that are both moved and overwritten are stashed first.
    pub fn select_rows(&mut self, rows: &[u32]) {
        assert!(rows.len() <= self.rows, "select_rows cannot add rows");
        let slot_size = self.capacity * self.head_dim;
        let row_size = self.heads * slot_size;
        let used = self.len * self.head_dim;
        let overwritten = |r: usize| r < rows.len() && rows[r] as usize != r;
        let mut stash: Vec<(usize, Vec<f32>, Vec<f32>)> = Vec::new();
        for (r, &src) in rows.iter().enumerate() {
            let src = src as usize;
            if src != r && overwritten(src) && !stash.iter().any(|(s, _, _)| *s == src) {
                let range = src * row_size..(src + 1) * row_size;
                stash.push((
                    src,
                    self.keys[range.clone()].to_vec(),
                    self.values[range].to_vec(),
                ));
            }
        }
        for (r, &src) in rows.iter().enumerate() {
            let src = src as usize;
            if src == r {
                continue;
            }
            for h in 0..self.heads {
                let to = r * row_size + h * slot_size;
                match stash.iter().find(|(s, _, _)| *s == src) {
                    Some((_, keys, values)) => {
                        let from = h * slot_size;
                        self.keys[to..to + used].copy_from_slice(&keys[from..from + used]);
                        self.values[to..to + used].copy_from_slice(&values[from..from + used]);
                    }
                    None => {
                        let from = src * row_size + h * slot_size;
                        self.keys.copy_within(from..from + used, to);
                        self.values.copy_within(from..from + used, to);
                    }
                }
            }
        }
        self.rows = rows.len();
        self.keys.truncate(self.rows * row_size);
        self.values.truncate(self.rows * row_size);
    }

    /// Appends this step's `keys`/`values` [rows, heads · hd] and attends `queries`
    /// [rows, heads · hd] over all cached positions; `bias` [heads, len] (T5's relative
    /// positions) is added to the scaled scores. Returns the context [rows, heads · hd].
    pub fn step(
        &mut self,
        queries: &[f32],
        keys: &[f32],
        values: &[f32],
        scaling: f32,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        self.push(keys, values);
        let (hd, len, capacity) = (self.head_dim, self.len, self.capacity);
        let heads = self.heads;
        let (all_keys, all_values) = (&self.keys, &self.values);
        each_query(
            queries,
            hd,
            |i| i,
            |slot, q, scores, out| {
                let base = slot * capacity * hd;
                let h = slot % heads;
                attend_one(
                    q,
                    &all_keys[base..base + len * hd],
                    &all_values[base..base + len * hd],
                    scaling,
                    |t| bias.map_or(0.0, |b| b[h * len + t]),
                    scores,
                    out,
                );
            },
        )
    }
}

/// Cross-attention of `queries` [rows, heads · hd], `group` consecutive rows per input, over
/// the inputs' `keys`/`values` [inputs, heads, S, hd] (contiguous) with the additive `mask`
/// [inputs, S]. Returns the context [rows, heads · hd].
#[allow(clippy::too_many_arguments)]
pub fn cross_attend(
    queries: &[f32],
    keys: &[f32],
    values: &[f32],
    mask: &[f32],
    heads: usize,
    head_dim: usize,
    source_len: usize,
    group: usize,
    scaling: f32,
) -> Vec<f32> {
    let (hd, s) = (head_dim, source_len);
    // Keys after an input's last attended position (its padding) weigh exactly 0 (e^-inf):
    // leaving them out changes no bit of the result.
    let attended: Vec<usize> = mask
        .chunks_exact(s.max(1))
        .map(|m| {
            s - m
                .iter()
                .rev()
                .take_while(|&&v| v == f32::NEG_INFINITY)
                .count()
        })
        .collect();
    // The rows of one input (its beams) attend over the same keys and values: taking them
    // one after another per head reads each head's keys once from memory, not once per beam.
    let in_input_order = |i: usize| {
        let (input, rest) = (i / (heads * group), i % (heads * group));
        let (h, beam) = (rest / group, rest % group);
        (input * group + beam) * heads + h
    };
    each_query(queries, hd, in_input_order, |slot, q, scores, out| {
        let (row, h) = (slot / heads, slot % heads);
        let input = row / group;
        let len = attended[input].max(1).min(s);
        let base = (input * heads + h) * s * hd;
        let mask = &mask[input * s..(input + 1) * s];
        attend_one(
            q,
            &keys[base..base + len * hd],
            &values[base..base + len * hd],
            scaling,
            |t| mask[t],
            scores,
            out,
        );
    })
}

/// The context of every (row, head) query of `queries` [rows, heads · hd], computed in
/// parallel by `attend(slot, query, scratch, out)` with slot = row · heads + head, the slots
/// taken in the order `slot_of(0), slot_of(1), …` (a permutation of them).
fn each_query(
    queries: &[f32],
    head_dim: usize,
    slot_of: impl Fn(usize) -> usize + Sync,
    attend: impl Fn(usize, &[f32], &mut Vec<f32>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let slots = queries.len() / head_dim.max(1);
    let mut context = vec![0f32; queries.len()];
    let out = super::packed::SharedOut(context.as_mut_ptr());
    (0..slots)
        .into_par_iter()
        .with_min_len(4)
        .for_each_init(Vec::new, |scores, i| {
            let slot = slot_of(i);
            assert!(slot < slots, "slot_of must permute the slots");
            let q = &queries[slot * head_dim..(slot + 1) * head_dim];
            // SAFETY: `slot_of` is a permutation, so each slot's context is written by one
            // iteration only, inside `context`, which outlives the loop.
            let out =
                unsafe { std::slice::from_raw_parts_mut(out.ptr().add(slot * head_dim), head_dim) };
            attend(slot, q, scores, out)
        });
    context
}

/// `out = softmax(scaling · (q · k_t) + bias(t)) · V` for one query over `keys`/`values`
/// [T, hd]; `scores` is scratch space. Compiled for AVX-512 or AVX2 + FMA where the CPU has them.
fn attend_one(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    scaling: f32,
    bias: impl Fn(usize) -> f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::math::has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { attend_one_avx512(q, keys, values, scaling, bias, scores, out) };
        }
        if super::math::has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { attend_one_avx2(q, keys, values, scaling, bias, scores, out) };
        }
    }
    attend_one_portable(
        q,
        keys,
        values,
        scaling,
        bias,
        scores,
        out,
        super::math::dots,
    )
}

/// [`attend_one_portable`] compiled for an instruction set (`$features`, which include AVX2
/// and FMA for the dot products): on AVX-512 the weighted sum of values runs in 16-lane
/// registers, element by element, so every variant gives the same bits.
macro_rules! attend_one_compiled_for {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            q: &[f32],
            keys: &[f32],
            values: &[f32],
            scaling: f32,
            bias: impl Fn(usize) -> f32,
            scores: &mut Vec<f32>,
            out: &mut [f32],
        ) {
            let dots = |q: &[f32], keys: &[f32], out: &mut [f32]| {
                // SAFETY: this function runs only where the CPU has AVX2 and FMA.
                unsafe { super::math::avx2::dots(q, keys, out) }
            };
            attend_one_portable(q, keys, values, scaling, bias, scores, out, dots)
        }
    };
}
attend_one_compiled_for!(attend_one_avx2, "avx2,fma");
attend_one_compiled_for!(
    attend_one_avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_one_portable(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    scaling: f32,
    bias: impl Fn(usize) -> f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    dots: impl Fn(&[f32], &[f32], &mut [f32]),
) {
    let hd = q.len();
    scores.clear();
    scores.resize(keys.len() / hd.max(1), 0.0);
    dots(q, keys, scores);
    for (t, score) in scores.iter_mut().enumerate() {
        if scaling != 1.0 {
            *score *= scaling;
        }
        *score += bias(t);
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum = super::math::exp_shifted_in_place(scores, max);
    match out.len() {
        // The usual head width: the sums stay in registers across the keys.
        64 => weighted_sum::<64>(scores, sum, values, out),
        _ => {
            out.fill(0.0);
            for (p, v) in scores.iter().zip(values.chunks_exact(hd)) {
                let p = p / sum;
                for (o, v) in out.iter_mut().zip(v) {
                    *o += p * v;
                }
            }
        }
    }
}

/// `out = Σ_t (scores[t] / sum) · values[t]` for rows of `HD` values.
#[inline(always)]
fn weighted_sum<const HD: usize>(scores: &[f32], sum: f32, values: &[f32], out: &mut [f32]) {
    let mut acc = [0f32; HD];
    for (p, v) in scores.iter().zip(values.chunks_exact(HD)) {
        let p = p / sum;
        for (a, v) in acc.iter_mut().zip(v) {
            *a += p * v;
        }
    }
    out.copy_from_slice(&acc);
}

/// The values of a contiguous f32 CPU tensor, without copying.
pub fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(all)) = &*storage else {
        candle_core::bail!("step attention: expected an f32 CPU tensor");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(f(&all[start..end])),
        None => candle_core::bail!("step attention: expected a contiguous tensor"),
    }
}

/// A [rows, width] tensor from `values`.
pub fn tensor(values: Vec<f32>, rows: usize, device: &Device) -> candle_core::Result<Tensor> {
    let width = values.len() / rows.max(1);
    Tensor::from_vec(values, (rows, 1, width), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cpu::math::test_values as values;

    /// The same attention through candle's ops, as the model's generic path computes it.
    fn through_candle(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, scaling: f64) -> Vec<f32> {
        let scores = ((q.matmul(&k.t().unwrap()).unwrap() * scaling).unwrap())
            .broadcast_add(bias)
            .unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let (n, h, _, hd) = q.dims4().unwrap();
        probs
            .matmul(v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((n, h * hd))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn self_attention_over_a_growing_cache_matches_candle_beyond_a_regrowth() {
        let (rows, heads, hd) = (3, 2, 16);
        let steps = INITIAL_CAPACITY + 5;
        let dev = Device::Cpu;
        let mut cache = KvCache::new(rows, heads, hd);
        let mut all_k: Vec<Tensor> = Vec::new();
        let mut all_v: Vec<Tensor> = Vec::new();
        for step in 0..steps {
            let (q, k, v) = (
                values(rows * heads * hd, 3 * step as u32),
                values(rows * heads * hd, 3 * step as u32 + 1),
                values(rows * heads * hd, 3 * step as u32 + 2),
            );
            let bias = values(heads * (step + 1), 7 + step as u32);
            let got = cache.step(&q, &k, &v, 0.25, Some(&bias));
            let split = |x: &[f32]| {
                Tensor::from_slice(x, (rows, 1, heads, hd), &dev)
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            };
            all_k.push(split(&k));
            all_v.push(split(&v));
            let keys = Tensor::cat(&all_k, 2).unwrap();
            let vals = Tensor::cat(&all_v, 2).unwrap();
            let bias = Tensor::from_slice(&bias, (1, heads, 1, step + 1), &dev).unwrap();
            close(&got, &through_candle(&split(&q), &keys, &vals, &bias, 0.25));
        }
        assert_eq!(cache.len(), steps);
    }

    #[test]
    fn selecting_rows_reorders_and_repeats_their_histories() {
        let (rows, heads, hd) = (3, 2, 8);
        let mut cache = KvCache::new(rows, heads, hd);
        let mut reference = KvCache::new(3, heads, hd);
        for step in 0..4u32 {
            let k = values(rows * heads * hd, step);
            let v = values(rows * heads * hd, step + 100);
            cache.push(&k, &v);
            // Row r of the reference is row [2, 2, 0][r] of the cache.
            let pick = |x: &[f32]| -> Vec<f32> {
                [2usize, 2, 0]
                    .iter()
                    .flat_map(|&r| x[r * heads * hd..(r + 1) * heads * hd].to_vec())
                    .collect()
            };
            reference.push(&pick(&k), &pick(&v));
        }
        cache.select_rows(&[2, 2, 0]);
        let mut dropped = KvCache::new(rows, heads, hd);
        dropped.push(&values(rows * heads * hd, 1), &values(rows * heads * hd, 2));
        dropped.select_rows(&[1]);
        assert_eq!(dropped.rows, 1);
        let q = values(rows * heads * hd, 999);
        let (k, v) = (values(rows * heads * hd, 5), values(rows * heads * hd, 6));
        assert_eq!(
            cache.step(&q, &k, &v, 1.0, None),
            reference.step(&q, &k, &v, 1.0, None)
        );
    }

    #[test]
    fn cross_attention_shares_each_inputs_keys_between_its_rows_and_masks_padding() {
        let (inputs, group, heads, hd, s) = (2, 3, 2, 16, 5);
        let dev = Device::Cpu;
        let q = values(inputs * group * heads * hd, 1);
        let k = values(inputs * heads * s * hd, 2);
        let v = values(inputs * heads * s * hd, 3);
        let mut mask = vec![0f32; inputs * s];
        mask[s - 1] = f32::NEG_INFINITY; // the first input's last position is padding
        let got = cross_attend(&q, &k, &v, &mask, heads, hd, s, group, 0.5);
        for row in 0..inputs * group {
            let input = row / group;
            let one =
                |x: &[f32], len: usize| Tensor::from_slice(x, (1, heads, len, hd), &dev).unwrap();
            let qr = Tensor::from_slice(
                &q[row * heads * hd..(row + 1) * heads * hd],
                (1, 1, heads, hd),
                &dev,
            )
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
            let size = heads * s * hd;
            let kr = one(&k[input * size..(input + 1) * size], s);
            let vr = one(&v[input * size..(input + 1) * size], s);
            let m =
                Tensor::from_slice(&mask[input * s..(input + 1) * s], (1, 1, 1, s), &dev).unwrap();
            close(
                &got[row * heads * hd..(row + 1) * heads * hd],
                &through_candle(&qr, &kr, &vr, &m, 0.5),
            );
        }
    }
}
