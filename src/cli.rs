//! Command-line flags (clap derive), grouped as the design names them; every flag is
//! accepted after the subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use serde::{Deserialize, Serialize};

use dragoman::generation::{GenerationOverrides, MAX_BEAMS};

#[derive(Debug, Parser)]
#[command(
    name = "dragoman",
    version,
    about = "Translate and summarize French text with open seq2seq models, exactly as transformers would"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate text line by line (stdin → stdout, or FILEs → stdout / -o FILE)
    Translate(TranslateArgs),
    /// Summarize each input (stdin, or each FILE) as one document: one summary line each
    Summarize(SummarizeArgs),
    /// A warm worker: JSON requests on stdin (one per line), JSON answers on stdout
    Serve(ServeArgs),
    /// List, download, remove or locate models in the Hugging Face cache
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Catalog models (cached or not, size, licence) and other cached models
    List,
    /// Download models into the cache for offline use (ORG/NAME[@REVISION]...)
    Pull {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove models (every revision) from the cache
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print the local directory of a cached model
    Path { id: String },
    /// What a model is: family, languages, size, licence, files (a directory, or a cached
    /// hub id)
    Info {
        #[arg(value_name = "ID|DIR")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Input files, read in order; none or `-` reads stdin
    pub files: Vec<PathBuf>,

    /// Target language: ISO 639-1 or 639-3 (`ru`, `rus`) or the model's own code (`rus_Cyrl`,
    /// `__ru__`, `>>rus<<`); picks the catalog's model unless --model is given [default: en]
    #[arg(long)]
    pub to: Option<String>,

    /// Source language: picks the catalog model, and inputs that do not look like it get a
    /// warning ("auto": French, the catalog's source language)
    #[arg(long, default_value = "auto")]
    pub from: String,

    /// Write the output to FILE (atomically: complete or not at all) instead of stdout
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "out_dir"
    )]
    pub output: Option<PathBuf>,

    /// Write one output per input into DIR, mirroring the inputs' tree, named
    /// `stem.<to>.ext`; existing outputs are skipped unless --force
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// With --out-dir: translate the documents (.txt, .md, .html, .srt, .vtt, .docx) under
    /// directory arguments
    #[arg(short = 'r', long, requires = "out_dir")]
    pub recursive: bool,

    /// With --out-dir: overwrite outputs that already exist
    #[arg(long, requires = "out_dir")]
    pub force: bool,

    /// Output: the translated text, or per input document its paragraphs and sentences aligned
    /// source → target with the model, revision, settings and timings (`json`: one array;
    /// `jsonl`: one object per line)
    #[arg(long, default_value = "text", value_parser = ["text", "json", "jsonl"])]
    pub format: String,

    /// How inputs are read: `markdown` and `html` translate the text of a document, each
    /// paragraph whole, with its inline formatting carried onto the translation and every
    /// other byte kept; `srt` and `vtt` translate subtitles a sentence at a time over their
    /// cues, timings kept; `docx` translates a Word document (binary output: -o or
    /// --out-dir); `auto` picks by extension (.md/.markdown, .html/.htm/.xhtml, .srt, .vtt,
    /// .docx), else text
    #[arg(long, default_value = "auto", value_parser = ["auto", "text", "markdown", "html", "srt", "vtt", "docx"])]
    pub input_format: String,

    /// Plain text with hard-wrapped paragraphs: the lines between blank lines are translated
    /// as one text and the translation is wrapped to the paragraph's longest source line
    /// (without it, every input line gives one output line)
    #[arg(long)]
    pub paragraphs: bool,

    /// Replace invalid UTF-8 in the input with U+FFFD instead of stopping with an error
    #[arg(long)]
    pub lossy: bool,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
#[group(id = "transport", required = true, multiple = false, args = ["stdio", "http"])]
pub struct ServeArgs {
    /// Read requests from stdin (one JSON object per line) and answer on stdout
    #[arg(long)]
    pub stdio: bool,

    /// Listen on ADDR (`127.0.0.1:8080`, or a port alone for loopback): POST /v1/translate and
    /// /v1/summarize, GET /health and /v1/models
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

    /// Models requests may name by local directory (hub ids are always accepted)
    #[arg(long, value_name = "DIR|HUB_ID")]
    pub model: Vec<String>,

    /// Largest request accepted, in bytes: an HTTP body or a line on stdin. A larger one is
    /// answered with an error (HTTP 413) and the worker goes on.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_request_bytes: usize,

    /// HTTP: most connections open at once; one more is answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// HTTP: seconds a client may take to send a request's headers or body, and a connection
    /// may stay idle between requests, before it is closed (408 when a body stalls)
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub read_timeout: u64,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Documents to summarize, each on its own; none or `-` reads stdin.
    pub files: Vec<PathBuf>,

    /// Language of the summary (fr, en, ru). Default: the document's language (French);
    /// en/ru summarize in French, then translate the summary.
    #[arg(long)]
    pub lang: Option<String>,

    /// Write the summaries to FILE (atomically) instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "out_dir"
    )]
    pub output: Option<PathBuf>,

    /// Write each document's summary into DIR, mirroring the inputs' tree, named
    /// `stem.<lang>.summary.txt`; existing outputs are skipped unless --force
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// With --out-dir: summarize the documents under directory arguments
    #[arg(short = 'r', long, requires = "out_dir")]
    pub recursive: bool,

    /// With --out-dir: overwrite summaries that already exist
    #[arg(long, requires = "out_dir")]
    pub force: bool,

    /// Output: one summary line per document, or per document an object with its `input`,
    /// `lang` and `summary` (`json`: one array; `jsonl`: one object per line)
    #[arg(long, default_value = "text", value_parser = ["text", "json", "jsonl"])]
    pub format: String,

    /// How inputs are read (as translate's): a document's text is what a reader reads, its
    /// markup left out
    #[arg(long, default_value = "auto", value_parser = ["auto", "text", "markdown", "html", "srt", "vtt", "docx"])]
    pub input_format: String,

    /// Replace invalid UTF-8 with U+FFFD instead of stopping.
    #[arg(long)]
    pub lossy: bool,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model directory laid out like a hub repo, or hub id ORG/NAME[@REVISION]
    #[arg(long, value_name = "DIR|HUB_ID[@REV]")]
    pub model: Option<String>,

    /// Which of the catalog's models for the language pair: its fastest or its best (see
    /// `dragoman models list`); without it, the pair's default
    #[arg(long, value_parser = ["fast", "best"])]
    pub quality: Option<String>,
}

impl ModelArgs {
    pub fn quality(&self) -> Option<dragoman::catalog::Quality> {
        self.quality
            .as_deref()
            .and_then(|q| dragoman::catalog::Quality::parse(q).ok())
    }
}

/// Generation settings: each overrides one setting of the model's generation_config.json.
/// One struct for the CLI's flags (clap), serve's request fields (serde, the same names in
/// snake_case) and serve's batching key (what requests must share to be batched).
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct GenerationArgs {
    /// Beam count (num_beams); 1 is greedy search
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_BEAMS as i64))]
    pub beams: Option<u32>,

    /// Return the N best translations of each sentence (num_return_sequences; at most the
    /// beams): the text output keeps the best, JSON lists all N under `alternatives`
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_BEAMS as i64))]
    pub alternatives: Option<u32>,

    /// Most tokens to generate per sentence (takes precedence over the model's max_length)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_new_tokens: Option<u32>,

    /// Fewest tokens to generate per sentence (takes precedence over min_length)
    #[arg(long)]
    pub min_new_tokens: Option<u32>,

    /// Exponent of the length normalisation in beam search (length_penalty)
    #[arg(long, allow_negative_numbers = true)]
    pub length_penalty: Option<f64>,

    /// Forbid repeating any n-gram of this size (no_repeat_ngram_size)
    #[arg(long)]
    pub no_repeat_ngram: Option<u32>,

    /// Penalty for tokens already generated (repetition_penalty; 1.0 = none)
    #[arg(long)]
    pub repetition_penalty: Option<f64>,
}

impl GenerationArgs {
    /// The settings' names, as request fields take them (flags: with `--` and dashes).
    pub fn field_names(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    pub fn overrides(&self) -> GenerationOverrides {
        GenerationOverrides {
            num_beams: self.beams.map(|b| b as usize),
            num_return_sequences: self.alternatives.map(|n| n as usize),
            // Alternatives are reported with their scores.
            output_scores: self.alternatives.map(|_| true),
            max_new_tokens: self.max_new_tokens.map(|n| n as usize),
            min_new_tokens: self.min_new_tokens.map(|n| n as usize),
            length_penalty: self.length_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram.map(|n| n as usize),
            repetition_penalty: self.repetition_penalty,
            ..GenerationOverrides::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Where to run: auto, cpu, cuda[:N] or metal
    #[arg(global = true, long, default_value = "cpu")]
    pub device: String,

    /// Precision: f32; int8 (CPU: projection weights quantized at load, faster, outputs may
    /// differ slightly from f32); bf16 (CPU with AMX-BF16 or AVX512-BF16, or a GPU; outputs
    /// may differ slightly); f16 on a GPU
    #[arg(global = true, long, default_value = "f32", value_parser = ["f32", "int8", "f16", "bf16"])]
    pub dtype: String,

    /// CPU threads (default: all cores)
    #[arg(global = true, long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// At most N sentences (or documents) per batch; default: as many as fit 4096 padded
    /// input tokens.
    #[arg(global = true, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_batch: Option<u32>,

    /// Never use the network: models come from the cache only (also HF_HUB_OFFLINE=1)
    #[arg(global = true, long)]
    pub offline: bool,

    /// Print nothing on stderr but errors
    #[arg(global = true, short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the model used and the generation settings on stderr
    #[arg(global = true, short, long)]
    pub verbose: bool,
}
