//! dragoman: French → English/Russian translation and summaries with open seq2seq
//! models, token-exact with transformers' `generate()`.
//!
//! The pipeline, in module order: [`hub`] finds the model files, [`models`] loads the
//! network, [`tokenizer`] turns text into ids, [`text`] cuts lines into sentences,
//! [`generation`] searches, and [`tasks`] ties them into text-in, text-out operations.

pub mod catalog;
pub mod cpu;
pub mod device;
pub mod documents;
pub mod error;
pub mod generation;
pub mod hub;
pub mod languages;
pub mod models;
pub mod tasks;
pub mod text;
pub mod tokenizer;

pub use error::{Error, Result};
pub use tasks::engine::Engine;
pub use tasks::summarize::Summarizer;
pub use tasks::translate::Translator;
