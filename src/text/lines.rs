//! One input line → indentation, content, trailing white space, and back.
//!
//! The CLI keeps the line structure exactly: every input line gives one output line, blank
//! lines and leading indentation stay as they were. Only the content is translated.
//!
//! Trailing white space is **kept**: [`LineLayout::reassemble`] puts the source line's
//! trailing white space back after the translation, so a Markdown hard break (two trailing
//! spaces) or a `\r` left by a caller that split on `\n` alone survives. Indentation and
//! trailing white space are copied byte for byte; the translated text is the only part
//! rewritten, and line breaks inside it are turned into spaces so one line stays one line.

use std::ops::Range;

/// `text` with every line break (see [`LineLayout::reassemble`]) turned into a space.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if is_line_break(c) { ' ' } else { c })
        .collect()
}

/// Where a line's indentation, content and trailing white space lie (byte offsets into the
/// line it was made from).
///
/// A line that is empty or white space only has no content: it is all indentation, and
/// there is nothing to translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLayout {
    content_start: usize,
    content_end: usize,
    len: usize,
}

impl LineLayout {
    /// The layout of `line` (one line, without its line terminator).
    pub fn of(line: &str) -> Self {
        let content_start = line.len() - line.trim_start().len();
        let content_end = content_start + line[content_start..].trim_end().len();
        Self {
            content_start,
            content_end,
            len: line.len(),
        }
    }

    /// No content: empty or white space only.
    pub fn is_blank(&self) -> bool {
        self.content_start == self.content_end
    }

    /// Byte range of the content in the line.
    pub fn content_range(&self) -> Range<usize> {
        self.content_start..self.content_end
    }

    /// Leading white space (all of a blank line).
    pub fn indent<'a>(&self, line: &'a str) -> &'a str {
        line.get(..self.content_start).unwrap_or("")
    }

    /// The text to translate, trimmed; empty for a blank line.
    pub fn content<'a>(&self, line: &'a str) -> &'a str {
        line.get(self.content_range()).unwrap_or("")
    }

    /// Trailing white space after the content (empty for a blank line).
    pub fn trailing<'a>(&self, line: &'a str) -> &'a str {
        line.get(self.content_end..self.len).unwrap_or("")
    }

    /// The output line: indentation + `translated` + trailing white space of `line`.
    ///
    /// `translated` is trimmed and any line break in it (`\n`, `\r`, vertical tab, form
    /// feed, U+0085, U+2028, U+2029) becomes a space, so the result is always one line.
    /// A blank line with an empty translation comes back unchanged. `line` must be the line
    /// this layout was made from; with another one, missing parts are left out (no panic).
    pub fn reassemble(&self, line: &str, translated: &str) -> String {
        let indent = self.indent(line);
        let trailing = self.trailing(line);
        let translated = translated.trim();
        let mut out = String::with_capacity(indent.len() + translated.len() + trailing.len());
        out.push_str(indent);
        out.push_str(&one_line(translated));
        out.push_str(trailing);
        out
    }
}

/// Characters that start a new line when displayed.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(line: &str) -> (&str, &str, &str) {
        let layout = LineLayout::of(line);
        (
            layout.indent(line),
            layout.content(line),
            layout.trailing(line),
        )
    }

    #[test]
    fn splits_indent_content_trailing() {
        assert_eq!(
            parts("    Bonjour. Ça va ?  "),
            ("    ", "Bonjour. Ça va ?", "  ")
        );
        assert_eq!(parts("\tTexte"), ("\t", "Texte", ""));
        assert_eq!(parts("Texte\r"), ("", "Texte", "\r"));
        assert_eq!(
            parts("\u{a0}\u{2003}Texte insécable"),
            ("\u{a0}\u{2003}", "Texte insécable", "")
        );
        assert_eq!(parts("a"), ("", "a", ""));
    }

    #[test]
    fn blank_lines_have_no_content() {
        for line in ["", " ", "\t\t", "   \u{a0} ", "\r"] {
            let layout = LineLayout::of(line);
            assert!(layout.is_blank(), "{line:?}");
            assert_eq!(layout.content(line), "");
            assert_eq!(layout.indent(line), line);
            assert_eq!(layout.trailing(line), "");
            assert_eq!(
                layout.reassemble(line, ""),
                line,
                "a blank line comes back unchanged"
            );
        }
        assert!(!LineLayout::of(" x ").is_blank());
    }

    #[test]
    fn reassemble_keeps_indent_and_trailing() {
        let line = "  - Le chat dort.  ";
        let layout = LineLayout::of(line);
        assert_eq!(layout.content(line), "- Le chat dort.");
        assert_eq!(
            layout.reassemble(line, "- The cat sleeps."),
            "  - The cat sleeps.  "
        );
        assert_eq!(
            layout.reassemble(line, "  - The cat sleeps. \n"),
            "  - The cat sleeps.  "
        );
    }

    #[test]
    fn reassemble_never_breaks_the_line() {
        let line = "\tUne phrase.";
        let layout = LineLayout::of(line);
        let out = layout.reassemble(line, "One\nsentence\r\nhere\u{2028}and\u{85}there\u{0B}.");
        assert_eq!(out, "\tOne sentence  here and there .");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn content_range_matches_content() {
        let line = "   Texte  ";
        let layout = LineLayout::of(line);
        assert_eq!(&line[layout.content_range()], layout.content(line));
    }

    #[test]
    fn a_foreign_line_does_not_panic() {
        let layout = LineLayout::of("      très long texte");
        let other = "é";
        assert_eq!(layout.content(other), "");
        let _ = layout.reassemble(other, "x");
        let _ = layout.indent(other);
        let _ = layout.trailing(other);
    }

    #[test]
    fn odd_inputs() {
        for line in [
            "\u{0}\u{1}",
            "😀 ",
            " Привет мир. ",
            "\u{feff}Texte",
            "«»",
            "...",
        ] {
            let layout = LineLayout::of(line);
            let rebuilt = format!(
                "{}{}{}",
                layout.indent(line),
                layout.content(line),
                layout.trailing(line)
            );
            assert_eq!(rebuilt, line);
            assert_eq!(layout.reassemble(line, layout.content(line)), line);
        }
    }
}
