//! Markdown edited in place: the spans of text a reader reads are found with pulldown-cmark's
//! source offsets, and only they are replaced. Headings, list markers, block quotes, tables,
//! emphasis markers, code (blocks and inline), HTML, link destinations and every byte between
//! spans are copied unchanged.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Byte ranges of `doc` to translate, in order, non-overlapping, each within one line.
///
/// A span is a run of text events that are contiguous in the source and literal (the text is
/// exactly the source bytes: no escapes or entities, which stay as written). Code blocks, inline
/// code, HTML and autolinks (whose text is their URL) are not spans.
pub fn translatable_spans(doc: &str) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut in_code_block = 0usize;
    let mut link_urls: Vec<String> = Vec::new();
    for (event, range) in Parser::new_ext(doc, Options::all()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block += 1,
            Event::End(TagEnd::CodeBlock) => in_code_block = in_code_block.saturating_sub(1),
            Event::Start(Tag::Link { dest_url, .. }) => link_urls.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                link_urls.pop();
            }
            Event::Text(text) if in_code_block == 0 => {
                let literal = doc.get(range.clone()) == Some(text.as_ref());
                let is_url = link_urls
                    .last()
                    .is_some_and(|url| url.as_str() == text.as_ref());
                if !literal || is_url || text.trim().is_empty() || text.contains('\n') {
                    continue;
                }
                match spans.last_mut() {
                    Some(last) if last.end == range.start => last.end = range.end,
                    _ => spans.push(range),
                }
            }
            _ => {}
        }
    }
    // Bare URLs in text (not written as links) are not text to translate either.
    spans
        .into_iter()
        .flat_map(|span| without_urls(doc, span))
        .collect()
}

/// `span` minus the bare URLs in it (`http://…`, `https://…`, `www.…` up to white space), and
/// minus the pieces left with only white space and punctuation.
fn without_urls(doc: &str, span: Range<usize>) -> Vec<Range<usize>> {
    let text = &doc[span.clone()];
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut search = 0;
    while let Some(found) = ["https://", "http://", "www."]
        .iter()
        .filter_map(|p| text[search..].find(p).map(|i| search + i))
        .min()
    {
        // Only at a word start: "awww.x" is not a URL.
        let at_word_start = text[..found]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || "([<\"'«".contains(c));
        let end = text[found..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| found + i);
        if at_word_start {
            // Trailing punctuation belongs to the sentence, not the URL.
            let url_end = found
                + text[found..end]
                    .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '»'])
                    .len();
            pieces.push(start..found);
            start = url_end;
        }
        search = end;
    }
    pieces.push(start..text.len());
    pieces
        .into_iter()
        .filter(|r| text[r.clone()].chars().any(char::is_alphanumeric))
        .map(|r| span.start + r.start..span.start + r.end)
        .collect()
}

/// `doc` with each span replaced by its replacement, every other byte kept.
pub fn replace_spans(doc: &str, spans: &[Range<usize>], replacements: &[String]) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut copied = 0;
    for (span, replacement) in spans.iter().zip(replacements) {
        out.push_str(&doc[copied..span.start]);
        out.push_str(replacement);
        copied = span.end;
    }
    out.push_str(&doc[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shout(doc: &str) -> String {
        let spans = translatable_spans(doc);
        let upper: Vec<String> = spans
            .iter()
            .map(|r| doc[r.clone()].to_uppercase())
            .collect();
        replace_spans(doc, &spans, &upper)
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

UN PARAGRAPHE AVEC DU **GRAS**, DU `code en ligne` ET UN [LIEN](https://exemple.fr/page).
UNE SECONDE LIGNE, <span>HTML</span> ET <https://exemple.fr>.

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

ÉCHAPPÉ \\* ÉTOILE &amp; ENTITÉ.

VOIR https://exemple.fr/Le-Chat. OU www.exemple.fr, PUIS (http://a.b/c) ET FIN.
";
        assert_eq!(shout(doc), want);
    }

    #[test]
    fn spans_never_overlap_and_stay_in_bounds_on_odd_input() {
        for doc in [
            "",
            "*",
            "[a](",
            "```\nunterminated",
            "> > >",
            "|a|\n|-|\n",
            "\u{0}\r\n\t#",
        ] {
            let spans = translatable_spans(doc);
            for pair in spans.windows(2) {
                assert!(pair[0].end <= pair[1].start, "{doc:?}");
            }
            assert!(spans.iter().all(|r| r.end <= doc.len()), "{doc:?}");
        }
    }
}
