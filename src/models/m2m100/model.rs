use candle_core::{Device, Tensor};

use super::config::M2M100Config;
use crate::models::encoder_decoder::{Architecture, Positions};

impl M2M100Config {
    /// m2m_100 on the shared stack: pre-norm layers with final LayerNorms, one scaled
    /// embedding table for both stacks, the head tied to it, fairseq sinusoidal positions.
    pub(crate) fn architecture(&self) -> Architecture {
        Architecture {
            stack: self.stack.clone(),
            special: self.stack.special_tokens(),
            target_vocab: self.stack.vocab_size,
            separate_decoder_embeddings: false,
            tie_head: self.tie_word_embeddings,
            // fairseq's: from row pad + 1 = 2, padding on the zero row 1.
            positions: Positions::CountingPadding(sinusoidal_positions),
            embedding_norm: false,
            pre_norm: true,
        }
    }
}

/// transformers' `M2M100SinusoidalPositionalEmbedding.get_embedding`, computed in f32 as
/// torch does: frequencies exp(-k·ln(10000)/(half-1)), sines in the first half of each row,
/// cosines in the second, a zero column for an odd width (the stack zeroes the padding row).
fn sinusoidal_positions(rows: usize, dim: usize, device: &Device) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half.max(2) - 1) as f64) as f32;
    let frequencies: Vec<f32> = (0..half).map(|k| (k as f32 * -step).exp()).collect();
    let mut table = vec![0f32; rows * dim];
    for (pos, row) in table.chunks_exact_mut(dim).enumerate() {
        for (k, &frequency) in frequencies.iter().enumerate() {
            let angle = pos as f32 * frequency;
            row[k] = angle.sin();
            row[half + k] = angle.cos();
        }
    }
    Tensor::from_vec(table, (rows, dim), device)
}
