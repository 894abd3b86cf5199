use serde::Deserialize;

use crate::models::encoder_decoder::StackConfig;

/// The keys of a BART/mBART `config.json` the model reads.
#[derive(Debug, Clone, Deserialize)]
pub struct BartConfig {
    #[serde(flatten)]
    pub stack: StackConfig,
}

impl BartConfig {
    /// transformers' `BartConfig` defaults, for keys config.json may leave out.
    pub(crate) fn defaults() -> serde_json::Value {
        serde_json::json!({"pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2})
    }
}
