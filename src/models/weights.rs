//! Reads a checkpoint in any of the layouts hub repos use: `model.safetensors`, sharded
//! safetensors with `model.safetensors.index.json`, or PyTorch's `pytorch_model.bin`
//! (also sharded). Safetensors are preferred when both are present, as transformers does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// All tensors of a checkpoint by name, converted to one dtype on one device.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    /// What was read, for error messages ("…/model.safetensors").
    source: PathBuf,
}

impl Weights {
    /// Finds and reads the checkpoint in `dir`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let candidates = [
            ("model.safetensors", Format::Safetensors, false),
            ("model.safetensors.index.json", Format::Safetensors, true),
            ("pytorch_model.bin", Format::Pickle, false),
            ("pytorch_model.bin.index.json", Format::Pickle, true),
        ];
        for (name, format, sharded) in candidates {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let files = if sharded {
                shard_files(&path)?
            } else {
                vec![path.clone()]
            };
            let mut tensors = HashMap::new();
            for file in &files {
                let read = match format {
                    Format::Safetensors => read_safetensors(file),
                    Format::Pickle => read_pickle(file),
                }
                .map_err(|e| Error::file(file, format!("cannot read weights: {e}")))?;
                for (name, tensor) in read {
                    let tensor = tensor
                        .to_dtype(dtype)
                        .and_then(|t| t.to_device(device))
                        .map_err(|e| Error::file(file, format!("tensor {name}: {e}")))?;
                    tensors.insert(name, tensor);
                }
            }
            return Ok(Self {
                tensors,
                source: path,
            });
        }
        Err(Error::file(
            dir,
            "no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)",
        ))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The tensor `name`, checked against the expected shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.get_any_shape(name)?;
        if tensor.dims() != shape {
            return Err(Error::file(
                &self.source,
                format!(
                    "tensor {name} has shape {:?}, config.json implies {shape:?}",
                    tensor.dims()
                ),
            ));
        }
        Ok(tensor)
    }

    /// The first of `names` the checkpoint holds (tied weights are stored under one name only).
    pub fn get_first(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        match names.iter().find(|n| self.contains(n)) {
            Some(name) => self.get(name, shape),
            None => Err(Error::file(
                &self.source,
                format!("missing tensor {}", names.join(" or ")),
            )),
        }
    }

    fn get_any_shape(&self, name: &str) -> Result<Tensor> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| Error::file(&self.source, format!("missing tensor {name}")))
    }
}

#[derive(Clone, Copy)]
enum Format {
    Safetensors,
    Pickle,
}

fn read_safetensors(file: &Path) -> candle_core::Result<Vec<(String, Tensor)>> {
    Ok(candle_core::safetensors::load(file, &Device::Cpu)?
        .into_iter()
        .collect())
}

fn read_pickle(file: &Path) -> candle_core::Result<Vec<(String, Tensor)>> {
    candle_core::pickle::read_all(file)
}

/// The distinct shard files named by a `*.index.json` weight map, in a stable order.
fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| Error::file(index, e))?;
    let parsed: Index = serde_json::from_str(&text)
        .map_err(|e| Error::file(index, format!("invalid index: {e}")))?;
    let mut names: Vec<&String> = parsed.weight_map.values().collect();
    names.sort();
    names.dedup();
    let dir = index.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = names.into_iter().map(|n| dir.join(n)).collect();
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        return Err(Error::file(
            missing,
            format!("shard listed in {} is missing", index.display()),
        ));
    }
    Ok(files)
}
