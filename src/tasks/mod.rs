//! The user-level tasks: text in, text out, on an [`engine::Engine`].

pub mod engine;
pub mod summarize;
pub mod translate;
