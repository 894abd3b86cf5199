//! Matrix products over f32 slices on the CPU, through the `gemm` crate (the kernels candle's
//! CPU matmul runs on), called directly for what candle's API cannot say:
//!
//! - a bias as the product's starting value, instead of a broadcast add over the whole output
//!   afterwards (for a feed-forward layer's 2 800 × 2 048 output that add cost half as much as
//!   the product itself);
//! - strided operands read in place (one attention head's columns of a [T, D] buffer) and one
//!   small product per thread, where candle would copy the heads apart and split each tiny
//!   product over the pool.

use gemm::{gemm, Parallelism};

/// A read-only matrix: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major [rows, cols] matrix whose rows are `row_stride` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self::strided(data, rows, cols, row_stride, 1)
    }

    /// The transpose of a row-major [cols, rows] matrix whose rows are `stride` apart.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        Self::strided(data, rows, cols, 1, stride)
    }

    fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(
            rows == 0 || cols == 0 || last_index(rows, cols, row_stride, col_stride) < data.len(),
            "matrix view reaches past its data"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

fn last_index(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    (rows - 1) * row_stride + (cols - 1) * col_stride
}

/// Whether a product splits itself over rayon's pool or runs on the calling thread (when the
/// caller already runs many products in parallel).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    Pool,
    Caller,
}

/// `out = scale · a b` (or `out += scale · a b` with `accumulate`), where `out` is row-major
/// [a.rows, b.cols] with rows `out_stride` apart.
pub fn product(
    out: &mut [f32],
    out_stride: usize,
    a: View,
    b: View,
    scale: f32,
    accumulate: bool,
    threads: Threads,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        last_index(m, n, out_stride, 1) < out.len(),
        "product output reaches past its buffer"
    );
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 => {
            Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => Parallelism::None,
    };
    // SAFETY: the asserts above keep every element the strides address inside its slice, and
    // `out` is borrowed mutably while `a` and `b` are shared borrows of other data.
    unsafe {
        gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// `x` [m, k] times `w` [n, k] transposed, plus `bias` [n]: [m, n], all row-major, over the
/// whole pool. The bias is the product's starting value.
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
    let mut y = match bias {
        Some(bias) => {
            assert_eq!(bias.len(), n, "bias is not [n]");
            let mut y = Vec::with_capacity(m * n);
            for _ in 0..m {
                y.extend_from_slice(bias);
            }
            y
        }
        None => vec![0.0; m * n],
    };
    if k == 0 {
        return y;
    }
    product(
        &mut y,
        n,
        View::rows(x, m, k, k),
        View::transposed(w, k, n, k),
        1.0,
        bias.is_some(),
        Threads::Pool,
    );
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values;

    fn reference(a: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f64> {
        let mut y = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
            }
        }
        y
    }

    #[test]
    fn matmul_t_with_bias_matches_a_plain_sum() {
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (37, 64, 19), (130, 33, 70)] {
            let x = test_values(m * k, 1);
            let w = test_values(n * k, 2);
            let bias = test_values(n, 3);
            let want = reference(&x, m, k, &w, n);
            for with_bias in [false, true] {
                let got = matmul_t(&x, m, &w, n, k, with_bias.then_some(&bias[..]));
                for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                    let r = r + if with_bias { bias[i % n] as f64 } else { 0.0 };
                    assert!(
                        (*g as f64 - r).abs() < 1e-4,
                        "{m}x{k}x{n} [{i}]: {g} vs {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn strided_views_read_one_head_in_place() {
        // Two heads of width 3 interleaved in rows of 6: head 1's q · head 1's kᵀ, written into
        // columns 2.. of a wider output, scaled by 0.5.
        let (t, d, hd) = (4, 6, 3);
        let q = test_values(t * d, 4);
        let k = test_values(t * d, 5);
        let mut out = vec![7.0; t * 8];
        product(
            &mut out[2..],
            8,
            View::rows(&q[hd..], t, hd, d),
            View::transposed(&k[hd..], hd, t, d),
            0.5,
            false,
            Threads::Caller,
        );
        for i in 0..t {
            assert_eq!(
                &out[i * 8..i * 8 + 2],
                &[7.0, 7.0],
                "columns before the output"
            );
            for j in 0..t {
                let want: f32 = (0..hd).map(|p| q[i * d + hd + p] * k[j * d + hd + p]).sum();
                let got = out[i * 8 + 2 + j];
                assert!(
                    (got - 0.5 * want).abs() < 1e-5,
                    "({i}, {j}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "reaches past")]
    fn a_view_past_its_data_is_refused() {
        let data = [0.0; 10];
        View::rows(&data, 3, 4, 4);
    }
}
