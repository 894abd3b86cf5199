//! Where models come from: `--model DIR|HUB_ID[@REV]` → a local directory laid out like a
//! hub repo. An existing directory always wins; a hub id resolves through the
//! huggingface_hub cache ([`cache`]), shared with Python, downloading into it on first
//! use ([`download`]) unless offline.

pub mod cache;
mod download;
mod id;

use std::path::{Path, PathBuf};

pub use id::HubId;

use crate::error::{Error, Result};

/// How hub ids may be resolved.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubOptions {
    /// Never touch the network (`--offline`, or `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Draw download progress bars on stderr.
    pub progress: bool,
}

/// huggingface_hub's reading of `HF_HUB_OFFLINE`.
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_uppercase().as_str(),
                "1" | "ON" | "YES" | "TRUE"
            )
        })
        .unwrap_or(false)
}

/// The local directory for `spec`: the directory itself, or the snapshot of a hub id,
/// from the cache when it holds a complete copy (no network), else downloaded.
pub fn resolve(spec: &str, options: HubOptions) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let id = HubId::parse(spec)?;
    let cache = cache::cache_dir()?;
    if let Some(snapshot) = cache::cached_snapshot(&cache, &id) {
        return Ok(snapshot);
    }
    if options.offline {
        return Err(not_cached_offline(&id, &cache));
    }
    download::fetch(&cache, &id, options.progress)
}

/// The cached snapshot of a hub model, never touching the network.
pub fn cached(spec: &str) -> Result<PathBuf> {
    let id = HubId::parse(spec)?;
    let cache = cache::cache_dir()?;
    cache::cached_snapshot(&cache, &id).ok_or_else(|| not_cached(&id, &cache))
}

/// Downloads (or refreshes) a hub model into the cache and returns its snapshot.
pub fn pull(spec: &str, options: HubOptions) -> Result<PathBuf> {
    let id = HubId::parse(spec)?;
    let cache = cache::cache_dir()?;
    if options.offline {
        return cache::cached_snapshot(&cache, &id).ok_or_else(|| not_cached_offline(&id, &cache));
    }
    download::fetch(&cache, &id, options.progress)
}

fn not_cached(id: &HubId, cache: &Path) -> Error {
    Error::Model {
        model: id.to_string(),
        message: format!(
            "not in the cache at {}; run `dragoman models pull {id}`",
            cache.display()
        ),
    }
}

fn not_cached_offline(id: &HubId, cache: &Path) -> Error {
    Error::Model {
        model: id.to_string(),
        message: format!(
            "not in the cache at {} and offline mode forbids downloading; run `dragoman models pull {id}` while online",
            cache.display()
        ),
    }
}
