//! Any bytes as a SentencePiece model protobuf: an error is fine, a panic is not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dragoman::tokenizer::sentencepiece::SentencePieceModel::from_bytes(data);
});
