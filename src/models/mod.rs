//! Model families, each in its own folder behind the [`Seq2Seq`] trait.
//!
//! The generation code only sees this trait: encode a padded batch once, then run the decoder
//! one token at a time over rows that may be beams of the same sentence.

pub mod bart;
pub(crate) mod encoder_decoder;
pub mod layers;
pub(crate) mod m2m100;
pub mod marian;
pub(crate) mod model_dir;
pub mod t5;
pub mod weights;

use candle_core::Tensor;

use crate::error::Result;

/// How a model's numbers are held: one float dtype throughout, or (`Int8`, CPU only) int8
/// weights for the decoder's projections, the output layer and the embeddings, with f32
/// activations and an f32 encoder (see `int8.rs` and `layers::linear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    BF16,
    Int8,
}

impl Precision {
    /// The dtype activations (and unquantized weights) are computed in on `device`: on the
    /// CPU, bf16 keeps f32 activations and converts the projections' weights (cpu/bf16.rs).
    pub fn dtype_on(self, device: &candle_core::Device) -> candle_core::DType {
        match self {
            Self::BF16 if device.is_cpu() => candle_core::DType::F32,
            _ => self.dtype(),
        }
    }

    /// The dtype activations (and unquantized weights) are computed in on a GPU.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Self::F32 | Self::Int8 => candle_core::DType::F32,
            Self::F16 => candle_core::DType::F16,
            Self::BF16 => candle_core::DType::BF16,
        }
    }
}

/// The ids a family needs to start, stop and pad generation, read from its config.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialTokens {
    pub pad: u32,
    pub eos: u32,
    pub decoder_start: u32,
}

/// An encoder-decoder model.
pub trait Seq2Seq: Send + Sync {
    /// Encodes a right-padded batch `input_ids` [B, S] with `attention_mask` [B, S] (1 = token).
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Encoded>;

    /// Prepares decoding for `rows_per_input` rows per encoded input (beams): the cross-attention
    /// keys and values are computed here once per batch, never per step.
    fn start_decoding(&self, encoded: &Encoded, rows_per_input: usize) -> Result<DecoderState>;

    /// Feeds one token per row [N] and returns the next-token logits [N, V] in f32.
    fn decode_step(&self, tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor>;

    /// The cross-attention weights of one decoder layer, `from_top` layers down counting the
    /// last as 1 (the first where there are fewer), when the decoder reads `inputs` [B, T]
    /// whole (teacher forcing, causally masked), averaged over the layer's heads: [B, T, S]
    /// in f32, each row summing to 1 over the source positions. Only the layers up to that
    /// one run, and no output projection. `None` where a family gives none to align with
    /// (T5, by this default).
    fn averaged_cross_attention(
        &self,
        _encoded: &Encoded,
        _inputs: &Tensor,
        _from_top: usize,
    ) -> Result<Option<Tensor>> {
        Ok(None)
    }

    fn special_tokens(&self) -> &SpecialTokens;

    /// Number of positions the encoder accepts; longer inputs must be split by the caller.
    fn max_input_tokens(&self) -> usize;

    fn vocab_size(&self) -> usize;
}

/// Encoder output with the mask that goes with it.
pub struct Encoded {
    /// [B, S, D]
    pub hidden: Tensor,
    /// [B, S], 1 for tokens and 0 for padding (the model's dtype).
    pub mask: Tensor,
    /// Each decoder layer's cross-attention keys and values [B, H, S, hd] of `hidden`, made on
    /// first use and shared by every decoding of this output (a generation, then the
    /// alignment pass reading its result back).
    cross_key_values: std::sync::OnceLock<Vec<(Tensor, Tensor)>>,
}

impl Encoded {
    pub fn new(hidden: Tensor, mask: Tensor) -> Self {
        Self {
            hidden,
            mask,
            cross_key_values: std::sync::OnceLock::new(),
        }
    }

    /// The inputs `rows` of this output, with their cross-attention keys and values where
    /// they are made already.
    pub fn select(&self, rows: &[u32]) -> Result<Self> {
        let index = Tensor::new(rows, self.hidden.device())?;
        let selected = Self::new(
            self.hidden.index_select(&index, 0)?,
            self.mask.index_select(&index, 0)?,
        );
        if let Some(made) = self.cross_key_values.get() {
            let narrowed = made
                .iter()
                .map(|(k, v)| Ok((k.index_select(&index, 0)?, v.index_select(&index, 0)?)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let _ = selected.cross_key_values.set(narrowed);
        }
        Ok(selected)
    }

    /// The decoder `layers`' cross-attention keys and values of this output, computed by
    /// `key_values(layer, hidden)` the first time.
    pub(crate) fn cross_key_values<L>(
        &self,
        layers: impl Iterator<Item = L>,
        key_values: impl Fn(L, &Tensor) -> candle_core::Result<(Tensor, Tensor)>,
    ) -> Result<&[(Tensor, Tensor)]> {
        if let Some(made) = self.cross_key_values.get() {
            return Ok(made);
        }
        let made = layers
            .map(|layer| key_values(layer, &self.hidden))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(self.cross_key_values.get_or_init(|| made))
    }
}

/// Per-layer key/value caches of a decoding batch.
///
/// The rows are grouped by input, `rows_per_input` consecutive rows each (the beams of one
/// sentence). Cross-attention keys and values are the same for all rows of an input, so they
/// are kept once per input and the rows' queries attend to them together.
pub struct DecoderState {
    pub(crate) layers: Vec<LayerCache>,
    /// Additive cross-attention mask [B, 1, 1, S] per input: 0 for tokens, -inf for padding.
    pub(crate) cross_mask: Tensor,
    pub(crate) rows_per_input: usize,
    /// Number of tokens already fed to the decoder.
    pub(crate) position: usize,
    /// When recording: per decoder layer, each step's cross-attention weights [N, H, S].
    pub(crate) cross_attention: Option<Vec<Vec<Tensor>>>,
}

pub(crate) struct LayerCache {
    /// Per row, grown by one position per step.
    pub(crate) self_kv: SelfKv,
    /// [B, H, S, hd] per input, fixed for the whole generation.
    pub(crate) cross_kv: (Tensor, Tensor),
}

/// A layer's self-attention keys and values so far.
pub(crate) enum SelfKv {
    /// Before the first step.
    Empty,
    /// [N, H, T, hd] tensors, grown with `cat` (GPUs and half precision).
    Tensors(Tensor, Tensor),
    /// The CPU's preallocated cache (f32).
    Cpu(crate::cpu::step_attention::KvCache),
}

impl DecoderState {
    /// The state before the first step: `cross_key_values(layer, encoder output)` of every
    /// decoder layer, computed once per input.
    pub(crate) fn start<L>(
        encoded: &Encoded,
        rows_per_input: usize,
        layers: impl Iterator<Item = L>,
        cross_key_values: impl Fn(L, &Tensor) -> candle_core::Result<(Tensor, Tensor)>,
    ) -> Result<Self> {
        let layers = encoded
            .cross_key_values(layers, cross_key_values)?
            .iter()
            .map(|kv| LayerCache {
                self_kv: SelfKv::Empty,
                cross_kv: kv.clone(),
            })
            .collect();
        Ok(DecoderState {
            layers,
            cross_mask: layers::additive_mask(&encoded.mask)?,
            rows_per_input: rows_per_input.max(1),
            position: 0,
            cross_attention: None,
        })
    }

    /// Keeps the rows `rows` (whole inputs, `rows_per_input` rows each, in input order): a
    /// beam reordering that also drops finished inputs.
    pub fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        let per_input = self.rows_per_input;
        let device = self.cross_mask.device().clone();
        let inputs: Vec<u32> = rows
            .chunks(per_input)
            .map(|group| group[0] / per_input as u32)
            .collect();
        let inputs = Tensor::new(inputs, &device)?;
        self.reorder_beams(rows)?;
        for layer in &mut self.layers {
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (k.index_select(&inputs, 0)?, v.index_select(&inputs, 0)?);
        }
        self.cross_mask = self.cross_mask.index_select(&inputs, 0)?;
        Ok(())
    }

    /// Reorders beams: rows move only within the beams of one input, whose cross-attention
    /// keys and values are shared, so only the self-attention caches are gathered.
    pub fn reorder_beams(&mut self, rows: &[u32]) -> Result<()> {
        use rayon::prelude::*;
        let index = Tensor::new(rows, self.cross_mask.device())?;
        // The layers' caches are independent: they move their histories in parallel.
        self.layers.par_iter_mut().try_for_each(|layer| {
            match &mut layer.self_kv {
                SelfKv::Empty => {}
                SelfKv::Tensors(k, v) => {
                    layer.self_kv =
                        SelfKv::Tensors(k.index_select(&index, 0)?, v.index_select(&index, 0)?)
                }
                SelfKv::Cpu(cache) => cache.select_rows(rows),
            }
            Ok(())
        })
    }

    pub fn position(&self) -> usize {
        self.position
    }

    /// Keeps every following step's cross-attention weights (the BART-like families; T5 keeps
    /// none), every layer and head, as transformers' `output_attentions` gives them (word
    /// alignment reads one layer in a single pass instead: `Seq2Seq::averaged_cross_attention`).
    /// Reordering rows does not reorder what was recorded.
    pub fn record_cross_attention(&mut self) {
        self.cross_attention = Some(vec![Vec::new(); self.layers.len()]);
    }

    /// Per decoder layer, the recorded steps' cross-attention weights [steps, N, H, S]: each
    /// row sums to 1 over the source positions (padding weighs 0).
    pub fn cross_attention(&self) -> Result<Vec<Tensor>> {
        let Some(layers) = &self.cross_attention else {
            return Ok(Vec::new());
        };
        layers
            .iter()
            .filter(|steps| !steps.is_empty())
            .map(|steps| Ok(Tensor::stack(steps, 0)?))
            .collect()
    }
}

/// The families dragoman implements, by config.json `model_type`.
pub const SUPPORTED_FAMILIES: &[&str] = &["marian", "bart", "mbart", "m2m_100", "t5", "mt5"];

/// A model's `config.json`, parsed, with the family it names (`model_type`).
pub struct ModelConfig {
    pub path: std::path::PathBuf,
    pub raw: serde_json::Value,
}

impl ModelConfig {
    pub fn read(path: &std::path::Path) -> Result<Self> {
        use crate::error::Error;
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let raw = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("invalid JSON: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            raw,
        })
    }

    pub fn model_type(&self) -> &str {
        self.raw
            .get("model_type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    }

    pub fn is_supported(&self) -> bool {
        SUPPORTED_FAMILIES.contains(&self.model_type())
    }

    /// The one-line complaint for a family dragoman cannot run.
    pub fn unsupported_message(&self) -> String {
        format!(
            "model_type {:?} is not supported (supported: {})",
            self.model_type(),
            SUPPORTED_FAMILIES.join(", ")
        )
    }
}

/// Reads `config.json` in `dir` and loads the model family it names.
pub fn load(
    dir: &std::path::Path,
    precision: Precision,
    device: &candle_core::Device,
) -> Result<Box<dyn Seq2Seq>> {
    use crate::error::Error;
    let config = model_dir::ModelDir::new(dir).config()?;
    // `defaults`: the family's values for keys config.json may leave out.
    fn parse_with<T: serde::de::DeserializeOwned>(
        config: &ModelConfig,
        defaults: serde_json::Value,
    ) -> Result<T> {
        let mut raw = config.raw.clone();
        if let (Some(raw), serde_json::Value::Object(defaults)) = (raw.as_object_mut(), defaults) {
            for (key, value) in defaults {
                raw.entry(key).or_insert(value);
            }
        }
        serde_json::from_value(raw).map_err(|e| {
            Error::file(
                &config.path,
                format!("not a valid {} config: {e}", config.model_type()),
            )
        })
    }
    fn parse<T: serde::de::DeserializeOwned>(config: &ModelConfig) -> Result<T> {
        parse_with(config, serde_json::Value::Null)
    }
    // The BART-like families are their config's architecture on one shared stack.
    let architecture = match config.model_type() {
        "marian" => Some(
            parse_with::<marian::MarianConfig>(&config, marian::MarianConfig::defaults())?
                .architecture(),
        ),
        kind @ ("bart" | "mbart") => {
            let variant = match kind {
                "bart" => bart::Variant::Bart,
                _ => bart::Variant::MBart,
            };
            let c = parse_with::<bart::BartConfig>(&config, bart::BartConfig::defaults())?;
            Some(c.architecture(variant))
        }
        "m2m_100" => Some(
            parse_with::<m2m100::M2M100Config>(&config, m2m100::M2M100Config::defaults())?
                .architecture(),
        ),
        _ => None,
    };
    if let Some(architecture) = architecture {
        let model = encoder_decoder::EncoderDecoder::load(&architecture, dir, precision, device)?;
        return Ok(Box::new(model));
    }
    Ok(match config.model_type() {
        kind @ ("t5" | "mt5") => Box::new(t5::T5::load(
            &parse(&config)?,
            kind,
            dir,
            precision,
            device,
        )?),
        _ => return Err(Error::file(&config.path, config.unsupported_message())),
    })
}
