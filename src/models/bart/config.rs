use serde::Deserialize;

use crate::models::encoder_decoder::StackConfig;

/// The keys of a BART/mBART `config.json` the model reads, with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct BartConfig {
    #[serde(flatten)]
    pub stack: StackConfig,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos")]
    pub decoder_start_token_id: u32,
}

fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}
