//! Translation: lines → sentences → length-sorted batches → generation → lines.

use std::path::Path;

use crate::models::Precision;
use candle_core::Device;

use super::engine::Engine;
use crate::documents::{self, Block, TranslatedBlock};
use crate::error::{Error, Result};
use crate::generation::{GenerationOverrides, GenerationSettings};
use crate::languages::{self, Scheme};
use crate::text;
use crate::text::transfer::{self, Segments};
use crate::tokenizer::Tokenizer;

/// Where notes for the user (long sentences split, …) go; the CLI prints them on stderr.
pub type NoteSink = Box<dyn Fn(&str) + Send + Sync>;

/// One translated line: its text as printed, and its sentences with their translations.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedLine {
    pub text: String,
    pub sentences: Vec<TranslatedSentence>,
}

/// A sentence, its translation and the translation's score; with `num_return_sequences`
/// N > 1, all N translations best first (the first is `target`).
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedSentence {
    pub source: String,
    pub target: String,
    /// transformers' score (see [`crate::generation::Hypothesis`]).
    pub score: f32,
    /// (translation, score) of every returned sequence; empty when one is returned.
    pub alternatives: Vec<(String, f32)>,
    /// `(source word, target word)` pairs (white-space-separated words of `source` and
    /// `target`), when word alignment was asked for.
    pub alignment: Vec<(usize, usize)>,
    /// Where `source` is in its line, and `target` in the translated line.
    pub source_range: std::ops::Range<usize>,
    pub target_range: std::ops::Range<usize>,
}

/// A sentence's translations, best first, with scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub target: String,
    pub score: f32,
    pub alternatives: Vec<(String, f32)>,
    /// Word alignment of `target` (see [`TranslatedSentence::alignment`]).
    pub alignment: Vec<(usize, usize)>,
}

/// Whether translations come with their word alignment (a teacher-forced pass more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    Unaligned,
    Aligned,
}

/// A loaded translation model: an [`Engine`] plus the line and sentence pipeline.
pub struct Translator {
    engine: Engine,
    notes: NoteSink,
    name: String,
    /// How the model is told its languages.
    languages: Scheme,
    /// A multi-target model's target token, written before each sentence (`>>rus<< `).
    target_prefix: String,
    /// The target language as the model names it, once known.
    target: Option<String>,
}

impl Translator {
    /// Loads the model, tokenizer and generation config laid out as a hub repo in `dir`.
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let engine = Engine::load(dir, precision, device)?;
        let languages = Scheme::of(dir, engine.tokenizer());
        let mut translator = Self {
            engine,
            notes: Box::new(|note| eprintln!("dragoman: {note}")),
            name: dir.display().to_string(),
            languages,
            target_prefix: String::new(),
            target: None,
        };
        // A multilingual model starts out French to English, dragoman's default pair, where it
        // has both; otherwise (set_languages changes nothing when it fails) nothing is set
        // until `set_languages` says what to use, and why the model cannot do it.
        let _ = translator.set_languages(None, None);
        Ok(translator)
    }

    /// How the model is told its languages.
    pub fn language_scheme(&self) -> &Scheme {
        &self.languages
    }

    /// Translates from `from` into `to` (any code [`languages::find`] takes). None keeps the
    /// model's own: a multilingual model's source is French and its target English; a
    /// model for one pair is checked against the pair its tokenizer config names. A language
    /// the model lacks is an error naming the codes it has.
    pub fn set_languages(&mut self, from: Option<&str>, to: Option<&str>) -> Result<()> {
        let model_error = |message: String| Error::Model {
            model: self.name.clone(),
            message,
        };
        match &self.languages {
            Scheme::Tokens(languages) => {
                let source = languages::find(from.unwrap_or("fr"), languages)
                    .map_err(|e| model_error(format!("source language: {e}")))?
                    .clone();
                let target = languages::find(to.unwrap_or("en"), languages)
                    .map_err(|e| model_error(format!("target language: {e}")))?
                    .clone();
                self.engine.tokenizer_mut().set_source_language(&source);
                self.engine.force_first_token(target.id)?;
                self.target = Some(target.code);
            }
            Scheme::TargetToken(languages) => {
                let target = match to {
                    Some(to) => languages::find(to, languages),
                    // The catalog's default target, else the model's only one.
                    None => languages::find("en", languages).or(match languages.as_slice() {
                        [only] => Ok(only),
                        _ => Err(format!(
                            "translates into several languages; pass --to (it has: {})",
                            self.languages.codes().join(", ")
                        )),
                    }),
                }
                .map_err(|e| model_error(format!("target language: {e}")))?;
                self.target_prefix = format!(">>{}<< ", target.code);
                self.target = Some(target.code.clone());
            }
            Scheme::Pair {
                from: model_from,
                to: model_to,
            } => {
                for (asked, model, side) in [(from, model_from, "from"), (to, model_to, "into")] {
                    if let (Some(asked), Some(model)) = (asked, model) {
                        if !languages::same_language(asked, model) {
                            return Err(model_error(format!(
                                "translates {side} {model} only, not {asked:?}; pick another --model or leave the language out"
                            )));
                        }
                    }
                }
                self.target = model_to.clone().or(to.map(str::to_string));
            }
        }
        Ok(())
    }

    /// The target language, as the model names it (None when neither it nor the caller did).
    pub fn target_language(&self) -> Option<String> {
        self.target.clone()
    }

    /// Source token ids of `text`, with the target token where the model takes one.
    pub fn encode_source(&self, text: &str) -> Result<Vec<u32>> {
        if self.target_prefix.is_empty() {
            self.tokenizer().encode(text)
        } else {
            self.tokenizer()
                .encode(&format!("{}{text}", self.target_prefix))
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies flag-level overrides on top of the model's generation config.
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

    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    pub fn set_batch_tokens(&mut self, tokens: usize) {
        self.engine.set_batch_tokens(tokens);
    }

    pub fn set_max_batch(&mut self, inputs: usize) {
        self.engine.set_max_batch(inputs);
    }

    /// Token ids the model generates for each of `sentences` (decoder start token first).
    pub fn generate_ids(&self, sentences: &[Vec<u32>]) -> Result<Vec<Vec<u32>>> {
        self.engine.generate_ids(sentences)
    }

    /// Translates sentences, with scores and the other returned sequences; each target is
    /// exactly the decoded generation (possibly empty). A sentence translated in pieces (too
    /// long for the encoder) joins its pieces' k-th sequences into its k-th, scored by the mean
    /// of their scores.
    pub fn translate_sentences(
        &self,
        sentences: &[&str],
        words: Words,
    ) -> Result<Vec<Translation>> {
        self.translate_sentences_aligning(
            sentences,
            &vec![words == Words::Aligned; sentences.len()],
        )
    }

    /// [`Translator::translate_sentences`], aligning the words of the sentences `aligned`
    /// marks (the others get an empty alignment).
    fn translate_sentences_aligning(
        &self,
        sentences: &[&str],
        aligned: &[bool],
    ) -> Result<Vec<Translation>> {
        // A sentence longer than the encoder accepts is cut at clause boundaries first and
        // its pieces translated separately, with a note; never silently truncated.
        let limit = self.engine.max_input_tokens();
        let mut pieces: Vec<Vec<u32>> = Vec::new();
        // Per piece: its sentence and its byte range there.
        let mut owner: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, sentence) in sentences.iter().enumerate() {
            let ids = self.encode_source(sentence)?;
            if ids.len() <= limit {
                pieces.push(ids);
                owner.push((i, 0..sentence.len()));
                continue;
            }
            let count = |s: &str| {
                self.encode_source(s)
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
                let ids = self.encode_source(&sentence[range.clone()])?;
                if ids.len() > limit {
                    return Err(Error::Input(format!(
                        "a piece of {} tokens cannot be split below the model's {limit} positions",
                        ids.len()
                    )));
                }
                pieces.push(ids);
                owner.push((i, range));
            }
        }
        let wanted: Vec<bool> = owner
            .iter()
            .map(|(i, _)| aligned.get(*i).copied().unwrap_or(false))
            .collect();
        // Pieces not asked for come back without attention and get no alignment.
        let (generated, attention): (Vec<_>, Vec<_>) = self
            .engine
            .generate_aligned(&pieces, &wanted)?
            .into_iter()
            .unzip();
        let piece_alignments =
            self.align_pieces(sentences, &owner, &pieces, &generated, attention)?;
        // Per sentence, per returned sequence: the joined text, the sum of scores, the pieces.
        let returned = self.settings().num_return_sequences;
        let mut joined: Vec<Vec<(String, f32)>> =
            vec![vec![(String::new(), 0.0); returned]; sentences.len()];
        let mut alignments: Vec<Vec<(usize, usize)>> = vec![Vec::new(); sentences.len()];
        let mut piece_counts = vec![0usize; sentences.len()];
        for (((i, range), hypotheses), pairs) in
            owner.into_iter().zip(generated).zip(piece_alignments)
        {
            piece_counts[i] += 1;
            // The piece's word indices, shifted to count the words before it.
            let source_before = text::alignment::words(&sentences[i][..range.start]).len();
            let target_before = text::alignment::words(&joined[i][0].0).len();
            alignments[i].extend(
                pairs
                    .into_iter()
                    .map(|(s, t)| (s + source_before, t + target_before)),
            );
            for (k, hypothesis) in hypotheses.iter().enumerate().take(returned) {
                let piece = self.tokenizer().decode(&hypothesis.ids)?;
                let (text, score) = &mut joined[i][k];
                if !text.is_empty() && !piece.is_empty() {
                    text.push(' ');
                }
                text.push_str(&piece);
                *score += hypothesis.score;
            }
        }
        Ok(joined
            .into_iter()
            .zip(piece_counts)
            .zip(alignments)
            .map(|((mut sequences, pieces), alignment)| {
                for (_, score) in &mut sequences {
                    *score /= pieces.max(1) as f32;
                }
                let (target, score) = sequences[0].clone();
                Translation {
                    target,
                    score,
                    alternatives: if returned > 1 { sequences } else { Vec::new() },
                    alignment,
                }
            })
            .collect())
    }

    /// Each piece's word alignment with its best translation (word indices within the piece's
    /// source text and its decoded translation), from that translation's `attention`.
    fn align_pieces(
        &self,
        sentences: &[&str],
        owner: &[(usize, std::ops::Range<usize>)],
        pieces: &[Vec<u32>],
        generated: &[Vec<crate::generation::Hypothesis>],
        attention: Vec<Vec<Vec<f32>>>,
    ) -> Result<Vec<Vec<(usize, usize)>>> {
        use text::alignment;
        let best: Vec<&[u32]> = generated
            .iter()
            .map(|h| h.first().map_or(&[][..], |h| h.ids.as_slice()))
            .collect();
        let pairs: Vec<(&[u32], &[u32])> = pieces
            .iter()
            .map(Vec::as_slice)
            .zip(best.iter().copied())
            .collect();
        // What the tokenizer puts around any text: tokens before it and after it.
        let empty = self.tokenizer().encode("")?;
        let mut out = Vec::with_capacity(pieces.len());
        for (((i, range), (source_ids, target_ids)), attention) in
            owner.iter().zip(&pairs).zip(attention)
        {
            if attention.is_empty() {
                // Not asked for (or a model that gives none).
                out.push(Vec::new());
                continue;
            }
            let source = &sentences[*i][range.clone()];
            let plain = self.tokenizer().encode(source)?;
            let common = empty.iter().zip(&plain).take_while(|(a, b)| a == b).count();
            // The target token before the text (`>>rus<<`) adds to what leads it.
            let lead = common + source_ids.len().saturating_sub(plain.len());
            let trail = empty.len().saturating_sub(common);
            let counts = alignment::words(source)
                .into_iter()
                .map(|w| {
                    Ok(self
                        .tokenizer()
                        .encode(&source[w])?
                        .len()
                        .saturating_sub(empty.len()))
                })
                .collect::<Result<Vec<_>>>()?;
            let source_words =
                alignment::source_token_words(&counts, lead, trail, source_ids.len());
            // Generated tokens after the decoder start, each with where its text ends.
            let target = self.tokenizer().decode(target_ids)?;
            let ends = (2..=target_ids.len())
                .map(|k| Ok(self.tokenizer().decode(&target_ids[..k])?.len()))
                .collect::<Result<Vec<_>>>()?;
            let target_words = alignment::target_token_words(&target, &ends);
            out.push(alignment::word_pairs(
                &attention,
                &source_words,
                &target_words,
            ));
        }
        Ok(out)
    }

    /// Translates a block of lines, keeping the line structure: one output line per input
    /// line, indentation and blank lines kept, sentences joined by their original spacing.
    pub fn translate_lines(&self, lines: &[&str]) -> Result<Vec<String>> {
        Ok(self
            .translate_lines_aligned(lines, Words::Unaligned)?
            .into_iter()
            .map(|line| line.text)
            .collect())
    }

    /// [`Translator::translate_lines`], with each line's sentences, their translations and
    /// where both are in the lines (and, if asked, their word alignment).
    pub fn translate_lines_aligned(
        &self,
        lines: &[&str],
        words: Words,
    ) -> Result<Vec<TranslatedLine>> {
        self.translate_lines_aligning(lines, |_, _| words == Words::Aligned)
    }

    /// [`Translator::translate_lines_aligned`], aligning the words of the sentences for which
    /// `aligned(line index, the sentence's byte range in the line)` holds.
    fn translate_lines_aligning(
        &self,
        lines: &[&str],
        aligned: impl Fn(usize, std::ops::Range<usize>) -> bool,
    ) -> Result<Vec<TranslatedLine>> {
        let mut sentences: Vec<&str> = Vec::new();
        let mut wanted: Vec<bool> = Vec::new();
        let mut layouts = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            let layout = text::LineLayout::of(line);
            let content = layout.content(line);
            let content_start = content.as_ptr() as usize - line.as_ptr() as usize;
            let ranges = text::split_sentences(content);
            let first = sentences.len();
            sentences.extend(ranges.iter().map(|r| &content[r.clone()]));
            wanted.extend(
                ranges
                    .iter()
                    .map(|r| aligned(index, content_start + r.start..content_start + r.end)),
            );
            layouts.push((layout, ranges, first));
        }
        let translated = self.translate_sentences_aligning(&sentences, &wanted)?;
        Ok(lines
            .iter()
            .zip(layouts)
            .map(|(line, (layout, ranges, first))| {
                let content = layout.content(line);
                let content_start = content.as_ptr() as usize - line.as_ptr() as usize;
                let mut out = String::new();
                for (k, range) in ranges.iter().enumerate() {
                    if k > 0 {
                        out.push_str(&content[ranges[k - 1].end..range.start]);
                    }
                    out.push_str(&translated[first + k].target);
                }
                let text = layout.reassemble(line, &out);
                // Each target as reassemble wrote it, found in order.
                let mut cursor = 0;
                let target_ranges: Vec<_> = (first..first + ranges.len())
                    .map(|k| {
                        let written = text::one_line(&translated[k].target);
                        let written = written.trim();
                        match text[cursor..].find(written) {
                            Some(at) if !written.is_empty() => {
                                cursor += at + written.len();
                                cursor - written.len()..cursor
                            }
                            _ => cursor..cursor,
                        }
                    })
                    .collect();
                TranslatedLine {
                    text,
                    sentences: ranges
                        .iter()
                        .zip(target_ranges)
                        .enumerate()
                        .map(|(k, (range, target_range))| {
                            let translation = &translated[first + k];
                            TranslatedSentence {
                                source: content[range.clone()].to_string(),
                                target: translation.target.clone(),
                                score: translation.score,
                                alternatives: translation.alternatives.clone(),
                                alignment: translation.alignment.clone(),
                                source_range: content_start + range.start
                                    ..content_start + range.end,
                                target_range,
                            }
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// Translates a document's blocks: each block's text (its line breaks white space) as a
    /// line of plain text is translated, then its spans carried onto the translation by word
    /// alignment. Only the sentences a span touches are aligned, unless `words` asks for all.
    pub fn translate_blocks(
        &self,
        blocks: &[Block],
        words: Words,
    ) -> Result<Vec<(TranslatedBlock, TranslatedLine)>> {
        let texts: Vec<std::borrow::Cow<str>> = blocks
            .iter()
            .map(|b| documents::line_breaks_as_spaces(&b.text))
            .collect();
        let lines: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        // A sentence's words are aligned where a span has to be placed in it: one overlaps or
        // touches it, or the block's spans share out all its text (cues, runs).
        let aligned = |index: usize, sentence: std::ops::Range<usize>| {
            let block = &blocks[index];
            words == Words::Aligned
                || (block.segments != Segments::None && !block.spans.is_empty())
                || block
                    .spans
                    .iter()
                    .any(|s| s.range.start <= sentence.end && sentence.start <= s.range.end)
        };
        let translated = self.translate_lines_aligning(&lines, aligned)?;
        blocks
            .iter()
            .zip(translated)
            .map(|(block, line)| {
                let sentences: Vec<transfer::AlignedSentence> = line
                    .sentences
                    .iter()
                    .map(|s| transfer::AlignedSentence {
                        source: &s.source_range,
                        target: &s.target_range,
                        alignment: &s.alignment,
                    })
                    .collect();
                // The white space around the text as the block has it (its line breaks
                // included), not as the model read it; both are as long.
                let fed = text::LineLayout::of(&block.text);
                let mut target = line.text.clone();
                let (indent, trailing) = (fed.indent(&block.text), fed.trailing(&block.text));
                if target.starts_with(documents::line_breaks_as_spaces(indent).as_ref())
                    && target.ends_with(documents::line_breaks_as_spaces(trailing).as_ref())
                    && target.len() >= indent.len() + trailing.len()
                {
                    target.replace_range(..indent.len(), indent);
                    target.replace_range(target.len() - trailing.len().., trailing);
                }
                let translated = TranslatedBlock::place(block, target, &sentences);
                Ok((translated, line))
            })
            .collect()
    }
}
