//! `serve --http ADDR`: a stateless replica for any load balancer.
//!
//! Connections are served by hyper on one async thread; the models run on the worker thread.
//! What keeps slow or hostile clients from knocking it over:
//! - at most `--max-connections` open at once; one more gets a 503 and is closed;
//! - `--read-timeout` bounds how long a client may take to send headers, to send a body
//!   (408), or to sit idle on a kept-alive connection;
//! - a body over `--max-request-bytes` is read to its end and dropped before the 413, so
//!   that the client, still writing, can read the answer.
//!
//! SIGTERM or SIGINT: no new connections; requests in flight are answered; idle connections
//! close; then the worker finishes and the process exits 0. A second signal exits at once.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;
use super::worker::{self, Answer, Job, Message};
use super::{Request, Signals};
use crate::cli::ServeArgs;

/// What every connection shares.
struct State {
    messages: mpsc::Sender<Message>,
    limit: usize,
    read_timeout: Duration,
    /// Local directories are served only when named at start; hub ids always.
    allowed_dirs: Vec<PathBuf>,
    named_at_start: Vec<String>,
    metrics: Arc<Metrics>,
}

pub(super) fn serve(addr: &str, args: &ServeArgs) -> Result<()> {
    let addr = bind_address(addr);
    let metrics = Arc::new(Metrics::new());
    let (messages, inbox) = mpsc::channel();
    let worker = {
        let runtime = args.runtime.clone();
        let metrics = metrics.clone();
        std::thread::spawn(move || worker::run(inbox, &runtime, &metrics))
    };
    let state = Arc::new(State {
        messages,
        limit: args.max_request_bytes,
        read_timeout: Duration::from_secs(args.read_timeout),
        allowed_dirs: args
            .model
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect(),
        named_at_start: args.model.clone(),
        metrics,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the HTTP server")?;
    let served = runtime.block_on(listen(&addr, state, args.max_connections as usize));
    // Dropping the runtime drops every connection's share of the state, and with it the
    // worker's queue: the worker answers what it holds, then returns.
    drop(runtime);
    let _ = worker.join();
    served
}

/// `ADDR`, `:PORT` or `PORT`; without a host, loopback.
fn bind_address(addr: &str) -> String {
    match addr.strip_prefix(':').unwrap_or(addr).parse::<u16>() {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => addr.to_string(),
    }
}

async fn listen(addr: &str, state: Arc<State>, max_connections: usize) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("dragoman: listening on http://{}", listener.local_addr()?);
    let mut signals = Signals::new().context("cannot watch for SIGTERM and SIGINT")?;
    let connections = Arc::new(Semaphore::new(max_connections));
    let (shutdown, shutting_down) = watch::channel(());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of descriptors, say: wait for connections to close.
                        eprintln!("dragoman: cannot accept a connection: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match connections.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let connection =
                            serve_connection(stream, state.clone(), permit, shutting_down.clone());
                        tokio::spawn(connection);
                    }
                    Err(_) => {
                        state.metrics.connection_refused();
                        tokio::spawn(refuse_connection(stream, max_connections));
                    }
                }
            }
            _ = signals.next() => break,
        }
    }
    tokio::spawn(signals.exit_on_next());
    drop(listener);
    let _ = shutdown.send(());
    // Every connection gives its permit back once its last request is answered.
    let _ = connections.acquire_many(max_connections as u32).await;
    Ok(())
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last_end: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let wait = if self.in_flight.load(Ordering::SeqCst) > 0 {
                timeout
            } else {
                let last = *self.last_end.lock().unwrap_or_else(|e| e.into_inner());
                (last + timeout).saturating_duration_since(Instant::now())
            };
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request in flight; its end is recorded when dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    permit: OwnedSemaphorePermit,
    mut shutting_down: watch::Receiver<()>,
) {
    state.metrics.connection_opened();
    let activity = Arc::new(Activity::new());
    let service = {
        let state = state.clone();
        let activity = activity.clone();
        service_fn(move |request| {
            let state = state.clone();
            let activity = activity.clone();
            async move { Ok::<_, Infallible>(handle(request, &state, &activity).await) }
        })
    };
    let timeout = state.read_timeout;
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            // Idle too long, or shutting down: finish the request in flight, then close.
            _ = activity.idle_for(timeout), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = shutting_down.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            // Closing, nothing in flight, and the client still not done: drop it.
            _ = activity.idle_for(timeout), if closing => break,
        }
    }
    state.metrics.connection_closed();
    drop(permit);
}

/// One connection too many: its request gets a 503, then it is closed.
async fn refuse_connection(stream: TcpStream, max_connections: usize) {
    let service = service_fn(move |_request| async move {
        let message = format!(
            "busy: {max_connections} connections are open (--max-connections); retry later"
        );
        let mut reply = Reply::json(503, json!({ "error": message }));
        reply.headers.push((RETRY_AFTER, "1"));
        Ok::<_, Infallible>(reply.closing().into_response())
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
}

/// An answer before it becomes a hyper response.
struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(HeaderName, &'static str)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    fn error(status: u16, id: Value, message: impl Into<String>) -> Self {
        Self::json(status, json!({ "id": id, "error": message.into() }))
    }

    /// Tells the client this connection closes after the answer.
    fn closing(mut self) -> Self {
        self.headers.push((CONNECTION, "close"));
        self
    }

    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (name, value) in self.headers {
            headers.insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

async fn handle(
    request: hyper::Request<Incoming>,
    state: &State,
    activity: &Arc<Activity>,
) -> hyper::Response<Full<Bytes>> {
    let _busy = activity.begin();
    let started = Instant::now();
    let (endpoint, reply) = route(request, state).await;
    state
        .metrics
        .observe_request(endpoint, reply.status, started.elapsed());
    reply.into_response()
}

/// The endpoint's name (the metrics' label) and its answer.
async fn route(request: hyper::Request<Incoming>, state: &State) -> (&'static str, Reply) {
    let endpoint = match request.uri().path() {
        "/health" => "health",
        "/metrics" => "metrics",
        "/v1/models" => "models",
        "/v1/translate" => "translate",
        "/v1/summarize" => "summarize",
        "/v1/documents" => "documents",
        _ => "other",
    };
    let method = request.method().clone();
    let reply = match (endpoint, method) {
        ("health", Method::GET) => Reply::json(200, json!({"status": "ok"})),
        ("metrics", Method::GET) => Reply {
            status: 200,
            body: state.metrics.encode().into_bytes(),
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            headers: Vec::new(),
        },
        ("models", Method::GET) => {
            let loaded: Vec<String> = state
                .metrics
                .loaded_models()
                .into_iter()
                .map(|[task, model, from, to]| match task.as_str() {
                    "translate" => format!("translate {from}→{to}: {model}"),
                    _ => format!("{task}: {model}"),
                })
                .collect();
            Reply::json(
                200,
                json!({"loaded": loaded, "named_at_start": state.named_at_start}),
            )
        }
        (task @ ("translate" | "summarize"), Method::POST) => run_task(request, task, state).await,
        ("documents", Method::POST) => run_document(request, state).await,
        ("other", _) => {
            let message = format!("no such endpoint: {}", request.uri().path());
            Reply::error(404, Value::Null, message)
        }
        _ => Reply::error(405, Value::Null, "method not allowed"),
    };
    (endpoint, reply)
}

/// A request's body, read within the limits, or the error reply to give instead.
async fn request_body(request: hyper::Request<Incoming>, state: &State) -> Result<Vec<u8>, Reply> {
    let limit = state.limit;
    let deadline = tokio::time::Instant::now() + state.read_timeout;
    match read_body(request.into_body(), limit, deadline).await {
        Body::Complete(body) => Ok(body),
        Body::TooLarge => {
            let message = format!("request body over {limit} bytes (--max-request-bytes)");
            Err(Reply::error(413, Value::Null, message).closing())
        }
        Body::TimedOut => {
            let seconds = state.read_timeout.as_secs();
            let message = format!("the request body did not arrive within {seconds} s");
            Err(Reply::error(408, Value::Null, message).closing())
        }
        Body::Failed => {
            Err(Reply::error(400, Value::Null, "cannot read the request body").closing())
        }
    }
}

/// `POST /v1/documents?format=docx&to=en&…`: the body is the document's bytes, the query
/// the request's fields (as the JSON request names them); the answer is the translated
/// document's bytes, or a JSON error.
async fn run_document(request: hyper::Request<Incoming>, state: &State) -> Reply {
    let query = request.uri().query().unwrap_or_default().to_string();
    let body = match request_body(request, state).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let mut fields = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        // Numbers and booleans as JSON has them (beams=4, early_stopping=true).
        let value = serde_json::from_str::<Value>(&value)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .unwrap_or_else(|| Value::String(value.into_owned()));
        fields.insert(key.into_owned(), value);
    }
    let Some(format) = fields
        .get("format")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        let message =
            "name the document's format: /v1/documents?format=docx|html|markdown|srt|vtt|text";
        return Reply::error(400, Value::Null, message);
    };
    fields.insert("text".into(), Value::String(String::new()));
    fields.insert("task".into(), Value::String("translate".into()));
    let mut request = match Request::parse(Value::Object(fields).to_string().as_bytes()) {
        Ok(request) => request,
        Err(refusal) => return Reply::error(400, refusal.id, refusal.message),
    };
    request.document = Some(body);
    if let Some(reply) = refused_model(&request, state) {
        return reply;
    }
    match answer(request, state).await {
        Ok(answer) => match answer.document {
            Some(bytes) => Reply {
                status: 200,
                body: bytes,
                content_type: content_type(&format),
                headers: Vec::new(),
            },
            None => Reply::json(answer.status, answer.body),
        },
        Err(reply) => reply,
    }
}

/// The media type of a translated document.
fn content_type(format: &str) -> &'static str {
    match format {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "html" => "text/html; charset=utf-8",
        "markdown" => "text/markdown; charset=utf-8",
        "srt" => "application/x-subrip; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

/// A local model directory not named at start is not served.
fn refused_model(request: &Request, state: &State) -> Option<Reply> {
    let model = request.model.as_ref()?;
    let dir = std::path::Path::new(model);
    let allowed =
        !dir.exists() || std::fs::canonicalize(dir).is_ok_and(|d| state.allowed_dirs.contains(&d));
    (!allowed).then(|| {
        let message = format!(
            "model {model}: a local directory is served only when named with --model at start"
        );
        Reply::error(403, request.id.clone(), message)
    })
}

/// Hands `request` to the worker and waits for its answer.
async fn answer(request: Request, state: &State) -> Result<Answer, Reply> {
    let (sender, answer) = oneshot::channel();
    let job = Job {
        request: Ok(request),
        reply: Box::new(move |answer| {
            // The client may have gone; nothing to do about it.
            let _ = sender.send(answer);
        }),
    };
    if state.messages.send(Message::Job(Box::new(job))).is_err() {
        return Err(Reply::error(503, Value::Null, "the worker has stopped").closing());
    }
    answer
        .await
        .map_err(|_| Reply::error(500, Value::Null, "the worker dropped the request"))
}

/// A translate or summarize request: its body read within the limits, checked, and handed
/// to the worker.
async fn run_task(request: hyper::Request<Incoming>, task: &str, state: &State) -> Reply {
    let body = match request_body(request, state).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let mut request = match Request::parse(&body) {
        Ok(request) => request,
        Err(refusal) => return Reply::error(400, refusal.id, refusal.message),
    };
    if !request.task.is_empty() && request.task != task {
        let message = format!("task {:?} sent to /v1/{task}", request.task);
        return Reply::error(400, request.id, message);
    }
    request.task = task.to_string();
    if let Some(reply) = refused_model(&request, state) {
        return reply;
    }
    match answer(request, state).await {
        Ok(answer) => Reply::json(answer.status, answer.body),
        Err(reply) => reply,
    }
}

enum Body {
    Complete(Vec<u8>),
    /// Over the limit: read to its end (or the deadline) and dropped.
    TooLarge,
    TimedOut,
    Failed,
}

async fn read_body(mut body: Incoming, limit: usize, deadline: tokio::time::Instant) -> Body {
    let mut bytes = Vec::new();
    let mut length = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if length > limit => return Body::TooLarge,
            Err(_) => return Body::TimedOut,
            Ok(None) => break,
            Ok(Some(Err(_))) => return Body::Failed,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    length += data.len();
                    if length <= limit {
                        bytes.extend_from_slice(&data);
                    } else {
                        bytes = Vec::new();
                    }
                }
            }
        }
    }
    if length > limit {
        Body::TooLarge
    } else {
        Body::Complete(bytes)
    }
}
