//! A model repository's files, as hub repos lay them out: the one place that knows which
//! weight layouts exist and which is preferred, how a shard index names its shards, which
//! tokenizer files dragoman reads, and what makes a snapshot complete. The hub's download
//! (from a repo listing, before fetching) and its cache (on disk) ask the same questions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ModelConfig;
use crate::error::{Error, Result};

/// How a checkpoint's tensors are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    Safetensors,
    /// PyTorch's `pytorch_model.bin` (a zip of pickles).
    Pickle,
}

/// One way a repo stores its weights: a file, or an index naming shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightLayout {
    pub file: &'static str,
    pub format: WeightFormat,
    pub sharded: bool,
}

/// The weight layouts dragoman reads, in transformers' order of preference (safetensors
/// first).
pub const WEIGHT_LAYOUTS: [WeightLayout; 4] = [
    WeightLayout {
        file: "model.safetensors",
        format: WeightFormat::Safetensors,
        sharded: false,
    },
    WeightLayout {
        file: "model.safetensors.index.json",
        format: WeightFormat::Safetensors,
        sharded: true,
    },
    WeightLayout {
        file: "pytorch_model.bin",
        format: WeightFormat::Pickle,
        sharded: false,
    },
    WeightLayout {
        file: "pytorch_model.bin.index.json",
        format: WeightFormat::Pickle,
        sharded: true,
    },
];

/// The preferred layout among a repo's files (`has` answers for a name).
pub fn preferred_weights(has: impl Fn(&str) -> bool) -> Option<WeightLayout> {
    WEIGHT_LAYOUTS.into_iter().find(|layout| has(layout.file))
}

/// Whether a repo's files include a tokenizer dragoman reads: `tokenizer.json`, T5's
/// `spiece.model`, NLLB's `sentencepiece.bpe.model` (M2M100's, with `vocab.json`), or
/// Marian's `source.spm` + `vocab.json`.
pub fn has_tokenizer_files(has: impl Fn(&str) -> bool) -> bool {
    has("tokenizer.json")
        || has("spiece.model")
        || has("sentencepiece.bpe.model")
        || (has("source.spm") && has("vocab.json"))
}

/// The distinct shard files a `*.index.json` weight map names, sorted.
pub fn shard_names(index: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| Error::file(index, e))?;
    let parsed: Index = serde_json::from_str(&text)
        .map_err(|e| Error::file(index, format!("invalid index: {e}")))?;
    let mut names: Vec<String> = parsed.weight_map.into_values().collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// A model laid out as a hub repo in a local directory (a snapshot, or a directory of its own).
pub struct ModelDir {
    path: PathBuf,
}

impl ModelDir {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.path.join(name).is_file()
    }

    /// `config.json`, parsed.
    pub fn config(&self) -> Result<ModelConfig> {
        ModelConfig::read(&self.path.join("config.json"))
    }

    /// Where the model's generation settings live: `generation_config.json`, or, without
    /// one, `config.json` (as transformers' `GenerationConfig.from_model_config` reads it).
    pub fn generation_config_path(&self) -> PathBuf {
        let own = self.path.join("generation_config.json");
        if own.is_file() {
            own
        } else {
            self.path.join("config.json")
        }
    }

    /// The preferred weight layout present and its files (every shard of an index, each
    /// checked to exist).
    pub fn weight_files(&self) -> Result<(WeightLayout, Vec<PathBuf>)> {
        let layout = preferred_weights(|name| self.has(name)).ok_or_else(|| {
            Error::file(
                &self.path,
                "no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)",
            )
        })?;
        let index = self.path.join(layout.file);
        if !layout.sharded {
            return Ok((layout, vec![index]));
        }
        let files: Vec<PathBuf> = shard_names(&index)?
            .into_iter()
            .map(|name| self.path.join(name))
            .collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(Error::file(
                missing,
                format!("shard listed in {} is missing", index.display()),
            ));
        }
        Ok((layout, files))
    }

    /// Whether it holds what loading needs: config.json, weights (every shard of an index),
    /// and tokenizer files.
    pub fn is_complete(&self) -> bool {
        self.has("config.json")
            && self.weight_files().is_ok()
            && has_tokenizer_files(|name| self.has(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_preferred_in_transformers_order_and_shards_all_required() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let model = ModelDir::new(dir.path());
        assert!(model.weight_files().is_err());
        write("pytorch_model.bin", "");
        assert_eq!(model.weight_files().unwrap().0.file, "pytorch_model.bin");
        write(
            "model.safetensors.index.json",
            r#"{"weight_map": {"a": "b.safetensors", "c": "a.safetensors", "d": "b.safetensors"}}"#,
        );
        // The index wins over the .bin, and names a missing shard.
        let err = model.weight_files().unwrap_err().to_string();
        assert!(
            err.contains("a.safetensors") && err.contains("missing"),
            "{err}"
        );
        write("a.safetensors", "");
        write("b.safetensors", "");
        let (layout, files) = model.weight_files().unwrap();
        assert!(layout.sharded && layout.format == WeightFormat::Safetensors);
        assert_eq!(
            files,
            [
                dir.path().join("a.safetensors"),
                dir.path().join("b.safetensors")
            ]
        );
        assert!(!model.is_complete());
        write("config.json", "{}");
        write("spiece.model", "");
        assert!(model.is_complete());
    }
}
