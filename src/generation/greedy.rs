//! Greedy search, as transformers' `_sample` with `do_sample=False`: processors on the raw
//! logits, the first maximum wins, a row stops at EOS or `max_length`. With `output_scores`,
//! each chosen token's log-probability (log-softmax of the processed scores) adds to the
//! sequence's mean score: a pass over the vocabulary per row and step, which cost 3-12 % of a
//! batched greedy run, so only when asked.

use rayon::prelude::*;

use super::processors::processors_for;
use super::{argmax, with_step_logits, GenerationSettings, Hypothesis};
use crate::cpu::math::max_and_log_sum;
use crate::error::Result;
use crate::models::{Encoded, Seq2Seq};

pub fn generate(
    model: &dyn Seq2Seq,
    encoded: &Encoded,
    settings: &GenerationSettings,
) -> Result<Vec<Vec<Hypothesis>>> {
    let device = encoded.hidden.device();
    let batch = encoded.hidden.dim(0)?;
    let processors = processors_for(settings);
    let mut sequences: Vec<Vec<u32>> = vec![vec![settings.decoder_start_token_id]; batch];
    // Per row: the sum of the chosen tokens' log-probabilities (f64: a mean of many f32).
    let mut log_probs = vec![0f64; batch];
    // Rows still decoding, by index into `sequences`; finished rows leave the batch, which
    // does not change the others' results (each row only sees itself).
    let mut active: Vec<usize> = (0..batch).collect();
    let mut state = model.start_decoding(encoded, 1)?;
    while !active.is_empty() {
        let last: Vec<u32> = active
            .iter()
            .map(|&i| *sequences[i].last().unwrap_or(&0))
            .collect();
        // Each row's processors and choice are its own: rows run in parallel.
        let chosen: Vec<(u32, f32)> =
            with_step_logits(model, &last, &mut state, device, |logits| {
                active
                    .par_iter()
                    .zip(logits)
                    .map(|(&i, logits)| {
                        let mut scores = logits.to_vec();
                        for p in &processors {
                            p.process(&sequences[i], &mut scores);
                        }
                        let token = argmax(&scores);
                        if !settings.output_scores {
                            return (token, 0.0);
                        }
                        // log_softmax(scores)[token], the maximum: -log Σ exp(x - max).
                        let (max, log_sum) = max_and_log_sum(&scores);
                        (token, scores[token as usize] - max - log_sum)
                    })
                    .collect()
            })?;
        let mut still_active = Vec::with_capacity(active.len());
        let mut kept_rows = Vec::with_capacity(active.len());
        for (row, (&i, (token, log_prob))) in active.iter().zip(chosen).enumerate() {
            sequences[i].push(token);
            log_probs[i] += f64::from(log_prob);
            let finished = settings.eos_token_ids.contains(&token)
                || sequences[i].len() >= settings.max_length;
            if !finished {
                still_active.push(i);
                kept_rows.push(row as u32);
            }
        }
        if still_active.len() < active.len() && !still_active.is_empty() {
            state.select_rows(&kept_rows)?;
        }
        active = still_active;
    }
    Ok(sequences
        .into_iter()
        .zip(log_probs)
        .map(|(ids, sum)| {
            let generated = (ids.len() - 1).max(1) as f64;
            let score = if settings.output_scores {
                (sum / generated) as f32
            } else {
                f32::NAN
            };
            vec![Hypothesis { score, ids }]
        })
        .collect())
}
