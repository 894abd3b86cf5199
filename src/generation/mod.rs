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

/// `torch.log_softmax` over one row.
fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}
