//! `--out-dir`: one output file per input, mirroring the inputs' tree, each written to a
//! temporary file beside its destination and renamed into place when complete — so the
//! output directory only ever holds finished outputs, even after Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// Set by the Ctrl-C handler; long loops check it between blocks and stop cleanly.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// From now on Ctrl-C stops the run at the next block instead of killing it mid-write.
pub fn catch_interrupts() {
    // An error only means a handler is already set, which is just as good.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

/// The error a run stopped by Ctrl-C ends with (exit status 130, as a shell reports SIGINT).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; no partial output was written")
    }
}

impl std::error::Error for Interrupted {}

/// Fails with [`Interrupted`] once Ctrl-C was pressed.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Interrupted.into());
    }
    Ok(())
}

pub fn was_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One input and where its output goes.
#[derive(Debug)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// The jobs for `inputs` (files, or directories with `recursive`): `dir/a/b.md` under the
/// directory argument `dir` becomes `out_dir/a/b.<lang>.md`; a file argument keeps its name.
pub fn plan(inputs: &[PathBuf], recursive: bool, out_dir: &Path, lang: &str) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            anyhow::bail!("--out-dir needs input files, not stdin");
        }
        if input.is_dir() {
            if !recursive {
                anyhow::bail!(
                    "{}: is a directory (pass -r to translate its files)",
                    input.display()
                );
            }
            let mut files = Vec::new();
            // An output directory inside the input tree is not input (a second run would
            // otherwise translate the first run's outputs).
            let skip = std::fs::canonicalize(out_dir).ok();
            walk(input, skip.as_deref(), &mut files)?;
            files.sort();
            for file in files {
                let relative = file.strip_prefix(input).unwrap_or(&file).to_path_buf();
                jobs.push(Job {
                    output: out_dir.join(output_name(&relative, lang)),
                    input: file,
                });
            }
        } else if input.is_file() {
            let name = PathBuf::from(input.file_name().unwrap_or_default());
            jobs.push(Job {
                output: out_dir.join(output_name(&name, lang)),
                input: input.clone(),
            });
        } else {
            anyhow::bail!("{}: no such file or directory", input.display());
        }
    }
    for (i, job) in jobs.iter().enumerate() {
        if let Some(other) = jobs[..i].iter().find(|j| j.output == job.output) {
            anyhow::bail!(
                "{} and {} would both be written to {}",
                other.input.display(),
                job.input.display(),
                job.output.display()
            );
        }
    }
    Ok(jobs)
}

/// The text files under `dir`, hidden entries and the directory `skip` left out.
fn walk(dir: &Path, skip: Option<&Path>, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("{}: cannot read the directory", dir.display()))?
            .path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            if skip.is_some() && std::fs::canonicalize(&path).ok().as_deref() == skip {
                continue;
            }
            walk(&path, skip, files)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            dragoman::documents::Format::EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
        }) {
            files.push(path);
        }
    }
    Ok(())
}

/// `article.md` → `article.en.md`; `notes` → `notes.en`.
fn output_name(relative: &Path, lang: &str) -> PathBuf {
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match relative.extension() {
        Some(ext) => format!("{stem}.{lang}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{lang}"),
    };
    relative.with_file_name(name)
}

/// Creates the directory `output` goes into.
pub fn create_parent(output: &Path) -> Result<()> {
    match output.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the directory", dir.display())),
        None => Ok(()),
    }
}

/// Writes `output` through `write` atomically: a hidden temporary file in the same
/// directory, renamed over the destination only when `write` succeeded.
pub fn write_atomically(
    output: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    use std::io::Write;
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".dragoman-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create the output file", output.display()))?;
    {
        let mut out = std::io::BufWriter::new(temp.as_file_mut());
        write(&mut out)?;
        out.flush()
            .with_context(|| format!("{}: cannot write", output.display()))?;
    }
    temp.persist(output)
        .with_context(|| format!("{}: cannot write the output file", output.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_insert_the_language_before_the_extension() {
        assert_eq!(
            output_name(Path::new("a/article.md"), "en"),
            Path::new("a/article.en.md")
        );
        assert_eq!(output_name(Path::new("notes"), "ru"), Path::new("notes.ru"));
        assert_eq!(
            output_name(Path::new("x.tar.txt"), "en"),
            Path::new("x.tar.en.txt")
        );
    }
}
