//! BART and mBART (`model_type` "bart", "mbart"): bart-large-cnn, distilbart, BARThez.
//!
//! Written for dragoman: candle-transformers has no BART. The layers are Marian's
//! (`models::layers`); what differs is learned positions (offset 2), `layernorm_embedding`,
//! and for mBART pre-norm layers with a final LayerNorm on each stack.

mod config;
mod model;

pub use config::BartConfig;
pub use model::Variant;
