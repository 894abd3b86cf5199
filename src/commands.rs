//! The subcommands: flags → a loaded model → streamed text.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use dragoman::catalog::{Catalog, Quality};
use dragoman::generation::GenerationOverrides;
use dragoman::tasks::translate::TranslatedSentence;
use dragoman::{device, hub, Summarizer, Translator};

use crate::cli::{ModelsCommand, RuntimeArgs, SummarizeArgs, TranslateArgs};
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
        translate_input(translator, input, args.lossy, language, progress, out)
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
    for block in lines.chunks(LINES_PER_BLOCK) {
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

/// One line on stderr when `text` reliably is not in `expected`; the work goes on.
fn warn_language(name: &str, text: &str, expected: &str) {
    if let Some(found) = dragoman::text::unexpected_language(text, expected) {
        eprintln!(
            "dragoman: warning: {name} looks like {found}, not {expected} (the model's source language); going on anyway"
        );
    }
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

/// The inputs named on the command line (stdin for none), each checked to exist before any
/// work starts.
fn inputs(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        return Ok(vec![PathBuf::from("-")]);
    }
    for input in files.iter().filter(|p| p.as_os_str() != "-") {
        if !input.is_file() {
            anyhow::bail!("{}: no such file", input.display());
        }
    }
    Ok(files.to_vec())
}

/// Runs `write` on stdout, or on a temporary file beside `output` renamed over it at the
/// end: an interrupted or failed run leaves no half-written file.
fn write_output(
    output: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match output {
        Some(path) => {
            outputs::catch_interrupts();
            outputs::write_atomically(path, write)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// `dragoman summarize`: one summary line per document.
pub fn summarize(args: &SummarizeArgs) -> Result<()> {
    let summarizer = load_summarizer(
        args.model.model.as_deref(),
        &args.runtime,
        &args.generation.overrides(),
    )?;
    let translator = summary_translator(args.lang.as_deref(), args.model.quality(), &args.runtime)?;
    let inputs = inputs(&args.files)?;
    write_output(args.output.as_deref(), |out| {
        for input in &inputs {
            let (label, document) = read_document(input, args.lossy)?;
            let document = document.strip_prefix('\u{feff}').unwrap_or(&document);
            // The catalog's summarizer reads French; a model named with --model may not.
            if args.model.model.is_none() && !args.runtime.quiet {
                warn_language(&label, document, "fr");
            }
            let mut summary = summarizer
                .summarize(document)
                .with_context(|| label.clone())?;
            if let Some(translator) = &translator {
                summary = translate_text(translator, &summary).with_context(|| label.clone())?;
            }
            out.write_all(summary.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
        }
        Ok(())
    })
}

/// The summarizer `--model` names, or the catalog's French one, loaded with `overrides`.
pub(crate) fn load_summarizer(
    model: Option<&str>,
    runtime: &RuntimeArgs,
    overrides: &GenerationOverrides,
) -> Result<Summarizer> {
    let catalog = Catalog::builtin();
    // Without --model, the French summarizer; any other language is a translation of its
    // summary (see models/catalog.toml for why).
    let Located {
        name,
        dir,
        device,
        precision,
    } = locate(model, runtime, || {
        let entry = catalog.summarizer("fr")?;
        Ok((entry.model.clone(), entry.revision.clone()))
    })?;
    let mut summarizer =
        Summarizer::load(&dir, precision, &device).with_context(|| format!("model {name}"))?;
    dragoman::cpu::memory::settle_after_load();
    summarizer.set_name(name.clone());
    summarizer.set_overrides(overrides)?;
    if let Some(n) = runtime.max_batch {
        summarizer.set_max_batch(n as usize);
    }
    if !runtime.quiet {
        if !summarizer.has_task_parameters() && !catalog.lists(&name) {
            eprintln!(
                "dragoman: note: model {name} has no summarization parameters (task_specific_params); it runs with its generation_config defaults"
            );
        }
        note_unsupported(&name, summarizer.unsupported_settings());
    } else {
        summarizer.set_notes(Box::new(|_| {}));
    }
    if runtime.verbose {
        eprintln!("dragoman: model {name} from {}", dir.display());
        eprintln!("dragoman: generation settings {:?}", summarizer.settings());
    }
    Ok(summarizer)
}

/// The translator a summary in `lang` goes through: none for French (the document's
/// language), else the catalog's fr→lang model.
pub(crate) fn summary_translator(
    lang: Option<&str>,
    quality: Option<Quality>,
    runtime: &RuntimeArgs,
) -> Result<Option<Translator>> {
    match lang.unwrap_or("fr") {
        "fr" => Ok(None),
        to => {
            let choice = ModelChoice {
                model: None,
                quality,
            };
            let defaults = GenerationOverrides::default();
            Ok(Some(
                load_translator(choice, None, Some(to), runtime, &defaults)?.0,
            ))
        }
    }
}

/// Which model to run: the one `--model` names, or the catalog's, of a tier if asked.
#[derive(Clone, Copy, Default)]
pub(crate) struct ModelChoice<'a> {
    pub model: Option<&'a str>,
    pub quality: Option<Quality>,
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

/// A whole input as text (a byte-order mark included), with the name errors should give it.
fn read_document(input: &Path, lossy: bool) -> Result<(String, String)> {
    let (label, bytes) = if input.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("<stdin>: cannot read")?;
        ("<stdin>".to_string(), bytes)
    } else {
        let label = input.display().to_string();
        let bytes = std::fs::read(input).with_context(|| format!("{label}: cannot read"))?;
        (label, bytes)
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) if lossy => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(e) => anyhow::bail!(
            "{label}: invalid UTF-8 at byte {}; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or pass --lossy",
            e.utf8_error().valid_up_to()
        ),
    };
    Ok((label, text))
}

fn note_unsupported(name: &str, unsupported: &[String]) {
    if !unsupported.is_empty() {
        eprintln!(
            "dragoman: note: model {name} sets {}, which dragoman does not implement; output may differ from transformers'",
            unsupported.join(", ")
        );
    }
}

/// A model's files and where it runs.
struct Located {
    /// The hub id or directory, as named.
    name: String,
    dir: PathBuf,
    device: candle_core::Device,
    precision: dragoman::models::Precision,
}

/// The model `--model` names, or else the catalog's (`catalog()` gives its hub id and
/// revision), found locally or downloaded, with the device and precision the flags ask for.
fn locate(
    model: Option<&str>,
    runtime: &RuntimeArgs,
    catalog: impl FnOnce() -> Result<(String, String)>,
) -> Result<Located> {
    apply_runtime(runtime);
    let (spec, name) = match model {
        Some(spec) => (spec.to_string(), spec.to_string()),
        None => {
            let (id, revision) = catalog()?;
            (format!("{id}@{revision}"), id)
        }
    };
    let dir = hub::resolve(&spec, hub_options(runtime))?;
    let device = device::select(&runtime.device)?;
    if device.is_cpu() {
        dragoman::cpu::check_environment().map_err(dragoman::Error::Setting)?;
        if runtime.verbose {
            let kernels = dragoman::cpu::kernels();
            eprintln!("dragoman: cpu kernels {kernels}");
            for note in &kernels.notes {
                eprintln!("dragoman: note: {note}");
            }
        }
    }
    let precision = device::precision(&runtime.dtype, &device)?;
    Ok(Located {
        name,
        dir,
        device,
        precision,
    })
}

/// Which model a run used, for structured output.
pub(crate) struct ModelInfo {
    /// The hub id or directory, as named.
    pub name: String,
    /// The snapshot's commit for a hub model; "local" for a directory.
    pub revision: String,
    /// `--dtype` as loaded (f32, int8, …): int8 output may differ from transformers'.
    pub precision: dragoman::models::Precision,
    /// The CPU kernels in use (`f32: avx512, int8: amx, bf16: amx`); none on a GPU.
    pub kernels: Option<String>,
    pub load_seconds: f64,
}

/// The model `--model` names, or the catalog's for `from`→`to` (French to English where
/// not given), loaded with `overrides`, set to translate from `from` into `to`.
pub(crate) fn load_translator(
    choice: ModelChoice,
    from: Option<&str>,
    to: Option<&str>,
    runtime: &RuntimeArgs,
    overrides: &GenerationOverrides,
) -> Result<(Translator, ModelInfo)> {
    let started = std::time::Instant::now();
    let Located {
        name,
        dir,
        device,
        precision,
    } = locate(choice.model, runtime, || {
        let entry = Catalog::builtin()
            .translation(from.unwrap_or("fr"), to.unwrap_or("en"), choice.quality)?
            .clone();
        Ok((entry.model, entry.revision))
    })?;
    let mut translator =
        Translator::load(&dir, precision, &device).with_context(|| format!("model {name}"))?;
    dragoman::cpu::memory::settle_after_load();
    translator.set_name(name.clone());
    translator.set_languages(from, to)?;
    translator.set_overrides(overrides)?;
    if let Some(n) = runtime.max_batch {
        translator.set_max_batch(n as usize);
    }
    if !runtime.quiet {
        note_unsupported(&name, translator.unsupported_settings());
    } else {
        translator.set_notes(Box::new(|_| {}));
    }
    if runtime.verbose {
        eprintln!("dragoman: model {name} from {}", dir.display());
        eprintln!("dragoman: generation settings {:?}", translator.settings());
    }
    // A hub model lives in `.../snapshots/<commit>`.
    let in_snapshot = dir.parent().and_then(|p| p.file_name()) == Some("snapshots".as_ref());
    let revision = match dir.file_name() {
        Some(commit) if in_snapshot => commit.to_string_lossy().into_owned(),
        _ => "local".to_string(),
    };
    let info = ModelInfo {
        name,
        revision,
        precision,
        kernels: device
            .is_cpu()
            .then(|| dragoman::cpu::kernels().to_string()),
        load_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((translator, info))
}

/// Offline from the flag or the environment; progress bars only for a person watching.
fn hub_options(runtime: &RuntimeArgs) -> hub::HubOptions {
    use std::io::IsTerminal;
    hub::HubOptions {
        offline: runtime.offline || hub::offline_from_env(),
        progress: !runtime.quiet && std::io::stderr().is_terminal(),
    }
}

fn apply_runtime(runtime: &RuntimeArgs) {
    if let Some(threads) = runtime.threads {
        // Read by candle's matmul and rayon's pool when they first start, which is later.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    // candle runs large element-wise ops on a second pool whose workers spin (25 000 rounds)
    // after each op; on a machine with few cores they take the cores rayon's work needs
    // (measured: beam 4 × 47 sentences 15.2 s spinning, 13.8 s not). Park them at once
    // unless the user chose otherwise.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
}

/// Streams one input through the translator, a block of lines at a time; each output line
/// keeps its input line's terminator (`\n`, `\r\n` or none at the end).
fn translate_input(
    translator: &Translator,
    input: &Path,
    lossy: bool,
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
        if block.len() == LINES_PER_BLOCK || (read == 0 && !block.is_empty()) {
            let lines: Vec<&str> = block.iter().map(|(t, _)| t.as_str()).collect();
            // The first block tells the language; one warning per input at most.
            if let Some(expected) = language.take() {
                warn_language(&name, &lines.join("\n"), expected);
            }
            let translated = translator
                .translate_lines(&lines)
                .with_context(|| name.clone())?;
            for (line, (_, ending)) in translated.iter().zip(&block) {
                out.write_all(line.as_bytes())?;
                out.write_all(ending.as_bytes())?;
            }
            out.flush()?;
            block.clear();
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

/// `dragoman models list | pull | rm | path`.
pub fn models(command: &ModelsCommand, runtime: &RuntimeArgs) -> Result<()> {
    use dragoman::hub::cache;
    let options = hub_options(runtime);
    let cache_dir = cache::cache_dir()?;
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::List => {
            let cached = cache::scan(&cache_dir);
            let catalog = Catalog::builtin();
            writeln!(
                out,
                "{:<36} {:<8} {:<6} {:>10}  {:<16} TASK",
                "MODEL", "REVISION", "CACHED", "SIZE", "LICENCE"
            )?;
            let rows = catalog
                .translate
                .iter()
                .map(|e| {
                    let default = if e.default { ", default" } else { "" };
                    let note = if e.non_commercial() {
                        ": non-commercial use only; never a default, run it with --model"
                    } else {
                        ""
                    };
                    let task = format!(
                        "translate {}→{} ({}{default}){note}",
                        e.from,
                        e.to,
                        e.quality.name()
                    );
                    (&e.model, &e.revision, &e.license, task)
                })
                .chain(catalog.summarize.iter().map(|e| {
                    let role = if e.default { "" } else { " (alternative)" };
                    let note = e
                        .note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default();
                    let task = format!("summarize {}{role}{note}", e.lang);
                    (&e.model, &e.revision, &e.license, task)
                }));
            for (model, revision, license, task) in rows {
                let found = cached.iter().find(|c| &c.repo == model);
                let id = hub::HubId::parse(&format!("{model}@{revision}"))?;
                let state = if cache::cached_snapshot(&cache_dir, &id).is_some() {
                    "yes"
                } else {
                    "no"
                };
                let size = found
                    .map(|c| human_size(c.size))
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{model:<36} {revision:<8} {state:<6} {size:>10}  {license:<16} {task}"
                )?;
            }
            let others: Vec<_> = cached
                .iter()
                .filter(|c| c.seq2seq && !catalog.lists(&c.repo))
                .collect();
            if !others.is_empty() {
                writeln!(
                    out,
                    "\nother cached seq2seq models in {}:",
                    cache_dir.display()
                )?;
                for model in others {
                    let family = model.model_type.as_deref().unwrap_or("?");
                    let supported = if dragoman::models::SUPPORTED_FAMILIES.contains(&family) {
                        ""
                    } else {
                        " (not supported)"
                    };
                    let refs: Vec<&str> = model.refs.iter().map(|(r, _)| r.as_str()).collect();
                    writeln!(
                        out,
                        "{:<36} {:<8} {:<6} {:>10}  {family}{supported}",
                        model.repo,
                        refs.join(","),
                        "yes",
                        human_size(model.size)
                    )?;
                }
            }
        }
        ModelsCommand::Pull { ids } => {
            for id in ids {
                let snapshot = hub::pull(id, options)?;
                writeln!(out, "{id}\t{}", snapshot.display())?;
            }
        }
        ModelsCommand::Rm { ids } => {
            for id in ids {
                let freed = cache::remove(&cache_dir, &hub::HubId::parse(id)?)?;
                writeln!(out, "removed {id} ({})", human_size(freed))?;
            }
        }
        ModelsCommand::Path { id } => {
            let snapshot = hub::cached(id)?;
            writeln!(out, "{}", snapshot.display())?;
        }
        ModelsCommand::Info { id } => {
            let dir = if Path::new(id).is_dir() {
                PathBuf::from(id)
            } else {
                hub::cached(id)?
            };
            out.write_all(model_info(id, &dir)?.as_bytes())?;
        }
    }
    Ok(())
}

/// `dragoman models info`: one field per line.
fn model_info(name: &str, dir: &Path) -> Result<String> {
    use dragoman::languages::{self, Scheme};
    let config = dragoman::models::ModelConfig::read(&dir.join("config.json"))
        .with_context(|| format!("model {name}"))?;
    let raw = &config.raw;
    let number = |key: &str| raw.get(key).and_then(serde_json::Value::as_u64);
    let mut info = String::new();
    let mut field = |key: &str, value: String| info.push_str(&format!("{key:<10} {value}\n"));
    field("model", format!("{name} ({})", dir.display()));
    let family = config.model_type().to_string();
    let supported = if config.is_supported() {
        ""
    } else {
        " (not supported)"
    };
    let shape = match (
        number("d_model"),
        number("encoder_layers"),
        number("decoder_layers"),
    ) {
        (Some(d), Some(e), Some(l)) => format!(", d_model {d}, {e}+{l} layers"),
        _ => String::new(),
    };
    let vocab = number("vocab_size")
        .map(|v| format!(", {v} words"))
        .unwrap_or_default();
    field("family", format!("{family}{supported}{shape}{vocab}"));
    if config.is_supported() {
        let tokenizer =
            dragoman::tokenizer::Tokenizer::load(dir).with_context(|| format!("model {name}"))?;
        let named = |codes: &[String]| -> String {
            codes
                .iter()
                .map(|c| match languages::name(c) {
                    Some(n) => format!("{c} ({n})"),
                    None => c.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let scheme = Scheme::of(dir, &tokenizer);
        let languages = match &scheme {
            Scheme::Tokens(_) => format!(
                "{} languages, any to any (source marked by a token, target forced): {}",
                scheme.codes().len(),
                named(&scheme.codes())
            ),
            Scheme::TargetToken(_) => format!(
                "into {} languages, by a >>code<< token before each sentence: {}",
                scheme.codes().len(),
                named(&scheme.codes())
            ),
            Scheme::Pair { from, to } => {
                let side = |code: &Option<String>| {
                    code.as_ref()
                        .map(|c| named(std::slice::from_ref(c)))
                        .unwrap_or_else(|| "?".into())
                };
                format!("{} → {}", side(from), side(to))
            }
        };
        field("languages", languages);
    }
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("model {name}: {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let size = std::fs::metadata(e.path()).map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let dtype = raw
        .get("torch_dtype")
        .or_else(|| raw.get("dtype"))
        .and_then(serde_json::Value::as_str)
        .map(|d| format!(", weights in {d}"))
        .unwrap_or_default();
    field("size", format!("{}{dtype}", human_size(total)));
    field("licence", licence(name, dir));
    let listing: Vec<String> = files
        .iter()
        .map(|(file, size)| format!("{file} ({})", human_size(*size)))
        .collect();
    field("files", listing.join(", "));
    Ok(info)
}

/// A model's licence: the catalog's for its models, else the model card's `license:`.
fn licence(name: &str, dir: &Path) -> String {
    let model = name.split('@').next().unwrap_or(name);
    let listed = Catalog::builtin().license_of(model).map(str::to_string);
    let card = || {
        let readme = std::fs::read_to_string(dir.join("README.md")).ok()?;
        let front = readme
            .strip_prefix("---")?
            .split("\n---")
            .next()?
            .to_string();
        front.lines().find_map(|line| {
            line.strip_prefix("license:")
                .map(|l| l.trim().trim_matches('"').to_string())
        })
    };
    match listed.or_else(card) {
        Some(l) if l.to_ascii_uppercase().contains("-NC") => {
            format!("{l} (non-commercial use only)")
        }
        Some(l) => l,
        None => "unknown (not in the catalog, no model card with a licence)".into(),
    }
}

fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if size < 1000.0 || unit == "GB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1000.0;
    }
    format!("{bytes} B")
}
