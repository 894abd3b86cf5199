//! transformers 5's `T5Tokenizer` (also mT5's): whatever the repo ships — `tokenizer.json` or
//! only `spiece.model` — transformers keeps just the vocabulary, its scores and the
//! SentencePiece normalization map, and rebuilds the rest the same way every time. So does this.

use std::path::Path;

use serde_json::Value;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::AddedToken;

use super::sentencepiece::{PieceType, SentencePieceModel};
use super::{token_name, SpecialTokenNames};
use crate::error::{Error, Result};

/// `T5Tokenizer` passes `unk_id=2` to its Unigram model whatever the vocabulary says.
const UNK_ID: usize = 2;

/// The vocabulary (pieces and scores), normalization map and special tokens of a T5 repo.
struct Parts {
    vocab: Vec<(String, f64)>,
    normalizer: Option<NormalizerWrapper>,
    specials: Vec<String>,
}

pub fn load(dir: &Path, config: &Value) -> Result<tokenizers::Tokenizer> {
    let json = dir.join("tokenizer.json");
    let parts = if json.is_file() {
        from_tokenizer_json(&json)?
    } else {
        let extra_ids = config
            .get("extra_ids")
            .and_then(Value::as_u64)
            .unwrap_or(100) as usize;
        from_spiece(&dir.join("spiece.model"), extra_ids)?
    };
    let names = SpecialTokenNames {
        eos: token_name(config, "eos_token", "</s>"),
        unk: token_name(config, "unk_token", "<unk>"),
        pad: token_name(config, "pad_token", "<pad>"),
        additional: Vec::new(),
    };
    let unigram = Unigram::from(parts.vocab, Some(UNK_ID), false)
        .map_err(|e| Error::file(dir, format!("invalid T5 vocabulary: {e}")))?;
    let mut tokenizer = tokenizers::Tokenizer::new(unigram);
    tokenizer
        .with_normalizer(parts.normalizer)
        .map_err(|e| Error::file(dir, format!("invalid normalizer: {e}")))?;
    let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::WhitespaceSplit(WhitespaceSplit),
        PreTokenizerWrapper::Metaspace(metaspace.clone()),
    ])));
    tokenizer.with_decoder(Some(DecoderWrapper::Metaspace(metaspace)));
    let eos_id = tokenizer
        .token_to_id(&names.eos)
        .ok_or_else(|| Error::file(dir, format!("{:?} is not in the vocabulary", names.eos)))?;
    let template = TemplateProcessing::builder()
        .try_single(format!("$A {}", names.eos))
        .and_then(|b| b.try_pair(format!("$A {0} $B {0}", names.eos)))
        .map_err(|e| Error::file(dir, format!("invalid eos token {:?}: {e}", names.eos)))?
        .special_tokens(vec![(names.eos.clone(), eos_id)])
        .build()
        .map_err(|e| Error::file(dir, format!("invalid eos token {:?}: {e}", names.eos)))?;
    tokenizer.with_post_processor(Some(template));
    let mut specials = vec![names.pad, names.eos, names.unk];
    specials.extend(parts.specials);
    let specials: Vec<AddedToken> = specials
        .into_iter()
        .map(|s| AddedToken::from(s, true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| Error::file(dir, format!("invalid special tokens: {e}")))?;
    Ok(tokenizer)
}

/// Vocabulary and normalization map from a Unigram `tokenizer.json`; its other parts are
/// ignored, as transformers ignores them. Its added tokens stay special.
fn from_tokenizer_json(path: &Path) -> Result<Parts> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| Error::file(path, format!("invalid JSON: {e}")))?;
    let model = &json["model"];
    if model["type"] != "Unigram" {
        return Err(Error::file(
            path,
            "a T5 tokenizer.json must hold a Unigram model",
        ));
    }
    let vocab = model["vocab"]
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .map(|e| Some((e.get(0)?.as_str()?.to_string(), e.get(1)?.as_f64()?)))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| Error::file(path, "model.vocab is not a list of [piece, score]"))?;
    let normalizer = find_precompiled(&json["normalizer"])
        .map(|n| serde_json::from_value::<NormalizerWrapper>(n.clone()))
        .transpose()
        .map_err(|e| Error::file(path, format!("invalid precompiled_charsmap: {e}")))?;
    let specials = json["added_tokens"]
        .as_array()
        .map(|tokens| {
            tokens
                .iter()
                .filter(|t| t["special"] == true)
                .filter_map(|t| t["content"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Parts {
        vocab,
        normalizer,
        specials,
    })
}

/// The `Precompiled` normalizer, alone or inside a `Sequence`.
pub(crate) fn find_precompiled(normalizer: &Value) -> Option<&Value> {
    match normalizer["type"].as_str()? {
        "Precompiled" => Some(normalizer),
        "Sequence" => normalizer["normalizers"]
            .as_array()?
            .iter()
            .find_map(find_precompiled),
        _ => None,
    }
}

/// Vocabulary from `spiece.model`, with `extra_ids` sentinels `<extra_id_{N-1}>` … `<extra_id_0>`
/// appended (transformers' T5 converter order); control and user-defined pieces are special.
fn from_spiece(path: &Path, extra_ids: usize) -> Result<Parts> {
    let spm = SentencePieceModel::from_file(path)?;
    let mut vocab: Vec<(String, f64)> = spm
        .pieces
        .iter()
        .map(|p| (p.piece.clone(), p.score as f64))
        .collect();
    let mut specials: Vec<String> = spm
        .pieces
        .iter()
        .filter(|p| matches!(p.kind, PieceType::Control | PieceType::UserDefined))
        .map(|p| p.piece.clone())
        .collect();
    for i in (0..extra_ids).rev() {
        vocab.push((format!("<extra_id_{i}>"), 0.0));
        specials.push(format!("<extra_id_{i}>"));
    }
    let normalizer = if spm.precompiled_charsmap.is_empty() {
        None
    } else {
        Some(NormalizerWrapper::Precompiled(
            Precompiled::from(&spm.precompiled_charsmap)
                .map_err(|e| Error::file(path, format!("invalid precompiled_charsmap: {e}")))?,
        ))
    };
    Ok(Parts {
        vocab,
        normalizer,
        specials,
    })
}
