//! Generation with transformers' semantics: greedy search (`num_beams == 1`) and beam
//! search, both over a batch of encoded inputs at once.

pub mod beam;
pub mod config;
pub mod greedy;
pub mod processors;

use candle_core::Tensor;

pub use config::{
    EarlyStopping, GenerationOverrides, GenerationSettings, ModelDefaults, MAX_BEAMS,
};

use crate::cpu::math::max_and_log_sum;
use crate::cpu::step_attention::with_values;
use crate::error::Result;
use crate::models::{Encoded, Seq2Seq};

/// One generated sequence (decoder start token first, EOS last when the model finished before
/// `max_length`) and its score, as transformers scores it: beam search's `sequences_scores`
/// (the sum of the log-probabilities over the length penalty); under greedy search the mean of
/// `compute_transition_scores(normalize_logits=True)` over the generated tokens, up to and
/// including the first EOS (a forced token counts, with log-probability 0), computed only
/// with `output_scores` (NaN otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub ids: Vec<u32>,
    pub score: f32,
}

/// Generates `num_return_sequences` hypotheses per encoded input, best first.
pub fn generate(
    model: &dyn Seq2Seq,
    encoded: &Encoded,
    settings: &GenerationSettings,
) -> Result<Vec<Vec<Hypothesis>>> {
    if settings.num_beams == 1 {
        greedy::generate(model, encoded, settings)
    } else {
        beam::generate(model, encoded, settings)
    }
}

/// Runs the decoder on the last token of each row and passes its logits, rows of f32 read in
/// place, to `choose` (which the rows' searches run in, in parallel: copying them out first
/// took one thread a whole pass over rows × vocabulary every step).
fn with_step_logits<R>(
    model: &dyn Seq2Seq,
    last_tokens: &[u32],
    state: &mut crate::models::DecoderState,
    device: &candle_core::Device,
    choose: impl FnOnce(Vec<&[f32]>) -> R,
) -> Result<R> {
    let tokens = Tensor::new(last_tokens, device)?;
    let logits = model
        .decode_step(&tokens, state)?
        .to_device(&candle_core::Device::Cpu)?
        .contiguous()?;
    let vocab = logits.dim(1)?;
    Ok(with_values(&logits, |all| {
        choose(all.chunks_exact(vocab.max(1)).collect())
    })?)
}

/// The first index of the largest score (NaN ignored).
fn argmax(scores: &[f32]) -> u32 {
    crate::cpu::math::argmax(scores) as u32
}

/// `torch.log_softmax` over one row, in place.
fn log_softmax(row: &mut [f32]) {
    let (max, log_sum) = max_and_log_sum(row);
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// `torch.log_softmax` of `row` as a new row.
fn log_softmax_of(row: &[f32]) -> Vec<f32> {
    let (max, log_sum) = max_and_log_sum(row);
    row.iter().map(|&x| x - max - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(log_softmax_of(&row), {
            let mut copy = row.clone();
            log_softmax(&mut copy);
            copy
        });
        log_softmax(&mut row);
        assert_eq!(row[5], f32::NEG_INFINITY);
        for (g, w) in row.iter().zip(&want) {
            if w.is_finite() {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }
}
