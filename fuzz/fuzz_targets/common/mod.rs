//! What every document fuzz target checks.

use dragoman::documents::{Format, TranslatedBlock};
use dragoman::text::alignment::words;
use dragoman::text::transfer::AlignedSentence;

/// Reads `source`, checks its blocks' spans, "translates" each block by reversing its words
/// (an alignment that crosses every span) and writes it back.
pub fn check_document(format: Format, source: &str) {
    check_binary_document(format, source.as_bytes());
}

/// [`check_document`] for a document read from bytes; a binary output must read again.
pub fn check_binary_document(format: Format, source: &[u8]) {
    let Ok(document) = format.read_bytes(source) else {
        return;
    };
    let mut translated = Vec::new();
    for block in document.blocks() {
        let ranges: Vec<_> = block.spans.iter().map(|s| s.range.clone()).collect();
        for r in &ranges {
            assert!(r.start <= r.end && r.end <= block.text.len(), "{r:?} in {:?}", block.text);
            assert!(block.text.is_char_boundary(r.start) && block.text.is_char_boundary(r.end));
        }
        let parents: Vec<Option<usize>> = block.spans.iter().map(|s| s.parent).collect();
        assert_eq!(parents, parents_of(&ranges, &parents));
        for (i, p) in parents.iter().enumerate() {
            if let Some(p) = p {
                assert!(ranges[*p].start <= ranges[i].start && ranges[i].end <= ranges[*p].end);
            }
        }
        let source_words = words(&block.text);
        let target: String = source_words
            .iter()
            .rev()
            .map(|w| &block.text[w.clone()])
            .collect::<Vec<_>>()
            .join(" ");
        let n = source_words.len();
        let alignment: Vec<(usize, usize)> = (0..n).map(|i| (i, n - 1 - i)).collect();
        let (s, t) = (0..block.text.len(), 0..target.len());
        let sentence = [AlignedSentence {
            source: &s,
            target: &t,
            alignment: &alignment,
        }];
        let placed = TranslatedBlock::place(block, target, &sentence);
        for (i, r) in placed.spans.iter().enumerate() {
            assert!(r.start <= r.end && r.end <= placed.text.len());
            assert!(placed.text.is_char_boundary(r.start) && placed.text.is_char_boundary(r.end));
            if let Some(p) = parents[i] {
                let p = &placed.spans[p];
                assert!(p.start <= r.start && r.end <= p.end, "nesting kept");
            }
        }
        let _ = placed.render(block);
        translated.push(placed);
    }
    let written = document.write(&translated, "en");
    if format.is_binary() {
        assert!(format.read_bytes(&written).is_ok(), "the output reads again");
    } else {
        assert!(std::str::from_utf8(&written).is_ok());
    }
}

/// The given parents, each checked to come before its child and to contain it.
fn parents_of(ranges: &[std::ops::Range<usize>], parents: &[Option<usize>]) -> Vec<Option<usize>> {
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = *p {
            assert!(p < i, "a parent comes first");
            assert!(ranges[p].start <= ranges[i].start && ranges[i].end <= ranges[p].end);
        }
    }
    parents.to_vec()
}
