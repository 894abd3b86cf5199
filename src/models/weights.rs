//! Reads a checkpoint in any of the layouts hub repos use: `model.safetensors`, sharded
//! safetensors with `model.safetensors.index.json`, or PyTorch's `pytorch_model.bin`
//! (also sharded). Safetensors are preferred when both are present, as transformers does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::models::{huge_pages, Precision};
use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// All tensors of a checkpoint by name, converted to one dtype on one device.
pub struct Weights {
    /// Interior mutability so that `take` can free a tensor once it has been converted.
    tensors: RefCell<HashMap<String, Tensor>>,
    /// What was read, for error messages ("…/model.safetensors").
    source: PathBuf,
    precision: Precision,
}

impl Weights {
    /// Finds and reads the checkpoint in `dir`.
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let dtype = precision.dtype();
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
                tensors: RefCell::new(tensors),
                source: path,
                precision,
            });
        }
        Err(Error::file(
            dir,
            "no weights found (expected model.safetensors, model.safetensors.index.json or pytorch_model.bin)",
        ))
    }

    /// The precision the model is loaded in (projections are quantized for `Int8`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.borrow().contains_key(name)
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

    /// `get`, removing the tensor: when the caller keeps only a converted copy (int8), the
    /// f32 original is freed now rather than after the whole model is built.
    pub fn take(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.get(name, shape)?;
        self.tensors.borrow_mut().remove(name);
        Ok(tensor)
    }

    fn get_any_shape(&self, name: &str) -> Result<Tensor> {
        self.tensors
            .borrow()
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

/// Reads each tensor of a safetensors file straight into its own buffer, in parallel.
///
/// candle's loader reads the whole file into memory and then copies every tensor out of it,
/// which doubles both the peak memory and the copying; here each byte is read once.
fn read_safetensors(file: &Path) -> std::result::Result<Vec<(String, Tensor)>, String> {
    use rayon::prelude::*;
    use std::io::{Read, Seek, SeekFrom};

    let mut f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut len_bytes = [0u8; 8];
    f.read_exact(&mut len_bytes)
        .map_err(|_| "not a safetensors file (shorter than its header)".to_string())?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(format!(
            "not a safetensors file (header of {header_len} bytes)"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| e.to_string())?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| format!("invalid header: {e}"))?;
    let data_start = 8 + header_len;
    if data_start + metadata.data_len() as u64 > file_len {
        return Err(format!(
            "truncated: the header describes {} bytes of data, the file holds {}",
            metadata.data_len(),
            file_len - data_start
        ));
    }
    let tensors: Vec<(String, safetensors::tensor::TensorInfo)> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.clone()))
        .collect();
    tensors
        .into_par_iter()
        .map(|(name, info)| {
            let read = |buf: &mut [u8]| -> std::io::Result<()> {
                let mut f = std::fs::File::open(file)?;
                f.seek(SeekFrom::Start(data_start + info.data_offsets.0 as u64))?;
                f.read_exact(buf)
            };
            let fail = |e: String| format!("tensor {name}: {e}");
            let tensor = match (info.dtype, cfg!(target_endian = "little")) {
                // The common case: read into the tensor's own storage, no copy.
                (safetensors::Dtype::F32, true) => {
                    let mut values = vec![0f32; info.shape.iter().product()];
                    huge_pages::advise(&mut values);
                    // SAFETY: any byte pattern is a valid f32, and the slice covers exactly
                    // the vector's initialised elements.
                    let bytes = unsafe {
                        std::slice::from_raw_parts_mut(
                            values.as_mut_ptr().cast::<u8>(),
                            values.len() * 4,
                        )
                    };
                    read(bytes).map_err(|e| fail(e.to_string()))?;
                    Tensor::from_vec(values, info.shape.as_slice(), &Device::Cpu)
                }
                (dtype, _) => {
                    let mut bytes = vec![0u8; info.data_offsets.1 - info.data_offsets.0];
                    read(&mut bytes).map_err(|e| fail(e.to_string()))?;
                    let dtype = candle_dtype(dtype)
                        .ok_or_else(|| fail(format!("unsupported dtype {dtype:?}")))?;
                    Tensor::from_raw_buffer(&bytes, dtype, &info.shape, &Device::Cpu)
                }
            }
            .map_err(|e| fail(e.to_string()))?;
            Ok((name, tensor))
        })
        .collect()
}

fn candle_dtype(dtype: safetensors::Dtype) -> Option<DType> {
    use safetensors::Dtype as S;
    Some(match dtype {
        S::U8 => DType::U8,
        S::U32 => DType::U32,
        S::I64 => DType::I64,
        S::BF16 => DType::BF16,
        S::F16 => DType::F16,
        S::F32 => DType::F32,
        S::F64 => DType::F64,
        _ => return None,
    })
}

fn read_pickle(file: &Path) -> std::result::Result<Vec<(String, Tensor)>, String> {
    candle_core::pickle::read_all(file).map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn reads_every_tensor_back_with_its_values_and_converts_half_precision() {
        let dir = tempfile::tempdir().unwrap();
        let a = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let b = Tensor::new(&[1.5f32, -2.25], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        write(dir.path(), &[("a", a.clone()), ("b", b)]);
        let w = Weights::load(dir.path(), Precision::F32, &Device::Cpu).unwrap();
        let got_a = w.get("a", &[3, 4]).unwrap();
        assert_eq!(got_a.to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        let got_b = w.get("b", &[2]).unwrap();
        assert_eq!(got_b.dtype(), DType::F32);
        assert_eq!(got_b.to_vec1::<f32>().unwrap(), vec![1.5, -2.25]);
        assert!(w.get("a", &[4, 3]).is_err());
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
        let path = write(dir.path(), &[("t", t)]);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 100).unwrap();
        let err = Weights::load(dir.path(), Precision::F32, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("model.safetensors"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }
}
