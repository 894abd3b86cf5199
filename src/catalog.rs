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

#[derive(Debug, Deserialize)]
pub struct Catalog {
    #[serde(default)]
    pub translate: Vec<Entry>,
}

impl Catalog {
    pub fn builtin() -> Self {
        // The catalog is compiled in and checked by a unit test, so parsing cannot fail at run time.
        toml::from_str(CATALOG).unwrap_or(Catalog {
            translate: Vec::new(),
        })
    }

    /// The default translation model from `from` to `to`.
    pub fn translation(&self, from: &str, to: &str) -> Result<&Entry> {
        self.translate
            .iter()
            .find(|e| e.from == from && e.to == to)
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
}
