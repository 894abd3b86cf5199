//! `dragoman serve --stdio`: JSON lines in, JSON lines out, answers equal to the CLI's output,
//! ids echoed verbatim, errors as answers, models kept between requests.

use serde_json::{json, Value};

use crate::cli::dragoman;
use crate::common::{expected, fixture, greedy_reference, reference_text};

fn serve(requests: &[Value], raw_lines: &[&str]) -> Vec<Value> {
    let mut input = String::new();
    for r in requests {
        input.push_str(&r.to_string());
        input.push('\n');
    }
    for line in raw_lines {
        input.push_str(line);
        input.push('\n');
    }
    let assert = dragoman()
        .args(["serve", "--stdio"])
        .write_stdin(input)
        .assert()
        .success();
    String::from_utf8(assert.get_output().stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn answers_are_what_the_cli_prints_with_ids_echoed() {
    let (sources, targets) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let t5 = fixture("summarize/t5-small").display().to_string();
    let doc = expected("summarize/t5-small").sentences[2].clone();
    let answers = serve(
        &[
            json!({"id": 7, "task": "translate", "text": format!("{}\n\n  {}\n", sources[0], sources[1]),
                   "model": marian, "beams": 1, "max_new_tokens": 20}),
            json!({"id": {"job": "a", "n": [1, 2]}, "task": "summarize", "text": doc, "model": t5}),
            json!({"id": "again", "task": "translate", "text": sources[2], "model": marian,
                   "beams": 1, "max_new_tokens": 20}),
            json!({"id": "x", "task": "summarize", "text": "  \n", "model": t5}),
            json!({"id": 9, "task": "dance", "text": "Bonjour."}),
            json!({"id": 10, "task": "translate", "text": "Bonjour.", "model": "/nonexistent/model"}),
        ],
        &[
            "{not json",
            r#"{"id": 12, "task": "translate", "text": "x", "colour": "red"}"#,
        ],
    );
    assert_eq!(answers.len(), 8, "{answers:?}");
    assert_eq!(
        answers[0],
        json!({"id": 7, "text": format!("{}\n\n  {}", targets[0], targets[1])})
    );
    assert_eq!(
        answers[1],
        json!({"id": {"job": "a", "n": [1, 2]},
               "text": reference_text("summarize/t5-small", "pipeline", 2)})
    );
    assert_eq!(answers[2], json!({"id": "again", "text": targets[2]}));
    for (i, id, needle) in [
        (3, json!("x"), "empty"),
        (4, json!(9), "unknown task"),
        (5, json!(10), "/nonexistent/model"),
        (6, Value::Null, "invalid request"),
        (7, json!(12), "colour"),
    ] {
        assert_eq!(answers[i]["id"], id, "{}", answers[i]);
        let error = answers[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", answers[i]));
        assert!(error.contains(needle), "{error}");
        assert!(answers[i].get("text").is_none());
    }
}

/// A running `dragoman serve --http` on a free loopback port; stopped on drop.
struct HttpServer {
    child: std::process::Child,
    addr: String,
}

impl HttpServer {
    fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dragoman"))
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent/dragoman-test-hf-home")
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("dragoman: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        // Keep draining stderr so that notes never block the server.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self { child, addr }
    }

    /// (status, JSON body) of one request.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        http_call(&self.addr, method, path, body)
    }
}

/// (status, JSON body) of one request to the server at `addr`.
fn http_call(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr,
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status: u16 = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

impl HttpServer {
    /// A connection that has sent `bytes` and nothing more.
    fn stalled(&self, bytes: &[u8]) -> std::net::TcpStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream.write_all(bytes).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream
    }

    fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }
}

/// Everything the server writes on `stream` until it closes it.
fn read_to_close(mut stream: std::net::TcpStream) -> String {
    use std::io::Read;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_answers_like_the_cli_batches_clients_and_refuses_bad_requests() {
    let (sources, targets) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let t5 = fixture("summarize/t5-small").display().to_string();
    let server = HttpServer::start(&[
        "--model",
        &marian,
        "--model",
        &t5,
        "--max-request-bytes",
        "2000",
    ]);
    assert_eq!(server.call("GET", "/health", "").0, 200);

    // Several clients at once: each gets its own sentence's translation.
    let server = std::sync::Arc::new(server);
    let handles: Vec<_> = (0..sources.len())
        .map(|i| {
            let server = server.clone();
            let request = json!({"id": i, "text": sources[i], "model": marian,
                                 "beams": 1, "max_new_tokens": 20})
            .to_string();
            std::thread::spawn(move || server.call("POST", "/v1/translate", &request))
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let (status, body) = handle.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"id": i, "text": targets[i]}));
    }

    let doc = expected("summarize/t5-small").sentences[0].clone();
    let (status, body) = server.call(
        "POST",
        "/v1/summarize",
        &json!({"id": "s", "text": doc, "model": t5}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["text"],
        reference_text("summarize/t5-small", "pipeline", 0)
    );

    let other_dir = fixture("fr-ru").display().to_string();
    for (method, path, body, status, needle) in [
        (
            "POST",
            "/v1/translate",
            "{oops".to_string(),
            400,
            "invalid request",
        ),
        (
            "POST",
            "/v1/translate",
            json!({"text": "x".repeat(3000)}).to_string(),
            413,
            "over 2000 bytes",
        ),
        (
            "POST",
            "/v1/translate",
            json!({"text": "Bonjour.", "model": other_dir}).to_string(),
            403,
            "named with --model",
        ),
        (
            "POST",
            "/v1/summarize",
            json!({"text": " ", "model": t5}).to_string(),
            400,
            "empty",
        ),
        ("GET", "/v1/translate", String::new(), 405, "not allowed"),
        ("GET", "/nowhere", String::new(), 404, "no such endpoint"),
    ] {
        let (got, answer) = server.call(method, path, &body);
        assert_eq!(got, status, "{method} {path}: {answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(error.contains(needle), "{error}");
    }
    let (_, models) = server.call("GET", "/v1/models", "");
    assert!(models["loaded"].as_array().unwrap().len() >= 2, "{models}");
}

/// `serve --stdio` as a client drives it: stdin kept open, answers read one by one.
struct StdioWorker {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    answers: std::sync::mpsc::Receiver<String>,
}

impl StdioWorker {
    fn start(args: &[&str]) -> Self {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dragoman"))
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent/dragoman-test-hf-home")
            .args(["serve", "--stdio"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (sender, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in stdout.lines() {
                let _ = sender.send(line.unwrap());
            }
        });
        Self {
            child,
            stdin,
            answers,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// The next answer; within the time a debug build needs to load a tiny model.
    fn answer(&self) -> Value {
        let line = self
            .answers
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("an answer within 60 s, stdin still open");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// The exit status, once every answer was read; fails if it does not come in 60 s.
    fn exit_status(&mut self) -> std::process::ExitStatus {
        wait_for_exit(&mut self.child)
    }
}

fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed().as_secs() < 60, "the worker did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What `dragoman translate` prints for `text` with `args`.
fn cli_translation(text: &str, args: &[&str]) -> String {
    let assert = dragoman()
        .arg("translate")
        .args(args)
        .write_stdin(text)
        .assert()
        .success();
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

#[test]
fn stdio_survives_any_line_and_answers_each_as_soon_as_it_is_ready() {
    let (sources, targets) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let mut worker = StdioWorker::start(&["--max-request-bytes", "2000"]);
    let greedy = |id: Value, text: &str| {
        let mut line = json!({"id": id, "text": text, "model": marian, "beams": 1,
                              "max_new_tokens": 20})
        .to_string();
        line.push('\n');
        line.into_bytes()
    };

    // Bytes that are not UTF-8, then a good request: both answered, stdin still open.
    worker.send(b"\xff\xfe\x00garbage\n");
    worker.send(&greedy(json!(1), &sources[0]));
    let refused = worker.answer();
    assert_eq!(refused["id"], Value::Null, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("not UTF-8"));
    assert_eq!(worker.answer(), json!({"id": 1, "text": targets[0]}));

    // Not UTF-8 but with a readable id; over the limit; not JSON; the wrong type; then more
    // good requests: every line answered, in order.
    worker.send(b"{\"id\": 41, \"text\": \"caf\xe9\"}\n");
    let mut long = greedy(json!(42), &"mot ".repeat(600));
    long.pop();
    long.extend_from_slice(b"\r\n");
    worker.send(&long);
    worker.send(b"{\"id\": 43, \"text\": \n");
    worker.send(b"{\"id\": 44, \"text\": null}\n");
    worker.send(b"\n   \n");
    worker.send(&greedy(json!(45), ""));
    let spaced = format!("  {}  ", sources[1]);
    worker.send(&greedy(json!(46), &spaced));
    // Any local directory over stdio (HTTP serves only those named at start).
    let russian = fixture("fr-ru").display().to_string();
    let line = json!({"id": 47, "text": sources[2], "model": russian, "to": "ru", "beams": 1,
                      "max_new_tokens": 20});
    worker.send(format!("{line}\n").as_bytes());
    for (id, needle) in [
        (json!(41), "not UTF-8"),
        (json!(42), "over the 2000-byte limit"),
        (json!(43), "invalid request"),
        (json!(44), "invalid type: null"),
    ] {
        let answer = worker.answer();
        assert_eq!(answer["id"], id, "{answer}");
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(error.contains(needle), "{error}");
    }
    assert_eq!(worker.answer(), json!({"id": 45, "text": ""}));
    let cli = cli_translation(
        &spaced,
        &["--model", &marian, "--beams", "1", "--max-new-tokens", "20"],
    );
    assert!(cli.ends_with("  "), "{cli:?}");
    assert_eq!(worker.answer(), json!({"id": 46, "text": cli}));
    let cli = cli_translation(
        &sources[2],
        &[
            "--model",
            &russian,
            "--to",
            "ru",
            "--beams",
            "1",
            "--max-new-tokens",
            "20",
        ],
    );
    assert_eq!(
        worker.answer(),
        json!({"id": 47, "text": cli.trim_end_matches('\n')})
    );

    // End of input: the worker exits 0 with nothing more to say.
    worker.stdin = None;
    assert!(worker.exit_status().success());
    assert!(worker.answers.recv().is_err());
}

#[test]
fn stdio_answers_what_it_read_when_terminated_then_exits_0() {
    let (sources, targets) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let mut worker = StdioWorker::start(&[]);
    let mut lines = String::new();
    for (i, source) in sources.iter().enumerate() {
        let line = json!({"id": i, "text": source, "model": marian, "beams": 1,
                          "max_new_tokens": 20});
        lines.push_str(&format!("{line}\n"));
    }
    // Then a long one (other settings: a batch of its own), likely in flight at the signal.
    let long_text = vec![sources[0].as_str(); 400].join("\n");
    let long = json!({"id": "long", "text": long_text, "model": marian, "beams": 1,
                      "max_new_tokens": 21});
    lines.push_str(&format!("{long}\n"));
    worker.send(lines.as_bytes());
    // Once the first answer is out, every line sent is read.
    assert_eq!(worker.answer(), json!({"id": 0, "text": targets[0]}));
    worker.signal(libc::SIGTERM);
    for (i, target) in targets.iter().enumerate().skip(1) {
        assert_eq!(worker.answer(), json!({"id": i, "text": target}));
    }
    let answer = worker.answer();
    assert_eq!(answer["id"], "long");
    assert_eq!(
        answer["text"].as_str().unwrap().lines().count(),
        400,
        "{answer}"
    );
    // Stdin is still open: the signal alone ends the worker, with 0.
    assert!(worker.exit_status().success());
}

#[test]
fn http_bounds_connections_and_times_out_stalled_clients() {
    let (sources, targets) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let server = HttpServer::start(&[
        "--model",
        &marian,
        "--max-connections",
        "3",
        "--read-timeout",
        "2",
    ]);
    let request = json!({"id": 1, "text": sources[0], "model": marian, "beams": 1,
                         "max_new_tokens": 20})
    .to_string();
    // Two clients stall, one in its headers, one in its body: others are still served.
    let in_headers = server.stalled(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\n");
    let in_body = server
        .stalled(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"te");
    let started = std::time::Instant::now();
    let (status, body) = server.call("POST", "/v1/translate", &request);
    assert_eq!((status, body), (200, json!({"id": 1, "text": targets[0]})));
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "waited for the stalled clients"
    );

    // A third stalled client fills the bound: the next connection gets a clear 503.
    let third = server.stalled(b"GET /health HTTP/1.1\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (status, body) = server.call("GET", "/health", "");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-connections"),
        "{body}"
    );

    // The read timeout closes them all: the stalled body with a 408, the others silently.
    let answer = read_to_close(in_body);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 2 s"), "{answer}");
    assert_eq!(read_to_close(in_headers), "");
    assert_eq!(read_to_close(third), "");
    let (status, body) = server.call("POST", "/v1/translate", &request);
    assert_eq!((status, body), (200, json!({"id": 1, "text": targets[0]})));

    // A body far over the limit, sent slowly in pieces, is read to its end: the client
    // writes it all without a reset and reads the 413.
    use std::io::Write;
    let size = 4 << 20;
    let mut stream = server.stalled(
        format!("POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n")
            .as_bytes(),
    );
    let piece = vec![b'a'; 64 << 10];
    for _ in 0..size / piece.len() {
        stream
            .write_all(&piece)
            .expect("the server reads the whole body");
    }
    let answer = read_to_close(stream);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over 1048576 bytes"), "{answer}");

    // /metrics counts what happened.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let metrics = read_to_close(stream);
    for needle in [
        "dragoman_requests_total{endpoint=\"translate\",status=\"200\"} 2",
        "dragoman_request_errors_total{endpoint=\"translate\",status=\"408\"} 1",
        "dragoman_request_errors_total{endpoint=\"translate\",status=\"413\"} 1",
        "dragoman_request_duration_seconds_count{endpoint=\"translate\"} 4",
        "dragoman_batch_requests_count 2",
        "dragoman_refused_connections_total 1",
        "dragoman_open_connections 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in:\n{metrics}");
    }
    let model = format!("model=\"{marian}\",from=\"fr\",to=\"en\"}} 1");
    assert!(metrics.contains(&model), "{model} not in:\n{metrics}");
}

#[test]
fn http_answers_requests_in_flight_when_terminated_then_exits_0() {
    let (sources, _) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let mut server = HttpServer::start(&["--model", &marian]);
    let long_text = vec![sources[0].as_str(); 400].join("\n");
    let request = json!({"id": "long", "text": long_text, "model": marian, "beams": 1,
                         "max_new_tokens": 20})
    .to_string();
    let server_addr = server.addr.clone();
    let client =
        std::thread::spawn(move || http_call(&server_addr, "POST", "/v1/translate", &request));
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.signal(libc::SIGTERM);
    let (status, body) = client.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"].as_str().unwrap().lines().count(), 400);
    assert!(wait_for_exit(&mut server.child).success());
    assert!(std::net::TcpStream::connect(&server.addr).is_err());
}

#[test]
fn stdio_exits_at_once_on_a_second_signal() {
    let (sources, _) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let mut worker = StdioWorker::start(&[]);
    let long_text = vec![sources[0].as_str(); 2000].join("\n");
    let long = json!({"id": "long", "text": long_text, "model": marian, "beams": 1,
                      "max_new_tokens": 20});
    worker.send(format!("{long}\n").as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(500));
    worker.signal(libc::SIGTERM);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let signalled = std::time::Instant::now();
    worker.signal(libc::SIGTERM);
    let status = worker.exit_status();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert!(
        signalled.elapsed().as_secs_f64() < 2.0,
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        worker.answers.recv().is_err(),
        "no answer to the request cut short"
    );
}

#[test]
fn serve_answers_carry_scores_and_alternatives_when_asked() {
    let e = expected("fr-en");
    let nbest = e.one_at_a_time("beam4_nbest3");
    let marian = fixture("fr-en").display().to_string();
    let answers = serve(
        &[
            json!({"id": 1, "text": e.sentences[0], "model": marian, "alternatives": 3}),
            json!({"id": 2, "text": e.sentences[0], "model": marian}),
            json!({"id": 3, "text": "x", "model": marian, "alternatives": 5}),
        ],
        &[],
    );
    let want = nbest.outputs[0].alternatives.as_ref().unwrap();
    assert_eq!(answers[0]["text"], want[0].text);
    let sentence = &answers[0]["sentences"][0];
    assert_eq!(sentence["source"], e.sentences[0]);
    let got = sentence["alternatives"].as_array().unwrap();
    assert_eq!(got.len(), 3, "{sentence}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["target"], w.text);
        let score = g["score"].as_f64().unwrap();
        assert!((score - f64::from(w.score.unwrap())).abs() < 1e-4, "{g}");
    }
    // Without `alternatives` the answer keeps its shape: id and text.
    assert_eq!(answers[1], json!({"id": 2, "text": want[0].text}));
    let error = answers[2]["error"].as_str().unwrap();
    assert!(error.contains("--alternatives"), "{error}");
}

/// A multilingual model over stdio: `to` in any form picks the target as the CLI's `--to`
/// does; a language the model lacks, or an unknown `quality`, is an error answer and the
/// worker goes on.
#[test]
fn serve_takes_languages_and_quality_as_the_cli_does() {
    let m2m100 = fixture("m2m100/m2m100").display().to_string();
    let text = "Le chat dort sur le canapé.";
    let args = [
        "--model",
        m2m100.as_str(),
        "--to",
        "ru",
        "--beams",
        "1",
        "--max-new-tokens",
        "20",
    ];
    let russian = cli_translation(text, &args);
    let answers = serve(
        &[
            json!({"id": 1, "text": text, "model": m2m100, "to": "rus_Cyrl", "beams": 1, "max_new_tokens": 20}),
            json!({"id": 2, "text": text, "model": m2m100, "to": "tlh"}),
            json!({"id": 3, "text": text, "quality": "good"}),
            json!({"id": 4, "text": text, "model": m2m100, "to": "__ru__", "beams": 1, "max_new_tokens": 20}),
        ],
        &[],
    );
    assert_eq!(
        answers[0],
        json!({"id": 1, "text": russian.trim_end_matches('\n')})
    );
    let error = answers[1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("has no language \"tlh\"") && error.contains("ru"),
        "{answers:?}"
    );
    let error = answers[2]["error"].as_str().unwrap_or_default();
    assert!(error.contains("unknown quality \"good\""), "{answers:?}");
    assert_eq!(
        answers[3],
        answers[0]
            .as_object()
            .map(|a| {
                let mut a = a.clone();
                a.insert("id".into(), json!(4));
                Value::Object(a)
            })
            .unwrap()
    );
}

/// (status, content type, body bytes) of one request with a raw body.
fn http_bytes(addr: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (status, content_type, response[split + 4..].to_vec())
}

#[test]
fn http_documents_are_bytes_in_and_the_cli_output_out() {
    let (sources, _) = greedy_reference();
    let marian = fixture("fr-en").display().to_string();
    let server = HttpServer::start(&["--model", &marian]);
    let dir = tempfile::tempdir().unwrap();
    let docx = crate::documents::docx_bytes(&crate::documents::word_document(&sources));
    let html = format!("<p>{} <b>{}</b></p>", sources[1], sources[3]);
    let query = |format: &str| {
        format!(
            "/v1/documents?format={format}&model={}&beams=1&max_new_tokens=20",
            marian.replace('/', "%2F")
        )
    };
    for (format, body, content_type) in [
        (
            "docx",
            docx,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("html", html.into_bytes(), "text/html; charset=utf-8"),
    ] {
        let input = dir.path().join(format!("doc.{format}"));
        let output = dir.path().join(format!("out.{format}"));
        std::fs::write(&input, &body).unwrap();
        dragoman()
            .args([
                "translate",
                "--model",
                &marian,
                "--beams",
                "1",
                "--max-new-tokens",
                "20",
            ])
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .assert()
            .success();
        let (status, got_type, got) = http_bytes(&server.addr, &query(format), &body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
        assert_eq!(got_type, content_type);
        assert_eq!(
            got,
            std::fs::read(&output).unwrap(),
            "{format}: what the CLI writes"
        );
    }
    let (status, _, body) = http_bytes(&server.addr, "/v1/documents?to=en", b"x");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("name the document's format"));
    let (status, _, body) = http_bytes(&server.addr, &query("docx"), b"not a zip");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not a DOCX file"));
}
