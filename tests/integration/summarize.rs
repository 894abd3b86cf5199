//! `dragoman summarize` end to end, on the summarization fixtures: the pipeline's defaults,
//! flags over them, models that are not summarizers, long documents, --lang.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use dragoman::models::Precision;
use predicates::prelude::*;

use dragoman::generation::GenerationOverrides;
use dragoman::{Summarizer, Translator};

use crate::cli::dragoman;
use crate::common::{cache_fixture, expected, fixture, reference_text};

fn summarize_with(name: &str) -> assert_cmd::Command {
    let mut cmd = dragoman();
    cmd.arg("summarize").arg("--model").arg(fixture(name));
    cmd
}

#[test]
fn each_document_gets_the_summary_transformers_pipeline_gives() {
    for name in [
        "summarize/t5-small",
        "summarize/flan-t5",
        "summarize/bart-cnn",
    ] {
        let docs = expected(name).sentences;
        // stdin is one document, surrounding whitespace trimmed.
        summarize_with(name)
            .write_stdin(format!("\n  {}\n\n", docs[1]))
            .assert()
            .success()
            .stdout(format!("{}\n", reference_text(name, "pipeline", 1)));
        // FILEs: one summary line each, in order.
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = [3, 0]
            .iter()
            .map(|&i| {
                let path = dir.path().join(format!("doc{i}.txt"));
                std::fs::write(&path, &docs[i]).unwrap();
                path
            })
            .collect();
        summarize_with(name)
            .args(&files)
            .assert()
            .success()
            .stdout(format!(
                "{}\n{}\n",
                reference_text(name, "pipeline", 3),
                reference_text(name, "pipeline", 0)
            ));
    }
}

#[test]
fn flags_override_one_setting_each() {
    for name in [
        "summarize/t5-small",
        "summarize/bart-cnn",
        "summarize/barthez",
    ] {
        let doc = &expected(name).sentences[2];
        for (case, flags) in [
            (
                "beam2_lp0.5",
                &["--beams", "2", "--length-penalty", "0.5"][..],
            ),
            (
                "greedy_max_new6",
                &["--beams", "1", "--max-new-tokens", "6"][..],
            ),
            (
                "beam3_no_repeat2_min_new8",
                &[
                    "--beams",
                    "3",
                    "--no-repeat-ngram",
                    "2",
                    "--min-new-tokens",
                    "8",
                ][..],
            ),
        ] {
            summarize_with(name)
                .args(flags)
                .write_stdin(doc.as_str())
                .assert()
                .success()
                .stdout(format!("{}\n", reference_text(name, case, 2)));
        }
    }
}

#[test]
fn a_model_without_summarization_parameters_runs_with_a_note() {
    let name = "summarize/mt5";
    summarize_with(name)
        .write_stdin(expected(name).sentences[0].clone())
        .assert()
        .success()
        .stdout(format!("{}\n", reference_text(name, "pipeline", 0)))
        .stderr(predicate::str::contains("no summarization parameters"));
    // A summarizer says nothing on stderr.
    summarize_with("summarize/t5-small")
        .write_stdin(expected("summarize/t5-small").sentences[0].clone())
        .assert()
        .success()
        .stderr("");
}

#[test]
fn an_empty_document_is_refused_with_its_name() {
    summarize_with("summarize/bart-cnn")
        .write_stdin(" \n\t\n")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("<stdin>").and(predicate::str::contains("empty")));
    let dir = tempfile::tempdir().unwrap();
    let (good, empty) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    std::fs::write(&good, "Le chat dort.").unwrap();
    std::fs::write(&empty, "").unwrap();
    let out = dir.path().join("out.txt");
    summarize_with("summarize/bart-cnn")
        .arg(&good)
        .arg(&empty)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("b.txt"));
    assert!(
        !out.exists(),
        "a failed run must not leave a partial output"
    );
}

/// The catalog's French summarizer without --lang; --lang en summarizes in French, then
/// translates the summary with the catalog's fr→en model.
#[test]
fn lang_picks_the_catalog_strategy() {
    let home = tempfile::tempdir().unwrap();
    cache_fixture(
        home.path(),
        "moussaKam/barthez-orangesum-abstract",
        "summarize/barthez",
    );
    cache_fixture(home.path(), "Helsinki-NLP/opus-mt-fr-en", "fr-en");
    let doc = expected("summarize/barthez").sentences[1].clone();
    let french = reference_text("summarize/barthez", "pipeline", 1);
    dragoman()
        .env("HF_HOME", home.path())
        .arg("summarize")
        .write_stdin(doc.as_str())
        .assert()
        .success()
        .stdout(format!("{french}\n"));

    let translator = Translator::load(&fixture("fr-en"), Precision::F32, &Device::Cpu).unwrap();
    let english = translator.translate_lines(&[french.as_str()]).unwrap();
    dragoman()
        .env("HF_HOME", home.path())
        .args(["summarize", "--lang", "en"])
        .write_stdin(doc.as_str())
        .assert()
        .success()
        .stdout(format!("{}\n", english[0]));

    // No catalog model for --lang ru is cached: the fr→ru translator of the asked tier (the
    // pair's default without --quality) is named.
    for (quality, model) in [
        (None, "Helsinki-NLP/opus-mt-tc-big-fr-zle"),
        (Some("fast"), "Helsinki-NLP/opus-mt-fr-ru"),
    ] {
        let mut cmd = dragoman();
        cmd.env("HF_HOME", home.path())
            .args(["summarize", "--lang", "ru"]);
        if let Some(quality) = quality {
            cmd.args(["--quality", quality]);
        }
        cmd.write_stdin(doc.as_str())
            .assert()
            .code(1)
            .stderr(predicate::str::contains(model));
    }
}

/// A document longer than the encoder accepts (bart-cnn: 128 positions) is summarized in
/// parts — whole lines packed while they fit — and the joined summaries summarized again.
#[test]
fn a_long_document_is_summarized_in_parts_then_their_summaries() {
    let name = "summarize/bart-cnn";
    let docs = expected(name).sentences;
    let lines: Vec<&str> = (0..12).map(|i| docs[i % docs.len()].as_str()).collect();
    let document = lines.join("\n");
    let mut summarizer = Summarizer::load(&fixture(name), Precision::F32, &Device::Cpu).unwrap();
    // Short summaries, so that their join fits in one second round.
    summarizer
        .set_overrides(&GenerationOverrides {
            max_new_tokens: Some(10),
            min_new_tokens: Some(2),
            ..GenerationOverrides::default()
        })
        .unwrap();
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = notes.clone();
    summarizer.set_notes(Box::new(move |n| sink.lock().unwrap().push(n.to_string())));
    let limit = 128;
    assert!(summarizer.input_ids(&document).unwrap().len() > limit);

    // The rule, derived independently: greedy packing of whole lines under the limit.
    let fits = |text: &str| summarizer.input_ids(text).unwrap().len() <= limit;
    let mut parts: Vec<String> = Vec::new();
    for line in &lines {
        match parts.last_mut() {
            Some(last) if fits(&format!("{last}\n{line}")) => {
                last.push('\n');
                last.push_str(line);
            }
            _ => parts.push(line.to_string()),
        }
    }
    assert!(parts.len() > 1);
    // The parts are summarized as one batch (transformers' batched generate()).
    let inputs: Vec<Vec<u32>> = parts
        .iter()
        .map(|p| summarizer.input_ids(p).unwrap())
        .collect();
    let summaries: Vec<String> = summarizer
        .engine()
        .generate_ids(&inputs)
        .unwrap()
        .iter()
        .map(|ids| summarizer.tokenizer().decode(ids).unwrap())
        .collect();
    let joined = summaries.join("\n");
    assert!(fits(&joined), "the test expects one second round");
    let want = summarizer.summarize(&joined).unwrap();
    notes.lock().unwrap().clear();

    assert_eq!(summarizer.summarize(&document).unwrap(), want);
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(&format!("in {} parts", parts.len())),
        "{}",
        notes[0]
    );

    // The CLI says so on stderr and prints the same summary.
    summarize_with(name)
        .args(["--max-new-tokens", "10", "--min-new-tokens", "2"])
        .write_stdin(document)
        .assert()
        .success()
        .stdout(format!("{want}\n"))
        .stderr(predicate::str::contains("parts"));
}

/// A document's text is what a reader reads: an HTML page's paragraphs summarize as the same
/// text in a plain file; `--format json` carries each summary; `--out-dir` writes each to
/// `stem.<lang>.summary.txt`.
#[test]
fn documents_summarize_by_their_text_to_json_and_to_a_directory() {
    let name = "summarize/t5-small";
    let docs = expected(name).sentences;
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("page.html");
    // An article long enough to be told apart (Readability wants some 500 characters).
    let article: Vec<String> = docs.iter().take(4).cloned().collect();
    let article_text = dir.path().join("article.txt");
    std::fs::write(&article_text, article.join("\n")).unwrap();
    // The article among what pages carry around it: navigation, a cookie banner, a
    // "see also" list, a counter.
    std::fs::write(
        &html,
        format!(
            "<html><head><title>Le journal</title><style>p {{}}</style></head><body>\
<nav><ul><li><a href=\"/\">Accueil</a></li><li><a href=\"/monde\">Monde</a></li><li><a href=\"/sport\">Sport</a></li></ul></nav>\
<div id=\"cookie-banner\" class=\"cookie-consent\">Nous utilisons des cookies. <button>Accepter</button></div>\
<article><p>{}</p></article>\
<aside class=\"related\"><h2>Voir aussi</h2><ul><li><a href=\"/a\">Un autre article</a></li><li><a href=\"/b\">Encore un</a></li></ul></aside>\
<footer><span class=\"counter\">1 234 lectures</span> · <a href=\"/mentions\">Mentions légales</a></footer></body></html>",
            article.join("</p><p>")
        ),
    )
    .unwrap();
    let plain = dir.path().join("doc.txt");
    std::fs::write(&plain, &docs[0]).unwrap();
    let out = summarize_with(name)
        .args(["--format", "json"])
        .arg(&html)
        .arg(&plain)
        .arg(&article_text)
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // The page summarizes as its article's text alone.
    assert_eq!(json[0]["summary"], json[2]["summary"]);
    assert_eq!(json[1]["summary"], reference_text(name, "pipeline", 0));
    assert_eq!(json[1]["input"], plain.display().to_string());
    let out_dir = dir.path().join("summaries");
    summarize_with(name)
        .arg("--out-dir")
        .arg(&out_dir)
        .arg(&html)
        .arg(&plain)
        .assert()
        .success()
        .stdout("");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("page.fr.summary.txt")).unwrap(),
        format!("{}\n", json[0]["summary"].as_str().unwrap())
    );
    assert!(out_dir.join("doc.fr.summary.txt").is_file());
}
