//! transformers' `MarianTokenizer`, natively: SentencePiece pieces from `source.spm`, ids from
//! `vocab.json`, `</s>` appended; decoding through the SentencePiece model the slow tokenizer
//! uses (the source one when the vocabulary is shared, the target one when
//! `separate_vocabs` is set).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::Precompiled;
use tokenizers::{NormalizedString, Normalizer};

use super::sentencepiece::{ModelType, PieceType, SentencePieceModel};
use super::{py_strip, SpecialTokenNames};
use crate::error::{Error, Result};

pub struct MarianTokenizer {
    source: SpmEncoder,
    /// vocab.json: piece → model id (source side).
    vocab: HashMap<String, u32>,
    /// model id → piece for decoding (vocab.json, or target_vocab.json with separate vocabs).
    id_to_piece: HashMap<u32, String>,
    /// The SentencePiece model decoding goes through, and its pieces' types.
    decode_pieces: HashMap<String, PieceType>,
    decode_unk_piece: Option<String>,
    decode_unk_surface: String,
    unk_id: u32,
    eos_id: u32,
    /// Special tokens matched verbatim in input text, longest first.
    specials: Vec<(String, u32)>,
    special_ids: HashSet<u32>,
}

/// Normalization and segmentation exactly as the SentencePiece library encodes.
struct SpmEncoder {
    normalizer: Option<Precompiled>,
    remove_extra_whitespaces: bool,
    add_dummy_prefix: bool,
    unigram: Unigram,
}

impl MarianTokenizer {
    pub fn load(dir: &Path, names: &SpecialTokenNames, separate_vocabs: bool) -> Result<Self> {
        let source_spm = SentencePieceModel::from_file(&dir.join("source.spm"))?;
        let vocab_path = dir.join("vocab.json");
        let vocab = read_vocab(&vocab_path)?;
        let id_of = |token: &str, path: &Path, vocab: &HashMap<String, u32>| {
            vocab.get(token).copied().ok_or_else(|| {
                Error::file(
                    path,
                    format!("special token {token:?} is not in the vocabulary"),
                )
            })
        };
        let unk_id = id_of(&names.unk, &vocab_path, &vocab)?;
        let eos_id = id_of(&names.eos, &vocab_path, &vocab)?;
        let pad_id = id_of(&names.pad, &vocab_path, &vocab)?;

        let (decode_vocab, decode_spm) = if separate_vocabs {
            let target_vocab_path = dir.join("target_vocab.json");
            let target = SentencePieceModel::from_file(&dir.join("target.spm"))?;
            (read_vocab(&target_vocab_path)?, target)
        } else {
            (vocab.clone(), source_spm.clone())
        };
        let id_to_piece = decode_vocab
            .iter()
            .map(|(piece, &id)| (id, piece.clone()))
            .collect();

        let mut specials: Vec<(String, u32)> = vec![
            (names.eos.clone(), eos_id),
            (names.unk.clone(), unk_id),
            (names.pad.clone(), pad_id),
        ];
        for extra in &names.additional {
            if let Some(&id) = vocab.get(extra) {
                specials.push((extra.clone(), id));
            }
        }
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let special_ids = specials.iter().map(|(_, id)| *id).collect();

        Ok(Self {
            source: SpmEncoder::new(&source_spm)
                .map_err(|e| Error::file(dir.join("source.spm"), e))?,
            vocab,
            id_to_piece,
            decode_unk_piece: decode_spm
                .unk_id()
                .map(|i| decode_spm.pieces[i].piece.clone()),
            decode_unk_surface: decode_spm.unk_surface.clone(),
            decode_pieces: decode_spm
                .pieces
                .iter()
                .map(|p| (p.piece.clone(), p.kind))
                .collect(),
            unk_id,
            eos_id,
            specials,
            special_ids,
        })
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Token ids of `text` followed by `</s>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for segment in split_on_specials(text, &self.specials) {
            match segment {
                Segment::Special(id) => ids.push(id),
                Segment::Text(text) => {
                    let (code, text) = split_language_code(text);
                    if let Some(code) = code {
                        ids.push(self.piece_id(code));
                    }
                    for piece in self.source.pieces(text)? {
                        ids.push(self.piece_id(&piece));
                    }
                }
            }
        }
        ids.push(self.eos_id);
        Ok(ids)
    }

    fn piece_id(&self, piece: &str) -> u32 {
        self.vocab.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// Text of generated `ids`, special tokens skipped, as `decode(ids, skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for id in ids.iter().filter(|id| !self.special_ids.contains(id)) {
            let piece = match self.id_to_piece.get(id) {
                Some(piece) => piece.as_str(),
                None => continue,
            };
            // SentencePiece's DecodePieces: control pieces vanish, its own unknown piece
            // shows as the unknown surface, any other piece (even one it does not know) verbatim.
            match self.decode_pieces.get(piece) {
                Some(PieceType::Control) => {}
                _ if Some(piece) == self.decode_unk_piece.as_deref() => {
                    text.push_str(&self.decode_unk_surface)
                }
                _ => text.push_str(piece),
            }
        }
        py_strip(&text.replace('\u{2581}', " ")).to_string()
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }
}

impl SpmEncoder {
    fn new(spm: &SentencePieceModel) -> std::result::Result<Self, String> {
        if spm.model_type != ModelType::Unigram {
            return Err(format!(
                "{:?} SentencePiece models are not supported (only unigram)",
                spm.model_type
            ));
        }
        // The lattice only ever matches normal and user-defined pieces, as SentencePiece does;
        // the unknown piece is kept so unmatched characters have a fallback.
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
        let unigram = Unigram::from(vocab, unk_id, false).map_err(|e| e.to_string())?;
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
            unigram,
        })
    }

    /// The pieces SentencePiece's `encode(text, out_type=str)` returns.
    fn pieces(&self, text: &str) -> Result<Vec<String>> {
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
        // Pieces never span a word boundary (SentencePiece's split_by_whitespace), so each
        // "▁word" is segmented on its own.
        let mut pieces = Vec::new();
        for word in split_before_spaces(&escaped) {
            pieces.extend(
                self.unigram
                    .encode(word)
                    .map_err(|e| Error::Input(format!("cannot tokenize {word:?}: {e}")))?,
            );
        }
        Ok(pieces)
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

enum Segment<'a> {
    Text(&'a str),
    Special(u32),
}

/// Splits out special tokens written in the text (as transformers' added-tokens trie does).
fn split_on_specials<'a>(text: &'a str, specials: &[(String, u32)]) -> Vec<Segment<'a>> {
    let mut segments = Vec::new();
    let mut rest_start = 0;
    let mut i = 0;
    while i < text.len() {
        let found = specials
            .iter()
            .find(|(s, _)| !s.is_empty() && text[i..].starts_with(s.as_str()));
        match found {
            Some((s, id)) => {
                if i > rest_start {
                    segments.push(Segment::Text(&text[rest_start..i]));
                }
                segments.push(Segment::Special(*id));
                i += s.len();
                rest_start = i;
            }
            None => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    if rest_start < text.len() {
        segments.push(Segment::Text(&text[rest_start..]));
    }
    segments
}

/// A leading `>>xx<<` target-language code, kept as one token.
fn split_language_code(text: &str) -> (Option<&str>, &str) {
    if text.starts_with(">>") {
        if let Some(end) = text.find("<<") {
            return (Some(&text[..end + 2]), &text[end + 2..]);
        }
    }
    (None, text)
}

fn read_vocab(path: &Path) -> Result<HashMap<String, u32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(path, format!("not a token → id JSON map: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_marker() {
        assert_eq!(split_before_spaces("▁a▁bc"), vec!["▁a", "▁bc"]);
        assert_eq!(split_before_spaces("▁a▁▁b"), vec!["▁a", "▁", "▁b"]);
        assert_eq!(split_before_spaces("ab"), vec!["ab"]);
    }

    #[test]
    fn language_codes_are_split_off() {
        assert_eq!(
            split_language_code(">>fra<< Bonjour"),
            (Some(">>fra<<"), " Bonjour")
        );
        assert_eq!(
            split_language_code(">>fra Bonjour"),
            (None, ">>fra Bonjour")
        );
    }
}
