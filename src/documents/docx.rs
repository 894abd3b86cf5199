//! Word documents (`.docx`): a zip of XML parts. The body, headers, footers, footnotes and
//! endnotes are translated (text boxes and tables included: they are paragraphs inside them);
//! every other part is copied unchanged, byte for byte, compressed as it was.
//!
//! A paragraph (`<w:p>`) is a block. Its runs (`<w:r>`) and hyperlinks are spans that share
//! the translation out between them in order, so each target word lands in the run (with
//! its formatting) of the source words it translates, and a hyperlink keeps its target.
//! Tabs and breaks inside a run stay where alignment puts them; runs that hold no text
//! (drawings, footnote references), fields, bookmarks, tracked changes and content controls
//! are islands, copied as they are (a text box's paragraphs inside a drawing are translated
//! as blocks of their own and written into it). Only text and runs change in a part: its
//! root element and namespace declarations stay as written.
//!
//! The archive is checked before anything is unpacked: a part over [`MAX_PART_BYTES`], an
//! archive over [`MAX_TOTAL_BYTES`] or a part compressed more than [`MAX_RATIO`] to one
//! (a decompression bomb) is an error naming the part.

use std::io::{Cursor, Read, Write};
use std::ops::Range;

use quick_xml::events::Event;

use super::{Block, Document, Escape, Segments, Span, TranslatedBlock};
use crate::error::{Error, Result};

/// The largest part read (uncompressed).
pub const MAX_PART_BYTES: u64 = 256 << 20;
/// The largest archive read (all parts uncompressed).
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;
/// The most a part may be compressed (uncompressed to compressed size), past a megabyte.
pub const MAX_RATIO: u64 = 200;
/// The most parts an archive may hold.
const MAX_PARTS: usize = 10_000;

/// Where a `w:t` of a translated run starts again after a tab or break.
const TEXT_OPEN: &str = "<w:t xml:space=\"preserve\">";

pub struct Docx {
    archive: Vec<u8>,
    parts: Vec<Part>,
    /// All parts' blocks, in part order.
    blocks: Vec<Block>,
}

/// One translated XML part.
struct Part {
    name: String,
    xml: String,
    /// Its blocks' places (in the order of their blocks in [`Docx::blocks`]).
    places: Vec<Place>,
}

/// Where a paragraph's block is in its part.
#[derive(Debug, Clone)]
struct Place {
    /// The bytes the paragraph's content (after its properties) covers.
    range: Range<usize>,
    /// Per span, the source bytes of an island (whole runs, fields, drawings…), written with
    /// the translations of any paragraphs inside it.
    islands: Vec<Option<Range<usize>>>,
}

fn is_translated_part(name: &str) -> bool {
    let Some(file) = name.strip_prefix("word/") else {
        return false;
    };
    let stem = file.strip_suffix(".xml").unwrap_or("");
    matches!(stem, "document" | "footnotes" | "endnotes")
        || ["header", "footer"].iter().any(|kind| {
            stem.strip_prefix(kind)
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
}

impl Docx {
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| Error::Input(format!("not a DOCX file (not a zip archive: {e})")))?;
        if zip.len() > MAX_PARTS {
            return Err(Error::Input(format!(
                "{} parts, over the {MAX_PARTS} a document may have",
                zip.len()
            )));
        }
        let mut total = 0u64;
        let mut parts = Vec::new();
        let mut blocks = Vec::new();
        let mut has_body = false;
        for index in 0..zip.len() {
            let mut file = zip
                .by_index(index)
                .map_err(|e| Error::Input(format!("part {index}: cannot read: {e}")))?;
            let name = file
                .name()
                .map_err(|e| Error::Input(format!("part {index}: unreadable name: {e}")))?
                .into_owned();
            let (size, packed) = (file.size(), file.compressed_size().max(1));
            total += size;
            if size > MAX_PART_BYTES {
                return Err(Error::Input(format!(
                    "{name}: {size} bytes uncompressed, over the {} MiB a part may have",
                    MAX_PART_BYTES >> 20
                )));
            }
            if total > MAX_TOTAL_BYTES {
                return Err(Error::Input(format!(
                    "{name}: the archive unpacks to over {} MiB",
                    MAX_TOTAL_BYTES >> 20
                )));
            }
            if size > 1 << 20 && size / packed > MAX_RATIO {
                return Err(Error::Input(format!(
                    "{name}: compressed {}:1, a decompression bomb",
                    size / packed
                )));
            }
            if !is_translated_part(&name) {
                continue;
            }
            has_body |= name == "word/document.xml";
            // Read no more than the header promised, whatever the stream holds.
            let mut xml = Vec::with_capacity(size as usize);
            (&mut file)
                .take(size + 1)
                .read_to_end(&mut xml)
                .map_err(|e| Error::Input(format!("{name}: cannot unpack: {e}")))?;
            if xml.len() as u64 > size {
                return Err(Error::Input(format!("{name}: larger than its header says")));
            }
            let xml = String::from_utf8(xml).map_err(|e| {
                Error::Input(format!(
                    "{name}: not UTF-8 XML (invalid byte at {})",
                    e.utf8_error().valid_up_to()
                ))
            })?;
            let (part_blocks, places) =
                paragraphs(&xml).map_err(|e| Error::Input(format!("{name}: {e}")))?;
            blocks.extend(part_blocks);
            parts.push(Part { name, xml, places });
        }
        if !has_body {
            return Err(Error::Input(
                "word/document.xml: missing (not a Word document)".into(),
            ));
        }
        Ok(Self {
            archive: bytes.to_vec(),
            parts,
            blocks,
        })
    }
}

/// An XML node with its bytes.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// Qualified name (`w:p`) for elements.
    name: String,
    range: Range<usize>,
    /// For a start tag, the index of its end tag.
    end: usize,
    /// `w:fldCharType` of a `w:fldChar`.
    field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Start,
    End,
    Empty,
    /// Character data, entity references decoded.
    Text,
    Other,
}

/// The part's nodes, start tags linked to their end tags.
fn nodes(xml: &str) -> std::result::Result<(Vec<Node>, Vec<String>), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut nodes: Vec<Node> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let start = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("invalid XML at byte {}: {e}", reader.error_position()))?;
        let end = reader.buffer_position() as usize;
        let name_of = |e: &quick_xml::events::BytesStart| {
            String::from_utf8_lossy(e.name().as_ref()).into_owned()
        };
        let (kind, name, field, text) = match &event {
            Event::Eof => break,
            Event::Start(e) => (Kind::Start, name_of(e), None, None),
            Event::Empty(e) => {
                let field = e
                    .try_get_attribute("w:fldCharType")
                    .ok()
                    .flatten()
                    .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                (Kind::Empty, name_of(e), field, None)
            }
            Event::End(e) => (
                Kind::End,
                String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                None,
                None,
            ),
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| format!("invalid text at byte {start}: {e}"))?;
                (Kind::Text, String::new(), None, Some(text.into_owned()))
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                let text = entity(&name)
                    .ok_or_else(|| format!("unknown entity &{name}; at byte {start}"))?;
                (Kind::Text, String::new(), None, Some(text))
            }
            Event::CData(c) => (
                Kind::Text,
                String::new(),
                None,
                Some(String::from_utf8_lossy(c.as_ref()).into_owned()),
            ),
            _ => (Kind::Other, String::new(), None, None),
        };
        let index = nodes.len();
        nodes.push(Node {
            kind,
            name,
            range: start..end,
            end: index,
            field,
        });
        texts.push(text.unwrap_or_default());
        match kind {
            Kind::Start => stack.push(index),
            Kind::End => {
                let open = stack.pop().ok_or_else(|| {
                    format!("invalid XML: an end tag without a start at byte {start}")
                })?;
                nodes[open].end = index;
            }
            _ => {}
        }
    }
    if let Some(&open) = stack.last() {
        return Err(format!(
            "invalid XML: <{}> at byte {} is never closed",
            nodes[open].name, nodes[open].range.start
        ));
    }
    Ok((nodes, texts))
}

/// The predefined XML entities and character references.
fn entity(name: &str) -> Option<String> {
    Some(match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?.to_string()
        }
    })
}

/// A paragraph being read.
struct Builder {
    text: String,
    spans: Vec<Span>,
    islands: Vec<Option<Range<usize>>>,
    /// Inside a complex field (between its begin and end characters): runs are islands.
    field_depth: usize,
    /// The hyperlink and run being read (what new spans are inside).
    containers: Vec<usize>,
}

impl Builder {
    fn island(&mut self, range: Range<usize>, xml: &str) {
        let at = self.text.len();
        self.spans.push(Span {
            range: at..at,
            open: xml[range.clone()].to_string(),
            close: String::new(),
            protected: true,
            parent: self.containers.last().copied(),
        });
        self.islands.push(Some(range));
    }

    /// A `w:t`-internal island: the text element closed around it and opened again.
    fn inline_island(&mut self, raw: &str) {
        let at = self.text.len();
        self.spans.push(Span {
            range: at..at,
            open: format!("</w:t>{raw}{TEXT_OPEN}"),
            close: String::new(),
            protected: true,
            parent: self.containers.last().copied(),
        });
        self.islands.push(None);
    }
}

/// The children of node `parent` (indices), skipping their subtrees.
fn children(nodes: &[Node], parent: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = parent + 1;
    while i < nodes[parent].end {
        out.push(i);
        i = if nodes[i].kind == Kind::Start {
            nodes[i].end + 1
        } else {
            i + 1
        };
    }
    out
}

/// Whether a subtree holds an element named `name`.
fn holds(nodes: &[Node], at: usize, name: &str) -> bool {
    let end = if nodes[at].kind == Kind::Start {
        nodes[at].end
    } else {
        at
    };
    nodes[at..=end].iter().any(|n| n.name == name)
}

/// Every paragraph of a part as a block, innermost first where paragraphs nest (a text box
/// inside a drawing inside a run).
fn paragraphs(xml: &str) -> std::result::Result<(Vec<Block>, Vec<Place>), String> {
    let (nodes, texts) = nodes(xml)?;
    let mut found: Vec<(usize, Block, Place)> = Vec::new();
    for (p, node) in nodes.iter().enumerate() {
        if node.kind != Kind::Start || node.name != "w:p" {
            continue;
        }
        let mut builder = Builder {
            text: String::new(),
            spans: Vec::new(),
            islands: Vec::new(),
            field_depth: 0,
            containers: Vec::new(),
        };
        let kids = children(&nodes, p);
        let mut content_start = node.range.end;
        for &c in &kids {
            let child = &nodes[c];
            let whole = child.range.start..nodes[child.end].range.end;
            match child.name.as_str() {
                "w:pPr" => content_start = whole.end,
                "w:r" => run(&nodes, &texts, xml, c, &mut builder),
                "w:hyperlink" if child.kind == Kind::Start => {
                    let at = builder.text.len();
                    let span = builder.spans.len();
                    builder.spans.push(Span {
                        range: at..at,
                        open: xml[child.range.clone()].to_string(),
                        close: xml[nodes[child.end].range.clone()].to_string(),
                        protected: false,
                        parent: None,
                    });
                    builder.islands.push(None);
                    builder.containers.push(span);
                    for inner in children(&nodes, c) {
                        let inner_node = &nodes[inner];
                        if inner_node.name == "w:r" {
                            run(&nodes, &texts, xml, inner, &mut builder);
                        } else {
                            let range = inner_node.range.start..nodes[inner_node.end].range.end;
                            builder.island(range, xml);
                        }
                    }
                    builder.spans[span].range.end = builder.text.len();
                    builder.containers.pop();
                }
                _ => builder.island(whole, xml),
            }
        }
        let content = content_start..nodes[node.end].range.start;
        let readable: String = {
            let mut text = builder.text.clone();
            for span in builder.spans.iter().filter(|s| s.protected).rev() {
                text.replace_range(span.range.clone(), "");
            }
            text
        };
        if !readable.chars().any(char::is_alphanumeric) {
            continue;
        }
        found.push((
            p,
            Block {
                text: builder.text,
                spans: builder.spans,
                escape: Escape::HtmlText,
                segments: Segments::Nested,
            },
            Place {
                range: content,
                islands: builder.islands,
            },
        ));
    }
    // Inner paragraphs before the paragraphs holding them, so their translations are ready
    // to be written into the outer ones' islands.
    found.sort_by_key(|(p, _, _)| std::cmp::Reverse(depth(&nodes, *p)));
    Ok(found.into_iter().map(|(_, b, place)| (b, place)).unzip())
}

/// How many `w:p` elements enclose node `at`.
fn depth(nodes: &[Node], at: usize) -> usize {
    nodes[..at]
        .iter()
        .filter(|n| n.kind == Kind::Start && n.name == "w:p")
        .filter(|n| n.end > at)
        .count()
}

/// A run added to a paragraph: a span over its text, or a whole island when it holds
/// anything but text, tabs and breaks (or sits inside a field).
fn run(nodes: &[Node], texts: &[String], xml: &str, r: usize, builder: &mut Builder) {
    let node = &nodes[r];
    let whole = node.range.start..nodes[node.end].range.end;
    if node.kind != Kind::Start {
        builder.island(whole, xml);
        return;
    }
    let kids = children(nodes, r);
    let begins = kids
        .iter()
        .filter(|&&k| nodes[k].field.as_deref() == Some("begin"))
        .count();
    let ends = kids
        .iter()
        .filter(|&&k| nodes[k].field.as_deref() == Some("end"))
        .count();
    let in_field = builder.field_depth > 0 || begins > 0;
    builder.field_depth = (builder.field_depth + begins).saturating_sub(ends);
    let textual = |k: usize| {
        matches!(
            nodes[k].name.as_str(),
            "w:rPr" | "w:t" | "w:tab" | "w:br" | "w:cr" | "w:noBreakHyphen" | "w:softHyphen"
        ) && !holds(nodes, k, "w:p")
    };
    let has_text = kids.iter().any(|&k| nodes[k].name == "w:t");
    if in_field || !has_text || !kids.iter().all(|&k| textual(k)) {
        builder.island(whole, xml);
        return;
    }
    let first_content = kids
        .iter()
        .find(|&&k| nodes[k].name != "w:rPr")
        .map_or(nodes[node.end].range.start, |&k| nodes[k].range.start);
    let at = builder.text.len();
    let span = builder.spans.len();
    builder.spans.push(Span {
        range: at..at,
        open: format!("{}{TEXT_OPEN}", &xml[node.range.start..first_content]),
        close: format!("</w:t>{}", &xml[nodes[node.end].range.clone()]),
        protected: false,
        parent: builder.containers.last().copied(),
    });
    builder.islands.push(None);
    builder.containers.push(span);
    for &k in &kids {
        let kid = &nodes[k];
        match kid.name.as_str() {
            "w:rPr" => {}
            "w:t" if kid.kind == Kind::Start => {
                for text in &texts[k + 1..kid.end] {
                    builder.text.push_str(text);
                }
            }
            "w:t" => {}
            // A tab or a break: white space for the model, an element in the output.
            _ => {
                builder.text.push(' ');
                let range = kid.range.start..nodes[kid.end].range.end;
                builder.inline_island(&xml[range]);
            }
        }
    }
    builder.spans[span].range.end = builder.text.len();
    builder.containers.pop();
}

impl Document for Docx {
    fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn write(&self, translated: &[TranslatedBlock], _language: &str) -> Vec<u8> {
        let mut rewritten: Vec<(String, String)> = Vec::new();
        let mut next = 0;
        for part in &self.parts {
            let count = part.places.len();
            let blocks = &self.blocks[next..next + count];
            let translations =
                &translated[next.min(translated.len())..(next + count).min(translated.len())];
            next += count;
            rewritten.push((part.name.clone(), write_part(part, blocks, translations)));
        }
        // Unchanged parts are copied compressed as they are; translated ones deflated anew.
        let mut out = Cursor::new(Vec::new());
        let written = (|| -> zip::result::ZipResult<()> {
            let mut source = zip::ZipArchive::new(Cursor::new(self.archive.as_slice()))?;
            let mut zip = zip::ZipWriter::new(&mut out);
            for index in 0..source.len() {
                let file = source.by_index_raw(index)?;
                let name = file.name().map(|n| n.into_owned()).unwrap_or_default();
                match rewritten.iter().find(|(rewritten, _)| *rewritten == name) {
                    Some((_, xml)) => {
                        let options = zip::write::SimpleFileOptions::default()
                            .compression_method(zip::CompressionMethod::Deflated)
                            .last_modified_time(file.last_modified().unwrap_or_default());
                        drop(file);
                        zip.start_file(name.as_str(), options)?;
                        zip.write_all(xml.as_bytes())?;
                    }
                    None => zip.raw_copy_file(file)?,
                }
            }
            zip.finish()?;
            Ok(())
        })();
        match written {
            Ok(()) => out.into_inner(),
            // The archive was read once already; writing it back cannot meet a new fault.
            Err(_) => self.archive.clone(),
        }
    }
}

/// A part with each paragraph's content replaced by its translation; inner paragraphs
/// (text boxes) are written into the islands that hold them.
fn write_part(part: &Part, blocks: &[Block], translated: &[TranslatedBlock]) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for ((place, block), translation) in part.places.iter().zip(blocks).zip(translated) {
        let mut block = block.clone();
        for (span, island) in block.spans.iter_mut().zip(&place.islands) {
            if let Some(range) = island {
                span.open = with_edits(&part.xml, range, &edits);
            }
        }
        edits.push((place.range.clone(), translation.render(&block)));
    }
    // Outermost edits only: the inner ones are inside them already.
    let top: Vec<&(Range<usize>, String)> = edits
        .iter()
        .filter(|(r, _)| {
            !edits
                .iter()
                .any(|(o, _)| o != r && o.start <= r.start && r.end <= o.end)
        })
        .collect();
    let top = top.into_iter().map(|(r, w)| (r, w.as_str()));
    super::splice(&part.xml, 0..part.xml.len(), top)
}

/// `xml[range]` with the edits inside it applied.
fn with_edits(xml: &str, range: &Range<usize>, edits: &[(Range<usize>, String)]) -> String {
    super::splice(
        xml,
        range.clone(),
        edits.iter().map(|(r, w)| (r, w.as_str())),
    )
}
