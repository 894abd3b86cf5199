//! `dragoman translate`: inputs (plain text, Markdown) → translated text or structured output.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use dragoman::documents::{Document, Format};
use dragoman::languages;
use dragoman::tasks::translate::{TranslatedSentence, Words};
use dragoman::Translator;

use super::load::{load_translator, ModelChoice, ModelInfo};
use super::{inputs, open_document, warn_language, write_output};
use crate::cli::TranslateArgs;
use crate::outputs;
use crate::progress::{self, Progress};

/// Lines translated together: enough sentences to fill batches, few enough to stream.
const LINES_PER_BLOCK: usize = 64;

/// Translates one input in its format (`--input-format`, by default its extension's): plain
/// text streams a block of lines at a time; a document is read whole.
fn translate_any(
    translator: &Translator,
    input: &Path,
    args: &TranslateArgs,
    progress: &Progress,
    out: &mut dyn Write,
) -> Result<()> {
    progress.file(&input.display().to_string());
    let format = Format::pick(&args.input_format, input, args.paragraphs)?;
    let language = check_language(args);
    if matches!(format, Format::Text | Format::Paragraphs) {
        return translate_input(
            translator,
            input,
            (args.lossy, format),
            language,
            progress,
            out,
        );
    }
    let (label, document, size) = open_document(input, format, args.lossy)?;
    if let Some(expected) = language {
        let texts: Vec<&str> = document.blocks().iter().map(|b| b.text.as_str()).collect();
        warn_language(&label, &texts.join("\n"), expected);
    }
    let written = translate_document(translator, document.as_ref(), target_language(args))
        .with_context(|| label.clone())?;
    out.write_all(&written)?;
    progress.advance(size as u64);
    Ok(())
}

/// A document with every block translated, written back in its format.
pub(crate) fn translate_document(
    translator: &Translator,
    document: &dyn Document,
    language: &str,
) -> Result<Vec<u8>> {
    let mut translated = Vec::with_capacity(document.blocks().len());
    for blocks in document.blocks().chunks(LINES_PER_BLOCK) {
        outputs::check_interrupted()?;
        translated.extend(
            translator
                .translate_blocks(blocks, Words::Unaligned)?
                .into_iter()
                .map(|(block, _)| block),
        );
    }
    let language = translator
        .target_language()
        .unwrap_or_else(|| language.into());
    Ok(document.write(&translated, &languages::document_tag(&language)))
}

/// A sentence as JSON output and serve answers give it: `source`, `target`, `score`, and the
/// `alternatives` (target and score of each returned sequence) when there are several.
pub(crate) fn sentence_json(s: &TranslatedSentence) -> serde_json::Value {
    use serde_json::json;
    let mut sentence = json!({"source": s.source, "target": s.target,
                              "score": score_json(s.score)});
    if !s.alignment.is_empty() || !s.source.is_empty() {
        let pairs: Vec<[usize; 2]> = s.alignment.iter().map(|&(a, b)| [a, b]).collect();
        sentence["alignment"] = json!(pairs);
    }
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
    let format = Format::pick(&args.input_format, input, args.paragraphs)?;
    let (label, document, _) = open_document(input, format, args.lossy)?;
    let blocks = document.blocks();
    if let Some(expected) = check_language(args) {
        let texts: Vec<&str> = blocks.iter().map(|b| b.text.as_str()).collect();
        warn_language(&label, &texts.join("\n"), expected);
    }
    let started = std::time::Instant::now();
    let mut paragraphs = Vec::with_capacity(blocks.len());
    for (first, chunk) in (0..)
        .step_by(LINES_PER_BLOCK)
        .zip(blocks.chunks(LINES_PER_BLOCK))
    {
        outputs::check_interrupted()?;
        let translated = translator
            .translate_blocks(chunk, Words::Aligned)
            .with_context(|| label.clone())?;
        for (k, (block, (_, line))) in chunk.iter().zip(translated).enumerate() {
            let sentences: Vec<_> = line.sentences.iter().map(sentence_json).collect();
            let target = document.plain_target(first + k, &line.text);
            paragraphs
                .push(json!({"source": block.text, "target": target, "sentences": sentences}));
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
        let done = translate_to_dir(&translator, args, out_dir);
        report_stage_times(&translator, &args.runtime);
        return done;
    }
    let inputs = inputs(&args.files)?;
    // A binary document goes to a file (or a pipe), never onto a terminal.
    if args.output.is_none() && args.format == "text" && std::io::stdout().is_terminal() {
        for input in &inputs {
            if Format::pick(&args.input_format, input, args.paragraphs)?.is_binary() {
                anyhow::bail!(
                    "{}: its translation is a binary document; write it with -o FILE or --out-dir DIR",
                    input.display()
                );
            }
        }
    }
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
    report_stage_times(&translator, &args.runtime);
    written
}

/// Under `-v`: where the time went, by stage.
fn report_stage_times(translator: &Translator, runtime: &crate::cli::RuntimeArgs) {
    if runtime.verbose {
        let t = translator.engine().stage_times();
        // To the microsecond: a small model's pass takes less than a millisecond, and a
        // stage that never ran reads as exactly zero.
        eprintln!(
            "dragoman: time in encoding {:.6} s, generation {:.6} s, word alignment {:.6} s",
            t.encoding.as_secs_f64(),
            t.generation.as_secs_f64(),
            t.alignment.as_secs_f64()
        );
    }
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
    let translated = translator.translate_lines_aligned(&lines, Words::Unaligned)?;
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

/// Streams plain text through the translator, a block of lines at a time (a block of
/// paragraphs ends at a blank line, so none is cut in two); each output line keeps its input
/// line's terminator (`\n`, `\r\n` or none at the end).
fn translate_input(
    translator: &Translator,
    input: &Path,
    (lossy, format): (bool, Format),
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
    let mut chunk = String::new();
    let mut lines = 0usize;
    let mut last_blank = false;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("{name}: cannot read"))?;
        if read > 0 {
            match std::str::from_utf8(&raw) {
                Ok(text) => chunk.push_str(text),
                Err(_) if lossy => chunk.push_str(&String::from_utf8_lossy(&raw)),
                Err(e) => anyhow::bail!(
                    "{name}: invalid UTF-8 at byte {}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --lossy",
                    offset + e.valid_up_to()
                ),
            }
            offset += read;
            progress.advance(read as u64);
            lines += 1;
            last_blank = std::str::from_utf8(&raw).is_ok_and(|l| l.trim().is_empty());
        }
        outputs::check_interrupted()?;
        let full = match format {
            Format::Paragraphs => lines >= LINES_PER_BLOCK && last_blank,
            _ => lines == LINES_PER_BLOCK,
        };
        if full || (read == 0 && !chunk.is_empty()) {
            let document = format.read(&chunk).with_context(|| name.clone())?;
            // The first block tells the language; one warning per input at most.
            if let Some(expected) = language.take() {
                let head = chunk.strip_prefix('\u{feff}').unwrap_or(&chunk);
                warn_language(&name, head.trim_end_matches(['\n', '\r']), expected);
            }
            let written = translate_document(translator, document.as_ref(), "")
                .with_context(|| name.clone())?;
            out.write_all(&written)?;
            out.flush()?;
            chunk.clear();
            lines = 0;
        }
        if read == 0 {
            return Ok(());
        }
    }
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
