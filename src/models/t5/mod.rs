//! T5 v1.0, v1.1/flan-T5 and mT5 (`model_type` "t5", "mt5"), written for dragoman rather than
//! taken from candle-transformers, whose `t5.rs` has no encoder padding mask, buckets decoder
//! positions as bidirectional, recomputes cross-attention keys/values every step, and scales a
//! tied head by `sqrt(d_model)` where transformers scales by `d_model**-0.5`.
//!
//! What varies between checkpoints is read from their files, never from the repo name: the
//! feed-forward block from `feed_forward_proj` (relu, gated-gelu, …), the head from whether
//! `lm_head.weight` is stored, the output scaling from the config keys transformers 5.23 reads.

mod config;
mod model;

pub use config::T5Config;
pub use model::T5;
