//! Building blocks shared by the model families: projections, layer norm and multi-head
//! attention with the caches generation needs.

use std::sync::Arc;

use candle_core::{DType, Module, Tensor};
use candle_nn::LayerNorm;

use super::weights::{Matrix, Weights};
use super::Precision;
use super::SelfKv;
use crate::cpu::bf16::Bf16Matrix;
use crate::cpu::encoder_attention::{self, Tokens};
use crate::cpu::int8::Int8Matrix;
use crate::cpu::packed::PackedMatrix;
use crate::cpu::step_attention::{self, with_values, KvCache};
use crate::error::Result;

/// A projection `x W^T + b` over the last dimension.
///
/// candle_nn's `Linear` turns a [B, T, D] input into B separate [T, D] products (a batched
/// matmul over a broadcast weight): in decoding, T = 1, so every row re-reads the whole
/// weight. Folding the leading dimensions into one makes it a single matrix product.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Projection,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Projection {
    /// [out, in]
    Float(Tensor),
    /// f32 on the CPU, packed at load for our kernel (see packed.rs), with the bias kept as
    /// plain values for it.
    Packed(Arc<PackedMatrix>, Option<Arc<Vec<f32>>>),
    /// Quantized at load, with the bias kept as plain values for the kernel.
    Int8(Arc<Int8Matrix>, Option<Arc<Vec<f32>>>),
    /// bf16 on the CPU, converted at load, with the bias kept as plain values (f32).
    Bf16(Arc<Bf16Matrix>, Option<Arc<Vec<f32>>>),
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight: Projection::Float(weight),
            bias,
        }
    }

    /// A projection in `precision`: quantized in int8, packed for the CPU kernel in f32 on the
    /// CPU (packed.rs), as loaded otherwise (candle's matmul).
    pub fn with_precision(
        weight: Matrix,
        bias: Option<Tensor>,
        precision: Precision,
    ) -> candle_core::Result<Self> {
        match WeightForm::of(precision, &weight) {
            WeightForm::Int8 => Self::int8(Arc::new(quantize(&weight)?), bias),
            WeightForm::Packed => Self::packed(Arc::new(pack(&weight)?), bias),
            WeightForm::Bf16 => Self::bf16(Arc::new(convert(&weight)?), bias),
            WeightForm::AsLoaded => Ok(Self::new(weight.into_tensor()?, bias)),
        }
    }

    /// An int8 projection over `matrix`.
    fn int8(matrix: Arc<Int8Matrix>, bias: Option<Tensor>) -> candle_core::Result<Self> {
        Ok(Self {
            weight: Projection::Int8(matrix, bias_values(&bias)?),
            bias,
        })
    }

    /// A packed f32 projection over `matrix`.
    fn packed(matrix: Arc<PackedMatrix>, bias: Option<Tensor>) -> candle_core::Result<Self> {
        Ok(Self {
            weight: Projection::Packed(matrix, bias_values(&bias)?),
            bias,
        })
    }

    /// A bf16 projection over `matrix`.
    fn bf16(matrix: Arc<Bf16Matrix>, bias: Option<Tensor>) -> candle_core::Result<Self> {
        Ok(Self {
            weight: Projection::Bf16(matrix, bias_values(&bias)?),
            bias,
        })
    }

    fn out_features(&self) -> candle_core::Result<usize> {
        match &self.weight {
            Projection::Float(w) => w.dim(0),
            Projection::Packed(m, _) => Ok(m.rows()),
            Projection::Int8(m, _) => Ok(m.rows()),
            Projection::Bf16(m, _) => Ok(m.rows()),
        }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let inner = dims[dims.len() - 1];
        let rows = x.elem_count() / inner.max(1);
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().unwrap_or(&mut 0) = self.out_features()?;
        match &self.weight {
            Projection::Float(weight) => {
                let y = x.reshape((rows, inner))?.matmul(&weight.t()?)?;
                let y = match &self.bias {
                    Some(bias) => y.broadcast_add(bias)?,
                    None => y,
                };
                y.reshape(out_dims)
            }
            Projection::Packed(matrix, bias) => {
                let x = x.contiguous()?;
                let bias = bias.as_deref().map(|b| b.as_slice());
                let y = with_values(&x, |x| matrix.matmul_t(x, rows, bias))?;
                Tensor::from_vec(y, out_dims, x.device())
            }
            Projection::Bf16(matrix, bias) => {
                let x = x.contiguous()?;
                let bias = bias.as_deref().map(|b| b.as_slice());
                let y = with_values(&x, |x| matrix.matmul_t(x, rows, bias))?;
                Tensor::from_vec(y, out_dims, x.device())
            }
            Projection::Int8(matrix, bias) => {
                // Read in place, like the packed form (int8 runs on the CPU in f32).
                let x = x.to_dtype(DType::F32)?.contiguous()?;
                let bias = bias.as_deref().map(|b| b.as_slice());
                let y = with_values(&x, |x| matrix.matmul_t(x, rows, bias))?;
                Tensor::from_vec(y, out_dims, x.device())
            }
        }
    }
}

/// How a projection's (or a tied embedding's) weight is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeightForm {
    Int8,
    Packed,
    Bf16,
    AsLoaded,
}

impl WeightForm {
    fn of(precision: Precision, weight: &Matrix) -> Self {
        let cpu_f32 = match weight {
            Matrix::Tensor(tensor) => step_attention::applies_to(tensor),
            Matrix::Mapped(_) => true,
        };
        match precision {
            Precision::Int8 => Self::Int8,
            Precision::F32 if cpu_f32 => Self::Packed,
            Precision::BF16 if cpu_f32 => Self::Bf16,
            _ => Self::AsLoaded,
        }
    }
}

/// `f` over the f32 values of a weight [n, k]: read in place from the mapping or the tensor.
fn with_matrix_values<R>(
    weight: &Matrix,
    f: impl FnOnce(&[f32], usize, usize) -> R,
) -> candle_core::Result<R> {
    let (n, k) = match *weight.dims() {
        [n, k] => (n, k),
        ref dims => candle_core::bail!("a weight matrix must be 2-D, this one is {dims:?}"),
    };
    match weight {
        Matrix::Mapped(mapped) => Ok(f(mapped.values(), n, k)),
        Matrix::Tensor(tensor) => {
            let tensor = tensor.to_dtype(DType::F32)?.contiguous()?;
            with_values(&tensor, |w| f(w, n, k))
        }
    }
}

/// A bias as plain values for the CPU kernels.
fn bias_values(bias: &Option<Tensor>) -> candle_core::Result<Option<Arc<Vec<f32>>>> {
    match bias {
        Some(b) => Ok(Some(Arc::new(
            b.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
        ))),
        None => Ok(None),
    }
}

/// A CPU f32 weight [n, k] packed for our kernel, read in place.
fn pack(weight: &Matrix) -> candle_core::Result<PackedMatrix> {
    with_matrix_values(weight, PackedMatrix::pack)
}

/// A weight [n, k] quantized per row, read in place: a copy of the tied 59k × 512 embedding alone
/// would add 120 MB to the peak.
fn quantize(weight: &Matrix) -> candle_core::Result<Int8Matrix> {
    with_matrix_values(weight, Int8Matrix::quantize)
}

/// A CPU f32 weight [n, k] converted to bf16 panels (`--dtype bf16` on the CPU).
fn convert(weight: &Matrix) -> candle_core::Result<Bf16Matrix> {
    with_matrix_values(weight, Bf16Matrix::convert)?.ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "--dtype bf16 on the CPU needs AMX-BF16 or AVX512-BF16 ({})",
            crate::cpu::kernels()
        ))
    })
}

/// Token embeddings: an f32 table, or (int8) one quantized per row and dequantized at lookup,
/// shared with a tied output layer so the model keeps a single int8 copy and no f32 one.
#[derive(Debug, Clone)]
pub enum Embedding {
    Float(Tensor),
    /// f32 on the CPU: packed for the tied output layer, rows gathered from the panels.
    Packed(Arc<PackedMatrix>),
    Int8(Arc<Int8Matrix>, candle_core::Device),
    /// bf16 on the CPU, shared with a tied output layer.
    Bf16(Arc<Bf16Matrix>),
}

impl Embedding {
    pub fn new(table: Matrix, precision: Precision) -> candle_core::Result<Self> {
        Ok(match WeightForm::of(precision, &table) {
            WeightForm::Int8 => {
                let device = match &table {
                    Matrix::Tensor(tensor) => tensor.device().clone(),
                    Matrix::Mapped(_) => candle_core::Device::Cpu,
                };
                Self::Int8(Arc::new(quantize(&table)?), device)
            }
            WeightForm::Packed => Self::Packed(Arc::new(pack(&table)?)),
            WeightForm::Bf16 => Self::Bf16(Arc::new(convert(&table)?)),
            WeightForm::AsLoaded => Self::Float(table.into_tensor()?),
        })
    }

    /// The rows of `ids` (any shape): [ids…, dim].
    pub fn lookup(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let flat = ids.flatten_all()?;
        let mut dims = ids.dims().to_vec();
        match self {
            Self::Float(table) => {
                dims.push(table.dim(1)?);
                table.index_select(&flat, 0)?.reshape(dims)
            }
            Self::Packed(matrix) => {
                let ids = flat.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                let Some(rows) = matrix.gather_rows(&ids) else {
                    candle_core::bail!("token id out of the embedding's {} rows", matrix.rows());
                };
                dims.push(matrix.cols());
                Tensor::from_vec(rows, dims, &candle_core::Device::Cpu)
            }
            Self::Bf16(matrix) => {
                let ids = flat.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                let Some(rows) = matrix.gather_rows(&ids) else {
                    candle_core::bail!("token id out of the embedding's {} rows", matrix.rows());
                };
                dims.push(rows.len() / ids.len().max(1));
                Tensor::from_vec(rows, dims, &candle_core::Device::Cpu)
            }
            Self::Int8(matrix, device) => {
                let ids = flat.to_dtype(DType::U32)?.to_vec1::<u32>()?;
                let Some(rows) = matrix.dequantize_rows(&ids) else {
                    candle_core::bail!("token id out of the embedding's {} rows", matrix.rows());
                };
                dims.push(matrix.cols());
                Tensor::from_vec(rows, dims, device)
            }
        }
    }

    /// The output layer tied to this table, with `bias`.
    pub fn tied_head(&self, bias: Option<Tensor>) -> candle_core::Result<Linear> {
        match self {
            Self::Float(table) => Ok(Linear::new(table.clone(), bias)),
            Self::Packed(matrix) => Linear::packed(matrix.clone(), bias),
            Self::Int8(matrix, _) => Linear::int8(matrix.clone(), bias),
            Self::Bf16(matrix) => Linear::bf16(matrix.clone(), bias),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Self::Float(table) => table.dtype(),
            Self::Packed(_) | Self::Int8(..) | Self::Bf16(_) => DType::F32,
        }
    }

    pub fn device(&self) -> &candle_core::Device {
        match self {
            Self::Float(table) => table.device(),
            Self::Packed(_) | Self::Bf16(_) => &candle_core::Device::Cpu,
            Self::Int8(_, device) => device,
        }
    }
}

/// `prefix.weight` [out, in] and, when present, `prefix.bias` [out], in the weights' precision
/// (int8 covers the encoder too: at its shapes the int8 kernel does 250–270 GOP/s against the
/// f32 one's 170–190 GFLOP/s).
pub fn linear(
    w: &Weights,
    prefix: &str,
    in_dim: usize,
    out_dim: usize,
    bias: bool,
) -> Result<Linear> {
    let bias = if bias {
        Some(w.get(&format!("{prefix}.bias"), &[out_dim])?)
    } else {
        None
    };
    // Only the packed or quantized copy is kept: free the loaded one as we go (peak memory).
    let weight = w.matrix(&[&format!("{prefix}.weight")], &[out_dim, in_dim])?;
    Ok(Linear::with_precision(weight, bias, w.precision())?)
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
            // candle maps silu over one thread (and libm's scalar exp): torch's formula over the
            // pool, eight values at a time.
            Self::Silu if step_attention::applies_to(x) && x.is_contiguous() => {
                use rayon::prelude::*;
                const CHUNK: usize = 4096;
                let y: Vec<f32> = with_values(x, |v| {
                    // Not zero-filled first: silu writes every element.
                    let mut y = Vec::with_capacity(v.len());
                    y.spare_capacity_mut()[..v.len()]
                        .par_chunks_mut(CHUNK)
                        .zip(v.par_chunks(CHUNK))
                        .for_each(|(y, v)| crate::cpu::math::silu(v, y));
                    // SAFETY: the chunks cover all `v.len()` elements and silu wrote each.
                    unsafe { y.set_len(v.len()) };
                    y
                })?;
                Tensor::from_vec(y, x.dims(), x.device())
            }
            Self::Silu => candle_nn::ops::silu(x),
            Self::Gelu => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
        }
    }
}

/// The activation a BART-style config names, checked with its attention head counts
/// (`d_model` must split evenly into heads); errors name `config_path`.
pub fn checked_activation(
    config_path: &std::path::Path,
    activation_function: &str,
    d_model: usize,
    heads: [(&str, usize); 2],
) -> Result<Activation> {
    use crate::error::Error;
    let activation = Activation::from_config(activation_function).ok_or_else(|| {
        Error::file(
            config_path,
            format!(
                "unsupported activation_function {activation_function:?} (supported: relu, swish, silu, gelu, gelu_new)"
            ),
        )
    })?;
    for (what, heads) in heads {
        if heads == 0 || !d_model.is_multiple_of(heads) {
            return Err(Error::file(
                config_path,
                format!("d_model {d_model} is not divisible by {what}_attention_heads {heads}"),
            ));
        }
    }
    Ok(activation)
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
    /// Projections `[inner, dim]` (q, k, v) and `[dim, inner]` (out) with `inner = heads * head_dim`;
    /// scores are multiplied by `scaling` before the mask or bias is added.
    pub fn new([q, k, v, out]: [Linear; 4], heads: usize, head_dim: usize, scaling: f64) -> Self {
        Self {
            q,
            k,
            v,
            out,
            heads,
            head_dim,
            scaling,
        }
    }

    /// BART/Marian names (`q_proj` … `out_proj`), scaled by `head_dim**-0.5`.
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
        Ok((self.keys(x)?, self.split_heads(&self.v.forward(x)?)?))
    }

    /// Keys of `x` [B, S, D], split into heads: [B, H, S, hd].
    fn keys(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.split_heads(&self.k.forward(x)?)
    }

    /// softmax(q·kᵀ · scaling + mask) over the last axis, for queries `q` split into heads.
    fn softmax_scores(
        &self,
        q: &Tensor,
        keys: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut scores = q.matmul(&keys.t()?)?;
        if self.scaling != 1.0 {
            scores = (scores * self.scaling)?;
        }
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        candle_nn::ops::softmax_last_dim(&scores)
    }

    /// The attention weights of the queries from `x` [B, T, D] over `keys` [B, H, S, hd] with
    /// an additive `mask` broadcastable to [B, H, T, S]: [B, H, T, S].
    pub fn probabilities(
        &self,
        x: &Tensor,
        keys: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.softmax_scores(&self.split_heads(&self.q.forward(x)?)?, keys, mask)
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
        let context = self.probabilities(x, keys, mask)?.matmul(values)?; // [B, H, T, hd]
        let context = context
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.out.forward(&context)
    }

    /// Cross-attention of `x` [N, 1, D] — `group` consecutive rows per input — over the
    /// inputs' `keys`/`values` [N / group, H, S, hd] with `mask` [N / group, 1, 1, S]: the rows
    /// of an input query its keys together, which are stored and multiplied once, not per row.
    pub fn attend_grouped(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: &Tensor,
        group: usize,
    ) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        if step_attention::applies_to(x) {
            let (_, _, source_len, _) = keys.dims4()?;
            let q = self.q.forward(x)?;
            let mask = mask.flatten_all()?.to_vec1::<f32>()?;
            let (keys, values) = (keys.contiguous()?, values.contiguous()?);
            let context = with_values(&q, |q| {
                with_values(&keys, |k| {
                    with_values(&values, |v| {
                        step_attention::cross_attend(
                            q,
                            k,
                            v,
                            &mask,
                            self.heads,
                            self.head_dim,
                            source_len,
                            group,
                            self.scaling as f32,
                        )
                    })
                })
            })???;
            return self
                .out
                .forward(&step_attention::tensor(context, n, x.device())?);
        }
        let context = self
            .grouped_probabilities(x, keys, mask, group)?
            .matmul(values)? // [B, H, group, hd]
            .transpose(1, 2)?
            .reshape((n, 1, self.heads * self.head_dim))?;
        self.out.forward(&context)
    }

    /// The attention weights of [`Attention::attend_grouped`]: [N / group, H, group, S], each
    /// row summing to 1 over the source positions.
    pub fn grouped_probabilities(
        &self,
        x: &Tensor,
        keys: &Tensor,
        mask: &Tensor,
        group: usize,
    ) -> candle_core::Result<Tensor> {
        let inputs = x.dim(0)? / group;
        let q = self
            .q
            .forward(x)?
            .reshape((inputs, group, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?; // [B, H, group, hd]
        self.softmax_scores(&q, keys, Some(mask))
    }

    /// Self-attention without cache (the encoder).
    pub fn self_attend(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (k, v) = self.key_values(x)?;
        self.attend(x, &k, &v, mask)
    }

    /// Self-attention of packed tokens `x` [T, D] within each sentence of `tokens` (CPU f32).
    fn self_attend_tokens(&self, x: &Tensor, tokens: &Tokens) -> candle_core::Result<Tensor> {
        let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
        let context = with_values(&q, |q| {
            with_values(&k, |k| {
                with_values(&v, |v| {
                    encoder_attention::self_attention(
                        q,
                        k,
                        v,
                        tokens,
                        self.heads,
                        self.head_dim,
                        self.scaling as f32,
                    )
                })
            })
        })???;
        self.out
            .forward(&Tensor::from_vec(context, x.dims(), x.device())?)
    }

    /// Decoder self-attention for new positions `x` [N, 1, D], appending to `cache`; `bias`
    /// (T5's relative positions) is added to the scores.
    pub(crate) fn self_attend_cached(
        &self,
        x: &Tensor,
        cache: &mut SelfKv,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        if step_attention::applies_to(x) {
            let n = x.dim(0)?;
            let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
            if !matches!(cache, SelfKv::Cpu(_)) {
                *cache = SelfKv::Cpu(KvCache::new(n, self.heads, self.head_dim));
            }
            let SelfKv::Cpu(cache) = cache else {
                unreachable!("set above")
            };
            // [1, H, 1, T] → [H, T]
            let bias = bias
                .map(|b| b.flatten_all()?.to_vec1::<f32>())
                .transpose()?;
            let context = with_values(&q, |q| {
                with_values(&k, |k| {
                    with_values(&v, |v| {
                        cache.step(q, k, v, self.scaling as f32, bias.as_deref())
                    })
                })
            })???;
            return self
                .out
                .forward(&step_attention::tensor(context, n, x.device())?);
        }
        let (k_new, v_new) = self.key_values(x)?;
        let (k, v) = match std::mem::replace(cache, SelfKv::Empty) {
            SelfKv::Tensors(k, v) => (
                Tensor::cat(&[&k, &k_new], 2)?,
                Tensor::cat(&[&v, &v_new], 2)?,
            ),
            _ => (k_new, v_new),
        };
        let out = self.attend(x, &k, &v, bias)?;
        *cache = SelfKv::Tensors(k, v);
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

/// Additive causal mask [1, 1, T, T]: position i attends to positions 0..=i.
pub fn causal_mask(
    steps: usize,
    dtype: DType,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..steps)
        .flat_map(|i| (0..steps).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::from_vec(mask, (1, 1, steps, steps), device)?.to_dtype(dtype)
}

/// A BART-style encoder layer (Marian, BART, mBART): self-attention and a feed-forward block,
/// each with a residual connection and a LayerNorm, after it (post-norm) or before it (pre-norm).
pub struct EncoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_norm: LayerNorm,
}

/// A BART-style decoder layer: self-attention, cross-attention, feed-forward.
pub struct DecoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    cross_attn: Attention,
    cross_attn_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    final_norm: LayerNorm,
}

/// The sizes of a BART-style stack, from its config.
#[derive(Debug, Clone, Copy)]
pub struct StackShape {
    pub dim: usize,
    pub heads: usize,
    pub ffn: usize,
    pub layer_norm_eps: f64,
    pub activation: Activation,
    pub pre_norm: bool,
}

impl StackShape {
    /// `x + f(norm(x))` (pre-norm) or `norm(x + f(x))` (post-norm).
    fn residual(
        &self,
        x: &Tensor,
        norm: &LayerNorm,
        f: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        if self.pre_norm {
            x + f(&self.sublayer_input(x, norm)?)?
        } else {
            norm.forward(&(x + f(x)?)?)
        }
    }

    /// What a residual block's sublayer reads: `norm(x)` (pre-norm) or `x` (post-norm).
    fn sublayer_input(&self, x: &Tensor, norm: &LayerNorm) -> candle_core::Result<Tensor> {
        if self.pre_norm {
            norm.forward(x)
        } else {
            Ok(x.clone())
        }
    }

    fn feed_forward(&self, x: &Tensor, fc1: &Linear, fc2: &Linear) -> candle_core::Result<Tensor> {
        fc2.forward(&self.activation.apply(&fc1.forward(x)?)?)
    }
}

impl EncoderLayer {
    pub fn load(w: &Weights, prefix: &str, s: &StackShape) -> Result<Self> {
        let (d, eps) = (s.dim, s.layer_norm_eps);
        Ok(Self {
            self_attn: Attention::load(w, &format!("{prefix}.self_attn"), d, s.heads, true)?,
            self_attn_norm: layer_norm(w, &format!("{prefix}.self_attn_layer_norm"), d, eps)?,
            fc1: linear(w, &format!("{prefix}.fc1"), d, s.ffn, true)?,
            fc2: linear(w, &format!("{prefix}.fc2"), s.ffn, d, true)?,
            final_norm: layer_norm(w, &format!("{prefix}.final_layer_norm"), d, eps)?,
        })
    }

    /// `mask`: additive [B, 1, 1, S].
    pub fn forward(
        &self,
        h: &Tensor,
        mask: &Tensor,
        s: &StackShape,
    ) -> candle_core::Result<Tensor> {
        self.forward_with(h, s, |x| self.self_attn.self_attend(x, Some(mask)))
    }

    /// `forward` over packed real tokens [T, D] (CPU f32, see encoder_tokens.rs).
    fn forward_tokens(
        &self,
        h: &Tensor,
        tokens: &Tokens,
        s: &StackShape,
    ) -> candle_core::Result<Tensor> {
        self.forward_with(h, s, |x| self.self_attn.self_attend_tokens(x, tokens))
    }

    /// The layer with `self_attend` as its self-attention.
    fn forward_with(
        &self,
        h: &Tensor,
        s: &StackShape,
        self_attend: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let h = s.residual(h, &self.self_attn_norm, self_attend)?;
        s.residual(&h, &self.final_norm, |x| {
            s.feed_forward(x, &self.fc1, &self.fc2)
        })
    }
}

/// Runs encoder `layers` over the embedded batch `h` [B, S, D] with its 0/1 `mask` [B, S]. On
/// the CPU in f32 only the real tokens are computed and the padding rows come out as zeros;
/// elsewhere the padded batch runs with an additive mask.
pub fn encode_layers(
    layers: &[EncoderLayer],
    h: Tensor,
    mask: &Tensor,
    s: &StackShape,
) -> candle_core::Result<Tensor> {
    if step_attention::applies_to(&h) {
        let tokens = Tokens::from_mask(mask)?;
        let mut packed = tokens.pack(&h)?;
        for layer in layers {
            packed = layer.forward_tokens(&packed, &tokens, s)?;
        }
        return tokens.unpack(&packed);
    }
    let additive = additive_mask(mask)?;
    let mut h = h;
    for layer in layers {
        h = layer.forward(&h, &additive, s)?;
    }
    Ok(h)
}

impl DecoderLayer {
    pub fn load(w: &Weights, prefix: &str, s: &StackShape) -> Result<Self> {
        let (d, eps) = (s.dim, s.layer_norm_eps);
        Ok(Self {
            self_attn: Attention::load(w, &format!("{prefix}.self_attn"), d, s.heads, true)?,
            self_attn_norm: layer_norm(w, &format!("{prefix}.self_attn_layer_norm"), d, eps)?,
            cross_attn: Attention::load(w, &format!("{prefix}.encoder_attn"), d, s.heads, true)?,
            cross_attn_norm: layer_norm(w, &format!("{prefix}.encoder_attn_layer_norm"), d, eps)?,
            fc1: linear(w, &format!("{prefix}.fc1"), d, s.ffn, true)?,
            fc2: linear(w, &format!("{prefix}.fc2"), s.ffn, d, true)?,
            final_norm: layer_norm(w, &format!("{prefix}.final_layer_norm"), d, eps)?,
        })
    }

    /// Keys and values of the encoder output for this layer's cross-attention.
    pub fn cross_key_values(&self, encoded: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        self.cross_attn.key_values(encoded)
    }

    /// The layer over whole targets `h` [B, T, D] at once (teacher forcing): `causal`
    /// [1, 1, T, T] keeps each position from reading later ones, `cross_kv` are this layer's
    /// [`DecoderLayer::cross_key_values`] of the encoder output and `cross_mask`
    /// [B, 1, 1, S] its additive mask.
    pub(crate) fn forward_sequence(
        &self,
        h: &Tensor,
        causal: &Tensor,
        (k, v): &(Tensor, Tensor),
        cross_mask: &Tensor,
        s: &StackShape,
    ) -> candle_core::Result<Tensor> {
        let h = self.self_attend_sequence(h, causal, s)?;
        let h = s.residual(&h, &self.cross_attn_norm, |x| {
            self.cross_attn.attend(x, k, v, Some(cross_mask))
        })?;
        s.residual(&h, &self.final_norm, |x| {
            s.feed_forward(x, &self.fc1, &self.fc2)
        })
    }

    /// The cross-attention weights [B, H, T, S] this layer gives the source when it reads
    /// whole targets `h`, with the cross-attention `keys` of its key values (arguments as in
    /// [`DecoderLayer::forward_sequence`]); nothing after them is computed.
    pub(crate) fn cross_attention_of_sequence(
        &self,
        h: &Tensor,
        causal: &Tensor,
        keys: &Tensor,
        cross_mask: &Tensor,
        s: &StackShape,
    ) -> candle_core::Result<Tensor> {
        let h = self.self_attend_sequence(h, causal, s)?;
        let queries = s.sublayer_input(&h, &self.cross_attn_norm)?;
        self.cross_attn
            .probabilities(&queries, keys, Some(cross_mask))
    }

    fn self_attend_sequence(
        &self,
        h: &Tensor,
        causal: &Tensor,
        s: &StackShape,
    ) -> candle_core::Result<Tensor> {
        s.residual(h, &self.self_attn_norm, |x| {
            self.self_attn.self_attend(x, Some(causal))
        })
    }

    /// One decoding step for `h` [N, 1, D]; with `attention`, this step's cross-attention
    /// weights [N, H, S] are pushed there.
    pub(crate) fn forward(
        &self,
        h: &Tensor,
        cache: &mut super::LayerCache,
        cross_mask: &Tensor,
        rows_per_input: usize,
        s: &StackShape,
        attention: Option<&mut Vec<Tensor>>,
    ) -> candle_core::Result<Tensor> {
        let h = s.residual(h, &self.self_attn_norm, |x| {
            self.self_attn
                .self_attend_cached(x, &mut cache.self_kv, None)
        })?;
        let (k, v) = &cache.cross_kv;
        let h = s.residual(&h, &self.cross_attn_norm, |x| {
            if let Some(attention) = attention {
                let probs =
                    self.cross_attn
                        .grouped_probabilities(x, k, cross_mask, rows_per_input)?;
                let (inputs, heads, group, source) = probs.dims4()?;
                attention.push(
                    probs
                        .transpose(1, 2)?
                        .reshape((inputs * group, heads, source))?
                        .to_dtype(candle_core::DType::F32)?,
                );
            }
            self.cross_attn
                .attend_grouped(x, k, v, cross_mask, rows_per_input)
        })?;
        s.residual(&h, &self.final_norm, |x| {
            s.feed_forward(x, &self.fc1, &self.fc2)
        })
    }
}
