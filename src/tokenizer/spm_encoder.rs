//! Text to pieces exactly as the SentencePiece library's `encode(text, out_type=str)`:
//! its normalization (the model's precompiled rules, extra white space removed, `▁` for
//! spaces, a dummy prefix), then the model's own segmentation: the unigram lattice, or BPE
//! merges by piece score (`bpe_model.cc`).

use std::collections::{BinaryHeap, HashMap};

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::Precompiled;
use tokenizers::{NormalizedString, Normalizer};

use super::sentencepiece::{ModelType, PieceType, SentencePieceModel};
use crate::error::{Error, Result};

pub(crate) struct SpmEncoder {
    normalizer: Option<Precompiled>,
    remove_extra_whitespaces: bool,
    add_dummy_prefix: bool,
    segmenter: Segmenter,
}

enum Segmenter {
    Unigram(Box<Unigram>),
    Bpe(Bpe),
}

impl SpmEncoder {
    pub(crate) fn new(spm: &SentencePieceModel) -> std::result::Result<Self, String> {
        let segmenter = match spm.model_type {
            ModelType::Unigram => Segmenter::Unigram(Box::new(unigram(spm)?)),
            ModelType::Bpe => Segmenter::Bpe(Bpe::new(spm)?),
            other => {
                return Err(format!(
                    "{other:?} SentencePiece models are not supported (only unigram and BPE)"
                ))
            }
        };
        let normalizer = if spm.precompiled_charsmap.is_empty() {
            None
        } else {
            Some(
                Precompiled::from(&spm.precompiled_charsmap)
                    .map_err(|e| format!("bad normalization rules: {e}"))?,
            )
        };
        Ok(Self {
            normalizer,
            remove_extra_whitespaces: spm.remove_extra_whitespaces,
            add_dummy_prefix: spm.add_dummy_prefix,
            segmenter,
        })
    }

    /// The pieces SentencePiece's `encode(text, out_type=str)` returns.
    pub(crate) fn pieces(&self, text: &str) -> Result<Vec<String>> {
        let mut normalized = NormalizedString::from(text);
        if let Some(normalizer) = &self.normalizer {
            normalizer
                .normalize(&mut normalized)
                .map_err(|e| Error::Input(format!("cannot normalize text: {e}")))?;
        }
        let mut text = normalized.get().to_string();
        if self.remove_extra_whitespaces {
            text = text
                .split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        }
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let escaped = text.replace(' ', "\u{2581}");
        let escaped = if self.add_dummy_prefix {
            format!("\u{2581}{escaped}")
        } else {
            escaped
        };
        match &self.segmenter {
            Segmenter::Unigram(unigram) => {
                // Pieces never span a word boundary (SentencePiece's split_by_whitespace), so
                // each "▁word" is segmented on its own.
                let mut pieces = Vec::new();
                for word in split_before_spaces(&escaped) {
                    pieces.extend(
                        unigram
                            .encode(word)
                            .map_err(|e| Error::Input(format!("cannot tokenize {word:?}: {e}")))?,
                    );
                }
                Ok(pieces)
            }
            Segmenter::Bpe(bpe) => Ok(bpe.pieces(&escaped)),
        }
    }
}

/// Pieces to text exactly as SentencePiece's `decode(pieces)`: control pieces vanish, the
/// unknown piece shows as the unknown surface, a piece the model lacks verbatim, any other
/// with `▁` as a space; leading `▁`s are dropped until some text is out.
pub(crate) struct SpmDecoder {
    kinds: HashMap<String, PieceType>,
    unk_piece: Option<String>,
    unk_surface: String,
    /// `add_dummy_prefix` or `remove_extra_whitespaces`: the leading space is the encoder's.
    strip_leading: bool,
}

impl SpmDecoder {
    pub(crate) fn new(spm: &SentencePieceModel) -> Self {
        Self {
            kinds: spm
                .pieces
                .iter()
                .map(|p| (p.piece.clone(), p.kind))
                .collect(),
            unk_piece: spm.unk_id().map(|i| spm.pieces[i].piece.clone()),
            unk_surface: spm.unk_surface.clone(),
            strip_leading: spm.add_dummy_prefix || spm.remove_extra_whitespaces,
        }
    }

    pub(crate) fn decode<'p>(&self, pieces: impl IntoIterator<Item = &'p str>) -> String {
        let mut text = String::new();
        for piece in pieces {
            match self.kinds.get(piece) {
                Some(PieceType::Control) => continue,
                _ if Some(piece) == self.unk_piece.as_deref() => {
                    text.push_str(&self.unk_surface);
                    continue;
                }
                // A piece the model lacks reads as its unknown id: out as it is, ▁ and all.
                None => {
                    text.push_str(piece);
                    continue;
                }
                _ => {}
            }
            let piece = match text.is_empty() && self.strip_leading {
                true => piece.strip_prefix('\u{2581}').unwrap_or(piece),
                false => piece,
            };
            text.push_str(&piece.replace('\u{2581}', " "));
        }
        text
    }
}

/// The lattice only ever matches normal and user-defined pieces, as SentencePiece does; the
/// unknown piece is kept so unmatched characters have a fallback.
fn unigram(spm: &SentencePieceModel) -> std::result::Result<Unigram, String> {
    let mut vocab = Vec::new();
    let mut unk_id = None;
    for piece in &spm.pieces {
        match piece.kind {
            PieceType::Normal | PieceType::UserDefined => {
                vocab.push((piece.piece.clone(), piece.score as f64))
            }
            PieceType::Unknown => {
                unk_id = Some(vocab.len());
                vocab.push((piece.piece.clone(), piece.score as f64));
            }
            _ => {}
        }
    }
    Unigram::from(vocab, unk_id, false).map_err(|e| e.to_string())
}

/// SentencePiece's BPE segmentation: start from characters (a user-defined piece is one
/// symbol that never merges), repeatedly merge the adjacent pair whose concatenation is the
/// highest-scoring piece (the leftmost on a tie), split unused pieces back into the pair they
/// came from, and join runs of unknown symbols into one piece, as the library does before it
/// hands pieces out.
struct Bpe {
    /// Normal, user-defined and unused pieces: the ones a merge may produce.
    scores: HashMap<String, (f32, PieceType)>,
    /// User-defined pieces, longest first (matched before single characters).
    user_defined: Vec<String>,
}

/// A candidate merge: symbols `left` and `right` (adjacent), into a piece of `score`.
#[derive(PartialEq)]
struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    /// Bytes of the merged piece, to tell a stale candidate (a side has changed since).
    len: usize,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    /// The greatest is the best: the higher score, then the leftmost pair.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One symbol of the word being merged: a byte range of the text, linked to its neighbours.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
    frozen: bool,
}

impl Bpe {
    fn new(spm: &SentencePieceModel) -> std::result::Result<Self, String> {
        let mut scores = HashMap::new();
        let mut user_defined = Vec::new();
        for piece in &spm.pieces {
            if matches!(
                piece.kind,
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused
            ) {
                scores.insert(piece.piece.clone(), (piece.score, piece.kind));
            }
            if piece.kind == PieceType::UserDefined {
                user_defined.push(piece.piece.clone());
            }
        }
        if spm.unk_id().is_none() {
            return Err("the model defines no unknown piece".into());
        }
        user_defined.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Ok(Self {
            scores,
            user_defined,
        })
    }

    fn pieces(&self, text: &str) -> Vec<String> {
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let rest = &text[at..];
            let (len, frozen) = match self
                .user_defined
                .iter()
                .find(|p| rest.starts_with(p.as_str()))
            {
                Some(piece) => (piece.len(), true),
                None => (rest.chars().next().map_or(1, char::len_utf8), false),
            };
            let index = symbols.len();
            symbols.push(Symbol {
                start: at,
                end: at + len,
                prev: index.checked_sub(1),
                next: (at + len < text.len()).then_some(index + 1),
                frozen,
            });
            at += len;
        }
        // The unused pieces merged, with the pair each came from (for splitting them back).
        let mut unmerge: HashMap<&str, (&str, &str)> = HashMap::new();
        let mut agenda = BinaryHeap::new();
        for i in 1..symbols.len() {
            self.consider(
                text,
                (Some(i - 1), Some(i)),
                &symbols,
                &mut agenda,
                &mut unmerge,
            );
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (symbols[top.left], symbols[top.right]);
            let stale = l.start == l.end
                || r.start == r.end
                || l.next != Some(top.right)
                || (l.end - l.start) + (r.end - r.start) != top.len;
            if stale {
                continue;
            }
            symbols[top.left].end = r.end;
            symbols[top.left].next = r.next;
            if let Some(next) = r.next {
                symbols[next].prev = Some(top.left);
            }
            symbols[top.right].end = symbols[top.right].start; // emptied
            let left = symbols[top.left];
            self.consider(
                text,
                (left.prev, Some(top.left)),
                &symbols,
                &mut agenda,
                &mut unmerge,
            );
            self.consider(
                text,
                (Some(top.left), left.next),
                &symbols,
                &mut agenda,
                &mut unmerge,
            );
        }

        let mut pieces: Vec<String> = Vec::new();
        let mut previous_unknown = false;
        let mut index = (!symbols.is_empty()).then_some(0);
        while let Some(i) = index {
            let mut out = Vec::new();
            self.resegment(&text[symbols[i].start..symbols[i].end], &unmerge, &mut out);
            for piece in out {
                let unknown = !self.scores.contains_key(piece);
                match pieces.last_mut() {
                    Some(last) if unknown && previous_unknown => last.push_str(piece),
                    _ => pieces.push(piece.to_string()),
                }
                previous_unknown = unknown;
            }
            index = symbols[i].next;
        }
        pieces
    }

    /// Queues the merge of symbols `left` and `right` if their concatenation is a piece.
    fn consider<'t>(
        &self,
        text: &'t str,
        (left, right): (Option<usize>, Option<usize>),
        symbols: &[Symbol],
        agenda: &mut BinaryHeap<Candidate>,
        unmerge: &mut HashMap<&'t str, (&'t str, &'t str)>,
    ) {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let (l, r) = (symbols[left], symbols[right]);
        if l.frozen || r.frozen {
            return;
        }
        let merged = &text[l.start..r.end];
        let Some(&(score, kind)) = self.scores.get(merged) else {
            return;
        };
        agenda.push(Candidate {
            score,
            left,
            right,
            len: merged.len(),
        });
        if kind == PieceType::Unused {
            unmerge.insert(merged, (&text[l.start..l.end], &text[r.start..r.end]));
        }
    }

    /// An unused piece goes back to the two it was merged from, recursively.
    fn resegment<'t>(
        &self,
        piece: &'t str,
        unmerge: &HashMap<&'t str, (&'t str, &'t str)>,
        out: &mut Vec<&'t str>,
    ) {
        let unused = matches!(self.scores.get(piece), Some((_, PieceType::Unused)));
        match unmerge.get(piece) {
            Some(&(left, right)) if unused => {
                self.resegment(left, unmerge, out);
                self.resegment(right, unmerge, out);
            }
            _ => out.push(piece),
        }
    }
}

/// "▁a▁b" → ["▁a", "▁b"]: every ▁ starts a word, as SentencePiece's SplitIntoWords.
fn split_before_spaces(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '\u{2581}' && i > start {
            words.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        words.push(&text[start..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::sentencepiece::Piece;

    #[test]
    fn words_keep_their_leading_marker() {
        assert_eq!(split_before_spaces("▁a▁bc"), vec!["▁a", "▁bc"]);
        assert_eq!(split_before_spaces("▁a▁▁b"), vec!["▁a", "▁", "▁b"]);
        assert_eq!(split_before_spaces("ab"), vec!["ab"]);
    }

    fn bpe(pieces: &[(&str, f32, PieceType)]) -> Bpe {
        let model = SentencePieceModel {
            pieces: pieces
                .iter()
                .map(|&(piece, score, kind)| Piece {
                    piece: piece.to_string(),
                    score,
                    kind,
                })
                .collect(),
            model_type: ModelType::Bpe,
            byte_fallback: false,
            unk_surface: " \u{2047} ".into(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        Bpe::new(&model).unwrap()
    }

    #[test]
    fn bpe_merges_by_score_then_leftmost_and_joins_unknown_runs() {
        use PieceType::*;
        let model = bpe(&[
            ("<unk>", 0.0, Unknown),
            ("▁a", -1.0, Normal),
            ("ab", -0.5, Normal),
            ("▁", -3.0, Normal),
            ("a", -4.0, Normal),
            ("b", -4.0, Normal),
            ("bb", -2.0, Normal),
        ]);
        // "ab" (-0.5) beats "▁a" (-1.0): ▁ + ab.
        assert_eq!(model.pieces("▁ab"), vec!["▁", "ab"]);
        // Equal candidates "bb" at 1 and 2 of "bbb": the leftmost merges first.
        assert_eq!(model.pieces("bbb"), vec!["bb", "b"]);
        // Unknown characters next to each other become one piece; known ones split runs.
        assert_eq!(model.pieces("▁😀😀a你"), vec!["▁", "😀😀", "a", "你"]);
    }

    #[test]
    fn bpe_splits_unused_pieces_and_keeps_user_defined_whole() {
        use PieceType::*;
        let model = bpe(&[
            ("<unk>", 0.0, Unknown),
            ("ab", -1.0, Unused),
            ("a", -2.0, Normal),
            ("b", -2.0, Normal),
            ("abab", -0.5, Normal),
            ("<x>", 0.0, UserDefined),
        ]);
        // "ab" is merged on the way to "abab"; a lone "ab" goes back to a + b.
        assert_eq!(model.pieces("abab"), vec!["abab"]);
        assert_eq!(model.pieces("ab"), vec!["a", "b"]);
        assert_eq!(model.pieces("a<x>b"), vec!["a", "<x>", "b"]);
    }
}
