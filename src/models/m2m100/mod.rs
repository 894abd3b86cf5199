//! m2m_100 (`model_type` "m2m_100"): NLLB-200 and M2M100, fairseq's multilingual models.
//!
//! Written for dragoman: candle-transformers has neither. On the shared stack
//! (`models::encoder_decoder`) the family is its config: pre-norm layers with a final
//! LayerNorm on each stack, scaled embeddings shared by both stacks and the head, no
//! `layernorm_embedding`, and fairseq's sinusoidal positions (not stored; rows from 2, as
//! transformers' `M2M100SinusoidalPositionalEmbedding`). The source language is a token the
//! tokenizer puts before the text; the target language is forced as the first generated token
//! (`forced_bos_token_id`).

mod config;
mod model;

pub(crate) use config::M2M100Config;
