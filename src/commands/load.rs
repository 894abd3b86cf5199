//! Finding and loading the model a command runs: `--model`, the catalog, the hub, the device.

use std::path::PathBuf;

use anyhow::{Context, Result};

use dragoman::catalog::{Catalog, Quality};
use dragoman::generation::GenerationOverrides;
use dragoman::{device, hub, Translator};

use crate::cli::RuntimeArgs;

/// Which model to run: the one `--model` names, or the catalog's, of a tier if asked.
#[derive(Clone, Copy, Default)]
pub(crate) struct ModelChoice<'a> {
    pub model: Option<&'a str>,
    pub quality: Option<Quality>,
}

pub(super) fn note_unsupported(name: &str, unsupported: &[String]) {
    if !unsupported.is_empty() {
        eprintln!(
            "dragoman: note: model {name} sets {}, which dragoman does not implement; output may differ from transformers'",
            unsupported.join(", ")
        );
    }
}

/// A model's files and where it runs.
pub(super) struct Located {
    /// The hub id or directory, as named.
    pub name: String,
    pub dir: PathBuf,
    pub device: candle_core::Device,
    pub precision: dragoman::models::Precision,
}

/// The model `--model` names, or else the catalog's (`catalog()` gives its hub id and
/// revision), found locally or downloaded, with the device and precision the flags ask for.
pub(super) fn locate(
    model: Option<&str>,
    runtime: &RuntimeArgs,
    catalog: impl FnOnce() -> Result<(String, String)>,
) -> Result<Located> {
    apply_runtime(runtime);
    let (spec, name) = match model {
        Some(spec) => (spec.to_string(), spec.to_string()),
        None => {
            let (id, revision) = catalog()?;
            (format!("{id}@{revision}"), id)
        }
    };
    let dir = hub::resolve(&spec, hub_options(runtime))?;
    let device = device::select(&runtime.device)?;
    if device.is_cpu() {
        dragoman::cpu::check_environment().map_err(dragoman::Error::Setting)?;
        if runtime.verbose {
            let kernels = dragoman::cpu::kernels();
            eprintln!("dragoman: cpu kernels {kernels}");
            for note in &kernels.notes {
                eprintln!("dragoman: note: {note}");
            }
        }
    }
    let precision = device::precision(&runtime.dtype, &device)?;
    Ok(Located {
        name,
        dir,
        device,
        precision,
    })
}

/// Which model a run used, for structured output.
pub(crate) struct ModelInfo {
    /// The hub id or directory, as named.
    pub name: String,
    /// The snapshot's commit for a hub model; "local" for a directory.
    pub revision: String,
    /// `--dtype` as loaded (f32, int8, …): int8 output may differ from transformers'.
    pub precision: dragoman::models::Precision,
    /// The CPU kernels in use (`f32: avx512, int8: amx, bf16: amx`); none on a GPU.
    pub kernels: Option<String>,
    pub load_seconds: f64,
}

/// The model `--model` names, or the catalog's for `from`→`to` (French to English where
/// not given), loaded with `overrides`, set to translate from `from` into `to`.
pub(crate) fn load_translator(
    choice: ModelChoice,
    from: Option<&str>,
    to: Option<&str>,
    runtime: &RuntimeArgs,
    overrides: &GenerationOverrides,
) -> Result<(Translator, ModelInfo)> {
    let started = std::time::Instant::now();
    let Located {
        name,
        dir,
        device,
        precision,
    } = locate(choice.model, runtime, || {
        let entry = Catalog::builtin()
            .translation(from.unwrap_or("fr"), to.unwrap_or("en"), choice.quality)?
            .clone();
        Ok((entry.model, entry.revision))
    })?;
    let mut translator =
        Translator::load(&dir, precision, &device).with_context(|| format!("model {name}"))?;
    dragoman::cpu::memory::settle_after_load();
    translator.set_name(name.clone());
    translator.set_languages(from, to)?;
    translator.set_overrides(overrides)?;
    if let Some(n) = runtime.max_batch {
        translator.set_max_batch(n as usize);
    }
    if !runtime.quiet {
        note_unsupported(&name, translator.unsupported_settings());
    } else {
        translator.set_notes(Box::new(|_| {}));
    }
    if runtime.verbose {
        eprintln!("dragoman: model {name} from {}", dir.display());
        eprintln!("dragoman: generation settings {:?}", translator.settings());
    }
    // A hub model lives in `.../snapshots/<commit>`.
    let in_snapshot = dir.parent().and_then(|p| p.file_name()) == Some("snapshots".as_ref());
    let revision = match dir.file_name() {
        Some(commit) if in_snapshot => commit.to_string_lossy().into_owned(),
        _ => "local".to_string(),
    };
    let info = ModelInfo {
        name,
        revision,
        precision,
        kernels: device
            .is_cpu()
            .then(|| dragoman::cpu::kernels().to_string()),
        load_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((translator, info))
}

/// Offline from the flag or the environment; progress bars only for a person watching.
pub(super) fn hub_options(runtime: &RuntimeArgs) -> hub::HubOptions {
    use std::io::IsTerminal;
    hub::HubOptions {
        offline: runtime.offline || hub::offline_from_env(),
        progress: !runtime.quiet && std::io::stderr().is_terminal(),
    }
}

fn apply_runtime(runtime: &RuntimeArgs) {
    if let Some(threads) = runtime.threads {
        // Read by candle's matmul and rayon's pool when they first start, which is later.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    // candle runs large element-wise ops on a second pool whose workers spin (25 000 rounds)
    // after each op; on a machine with few cores they take the cores rayon's work needs
    // (measured: beam 4 × 47 sentences 15.2 s spinning, 13.8 s not). Park them at once
    // unless the user chose otherwise.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
}
