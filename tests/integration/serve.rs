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
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
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
