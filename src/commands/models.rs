//! `dragoman models list | pull | rm | path | info`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use dragoman::catalog::Catalog;
use dragoman::hub;

use super::load::hub_options;
use crate::cli::{ModelsCommand, RuntimeArgs};

/// `dragoman models list | pull | rm | path`.
pub fn models(command: &ModelsCommand, runtime: &RuntimeArgs) -> Result<()> {
    use dragoman::hub::cache;
    let options = hub_options(runtime);
    let cache_dir = cache::cache_dir()?;
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::List => {
            let cached = cache::scan(&cache_dir);
            let catalog = Catalog::builtin();
            writeln!(
                out,
                "{:<36} {:<8} {:<6} {:>10}  {:<16} TASK",
                "MODEL", "REVISION", "CACHED", "SIZE", "LICENCE"
            )?;
            let rows = catalog
                .translate
                .iter()
                .map(|e| {
                    let default = if e.default { ", default" } else { "" };
                    let note = if e.non_commercial() {
                        ": non-commercial use only; never a default, run it with --model"
                    } else {
                        ""
                    };
                    let task = format!(
                        "translate {}→{} ({}{default}){note}",
                        e.from,
                        e.to,
                        e.quality.name()
                    );
                    (&e.model, &e.revision, &e.license, task)
                })
                .chain(catalog.summarize.iter().map(|e| {
                    let role = if e.default { "" } else { " (alternative)" };
                    let note = e
                        .note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default();
                    let task = format!("summarize {}{role}{note}", e.lang);
                    (&e.model, &e.revision, &e.license, task)
                }));
            for (model, revision, license, task) in rows {
                let found = cached.iter().find(|c| &c.repo == model);
                let id = hub::HubId::parse(&format!("{model}@{revision}"))?;
                let state = if cache::cached_snapshot(&cache_dir, &id).is_some() {
                    "yes"
                } else {
                    "no"
                };
                let size = found
                    .map(|c| human_size(c.size))
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{model:<36} {revision:<8} {state:<6} {size:>10}  {license:<16} {task}"
                )?;
            }
            let others: Vec<_> = cached
                .iter()
                .filter(|c| c.seq2seq && !catalog.lists(&c.repo))
                .collect();
            if !others.is_empty() {
                writeln!(
                    out,
                    "\nother cached seq2seq models in {}:",
                    cache_dir.display()
                )?;
                for model in others {
                    let family = model.model_type.as_deref().unwrap_or("?");
                    let supported = if dragoman::models::SUPPORTED_FAMILIES.contains(&family) {
                        ""
                    } else {
                        " (not supported)"
                    };
                    let refs: Vec<&str> = model.refs.iter().map(|(r, _)| r.as_str()).collect();
                    writeln!(
                        out,
                        "{:<36} {:<8} {:<6} {:>10}  {family}{supported}",
                        model.repo,
                        refs.join(","),
                        "yes",
                        human_size(model.size)
                    )?;
                }
            }
        }
        ModelsCommand::Pull { ids } => {
            for id in ids {
                let snapshot = hub::pull(id, options)?;
                writeln!(out, "{id}\t{}", snapshot.display())?;
            }
        }
        ModelsCommand::Rm { ids } => {
            for id in ids {
                let freed = cache::remove(&cache_dir, &hub::HubId::parse(id)?)?;
                writeln!(out, "removed {id} ({})", human_size(freed))?;
            }
        }
        ModelsCommand::Path { id } => {
            let snapshot = hub::cached(id)?;
            writeln!(out, "{}", snapshot.display())?;
        }
        ModelsCommand::Info { id } => {
            let dir = if Path::new(id).is_dir() {
                PathBuf::from(id)
            } else {
                hub::cached(id)?
            };
            out.write_all(model_info(id, &dir)?.as_bytes())?;
        }
    }
    Ok(())
}

/// `dragoman models info`: one field per line.
fn model_info(name: &str, dir: &Path) -> Result<String> {
    use dragoman::languages::{self, Scheme};
    let config = dragoman::models::ModelConfig::read(&dir.join("config.json"))
        .with_context(|| format!("model {name}"))?;
    let raw = &config.raw;
    let number = |key: &str| raw.get(key).and_then(serde_json::Value::as_u64);
    let mut info = String::new();
    let mut field = |key: &str, value: String| info.push_str(&format!("{key:<10} {value}\n"));
    field("model", format!("{name} ({})", dir.display()));
    let family = config.model_type().to_string();
    let supported = if config.is_supported() {
        ""
    } else {
        " (not supported)"
    };
    let shape = match (
        number("d_model"),
        number("encoder_layers"),
        number("decoder_layers"),
    ) {
        (Some(d), Some(e), Some(l)) => format!(", d_model {d}, {e}+{l} layers"),
        _ => String::new(),
    };
    let vocab = number("vocab_size")
        .map(|v| format!(", {v} words"))
        .unwrap_or_default();
    field("family", format!("{family}{supported}{shape}{vocab}"));
    if config.is_supported() {
        let tokenizer =
            dragoman::tokenizer::Tokenizer::load(dir).with_context(|| format!("model {name}"))?;
        let named = |codes: &[String]| -> String {
            codes
                .iter()
                .map(|c| match languages::name(c) {
                    Some(n) => format!("{c} ({n})"),
                    None => c.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let scheme = Scheme::of(dir, &tokenizer);
        let languages = match &scheme {
            Scheme::Tokens(_) => format!(
                "{} languages, any to any (source marked by a token, target forced): {}",
                scheme.codes().len(),
                named(&scheme.codes())
            ),
            Scheme::TargetToken(_) => format!(
                "into {} languages, by a >>code<< token before each sentence: {}",
                scheme.codes().len(),
                named(&scheme.codes())
            ),
            Scheme::Pair { from, to } => {
                let side = |code: &Option<String>| {
                    code.as_ref()
                        .map(|c| named(std::slice::from_ref(c)))
                        .unwrap_or_else(|| "?".into())
                };
                format!("{} → {}", side(from), side(to))
            }
        };
        field("languages", languages);
    }
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("model {name}: {}", dir.display()))?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let size = std::fs::metadata(e.path()).map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let dtype = raw
        .get("torch_dtype")
        .or_else(|| raw.get("dtype"))
        .and_then(serde_json::Value::as_str)
        .map(|d| format!(", weights in {d}"))
        .unwrap_or_default();
    field("size", format!("{}{dtype}", human_size(total)));
    field("licence", licence(name, dir));
    let listing: Vec<String> = files
        .iter()
        .map(|(file, size)| format!("{file} ({})", human_size(*size)))
        .collect();
    field("files", listing.join(", "));
    Ok(info)
}

/// A model's licence: the catalog's for its models, else the model card's `license:`.
fn licence(name: &str, dir: &Path) -> String {
    let model = name.split('@').next().unwrap_or(name);
    let listed = Catalog::builtin().license_of(model).map(str::to_string);
    let card = || {
        let readme = std::fs::read_to_string(dir.join("README.md")).ok()?;
        let front = readme
            .strip_prefix("---")?
            .split("\n---")
            .next()?
            .to_string();
        front.lines().find_map(|line| {
            line.strip_prefix("license:")
                .map(|l| l.trim().trim_matches('"').to_string())
        })
    };
    match listed.or_else(card) {
        Some(l) if l.to_ascii_uppercase().contains("-NC") => {
            format!("{l} (non-commercial use only)")
        }
        Some(l) => l,
        None => "unknown (not in the catalog, no model card with a licence)".into(),
    }
}

fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if size < 1000.0 || unit == "GB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1000.0;
    }
    format!("{bytes} B")
}
