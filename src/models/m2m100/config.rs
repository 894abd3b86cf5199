use serde::Deserialize;

use crate::models::encoder_decoder::StackConfig;

/// The keys of an m2m_100 `config.json` the model reads, with transformers' `M2M100Config`
/// defaults (see [`M2M100Config::stack_defaults`] for the shared stack's keys).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct M2M100Config {
    #[serde(flatten)]
    pub stack: StackConfig,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos")]
    pub decoder_start_token_id: u32,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

impl M2M100Config {
    /// `M2M100Config`'s defaults for the shared stack keys where they differ from the
    /// stack's (BART's): filled in before parsing where config.json lacks them.
    pub(crate) fn stack_defaults() -> serde_json::Value {
        serde_json::json!({"activation_function": "relu", "scale_embedding": true})
    }
}

fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}
fn yes() -> bool {
    true
}
