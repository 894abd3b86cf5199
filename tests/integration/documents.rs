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

/// `-v` says where the time went: a document with spans pays for the alignment pass, plain
/// text for none.
#[test]
fn verbose_reports_the_time_of_the_alignment_pass() {
    let (s, _) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let alignment_seconds = |name: &str, content: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = dragoman()
            .args(["translate", "-v", "--model"])
            .arg(fixture("fr-en"))
            .args(GREEDY)
            .arg(&path)
            .assert()
            .success();
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        let line = stderr
            .lines()
            .find(|l| l.starts_with("dragoman: time in encoding "))
            .unwrap_or_else(|| panic!("no stage times: {stderr}"));
        let seconds = |stage: &str| -> f64 {
            let rest = &line[line.find(stage).unwrap_or_else(|| panic!("{line}")) + stage.len()..];
            rest.trim_start()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(seconds("generation") > 0.0, "{line}");
        seconds("word alignment")
    };
    assert!(alignment_seconds("page.html", format!("<p>{} <b>{}</b></p>\n", s[1], s[3])) > 0.0);
    assert_eq!(alignment_seconds("plain.txt", format!("{}\n", s[1])), 0.0);
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
    assert!(error.contains("\"docx\" is a binary format"), "{error}");
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

/// A Word document's parts: (name, bytes, stored uncompressed).
pub(crate) type Parts = Vec<(&'static str, Vec<u8>, bool)>;

pub(crate) fn docx_bytes(parts: &Parts) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes, stored) in parts {
        let method = if *stored {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// Each part of a DOCX: name → (bytes, compression method).
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, (Vec<u8>, zip::CompressionMethod)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut file = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            (
                file.name().unwrap().into_owned(),
                (data, file.compression()),
            )
        })
        .collect()
}

const W: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\" xmlns:wps=\"http://schemas.microsoft.com/office/word/2010/wordprocessingShape\" mc:Ignorable=\"w14\" xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"";

pub(crate) fn word_document(s: &[String]) -> Parts {
    let words: Vec<&str> = s[5].split(' ').collect();
    let run = |props: &str, text: &str| {
        format!("<w:r>{props}<w:t xml:space=\"preserve\">{text}</w:t></w:r>")
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<w:document {W}><w:body>\
<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr>{title}</w:p>\
<w:p>{a}{b}<w:hyperlink r:id=\"rId9\">{c}</w:hyperlink>{d}<w:bookmarkStart w:id=\"0\" w:name=\"x\"/><w:bookmarkEnd w:id=\"0\"/></w:p>\
<w:tbl><w:tr><w:tc><w:p>{cell}</w:p></w:tc></w:tr></w:tbl>\
<w:p><w:r><w:drawing><wps:txbx><w:txbxContent><w:p>{boxed}</w:p></w:txbxContent></wps:txbx></w:drawing></w:r></w:p>\
<w:p><w:r><w:fldChar w:fldCharType=\"begin\"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r><w:r><w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>1</w:t></w:r><w:r><w:fldChar w:fldCharType=\"end\"/></w:r>{after}</w:p>\
<w:sectPr/></w:body></w:document>",
        title = run("", &s[0]),
        a = run("<w:rPr><w:i/></w:rPr>", &format!("{} ", words[..3].join(" "))),
        b = run("<w:rPr><w:b/></w:rPr>", &format!("{} ", words[3..6].join(" "))),
        c = run("<w:rPr><w:rStyle w:val=\"Hyperlink\"/></w:rPr>", &words[6..9].join(" ")),
        d = run("", &format!(" {}", words[9..].join(" "))),
        cell = run("", &s[2].replace('?', "&#63;")),
        boxed = run("", &s[1]),
        after = run("", &format!(" {}", s[3])),
    );
    let header = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:hdr {W}><w:p>{}</w:p></w:hdr>",
        run("", &s[4].replace('«', "&#171;"))
    );
    vec![
        ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>".to_vec(), false),
        ("word/document.xml", body.into_bytes(), false),
        ("word/header1.xml", header.into_bytes(), false),
        ("word/_rels/document.xml.rels", b"<Relationships><Relationship Id=\"rId9\" Target=\"https://exemple.fr\" TargetMode=\"External\"/></Relationships>".to_vec(), false),
        ("word/media/image1.png", (0..=255u8).cycle().take(3000).collect(), true),
    ]
}

#[test]
fn docx_paragraphs_are_translated_and_every_other_part_is_copied() {
    let (s, _) = greedy_reference();
    let parts = word_document(&s);
    let source = docx_bytes(&parts);
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("lettre.docx"), dir.path().join("out.docx"));
    std::fs::write(&input, &source).unwrap();
    dragoman()
        .arg("translate")
        .arg("--model")
        .arg(fixture("fr-en"))
        .args(GREEDY)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .assert()
        .success()
        .stdout("");
    let translated = std::fs::read(&output).unwrap();
    let (before, after) = (unzip(&source), unzip(&translated));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for name in [
        "[Content_Types].xml",
        "word/_rels/document.xml.rels",
        "word/media/image1.png",
    ] {
        assert_eq!(before[name], after[name], "{name} copied unchanged");
    }
    let xml = String::from_utf8(after["word/document.xml"].0.clone()).unwrap();
    // The declaration, root element and namespaces as written.
    let root_end = xml.find("<w:body>").unwrap();
    let source_xml = String::from_utf8(parts[1].1.clone()).unwrap();
    assert_eq!(xml[..root_end], source_xml[..root_end]);
    for kept in [
        "<w:pPr><w:pStyle w:val=\"Title\"/></w:pPr>",
        "<w:hyperlink r:id=\"rId9\"><w:r><w:rPr><w:rStyle w:val=\"Hyperlink\"/></w:rPr>",
        "<w:rPr><w:i/></w:rPr>",
        "<w:rPr><w:b/></w:rPr>",
        "<w:bookmarkStart w:id=\"0\" w:name=\"x\"/><w:bookmarkEnd w:id=\"0\"/>",
        "<w:instrText> PAGE </w:instrText>",
        "<w:r><w:t>1</w:t></w:r>",
        "<w:sectPr/></w:body></w:document>",
    ] {
        assert!(xml.contains(kept), "{kept} not in {xml}");
    }
    // The well-formedness a reader needs: the text read back is the plain-text translation
    // of the source's paragraphs (the field's paragraph aside: it holds an island).
    let read = |bytes: &[u8]| -> Vec<String> {
        let document = Format::Docx.read_bytes(bytes).unwrap();
        document
            .blocks()
            .iter()
            .filter(|b| {
                !b.spans
                    .iter()
                    .any(|s| s.protected && !s.open.starts_with("</w:t>"))
            })
            .map(|b| normalised(&b.text))
            .collect()
    };
    let want = translated_as_plain_text(&read(&source));
    assert_eq!(read(&translated), want);
    // Title, table cell, text box, header (the paragraphs with a bookmark and a field hold
    // islands, and are checked by their bytes above).
    assert_eq!(want.len(), 4, "{want:?}");
}

#[test]
fn a_docx_that_is_not_one_is_one_line_naming_the_file_and_the_part() {
    let (s, _) = greedy_reference();
    let dir = tempfile::tempdir().unwrap();
    let mut bomb = word_document(&s);
    bomb.push(("word/media/zeros.bin", vec![0; 8 << 20], false));
    let mut bodiless = word_document(&s);
    bodiless.retain(|(name, _, _)| *name != "word/document.xml");
    let mut broken = word_document(&s);
    broken[1].1 = b"<w:document><w:body><w:p>".to_vec();
    for (file, bytes, message) in [
        (
            "texte.docx",
            b"pas un zip".to_vec(),
            "texte.docx: not a DOCX file (not a zip archive",
        ),
        (
            "sans.docx",
            docx_bytes(&bodiless),
            "sans.docx: word/document.xml: missing",
        ),
        (
            "bombe.docx",
            docx_bytes(&bomb),
            "bombe.docx: word/media/zeros.bin: compressed",
        ),
        (
            "cassé.docx",
            docx_bytes(&broken),
            "cassé.docx: word/document.xml: invalid XML",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let output = dir.path().join("out.docx");
        let out = dragoman()
            .arg("translate")
            .arg("--model")
            .arg(fixture("fr-en"))
            .arg(&path)
            .arg("-o")
            .arg(&output)
            .assert()
            .failure();
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(message), "{message:?} not in {stderr}");
        assert!(!output.exists(), "no partial output");
    }
}
