//! `dragoman serve`: a warm worker for scripts and clusters, with models loaded on first use and
//! kept.
//!
//! - `--stdio` (`stdio.rs`): one JSON request per input line, one JSON answer per output line,
//!   in the order of the requests, each written and flushed as soon as it and those before it
//!   are done. Blank lines are skipped. A line that is not UTF-8, not JSON or over
//!   `--max-request-bytes` gets an error answer and the worker reads on. End of input or
//!   SIGTERM/SIGINT: what was read is answered, then exit 0.
//! - `--http ADDR` (`http.rs`): the same requests as POST /v1/translate and /v1/summarize, plus
//!   GET /health, /v1/models and /metrics (Prometheus text, `metrics.rs`); at most
//!   `--max-connections` open connections, `--read-timeout` for slow clients; SIGTERM/SIGINT:
//!   no new connections, in-flight requests answered, then exit 0.
//!
//! Both hand their requests to one worker thread (`worker.rs`) that translates the requests
//! waiting together for the same model and settings as one batch.
//!
//! Request: `{"id": …, "task": "translate"|"summarize", "text": "…"}` plus any CLI option in
//! snake_case (`model`, `to`, `from`, `lang`, `beams`, `max_new_tokens`, `min_new_tokens`,
//! `length_penalty`, `no_repeat_ngram`, `repetition_penalty`). Answer: `{"id": <the request's,
//! verbatim>, "text": <what the CLI would print, without the final newline>}` or
//! `{"id": …, "error": "…"}`. stdout carries answers only.

mod http;
mod metrics;
mod stdio;
mod worker;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::{GenerationArgs, ServeArgs};

/// Fields a request may carry besides the generation settings, for the unknown-field error.
const REQUEST_FIELDS: &str = "id, task, text, format, model, quality, to, from, lang";

#[derive(Debug, Deserialize)]
struct Request {
    #[serde(default)]
    id: Value,
    /// Given by the line over stdio; by the path over HTTP.
    #[serde(default)]
    task: String,
    text: String,
    /// How `text` is read, as `--input-format`: `text` (the default), `markdown`, `html`.
    format: Option<String>,
    model: Option<String>,
    /// The catalog's tier (`fast`, `best`), as `--quality`.
    quality: Option<String>,
    to: Option<String>,
    from: Option<String>,
    lang: Option<String>,
    /// A binary document's bytes (HTTP `POST /v1/documents`); never read from JSON.
    #[serde(skip)]
    document: Option<Vec<u8>>,
    /// The CLI's generation flags, by the same names.
    #[serde(flatten)]
    generation: GenerationArgs,
    /// Whatever else the request holds: refused (serde cannot deny unknown fields next to a
    /// flattened struct, so they are collected here).
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

impl Request {
    /// A request from its JSON bytes, or the error answer to give instead, carrying the id
    /// when one can be read.
    fn parse(bytes: &[u8]) -> Result<Request, Refusal> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                // The id may still be readable with the bad bytes replaced.
                let lossy = String::from_utf8_lossy(bytes);
                return Err(Refusal {
                    id: id_of(&lossy),
                    message: format!(
                        "invalid request: not UTF-8 (invalid byte at offset {})",
                        err.valid_up_to()
                    ),
                });
            }
        };
        let request = serde_json::from_str::<Request>(text).map_err(|err| Refusal {
            id: id_of(text),
            message: format!("invalid request: {err}"),
        })?;
        if let Some(field) = request.unknown.keys().next() {
            let settings = GenerationArgs::default().field_names().join(", ");
            return Err(Refusal {
                id: request.id,
                message: format!(
                    "invalid request: unknown field `{field}` (fields: {REQUEST_FIELDS}, {settings})"
                ),
            });
        }
        Ok(request)
    }

    /// `quality`, checked.
    fn quality(&self) -> Result<Option<dragoman::catalog::Quality>> {
        Ok(self
            .quality
            .as_deref()
            .map(dragoman::catalog::Quality::parse)
            .transpose()?)
    }

    /// What requests must share to be translated as one batch.
    fn batch_key(&self) -> String {
        serde_json::to_string(&(
            &self.model,
            &self.quality,
            &self.from,
            &self.to,
            &self.format,
            &self.generation,
        ))
        .unwrap_or_default()
    }
}

/// A request refused before it reached a model: the id to echo (null when unreadable) and why.
#[derive(Debug)]
struct Refusal {
    id: Value,
    message: String,
}

/// The `"id"` of a JSON object, read as far as the text is JSON: a line cut short or broken
/// after its id still yields it. Null when there is none to read.
fn id_of(text: &str) -> Value {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct IdSeeker<'a>(&'a mut Value);

    impl<'de> Visitor<'de> for IdSeeker<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "id" {
                    *self.0 = map.next_value()?;
                    return Ok(());
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut id = Value::Null;
    // The error (the rest of the text) is the caller's to report.
    let _ = serde_json::Deserializer::from_str(text).deserialize_map(IdSeeker(&mut id));
    id
}

/// SIGTERM and SIGINT, watched from a tokio runtime. The first asks for a graceful stop; after
/// it, [`Signals::exit_on_next`] makes a second one end the process at once.
struct Signals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The number of the next signal.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.interrupt.recv() => libc::SIGINT,
        }
    }

    /// A second signal while stopping: exit now, with the shell's status for it.
    async fn exit_on_next(mut self) {
        let signal = self.next().await;
        eprintln!("dragoman: signalled again: exiting without finishing the requests in flight");
        std::process::exit(128 + signal);
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    match &args.http {
        Some(addr) => http::serve(addr, args),
        None => stdio::serve(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_id_is_read_as_far_as_the_json_goes() {
        assert_eq!(
            id_of(r#"{"id": {"a": [1]}, "text": "x"}"#),
            json!({"a": [1]})
        );
        assert_eq!(id_of(r#"{"text": "x", "id": 3, "#), json!(3));
        assert_eq!(id_of(r#"{"model": "m", "id": "cut"#), Value::Null);
        assert_eq!(id_of(r#"{"text": "x"}"#), Value::Null);
        assert_eq!(id_of("[1, 2]"), Value::Null);
        assert_eq!(id_of("not json"), Value::Null);
        let refusal = Request::parse(b"{\"id\": 5, \"text\": \"\xe9t\xe9\"}").unwrap_err();
        assert_eq!(refusal.id, json!(5));
        assert!(refusal.message.contains("offset 19"), "{}", refusal.message);
        let refusal = Request::parse(br#"{"id": 6, "text": "x", "colour": 1}"#).unwrap_err();
        assert_eq!(refusal.id, json!(6));
        assert!(refusal.message.contains("`colour`"), "{}", refusal.message);
        assert!(
            refusal.message.contains("max_new_tokens"),
            "{}",
            refusal.message
        );
        let request = Request::parse(br#"{"text": "x", "beams": 4, "no_repeat_ngram": 3}"#);
        let overrides = request.unwrap().generation.overrides();
        assert_eq!(overrides.num_beams, Some(4));
        assert_eq!(overrides.no_repeat_ngram_size, Some(3));
    }
}
