//! Documents: each format is one file that reads a document into [`Block`]s and writes the
//! translated blocks back into the same document, every byte outside them unchanged.
//!
//! A block (a paragraph, a heading, a table cell, an attribute value) is the text a reader
//! reads, markup removed, with the inline formatting over it as [`Span`]s. Its text is
//! segmented and translated like plain text; the spans are then carried onto the words that
//! translate them ([`crate::text::transfer`]) and written around them with their own bytes.
//! A protected span (inline code, a URL) is an island: its bytes are copied as they came
//! and take the place of the words its text was translated to.
//!
//! Adding a format costs one file here and one [`Format`] variant.

mod cues;
pub mod docx;
pub mod html;
pub mod markdown;
pub mod srt;
pub mod text;
pub mod vtt;

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
pub use crate::text::transfer::Segments;
use crate::text::{alignment, transfer};

/// A run of text translated as one.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// What the reader reads, markup removed (entities and escapes decoded).
    pub text: String,
    /// Inline formatting over byte ranges of `text`: properly nested, in document order (a
    /// parent before its children).
    pub spans: Vec<Span>,
    /// How the format writes text (HTML's entities, Markdown's backslashes).
    pub escape: Escape,
    /// Which spans share the translation out between them, in order (subtitle cues, Word
    /// runs), rather than being formatting placed where its words went.
    pub segments: Segments,
}

/// Inline formatting: the bytes written before and after the words it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub range: Range<usize>,
    pub open: String,
    pub close: String,
    /// An island: `open` is its whole source (close is empty), written in place of the
    /// words its text translates to; nothing in it is translated.
    pub protected: bool,
    /// The span it is inside (an earlier one). Ranges alone cannot tell: an empty span at
    /// the end of a bold word may be inside the bold or just after it.
    pub parent: Option<usize>,
}

/// How translated text is written into a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (plain text).
    None,
    /// Markdown: the characters that would start markup get a backslash.
    Markdown,
    /// HTML text: `&`, `<`, `>` as entities.
    HtmlText,
    /// An HTML attribute value in double quotes: `&`, `"` as entities.
    HtmlAttribute,
}

impl Escape {
    pub fn apply(self, text: &str) -> Cow<'_, str> {
        let special: &[char] = match self {
            Escape::None => return Cow::Borrowed(text),
            Escape::Markdown => &['\\', '*', '_', '`', '[', ']', '<', '|', '~'],
            Escape::HtmlText => &['&', '<', '>'],
            Escape::HtmlAttribute => &['&', '"', '<', '>'],
        };
        if !text.contains(special) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match (self, c) {
                (Escape::Markdown, c) => {
                    if special.contains(&c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
                (_, '&') => out.push_str("&amp;"),
                (_, '<') => out.push_str("&lt;"),
                (_, '>') => out.push_str("&gt;"),
                (_, '"') => out.push_str("&quot;"),
                (_, c) => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

/// A block's translation: the translated text (laid out as plain text lays out a line) and
/// where each of the block's spans goes in it.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedBlock {
    pub text: String,
    pub spans: Vec<Range<usize>>,
}

impl TranslatedBlock {
    /// The source block's spans carried onto `target` by the sentences' word alignment.
    pub fn place(block: &Block, target: String, sentences: &[transfer::AlignedSentence]) -> Self {
        let ranges: Vec<Range<usize>> = block.spans.iter().map(|s| s.range.clone()).collect();
        let parents: Vec<Option<usize>> = block.spans.iter().map(|s| s.parent).collect();
        let mut spans = transfer::transfer(
            &block.text,
            &ranges,
            &parents,
            &target,
            sentences,
            block.segments,
        );
        // An island takes the place of no more target words than it has words itself: the
        // attention of a word the model copies can spread over its neighbours.
        for (span, placed) in block.spans.iter().zip(&mut spans) {
            if span.protected {
                let most = alignment::words(&block.text[span.range.clone()])
                    .len()
                    .max(1);
                let words = alignment::words(&target[placed.clone()]);
                if let Some(last) = words.get(most - 1).filter(|_| words.len() > most) {
                    placed.end = placed.start + last.end;
                }
            }
        }
        Self {
            text: target,
            spans,
        }
    }

    /// The block as the format writes it: the text escaped, each span's bytes around the
    /// words it landed on, each island in place of its words.
    pub fn render(&self, block: &Block) -> String {
        let parents: Vec<Option<usize>> = block.spans.iter().map(|s| s.parent).collect();
        let mut out = String::with_capacity(self.text.len() * 2);
        self.render_within(block, &parents, None, 0..self.text.len(), &mut out);
        out
    }

    /// What span `span` holds, rendered (a subtitle cue's share of its block).
    pub fn render_span(&self, block: &Block, span: usize) -> String {
        let parents: Vec<Option<usize>> = block.spans.iter().map(|s| s.parent).collect();
        let mut out = String::new();
        if let Some(range) = self.spans.get(span) {
            self.render_within(block, &parents, Some(span), range.clone(), &mut out);
        }
        out
    }

    fn render_within(
        &self,
        block: &Block,
        parents: &[Option<usize>],
        parent: Option<usize>,
        range: Range<usize>,
        out: &mut String,
    ) {
        let mut children: Vec<usize> = (0..parents.len())
            .filter(|&i| parents[i] == parent && i < self.spans.len())
            .collect();
        children.sort_by_key(|&i| (self.spans[i].start, self.spans[i].end, i));
        let text = |r: Range<usize>| self.text.get(r).unwrap_or_default();
        let mut cursor = range.start;
        for child in children {
            let placed = self.spans[child].clone();
            let span = &block.spans[child];
            let start = placed.start.clamp(cursor, range.end);
            let end = placed.end.clamp(start, range.end);
            out.push_str(&block.escape.apply(text(cursor..start)));
            out.push_str(&span.open);
            if !span.protected {
                self.render_within(block, parents, Some(child), start..end, out);
            }
            out.push_str(&span.close);
            cursor = end;
        }
        out.push_str(&block.escape.apply(text(cursor..range.end)));
    }
}

/// A document read into blocks.
pub trait Document {
    fn blocks(&self) -> &[Block];

    /// The document with every block replaced by its translation (in the order of
    /// [`Document::blocks`]), marked as being in `language` where the format says so.
    fn write(&self, translated: &[TranslatedBlock], language: &str) -> Vec<u8>;

    /// Block `index`'s translation as plain text, laid out as the format lays it out (JSON
    /// output's paragraph `target`).
    fn plain_target(&self, _index: usize, text: &str) -> String {
        text.to_string()
    }
}

/// The formats dragoman reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One output line per input line.
    Text,
    /// Plain text whose paragraphs (lines between blank lines) are translated whole.
    Paragraphs,
    Markdown,
    Html,
    Srt,
    Vtt,
    Docx,
}

impl Format {
    /// `--input-format` names (`auto` picks by extension).
    pub const NAMES: &'static [&'static str] =
        &["auto", "text", "markdown", "html", "srt", "vtt", "docx"];

    /// Extensions read as documents, with `-r` and `--out-dir`.
    pub const EXTENSIONS: &'static [&'static str] = &[
        "txt", "text", "md", "markdown", "html", "htm", "xhtml", "srt", "vtt",
    ];

    /// The format `name` stands for, or by `path`'s extension (text when unknown).
    pub fn pick(name: &str, path: &Path, paragraphs: bool) -> Result<Self> {
        let text = if paragraphs {
            Format::Paragraphs
        } else {
            Format::Text
        };
        Ok(match name {
            "text" => text,
            "markdown" => Format::Markdown,
            "html" => Format::Html,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            "docx" => Format::Docx,
            "auto" => {
                let extension = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                match extension.as_deref() {
                    Some("md" | "markdown") => Format::Markdown,
                    Some("html" | "htm" | "xhtml") => Format::Html,
                    Some("srt") => Format::Srt,
                    Some("vtt") => Format::Vtt,
                    Some("docx") => Format::Docx,
                    _ => text,
                }
            }
            other => {
                return Err(Error::Setting(format!(
                    "unknown input format {other:?} (known: {})",
                    Format::NAMES.join(", ")
                )))
            }
        })
    }

    /// Whether documents of this format are bytes, not text (their output too).
    pub fn is_binary(self) -> bool {
        self == Format::Docx
    }

    /// Reads `source` as a document of this format (a text format).
    pub fn read(self, source: &str) -> Result<Box<dyn Document>> {
        Ok(match self {
            Format::Text => Box::new(text::PlainText::lines(source)),
            Format::Paragraphs => Box::new(text::PlainText::paragraphs(source)),
            Format::Markdown => Box::new(markdown::Markdown::read(source)),
            Format::Html => Box::new(html::Html::read(source)),
            Format::Srt => Box::new(srt::Srt::read(source)?),
            Format::Vtt => Box::new(vtt::Vtt::read(source)?),
            Format::Docx => Box::new(docx::Docx::read(source.as_bytes())?),
        })
    }

    /// Reads a binary document of this format (text formats go through [`Format::read`]).
    pub fn read_bytes(self, source: &[u8]) -> Result<Box<dyn Document>> {
        match self {
            Format::Docx => Ok(Box::new(docx::Docx::read(source)?)),
            text => match std::str::from_utf8(source) {
                Ok(source) => text.read(source),
                Err(e) => Err(Error::Input(format!(
                    "invalid UTF-8 at byte {}",
                    e.valid_up_to()
                ))),
            },
        }
    }
}

/// `source[within]` with each edit's range replaced by its text, in source order; an edit
/// outside `within`, or starting inside one already made, is left out. Every format writes
/// its document back through this.
pub(crate) fn splice<'a>(
    source: &str,
    within: Range<usize>,
    edits: impl IntoIterator<Item = (&'a Range<usize>, &'a str)>,
) -> String {
    let mut edits: Vec<(&Range<usize>, &str)> = edits
        .into_iter()
        .filter(|(r, _)| within.start <= r.start && r.end <= within.end)
        .collect();
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(within.len() * 2);
    let mut copied = within.start;
    for (range, written) in edits {
        if range.start < copied {
            continue;
        }
        out.push_str(&source[copied..range.start]);
        out.push_str(written);
        copied = range.end;
    }
    out.push_str(&source[copied..within.end]);
    out
}

/// `text` with every line break a space of the same byte length, so a block is segmented as
/// one text and its ranges stay the same.
pub fn line_breaks_as_spaces(text: &str) -> Cow<'_, str> {
    if !text.contains([
        '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
    ]) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                out.extend(std::iter::repeat_n(' ', c.len_utf8()))
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What the formats' unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// `document` written back with each block's text uppercased, as the pipeline feeds it
    /// (line breaks as spaces), its spans on the same bytes: uppercasing keeps the byte
    /// offsets of ASCII and of the French letters the tests use.
    pub fn shout(document: &dyn Document) -> String {
        let translated: Vec<TranslatedBlock> = document
            .blocks()
            .iter()
            .map(|b| TranslatedBlock {
                text: line_breaks_as_spaces(&b.text).to_uppercase(),
                spans: b.spans.iter().map(|s| s.range.clone()).collect(),
            })
            .collect();
        String::from_utf8(document.write(&translated, "en")).unwrap()
    }

    /// Each of `block`'s spans as (the text it covers, its opening bytes, its closing bytes).
    pub fn spans_of(block: &Block) -> Vec<(&str, &str, &str)> {
        block
            .spans
            .iter()
            .map(|s| {
                (
                    &block.text[s.range.clone()],
                    s.open.as_str(),
                    s.close.as_str(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_writes_spans_around_their_words_and_islands_in_place() {
        let block = Block {
            text: "du gras et x()".into(),
            spans: vec![
                Span {
                    range: 3..7,
                    open: "**".into(),
                    close: "**".into(),
                    protected: false,
                    parent: None,
                },
                Span {
                    range: 11..14,
                    open: "`x()`".into(),
                    close: String::new(),
                    protected: true,
                    parent: None,
                },
            ],
            escape: Escape::Markdown,
            segments: Segments::None,
        };
        let translated = TranslatedBlock {
            text: "some bold and x_y".into(),
            spans: vec![5..9, 14..17],
        };
        assert_eq!(translated.render(&block), "some **bold** and `x()`");
    }

    #[test]
    fn escapes_are_the_formats() {
        assert_eq!(Escape::HtmlText.apply("a < b & c"), "a &lt; b &amp; c");
        assert_eq!(Escape::HtmlAttribute.apply("\"x\""), "&quot;x&quot;");
        assert_eq!(Escape::Markdown.apply("2*3 [a]"), "2\\*3 \\[a\\]");
        assert_eq!(line_breaks_as_spaces("a\nb\u{2028}c"), "a b   c");
    }
}
