//! What SRT and WebVTT share: cues read into blocks of whole sentences, and the translation
//! shared out over the same cues again.
//!
//! Consecutive cues are one block until a cue ends a sentence, so a sentence that runs over
//! several cues is translated whole. Each cue is a segment of its block: its words go back to
//! the cues their source words came from (word alignment, kept in order), so the number of
//! cues and every timing stay as they were. A cue's lines are wrapped at 42 visible
//! characters (tags and entities are not seen), on two lines where the text allows.
//! Inline tags (`<i>`, `<b>`, `<font …>`, `<c.x>`, `<v Name>`) are spans; timestamps and
//! `{\an8}` codes are islands.

use std::ops::Range;

use super::{Block, Escape, Segments, Span, TranslatedBlock};
use crate::error::{Error, Result};

/// Visible characters per subtitle line.
pub const LINE_WIDTH: usize = 42;

/// Cues joined into one block at most (a text with no sentence end is still cut).
const MOST_CUES_PER_BLOCK: usize = 8;

/// One cue's text in the file: its lines' bytes (without the last line's ending) and the
/// line ending its lines use.
#[derive(Debug, Clone)]
pub struct CueText {
    pub range: Range<usize>,
    pub ending: &'static str,
}

/// A subtitle file's cues as blocks.
#[derive(Debug, Clone)]
pub struct CueBlocks {
    cues: Vec<CueText>,
    /// Per block, its cues (indices into `cues`) and each cue's segment span.
    groups: Vec<Vec<(usize, usize)>>,
    pub blocks: Vec<Block>,
}

impl CueBlocks {
    pub fn new(source: &str, cues: Vec<CueText>, escape: Escape) -> Self {
        let mut groups: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut blocks = Vec::new();
        let mut current: Option<(Block, Vec<(usize, usize)>)> = None;
        for (index, cue) in cues.iter().enumerate() {
            let payload = one_line(&source[cue.range.clone()]);
            let (block, members) = current.get_or_insert_with(|| {
                (
                    Block {
                        text: String::new(),
                        spans: Vec::new(),
                        escape,
                        segments: Segments::TopLevel,
                    },
                    Vec::new(),
                )
            });
            if !block.text.is_empty() {
                block.text.push(' ');
            }
            let segment = block.spans.len();
            let start = block.text.len();
            block.spans.push(Span {
                range: start..start,
                open: String::new(),
                close: String::new(),
                protected: false,
                parent: None,
            });
            read_payload(&payload, block, segment);
            block.spans[segment].range.end = block.text.len();
            members.push((index, segment));
            let text = &block.text[start..];
            if ends_sentence(text) || members.len() >= MOST_CUES_PER_BLOCK {
                let (block, members) = current.take().unwrap_or_else(|| unreachable!());
                blocks.push(block);
                groups.push(members);
            }
        }
        if let Some((block, members)) = current {
            blocks.push(block);
            groups.push(members);
        }
        Self {
            cues,
            groups,
            blocks,
        }
    }

    /// `source` with each cue's text replaced by its share of its block's translation,
    /// wrapped.
    pub fn write(&self, source: &str, translated: &[TranslatedBlock]) -> String {
        let mut texts: Vec<Option<String>> = vec![None; self.cues.len()];
        for ((block, members), translation) in self.blocks.iter().zip(&self.groups).zip(translated)
        {
            for &(cue, segment) in members {
                let text = translation.render_span(block, segment);
                let ending = self.cues[cue].ending;
                texts[cue] = Some(wrap(text.trim()).join(ending));
            }
        }
        let edits = self
            .cues
            .iter()
            .zip(&texts)
            .filter_map(|(cue, text)| Some((&cue.range, text.as_deref()?)));
        super::splice(source, 0..source.len(), edits)
    }
}

/// A cue's lines as one text: line breaks are white space inside a block.
fn one_line(payload: &str) -> String {
    payload
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a cue's text ends a sentence (dialogue dashes and music notes aside).
fn ends_sentence(text: &str) -> bool {
    let visible = strip_tags(text);
    let trimmed = visible
        .trim_end()
        .trim_end_matches(['»', '"', '”', '\'', '’', ')', '♪', ' ']);
    trimmed.ends_with(['.', '!', '?', '…', ':', ';']) || trimmed.is_empty()
}

/// One item of a cue's payload.
enum Item<'a> {
    Text(&'a str),
    /// `<name …>` (with its name), or `</name>` (closing), as written.
    Open(&'a str, String),
    Close(&'a str, String),
    /// A timestamp tag, an `{\an8}` code, a lone `<`: copied.
    Island(&'a str),
}

fn items(payload: &str) -> Vec<Item<'_>> {
    let mut items = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let tag_end = |open: char, close: char| -> Option<usize> {
            rest.strip_prefix(open)?;
            rest.find(close).map(|i| i + close.len_utf8())
        };
        if let Some(end) = tag_end('<', '>') {
            let raw = &rest[..end];
            let inner = raw[1..raw.len() - 1].trim();
            let name: String = inner
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            items.push(
                if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                    Item::Island(raw)
                } else if inner.starts_with('/') {
                    Item::Close(raw, name)
                } else {
                    Item::Open(raw, name)
                },
            );
            rest = &rest[end..];
        } else if let Some(end) = rest.strip_prefix("{\\").and(tag_end('{', '}')) {
            items.push(Item::Island(&rest[..end]));
            rest = &rest[end..];
        } else {
            let first = rest.chars().next().map_or(1, char::len_utf8);
            let next = rest[first..]
                .find(['<', '{'])
                .map_or(rest.len(), |i| i + first);
            items.push(Item::Text(&rest[..next]));
            rest = &rest[next..];
        }
    }
    items
}

/// A cue's payload (its lines joined) added to `block`: text decoded, tags as spans.
fn read_payload(payload: &str, block: &mut Block, segment: usize) {
    let items = items(payload);
    // Each opening tag's closing item, where there is one.
    let mut closes: Vec<Option<usize>> = vec![None; items.len()];
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Open(_, name) => stack.push((i, name)),
            Item::Close(_, name) => {
                if let Some(k) = stack.iter().rposition(|(_, n)| n == name) {
                    closes[stack[k].0] = Some(i);
                    stack.truncate(k);
                }
            }
            _ => {}
        }
    }
    let mut open: Vec<(usize, usize)> = Vec::new(); // (closing item, span)
                                                    // What a new span is inside: the innermost open tag, else the cue.
    let parent_of = |open: &[(usize, usize)]| Some(open.last().map_or(segment, |(_, s)| *s));
    let island = |block: &mut Block, raw: &str, parent: Option<usize>| {
        let at = block.text.len();
        block.spans.push(Span {
            range: at..at,
            open: raw.to_string(),
            close: String::new(),
            protected: true,
            parent,
        });
    };
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Text(text) => block.text.push_str(&htmlize::unescape(*text)),
            Item::Island(raw) => island(block, raw, parent_of(&open)),
            Item::Open(raw, _) => match closes[i] {
                Some(close) => {
                    let at = block.text.len();
                    block.spans.push(Span {
                        range: at..at,
                        open: raw.to_string(),
                        close: String::new(),
                        protected: false,
                        parent: parent_of(&open),
                    });
                    open.push((close, block.spans.len() - 1));
                }
                None => island(block, raw, parent_of(&open)),
            },
            Item::Close(raw, _) => match open.iter().rposition(|(c, _)| *c == i) {
                Some(k) => {
                    // Pairs nest (the stack above saw to it): this is the innermost open.
                    let (_, span) = open.remove(k);
                    block.spans[span].range.end = block.text.len();
                    block.spans[span].close = raw.to_string();
                }
                None => island(block, raw, parent_of(&open)),
            },
        }
    }
    for (_, span) in open {
        block.spans[span].range.end = block.text.len();
    }
}

/// Text without its tags and `{\…}` codes, entities as the characters they stand for.
fn strip_tags(text: &str) -> String {
    items(text)
        .into_iter()
        .filter_map(|item| match item {
            Item::Text(text) => Some(htmlize::unescape(text).into_owned()),
            _ => None,
        })
        .collect()
}

/// Visible characters of written cue text.
fn visible_width(text: &str) -> usize {
    strip_tags(text).chars().count()
}

/// Written cue text as lines of at most [`LINE_WIDTH`] visible characters: one line when it
/// fits, else two as even as the words allow, else as many as it takes. Breaks are at
/// spaces outside tags.
pub fn wrap(text: &str) -> Vec<String> {
    let words = words_outside_tags(text);
    if words.is_empty() {
        return vec![String::new()];
    }
    let widths: Vec<usize> = words.iter().map(|w| visible_width(w)).collect();
    let line_width = |range: Range<usize>| -> usize {
        widths[range.clone()].iter().sum::<usize>() + range.len().saturating_sub(1)
    };
    let n = words.len();
    if line_width(0..n) <= LINE_WIDTH {
        return vec![words.join(" ")];
    }
    let best_two = (1..n)
        .filter(|&k| line_width(0..k) <= LINE_WIDTH && line_width(k..n) <= LINE_WIDTH)
        .min_by_key(|&k| line_width(0..k).abs_diff(line_width(k..n)));
    if let Some(k) = best_two {
        return vec![words[..k].join(" "), words[k..].join(" ")];
    }
    let mut lines: Vec<String> = Vec::new();
    let mut start = 0;
    for end in 1..=n {
        if end == n || line_width(start..end + 1) > LINE_WIDTH {
            lines.push(words[start..end].join(" "));
            start = end;
        }
    }
    lines
}

/// `text` split at the spaces that are not inside a tag.
fn words_outside_tags(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(s) = start.take() {
                words.push(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&text[s..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::testing::spans_of;

    #[test]
    fn lines_are_wrapped_at_42_visible_characters_on_two_lines_where_they_fit() {
        assert_eq!(wrap("Short line."), ["Short line."]);
        let text = "<i>This sentence is much too long</i> for a single subtitle line.";
        let lines = wrap(text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| visible_width(l) <= LINE_WIDTH));
        assert_eq!(lines.join(" "), text);
        let long = "word ".repeat(40);
        let lines = wrap(long.trim());
        assert!(lines.len() > 2 && lines.iter().all(|l| visible_width(l) <= LINE_WIDTH));
        assert_eq!(visible_width("<font color=\"red\">a&amp;b</font>"), 3);
    }

    #[test]
    fn cues_join_until_a_sentence_ends_and_tags_are_spans() {
        let (first, second) = (
            "Le chat <i>dort</i>\nsur le",
            "canapé. Il\nrêve &amp; ronfle.",
        );
        let source = format!("{first}\n\n{second}\n");
        let cues = vec![
            CueText {
                range: 0..first.len(),
                ending: "\n",
            },
            CueText {
                range: first.len() + 2..first.len() + 2 + second.len(),
                ending: "\n",
            },
        ];
        let source = source.as_str();
        let read = CueBlocks::new(source, cues, Escape::None);
        assert_eq!(read.blocks.len(), 1, "no cue but the last ends a sentence");
        let block = &read.blocks[0];
        assert_eq!(block.text, "Le chat dort sur le canapé. Il rêve & ronfle.");
        let tags = spans_of(block);
        assert_eq!(
            tags,
            [
                ("Le chat dort sur le", "", ""),
                ("dort", "<i>", "</i>"),
                ("canapé. Il rêve & ronfle.", "", "")
            ]
        );
    }
}

/// A line of a subtitle file: where its content starts and ends, and its ending.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub start: usize,
    pub text: &'a str,
    pub ending: &'static str,
}

impl Line<'_> {
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }
}

/// The lines of `source` (a byte-order mark is not part of the first).
pub fn lines(source: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in source.split_inclusive('\n') {
        let (text, ending) = if let Some(t) = raw.strip_suffix("\r\n") {
            (t, "\r\n")
        } else if let Some(t) = raw.strip_suffix('\n') {
            (t, "\n")
        } else {
            (raw, "")
        };
        let (text, skipped) = match text.strip_prefix('\u{feff}') {
            Some(rest) if start == 0 => (rest, '\u{feff}'.len_utf8()),
            _ => (text, 0),
        };
        lines.push(Line {
            start: start + skipped,
            text,
            ending,
        });
        start += raw.len();
    }
    lines
}

/// The text lines of a cue starting at line `first`: up to the next blank line. Returns the
/// cue's text and the line after it.
pub fn cue_text(lines: &[Line], first: usize) -> (Option<CueText>, usize) {
    let mut end = first;
    while end < lines.len() && !lines[end].is_blank() {
        end += 1;
    }
    if end == first {
        return (None, end);
    }
    let ending = match lines[first].ending {
        "" => "\n",
        ending => ending,
    };
    (
        Some(CueText {
            range: lines[first].start..lines[end - 1].end(),
            ending,
        }),
        end,
    )
}

/// A timing line `FROM --> TO [settings]`, each time checked by `is_time`; a bad one is an
/// error naming the line and the `form` expected.
pub fn check_timing(
    index: usize,
    line: &Line,
    is_time: fn(&str) -> bool,
    form: &str,
) -> Result<()> {
    let (from, to) = line.text.split_once("-->").unwrap_or((line.text, ""));
    let to = to.split_whitespace().next().unwrap_or("");
    for time in [from.trim(), to] {
        if !is_time(time) {
            return Err(Error::Input(format!(
                "line {}: invalid timestamp {time:?} (expected {form})",
                index + 1
            )));
        }
    }
    Ok(())
}

/// Whether `text` is `digits` digits (`min..=max` of them).
pub fn digits(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}
