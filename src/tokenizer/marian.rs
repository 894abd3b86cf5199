//! transformers' `MarianTokenizer`, natively: SentencePiece pieces from `source.spm`, ids from
//! `vocab.json`, `</s>` appended; decoding through the SentencePiece model the slow tokenizer
//! uses (the source one when the vocabulary is shared, the target one when
//! `separate_vocabs` is set).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::sentencepiece::SentencePieceModel;
use super::spm_encoder::{SpmDecoder, SpmEncoder};
use super::{py_strip, split_on_specials, Segment, SpecialTokenNames};
use crate::error::{Error, Result};

pub struct MarianTokenizer {
    source: SpmEncoder,
    /// vocab.json: piece → model id (source side).
    vocab: HashMap<String, u32>,
    /// model id → piece for decoding (vocab.json, or target_vocab.json with separate vocabs).
    id_to_piece: HashMap<u32, String>,
    /// The SentencePiece model decoding goes through.
    decoder: SpmDecoder,
    unk_id: u32,
    eos_id: u32,
    /// Special tokens matched verbatim in input text, longest first.
    specials: Vec<(String, u32)>,
    special_ids: HashSet<u32>,
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
            decoder: SpmDecoder::new(&decode_spm),
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
    pub fn vocab_tokens(&self) -> Vec<(String, u32)> {
        self.vocab.iter().map(|(t, &id)| (t.clone(), id)).collect()
    }

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
    /// (MarianTokenizer: the pieces through SentencePiece, then any `▁` left — of a piece the
    /// model lacks — as a space, stripped.)
    pub fn decode(&self, ids: &[u32]) -> String {
        let pieces = ids
            .iter()
            .filter(|id| !self.special_ids.contains(id))
            .filter_map(|id| self.id_to_piece.get(id).map(String::as_str));
        py_strip(&self.decoder.decode(pieces).replace('\u{2581}', " ")).to_string()
    }

    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }
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
