//! Any text as a Markdown document, its blocks "translated" by reversing their words: reading
//! never panics, every span lies on character boundaries inside its block and nests, and
//! writing keeps every byte outside the blocks.
#![no_main]

use dragoman::documents::Format;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_document(Format::Markdown, &String::from_utf8_lossy(data));
});
