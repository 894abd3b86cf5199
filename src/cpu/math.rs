//! Small numeric routines for the CPU: the exponentials of softmaxes and SiLU, dot products,
//! row reductions; portable loops the compiler vectorizes, and AVX2 and AVX-512 paths with the
//! same bits (the same operations per lane, the sums added in the same order).

use std::mem::MaybeUninit;

/// Whether the process's kernels run AVX2 + FMA (or better).
#[inline(always)]
pub(crate) fn has_avx2() -> bool {
    super::kernels().vector >= super::Vector::Avx2
}

/// Whether the process's kernels run AVX-512.
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    super::kernels().vector >= super::Vector::Avx512
}

/// 1.5 · 2^23: adding and removing it rounds to an integer.
const ROUND: f32 = 12_582_912.0;
/// ln 2 in two parts, for an exact `n · ln 2` reduction.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, the exponentials are 0 (e^x is under f32's normal range).
const EXP_FLOOR: f32 = -87.0;
/// Above this, [`exp`] is +∞ (2^n would overflow; e^x is within 30 % of f32's largest value).
const EXP_CEILING: f32 = 88.37;
/// Cephes' polynomial for e^r on [-ln 2 / 2, ln 2 / 2], highest degree first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// `e^x` for `x ≤ 0` (a score minus its row's maximum) within 2 ulp: `2^n · p(r)` with
/// `n = round(x / ln 2)` and Cephes' polynomial, in fused multiply-adds as torch's vectorized
/// exponential is. Loops over it take [`avx2::exp_lane_sums`] or [`exp_shifted_in_place`]'s
/// AVX2 path, the same operations on eight lanes; without FMA hardware `mul_add` is computed
/// in software (slower, the same bits). Below -87 it is 0; NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    let y = exp_reduced(if x < EXP_FLOOR { EXP_FLOOR } else { x });
    if x < EXP_FLOOR {
        0.0
    } else {
        y
    }
}

/// [`exp_nonpositive`] over the whole line: the same bits for `x ≤ 0`, +∞ above 88.37.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = if x > EXP_CEILING { EXP_CEILING } else { x };
    let y = exp_nonpositive(clamped);
    if x > EXP_CEILING {
        f32::INFINITY
    } else {
        y
    }
}

/// `2^n · p(r)` for `x` in [-87, 88.37].
#[inline(always)]
fn exp_reduced(x: f32) -> f32 {
    let shifted = x.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    // n as an integer, read from the low bits of `shifted`.
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p.mul_add(r, c);
    }
    ((p * r).mul_add(r, r) + 1.0) * f32::from_bits((n_int.wrapping_add(127) << 23) as u32)
}

/// `out = x / (1 + e^-x)` (SiLU, or swish), torch's formula, with [`exp`]. `out` may be
/// uninitialized (a fresh buffer needs no zero-filling first); every element is written.
pub fn silu(x: &[f32], out: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), out.len(), "silu: input and output lengths differ");
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { avx512::silu(x, out) };
        }
        if has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { avx2::silu(x, out) };
        }
    }
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(v / (1.0 + exp(-v)));
    }
}

/// Lane `i` of the result is the sum, in order, of `exp_nonpositive(x - max)` over the
/// elements `i, i + 8, i + 16, …` of `row`, whose length is a multiple of 8.
pub fn exp_lane_sums(row: &[f32], max: f32) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { avx512::exp_lane_sums(row, max) };
        }
        if has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { avx2::exp_lane_sums(row, max) };
        }
    }
    exp_lane_sums_portable(row, max)
}

fn exp_lane_sums_portable(row: &[f32], max: f32) -> [f32; 8] {
    assert!(row.len().is_multiple_of(8), "whole chunks of 8 only");
    let mut sums = [0f32; 8];
    for chunk in row.chunks_exact(8) {
        for i in 0..8 {
            sums[i] += exp_nonpositive(chunk[i] - max);
        }
    }
    sums
}

/// Replaces each score by `e^(score - max)` and returns their sum, added in order.
pub fn exp_shifted_in_place(scores: &mut [f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { avx512::exp_shifted_in_place(scores, max) };
        }
        if has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { avx2::exp_shifted_in_place(scores, max) };
        }
    }
    for s in scores.iter_mut() {
        *s = exp_nonpositive(*s - max);
    }
    scores.iter().fold(0.0, |sum, &s| sum + s)
}

/// A dot product in eight independent lanes, so that it vectorizes.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `out[t] = dot(q, keys[t])` for the rows of `keys` [out.len(), q.len()]: the portable path
/// (on x86 with AVX2 the attention calls [`avx2::dots`], which has the same bits).
#[inline(always)]
pub fn dots(q: &[f32], keys: &[f32], out: &mut [f32]) {
    let hd = q.len();
    assert_eq!(
        keys.len(),
        out.len() * hd,
        "keys are not [out.len(), q.len()]"
    );
    if hd == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(keys.chunks_exact(hd)) {
        *o = dot(q, row);
    }
}

/// A row's maximum and the log of its sum of `e^(x - max)` (a whole vocabulary, at least once
/// per step and row, for `torch.log_softmax`): the sum in eight lanes ([`exp_lane_sums`]), the
/// tail's after them.
pub fn max_and_log_sum(row: &[f32]) -> (f32, f32) {
    let max = row_max(row);
    let whole = row.len() / 8 * 8;
    let lanes = exp_lane_sums(&row[..whole], max);
    let sum: f32 = row[whole..]
        .iter()
        .map(|&x| exp_nonpositive(x - max))
        .sum::<f32>()
        + lanes.iter().sum::<f32>();
    (max, sum.ln())
}

/// The first index of the largest value, NaN ignored (0 if every value is NaN): the token
/// greedy search picks. Two passes (the maximum, then where it first is) that vectorize,
/// instead of one that compares and tests for NaN value by value.
pub fn argmax(row: &[f32]) -> usize {
    let max = row_max(row);
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { avx512::first_index_of(row, max) };
        }
    }
    row.iter().position(|&x| x == max).unwrap_or(0)
}

/// The largest value, NaN ignored (`f32::max`).
fn row_max(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the kernels chose AVX-512, so the CPU has it.
            return unsafe { avx512::row_max(row) };
        }
        if has_avx2() {
            // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
            return unsafe { avx2::row_max(row) };
        }
    }
    row_max_portable(row)
}

/// In eight lanes, so that it vectorizes.
#[inline(always)]
fn row_max_portable(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..8 {
            lanes[i] = lanes[i].max(chunk[i]);
        }
    }
    tail.iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// [`dots`] in AVX2 registers for key widths that are a multiple of 8 (the compiler split the
/// portable loop into two-value loads); other widths go to [`dots`]. Same arithmetic, same bits.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// [`super::exp_lane_sums`]: the same operations on eight lanes, so the same bits.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_lane_sums(row: &[f32], max: f32) -> [f32; 8] {
        assert!(row.len().is_multiple_of(8), "whole chunks of 8 only");
        let max = _mm256_set1_ps(max);
        let mut sums = _mm256_setzero_ps();
        for chunk in row.chunks_exact(8) {
            let x = _mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), max);
            sums = _mm256_add_ps(sums, exp_nonpositive(x));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sums);
        lanes
    }

    /// [`super::exp_shifted_in_place`], the exponentials eight at a time (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_shifted_in_place(scores: &mut [f32], max: f32) -> f32 {
        let mut chunks = scores.chunks_exact_mut(8);
        for chunk in chunks.by_ref() {
            let x = _mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), _mm256_set1_ps(max));
            _mm256_storeu_ps(chunk.as_mut_ptr(), exp_nonpositive(x));
        }
        for s in chunks.into_remainder() {
            *s = super::exp_nonpositive(*s - max);
        }
        scores.iter().fold(0.0, |sum, &s| sum + s)
    }

    /// [`super::row_max_portable`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row_max(row: &[f32]) -> f32 {
        super::row_max_portable(row)
    }

    /// [`super::silu`], eight values at a time (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn silu(x: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert_eq!(x.len(), out.len(), "silu: input and output lengths differ");
        let whole = x.len() / 8 * 8;
        for (o, v) in out.chunks_exact_mut(8).zip(x.chunks_exact(8)) {
            let v = _mm256_loadu_ps(v.as_ptr());
            // -v by its sign bit, as the scalar negation.
            let e = exp(_mm256_xor_ps(v, _mm256_set1_ps(-0.0)));
            let y = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0), e));
            _mm256_storeu_ps(o.as_mut_ptr().cast::<f32>(), y);
        }
        for (o, &v) in out[whole..].iter_mut().zip(&x[whole..]) {
            o.write(v / (1.0 + super::exp(-v)));
        }
    }

    /// [`super::exp_nonpositive`] on eight lanes, operation for operation.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_nonpositive(x: __m256) -> __m256 {
        let floor = _mm256_set1_ps(super::EXP_FLOOR);
        // `max_ps(a, b)` is `a > b ? a : b`: NaN in `x` passes through, as in the scalar `if`.
        let y = exp_reduced(_mm256_max_ps(floor, x));
        // 0 where x < -87; elsewhere (NaN included) y.
        _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLT_UQ>(x, floor), y)
    }

    /// [`super::exp`] on eight lanes, operation for operation.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp(x: __m256) -> __m256 {
        let ceiling = _mm256_set1_ps(super::EXP_CEILING);
        // `min_ps(a, b)` is `a < b ? a : b`: NaN passes through.
        let y = exp_nonpositive(_mm256_min_ps(ceiling, x));
        let above = _mm256_cmp_ps::<_CMP_GT_OQ>(x, ceiling);
        _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), above)
    }

    /// [`super::exp_reduced`] on eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp_reduced(x: __m256) -> __m256 {
        use super::{EXP_POLY, LN2_HI, LN2_LO, ROUND};
        let round = _mm256_set1_ps(ROUND);
        let shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm256_sub_ps(shifted, round);
        let n_int = _mm256_sub_epi32(
            _mm256_castps_si256(shifted),
            _mm256_set1_epi32(ROUND.to_bits() as i32),
        );
        // (-n)·LN2 + x: fnmadd is -(a·b) + c, the same product and the same single rounding.
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let poly = _mm256_add_ps(
            _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r),
            _mm256_set1_ps(1.0),
        );
        let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(n_int, _mm256_set1_epi32(127)));
        _mm256_mul_ps(poly, _mm256_castsi256_ps(scale))
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots(q: &[f32], keys: &[f32], out: &mut [f32]) {
        const ROWS: usize = 8;
        let hd = q.len();
        if hd == 0 || !hd.is_multiple_of(8) {
            return super::dots(q, keys, out);
        }
        assert_eq!(
            keys.len(),
            out.len() * hd,
            "keys are not [out.len(), q.len()]"
        );
        // `dot` adds its lanes in order, then the (empty) tail.
        let empty_tail: f32 = std::iter::empty::<f32>().sum();
        let finish = |acc: __m256| {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            lanes.iter().sum::<f32>() + empty_tail
        };
        let (q, k) = (q.as_ptr(), keys.as_ptr());
        let blocks = out.len() / ROWS;
        for b in 0..blocks {
            let mut acc = [_mm256_setzero_ps(); ROWS];
            let rows = k.add(b * ROWS * hd);
            for d in (0..hd).step_by(8) {
                let x = _mm256_loadu_ps(q.add(d));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let y = _mm256_loadu_ps(rows.add(r * hd + d));
                    *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, y));
                }
            }
            // The eight keys' lane sums, each added lane 0 to 7 in order as `finish` does,
            // for all eight keys at once: transposed, so that register j holds every key's
            // lane j, then added register by register.
            let lanes = transpose(acc);
            let mut sums = _mm256_add_ps(lanes[0], lanes[1]);
            for lane in &lanes[2..] {
                sums = _mm256_add_ps(sums, *lane);
            }
            sums = _mm256_add_ps(sums, _mm256_set1_ps(empty_tail));
            _mm256_storeu_ps(out.as_mut_ptr().add(b * ROWS), sums);
        }
        for (t, o) in out.iter_mut().enumerate().skip(blocks * ROWS) {
            let mut acc = _mm256_setzero_ps();
            for d in (0..hd).step_by(8) {
                let y = _mm256_loadu_ps(k.add(t * hd + d));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(q.add(d)), y));
            }
            *o = finish(acc);
        }
    }

    /// An 8 × 8 transpose: lane r of result j is lane j of `rows[r]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn transpose(rows: [__m256; 8]) -> [__m256; 8] {
        let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let (u0, u1) = (
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
        );
        let (u2, u3) = (
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        );
        let (u4, u5) = (
            _mm256_shuffle_ps::<0x44>(t4, t6),
            _mm256_shuffle_ps::<0xEE>(t4, t6),
        );
        let (u6, u7) = (
            _mm256_shuffle_ps::<0x44>(t5, t7),
            _mm256_shuffle_ps::<0xEE>(t5, t7),
        );
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }
}

/// The routines above on sixteen lanes: the exponentials and SiLU element by element (the same
/// operations, so the same bits), [`super::exp_lane_sums`]' sums still added eight lanes at a
/// time in the same order, the maximum in four registers (a maximum does not depend on the
/// order it is taken in), and the first index of a value.
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// [`super::exp_lane_sums`]: sixteen exponentials at a time, added to the eight lanes'
    /// sums as two chunks of eight, in order.
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F, DQ).
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    pub unsafe fn exp_lane_sums(row: &[f32], max: f32) -> [f32; 8] {
        assert!(row.len().is_multiple_of(8), "whole chunks of 8 only");
        let wide_max = _mm512_set1_ps(max);
        let mut sums = _mm256_setzero_ps();
        let mut pairs = row.chunks_exact(16);
        for pair in pairs.by_ref() {
            let x = _mm512_sub_ps(_mm512_loadu_ps(pair.as_ptr()), wide_max);
            let e = exp_nonpositive(x);
            sums = _mm256_add_ps(sums, _mm512_castps512_ps256(e));
            sums = _mm256_add_ps(sums, _mm512_extractf32x8_ps::<1>(e));
        }
        let rest = pairs.remainder();
        if !rest.is_empty() {
            let x = _mm256_sub_ps(_mm256_loadu_ps(rest.as_ptr()), _mm256_set1_ps(max));
            sums = _mm256_add_ps(sums, super::avx2::exp_nonpositive(x));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sums);
        lanes
    }

    /// [`super::exp_shifted_in_place`], sixteen at a time and the tail masked (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn exp_shifted_in_place(scores: &mut [f32], max: f32) -> f32 {
        let wide_max = _mm512_set1_ps(max);
        for chunk in scores.chunks_mut(16) {
            let mask = lanes_mask(chunk.len());
            let x = _mm512_maskz_loadu_ps(mask, chunk.as_ptr());
            let e = exp_nonpositive(_mm512_sub_ps(x, wide_max));
            _mm512_mask_storeu_ps(chunk.as_mut_ptr(), mask, e);
        }
        scores.iter().fold(0.0, |sum, &s| sum + s)
    }

    /// [`super::silu`], sixteen values at a time and the tail masked (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn silu(x: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert_eq!(x.len(), out.len(), "silu: input and output lengths differ");
        for (o, v) in out.chunks_mut(16).zip(x.chunks(16)) {
            let mask = lanes_mask(v.len());
            let v = _mm512_maskz_loadu_ps(mask, v.as_ptr());
            // -v by its sign bit, as the scalar negation.
            let e = exp(_mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(v),
                _mm512_set1_epi32(i32::MIN),
            )));
            let y = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0), e));
            _mm512_mask_storeu_ps(o.as_mut_ptr().cast::<f32>(), mask, y);
        }
    }

    /// [`super::row_max`]: four registers of sixteen maxima, then the tail.
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn row_max(row: &[f32]) -> f32 {
        let mut acc = [_mm512_set1_ps(f32::NEG_INFINITY); 4];
        let mut blocks = row.chunks_exact(64);
        for block in blocks.by_ref() {
            for (j, acc) in acc.iter_mut().enumerate() {
                // `max_ps(a, b)` is `a > b ? a : b`: a NaN in `a` leaves the maximum as it was.
                *acc = _mm512_max_ps(_mm512_loadu_ps(block.as_ptr().add(16 * j)), *acc);
            }
        }
        let both = _mm512_max_ps(_mm512_max_ps(acc[0], acc[1]), _mm512_max_ps(acc[2], acc[3]));
        let max = _mm512_reduce_max_ps(both);
        blocks.remainder().iter().fold(max, |m, &v| m.max(v))
    }

    /// The first index of `value` in `row` (0 if it is not there).
    ///
    /// # Safety
    /// The CPU must have AVX-512 (F).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn first_index_of(row: &[f32], value: f32) -> usize {
        let wide = _mm512_set1_ps(value);
        for (c, chunk) in row.chunks(16).enumerate() {
            let mask = lanes_mask(chunk.len());
            let x = _mm512_maskz_loadu_ps(mask, chunk.as_ptr());
            let equal = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(mask, x, wide);
            if equal != 0 {
                return c * 16 + equal.trailing_zeros() as usize;
            }
        }
        0
    }

    /// The first `len` (≤ 16) lanes.
    #[inline(always)]
    fn lanes_mask(len: usize) -> __mmask16 {
        (((1u32 << len) - 1) & 0xFFFF) as __mmask16
    }

    /// [`super::exp_nonpositive`] on sixteen lanes, operation for operation.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn exp_nonpositive(x: __m512) -> __m512 {
        let floor = _mm512_set1_ps(super::EXP_FLOOR);
        // NaN in `x` passes through `max_ps(floor, x)`, as in the scalar `if`.
        let y = exp_reduced(_mm512_max_ps(floor, x));
        // 0 where x < -87; elsewhere (NaN included) y.
        _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, floor), y)
    }

    /// [`super::exp`] on sixteen lanes, operation for operation.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn exp(x: __m512) -> __m512 {
        let ceiling = _mm512_set1_ps(super::EXP_CEILING);
        let y = exp_nonpositive(_mm512_min_ps(ceiling, x));
        let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, ceiling);
        _mm512_mask_blend_ps(above, y, _mm512_set1_ps(f32::INFINITY))
    }

    /// [`super::exp_reduced`] on sixteen lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn exp_reduced(x: __m512) -> __m512 {
        use super::{EXP_POLY, LN2_HI, LN2_LO, ROUND};
        let round = _mm512_set1_ps(ROUND);
        let shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), round);
        let n = _mm512_sub_ps(shifted, round);
        let n_int = _mm512_sub_epi32(
            _mm512_castps_si512(shifted),
            _mm512_set1_epi32(ROUND.to_bits() as i32),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(EXP_POLY[0]);
        for &c in &EXP_POLY[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let poly = _mm512_add_ps(
            _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r),
            _mm512_set1_ps(1.0),
        );
        let scale = _mm512_slli_epi32::<23>(_mm512_add_epi32(n_int, _mm512_set1_epi32(127)));
        _mm512_mul_ps(poly, _mm512_castsi512_ps(scale))
    }
}

/// A deterministic spread of values in [-1, 1) for kernel tests.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(977);
            ((h >> 9) % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    #[test]
    fn dots_are_dot_bit_for_bit() {
        for (rows, hd) in [
            (0, 4),
            (1, 64),
            (7, 64),
            (9, 13),
            (4, 5),
            (6, 3),
            (11, 16),
            (5, 8),
            (16, 64),
            (23, 64),
            (8, 8),
        ] {
            let q = test_values(hd, 1);
            let keys = test_values(rows * hd, 2);
            let mut got = vec![f32::NAN; rows];
            dots(&q, &keys, &mut got);
            let want: Vec<u32> = keys
                .chunks_exact(hd)
                .map(|k| dot(&q, k).to_bits())
                .collect();
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{rows} keys of {hd}");
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                let mut wide = vec![f32::NAN; rows];
                // SAFETY: the features are present.
                unsafe { avx2::dots(&q, &keys, &mut wide) };
                let wide: Vec<u32> = wide.iter().map(|v| v.to_bits()).collect();
                assert_eq!(wide, want, "AVX2: {rows} keys of {hd}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_exponentials_have_the_scalar_bits() {
        if !has_avx2() {
            return;
        }
        // A sweep of [-100, 0] (steps of about 2^-12 near 0, coarser below) and the edges.
        let mut xs: Vec<f32> = Vec::new();
        let mut x = 0.0f32;
        while x > -100.0 {
            xs.push(x);
            x -= 0.000_244 + x.abs() * 1e-4;
        }
        xs.extend([
            -87.0,
            -87.000_01,
            -86.999_99,
            -0.0,
            -f32::MIN_POSITIVE,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            1.0,
            f32::INFINITY,
        ]);
        let want: Vec<u32> = xs.iter().map(|&x| exp_nonpositive(x).to_bits()).collect();
        // In place, in chunks of 8 and the scalar tail after them.
        let mut got = xs.clone();
        // SAFETY: the features are present.
        unsafe { avx2::exp_shifted_in_place(&mut got, 0.0) };
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
        // Summed by lane: one chunk at a time, each lane is one exponential.
        for (chunk, want) in xs.chunks_exact(8).zip(want.chunks_exact(8)) {
            // SAFETY: the features are present.
            let got = unsafe { avx2::exp_lane_sums(chunk, 0.0) };
            assert_eq!(got.map(f32::to_bits).as_slice(), want, "{chunk:?}");
        }
        // The whole line and SiLU: both signs, past the ceiling, in chunks and a tail.
        let mut wide: Vec<f32> = xs.iter().flat_map(|&x| [x, -x]).collect();
        wide.extend([88.36, 88.38, 88.72, 89.0, -88.5, 1e30, -1e30]);
        let want: Vec<u32> = wide.iter().map(|&x| exp(x).to_bits()).collect();
        for (chunk, want) in wide.chunks_exact(8).zip(want.chunks_exact(8)) {
            // SAFETY: the features are present.
            let got: [f32; 8] = unsafe {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(
                    lanes.as_mut_ptr(),
                    avx2::exp(_mm256_loadu_ps(chunk.as_ptr())),
                );
                lanes
            };
            assert_eq!(got.map(f32::to_bits).as_slice(), want, "{chunk:?}");
        }
        let want: Vec<u32> = wide
            .iter()
            .map(|&v| (v / (1.0 + exp(-v))).to_bits())
            .collect();
        let mut got = vec![MaybeUninit::new(f32::NAN); wide.len()];
        // SAFETY: the features are present.
        unsafe { avx2::silu(&wide, &mut got) };
        // SAFETY: initialized above (and each overwritten by silu).
        let got: Vec<u32> = got
            .iter()
            .map(|v| unsafe { v.assume_init() }.to_bits())
            .collect();
        assert_eq!(got, want);
        // Long rows: the sums' order.
        for (len, seed) in [(8, 1), (40, 3), (59_512, 4)] {
            let row: Vec<f32> = test_values(len, seed).iter().map(|v| v * 40.0).collect();
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // SAFETY: the features are present.
            let got = unsafe { avx2::exp_lane_sums(&row, max) };
            let want = exp_lane_sums_portable(&row, max);
            assert_eq!(
                got.map(f32::to_bits),
                want.map(f32::to_bits),
                "length {len}"
            );
        }
        if !has_avx512() {
            return;
        }
        // AVX-512: the same bits as the scalar routines, in whole registers and masked tails.
        let mut got = xs.clone();
        // SAFETY: the features are present.
        unsafe { avx512::exp_shifted_in_place(&mut got, 0.0) };
        let scalar: Vec<u32> = xs.iter().map(|&x| exp_nonpositive(x).to_bits()).collect();
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), scalar);
        let mut got = vec![MaybeUninit::new(f32::NAN); wide.len()];
        // SAFETY: the features are present.
        unsafe { avx512::silu(&wide, &mut got) };
        // SAFETY: initialized above (and each overwritten by silu).
        let got: Vec<u32> = got
            .iter()
            .map(|v| unsafe { v.assume_init() }.to_bits())
            .collect();
        assert_eq!(got, want, "AVX-512 SiLU");
        for (len, seed) in [(8, 1), (16, 2), (40, 3), (59_512, 4)] {
            let row: Vec<f32> = test_values(len, seed).iter().map(|v| v * 40.0).collect();
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // SAFETY: the features are present.
            let got = unsafe { avx512::exp_lane_sums(&row, max) };
            let want = exp_lane_sums_portable(&row, max);
            assert_eq!(
                got.map(f32::to_bits),
                want.map(f32::to_bits),
                "AVX-512, length {len}"
            );
        }
    }

    /// The scalar choice the vector `argmax` replaces: the first index of the largest score,
    /// a NaN replaced by the first number after it.
    fn argmax_one_pass(scores: &[f32]) -> usize {
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[best] || (scores[best].is_nan() && !s.is_nan()) {
                best = i;
            }
        }
        best
    }

    #[test]
    fn argmax_and_row_max_agree_with_the_scalar_loops_on_every_variant() {
        let nan = f32::NAN;
        let inf = f32::INFINITY;
        let mut rows: Vec<Vec<f32>> = vec![
            vec![],
            vec![nan],
            vec![nan, nan, 1.0, 3.0, 3.0],
            vec![-inf, -inf],
            vec![nan, -inf, nan],
            vec![1.0, inf, 2.0, inf],
            vec![-0.0, 0.0, -1.0],
        ];
        for (len, seed) in [(15, 1), (16, 2), (17, 3), (64, 4), (129, 5), (59_514, 6)] {
            let mut row = test_values(len, seed);
            // A tie at the end and NaNs on the way.
            row[len - 1] = 1.0;
            row[len / 2] = 1.0;
            row[len / 3] = nan;
            rows.push(row.clone());
            row[len - 1] = 2.0;
            rows.push(row);
        }
        for row in &rows {
            let want_max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let want_index = argmax_one_pass(row);
            assert_eq!(row_max_portable(row).to_bits(), want_max.to_bits());
            assert_eq!(argmax(row), want_index, "{:?}", &row[..row.len().min(8)]);
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx2() {
                    // SAFETY: the features are present.
                    let max = unsafe { avx2::row_max(row) };
                    assert_eq!(max.to_bits(), want_max.to_bits());
                }
                if has_avx512() {
                    // SAFETY: the features are present.
                    let max = unsafe { avx512::row_max(row) };
                    assert_eq!(max, want_max, "{:?}", &row[..row.len().min(8)]);
                    // SAFETY: the features are present.
                    let index = unsafe { avx512::first_index_of(row, max) };
                    assert_eq!(index, want_index);
                }
            }
            assert_eq!(
                row.iter().position(|&x| x == want_max).unwrap_or(0),
                want_index
            );
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_zero_below_the_normal_range() {
        let within_two_ulp = |f: fn(f32) -> f32, highest: f32| {
            let mut x = -87.0f32;
            while x <= highest {
                let (got, want) = (f(x), x.exp());
                let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
                assert!(ulp <= 2, "exp({x}) = {got}, libm {want}");
                x += 0.0137;
            }
        };
        within_two_ulp(exp_nonpositive, 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
        // The whole line: the same within the range, +inf past it.
        within_two_ulp(exp, 88.37);
        assert_eq!(exp(88.4), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
    }
}
