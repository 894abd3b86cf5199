//! `dragoman translate`: inputs (plain text, Markdown) → translated text or structured output.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use dragoman::tasks::translate::TranslatedSentence;
use dragoman::text::paragraphs::Unit;
use dragoman::Translator;

use super::load::{load_translator, ModelChoice, ModelInfo};
use super::{inputs, read_document, warn_language, write_output};
use crate::cli::TranslateArgs;
use crate::outputs;
use crate::progress::{self, Progress};

/// Lines translated together: enough sentences to fill batches, few enough to stream.
const LINES_PER_BLOCK: usize = 64;

/// Translates one input as Markdown or as plain text, as `--input-format` (or, by default,
/// its extension) says.
fn translate_any(
    translator: &Translator,
    input: &Path,
    args: &TranslateArgs,
    progress: &Progress,
    out: &mut dyn Write,
) -> Result<()> {
    progress.file(&input.display().to_string());
    let markdown = match args.input_format.as_str() {
        "markdown" => true,
        "text" => false,
        _ => input
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "md" | "markdown")),
    };
    if markdown {
        let done = translate_markdown(translator, input, args.lossy, check_language(args), out);
        progress.advance(std::fs::metadata(input).map(|m| m.len()).unwrap_or(0));
        done
    } else {
        let language = check_language(args);
        let layout = if args.paragraphs {
            Layout::Paragraphs
        } else {
            Layout::Lines
        };
        translate_input(
            translator,
            input,
            (args.lossy, layout),
            language,
            progress,
            out,
        )
    }
}

/// A Markdown document, edited in place: only its text spans are translated (see
/// `dragoman::text::markdown`); every other byte is written back as it came.
fn translate_markdown(
    translator: &Translator,
    input: &Path,
    lossy: bool,
    language: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    use dragoman::text::markdown;
    let (label, doc) = read_document(input, lossy)?;
    let spans = markdown::translatable_spans(&doc);
    let texts: Vec<&str> = spans.iter().map(|r| &doc[r.clone()]).collect();
    if let Some(expected) = language {
        warn_language(&label, &texts.join("\n"), expected);
    }
    let mut translated = Vec::with_capacity(texts.len());
    for block in texts.chunks(LINES_PER_BLOCK) {
        outputs::check_interrupted()?;
        translated.extend(
            translator
                .translate_lines(block)
                .with_context(|| label.clone())?,
        );
    }
    out.write_all(markdown::replace_spans(&doc, &spans, &translated).as_bytes())?;
    Ok(())
}

/// A sentence as JSON output and serve answers give it: `source`, `target`, `score`, and the
/// `alternatives` (target and score of each returned sequence) when there are several.
pub(crate) fn sentence_json(s: &TranslatedSentence) -> serde_json::Value {
    use serde_json::json;
    let mut sentence = json!({"source": s.source, "target": s.target,
                              "score": score_json(s.score)});
    if !s.alternatives.is_empty() {
        let alternatives: Vec<_> = s
            .alternatives
            .iter()
            .map(|(target, score)| json!({"target": target, "score": score_json(*score)}))
            .collect();
        sentence["alternatives"] = json!(alternatives);
    }
    sentence
}

/// A score as JSON, with the digits an f32 holds (not those of its f64 widening).
fn score_json(score: f32) -> serde_json::Value {
    format!("{score}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// One input as a JSON document: its lines (paragraphs) and their sentences aligned source →
/// target, the model, the settings, the timings.
fn translate_structured(
    translator: &Translator,
    info: &ModelInfo,
    input: &Path,
    args: &TranslateArgs,
) -> Result<serde_json::Value> {
    use serde_json::json;
    let (label, doc) = read_document(input, args.lossy)?;
    let doc = doc.strip_prefix('\u{feff}').unwrap_or(&doc);
    let lines: Vec<&str> = doc.lines().collect();
    if let Some(expected) = check_language(args) {
        warn_language(&label, doc, expected);
    }
    let started = std::time::Instant::now();
    let mut paragraphs = Vec::with_capacity(lines.len());
    if args.paragraphs {
        let units = dragoman::text::paragraphs::paragraphs(&lines);
        let found: Vec<_> = units.iter().filter_map(Unit::paragraph).collect();
        let texts: Vec<&str> = found.iter().map(|p| p.text.as_str()).collect();
        let translated = translator
            .translate_lines_aligned(&texts)
            .with_context(|| label.clone())?;
        for (paragraph, line) in found.iter().zip(translated) {
            let sentences: Vec<_> = line.sentences.iter().map(sentence_json).collect();
            let target = paragraph.rewrap(&line.text).join("\n");
            paragraphs
                .push(json!({"source": paragraph.text, "target": target, "sentences": sentences}));
        }
    }
    for block in lines.chunks(LINES_PER_BLOCK).filter(|_| !args.paragraphs) {
        outputs::check_interrupted()?;
        let translated = translator
            .translate_lines_aligned(block)
            .with_context(|| label.clone())?;
        for (source, line) in block.iter().zip(translated) {
            let sentences: Vec<_> = line.sentences.iter().map(sentence_json).collect();
            paragraphs.push(json!({"source": source, "target": line.text, "sentences": sentences}));
        }
    }
    Ok(json!({
        "input": label,
        "model": info.name,
        "revision": info.revision,
        "precision": info.precision,
        "kernels": info.kernels,
        "from": source_language(&args.from),
        "to": translator.target_language().unwrap_or_else(|| target_language(args).into()),
        "settings": translator.settings(),
        "paragraphs": paragraphs,
        "timings": {
            "load_seconds": info.load_seconds,
            "translate_seconds": started.elapsed().as_secs_f64(),
        },
    }))
}

/// The language inputs are checked against (none with -q).
fn check_language(args: &TranslateArgs) -> Option<&str> {
    (!args.runtime.quiet).then(|| source_language(&args.from))
}

/// The target language `--to` stands for (by default English).
fn target_language(args: &TranslateArgs) -> &str {
    args.to.as_deref().unwrap_or("en")
}

/// `--from` as asked (None for `auto`: the model's, or French).
fn asked_source(from: &str) -> Option<&str> {
    (from != "auto").then_some(from)
}

/// The source language `--from` stands for (`auto`: the catalog's, French).
fn source_language(from: &str) -> &str {
    if from == "auto" {
        "fr"
    } else {
        from
    }
}

pub fn translate(args: &TranslateArgs) -> Result<()> {
    let mut overrides = args.generation.overrides();
    if args.format != "text" {
        // Structured output gives every sentence its score.
        overrides.output_scores = Some(true);
    }
    if args.model.model.is_some() && args.model.quality.is_some() {
        return Err(dragoman::Error::Setting(
            "--quality picks among the catalog's models; --model names one: pass either".into(),
        )
        .into());
    }
    let choice = ModelChoice {
        model: args.model.model.as_deref(),
        quality: args.model.quality(),
    };
    let (translator, info) = load_translator(
        choice,
        asked_source(&args.from),
        args.to.as_deref(),
        &args.runtime,
        &overrides,
    )?;
    if let Some(out_dir) = &args.out_dir {
        if args.format != "text" {
            anyhow::bail!(
                "--format {} writes to stdout or -o FILE, not --out-dir",
                args.format
            );
        }
        return translate_to_dir(&translator, args, out_dir);
    }
    let inputs = inputs(&args.files)?;
    let progress = Progress::new(
        progress::total_bytes(inputs.iter().map(PathBuf::as_path)),
        args.runtime.quiet || args.files.is_empty(),
    );
    let written = write_output(args.output.as_deref(), |out| {
        let mut documents = Vec::new();
        for input in &inputs {
            match args.format.as_str() {
                "text" => translate_any(&translator, input, args, &progress, out)?,
                format => {
                    let document = translate_structured(&translator, &info, input, args)?;
                    if format == "jsonl" {
                        serde_json::to_writer(&mut *out, &document)?;
                        out.write_all(b"\n")?;
                        out.flush()?;
                    } else {
                        documents.push(document);
                    }
                }
            }
        }
        if args.format == "json" {
            serde_json::to_writer_pretty(&mut *out, &documents)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    });
    progress.finish();
    written
}

/// `--out-dir`: every input to its own file. A file that fails is reported and the others go
/// on; the run fails at the end if any did. Ctrl-C stops it with no partial file.
fn translate_to_dir(translator: &Translator, args: &TranslateArgs, out_dir: &Path) -> Result<()> {
    let jobs = outputs::plan(&args.files, args.recursive, out_dir, target_language(args))?;
    outputs::catch_interrupts();
    let progress = Progress::new(
        progress::total_bytes(jobs.iter().map(|j| j.input.as_path())),
        args.runtime.quiet,
    );
    let mut failed = 0;
    for job in &jobs {
        if job.output.exists() && !args.force {
            eprintln!(
                "dragoman: {}: exists; skipped (pass --force to overwrite)",
                job.output.display()
            );
            progress.advance(std::fs::metadata(&job.input).map(|m| m.len()).unwrap_or(0));
            continue;
        }
        let written = outputs::create_parent(&job.output).and_then(|()| {
            outputs::write_atomically(&job.output, |out| {
                translate_any(translator, &job.input, args, &progress, out)
            })
        });
        match written {
            Ok(()) => {}
            Err(err) if outputs::was_interrupted() => return Err(err),
            Err(err) => {
                eprintln!("dragoman: {err:#}");
                failed += 1;
            }
        }
    }
    progress.finish();
    if failed > 0 {
        anyhow::bail!("{failed} of {} inputs failed (see above)", jobs.len());
    }
    Ok(())
}

/// Translates a text as the CLI translates a stream: line by line, each line keeping its
/// terminator.
pub(crate) fn translate_text(translator: &Translator, text: &str) -> Result<String> {
    Ok(translate_texts(translator, &[text])?.remove(0))
}

/// [`translate_text`] for several texts at once: their lines are translated as one batch.
pub(crate) fn translate_texts(translator: &Translator, texts: &[&str]) -> Result<Vec<String>> {
    Ok(translate_texts_aligned(translator, texts)?
        .into_iter()
        .map(|(text, _)| text)
        .collect())
}

/// [`translate_texts`] with each text's sentences, their translations and scores.
pub(crate) fn translate_texts_aligned(
    translator: &Translator,
    texts: &[&str],
) -> Result<Vec<(String, Vec<TranslatedSentence>)>> {
    let mut lines = Vec::new();
    let mut endings = Vec::new();
    let mut counts = Vec::with_capacity(texts.len());
    for text in texts {
        let before = lines.len();
        for raw in text.split_inclusive('\n') {
            let (body, ending) = split_line_ending(raw.as_bytes());
            lines.push(std::str::from_utf8(body).unwrap_or_default());
            endings.push(ending);
        }
        counts.push(lines.len() - before);
    }
    let translated = translator.translate_lines_aligned(&lines)?;
    let mut pieces = translated.into_iter().zip(endings);
    Ok(counts
        .into_iter()
        .map(|n| {
            let mut text = String::new();
            let mut sentences = Vec::new();
            for (line, ending) in pieces.by_ref().take(n) {
                text.push_str(&line.text);
                text.push_str(ending);
                sentences.extend(line.sentences);
            }
            (text, sentences)
        })
        .collect())
}

/// Streams one input through the translator, a block of lines at a time; each output line
/// keeps its input line's terminator (`\n`, `\r\n` or none at the end).
/// How plain text is laid out: a line is a text, or a paragraph (`--paragraphs`) is.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Lines,
    Paragraphs,
}

fn translate_input(
    translator: &Translator,
    input: &Path,
    (lossy, layout): (bool, Layout),
    mut language: Option<&str>,
    progress: &Progress,
    out: &mut dyn Write,
) -> Result<()> {
    let name = if input.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        input.display().to_string()
    };
    let reader: Box<dyn Read> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(input).with_context(|| format!("{name}: cannot open"))?)
    };
    let mut reader = BufReader::new(reader);
    let mut offset = 0usize;
    let mut block: Vec<(String, &'static str)> = Vec::with_capacity(LINES_PER_BLOCK);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("{name}: cannot read"))?;
        if read > 0 {
            let (body, ending) = split_line_ending(&raw);
            let text = match std::str::from_utf8(body) {
                Ok(text) => text.to_string(),
                Err(_) if lossy => String::from_utf8_lossy(body).into_owned(),
                Err(e) => anyhow::bail!(
                    "{name}: invalid UTF-8 at byte {}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --lossy",
                    offset + e.valid_up_to()
                ),
            };
            // A byte-order mark is not text to translate; it is written back as it came.
            let (bom, text) = match text.strip_prefix('\u{feff}') {
                Some(rest) if offset == 0 => ("\u{feff}", rest.to_string()),
                _ => ("", text),
            };
            out.write_all(bom.as_bytes())?;
            offset += read;
            progress.advance(read as u64);
            block.push((text, ending));
        }
        outputs::check_interrupted()?;
        // A block of paragraphs ends at a blank line, so no paragraph is cut in two.
        let full = match layout {
            Layout::Lines => block.len() == LINES_PER_BLOCK,
            Layout::Paragraphs => {
                block.len() >= LINES_PER_BLOCK
                    && block.last().is_some_and(|(t, _)| t.trim().is_empty())
            }
        };
        if full || (read == 0 && !block.is_empty()) {
            let lines: Vec<&str> = block.iter().map(|(t, _)| t.as_str()).collect();
            // The first block tells the language; one warning per input at most.
            if let Some(expected) = language.take() {
                warn_language(&name, &lines.join("\n"), expected);
            }
            match layout {
                Layout::Lines => {
                    let translated = translator
                        .translate_lines(&lines)
                        .with_context(|| name.clone())?;
                    for (line, (_, ending)) in translated.iter().zip(&block) {
                        out.write_all(line.as_bytes())?;
                        out.write_all(ending.as_bytes())?;
                    }
                }
                Layout::Paragraphs => {
                    let endings: Vec<&str> = block.iter().map(|(_, e)| *e).collect();
                    write_paragraphs(translator, &lines, &endings, out)
                        .with_context(|| name.clone())?;
                }
            }
            out.flush()?;
            block.clear();
        }
        if read == 0 {
            return Ok(());
        }
    }
}

/// `--paragraphs`: each paragraph of `lines` translated as one text and wrapped again to its
/// longest source line (its lines take the first line's ending, the last the last's);
/// blank lines written as they came.
fn write_paragraphs(
    translator: &Translator,
    lines: &[&str],
    endings: &[&str],
    out: &mut dyn Write,
) -> Result<()> {
    let units = dragoman::text::paragraphs::paragraphs(lines);
    let texts: Vec<&str> = units
        .iter()
        .filter_map(Unit::paragraph)
        .map(|p| p.text.as_str())
        .collect();
    let mut translated = translator.translate_lines(&texts)?.into_iter();
    for unit in &units {
        match unit {
            Unit::Blank(i) => {
                out.write_all(lines[*i].as_bytes())?;
                out.write_all(endings[*i].as_bytes())?;
            }
            Unit::Paragraph(paragraph) => {
                let target = translated.next().unwrap_or_default();
                let wrapped = paragraph.rewrap(&target);
                let last = wrapped.len() - 1;
                let (first, count) = (paragraph.first, paragraph.count);
                for (k, line) in wrapped.iter().enumerate() {
                    out.write_all(line.as_bytes())?;
                    let ending = match (k == last, endings[first]) {
                        (true, _) => endings[first + count - 1],
                        // A last line without its line ending, wrapped into several.
                        (false, "") => "\n",
                        (false, ending) => ending,
                    };
                    out.write_all(ending.as_bytes())?;
                }
            }
        }
    }
    Ok(())
}

fn split_line_ending(raw: &[u8]) -> (&[u8], &'static str) {
    if let Some(body) = raw.strip_suffix(b"\r\n") {
        (body, "\r\n")
    } else if let Some(body) = raw.strip_suffix(b"\n") {
        (body, "\n")
    } else {
        (raw, "")
    }
}
