//! Any bytes as a VTT file: reading never panics (a broken file is an error, not a crash);
//! a file that reads has spans on character boundaries that nest, and the cues "translated"
//! by reversing their words are written back without a panic.
#![no_main]

use dragoman::documents::Format;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_document(Format::Vtt, &String::from_utf8_lossy(data));
});
