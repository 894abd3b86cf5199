//! Word alignment from cross-attention: which source words each target word translates.
//!
//! Words are the white-space-separated runs of a text (punctuation stays with its word), so
//! the indices mean the same thing to every tokenizer and to a reader of the JSON output.
//! Tokens are mapped to words from the tokenizer itself: a source word's token count is that
//! of the word encoded alone (SentencePiece never lets a piece cross white space), a target
//! token's word is where its text starts in the decoded output. Each target token is then
//! aligned to the source token it attends to most (as Bergamot does), and the pairs are
//! lifted to words.

use std::collections::BTreeSet;
use std::ops::Range;

/// The white-space-separated words of `text`, as byte ranges.
pub fn words(text: &str) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(s..text.len());
    }
    words
}

/// The index of the word of `words` that holds byte `at` (or, between words, none).
fn word_at(words: &[Range<usize>], at: usize) -> Option<usize> {
    let i = words.partition_point(|w| w.end <= at);
    words.get(i).filter(|w| w.start <= at).map(|_| i)
}

/// Which source word each source token stands for.
///
/// `lead` tokens come before the text (a language or target token), `trail` after it (`</s>`,
/// a language token); `counts[i]` is the number of tokens word `i` encodes to alone. When
/// the counts do not add up to the tokens in between (a tokenizer that merges across white
/// space), the text's tokens are spread over the words in proportion instead.
pub fn source_token_words(
    counts: &[usize],
    lead: usize,
    trail: usize,
    tokens: usize,
) -> Vec<Option<usize>> {
    let mut map = vec![None; tokens];
    let inner = tokens.saturating_sub(lead + trail);
    if counts.is_empty() || inner == 0 {
        return map;
    }
    if counts.iter().sum::<usize>() == inner {
        let mut t = lead;
        for (word, &count) in counts.iter().enumerate() {
            for slot in &mut map[t..t + count] {
                *slot = Some(word);
            }
            t += count;
        }
    } else {
        for (k, slot) in map[lead..lead + inner].iter_mut().enumerate() {
            *slot = Some(k * counts.len() / inner);
        }
    }
    map
}

/// Which word of `text` each generated token stands for, from `ends[k]`: the byte length of
/// the text the first k + 1 tokens decode to. A token that adds no visible character (a
/// special token, a lone word boundary) stands for none.
pub fn target_token_words(text: &str, ends: &[usize]) -> Vec<Option<usize>> {
    let words = words(text);
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let end = end.min(text.len());
            let piece = start..end.max(start);
            start = end.max(start);
            let visible = text
                .get(piece.clone())?
                .char_indices()
                .find(|(_, c)| !c.is_whitespace())?;
            word_at(&words, piece.start + visible.0)
        })
        .collect()
}

/// Word pairs `(source word, target word)`, sorted and without repeats: each target token
/// with a word goes to the source word of the source token it attends to most (`attention[k]`
/// is target token k's row over the source tokens; tokens without a word are never chosen).
pub fn word_pairs(
    attention: &[Vec<f32>],
    source_words: &[Option<usize>],
    target_words: &[Option<usize>],
) -> Vec<(usize, usize)> {
    let mut pairs = BTreeSet::new();
    for (row, target) in attention.iter().zip(target_words) {
        let Some(target) = *target else { continue };
        let best = row
            .iter()
            .zip(source_words)
            .filter_map(|(&weight, word)| word.map(|w| (weight, w)))
            .fold(
                None,
                |best: Option<(f32, usize)>, (weight, word)| match best {
                    Some((b, _)) if b >= weight => best,
                    _ => Some((weight, word)),
                },
            );
        if let Some((_, source)) = best {
            pairs.insert((source, target));
        }
    }
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_between_white_space() {
        let text = " Le  chat,\u{a0}noir. ";
        let found: Vec<&str> = words(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, ["Le", "chat,", "noir."]);
        assert!(words("").is_empty() && words(" \n ").is_empty());
    }

    #[test]
    fn source_tokens_follow_the_word_counts_and_skip_special_tokens() {
        // [lang] ▁Le ▁ch at ▁noir </s>
        assert_eq!(
            source_token_words(&[1, 2, 1], 1, 1, 6),
            [None, Some(0), Some(1), Some(1), Some(2), None]
        );
        // Counts that do not add up: spread over the words.
        assert_eq!(
            source_token_words(&[1, 1], 0, 1, 5),
            [Some(0), Some(0), Some(1), Some(1), None]
        );
        assert_eq!(source_token_words(&[], 0, 1, 1), [None]);
        assert_eq!(source_token_words(&[1], 3, 3, 2), [None, None]);
    }

    #[test]
    fn target_tokens_are_where_their_text_starts() {
        // "The black cat." from ["", "▁The", "▁bl", "ack", "▁cat", ".", "</s>"]
        let text = "The black cat.";
        let ends = [0, 3, 6, 9, 13, 14, 14];
        assert_eq!(
            target_token_words(text, &ends),
            [None, Some(0), Some(1), Some(1), Some(2), Some(2), None]
        );
        // Prefix lengths past the text or going back are clamped, never out of bounds.
        assert_eq!(target_token_words("ab", &[5, 1, 2]), [Some(0), None, None]);
    }

    #[test]
    fn each_target_word_goes_to_the_source_word_it_attends_to_most() {
        let source = [None, Some(0), Some(1), None];
        let target = [Some(0), Some(1), Some(1), None];
        let attention = vec![
            vec![0.9, 0.05, 0.05, 0.0], // the special token is never chosen
            vec![0.0, 0.2, 0.7, 0.1],
            vec![0.0, 0.6, 0.3, 0.1],
            vec![0.0, 0.0, 0.0, 1.0],
        ];
        assert_eq!(
            word_pairs(&attention, &source, &target),
            [(0, 0), (0, 1), (1, 1)]
        );
    }
}
