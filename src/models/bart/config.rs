use serde::Deserialize;

/// The keys of a BART/mBART `config.json` the model reads, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct BartConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos")]
    pub decoder_start_token_id: u32,
}

fn default_activation() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    1024
}
fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}
