//! SubRip (`.srt`): numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm` timings, text lines. The
//! numbers, the timing lines (with any position after them) and the blank lines are copied
//! byte for byte; the cues' text is translated a sentence at a time over the cues (see
//! [`super::cues`]). A timing line that cannot be read is an error naming its line.

use super::cues::{self, CueBlocks, Line};
use super::{Block, Document, Escape, TranslatedBlock};
use crate::error::{Error, Result};

pub struct Srt {
    source: String,
    cues: CueBlocks,
}

impl Srt {
    pub fn read(source: &str) -> Result<Self> {
        let lines = cues::lines(source);
        let mut texts = Vec::new();
        let mut i = 0;
        loop {
            while i < lines.len() && lines[i].is_blank() {
                i += 1;
            }
            if i >= lines.len() {
                break;
            }
            if !lines[i].text.contains("-->") {
                if !cues::digits(lines[i].text.trim(), 1, 12) {
                    return Err(bad_line(
                        i,
                        "expected a cue number or a timing line",
                        &lines[i],
                    ));
                }
                i += 1;
            }
            match lines.get(i) {
                Some(line) if line.text.contains("-->") => {
                    cues::check_timing(i, line, is_time, "HH:MM:SS,mmm")?
                }
                Some(line) => {
                    return Err(bad_line(
                        i,
                        "expected a timing line (HH:MM:SS,mmm --> HH:MM:SS,mmm)",
                        line,
                    ))
                }
                None => {
                    return Err(Error::Input(format!(
                        "line {}: the file ends before the cue's timing line",
                        i + 1
                    )))
                }
            }
            let (text, next) = cues::cue_text(&lines, i + 1);
            texts.extend(text);
            i = next;
        }
        Ok(Self {
            source: source.to_string(),
            cues: CueBlocks::new(source, texts, Escape::None),
        })
    }
}

fn bad_line(index: usize, what: &str, line: &Line) -> Error {
    Error::Input(format!("line {}: {what}, found {:?}", index + 1, line.text))
}

fn is_time(time: &str) -> bool {
    let Some((clock, millis)) = time.split_once([',', '.']) else {
        return false;
    };
    let parts: Vec<&str> = clock.split(':').collect();
    matches!(parts.as_slice(), [h, m, s]
        if cues::digits(h, 1, 3) && cues::digits(m, 2, 2) && cues::digits(s, 2, 2)
            && m < &"60" && s < &"60")
        && cues::digits(millis, 1, 3)
}

impl Document for Srt {
    fn blocks(&self) -> &[Block] {
        &self.cues.blocks
    }

    fn write(&self, translated: &[TranslatedBlock], _language: &str) -> Vec<u8> {
        self.cues.write(&self.source, translated).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_and_numbers_are_kept_and_a_sentence_spans_its_cues() {
        let source = "1\r\n00:00:01,000 --> 00:00:02,500\r\nLe chat dort\r\n\r\n2\r\n00:00:02,600 --> 00:00:04,000 X1:10\r\nsur le canapé.\r\n";
        let srt = Srt::read(source).unwrap();
        assert_eq!(srt.blocks().len(), 1);
        assert_eq!(srt.blocks()[0].text, "Le chat dort sur le canapé.");
        let placed: Vec<TranslatedBlock> = srt
            .blocks()
            .iter()
            .map(|b| TranslatedBlock {
                text: b.text.to_uppercase(),
                spans: b.spans.iter().map(|s| s.range.clone()).collect(),
            })
            .collect();
        let out = String::from_utf8(srt.write(&placed, "en")).unwrap();
        assert_eq!(
            out,
            source
                .replace("Le chat dort", "LE CHAT DORT")
                .replace("sur le canapé.", "SUR LE CANAPÉ.")
        );
    }

    #[test]
    fn a_broken_timestamp_names_its_line() {
        let source =
            "1\n00:00:01,000 --> 00:00:02,500\nUn.\n\n2\n00:00:0x,000 --> 00:00:04,000\nDeux.\n";
        let err = Srt::read(source).err().unwrap().to_string();
        assert!(
            err.contains("line 6: invalid timestamp \"00:00:0x,000\""),
            "{err}"
        );
        let err = Srt::read("1\nBonjour\n").err().unwrap().to_string();
        assert!(err.contains("line 2: expected a timing line"), "{err}");
        let err = Srt::read("Bonjour\n").err().unwrap().to_string();
        assert!(err.contains("line 1:"), "{err}");
        assert!(Srt::read("").unwrap().blocks().is_empty());
    }
}
