use serde::Deserialize;

use crate::models::encoder_decoder::StackConfig;

/// The keys of a Marian `config.json` the model reads; the defaults are transformers'
/// `MarianConfig` defaults, used when a key is absent (see also [`MarianConfig::defaults`]).
#[derive(Debug, Clone, Deserialize)]
pub struct MarianConfig {
    #[serde(flatten)]
    pub stack: StackConfig,
    /// Target vocabulary size when the decoder has its own embeddings.
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn yes() -> bool {
    true
}

impl MarianConfig {
    /// transformers' `MarianConfig` defaults for the special ids (opus-mt's vocabulary), for
    /// keys config.json may leave out.
    pub(crate) fn defaults() -> serde_json::Value {
        serde_json::json!({"pad_token_id": 58100, "eos_token_id": 0, "decoder_start_token_id": 58100})
    }

    pub fn target_vocab_size(&self) -> usize {
        if self.share_encoder_decoder_embeddings {
            self.stack.vocab_size
        } else {
            self.decoder_vocab_size.unwrap_or(self.stack.vocab_size)
        }
    }
}
