//! A loaded seq2seq model with its tokenizer and generation settings: token ids in, generated
//! token ids out, batched by length. The tasks (translate, summarize) are built on it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::models::Precision;
use candle_core::{DType, Device, Tensor};

use crate::error::Result;
use crate::generation::{self, GenerationOverrides, GenerationSettings, Hypothesis, ModelDefaults};
use crate::models::{self, Seq2Seq};
use crate::tokenizer::Tokenizer;

pub struct Engine {
    model: Box<dyn Seq2Seq>,
    tokenizer: Tokenizer,
    /// The model's own generation settings (generation_config.json, with task parameters
    /// over it when a task supplies them), flags not applied.
    model_generation: GenerationOverrides,
    /// The target language's forced first token, between the model's settings and the flags.
    language: GenerationOverrides,
    /// The flags' settings, on top.
    overrides: GenerationOverrides,
    /// Generation settings of the model that dragoman cannot honour.
    unsupported: Vec<String>,
    settings: GenerationSettings,
    device: Device,
    /// Padded source tokens allowed in one encoder batch.
    batch_tokens: usize,
    /// Inputs allowed in one batch, whatever their length (`--max-batch`); without it, on the
    /// CPU, [`CPU_DECODING_ROWS`] rows (inputs × beams).
    max_batch: Option<usize>,
    /// Where the time has gone since loading (reported under `-v`).
    stage_times: std::sync::Mutex<StageTimes>,
}

/// Time an [`Engine`] has spent in each stage since it was loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    /// Running the encoder over the inputs.
    pub encoding: Duration,
    /// The decoding search.
    pub generation: Duration,
    /// Reading outputs back for word alignment (documents' spans, JSON's `alignment`).
    pub alignment: Duration,
}

/// Decoding rows (inputs × beams) of one batch on the CPU when `--max-batch` is not given.
///
/// More rows share each read of the weights, but past this the step's buffers outgrow what
/// the allocator keeps for reuse: opus-mt's logits alone are rows × 59 514 floats, and above
/// 32 MiB (glibc's largest heap threshold, about 140 rows) every step maps and faults fresh
/// pages. Measured on the benchmark (47 sentences, 48 tokens, 2 threads, Xeon with AMX),
/// beam 4 in one batch of 47 against batches of 16 (64 rows): int8 4.00 against 3.60 s, bf16
/// 5.82 against 3.94 s, f32 7.06 against 7.20 s; greedy is flat from 16 to 47 sentences.
const CPU_DECODING_ROWS: usize = 64;

impl Engine {
    /// Loads the model, tokenizer and generation config laid out as a hub repo in `dir`.
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let model = models::load(dir, precision, device)?;
        let tokenizer = Tokenizer::load(dir)?;
        let model_generation = GenerationOverrides::from_model_dir(dir)?;
        let unsupported = GenerationOverrides::unsupported_in(dir);
        let settings = resolve_settings(model.as_ref(), &model_generation)?;
        Ok(Self {
            model,
            tokenizer,
            model_generation,
            language: GenerationOverrides::default(),
            overrides: GenerationOverrides::default(),
            unsupported,
            settings,
            device: device.clone(),
            batch_tokens: 4096,
            max_batch: None,
            stage_times: Default::default(),
        })
    }

    /// Puts a task's parameters (transformers' `task_specific_params`) over the model's
    /// generation config, as the pipelines do; flags still override them.
    pub fn set_task_parameters(&mut self, task: &GenerationOverrides) -> Result<()> {
        self.model_generation = self.model_generation.clone().overridden_by(task);
        self.set_overrides(&GenerationOverrides::default())
    }

    /// Applies flag-level overrides on top of the model's generation config.
    pub fn set_overrides(&mut self, overrides: &GenerationOverrides) -> Result<()> {
        self.overrides = overrides.clone();
        self.resolve()
    }

    /// Forces `token` as the first generated token (a multilingual model's target language),
    /// as transformers' `forced_bos_token_id`; it counts as a generated token.
    pub fn force_first_token(&mut self, token: u32) -> Result<()> {
        self.language = GenerationOverrides {
            forced_bos_token_id: Some(token),
            ..GenerationOverrides::default()
        };
        self.resolve()
    }

    fn resolve(&mut self) -> Result<()> {
        let layers = self
            .model_generation
            .clone()
            .overridden_by(&self.language)
            .overridden_by(&self.overrides);
        self.settings = resolve_settings(self.model.as_ref(), &layers)?;
        Ok(())
    }

    pub fn tokenizer_mut(&mut self) -> &mut Tokenizer {
        &mut self.tokenizer
    }

    pub fn settings(&self) -> &GenerationSettings {
        &self.settings
    }

    /// The model's generation settings that dragoman does not implement ("key = value"): its
    /// output may differ from transformers' where they matter.
    pub fn unsupported_settings(&self) -> &[String] {
        &self.unsupported
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Number of input tokens the model accepts.
    pub fn max_input_tokens(&self) -> usize {
        self.model.max_input_tokens()
    }

    pub fn set_batch_tokens(&mut self, tokens: usize) {
        self.batch_tokens = tokens.max(1);
    }

    pub fn set_max_batch(&mut self, inputs: usize) {
        self.max_batch = Some(inputs.max(1));
    }

    /// Inputs allowed in one batch.
    fn inputs_per_batch(&self) -> usize {
        match self.max_batch {
            Some(n) => n,
            None if self.device.is_cpu() => {
                (CPU_DECODING_ROWS / self.settings.num_beams.max(1)).max(1)
            }
            None => usize::MAX,
        }
    }

    /// Token ids the model generates for each of `sentences` (decoder start token first):
    /// the best of [`Engine::generate`].
    pub fn generate_ids(&self, sentences: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .generate(sentences)?
            .into_iter()
            .map(|hypotheses| {
                hypotheses
                    .into_iter()
                    .next()
                    .map(|h| h.ids)
                    .unwrap_or_default()
            })
            .collect())
    }

    /// The `num_return_sequences` best hypotheses for each of `sentences`, with their scores.
    /// Sentences are batched by length; results come back in input order.
    pub fn generate(&self, sentences: &[Vec<u32>]) -> Result<Vec<Vec<Hypothesis>>> {
        Ok(self
            .generate_on_pool(sentences, &[])?
            .into_iter()
            .map(|(hypotheses, _)| hypotheses)
            .collect())
    }

    /// [`Engine::generate`], each sentence that `aligned` marks with its best hypothesis's
    /// alignment attention (as [`Engine::alignment_attention`] gives it; the others get none).
    /// Each batch is read back right after it is generated, from the encoder output the
    /// generation used.
    pub fn generate_aligned(
        &self,
        sentences: &[Vec<u32>],
        aligned: &[bool],
    ) -> Result<Vec<Generated>> {
        self.generate_on_pool(sentences, aligned)
    }

    fn generate_on_pool(&self, sentences: &[Vec<u32>], aligned: &[bool]) -> Result<Vec<Generated>> {
        // On a thread of rayon's pool. Called from outside it, each of a step's dozens of
        // parallel loops is handed to the pool while this thread sleeps and wakes again; from
        // inside, they fork and join in place (one sentence at a time: 20 -> 18 s, sys time
        // 3.4 -> 1.3 s).
        rayon::scope(|_| {
            let mut order: Vec<usize> = (0..sentences.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(sentences[i].len()));
            let mut results = vec![Generated::default(); sentences.len()];
            let mut start = 0;
            let max_batch = self.inputs_per_batch();
            while start < order.len() {
                // Longest first, so the first sentence of a batch sets its padded width.
                let width = sentences[order[start]].len().max(1);
                let count = (self.batch_tokens / width)
                    .clamp(1, max_batch)
                    .min(order.len() - start);
                let batch = &order[start..start + count];
                let generated = self.generate_batch(batch, sentences, aligned)?;
                for (&i, one) in batch.iter().zip(generated) {
                    results[i] = one;
                }
                start += count;
            }
            Ok(results)
        })
    }

    /// The time spent so far in each stage.
    pub fn stage_times(&self) -> StageTimes {
        *self.stage_times.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f`, adding its time to the stage `pick` chooses.
    fn timed<R>(&self, pick: fn(&mut StageTimes) -> &mut Duration, f: impl FnOnce() -> R) -> R {
        let started = Instant::now();
        let result = f();
        *pick(&mut self.stage_times.lock().unwrap_or_else(|e| e.into_inner())) += started.elapsed();
        result
    }

    /// Generates `sentences[i]` for each `i` of `batch`, reading back those `aligned` marks.
    fn generate_batch(
        &self,
        batch: &[usize],
        sentences: &[Vec<u32>],
        aligned: &[bool],
    ) -> Result<Vec<Generated>> {
        let encoded = self.encode_batch(batch.iter().map(|&i| sentences[i].as_slice()))?;
        let hypotheses = self.timed(
            |t| &mut t.generation,
            || generation::generate(self.model.as_ref(), &encoded, &self.settings),
        )?;
        let mut attention = vec![Vec::new(); hypotheses.len()];
        let rows: Vec<u32> = (0..batch.len() as u32)
            .filter(|&row| aligned.get(batch[row as usize]).copied().unwrap_or(false))
            .collect();
        if !rows.is_empty() {
            let pairs: Vec<(&[u32], &[u32])> = rows
                .iter()
                .map(|&row| {
                    let best = hypotheses[row as usize].first();
                    (
                        sentences[batch[row as usize]].as_slice(),
                        best.map_or(&[][..], |h| h.ids.as_slice()),
                    )
                })
                .collect();
            // Only the rows to align are read back: the batch's encoder output narrowed to
            // them where some are left out.
            let read = match rows.len() == batch.len() {
                true => self.read_back(&encoded, &pairs)?,
                false => self.read_back(&encoded.select(&rows)?, &pairs)?,
            };
            for (&row, one) in rows.iter().zip(read) {
                attention[row as usize] = one;
            }
        }
        Ok(hypotheses.into_iter().zip(attention).collect())
    }

    /// For each (source ids, generated ids) pair, the cross-attention the decoder gives the
    /// source when it reads the generated ids back (teacher forcing): one row per generated
    /// token after the decoder start, over the source tokens, averaged over the heads of the
    /// [`ALIGNMENT_LAYER_FROM_TOP`]. Beam search reorders its rows as it goes, so the chosen
    /// output's attention is recomputed, one forward pass per batch, rather than recorded
    /// during the search.
    pub fn alignment_attention(&self, pairs: &[(&[u32], &[u32])]) -> Result<Vec<Vec<Vec<f32>>>> {
        // Longest first, so that a batch's rows need little padding; results in input order.
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse((pairs[i].0.len(), pairs[i].1.len())));
        rayon::scope(|_| {
            let mut results = vec![Vec::new(); pairs.len()];
            for batch in order.chunks(ALIGNMENT_BATCH) {
                let rows: Vec<(&[u32], &[u32])> = batch.iter().map(|&i| pairs[i]).collect();
                let encoded = self.encode_batch(rows.iter().map(|(source, _)| *source))?;
                for (&i, attention) in batch.iter().zip(self.read_back(&encoded, &rows)?) {
                    results[i] = attention;
                }
            }
            Ok(results)
        })
    }

    /// [`Engine::alignment_attention`] of `pairs` whose sources `encoded` holds, in order.
    fn read_back(
        &self,
        encoded: &models::Encoded,
        pairs: &[(&[u32], &[u32])],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        self.timed(
            |t| &mut t.alignment,
            || self.teacher_forced_attention(encoded, pairs),
        )
    }

    fn teacher_forced_attention(
        &self,
        encoded: &models::Encoded,
        pairs: &[(&[u32], &[u32])],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        // Each row reads its ids but the last (whose step would predict past the end),
        // right-padded; the causal mask keeps a row's padding from its real positions.
        let steps = pairs
            .iter()
            .map(|(_, target)| target.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let pad = self.model.special_tokens().pad;
        let mut inputs = Vec::with_capacity(pairs.len() * steps);
        for (_, target) in pairs {
            let read = &target[..target.len().saturating_sub(1)];
            inputs.extend_from_slice(read);
            inputs.extend(std::iter::repeat_n(pad, steps - read.len()));
        }
        let inputs = Tensor::from_vec(inputs, (pairs.len(), steps), &self.device)?;
        let Some(averaged) =
            self.model
                .averaged_cross_attention(encoded, &inputs, ALIGNMENT_LAYER_FROM_TOP)?
        else {
            // A model that gives none (T5): no attention to align with.
            return Ok(pairs.iter().map(|_| Vec::new()).collect());
        };
        Ok(averaged
            .to_vec3::<f32>()?
            .into_iter()
            .zip(pairs)
            .map(|(mut rows, (source, target))| {
                rows.truncate(target.len().saturating_sub(1));
                for row in &mut rows {
                    row.truncate(source.len());
                }
                rows
            })
            .collect())
    }

    /// Encodes a batch of id sequences, right-padded to the longest.
    fn encode_batch<'a>(
        &self,
        batch: impl ExactSizeIterator<Item = &'a [u32]> + Clone,
    ) -> Result<models::Encoded> {
        let rows = batch.len();
        let width = batch.clone().map(<[u32]>::len).max().unwrap_or(0);
        let pad = self.model.special_tokens().pad;
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for sentence in batch {
            ids.extend_from_slice(sentence);
            ids.extend(std::iter::repeat_n(pad, width - sentence.len()));
            mask.extend(std::iter::repeat_n(1u32, sentence.len()));
            mask.extend(std::iter::repeat_n(0u32, width - sentence.len()));
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?.to_dtype(DType::F32)?;
        self.timed(|t| &mut t.encoding, || self.model.encode(&ids, &mask))
    }
}

/// A sentence's hypotheses, best first, and where asked the best one's alignment attention
/// ([`Engine::generate_aligned`]).
pub type Generated = (Vec<Hypothesis>, Vec<Vec<f32>>);

/// The decoder layer whose heads word alignment averages, counted from the top: the one below
/// the last, the layer whose averaged cross-attention aligns best in a Transformer trained
/// without an alignment objective (Garg et al. 2019, "Jointly Learning to Align and
/// Translate"); with one layer, that layer.
pub const ALIGNMENT_LAYER_FROM_TOP: usize = 2;

/// Sentences per teacher-forced batch when aligning: each is read whole, so a batch's
/// products have sentences × target tokens rows, and its attention weights
/// sentences × heads × target × source values.
const ALIGNMENT_BATCH: usize = CPU_DECODING_ROWS;

/// Generation settings, layered, resolved against the model's facts.
fn resolve_settings(
    model: &dyn Seq2Seq,
    layers: &GenerationOverrides,
) -> Result<GenerationSettings> {
    let special = model.special_tokens();
    let defaults = ModelDefaults {
        eos: special.eos,
        pad: special.pad,
        decoder_start: special.decoder_start,
        max_positions: model.max_input_tokens(),
    };
    GenerationSettings::resolve(layers, &defaults)
}
