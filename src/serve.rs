//! `dragoman serve --stdio`: a warm worker for scripts. One JSON request per input line, one
//! JSON answer per output line, models loaded on first use and kept.
//!
//! Request: `{"id": …, "task": "translate"|"summarize", "text": "…"}` plus any CLI option in
//! snake_case (`model`, `to`, `from`, `lang`, `beams`, `max_new_tokens`, `min_new_tokens`,
//! `length_penalty`, `no_repeat_ngram`, `repetition_penalty`). Answer: `{"id": <the request's,
//! verbatim>, "text": <what the CLI would print, without the final newline>}` or
//! `{"id": …, "error": "…"}`. stdout carries answers only; the worker exits 0 at end of input.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use dragoman::generation::GenerationOverrides;
use dragoman::{Summarizer, Translator};

use crate::cli::RuntimeArgs;
use crate::commands::{load_summarizer, load_translator, summary_translator, translate_text};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    id: Value,
    task: String,
    text: String,
    model: Option<String>,
    to: Option<String>,
    from: Option<String>,
    lang: Option<String>,
    beams: Option<usize>,
    max_new_tokens: Option<usize>,
    min_new_tokens: Option<usize>,
    length_penalty: Option<f64>,
    no_repeat_ngram: Option<usize>,
    repetition_penalty: Option<f64>,
}

impl Request {
    fn overrides(&self) -> GenerationOverrides {
        GenerationOverrides {
            num_beams: self.beams,
            max_new_tokens: self.max_new_tokens,
            min_new_tokens: self.min_new_tokens,
            length_penalty: self.length_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram,
            repetition_penalty: self.repetition_penalty,
            ..GenerationOverrides::default()
        }
    }
}

/// Models loaded so far, by what names them.
#[derive(Default)]
struct Models {
    translators: HashMap<(Option<String>, String, String), Translator>,
    summarizers: HashMap<Option<String>, Summarizer>,
    /// Summary translators by language (None: French, no translation).
    summary_translators: HashMap<String, Option<Translator>>,
}

pub fn stdio(runtime: &RuntimeArgs) -> Result<()> {
    let mut models = Models::default();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in stdin.lock().lines() {
        let line = line.context("<stdin>: cannot read")?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let id = request.id.clone();
                match answer(&mut models, &request, runtime) {
                    Ok(text) => json!({ "id": id, "text": text }),
                    Err(err) => json!({ "id": id, "error": format!("{err:#}") }),
                }
            }
            Err(err) => {
                // Echo the id when the line is JSON at all.
                let id = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                json!({ "id": id, "error": format!("invalid request: {err}") })
            }
        };
        serde_json::to_writer(&mut out, &answer)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}

fn answer(models: &mut Models, request: &Request, runtime: &RuntimeArgs) -> Result<String> {
    match request.task.as_str() {
        "translate" => {
            let key = (
                request.model.clone(),
                request.from.clone().unwrap_or_else(|| "fr".into()),
                request.to.clone().unwrap_or_else(|| "en".into()),
            );
            if !models.translators.contains_key(&key) {
                let (translator, _) = load_translator(
                    key.0.as_deref(),
                    &key.1,
                    &key.2,
                    runtime,
                    &GenerationOverrides::default(),
                )?;
                models.translators.insert(key.clone(), translator);
            }
            let translator = models.translators.get_mut(&key).expect("inserted above");
            translator.set_overrides(&request.overrides())?;
            let text = translate_text(translator, &request.text)?;
            Ok(without_final_newline(text))
        }
        "summarize" => {
            let key = request.model.clone();
            if !models.summarizers.contains_key(&key) {
                let summarizer =
                    load_summarizer(key.as_deref(), runtime, &GenerationOverrides::default())?;
                models.summarizers.insert(key.clone(), summarizer);
            }
            let lang = request.lang.clone().unwrap_or_else(|| "fr".into());
            if !models.summary_translators.contains_key(&lang) {
                let translator = summary_translator(Some(&lang), runtime)?;
                models.summary_translators.insert(lang.clone(), translator);
            }
            let summarizer = models.summarizers.get_mut(&key).expect("inserted above");
            summarizer.set_overrides(&request.overrides())?;
            let mut summary = summarizer.summarize(&request.text)?;
            if let Some(translator) = &models.summary_translators[&lang] {
                summary = translate_text(translator, &summary)?;
            }
            Ok(summary)
        }
        other => anyhow::bail!("unknown task {other:?} (expected \"translate\" or \"summarize\")"),
    }
}

fn without_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}
