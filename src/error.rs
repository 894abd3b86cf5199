//! The library's error type: every variant names the thing the user has to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file that is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    ModelFile { path: PathBuf, message: String },

    /// A model that cannot be found or used as asked.
    #[error("model {model}: {message}")]
    Model { model: String, message: String },

    /// A setting (flag, config value) that cannot be honoured.
    #[error("{0}")]
    Setting(String),

    /// Text the tokenizer or the pipeline cannot take.
    #[error("{0}")]
    Input(String),

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::ModelFile {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
