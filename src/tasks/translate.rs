//! Translation: lines → sentences → length-sorted batches → generation → lines.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::generation::{self, GenerationOverrides, GenerationSettings, ModelDefaults};
use crate::models::{self, Seq2Seq};
use crate::text;
use crate::tokenizer::Tokenizer;

/// Where notes for the user (long sentences split, …) go; the CLI prints them on stderr.
pub type NoteSink = Box<dyn Fn(&str) + Send + Sync>;

/// A loaded translation model with its tokenizer and generation defaults.
pub struct Translator {
    model: Box<dyn Seq2Seq>,
    tokenizer: Tokenizer,
    /// generation_config.json, flags not applied.
    model_generation: GenerationOverrides,
    /// Generation settings of the model that dragoman cannot honour.
    unsupported: Vec<String>,
    settings: GenerationSettings,
    device: Device,
    /// Padded source tokens allowed in one encoder batch.
    batch_tokens: usize,
    notes: NoteSink,
    name: String,
}

impl Translator {
    /// Loads the model, tokenizer and generation config laid out as a hub repo in `dir`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let model = models::load(dir, dtype, device)?;
        let tokenizer = Tokenizer::load(dir)?;
        let model_generation = GenerationOverrides::from_model_dir(dir)?;
        let unsupported = GenerationOverrides::unsupported_in(dir);
        let settings = resolve_settings(
            model.as_ref(),
            &model_generation,
            &GenerationOverrides::default(),
        )?;
        Ok(Self {
            model,
            tokenizer,
            model_generation,
            unsupported,
            settings,
            device: device.clone(),
            batch_tokens: 4096,
            notes: Box::new(|note| eprintln!("dragoman: {note}")),
            name: dir.display().to_string(),
        })
    }

    /// Applies flag-level overrides on top of the model's generation config.
    pub fn set_overrides(&mut self, overrides: &GenerationOverrides) -> Result<()> {
        self.settings = resolve_settings(self.model.as_ref(), &self.model_generation, overrides)?;
        Ok(())
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

    pub fn set_notes(&mut self, notes: NoteSink) {
        self.notes = notes;
    }

    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    pub fn set_batch_tokens(&mut self, tokens: usize) {
        self.batch_tokens = tokens.max(1);
    }

    /// Token ids the model generates for each of `sentences` (decoder start token first).
    /// Sentences are batched by length; results come back in input order.
    pub fn generate_ids(&self, sentences: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sentences[i].len()));
        let mut results = vec![Vec::new(); sentences.len()];
        let mut start = 0;
        while start < order.len() {
            // Longest first, so the first sentence of a batch sets its padded width.
            let width = sentences[order[start]].len().max(1);
            let count = (self.batch_tokens / width).max(1).min(order.len() - start);
            let batch = &order[start..start + count];
            let generated = self.generate_batch(batch.iter().map(|&i| sentences[i].as_slice()))?;
            for (&i, ids) in batch.iter().zip(generated) {
                results[i] = ids;
            }
            start += count;
        }
        Ok(results)
    }

    fn generate_batch<'a>(
        &self,
        batch: impl ExactSizeIterator<Item = &'a [u32]> + Clone,
    ) -> Result<Vec<Vec<u32>>> {
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
        let encoded = self.model.encode(&ids, &mask)?;
        generation::generate(self.model.as_ref(), &encoded, &self.settings)
    }

    /// Translates sentences; each result is exactly the decoded generation (possibly empty).
    pub fn translate_sentences(&self, sentences: &[&str]) -> Result<Vec<String>> {
        // A sentence longer than the encoder accepts is cut at clause boundaries first and
        // its pieces translated separately, with a note; never silently truncated.
        let limit = self.model.max_input_tokens();
        let mut pieces: Vec<Vec<u32>> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (i, sentence) in sentences.iter().enumerate() {
            let ids = self.tokenizer.encode(sentence)?;
            if ids.len() <= limit {
                pieces.push(ids);
                owner.push(i);
                continue;
            }
            let count = |s: &str| {
                self.tokenizer
                    .encode(s)
                    .map(|ids| ids.len())
                    .unwrap_or(usize::MAX)
            };
            let parts = text::split_long(sentence, limit, &count);
            (self.notes)(&format!(
                "{}: a sentence of {} tokens exceeds the model's {limit}; translated in {} parts",
                self.name,
                ids.len(),
                parts.len()
            ));
            for range in parts {
                let ids = self.tokenizer.encode(&sentence[range])?;
                if ids.len() > limit {
                    return Err(Error::Input(format!(
                        "a piece of {} tokens cannot be split below the model's {limit} positions",
                        ids.len()
                    )));
                }
                pieces.push(ids);
                owner.push(i);
            }
        }
        let generated = self.generate_ids(&pieces)?;
        let mut out: Vec<String> = vec![String::new(); sentences.len()];
        for (i, ids) in owner.into_iter().zip(generated) {
            let piece = self.tokenizer.decode(&ids)?;
            if !out[i].is_empty() && !piece.is_empty() {
                out[i].push(' ');
            }
            out[i].push_str(&piece);
        }
        Ok(out)
    }

    /// Translates a block of lines, keeping the line structure: one output line per input
    /// line, indentation and blank lines kept, sentences joined by their original spacing.
    pub fn translate_lines(&self, lines: &[&str]) -> Result<Vec<String>> {
        let mut sentences: Vec<&str> = Vec::new();
        let mut layouts = Vec::with_capacity(lines.len());
        for line in lines {
            let layout = text::LineLayout::of(line);
            let ranges = text::split_sentences(layout.content(line));
            let first = sentences.len();
            sentences.extend(ranges.iter().map(|r| &layout.content(line)[r.clone()]));
            layouts.push((layout, ranges, first));
        }
        let translated = self.translate_sentences(&sentences)?;
        Ok(lines
            .iter()
            .zip(layouts)
            .map(|(line, (layout, ranges, first))| {
                let content = layout.content(line);
                let mut out = String::new();
                for (k, range) in ranges.iter().enumerate() {
                    if k > 0 {
                        out.push_str(&content[ranges[k - 1].end..range.start]);
                    }
                    out.push_str(&translated[first + k]);
                }
                layout.reassemble(line, &out)
            })
            .collect())
    }
}

/// The model's generation config with `overrides` on top, resolved against the model's facts.
fn resolve_settings(
    model: &dyn Seq2Seq,
    model_generation: &GenerationOverrides,
    overrides: &GenerationOverrides,
) -> Result<GenerationSettings> {
    let special = model.special_tokens();
    let defaults = ModelDefaults {
        eos: special.eos,
        pad: special.pad,
        decoder_start: special.decoder_start,
        max_positions: model.max_input_tokens(),
    };
    GenerationSettings::resolve(
        &model_generation.clone().overridden_by(overrides),
        &defaults,
    )
}
