//! The encoder-decoder stack the BART-like families share (Marian, BART, mBART, m2m_100): scaled token embeddings plus positions, an optional
//! `layernorm_embedding`, post- or pre-norm layers, a final LayerNorm per stack for pre-norm
//! models, and an output head with `final_logits_bias`. A family is its config turned into an
//! [`Architecture`]; this file loads the weights and runs the model.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::LayerNorm;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::layers::{
    additive_mask, causal_mask, checked_activation, encode_layers, layer_norm, DecoderLayer,
    Embedding, EncoderLayer, Linear, StackShape,
};
use crate::models::weights::Weights;
use crate::models::{DecoderState, Encoded, Precision, Seq2Seq, SpecialTokens};

/// transformers' LayerNorm epsilon for these families (fixed there too).
const LAYER_NORM_EPS: f64 = 1e-5;

/// Where a family's positions come from.
#[derive(Clone, Copy)]
pub enum Positions {
    /// A table the family computes (`table(rows, d_model)`), not stored, shared by both
    /// stacks: position i reads row i.
    Computed(fn(usize, usize, &Device) -> candle_core::Result<Tensor>),
    /// fairseq's `make_positions` over a computed table: a token's row counts the tokens
    /// that are not padding up to it, from `pad + 1`; padding reads row `pad`, which is zero.
    /// (Only a `<pad>` typed in the text is padding inside a sequence; the decoder's padding
    /// only follows a finished row's end, so its positions run in order from pad + 1.)
    CountingPadding(fn(usize, usize, &Device) -> candle_core::Result<Tensor>),
    /// Learned tables, `{stack}.embed_positions.weight`, their first `offset` rows unused.
    Learned { offset: usize },
}

/// The keys of config.json these families share, by the same names. Where a family's default
/// differs from BART's (the serde defaults here), the family fills it in before parsing
/// (`defaults()` in its config.rs); a family's config flattens this in.
#[derive(Debug, Clone, Deserialize)]
pub struct StackConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub scale_embedding: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    pub decoder_start_token_id: u32,
}

impl StackConfig {
    pub(crate) fn special_tokens(&self) -> SpecialTokens {
        SpecialTokens {
            pad: self.pad_token_id,
            eos: self.eos_token_id,
            decoder_start: self.decoder_start_token_id,
        }
    }
}

fn default_activation() -> String {
    "gelu".into()
}

fn default_max_positions() -> usize {
    1024
}

/// What a family's config says about the network.
pub struct Architecture {
    pub stack: StackConfig,
    pub special: SpecialTokens,
    /// The decoder's vocabulary (the encoder's is `stack.vocab_size`).
    pub target_vocab: usize,
    /// The decoder reads its own table, `model.decoder.embed_tokens.weight`.
    pub separate_decoder_embeddings: bool,
    /// The head is the decoder embeddings even where `lm_head.weight` is stored (otherwise
    /// they are the head only where it is not).
    pub tie_head: bool,
    pub positions: Positions,
    /// `layernorm_embedding` after the embeddings and positions.
    pub embedding_norm: bool,
    /// Pre-norm layers, and a final `layer_norm` on each stack.
    pub pre_norm: bool,
}

pub struct EncoderDecoder {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    embed_scale: f64,
    encoder: Stack<EncoderLayer>,
    decoder: Stack<DecoderLayer>,
    /// The output projection, with `final_logits_bias`.
    lm_head: Linear,
    special: SpecialTokens,
    max_positions: usize,
    target_vocab: usize,
}

/// Where loading takes a stack's positions from: the one computed table both stacks share,
/// or the checkpoint.
enum PositionSource {
    Table(Tensor),
    Stored { offset: usize },
}

/// One side of the model: positions, the embedding LayerNorm, the layers, the final LayerNorm.
struct Stack<L> {
    positions: Tensor,
    /// Rows of `positions` before position 0.
    offset: usize,
    /// Positions count only tokens that are not this padding id (fairseq's).
    counting_padding: Option<u32>,
    embed_norm: Option<LayerNorm>,
    layers: Vec<L>,
    final_norm: Option<LayerNorm>,
    shape: StackShape,
}

impl<L> Stack<L> {
    fn load(
        w: &Weights,
        prefix: &str,
        a: &Architecture,
        (n_layers, shape): (usize, StackShape),
        positions: &PositionSource,
        load_layer: impl Fn(&Weights, &str, &StackShape) -> Result<L>,
    ) -> Result<Self> {
        let d = shape.dim;
        let counting_padding =
            matches!(a.positions, Positions::CountingPadding(_)).then_some(a.special.pad);
        let (positions, offset) = match positions {
            // Counted from pad + 1: where a sequence without padding starts.
            PositionSource::Table(table) => (
                table.clone(),
                counting_padding.map_or(0, |p| p as usize + 1),
            ),
            &PositionSource::Stored { offset } => (
                w.get(
                    &format!("{prefix}.embed_positions.weight"),
                    &[a.stack.max_position_embeddings + offset, d],
                )?,
                offset,
            ),
        };
        let norm = |name: &str| layer_norm(w, &format!("{prefix}.{name}"), d, LAYER_NORM_EPS);
        Ok(Self {
            positions,
            offset,
            counting_padding,
            embed_norm: a
                .embedding_norm
                .then(|| norm("layernorm_embedding"))
                .transpose()?,
            layers: (0..n_layers)
                .map(|i| load_layer(w, &format!("{prefix}.layers.{i}"), &shape))
                .collect::<Result<Vec<_>>>()?,
            final_norm: a.pre_norm.then(|| norm("layer_norm")).transpose()?,
            shape,
        })
    }

    /// Token embeddings `tokens` [B, T, D] plus positions from `first`, through
    /// `layernorm_embedding`. With `ids` [B, T] (the encoder's input), positions that count
    /// only non-padding tokens count them; the decoder, fed padding only in rows already
    /// finished (their outputs unused), takes its positions in order, without reading ids back.
    fn embed(
        &self,
        tokens: &Tensor,
        ids: Option<&Tensor>,
        first: usize,
    ) -> candle_core::Result<Tensor> {
        let (b, t, d) = tokens.dims3()?;
        let h = match (self.counting_padding, ids) {
            (Some(pad), Some(ids)) => {
                let mut rows = Vec::with_capacity(b * t);
                for sequence in ids.to_vec2::<u32>()? {
                    let mut count = first as u32;
                    rows.extend(sequence.into_iter().map(|id| {
                        if id == pad {
                            pad
                        } else {
                            count += 1;
                            count + pad
                        }
                    }));
                }
                let rows = Tensor::from_vec(rows, b * t, ids.device())?;
                tokens.add(&self.positions.index_select(&rows, 0)?.reshape((b, t, d))?)?
            }
            _ => tokens.broadcast_add(&self.positions.narrow(0, first + self.offset, t)?)?,
        };
        match &self.embed_norm {
            Some(norm) => norm.forward(&h),
            None => Ok(h),
        }
    }

    fn finish(&self, h: Tensor) -> candle_core::Result<Tensor> {
        match &self.final_norm {
            Some(norm) => norm.forward(&h),
            None => Ok(h),
        }
    }
}

impl EncoderDecoder {
    /// Loads the checkpoint in `dir` (whose config.json `a` was read from).
    pub fn load(
        a: &Architecture,
        dir: &Path,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights::load(dir, precision, device)?;
        let c = &a.stack;
        let d = c.d_model;
        let activation = checked_activation(
            &dir.join("config.json"),
            &c.activation_function,
            d,
            [
                ("encoder", c.encoder_attention_heads),
                ("decoder", c.decoder_attention_heads),
            ],
        )?;
        let precision = w.precision();
        // Tied checkpoints store the shared embedding under one of these names only.
        let shared = w.matrix(
            &["model.shared.weight", "model.encoder.embed_tokens.weight"],
            &[c.vocab_size, d],
        )?;
        let encoder_embed = Embedding::new(shared, precision)?;
        let decoder_embed = if a.separate_decoder_embeddings {
            let table = w.matrix(&["model.decoder.embed_tokens.weight"], &[a.target_vocab, d])?;
            Embedding::new(table, precision)?
        } else {
            encoder_embed.clone()
        };
        let (dtype, embed_device) = (decoder_embed.dtype(), decoder_embed.device().clone());
        let final_logits_bias = if w.contains("final_logits_bias") {
            w.get("final_logits_bias", &[1, a.target_vocab])?
        } else {
            Tensor::zeros((1, a.target_vocab), dtype, &embed_device)?
        };
        let bias = Some(final_logits_bias.flatten_all()?);
        let lm_head = if a.tie_head || !w.contains("lm_head.weight") {
            decoder_embed.tied_head(bias)?
        } else {
            let head = w.matrix(&["lm_head.weight"], &[a.target_vocab, d])?;
            Linear::with_precision(head, bias, precision)?
        };

        let shape = |heads, ffn| StackShape {
            dim: d,
            heads,
            ffn,
            layer_norm_eps: LAYER_NORM_EPS,
            activation,
            pre_norm: a.pre_norm,
        };
        let positions = match a.positions {
            Positions::Computed(table) => PositionSource::Table(
                table(c.max_position_embeddings, d, &embed_device)?.to_dtype(dtype)?,
            ),
            Positions::CountingPadding(table) => {
                // Rows up to the last position, `pad + max_positions`; the padding row zero.
                let pad = a.special.pad as usize;
                let table = table(pad + 1 + c.max_position_embeddings, d, &embed_device)?;
                let zero = Tensor::zeros((1, d), table.dtype(), &embed_device)?;
                let rows = table.dim(0)?;
                let table = Tensor::cat(
                    &[
                        table.narrow(0, 0, pad)?,
                        zero,
                        table.narrow(0, pad + 1, rows - pad - 1)?,
                    ],
                    0,
                )?;
                PositionSource::Table(table.to_dtype(dtype)?)
            }
            Positions::Learned { offset } => PositionSource::Stored { offset },
        };
        let encoder = Stack::load(
            &w,
            "model.encoder",
            a,
            (
                c.encoder_layers,
                shape(c.encoder_attention_heads, c.encoder_ffn_dim),
            ),
            &positions,
            EncoderLayer::load,
        )?;
        let decoder = Stack::load(
            &w,
            "model.decoder",
            a,
            (
                c.decoder_layers,
                shape(c.decoder_attention_heads, c.decoder_ffn_dim),
            ),
            &positions,
            DecoderLayer::load,
        )?;
        Ok(Self {
            encoder_embed,
            decoder_embed,
            embed_scale: if c.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder,
            decoder,
            lm_head,
            special: a.special.clone(),
            max_positions: c.max_position_embeddings,
            target_vocab: a.target_vocab,
        })
    }

    /// Scaled token embeddings.
    fn tokens(&self, table: &Embedding, ids: &Tensor) -> candle_core::Result<Tensor> {
        let tokens = table.lookup(ids)?;
        if self.embed_scale == 1.0 {
            Ok(tokens)
        } else {
            tokens * self.embed_scale
        }
    }
}

impl Seq2Seq for EncoderDecoder {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Encoded> {
        let (_, s) = input_ids.dims2()?;
        if s > self.max_positions {
            return Err(Error::Input(format!(
                "input of {s} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let mask = attention_mask.to_dtype(self.encoder_embed.dtype())?;
        let stack = &self.encoder;
        let h = stack.embed(
            &self.tokens(&self.encoder_embed, input_ids)?,
            Some(input_ids),
            0,
        )?;
        let h = encode_layers(&stack.layers, h, &mask, &stack.shape)?;
        Ok(Encoded::new(stack.finish(h)?, mask))
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
        let tokens = self.tokens(&self.decoder_embed, &tokens.reshape((n, 1))?)?;
        let mut h = stack.embed(&tokens, None, state.position)?;
        for (i, (layer, cache)) in stack.layers.iter().zip(state.layers.iter_mut()).enumerate() {
            let attention = state.cross_attention.as_mut().map(|layers| &mut layers[i]);
            h = layer.forward(
                &h,
                cache,
                &state.cross_mask,
                state.rows_per_input,
                &stack.shape,
                attention,
            )?;
        }
        state.position += 1;
        let h = stack.finish(h)?.reshape((n, ()))?;
        let logits = self.lm_head.forward(&h)?;
        Ok(logits.to_dtype(DType::F32)?)
    }

    fn averaged_cross_attention(
        &self,
        encoded: &Encoded,
        inputs: &Tensor,
        from_top: usize,
    ) -> Result<Option<Tensor>> {
        let (rows, steps) = inputs.dims2()?;
        if steps > self.max_positions {
            return Err(Error::Setting(format!(
                "a translation of {steps} tokens exceeds the model's {} positions",
                self.max_positions
            )));
        }
        let stack = &self.decoder;
        let layer = stack.layers.len().saturating_sub(from_top.max(1));
        let Some(recorded) = stack.layers.get(layer) else {
            return Ok(None);
        };
        let source = encoded.hidden.dim(1)?;
        if rows == 0 || steps == 0 || source == 0 {
            return Ok(Some(Tensor::zeros(
                (rows, steps, source),
                DType::F32,
                encoded.hidden.device(),
            )?));
        }
        // Those generation made, where this output was generated from.
        let cross_kv = encoded.cross_key_values(stack.layers.iter(), |layer, hidden| {
            layer.cross_key_values(hidden)
        })?;
        let mut h = stack.embed(&self.tokens(&self.decoder_embed, inputs)?, None, 0)?;
        let causal = causal_mask(steps, h.dtype(), h.device())?;
        let cross_mask = additive_mask(&encoded.mask)?;
        for (below, kv) in stack.layers[..layer].iter().zip(cross_kv) {
            h = below.forward_sequence(&h, &causal, kv, &cross_mask, &stack.shape)?;
        }
        let probabilities = recorded.cross_attention_of_sequence(
            &h,
            &causal,
            &cross_kv[layer].0,
            &cross_mask,
            &stack.shape,
        )?; // [B, H, T, S]
        Ok(Some(probabilities.to_dtype(DType::F32)?.mean(1)?))
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
