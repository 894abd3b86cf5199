//! The user-level tasks: text in, text out.

pub mod translate;
