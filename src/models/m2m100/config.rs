use serde::Deserialize;

use crate::models::encoder_decoder::StackConfig;

/// The keys of an m2m_100 `config.json` the model reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct M2M100Config {
    #[serde(flatten)]
    pub stack: StackConfig,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

impl M2M100Config {
    /// transformers' `M2M100Config` defaults where they differ from the stack's (BART's),
    /// for keys config.json may leave out.
    pub(crate) fn defaults() -> serde_json::Value {
        serde_json::json!({
            "activation_function": "relu",
            "scale_embedding": true,
            "pad_token_id": 1,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
        })
    }
}

fn yes() -> bool {
    true
}
