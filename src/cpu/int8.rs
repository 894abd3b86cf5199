//! int8 projections for the CPU (`--dtype int8`).
//!
//! Weights are quantized once at load, symmetrically per output row (`w ≈ scale_j · q`,
//! q in [-127, 127]); activations are quantized the same way per input row at every call.
//! The products are exact integer sums, rescaled to f32 with the two scales:
//! `y[i][j] = scale_x[i] · scale_w[j] · Σ_k qx[i][k] · qw[j][k] + bias[j]`.
//! Every kernel computes the same integer sums, so every kernel gives the same bits.
//!
//! The weights are packed like the f32 ones (packed.rs), in panels of 16 outputs, by groups
//! of inputs, in the layout the process's kernel reads ([`Layout`]):
//! - pairs, [n / 16][k / 2][16][2] (AVX2): a pair row is widened to 16-bit lanes and
//!   multiplied with a broadcast pair of activations by `vpmaddwd` (16 products summed
//!   pairwise into 8 i32 lanes, exact at any value). `vpmaddubsw` would take 32 products per
//!   instruction but needs an unsigned operand and saturates its 16-bit pair sums: measured
//!   slower with the sign fix-ups it needs.
//! - quads, [n / 16][k / 64 · 16][16][4] (AVX-VNNI, AVX512-VNNI, AMX): `vpdpbusd` sums four
//!   u8 × i8 products into each i32 lane in one instruction, exactly. Its first operand is
//!   unsigned, so the activations are stored shifted by 128 and `128 · Σ_k qw[j][k]` (kept
//!   per output) is taken off the sums. AMX's `tdpbssd` multiplies signed bytes directly, a
//!   16 × 16 block of outputs over 64 inputs per instruction; a 16-row slice of the panel is
//!   exactly one of its B tiles, so k is padded to 64 (zeros add nothing).

use rayon::prelude::*;

use super::packed::{assert_shapes, product, SharedOut, Task, MR, NR};
use super::Int8Kernel;

/// How a matrix's panels group their inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Pairs,
    Quads,
}

impl Layout {
    fn of(kernel: Int8Kernel) -> Self {
        match kernel {
            Int8Kernel::Portable | Int8Kernel::Avx2 => Self::Pairs,
            Int8Kernel::AvxVnni | Int8Kernel::Avx512Vnni | Int8Kernel::Amx => Self::Quads,
        }
    }

    /// Inputs summed per 32-bit lane.
    fn group(self) -> usize {
        match self {
            Self::Pairs => 2,
            Self::Quads => 4,
        }
    }

    /// `k` padded to what the kernels read.
    fn padded(self, k: usize) -> usize {
        match self {
            Self::Pairs => k.div_ceil(2) * 2,
            Self::Quads => k.div_ceil(QUAD_BLOCK) * QUAD_BLOCK,
        }
    }

    /// Where input `t` of output `o` (of 16) sits in a panel.
    fn position(self, o: usize, t: usize) -> usize {
        let g = self.group();
        (t / g) * NR * g + o * g + t % g
    }
}

/// Inputs per AMX tile row (64 bytes); the quad layout pads k to it.
const QUAD_BLOCK: usize = 64;
/// The shift that makes a quantized activation unsigned for `vpdpbusd`.
const SHIFT: i32 = 128;
/// Input rows per AVX512-VNNI tile (of two panels).
const MR_512: usize = 12;
/// Input rows per AMX step (two 16-row tiles); the activation rows are padded to it.
const MR_AMX: usize = 32;

/// A weight matrix [n, k] (n outputs of k inputs) quantized per row, in panels.
#[derive(Debug)]
pub struct Int8Matrix {
    n: usize,
    k: usize,
    kernel: Int8Kernel,
    layout: Layout,
    /// [n / 16][padded k / group][16][group], zero padding for the missing outputs and inputs.
    panels: Vec<i8>,
    /// [n]
    scales: Vec<f32>,
    /// `SHIFT · Σ_k q[j][k]` per output, padded to whole panels (the quad kernels' correction).
    shifted_sums: Vec<i32>,
}

/// Quantizes `row` into `out` (symmetric, round half to even, in [-127, 127]) and returns its
/// scale; a row holding NaN or infinity gets a NaN scale, so its outputs are NaN as in f32.
fn quantize_row(row: &[f32], out: &mut [i16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if super::math::has_avx2() {
            // SAFETY: the kernels chose AVX2, so the CPU has it.
            return unsafe { avx2::quantize_row(row, out) };
        }
    }
    quantize_row_portable(row, out)
}

/// Written so that the compiler vectorizes it: no branches, no calls in the loops.
#[inline(always)]
fn quantize_row_portable(row: &[f32], out: &mut [i16]) -> f32 {
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
    // NaN compares unequal to 0 too.
    let poison = poison.iter().sum::<f32>();
    if poison != 0.0 || max == 0.0 {
        out.iter_mut().for_each(|q| *q = 0);
        return if poison != 0.0 { f32::NAN } else { 0.0 };
    }
    let inverse = 127.0 / max;
    // Adding and removing 1.5 · 2^23 rounds to the nearest integer (ties to even) for |v| < 2^22.
    const ROUND: f32 = 12_582_912.0;
    for (q, v) in out.iter_mut().zip(row) {
        *q = (((v * inverse) + ROUND) - ROUND).clamp(-127.0, 127.0) as i16;
    }
    max / 127.0
}

impl Int8Matrix {
    /// Quantizes `weights` [n, k], row-major, for the process's kernel.
    pub fn quantize(weights: &[f32], n: usize, k: usize) -> Self {
        Self::quantize_for(super::kernels().int8, weights, n, k)
    }

    /// Quantizes `weights` [n, k] in the layout `kernel` reads; the CPU must have it.
    fn quantize_for(kernel: Int8Kernel, weights: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weights.len(), n * k, "weights are not [n, k]");
        let layout = Layout::of(kernel);
        let panel_bytes = layout.padded(k) * NR;
        let mut panels = vec![0i8; n.div_ceil(NR) * panel_bytes];
        super::huge_pages::advise(&mut panels);
        let mut scales = vec![0f32; n.div_ceil(NR) * NR];
        let mut shifted_sums = vec![0i32; n.div_ceil(NR) * NR];
        panels
            .par_chunks_mut(panel_bytes.max(1))
            .zip(scales.par_chunks_mut(NR))
            .zip(shifted_sums.par_chunks_mut(NR))
            .enumerate()
            .for_each(|(p, ((panel, scales), sums))| {
                let mut q = vec![0i16; k];
                for (o, (scale, sum)) in scales.iter_mut().zip(sums).enumerate().take(n - p * NR) {
                    let row = p * NR + o;
                    *scale = quantize_row(&weights[row * k..(row + 1) * k], &mut q);
                    for (t, &v) in q.iter().enumerate() {
                        // |v| ≤ 127: the narrowing is exact.
                        panel[layout.position(o, t)] = v as i8;
                    }
                    *sum = SHIFT * q.iter().map(|&v| v as i32).sum::<i32>();
                }
            });
        scales.truncate(n);
        Self {
            n,
            k,
            kernel,
            layout,
            panels,
            scales,
            shifted_sums,
        }
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    fn panel_bytes(&self) -> usize {
        self.layout.padded(self.k) * NR
    }

    fn panel(&self, p: usize) -> &[i8] {
        &self.panels[p * self.panel_bytes()..][..self.panel_bytes()]
    }

    /// Rows `ids` dequantized (`scale_j · q_j`), [ids.len(), k] row-major: embedding lookups
    /// from the matrix a tied output layer multiplies with.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Option<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.k);
        for &id in ids {
            let j = id as usize;
            let scale = *self.scales.get(j)?;
            let panel = self.panel(j / NR);
            out.extend((0..self.k).map(|t| panel[self.layout.position(j % NR, t)] as f32 * scale));
        }
        Some(out)
    }

    /// `x W^T (+ bias)` for `x` [m, k] row-major; the result is [m, n] row-major.
    pub fn matmul_t(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        // AMX computes whole blocks of 32 rows: below one 16-row tile, AVX512-VNNI (the same
        // layout and sums; present wherever AMX is chosen) is faster (one row: 58–64 against
        // 41–59 GOP/s at opus-mt's output layer, interleaved).
        let kernel = match self.kernel {
            Int8Kernel::Amx if m < NR => Int8Kernel::Avx512Vnni,
            kernel => kernel,
        };
        self.matmul_t_on(kernel, x, m, bias)
    }

    /// [`Self::matmul_t`] on `kernel`, which must read this matrix's layout (the portable
    /// kernel reads both) and which the CPU must have.
    fn matmul_t_on(
        &self,
        kernel: Int8Kernel,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        assert_shapes(x, m, self.k, bias, self.n);
        assert!(
            kernel == Int8Kernel::Portable || Layout::of(kernel) == self.layout,
            "the {kernel} kernel does not read this matrix's layout"
        );
        let input = QuantizedRows::of(x, m, self.k, self.layout, kernel);
        let rows_per_tile = match kernel {
            Int8Kernel::Amx => MR_AMX,
            Int8Kernel::Avx512Vnni => MR_512,
            _ => MR,
        };
        // SAFETY: `run` writes every (row, output) of its task's block; the CPU has `kernel`.
        unsafe {
            product(m, self.n, input.row_bytes(), rows_per_tile, |task, out| {
                self.run(kernel, task, &input, bias, out)
            })
        }
    }

    /// # Safety
    /// `out` must point to an [m, n] buffer of which this task alone writes its block; the CPU
    /// must have `kernel`, and `x` must be in its form.
    unsafe fn run(
        &self,
        kernel: Int8Kernel,
        task: &Task,
        x: &QuantizedRows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx2 => avx2::run(self, task, x, bias, out),
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::AvxVnni => avx_vnni::run(self, task, x, bias, out),
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx512Vnni => avx512_vnni::run(self, task, x, bias, out),
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Amx => amx::run(self, task, x, bias, out),
            _ => run_portable(self, task, x, bias, out),
        }
    }
}

/// How quantized activations are stored for a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowForm {
    /// i16 values, k padded to pairs (the pair kernels).
    Wide,
    /// `q + 128` as u8, k padded to 64 (`vpdpbusd`; padding is 128, a shifted 0).
    Shifted,
    /// `q` as i8, k padded to 64 and rows to 32 (AMX tiles; padding is 0).
    Signed,
}

/// Rows of activations quantized for the kernel.
struct QuantizedRows {
    form: RowForm,
    /// `Wide` rows.
    wide: Vec<i16>,
    /// `Shifted` or `Signed` rows.
    bytes: Vec<u8>,
    /// Values per row.
    stride: usize,
    scales: Vec<f32>,
}

impl QuantizedRows {
    fn of(x: &[f32], m: usize, k: usize, layout: Layout, kernel: Int8Kernel) -> Self {
        let form = match (layout, kernel) {
            (Layout::Pairs, _) => RowForm::Wide,
            (Layout::Quads, Int8Kernel::Amx) => RowForm::Signed,
            (Layout::Quads, _) => RowForm::Shifted,
        };
        let stride = layout.padded(k);
        let mut scales = vec![0f32; m];
        let mut rows = Self {
            form,
            wide: Vec::new(),
            bytes: Vec::new(),
            stride,
            scales: Vec::new(),
        };
        if form == RowForm::Wide {
            let mut wide = vec![0i16; m * stride];
            wide.par_chunks_mut(stride.max(1))
                .zip(scales.par_iter_mut())
                .zip(x.par_chunks(k.max(1)))
                .for_each(|((q, scale), row)| *scale = quantize_row(row, &mut q[..k]));
            rows.wide = wide;
        } else {
            let (padding, padded_rows) = match form {
                RowForm::Shifted => (SHIFT as u8, m),
                _ => (0, m.div_ceil(MR_AMX) * MR_AMX),
            };
            let mut bytes = vec![padding; padded_rows * stride];
            bytes
                .par_chunks_mut(stride.max(1))
                .zip(scales.par_iter_mut())
                .zip(x.par_chunks(k.max(1)))
                .for_each_init(
                    || vec![0i16; k],
                    |q, ((out, scale), row)| {
                        *scale = quantize_row(row, q);
                        // |v| ≤ 127: both narrowings are exact.
                        if form == RowForm::Shifted {
                            for (o, &v) in out.iter_mut().zip(q.iter()) {
                                *o = (v as i32 + SHIFT) as u8;
                            }
                        } else {
                            for (o, &v) in out.iter_mut().zip(q.iter()) {
                                *o = v as i8 as u8;
                            }
                        }
                    },
                );
            rows.bytes = bytes;
        }
        rows.scales = scales;
        rows
    }

    /// Bytes of one row, for the product's cache blocking.
    fn row_bytes(&self) -> usize {
        match self.form {
            RowForm::Wide => 2 * self.stride,
            _ => self.stride,
        }
    }

    /// Row `i`'s quantized values, whatever the form.
    fn value(&self, i: usize, t: usize) -> i32 {
        match self.form {
            RowForm::Wide => self.wide[i * self.stride + t] as i32,
            RowForm::Shifted => self.bytes[i * self.stride + t] as i32 - SHIFT,
            RowForm::Signed => self.bytes[i * self.stride + t] as i8 as i32,
        }
    }
}

/// Writes the integer sums `acc` of panel `p` (rows × 16) rescaled, plus the bias, to the
/// outputs that exist.
///
/// # Safety
/// As [`SharedOut::write_panel`].
#[inline(always)]
unsafe fn store<const R: usize>(
    acc: &[[i32; NR]; R],
    m: &Int8Matrix,
    x: &QuantizedRows,
    p: usize,
    first_row: usize,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    store_rows(acc, R, m, x, p, first_row, bias, out)
}

/// [`store`] for the first `rows` rows of `acc`.
///
/// # Safety
/// As [`SharedOut::write_panel`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn store_rows(
    acc: &[[i32; NR]],
    rows: usize,
    m: &Int8Matrix,
    x: &QuantizedRows,
    p: usize,
    first_row: usize,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    out.write_panel(m.n, p, first_row, rows, |r, c| {
        let j = p * NR + c;
        let mut v = acc[r][c] as f32 * (x.scales[first_row + r] * m.scales[j]);
        if let Some(bias) = bias {
            v += bias[j];
        }
        v
    })
}

/// The kernel without SIMD, for either layout and any row form: the same integer sums.
///
/// # Safety
/// As [`Int8Matrix::run`].
unsafe fn run_portable(
    m: &Int8Matrix,
    task: &Task,
    x: &QuantizedRows,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    let g = m.layout.group();
    for (p, r0, rows) in task.tiles() {
        let panel = m.panel(p);
        for i in r0..r0 + rows {
            let mut sums = [0i32; NR];
            for (step, w) in panel.chunks_exact(NR * g).enumerate() {
                for (c, sum) in sums.iter_mut().enumerate() {
                    for j in 0..g {
                        let t = step * g + j;
                        if t < m.k {
                            *sum += x.value(i, t) * w[c * g + j] as i32;
                        }
                    }
                }
            }
            store::<1>(&[sums], m, x, p, i, bias, out);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;
    /// How far ahead of its loads the panel is fetched (1 KiB, as the f32 kernel): without it
    /// the product at the output layer ran 3–20 % slower on Zen 3 at 1–64 rows. (Fetching
    /// the next panel into L2 as well, as the f32 kernel does, gained nothing here: int8
    /// panels are a quarter of the bytes.)
    const PREFETCH_BYTES: usize = 1024;

    /// The portable function's results, with its rounding loop in AVX2 registers: the compiler
    /// turns the float-to-integer `as` into one scalar conversion per value.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn quantize_row(row: &[f32], out: &mut [i16]) -> f32 {
        let mut max = _mm256_setzero_ps();
        let mut poison = _mm256_setzero_ps();
        let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let chunks = row.chunks_exact(8);
        let tail = chunks.remainder();
        for chunk in chunks {
            let v = _mm256_loadu_ps(chunk.as_ptr());
            max = _mm256_max_ps(max, _mm256_and_ps(v, magnitude));
            poison = _mm256_add_ps(poison, _mm256_mul_ps(v, _mm256_setzero_ps()));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), max);
        let mut max = lanes.iter().fold(0f32, |m, &v| m.max(v));
        _mm256_storeu_ps(lanes.as_mut_ptr(), poison);
        let mut poison = lanes.iter().sum::<f32>();
        for v in tail {
            max = max.max(v.abs());
            poison += v * 0.0;
        }
        if poison != 0.0 || max == 0.0 {
            out.iter_mut().for_each(|q| *q = 0);
            return if poison != 0.0 { f32::NAN } else { 0.0 };
        }
        let inverse = 127.0 / max;
        let scale = _mm256_set1_ps(inverse);
        let (low, high) = (_mm256_set1_epi16(-127), _mm256_set1_epi16(127));
        let whole = row.len() / 16 * 16;
        for (chunk, q) in row[..whole].chunks_exact(16).zip(out.chunks_exact_mut(16)) {
            // Rounds to nearest, ties to even (the default rounding mode), as the portable loop.
            let a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(chunk.as_ptr()), scale));
            let b =
                _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(chunk.as_ptr().add(8)), scale));
            // packs interleaves 128-bit halves: a0-3 b0-3 a4-7 b4-7, put back in order.
            let packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0b11_01_10_00);
            let clamped = _mm256_min_epi16(_mm256_max_epi16(packed, low), high);
            _mm256_storeu_si256(q.as_mut_ptr() as *mut __m256i, clamped);
        }
        const ROUND: f32 = 12_582_912.0;
        for (q, v) in out[whole..].iter_mut().zip(&row[whole..]) {
            *q = (((v * inverse) + ROUND) - ROUND).clamp(-127.0, 127.0) as i16;
        }
        max / 127.0
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run(
        m: &Int8Matrix,
        task: &Task,
        x: &QuantizedRows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let pairs = x.stride / 2;
        for (p, r0, rows) in task.tiles() {
            let panel = m.panel(p).as_ptr();
            let xs = x.wide[r0 * x.stride..].as_ptr();
            let s = x.stride;
            match rows {
                6 => store(&tile::<6>(xs, s, pairs, panel), m, x, p, r0, bias, out),
                5 => store(&tile::<5>(xs, s, pairs, panel), m, x, p, r0, bias, out),
                4 => store(&tile::<4>(xs, s, pairs, panel), m, x, p, r0, bias, out),
                3 => store(&tile::<3>(xs, s, pairs, panel), m, x, p, r0, bias, out),
                2 => store(&tile::<2>(xs, s, pairs, panel), m, x, p, r0, bias, out),
                _ => store(&tile::<1>(xs, s, pairs, panel), m, x, p, r0, bias, out),
            }
        }
    }

    /// Integer sums of `R` rows of `x` (`stride` apart) against one panel: [R][16].
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const i16,
        stride: usize,
        pairs: usize,
        panel: *const i8,
    ) -> [[i32; NR]; R] {
        const { assert!(R <= MR) };
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for i in 0..pairs {
            let w = panel.add(i * 2 * NR);
            _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(PREFETCH_BYTES));
            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w as *const __m128i));
            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(16) as *const __m128i));
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = (x.add(r * stride + i * 2) as *const i32).read_unaligned();
                let xv = _mm256_set1_epi32(pair);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(xv, w0));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(xv, w1));
            }
        }
        let mut sums = [[0i32; NR]; R];
        for (s, a) in sums.iter_mut().zip(&acc) {
            _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, a[0]);
            _mm256_storeu_si256(s.as_mut_ptr().add(8) as *mut __m256i, a[1]);
        }
        sums
    }
}

/// Rescales `sums` of `vpdpbusd` (over shifted activations) back to the true integer sums.
#[inline(always)]
fn unshift<const R: usize>(mut sums: [[i32; NR]; R], m: &Int8Matrix, p: usize) -> [[i32; NR]; R] {
    let correction = &m.shifted_sums[p * NR..][..NR];
    for row in sums.iter_mut() {
        for (s, c) in row.iter_mut().zip(correction) {
            *s -= c;
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod avx512_vnni {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn run(
        m: &Int8Matrix,
        task: &Task,
        x: &QuantizedRows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let quads = x.stride / 4;
        for (p, panels, r0, rows) in task.tiles_of(MR_512, 2) {
            let xs = x.bytes[r0 * x.stride..].as_ptr();
            let w = [m.panel(p).as_ptr(), m.panel(p + panels - 1).as_ptr()];
            macro_rules! tile {
                ($($r:literal)*) => {
                    match rows {
                        $($r => {
                            let sums = tile::<$r>(xs, x.stride, quads, w);
                            for (i, sums) in sums.into_iter().enumerate().take(panels) {
                                store::<$r>(&unshift(sums, m, p + i), m, x, p + i, r0, bias, out);
                            }
                        })*
                        _ => unreachable!("a tile has 1 to {MR_512} rows"),
                    }
                };
            }
            tile!(1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// Shifted sums of `R` rows of `x` (`stride` bytes apart) against two panels (the same
    /// one twice at the end of a task's odd run): [panel][R][16].
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const u8,
        stride: usize,
        quads: usize,
        w: [*const i8; 2],
    ) -> [[[i32; NR]; R]; 2] {
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        for i in 0..quads {
            let w0 = _mm512_loadu_si512(w[0].add(i * 4 * NR) as *const _);
            let w1 = _mm512_loadu_si512(w[1].add(i * 4 * NR) as *const _);
            for (r, acc) in acc.iter_mut().enumerate() {
                let quad = (x.add(r * stride + i * 4) as *const i32).read_unaligned();
                let xv = _mm512_set1_epi32(quad);
                acc[0] = _mm512_dpbusd_epi32(acc[0], xv, w0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], xv, w1);
            }
        }
        let mut sums = [[[0i32; NR]; R]; 2];
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_si512(sums[0][r].as_mut_ptr() as *mut _, a[0]);
            _mm512_storeu_si512(sums[1][r].as_mut_ptr() as *mut _, a[1]);
        }
        sums
    }
}

#[cfg(target_arch = "x86_64")]
mod avx_vnni {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn run(
        m: &Int8Matrix,
        task: &Task,
        x: &QuantizedRows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let quads = x.stride / 4;
        for (p, r0, rows) in task.tiles() {
            let panel = m.panel(p).as_ptr();
            let xs = x.bytes[r0 * x.stride..].as_ptr();
            let s = x.stride;
            macro_rules! tile {
                ($($r:literal)*) => {
                    match rows {
                        $($r => store::<$r>(&unshift(tile::<$r>(xs, s, quads, panel), m, p), m, x, p, r0, bias, out),)*
                        _ => unreachable!("a tile has 1 to {MR} rows"),
                    }
                };
            }
            tile!(1 2 3 4 5 6);
        }
    }

    /// Shifted sums of `R` rows of `x` (`stride` bytes apart) against one panel: [R][16].
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const u8,
        stride: usize,
        quads: usize,
        panel: *const i8,
    ) -> [[i32; NR]; R] {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for i in 0..quads {
            let w = panel.add(i * 4 * NR);
            let w0 = _mm256_loadu_si256(w as *const __m256i);
            let w1 = _mm256_loadu_si256(w.add(32) as *const __m256i);
            for (r, acc) in acc.iter_mut().enumerate() {
                let quad = (x.add(r * stride + i * 4) as *const i32).read_unaligned();
                let xv = _mm256_set1_epi32(quad);
                acc[0] = _mm256_dpbusd_avx_epi32(acc[0], xv, w0);
                acc[1] = _mm256_dpbusd_avx_epi32(acc[1], xv, w1);
            }
        }
        let mut sums = [[0i32; NR]; R];
        for (s, a) in sums.iter_mut().zip(&acc) {
            _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, a[0]);
            _mm256_storeu_si256(s.as_mut_ptr().add(8) as *mut __m256i, a[1]);
        }
        sums
    }
}

#[cfg(target_arch = "x86_64")]
mod amx {
    use super::super::amx::{block_outputs, Tiles, TILE_BYTES};
    use super::*;

    /// Blocks of 32 rows × 2 panels: four accumulator tiles, two A tiles of activations, two
    /// B tiles of weights (16 quad rows of a panel, 1 KiB, contiguous).
    ///
    /// # Safety
    /// As [`Int8Matrix::run`]; Linux must have granted the tile state (the kernels ask).
    pub(super) unsafe fn run(
        m: &Int8Matrix,
        task: &Task,
        x: &QuantizedRows,
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let tiles = Tiles::configure();
        let steps = x.stride / QUAD_BLOCK;
        let mut sums = [[[0i32; NR]; NR]; 4];
        for (p, panels, r0, rows) in task.tiles_of(MR_AMX, 2) {
            // Rows are padded to 32 in `x`, so both A tiles lie inside it.
            let a = x.bytes[r0 * x.stride..].as_ptr();
            let b = [m.panel(p).as_ptr(), m.panel(p + panels - 1).as_ptr()];
            tiles.zero_accumulators();
            for s in 0..steps {
                tiles.int8_step(
                    a.add(s * QUAD_BLOCK),
                    x.stride,
                    [b[0].add(s * TILE_BYTES), b[1].add(s * TILE_BYTES)],
                );
            }
            tiles.store_accumulators(&mut sums);
            for (t, first, rows, panel) in block_outputs(r0, rows, panels) {
                store_rows(&sums[t], rows, m, x, p + panel, first, bias, out);
            }
        }
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
        let mut qw = vec![0i16; k];
        let mut qx = vec![0i16; k];
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
        // Lengths with and without a tail; the last row is all ties (its maximum is 127).
        let ties: Vec<f32> = (0..40)
            .map(|i| i as f32 * 0.5 - 10.0)
            .chain([127.0])
            .collect();
        for row in [1, 7, 16, 33, 96, 515]
            .iter()
            .zip(10..)
            .map(|(&k, seed)| values(k, seed))
            .chain([ties])
        {
            let k = row.len();
            let mut portable = vec![0i16; k];
            let mut vector = vec![0i16; k];
            let scale = quantize_row_portable(&row, &mut portable);
            assert_eq!(quantize_row(&row, &mut vector), scale);
            assert_eq!(vector, portable);
        }
        // Every tile height, a partial panel and an odd k.
        for (m, n, k) in [(13, 21, 77), (6, 16, 2), (1, 40, 512)] {
            let x = values(m * k, 1);
            let q = Int8Matrix::quantize(&values(n * k, 2), n, k);
            let bias = values(n, 3);
            let got = q.matmul_t(&x, m, Some(&bias));
            let portable = q.matmul_t_on(Int8Kernel::Portable, &x, m, Some(&bias));
            assert_eq!(portable, got, "m={m} n={n} k={k}");
        }
    }

    #[test]
    fn every_kernel_this_cpu_has_gives_the_portable_bits() {
        // Every tile height of every kernel (AMX: 32-row blocks and a partial one), partial
        // and odd panel runs, k below, at and above the 64-input blocks, extreme values.
        let mut extreme = values(3 * 130, 7);
        extreme[5] = 1e6;
        for (m, n, k, x) in [
            (13, 21, 77, values(13 * 77, 1)),
            (6, 16, 2, values(6 * 2, 1)),
            (1, 40, 512, values(512, 1)),
            (45, 50, 64, values(45 * 64, 1)),
            (70, 33, 130, values(70 * 130, 1)),
            (3, 130, 130, extreme),
        ] {
            let w = values(n * k, 2);
            let bias = values(n, 3);
            for kernels in crate::cpu::Kernels::available() {
                let kernel = kernels.int8;
                let q = Int8Matrix::quantize_for(kernel, &w, n, k);
                let got = q.matmul_t_on(kernel, &x, m, Some(&bias));
                let portable = q.matmul_t_on(Int8Kernel::Portable, &x, m, Some(&bias));
                assert_eq!(portable, got, "{kernel}: m={m} n={n} k={k}");
                let pairs = Int8Matrix::quantize_for(Int8Kernel::Portable, &w, n, k);
                assert_eq!(
                    pairs.matmul_t_on(Int8Kernel::Portable, &x, m, Some(&bias)),
                    got,
                    "{kernel} against the pair layout: m={m} n={n} k={k}"
                );
                assert_eq!(
                    q.dequantize_rows(&[0, n as u32 - 1]),
                    pairs.dequantize_rows(&[0, n as u32 - 1])
                );
            }
        }
    }

    #[test]
    fn rows_with_nan_or_infinity_give_nan_not_a_number_that_looks_right() {
        let mut out = vec![0i16; 3];
        assert!(quantize_row(&[1.0, f32::NAN, 2.0], &mut out).is_nan());
        assert!(quantize_row(&[1.0, f32::INFINITY, 2.0], &mut out).is_nan());
        assert_eq!(quantize_row(&[0.0, 0.0, 0.0], &mut out), 0.0);
        // f32::max passes over NaN: the row's maximum is 0, its scale must still be NaN.
        assert!(quantize_row(&[f32::NAN, 0.0, 0.0], &mut out).is_nan());
        assert!(quantize_row_portable(&[f32::NAN, 0.0, 0.0], &mut out).is_nan());
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
