//! The huggingface_hub cache, read and written in the layout Python uses, so models are
//! shared both ways: `<cache>/models--org--name/{blobs/<etag>, refs/<revision>,
//! snapshots/<commit>/<file> → ../../blobs/<etag>}`; locks in `<cache>/.locks/models--org--name/`.

use std::path::{Path, PathBuf};

use super::id::{is_commit_hash, HubId};
use crate::error::{Error, Result};
use crate::models::model_dir::ModelDir;
use crate::models::ModelConfig;

/// The hub cache directory as huggingface_hub computes it: `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> Result<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("HF_HUB_CACHE") {
        return Ok(dir);
    }
    if let Some(home) = var("HF_HOME") {
        return Ok(home.join("hub"));
    }
    let base = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .ok_or_else(|| {
            Error::Setting("cannot locate the Hugging Face cache: set HF_HOME".into())
        })?;
    Ok(base.join("huggingface").join("hub"))
}

pub fn repo_dir(cache: &Path, id: &HubId) -> PathBuf {
    cache.join(id.cache_folder())
}

/// The commit a revision points to in the cache, if known.
pub fn cached_commit(cache: &Path, id: &HubId) -> Option<String> {
    if is_commit_hash(&id.revision) {
        return Some(id.revision.clone());
    }
    let reference = repo_dir(cache, id).join("refs").join(&id.revision);
    std::fs::read_to_string(reference)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The snapshot directory of `id` if the cache holds a loadable copy of it (config,
/// weights and a tokenizer), without touching the network.
pub fn cached_snapshot(cache: &Path, id: &HubId) -> Option<PathBuf> {
    let commit = cached_commit(cache, id)?;
    let snapshot = repo_dir(cache, id).join("snapshots").join(commit);
    ModelDir::new(&snapshot).is_complete().then_some(snapshot)
}

/// A model found in the cache.
#[derive(Debug, Clone)]
pub struct CachedModel {
    pub repo: String,
    /// The revisions (refs) that point into it, with their commits.
    pub refs: Vec<(String, String)>,
    /// Bytes of its blobs on disk.
    pub size: u64,
    /// `model_type` of a snapshot's config.json, when readable.
    pub model_type: Option<String>,
    /// Whether that config describes an encoder-decoder (seq2seq) model.
    pub seq2seq: bool,
}

/// Encoder-decoder families, for configs that do not say `is_encoder_decoder`.
const SEQ2SEQ_FAMILIES: &[&str] = &[
    "marian",
    "t5",
    "mt5",
    "umt5",
    "longt5",
    "bart",
    "mbart",
    "m2m_100",
    "nllb_moe",
    "pegasus",
    "pegasus_x",
    "led",
    "fsmt",
    "prophetnet",
    "bigbird_pegasus",
    "plbart",
];

/// Every model repo in the cache, sorted by name.
pub fn scan(cache: &Path) -> Vec<CachedModel> {
    let mut models = Vec::new();
    let entries = match std::fs::read_dir(cache) {
        Ok(entries) => entries,
        Err(_) => return models,
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(folder) = name.strip_prefix("models--") else {
            continue;
        };
        let repo = folder.replacen("--", "/", 1);
        let dir = entry.path();
        let refs = read_refs(&dir.join("refs"));
        let config = refs
            .iter()
            .map(|(_, commit)| dir.join("snapshots").join(commit).join("config.json"))
            .chain(
                std::fs::read_dir(dir.join("snapshots"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path().join("config.json")),
            )
            .find_map(|config| ModelConfig::read(&config).ok().map(|c| c.raw));
        let model_type = config
            .as_ref()
            .and_then(|c| c.get("model_type")?.as_str().map(str::to_string));
        let seq2seq = config
            .as_ref()
            .and_then(|c| c.get("is_encoder_decoder")?.as_bool())
            .unwrap_or(false)
            || model_type
                .as_deref()
                .is_some_and(|t| SEQ2SEQ_FAMILIES.contains(&t));
        models.push(CachedModel {
            repo,
            refs,
            size: dir_size(&dir.join("blobs")),
            model_type,
            seq2seq,
        });
    }
    models.sort_by(|a, b| a.repo.cmp(&b.repo));
    models
}

fn read_refs(dir: &Path) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                stack.push((entry.path(), format!("{name}/")));
            } else if let Ok(commit) = std::fs::read_to_string(entry.path()) {
                refs.push((name, commit.trim().to_string()));
            }
        }
    }
    refs.sort();
    refs
}

/// Total size of the regular files under `dir` (blobs are never symlinks).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Removes every revision of a model from the cache, with its locks; returns the bytes freed.
pub fn remove(cache: &Path, id: &HubId) -> Result<u64> {
    let dir = repo_dir(cache, id);
    if !dir.is_dir() {
        return Err(Error::Model {
            model: id.repo.clone(),
            message: format!("not in the cache at {}", cache.display()),
        });
    }
    let size = dir_size(&dir.join("blobs"));
    std::fs::remove_dir_all(&dir).map_err(|e| Error::file(&dir, format!("cannot remove: {e}")))?;
    let locks = cache.join(".locks").join(id.cache_folder());
    let _ = std::fs::remove_dir_all(locks);
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn finds_complete_snapshots_through_refs() {
        let cache = tempfile::tempdir().unwrap();
        let id = HubId::parse("org/model").unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snapshot = cache
            .path()
            .join("models--org--model/snapshots")
            .join(commit);
        write(&snapshot.join("config.json"), r#"{"model_type": "marian"}"#);
        assert!(cached_snapshot(cache.path(), &id).is_none(), "no ref yet");
        write(&cache.path().join("models--org--model/refs/main"), commit);
        assert!(
            cached_snapshot(cache.path(), &id).is_none(),
            "no weights or tokenizer yet"
        );
        write(
            &snapshot.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "s1.safetensors"}}"#,
        );
        write(&snapshot.join("tokenizer.json"), "{}");
        assert!(
            cached_snapshot(cache.path(), &id).is_none(),
            "shard missing"
        );
        write(&snapshot.join("s1.safetensors"), "x");
        assert_eq!(cached_snapshot(cache.path(), &id).unwrap(), snapshot);
        let pinned = HubId::parse(&format!("org/model@{commit}")).unwrap();
        assert_eq!(cached_snapshot(cache.path(), &pinned).unwrap(), snapshot);

        write(&cache.path().join("models--org--model/blobs/abc"), "12345");
        let models = scan(cache.path());
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].repo, "org/model");
        assert_eq!(
            models[0].refs,
            vec![("main".to_string(), commit.to_string())]
        );
        assert_eq!(
            (models[0].size, models[0].model_type.as_deref()),
            (5, Some("marian"))
        );
        assert_eq!(remove(cache.path(), &id).unwrap(), 5);
        assert!(scan(cache.path()).is_empty());
    }
}
