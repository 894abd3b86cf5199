//! One tokenizer type over the files hub repos ship: `tokenizer.json`, or SentencePiece
//! models (Marian's `source.spm`/`target.spm` + `vocab.json`), read natively.

mod marian;
pub mod sentencepiece;
mod t5;

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

pub use marian::MarianTokenizer;

pub enum Tokenizer {
    /// A `tokenizer.json`, used as transformers' fast tokenizer uses it.
    Json(Box<JsonTokenizer>),
    Marian(Box<MarianTokenizer>),
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
            "no tokenizer found (expected tokenizer.json, spiece.model, or source.spm + target.spm + vocab.json)",
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
fn token_content(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn token_name(config: &Value, key: &str, default: &str) -> String {
    config
        .get(key)
        .and_then(token_content)
        .unwrap_or_else(|| default.to_string())
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
