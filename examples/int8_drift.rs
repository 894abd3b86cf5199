//! How far `--dtype int8` (or `--dtype bf16`, where the CPU multiplies bf16) drifts from f32 on
//! the same model files.
//!
//!     cargo run --release --example int8_drift -- [--dtype int8|bf16] [--sentences FILE] [--tokens N] MODEL_DIR...
//!
//! For each model directory it loads the model twice (f32 and the lossy precision) and, over the sentences of
//! the text (default `examples/fr_sample.txt`) that fit the model's positions:
//! - runs greedy search with both (at most N new tokens, default 48) and counts the sentences
//!   whose outputs are identical, and the share of output tokens before the first divergence;
//! - feeds the f32 output back to both models step by step (teacher forcing) and reports the
//!   largest absolute difference between their logits, beside the largest f32 logit.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use dragoman::generation::GenerationOverrides;
use dragoman::models::{self, Precision, Seq2Seq};
use dragoman::Engine;

fn main() -> Result<()> {
    let mut sentences_file = PathBuf::from("examples/fr_sample.txt");
    let mut tokens = 48usize;
    let mut lossy = Precision::Int8;
    let mut dirs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sentences" => sentences_file = args.next().context("--sentences FILE")?.into(),
            "--tokens" => tokens = args.next().context("--tokens N")?.parse()?,
            "--dtype" => {
                lossy = dragoman::device::precision(
                    &args.next().context("--dtype int8|bf16")?,
                    &Device::Cpu,
                )?
            }
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    if dirs.is_empty() {
        bail!("usage: int8_drift [--dtype int8|bf16] [--sentences FILE] [--tokens N] MODEL_DIR...");
    }
    let text = std::fs::read_to_string(&sentences_file)
        .with_context(|| format!("reading {}", sentences_file.display()))?;
    // Sentences as dragoman cuts them.
    let sentences: Vec<&str> = dragoman::text::split_sentences(&text)
        .into_iter()
        .map(|r| text[r].trim())
        .filter(|s| !s.is_empty())
        .collect();
    println!(
        "{lossy:?} against f32, kernels {}",
        dragoman::cpu::kernels()
    );
    println!("| model | sentences that fit | identical greedy outputs | tokens before first divergence | max |logit diff| (teacher-forced) | max |f32 logit| |");
    println!("|---|---|---|---|---|---|");
    for dir in &dirs {
        let report = drift(dir, &sentences, tokens, lossy)
            .with_context(|| format!("model {}", dir.display()))?;
        println!(
            "| {} | {} of {} | {} ({:.1} %) | {:.1} % | {:.2e} | {:.2} |",
            dir.display(),
            report.sentences,
            sentences.len(),
            report.identical,
            100.0 * report.identical as f64 / report.sentences.max(1) as f64,
            100.0 * report.agreeing_tokens as f64 / report.f32_tokens.max(1) as f64,
            report.max_logit_diff,
            report.max_logit
        );
    }
    Ok(())
}

struct Report {
    sentences: usize,
    identical: usize,
    agreeing_tokens: usize,
    f32_tokens: usize,
    max_logit_diff: f32,
    max_logit: f32,
}

fn drift(
    dir: &std::path::Path,
    sentences: &[&str],
    tokens: usize,
    lossy: Precision,
) -> Result<Report> {
    let greedy = GenerationOverrides {
        num_beams: Some(1),
        max_new_tokens: Some(tokens),
        ..Default::default()
    };
    let mut f32_engine = Engine::load(dir, Precision::F32, &Device::Cpu)?;
    let mut lossy_engine = Engine::load(dir, lossy, &Device::Cpu)?;
    f32_engine.set_overrides(&greedy)?;
    lossy_engine.set_overrides(&greedy)?;
    let mut inputs = Vec::new();
    for sentence in sentences {
        let ids = f32_engine.tokenizer().encode(sentence)?;
        if ids.len() <= f32_engine.max_input_tokens() {
            inputs.push(ids);
        }
    }
    let f32_out = f32_engine.generate_ids(&inputs)?;
    let lossy_out = lossy_engine.generate_ids(&inputs)?;
    let mut report = Report {
        sentences: inputs.len(),
        identical: 0,
        agreeing_tokens: 0,
        f32_tokens: 0,
        max_logit_diff: 0.0,
        max_logit: 0.0,
    };
    for (a, b) in f32_out.iter().zip(&lossy_out) {
        report.identical += usize::from(a == b);
        report.agreeing_tokens += a.iter().zip(b).take_while(|(x, y)| x == y).count();
        report.f32_tokens += a.len();
    }

    let f32_model = models::load(dir, Precision::F32, &Device::Cpu)?;
    let lossy_model = models::load(dir, lossy, &Device::Cpu)?;
    for (input, output) in inputs.iter().zip(&f32_out) {
        let a = teacher_forced_logits(f32_model.as_ref(), input, output)?;
        let b = teacher_forced_logits(lossy_model.as_ref(), input, output)?;
        for (x, y) in a.iter().zip(&b) {
            report.max_logit_diff = report.max_logit_diff.max((x - y).abs());
            report.max_logit = report.max_logit.max(x.abs());
        }
    }
    Ok(report)
}

/// The logits of every step while feeding `output` (which starts with the decoder start token).
fn teacher_forced_logits(model: &dyn Seq2Seq, input: &[u32], output: &[u32]) -> Result<Vec<f32>> {
    let ids = Tensor::new(input, &Device::Cpu)?.unsqueeze(0)?;
    let mask = ids.ones_like()?.to_dtype(candle_core::DType::F32)?;
    let encoded = model.encode(&ids, &mask)?;
    let mut state = model.start_decoding(&encoded, 1)?;
    let mut all = Vec::new();
    for &token in &output[..output.len().saturating_sub(1)] {
        let logits = model.decode_step(&Tensor::new(&[token], &Device::Cpu)?, &mut state)?;
        all.extend(
            logits
                .flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .filter(|v| v.is_finite()),
        );
    }
    Ok(all)
}
