//! The model catalog (`models/catalog.toml`, built into the binary): which hub repo serves
//! which task and language pair, at which revision, under which licence.

use serde::Deserialize;

use crate::error::{Error, Result};

const CATALOG: &str = include_str!("../models/catalog.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub from: String,
    pub to: String,
    pub model: String,
    pub revision: String,
    pub license: String,
}

/// A summarization model, by the language its summaries are in.
#[derive(Debug, Clone, Deserialize)]
pub struct SummarizeEntry {
    pub lang: String,
    pub model: String,
    pub revision: String,
    pub license: String,
    /// Whether `dragoman summarize` picks it; others are listed as alternatives.
    pub default: bool,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Catalog {
    #[serde(default)]
    pub translate: Vec<Entry>,
    #[serde(default)]
    pub summarize: Vec<SummarizeEntry>,
}

impl Catalog {
    pub fn builtin() -> Self {
        // The catalog is compiled in and checked by a unit test, so parsing cannot fail at run time.
        toml::from_str(CATALOG).unwrap_or(Catalog {
            translate: Vec::new(),
            summarize: Vec::new(),
        })
    }

    /// The default translation model from `from` to `to` (any ISO 639 code).
    pub fn translation(&self, from: &str, to: &str) -> Result<&Entry> {
        use crate::languages::same_language;
        self.translate
            .iter()
            .find(|e| same_language(&e.from, from) && same_language(&e.to, to))
            .ok_or_else(|| {
                let pairs: Vec<String> = self
                    .translate
                    .iter()
                    .map(|e| format!("{}→{}", e.from, e.to))
                    .collect();
                Error::Setting(format!(
                    "no default model for {from}→{to} (catalog has {}); pass --model",
                    pairs.join(", ")
                ))
            })
    }
}

impl Catalog {
    /// The default summarizer writing in `lang`.
    pub fn summarizer(&self, lang: &str) -> Result<&SummarizeEntry> {
        self.summarize
            .iter()
            .find(|e| e.lang == lang && e.default)
            .ok_or_else(|| {
                Error::Setting(format!(
                    "no default summarizer for {lang:?} in the catalog; pass --model"
                ))
            })
    }

    /// Whether `model` (a hub id) is one of the catalog's entries, for any task.
    pub fn lists(&self, model: &str) -> bool {
        self.translate.iter().any(|e| e.model == model)
            || self.summarize.iter().any(|e| e.model == model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_has_both_pairs() {
        let catalog: Catalog = toml::from_str(CATALOG).unwrap();
        assert_eq!(
            catalog.translation("fr", "en").unwrap().model,
            "Helsinki-NLP/opus-mt-fr-en"
        );
        assert_eq!(
            catalog.translation("fr", "ru").unwrap().model,
            "Helsinki-NLP/opus-mt-fr-ru"
        );
        assert!(catalog.translation("fr", "de").is_err());
    }

    #[test]
    fn builtin_catalog_has_a_french_summarizer_and_flags_non_commercial_ones() {
        let catalog: Catalog = toml::from_str(CATALOG).unwrap();
        assert_eq!(
            catalog.summarizer("fr").unwrap().model,
            "moussaKam/barthez-orangesum-abstract"
        );
        let xlsum = catalog
            .summarize
            .iter()
            .find(|e| e.model == "csebuetnlp/mT5_multilingual_XLSum")
            .unwrap();
        assert!(!xlsum.default && xlsum.license.contains("NC"));
        assert!(catalog.summarizer("en").is_err());
    }
}
