//! Throughput of the `dragoman` binary beside CTranslate2 and transformers, measured in one run.
//!
//!     cargo bench --bench throughput                      # dragoman only
//!     cargo bench --bench throughput -- --python python3  # with the Python peers (benches/peers.py)
//!
//! It writes a full-size model with opus-mt-fr-en's exact architecture and random weights in hub
//! layout (speed does not depend on the values; nothing is downloaded; the tiny fixture's
//! tokenizer files stand in for the real ones), takes the sentences of the seed article
//! (`../shared/seed/fr_article.txt`, else `examples/fr_sample.txt`), and times whole
//! `dragoman translate` processes — load, tokenize, translate, write — with the output length
//! forced (`--min-new-tokens = --max-new-tokens`), against the peers' translate calls alone.
//! Options: `--tokens N` (48), `--threads N` (2), `--python PY` (run the peers with that
//! interpreter).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use candle_core::{Device, Tensor};

/// opus-mt-fr-en's config.json (Helsinki-NLP/opus-mt-fr-en), the values that shape the network.
const OPUS_MT_FR_EN: &str = r#"{
  "model_type": "marian", "architectures": ["MarianMTModel"],
  "vocab_size": 59514, "decoder_vocab_size": 59514, "d_model": 512,
  "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 8,
  "decoder_attention_heads": 8, "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048,
  "activation_function": "swish", "max_position_embeddings": 512, "scale_embedding": true,
  "pad_token_id": 59513, "eos_token_id": 0, "decoder_start_token_id": 59513,
  "forced_eos_token_id": 0, "share_encoder_decoder_embeddings": true,
  "static_position_embeddings": true, "normalize_embedding": false, "num_beams": 4,
  "max_length": 512, "bad_words_ids": [[59513]]
}"#;

const GENERATION_CONFIG: &str = r#"{
  "bad_words_ids": [[59513]], "decoder_start_token_id": 59513, "eos_token_id": 0,
  "forced_eos_token_id": 0, "max_length": 512, "num_beams": 4, "pad_token_id": 59513,
  "renormalize_logits": true
}"#;

/// The columns of the issue's table: (name, beams, sentences per batch).
const COLUMNS: [(&str, usize, usize); 3] = [
    ("greedy_b1", 1, 1),
    ("greedy_b16", 1, 16),
    ("beam4_b16", 4, 16),
];

struct Options {
    tokens: usize,
    threads: usize,
    python: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        tokens: 48,
        threads: 2,
        python: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tokens" => o.tokens = args.next().and_then(|v| v.parse().ok()).unwrap_or(48),
            "--threads" => o.threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(2),
            "--python" => o.python = args.next(),
            _ => {} // cargo passes --bench
        }
    }
    o
}

/// A deterministic uniform stream in [-scale, scale).
struct Noise(u64);

impl Noise {
    fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }
}

/// Writes the random full-size Marian model in hub layout (once; reused afterwards).
fn make_model(dir: &Path) {
    if dir.join("model.safetensors").is_file() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let (v, d, ffn) = (59514, 512, 2048);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    t.insert("model.shared.weight".into(), noise.tensor(&[v, d], 0.05));
    t.insert(
        "final_logits_bias".into(),
        Tensor::zeros((1, v), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    for (side, layers) in [("encoder", 6), ("decoder", 6)] {
        for i in 0..layers {
            let p = format!("model.{side}.layers.{i}");
            let mut attention = |name: &str, t: &mut HashMap<String, Tensor>| {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    t.insert(
                        format!("{p}.{name}.{proj}.weight"),
                        noise.tensor(&[d, d], 0.05),
                    );
                    t.insert(format!("{p}.{name}.{proj}.bias"), noise.tensor(&[d], 0.02));
                }
                t.insert(format!("{p}.{name}_layer_norm.weight"), ones(d));
                t.insert(format!("{p}.{name}_layer_norm.bias"), zeros(d));
            };
            attention("self_attn", &mut t);
            if side == "decoder" {
                attention("encoder_attn", &mut t);
            }
            t.insert(format!("{p}.fc1.weight"), noise.tensor(&[ffn, d], 0.05));
            t.insert(format!("{p}.fc1.bias"), noise.tensor(&[ffn], 0.02));
            t.insert(format!("{p}.fc2.weight"), noise.tensor(&[d, ffn], 0.05));
            t.insert(format!("{p}.fc2.bias"), noise.tensor(&[d], 0.02));
            t.insert(format!("{p}.final_layer_norm.weight"), ones(d));
            t.insert(format!("{p}.final_layer_norm.bias"), zeros(d));
        }
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), OPUS_MT_FR_EN).unwrap();
    std::fs::write(dir.join("generation_config.json"), GENERATION_CONFIG).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian/fr-en");
    for name in [
        "source.spm",
        "target.spm",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
    }
    // The fixture's vocabulary, grown to the model's 59514 ids (converters check the size):
    // its pieces keep their ids, placeholders fill the rest, <pad> is last as in opus-mt.
    let small: HashMap<String, usize> =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("vocab.json")).unwrap())
            .unwrap();
    let mut vocab: Vec<(String, usize)> = small.into_iter().filter(|(p, _)| p != "<pad>").collect();
    let used = vocab.len();
    vocab.extend((used..v - 1).map(|id| (format!("▁placeholder{id}"), id)));
    vocab.push(("<pad>".into(), v - 1));
    let vocab: serde_json::Map<String, serde_json::Value> =
        vocab.into_iter().map(|(p, id)| (p, id.into())).collect();
    std::fs::write(
        dir.join("vocab.json"),
        serde_json::to_string(&vocab).unwrap(),
    )
    .unwrap();
}

/// One sentence per line: the seed article's sentences, else the sample's.
fn write_sentences(path: &Path) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seed = root.join("../shared/seed/fr_article.txt");
    let text = std::fs::read_to_string(&seed)
        .or_else(|_| std::fs::read_to_string(root.join("examples/fr_sample.txt")))
        .unwrap();
    let sentences: Vec<&str> = text
        .lines()
        .flat_map(|line| {
            dragoman::text::split_sentences(line)
                .into_iter()
                .map(move |r| line[r].trim())
        })
        .filter(|s| !s.is_empty())
        .collect();
    std::fs::write(path, sentences.join("\n") + "\n").unwrap();
    sentences.len()
}

struct Run {
    seconds: f64,
    peak_rss_mb: f64,
}

/// Runs the binary with `args` and `stdin`, timing the whole process and reading its peak RSS.
fn run(args: &[String], stdin: &Path, threads: usize) -> Run {
    let start = Instant::now();
    // Reaped below by wait4, which also reports its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_dragoman"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(std::fs::File::open(stdin).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4 on our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        waited == pid && status == 0,
        "dragoman {args:?} failed ({status})"
    );
    Run {
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}

struct Row {
    engine: String,
    /// tokens/s per column, by name.
    speed: HashMap<String, f64>,
    load_seconds: Option<f64>,
    peak_rss_mb: f64,
}

fn main() {
    let o = options();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("throughput");
    let model = work.join("opus-mt-fr-en-random");
    eprintln!("model: {}", model.display());
    make_model(&model);
    let sentences = work.join("sentences.txt");
    let n = write_sentences(&sentences);
    let one = work.join("one.txt");
    std::fs::write(&one, "Bonjour.\n").unwrap();
    eprintln!("{n} sentences × {} tokens, {} threads", o.tokens, o.threads);

    let translate_args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["translate".into(), "--model".into()];
        args.push(model.display().to_string());
        args.extend(["--threads".into(), o.threads.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut rows = Vec::new();
    for (dtype, label) in [("f32", "dragoman float32"), ("int8", "dragoman int8")] {
        let base = |extra: &[&str]| {
            let mut args = translate_args(&["--dtype", dtype]);
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        let mut row = Row {
            engine: label.into(),
            speed: HashMap::new(),
            load_seconds: None,
            peak_rss_mb: 0.0,
        };
        // Load to first output line: one short sentence, one token; the median of five runs
        // (single runs vary by a tenth of a second with what the kernel has to find memory).
        let mut loads: Vec<f64> = (0..5)
            .map(|_| {
                run(
                    &base(&["--beams", "1", "--max-new-tokens", "1"]),
                    &one,
                    o.threads,
                )
                .seconds
            })
            .collect();
        loads.sort_by(f64::total_cmp);
        eprintln!("  {label} load: {loads:.2?} s");
        row.load_seconds = Some(loads[loads.len() / 2]);
        for (name, beams, batch) in COLUMNS {
            let tokens = o.tokens.to_string();
            let r = run(
                &base(&[
                    "--beams",
                    &beams.to_string(),
                    "--max-batch",
                    &batch.to_string(),
                    "--min-new-tokens",
                    &tokens,
                    "--max-new-tokens",
                    &tokens,
                ]),
                &sentences,
                o.threads,
            );
            let speed = (n * o.tokens) as f64 / r.seconds;
            eprintln!(
                "  {} {name}: {:.2} s, {speed:.0} tok/s, {:.0} MB",
                row.engine, r.seconds, r.peak_rss_mb
            );
            row.speed.insert(name.to_string(), speed);
            row.peak_rss_mb = row.peak_rss_mb.max(r.peak_rss_mb);
        }
        rows.push(row);
    }

    if let Some(python) = &o.python {
        rows.extend(peers(python, &model, &sentences, &o));
    }
    print_table(&rows, n, &o);
}

/// benches/peers.py's rows (one engine per row), or nothing if it cannot run.
fn peers(python: &str, model: &Path, sentences: &Path, o: &Options) -> Vec<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers.py");
    let output = Command::new(python)
        .arg(&script)
        .args(["--model", &model.display().to_string()])
        .args(["--sentences", &sentences.display().to_string()])
        .args(["--tokens", &o.tokens.to_string()])
        .args(["--threads", &o.threads.to_string()])
        .stderr(Stdio::inherit())
        .output();
    let Ok(output) = output else {
        eprintln!("peers: cannot run {python}");
        return Vec::new();
    };
    let mut rows: Vec<Row> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(err) = v.get("error") {
            eprintln!("peers: {} {}: {err}", v["engine"], v["column"]);
            continue;
        }
        let engine = v["engine"].as_str().unwrap_or("?").to_string();
        let speed = v["tokens"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(f64::NAN);
        eprintln!("  {engine} {}: {speed:.0} tok/s", v["column"]);
        let row = match rows.iter_mut().position(|r| r.engine == engine) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Row {
                    engine,
                    speed: HashMap::new(),
                    load_seconds: None,
                    peak_rss_mb: 0.0,
                });
                rows.last_mut().unwrap()
            }
        };
        row.speed
            .insert(v["column"].as_str().unwrap_or("?").to_string(), speed);
        row.load_seconds = v["load_seconds"].as_f64();
        row.peak_rss_mb = row
            .peak_rss_mb
            .max(v["peak_rss_mb"].as_f64().unwrap_or(0.0));
    }
    rows
}

fn print_table(rows: &[Row], n: usize, o: &Options) {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nopus-mt-fr-en shape, random weights; {n} sentences × {} forced tokens; {} threads; tokens/s (peers: dragoman's speed at the same precision / theirs)\n",
        o.tokens, o.threads
    )
    .unwrap();
    writeln!(
        out,
        "| engine | greedy, 1 at a time | greedy, batch 16 | beam 4, batch 16 | load (s) | peak RSS (MB) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|").unwrap();
    for row in rows {
        // Peers compare with dragoman at their precision (int8 with int8, else float32).
        let precision = if row.engine.contains("int8") {
            "int8"
        } else {
            "float32"
        };
        let ours = rows
            .iter()
            .find(|r| r.engine == format!("dragoman {precision}"))
            .unwrap_or(&rows[0]);
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(
                |(name, _, _)| match (row.speed.get(*name), ours.speed.get(*name)) {
                    (Some(s), Some(base)) if !row.engine.starts_with("dragoman") => {
                        format!("{s:.0} ({:.2}×)", base / s)
                    }
                    (Some(s), _) => format!("{s:.0}"),
                    _ => "—".into(),
                },
            )
            .collect();
        let load = row
            .load_seconds
            .map(|s| format!("{s:.2}"))
            .unwrap_or_else(|| "—".into());
        writeln!(
            out,
            "| {} | {} | {load} | {:.0} |",
            row.engine,
            cells.join(" | "),
            row.peak_rss_mb
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n(peer ratios: dragoman's speed at the peer's precision / the peer's speed; dragoman times whole processes, peers only their translate calls)"
    )
    .unwrap();
}
