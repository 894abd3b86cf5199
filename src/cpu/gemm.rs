//! Matrix products over f32 slices on the CPU, through the `gemm` crate (the kernels candle's
//! CPU matmul runs on), called directly for what candle's API cannot say: strided operands
//! read in place (one attention head's columns of a [T, D] buffer), and one small product per
//! thread, where candle would copy the heads apart and split each tiny product over the pool.

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

/// `out = scale · a b`, where `out` is row-major [a.rows, b.cols] with rows `out_stride` apart,
/// on the calling thread.
pub fn product(out: &mut [f32], out_stride: usize, a: View, b: View, scale: f32) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        last_index(m, n, out_stride, 1) < out.len(),
        "product output reaches past its buffer"
    );
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
            false,
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
            Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::math::test_values;

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
