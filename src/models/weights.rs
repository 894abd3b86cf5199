//! Reads a checkpoint in any of the layouts hub repos use: `model.safetensors`, sharded
//! safetensors with `model.safetensors.index.json`, or PyTorch's `pytorch_model.bin`
//! (also sharded). Safetensors are preferred when both are present, as transformers does.
//!
//! f32 safetensors bound for the CPU are not read at all: the file is mapped, and the kernels
//! pack their weights straight from the mapping (see [`Matrix`]). Reading them first into
//! buffers of our own copied 300 MB for opus-mt and made the kernel zero as many fresh pages,
//! which was half of the load's time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cpu::huge_pages;
use crate::models::model_dir::{ModelDir, WeightFormat};
use crate::models::Precision;
use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// All tensors of a checkpoint by name, converted to one dtype on one device.
pub struct Weights {
    /// Interior mutability so that `matrix` can free a tensor once it has been converted.
    tensors: RefCell<HashMap<String, Stored>>,
    /// What was read, for error messages ("…/model.safetensors").
    source: PathBuf,
    precision: Precision,
}

impl Weights {
    /// Finds and reads the checkpoint in `dir`.
    pub fn load(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let dtype = precision.dtype_on(device);
        let (layout, files) = ModelDir::new(dir).weight_files()?;
        let mut tensors = HashMap::new();
        // Mapped values serve only f32 on the CPU; anything else is converted at load.
        let map_f32 = dtype == DType::F32 && device.is_cpu();
        for file in &files {
            let read = match layout.format {
                WeightFormat::Safetensors => read_safetensors(file, map_f32),
                WeightFormat::Pickle => read_pickle(file),
            }
            .map_err(|e| Error::file(file, format!("cannot read weights: {e}")))?;
            for (name, stored) in read {
                let stored = match stored {
                    Stored::Tensor(tensor) => Stored::Tensor(
                        tensor
                            .to_dtype(dtype)
                            .and_then(|t| t.to_device(device))
                            .map_err(|e| Error::file(file, format!("tensor {name}: {e}")))?,
                    ),
                    mapped => mapped,
                };
                tensors.insert(name, stored);
            }
        }
        Ok(Self {
            tensors: RefCell::new(tensors),
            source: dir.join(layout.file),
            precision,
        })
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
        self.check_shape(name, shape)?;
        match &self.tensors.borrow()[name] {
            Stored::Tensor(tensor) => Ok(tensor.clone()),
            Stored::Mapped(mapped) => mapped.to_tensor().map_err(|e| self.error(name, e)),
        }
    }

    /// A weight matrix for the kernels, under the first of `names` the checkpoint holds,
    /// removed from the checkpoint: only the kernel's packed or quantized copy is kept.
    pub fn matrix(&self, names: &[&str], shape: &[usize]) -> Result<Matrix> {
        let missing = || {
            let names = names.join(" or ");
            Error::file(&self.source, format!("missing tensor {names}"))
        };
        let name = names
            .iter()
            .find(|n| self.contains(n))
            .ok_or_else(missing)?;
        self.check_shape(name, shape)?;
        match self
            .tensors
            .borrow_mut()
            .remove(*name)
            .ok_or_else(missing)?
        {
            Stored::Mapped(mapped) => Ok(Matrix::Mapped(mapped)),
            Stored::Tensor(tensor) => Ok(Matrix::Tensor(tensor)),
        }
    }

    fn check_shape(&self, name: &str, shape: &[usize]) -> Result<()> {
        let tensors = self.tensors.borrow();
        let dims = match tensors.get(name) {
            Some(Stored::Tensor(tensor)) => tensor.dims(),
            Some(Stored::Mapped(mapped)) => &mapped.shape,
            None => return Err(Error::file(&self.source, format!("missing tensor {name}"))),
        };
        if dims != shape {
            return Err(Error::file(
                &self.source,
                format!("tensor {name} has shape {dims:?}, config.json implies {shape:?}"),
            ));
        }
        Ok(())
    }

    fn error(&self, name: &str, e: impl std::fmt::Display) -> Error {
        Error::file(&self.source, format!("tensor {name}: {e}"))
    }
}

/// A tensor of the checkpoint: loaded, or f32 values left in the mapped file.
enum Stored {
    Tensor(Tensor),
    Mapped(MappedF32),
}

/// A weight matrix as the kernels take it.
pub enum Matrix {
    Tensor(Tensor),
    /// f32 values in the mapped checkpoint (CPU only).
    Mapped(MappedF32),
}

impl Matrix {
    pub fn dims(&self) -> &[usize] {
        match self {
            Self::Tensor(tensor) => tensor.dims(),
            Self::Mapped(mapped) => &mapped.shape,
        }
    }

    /// The matrix as a tensor (a copy of mapped values).
    pub fn into_tensor(self) -> candle_core::Result<Tensor> {
        match self {
            Self::Tensor(tensor) => Ok(tensor),
            Self::Mapped(mapped) => mapped.to_tensor(),
        }
    }
}

impl From<Tensor> for Matrix {
    fn from(tensor: Tensor) -> Self {
        Self::Tensor(tensor)
    }
}

/// f32 values (little-endian, aligned) inside a mapped safetensors file.
pub struct MappedF32 {
    file: Arc<memmap2::Mmap>,
    /// Byte offset of the first value in the mapping.
    start: usize,
    len: usize,
    shape: Vec<usize>,
}

impl MappedF32 {
    pub fn values(&self) -> &[f32] {
        let bytes = &self.file[self.start..self.start + 4 * self.len];
        // SAFETY: `start` is 4-byte aligned in a page-aligned mapping (checked when made), the
        // bytes are in bounds, and every bit pattern is an f32.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.len) }
    }

    fn to_tensor(&self) -> candle_core::Result<Tensor> {
        Tensor::from_slice(self.values(), self.shape.as_slice(), &Device::Cpu)
    }
}

impl Drop for MappedF32 {
    /// Unmaps this tensor's pages once it has been packed or copied, so that the load does not
    /// hold the mapped file and its packed copy at once (the mapping's pages count as ours).
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        {
            const PAGE: usize = 4096;
            let base = self.file.as_ptr() as usize;
            let first = (base + self.start).next_multiple_of(PAGE);
            let end = (base + self.start + 4 * self.len) / PAGE * PAGE;
            if end > first {
                // SAFETY: a read-only private file mapping that we never wrote: dropping its
                // pages only makes a later read of them fault them in again from the file.
                unsafe {
                    libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED);
                }
            }
        }
    }
}

/// Reads each tensor of a safetensors file straight into its own buffer, in parallel.
///
/// candle's loader reads the whole file into memory and then copies every tensor out of it,
/// which doubles both the peak memory and the copying; here each byte is read once.
/// The tensors of a safetensors file; with `map_f32`, little-endian f32 tensors stay in a
/// mapping of the file instead of being read.
fn read_safetensors(
    file: &Path,
    map_f32: bool,
) -> std::result::Result<Vec<(String, Stored)>, String> {
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
    // SAFETY: the mapping is read-only and private; like every reader of mapped checkpoints
    // (candle, safetensors), we rely on the file not being truncated while the model loads.
    // Without a mapping the tensors are read.
    let mapping = map_f32 && cfg!(target_endian = "little");
    let mapped = if mapping {
        unsafe { memmap2::Mmap::map(&f) }.ok().map(Arc::new)
    } else {
        None
    };
    tensors
        .into_par_iter()
        .map(|(name, info)| {
            let start = (data_start as usize) + info.data_offsets.0;
            if let (Some(file), safetensors::Dtype::F32, 0) = (&mapped, info.dtype, start % 4) {
                let len = info.shape.iter().product::<usize>();
                if info.data_offsets.1 - info.data_offsets.0 != 4 * len
                    || start + 4 * len > file.len()
                {
                    return Err(format!(
                        "tensor {name}: its byte range does not match its shape"
                    ));
                }
                let mapped = MappedF32 {
                    file: file.clone(),
                    start,
                    len,
                    shape: info.shape.clone(),
                };
                return Ok((name, Stored::Mapped(mapped)));
            }
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
            Ok((name, Stored::Tensor(tensor)))
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

fn read_pickle(file: &Path) -> std::result::Result<Vec<(String, Stored)>, String> {
    let tensors = candle_core::pickle::read_all(file).map_err(|e| e.to_string())?;
    Ok(tensors
        .into_iter()
        .map(|(name, tensor)| (name, Stored::Tensor(tensor)))
        .collect())
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
    fn f32_matrices_come_from_the_mapped_file_once_and_other_dtypes_as_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let a = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let b = Tensor::new(&[[1.5f32, -2.25]], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        write(dir.path(), &[("a", a), ("b", b)]);
        let w = Weights::load(dir.path(), Precision::F32, &Device::Cpu).unwrap();
        assert!(w.matrix(&["a"], &[3, 2]).is_err(), "shape is checked");
        match w.matrix(&["missing", "a"], &[2, 3]).unwrap() {
            Matrix::Mapped(m) => assert_eq!(m.values(), &[0., 1., 2., 3., 4., 5.]),
            Matrix::Tensor(_) => panic!("an f32 tensor for the CPU should stay mapped"),
        }
        // Taken: the checkpoint no longer holds it.
        assert!(w.matrix(&["a"], &[2, 3]).is_err());
        match w.matrix(&["b"], &[1, 2]).unwrap() {
            Matrix::Tensor(t) => assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![1.5, -2.25]]),
            Matrix::Mapped(_) => panic!("f16 is converted at load"),
        }
        // In half precision nothing is mapped.
        write(
            dir.path(),
            &[(
                "a",
                Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
            )],
        );
        let w = Weights::load(dir.path(), Precision::F16, &Device::Cpu).unwrap();
        assert!(
            matches!(w.matrix(&["a"], &[2, 2]).unwrap(), Matrix::Tensor(t) if t.dtype() == DType::F16)
        );
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
