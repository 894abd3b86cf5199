//! Span transfer on arbitrary texts, spans and alignments: every placed span lies inside the
//! target on character boundaries, children stay inside their parents, siblings never
//! overlap, and segments (subtitle cues) come out in order.
#![no_main]

use dragoman::text::alignment::words;
use dragoman::text::transfer::{parents, transfer, AlignedSentence, Segments};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (source, rest) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let (target, control) = rest.split_at(rest.char_indices().nth(rest.chars().count() * 3 / 4).map_or(0, |(i, _)| i));
    let bytes: Vec<usize> = control.bytes().map(usize::from).collect();
    let boundaries: Vec<usize> = source.char_indices().map(|(i, _)| i).chain([source.len()]).collect();
    // Nested spans from pairs of boundaries, kept only where they nest with those before.
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for pair in bytes.chunks(2).take(8) {
        let a = boundaries[pair[0] % boundaries.len()];
        let b = boundaries[pair.get(1).copied().unwrap_or(0) % boundaries.len()];
        let span = a.min(b)..a.max(b);
        let nests = spans.iter().all(|s| {
            span.end <= s.start || s.end <= span.start || (s.start <= span.start && span.end <= s.end)
        });
        if nests && spans.last().is_none_or(|l| l.start <= span.start) {
            spans.push(span);
        }
    }
    let (sw, tw) = (words(source).len().max(1), words(target).len().max(1));
    let alignment: Vec<(usize, usize)> =
        bytes.chunks(2).map(|p| (p[0] % sw, p.get(1).copied().unwrap_or(0) % tw)).collect();
    let (s, t) = (0..source.len(), 0..target.len());
    let sentence = [AlignedSentence { source: &s, target: &t, alignment: &alignment }];
    let parents = parents(&spans);
    for segments in [Segments::None, Segments::TopLevel, Segments::Nested] {
        let placed = transfer(source, &spans, &parents, target, &sentence, segments);
        assert_eq!(placed.len(), spans.len());
        for (i, r) in placed.iter().enumerate() {
            assert!(r.start <= r.end && r.end <= target.len());
            assert!(target.is_char_boundary(r.start) && target.is_char_boundary(r.end));
            if let Some(p) = parents[i] {
                assert!(placed[p].start <= r.start && r.end <= placed[p].end, "nested");
            }
            for j in 0..i {
                if parents[j] == parents[i] && !r.is_empty() && !placed[j].is_empty() {
                    assert!(r.end <= placed[j].start || placed[j].end <= r.start, "siblings apart");
                }
            }
        }
    }
});
