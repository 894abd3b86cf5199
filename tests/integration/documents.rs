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
