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
//! Every engine runs once per round, the rounds one after another (dragoman, then the peers):
//! this machine's speed drifts by 10–30 % over minutes, so a ratio of two runs taken minutes
//! apart says little, while the median of interleaved rounds, with each round's own ratio
//! beside it, says how far the comparison holds.
//! Columns: greedy one at a time, greedy and beam 4 in batches of 16, greedy without a batch
//! flag, and the defaults a user gets (no `--beams`, no `--max-batch`: the model's 4 beams,
//! dragoman's own batch sizing; CTranslate2's `translate_batch` on the whole input at once). Rows: dragoman in f32, int8,
//! and bf16 where the CPU multiplies bf16, beside CTranslate2 float32 and int8. Before the table
//! it prints the CPU, its flags and the kernels in use; after it, the output projection's
//! speed on each precision's kernel beside the machine's f32 peak, measured in the same run.
//! Options: `--tokens N` (48), `--threads N` (2), `--rounds N` (3), `--python PY` (run the
//! peers with that interpreter), `--projection-only` (only the output projection's figures),
//! `--shape opus-mt|tc-big` (opus-mt-fr-en's, or
//! opus-mt-tc-big-fr-en's: d_model 1024, 16 heads, FFN 4096, 53 017 words), `--documents`
//! (instead of the table: a document's overhead over its plain text, see [`documents`]).

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

/// opus-mt-tc-big-fr-en's shape (Helsinki-NLP/opus-mt-tc-big-fr-en: relu, 1024 wide); its
/// special ids are this harness's (eos 0, pad last), which changes nothing to the speed.
const OPUS_MT_TC_BIG_FR_EN: &str = r#"{
  "model_type": "marian", "architectures": ["MarianMTModel"],
  "vocab_size": 53017, "decoder_vocab_size": 53017, "d_model": 1024,
  "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 16,
  "decoder_attention_heads": 16, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
  "activation_function": "relu", "max_position_embeddings": 1024, "scale_embedding": true,
  "pad_token_id": 53016, "eos_token_id": 0, "decoder_start_token_id": 53016,
  "forced_eos_token_id": 0, "share_encoder_decoder_embeddings": true,
  "static_position_embeddings": true, "normalize_embedding": false, "num_beams": 4,
  "max_length": 512, "bad_words_ids": [[53016]]
}"#;

/// A model shape: its config and the sizes the weights are drawn with.
struct Shape {
    name: &'static str,
    config: &'static str,
    vocab: usize,
    d_model: usize,
    ffn: usize,
}

const SHAPES: [Shape; 2] = [
    Shape {
        name: "opus-mt",
        config: OPUS_MT_FR_EN,
        vocab: 59514,
        d_model: 512,
        ffn: 2048,
    },
    Shape {
        name: "tc-big",
        config: OPUS_MT_TC_BIG_FR_EN,
        vocab: 53017,
        d_model: 1024,
        ffn: 4096,
    },
];

fn generation_config(pad: usize) -> String {
    format!(
        r#"{{
  "bad_words_ids": [[{pad}]], "decoder_start_token_id": {pad}, "eos_token_id": 0,
  "forced_eos_token_id": 0, "max_length": 512, "num_beams": 4, "pad_token_id": {pad},
  "renormalize_logits": true
}}"#
    )
}

/// The columns of the table: (name, heading, beams, sentences per batch); `None` leaves the
/// setting to the engine's defaults (the model's beams, the engine's batching).
const COLUMNS: [(&str, &str, Option<usize>, Option<usize>); 5] = [
    ("greedy_b1", "greedy, 1 at a time", Some(1), Some(1)),
    ("greedy_b16", "greedy, batch 16", Some(1), Some(16)),
    ("greedy_defaults", "greedy, no batch flag", Some(1), None),
    ("beam4_b16", "beam 4, batch 16", Some(4), Some(16)),
    (
        "defaults",
        "defaults (the model's 4 beams, no batch flag)",
        None,
        None,
    ),
];

struct Options {
    tokens: usize,
    threads: usize,
    rounds: usize,
    python: Option<String>,
    shape: &'static Shape,
    /// Only the output projection's figures (`--projection-only`).
    projection_only: bool,
    documents: bool,
}

fn options() -> Options {
    let mut o = Options {
        tokens: 48,
        threads: 2,
        rounds: 3,
        python: None,
        shape: &SHAPES[0],
        projection_only: false,
        documents: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tokens" => o.tokens = args.next().and_then(|v| v.parse().ok()).unwrap_or(48),
            "--threads" => o.threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(2),
            "--rounds" => o.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(3).max(1),
            "--python" => o.python = args.next(),
            "--projection-only" => o.projection_only = true,
            "--documents" => o.documents = true,
            "--shape" => {
                let name = args.next().unwrap_or_default();
                o.shape = SHAPES
                    .iter()
                    .find(|s| s.name == name)
                    .unwrap_or_else(|| panic!("--shape {name}: expected opus-mt or tc-big"));
            }
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
fn make_model(dir: &Path, shape: &Shape) {
    if dir.join("model.safetensors").is_file() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let (v, d, ffn) = (shape.vocab, shape.d_model, shape.ffn);
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
    std::fs::write(dir.join("config.json"), shape.config).unwrap();
    std::fs::write(dir.join("generation_config.json"), generation_config(v - 1)).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian/fr-en");
    for name in [
        "source.spm",
        "target.spm",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
    }
    // The fixture's vocabulary, grown to the model's ids (converters check the size):
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

/// Runs the binary with `args` and `stdin`, timing the whole process and reading its peak RSS;
/// its stderr goes to `log` where given.
fn run(args: &[String], stdin: &Path, threads: usize, log: Option<&Path>) -> Run {
    let start = Instant::now();
    // Reaped below by wait4, which also reports its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_dragoman"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdin(std::fs::File::open(stdin).unwrap())
        .stdout(Stdio::null())
        .stderr(match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        })
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

/// One engine's figures over the rounds.
struct Row {
    engine: String,
    /// tokens/s per column, by name: (round, tokens/s).
    speed: HashMap<String, Vec<(usize, f64)>>,
    /// Load to first output line (dragoman) or load call (peers), one or more per round.
    loads: Vec<f64>,
    peak_rss_mb: f64,
}

impl Row {
    fn new(engine: &str) -> Self {
        Self {
            engine: engine.to_string(),
            speed: HashMap::new(),
            loads: Vec::new(),
            peak_rss_mb: 0.0,
        }
    }

    /// Adds another round's figures for the same engine.
    fn merge(&mut self, other: Row) {
        for (column, speeds) in other.speed {
            self.speed.entry(column).or_default().extend(speeds);
        }
        self.loads.extend(other.loads);
        self.peak_rss_mb = self.peak_rss_mb.max(other.peak_rss_mb);
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

fn main() {
    let o = options();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("throughput");
    let model = match o.shape.name {
        "opus-mt" => work.join("opus-mt-fr-en-random"),
        other => work.join(format!("{other}-random")),
    };
    eprintln!("model: {}", model.display());
    print_machine();
    if o.projection_only {
        print_projection(o.shape, o.threads);
        return;
    }
    make_model(&model, o.shape);
    let sentences = work.join("sentences.txt");
    let n = write_sentences(&sentences);
    let one = work.join("one.txt");
    std::fs::write(&one, "Bonjour.\n").unwrap();
    if o.documents {
        documents(&model, &sentences, &work, &o);
        return;
    }
    eprintln!(
        "{n} sentences × {} tokens, {} threads, {} rounds",
        o.tokens, o.threads, o.rounds
    );

    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=o.rounds {
        eprintln!("round {round} of {}", o.rounds);
        let mut this_round = dragoman_rows(round, &model, &sentences, &one, n, &o);
        if let Some(python) = &o.python {
            this_round.extend(peers(round, python, &model, &sentences, &o));
        }
        for row in this_round {
            match rows.iter_mut().find(|r| r.engine == row.engine) {
                Some(known) => known.merge(row),
                None => rows.push(row),
            }
        }
    }
    print_table(&rows, n, &o);
    print_projection(o.shape, o.threads);
}

/// The CPU, the flags the kernels care about, and the kernels this machine runs.
fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let flags: Vec<String> = field("flags")
        .split_whitespace()
        .filter(|f| {
            ["avx", "fma", "amx", "f16c", "vnni", "bf16", "fp16"]
                .iter()
                .any(|k| f.starts_with(k) || f.contains(k))
        })
        .map(str::to_string)
        .collect();
    println!(
        "CPU: {} ({} logical CPUs)",
        field("model name"),
        cpuinfo.matches("processor\t").count()
    );
    println!("flags: {}", flags.join(" "));
    println!("dragoman kernels: {}", dragoman::cpu::kernels());
    for note in &dragoman::cpu::kernels().notes {
        println!("  note: {note}");
    }
}

/// The output projection ([rows, d_model] · [d_model, vocabulary]) alone on each precision's
/// kernel, in the benchmark's threads, beside the f32 multiply-add peak of those threads.
fn print_projection(shape: &Shape, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let peak = dragoman::cpu::probe::f32_peak_gflops();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\noutput projection {} × {}, {threads} threads, G(FL)OP/s (the best of 5); f32 multiply-add peak of these threads: {peak:.0} GFLOP/s\n",
            shape.d_model, shape.vocab
        )
        .unwrap();
        writeln!(out, "| kernel | 1 row | 16 rows | 64 rows |").unwrap();
        writeln!(out, "|---|---|---|---|").unwrap();
        let kernels = dragoman::cpu::kernels();
        let names = [
            ("f32", kernels.vector.to_string()),
            ("int8", kernels.int8.to_string()),
            ("bf16", kernels.bf16.map(|k| k.to_string()).unwrap_or_default()),
        ];
        for (dtype, kernel) in names {
            // The rows of greedy one at a time, greedy batch 16 and beam 4 × 16.
            let cells: Vec<String> = [1, 16, 64]
                .iter()
                .map(|&m| {
                    let seconds = dragoman::cpu::probe::projection_seconds(
                        dtype,
                        m,
                        shape.vocab,
                        shape.d_model,
                        5,
                    );
                    match seconds {
                        Some(s) => {
                            let rate = 2.0 * (m * shape.vocab * shape.d_model) as f64 / s / 1e9;
                            if dtype == "f32" {
                                format!("{rate:.0} ({:.0} % of peak)", 100.0 * rate / peak)
                            } else {
                                format!("{rate:.0}")
                            }
                        }
                        None => "—".into(),
                    }
                })
                .collect();
            if cells.iter().all(|c| c == "—") {
                continue;
            }
            writeln!(out, "| {dtype}: {kernel} | {} |", cells.join(" | ")).unwrap();
        }
    });
}

/// One round of dragoman's columns, float32 then int8.
fn dragoman_rows(
    round: usize,
    model: &Path,
    sentences: &Path,
    one: &Path,
    n: usize,
    o: &Options,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut precisions = vec![("f32", "dragoman float32"), ("int8", "dragoman int8")];
    if dragoman::cpu::kernels().bf16.is_some() {
        precisions.push(("bf16", "dragoman bfloat16"));
    }
    for (dtype, label) in precisions {
        let args = |extra: &[&str]| -> Vec<String> {
            let mut args: Vec<String> = vec!["translate".into(), "--model".into()];
            args.push(model.display().to_string());
            args.extend(["--threads".into(), o.threads.to_string()]);
            args.extend(["--dtype".into(), dtype.into()]);
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        let mut row = Row::new(label);
        // Load to first output line: one short sentence, one token; three runs a round, so
        // that the median is over several (single runs vary by a tenth of a second with what
        // the kernel has to find memory).
        for _ in 0..3 {
            let load = run(
                &args(&["--beams", "1", "--max-new-tokens", "1"]),
                one,
                o.threads,
                None,
            );
            row.loads.push(load.seconds);
        }
        eprintln!("  {label} load: {:.2?} s", row.loads);
        for (name, _, beams, batch) in COLUMNS {
            let tokens = o.tokens.to_string();
            let mut flags: Vec<String> = Vec::new();
            if let Some(beams) = beams {
                flags.extend(["--beams".into(), beams.to_string()]);
            }
            if let Some(batch) = batch {
                flags.extend(["--max-batch".into(), batch.to_string()]);
            }
            flags.extend(["--min-new-tokens".into(), tokens.clone()]);
            flags.extend(["--max-new-tokens".into(), tokens]);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let r = run(&args(&flags), sentences, o.threads, None);
            let speed = (n * o.tokens) as f64 / r.seconds;
            eprintln!(
                "  {label} {name}: {:.2} s, {speed:.0} tok/s, {:.0} MB",
                r.seconds, r.peak_rss_mb
            );
            row.speed.insert(name.to_string(), vec![(round, speed)]);
            row.peak_rss_mb = row.peak_rss_mb.max(r.peak_rss_mb);
        }
        rows.push(row);
    }
    rows
}

/// benches/peers.py's rows (one engine per row), or nothing if it cannot run.
fn peers(round: usize, python: &str, model: &Path, sentences: &Path, o: &Options) -> Vec<Row> {
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
                rows.push(Row::new(&engine));
                rows.last_mut().unwrap()
            }
        };
        row.speed.insert(
            v["column"].as_str().unwrap_or("?").to_string(),
            vec![(round, speed)],
        );
        row.loads.extend(v["load_seconds"].as_f64());
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
        "\n{} shape, random weights; {n} sentences × {} forced tokens; {} threads; tokens/s, the median of {} rounds (peers: dragoman's speed at the same precision / theirs, from the medians; in brackets, the lowest and highest of the rounds' own ratios; the bfloat16 row's ratios are against CTranslate2 int8)\n",
        o.shape.name, o.tokens, o.threads, o.rounds
    )
    .unwrap();
    let headings: Vec<&str> = COLUMNS.iter().map(|c| c.1).collect();
    writeln!(
        out,
        "| engine | {} | load (s) | peak RSS (MB) |",
        headings.join(" | ")
    )
    .unwrap();
    writeln!(out, "|---|{}---|---|", "---|".repeat(COLUMNS.len())).unwrap();
    for row in rows {
        // Peers compare with dragoman at their precision (int8 with int8, else float32); the
        // bf16 row compares itself with CTranslate2 int8 (the issue's target).
        let precision = if row.engine.contains("int8") {
            "int8"
        } else {
            "float32"
        };
        let (ours, theirs_row) = if row.engine == "dragoman bfloat16" {
            match rows
                .iter()
                .find(|r| r.engine.starts_with("ctranslate2") && r.engine.ends_with("int8"))
            {
                Some(ct2) => (row, Some(ct2)),
                None => (row, None),
            }
        } else {
            let ours = rows
                .iter()
                .find(|r| r.engine == format!("dragoman {precision}"))
                .unwrap_or(&rows[0]);
            (ours, (!row.engine.starts_with("dragoman")).then_some(row))
        };
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|(name, ..)| {
                let shown = row
                    .speed
                    .get(*name)
                    .and_then(|s| median(s.iter().map(|&(_, v)| v)));
                let Some(shown) = shown else {
                    return "—".into();
                };
                let Some(theirs_row) = theirs_row else {
                    return format!("{shown:.0}");
                };
                let (theirs, mine) = (theirs_row.speed.get(*name), ours.speed.get(*name));
                let Some(speed) = theirs.and_then(|s| median(s.iter().map(|&(_, v)| v))) else {
                    return format!("{shown:.0}");
                };
                match mine {
                    Some(mine) => {
                        let ratio =
                            median(mine.iter().map(|&(_, v)| v)).unwrap_or(f64::NAN) / speed;
                        // Round by round: the same round's runs, taken minutes apart at most.
                        let per_round: Vec<f64> = mine
                            .iter()
                            .filter_map(|&(round, m)| {
                                let t = theirs?.iter().find(|&&(r, _)| r == round)?.1;
                                Some(m / t)
                            })
                            .collect();
                        let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
                        let high = per_round.iter().copied().fold(0.0, f64::max);
                        format!("{shown:.0} ({ratio:.2}×; {low:.2}–{high:.2})")
                    }
                    _ => format!("{shown:.0}"),
                }
            })
            .collect();
        let load = median(row.loads.iter().copied())
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
        "\n(dragoman times whole processes, peers only their translate calls; peak RSS is the highest of the rounds)"
    )
    .unwrap();
}

/// The word-alignment seconds of a `dragoman -v` run's stage-times line in `log`.
fn alignment_seconds(log: &Path) -> f64 {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("dragoman: time in "))
        .unwrap_or_else(|| panic!("no stage times in {}", log.display()));
    let after = line.split("word alignment ").nth(1).unwrap_or("");
    after.split(' ').next().unwrap_or("").parse().unwrap_or(0.0)
}

/// A document's overhead over its plain text: the sentences as an HTML page and a Markdown
/// file (paragraphs of three sentences, each opening with a bold word and a link, so the
/// first sentence of every paragraph is aligned and its spans carried over), and as an HTML
/// page with a bold word in every sentence, against the same paragraphs' text in a plain
/// file, one per line. Each is translated by a whole `dragoman translate -v` process with
/// the user's defaults (f32, the model's beams), in interleaved rounds; the overhead is
/// given from the fastest rounds and as the median of each round's ratio, beside the
/// alignment pass's own time.
fn documents(model: &Path, sentences: &Path, work: &Path, o: &Options) {
    let text = std::fs::read_to_string(sentences).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let paragraphs: Vec<String> = lines.chunks(3).map(|c| c.join(" ")).collect();
    let page_start = "<!DOCTYPE html>\n<html lang=\"fr\"><body>\n";
    let (mut html, mut markdown) = (String::from(page_start), String::new());
    // The same paragraphs with a bold word opening every sentence: each sentence pays for
    // the alignment pass (in the others, only a paragraph's first sentence holds spans).
    let mut dense = String::from(page_start);
    for chunk in lines.chunks(3) {
        let sentences: Vec<String> = chunk
            .iter()
            .map(|line| match line.split_once(' ') {
                Some((first, rest)) => format!("<b>{first}</b> {rest}"),
                None => format!("<b>{line}</b>"),
            })
            .collect();
        dense.push_str(&format!("<p>{}</p>\n", sentences.join(" ")));
    }
    dense.push_str("</body></html>\n");
    for paragraph in &paragraphs {
        let words: Vec<&str> = paragraph.split(' ').collect();
        let (first, rest) = words.split_at(1.min(words.len()));
        let (linked, tail) = rest.split_at(2.min(rest.len()));
        html.push_str(&format!(
            "<p><b>{}</b> <a href=\"/lien\">{}</a> {}</p>\n",
            first.join(" "),
            linked.join(" "),
            tail.join(" ")
        ));
        markdown.push_str(&format!(
            "**{}** [{}](/lien) {}\n\n",
            first.join(" "),
            linked.join(" "),
            tail.join(" ")
        ));
    }
    html.push_str("</body></html>\n");
    let files = [
        (
            "plain text",
            work.join("paragraphs.txt"),
            paragraphs.join("\n") + "\n",
        ),
        ("HTML", work.join("page.html"), html),
        ("Markdown", work.join("page.md"), markdown),
        (
            "HTML, a span in every sentence",
            work.join("dense.html"),
            dense,
        ),
    ];
    for (_, path, content) in &files {
        std::fs::write(path, content).unwrap();
    }
    let empty = work.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); files.len()];
    // The alignment pass's own time, as the process reports it under -v.
    let mut alignment: Vec<Vec<f64>> = vec![Vec::new(); files.len()];
    for round in 1..=o.rounds {
        eprintln!("round {round} of {}", o.rounds);
        for (k, (_, path, _)) in files.iter().enumerate() {
            let args: Vec<String> = vec![
                "translate".into(),
                "-v".into(),
                "--model".into(),
                model.display().to_string(),
                "--threads".into(),
                o.threads.to_string(),
                "--max-new-tokens".into(),
                o.tokens.to_string(),
                "--min-new-tokens".into(),
                o.tokens.to_string(),
                path.display().to_string(),
            ];
            let log = work.join("documents.log");
            seconds[k].push(run(&args, &empty, o.threads, Some(&log)).seconds);
            alignment[k].push(alignment_seconds(&log));
        }
    }
    println!(
        "\n{} paragraphs of 3 sentences, {} tokens each, defaults (f32, 4 beams), {} threads, {} rounds",
        paragraphs.len(),
        o.tokens,
        o.threads,
        o.rounds
    );
    // This machine's speed drifts by tens of percent from one minute to the next, and drift
    // only ever adds time: the fastest of each input's rounds is the steadiest estimate.
    let fastest = |k: usize| seconds[k].iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "| input | fastest s | median s | overhead over plain text (fastest vs fastest) | (median of rounds' ratios) | alignment pass, median s (share of its run) | per round |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (k, (name, _, _)) in files.iter().enumerate() {
        let ratios: Vec<f64> = seconds[k]
            .iter()
            .zip(&seconds[0])
            .map(|(s, plain)| s / plain - 1.0)
            .collect();
        let per_round: Vec<String> = ratios
            .iter()
            .map(|r| format!("{:+.1} %", r * 100.0))
            .collect();
        let shares = alignment[k].iter().zip(&seconds[k]).map(|(a, s)| a / s);
        println!(
            "| {name} | {:.2} | {:.2} | {:+.1} % | {:+.1} % | {:.3} ({:.1} %) | {} |",
            fastest(k),
            median(seconds[k].iter().copied()).unwrap_or(0.0),
            (fastest(k) / fastest(0) - 1.0) * 100.0,
            median(ratios.iter().copied()).unwrap_or(0.0) * 100.0,
            median(alignment[k].iter().copied()).unwrap_or(0.0),
            median(shares).unwrap_or(0.0) * 100.0,
            per_round.join(", ")
        );
    }
}
