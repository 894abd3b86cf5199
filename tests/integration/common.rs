//! Reading the fixtures and the references transformers wrote beside them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use dragoman::generation::{EarlyStopping, GenerationOverrides};

/// A fixture directory: `"fr-en"` is one of the Marian fixtures, `"summarize/t5-small"` names
/// its folder under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if name.contains('/') {
        root.join(name)
    } else {
        root.join("marian").join(name)
    }
}

#[derive(Debug, Deserialize)]
pub struct Expected {
    /// Summarization fixtures: put before each document (task_specific_params).
    #[serde(default)]
    pub prefix: String,
    /// Multi-target Marian fixtures: the target token written before each sentence.
    #[serde(default)]
    pub target_prefix: String,
    pub tokenizer_cases: Vec<TokenizerCase>,
    /// Multilingual fixtures: the tokenizer's language codes and their token ids.
    #[serde(default)]
    pub languages: std::collections::BTreeMap<String, u32>,
    /// Multilingual fixtures: decode(ids, skip_special_tokens=True) of ids that are no
    /// tokenization (language tokens, ids past the vocabulary, …).
    #[serde(default)]
    pub decode_cases: Vec<DecodeCase>,
    pub sentences: Vec<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
pub struct TokenizerCase {
    pub text: String,
    pub ids: Vec<u32>,
    pub decoded: String,
}

#[derive(Debug, Deserialize)]
pub struct DecodeCase {
    pub ids: Vec<u32>,
    pub decoded: String,
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub kwargs: serde_json::Map<String, Value>,
    pub batched: bool,
    pub outputs: Vec<Output>,
    pub logits: Option<Vec<Vec<Vec<f32>>>>,
}

#[derive(Debug, Deserialize)]
pub struct Output {
    pub ids: Vec<u32>,
    pub text: String,
    /// transformers' score of the sequence (the Marian fixtures).
    #[serde(default)]
    pub score: Option<f32>,
    /// With num_return_sequences: every returned sequence, best first.
    #[serde(default)]
    pub alternatives: Option<Vec<Output>>,
}

impl Expected {
    /// Case `name`, run one input at a time.
    pub fn one_at_a_time(&self, name: &str) -> &Case {
        self.cases
            .iter()
            .find(|c| c.name == name && !c.batched)
            .unwrap_or_else(|| panic!("no case {name}"))
    }
}

pub fn expected(name: &str) -> Expected {
    let path = fixture(name).join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The generate() keyword arguments of a case as dragoman overrides; an unknown keyword
/// fails the test rather than being ignored.
pub fn overrides(kwargs: &serde_json::Map<String, Value>) -> GenerationOverrides {
    // Scores are checked for every case.
    let mut o = GenerationOverrides {
        output_scores: Some(true),
        ..GenerationOverrides::default()
    };
    let int = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}")) as usize;
    for (key, value) in kwargs {
        match key.as_str() {
            "num_beams" => o.num_beams = Some(int(value)),
            "num_return_sequences" => o.num_return_sequences = Some(int(value)),
            "max_new_tokens" => o.max_new_tokens = Some(int(value)),
            "max_length" => o.max_length = Some(int(value)),
            "min_new_tokens" => o.min_new_tokens = Some(int(value)),
            "min_length" => o.min_length = Some(int(value)),
            "no_repeat_ngram_size" => o.no_repeat_ngram_size = Some(int(value)),
            "length_penalty" => o.length_penalty = value.as_f64(),
            "repetition_penalty" => o.repetition_penalty = value.as_f64(),
            // A multilingual model's target language, as Translator::set_languages forces it
            // (multilingual_translator_forces_the_target_language checks that it does).
            "forced_bos_token_id" => o.forced_bos_token_id = Some(int(value) as u32),
            "early_stopping" => {
                o.early_stopping = Some(match value {
                    Value::Bool(true) => EarlyStopping::Always,
                    Value::Bool(false) => EarlyStopping::Heuristic,
                    _ => EarlyStopping::Never,
                })
            }
            other => panic!("fixture uses generate() keyword {other} the test does not map"),
        }
    }
    o
}

/// transformers pads finished sequences of a batch (with `pad`, or in beam search with EOS);
/// the generation itself ends at its first EOS after the start token (or at max_length).
pub fn strip_padding(ids: &[u32], pad: u32, eos: &[u32]) -> Vec<u32> {
    let mut end = ids.len();
    if let Some(first_eos) = ids.iter().skip(1).position(|id| eos.contains(id)) {
        end = first_eos + 2;
    }
    while end > 1 && ids[end - 1] == pad {
        end -= 1;
    }
    ids[..end].to_vec()
}

/// transformers' greedy translations (max_new_tokens 20) of the fixture sentences.
pub fn greedy_reference() -> (Vec<String>, Vec<String>) {
    let e = expected("fr-en");
    let case = e
        .cases
        .iter()
        .find(|c| c.name == "greedy" && !c.batched)
        .unwrap();
    (
        e.sentences.clone(),
        case.outputs.iter().map(|o| o.text.clone()).collect(),
    )
}

/// The text transformers generated for document/sentence `index` in case `name`, one at a time.
pub fn reference_text(fixture_name: &str, name: &str, index: usize) -> String {
    let e = expected(fixture_name);
    let case = e
        .cases
        .iter()
        .find(|c| c.name == name && !c.batched)
        .unwrap_or_else(|| panic!("{fixture_name}: no case {name}"));
    case.outputs[index].text.clone()
}

/// Puts a copy of fixture `name` in the Hugging Face cache under `home` as hub repo `repo`
/// (branch main), as huggingface_hub lays it out.
pub fn cache_fixture(home: &Path, repo: &str, name: &str) {
    let commit = "3f1c2b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a";
    let dir = home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = dir.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "expected.json" {
            std::fs::copy(entry.path(), snapshot.join(entry.file_name())).unwrap();
        }
    }
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::write(dir.join("refs/main"), commit).unwrap();
}
