use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};

use super::config::MarianConfig;
use crate::error::{Error, Result};
use crate::models::layers::{
    checked_activation, encode_layers, DecoderLayer, Embedding, EncoderLayer, Linear, StackShape,
};
use crate::models::weights::Weights;
use crate::models::{DecoderState, Encoded, Precision, Seq2Seq, SpecialTokens};

/// transformers' LayerNorm epsilon for Marian (not configurable there either).
const LAYER_NORM_EPS: f64 = 1e-5;

pub struct Marian {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    encoder_shape: StackShape,
    decoder_shape: StackShape,
    /// The output projection, with `final_logits_bias`.
    lm_head: Linear,
    special: SpecialTokens,
    max_positions: usize,
    target_vocab: usize,
}

impl Marian {
    pub fn load(
        config: &MarianConfig,
        weights_dir: &Path,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights::load(weights_dir, precision, device)?;
        Self::from_weights(config, &w, weights_dir)
    }

    pub fn from_weights(config: &MarianConfig, w: &Weights, dir: &Path) -> Result<Self> {
        let d = config.d_model;
        let activation = checked_activation(
            &dir.join("config.json"),
            &config.activation_function,
            d,
            [
                ("encoder", config.encoder_attention_heads),
                ("decoder", config.decoder_attention_heads),
            ],
        )?;
        let source_vocab = config.vocab_size;
        let target_vocab = config.target_vocab_size();
        // Tied checkpoints store the shared embedding under one of these names only.
        let precision = w.precision();
        let shared = w.matrix(
            &["model.shared.weight", "model.encoder.embed_tokens.weight"],
            &[source_vocab, d],
        )?;
        let encoder_embed = Embedding::new(shared, precision)?;
        let (dtype, device) = (encoder_embed.dtype(), encoder_embed.device().clone());
        let decoder_embed = if config.share_encoder_decoder_embeddings {
            encoder_embed.clone()
        } else {
            let table = w.matrix(&["model.decoder.embed_tokens.weight"], &[target_vocab, d])?;
            Embedding::new(table, precision)?
        };
        let final_logits_bias = if w.contains("final_logits_bias") {
            w.get("final_logits_bias", &[1, target_vocab])?
        } else {
            Tensor::zeros((1, target_vocab), dtype, &device)?
        };
        let bias = Some(final_logits_bias.flatten_all()?);
        let lm_head = if config.tie_word_embeddings || !w.contains("lm_head.weight") {
            decoder_embed.tied_head(bias)?
        } else {
            let head = w.matrix(&["lm_head.weight"], &[target_vocab, d])?;
            Linear::with_precision(head, bias, precision)?
        };

        let shape = |heads, ffn| StackShape {
            dim: d,
            heads,
            ffn,
            layer_norm_eps: LAYER_NORM_EPS,
            activation,
            pre_norm: false,
        };
        let encoder_shape = shape(config.encoder_attention_heads, config.encoder_ffn_dim);
        let decoder_shape = shape(config.decoder_attention_heads, config.decoder_ffn_dim);
        let encoder = (0..config.encoder_layers)
            .map(|i| EncoderLayer::load(w, &format!("model.encoder.layers.{i}"), &encoder_shape))
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..config.decoder_layers)
            .map(|i| DecoderLayer::load(w, &format!("model.decoder.layers.{i}"), &decoder_shape))
            .collect::<Result<Vec<_>>>()?;

        let positions =
            sinusoidal_positions(config.max_position_embeddings, d, decoder_embed.device())?
                .to_dtype(decoder_embed.dtype())?;
        Ok(Self {
            encoder_embed,
            decoder_embed,
            positions,
            embed_scale: if config.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder,
            decoder,
            encoder_shape,
            decoder_shape,
            lm_head,
            special: SpecialTokens {
                pad: config.pad_token_id,
                eos: config.eos_token_id,
                decoder_start: config.decoder_start_token_id,
            },
            max_positions: config.max_position_embeddings,
            target_vocab,
        })
    }

    fn embed(
        &self,
        table: &Embedding,
        ids: &Tensor,
        first_position: usize,
    ) -> candle_core::Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let tokens = table.lookup(ids)?;
        let tokens = (tokens * self.embed_scale)?;
        let positions = self.positions.narrow(0, first_position, t)?;
        tokens.broadcast_add(&positions)
    }
}

impl Seq2Seq for Marian {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Encoded> {
        let (_, s) = input_ids.dims2()?;
        if s > self.max_positions {
            return Err(Error::Input(format!(
                "input of {s} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let mask = attention_mask.to_dtype(self.positions.dtype())?;
        let h = self.embed(&self.encoder_embed, input_ids, 0)?;
        let hidden = encode_layers(&self.encoder, h, &mask, &self.encoder_shape)?;
        Ok(Encoded { hidden, mask })
    }

    fn start_decoding(&self, encoded: &Encoded, rows_per_input: usize) -> Result<DecoderState> {
        DecoderState::start(
            encoded,
            rows_per_input,
            self.decoder.iter(),
            |layer, hidden| layer.cross_key_values(hidden),
        )
    }

    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        if state.position >= self.max_positions {
            return Err(Error::Setting(format!(
                "generation reached the model's {} positions; lower --max-new-tokens",
                self.max_positions
            )));
        }
        let n = tokens.dim(0)?;
        let mut h = self.embed(
            &self.decoder_embed,
            &tokens.reshape((n, 1))?,
            state.position,
        )?;
        for (layer, cache) in self.decoder.iter().zip(state.layers.iter_mut()) {
            h = layer.forward(
                &h,
                cache,
                &state.cross_mask,
                state.rows_per_input,
                &self.decoder_shape,
            )?;
        }
        state.position += 1;
        let h = h.reshape((n, ()))?;
        let logits = self.lm_head.forward(&h)?;
        Ok(logits.to_dtype(DType::F32)?)
    }

    fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    fn max_input_tokens(&self) -> usize {
        self.max_positions
    }

    fn vocab_size(&self) -> usize {
        self.target_vocab
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
