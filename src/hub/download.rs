//! Downloads a model snapshot through hf-hub into the shared cache, the way
//! huggingface_hub's `snapshot_download` does: resolve the revision to a commit, fetch the
//! files a model needs at that commit (each to `blobs/<etag>.incomplete`, renamed when
//! complete, under `.locks/…/<etag>.lock`), verify each blob against its etag, and only
//! then point `refs/<revision>` at the commit, so a half-done download is never used.
//!
//! hf-hub gives up on a blob lock after 10 s, so a second process would fail while the
//! first fetches large weights; dragoman therefore also holds a per-repo lock for the whole
//! snapshot (waiting as long as needed) and finds the blobs present when its turn comes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hf_hub::progress::{DownloadEvent, FileStatus, Progress, ProgressEvent, ProgressHandler};
use hf_hub::{HFClientBuilder, HFError};
use sha2::Digest;

use super::cache;
use super::id::HubId;
use crate::error::{Error, Result};
use crate::models::model_dir::{self, ModelDir};
use crate::models::ModelConfig;

/// Tokenizer and configuration files, fetched when the repo has them.
const SMALL_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "source.spm",
    "target.spm",
    "vocab.json",
    "target_vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "merges.txt",
    // The model card: its front matter names the licence (`models info`).
    "README.md",
];

const NO_TOKENIZER: &str =
    "the repo lacks a tokenizer dragoman can read (tokenizer.json, spiece.model, sentencepiece.bpe.model or source.spm + vocab.json)";

/// Fetches (or refreshes) `id` into `cache` and returns its snapshot directory.
pub fn fetch(cache_dir: &Path, id: &HubId, show_progress: bool) -> Result<PathBuf> {
    let client = HFClientBuilder::new()
        .cache_dir(cache_dir)
        .build_sync()
        .map_err(|e| Error::Model {
            model: id.to_string(),
            message: format!("cannot set up the hub client: {e}"),
        })?;
    let endpoint = client_endpoint();
    let (owner, name) = id.owner_and_name();
    let repo = client.model(owner, name);

    let _guard = RepoLock::acquire(cache_dir, id)?;
    let info = repo
        .info()
        .revision(id.revision.clone())
        .send()
        .map_err(|e| hub_error(id, &endpoint, cache_dir, e))?;
    let commit = info.sha.clone().ok_or_else(|| Error::Model {
        model: id.to_string(),
        message: "the hub did not say which commit it serves".into(),
    })?;
    let files: Vec<String> = info
        .siblings
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.rfilename)
        .collect();
    let has = |name: &str| files.iter().any(|f| f == name);

    let download = |filename: &str| -> Result<PathBuf> {
        let progress = show_progress.then(|| Progress::new(Bar::default()));
        let path = repo
            .download_file()
            .filename(filename.to_string())
            .revision(commit.clone())
            .maybe_progress(progress)
            .send()
            .map_err(|e| hub_error(id, &endpoint, cache_dir, e))?;
        verify_blob(&path)?;
        Ok(path)
    };

    if !has("config.json") {
        return Err(Error::Model {
            model: id.to_string(),
            message: "the repo has no config.json: not a transformers model".into(),
        });
    }
    // The architecture is checked before any large file is fetched.
    let config = download("config.json")?;
    check_family(id, &config)?;
    for name in SMALL_FILES
        .iter()
        .filter(|n| **n != "config.json" && has(n))
    {
        download(name)?;
    }
    // Checked before the large files too, from the repo listing.
    if !model_dir::has_tokenizer_files(has) {
        return Err(Error::Model {
            model: id.to_string(),
            message: NO_TOKENIZER.into(),
        });
    }
    let weights = model_dir::preferred_weights(has).ok_or_else(|| Error::Model {
        model: id.to_string(),
        message:
            "the repo has no weights dragoman can read (model.safetensors or pytorch_model.bin)"
                .into(),
    })?;
    let weights_path = download(weights.file)?;
    if weights.sharded {
        for shard in model_dir::shard_names(&weights_path)? {
            download(&shard)?;
        }
    }

    let snapshot = cache::repo_dir(cache_dir, id)
        .join("snapshots")
        .join(&commit);
    if !ModelDir::new(&snapshot).is_complete() {
        return Err(Error::Model {
            model: id.to_string(),
            message: "the downloaded files do not form a complete model (config, weights, tokenizer); run the command again".into(),
        });
    }
    if !super::id::is_commit_hash(&id.revision) {
        write_ref(cache_dir, id, &commit)?;
    }
    Ok(snapshot)
}

fn client_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
}

fn check_family(id: &HubId, config: &Path) -> Result<()> {
    let config = ModelConfig::read(config)?;
    if config.is_supported() {
        return Ok(());
    }
    Err(Error::Model {
        model: id.to_string(),
        message: config.unsupported_message(),
    })
}

/// Checks a downloaded file against the etag its blob is named after: the sha256 of the
/// content for LFS files, git's blob sha1 for small files. A mismatch removes the blob.
fn verify_blob(snapshot_file: &Path) -> Result<()> {
    let blob = std::fs::canonicalize(snapshot_file).map_err(|e| Error::file(snapshot_file, e))?;
    let etag = blob
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let digest = match etag.len() {
        64 => hex(&hash_file::<sha2::Sha256>(&blob, None)?),
        40 => {
            let len = std::fs::metadata(&blob)
                .map_err(|e| Error::file(&blob, e))?
                .len();
            hex(&hash_file::<sha1::Sha1>(
                &blob,
                Some(format!("blob {len}\0").as_bytes()),
            )?)
        }
        _ => return Ok(()), // an etag that is not a content hash cannot be checked
    };
    if digest.eq_ignore_ascii_case(&etag) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&blob);
    let _ = std::fs::remove_file(snapshot_file);
    Err(Error::file(
        snapshot_file,
        "downloaded content does not match its checksum (removed); run the command again",
    ))
}

fn hash_file<D: Digest>(path: &Path, prefix: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut hasher = D::new();
    if let Some(prefix) = prefix {
        hasher.update(prefix);
    }
    let mut file = File::open(path).map_err(|e| Error::file(path, e))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::file(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Points `refs/<revision>` at `commit`, atomically.
fn write_ref(cache_dir: &Path, id: &HubId, commit: &str) -> Result<()> {
    let reference = cache::repo_dir(cache_dir, id)
        .join("refs")
        .join(&id.revision);
    let dir = reference.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(dir).map_err(|e| storage_error(dir, e))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| storage_error(dir, e))?;
    std::io::Write::write_all(&mut temp, commit.as_bytes()).map_err(|e| storage_error(dir, e))?;
    temp.persist(&reference)
        .map_err(|e| storage_error(&reference, e.error))?;
    Ok(())
}

fn storage_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(28) {
        Error::file(
            path,
            "disk full: free some space (or point HF_HOME elsewhere) and run again",
        )
    } else {
        Error::file(path, e)
    }
}

/// An exclusive, blocking lock on one repo for the length of a snapshot download.
struct RepoLock(File);

impl RepoLock {
    fn acquire(cache_dir: &Path, id: &HubId) -> Result<Self> {
        let dir = cache_dir.join(".locks").join(id.cache_folder());
        std::fs::create_dir_all(&dir).map_err(|e| storage_error(&dir, e))?;
        let path = dir.join("dragoman-snapshot.lock");
        let file = File::create(&path).map_err(|e| storage_error(&path, e))?;
        file.lock()
            .map_err(|e| Error::file(&path, format!("cannot lock: {e}")))?;
        Ok(Self(file))
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// One line per failure a user can act on. The hub's `X-Error-Code` decides first: it
/// answers 401 RepoNotFound for a missing repo and 404 for a missing revision alike.
fn hub_error(id: &HubId, endpoint: &str, cache_dir: &Path, e: HFError) -> Error {
    let code = match &e {
        HFError::RepoNotFound { context, .. }
        | HFError::RevisionNotFound { context, .. }
        | HFError::EntryNotFound { context, .. } => {
            context.as_ref().and_then(|c| c.error_code.clone())
        }
        HFError::AuthRequired { context }
        | HFError::Forbidden { context }
        | HFError::Http { context } => context.error_code.clone(),
        _ => None,
    };
    let not_found = || {
        format!(
            "not found on {endpoint}; check the id (a private or gated model also needs HF_TOKEN)"
        )
    };
    let gated = || {
        "is gated or private: request access on its hub page, then set HF_TOKEN (or log in with `hf auth login`)"
            .to_string()
    };
    let message = match (code.as_deref(), &e) {
        (Some("RepoNotFound"), _) | (None, HFError::RepoNotFound { .. }) => not_found(),
        (Some("GatedRepo"), _)
        | (None, HFError::AuthRequired { .. } | HFError::Forbidden { .. }) => gated(),
        (Some("RevisionNotFound"), _) | (None, HFError::RevisionNotFound { .. }) => {
            format!("revision {} not found on {endpoint}", id.revision)
        }
        (Some("EntryNotFound"), _) | (None, HFError::EntryNotFound { .. }) => match &e {
            HFError::EntryNotFound { path, .. } => format!("file {path} not found in the repo"),
            _ => e.to_string(),
        },
        (_, HFError::Io(io)) if io.raw_os_error() == Some(28) => {
            format!(
                "disk full while writing to {}; free some space or set HF_HOME elsewhere",
                cache_dir.display()
            )
        }
        (_, HFError::Request { .. }) => {
            format!(
                "cannot reach {endpoint}; check the network, or use a cached model with --offline"
            )
        }
        _ => e.to_string(),
    };
    Error::Model {
        model: id.to_string(),
        message,
    }
}

/// A progress bar per file on stderr (only built when stderr is a terminal).
#[derive(Default)]
struct Bar(Mutex<Option<indicatif::ProgressBar>>);

impl ProgressHandler for Bar {
    fn on_progress(&self, event: &ProgressEvent) {
        let ProgressEvent::Download(event) = event else {
            return;
        };
        let Ok(mut bar) = self.0.lock() else { return };
        match event {
            DownloadEvent::Start { total_bytes, .. } => {
                let b = indicatif::ProgressBar::new(*total_bytes);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg:30!} {bar:30} {bytes}/{total_bytes} {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                *bar = Some(b);
            }
            DownloadEvent::Progress { files } => {
                if let (Some(b), Some(file)) = (bar.as_ref(), files.last()) {
                    b.set_message(file.filename.clone());
                    b.set_position(file.bytes_completed);
                    if file.status == FileStatus::Complete {
                        b.finish();
                    }
                }
            }
            DownloadEvent::Complete => {
                if let Some(b) = bar.take() {
                    b.finish();
                }
            }
            _ => {}
        }
    }
}
