//! Reads a SentencePiece model file (`*.spm`, `spiece.model`): a `ModelProto` protobuf.
//! Only the fields tokenization needs are decoded; unknown fields are skipped, as protobuf
//! readers must.

use std::path::Path;

use crate::error::{Error, Result};

/// A piece's type, as `ModelProto.SentencePiece.Type` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// Which algorithm the model was trained with (`TrainerSpec.model_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

#[derive(Debug, Clone)]
pub struct SentencePieceModel {
    pub pieces: Vec<Piece>,
    pub model_type: ModelType,
    pub byte_fallback: bool,
    /// What an unknown piece decodes to (`TrainerSpec.unk_surface`, default " ⁇ ").
    pub unk_surface: String,
    /// `NormalizerSpec.precompiled_charsmap`: the compiled normalization rules (e.g. nmt_nfkc).
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

impl SentencePieceModel {
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
        Self::from_bytes(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid SentencePiece model: {e}")))
    }

    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut model = SentencePieceModel {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            byte_fallback: false,
            unk_surface: " \u{2047} ".to_string(),
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => model.pieces.push(parse_piece(b)?),
                (2, Value::Bytes(b)) => parse_trainer_spec(b, &mut model)?,
                (3, Value::Bytes(b)) => parse_normalizer_spec(b, &mut model)?,
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err("it holds no pieces".into());
        }
        Ok(model)
    }

    pub fn unk_id(&self) -> Option<usize> {
        self.pieces
            .iter()
            .position(|p| p.kind == PieceType::Unknown)
    }
}

fn parse_piece(bytes: &[u8]) -> std::result::Result<Piece, String> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                piece.piece = String::from_utf8(b.to_vec()).map_err(|_| "a piece is not UTF-8")?
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(t)) => {
                piece.kind = match t {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    other => return Err(format!("unknown piece type {other}")),
                }
            }
            _ => {}
        }
    }
    Ok(piece)
}

fn parse_trainer_spec(
    bytes: &[u8],
    model: &mut SentencePieceModel,
) -> std::result::Result<(), String> {
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (3, Value::Varint(t)) => {
                model.model_type = match t {
                    1 => ModelType::Unigram,
                    2 => ModelType::Bpe,
                    3 => ModelType::Word,
                    4 => ModelType::Char,
                    other => return Err(format!("unknown model type {other}")),
                }
            }
            (35, Value::Varint(v)) => model.byte_fallback = v != 0,
            (44, Value::Bytes(b)) => {
                model.unk_surface =
                    String::from_utf8(b.to_vec()).map_err(|_| "unk_surface is not UTF-8")?
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_normalizer_spec(
    bytes: &[u8],
    model: &mut SentencePieceModel,
) -> std::result::Result<(), String> {
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (2, Value::Bytes(b)) => model.precompiled_charsmap = b.to_vec(),
            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
            (5, Value::Varint(v)) => model.escape_whitespaces = v != 0,
            _ => {}
        }
    }
    Ok(())
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A minimal protobuf wire-format reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated field")?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn next_field(&mut self) -> std::result::Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "field too long")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        for bytes in [
            &b""[..],
            b"\xff\xff\xff",
            b"\x0a\x7f",
            b"not a model at all",
            b"\x0d\x00",
        ] {
            assert!(SentencePieceModel::from_bytes(bytes).is_err());
        }
    }

    #[test]
    fn reads_pieces_and_normalizer() {
        // piece { piece: "▁a" score: -1.5 type: NORMAL }, normalizer_spec { add_dummy_prefix: false }
        let mut piece_msg = vec![0x0a, "▁a".len() as u8];
        piece_msg.extend("▁a".as_bytes());
        piece_msg.push(0x15);
        piece_msg.extend((-1.5f32).to_le_bytes());
        piece_msg.extend([0x18, 1]);
        let mut bytes = vec![0x0a, piece_msg.len() as u8];
        bytes.extend(&piece_msg);
        bytes.extend([0x1a, 2, 0x18, 0]);
        let model = SentencePieceModel::from_bytes(&bytes).unwrap();
        assert_eq!(model.pieces.len(), 1);
        assert_eq!(model.pieces[0].piece, "▁a");
        assert_eq!(model.pieces[0].score, -1.5);
        assert!(!model.add_dummy_prefix);
        assert!(model.remove_extra_whitespaces);
    }
}
