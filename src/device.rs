//! Device selection: the only place that knows about the `cuda` and `metal` features.

use candle_core::Device;

use crate::models::Precision;

use crate::error::{Error, Result};

/// Parses `--device auto|cpu|cuda[:N]|metal[:N]`.
pub fn select(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((kind, n)) => {
            let n = n
                .parse::<usize>()
                .map_err(|_| Error::Setting(format!("--device {spec}: bad device index")))?;
            (kind, n)
        }
        None => (spec, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(auto()),
        "cuda" => cuda(index),
        "metal" => metal(index),
        other => Err(Error::Setting(format!(
            "--device {other}: expected auto, cpu, cuda[:N] or metal"
        ))),
    }
}

fn auto() -> Device {
    if let Ok(device) = cuda(0) {
        return device;
    }
    metal(0).unwrap_or(Device::Cpu)
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Device::new_cuda(index).map_err(|e| Error::Setting(format!("--device cuda:{index}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device> {
    Err(Error::Setting(
        "--device cuda: this dragoman was built without the `cuda` feature".into(),
    ))
}

#[cfg(feature = "metal")]
fn metal(index: usize) -> Result<Device> {
    Device::new_metal(index).map_err(|e| Error::Setting(format!("--device metal: {e}")))
}

#[cfg(not(feature = "metal"))]
fn metal(_index: usize) -> Result<Device> {
    Err(Error::Setting(
        "--device metal: this dragoman was built without the `metal` feature".into(),
    ))
}

/// Parses `--dtype f32|f16|bf16|int8`: half precision only where the device computes it,
/// int8 (quantized projection weights, see `models::int8`) on the CPU only.
pub fn precision(spec: &str, device: &Device) -> Result<Precision> {
    let precision = match spec {
        "f32" => Precision::F32,
        "f16" => Precision::F16,
        "bf16" => Precision::BF16,
        "int8" => Precision::Int8,
        other => {
            return Err(Error::Setting(format!(
                "--dtype {other}: expected f32, f16, bf16 or int8"
            )))
        }
    };
    match precision {
        Precision::BF16 if device.is_cpu() && crate::cpu::kernels().bf16.is_none() => {
            Err(Error::Setting(format!(
                "--dtype bf16 on the CPU needs AMX-BF16 or AVX512-BF16, which this CPU lacks \
                 (kernels: {}); use --dtype f32 or int8",
                crate::cpu::kernels()
            )))
        }
        Precision::F16 if device.is_cpu() => Err(Error::Setting(
            "--dtype f16 is not supported on the CPU; use f32, int8 or bf16".into(),
        )),
        Precision::Int8 if !device.is_cpu() => Err(Error::Setting(
            "--dtype int8 runs on the CPU only; add --device cpu, or use f16/bf16 on a GPU".into(),
        )),
        _ => Ok(precision),
    }
}
