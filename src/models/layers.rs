//! Building blocks shared by the model families: projections, layer norm and multi-head
//! attention with the caches generation needs.

use candle_core::{Module, Tensor};
use candle_nn::{LayerNorm, Linear};

use super::weights::Weights;
use crate::error::Result;

/// `prefix.weight` [out, in] and, when present, `prefix.bias` [out].
pub fn linear(
    w: &Weights,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> Result<Linear> {
    let weight = w.get(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
    let bias = if bias {
        Some(w.get(&format!("{prefix}.bias"), &[out_dim])?)
    } else {
        None
    };
    Ok(Linear::new(weight, bias))
}

pub fn layer_norm(w: &Weights, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
    let weight = w.get(&format!("{prefix}.weight"), &[dim])?;
    let bias = w.get(&format!("{prefix}.bias"), &[dim])?;
    Ok(LayerNorm::new(weight, bias, eps))
}

/// The feed-forward activations configs name (`activation_function`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    /// `swish` and `silu` are the same function.
    Silu,
    /// The exact erf form, as torch's `gelu`.
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    pub fn from_config(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(Self::Relu),
            "swish" | "silu" => Some(Self::Silu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    pub fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Silu => candle_nn::ops::silu(x),
            Self::Gelu => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
        }
    }
}

/// Multi-head attention with separate q/k/v/out projections (BART/Marian style).
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    pub fn load(w: &Weights, prefix: &str, dim: usize, heads: usize, bias: bool) -> Result<Self> {
        let head_dim = dim / heads;
        Ok(Self {
            q: linear(w, &format!("{prefix}.q_proj"), dim, dim, bias)?,
            k: linear(w, &format!("{prefix}.k_proj"), dim, dim, bias)?,
            v: linear(w, &format!("{prefix}.v_proj"), dim, dim, bias)?,
            out: linear(w, &format!("{prefix}.out_proj"), dim, dim, bias)?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// [B, T, D] → [B, H, T, hd]
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values of `x` [B, S, D], split into heads.
    pub fn key_values(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(x)?)?,
            self.split_heads(&self.v.forward(x)?)?,
        ))
    }

    /// Attention of the queries from `x` [B, T, D] over `keys`/`values` [B, H, S, hd], with an
    /// additive `mask` broadcastable to [B, H, T, S].
    pub fn attend(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let q = self.split_heads(&self.q.forward(x)?)?;
        let mut scores = (q.matmul(&keys.t()?)? * self.scaling)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(values)?; // [B, H, T, hd]
        let context = context
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.out.forward(&context)
    }

    /// Self-attention without cache (the encoder).
    pub fn self_attend(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (k, v) = self.key_values(x)?;
        self.attend(x, &k, &v, mask)
    }

    /// Decoder self-attention for new positions `x` [N, 1, D], appending to `cache`.
    pub fn self_attend_cached(
        &self,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let (k_new, v_new) = self.key_values(x)?;
        let (k, v) = match cache.take() {
            Some((k, v)) => (
                Tensor::cat(&[&k, &k_new], 2)?,
                Tensor::cat(&[&v, &v_new], 2)?,
            ),
            None => (k_new, v_new),
        };
        let out = self.attend(x, &k, &v, None)?;
        *cache = Some((k, v));
        Ok(out)
    }
}

/// Additive attention mask [B, 1, 1, S] from a 0/1 mask [B, S]: 0 where attended, -inf where not.
pub fn additive_mask(mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let zeros = mask.zeros_like()?;
    let neg = (mask.ones_like()? * f64::NEG_INFINITY)?;
    let is_token = mask.gt(0.0)?;
    is_token.where_cond(&zeros, &neg)?.reshape((b, 1, 1, s))
}
