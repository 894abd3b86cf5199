//! transformers' `M2M100Tokenizer`, natively: SentencePiece (BPE) pieces from
//! `sentencepiece.bpe.model`, ids from `vocab.json`, and language tokens `__fr__` whose ids
//! follow the vocabulary in the order of a fixed code list (`tokenization_m2m_100.py`), not
//! any file. Encoded: `[__fr__] … </s>`; the target language is forced at generation.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::sentencepiece::SentencePieceModel;
use super::spm_encoder::{SpmDecoder, SpmEncoder};
use super::{py_strip, split_on_specials, token_name, Language, Segment};
use crate::error::{Error, Result};

/// `tokenization_m2m_100.FAIRSEQ_LANGUAGE_CODES["m2m100"]`.
const M2M100_CODES: &[&str] = &[
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "ig", "ilo", "is", "it", "ja", "jv", "ka", "kk",
    "km", "kn", "ko", "lb", "lg", "ln", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my",
    "ne", "nl", "no", "ns", "oc", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sd", "si", "sk", "sl",
    "so", "sq", "sr", "ss", "su", "sv", "sw", "ta", "th", "tl", "tn", "tr", "uk", "ur", "uz", "vi",
    "wo", "xh", "yi", "yo", "zh", "zu",
];

/// `FAIRSEQ_LANGUAGE_CODES["wmt21"]`.
const WMT21_CODES: &[&str] = &["en", "ha", "is", "ja", "cs", "ru", "zh", "de"];

/// M2M100's code for French, the source when none is asked for.
pub(crate) const FRENCH: &str = "fr";

pub struct M2M100Tokenizer {
    encoder: SpmEncoder,
    decoder: SpmDecoder,
    vocab: HashMap<String, u32>,
    id_to_piece: HashMap<u32, String>,
    languages: Vec<Language>,
    source: u32,
    eos: u32,
    unk: u32,
    unk_token: String,
    /// Special tokens matched verbatim in input text, longest first.
    specials: Vec<(String, u32)>,
    special_ids: HashSet<u32>,
}

impl M2M100Tokenizer {
    pub fn load(dir: &Path, config: &Value) -> Result<Self> {
        let spm_path = dir.join("sentencepiece.bpe.model");
        let spm = SentencePieceModel::from_file(&spm_path)?;
        let vocab_path = dir.join("vocab.json");
        let text = std::fs::read_to_string(&vocab_path).map_err(|e| Error::file(&vocab_path, e))?;
        let vocab: HashMap<String, u32> = serde_json::from_str(&text)
            .map_err(|e| Error::file(&vocab_path, format!("not a token → id JSON map: {e}")))?;
        let codes = match config.get("language_codes").and_then(Value::as_str) {
            None | Some("m2m100") => M2M100_CODES,
            Some("wmt21") => WMT21_CODES,
            Some(other) => {
                return Err(Error::file(
                    dir.join("tokenizer_config.json"),
                    format!(
                        "unknown language_codes {other:?} (M2M100Tokenizer knows m2m100 and wmt21)"
                    ),
                ))
            }
        };
        let base = vocab.len() as u32;
        let languages: Vec<Language> = codes
            .iter()
            .zip(base..)
            .map(|(code, id)| Language {
                code: code.to_string(),
                id,
            })
            .collect();
        let id_of = |key: &str, default: &str| {
            let token = token_name(config, key, default);
            vocab
                .get(&token)
                .copied()
                .map(|id| (token.clone(), id))
                .ok_or_else(|| {
                    Error::file(
                        &vocab_path,
                        format!("special token {token:?} is not in the vocabulary"),
                    )
                })
        };
        let named = [
            id_of("bos_token", "<s>")?,
            id_of("eos_token", "</s>")?,
            id_of("sep_token", "</s>")?,
            id_of("pad_token", "<pad>")?,
            id_of("unk_token", "<unk>")?,
        ];
        let (eos, (unk_token, unk)) = (named[1].1, named[4].clone());
        let mut specials: Vec<(String, u32)> = named.to_vec();
        specials.extend(languages.iter().map(|l| (language_token(&l.code), l.id)));
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let special_ids = specials.iter().map(|(_, id)| *id).collect();
        let source = languages
            .iter()
            .find(|l| l.code == FRENCH)
            .or(languages.first())
            .map(|l| l.id)
            .unwrap_or(eos);
        Ok(Self {
            encoder: SpmEncoder::new(&spm).map_err(|e| Error::file(&spm_path, e))?,
            decoder: SpmDecoder::new(&spm),
            id_to_piece: vocab.iter().map(|(p, &id)| (id, p.clone())).collect(),
            vocab,
            languages,
            source,
            eos,
            unk,
            unk_token,
            specials,
            special_ids,
        })
    }

    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    pub fn set_source(&mut self, language: &Language) {
        self.source = language.id;
    }

    /// `[source language] pieces </s>`; special tokens written in the text are kept whole.
    pub fn vocab_tokens(&self) -> Vec<(String, u32)> {
        self.vocab.iter().map(|(t, &id)| (t.clone(), id)).collect()
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = vec![self.source];
        for segment in split_on_specials(text, &self.specials) {
            match segment {
                Segment::Special(id) => ids.push(id),
                Segment::Text(text) => {
                    for piece in self.encoder.pieces(text)? {
                        ids.push(self.vocab.get(&piece).copied().unwrap_or(self.unk));
                    }
                }
            }
        }
        ids.push(self.eos);
        Ok(ids)
    }

    /// `decode(ids, skip_special_tokens=True)`: special ids dropped; runs of pieces through
    /// SentencePiece; an id with no piece (the made-up words after the languages) shows as
    /// the unknown token's text; the whole stripped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        let mut run: Vec<&str> = Vec::new();
        for id in ids.iter().filter(|id| !self.special_ids.contains(id)) {
            match self.id_to_piece.get(id) {
                Some(piece) => run.push(piece),
                None => {
                    text.push_str(&self.decoder.decode(run.drain(..)));
                    text.push_str(&self.unk_token);
                }
            }
        }
        text.push_str(&self.decoder.decode(run));
        py_strip(&text).to_string()
    }
}

/// `__fr__`: how M2M100 writes a language as a token.
pub(crate) fn language_token(code: &str) -> String {
    format!("__{code}__")
}
