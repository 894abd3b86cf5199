//! Markdown, edited in place. Each paragraph, heading, table cell and tight list item is a
//! block (found with pulldown-cmark's source offsets); emphasis, strong, strikethrough and
//! links are spans, written back with their own bytes (`**`, `[`, `](url "title")`); inline
//! code, autolinks, bare URLs, images, inline HTML, footnote references and math are
//! islands. Everything outside blocks (list markers, `>`, code blocks, HTML blocks, front
//! matter, the spacing between blocks) is copied byte for byte.
//!
//! A paragraph that ran over several lines is written on one (Markdown joins them the same
//! way); a hard line break ends a block, so the lines it separates stay apart.

use std::ops::Range;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

use super::{Block, Document, Escape, Segments, Span, TranslatedBlock};

pub struct Markdown {
    source: String,
    /// Each block's byte range in `source`.
    ranges: Vec<Range<usize>>,
    blocks: Vec<Block>,
}

/// A block being read.
struct Builder {
    range: Range<usize>,
    text: String,
    spans: Vec<Span>,
    /// Spans still open: (index in `spans`, their tag's source range, opening bytes known).
    open: Vec<(usize, Range<usize>, bool)>,
    /// Where the last event read ends: an end tag's closing bytes start there.
    last_end: usize,
}

impl Builder {
    fn new(at: usize) -> Self {
        Self {
            range: at..at,
            text: String::new(),
            spans: Vec::new(),
            open: Vec::new(),
            last_end: at,
        }
    }

    /// Marks `range` as read up to `end` (a tag's start event covers its whole element,
    /// of which only the opening is read yet); the spans opened just before it learn their
    /// opening bytes.
    fn reach(&mut self, source: &str, range: &Range<usize>, end: usize) {
        for (i, tag, known) in &mut self.open {
            // (A tag's own end event has its range: nothing was inside.)
            if !*known && tag != range {
                self.spans[*i].open = source[tag.start..range.start.max(tag.start)].to_string();
                *known = true;
            }
        }
        self.range.end = self.range.end.max(end);
    }

    fn island(&mut self, text: &str, raw: &str) {
        let start = self.text.len();
        self.text.push_str(text);
        let parent = self.open.last().map(|(i, _, _)| *i);
        self.spans.push(Span {
            range: start..self.text.len(),
            open: raw.to_string(),
            close: String::new(),
            protected: true,
            parent,
        });
    }

    /// Text, with the bare URLs in it made islands.
    fn text(&mut self, text: &str) {
        let mut copied = 0;
        for url in bare_urls(text) {
            self.text.push_str(&text[copied..url.start]);
            self.island(&text[url.clone()], &text[url.clone()]);
            copied = url.end;
        }
        self.text.push_str(&text[copied..]);
    }

    fn finish(mut self) -> Option<(Range<usize>, Block)> {
        // Spans a hard break cut: closed here with nothing (their closing bytes come as an
        // island in the next block), so each block stays balanced as the source was.
        for (i, tag, known) in std::mem::take(&mut self.open) {
            self.spans[i].range.end = self.text.len();
            if !known {
                self.spans[i].open.clear();
                let _ = tag;
            }
        }
        if !self.text.chars().any(char::is_alphanumeric) && self.spans.is_empty() {
            return None;
        }
        Some((
            self.range,
            Block {
                text: self.text,
                spans: self.spans,
                escape: Escape::Markdown,
                segments: Segments::None,
            },
        ))
    }
}

impl Markdown {
    pub fn read(source: &str) -> Self {
        let mut ranges = Vec::new();
        let mut blocks = Vec::new();
        let mut current: Option<Builder> = None;
        // Inside code blocks, HTML blocks, front matter: nothing to translate.
        let mut verbatim = 0usize;
        // Inside an island (an image, an autolink): its events are part of it.
        let mut island_until = 0usize;
        let mut flush = |current: &mut Option<Builder>| {
            if let Some((range, block)) = current.take().and_then(Builder::finish) {
                ranges.push(range);
                blocks.push(block);
            }
        };
        for (event, range) in Parser::new_ext(source, Options::all()).into_offset_iter() {
            if range.start < island_until {
                continue;
            }
            match &event {
                Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::MetadataBlock(_)) => {
                    flush(&mut current);
                    verbatim += 1;
                    continue;
                }
                Event::End(TagEnd::CodeBlock | TagEnd::HtmlBlock | TagEnd::MetadataBlock(_)) => {
                    verbatim = verbatim.saturating_sub(1);
                    continue;
                }
                _ if verbatim > 0 => continue,
                _ => {}
            }
            let inline = is_inline(&event);
            if !inline {
                flush(&mut current);
                continue;
            }
            if matches!(event, Event::HardBreak) {
                flush(&mut current);
                continue;
            }
            let block = current.get_or_insert_with(|| Builder::new(range.start));
            let read_to = match event {
                Event::Start(Tag::Image { .. })
                | Event::Start(Tag::Link {
                    link_type: LinkType::Autolink | LinkType::Email,
                    ..
                }) => range.end,
                Event::Start(_) => range.start,
                _ => range.end,
            };
            block.reach(source, &range, read_to);
            let raw = &source[range.clone()];
            match event {
                Event::Text(text) => block.text(&text),
                Event::SoftBreak => block.text.push(' '),
                Event::Code(code) => block.island(&code, raw),
                Event::InlineHtml(_)
                | Event::FootnoteReference(_)
                | Event::TaskListMarker(_)
                | Event::InlineMath(_)
                | Event::DisplayMath(_)
                | Event::Html(_) => block.island("", raw),
                Event::Start(Tag::Image { .. }) => {
                    block.island("", raw);
                    island_until = range.end;
                }
                Event::Start(Tag::Link {
                    link_type: LinkType::Autolink | LinkType::Email,
                    dest_url,
                    ..
                }) => {
                    block.island(&dest_url, raw);
                    island_until = range.end;
                }
                Event::Start(_) => {
                    let parent = block.open.last().map(|(i, _, _)| *i);
                    block.spans.push(Span {
                        range: block.text.len()..block.text.len(),
                        open: String::new(),
                        close: String::new(),
                        protected: false,
                        parent,
                    });
                    block
                        .open
                        .push((block.spans.len() - 1, range.clone(), false));
                }
                Event::End(_) => match block.open.iter().rposition(|(_, tag, _)| *tag == range) {
                    Some(k) => {
                        let (i, tag, known) = block.open.remove(k);
                        let span = &mut block.spans[i];
                        span.range.end = block.text.len();
                        if known {
                            let last = block.last_end.clamp(tag.start, tag.end);
                            span.close = source.get(last..tag.end).unwrap_or_default().to_string();
                        } else {
                            // Nothing inside: all its bytes open it.
                            span.open = source[tag.clone()].to_string();
                        }
                    }
                    // Opened in a block a hard break ended: its closing bytes, as they are.
                    None => block.island("", &closing_bytes(source, &range)),
                },
                _ => {}
            }
            block.last_end = read_to;
        }
        flush(&mut current);
        Self {
            source: source.to_string(),
            ranges,
            blocks,
        }
    }
}

/// The closing delimiter of an inline tag whose opening was in an earlier block.
fn closing_bytes(source: &str, tag: &Range<usize>) -> String {
    let raw = &source[tag.clone()];
    let delimiter: String = raw.chars().take_while(|c| "*_~".contains(*c)).collect();
    if !delimiter.is_empty() && raw.ends_with(&delimiter) {
        delimiter
    } else {
        String::new()
    }
}

/// Whether an event belongs to a block's inline content.
fn is_inline(event: &Event) -> bool {
    match event {
        Event::Start(tag) => matches!(
            tag,
            Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. }
        ),
        Event::End(tag) => matches!(
            tag,
            TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image
        ),
        Event::Rule => false,
        // Block HTML between paragraphs is not inline; inside a paragraph it comes as
        // InlineHtml.
        Event::Html(_) => false,
        _ => true,
    }
}

/// Byte ranges of the bare URLs in `text` (`http://…`, `https://…`, `www.…` up to white
/// space, trailing punctuation left to the sentence).
pub fn bare_urls(text: &str) -> Vec<Range<usize>> {
    let mut urls = Vec::new();
    let mut search = 0;
    while let Some(found) = ["https://", "http://", "www."]
        .iter()
        .filter_map(|p| text[search..].find(p).map(|i| search + i))
        .min()
    {
        let end = text[found..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| found + i);
        // Only at a word start: "awww.x" is not a URL.
        let at_word_start = text[..found]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "([<\"'«".contains(c));
        if at_word_start {
            let url_end = found
                + text[found..end]
                    .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '»'])
                    .len();
            if url_end > found {
                urls.push(found..url_end);
            }
        }
        search = end.max(found + 1);
    }
    urls
}

impl Document for Markdown {
    fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn write(&self, translated: &[TranslatedBlock], _language: &str) -> Vec<u8> {
        let rendered: Vec<String> = self
            .blocks
            .iter()
            .zip(translated)
            .map(|(block, translation)| translation.render(block))
            .collect();
        let edits = self.ranges.iter().zip(rendered.iter().map(String::as_str));
        super::splice(&self.source, 0..self.source.len(), edits).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::testing::{self, spans_of};

    fn shout(source: &str) -> String {
        testing::shout(&Markdown::read(source))
    }

    #[test]
    fn blocks_hold_whole_paragraphs_with_their_spans() {
        let doc = Markdown::read(
            "Un **texte en gras** et un [lien](https://exemple.fr \"t\"),\nsur deux lignes.\n",
        );
        let [block] = doc.blocks() else {
            panic!("{:?}", doc.blocks())
        };
        assert_eq!(block.text, "Un texte en gras et un lien, sur deux lignes.");
        let spans = spans_of(block);
        assert_eq!(
            spans,
            [
                ("texte en gras", "**", "**"),
                ("lien", "[", "](https://exemple.fr \"t\")")
            ]
        );
    }

    #[test]
    fn only_the_text_changes_and_every_other_byte_is_kept() {
        let doc = "\
# Le titre *en italique*

Un paragraphe avec du **gras**, du `code en ligne` et un [lien](https://exemple.fr/page).
Une seconde ligne, <span>html</span> et <https://exemple.fr>.

> Une citation.

- un élément
  1. un sous-élément

| col a | col b |
|-------|-------|
| case  | autre |

```rust
let x = \"chaîne\";
```

    code indenté

Échappé \\* étoile &amp; entité.

Voir https://exemple.fr/Le-Chat. Ou www.exemple.fr, puis (http://a.b/c) et fin.
";
        let want = "\
# LE TITRE *EN ITALIQUE*

UN PARAGRAPHE AVEC DU **GRAS**, DU `code en ligne` ET UN [LIEN](https://exemple.fr/page). UNE SECONDE LIGNE, <span>HTML</span> ET <https://exemple.fr>.

> UNE CITATION.

- UN ÉLÉMENT
  1. UN SOUS-ÉLÉMENT

| COL A | COL B |
|-------|-------|
| CASE  | AUTRE |

```rust
let x = \"chaîne\";
```

    code indenté

ÉCHAPPÉ \\* ÉTOILE & ENTITÉ.

VOIR https://exemple.fr/Le-Chat. OU www.exemple.fr, PUIS (http://a.b/c) ET FIN.
";
        assert_eq!(shout(doc), want);
    }

    #[test]
    fn a_hard_break_keeps_the_lines_apart() {
        assert_eq!(shout("un  \ndeux\\\ntrois\n"), "UN  \nDEUX\\\nTROIS\n");
    }

    #[test]
    fn blocks_stay_in_bounds_on_odd_input() {
        for doc in [
            "",
            "*",
            "[a](",
            "```\nunterminated",
            "> > >",
            "|a|\n|-|\n",
            "\u{0}\r\n\t#",
            "*a  \nb*",
            "**a *b** c*",
            "![img](x.png) et [a ![b](c)](d)",
            // Found by the fuzzer: a closing delimiter's bytes were counted from the end.
            "<<<<c\0\0de_______M____<_______\\//////////////////////////////////////_____`\0\u{fffd}_#<",
            "__a__é_ *b* ***c*** [l](u \"t\")x",
        ] {
            let out = shout(doc);
            assert!(!out.is_empty() || doc.is_empty(), "{doc:?}");
        }
    }
}
