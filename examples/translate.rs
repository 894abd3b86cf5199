//! Translate a few French sentences with the library API.
//!
//!     cargo run --example translate -- MODEL_DIR
//!
//! MODEL_DIR is a directory laid out like a hub repo (e.g. a snapshot of
//! Helsinki-NLP/opus-mt-fr-en, or tests/fixtures/marian/fr-en for a tiny random model).

use candle_core::Device;
use dragoman::generation::GenerationOverrides;
use dragoman::models::Precision;
use dragoman::Translator;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: translate MODEL_DIR"))?;
    let mut translator = Translator::load(dir.as_ref(), Precision::F32, &Device::Cpu)?;
    // Greedy search, at most 40 new tokens per sentence; everything else from the model.
    translator.set_overrides(&GenerationOverrides {
        num_beams: Some(1),
        max_new_tokens: Some(40),
        ..Default::default()
    })?;
    let lines = [
        "Le président a effectué une visite officielle.",
        "",
        "  Il fait beau. Nous partons demain.",
    ];
    for line in translator.translate_lines(&lines)? {
        println!("{line}");
    }
    Ok(())
}
