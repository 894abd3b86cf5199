//! dragoman against transformers, on tiny random models in every hub layout (Marian for
//! translation; T5, flan-T5, mT5, BART, BARThez for summaries): token ids and strings of
//! generate() + decode(), and the first steps' raw logits.

use candle_core::{Device, Tensor};
use dragoman::models::Precision;

use dragoman::generation::GenerationOverrides;
use dragoman::models;
use dragoman::tasks::translate::Words;
use dragoman::tokenizer::Tokenizer;
use dragoman::{Engine, Summarizer, Translator};

use crate::common::{expected, fixture, overrides, strip_padding};

fn check_tokenizer(name: &str) {
    let tokenizer = Tokenizer::load(&fixture(name)).unwrap();
    assert_tokenizer_cases(&tokenizer, name, name);
}

/// `tokenizer` gives the ids and strings transformers gave for fixture `reference`'s cases.
fn assert_tokenizer_cases(tokenizer: &Tokenizer, reference: &str, label: &str) {
    for case in &expected(reference).tokenizer_cases {
        assert_eq!(
            tokenizer.encode(&case.text).unwrap(),
            case.ids,
            "{label}: encode {:?}",
            case.text
        );
        assert_eq!(
            tokenizer.decode(&case.ids).unwrap(),
            case.decoded,
            "{label}: decode {:?}",
            case.ids
        );
    }
}

/// What the generation cases run on: a translator, or a summarizer with its task parameters
/// and prefix (as transformers' summarization pipeline).
trait Subject {
    fn set_overrides(&mut self, overrides: &GenerationOverrides);
    fn engine(&self) -> &Engine;
    fn input_ids(&self, text: &str) -> Vec<u32>;
}

impl Subject for Translator {
    fn set_overrides(&mut self, overrides: &GenerationOverrides) {
        Translator::set_overrides(self, overrides).unwrap()
    }
    fn engine(&self) -> &Engine {
        Translator::engine(self)
    }
    fn input_ids(&self, text: &str) -> Vec<u32> {
        self.encode_source(text).unwrap()
    }
}

impl Subject for Summarizer {
    fn set_overrides(&mut self, overrides: &GenerationOverrides) {
        Summarizer::set_overrides(self, overrides).unwrap()
    }
    fn engine(&self) -> &Engine {
        Summarizer::engine(self)
    }
    fn input_ids(&self, text: &str) -> Vec<u32> {
        Summarizer::input_ids(self, text).unwrap()
    }
}

fn check_generation(name: &str) {
    let dir = fixture(name);
    if name.starts_with("summarize/") {
        check_generation_with(
            name,
            Summarizer::load(&dir, Precision::F32, &Device::Cpu).unwrap(),
        );
    } else {
        let mut translator = Translator::load(&dir, Precision::F32, &Device::Cpu).unwrap();
        // A multi-target model: the target its references were made for (`>>rus<< `).
        let target = expected(name).target_prefix;
        if let Some(code) = target
            .trim()
            .strip_prefix(">>")
            .and_then(|c| c.strip_suffix("<<"))
        {
            translator.set_languages(None, Some(code)).unwrap();
        }
        check_generation_with(name, translator);
    }
}

fn check_generation_with(name: &str, mut subject: impl Subject) {
    let expected = expected(name);
    let sources: Vec<Vec<u32>> = expected
        .sentences
        .iter()
        .map(|s| subject.input_ids(s))
        .collect();
    let pad = subject.engine().settings().pad_token_id;
    let eos = subject.engine().settings().eos_token_ids.clone();
    let mut distinct = std::collections::HashSet::new();
    for case in &expected.cases {
        subject.set_overrides(&overrides(&case.kwargs));
        let engine = subject.engine();
        let generated = if case.batched {
            engine.generate(&sources).unwrap()
        } else {
            sources
                .iter()
                .map(|s| engine.generate(std::slice::from_ref(s)).unwrap().remove(0))
                .collect()
        };
        for (i, (hypotheses, want)) in generated.iter().zip(&case.outputs).enumerate() {
            let label = format!(
                "{name}/{} (batched: {}) sentence {i}",
                case.name, case.batched
            );
            // All returned sequences, best first, where transformers returned several.
            let wanted = want
                .alternatives
                .as_deref()
                .unwrap_or(std::slice::from_ref(want));
            assert_eq!(
                hypotheses.len(),
                wanted.len(),
                "{label}: returned sequences"
            );
            for (k, (got, want)) in hypotheses.iter().zip(wanted).enumerate() {
                let label = format!("{label} sequence {k}");
                assert_eq!(got.ids, strip_padding(&want.ids, pad, &eos), "{label}: ids");
                assert_eq!(
                    engine.tokenizer().decode(&got.ids).unwrap(),
                    want.text,
                    "{label}: text"
                );
                if let Some(score) = want.score {
                    assert!(
                        (got.score - score).abs() <= 1e-4,
                        "{label}: score {} against transformers' {score}",
                        got.score
                    );
                }
            }
            distinct.insert(hypotheses[0].ids.clone());
        }
    }
    // The fixture is only a sharp test if the model says different things for different inputs.
    assert!(
        distinct.len() > expected.sentences.len(),
        "{name}: outputs barely vary"
    );
}

/// Teacher-forces transformers' greedy output through the decoder (with its cache) and
/// compares the raw logits of the first steps.
fn check_logits(name: &str) {
    check_logits_within(name, Precision::F32, |_| 1e-4);
}

/// As `check_logits`, with the model loaded in `precision` and, for each step's logits, the
/// largest difference allowed from transformers' f32 as a function of their largest magnitude.
fn check_logits_within(name: &str, precision: Precision, allowed: impl Fn(f32) -> f32) {
    let expected = expected(name);
    let dir = fixture(name);
    let model = models::load(&dir, precision, &Device::Cpu).unwrap();
    let tokenizer = Tokenizer::load(&dir).unwrap();
    let mut checked = 0;
    for case in expected.cases.iter().filter(|c| c.logits.is_some()) {
        let steps = case.logits.as_ref().unwrap();
        // Batched cases run all sentences together, so padding masks are exercised too.
        let sentences: Vec<Vec<u32>> = expected
            .sentences
            .iter()
            .map(|s| {
                tokenizer
                    .encode(&format!("{}{}{s}", expected.prefix, expected.target_prefix))
                    .unwrap()
            })
            .collect();
        let groups: Vec<Vec<usize>> = if case.batched {
            vec![(0..sentences.len()).collect()]
        } else {
            (0..sentences.len()).map(|i| vec![i]).collect()
        };
        for group in groups {
            let width = group.iter().map(|&i| sentences[i].len()).max().unwrap();
            let pad = model.special_tokens().pad;
            let mut ids = Vec::new();
            let mut mask = Vec::new();
            for &i in &group {
                let s = &sentences[i];
                ids.extend(
                    s.iter()
                        .copied()
                        .chain(std::iter::repeat_n(pad, width - s.len())),
                );
                mask.extend((0..width).map(|k| if k < s.len() { 1f32 } else { 0. }));
            }
            let ids = Tensor::from_vec(ids, (group.len(), width), &Device::Cpu).unwrap();
            let mask = Tensor::from_vec(mask, (group.len(), width), &Device::Cpu).unwrap();
            let encoded = model.encode(&ids, &mask).unwrap();
            let mut state = model.start_decoding(&encoded, 1).unwrap();
            let n_steps = group.iter().map(|&i| steps[i].len()).min().unwrap();
            #[allow(clippy::needless_range_loop)] // one step of every sentence of the group
            for step in 0..n_steps {
                let tokens: Vec<u32> = group.iter().map(|&i| case.outputs[i].ids[step]).collect();
                let logits = model
                    .decode_step(&Tensor::new(tokens, &Device::Cpu).unwrap(), &mut state)
                    .unwrap();
                let logits = logits.to_vec2::<f32>().unwrap();
                for (row, &i) in group.iter().enumerate() {
                    let want = &steps[i][step];
                    let max_diff = logits[row]
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                    assert!(
                        max_diff < allowed(scale),
                        "{name}/{} sentence {i} step {step}: logits differ by {max_diff}",
                        case.name
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0, "{name}: no logits in the fixture");
}

macro_rules! parity_tests {
    ($($module:ident => $dir:expr),* $(,)?) => {
        $(mod $module {
            #[test]
            fn tokenizer_matches_transformers() { super::check_tokenizer($dir); }
            #[test]
            fn generation_matches_transformers() { super::check_generation($dir); }
            #[test]
            fn logits_match_transformers() { super::check_logits($dir); }
        })*
    };
}

parity_tests! {
    fr_en => "fr-en",
    fr_en_bin => "fr-en-bin",
    fr_en_sharded => "fr-en-sharded",
    fr_en_tokjson => "fr-en-tokjson",
    tc_big => "tc-big",
    fr_ru => "fr-ru",
    fr_zle => "fr-zle",
    t5_small => "summarize/t5-small",
    flan_t5 => "summarize/flan-t5",
    mt5 => "summarize/mt5",
    bart_cnn => "summarize/bart-cnn",
    barthez => "summarize/barthez",
    nllb_spm => "m2m100/nllb-spm",
    m2m100 => "m2m100/m2m100",
}

/// nllb/ is nllb-spm/'s model with the real repo's tokenizer files; its logits are stored
/// with nllb-spm (the same weights), for room.
mod nllb {
    #[test]
    fn tokenizer_matches_transformers() {
        super::check_tokenizer("m2m100/nllb");
    }
    #[test]
    fn generation_matches_transformers() {
        super::check_generation("m2m100/nllb");
    }
}

/// NLLB's and M2M100's language tokens have transformers' ids, whether a file lists them
/// (tokenizer.json, tokenizer_config.json) or only the class's rules give them, and ids that
/// are no tokenization decode as transformers decodes them.
#[test]
fn multilingual_tokenizers_have_transformers_language_ids_and_decoding() {
    let languages_of = |name: &str| -> std::collections::BTreeMap<String, u32> {
        Tokenizer::load(&fixture(name))
            .unwrap()
            .languages()
            .unwrap()
            .iter()
            .map(|l| (l.code.clone(), l.id))
            .collect()
    };
    for name in ["m2m100/nllb", "m2m100/nllb-spm", "m2m100/m2m100"] {
        let expected = expected(name);
        let tokenizer = Tokenizer::load(&fixture(name)).unwrap();
        assert!(!expected.languages.is_empty(), "{name}");
        assert_eq!(
            languages_of(name),
            expected.languages,
            "{name}: language ids"
        );
        assert!(!expected.decode_cases.is_empty(), "{name}");
        for case in &expected.decode_cases {
            assert_eq!(
                tokenizer.decode(&case.ids).unwrap(),
                case.decoded,
                "{name}: decode {:?}",
                case.ids
            );
        }
    }
    // An old spm-only repo whose files list no language codes: transformers 5.24 knows none
    // (every code becomes <unk>); dragoman numbers them by the class's own rule, which gives
    // the real repo's ids (nllb/, from tokenizer.json), and tokenizes the text as transformers.
    let bare = "m2m100/nllb-spm-bare";
    let languages = languages_of(bare);
    assert_eq!(
        languages,
        expected("m2m100/nllb").languages,
        "{bare}: language ids"
    );
    let tokenizer = Tokenizer::load(&fixture(bare)).unwrap();
    let mut compared = 0;
    for case in &expected(bare).tokenizer_cases {
        // A code typed in the text is a token to dragoman, letters to transformers here; and
        // <mask> (after the codes for dragoman) has another id.
        if case.text.contains("<mask>") || languages.keys().any(|c| case.text.contains(c.as_str()))
        {
            continue;
        }
        compared += 1;
        let ids = tokenizer.encode(&case.text).unwrap();
        assert_eq!(ids[0], languages["fra_Latn"], "{bare}: {:?}", case.text);
        assert_eq!(ids[1..], case.ids[1..], "{bare}: encode {:?}", case.text);
    }
    assert!(compared > 20, "{bare}: {compared} cases compared");
}

/// The translator marks the source with French's token (whatever src_lang the tokenizer
/// config saved) and forces the target's, from any form of its code; a language the model
/// lacks is one error naming the codes it has.
#[test]
fn multilingual_translator_forces_the_target_language() {
    for (name, french, english, russian) in [
        ("m2m100/nllb", "fra_Latn", "eng_Latn", "rus_Cyrl"),
        ("m2m100/m2m100", "fr", "en", "ru"),
    ] {
        let expected = expected(name);
        let id = |code: &str| expected.languages[code];
        let mut translator =
            Translator::load(&fixture(name), Precision::F32, &Device::Cpu).unwrap();
        assert_eq!(
            translator.settings().forced_bos_token_id,
            Some(id(english)),
            "{name}"
        );
        assert_eq!(
            translator.tokenizer().encode("Bonjour").unwrap()[0],
            id(french)
        );
        for code in ["ru", "rus", russian, "__ru__"] {
            translator.set_languages(None, Some(code)).unwrap();
            assert_eq!(
                translator.settings().forced_bos_token_id,
                Some(id(russian)),
                "{name} {code}"
            );
            assert_eq!(translator.target_language().as_deref(), Some(russian));
        }
        translator.set_languages(Some("en"), Some("fr")).unwrap();
        assert_eq!(
            translator.tokenizer().encode("Hello").unwrap()[0],
            id(english)
        );
        assert_eq!(translator.settings().forced_bos_token_id, Some(id(french)));
        let err = translator
            .set_languages(None, Some("tlh"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"tlh\"") && err.contains(english) && err.contains(russian),
            "{name}: {err}"
        );
    }
    // A model for one pair: its own target is fine, another is refused.
    let mut marian = Translator::load(&fixture("fr-en"), Precision::F32, &Device::Cpu).unwrap();
    marian.set_languages(Some("fra"), Some("eng")).unwrap();
    let err = marian
        .set_languages(None, Some("ru"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("en only") && err.contains("\"ru\""), "{err}");
}

/// int8 drifts from f32 (examples/int8_drift.rs measures by how much); on the tiny fixtures
/// (hidden sizes of a few dozen) the first steps' logits stay within a fifth of their range.
/// A wrong kernel, scale or layout gives differences of the logits' own size.
#[test]
fn int8_logits_stay_near_transformers_f32() {
    for name in [
        "fr-en",
        "tc-big",
        "summarize/t5-small",
        "summarize/bart-cnn",
        "summarize/mt5",
    ] {
        check_logits_within(name, Precision::Int8, |scale| 0.2 * scale);
    }
}

/// A Marian repo that ships tokenizer.json beside its SentencePiece files but names
/// MarianTokenizer (or no class) is tokenized from the .spm files, as AutoTokenizer does.
#[test]
fn marian_class_prefers_spm_files_over_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("fr-en")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    // A tokenizer.json that would tokenize differently (no normalizer, another vocabulary).
    std::fs::copy(
        fixture("fr-en-tokjson").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let tokenizer = Tokenizer::load(dir.path()).unwrap();
    assert_tokenizer_cases(&tokenizer, "fr-en", "fr-en files + tokenizer.json");
}

/// Every parity test again under each lower set of CPU kernels this machine has
/// (`DRAGOMAN_CPU`), in a child run of this test binary: f32 output must stay token-identical
/// to transformers, and int8 within its bounds, on every kernel, not only on the best one.
#[test]
fn parity_holds_on_every_cpu_variant() {
    if std::env::var_os(dragoman::cpu::CPU_VARIABLE).is_some() {
        return; // a child run, or a whole suite already run on one variant
    }
    let exe = std::env::current_exe().unwrap();
    let best = dragoman::cpu::kernels().to_string();
    for (level, kernels) in dragoman::cpu::Kernels::variants() {
        if kernels.to_string() == best {
            continue; // the other tests of this run
        }
        let out = std::process::Command::new(&exe)
            .args(["parity::", "--test-threads", "2"])
            .env(dragoman::cpu::CPU_VARIABLE, level)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}={level} ({kernels}):\n{stdout}\n{}",
            dragoman::cpu::CPU_VARIABLE,
            String::from_utf8_lossy(&out.stderr)
        );
        let passed: usize = stdout
            .split("test result: ok. ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            passed >= 30,
            "{level}: only {passed} parity tests ran:\n{stdout}"
        );
    }
}

/// A multi-target Marian model (opus-mt-tc-big-fr-zle's shape): its `>>xx<<` tokens are its
/// target languages, written before each sentence; any form of the code picks one; the
/// sentence's own text is what the JSON calls `source`.
#[test]
fn multi_target_marian_takes_its_target_token_before_each_sentence() {
    let mut translator =
        Translator::load(&fixture("fr-zle"), Precision::F32, &Device::Cpu).unwrap();
    assert_eq!(
        translator.language_scheme().codes(),
        ["bel", "rus", "ukr"],
        "the >>xx<< tokens of vocab.json"
    );
    // Three targets and none of them English: the target must be named.
    let err = translator
        .set_languages(None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pass --to") && err.contains("bel, rus, ukr"),
        "{err}"
    );
    for code in ["ru", "rus", ">>rus<<", "rus_Cyrl"] {
        translator.set_languages(None, Some(code)).unwrap();
        assert_eq!(translator.target_language().as_deref(), Some("rus"));
        assert_eq!(
            translator.encode_source("Merci !").unwrap(),
            translator.tokenizer().encode(">>rus<< Merci !").unwrap()
        );
    }
    translator.set_languages(None, Some("uk")).unwrap();
    let line = translator
        .translate_lines_aligned(&["Merci !"], Words::Unaligned)
        .unwrap()
        .remove(0);
    assert_eq!(line.sentences[0].source, "Merci !");
    let err = translator
        .set_languages(None, Some("de"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"de\" (German)") && err.contains("bel, rus, ukr"),
        "{err}"
    );
}

/// The attention word alignment uses (the heads of the layer below the last, averaged, from a
/// batched teacher-forced pass) is transformers' `cross_attentions` of that layer averaged
/// over its heads, to 1e-4, for every step and source position: post-norm (Marian) and
/// pre-norm (m2m100) layers.
#[test]
fn alignment_attention_is_transformers_averaged() {
    #[derive(serde::Deserialize)]
    struct Sentence {
        input_ids: Vec<u32>,
        decoder_input_ids: Vec<u32>,
        cross_attentions: Vec<Vec<Vec<Vec<f32>>>>,
    }
    #[derive(serde::Deserialize)]
    struct Reference {
        sentences: Vec<Sentence>,
    }
    for name in ["fr-en", "fr-zle", "m2m100/m2m100"] {
        let dir = fixture(name);
        let text = std::fs::read_to_string(dir.join("cross_attentions.json")).unwrap();
        let reference: Reference = serde_json::from_str(&text).unwrap();
        let translator = Translator::load(&dir, Precision::F32, &Device::Cpu).unwrap();
        // One more target id than the steps fed: the last id is predicted, never read.
        let targets: Vec<Vec<u32>> = reference
            .sentences
            .iter()
            .map(|s| [s.decoder_input_ids.as_slice(), &[0]].concat())
            .collect();
        let pairs: Vec<(&[u32], &[u32])> = reference
            .sentences
            .iter()
            .zip(&targets)
            .map(|(s, t)| (s.input_ids.as_slice(), t.as_slice()))
            .collect();
        let got = translator.engine().alignment_attention(&pairs).unwrap();
        assert!(reference.sentences.len() > 1, "batched: several sentences");
        let mut compared = 0;
        for (sentence, got) in reference.sentences.iter().zip(&got) {
            let layers = sentence.cross_attentions.len();
            let layer = &sentence.cross_attentions
                [layers.saturating_sub(dragoman::tasks::engine::ALIGNMENT_LAYER_FROM_TOP)];
            assert_eq!(got.len(), sentence.decoder_input_ids.len(), "{name}: steps");
            for (t, row) in got.iter().enumerate() {
                assert_eq!(
                    row.len(),
                    sentence.input_ids.len(),
                    "{name}: source positions"
                );
                for (s, value) in row.iter().enumerate() {
                    let want =
                        layer.iter().map(|head| head[t][s]).sum::<f32>() / layer.len() as f32;
                    assert!(
                        (value - want).abs() < 1e-4,
                        "{name}: step {t} source {s}: {value} vs {want}"
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 100, "{name}: {compared} weights compared");
    }
}

/// Aligning only some sentences of a batch (a document's sentences that hold spans) reads
/// back just those rows, from the batch's encoder output narrowed to them: their attention is
/// what a pass over them alone gives, the others get none, and the translations are the
/// same as without alignment.
#[test]
fn generation_aligns_only_the_sentences_asked_for() {
    let e = expected("fr-en");
    let translator = Translator::load(&fixture("fr-en"), Precision::F32, &Device::Cpu).unwrap();
    let engine = translator.engine();
    let sources: Vec<Vec<u32>> = e
        .sentences
        .iter()
        .map(|s| translator.tokenizer().encode(s).unwrap())
        .collect();
    assert!(sources.len() >= 3, "several sentences in one batch");
    let asked: Vec<bool> = (0..sources.len()).map(|i| i % 2 == 0).collect();
    let generated = engine.generate_aligned(&sources, &asked).unwrap();
    let plain = engine.generate(&sources).unwrap();
    for (i, ((hypotheses, attention), alone)) in generated.iter().zip(&plain).enumerate() {
        assert_eq!(hypotheses, alone, "sentence {i}: the same translation");
        if !asked[i] {
            assert!(attention.is_empty(), "sentence {i} was not asked for");
            continue;
        }
        let ids = &hypotheses[0].ids;
        let want = &engine.alignment_attention(&[(&sources[i], ids)]).unwrap()[0];
        assert_eq!(
            attention.len(),
            ids.len() - 1,
            "sentence {i}: a row per step"
        );
        for (got, want) in attention.iter().flatten().zip(want.iter().flatten()) {
            assert!((got - want).abs() < 1e-5, "sentence {i}: {got} vs {want}");
        }
    }
}

/// The decoder's state for one unpadded input `ids`, encoded.
fn start_one(model: &dyn models::Seq2Seq, ids: &[u32]) -> models::DecoderState {
    let input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mask = Tensor::ones(input.dims(), candle_core::DType::F32, &Device::Cpu).unwrap();
    let encoded = model.encode(&input, &mask).unwrap();
    model.start_decoding(&encoded, 1).unwrap()
}

/// A `<pad>` typed in the text is padding to fairseq's positions: it reads the zero row and
/// the tokens after it are numbered as if it were not there (transformers' make_positions).
/// Teacher-forced logits and greedy ids against transformers, for texts holding `<pad>`.
#[test]
fn m2m100_positions_skip_a_pad_typed_in_the_text() {
    #[derive(serde::Deserialize)]
    struct PadCase {
        text: String,
        ids: Vec<u32>,
        output_ids: Vec<u32>,
        logits: Vec<Vec<f32>>,
    }
    #[derive(serde::Deserialize)]
    struct PadCases {
        pad_cases: Vec<PadCase>,
    }
    for name in ["m2m100/m2m100", "m2m100/nllb-spm"] {
        let dir = fixture(name);
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let cases: PadCases = serde_json::from_str(&text).unwrap();
        assert!(!cases.pad_cases.is_empty(), "{name}");
        let translator = Translator::load(&dir, Precision::F32, &Device::Cpu).unwrap();
        let model = models::load(&dir, Precision::F32, &Device::Cpu).unwrap();
        for case in &cases.pad_cases {
            let ids = translator.encode_source(&case.text).unwrap();
            assert_eq!(ids, case.ids, "{name}: {:?}", case.text);
            let overrides = GenerationOverrides {
                num_beams: Some(1),
                max_new_tokens: Some(10),
                ..GenerationOverrides::default()
            };
            let mut greedy = Translator::load(&dir, Precision::F32, &Device::Cpu).unwrap();
            greedy.set_overrides(&overrides).unwrap();
            let generated = greedy.generate_ids(std::slice::from_ref(&ids)).unwrap();
            assert_eq!(generated[0], case.output_ids, "{name}: {:?}", case.text);
            let mut state = start_one(model.as_ref(), &ids);
            for (step, want) in case.logits.iter().enumerate() {
                let token = Tensor::new(&[case.output_ids[step]], &Device::Cpu).unwrap();
                let got = model
                    .decode_step(&token, &mut state)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                let diff = got[0]
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    diff < 1e-4,
                    "{name}: {:?} step {step}: logits differ by {diff}",
                    case.text
                );
            }
        }
    }
}

/// The decoder's cross-attention weights, recorded for word alignment, are transformers'
/// `cross_attentions` (`output_attentions=True`, teacher-forced on its greedy output): every
/// layer, head, step and source position, to 1e-4.
#[test]
fn recorded_cross_attention_is_transformers() {
    #[derive(serde::Deserialize)]
    struct Sentence {
        input_ids: Vec<u32>,
        decoder_input_ids: Vec<u32>,
        /// [layer][head][step][source]
        cross_attentions: Vec<Vec<Vec<Vec<f32>>>>,
    }
    #[derive(serde::Deserialize)]
    struct Reference {
        sentences: Vec<Sentence>,
    }
    for name in ["fr-en", "fr-zle", "m2m100/m2m100"] {
        let dir = fixture(name);
        let text = std::fs::read_to_string(dir.join("cross_attentions.json")).unwrap();
        let reference: Reference = serde_json::from_str(&text).unwrap();
        let model = models::load(&dir, Precision::F32, &Device::Cpu).unwrap();
        let mut compared = 0;
        for sentence in &reference.sentences {
            let mut state = start_one(model.as_ref(), &sentence.input_ids);
            state.record_cross_attention();
            for &token in &sentence.decoder_input_ids {
                let token = Tensor::new(&[token], &Device::Cpu).unwrap();
                model.decode_step(&token, &mut state).unwrap();
            }
            let layers = state.cross_attention().unwrap();
            assert_eq!(
                layers.len(),
                sentence.cross_attentions.len(),
                "{name}: layers"
            );
            for (l, (got, want)) in layers.iter().zip(&sentence.cross_attentions).enumerate() {
                // [steps, 1, H, S] against [H][steps][S]
                let got = got.squeeze(1).unwrap().transpose(0, 1).unwrap();
                let got = got.to_vec3::<f32>().unwrap();
                assert_eq!(got.len(), want.len(), "{name}: layer {l} heads");
                for (h, (got, want)) in got.iter().zip(want).enumerate() {
                    assert_eq!(got.len(), want.len(), "{name}: layer {l} head {h} steps");
                    for (t, (got, want)) in got.iter().zip(want).enumerate() {
                        let diff = got
                            .iter()
                            .zip(want)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(diff < 1e-4, "{name}: layer {l} head {h} step {t}: {diff}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 50, "{name}: {compared} rows compared");
    }
}
