//! Text layout and segmentation: how a line of input becomes the sentences the model sees,
//! and how their translations become a line again.
//!
//! The pipeline, for each input line:
//!
//! 1. [`LineLayout::of`] splits the line into indentation, content and trailing white space;
//!    a blank line (empty or white space only) has no content and is passed through as is.
//! 2. [`split_sentences`] cuts the content into sentences (byte ranges, trimmed; only white
//!    space between them), with UAX #29 boundaries and French rules for abbreviations,
//!    initials, numbers, quotes « … », ellipses and dialogue dashes.
//! 3. [`split_long`] cuts a sentence that has more tokens than the model accepts at clause
//!    boundaries, then at white space, then between characters; the caller says so on
//!    stderr.
//! 4. The translations are joined back (by the source's spacing between sentences) and
//!    [`LineLayout::reassemble`] restores indentation and trailing white space, keeping the
//!    output to exactly one line per input line.
//!
//! [`unexpected_language`] tells, for a warning, when an input is not in the model's source
//! language.
//!
//! Every function here is total over `&str` (no panics, control characters and any script
//! included) and linear in the input, apart from the token counting `split_long` asks for.

pub mod alignment;
mod language;
mod lines;
mod long;
pub mod paragraphs;
mod segment;
pub mod transfer;

pub use language::unexpected_language;
pub use lines::{one_line, LineLayout};
pub use long::split_long;
pub use segment::split_sentences;

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole pipeline with a stand-in translator (uppercasing each sentence), joined
    /// the way the translate task joins: by the source's spacing between sentences.
    fn translate_lines(lines: &[&str], max_tokens: usize) -> Vec<String> {
        let words = |s: &str| s.split_whitespace().count() + 1;
        lines
            .iter()
            .map(|line| {
                let layout = LineLayout::of(line);
                let content = layout.content(line);
                let ranges = split_sentences(content);
                let mut out = String::new();
                for (k, range) in ranges.iter().enumerate() {
                    if k > 0 {
                        out.push_str(&content[ranges[k - 1].end..range.start]);
                    }
                    let sentence = &content[range.clone()];
                    let pieces: Vec<String> = split_long(sentence, max_tokens, &words)
                        .into_iter()
                        .map(|r| sentence[r].to_uppercase())
                        .collect();
                    out.push_str(&pieces.join(" "));
                }
                layout.reassemble(line, &out)
            })
            .collect()
    }

    #[test]
    fn five_lines_in_five_lines_out() {
        let lines = [
            "Bonjour.",
            "  Comment allez-vous ?",
            "",
            "\t— Très bien, merci ! Et vous ?",
            "   ",
        ];
        let out = translate_lines(&lines, 100);
        assert_eq!(
            out,
            [
                "BONJOUR.",
                "  COMMENT ALLEZ-VOUS ?",
                "",
                "\t— TRÈS BIEN, MERCI ! ET VOUS ?",
                "   "
            ]
        );
    }

    #[test]
    fn every_line_gives_one_line_whatever_it_holds() {
        let lines = [
            "M. Dupont arriva. « Bonjour ! » dit-il.\u{2028}Puis\rrien.  ",
            "\u{0}\u{1b}[0m 😀 Привет. 字。",
            "une phrase bien trop longue, avec des virgules, et encore des mots ici",
        ];
        let out = translate_lines(&lines, 4);
        assert_eq!(out.len(), lines.len());
        for line in &out {
            assert_eq!(line.lines().count(), 1, "{line:?}");
            assert!(!line.contains(['\u{2028}', '\r', '\n']), "{line:?}");
        }
        assert!(
            out[0].ends_with("  "),
            "trailing white space kept: {:?}",
            out[0]
        );
        assert_eq!(
            out[2],
            "UNE PHRASE BIEN TROP LONGUE, AVEC DES VIRGULES, ET ENCORE DES MOTS ICI"
        );
    }
}
