use std::path::Path;

use crate::models::Precision;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::RmsNorm;

use super::config::T5Config;
use crate::error::{Error, Result};
use crate::models::layers::{additive_mask, linear, Activation, Attention, Embedding, Linear};
use crate::models::weights::Weights;
use crate::models::{DecoderState, Encoded, Seq2Seq, SpecialTokens};

/// Input length assumed when the config does not give `n_positions` (T5's training length).
const DEFAULT_INPUT_TOKENS: usize = 512;

pub struct T5 {
    embed: Embedding,
    encoder: Vec<Block>,
    encoder_norm: RmsNorm,
    encoder_positions: RelativePositions,
    decoder: Vec<Block>,
    decoder_norm: RmsNorm,
    decoder_positions: RelativePositions,
    activation: Activation,
    lm_head: Linear,
    /// `d_model**-0.5` for heads tied to the embeddings (t5 v1.0), else 1.
    output_scale: f64,
    special: SpecialTokens,
    max_input: usize,
    vocab: usize,
}

/// T5's feed-forward: `wo(act(wi x))`, or gated `wo(act(wi_0 x) * wi_1 x)`.
struct FeedForward {
    wi: Linear,
    wi_gate: Option<Linear>,
    wo: Linear,
}

/// A pre-norm T5 block: self-attention, cross-attention (decoder only), feed-forward.
struct Block {
    self_attn: Attention,
    self_attn_norm: RmsNorm,
    cross_attn: Option<(Attention, RmsNorm)>,
    ff: FeedForward,
    ff_norm: RmsNorm,
}

/// The learned relative position bias of a stack's first layer, shared by all its layers.
struct RelativePositions {
    /// [num_buckets, heads]
    table: Tensor,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
}

impl RelativePositions {
    /// transformers' `_relative_position_bucket` for `memory - query` positions, with its float32
    /// logarithm so that bucket edges fall where they fall there.
    fn bucket(&self, relative: i64) -> u32 {
        let mut buckets = self.num_buckets as i64;
        let mut bucket = 0i64;
        let distance = if self.bidirectional {
            buckets /= 2;
            if relative > 0 {
                bucket += buckets;
            }
            relative.abs()
        } else {
            (-relative).max(0)
        };
        let max_exact = buckets / 2;
        bucket += if distance < max_exact {
            distance
        } else {
            let scaled = (distance as f32 / max_exact as f32).ln()
                / (self.max_distance as f64 / max_exact as f64).ln() as f32
                * (buckets - max_exact) as f32;
            (max_exact + scaled as i64).min(buckets - 1)
        };
        bucket as u32
    }

    /// The bias [1, H, Q, K] for queries at `first_query..first_query + q` over keys `0..k`.
    fn bias(&self, first_query: usize, q: usize, k: usize) -> candle_core::Result<Tensor> {
        let buckets: Vec<u32> = (first_query..first_query + q)
            .flat_map(|query| (0..k).map(move |key| self.bucket(key as i64 - query as i64)))
            .collect();
        let buckets = Tensor::from_vec(buckets, q * k, self.table.device())?;
        self.table
            .index_select(&buckets, 0)? // [Q*K, H]
            .reshape((q, k, ()))?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()
    }
}

impl FeedForward {
    fn load(w: &Weights, prefix: &str, d: usize, d_ff: usize, gated: bool) -> Result<Self> {
        let (wi, wi_gate) = if gated {
            (
                linear(w, &format!("{prefix}.wi_1"), d, d_ff, false)?,
                Some(linear(w, &format!("{prefix}.wi_0"), d, d_ff, false)?),
            )
        } else {
            (linear(w, &format!("{prefix}.wi"), d, d_ff, false)?, None)
        };
        Ok(Self {
            wi,
            wi_gate,
            wo: linear(w, &format!("{prefix}.wo"), d_ff, d, false)?,
        })
    }

    fn forward(&self, x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
        let hidden = match &self.wi_gate {
            Some(gate) => (activation.apply(&gate.forward(x)?)? * self.wi.forward(x)?)?,
            None => activation.apply(&self.wi.forward(x)?)?,
        };
        self.wo.forward(&hidden)
    }
}

fn rms_norm(w: &Weights, prefix: &str, d: usize, eps: f64) -> Result<RmsNorm> {
    Ok(RmsNorm::new(w.get(&format!("{prefix}.weight"), &[d])?, eps))
}

fn attention(w: &Weights, prefix: &str, c: &T5Config) -> Result<Attention> {
    let inner = c.num_heads * c.d_kv;
    let d = c.d_model;
    let proj = |name: &str, i: usize, o: usize| linear(w, &format!("{prefix}.{name}"), i, o, false);
    // T5 does not scale the query-key products (the scale is folded into the weights).
    Ok(Attention::new(
        [
            proj("q", d, inner)?,
            proj("k", d, inner)?,
            proj("v", d, inner)?,
            proj("o", inner, d)?,
        ],
        c.num_heads,
        c.d_kv,
        1.0,
    ))
}

impl Block {
    fn load(w: &Weights, prefix: &str, c: &T5Config, decoder: bool, gated: bool) -> Result<Self> {
        let (d, eps) = (c.d_model, c.layer_norm_epsilon);
        let ff_layer = if decoder { 2 } else { 1 };
        Ok(Self {
            self_attn: attention(w, &format!("{prefix}.layer.0.SelfAttention"), c)?,
            self_attn_norm: rms_norm(w, &format!("{prefix}.layer.0.layer_norm"), d, eps)?,
            cross_attn: if decoder {
                Some((
                    attention(w, &format!("{prefix}.layer.1.EncDecAttention"), c)?,
                    rms_norm(w, &format!("{prefix}.layer.1.layer_norm"), d, eps)?,
                ))
            } else {
                None
            },
            ff: FeedForward::load(
                w,
                &format!("{prefix}.layer.{ff_layer}.DenseReluDense"),
                d,
                c.d_ff,
                gated,
            )?,
            ff_norm: rms_norm(w, &format!("{prefix}.layer.{ff_layer}.layer_norm"), d, eps)?,
        })
    }
}

impl T5 {
    pub fn load(
        config: &T5Config,
        model_type: &str,
        dir: &Path,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights::load(dir, precision, device)?;
        let c = config;
        let config_path = dir.join("config.json");
        // transformers' T5Config: "gated-gelu" means the tanh gelu; other names are ACT2FN keys.
        let ff_name = c.feed_forward_proj.clone().unwrap_or_else(|| {
            if model_type == "mt5" {
                "gated-gelu"
            } else {
                "relu"
            }
            .to_string()
        });
        let (gated, act_name) = match ff_name.strip_prefix("gated-") {
            Some("gelu") => (true, "gelu_new"),
            Some(act) => (true, act),
            None => (false, ff_name.as_str()),
        };
        let activation = Activation::from_config(act_name).ok_or_else(|| {
            Error::file(
                &config_path,
                format!("unsupported feed_forward_proj {ff_name:?} (supported: relu, gelu, silu, gated-gelu, gated-silu)"),
            )
        })?;
        let (d, v) = (c.d_model, c.vocab_size);
        let embed = w.matrix(
            &[
                "shared.weight",
                "encoder.embed_tokens.weight",
                "decoder.embed_tokens.weight",
            ],
            &[v, d],
        )?;
        let untied_head = w.contains("lm_head.weight");
        let embed = Embedding::new(embed, w.precision())?;
        let lm_head = if untied_head {
            let head = w.matrix(&["lm_head.weight"], &[v, d])?;
            Linear::with_precision(head, None, w.precision())?
        } else {
            embed.tied_head(None)?
        };
        // transformers 5.23: T5 scales unless the config says `tie_word_embeddings: false` (or
        // gives `scale_decoder_outputs`); MT5ForConditionalGeneration never scales.
        let scaled = model_type != "mt5"
            && c.scale_decoder_outputs
                .unwrap_or(c.tie_word_embeddings != Some(false));
        let positions = |prefix: &str, bidirectional| -> Result<RelativePositions> {
            Ok(RelativePositions {
                table: w.get(
                    &format!(
                        "{prefix}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
                    ),
                    &[c.relative_attention_num_buckets, c.num_heads],
                )?,
                bidirectional,
                num_buckets: c.relative_attention_num_buckets,
                max_distance: c.relative_attention_max_distance,
            })
        };
        let blocks = |prefix: &str, n: usize, decoder: bool| {
            (0..n)
                .map(|i| Block::load(&w, &format!("{prefix}.block.{i}"), c, decoder, gated))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Self {
            encoder: blocks("encoder", c.num_layers, false)?,
            encoder_norm: rms_norm(&w, "encoder.final_layer_norm", d, c.layer_norm_epsilon)?,
            encoder_positions: positions("encoder", true)?,
            decoder: blocks(
                "decoder",
                c.num_decoder_layers.unwrap_or(c.num_layers),
                true,
            )?,
            decoder_norm: rms_norm(&w, "decoder.final_layer_norm", d, c.layer_norm_epsilon)?,
            decoder_positions: positions("decoder", false)?,
            activation,
            embed,
            lm_head,
            output_scale: if scaled { (d as f64).powf(-0.5) } else { 1.0 },
            special: SpecialTokens {
                pad: c.pad_token_id,
                eos: c.eos_token_id,
                decoder_start: c.decoder_start_token_id,
            },
            max_input: c.n_positions.unwrap_or(DEFAULT_INPUT_TOKENS),
            vocab: v,
        })
    }

    fn tokens(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.embed.lookup(ids)
    }
}

impl Seq2Seq for T5 {
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Encoded> {
        let (_, s) = input_ids.dims2()?;
        let mask = attention_mask.to_dtype(self.embed.dtype())?;
        // Position bias and padding mask, added together once for every layer.
        let bias = self
            .encoder_positions
            .bias(0, s, s)?
            .to_dtype(self.embed.dtype())?
            .broadcast_add(&additive_mask(&mask)?)?;
        let mut h = self.tokens(input_ids)?;
        let act = self.activation;
        for block in &self.encoder {
            let x = block.self_attn_norm.forward(&h)?;
            h = (h + block.self_attn.self_attend(&x, Some(&bias))?)?;
            h = (&h + block.ff.forward(&block.ff_norm.forward(&h)?, act)?)?;
        }
        Ok(Encoded::new(self.encoder_norm.forward(&h)?, mask))
    }

    fn start_decoding(&self, encoded: &Encoded, rows_per_input: usize) -> Result<DecoderState> {
        DecoderState::start(
            encoded,
            rows_per_input,
            self.decoder.iter(),
            |block, hidden| {
                let (attn, _) = block
                    .cross_attn
                    .as_ref()
                    .expect("decoder blocks cross-attend");
                attn.key_values(hidden)
            },
        )
    }

    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let n = tokens.dim(0)?;
        let p = state.position;
        let self_bias = self
            .decoder_positions
            .bias(p, 1, p + 1)?
            .to_dtype(self.embed.dtype())?;
        let mut h = self.tokens(&tokens.reshape((n, 1))?)?;
        let act = self.activation;
        for (block, cache) in self.decoder.iter().zip(state.layers.iter_mut()) {
            let x = block.self_attn_norm.forward(&h)?;
            h = (&h
                + block
                    .self_attn
                    .self_attend_cached(&x, &mut cache.self_kv, Some(&self_bias))?)?;
            if let Some((attn, norm)) = &block.cross_attn {
                let (k, v) = &cache.cross_kv;
                let x = norm.forward(&h)?;
                let group = state.rows_per_input;
                h = (&h + attn.attend_grouped(&x, k, v, &state.cross_mask, group)?)?;
            }
            h = (&h + block.ff.forward(&block.ff_norm.forward(&h)?, act)?)?;
        }
        state.position += 1;
        let mut h = self.decoder_norm.forward(&h)?.reshape((n, ()))?;
        if self.output_scale != 1.0 {
            h = (h * self.output_scale)?;
        }
        Ok(self.lm_head.forward(&h)?.to_dtype(DType::F32)?)
    }

    fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    fn max_input_tokens(&self) -> usize {
        self.max_input
    }

    fn vocab_size(&self) -> usize {
        self.vocab
    }
}
