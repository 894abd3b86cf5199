//! Logits processors: one rule each, applied in transformers' order to one row of scores
//! (raw logits for greedy search, log-probabilities for beam search).

use super::config::GenerationSettings;

pub trait LogitsProcessor: Send + Sync {
    /// Rewrites `scores` [V] for the row whose tokens so far are `sequence` (start token included).
    fn process(&self, sequence: &[u32], scores: &mut [f32]);
}

/// The processors `settings` switch on, in the order `generate()` applies them.
pub fn processors_for(settings: &GenerationSettings) -> Vec<Box<dyn LogitsProcessor>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if settings.repetition_penalty != 1.0 {
        list.push(Box::new(RepetitionPenalty(
            settings.repetition_penalty as f32,
        )));
    }
    if settings.no_repeat_ngram_size > 0 {
        list.push(Box::new(NoRepeatNgram(settings.no_repeat_ngram_size)));
    }
    if !settings.bad_words_ids.is_empty() {
        list.push(Box::new(BadWords(settings.bad_words_ids.clone())));
    }
    if settings.min_length > 0 {
        list.push(Box::new(MinLength {
            min_length: settings.min_length,
            eos: settings.eos_token_ids.clone(),
        }));
    }
    if let Some(bos) = settings.forced_bos_token_id {
        list.push(Box::new(ForcedToken {
            at_length: 1,
            tokens: vec![bos],
        }));
    }
    if !settings.forced_eos_token_id.is_empty() {
        list.push(Box::new(ForcedToken {
            at_length: settings.max_length - 1,
            tokens: settings.forced_eos_token_id.clone(),
        }));
    }
    if settings.renormalize_logits {
        list.push(Box::new(Renormalize));
    }
    list
}

/// `renormalize_logits`: log-softmax again after the other processors.
pub struct Renormalize;

impl LogitsProcessor for Renormalize {
    fn process(&self, _sequence: &[u32], scores: &mut [f32]) {
        super::log_softmax(scores);
    }
}

/// Divides positive and multiplies negative scores of every token already in the sequence.
pub struct RepetitionPenalty(pub f32);

impl LogitsProcessor for RepetitionPenalty {
    fn process(&self, sequence: &[u32], scores: &mut [f32]) {
        let mut seen = vec![false; scores.len()];
        for &token in sequence {
            if let Some(slot) = seen.get_mut(token as usize) {
                *slot = true;
            }
        }
        for (score, _) in scores.iter_mut().zip(seen).filter(|(_, seen)| *seen) {
            *score = if *score < 0.0 {
                *score * self.0
            } else {
                *score / self.0
            };
        }
    }
}

/// Bans every token that would repeat an n-gram already in the sequence.
pub struct NoRepeatNgram(pub usize);

impl LogitsProcessor for NoRepeatNgram {
    fn process(&self, sequence: &[u32], scores: &mut [f32]) {
        let n = self.0;
        if sequence.len() < n {
            return;
        }
        let prefix = &sequence[sequence.len() + 1 - n..];
        for window in sequence.windows(n) {
            if &window[..n - 1] == prefix {
                ban(scores, window[n - 1]);
            }
        }
    }
}

/// `bad_words_ids`: a one-token word is always banned; a longer one bans its last token
/// right after its other tokens.
pub struct BadWords(pub Vec<Vec<u32>>);

impl LogitsProcessor for BadWords {
    fn process(&self, sequence: &[u32], scores: &mut [f32]) {
        for word in &self.0 {
            let (last, before) = match word.split_last() {
                Some(split) => split,
                None => continue,
            };
            if sequence.ends_with(before) {
                ban(scores, *last);
            }
        }
    }
}

/// Forbids EOS while the sequence is shorter than `min_length`.
pub struct MinLength {
    pub min_length: usize,
    pub eos: Vec<u32>,
}

impl LogitsProcessor for MinLength {
    fn process(&self, sequence: &[u32], scores: &mut [f32]) {
        if sequence.len() < self.min_length {
            for &eos in &self.eos {
                ban(scores, eos);
            }
        }
    }
}

/// At one length, leaves only `tokens` possible (score 0): forced BOS after the start token,
/// forced EOS at the last position.
pub struct ForcedToken {
    pub at_length: usize,
    pub tokens: Vec<u32>,
}

impl LogitsProcessor for ForcedToken {
    fn process(&self, sequence: &[u32], scores: &mut [f32]) {
        if sequence.len() == self.at_length {
            scores.fill(f32::NEG_INFINITY);
            for &token in &self.tokens {
                if let Some(score) = scores.get_mut(token as usize) {
                    *score = 0.0;
                }
            }
        }
    }
}

fn ban(scores: &mut [f32], token: u32) {
    if let Some(score) = scores.get_mut(token as usize) {
        *score = f32::NEG_INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_repeat_ngram_bans_completions_of_seen_bigrams() {
        let mut scores = vec![0.0; 6];
        // bigrams seen: (1,2) (2,3) (3,1); the suffix (1) would complete (1,2) again.
        NoRepeatNgram(2).process(&[1, 2, 3, 1], &mut scores);
        assert_eq!(scores, vec![0.0, 0.0, f32::NEG_INFINITY, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let mut scores = vec![2.0, -2.0, 2.0];
        RepetitionPenalty(2.0).process(&[0, 1, 1], &mut scores);
        assert_eq!(scores, vec![1.0, -4.0, 2.0]);
    }

    #[test]
    fn bad_words_ban_single_tokens_and_sequence_endings() {
        let mut scores = vec![0.0; 5];
        BadWords(vec![vec![4], vec![1, 2]]).process(&[0, 1], &mut scores);
        assert_eq!(scores[4], f32::NEG_INFINITY);
        assert_eq!(scores[2], f32::NEG_INFINITY);
        let mut scores = vec![0.0; 5];
        BadWords(vec![vec![1, 2]]).process(&[0, 3], &mut scores);
        assert_eq!(scores[2], 0.0);
    }

    #[test]
    fn forced_eos_only_at_the_last_position() {
        let forced = ForcedToken {
            at_length: 3,
            tokens: vec![0],
        };
        let mut scores = vec![1.0, 2.0];
        forced.process(&[5, 6], &mut scores);
        assert_eq!(scores, vec![1.0, 2.0]);
        forced.process(&[5, 6, 7], &mut scores);
        assert_eq!(scores, vec![0.0, f32::NEG_INFINITY]);
    }
}
