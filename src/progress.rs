//! A progress bar over the bytes of the inputs, with the current file's name: only on a
//! terminal's stderr, never with -q, in plain characters (no colour, so NO_COLOR holds).

use std::io::IsTerminal;

pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// A bar for `total_bytes` of input, shown only where a person watches.
    pub fn new(total_bytes: u64, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self(Some(bar))
    }

    pub fn file(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
        }
    }

    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The total size of the files among `inputs` (stdin counts 0).
pub fn total_bytes<'a>(inputs: impl Iterator<Item = &'a std::path::Path>) -> u64 {
    inputs
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
