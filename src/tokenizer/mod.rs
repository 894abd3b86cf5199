//! One tokenizer type over the files hub repos ship: `tokenizer.json`, or SentencePiece
//! models (Marian's `source.spm`/`target.spm` + `vocab.json`), read natively.

mod m2m100;
mod marian;
mod nllb;
pub mod sentencepiece;
mod spm_encoder;
mod t5;

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

pub use m2m100::M2M100Tokenizer;
pub use marian::MarianTokenizer;
pub use nllb::NllbTokenizer;

/// A language a multilingual tokenizer knows: the model's code for it (`fra_Latn`, `fr`,
/// `fra`) and the token that stands for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Language {
    pub code: String,
    pub id: u32,
}

pub enum Tokenizer {
    /// A `tokenizer.json`, used as transformers' fast tokenizer uses it.
    Json(Box<JsonTokenizer>),
    Marian(Box<MarianTokenizer>),
    /// NLLB-200: the source language's token before the text, the target's forced.
    Nllb(Box<NllbTokenizer>),
    /// M2M100: the same, from `vocab.json` + `sentencepiece.bpe.model`.
    M2M100(Box<M2M100Tokenizer>),
}

pub struct JsonTokenizer {
    inner: tokenizers::Tokenizer,
    clean_up_spaces: bool,
}

/// Special token strings and options from `tokenizer_config.json`, with transformers' defaults.
#[derive(Debug, Clone)]
pub struct SpecialTokenNames {
    pub eos: String,
    pub unk: String,
    pub pad: String,
    pub additional: Vec<String>,
}

impl Tokenizer {
    /// Loads the tokenizer files in `dir`: `tokenizer.json` if present, else the family's
    /// SentencePiece files.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = read_tokenizer_config(dir)?;
        let clean_up_spaces = config
            .get("clean_up_tokenization_spaces")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let json = dir.join("tokenizer.json");
        // transformers' AutoTokenizer picks the class from tokenizer_config.json, else from
        // the model_type; a Marian repo (class MarianTokenizer, or none) with its
        // SentencePiece files uses them and ignores tokenizer.json.
        let class = config
            .get("tokenizer_class")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| default_class(dir).to_string());
        let class = class.as_str();
        if class.starts_with("NllbTokenizer") {
            return Ok(Tokenizer::Nllb(Box::new(NllbTokenizer::load(
                dir, &config,
            )?)));
        }
        if class.starts_with("M2M100Tokenizer") {
            return Ok(Tokenizer::M2M100(Box::new(M2M100Tokenizer::load(
                dir, &config,
            )?)));
        }
        if class.starts_with("T5Tokenizer") {
            return Ok(Tokenizer::Json(Box::new(JsonTokenizer {
                inner: t5::load(dir, &config)?,
                clean_up_spaces,
            })));
        }
        let prefers_spm =
            dir.join("source.spm").is_file() && (class.is_empty() || class.starts_with("Marian"));
        if json.is_file() && !prefers_spm {
            let inner = tokenizers::Tokenizer::from_file(&json)
                .map_err(|e| Error::file(&json, format!("cannot load tokenizer: {e}")))?;
            return Ok(Tokenizer::Json(Box::new(JsonTokenizer {
                inner,
                clean_up_spaces,
            })));
        }
        if dir.join("source.spm").is_file() {
            let names = SpecialTokenNames {
                eos: token_name(&config, "eos_token", "</s>"),
                unk: token_name(&config, "unk_token", "<unk>"),
                pad: token_name(&config, "pad_token", "<pad>"),
                additional: config
                    .get("additional_special_tokens")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(token_content).collect())
                    .unwrap_or_default(),
            };
            let separate = config
                .get("separate_vocabs")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Ok(Tokenizer::Marian(Box::new(MarianTokenizer::load(
                dir, &names, separate,
            )?)));
        }
        Err(Error::file(
            dir,
            "no tokenizer found (expected tokenizer.json, spiece.model, sentencepiece.bpe.model, or source.spm + target.spm + vocab.json)",
        ))
    }

    /// Token ids of `text`, with the special tokens the model expects (Marian: `</s>`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Json(t) => Ok(t
                .inner
                .encode(text, true)
                .map_err(|e| Error::Input(format!("cannot tokenize text: {e}")))?
                .get_ids()
                .to_vec()),
            Tokenizer::Marian(t) => t.encode(text),
            Tokenizer::Nllb(t) => t.encode(text),
            Tokenizer::M2M100(t) => t.encode(text),
        }
    }

    /// The languages a multilingual tokenizer marks with tokens (NLLB, M2M100).
    pub fn languages(&self) -> Option<&[Language]> {
        match self {
            Tokenizer::Nllb(t) => Some(t.languages()),
            Tokenizer::M2M100(t) => Some(t.languages()),
            _ => None,
        }
    }

    /// Makes `language` (one of [`Tokenizer::languages`]) the source the text is marked with.
    pub fn set_source_language(&mut self, language: &Language) {
        match self {
            Tokenizer::Nllb(t) => t.set_source(language),
            Tokenizer::M2M100(t) => t.set_source(language),
            _ => {}
        }
    }

    /// Every token of the vocabulary with its id (special and added tokens included).
    pub fn vocab_tokens(&self) -> Vec<(String, u32)> {
        match self {
            Tokenizer::Json(t) => t.inner.get_vocab(true).into_iter().collect(),
            Tokenizer::Marian(t) => t.vocab_tokens(),
            Tokenizer::Nllb(t) => t.vocab_tokens(),
            Tokenizer::M2M100(t) => t.vocab_tokens(),
        }
    }

    /// Text of `ids` with special tokens skipped, as transformers' `decode(ids, skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Tokenizer::Json(t) => {
                let text = t
                    .inner
                    .decode(ids, true)
                    .map_err(|e| Error::Input(format!("cannot decode tokens: {e}")))?;
                Ok(if t.clean_up_spaces {
                    clean_up_tokenization(&text)
                } else {
                    text
                })
            }
            Tokenizer::Marian(t) => Ok(t.decode(ids)),
            Tokenizer::Nllb(t) => t.decode(ids),
            Tokenizer::M2M100(t) => Ok(t.decode(ids)),
        }
    }
}

/// AutoTokenizer's class for a repo whose tokenizer_config.json names none, by model_type
/// (only the families whose tokenizer dragoman rebuilds itself need one).
fn default_class(dir: &Path) -> &'static str {
    let model_type = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|config| config.get("model_type")?.as_str().map(str::to_string));
    match model_type.as_deref() {
        Some("t5" | "mt5") => "T5Tokenizer",
        Some("m2m_100") => "M2M100Tokenizer",
        _ => "",
    }
}

fn read_tokenizer_config(dir: &Path) -> Result<Value> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(Value::Null);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("invalid JSON: {e}")))
}

/// A token given as a string or as an AddedToken object `{"content": …}`.
pub(crate) fn token_content(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

pub(crate) fn token_name(config: &Value, key: &str, default: &str) -> String {
    config
        .get(key)
        .and_then(token_content)
        .unwrap_or_else(|| default.to_string())
}

pub(crate) enum Segment<'a> {
    Text(&'a str),
    Special(u32),
}

/// Splits out special tokens written in the text (as transformers' added-tokens trie does).
pub(crate) fn split_on_specials<'a>(text: &'a str, specials: &[(String, u32)]) -> Vec<Segment<'a>> {
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

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators \x1c–\x1f.
pub(crate) fn py_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// transformers' `clean_up_tokenization`, applied when a tokenizer config asks for it.
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
