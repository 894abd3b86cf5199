//! `x Wᵀ (+ b)` in f32 for the few rows of a decoding step, on the CPU.
//!
//! With one to a few dozen rows the product is bound by reading the weight, not by arithmetic.
//! candle's gemm runs a one-row product on a single thread (about 10 GFLOP/s here for the
//! output layer) and reaches about half its large-matrix speed at 16 rows. Here the weight's
//! rows are split between rayon's threads and each weight row is read once per call while all
//! input rows pass over it, four input rows and three weight rows per kernel call.

use rayon::prelude::*;

/// Up to this many input rows the kernel beats candle's gemm here (measured with
/// `examples`-style timing on the opus-mt shapes: 1–32 rows faster, 64 rows slower).
pub const MAX_ROWS: usize = 32;

const MR: usize = 4;
const NR: usize = 3;

/// `x` [m, k] times `w` [n, k] transposed, plus `bias` [n]: [m, n], all row-major.
pub fn matmul_t(
    x: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert_eq!(x.len(), m * k, "input is not [m, k]");
    assert_eq!(w.len(), n * k, "weight is not [n, k]");
    let mut y: Vec<f32> = Vec::with_capacity(m * n);
    let threads = rayon::current_num_threads().max(1);
    let block = (n.div_ceil(threads * 4)).div_ceil(NR).max(1) * NR;
    let out = SharedOut(y.as_mut_ptr());
    (0..n.div_ceil(block)).into_par_iter().for_each(|b| {
        let columns = b * block..((b + 1) * block).min(n);
        // SAFETY: blocks write disjoint columns of `y`, which outlives the loop.
        unsafe { columns_of(x, m, w, n, k, columns, bias, &out) };
    });
    // SAFETY: the blocks cover every column of every row.
    unsafe { y.set_len(m * n) };
    y
}

struct SharedOut(*mut f32);
// SAFETY: used only for disjoint writes from the blocks of one `matmul_t` call.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

#[allow(clippy::too_many_arguments)]
unsafe fn columns_of(
    x: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    columns: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    let mut j = columns.start;
    while j < columns.end {
        let take_c = (columns.end - j).min(NR);
        // A short last group repeats its last row (computed, not written).
        let wr: [&[f32]; NR] = std::array::from_fn(|c| {
            let j = j + c.min(take_c - 1);
            &w[j * k..(j + 1) * k]
        });
        let mut i = 0;
        while i < m {
            let take_r = (m - i).min(MR);
            let write = |r: usize, sums: &[f32; NR]| {
                for (c, &s) in sums.iter().enumerate().take(take_c) {
                    let v = s + bias.map_or(0.0, |b| b[j + c]);
                    *out.0.add((i + r) * n + j + c) = v;
                }
            };
            if take_r == 1 {
                // One row (greedy, one sentence): no repeated rows to multiply.
                write(0, &dot_tile::<1>([&x[i * k..(i + 1) * k]], wr)[0]);
            } else {
                let xr: [&[f32]; MR] = std::array::from_fn(|r| {
                    let i = i + r.min(take_r - 1);
                    &x[i * k..(i + 1) * k]
                });
                for (r, sums) in dot_tile::<MR>(xr, wr).iter().enumerate().take(take_r) {
                    write(r, sums);
                }
            }
            i += take_r;
        }
        j += take_c;
    }
}

/// `sums[r][c] = x[r] · w[c]`.
fn dot_tile<const R: usize>(x: [&[f32]; R], w: [&[f32]; NR]) -> [[f32; NR]; R] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features are present.
            return unsafe { avx2::dot_tile(x, w) };
        }
    }
    dot_tile_portable(x, w)
}

fn dot_tile_portable<const R: usize>(x: [&[f32]; R], w: [&[f32]; NR]) -> [[f32; NR]; R] {
    std::array::from_fn(|r| std::array::from_fn(|c| crate::math::dot(x[r], w[c])))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::NR;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_tile<const R: usize>(x: [&[f32]; R], w: [&[f32]; NR]) -> [[f32; NR]; R] {
        let k = x[0].len();
        let body = k - k % 8;
        let mut acc = [[_mm256_setzero_ps(); NR]; R];
        let mut t = 0;
        while t < body {
            let wv: [__m256; NR] = std::array::from_fn(|c| _mm256_loadu_ps(w[c].as_ptr().add(t)));
            for r in 0..R {
                let xv = _mm256_loadu_ps(x[r].as_ptr().add(t));
                for c in 0..NR {
                    acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
                }
            }
            t += 8;
        }
        let mut sums = [[0f32; NR]; R];
        for r in 0..R {
            for c in 0..NR {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r][c]);
                let tail: f32 = (body..k).map(|t| x[r][t] * w[c][t]).sum();
                sums[r][c] = lanes.iter().sum::<f32>() + tail;
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::math::test_values as values;

    #[test]
    fn matches_candle_for_odd_shapes_with_and_without_bias() {
        let dev = candle_core::Device::Cpu;
        for (m, n, k) in [
            (1, 1, 1),
            (1, 7, 13),
            (3, 5, 64),
            (5, 10, 100),
            (32, 130, 512),
        ] {
            let (x, w, b) = (values(m * k, 1), values(n * k, 2), values(n, 3));
            let xt = candle_core::Tensor::from_slice(&x, (m, k), &dev).unwrap();
            let wt = candle_core::Tensor::from_slice(&w, (n, k), &dev).unwrap();
            let bt = candle_core::Tensor::from_slice(&b, n, &dev).unwrap();
            let want = xt.matmul(&wt.t().unwrap()).unwrap();
            let with_bias = want.broadcast_add(&bt).unwrap();
            for (bias, want) in [(None, want), (Some(b.as_slice()), with_bias)] {
                let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let got = matmul_t(&x, m, &w, n, k, bias);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "m={m} n={n} k={k}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_vector_path_agrees_with_the_portable_one() {
        let rows: Vec<Vec<f32>> = (0..7).map(|s| values(67, s)).collect();
        let x: [&[f32]; MR] = std::array::from_fn(|r| rows[r].as_slice());
        let w: [&[f32]; NR] = std::array::from_fn(|c| rows[MR + c].as_slice());
        let (a, b) = (dot_tile::<MR>(x, w), dot_tile_portable::<MR>(x, w));
        for (a, b) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
