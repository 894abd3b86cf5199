//! Any text as Markdown: the spans must be ordered, within bounds, on character boundaries,
//! and replacing them must keep every byte outside them.
#![no_main]

use dragoman::text::markdown::{replace_spans, translatable_spans};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doc = String::from_utf8_lossy(data);
    let spans = translatable_spans(&doc);
    let mut end = 0;
    for span in &spans {
        assert!(end <= span.start && span.start < span.end && span.end <= doc.len());
        assert!(doc.is_char_boundary(span.start) && doc.is_char_boundary(span.end));
        end = span.end;
    }
    let same: Vec<String> = spans.iter().map(|r| doc[r.clone()].to_string()).collect();
    assert_eq!(replace_spans(&doc, &spans, &same), doc.as_ref());
});
