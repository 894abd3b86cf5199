//! Generation settings: the model's `generation_config.json`, flags on top, transformers'
//! global defaults under both, resolved once into [`GenerationSettings`].

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::models::model_dir::ModelDir;

/// transformers' `early_stopping`: `true`, `false` (a heuristic) or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    /// Stop a sentence as soon as `num_beams` hypotheses are finished.
    Always,
    /// Stop when the best running beam, at its current length, cannot beat the worst finished one.
    Heuristic,
    /// Stop only when no running beam can possibly improve (the canonical beam search).
    Never,
}

/// Most beams a search may run: past this, one sentence's beams alone outgrow any batch (and
/// a stray request could take the worker's memory).
pub const MAX_BEAMS: usize = 64;

/// Every setting `generate()` reads that dragoman supports, each optional: a value present
/// overrides the layer below it. Also the shape of `generation_config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenerationOverrides {
    pub num_beams: Option<usize>,
    /// Sequences returned per input (transformers' `num_return_sequences`): the n best beams.
    pub num_return_sequences: Option<usize>,
    /// Score greedy sequences too (transformers' `output_scores`; beam search always scores).
    pub output_scores: Option<bool>,
    pub max_length: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub min_length: Option<usize>,
    pub min_new_tokens: Option<usize>,
    pub length_penalty: Option<f64>,
    #[serde(default, deserialize_with = "early_stopping_from_json")]
    pub early_stopping: Option<EarlyStopping>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f64>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub forced_bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "ids_from_json")]
    pub forced_eos_token_id: Option<Vec<u32>>,
    #[serde(default, deserialize_with = "ids_from_json")]
    pub eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
    /// Re-normalise the scores (log-softmax) after every other processor.
    pub renormalize_logits: Option<bool>,
}

impl GenerationOverrides {
    /// Reads `generation_config.json` in `dir`. A repo without one gets its generation
    /// settings from `config.json`, as transformers' `GenerationConfig.from_model_config` does.
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let path = ModelDir::new(dir).generation_config_path();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::file(&path, format!("invalid generation settings: {e}")))
    }

    /// Settings in the generation config of `dir` that change transformers' output but that
    /// dragoman does not implement, as "key = value" strings (empty when all is supported).
    pub fn unsupported_in(dir: &Path) -> Vec<String> {
        let path = ModelDir::new(dir).generation_config_path();
        let raw: Value = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(raw) => raw,
            None => return Vec::new(),
        };
        let is_active = |key: &str, value: &Value| match (key, value) {
            (_, Value::Null) => false,
            ("do_sample", v) => v.as_bool() == Some(true),
            ("encoder_no_repeat_ngram_size" | "num_beam_groups", v) => {
                v.as_u64().is_some_and(|n| n > 1)
            }
            ("diversity_penalty", v) => v.as_f64().is_some_and(|x| x != 0.0),
            ("encoder_repetition_penalty" | "guidance_scale", v) => {
                v.as_f64().is_some_and(|x| x != 1.0)
            }
            (
                "suppress_tokens"
                | "begin_suppress_tokens"
                | "sequence_bias"
                | "forced_decoder_ids",
                v,
            ) => v.as_array().is_none_or(|a| !a.is_empty()),
            ("exponential_decay_length_penalty", _) => true,
            _ => false,
        };
        const KEYS: &[&str] = &[
            "do_sample",
            "encoder_no_repeat_ngram_size",
            "num_beam_groups",
            "diversity_penalty",
            "encoder_repetition_penalty",
            "guidance_scale",
            "suppress_tokens",
            "begin_suppress_tokens",
            "sequence_bias",
            "forced_decoder_ids",
            "exponential_decay_length_penalty",
        ];
        KEYS.iter()
            .filter_map(|&key| {
                raw.get(key)
                    .filter(|v| is_active(key, v))
                    .map(|v| format!("{key} = {v}"))
            })
            .collect()
    }

    /// `self` with every setting `top` has replaced by `top`'s.
    pub fn overridden_by(mut self, top: &GenerationOverrides) -> Self {
        macro_rules! take {
            ($($field:ident),*) => { $( if top.$field.is_some() { self.$field = top.$field.clone(); } )* };
        }
        take!(
            num_beams,
            num_return_sequences,
            output_scores,
            max_length,
            max_new_tokens,
            min_length,
            min_new_tokens,
            length_penalty,
            early_stopping,
            no_repeat_ngram_size,
            repetition_penalty,
            bad_words_ids,
            forced_bos_token_id,
            forced_eos_token_id,
            eos_token_id,
            pad_token_id,
            decoder_start_token_id,
            renormalize_logits
        );
        self
    }
}

/// The settings one generation runs with, lengths counted as transformers counts them for
/// encoder-decoder models: the decoder start token included.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GenerationSettings {
    pub num_beams: usize,
    pub num_return_sequences: usize,
    pub output_scores: bool,
    pub max_length: usize,
    pub min_length: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f64,
    pub bad_words_ids: Vec<Vec<u32>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Vec<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: u32,
    pub decoder_start_token_id: u32,
    pub renormalize_logits: bool,
}

/// The model facts generation falls back on when the generation config is silent.
pub struct ModelDefaults {
    pub eos: u32,
    pub pad: u32,
    pub decoder_start: u32,
    pub max_positions: usize,
}

impl GenerationSettings {
    /// Resolves `config` (generation_config.json with flags applied) as `generate()` does.
    pub fn resolve(config: &GenerationOverrides, model: &ModelDefaults) -> Result<Self> {
        const PROMPT: usize = 1; // the decoder start token
        let max_length = match (config.max_new_tokens, config.max_length) {
            (Some(new), _) => new + PROMPT,
            (None, Some(max)) => max,
            // transformers' model-agnostic default: 20 new tokens, within the positions.
            (None, None) => (20 + PROMPT).min(model.max_positions),
        };
        if max_length <= PROMPT {
            return Err(Error::Setting(format!(
                "max_length {max_length} leaves no room to generate; use --max-new-tokens 1 or more"
            )));
        }
        let min_length = match config.min_new_tokens {
            Some(new) => new + PROMPT,
            None => config.min_length.unwrap_or(0),
        };
        let num_beams = config.num_beams.unwrap_or(1);
        if num_beams == 0 {
            return Err(Error::Setting("num_beams must be at least 1".into()));
        }
        if num_beams > MAX_BEAMS {
            return Err(Error::Setting(format!(
                "num_beams {num_beams}: at most {MAX_BEAMS}"
            )));
        }
        let num_return_sequences = config.num_return_sequences.unwrap_or(1);
        if num_return_sequences == 0 || num_return_sequences > num_beams {
            // transformers: "greedy methods ... cannot return more than one sequence";
            // beam search: "num_return_sequences has to be smaller or equal to num_beams".
            return Err(Error::Setting(format!(
                "--alternatives (num_return_sequences) {num_return_sequences}: at least 1 and at most the beams ({num_beams}); raise --beams"
            )));
        }
        let repetition_penalty = config.repetition_penalty.unwrap_or(1.0);
        if repetition_penalty <= 0.0 || !repetition_penalty.is_finite() {
            return Err(Error::Setting(format!(
                "repetition_penalty must be a positive number, not {repetition_penalty}"
            )));
        }
        let length_penalty = config.length_penalty.unwrap_or(1.0);
        if !length_penalty.is_finite() {
            return Err(Error::Setting(format!(
                "length_penalty must be a finite number, not {length_penalty}"
            )));
        }
        let eos_token_ids = config
            .eos_token_id
            .clone()
            .unwrap_or_else(|| vec![model.eos]);
        // NoBadWordsLogitsProcessor drops bad words that are exactly an EOS token.
        let bad_words_ids = config
            .bad_words_ids
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !(w.is_empty() || (w.len() == 1 && eos_token_ids.contains(&w[0]))))
            .collect();
        Ok(Self {
            num_beams,
            num_return_sequences,
            output_scores: config.output_scores.unwrap_or(false),
            max_length,
            min_length,
            length_penalty,
            early_stopping: config.early_stopping.unwrap_or(EarlyStopping::Heuristic),
            no_repeat_ngram_size: config.no_repeat_ngram_size.unwrap_or(0),
            repetition_penalty,
            bad_words_ids,
            forced_bos_token_id: config.forced_bos_token_id,
            forced_eos_token_id: config.forced_eos_token_id.clone().unwrap_or_default(),
            eos_token_ids,
            pad_token_id: config.pad_token_id.unwrap_or(model.pad),
            decoder_start_token_id: config.decoder_start_token_id.unwrap_or(model.decoder_start),
            renormalize_logits: config.renormalize_logits.unwrap_or(false),
        })
    }
}

fn early_stopping_from_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<EarlyStopping>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(true)) => Ok(Some(EarlyStopping::Always)),
        Some(Value::Bool(false)) => Ok(Some(EarlyStopping::Heuristic)),
        Some(Value::String(s)) if s == "never" => Ok(Some(EarlyStopping::Never)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "early_stopping must be true, false or \"never\", not {other}"
        ))),
    }
}

/// A token id given as one integer or a list of them.
fn ids_from_json<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<u32>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(Option::<OneOrMany>::deserialize(d)?.map(|v| match v {
        OneOrMany::One(id) => vec![id],
        OneOrMany::Many(ids) => ids,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: ModelDefaults = ModelDefaults {
        eos: 0,
        pad: 9,
        decoder_start: 9,
        max_positions: 512,
    };

    #[test]
    fn beams_are_bounded_both_ways() {
        for (beams, ok) in [
            (0, false),
            (1, true),
            (MAX_BEAMS, true),
            (MAX_BEAMS + 1, false),
        ] {
            let config = GenerationOverrides {
                num_beams: Some(beams),
                ..Default::default()
            };
            assert_eq!(
                GenerationSettings::resolve(&config, &MODEL).is_ok(),
                ok,
                "{beams}"
            );
        }
    }

    #[test]
    fn max_new_tokens_wins_over_max_length() {
        let config = GenerationOverrides {
            max_length: Some(512),
            ..Default::default()
        }
        .overridden_by(&GenerationOverrides {
            max_new_tokens: Some(24),
            ..Default::default()
        });
        assert_eq!(
            GenerationSettings::resolve(&config, &MODEL)
                .unwrap()
                .max_length,
            25
        );
    }

    #[test]
    fn defaults_are_transformers_global_defaults() {
        let s = GenerationSettings::resolve(&GenerationOverrides::default(), &MODEL).unwrap();
        assert_eq!((s.num_beams, s.max_length, s.min_length), (1, 21, 0));
        assert_eq!(s.early_stopping, EarlyStopping::Heuristic);
        assert_eq!((s.pad_token_id, s.eos_token_ids.clone()), (9, vec![0]));
    }

    #[test]
    fn parses_generation_config_shapes() {
        let c: GenerationOverrides = serde_json::from_str(
            r#"{"bad_words_ids": [[9]], "early_stopping": "never", "forced_eos_token_id": 0, "eos_token_id": [0, 3], "num_beams": 4, "transformers_version": "5"}"#,
        )
        .unwrap();
        assert_eq!(c.early_stopping, Some(EarlyStopping::Never));
        assert_eq!(c.forced_eos_token_id, Some(vec![0]));
        assert_eq!(c.eos_token_id, Some(vec![0, 3]));
        let s = GenerationSettings::resolve(&c, &MODEL).unwrap();
        assert_eq!(s.bad_words_ids, vec![vec![9]]);
    }

    #[test]
    fn without_generation_config_the_model_config_decides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"model_type": "marian", "num_beams": 6, "max_length": 512, "bad_words_ids": [[9]], "d_model": 8}"#,
        )
        .unwrap();
        let c = GenerationOverrides::from_model_dir(dir.path()).unwrap();
        assert_eq!((c.num_beams, c.max_length), (Some(6), Some(512)));
        std::fs::write(
            dir.path().join("generation_config.json"),
            r#"{"num_beams": 2}"#,
        )
        .unwrap();
        let c = GenerationOverrides::from_model_dir(dir.path()).unwrap();
        assert_eq!((c.num_beams, c.max_length), (Some(2), None));
    }

    #[test]
    fn reports_settings_it_cannot_honour() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("generation_config.json"),
            r#"{"do_sample": true, "suppress_tokens": [], "encoder_repetition_penalty": 1.0, "num_beams": 4}"#,
        )
        .unwrap();
        assert_eq!(
            GenerationOverrides::unsupported_in(dir.path()),
            vec!["do_sample = true".to_string()]
        );
    }

    #[test]
    fn rejects_impossible_settings() {
        for bad in [
            GenerationOverrides {
                max_new_tokens: Some(0),
                ..Default::default()
            },
            GenerationOverrides {
                num_beams: Some(0),
                ..Default::default()
            },
            GenerationOverrides {
                repetition_penalty: Some(0.0),
                ..Default::default()
            },
        ] {
            assert!(GenerationSettings::resolve(&bad, &MODEL).is_err());
        }
    }
}
