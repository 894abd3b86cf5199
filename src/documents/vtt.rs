//! WebVTT (`.vtt`): the `WEBVTT` header, `NOTE`, `STYLE` and `REGION` blocks, cue
//! identifiers and timing lines with their settings are copied byte for byte; the cues'
//! text (entities decoded, tags as spans) is translated a sentence at a time over the cues
//! (see [`super::cues`]) and written back with `&`, `<`, `>` as entities. A file without the
//! header, or a timing line that cannot be read, is an error naming its line.

use super::cues::{self, CueBlocks};
use super::{Block, Document, Escape, TranslatedBlock};
use crate::error::{Error, Result};

pub struct Vtt {
    source: String,
    cues: CueBlocks,
}

impl Vtt {
    pub fn read(source: &str) -> Result<Self> {
        let lines = cues::lines(source);
        let header = lines.first().map_or("", |l| l.text);
        let after = header.strip_prefix("WEBVTT");
        if !after.is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return Err(Error::Input(
                "line 1: not a WebVTT file (its first line must be WEBVTT)".into(),
            ));
        }
        let mut i = 0;
        // The header runs to the first blank line.
        while i < lines.len() && !lines[i].is_blank() {
            i += 1;
        }
        let mut texts = Vec::new();
        loop {
            while i < lines.len() && lines[i].is_blank() {
                i += 1;
            }
            if i >= lines.len() {
                break;
            }
            let first = lines[i].text;
            let is_block = |name: &str| {
                first
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
            };
            if is_block("NOTE") || is_block("STYLE") || is_block("REGION") {
                while i < lines.len() && !lines[i].is_blank() {
                    i += 1;
                }
                continue;
            }
            if !first.contains("-->") {
                i += 1; // a cue identifier
            }
            match lines.get(i) {
                Some(line) if line.text.contains("-->") => {
                    cues::check_timing(i, line, is_time, "[HH:]MM:SS.mmm")?
                }
                Some(line) => {
                    return Err(Error::Input(format!(
                        "line {}: expected a timing line (MM:SS.mmm --> MM:SS.mmm), found {:?}",
                        i + 1,
                        line.text
                    )))
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
            cues: CueBlocks::new(source, texts, Escape::HtmlText),
        })
    }
}

fn is_time(time: &str) -> bool {
    let Some((clock, millis)) = time.split_once('.') else {
        return false;
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let minutes_seconds = |m: &&str, s: &&str| {
        cues::digits(m, 2, 2) && cues::digits(s, 2, 2) && *m < "60" && *s < "60"
    };
    let clock_ok = match parts.as_slice() {
        [m, s] => minutes_seconds(m, s),
        [h, m, s] => cues::digits(h, 2, 4) && minutes_seconds(m, s),
        _ => false,
    };
    clock_ok && cues::digits(millis, 3, 3)
}

impl Document for Vtt {
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
    use crate::documents::testing;

    fn shout(source: &str) -> String {
        testing::shout(&Vtt::read(source).unwrap())
    }

    #[test]
    fn headers_notes_styles_and_settings_are_copied() {
        let source = "WEBVTT - titre\nKind: captions\n\nNOTE une note\nsur deux lignes\n\nSTYLE\n::cue { color: red }\n\nun\n00:01.000 --> 00:02.000 align:start line:0\n<v Marie>Le chat &amp; <i>le chien</i>\n\n00:00:02.100 --> 00:00:03.000\ndorment.\n";
        let want = "WEBVTT - titre\nKind: captions\n\nNOTE une note\nsur deux lignes\n\nSTYLE\n::cue { color: red }\n\nun\n00:01.000 --> 00:02.000 align:start line:0\n<v Marie>LE CHAT &amp; <i>LE CHIEN</i>\n\n00:00:02.100 --> 00:00:03.000\nDORMENT.\n";
        assert_eq!(shout(source), want);
    }

    #[test]
    fn a_missing_header_or_a_broken_timestamp_names_its_line() {
        let err = Vtt::read("00:01.000 --> 00:02.000\nUn.\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 1: not a WebVTT file"), "{err}");
        let err = Vtt::read("WEBVTT\n\n00:01.000 --> 00:02.00\nUn.\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("line 3: invalid timestamp \"00:02.00\""),
            "{err}"
        );
    }
}
