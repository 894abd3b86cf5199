use super::config::BartConfig;
use crate::models::encoder_decoder::{Architecture, Positions};

/// BART's learned positions start at row 2 of `embed_positions` (a fairseq legacy).
const POSITION_OFFSET: usize = 2;

/// Which variant the config names: the layer norm placement differs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Variant {
    /// Post-norm layers (BART, distilbart).
    Bart,
    /// Pre-norm layers and a final LayerNorm after each stack (mBART, BARThez).
    MBart,
}

impl BartConfig {
    /// BART or mBART on the shared stack: learned positions (offset 2), `layernorm_embedding`,
    /// one embedding table for both sides, the stored head where the checkpoint has one.
    pub(crate) fn architecture(&self, variant: Variant) -> Architecture {
        Architecture {
            stack: self.stack.clone(),
            special: self.stack.special_tokens(),
            target_vocab: self.stack.vocab_size,
            separate_decoder_embeddings: false,
            // The head is tied to the embeddings; some checkpoints also store the tied copy.
            tie_head: false,
            positions: Positions::Learned {
                offset: POSITION_OFFSET,
            },
            embedding_norm: true,
            pre_norm: variant == Variant::MBart,
        }
    }
}
