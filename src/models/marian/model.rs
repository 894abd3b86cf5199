use candle_core::{Device, Tensor};

use super::config::MarianConfig;
use crate::models::encoder_decoder::{Architecture, Positions};

impl MarianConfig {
    /// Marian on the shared stack: post-norm layers, static sinusoidal positions, decoder
    /// embeddings of its own unless shared, the head tied unless `tie_word_embeddings` is off.
    pub(crate) fn architecture(&self) -> Architecture {
        Architecture {
            stack: self.stack.clone(),
            special: self.stack.special_tokens(),
            target_vocab: self.target_vocab_size(),
            separate_decoder_embeddings: !self.share_encoder_decoder_embeddings,
            tie_head: self.tie_word_embeddings,
            positions: Positions::Computed(sinusoidal_positions),
            embedding_norm: false,
            pre_norm: false,
        }
    }
}

/// transformers' `MarianSinusoidalPositionalEmbedding`: sines in the first half of each
/// row, cosines in the second, computed in f64 and stored as f32.
fn sinusoidal_positions(
    n_positions: usize,
    dim: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; n_positions * dim];
    for pos in 0..n_positions {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            // Even j feed the sine half, odd j the cosine half.
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[half + j / 2] = angle.cos() as f32;
            }
        }
    }
    Tensor::from_vec(table, (n_positions, dim), device)
}
