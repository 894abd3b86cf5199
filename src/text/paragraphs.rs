//! `--paragraphs`: plain text whose paragraphs are hard-wrapped. The lines between blank
//! lines are one text for segmentation (a sentence may run across them), and its
//! translation is wrapped again to the width of the paragraph's longest source line.

/// A run of input lines: a paragraph (its non-blank lines), or one blank line.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    /// A blank line (empty or white space only), passed through as it is.
    Blank(usize),
    Paragraph(Paragraph),
}

/// Lines `first..first + count`, joined into `text` (each line trimmed, joined by one
/// space), with the first line's indentation and the width to wrap the translation at.
#[derive(Debug, Clone, PartialEq)]
pub struct Paragraph {
    pub first: usize,
    pub count: usize,
    pub text: String,
    pub indent: String,
    pub width: usize,
}

impl Unit {
    pub fn paragraph(&self) -> Option<&Paragraph> {
        match self {
            Unit::Paragraph(paragraph) => Some(paragraph),
            Unit::Blank(_) => None,
        }
    }
}

impl Paragraph {
    /// `translation` laid out as this paragraph: its indentation, its width.
    pub fn rewrap(&self, translation: &str) -> Vec<String> {
        rewrap(translation, &self.indent, self.width)
    }
}

/// The paragraphs and blank lines of `lines`, in order.
pub fn paragraphs(lines: &[&str]) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            units.push(Unit::Blank(i));
            i += 1;
            continue;
        }
        let first = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        let block = &lines[first..i];
        let indent: String = block[0].chars().take_while(|c| c.is_whitespace()).collect();
        let width = block
            .iter()
            .map(|l| textwrap::core::display_width(l.trim_end()))
            .max()
            .unwrap_or(0);
        let text = block.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        units.push(Unit::Paragraph(Paragraph {
            first,
            count: block.len(),
            text,
            indent,
            width,
        }));
    }
    units
}

/// `text` wrapped at `width` display columns, each line starting with `indent` (which counts
/// towards the width); words are never broken, so a word wider than the room gets a line of
/// its own. An empty text is one empty line.
fn rewrap(text: &str, indent: &str, width: usize) -> Vec<String> {
    let room = width
        .saturating_sub(textwrap::core::display_width(indent))
        .max(1);
    let options = textwrap::Options::new(room)
        .break_words(false)
        .word_separator(textwrap::WordSeparator::AsciiSpace);
    let lines = textwrap::wrap(text, options);
    if lines.is_empty() {
        return vec![String::new()];
    }
    lines
        .into_iter()
        .map(|line| format!("{indent}{line}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_join_their_lines_and_blank_lines_stay() {
        let lines = [
            "  Le chat dort",
            "sur le canapé. Il",
            "rêve.",
            "",
            "   ",
            "Fin.",
        ];
        let units = paragraphs(&lines);
        assert_eq!(
            units,
            vec![
                Unit::Paragraph(Paragraph {
                    first: 0,
                    count: 3,
                    text: "Le chat dort sur le canapé. Il rêve.".into(),
                    indent: "  ".into(),
                    width: 17,
                }),
                Unit::Blank(3),
                Unit::Blank(4),
                Unit::Paragraph(Paragraph {
                    first: 5,
                    count: 1,
                    text: "Fin.".into(),
                    indent: String::new(),
                    width: 4,
                }),
            ]
        );
    }

    #[test]
    fn rewrap_keeps_words_whole_within_the_width() {
        let text = "The cat sleeps on the sofa. It dreams of a very extraordinarily long word.";
        let lines = rewrap(text, "  ", 20);
        assert!(lines.iter().all(|l| l.starts_with("  ")), "{lines:?}");
        for line in &lines {
            let words_fit = line.chars().count() <= 20 || !line.trim().contains(' ');
            assert!(words_fit, "{line:?} in {lines:?}");
        }
        let rejoined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        assert_eq!(rejoined, text.split_whitespace().collect::<Vec<_>>());
        assert_eq!(rewrap("", "", 10), vec![String::new()]);
        // Display width, not bytes: accented letters and CJK count as they show.
        assert_eq!(rewrap("été été", "", 7), vec!["été été"]);
        assert_eq!(rewrap("你好 你好", "", 5), vec!["你好", "你好"]);
    }
}
