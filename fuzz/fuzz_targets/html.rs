//! Any bytes as an HTML page (malformed included), its blocks "translated" by reversing their
//! words: reading never panics, spans lie on character boundaries and nest, and the page
//! written back keeps every byte outside the blocks.
#![no_main]

use dragoman::documents::Format;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_document(Format::Html, &String::from_utf8_lossy(data));
});
