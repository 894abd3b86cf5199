//! int8 projections for the CPU (`--dtype int8`).
//!
//! Weights are quantized once at load, symmetrically per output row (`w ≈ scale_j · q`,
//! q in [-127, 127]); activations are quantized the same way per input row at every call.
//! The products are exact integer sums, rescaled to f32 with the two scales:
//! `y[i][j] = scale_x[i] · scale_w[j] · Σ_k qx[i][k] · qw[j][k] + bias[j]`.
//!
//! The kernel multiplies 32 int8 pairs per instruction on AVX2 (`vpmaddubsw` takes an unsigned
//! and a signed operand, so it gets |x| and w·sign(x); with both magnitudes ≤ 127 the pairwise
//! sums cannot saturate). Other CPUs take a portable loop with the same integer results.

use rayon::prelude::*;

/// Rows are padded with zeros to a multiple of this (one AVX2 register of int8).
const LANES: usize = 32;
/// Weight rows per kernel call; each is kept in a register while the input rows pass.
const NR: usize = 2;
/// Input rows per kernel call.
const MR: usize = 4;
/// Bytes of quantized input rows (values and magnitudes) walked together over a run of weight
/// rows: half of a 32 KiB L1 data cache.
const ROW_BLOCK_BYTES: usize = 16 * 1024;

/// A weight matrix [n, k] (n outputs of k inputs) quantized per row.
#[derive(Debug)]
pub struct Int8Matrix {
    n: usize,
    k: usize,
    /// `k` rounded up to `LANES`.
    stride: usize,
    /// [n, stride], row-major, zero padding.
    values: Vec<i8>,
    /// [n]
    scales: Vec<f32>,
}

/// Rows of activations quantized for the kernel: the values and their magnitudes.
struct QuantizedRows {
    values: Vec<i8>,
    magnitudes: Vec<u8>,
    scales: Vec<f32>,
}

/// Quantizes `row` into `out` (symmetric, round half to even) and returns its scale; a row
/// holding NaN or infinity gets a NaN scale, so its outputs are NaN as in f32.
fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present.
            return unsafe { avx2::quantize_row(row, out) };
        }
    }
    quantize_row_portable(row, out)
}

/// Written so that the compiler vectorizes it: no branches, no calls in the loops.
#[inline(always)]
fn quantize_row_portable(row: &[f32], out: &mut [i8]) -> f32 {
    let mut max = [0f32; 8];
    // Stays 0 unless a value is NaN or infinite (0 · inf is NaN).
    let mut poison = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..8 {
            max[i] = max[i].max(chunk[i].abs());
            poison[i] += chunk[i] * 0.0;
        }
    }
    for (i, v) in tail.iter().enumerate() {
        max[i] = max[i].max(v.abs());
        poison[i] += v * 0.0;
    }
    let max = max.iter().fold(0f32, |m, &v| m.max(v));
    if poison.iter().sum::<f32>() != 0.0 || max == 0.0 {
        out.iter_mut().for_each(|q| *q = 0);
        return if max == 0.0 { 0.0 } else { f32::NAN };
    }
    let inverse = 127.0 / max;
    // Adding and removing 1.5 · 2^23 rounds to the nearest integer (ties to even) for |v| < 2^22.
    const ROUND: f32 = 12_582_912.0;
    for (q, v) in out.iter_mut().zip(row) {
        *q = (((v * inverse) + ROUND) - ROUND).clamp(-127.0, 127.0) as i8;
    }
    max / 127.0
}

impl Int8Matrix {
    /// Quantizes `weights` [n, k], row-major.
    pub fn quantize(weights: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weights.len(), n * k, "weights are not [n, k]");
        let stride = k.div_ceil(LANES) * LANES;
        let mut values = vec![0i8; n * stride];
        let mut scales = vec![0f32; n];
        values
            .par_chunks_mut(stride)
            .zip(scales.par_iter_mut())
            .zip(weights.par_chunks(k.max(1)))
            .for_each(|((q, scale), row)| *scale = quantize_row(row, &mut q[..k]));
        Self {
            n,
            k,
            stride,
            values,
            scales,
        }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    /// Rows `ids` dequantized (`scale_j · q_j`), [ids.len(), k] row-major: embedding lookups
    /// from the matrix a tied output layer multiplies with.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Option<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.k);
        for &id in ids {
            let j = id as usize;
            let scale = *self.scales.get(j)?;
            let row = &self.values[j * self.stride..j * self.stride + self.k];
            out.extend(row.iter().map(|&q| q as f32 * scale));
        }
        Some(out)
    }

    /// The bytes this matrix holds.
    pub fn size_in_bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }

    fn quantize_input(&self, x: &[f32], m: usize) -> QuantizedRows {
        let mut values = vec![0i8; m * self.stride];
        let mut scales = vec![0f32; m];
        values
            .par_chunks_mut(self.stride)
            .zip(scales.par_iter_mut())
            .zip(x.par_chunks(self.k.max(1)))
            .for_each(|((q, scale), row)| *scale = quantize_row(row, &mut q[..self.k]));
        let magnitudes = values.par_iter().map(|v| v.unsigned_abs()).collect();
        QuantizedRows {
            values,
            magnitudes,
            scales,
        }
    }

    /// `x W^T (+ bias)` for `x` [m, k] row-major; the result is [m, n] row-major.
    pub fn matmul_t(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [m, k]");
        let input = self.quantize_input(x, m);
        // Every element is written below; zero-filling 64 × 59 514 floats each step costs.
        let mut y: Vec<f32> = Vec::with_capacity(m * self.n);
        // Output columns are split between threads; each walks all input rows over its own
        // weight rows, so every weight byte is read once per call.
        let threads = rayon::current_num_threads().max(1);
        let column_block = (self.n.div_ceil(threads * 4)).div_ceil(NR).max(1) * NR;
        let out = SharedOut(y.as_mut_ptr());
        (0..self.n.div_ceil(column_block))
            .into_par_iter()
            .for_each(|block| {
                let columns = block * column_block..((block + 1) * column_block).min(self.n);
                // SAFETY: blocks write disjoint columns of `y`, which outlives the loop.
                unsafe { self.columns(&input, m, columns, bias, &out) };
            });
        // SAFETY: the blocks cover all columns of all rows.
        unsafe { y.set_len(m * self.n) };
        y
    }

    unsafe fn columns(
        &self,
        input: &QuantizedRows,
        m: usize,
        columns: std::ops::Range<usize>,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let s = self.stride;
        let row_block = (ROW_BLOCK_BYTES / (2 * s)).max(1).div_ceil(MR) * MR;
        for rows in (0..m).step_by(row_block) {
            let row_end = (rows + row_block).min(m);
            for j in columns.clone().step_by(NR) {
                // The last block may hold one column: pair it with itself.
                let js = [j, (j + 1).min(columns.end - 1)];
                let w = js.map(|j| self.values[j * s..(j + 1) * s].as_ptr());
                let mut i = rows;
                while i < row_end {
                    let take = (row_end - i).min(MR);
                    let columns_here = if js[1] == js[0] { 1 } else { NR };
                    let write = |r: usize, sums: &[i32; NR]| {
                        for (c, &j) in js.iter().enumerate().take(columns_here) {
                            let mut v = sums[c] as f32 * (input.scales[i + r] * self.scales[j]);
                            if let Some(bias) = bias {
                                v += bias[j];
                            }
                            *out.0.add((i + r) * self.n + j) = v;
                        }
                    };
                    if take == 1 {
                        // One row (greedy, one sentence): no repeated rows to multiply.
                        let x = [input.values[i * s..].as_ptr()];
                        let a = [input.magnitudes[i * s..].as_ptr()];
                        write(0, &dot_tile::<1>(x, a, w, s)[0]);
                    } else {
                        let x = std::array::from_fn(|r| {
                            input.values[(i + r.min(take - 1)) * s..].as_ptr()
                        });
                        let a = std::array::from_fn(|r| {
                            input.magnitudes[(i + r.min(take - 1)) * s..].as_ptr()
                        });
                        for (r, sums) in dot_tile::<MR>(x, a, w, s).iter().enumerate().take(take) {
                            write(r, sums);
                        }
                    }
                    i += take;
                }
            }
        }
    }
}

struct SharedOut(*mut f32);
// SAFETY: used only for disjoint writes from the blocks of one `matmul_t` call.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

/// `sums[r][c] = Σ_k x[r][k] · w[c][k]` over `len` (a multiple of `LANES`) int8 values;
/// `a[r]` holds |x[r]|.
fn dot_tile<const R: usize>(
    x: [*const i8; R],
    a: [*const u8; R],
    w: [*const i8; NR],
    len: usize,
) -> [[i32; NR]; R] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present; the pointers cover `len` bytes each.
            return unsafe { avx2::dot_tile(x, a, w, len) };
        }
    }
    dot_tile_portable(x, w, len)
}

fn dot_tile_portable<const R: usize>(
    x: [*const i8; R],
    w: [*const i8; NR],
    len: usize,
) -> [[i32; NR]; R] {
    let mut sums = [[0i32; NR]; R];
    for (r, x) in x.iter().enumerate() {
        for (c, w) in w.iter().enumerate() {
            // SAFETY: as above.
            let (x, w) = unsafe {
                (
                    std::slice::from_raw_parts(*x, len),
                    std::slice::from_raw_parts(*w, len),
                )
            };
            sums[r][c] = x.iter().zip(w).map(|(&x, &w)| x as i32 * w as i32).sum();
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::NR;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub unsafe fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
        super::quantize_row_portable(row, out)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_tile<const R: usize>(
        x: [*const i8; R],
        a: [*const u8; R],
        w: [*const i8; NR],
        len: usize,
    ) -> [[i32; NR]; R] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); NR]; R];
        let mut k = 0;
        while k < len {
            let wv: [__m256i; NR] =
                std::array::from_fn(|c| _mm256_loadu_si256(w[c].add(k) as *const __m256i));
            for r in 0..R {
                let xv = _mm256_loadu_si256(x[r].add(k) as *const __m256i);
                let av = _mm256_loadu_si256(a[r].add(k) as *const __m256i);
                for c in 0..NR {
                    // |x| · (w · sign x) = x · w, 32 pairs summed into 16 i16 then 8 i32.
                    let pairs = _mm256_maddubs_epi16(av, _mm256_sign_epi8(wv[c], xv));
                    acc[r][c] = _mm256_add_epi32(acc[r][c], _mm256_madd_epi16(pairs, ones));
                }
            }
            k += super::LANES;
        }
        acc.map(|row| row.map(|v| horizontal_sum(v)))
    }

    #[target_feature(enable = "avx2")]
    unsafe fn horizontal_sum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values, some exactly zero.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32)
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed.wrapping_mul(40503));
                if h.is_multiple_of(17) {
                    0.0
                } else {
                    ((h >> 8) % 2001) as f32 / 1000.0 - 1.0
                }
            })
            .collect()
    }

    /// The same arithmetic, one value at a time.
    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, bias: &[f32]) -> Vec<f32> {
        let mut qw = vec![0i8; k];
        let mut qx = vec![0i8; k];
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            let sx = quantize_row(&x[i * k..(i + 1) * k], &mut qx);
            for j in 0..n {
                let sw = quantize_row(&w[j * k..(j + 1) * k], &mut qw);
                let dot: i32 = qx.iter().zip(&qw).map(|(&a, &b)| a as i32 * b as i32).sum();
                y[i * n + j] = dot as f32 * (sx * sw) + bias[j];
            }
        }
        y
    }

    #[test]
    fn matches_the_scalar_arithmetic_exactly_for_odd_shapes() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 7, 33),
            (3, 5, 64),
            (5, 9, 100),
            (70, 3, 31),
            (9, 130, 512),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let q = Int8Matrix::quantize(&w, n, k);
            assert_eq!((q.rows(), q.cols()), (n, k));
            let got = q.matmul_t(&x, m, Some(&bias));
            assert_eq!(got, reference(&x, m, &w, n, k, &bias), "m={m} n={n} k={k}");
        }
    }

    #[test]
    fn stays_close_to_the_f32_product() {
        let (m, n, k) = (4, 64, 512);
        let x = values(m * k, 4);
        let w = values(n * k, 5);
        let got = Int8Matrix::quantize(&w, n, k).matmul_t(&x, m, None);
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum();
                // Each factor is off by at most half a step (1/254 of its row's maximum, 1 here).
                assert!(
                    (got[i * n + j] - exact).abs() < 0.1,
                    "{} vs {exact}",
                    got[i * n + j]
                );
            }
        }
    }

    #[test]
    fn the_vector_paths_agree_with_the_portable_ones() {
        let k = 96;
        let rows: Vec<Vec<f32>> = (0..MR as u32).map(|r| values(k, 10 + r)).collect();
        let mut q = vec![vec![0i8; k]; MR];
        for (row, out) in rows.iter().zip(q.iter_mut()) {
            let mut portable = vec![0i8; k];
            let scale = quantize_row_portable(row, &mut portable);
            assert_eq!(quantize_row(row, out), scale);
            assert_eq!(*out, portable);
        }
        let a: Vec<Vec<u8>> = q
            .iter()
            .map(|r| r.iter().map(|v| v.unsigned_abs()).collect())
            .collect();
        let x: [*const i8; MR] = std::array::from_fn(|r| q[r].as_ptr());
        let xa: [*const u8; MR] = std::array::from_fn(|r| a[r].as_ptr());
        let w: [*const i8; NR] = std::array::from_fn(|c| q[c].as_ptr());
        assert_eq!(
            dot_tile::<MR>(x, xa, w, k),
            dot_tile_portable::<MR>(x, w, k)
        );
        assert_eq!(
            dot_tile::<1>([x[0]], [xa[0]], w, k),
            dot_tile_portable::<1>([x[0]], w, k)
        );
    }

    #[test]
    fn rows_with_nan_or_infinity_give_nan_not_a_number_that_looks_right() {
        let mut out = vec![0i8; 3];
        assert!(quantize_row(&[1.0, f32::NAN, 2.0], &mut out).is_nan());
        assert!(quantize_row(&[1.0, f32::INFINITY, 2.0], &mut out).is_nan());
        assert_eq!(quantize_row(&[0.0, 0.0, 0.0], &mut out), 0.0);
        assert_eq!(quantize_row(&[0.5, -1.0, 0.25], &mut out), 1.0 / 127.0);
        // 0.5 · 127 = 63.5 is a tie: to even.
        assert_eq!(out, vec![64, -127, 32]);
    }

    #[test]
    fn dequantized_rows_are_within_half_a_step_and_unknown_ids_are_refused() {
        let (n, k) = (5, 40);
        let w = values(n * k, 9);
        let q = Int8Matrix::quantize(&w, n, k);
        let rows = q.dequantize_rows(&[4, 0]).unwrap();
        for (r, j) in [4usize, 0].iter().enumerate() {
            let row = &w[j * k..(j + 1) * k];
            let step = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (got, want) in rows[r * k..(r + 1) * k].iter().zip(row) {
                assert!((got - want).abs() <= step / 2.0 + 1e-6, "{got} vs {want}");
            }
        }
        assert!(q.dequantize_rows(&[5]).is_none());
    }

    #[test]
    fn extreme_values_do_not_saturate() {
        // All products at ±127·127: the pairwise i16 sums sit at their limit, never over it.
        let k = 64;
        let x: Vec<f32> = (0..k)
            .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let w: Vec<f32> = (0..k)
            .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let y = Int8Matrix::quantize(&w, 1, k).matmul_t(&x, 1, None);
        assert!((y[0] - k as f32).abs() < 1e-3, "{}", y[0]);
    }
}
