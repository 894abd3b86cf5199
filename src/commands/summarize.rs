//! `dragoman summarize`: one summary line per document, translated when `--lang` asks.

use anyhow::{Context, Result};

use dragoman::catalog::{Catalog, Quality};
use dragoman::generation::GenerationOverrides;
use dragoman::{Summarizer, Translator};

use super::load::{load_translator, locate, note_unsupported, Located, ModelChoice};
use super::translate::translate_text;
use super::{inputs, read_document, warn_language, write_output};
use crate::cli::{RuntimeArgs, SummarizeArgs};

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
