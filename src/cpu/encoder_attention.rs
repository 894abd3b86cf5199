//! The encoder over its real tokens only, on the CPU in f32.
//!
//! A padded batch [B, S, D] spends every layer's projections and feed-forward on its padding
//! too: a quarter of the positions for the benchmark's sentences in length-sorted batches of 16.
//! Here the real tokens are packed into [T, D] rows once, every position-wise step runs on
//! those rows, and self-attention runs per sentence and head over that sentence's own tokens,
//! so no mask is needed. Padding never influenced a real token (its keys are masked), so the
//! real rows come out as the padded computation gives them; the padding rows of the result are
//! zeros, which cross-attention masks just the same.
//!
//! Through candle, attention over a padded batch copied the heads apart, ran B × H tiny
//! products each split over the pool, and passed over the [B, H, S, S] scores three more times
//! (scale, mask, softmax): at 16 sentences of 175 tokens that took three times as long as the
//! projections around it. Here each (sentence, head) is one task on one thread: two products
//! that read the head's columns in place, with the softmax between them.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::gemm::{product, View};

/// Where each sentence's real tokens sit in the packed rows.
#[derive(Debug)]
pub struct Tokens {
    /// Per sentence: its first packed row and its number of tokens.
    spans: Vec<(usize, usize)>,
    /// Per packed row, its row in the padded [B · S] layout.
    padded_rows: Vec<u32>,
    /// Per padded row, its packed row, or the count of packed rows (a zero row) for padding.
    packed_rows: Vec<u32>,
    batch: usize,
    seq: usize,
}

impl Tokens {
    /// The real tokens of a 0/1 attention mask [B, S].
    pub fn from_mask(mask: &Tensor) -> candle_core::Result<Self> {
        let (batch, seq) = mask.dims2()?;
        let mask = mask.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut spans = Vec::with_capacity(batch);
        let mut padded_rows = Vec::new();
        for (b, row) in mask.iter().enumerate() {
            let first = padded_rows.len();
            padded_rows.extend(
                (0..seq)
                    .filter(|&s| row[s] > 0.0)
                    .map(|s| (b * seq + s) as u32),
            );
            spans.push((first, padded_rows.len() - first));
        }
        let mut packed_rows = vec![padded_rows.len() as u32; batch * seq];
        for (packed, &padded) in padded_rows.iter().enumerate() {
            packed_rows[padded as usize] = packed as u32;
        }
        Ok(Self {
            spans,
            padded_rows,
            packed_rows,
            batch,
            seq,
        })
    }

    /// [B, S, D] → the real tokens' rows [T, D].
    pub fn pack(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let d = h.dim(2)?;
        let rows = Tensor::new(self.padded_rows.as_slice(), h.device())?;
        h.reshape((self.batch * self.seq, d))?
            .index_select(&rows, 0)
    }

    /// [T, D] → [B, S, D], with zeros at the padding.
    pub fn unpack(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let d = h.dim(1)?;
        let with_zero_row = Tensor::cat(&[h, &Tensor::zeros((1, d), h.dtype(), h.device())?], 0)?;
        let rows = Tensor::new(self.packed_rows.as_slice(), h.device())?;
        with_zero_row
            .index_select(&rows, 0)?
            .reshape((self.batch, self.seq, d))
    }
}

/// Self-attention of packed queries, keys and values [T, heads · head_dim] within each
/// sentence of `tokens`: softmax(scaling · q kᵀ) v per head, as [T, heads · head_dim].
pub fn self_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    tokens: &Tokens,
    heads: usize,
    head_dim: usize,
    scaling: f32,
) -> Vec<f32> {
    let d = heads * head_dim;
    let t = tokens.padded_rows.len();
    assert!(
        q.len() == t * d && k.len() == t * d && v.len() == t * d,
        "q, k, v are not [T, D]"
    );
    let tasks: Vec<((usize, usize), usize)> = tokens
        .spans
        .iter()
        .filter(|(_, len)| *len > 0)
        .flat_map(|&span| (0..heads).map(move |h| (span, h)))
        .collect();
    let contexts: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&((first, len), h)| {
            let at = first * d + h * head_dim;
            attend_head(&q[at..], &k[at..], &v[at..], len, d, head_dim, scaling)
        })
        .collect();
    let mut out = vec![0f32; t * d];
    for (((first, _), h), context) in tasks.iter().zip(&contexts) {
        for (i, row) in context.chunks_exact(head_dim).enumerate() {
            let at = (first + i) * d + h * head_dim;
            out[at..at + head_dim].copy_from_slice(row);
        }
    }
    out
}

/// One head over one sentence of `len` tokens whose rows are `d` apart: [len, head_dim].
fn attend_head(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    len: usize,
    d: usize,
    head_dim: usize,
    scaling: f32,
) -> Vec<f32> {
    let mut scores = vec![0f32; len * len];
    product(
        &mut scores,
        len,
        View::rows(q, len, head_dim, d),
        View::transposed(k, head_dim, len, d),
        scaling,
    );
    softmax_rows(&mut scores, len);
    let mut context = vec![0f32; len * head_dim];
    product(
        &mut context,
        head_dim,
        View::rows(&scores, len, len, len),
        View::rows(v, len, head_dim, d),
        1.0,
    );
    context
}

/// Softmax of each `width`-long row, in place.
fn softmax_rows(scores: &mut [f32], width: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::math::has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { softmax_rows_avx2(scores, width) };
        }
    }
    softmax_rows_portable(scores, width)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_rows_avx2(scores: &mut [f32], width: usize) {
    softmax_rows_portable(scores, width)
}

#[inline(always)]
fn softmax_rows_portable(scores: &mut [f32], width: usize) {
    for row in scores.chunks_exact_mut(width) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum = super::math::exp_shifted_in_place(row, max);
        for s in row.iter_mut() {
            *s /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::math::test_values;
    use candle_core::Device;

    #[test]
    fn packing_keeps_real_tokens_and_unpacking_zeroes_padding() {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[[1f32, 1., 0.], [0., 1., 1.], [0., 0., 0.]], &dev).unwrap();
        let tokens = Tokens::from_mask(&mask).unwrap();
        assert_eq!(tokens.spans, vec![(0, 2), (2, 2), (4, 0)]);
        let h = Tensor::arange(0f32, 18., &dev)
            .unwrap()
            .reshape((3, 3, 2))
            .unwrap();
        let packed = tokens.pack(&h).unwrap();
        assert_eq!(
            packed.to_vec2::<f32>().unwrap(),
            vec![vec![0., 1.], vec![2., 3.], vec![8., 9.], vec![10., 11.]]
        );
        let back = tokens.unpack(&packed).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(
            back,
            vec![
                vec![vec![0., 1.], vec![2., 3.], vec![0., 0.]],
                vec![vec![0., 0.], vec![8., 9.], vec![10., 11.]],
                vec![vec![0., 0.], vec![0., 0.], vec![0., 0.]],
            ]
        );
    }

    /// candle's padded path: per head, softmax(scaling · q kᵀ + mask) v.
    #[test]
    fn attention_per_sentence_matches_masked_attention_over_the_padded_batch() {
        let dev = Device::Cpu;
        let (heads, hd, seq) = (3, 4, 7);
        let d = heads * hd;
        let lengths = [7usize, 4, 1];
        let b = lengths.len();
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..seq).map(move |s| if s < l { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (b, seq), &dev).unwrap();
        let tokens = Tokens::from_mask(&mask).unwrap();
        let [q, k, v] = [1, 2, 3].map(|seed| {
            Tensor::from_vec(test_values(b * seq * d, seed), (b, seq, d), &dev).unwrap()
        });
        let scaling = 0.5f32;

        let split = |x: &Tensor| {
            x.reshape((b, seq, heads, hd))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let additive = crate::models::layers::additive_mask(&mask).unwrap();
        let scores = (split(&q).matmul(&split(&k).t().unwrap()).unwrap() * scaling as f64)
            .unwrap()
            .broadcast_add(&additive)
            .unwrap();
        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let want = probs
            .matmul(&split(&v))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, seq, d))
            .unwrap();
        let want = tokens.pack(&want).unwrap().to_vec2::<f32>().unwrap();

        let [q, k, v] = [&q, &k, &v].map(|x| {
            tokens
                .pack(x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        });
        let got = self_attention(&q, &k, &v, &tokens, heads, hd, scaling);
        for (r, want) in want.iter().enumerate() {
            for (c, w) in want.iter().enumerate() {
                let g = got[r * d + c];
                assert!((g - w).abs() < 1e-5, "row {r} column {c}: {g} vs {w}");
            }
        }
    }
}
