//! HTML, edited in place. lol_html tokenizes the page as a browser does (and never fails on
//! malformed markup); its source offsets let every byte outside translated text be copied
//! as it came: the doctype, comments, entities, attribute order and quoting, white space.
//!
//! - A block is the text between block-level tags (`<p>`, `<li>`, `<td>`, `<h1>`, `<div>`,
//!   …). Inline elements (`<b>`, `<a href>`, `<span>`, …) are spans, written back with
//!   their own tags; `<br>`, `<img>`, comments and stray tags inside a block are islands.
//! - `<code>`, `<kbd>`, `<samp>`, `<var>` and inline elements marked `translate="no"` or
//!   `class="notranslate"` are islands: the model reads their text, the output has their
//!   bytes. `<script>`, `<style>`, `<pre>`, `<textarea>`, `<svg>`, `<math>`, `<template>`
//!   and marked block elements are copied whole.
//! - The attributes `alt`, `title`, `placeholder` and `aria-label` are blocks of their own.
//! - `<html lang>` is set to the target language (added when missing).

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use super::{Block, Document, Escape, Segments, Span, TranslatedBlock};

/// Attributes whose values are text for a reader.
const TEXT_ATTRIBUTES: &[&str] = &["alt", "title", "placeholder", "aria-label"];

/// Phrasing elements: spans inside a block, not block boundaries.
const INLINE: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "br", "button", "cite", "code", "data",
    "del", "dfn", "em", "font", "i", "img", "input", "ins", "kbd", "label", "mark", "meter",
    "nobr", "output", "progress", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
];

/// Inline elements whose text is code: islands.
const CODE: &[&str] = &["code", "kbd", "samp", "var"];

/// Elements copied whole, never translated.
const VERBATIM: &[&str] = &[
    "script",
    "style",
    "pre",
    "textarea",
    "svg",
    "math",
    "template",
    "xmp",
    "plaintext",
];

#[derive(Debug, Clone)]
enum Token {
    Start {
        name: String,
        range: Range<usize>,
        /// The index of its end tag's token, when the source has one.
        end: Option<usize>,
        /// (name, value's source range)
        attributes: Vec<(String, Option<Range<usize>>)>,
        marked_no: bool,
    },
    End {
        range: Range<usize>,
        start: usize,
    },
    Text(Range<usize>),
    Comment(Range<usize>),
}

impl Token {
    fn range(&self) -> &Range<usize> {
        match self {
            Token::Start { range, .. }
            | Token::End { range, .. }
            | Token::Text(range)
            | Token::Comment(range) => range,
        }
    }
}

/// The page's tokens in source order.
fn tokenize(source: &str) -> Vec<Token> {
    use lol_html::{doc_comments, doc_text, element, end_tag, RewriteStrSettings};
    let tokens: Rc<RefCell<Vec<Token>>> = Rc::default();
    let (on_element, on_text, on_comment) = (tokens.clone(), tokens.clone(), tokens.clone());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("*", move |el| {
            let attributes = el
                .attributes()
                .iter()
                .map(|a| (a.name(), a.value_source_location().map(|l| l.bytes())))
                .collect();
            let marked_no = el
                .get_attribute("translate")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("no"))
                || el
                    .get_attribute("class")
                    .is_some_and(|c| c.split_ascii_whitespace().any(|c| c == "notranslate"));
            let mut list = on_element.borrow_mut();
            let start = list.len();
            list.push(Token::Start {
                name: el.tag_name(),
                range: el.source_location().bytes(),
                end: None,
                attributes,
                marked_no,
            });
            drop(list);
            if el.can_have_content() {
                let on_end = on_element.clone();
                el.on_end_tag(end_tag!(move |end| {
                    let range = end.source_location().bytes();
                    if range.is_empty() {
                        return Ok(());
                    }
                    let mut list = on_end.borrow_mut();
                    let index = list.len();
                    list.push(Token::End { range, start });
                    if let Some(Token::Start { end, .. }) = list.get_mut(start) {
                        *end = Some(index);
                    }
                    Ok(())
                }))?;
            }
            Ok(())
        })],
        document_content_handlers: vec![
            doc_text!(move |chunk| {
                let range = chunk.source_location().bytes();
                let mut list = on_text.borrow_mut();
                match list.last_mut() {
                    Some(Token::Text(last)) if last.end == range.start => last.end = range.end,
                    _ if range.is_empty() => {}
                    _ => list.push(Token::Text(range)),
                }
                Ok(())
            }),
            doc_comments!(move |comment| {
                on_comment
                    .borrow_mut()
                    .push(Token::Comment(comment.source_location().bytes()));
                Ok(())
            }),
        ],
        strict: false,
        ..RewriteStrSettings::new()
    };
    // The tokenizer does not fail on markup; should it fail at all, nothing is translated
    // and the page is copied as it is.
    if lol_html::rewrite_str(source, settings).is_err() {
        return Vec::new();
    }
    let mut tokens = std::mem::take(&mut *tokens.borrow_mut());
    // End tags are reported after the text before them is; keep source order, and fix the
    // start → end links the sort moves.
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| tokens[i].range().start);
    let mut moved = vec![0; tokens.len()];
    for (new, &old) in order.iter().enumerate() {
        moved[old] = new;
    }
    let mut sorted: Vec<Token> = order.iter().map(|&i| tokens[i].clone()).collect();
    for token in &mut sorted {
        match token {
            Token::Start { end: Some(end), .. } => *end = moved[*end],
            Token::End { start, .. } => *start = moved[*start],
            _ => {}
        }
    }
    tokens.clear();
    sorted
}

/// What a block stands for in the page.
#[derive(Debug, Clone)]
enum Place {
    /// Text replacing these bytes; its spans' opening tags are at these source ranges
    /// (so their translated attributes can be written into them).
    Text {
        range: Range<usize>,
        tags: Vec<Option<Range<usize>>>,
    },
    /// An attribute value at these bytes.
    Attribute(Range<usize>),
}

pub struct Html {
    source: String,
    blocks: Vec<Block>,
    places: Vec<Place>,
    /// `<html>`'s `lang` value, or where to add one.
    lang: Option<Result<Range<usize>, usize>>,
}

/// A text block being read.
struct Builder {
    range: Range<usize>,
    text: String,
    spans: Vec<Span>,
    tags: Vec<Option<Range<usize>>>,
    /// Open spans: (index in `spans`, start token).
    open: Vec<(usize, usize)>,
}

impl Builder {
    fn new(at: usize) -> Self {
        Self {
            range: at..at,
            text: String::new(),
            spans: Vec::new(),
            tags: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Takes in `range`; bytes skipped since the last item (a tag no handler saw) become
    /// an island, so nothing inside the block is lost.
    fn reach(&mut self, source: &str, range: &Range<usize>) {
        if range.start > self.range.end {
            let gap = self.range.end..range.start;
            self.island("", &source[gap], None);
        }
        self.range.end = self.range.end.max(range.end);
    }

    fn island(&mut self, text: &str, raw: &str, tag: Option<Range<usize>>) {
        let start = self.text.len();
        self.text.push_str(text);
        let parent = self.open.last().map(|(i, _)| *i);
        self.spans.push(Span {
            range: start..self.text.len(),
            open: raw.to_string(),
            close: String::new(),
            protected: true,
            parent,
        });
        self.tags.push(tag);
    }

    fn finish(mut self) -> Option<(Block, Place)> {
        for (i, _) in std::mem::take(&mut self.open) {
            self.spans[i].range.end = self.text.len();
        }
        // Only text outside islands is worth translating.
        let mut readable = self.text.clone();
        for span in self.spans.iter().filter(|s| s.protected).rev() {
            readable.replace_range(span.range.clone(), "");
        }
        if !readable.chars().any(char::is_alphanumeric) {
            return None;
        }
        Some((
            Block {
                text: self.text,
                spans: self.spans,
                escape: Escape::HtmlText,
                segments: Segments::None,
            },
            Place::Text {
                range: self.range,
                tags: self.tags,
            },
        ))
    }
}

impl Html {
    pub fn read(source: &str) -> Self {
        let tokens = tokenize(source);
        let mut page = Html {
            source: source.to_string(),
            blocks: Vec::new(),
            places: Vec::new(),
            lang: None,
        };
        let mut current: Option<Builder> = None;
        let mut skip_until = 0usize;
        let flush = |page: &mut Html, current: &mut Option<Builder>| {
            if let Some((block, place)) = current.take().and_then(Builder::finish) {
                page.blocks.push(block);
                page.places.push(place);
            }
        };
        for (index, token) in tokens.iter().enumerate() {
            let range = token.range().clone();
            if range.start < skip_until {
                continue;
            }
            let raw = &source[range.clone()];
            match token {
                Token::Text(_) => {
                    let text = htmlize::unescape(raw);
                    if current.is_none() && text.trim().is_empty() {
                        continue;
                    }
                    let block = current.get_or_insert_with(|| Builder::new(range.start));
                    block.reach(source, &range);
                    block.text.push_str(&text);
                }
                Token::Comment(_) => {
                    if let Some(block) = &mut current {
                        block.reach(source, &range);
                        block.island("", raw, None);
                    }
                }
                Token::Start {
                    name,
                    end,
                    attributes,
                    marked_no,
                    ..
                } => {
                    if name == "html" {
                        page.lang = Some(match attributes.iter().find(|(n, _)| n == "lang") {
                            Some((_, Some(value))) => Ok(value.clone()),
                            _ => Err(range.start + "<html".len()),
                        });
                    }
                    let whole = range.start..end.map_or(range.end, |e| tokens[e].range().end);
                    let inline = INLINE.contains(&name.as_str());
                    let island = inline && (*marked_no || CODE.contains(&name.as_str()));
                    let verbatim = !inline && (*marked_no || VERBATIM.contains(&name.as_str()));
                    if !island && !verbatim {
                        page.attribute_blocks(attributes);
                    }
                    if verbatim {
                        flush(&mut page, &mut current);
                        skip_until = whole.end;
                    } else if island {
                        let block = current.get_or_insert_with(|| Builder::new(range.start));
                        block.reach(source, &range);
                        let text = text_inside(source, &tokens, index, whole.end);
                        block.island(&text, &source[whole.clone()], None);
                        block.range.end = whole.end;
                        skip_until = whole.end;
                    } else if inline {
                        let block = current.get_or_insert_with(|| Builder::new(range.start));
                        block.reach(source, &range);
                        let at = block.text.len();
                        let parent = block.open.last().map(|(i, _)| *i);
                        block.spans.push(Span {
                            range: at..at,
                            open: raw.to_string(),
                            close: String::new(),
                            protected: end.is_none(),
                            parent,
                        });
                        block.tags.push(Some(range.clone()));
                        if end.is_some() {
                            block.open.push((block.spans.len() - 1, index));
                        }
                    } else {
                        flush(&mut page, &mut current);
                    }
                }
                Token::End { start, .. } => {
                    let Token::Start { name, .. } = &tokens[*start] else {
                        continue;
                    };
                    if !INLINE.contains(&name.as_str()) {
                        flush(&mut page, &mut current);
                        continue;
                    }
                    let Some(block) = &mut current else { continue };
                    block.reach(source, &range);
                    match block.open.iter().rposition(|(_, s)| s == start) {
                        Some(k) => {
                            let (i, _) = block.open[k];
                            // Spans opened inside it and never closed end with it.
                            for (j, _) in block.open.drain(k..) {
                                block.spans[j].range.end = block.text.len();
                            }
                            block.spans[i].close = raw.to_string();
                        }
                        // Its start tag was in an earlier block: the end tag stays as it is.
                        None => block.island("", raw, None),
                    }
                }
            }
        }
        flush(&mut page, &mut current);
        page
    }

    /// The text attributes of a start tag, as blocks of their own.
    fn attribute_blocks(&mut self, attributes: &[(String, Option<Range<usize>>)]) {
        for (name, value) in attributes {
            let Some(value) = value else { continue };
            if !TEXT_ATTRIBUTES.contains(&name.as_str()) {
                continue;
            }
            let text = htmlize::unescape_attribute(&self.source[value.clone()]).into_owned();
            if !text.chars().any(char::is_alphanumeric) {
                continue;
            }
            self.blocks.push(Block {
                text,
                spans: Vec::new(),
                escape: Escape::HtmlAttribute,
                segments: Segments::None,
            });
            self.places.push(Place::Attribute(value.clone()));
        }
    }
}

/// A page's main text as a reader sees it (a Readability.js port, dom_smoothie), one
/// paragraph per line: navigation, "see also" lists, counters and cookie banners left out.
/// None when no article can be told apart.
pub fn main_text(source: &str) -> Option<String> {
    let config = dom_smoothie::Config {
        text_mode: dom_smoothie::TextMode::Formatted,
        ..Default::default()
    };
    let article = dom_smoothie::Readability::new(source, None, Some(config))
        .ok()?
        .parse()
        .ok()?;
    let lines: Vec<&str> = article
        .text_content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The decoded text of the text tokens after `index` up to byte `end`.
fn text_inside(source: &str, tokens: &[Token], index: usize, end: usize) -> String {
    tokens[index + 1..]
        .iter()
        .take_while(|t| t.range().start < end)
        .filter_map(|t| match t {
            Token::Text(range) => Some(htmlize::unescape(&source[range.clone()]).into_owned()),
            _ => None,
        })
        .collect()
}

/// An attribute value written back: escaped for the quotes it had, quoted if it had none.
fn attribute_value(source: &str, value: &Range<usize>, text: &str) -> String {
    let quote = source[..value.start].chars().next_back();
    let escaped = Escape::HtmlAttribute.apply(text);
    match quote {
        Some('\'') => escaped.replace('\'', "&#39;").replace("&quot;", "\""),
        Some('"') => escaped.into_owned(),
        _ => format!("\"{escaped}\""),
    }
}

impl Document for Html {
    fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn write(&self, translated: &[TranslatedBlock], language: &str) -> Vec<u8> {
        // Attribute values first: they are written into tags, some of which open spans.
        let mut attributes: Vec<(Range<usize>, String)> = Vec::new();
        for (place, translation) in self.places.iter().zip(translated) {
            if let Place::Attribute(value) = place {
                let written = attribute_value(&self.source, value, &translation.text);
                attributes.push((value.clone(), written));
            }
        }
        let with_attributes = |range: &Range<usize>| -> String {
            let edits = attributes.iter().map(|(r, w)| (r, w.as_str()));
            super::splice(&self.source, range.clone(), edits)
        };
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for ((place, block), translation) in self.places.iter().zip(&self.blocks).zip(translated) {
            let Place::Text { range, tags } = place else {
                continue;
            };
            let mut block = block.clone();
            for (span, tag) in block.spans.iter_mut().zip(tags) {
                if let Some(tag) = tag {
                    span.open = with_attributes(tag);
                }
            }
            edits.push((range.clone(), translation.render(&block)));
        }
        let inside_text = |value: &Range<usize>| {
            edits
                .iter()
                .any(|(r, _)| r.start <= value.start && value.end <= r.end)
        };
        let outside: Vec<(Range<usize>, String)> = attributes
            .iter()
            .filter(|(value, _)| !inside_text(value))
            .cloned()
            .collect();
        edits.extend(outside);
        match &self.lang {
            Some(Ok(value)) => edits.push((value.clone(), language.to_string())),
            Some(Err(at)) => edits.push((*at..*at, format!(" lang=\"{language}\""))),
            None => {}
        }
        let edits = edits.iter().map(|(r, w)| (r, w.as_str()));
        super::splice(&self.source, 0..self.source.len(), edits).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::testing::{self, spans_of};

    fn shout(source: &str) -> String {
        testing::shout(&Html::read(source))
    }

    #[test]
    fn a_paragraph_is_one_block_with_its_inline_tags_as_spans() {
        let page = Html::read(
            "<p>Un <b class='x'>texte\n  en gras</b> et <a href=\"/l?a=1&amp;b=2\">un lien</a>.</p>",
        );
        let [block] = page.blocks() else {
            panic!("{:?}", page.blocks())
        };
        assert_eq!(block.text, "Un texte\n  en gras et un lien.");
        let spans = spans_of(block);
        assert_eq!(
            spans,
            [
                ("texte\n  en gras", "<b class='x'>", "</b>"),
                ("un lien", "<a href=\"/l?a=1&amp;b=2\">", "</a>")
            ]
        );
    }

    #[test]
    fn only_text_changes_and_every_other_byte_is_kept() {
        let source = "<!DOCTYPE html>\n<!-- un commentaire -->\n<html lang=fr>\n<head><meta charset=\"utf-8\"><title>Le titre</title>\n<style>p { color: red }</style><script>var s = \"texte\";</script></head>\n<body>\n  <h1 id=\"t\">Titre &amp; sous-titre</h1>\n  <p>Du <em>texte</em>, du <code>code()</code>, <span translate=\"no\">Nom Propre</span>,<br>\n  une image <img src=\"a.png\" alt=\"une image\" title='un titre'> et <!-- note --> fin.</p>\n  <pre>garder   tel quel</pre>\n  <div class=\"a notranslate\"><p>rien ici</p></div>\n  <ul><li>un<li>deux</ul>\n  <input placeholder=nom>\n  <table><tr><td>case</td><td aria-label=\"étiquette\">autre</td></tr></table>\n</body>\n</html>\n";
        let want = "<!DOCTYPE html>\n<!-- un commentaire -->\n<html lang=en>\n<head><meta charset=\"utf-8\"><title>LE TITRE</title>\n<style>p { color: red }</style><script>var s = \"texte\";</script></head>\n<body>\n  <h1 id=\"t\">TITRE &amp; SOUS-TITRE</h1>\n  <p>DU <em>TEXTE</em>, DU <code>code()</code>, <span translate=\"no\">Nom Propre</span>,<br>   UNE IMAGE <img src=\"a.png\" alt=\"UNE IMAGE\" title='UN TITRE'> ET <!-- note --> FIN.</p>\n  <pre>garder   tel quel</pre>\n  <div class=\"a notranslate\"><p>rien ici</p></div>\n  <ul><li>UN<li>DEUX</ul>\n  <input placeholder=\"NOM\">\n  <table><tr><td>CASE</td><td aria-label=\"ÉTIQUETTE\">AUTRE</td></tr></table>\n</body>\n</html>\n";
        assert_eq!(shout(source), want);
    }

    #[test]
    fn the_main_text_leaves_navigation_banners_and_lists_out() {
        let paragraph = "Le chat dort sur le canapé depuis ce matin, et rien ne semble pouvoir le réveiller, ni le bruit de la rue ni l'odeur du café.";
        let page = format!(
            "<html><head><title>Le journal</title></head><body><nav><ul><li><a href=\"/\">Accueil</a></li><li><a href=\"/monde\">Monde</a></li></ul></nav><div id=\"cookie-banner\" class=\"cookie-consent\">Nous utilisons des cookies. <button>Accepter</button></div><article><p>{p}</p><p>{p}</p><p>{p}</p><p>{p}</p><p>{p}</p></article><aside class=\"related\"><h2>Voir aussi</h2><ul><li><a href=\"/a\">Un autre article</a></li></ul></aside><footer><span class=\"counter\">1 234 lectures</span></footer></body></html>",
            p = paragraph
        );
        let text = main_text(&page).unwrap();
        assert_eq!(text, [paragraph; 5].join("\n"));
    }

    #[test]
    fn a_page_without_html_tag_gets_no_lang_and_malformed_markup_reads() {
        for source in [
            "",
            "<",
            "<p>ouvert <b>jamais fermé",
            "</b>texte</i> perdu<p>",
            "<p>a<div>b</p>c</div>",
            "<!-- pas fini",
            "<script>jamais fermé",
            "<a href='x'>lien <a href='y'>autre</a>",
            "<table><td>x<tr>y</table>",
            "\u{0}<p>\u{0}</p>",
        ] {
            let out = shout(source);
            assert!(!out.contains("lang="), "{source:?} → {out:?}");
        }
        assert_eq!(
            shout("<html><p>oui</p></html>"),
            "<html lang=\"en\"><p>OUI</p></html>"
        );
    }
}
