//! bf16 projections for the CPU (`--dtype bf16` where the CPU multiplies bf16: AMX-BF16 or
//! AVX512-BF16).
//!
//! Weights are converted once at load (round to nearest, ties to even, as torch's
//! `.to(torch.bfloat16)`), activations at every call; the products of two bf16 values are
//! exact in f32 and are summed in f32. It is not exact against f32: `examples/int8_drift.rs
//! --dtype bf16` reports how far it drifts.
//!
//! The weights are packed in panels of 16 outputs by pairs of inputs, [n / 16][k / 2][16][2]:
//! `vdpbf16ps` takes a panel's pair row (16 outputs × 2 inputs, 64 bytes) and a broadcast
//! pair of activations; for AMX's `tdpbf16ps` 16 such rows are one B tile, so k is padded to
//! 32 (zeros add nothing).

use rayon::prelude::*;

use super::packed::{assert_shapes, product, store_sums, SharedOut, Task, MR, NR};
use super::Bf16Kernel;

/// Inputs per AMX tile row (64 bytes of bf16).
const BLOCK: usize = 32;
/// Input rows per AVX512-BF16 tile (of two panels).
const MR_512: usize = 12;
/// Input rows per AMX step (two 16-row tiles); the activation rows are padded to it.
const MR_AMX: usize = 32;

/// `x` rounded to bf16 (nearest, ties to even; NaN stays NaN).
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// A weight matrix [n, k] in bf16, in panels.
#[derive(Debug)]
pub struct Bf16Matrix {
    n: usize,
    k: usize,
    kernel: Bf16Kernel,
    /// [n / 16][padded k / 2][16][2], zero padding for the missing outputs and inputs.
    panels: Vec<u16>,
}

impl Bf16Matrix {
    /// Converts `weights` [n, k] for the process's kernel; `None` where the CPU has none.
    pub fn convert(weights: &[f32], n: usize, k: usize) -> Option<Self> {
        Some(Self::convert_for(super::kernels().bf16?, weights, n, k))
    }

    fn convert_for(kernel: Bf16Kernel, weights: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weights.len(), n * k, "weights are not [n, k]");
        let panel_len = padded(k) * NR;
        let mut panels = vec![0u16; n.div_ceil(NR) * panel_len];
        super::huge_pages::advise(&mut panels);
        panels
            .par_chunks_mut(panel_len.max(1))
            .enumerate()
            .for_each(|(p, panel)| {
                for (o, row) in weights[p * NR * k..]
                    .chunks_exact(k.max(1))
                    .take(NR)
                    .enumerate()
                {
                    for (t, &v) in row.iter().enumerate() {
                        panel[position(o, t)] = to_bf16(v);
                    }
                }
            });
        Self {
            n,
            k,
            kernel,
            panels,
        }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    fn panel(&self, p: usize) -> &[u16] {
        let len = padded(self.k) * NR;
        &self.panels[p * len..][..len]
    }

    /// The weight's rows `ids` in f32 (an embedding lookup); `None` if an id is out of range.
    pub fn gather_rows(&self, ids: &[u32]) -> Option<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.k);
        for &id in ids {
            let j = id as usize;
            if j >= self.n {
                return None;
            }
            let panel = self.panel(j / NR);
            out.extend((0..self.k).map(|t| from_bf16(panel[position(j % NR, t)])));
        }
        Some(out)
    }

    /// `x W^T (+ bias)` for `x` [m, k] row-major; the result is [m, n] row-major.
    pub fn matmul_t(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        // As int8's: below one 16-row tile, AVX512-BF16 (present wherever AMX-BF16 is chosen)
        // is faster (one row: 39–42 against 14–16 GFLOP/s at opus-mt's output layer). Its sums
        // are rounded in another order, so a row's last bits can depend on its batch's size.
        let kernel = match self.kernel {
            Bf16Kernel::Amx if m < NR => Bf16Kernel::Avx512Bf16,
            kernel => kernel,
        };
        self.matmul_t_on(kernel, x, m, bias)
    }

    /// [`Self::matmul_t`] on `kernel`, which the CPU must have.
    fn matmul_t_on(
        &self,
        kernel: Bf16Kernel,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        assert_shapes(x, m, self.k, bias, self.n);
        let input = Rows::of(x, m, self.k, kernel);
        let rows_per_tile = match kernel {
            Bf16Kernel::Amx => MR_AMX,
            Bf16Kernel::Avx512Bf16 => MR_512,
            Bf16Kernel::Portable => MR,
        };
        // SAFETY: `run` writes every (row, output) of its task's block; the CPU has `kernel`.
        unsafe {
            product(
                m,
                self.n,
                2 * input.stride,
                rows_per_tile,
                |task, out| match kernel {
                    #[cfg(target_arch = "x86_64")]
                    Bf16Kernel::Avx512Bf16 => avx512::run(self, task, &input, bias, out),
                    #[cfg(target_arch = "x86_64")]
                    Bf16Kernel::Amx => amx::run(self, task, &input, bias, out),
                    _ => run_portable(self, task, &input, bias, out),
                },
            )
        }
    }
}

fn padded(k: usize) -> usize {
    k.div_ceil(BLOCK) * BLOCK
}

/// Where input `t` of output `o` (of 16) sits in a panel.
fn position(o: usize, t: usize) -> usize {
    (t / 2) * 2 * NR + o * 2 + t % 2
}

/// Activations in bf16, k padded to 32, and rows to 32 for AMX (its tiles read whole blocks).
struct Rows {
    values: Vec<u16>,
    stride: usize,
}

impl Rows {
    fn of(x: &[f32], m: usize, k: usize, kernel: Bf16Kernel) -> Self {
        let stride = padded(k);
        let rows = match kernel {
            Bf16Kernel::Amx => m.div_ceil(MR_AMX) * MR_AMX,
            _ => m,
        };
        let mut values = vec![0u16; rows * stride];
        values
            .par_chunks_mut(stride.max(1))
            .zip(x.par_chunks(k.max(1)))
            .for_each(|(out, row)| {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = to_bf16(v);
                }
            });
        Self { values, stride }
    }
}

/// Writes `acc` (rows × 16 sums of panel `p`) plus the bias to the outputs that exist.
///
/// # Safety
/// As [`SharedOut::write_panel`].
#[inline(always)]
unsafe fn store(
    acc: &[[f32; NR]],
    rows: usize,
    m: &Bf16Matrix,
    p: usize,
    first_row: usize,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    store_sums(acc, rows, m.n, p, first_row, bias, out)
}

/// The same products in plain code (each exact in f32), summed in input order.
///
/// # Safety
/// As [`SharedOut::write_panel`] for the task's block.
unsafe fn run_portable(
    m: &Bf16Matrix,
    task: &Task,
    x: &Rows,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    for (p, r0, rows) in task.tiles() {
        let panel = m.panel(p);
        for i in r0..r0 + rows {
            let row = &x.values[i * x.stride..][..x.stride];
            let mut sums = [0f32; NR];
            for (t, &xv) in row.iter().enumerate().take(m.k) {
                let xv = from_bf16(xv);
                for (c, sum) in sums.iter_mut().enumerate() {
                    *sum += xv * from_bf16(panel[position(c, t)]);
                }
            }
            store(&[sums], 1, m, p, i, bias, out);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn run(
        m: &Bf16Matrix,
        task: &Task,
        x: &Rows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let pairs = x.stride / 2;
        for (p, panels, r0, rows) in task.tiles_of(MR_512, 2) {
            let xs = x.values[r0 * x.stride..].as_ptr();
            let w = [m.panel(p).as_ptr(), m.panel(p + panels - 1).as_ptr()];
            macro_rules! tile {
                ($($r:literal)*) => {
                    match rows {
                        $($r => {
                            let sums = tile::<$r>(xs, x.stride, pairs, w);
                            for (i, sums) in sums.iter().enumerate().take(panels) {
                                store(sums, $r, m, p + i, r0, bias, out);
                            }
                        })*
                        _ => unreachable!("a tile has 1 to {MR_512} rows"),
                    }
                };
            }
            tile!(1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// Sums of `R` rows of `x` (`stride` values apart) against two panels: [panel][R][16].
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const u16,
        stride: usize,
        pairs: usize,
        w: [*const u16; 2],
    ) -> [[[f32; NR]; R]; 2] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for i in 0..pairs {
            let w0: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(w[0].add(i * 2 * NR) as *const _));
            let w1: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(w[1].add(i * 2 * NR) as *const _));
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = (x.add(r * stride + i * 2) as *const i32).read_unaligned();
                let xv: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                acc[0] = _mm512_dpbf16_ps(acc[0], xv, w0);
                acc[1] = _mm512_dpbf16_ps(acc[1], xv, w1);
            }
        }
        let mut sums = [[[0f32; NR]; R]; 2];
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(sums[0][r].as_mut_ptr(), a[0]);
            _mm512_storeu_ps(sums[1][r].as_mut_ptr(), a[1]);
        }
        sums
    }
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use super::super::amx::{block_outputs, Tiles, TILE_BYTES};
    use super::*;

    /// Blocks of 32 rows × 2 panels, as the int8 AMX kernel.
    ///
    /// # Safety
    /// As [`SharedOut::write_panel`]; Linux must have granted the tile state.
    pub(super) unsafe fn run(
        m: &Bf16Matrix,
        task: &Task,
        x: &Rows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let tiles = Tiles::configure();
        let steps = x.stride / BLOCK;
        let mut sums = [[[0f32; NR]; NR]; 4];
        for (p, panels, r0, rows) in task.tiles_of(MR_AMX, 2) {
            let a = x.values[r0 * x.stride..].as_ptr();
            let b = [m.panel(p).as_ptr(), m.panel(p + panels - 1).as_ptr()];
            tiles.zero_accumulators();
            for s in 0..steps {
                let offset = s * TILE_BYTES / 2;
                tiles.bf16_step(
                    a.add(s * BLOCK),
                    2 * x.stride,
                    [b[0].add(offset), b[1].add(offset)],
                );
            }
            tiles.store_accumulators(&mut sums);
            for (t, first, rows, panel) in block_outputs(r0, rows, panels) {
                store(&sums[t], rows, m, p + panel, first, bias, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::math::test_values;

    #[test]
    fn conversion_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: to the even one (1.0).
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }

    #[test]
    fn every_kernel_this_cpu_has_stays_within_f32_rounding_of_the_portable_sums() {
        let mut kernels = vec![Bf16Kernel::Portable];
        for k in crate::cpu::Kernels::available() {
            if let Some(b) = k.bf16 {
                if !kernels.contains(&b) {
                    kernels.push(b);
                }
            }
        }
        for (m, n, k) in [
            (1, 1, 1),
            (13, 21, 77),
            (45, 50, 64),
            (70, 33, 130),
            (2, 64, 512),
        ] {
            let x = test_values(m * k, 1);
            let w = test_values(n * k, 2);
            let bias = test_values(n, 3);
            // The exact sums of the bf16-rounded values.
            let xr: Vec<f64> = x.iter().map(|&v| from_bf16(to_bf16(v)) as f64).collect();
            let wr: Vec<f64> = w.iter().map(|&v| from_bf16(to_bf16(v)) as f64).collect();
            for &kernel in &kernels {
                let got = Bf16Matrix::convert_for(kernel, &w, n, k).matmul_t_on(
                    kernel,
                    &x,
                    m,
                    Some(&bias),
                );
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 = (0..k).map(|t| xr[i * k + t] * wr[j * k + t]).sum::<f64>()
                            + bias[j] as f64;
                        let g = got[i * n + j] as f64;
                        assert!(
                            (g - exact).abs() < 1e-5 * (1.0 + k as f64),
                            "{kernel} {m}x{n}x{k} [{i},{j}]: {g} vs {exact}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gathered_rows_are_the_rounded_weight_rows() {
        let (n, k) = (37, 5);
        let w = test_values(n * k, 4);
        let m = Bf16Matrix::convert_for(Bf16Kernel::Portable, &w, n, k);
        let got = m.gather_rows(&[36, 0]).unwrap();
        let want: Vec<f32> = [36, 0]
            .iter()
            .flat_map(|&r| w[r * k..(r + 1) * k].iter().map(|&v| from_bf16(to_bf16(v))))
            .collect();
        assert_eq!(got, want);
        assert_eq!(m.gather_rows(&[37]), None);
    }
}
