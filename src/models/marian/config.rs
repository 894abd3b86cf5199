use serde::Deserialize;

/// The keys of a Marian `config.json` the model reads; the defaults are transformers'
/// `MarianConfig` defaults, used when a key is absent.
#[derive(Debug, Clone, Deserialize)]
pub struct MarianConfig {
    pub vocab_size: usize,
    /// Target vocabulary size when the decoder has its own embeddings.
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
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
    #[serde(default)]
    pub eos_token_id: u32,
    #[serde(default = "default_pad")]
    pub decoder_start_token_id: u32,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn default_activation() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    1024
}
fn default_pad() -> u32 {
    58100
}
fn yes() -> bool {
    true
}

impl MarianConfig {
    pub fn target_vocab_size(&self) -> usize {
        if self.share_encoder_decoder_embeddings {
            self.vocab_size
        } else {
            self.decoder_vocab_size.unwrap_or(self.vocab_size)
        }
    }
}
