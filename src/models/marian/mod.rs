//! Marian (opus-mt) models, written for dragoman rather than taken from candle-transformers,
//! whose `marian.rs` keeps a KV cache in the encoder, has no padding masks, recomputes the
//! cross-attention keys/values at every step and lets `<pad>` be generated. This one follows
//! transformers' `modeling_marian.py`: post-LayerNorm layers, scaled embeddings, static
//! sinusoidal positions, `final_logits_bias`.

mod config;
mod model;

pub use config::MarianConfig;
