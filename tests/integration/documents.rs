//! Documents end to end: the real binary on Markdown and HTML files the tests write, each
//! checked against the invariant that its text with markup removed is what `dragoman
//! translate` makes of that text as plain text, and that every byte outside the text is kept.

use std::path::Path;

use dragoman::documents::Format;

use crate::cli::dragoman;
use crate::common::{fixture, greedy_reference};

const GREEDY: [&str; 4] = ["--beams", "1", "--max-new-tokens", "20"];

fn translate(args: &[&str], file: &Path) -> String {
    let out = dragoman()
        .arg("translate")
        .arg("--model")
        .arg(fixture("fr-en"))
        .args(GREEDY)
        .args(args)
        .arg(file)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// What `dragoman translate` prints for each of `texts` as a line of plain text.
fn translated_as_plain_text(texts: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.txt");
    let lines: Vec<String> = texts.iter().map(|t| normalised(t)).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    translate(&[], &path).lines().map(normalised).collect()
}

fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The invariant: the output's text with markup removed equals the plain-text translation
/// of the source's text with markup removed (blocks holding an island excepted: on both
/// sides, those with a protected span are left out).
fn assert_text_is_plain_translation(format: Format, source: &str, output: &str) {
    let without_islands = |text: &str| -> Vec<String> {
        let document = format.read(text).unwrap();
        document
            .blocks()
            .iter()
            .filter(|b| !b.spans.iter().any(|s| s.protected && !s.range.is_empty()))
            .map(|b| normalised(&b.text))
            .collect()
    };
    let want = translated_as_plain_text(&without_islands(source));
    let got = without_islands(output);
    assert_eq!(got, want, "{output}");
}

#[test]
fn markdown_sentences_are_translated_whole_with_their_spans_placed() {
    let (s, _) = greedy_reference();
    // A sentence cut by bold and a link, over two lines; a heading; a list; code.
    let bold_words: Vec<&str> = s[5].split(' ').collect();
    let source = format!(
        "# {}\n\n{} **{}** {}\n[{}](https://exemple.fr/a \"titre\") {}\n\n- {}\n\n```\n{}\n```\n",
        s[2],
        bold_words[..2].join(" "),
        bold_words[2..4].join(" "),
        bold_words[4..6].join(" "),
        bold_words[6..8].join(" "),
        bold_words[8..].join(" "),
        s[3],
        s[1],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("article.md");
    std::fs::write(&path, &source).unwrap();
    let output = translate(&[], &path);
    assert_text_is_plain_translation(Format::Markdown, &source, &output);
    // The markup is all there, balanced, the link's destination and title as written.
    assert_eq!(output.matches("**").count(), 2, "{output}");
    assert!(
        output.contains("](https://exemple.fr/a \"titre\")"),
        "{output}"
    );
    assert!(
        output.starts_with("# ") && output.contains("\n\n- "),
        "{output}"
    );
    assert!(
        output.ends_with(&format!("```\n{}\n```\n", s[1])),
        "{output}"
    );
    // The paragraph is one sentence for the model: its translation is not that of its
    // lines taken one at a time.
    let lines: Vec<String> = source
        .lines()
        .nth(2)
        .into_iter()
        .map(String::from)
        .collect();
    let by_line = translated_as_plain_text(&lines);
    assert!(!output.contains(&by_line[0]), "{output}");
}

#[test]
fn html_keeps_every_byte_outside_its_text() {
    let (s, _) = greedy_reference();
    let words: Vec<&str> = s[3].split(' ').collect();
    let source = format!(
        "<!DOCTYPE html>\n<!-- garder -->\n<html lang=\"fr\">\n<head><meta charset=\"utf-8\"><title>{title}</title>\n<script>var t = \"{title}\";</script></head>\n<body>\n<p class=\"intro\">{a} <b>{b}</b> <a href=\"/x?a=1&amp;b=2\" title=\"{title}\">{c}</a></p>\n<p>{island} <code>grand()</code>.</p>\n<pre>{title}</pre>\n<p translate=\"no\">{title}</p>\n<img src=\"i.png\" alt=\"{title}\">\n</body>\n</html>\n",
        title = s[0],
        a = words[..2].join(" "),
        b = words[2..4].join(" "),
        c = words[4..].join(" "),
        island = s[2].trim_end_matches([' ', '?']),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    std::fs::write(&path, &source).unwrap();
    let output = translate(&[], &path);
    assert_text_is_plain_translation(Format::Html, &source, &output);
    let plain = translated_as_plain_text(&[s[0].clone()]);
    for kept in [
        "<!DOCTYPE html>\n<!-- garder -->\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>",
        &format!("<script>var t = \"{}\";</script></head>", s[0]),
        "<p class=\"intro\">",
        "<a href=\"/x?a=1&amp;b=2\" title=\"",
        "<code>grand()</code>",
        &format!("<pre>{}</pre>", s[0]),
        &format!("<p translate=\"no\">{}</p>", s[0]),
        &format!("<img src=\"i.png\" alt=\"{}\">", plain[0]),
        "</body>\n</html>\n",
    ] {
        assert!(output.contains(kept), "{kept:?} not in {output}");
    }
    for tag in ["b", "a", "p", "code", "title"] {
        assert_eq!(
            output.matches(&format!("<{tag}>")).count()
                + output.matches(&format!("<{tag} ")).count(),
            output.matches(&format!("</{tag}>")).count(),
            "<{tag}> balanced in {output}"
        );
    }
}

#[test]
fn malformed_html_is_read_as_a_browser_reads_it() {
    let (s, _) = greedy_reference();
    let source = format!("<p>{} <b>{}\n<p>{}</i>\n<!-- ouvert", s[1], s[0], s[2]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.htm");
    std::fs::write(&path, &source).unwrap();
    let output = translate(&[], &path);
    assert!(
        output.contains("<b>") && output.contains("</i>") && output.ends_with("<!-- ouvert"),
        "{output}"
    );
    assert_text_is_plain_translation(Format::Html, &source, &output);
}

#[test]
fn json_sentences_carry_their_word_alignment() {
    let (s, _) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    std::fs::write(&path, format!("<p>{} <em>{}</em></p>\n", s[1], s[3])).unwrap();
    let out = translate(&["--format", "json"], &path);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sentences = json[0]["paragraphs"][0]["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 2);
    for sentence in sentences {
        let source_words = sentence["source"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count();
        let target_words = sentence["target"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count();
        let pairs = sentence["alignment"].as_array().unwrap();
        assert!(!pairs.is_empty(), "{sentence}");
        for pair in pairs {
            let (a, b) = (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap());
            assert!(
                (a as usize) < source_words && (b as usize) < target_words,
                "{pair}"
            );
        }
        // Every target word that has text is aligned to some source word.
        let aligned: std::collections::BTreeSet<u64> =
            pairs.iter().map(|p| p[1].as_u64().unwrap()).collect();
        assert_eq!(aligned.len(), target_words, "{sentence}");
    }
}

#[test]
fn serve_answers_a_document_as_the_cli_prints_it() {
    let (s, _) = greedy_reference();
    let page = format!("<html><p>{} <i>{}</i></p></html>", s[1], s[3]);
    let markdown = format!("# {}\n\n{} **{}**\n", s[0], s[1], s[3]);
    let dir = tempfile::tempdir().unwrap();
    let (html_path, md_path) = (dir.path().join("p.html"), dir.path().join("p.md"));
    std::fs::write(&html_path, &page).unwrap();
    std::fs::write(&md_path, &markdown).unwrap();
    let marian = fixture("fr-en").display().to_string();
    let request = |id: u32, format: &str, text: &str| {
        serde_json::json!({"id": id, "task": "translate", "format": format, "text": text,
                           "model": marian, "beams": 1, "max_new_tokens": 20})
        .to_string()
    };
    let input = [
        request(1, "html", &page),
        request(2, "markdown", &markdown),
        request(3, "docx", "x"),
    ]
    .join("\n")
        + "\n";
    let out = dragoman()
        .args(["serve", "--stdio"])
        .write_stdin(input)
        .assert()
        .success();
    let answers: Vec<serde_json::Value> = String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers[0]["text"], translate(&[], &html_path));
    assert_eq!(
        answers[1]["text"],
        translate(&[], &md_path).trim_end_matches('\n')
    );
    let error = answers[2]["error"].as_str().unwrap();
    assert!(error.contains("unknown input format \"docx\""), "{error}");
}

/// The subtitle file's cue texts, whitespace normalised, joined.
fn all_cue_text(format: Format, source: &str) -> String {
    let document = format.read(source).unwrap();
    let texts: Vec<String> = document
        .blocks()
        .iter()
        .map(|b| normalised(&b.text))
        .collect();
    texts.join(" ")
}

#[test]
fn srt_cues_keep_numbers_and_timings_and_a_sentence_runs_across_them() {
    let (s, _) = greedy_reference();
    let words: Vec<&str> = s[3].split(' ').collect();
    let (half, rest) = words.split_at(words.len() / 2);
    let timings = [
        "00:00:01,000 --> 00:00:02,500",
        "00:00:02,600 --> 00:00:04,000",
        "00:00:04,100 --> 00:00:06,000 X1:100 X2:600",
    ];
    let source = format!(
        "1\r\n{}\r\n{}\r\n\r\n2\r\n{}\r\n{}\r\n\r\n3\r\n{}\r\n- {}\r\n- {}\r\n",
        timings[0],
        half.join(" "),
        timings[1],
        rest.join(" "),
        timings[2],
        s[0],
        s[2]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("film.srt");
    std::fs::write(&path, &source).unwrap();
    let output = translate(&[], &path);
    // Numbers, timings and blank lines as they were; the same number of cues.
    let frame = |text: &str| -> Vec<String> {
        text.split("\r\n\r\n")
            .map(|cue| cue.split("\r\n").take(2).collect::<Vec<_>>().join("|"))
            .collect()
    };
    assert_eq!(frame(&output), frame(&source), "{output}");
    // The first sentence was translated whole, over the first two cues.
    let document = Format::Srt.read(&source).unwrap();
    let texts: Vec<String> = document
        .blocks()
        .iter()
        .map(|b| normalised(&b.text))
        .collect();
    assert_eq!(texts[0], normalised(&s[3]), "one block for the sentence");
    let want = translated_as_plain_text(&texts).join(" ");
    assert_eq!(all_cue_text(Format::Srt, &output), want);
    // Lines of at most 42 characters, where the words allow (one word may be longer).
    for line in output.split("\r\n").filter(|l| !l.contains("-->")) {
        assert!(
            line.chars().count() <= 42 || !line.contains(' '),
            "{line:?} is longer than 42"
        );
    }
}

#[test]
fn vtt_headers_notes_and_settings_are_copied_and_entities_decoded() {
    let (s, _) = greedy_reference();
    let source = format!(
        "WEBVTT\n\nNOTE garder\n\nSTYLE\n::cue {{ color: yellow }}\n\nintro\n00:01.000 --> 00:03.000 align:start\n<i>{}</i> &amp;\n{}\n",
        s[1], s[3]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("film.vtt");
    std::fs::write(&path, &source).unwrap();
    let output = translate(&[], &path);
    assert!(
        output.starts_with("WEBVTT\n\nNOTE garder\n\nSTYLE\n::cue { color: yellow }\n\nintro\n00:01.000 --> 00:03.000 align:start\n"),
        "{output}"
    );
    assert_eq!(
        output.matches("<i>").count(),
        output.matches("</i>").count()
    );
    let texts: Vec<String> = Format::Vtt
        .read(&source)
        .unwrap()
        .blocks()
        .iter()
        .map(|b| normalised(&b.text))
        .collect();
    assert!(texts[0].contains(" & "), "decoded: {texts:?}");
    assert_eq!(
        all_cue_text(Format::Vtt, &output),
        translated_as_plain_text(&texts).join(" ")
    );
}

#[test]
fn a_broken_timestamp_is_one_line_naming_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cassé.srt");
    std::fs::write(
        &path,
        "1\n00:00:01,000 --> 00:00:02,000\nMerci !\n\n2\n00:00:03 --> 00:00:04,000\nOui.\n",
    )
    .unwrap();
    let out_file = dir.path().join("out.srt");
    let out = dragoman()
        .arg("translate")
        .arg("--model")
        .arg(fixture("fr-en"))
        .arg(&path)
        .arg("-o")
        .arg(&out_file)
        .assert()
        .failure();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cassé.srt") && stderr.contains("line 6: invalid timestamp"),
        "{stderr}"
    );
    assert!(out.get_output().stdout.is_empty());
    assert!(!out_file.exists(), "no partial output");
}
