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
    /// Its tier among the pair's models.
    pub quality: Quality,
    /// The pair's model when no `--quality` is asked for.
    #[serde(default)]
    pub default: bool,
    /// Why it is where it is (scores, speed, licence).
    pub reason: String,
}

impl Entry {
    /// Non-commercial licences (CC BY-NC …): never a default, never picked by a tier.
    pub fn non_commercial(&self) -> bool {
        is_non_commercial(&self.license)
    }
}

fn is_non_commercial(license: &str) -> bool {
    license.to_ascii_uppercase().contains("-NC")
}

/// A pair's quality tiers (`--quality`); `alternative` models are listed, never picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Fast,
    Best,
    Alternative,
}

impl Quality {
    /// `--quality fast|best`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "fast" => Ok(Quality::Fast),
            "best" => Ok(Quality::Best),
            other => Err(Error::Setting(format!(
                "unknown quality {other:?} (expected \"fast\" or \"best\")"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quality::Fast => "fast",
            Quality::Best => "best",
            Quality::Alternative => "alternative",
        }
    }
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

    /// The translation model from `from` to `to` (any ISO 639 code): the pair's first of
    /// tier `quality` (never a non-commercial one), or its default.
    pub fn translation(&self, from: &str, to: &str, quality: Option<Quality>) -> Result<&Entry> {
        use crate::languages::same_language;
        let mut pair = self
            .translate
            .iter()
            .filter(|e| same_language(&e.from, from) && same_language(&e.to, to))
            .peekable();
        if pair.peek().is_some() {
            let mut pair = pair.filter(|e| !e.non_commercial());
            return match quality {
                None => pair.find(|e| e.default),
                Some(Quality::Alternative) => None,
                Some(quality) => pair.find(|e| e.quality == quality),
            }
            .ok_or_else(|| {
                Error::Setting(format!(
                    "the catalog has no {} model for {from}→{to}; pass --model",
                    quality.map_or("default", Quality::name)
                ))
            });
        }
        Err(self.no_pair(from, to))
    }

    fn no_pair(&self, from: &str, to: &str) -> Error {
        let mut pairs: Vec<String> = self
            .translate
            .iter()
            .map(|e| format!("{}→{}", e.from, e.to))
            .collect();
        pairs.dedup();
        Error::Setting(format!(
            "no model for {from}→{to} (catalog has {}); pass --model",
            pairs.join(", ")
        ))
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

    /// The licence of `model` (a hub id) where the catalog lists it.
    pub fn license_of(&self, model: &str) -> Option<&str> {
        self.translate
            .iter()
            .find(|e| e.model == model)
            .map(|e| e.license.as_str())
            .or_else(|| {
                self.summarize
                    .iter()
                    .find(|e| e.model == model)
                    .map(|e| e.license.as_str())
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
    fn builtin_catalog_has_tiers_per_pair_and_never_picks_non_commercial() {
        let catalog: Catalog = toml::from_str(CATALOG).unwrap();
        let pick = |from, to, quality| {
            catalog
                .translation(from, to, quality)
                .unwrap()
                .model
                .as_str()
        };
        assert_eq!(pick("fr", "en", None), "Helsinki-NLP/opus-mt-fr-en");
        assert_eq!(
            pick("fr", "en", Some(Quality::Fast)),
            "Helsinki-NLP/opus-mt-fr-en"
        );
        assert_eq!(
            pick("fr", "en", Some(Quality::Best)),
            "Helsinki-NLP/opus-mt-tc-big-fr-en"
        );
        assert_eq!(pick("fr", "ru", None), "Helsinki-NLP/opus-mt-tc-big-fr-zle");
        assert_eq!(
            pick("fr", "ru", Some(Quality::Fast)),
            "Helsinki-NLP/opus-mt-fr-ru"
        );
        assert_eq!(
            pick("fra", "rus", Some(Quality::Best)),
            "Helsinki-NLP/opus-mt-tc-big-fr-zle"
        );
        assert!(catalog.translation("fr", "de", None).is_err());
        assert!(catalog
            .translation("fr", "en", Some(Quality::Alternative))
            .is_err());
        // Every pair has one default, and it is not non-commercial; NLLB is listed as such.
        for (from, to) in [("fr", "en"), ("fr", "ru")] {
            let defaults: Vec<_> = catalog
                .translate
                .iter()
                .filter(|e| e.from == from && e.to == to && e.default)
                .collect();
            assert_eq!(defaults.len(), 1, "{from}→{to}");
            assert!(!defaults[0].non_commercial());
        }
        let nllb = catalog
            .translate
            .iter()
            .find(|e| e.model == "facebook/nllb-200-distilled-600M")
            .unwrap();
        assert!(nllb.non_commercial() && !nllb.default);
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
