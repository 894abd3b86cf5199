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
