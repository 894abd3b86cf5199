//! The subcommands, one file each (translate, summarize, models; serve is `crate::serve`),
//! and what they share: flags → a loaded model (load.rs) → streamed text.

mod load;
mod models;
mod summarize;
mod translate;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::outputs;

pub(crate) use load::{load_translator, ModelChoice};
pub use models::models;
pub use summarize::summarize;
pub(crate) use summarize::{load_summarizer, summary_translator};
pub use translate::translate;
pub(crate) use translate::{
    sentence_json, translate_document, translate_text, translate_texts_aligned,
};

/// One line on stderr when `text` reliably is not in `expected`; the work goes on.
fn warn_language(name: &str, text: &str, expected: &str) {
    if let Some(found) = dragoman::text::unexpected_language(text, expected) {
        eprintln!(
            "dragoman: warning: {name} looks like {found}, not {expected} (the model's source language); going on anyway"
        );
    }
}

/// The inputs named on the command line (stdin for none), each checked to exist before any
/// work starts.
fn inputs(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        return Ok(vec![PathBuf::from("-")]);
    }
    for input in files.iter().filter(|p| p.as_os_str() != "-") {
        if !input.is_file() {
            anyhow::bail!("{}: no such file", input.display());
        }
    }
    Ok(files.to_vec())
}

/// Runs `write` on stdout, or on a temporary file beside `output` renamed over it at the
/// end: an interrupted or failed run leaves no half-written file.
fn write_output(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match output {
        Some(path) => {
            outputs::catch_interrupts();
            outputs::write_atomically(path, write)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// A whole input as bytes, with the name errors should give it.
fn read_bytes(input: &Path) -> Result<(String, Vec<u8>)> {
    if input.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("<stdin>: cannot read")?;
        return Ok(("<stdin>".to_string(), bytes));
    }
    let label = input.display().to_string();
    let bytes = std::fs::read(input).with_context(|| format!("{label}: cannot read"))?;
    Ok((label, bytes))
}

/// A whole input as text (a byte-order mark included), with the name errors should give it.
fn read_document(input: &Path, lossy: bool) -> Result<(String, String)> {
    let (label, bytes) = read_bytes(input)?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if lossy => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(e) => anyhow::bail!(
            "{label}: invalid UTF-8 at byte {}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --lossy",
            e.utf8_error().valid_up_to()
        ),
    };
    Ok((label, text))
}

/// A whole input read as a document of `format`: its name, the document, its size in bytes.
fn open_document(
    input: &Path,
    format: dragoman::documents::Format,
    lossy: bool,
) -> Result<(String, Box<dyn dragoman::documents::Document>, usize)> {
    if format.is_binary() {
        let (label, bytes) = read_bytes(input)?;
        let document = format.read_bytes(&bytes).with_context(|| label.clone())?;
        return Ok((label, document, bytes.len()));
    }
    let (label, source) = read_document(input, lossy)?;
    let document = format.read(&source).with_context(|| label.clone())?;
    Ok((label, document, source.len()))
}
