//! Generation with transformers' semantics: greedy search (`num_beams == 1`) and beam
//! search, both over a batch of encoded inputs at once.

pub mod beam;
pub mod config;
pub mod greedy;
pub mod processors;

use candle_core::Tensor;

pub use config::{EarlyStopping, GenerationOverrides, GenerationSettings, ModelDefaults};

use crate::error::Result;
use crate::models::{Encoded, Seq2Seq};

/// Generates one sequence per encoded input (decoder start token first, EOS last when the
/// model finished before `max_length`).
pub fn generate(
    model: &dyn Seq2Seq,
    encoded: &Encoded,
    settings: &GenerationSettings,
) -> Result<Vec<Vec<u32>>> {
    if settings.num_beams == 1 {
        greedy::generate(model, encoded, settings)
    } else {
        beam::generate(model, encoded, settings)
    }
}

/// Runs the decoder on the last token of each row and returns its logits as rows of f32.
fn step_logits(
    model: &dyn Seq2Seq,
    last_tokens: &[u32],
    state: &mut crate::models::DecoderState,
    device: &candle_core::Device,
) -> Result<Vec<Vec<f32>>> {
    let tokens = Tensor::new(last_tokens, device)?;
    Ok(model.decode_step(&tokens, state)?.to_vec2::<f32>()?)
}

/// The first index of the largest score, as `torch.argmax` picks it.
fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] || (scores[best].is_nan() && !s.is_nan()) {
            best = i;
        }
    }
    best as u32
}

/// `torch.log_softmax` over one row (a whole vocabulary, twice per step and row: it is
/// written to vectorize, and compiled for AVX2 + FMA where the CPU has them).
fn log_softmax(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features are present.
            return unsafe { log_softmax_avx2(row) };
        }
    }
    log_softmax_portable(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_softmax_avx2(row: &mut [f32]) {
    log_softmax_portable(row)
}

#[inline(always)]
fn log_softmax_portable(row: &mut [f32]) {
    // Eight independent lanes: the compiler keeps them in one vector register.
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..8 {
            lanes[i] = lanes[i].max(chunk[i]);
        }
    }
    let max = tail
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for i in 0..8 {
            sums[i] += exp_nonpositive(chunk[i] - max);
        }
    }
    let sum: f32 =
        tail.iter().map(|&x| exp_nonpositive(x - max)).sum::<f32>() + sums.iter().sum::<f32>();
    let log_sum = sum.ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// `e^x` for `x ≤ 0` (a score minus its row's maximum) within 2 ulp, without a call, so that
/// loops over it vectorize: `2^n · p(r)` with `n = round(x / ln 2)` and Cephes' polynomial.
/// Below -87 (where e^x is under f32's normal range) it is 0; NaN stays NaN.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and removing it rounds
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = if x < -87.0 { -87.0 } else { x };
    let n = (xc * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = (p * r * r + r + 1.0) * f32::from_bits(((n as i32 + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn log_softmax_matches_the_f64_formula_masked_entries_included() {
        let mut row: Vec<f32> = (0..1003)
            .map(|i| ((i * 37) % 101) as f32 / 7.0 - 5.0)
            .collect();
        row[5] = f32::NEG_INFINITY;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum = row
            .iter()
            .map(|&x| (x as f64 - max).exp())
            .sum::<f64>()
            .ln();
        let want: Vec<f64> = row.iter().map(|&x| x as f64 - max - log_sum).collect();
        log_softmax(&mut row);
        assert_eq!(row[5], f32::NEG_INFINITY);
        for (g, w) in row.iter().zip(&want) {
            if w.is_finite() {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }
}
