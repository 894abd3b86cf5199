//! The `dragoman` binary end to end: streams, files, line structure, model lookup, errors.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::{cache_fixture, expected, fixture, greedy_reference};

const GREEDY: [&str; 4] = ["--beams", "1", "--max-new-tokens", "20"];

pub fn dragoman() -> Command {
    let mut cmd = Command::cargo_bin("dragoman").unwrap();
    // Keep the tests away from any real cache on the machine, and from the network.
    cmd.env("HF_HOME", "/nonexistent/dragoman-test-hf-home")
        .env_remove("HF_HUB_CACHE")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    cmd
}

fn translate_with(model: &Path) -> Command {
    let mut cmd = dragoman();
    cmd.arg("translate").arg("--model").arg(model).args(GREEDY);
    cmd
}

#[test]
fn stdin_to_stdout_keeps_lines_blank_lines_and_indentation() {
    let (sources, targets) = greedy_reference();
    let input = format!("{}\n\n    {}\n{}\n", sources[0], sources[1], sources[2]);
    let want = format!("{}\n\n    {}\n{}\n", targets[0], targets[1], targets[2]);
    translate_with(&fixture("fr-en"))
        .write_stdin(input)
        .assert()
        .success()
        .stdout(want);
}

#[test]
fn files_are_translated_in_order_and_crlf_is_kept() {
    let (sources, targets) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, format!("{}\r\n{}", sources[3], sources[4])).unwrap();
    std::fs::write(&b, format!("{}\n", sources[5])).unwrap();
    translate_with(&fixture("fr-en"))
        .arg(&a)
        .arg(&b)
        .assert()
        .success()
        .stdout(format!("{}\r\n{}{}\n", targets[3], targets[4], targets[5]));
}

#[test]
fn output_file_is_written_whole_or_not_at_all() {
    let (sources, targets) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let out = dir.path().join("out.txt");
    std::fs::write(&input, format!("{}\n", sources[0])).unwrap();
    translate_with(&fixture("fr-en"))
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout("");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{}\n", targets[0])
    );

    // A failing run (second input is not UTF-8) leaves the previous output untouched.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"Bonjour \xff\xfe.\n").unwrap();
    translate_with(&fixture("fr-en"))
        .arg(&input)
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid UTF-8 at byte 8"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{}\n", targets[0])
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 3, "a temporary file was left behind");
}

#[test]
fn invalid_utf8_names_the_byte_offset_and_lossy_goes_on() {
    translate_with(&fixture("fr-en"))
        .write_stdin(&b"Bonjour.\nLe caf\xe9 est chaud.\n"[..])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("<stdin>: invalid UTF-8 at byte 15")
                .and(predicate::str::contains("--lossy")),
        );
    translate_with(&fixture("fr-en"))
        .arg("--lossy")
        .write_stdin(&b"Le caf\xe9 est chaud.\n"[..])
        .assert()
        .success()
        .stdout(predicate::function(|out: &str| out.lines().count() == 1));
}

#[test]
fn empty_and_blank_input_give_the_same_shape() {
    translate_with(&fixture("fr-en"))
        .write_stdin("")
        .assert()
        .success()
        .stdout("");
    translate_with(&fixture("fr-en"))
        .write_stdin("\n  \n\n")
        .assert()
        .success()
        .stdout("\n  \n\n");
}

#[test]
fn defaults_come_from_generation_config() {
    // No flags: the fixture's generation_config.json (4 beams, max_length 40) decides.
    let e = expected("fr-en");
    let defaults = e
        .cases
        .iter()
        .find(|c| c.name == "defaults" && !c.batched)
        .unwrap();
    let mut cmd = dragoman();
    cmd.args(["translate", "--model"]).arg(fixture("fr-en"));
    cmd.write_stdin(format!("{}\n", e.sentences[1]))
        .assert()
        .success()
        .stdout(format!("{}\n", defaults.outputs[1].text));
}

#[test]
fn hub_ids_resolve_from_the_huggingface_cache() {
    let (sources, targets) = greedy_reference();
    let home = tempfile::tempdir().unwrap();
    cache_fixture(home.path(), "Helsinki-NLP/opus-mt-fr-en", "fr-en");

    // --to en picks the catalog's opus-mt-fr-en, found in the cache.
    let mut cmd = dragoman();
    cmd.env("HF_HOME", home.path())
        .args(["translate", "--to", "en"])
        .args(GREEDY);
    cmd.write_stdin(format!("{}\n", sources[0]))
        .assert()
        .success()
        .stdout(format!("{}\n", targets[0]));

    // A model that is not cached, offline: one line naming it and what to do (fr→ru's
    // default, then its fast tier).
    for (quality, model) in [
        (None, "Helsinki-NLP/opus-mt-tc-big-fr-zle"),
        (Some("fast"), "Helsinki-NLP/opus-mt-fr-ru"),
    ] {
        let mut cmd = dragoman();
        cmd.env("HF_HOME", home.path())
            .args(["translate", "--to", "ru"]);
        if let Some(quality) = quality {
            cmd.args(["--quality", quality]);
        }
        cmd.write_stdin("Bonjour.\n")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(format!(
                "dragoman models pull {model}"
            )));
    }
}

fn broken_copy(remove: &[&str], corrupt: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("fr-en")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if !remove.contains(&name.as_str()) {
            std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
        }
    }
    for (name, bytes) in corrupt {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn broken_model_files_are_named_in_one_line() {
    let cases: Vec<(tempfile::TempDir, &str)> = vec![
        (broken_copy(&["config.json"], &[]), "config.json"),
        (
            broken_copy(&[], &[("config.json", b"{ not json")]),
            "config.json: invalid JSON",
        ),
        (broken_copy(&["model.safetensors"], &[]), "no weights found"),
        (
            broken_copy(
                &[],
                &[(
                    "model.safetensors",
                    b"\x08\x00\x00\x00\x00\x00\x00\x00garbage",
                )],
            ),
            "model.safetensors: cannot read weights",
        ),
        (broken_copy(&["source.spm"], &[]), "no tokenizer found"),
        (
            broken_copy(&[], &[("source.spm", b"\xff\xff\xff\xff")]),
            "source.spm: not a valid SentencePiece model",
        ),
        (broken_copy(&[], &[("vocab.json", b"[1, 2]")]), "vocab.json"),
    ];
    for (dir, message) in cases {
        let assert = translate_with(dir.path())
            .write_stdin("Bonjour.\n")
            .assert()
            .code(1);
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert!(
            stderr.contains(message),
            "expected {message:?} in {stderr:?}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "not one line: {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    dragoman()
        .args(["translate", "--dtype", "f64"])
        .assert()
        .code(2);
    dragoman()
        .args(["translate", "--beams", "0"])
        .assert()
        .code(2);
    dragoman()
        .args(["translate", "--to", "de"])
        .write_stdin("Bonjour.\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no model for fr→de"));
    translate_with(&fixture("fr-en"))
        .arg("missing.txt")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("missing.txt: no such file"));
}

#[test]
fn sentences_of_a_line_are_translated_separately_and_joined_with_their_spacing() {
    let (sources, targets) = greedy_reference();
    let line = format!("{}  {}", sources[0], sources[1]);
    assert_eq!(
        dragoman::text::split_sentences(&line).len(),
        2,
        "fixture sentences must segment: {line}"
    );
    translate_with(&fixture("fr-en"))
        .write_stdin(format!("{line}\n"))
        .assert()
        .success()
        .stdout(format!("{}  {}\n", targets[0], targets[1]));
}

#[test]
fn a_sentence_longer_than_the_model_is_split_with_a_note_not_truncated() {
    // The fixture model has 64 positions; this one sentence has far more tokens.
    let clause = "le conseil municipal a longuement débattu du budget de la commune";
    let sentence = format!("{}.", [clause; 8].join(", "));
    let assert = translate_with(&fixture("fr-en"))
        .write_stdin(format!("{sentence}\n"))
        .assert()
        .success();
    let out = assert.get_output();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exceeds the model's 64") && stderr.contains("parts"),
        "{stderr}"
    );
}

#[test]
fn a_byte_order_mark_is_kept_but_not_translated() {
    let (sources, targets) = greedy_reference();
    translate_with(&fixture("fr-en"))
        .write_stdin(format!("\u{feff}{}\n", sources[0]))
        .assert()
        .success()
        .stdout(format!("\u{feff}{}\n", targets[0]));
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    closed_stdout_ends_quietly(&[]);
}

#[test]
fn a_closed_stdout_ends_quietly_with_success_for_json_too() {
    closed_stdout_ends_quietly(&["--format", "json"]);
}

fn closed_stdout_ends_quietly(format: &[&str]) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let (sources, _) = greedy_reference();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dragoman"))
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(["--beams", "1", "--max-new-tokens", "3"])
        .args(format)
        .env("HF_HUB_OFFLINE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Far more output than a pipe buffers, so writing must hit the closed pipe.
    let input = format!("{}\n", sources[0]).repeat(20_000);
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    // Read one line, then hang up, as `| head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn text_in_another_language_gets_one_warning_and_is_translated_anyway() {
    let english = "The president paid an official visit to the capital, where he praised the country's neutrality and met several ministers.\nHe then flew home.\n";
    let french = "Le président a effectué une visite officielle dans la capitale, où il a salué la neutralité du pays.\n";
    let assert = translate_with(&fixture("fr-en"))
        .write_stdin(english)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "<stdin> looks like English, not fr",
        ));
    assert_eq!(
        String::from_utf8_lossy(&assert.get_output().stdout)
            .lines()
            .count(),
        2
    );
    translate_with(&fixture("fr-en"))
        .write_stdin(french)
        .assert()
        .success()
        .stderr(predicate::str::contains("looks like").not());
    translate_with(&fixture("fr-en"))
        .arg("-q")
        .write_stdin(english)
        .assert()
        .success()
        .stderr("");
}

/// A .md file is edited in place: its text is translated, its syntax, code and URLs kept.
#[test]
fn markdown_keeps_its_syntax_code_and_urls() {
    let (s, t) = greedy_reference();
    let doc = format!(
        "# {}\n\n{} `Le code` [{}](https://exemple.fr/Le-chat)\n\n```\nLe {}\n```\n",
        s[0], s[1], s[2], s[3]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("article.md");
    std::fs::write(&path, &doc).unwrap();
    let out = translate_with(&fixture("fr-en"))
        .arg(&path)
        .assert()
        .success();
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // The heading is translated as plain text; the paragraph is one text with its code
    // copied and its link's destination kept; the code block is left alone.
    assert!(out.starts_with(&format!("# {}\n\n", t[0])), "{out}");
    assert_eq!(out.matches("`Le code`").count(), 1, "{out}");
    assert_eq!(
        out.matches("](https://exemple.fr/Le-chat)").count(),
        1,
        "{out}"
    );
    assert!(
        out.ends_with(&format!("\n\n```\nLe {}\n```\n", s[3])),
        "{out}"
    );
    // The same text from stdin is Markdown only when asked.
    translate_with(&fixture("fr-en"))
        .args(["--input-format", "markdown"])
        .write_stdin(doc)
        .assert()
        .success()
        .stdout(out);
}

#[test]
fn json_output_aligns_paragraphs_and_sentences_with_model_and_settings() {
    let (s, t) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, format!("{} {}\n\n{}\n", s[1], s[2], s[0])).unwrap();
    std::fs::write(&b, format!("{}\n", s[3])).unwrap();
    let assert = translate_with(&fixture("fr-en"))
        .args(["--format", "jsonl"])
        .arg(&a)
        .arg(&b)
        .assert()
        .success();
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    let first = &docs[0];
    assert_eq!(first["input"], a.display().to_string());
    assert_eq!(first["model"], fixture("fr-en").display().to_string());
    assert_eq!(first["revision"], "local");
    assert_eq!(first["precision"], "f32");
    assert_eq!(first["settings"]["num_beams"], 1);
    assert_eq!(first["settings"]["max_length"], 21);
    assert!(first["timings"]["translate_seconds"].as_f64().unwrap() >= 0.0);
    let paragraphs = first["paragraphs"].as_array().unwrap();
    assert_eq!(paragraphs.len(), 3);
    assert_eq!(paragraphs[0]["source"], format!("{} {}", s[1], s[2]));
    assert_eq!(paragraphs[0]["target"], format!("{} {}", t[1], t[2]));
    // Each sentence carries transformers' score (greedy: the mean token log-probability).
    let reference = expected("fr-en");
    let greedy = reference.one_at_a_time("greedy");
    let sentences = paragraphs[0]["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 2);
    for (sentence, i) in sentences.iter().zip([1, 2]) {
        assert_eq!(sentence["source"], s[i]);
        assert_eq!(sentence["target"], t[i]);
        let score = sentence["score"].as_f64().unwrap();
        let want = f64::from(greedy.outputs[i].score.unwrap());
        assert!((score - want).abs() < 1e-4, "{score} vs {want}");
        assert!(sentence.get("alternatives").is_none(), "{sentence}");
    }
    assert_eq!(
        paragraphs[1],
        serde_json::json!({"source": "", "target": "", "sentences": []})
    );
    assert_eq!(docs[1]["paragraphs"][0]["target"], t[3]);

    // --format json: the same documents in one array.
    let assert = translate_with(&fixture("fr-en"))
        .args(["--format", "json"])
        .arg(&a)
        .arg(&b)
        .assert()
        .success();
    let array: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(array[1]["paragraphs"], docs[1]["paragraphs"]);
}

/// Robustness: control characters, mixed scripts and right-to-left text give one line each;
/// a 1 MB line (no line break) gives one line, split for the model with a note, no panic.
#[test]
fn odd_input_keeps_its_shape() {
    let odd = "Bonjour\u{0}\u{7}\u{1b}[31m rouge\u{1b}[0m Привет 你好 😀 مرحبا\u{200f} \u{feff}fin\n\t\u{b}\u{c}\n";
    let quick = |tokens: &str| {
        let mut cmd = dragoman();
        cmd.arg("translate")
            .arg("--model")
            .arg(fixture("fr-en"))
            .args(["--beams", "1", "--max-new-tokens", tokens]);
        cmd
    };
    let assert = quick("4").write_stdin(odd).assert().success();
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert_eq!(out.matches('\n').count(), 2, "{out:?}");

    let long = "Le chat dort sur le canapé, ".repeat(38_000);
    assert!(long.len() > 1_000_000);
    let assert = quick("1")
        .write_stdin(format!("{long}\n"))
        .assert()
        .success()
        .stderr(predicate::str::contains("translated in"));
    let out = &assert.get_output().stdout;
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn int8_and_bf16_translate_every_line_and_f16_is_refused_on_the_cpu() {
    let input = "Le chat dort.\n\nIl fait beau. Nous partons demain.\n";
    let mut dtypes = vec!["int8"];
    if dragoman::cpu::kernels().bf16.is_some() {
        dtypes.push("bf16");
    }
    for dtype in dtypes {
        let out = translate_with(&fixture("fr-en"))
            .args(["--dtype", dtype])
            .write_stdin(input)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{dtype}: {text:?}");
        assert_eq!(text.lines().nth(1), Some(""), "{dtype}: {text:?}");
    }
    translate_with(&fixture("fr-en"))
        .args(["--dtype", "f16"])
        .write_stdin("Bonjour.\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--dtype f16 is not supported on the CPU",
        ));
    // Kernels capped below bf16 (as on a CPU without it): one line saying what is missing.
    translate_with(&fixture("fr-en"))
        .args(["--dtype", "bf16"])
        .env("DRAGOMAN_CPU", "avx2")
        .write_stdin("Bonjour.\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--dtype bf16 on the CPU needs AMX-BF16 or AVX512-BF16",
        ));
}

#[test]
fn verbose_and_json_name_the_cpu_kernels_and_a_bad_cap_is_a_usage_error() {
    let assert = translate_with(&fixture("fr-en"))
        .args(["-v", "--format", "json"])
        .env("DRAGOMAN_CPU", "avx2")
        .write_stdin("Le chat dort.\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("dragoman: cpu kernels f32: "))
        .stderr(predicate::str::contains(
            "DRAGOMAN_CPU=avx2 caps the kernels",
        ));
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let kernels = json[0]["kernels"].as_str().unwrap();
    // Capped at AVX2: never an AVX-512, VNNI or AMX kernel, whatever this machine has.
    assert!(
        kernels == "f32: avx2, int8: avx2, bf16: none"
            || kernels == "f32: portable, int8: portable, bf16: none",
        "{kernels}"
    );
    translate_with(&fixture("fr-en"))
        .env("DRAGOMAN_CPU", "avx1024")
        .write_stdin("Le chat dort.\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "DRAGOMAN_CPU=avx1024: expected one of portable",
        ));
}

#[test]
fn alternatives_are_transformers_n_best_with_scores_and_leave_the_text_alone() {
    let e = expected("fr-en");
    let (nbest, defaults) = (e.one_at_a_time("beam4_nbest3"), e.one_at_a_time("defaults"));
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..2)
        .map(|i| {
            let path = dir.path().join(format!("{i}.txt"));
            std::fs::write(&path, format!("{}\n", e.sentences[i])).unwrap();
            path
        })
        .collect();
    // Each file is one document of one sentence: translated one at a time.
    let assert = dragoman()
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(["--alternatives", "3", "--format", "jsonl"])
        .args(&files)
        .assert()
        .success();
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    for (i, line) in out.lines().enumerate() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let sentence = &doc["paragraphs"][0]["sentences"][0];
        let want = nbest.outputs[i].alternatives.as_ref().unwrap();
        let got = sentence["alternatives"].as_array().unwrap();
        assert_eq!(got.len(), 3, "{sentence}");
        assert_eq!(sentence["target"], got[0]["target"]);
        assert_eq!(sentence["score"], got[0]["score"]);
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["target"], w.text);
            let score = g["score"].as_f64().unwrap();
            assert!((score - f64::from(w.score.unwrap())).abs() < 1e-4, "{g}");
        }
    }
    // The text output is the best sequence, as without --alternatives.
    dragoman()
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(["--alternatives", "3"])
        .arg(&files[0])
        .assert()
        .success()
        .stdout(format!("{}\n", defaults.outputs[0].text));
    // More alternatives than beams: a usage error.
    dragoman()
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(["--alternatives", "2", "--beams", "1"])
        .write_stdin("Bonjour.\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--alternatives"));
}

/// `--paragraphs`: a hard-wrapped paragraph is translated as one text (what the line mode
/// gives for its lines joined) and wrapped again to its longest source line; blank lines
/// stay; without the flag every line is still its own text.
#[test]
fn paragraphs_are_translated_whole_and_rewrapped() {
    let (sources, _) = greedy_reference();
    let wrap = |text: &str, width: usize| -> Vec<String> {
        let mut lines: Vec<String> = vec![String::new()];
        for word in text.split_whitespace() {
            let line = lines.last_mut().unwrap();
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(word.to_string());
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        lines
    };
    let paragraphs = [format!("{} {}", sources[5], sources[1]), sources[3].clone()];
    let mut input = String::new();
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            input.push('\n');
        }
        for line in wrap(paragraph, 24) {
            input.push_str(&line);
            input.push('\n');
        }
    }
    assert!(input.lines().count() >= 6, "{input}");
    let run = |args: &[&str], stdin: &str| {
        let out = translate_with(&fixture("fr-en"))
            .args(args)
            .write_stdin(stdin.to_string())
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let output = run(&["--paragraphs"], &input);
    let blocks: Vec<&str> = output.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{output:?}");
    let normalized = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let widest = |block: &str| block.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let source_blocks: Vec<&str> = input.split("\n\n").collect();
    for ((paragraph, block), source) in paragraphs.iter().zip(&blocks).zip(&source_blocks) {
        let whole = run(&[], &format!("{paragraph}\n"));
        assert_eq!(normalized(block), normalized(&whole), "{paragraph}");
        // Line by line, the fragments translate otherwise: the joining is what the flag does.
        let by_line = run(&[], &format!("{source}\n"));
        assert_ne!(normalized(block), normalized(&by_line), "{paragraph}");
        for line in block.lines() {
            assert!(
                line.chars().count() <= widest(source) || !line.contains(' '),
                "{line:?} is wider than {} in {block:?}",
                widest(source)
            );
        }
    }
    // The line mode is unchanged: as many output lines as input lines.
    assert_eq!(run(&[], &input).lines().count(), input.lines().count());
}
