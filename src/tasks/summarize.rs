//! Summaries: one document in, one summary out, with the generation defaults transformers'
//! summarization pipeline applies (`task_specific_params.summarization` over
//! generation_config.json, its `prefix` before the text).
//!
//! A document longer than the model accepts is never truncated: its lines (paragraphs) are
//! packed into chunks that fit, each chunk is summarized, and the joined summaries are
//! summarized again, with a note — until one pass fits.

use std::ops::Range;
use std::path::Path;

use crate::models::model_dir::ModelDir;
use crate::models::{ModelConfig, Precision};
use candle_core::Device;
use serde_json::Value;

use super::engine::Engine;
use super::translate::NoteSink;
use crate::error::{Error, Result};
use crate::generation::{GenerationOverrides, GenerationSettings};
use crate::text;
use crate::tokenizer::{py_strip, Tokenizer};

/// Rounds of summarizing summaries before giving up (each round divides the length by the
/// ratio of chunk to summary length, so real documents need one or two).
const MAX_ROUNDS: usize = 6;

pub struct Summarizer {
    engine: Engine,
    /// Put before every input, as the pipeline does (T5: "summarize: ").
    prefix: String,
    /// Whether the model's config has summarization parameters.
    has_task_parameters: bool,
    notes: NoteSink,
    name: String,
}

/// `task_specific_params.summarization` of a model's config.json, split into the prefix and
/// the generation settings.
struct TaskParameters {
    prefix: String,
    generation: GenerationOverrides,
}

impl TaskParameters {
    fn read(dir: &Path) -> Result<Option<Self>> {
        let ModelConfig { path, raw: config } = ModelDir::new(dir).config()?;
        let Some(params) = config
            .get("task_specific_params")
            .and_then(|t| t.get("summarization"))
            .filter(|p| p.is_object())
        else {
            return Ok(None);
        };
        let prefix = params
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let generation = serde_json::from_value(params.clone()).map_err(|e| {
            Error::file(
                &path,
                format!("invalid task_specific_params.summarization: {e}"),
            )
        })?;
        Ok(Some(Self { prefix, generation }))
    }
}

impl Summarizer {
    /// Loads a model laid out as a hub repo in `dir`, with its summarization parameters.
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let mut engine = Engine::load(dir, precision, device)?;
        let task = TaskParameters::read(dir)?;
        if let Some(task) = &task {
            engine.set_task_parameters(&task.generation)?;
        }
        Ok(Self {
            engine,
            prefix: task.as_ref().map(|t| t.prefix.clone()).unwrap_or_default(),
            has_task_parameters: task.is_some(),
            notes: Box::new(|note| eprintln!("dragoman: {note}")),
            name: dir.display().to_string(),
        })
    }

    /// False for a model without summarization parameters: it runs with its
    /// generation_config defaults.
    pub fn has_task_parameters(&self) -> bool {
        self.has_task_parameters
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn set_overrides(&mut self, overrides: &GenerationOverrides) -> Result<()> {
        self.engine.set_overrides(overrides)
    }

    pub fn settings(&self) -> &GenerationSettings {
        self.engine.settings()
    }

    pub fn unsupported_settings(&self) -> &[String] {
        self.engine.unsupported_settings()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.engine.tokenizer()
    }

    pub fn set_notes(&mut self, notes: NoteSink) {
        self.notes = notes;
    }

    pub fn set_max_batch(&mut self, inputs: usize) {
        self.engine.set_max_batch(inputs);
    }

    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The encoder input for `text`: the prefix, the text, the tokenizer's special tokens.
    pub fn input_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer().encode(&format!("{}{text}", self.prefix))
    }

    /// The summary of `document` (trimmed of surrounding whitespace first).
    pub fn summarize(&self, document: &str) -> Result<String> {
        let document = py_strip(document);
        if document.is_empty() {
            return Err(Error::Input(
                "the document is empty: there is nothing to summarize".into(),
            ));
        }
        let mut text = document.to_string();
        let mut ids = self.input_ids(&text)?;
        let limit = self.engine.max_input_tokens();
        for round in 0..MAX_ROUNDS {
            if ids.len() <= limit {
                let generated = self.engine.generate_ids(&[ids])?;
                return self.tokenizer().decode(&generated[0]);
            }
            let chunks = self.chunks(&text, limit)?;
            (self.notes)(&format!(
                "{}: {} of {} tokens exceeds the model's {limit}; summarizing it in {} parts, then summarizing their summaries",
                self.name,
                if round == 0 { "the document" } else { "the joined summaries" },
                ids.len(),
                chunks.len()
            ));
            let inputs = chunks
                .iter()
                .map(|range| self.input_ids(&text[range.clone()]))
                .collect::<Result<Vec<_>>>()?;
            let summaries = self
                .engine
                .generate_ids(&inputs)?
                .iter()
                .map(|ids| self.tokenizer().decode(ids))
                .collect::<Result<Vec<_>>>()?;
            // The next round's document, trimmed as any document is.
            let joined = py_strip(&summaries.join("\n")).to_string();
            let joined_ids = self.input_ids(&joined)?;
            if joined_ids.len() >= ids.len() {
                return Err(Error::Input(format!(
                    "the summaries of the parts are not shorter than the document ({} tokens); lower --max-new-tokens",
                    ids.len()
                )));
            }
            text = joined;
            ids = joined_ids;
        }
        Err(Error::Input(format!(
            "the document is still longer than the model's {limit} tokens after {MAX_ROUNDS} rounds of summaries"
        )))
    }

    /// Consecutive pieces of `text` whose input fits in `limit` tokens: whole lines packed
    /// together where they fit, a line too long alone cut into sentences, a sentence too long
    /// alone cut at clause boundaries.
    fn chunks(&self, text: &str, limit: usize) -> Result<Vec<Range<usize>>> {
        let count = |s: &str| self.input_ids(s).map(|ids| ids.len()).unwrap_or(usize::MAX);
        let mut units: Vec<Range<usize>> = Vec::new();
        for line in lines(text) {
            if count(&text[line.clone()]) <= limit {
                units.push(line);
                continue;
            }
            for sentence in text::split_sentences(&text[line.clone()]) {
                let sentence = line.start + sentence.start..line.start + sentence.end;
                if count(&text[sentence.clone()]) <= limit {
                    units.push(sentence);
                    continue;
                }
                for part in text::split_long(&text[sentence.clone()], limit, &count) {
                    let part = sentence.start + part.start..sentence.start + part.end;
                    if count(&text[part.clone()]) > limit {
                        return Err(Error::Input(format!(
                            "a piece of the document cannot be split below the model's {limit} tokens"
                        )));
                    }
                    units.push(part);
                }
            }
        }
        let mut chunks: Vec<Range<usize>> = Vec::new();
        for unit in units {
            match chunks.last_mut() {
                Some(last) if count(&text[last.start..unit.end]) <= limit => last.end = unit.end,
                _ => chunks.push(unit),
            }
        }
        Ok(chunks)
    }
}

/// The non-blank lines of `text`, trimmed, as byte ranges.
fn lines(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            let offset = start + (line.len() - line.trim_start().len());
            ranges.push(offset..offset + trimmed.len());
        }
        start += line.len();
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::lines;

    #[test]
    fn lines_are_trimmed_ranges_of_non_blank_lines() {
        let text = "  Un.\n\n\tDeux trois.  \r\nQuatre";
        let got: Vec<&str> = lines(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(got, ["Un.", "Deux trois.", "Quatre"]);
    }
}
