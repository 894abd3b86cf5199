//! Summarize a French document with the library API.
//!
//!     cargo run --example summarize -- MODEL_DIR FILE
//!
//! MODEL_DIR is a directory laid out like a hub repo (a snapshot of
//! moussaKam/barthez-orangesum-abstract, or tests/fixtures/summarize/barthez for a tiny random
//! model); FILE is the document.

use candle_core::Device;
use dragoman::models::Precision;
use dragoman::Summarizer;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(file)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: summarize MODEL_DIR FILE");
    };
    let summarizer = Summarizer::load(dir.as_ref(), Precision::F32, &Device::Cpu)?;
    if !summarizer.has_task_parameters() {
        eprintln!("note: the model has no summarization parameters; using its generation defaults");
    }
    let document = std::fs::read_to_string(&file)?;
    println!("{}", summarizer.summarize(&document)?);
    Ok(())
}
