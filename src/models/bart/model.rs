use std::path::Path;

use crate::models::Precision;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::LayerNorm;

use super::config::BartConfig;
use crate::error::{Error, Result};
use crate::models::layers::{
    checked_activation, encode_layers, layer_norm, DecoderLayer, Embedding, EncoderLayer, Linear,
    StackShape,
};
use crate::models::weights::Weights;
use crate::models::{DecoderState, Encoded, Seq2Seq, SpecialTokens};

/// transformers' LayerNorm epsilon for BART and mBART (fixed there too).
const LAYER_NORM_EPS: f64 = 1e-5;

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

pub struct Bart {
    embed: Embedding,
    embed_scale: f64,
    encoder: Stack<EncoderLayer>,
    decoder: Stack<DecoderLayer>,
    /// The output projection, with `final_logits_bias`.
    lm_head: Linear,
    special: SpecialTokens,
    max_positions: usize,
    vocab: usize,
}

/// One side of the model: positions, the embedding LayerNorm, the layers, the final LayerNorm.
struct Stack<L> {
    positions: Tensor,
    embed_norm: LayerNorm,
    layers: Vec<L>,
    final_norm: Option<LayerNorm>,
    shape: StackShape,
}

impl<L> Stack<L> {
    fn load(
        w: &Weights,
        prefix: &str,
        n_layers: usize,
        shape: StackShape,
        max_positions: usize,
        load_layer: impl Fn(&Weights, &str, &StackShape) -> Result<L>,
    ) -> Result<Self> {
        let d = shape.dim;
        Ok(Self {
            positions: w.get(
                &format!("{prefix}.embed_positions.weight"),
                &[max_positions + POSITION_OFFSET, d],
            )?,
            embed_norm: layer_norm(
                w,
                &format!("{prefix}.layernorm_embedding"),
                d,
                LAYER_NORM_EPS,
            )?,
            layers: (0..n_layers)
                .map(|i| load_layer(w, &format!("{prefix}.layers.{i}"), &shape))
                .collect::<Result<Vec<_>>>()?,
            final_norm: if shape.pre_norm {
                Some(layer_norm(
                    w,
                    &format!("{prefix}.layer_norm"),
                    d,
                    LAYER_NORM_EPS,
                )?)
            } else {
                None
            },
            shape,
        })
    }

    /// Token embeddings [B, T, D] plus positions from `first`, through `layernorm_embedding`.
    fn embed(&self, tokens: &Tensor, first: usize) -> candle_core::Result<Tensor> {
        let t = tokens.dim(1)?;
        let positions = self.positions.narrow(0, first + POSITION_OFFSET, t)?;
        self.embed_norm.forward(&tokens.broadcast_add(&positions)?)
    }

    fn finish(&self, h: Tensor) -> candle_core::Result<Tensor> {
        match &self.final_norm {
            Some(norm) => norm.forward(&h),
            None => Ok(h),
        }
    }
}

impl Bart {
    pub fn load(
        config: &BartConfig,
        variant: Variant,
        dir: &Path,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights::load(dir, precision, device)?;
        let d = config.d_model;
        let config_path = dir.join("config.json");
        let activation = checked_activation(
            &config_path,
            &config.activation_function,
            d,
            [
                ("encoder", config.encoder_attention_heads),
                ("decoder", config.decoder_attention_heads),
            ],
        )?;
        let v = config.vocab_size;
        let embed = w.matrix(
            &["model.shared.weight", "model.encoder.embed_tokens.weight"],
            &[v, d],
        )?;
        let embed = Embedding::new(embed, w.precision())?;
        let final_logits_bias = if w.contains("final_logits_bias") {
            w.get("final_logits_bias", &[1, v])?
        } else {
            Tensor::zeros((1, v), embed.dtype(), embed.device())?
        };
        let bias = Some(final_logits_bias.flatten_all()?);
        // The head is tied to the embeddings; some checkpoints also store the tied copy.
        let lm_head = if w.contains("lm_head.weight") {
            let head = w.matrix(&["lm_head.weight"], &[v, d])?;
            Linear::with_precision(head, bias, w.precision())?
        } else {
            embed.tied_head(bias)?
        };
        let shape = |heads, ffn| StackShape {
            dim: d,
            heads,
            ffn,
            layer_norm_eps: LAYER_NORM_EPS,
            activation,
            pre_norm: variant == Variant::MBart,
        };
        let max_positions = config.max_position_embeddings;
        let encoder = Stack::load(
            &w,
            "model.encoder",
            config.encoder_layers,
            shape(config.encoder_attention_heads, config.encoder_ffn_dim),
            max_positions,
            EncoderLayer::load,
        )?;
        let decoder = Stack::load(
            &w,
            "model.decoder",
            config.decoder_layers,
            shape(config.decoder_attention_heads, config.decoder_ffn_dim),
            max_positions,
            DecoderLayer::load,
        )?;
        Ok(Self {
            embed,
            embed_scale: if config.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder,
            decoder,
            lm_head,
            special: SpecialTokens {
                pad: config.pad_token_id,
                eos: config.eos_token_id,
                decoder_start: config.decoder_start_token_id,
            },
            max_positions,
            vocab: v,
        })
    }

    fn tokens(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let tokens = self.embed.lookup(ids)?;
        if self.embed_scale == 1.0 {
            Ok(tokens)
        } else {
            tokens * self.embed_scale
        }
    }
}

impl Seq2Seq for Bart {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Encoded> {
        let (_, s) = input_ids.dims2()?;
        if s > self.max_positions {
            return Err(Error::Input(format!(
                "input of {s} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let mask = attention_mask.to_dtype(self.embed.dtype())?;
        let stack = &self.encoder;
        let h = stack.embed(&self.tokens(input_ids)?, 0)?;
        let h = encode_layers(&stack.layers, h, &mask, &stack.shape)?;
        Ok(Encoded {
            hidden: stack.finish(h)?,
            mask,
        })
    }

    fn start_decoding(&self, encoded: &Encoded, rows_per_input: usize) -> Result<DecoderState> {
        DecoderState::start(
            encoded,
            rows_per_input,
            self.decoder.layers.iter(),
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
        let stack = &self.decoder;
        let mut h = stack.embed(&self.tokens(&tokens.reshape((n, 1))?)?, state.position)?;
        for (layer, cache) in stack.layers.iter().zip(state.layers.iter_mut()) {
            h = layer.forward(
                &h,
                cache,
                &state.cross_mask,
                state.rows_per_input,
                &stack.shape,
            )?;
        }
        state.position += 1;
        let h = stack.finish(h)?.reshape((n, ()))?;
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
        self.vocab
    }
}
