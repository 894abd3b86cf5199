//! Language codes. Users write ISO 639-1 (`ru`), ISO 639-3 (`rus`) or a model's own code
//! (`rus_Cyrl`, `__ru__`, `>>rus<<`); models define their languages in their own files
//! (NLLB's and M2M100's tokenizers, Marian's `>>rus<<` tokens, a pair's tokenizer config).
//! This matches the two.

use std::path::Path;

use serde_json::Value;

use crate::tokenizer::{Language, Tokenizer};

/// How a model is told its languages.
#[derive(Debug, Clone, PartialEq)]
pub enum Scheme {
    /// The tokenizer puts the source language's token before the text and the target's is
    /// forced as the first generated token (NLLB, M2M100).
    Tokens(Vec<Language>),
    /// The target language's token is written before each sentence (a multi-target Marian
    /// model: `>>rus<< Bonjour`); the source is not marked.
    TargetToken(Vec<Language>),
    /// One language pair, as the tokenizer config names it (`source_lang`, `target_lang`;
    /// either may be unknown).
    Pair {
        from: Option<String>,
        to: Option<String>,
    },
}

impl Scheme {
    /// The scheme of the model in `dir` whose tokenizer is `tokenizer`.
    pub fn of(dir: &Path, tokenizer: &Tokenizer) -> Self {
        if let Some(languages) = tokenizer.languages() {
            return Scheme::Tokens(languages.to_vec());
        }
        let mut targets: Vec<Language> = tokenizer
            .vocab_tokens()
            .into_iter()
            .filter_map(|(token, id)| {
                let code = token.strip_prefix(">>")?.strip_suffix("<<")?;
                (!code.is_empty()).then(|| Language {
                    code: code.to_string(),
                    id,
                })
            })
            .collect();
        if !targets.is_empty() {
            targets.sort_by_key(|l| l.id);
            return Scheme::TargetToken(targets);
        }
        let config: Value = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        let lang = |key: &str| config.get(key).and_then(Value::as_str).map(str::to_string);
        Scheme::Pair {
            from: lang("source_lang"),
            to: lang("target_lang"),
        }
    }

    /// The codes a user can name, as the model writes them.
    pub fn codes(&self) -> Vec<String> {
        match self {
            Scheme::Tokens(languages) | Scheme::TargetToken(languages) => {
                languages.iter().map(|l| l.code.clone()).collect()
            }
            Scheme::Pair { to, .. } => to.iter().cloned().collect(),
        }
    }
}

/// The one of `languages` that `requested` names: the model's own code (bare or as its token
/// `__ru__`, `>>rus<<`), else the same language by ISO 639 (and the same script, where both
/// name one). The error says why none or several fit, listing the model's codes.
pub fn find<'l>(requested: &str, languages: &'l [Language]) -> Result<&'l Language, String> {
    let bare = bare(requested);
    if let Some(exact) = languages.iter().find(|l| l.code == bare) {
        return Ok(exact);
    }
    let wanted = Key::of(bare);
    let matches: Vec<&Language> = languages
        .iter()
        .filter(|l| wanted.fits(&Key::of(&l.code)))
        .collect();
    let listing = || {
        languages
            .iter()
            .map(|l| l.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "has no language {requested:?}{} (it has: {})",
            name(bare).map(|n| format!(" ({n})")).unwrap_or_default(),
            listing()
        )),
        several => Err(format!(
            "has several languages for {requested:?}: {}; name one of them",
            several
                .iter()
                .map(|l| l.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether two codes (any of the forms [`find`] takes) name the same language.
pub fn same_language(a: &str, b: &str) -> bool {
    let (a, b) = (bare(a), bare(b));
    a == b || Key::of(a).fits(&Key::of(b)) || Key::of(b).fits(&Key::of(a))
}

/// The ISO 639-3 code of the language a code names (`ru`, `rus_Cyrl`, `>>rus<<` → `rus`).
pub fn iso_639_3(code: &str) -> String {
    Key::of(bare(code)).language
}

/// The language tag a document (HTML's `lang`) gives the language a code names: its ISO
/// 639-1 code where it has one (`rus_Cyrl` → `ru`), else its ISO 639-3 code; an unknown code
/// as it was asked, without its token dress.
pub fn document_tag(code: &str) -> String {
    let key = Key::of(bare(code));
    match isolang::Language::from_639_3(&key.language) {
        Some(language) => language
            .to_639_1()
            .map_or_else(|| key.language.clone(), str::to_string),
        None => bare(code).to_string(),
    }
}

/// The English name of the language a code names (`rus_Cyrl` → "Russian").
pub fn name(code: &str) -> Option<&'static str> {
    let key = Key::of(bare(code));
    isolang::Language::from_639_3(&key.language).map(|l| l.to_name())
}

/// A code without its token dress: `>>rus<<` and `__ru__` → `rus`, `ru`.
fn bare(code: &str) -> &str {
    let code = code.trim();
    code.strip_prefix(">>")
        .and_then(|c| c.strip_suffix("<<"))
        .or_else(|| code.strip_prefix("__").and_then(|c| c.strip_suffix("__")))
        .unwrap_or(code)
}

/// A language as ISO 639-3 (an individual language where a macrolanguage has a usual one),
/// with its script where the code names one.
struct Key {
    language: String,
    script: Option<String>,
}

/// Macrolanguages (the codes ISO 639-1 maps to) and the individual language models mean by
/// them (NLLB's codes are individual languages: `arb_Arab`, `zsm_Latn`, `swh_Latn`).
const MACROLANGUAGES: &[(&str, &str)] = &[
    ("ara", "arb"),
    ("aze", "azj"),
    ("est", "ekk"),
    ("fas", "pes"),
    ("lav", "lvs"),
    ("mlg", "plt"),
    ("mon", "khk"),
    ("msa", "zsm"),
    ("nep", "npi"),
    ("orm", "gaz"),
    ("que", "quy"),
    ("sqi", "als"),
    ("swa", "swh"),
    ("uzb", "uzn"),
    ("yid", "ydd"),
];

impl Key {
    fn of(code: &str) -> Self {
        let (language, script) = match code.split_once(['_', '-']) {
            Some((language, script)) => (language, Some(script.to_ascii_lowercase())),
            None => (code, None),
        };
        let language = language.to_ascii_lowercase();
        let iso3 = match language.len() {
            2 => isolang::Language::from_639_1(&language).map(|l| l.to_639_3().to_string()),
            3 => Some(language.clone()),
            _ => None,
        }
        .unwrap_or(language);
        let language = MACROLANGUAGES
            .iter()
            .find(|(macro_code, _)| *macro_code == iso3)
            .map_or(iso3, |(_, individual)| individual.to_string());
        Key { language, script }
    }

    /// `other` is this language, in this script where both name one.
    fn fits(&self, other: &Key) -> bool {
        self.language == other.language
            && (self.script.is_none() || other.script.is_none() || self.script == other.script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn languages(codes: &[&str]) -> Vec<Language> {
        codes
            .iter()
            .zip(100..)
            .map(|(code, id)| Language {
                code: code.to_string(),
                id,
            })
            .collect()
    }

    #[test]
    fn iso_and_model_codes_find_nllb_languages() {
        let nllb = languages(&[
            "eng_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans", "zho_Hant", "arb_Arab",
        ]);
        for code in ["ru", "rus", "rus_Cyrl", "RU", " ru "] {
            assert_eq!(find(code, &nllb).unwrap().code, "rus_Cyrl", "{code}");
        }
        assert_eq!(find("ar", &nllb).unwrap().code, "arb_Arab");
        assert_eq!(find("zh_Hant", &nllb).unwrap().code, "zho_Hant");
        let several = find("zh", &nllb).unwrap_err();
        assert!(several.contains("zho_Hans, zho_Hant"), "{several}");
        let missing = find("de", &nllb).unwrap_err();
        assert!(
            missing.contains("\"de\" (German)") && missing.contains("eng_Latn, fra_Latn"),
            "{missing}"
        );
    }

    #[test]
    fn m2m100_and_marian_codes() {
        let m2m = languages(&["en", "fr", "ru", "ast"]);
        for code in ["ru", "rus", "__ru__", "rus_Cyrl"] {
            assert_eq!(find(code, &m2m).unwrap().code, "ru", "{code}");
        }
        assert_eq!(find("ast", &m2m).unwrap().code, "ast");
        let marian = languages(&["bel", "rus", "ukr"]);
        for code in [">>rus<<", ">>ru<<", "ru", "rus"] {
            assert_eq!(find(code, &marian).unwrap().code, "rus", "{code}");
        }
        assert!(find("en", &marian).is_err());
    }

    #[test]
    fn same_language_across_forms() {
        assert!(same_language("en", "eng"));
        assert!(same_language("eng_Latn", "en"));
        assert!(same_language(">>rus<<", "ru"));
        assert!(!same_language("en", "ru"));
        assert_eq!(name("rus_Cyrl"), Some("Russian"));
        assert_eq!(name("fr"), Some("French"));
    }
}
