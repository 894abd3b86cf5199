//! `dragoman summarize`: one summary line per document, translated when `--lang` asks.

use std::path::Path;

use anyhow::{Context, Result};

use dragoman::catalog::{Catalog, Quality};
use dragoman::documents::Format;
use dragoman::generation::GenerationOverrides;
use dragoman::{Summarizer, Translator};

use super::load::{load_translator, locate, note_unsupported, Located, ModelChoice};
use super::translate::translate_text;
use super::{inputs, open_document, read_document, warn_language, write_output};
use crate::cli::{RuntimeArgs, SummarizeArgs};
use crate::outputs;

/// `dragoman summarize`: one summary per document, as a line, a JSON object, or a file.
pub fn summarize(args: &SummarizeArgs) -> Result<()> {
    if args.out_dir.is_some() && args.format != "text" {
        anyhow::bail!(
            "--format {} writes to stdout or -o FILE, not --out-dir",
            args.format
        );
    }
    let summarizer = load_summarizer(
        args.model.model.as_deref(),
        &args.runtime,
        &args.generation.overrides(),
    )?;
    let translator = summary_translator(args.lang.as_deref(), args.model.quality(), &args.runtime)?;
    let lang = args.lang.as_deref().unwrap_or("fr");
    let summary_of = |input: &Path| -> Result<(String, String)> {
        let (label, text) = document_text(input, args)?;
        // The catalog's summarizer reads French; a model named with --model may not.
        if args.model.model.is_none() && !args.runtime.quiet {
            warn_language(&label, &text, "fr");
        }
        let mut summary = summarizer.summarize(&text).with_context(|| label.clone())?;
        if let Some(translator) = &translator {
            summary = translate_text(translator, &summary).with_context(|| label.clone())?;
        }
        Ok((label, summary))
    };
    if let Some(out_dir) = &args.out_dir {
        return summarize_to_dir(args, out_dir, lang, &summary_of);
    }
    let inputs = inputs(&args.files)?;
    write_output(args.output.as_deref(), |out| {
        let mut documents = Vec::new();
        for input in &inputs {
            let (label, summary) = summary_of(input)?;
            match args.format.as_str() {
                "text" => {
                    out.write_all(summary.as_bytes())?;
                    out.write_all(b"\n")?;
                }
                format => {
                    let document =
                        serde_json::json!({"input": label, "lang": lang, "summary": summary});
                    if format == "jsonl" {
                        serde_json::to_writer(&mut *out, &document)?;
                        out.write_all(b"\n")?;
                    } else {
                        documents.push(document);
                    }
                }
            }
            out.flush()?;
        }
        if args.format == "json" {
            serde_json::to_writer_pretty(&mut *out, &documents)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// The text of a document to summarize: plain text as it is (without a byte-order mark); an
/// HTML page's main text; a document's blocks (markup left out), one per line.
fn document_text(input: &Path, args: &SummarizeArgs) -> Result<(String, String)> {
    let format = Format::pick(&args.input_format, input, false)?;
    if format == Format::Text {
        let (label, text) = read_document(input, args.lossy)?;
        let text = text
            .strip_prefix('\u{feff}')
            .map(str::to_string)
            .unwrap_or(text);
        return Ok((label, text));
    }
    if format == Format::Html {
        let (label, source) = read_document(input, args.lossy)?;
        if let Some(text) = dragoman::documents::html::main_text(&source) {
            return Ok((label, text));
        }
    }
    let (label, document, _) = open_document(input, format, args.lossy)?;
    let lines: Vec<String> = document
        .blocks()
        .iter()
        .map(|b| dragoman::text::one_line(&b.text).trim().to_string())
        .collect();
    Ok((label, lines.join("\n")))
}

/// `--out-dir`: each document's summary in its own file, `stem.<lang>.summary.txt`. A
/// document that fails is reported and the others go on; the run fails at the end if any did.
fn summarize_to_dir(
    args: &SummarizeArgs,
    out_dir: &Path,
    lang: &str,
    summary_of: &dyn Fn(&Path) -> Result<(String, String)>,
) -> Result<()> {
    let jobs = outputs::plan(
        &args.files,
        args.recursive,
        out_dir,
        &format!("{lang}.summary"),
    )?;
    outputs::catch_interrupts();
    let mut failed = 0;
    for job in &jobs {
        let output = job.output.with_extension("txt");
        if output.exists() && !args.force {
            eprintln!(
                "dragoman: {}: exists; skipped (pass --force to overwrite)",
                output.display()
            );
            continue;
        }
        let written = summary_of(&job.input).and_then(|(_, summary)| {
            outputs::create_parent(&output)?;
            outputs::write_atomically(&output, |out| {
                out.write_all(summary.as_bytes())?;
                out.write_all(b"\n")?;
                Ok(())
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
    if failed > 0 {
        anyhow::bail!("{failed} of {} inputs failed (see above)", jobs.len());
    }
    Ok(())
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
