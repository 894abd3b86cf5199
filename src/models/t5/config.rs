use serde::Deserialize;

/// The keys of a T5/mT5 `config.json` the model reads, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct T5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// "relu", "gelu", "gated-gelu", "gated-silu", …
    #[serde(default)]
    pub feed_forward_proj: Option<String>,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Written by transformers 5 beside `tie_word_embeddings: true`.
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: u32,
    /// The input length the model was trained for (t5-small: 512). Relative positions have no
    /// hard limit; dragoman splits longer documents at this length.
    #[serde(default)]
    pub n_positions: Option<usize>,
}

fn default_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_eps() -> f64 {
    1e-6
}
fn default_eos() -> u32 {
    1
}
