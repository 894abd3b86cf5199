//! The one thread that runs the models for `serve`: it takes the requests waiting together,
//! translates those that share a model and settings as one batch, summarizes one document at a
//! time, and answers each through its own reply. A panic while answering a batch becomes an
//! error answer for that batch (and the loaded models are dropped, to be loaded afresh): the
//! worker lives on.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;

use anyhow::Result;
use serde_json::{json, Value};

use dragoman::generation::GenerationOverrides;
use dragoman::tasks::translate::TranslatedSentence;
use dragoman::{Summarizer, Translator};

use super::metrics::Metrics;
use super::{Refusal, Request};
use crate::cli::RuntimeArgs;
use crate::commands::{
    load_summarizer, load_translator, sentence_json, summary_translator, translate_document,
    translate_text, translate_texts_aligned, ModelChoice,
};

/// Most requests taken together from the queue.
const MAX_BATCH: usize = 64;

/// What the worker sends back: an HTTP status (stdio ignores it) and the JSON answer, or
/// a translated document's bytes.
pub(super) struct Answer {
    pub status: u16,
    pub body: Value,
    pub document: Option<Vec<u8>>,
}

/// A request (or the refusal to send in its place) and where its answer goes.
pub(super) struct Job {
    pub request: Result<Request, Refusal>,
    pub reply: Box<dyn FnOnce(Answer) + Send>,
}

impl Job {
    fn answer(self, result: Result<String>) {
        self.answer_with(result, None)
    }

    /// The answer, with `extra` fields beside `id` and `text` when it succeeded.
    fn answer_with(self, result: Result<String>, extra: Option<(&str, Value)>) {
        let id = match &self.request {
            Ok(request) => request.id.clone(),
            Err(refusal) => refusal.id.clone(),
        };
        (self.reply)(match result {
            Ok(text) => {
                let mut body = json!({ "id": id, "text": text });
                if let Some((key, value)) = extra {
                    body[key] = value;
                }
                Answer {
                    status: 200,
                    body,
                    document: None,
                }
            }
            Err(err) => Answer {
                status: 400,
                body: json!({ "id": id, "error": format!("{err:#}") }),
                document: None,
            },
        });
    }

    /// A translated document's bytes, or the error answer.
    fn answer_document(self, result: Result<Vec<u8>>) {
        match result {
            Ok(bytes) => (self.reply)(Answer {
                status: 200,
                body: Value::Null,
                document: Some(bytes),
            }),
            Err(err) => self.answer(Err(err)),
        }
    }
}

pub(super) enum Message {
    Job(Box<Job>),
    /// Answer what came before, then stop (SIGTERM over stdio).
    Stop,
}

/// Answers messages until the queue closes or a [`Message::Stop`] comes.
pub(super) fn run(messages: Receiver<Message>, runtime: &RuntimeArgs, metrics: &Metrics) {
    let mut models = Models::default();
    let mut stopping = false;
    while !stopping {
        let mut batch = match messages.recv() {
            Ok(Message::Job(job)) => vec![*job],
            Ok(Message::Stop) | Err(_) => break,
        };
        while batch.len() < MAX_BATCH {
            match messages.try_recv() {
                Ok(Message::Job(job)) => batch.push(*job),
                Ok(Message::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        answer_batch(&mut models, batch, runtime, metrics);
        metrics.set_loaded_models(&models.names());
    }
}

/// Refusals and summaries in place; translate requests grouped by model, languages and
/// settings, each group one batch, in order of first arrival.
fn answer_batch(models: &mut Models, batch: Vec<Job>, runtime: &RuntimeArgs, metrics: &Metrics) {
    let mut groups: Vec<(String, Vec<Job>)> = Vec::new();
    for job in batch {
        let request = match &job.request {
            Err(refusal) => {
                let message = refusal.message.clone();
                job.answer(Err(anyhow::anyhow!(message)));
                continue;
            }
            Ok(request) => request,
        };
        if request.document.is_some() {
            // A whole document: many blocks already, so a batch of its own.
            let result = guarded(models, |models| translate_bytes(models, request, runtime));
            job.answer_document(result);
            continue;
        }
        if request.task != "translate" {
            let result = guarded(models, |models| answer_other(models, request, runtime));
            job.answer(result);
            continue;
        }
        let key = request.batch_key();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(job),
            None => groups.push((key, vec![job])),
        }
    }
    for (_, group) in groups {
        metrics.observe_batch(group.len());
        let requests: Vec<&Request> = group
            .iter()
            .filter_map(|job| job.request.as_ref().ok())
            .collect();
        match guarded(models, |models| translate_group(models, &requests, runtime)) {
            Ok(texts) => {
                // With `alternatives`, each sentence's translations and scores too.
                let detailed = requests[0].generation.alternatives.is_some();
                for (job, (text, sentences)) in group.into_iter().zip(texts) {
                    let sentences = detailed.then(|| {
                        let list: Vec<Value> = sentences.iter().map(sentence_json).collect();
                        ("sentences", json!(list))
                    });
                    job.answer_with(Ok(without_final_newline(text)), sentences);
                }
            }
            Err(err) => {
                let error = format!("{err:#}");
                for job in group {
                    job.answer(Err(anyhow::anyhow!(error.clone())));
                }
            }
        }
    }
}

/// Runs `work`, turning a panic into an error and dropping the models it may have left
/// half-updated.
fn guarded<T>(models: &mut Models, work: impl FnOnce(&mut Models) -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(|| work(models))) {
        Ok(result) => result,
        Err(panic) => {
            *models = Models::default();
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            anyhow::bail!("internal error (the models are reloaded on the next request): {what}")
        }
    }
}

/// Models loaded so far, by what names them.
#[derive(Default)]
struct Models {
    translators: HashMap<(Option<String>, Option<String>, String, String), Translator>,
    summarizers: HashMap<Option<String>, Summarizer>,
    /// Summary translators by language and quality (None: French, no translation).
    summary_translators: HashMap<(String, Option<String>), Option<Translator>>,
}

impl Models {
    /// The translator a request names, loaded on first use.
    fn translator(&mut self, request: &Request, runtime: &RuntimeArgs) -> Result<&mut Translator> {
        let key = (
            request.model.clone(),
            request.quality.clone(),
            request.from.clone().unwrap_or_else(|| "fr".into()),
            request.to.clone().unwrap_or_else(|| "en".into()),
        );
        if !self.translators.contains_key(&key) {
            let choice = ModelChoice {
                model: key.0.as_deref(),
                quality: request.quality()?,
            };
            let (translator, _) = load_translator(
                choice,
                request.from.as_deref(),
                request.to.as_deref(),
                runtime,
                &GenerationOverrides::default(),
            )?;
            self.translators.insert(key.clone(), translator);
        }
        Ok(self.translators.get_mut(&key).expect("inserted above"))
    }

    /// What is loaded, for /v1/models and /metrics: (task, model, from, to).
    fn names(&self) -> Vec<[String; 4]> {
        let catalog = |model: &Option<String>| model.clone().unwrap_or_else(|| "catalog".into());
        let translators = self.translators.keys().map(|(model, _, from, to)| {
            ["translate".into(), catalog(model), from.clone(), to.clone()]
        });
        let summarizers = self
            .summarizers
            .keys()
            .map(|model| ["summarize".into(), catalog(model), "fr".into(), "fr".into()]);
        let mut names: Vec<_> = translators.chain(summarizers).collect();
        names.sort();
        names
    }
}

/// A request for any task but translate (those are batched by [`translate_group`]).
fn answer_other(models: &mut Models, request: &Request, runtime: &RuntimeArgs) -> Result<String> {
    match request.task.as_str() {
        "summarize" => {
            let key = request.model.clone();
            if !models.summarizers.contains_key(&key) {
                let summarizer =
                    load_summarizer(key.as_deref(), runtime, &GenerationOverrides::default())?;
                models.summarizers.insert(key.clone(), summarizer);
            }
            let lang = (
                request.lang.clone().unwrap_or_else(|| "fr".into()),
                request.quality.clone(),
            );
            if !models.summary_translators.contains_key(&lang) {
                let translator = summary_translator(Some(&lang.0), request.quality()?, runtime)?;
                models.summary_translators.insert(lang.clone(), translator);
            }
            let summarizer = models.summarizers.get_mut(&key).expect("inserted above");
            summarizer.set_overrides(&request.generation.overrides())?;
            let mut summary = summarizer.summarize(&request.text)?;
            if let Some(translator) = &models.summary_translators[&lang] {
                summary = translate_text(translator, &summary)?;
            }
            Ok(summary)
        }
        other => anyhow::bail!("unknown task {other:?} (expected \"translate\" or \"summarize\")"),
    }
}

/// The texts of translate requests that share a model and settings, as one batch, with their
/// sentences.
fn translate_group(
    models: &mut Models,
    requests: &[&Request],
    runtime: &RuntimeArgs,
) -> Result<Vec<(String, Vec<TranslatedSentence>)>> {
    let translator = models.translator(requests[0], runtime)?;
    translator.set_overrides(&requests[0].generation.overrides())?;
    let format = requests[0].format.as_deref().unwrap_or("text");
    let format = dragoman::documents::Format::pick(format, std::path::Path::new(""), false)?;
    if format.is_binary() {
        anyhow::bail!(
            "format \"{}\" is a binary format; a JSON text cannot hold it (translate the file with the CLI)",
            requests[0].format.as_deref().unwrap_or_default()
        );
    }
    if format != dragoman::documents::Format::Text {
        // A document: the answer is what the CLI prints for that file.
        let to = requests[0].to.as_deref().unwrap_or("en");
        return requests
            .iter()
            .map(|r| {
                let document = format.read(&r.text)?;
                let written = translate_document(translator, document.as_ref(), to)?;
                Ok((String::from_utf8_lossy(&written).into_owned(), Vec::new()))
            })
            .collect();
    }
    let texts: Vec<&str> = requests.iter().map(|r| r.text.as_str()).collect();
    translate_texts_aligned(translator, &texts)
}

/// A binary document's bytes (`POST /v1/documents`), translated in its format.
fn translate_bytes(
    models: &mut Models,
    request: &Request,
    runtime: &RuntimeArgs,
) -> Result<Vec<u8>> {
    let format = request.format.as_deref().unwrap_or("text");
    let format = dragoman::documents::Format::pick(format, std::path::Path::new(""), false)?;
    let translator = models.translator(request, runtime)?;
    translator.set_overrides(&request.generation.overrides())?;
    let bytes = request.document.as_deref().unwrap_or_default();
    let document = format.read_bytes(bytes)?;
    let to = request.to.as_deref().unwrap_or("en");
    translate_document(translator, document.as_ref(), to)
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
