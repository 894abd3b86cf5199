//! Any text as a Word document's body (inside a well-formed zip): reading never panics (bad
//! XML is an error naming the part), spans nest on character boundaries, and the paragraphs
//! "translated" by reversing their words are written back into a zip that reads again.
#![no_main]

use std::io::Write;

use dragoman::documents::Format;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut archive = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut archive);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("word/document.xml", options).unwrap();
        zip.write_all(data).unwrap();
        zip.start_file("word/media/a.bin", options).unwrap();
        zip.write_all(b"kept").unwrap();
        zip.finish().unwrap();
    }
    common::check_binary_document(Format::Docx, archive.get_ref());
});
