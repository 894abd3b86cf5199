//! transformers 5's `NllbTokenizer` (NLLB-200), natively. Whatever the repo ships —
//! `tokenizer.json`, or only `sentencepiece.bpe.model` — transformers keeps the BPE vocabulary,
//! its merges and the SentencePiece normalization map, and rebuilds the rest its own way
//! (`tokenization_nllb.py`): this does the same. The source language is a token before the
//! text (`[fra_Latn] … </s>`, or `… </s> [fra_Latn]` with `legacy_behaviour`).

use std::path::Path;

use serde_json::Value;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{NormalizerWrapper, Precompiled, Replace, Sequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

use super::sentencepiece::SentencePieceModel;
use super::t5::find_precompiled;
use super::{token_content, token_name, Language};
use crate::error::{Error, Result};

/// `tokenization_nllb.FAIRSEQ_LANGUAGE_CODES`: the language tokens, in id order, of a
/// tokenizer whose files name none.
const FAIRSEQ_LANGUAGE_CODES: &[&str] = &[
    "ace_Arab", "ace_Latn", "acm_Arab", "acq_Arab", "aeb_Arab", "afr_Latn", "ajp_Arab", "aka_Latn",
    "amh_Ethi", "apc_Arab", "arb_Arab", "ars_Arab", "ary_Arab", "arz_Arab", "asm_Beng", "ast_Latn",
    "awa_Deva", "ayr_Latn", "azb_Arab", "azj_Latn", "bak_Cyrl", "bam_Latn", "ban_Latn", "bel_Cyrl",
    "bem_Latn", "ben_Beng", "bho_Deva", "bjn_Arab", "bjn_Latn", "bod_Tibt", "bos_Latn", "bug_Latn",
    "bul_Cyrl", "cat_Latn", "ceb_Latn", "ces_Latn", "cjk_Latn", "ckb_Arab", "crh_Latn", "cym_Latn",
    "dan_Latn", "deu_Latn", "dik_Latn", "dyu_Latn", "dzo_Tibt", "ell_Grek", "eng_Latn", "epo_Latn",
    "est_Latn", "eus_Latn", "ewe_Latn", "fao_Latn", "pes_Arab", "fij_Latn", "fin_Latn", "fon_Latn",
    "fra_Latn", "fur_Latn", "fuv_Latn", "gla_Latn", "gle_Latn", "glg_Latn", "grn_Latn", "guj_Gujr",
    "hat_Latn", "hau_Latn", "heb_Hebr", "hin_Deva", "hne_Deva", "hrv_Latn", "hun_Latn", "hye_Armn",
    "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn", "ita_Latn", "jav_Latn", "jpn_Jpan", "kab_Latn",
    "kac_Latn", "kam_Latn", "kan_Knda", "kas_Arab", "kas_Deva", "kat_Geor", "knc_Arab", "knc_Latn",
    "kaz_Cyrl", "kbp_Latn", "kea_Latn", "khm_Khmr", "kik_Latn", "kin_Latn", "kir_Cyrl", "kmb_Latn",
    "kon_Latn", "kor_Hang", "kmr_Latn", "lao_Laoo", "lvs_Latn", "lij_Latn", "lim_Latn", "lin_Latn",
    "lit_Latn", "lmo_Latn", "ltg_Latn", "ltz_Latn", "lua_Latn", "lug_Latn", "luo_Latn", "lus_Latn",
    "mag_Deva", "mai_Deva", "mal_Mlym", "mar_Deva", "min_Latn", "mkd_Cyrl", "plt_Latn", "mlt_Latn",
    "mni_Beng", "khk_Cyrl", "mos_Latn", "mri_Latn", "zsm_Latn", "mya_Mymr", "nld_Latn", "nno_Latn",
    "nob_Latn", "npi_Deva", "nso_Latn", "nus_Latn", "nya_Latn", "oci_Latn", "gaz_Latn", "ory_Orya",
    "pag_Latn", "pan_Guru", "pap_Latn", "pol_Latn", "por_Latn", "prs_Arab", "pbt_Arab", "quy_Latn",
    "ron_Latn", "run_Latn", "rus_Cyrl", "sag_Latn", "san_Deva", "sat_Beng", "scn_Latn", "shn_Mymr",
    "sin_Sinh", "slk_Latn", "slv_Latn", "smo_Latn", "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn",
    "spa_Latn", "als_Latn", "srd_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn", "swh_Latn",
    "szl_Latn", "tam_Taml", "tat_Cyrl", "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai", "tir_Ethi",
    "taq_Latn", "taq_Tfng", "tpi_Latn", "tsn_Latn", "tso_Latn", "tuk_Latn", "tum_Latn", "tur_Latn",
    "twi_Latn", "tzm_Tfng", "uig_Arab", "ukr_Cyrl", "umb_Latn", "urd_Arab", "uzn_Latn", "vec_Latn",
    "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn", "ydd_Hebr", "yor_Latn", "yue_Hant", "zho_Hans",
    "zho_Hant", "zul_Latn",
];

/// NLLB's own code for French, the source when none is asked for.
pub(crate) const FRENCH: &str = "fra_Latn";

pub struct NllbTokenizer {
    /// The BPE tokenizer without a post-processor: the language framing is added here.
    inner: Tokenizer,
    languages: Vec<Language>,
    /// The source language's token.
    source: u32,
    eos: u32,
    /// `legacy_behaviour`: the language token after `</s>` instead of before the text.
    legacy: bool,
}

/// The names of the special tokens, as the class's defaults or tokenizer_config.json give them.
struct Names {
    bos: String,
    eos: String,
    unk: String,
    sep: String,
    pad: String,
    cls: String,
    mask: String,
}

impl NllbTokenizer {
    pub fn load(dir: &Path, config: &Value) -> Result<Self> {
        let names = Names {
            bos: token_name(config, "bos_token", "<s>"),
            eos: token_name(config, "eos_token", "</s>"),
            unk: token_name(config, "unk_token", "<unk>"),
            sep: token_name(config, "sep_token", "</s>"),
            pad: token_name(config, "pad_token", "<pad>"),
            cls: token_name(config, "cls_token", "<s>"),
            mask: token_name(config, "mask_token", "<mask>"),
        };
        let json_path = dir.join("tokenizer.json");
        let tokenizer_json = if json_path.is_file() {
            let text =
                std::fs::read_to_string(&json_path).map_err(|e| Error::file(&json_path, e))?;
            Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| Error::file(&json_path, format!("invalid JSON: {e}")))?,
            )
        } else {
            None
        };
        let (vocab, merges, charsmap) = match &tokenizer_json {
            Some(json) => parts_of_tokenizer_json(json).map_err(|e| Error::file(&json_path, e))?,
            None => {
                let path = dir.join("sentencepiece.bpe.model");
                let spm = SentencePieceModel::from_file(&path)?;
                let (vocab, merges) = parts_of_spm(&spm, &names);
                let charsmap = (!spm.precompiled_charsmap.is_empty()).then(|| {
                    Precompiled::from(&spm.precompiled_charsmap).map_err(|e| {
                        Error::file(&path, format!("invalid precompiled_charsmap: {e}"))
                    })
                });
                (vocab, merges, charsmap.transpose()?)
            }
        };
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token(names.unk.clone())
            .fuse_unk(true)
            .byte_fallback(false)
            .build()
            .map_err(|e| Error::file(dir, format!("invalid NLLB vocabulary: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        if let Some(charsmap) = charsmap {
            let spaces = Replace::new(ReplacePattern::Regex(" {2,}".into()), " ")
                .map_err(|e| Error::file(dir, format!("invalid normalizer: {e}")))?;
            inner
                .with_normalizer(Some(NormalizerWrapper::Sequence(Sequence::new(vec![
                    NormalizerWrapper::Precompiled(charsmap),
                    NormalizerWrapper::Replace(spaces),
                ]))))
                .map_err(|e| Error::file(dir, format!("invalid normalizer: {e}")))?;
        }
        let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
        inner.with_pre_tokenizer(Some(metaspace.clone()));
        inner.with_decoder(Some(DecoderWrapper::Metaspace(metaspace)));

        // Added tokens as transformers 5 adds them, each not yet there taking the next id:
        // the saved added tokens by id, the named special tokens (`<mask>` among them), then
        // the extra ones the config lists (the language codes).
        let saved = saved_added_tokens(config, tokenizer_json.as_ref());
        let listed: Option<Vec<String>> = ["extra_special_tokens", "additional_special_tokens"]
            .iter()
            .find_map(|key| config.get(*key).and_then(Value::as_array))
            .map(|tokens| tokens.iter().filter_map(token_content).collect());
        let mask = AddedToken::from(names.mask.clone(), true)
            .lstrip(true)
            .normalized(true);
        let mut to_add: Vec<AddedToken> = saved;
        for name in [
            &names.bos, &names.eos, &names.unk, &names.sep, &names.pad, &names.cls,
        ] {
            to_add.push(AddedToken::from(name.clone(), true));
        }
        let extra = match listed {
            Some(listed) => {
                to_add.push(mask);
                to_add.extend(listed.iter().map(|t| AddedToken::from(t.clone(), true)));
                listed
            }
            // A repo whose files list no language codes (an old spm-only one): the class's
            // own codes, after the vocabulary, `<mask>` last, as fairseq's dictionary and every
            // NLLB tokenizer.json number them. (transformers 5.24 knows no code at all here and
            // turns every one into `<unk>`: nothing to copy.)
            None => {
                let codes: Vec<String> = FAIRSEQ_LANGUAGE_CODES
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                to_add.extend(codes.iter().map(|t| AddedToken::from(t.clone(), true)));
                to_add.push(mask);
                codes
            }
        };
        let mut seen = std::collections::HashSet::new();
        to_add.retain(|t| seen.insert(t.content.clone()));
        inner
            .add_tokens(to_add)
            .map_err(|e| Error::file(dir, format!("invalid added tokens: {e}")))?;

        let id = |token: &str| {
            inner.token_to_id(token).ok_or_else(|| {
                Error::file(
                    dir,
                    format!("special token {token:?} is not in the vocabulary"),
                )
            })
        };
        let eos = id(&names.eos)?;
        let languages = extra
            .iter()
            .filter(|code| is_nllb_code(code))
            .map(|code| {
                Ok(Language {
                    code: code.clone(),
                    id: id(code)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let source = languages
            .iter()
            .find(|l| l.code == FRENCH)
            .or(languages.first())
            .map(|l| l.id)
            .ok_or_else(|| Error::file(dir, "the NLLB tokenizer defines no language codes"))?;
        Ok(Self {
            inner,
            languages,
            source,
            eos,
            legacy: config
                .get("legacy_behaviour")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    pub fn languages(&self) -> &[Language] {
        &self.languages
    }

    pub fn set_source(&mut self, language: &Language) {
        self.source = language.id;
    }

    pub fn vocab_tokens(&self) -> Vec<(String, u32)> {
        self.inner.get_vocab(true).into_iter().collect()
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Input(format!("cannot tokenize text: {e}")))?;
        let mut ids = Vec::with_capacity(encoding.len() + 2);
        if !self.legacy {
            ids.push(self.source);
        }
        ids.extend_from_slice(encoding.get_ids());
        ids.push(self.eos);
        if self.legacy {
            ids.push(self.source);
        }
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| Error::Input(format!("cannot decode tokens: {e}")))
    }
}

/// `fra_Latn`: three lowercase letters, `_`, a four-letter script code.
fn is_nllb_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 8
        && bytes[..3].iter().all(u8::is_ascii_lowercase)
        && bytes[3] == b'_'
        && bytes[4].is_ascii_uppercase()
        && bytes[5..].iter().all(u8::is_ascii_lowercase)
}

type Parts = (Vocab, Vec<(String, String)>, Option<Precompiled>);

/// The BPE vocabulary, merges and normalization map of a `tokenizer.json`.
fn parts_of_tokenizer_json(json: &Value) -> std::result::Result<Parts, String> {
    let model = &json["model"];
    if model["type"] != "BPE" {
        return Err("an NLLB tokenizer.json must hold a BPE model".into());
    }
    let vocab = model["vocab"]
        .as_object()
        .and_then(|entries| {
            entries
                .iter()
                .map(|(piece, id)| Some((piece.clone(), u32::try_from(id.as_u64()?).ok()?)))
                .collect::<Option<Vocab>>()
        })
        .ok_or("model.vocab is not a map of piece to id")?;
    let merges = model["merges"]
        .as_array()
        .map(|merges| {
            merges
                .iter()
                .map(|m| match m {
                    Value::String(s) => s
                        .split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string())),
                    Value::Array(pair) => Some((
                        pair.first()?.as_str()?.to_string(),
                        pair.get(1)?.as_str()?.to_string(),
                    )),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(Vec::new()))
        .ok_or("model.merges is not a list of pairs")?;
    let charsmap = match find_precompiled(&json["normalizer"])
        .map(|n| serde_json::from_value::<NormalizerWrapper>(n.clone()))
        .transpose()
        .map_err(|e| format!("invalid precompiled_charsmap: {e}"))?
    {
        Some(NormalizerWrapper::Precompiled(charsmap)) => Some(charsmap),
        _ => None,
    };
    Ok((vocab, merges, charsmap))
}

/// transformers' reading of a SentencePiece BPE model for NLLB (SentencePieceExtractor, then
/// `NllbConverter.convert_from_spm`): merges from every split of every piece into two pieces,
/// ranked by the merged piece's id, then the halves' lengths; ids are fairseq's: `<s>` 0,
/// `<pad>` 1, `</s>` 2, `<unk>` 3, then the other pieces in the model's order.
fn parts_of_spm(spm: &SentencePieceModel, names: &Names) -> (Vocab, Vec<(String, String)>) {
    let spm_ids: std::collections::HashMap<&str, usize> = spm
        .pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.piece.as_str(), i))
        .collect();
    let mut merges: Vec<(usize, usize, usize, &str, &str)> = Vec::new();
    for (merged_id, piece) in spm.pieces.iter().enumerate() {
        let piece = piece.piece.as_str();
        let mut local = Vec::new();
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            if let (Some(&l), Some(&r)) = (spm_ids.get(left), spm_ids.get(right)) {
                local.push((l, r, left, right));
            }
        }
        local.sort_by_key(|&(l, r, _, _)| (l, r));
        merges.extend(local.into_iter().map(|(_, _, left, right)| {
            (
                merged_id,
                left.chars().count(),
                right.chars().count(),
                left,
                right,
            )
        }));
    }
    merges.sort_by_key(|&(merged, l, r, _, _)| (merged, l, r));
    let mut vocab = Vocab::default();
    for name in [&names.bos, &names.pad, &names.eos, &names.unk] {
        let next = vocab.len() as u32;
        vocab.entry(name.clone()).or_insert(next);
    }
    for piece in &spm.pieces {
        let next = vocab.len() as u32;
        vocab.entry(piece.piece.clone()).or_insert(next);
    }
    let merges = merges
        .into_iter()
        .map(|(_, _, _, l, r)| (l.to_string(), r.to_string()))
        .collect();
    (vocab, merges)
}

/// The added tokens a repo saved, by id: tokenizer_config.json's `added_tokens_decoder`, or
/// where it has none, tokenizer.json's `added_tokens`.
fn saved_added_tokens(config: &Value, tokenizer_json: Option<&Value>) -> Vec<AddedToken> {
    let mut saved: Vec<(u64, AddedToken)> = Vec::new();
    let token = |t: &Value| -> Option<AddedToken> {
        let content = t.get("content")?.as_str()?;
        let flag =
            |key: &str, default: bool| t.get(key).and_then(Value::as_bool).unwrap_or(default);
        let special = flag("special", false);
        Some(
            AddedToken::from(content.to_string(), special)
                .single_word(flag("single_word", false))
                .lstrip(flag("lstrip", false))
                .rstrip(flag("rstrip", false))
                .normalized(flag("normalized", !special)),
        )
    };
    if let Some(decoder) = config
        .get("added_tokens_decoder")
        .and_then(Value::as_object)
    {
        for (id, t) in decoder {
            if let (Ok(id), Some(t)) = (id.parse::<u64>(), token(t)) {
                saved.push((id, t));
            }
        }
    } else if let Some(added) = tokenizer_json.and_then(|j| j["added_tokens"].as_array()) {
        for t in added {
            if let (Some(id), Some(token)) = (t.get("id").and_then(Value::as_u64), token(t)) {
                saved.push((id, token));
            }
        }
    }
    saved.sort_by_key(|(id, _)| *id);
    saved.into_iter().map(|(_, t)| t).collect()
}
