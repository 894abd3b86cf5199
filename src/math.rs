//! Small numeric routines written so that the compiler vectorizes the loops calling them.

/// `e^x` for `x ≤ 0` (a score minus its row's maximum) within 2 ulp, without a call, so that
/// loops over it vectorize: `2^n · p(r)` with `n = round(x / ln 2)` and Cephes' polynomial.
/// Below -87 (where e^x is under f32's normal range) it is 0; NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and removing it rounds
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = if x < -87.0 { -87.0 } else { x };
    let shifted = xc * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // n as an integer, read from the low bits of `shifted`: a float-to-int `as` cast saturates
    // and maps NaN to 0, which the compiler does with scalar code, one lane at a time.
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = (p * r * r + r + 1.0) * f32::from_bits(((n_int + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

/// Replaces each score by `e^(score - max)` and returns their sum, added in order. Two loops:
/// in one, the running sum would keep the exponentials from vectorizing.
#[inline(always)]
pub fn exp_shifted_in_place(scores: &mut [f32], max: f32) -> f32 {
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

/// [`dots`] in AVX2 registers for key widths that are a multiple of 8 (the compiler split the
/// portable loop into two-value loads); other widths go to [`dots`]. Same arithmetic, same bits.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dots(q: &[f32], keys: &[f32], out: &mut [f32]) {
        const ROWS: usize = 4;
        let hd = q.len();
        if hd == 0 || !hd.is_multiple_of(8) {
            return super::dots(q, keys, out);
        }
        assert_eq!(
            keys.len(),
            out.len() * hd,
            "keys are not [out.len(), q.len()]"
        );
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
            for (r, acc) in acc.into_iter().enumerate() {
                out[b * ROWS + r] = finish(acc);
            }
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
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                let mut wide = vec![f32::NAN; rows];
                // SAFETY: the features are present.
                unsafe { avx2::dots(&q, &keys, &mut wide) };
                let wide: Vec<u32> = wide.iter().map(|v| v.to_bits()).collect();
                assert_eq!(wide, want, "AVX2: {rows} keys of {hd}");
            }
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_and_zero_below_the_normal_range() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_nonpositive(x), x.exp());
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, libm {want}");
            x += 0.0137;
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }
}
