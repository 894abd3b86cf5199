//! `dragoman serve`: a warm worker for scripts, with models loaded on first use and kept.
//! `--stdio`: one JSON request per input line, one JSON answer per output line. `--http ADDR`:
//! the same requests as POST /v1/translate and /v1/summarize, answered by one worker thread that
//! translates the requests waiting together as one batch.
//!
//! Request: `{"id": …, "task": "translate"|"summarize", "text": "…"}` plus any CLI option in
//! snake_case (`model`, `to`, `from`, `lang`, `beams`, `max_new_tokens`, `min_new_tokens`,
//! `length_penalty`, `no_repeat_ngram`, `repetition_penalty`). Answer: `{"id": <the request's,
//! verbatim>, "text": <what the CLI would print, without the final newline>}` or
//! `{"id": …, "error": "…"}`. stdout carries answers only; the worker exits 0 at end of input.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::sync::mpsc;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use dragoman::generation::GenerationOverrides;
use dragoman::{Summarizer, Translator};

use crate::cli::{RuntimeArgs, ServeArgs};
use crate::commands::{
    load_summarizer, load_translator, summary_translator, translate_text, translate_texts,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    id: Value,
    /// Given by the line over stdio; by the path over HTTP.
    #[serde(default)]
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

impl Models {
    /// The translator a request names, loaded on first use.
    fn translator(&mut self, request: &Request, runtime: &RuntimeArgs) -> Result<&mut Translator> {
        let key = (
            request.model.clone(),
            request.from.clone().unwrap_or_else(|| "fr".into()),
            request.to.clone().unwrap_or_else(|| "en".into()),
        );
        if !self.translators.contains_key(&key) {
            let (translator, _) = load_translator(
                key.0.as_deref(),
                &key.1,
                &key.2,
                runtime,
                &GenerationOverrides::default(),
            )?;
            self.translators.insert(key.clone(), translator);
        }
        Ok(self.translators.get_mut(&key).expect("inserted above"))
    }

    /// What is loaded, for /v1/models.
    fn names(&self) -> Vec<String> {
        let translators = self.translators.keys().map(|(model, from, to)| {
            format!(
                "translate {from}→{to}: {}",
                model.as_deref().unwrap_or("catalog")
            )
        });
        let summarizers = self
            .summarizers
            .keys()
            .map(|model| format!("summarize: {}", model.as_deref().unwrap_or("catalog")));
        translators.chain(summarizers).collect()
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    match &args.http {
        Some(addr) => http(addr, args),
        None => stdio(&args.runtime),
    }
}

fn stdio(runtime: &RuntimeArgs) -> Result<()> {
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
            let translator = models.translator(request, runtime)?;
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

/// An HTTP request waiting for the worker, with the connection to answer on.
struct Job {
    request: Request,
    reply: tiny_http::Request,
}

/// `ADDR`, `:PORT` or `PORT`; without a host, loopback.
fn bind_address(addr: &str) -> String {
    match addr.strip_prefix(':').unwrap_or(addr).parse::<u16>() {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => addr.to_string(),
    }
}

fn respond(reply: tiny_http::Request, status: u16, body: &Value) {
    let header =
        tiny_http::Header::from_bytes("Content-Type", "application/json").expect("a valid header");
    let response = tiny_http::Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(header);
    // The client may have gone; nothing to do about it.
    let _ = reply.respond(response);
}

fn http(addr: &str, args: &ServeArgs) -> Result<()> {
    let addr = bind_address(addr);
    let server = tiny_http::Server::http(&addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    eprintln!("dragoman: listening on http://{}", server.server_addr());
    // Local directories are served only when named at start; hub ids always.
    let allowed_dirs: Vec<std::path::PathBuf> = args
        .model
        .iter()
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_dir())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let (sender, receiver) = mpsc::channel::<Job>();
    let runtime = args.runtime.clone();
    let loaded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let loaded_by_worker = loaded.clone();
    std::thread::spawn(move || worker(receiver, &runtime, &loaded_by_worker));

    for mut reply in server.incoming_requests() {
        let url = reply.url().split('?').next().unwrap_or("").to_string();
        let method = reply.method().clone();
        let task = match (method, url.as_str()) {
            (tiny_http::Method::Get, "/health") => {
                respond(reply, 200, &json!({"status": "ok"}));
                continue;
            }
            (tiny_http::Method::Get, "/v1/models") => {
                let loaded = loaded.lock().map(|l| l.clone()).unwrap_or_default();
                let named: Vec<&String> = args.model.iter().collect();
                respond(
                    reply,
                    200,
                    &json!({"loaded": loaded, "named_at_start": named}),
                );
                continue;
            }
            (tiny_http::Method::Post, "/v1/translate") => "translate",
            (tiny_http::Method::Post, "/v1/summarize") => "summarize",
            (_, "/health" | "/v1/models" | "/v1/translate" | "/v1/summarize") => {
                respond(reply, 405, &json!({"error": "method not allowed"}));
                continue;
            }
            _ => {
                respond(
                    reply,
                    404,
                    &json!({"error": format!("no such endpoint: {url}")}),
                );
                continue;
            }
        };
        let limit = args.max_request_bytes;
        if reply.body_length().is_some_and(|n| n > limit) {
            let error = format!("request body over {limit} bytes");
            respond(reply, 413, &json!({ "error": error }));
            continue;
        }
        let mut body = Vec::new();
        if reply
            .as_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .is_err()
        {
            respond(
                reply,
                400,
                &json!({"error": "cannot read the request body"}),
            );
            continue;
        }
        if body.len() > limit {
            let error = format!("request body over {limit} bytes");
            respond(reply, 413, &json!({ "error": error }));
            continue;
        }
        let mut request = match serde_json::from_slice::<Request>(&body) {
            Ok(request) => request,
            Err(err) => {
                let id = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                let error = format!("invalid request: {err}");
                respond(reply, 400, &json!({ "id": id, "error": error }));
                continue;
            }
        };
        if !request.task.is_empty() && request.task != task {
            let error = format!("task {:?} sent to /v1/{task}", request.task);
            respond(reply, 400, &json!({ "id": request.id, "error": error }));
            continue;
        }
        request.task = task.to_string();
        if let Some(model) = &request.model {
            let dir = std::path::Path::new(model);
            let allowed = !dir.exists()
                || std::fs::canonicalize(dir).is_ok_and(|d| allowed_dirs.contains(&d));
            if !allowed {
                let error = format!(
                    "model {model}: a local directory is served only when named with --model at start"
                );
                respond(reply, 403, &json!({ "id": request.id, "error": error }));
                continue;
            }
        }
        if sender.send(Job { request, reply }).is_err() {
            anyhow::bail!("the worker stopped");
        }
    }
    Ok(())
}

/// Answers jobs one batch at a time: the translate requests waiting together for the same
/// model and settings are translated as one batch; summaries one document at a time.
fn worker(
    jobs: mpsc::Receiver<Job>,
    runtime: &RuntimeArgs,
    loaded: &std::sync::Mutex<Vec<String>>,
) {
    const MAX_BATCH: usize = 64;
    let mut models = Models::default();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Translate requests grouped by model, languages and settings, in arrival order.
        let mut groups: Vec<(String, Vec<Job>)> = Vec::new();
        for job in batch {
            if job.request.task != "translate" {
                let id = job.request.id.clone();
                match answer(&mut models, &job.request, runtime) {
                    Ok(text) => respond(job.reply, 200, &json!({ "id": id, "text": text })),
                    Err(err) => respond(
                        job.reply,
                        400,
                        &json!({ "id": id, "error": format!("{err:#}") }),
                    ),
                }
                continue;
            }
            let r = &job.request;
            let key = json!([
                r.model,
                r.from,
                r.to,
                r.beams,
                r.max_new_tokens,
                r.min_new_tokens,
                r.length_penalty,
                r.no_repeat_ngram,
                r.repetition_penalty
            ])
            .to_string();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(job),
                None => groups.push((key, vec![job])),
            }
        }
        for (_, group) in groups {
            match translate_group(&mut models, &group, runtime) {
                Ok(texts) => {
                    for (job, text) in group.into_iter().zip(texts) {
                        let id = job.request.id.clone();
                        respond(
                            job.reply,
                            200,
                            &json!({ "id": id, "text": without_final_newline(text) }),
                        );
                    }
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    for job in group {
                        let id = job.request.id.clone();
                        respond(job.reply, 400, &json!({ "id": id, "error": error }));
                    }
                }
            }
        }
        if let Ok(mut names) = loaded.lock() {
            *names = models.names();
        }
    }
}

/// The texts of translate requests that share a model and settings, as one batch.
fn translate_group(
    models: &mut Models,
    group: &[Job],
    runtime: &RuntimeArgs,
) -> Result<Vec<String>> {
    let first = &group[0].request;
    let translator = models.translator(first, runtime)?;
    translator.set_overrides(&first.overrides())?;
    let texts: Vec<&str> = group.iter().map(|j| j.request.text.as_str()).collect();
    translate_texts(translator, &texts)
}
