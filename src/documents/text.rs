//! Plain text: every line is a block and gives exactly one output line, with its terminator
//! (`\n`, `\r\n`, or none at the end) and its indentation; or, with `--paragraphs`, every
//! paragraph (lines between blank lines) is a block, wrapped again to its longest line.
//!
//! A byte-order mark is not text: it is written back as it came.

use super::{Block, Document, Escape, Segments, TranslatedBlock};
use crate::text::paragraphs::{paragraphs, Unit};

pub struct PlainText {
    bom: &'static str,
    /// Each line's text and terminator.
    lines: Vec<(String, &'static str)>,
    /// With `--paragraphs`: the paragraphs and blank lines.
    units: Option<Vec<Unit>>,
    blocks: Vec<Block>,
}

impl PlainText {
    /// One block per line.
    pub fn lines(source: &str) -> Self {
        let (bom, lines) = split(source);
        let blocks = lines.iter().map(|(line, _)| block(line)).collect();
        Self {
            bom,
            lines,
            units: None,
            blocks,
        }
    }

    /// One block per paragraph; blank lines are copied.
    pub fn paragraphs(source: &str) -> Self {
        let (bom, lines) = split(source);
        let texts: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        let units = paragraphs(&texts);
        let blocks = units
            .iter()
            .filter_map(Unit::paragraph)
            .map(|p| block(&p.text))
            .collect();
        Self {
            bom,
            lines,
            units: Some(units),
            blocks,
        }
    }
}

fn block(text: &str) -> Block {
    Block {
        text: text.to_string(),
        spans: Vec::new(),
        escape: Escape::None,
        segments: Segments::None,
    }
}

/// The byte-order mark, and the lines with their terminators.
fn split(source: &str) -> (&'static str, Vec<(String, &'static str)>) {
    let (bom, source) = match source.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", source),
    };
    let lines = source
        .split_inclusive('\n')
        .map(|raw| {
            if let Some(body) = raw.strip_suffix("\r\n") {
                (body.to_string(), "\r\n")
            } else if let Some(body) = raw.strip_suffix('\n') {
                (body.to_string(), "\n")
            } else {
                (raw.to_string(), "")
            }
        })
        .collect();
    (bom, lines)
}

impl Document for PlainText {
    fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// A paragraph's translation wrapped as it is written.
    fn plain_target(&self, index: usize, text: &str) -> String {
        let paragraph = self
            .units
            .iter()
            .flatten()
            .filter_map(Unit::paragraph)
            .nth(index);
        match paragraph {
            Some(paragraph) => paragraph.rewrap(text).join("\n"),
            None => text.to_string(),
        }
    }

    fn write(&self, translated: &[TranslatedBlock], _language: &str) -> Vec<u8> {
        let mut out = String::from(self.bom);
        let mut translated = translated.iter().map(|t| t.text.as_str());
        let Some(units) = &self.units else {
            for (_, ending) in &self.lines {
                out.push_str(translated.next().unwrap_or_default());
                out.push_str(ending);
            }
            return out.into_bytes();
        };
        for unit in units {
            match unit {
                Unit::Blank(i) => {
                    out.push_str(&self.lines[*i].0);
                    out.push_str(self.lines[*i].1);
                }
                Unit::Paragraph(paragraph) => {
                    let wrapped = paragraph.rewrap(translated.next().unwrap_or_default());
                    let (first, count) = (paragraph.first, paragraph.count);
                    let last = wrapped.len().saturating_sub(1);
                    for (k, line) in wrapped.iter().enumerate() {
                        out.push_str(line);
                        // The paragraph's last line keeps its own ending; the others take
                        // the first line's (a last line without one, wrapped, gets "\n").
                        out.push_str(match (k == last, self.lines[first].1) {
                            (true, _) => self.lines[first + count - 1].1,
                            (false, "") => "\n",
                            (false, ending) => ending,
                        });
                    }
                }
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(doc: &dyn Document) -> String {
        let translated: Vec<TranslatedBlock> = doc
            .blocks()
            .iter()
            .map(|b| TranslatedBlock {
                text: b.text.to_uppercase(),
                spans: Vec::new(),
            })
            .collect();
        String::from_utf8(doc.write(&translated, "en")).unwrap()
    }

    #[test]
    fn lines_keep_their_endings_and_the_byte_order_mark() {
        let source = "\u{feff}un\r\n\n  deux\ntrois";
        assert_eq!(
            upper(&PlainText::lines(source)),
            "\u{feff}UN\r\n\n  DEUX\nTROIS"
        );
        assert_eq!(upper(&PlainText::lines("")), "");
    }

    #[test]
    fn paragraphs_are_one_block_each_and_blank_lines_are_copied() {
        let source = "un deux\ntrois\n\nquatre\n";
        let doc = PlainText::paragraphs(source);
        let texts: Vec<&str> = doc.blocks().iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["un deux trois", "quatre"]);
        assert_eq!(upper(&doc), "UN DEUX\nTROIS\n\nQUATRE\n");
    }
}
