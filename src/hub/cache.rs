//! Resolves `--model DIR|HUB_ID[@REV]` to a local directory laid out like a hub repo.
//! An existing directory always wins; a hub id is looked up in the huggingface_hub cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), the layout
//! Python's huggingface_hub writes: `models--org--name/{refs/<rev>, snapshots/<commit>/…}`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A model named by hub id, with an optional revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub revision: String,
}

impl HubId {
    pub fn parse(spec: &str) -> Result<Self> {
        let (repo, revision) = match spec.rsplit_once('@') {
            Some((repo, rev)) => (repo, rev),
            None => (spec, "main"),
        };
        let valid_part = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.is_empty()
            || parts.len() > 2
            || !parts.iter().all(|p| valid_part(p))
            || revision.is_empty()
        {
            return Err(Error::Setting(format!(
                "--model {spec}: not an existing directory, nor a hub id like org/name[@revision]"
            )));
        }
        Ok(Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The cache folder name: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

/// The hub cache directory, as huggingface_hub computes it from the environment.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(home).join("hub"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("huggingface").join("hub"))
}

/// The local directory for `spec`: the directory itself, or the cached snapshot of a hub id.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let id = HubId::parse(spec)?;
    let cache = cache_dir().ok_or_else(|| {
        Error::Setting("cannot locate the Hugging Face cache: set HF_HOME".into())
    })?;
    snapshot_in_cache(&cache, &id)
}

/// The snapshot directory of `id` in `cache`, following `refs/<revision>` for branch and
/// tag names.
pub fn snapshot_in_cache(cache: &Path, id: &HubId) -> Result<PathBuf> {
    let repo_dir = cache.join(id.cache_folder());
    let commit = if is_commit_hash(&id.revision) {
        id.revision.clone()
    } else {
        let reference = repo_dir.join("refs").join(&id.revision);
        match std::fs::read_to_string(&reference) {
            Ok(text) => text.trim().to_string(),
            Err(_) => return Err(not_cached(id, cache)),
        }
    };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !snapshot.join("config.json").is_file() {
        return Err(not_cached(id, cache));
    }
    Ok(snapshot)
}

fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

fn not_cached(id: &HubId, cache: &Path) -> Error {
    Error::Model {
        model: format!("{}@{}", id.repo, id.revision),
        message: format!(
            "not in the Hugging Face cache at {}; this dragoman cannot download yet: fetch it once with \
             huggingface_hub (`hf download {}`) or pass --model DIR",
            cache.display(),
            id.repo
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        assert_eq!(
            HubId::parse("Helsinki-NLP/opus-mt-fr-en@v1").unwrap(),
            HubId {
                repo: "Helsinki-NLP/opus-mt-fr-en".into(),
                revision: "v1".into()
            }
        );
        assert_eq!(HubId::parse("t5-small").unwrap().revision, "main");
        for bad in ["", "a/b/c", "../x", "a b/c", "org/name@"] {
            assert!(HubId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_snapshots_through_refs() {
        let cache = tempfile::tempdir().unwrap();
        let id = HubId::parse("org/model").unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snapshot = cache
            .path()
            .join("models--org--model/snapshots")
            .join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join("config.json"), "{}").unwrap();
        assert!(snapshot_in_cache(cache.path(), &id).is_err());
        std::fs::create_dir_all(cache.path().join("models--org--model/refs")).unwrap();
        std::fs::write(cache.path().join("models--org--model/refs/main"), commit).unwrap();
        assert_eq!(snapshot_in_cache(cache.path(), &id).unwrap(), snapshot);
        let pinned = HubId::parse(&format!("org/model@{commit}")).unwrap();
        assert_eq!(snapshot_in_cache(cache.path(), &pinned).unwrap(), snapshot);
    }
}
