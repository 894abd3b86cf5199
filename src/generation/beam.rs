//! Beam search with the exact arithmetic of transformers' vectorised `_beam_search`
//! (f32 scores, the same -1e9 sentinels, the same candidate counts and tie order), run over
//! a batch of inputs: every input's beams are rows of one decoder batch.

use rayon::prelude::*;

use super::config::{EarlyStopping, GenerationSettings};
use super::processors::{processors_for, LogitsProcessor};
use super::{log_softmax_of, with_step_logits, Hypothesis};
use crate::error::Result;
use crate::models::{Encoded, Seq2Seq};

/// transformers' stand-in for "impossible" scores.
const NEG: f32 = -1.0e9;

/// The search state of one input.
struct Sentence {
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    /// The best `num_beams` finished hypotheses so far: (tokens, score, is a real hypothesis).
    finished: Vec<(Vec<u32>, f32, bool)>,
    /// Whether a running beam may still beat the finished ones (transformers' early-stop heuristic).
    can_improve: bool,
    done: bool,
}

struct Candidate {
    beam: usize,
    token: u32,
    score: f32,
    hits_stop: bool,
}

pub fn generate(
    model: &dyn Seq2Seq,
    encoded: &Encoded,
    settings: &GenerationSettings,
) -> Result<Vec<Vec<Hypothesis>>> {
    let device = encoded.hidden.device();
    let batch = encoded.hidden.dim(0)?;
    let beams = settings.num_beams;
    let processors = processors_for(settings);
    let start = vec![settings.decoder_start_token_id];
    let mut sentences: Vec<Sentence> = (0..batch)
        .map(|_| Sentence {
            running: vec![start.clone(); beams],
            running_scores: (0..beams).map(|b| if b == 0 { 0.0 } else { NEG }).collect(),
            finished: vec![(start.clone(), NEG, false); beams],
            can_improve: true,
            done: false,
        })
        .collect();
    let keep = (1 + settings.eos_token_ids.len()).max(2) * beams;
    let mut state = model.start_decoding(encoded, beams)?;
    // Inputs whose beams are rows of the decoder batch, in row order.
    let mut active: Vec<usize> = (0..batch).collect();
    let mut cur_len = 1;
    while !active.is_empty() {
        let last: Vec<u32> = active
            .iter()
            .flat_map(|&s| {
                sentences[s]
                    .running
                    .iter()
                    .map(|seq| *seq.last().unwrap_or(&0))
            })
            .collect();
        // Each input's beams are `beams` consecutive rows; inputs are stepped in parallel.
        let origins: Vec<Vec<usize>> =
            with_step_logits(model, &last, &mut state, device, |logits| {
                let mut rows = logits.into_iter();
                let mut work: Vec<(&mut Sentence, Vec<&[f32]>)> = sentences
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| active.binary_search(i).is_ok())
                    .map(|(_, sentence)| (sentence, rows.by_ref().take(beams).collect()))
                    .collect();
                work.par_iter_mut()
                    .map(|(sentence, logits)| {
                        step_sentence(sentence, logits, &processors, settings, keep, cur_len)
                    })
                    .collect()
            })?;
        let mut next_rows: Vec<u32> = Vec::with_capacity(active.len() * beams);
        let mut still_active = Vec::with_capacity(active.len());
        for (position, (&s, origins)) in active.iter().zip(&origins).enumerate() {
            if !sentences[s].done {
                still_active.push(s);
                next_rows.extend(origins.iter().map(|&b| (position * beams + b) as u32));
            }
        }
        if still_active.len() == active.len() {
            state.reorder_beams(&next_rows)?;
        } else if !still_active.is_empty() {
            state.select_rows(&next_rows)?;
        }
        active = still_active;
        cur_len += 1;
    }
    // The finished hypotheses are kept sorted best first, as transformers returns them.
    let returned = settings.num_return_sequences;
    Ok(sentences
        .into_iter()
        .map(|s| {
            s.finished
                .into_iter()
                .take(returned)
                .map(|(ids, score, _)| Hypothesis { ids, score })
                .collect()
        })
        .collect())
}

/// One step for one input; returns, for each new running beam, the beam it extends.
fn step_sentence(
    sentence: &mut Sentence,
    logits: &[&[f32]],
    processors: &[Box<dyn LogitsProcessor>],
    settings: &GenerationSettings,
    keep: usize,
    cur_len: usize,
) -> Vec<usize> {
    let beams = settings.num_beams;
    let vocab = logits.first().map_or(0, |row| row.len());
    // Top `keep` continuations over all beams × vocabulary, accumulated log-probabilities.
    let mut best = TopK::new(keep);
    for (b, (logits, sequence)) in logits.iter().zip(&sentence.running).enumerate() {
        let mut row = log_softmax_of(logits);
        for p in processors {
            p.process(sequence, &mut row);
        }
        best.offer_row(&row, sentence.running_scores[b], b * vocab);
    }
    let candidates: Vec<Candidate> = best
        .into_sorted()
        .into_iter()
        .map(|(score, index)| {
            let token = (index % vocab) as u32;
            Candidate {
                beam: index / vocab,
                token,
                score,
                hits_stop: settings.eos_token_ids.contains(&token)
                    || cur_len + 1 >= settings.max_length,
            }
        })
        .collect();

    // Running beams for the next step: the best candidates that did not stop.
    let running_choice = top_k(
        candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (c.score + if c.hits_stop { NEG } else { 0.0 }, i))
            .collect(),
        beams,
    );
    let origins: Vec<usize> = running_choice
        .iter()
        .map(|&(_, i)| candidates[i].beam)
        .collect();
    let new_running: Vec<Vec<u32>> = running_choice
        .iter()
        .map(|&(_, i)| {
            let mut seq = sentence.running[candidates[i].beam].clone();
            seq.push(candidates[i].token);
            seq
        })
        .collect();
    let new_running_scores: Vec<f32> = running_choice.iter().map(|&(score, _)| score).collect();

    // Finished hypotheses: candidates among the top `num_beams` that stopped, length-penalised.
    let generated = (cur_len + 1 - 1) as f64;
    let denominator = generated.powf(settings.length_penalty) as f32;
    let beams_full =
        sentence.finished.iter().all(|f| f.2) && settings.early_stopping == EarlyStopping::Always;
    let mut merged: Vec<(Vec<u32>, f32, bool)> = std::mem::take(&mut sentence.finished);
    for (i, c) in candidates.iter().enumerate() {
        let just_finished = c.hits_stop && i < beams;
        let mut score = c.score / denominator;
        score += if beams_full { NEG } else { 0.0 };
        score += if sentence.can_improve { 0.0 } else { NEG };
        score += if just_finished { 0.0 } else { NEG };
        let mut seq = sentence.running[c.beam].clone();
        seq.push(c.token);
        merged.push((seq, score, just_finished));
    }
    let best = top_k(
        merged.iter().enumerate().map(|(i, m)| (m.1, i)).collect(),
        beams,
    );
    let mut slots: Vec<Option<(Vec<u32>, f32, bool)>> = merged.into_iter().map(Some).collect();
    sentence.finished = best.iter().filter_map(|&(_, i)| slots[i].take()).collect();
    sentence.running = new_running;
    sentence.running_scores = new_running_scores;

    // Early-stop heuristic, evaluated at the new length.
    let new_len = cur_len + 1;
    let hypothetical =
        if settings.early_stopping == EarlyStopping::Never && settings.length_penalty > 0.0 {
            settings.max_length - 1
        } else {
            new_len - 1
        };
    let best_possible =
        sentence.running_scores[0] / (hypothetical as f64).powf(settings.length_penalty) as f32;
    let worst_finished = sentence
        .finished
        .iter()
        .map(|f| f.1)
        .fold(f32::INFINITY, f32::min);
    let improvable = sentence
        .finished
        .iter()
        .any(|f| best_possible > if f.2 { worst_finished } else { NEG });
    sentence.can_improve &= improvable;

    let all_stopped = candidates.iter().all(|c| c.hits_stop);
    let full =
        sentence.finished.iter().all(|f| f.2) && settings.early_stopping == EarlyStopping::Always;
    sentence.done = !sentence.can_improve || full || all_stopped;
    origins
}

/// The `k` largest (score, index) pairs of a stream offered in increasing index order, kept
/// sorted as [`top_k`] sorts them, without collecting the stream.
struct TopK {
    k: usize,
    /// Sorted best first.
    items: Vec<(f32, usize)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, score: f32, index: usize) {
        // Indices come in increasing order, so an equal score ranks after those kept.
        if self.items.len() == self.k {
            match self.items.last() {
                Some(worst) if score.total_cmp(&worst.0).is_gt() => {}
                _ => return,
            }
        }
        let at = self
            .items
            .partition_point(|kept| kept.0.total_cmp(&score).is_ge());
        self.items.insert(at, (score, index));
        self.items.truncate(self.k);
    }

    /// `offer(row[t] + base, first_index + t)` for each t in order. Eight scores at a time are
    /// first checked against the worst kept one in a loop that vectorizes: nearly all of a
    /// vocabulary falls below it, and the chunks that might not are offered one by one.
    fn offer_row(&mut self, row: &[f32], base: f32, first_index: usize) {
        const LANES: usize = 8;
        for (c, chunk) in row.chunks(LANES).enumerate() {
            if let (true, Some(&(worst, _))) = (self.items.len() == self.k, self.items.last()) {
                // `>=` and NaN let through everything `offer`'s total order might keep.
                let mut maybe = false;
                for &lp in chunk {
                    let score = lp + base;
                    maybe |= score >= worst || score.is_nan();
                }
                if !maybe {
                    continue;
                }
            }
            for (t, &lp) in chunk.iter().enumerate() {
                self.offer(lp + base, first_index + c * LANES + t);
            }
        }
    }

    fn into_sorted(self) -> Vec<(f32, usize)> {
        self.items
    }
}

/// The `k` largest (score, index) pairs, largest first; equal scores keep index order.
fn top_k(mut items: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    let by_score = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if items.len() > k {
        items.select_nth_unstable_by(k, by_score);
        items.truncate(k);
    }
    items.sort_by(by_score);
    items
}

#[cfg(test)]
mod tests {
    use super::{top_k, TopK};

    #[test]
    fn streaming_top_k_equals_sorting_everything_ties_included() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for k in [1, 2, 8, 12] {
            // Few distinct values, so that ties are common.
            let items: Vec<(f32, usize)> = (0..500)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed % 7) as f32 - 3.0, i)
                })
                .collect();
            let mut stream = TopK::new(k);
            for &(score, index) in &items {
                stream.offer(score, index);
            }
            assert_eq!(stream.into_sorted(), top_k(items, k), "k = {k}");
        }
    }

    #[test]
    fn offering_a_row_equals_offering_each_score_signed_zeros_and_nan_included() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut row: Vec<f32> = (0..203)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 9) as f32 - 6.0
            })
            .collect();
        row[50] = -0.0;
        row[51] = 0.0;
        row[120] = f32::NAN;
        row[121] = f32::NEG_INFINITY;
        for k in [1, 3, 8] {
            for base in [0.0, -0.5] {
                let (mut by_row, mut one_by_one) = (TopK::new(k), TopK::new(k));
                by_row.offer_row(&row[..100], base, 0);
                by_row.offer_row(&row[100..], base, 100);
                for (t, &lp) in row.iter().enumerate() {
                    one_by_one.offer(lp + base, t);
                }
                let (a, b) = (by_row.into_sorted(), one_by_one.into_sorted());
                let bits = |v: Vec<(f32, usize)>| -> Vec<(u32, usize)> {
                    v.into_iter().map(|(s, i)| (s.to_bits(), i)).collect()
                };
                assert_eq!(bits(a), bits(b), "k = {k}, base = {base}");
            }
        }
    }
}
