//! Any text through the line pipeline: layout, sentences, splitting of long sentences. It must
//! not panic, and the ranges must be in order, on character boundaries, within the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let layout = dragoman::text::LineLayout::of(line);
        let content = layout.content(line);
        let sentences = dragoman::text::split_sentences(content);
        let mut end = 0;
        for range in &sentences {
            assert!(end <= range.start && range.start <= range.end && range.end <= content.len());
            assert!(content.is_char_boundary(range.start) && content.is_char_boundary(range.end));
            end = range.end;
            // A token counter of one token per character, with a small limit.
            let sentence = &content[range.clone()];
            let count = |s: &str| s.chars().count();
            for part in dragoman::text::split_long(sentence, 7, &count) {
                assert!(part.end <= sentence.len());
                assert!(sentence.is_char_boundary(part.start) && sentence.is_char_boundary(part.end));
            }
        }
        let _ = layout.reassemble(line, content);
    }
});
