//! The CPU backend: every kernel the models run on the CPU (packed f32, int8 and bf16
//! products, decoding and encoder attention, exponentials, SiLU, row reductions) and the
//! memory tuning around them.
//!
//! Which instructions the kernels use is decided once, at the first call of [`kernels`]: the
//! CPU's features are read, capped by `DRAGOMAN_CPU` (so one machine can test every lower
//! variant), and turned into one [`Kernels`] value that every kernel dispatches on. No other
//! code asks which CPU it runs on; model code only calls the kernels. A build for another
//! architecture (aarch64) always takes the portable variants.

mod amx;
pub(crate) mod bf16;
pub(crate) mod encoder_attention;
pub(crate) mod gemm;
pub(crate) mod huge_pages;
pub(crate) mod int8;
pub(crate) mod math;
pub mod memory;
pub(crate) mod packed;
pub mod probe;
pub(crate) mod step_attention;

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that caps the instruction sets the kernels may use.
pub const CPU_VARIABLE: &str = "DRAGOMAN_CPU";

/// The vector instructions of the f32 kernels and the numeric routines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vector {
    Portable,
    /// AVX2 and FMA (256-bit).
    Avx2,
    /// AVX-512 F/BW/DQ/VL, with AVX2 and FMA (512-bit).
    Avx512,
}

/// The int8 product's kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    Portable,
    /// `vpmaddwd` on 16-bit widened pairs (AVX2).
    Avx2,
    /// `vpdpbusd` on 256-bit registers (AVX-VNNI).
    AvxVnni,
    /// `vpdpbusd` on 512-bit registers (AVX512-VNNI).
    Avx512Vnni,
    /// AMX-INT8 tiles (`tdpbssd`).
    Amx,
}

/// The bf16 product's kernel (`--dtype bf16` on the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// The same arithmetic in plain code: tests only (it would be slower than f32).
    Portable,
    /// `vdpbf16ps` (AVX512-BF16).
    Avx512Bf16,
    /// AMX-BF16 tiles (`tdpbf16ps`).
    Amx,
}

/// The kernels of this process, chosen once.
#[derive(Debug, Clone)]
pub struct Kernels {
    pub vector: Vector,
    pub int8: Int8Kernel,
    /// `None` where the CPU has neither AVX512-BF16 nor AMX-BF16.
    pub bf16: Option<Bf16Kernel>,
    /// Why a faster variant was not taken (the cap, AMX's permission), for `-v`.
    pub notes: Vec<String>,
}

/// What the CPU (and the operating system) offer, as far as the kernels care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Features {
    avx2: bool,
    avx_vnni: bool,
    avx512: bool,
    avx512_vnni: bool,
    avx512_bf16: bool,
    amx_int8: bool,
    amx_bf16: bool,
}

/// The values `DRAGOMAN_CPU` takes, lowest first: each allows itself and what comes before.
const LEVELS: [&str; 7] = [
    "portable",
    "avx2",
    "avx-vnni",
    "avx512",
    "avx512-vnni",
    "avx512-bf16",
    "amx",
];

impl Features {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            let avx512 = avx2
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vl");
            let (amx_int8, amx_bf16) = amx::cpu_has();
            let avx512_vnni = avx512 && std::is_x86_feature_detected!("avx512vnni");
            let avx512_bf16 = avx512 && std::is_x86_feature_detected!("avx512bf16");
            Self {
                avx2,
                avx_vnni: avx2 && std::is_x86_feature_detected!("avxvnni"),
                avx512,
                avx512_vnni,
                avx512_bf16,
                // The AMX kernels hand products of few rows to the 512-bit ones.
                amx_int8: avx512_vnni && amx_int8,
                amx_bf16: avx512_bf16 && amx_bf16,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::default()
    }

    /// Keeps the features up to `level` (an index into [`LEVELS`]).
    fn capped(self, level: usize) -> Self {
        Self {
            avx2: self.avx2 && level >= 1,
            avx_vnni: self.avx_vnni && level >= 2,
            avx512: self.avx512 && level >= 3,
            avx512_vnni: self.avx512_vnni && level >= 4,
            avx512_bf16: self.avx512_bf16 && level >= 5,
            amx_int8: self.amx_int8 && level >= 6,
            amx_bf16: self.amx_bf16 && level >= 6,
        }
    }
}

impl Kernels {
    /// The best kernels for `features`, AMX only if Linux grants its tile state.
    fn choose(features: Features, mut notes: Vec<String>) -> Self {
        let amx = if features.amx_int8 || features.amx_bf16 {
            match amx::request_permission() {
                Ok(()) => true,
                Err(why) => {
                    notes.push(format!("AMX tiles not used: {why}"));
                    false
                }
            }
        } else {
            false
        };
        let vector = if features.avx512 {
            Vector::Avx512
        } else if features.avx2 {
            Vector::Avx2
        } else {
            Vector::Portable
        };
        let int8 = if amx && features.amx_int8 {
            Int8Kernel::Amx
        } else if features.avx512_vnni {
            Int8Kernel::Avx512Vnni
        } else if features.avx_vnni {
            Int8Kernel::AvxVnni
        } else if features.avx2 {
            Int8Kernel::Avx2
        } else {
            Int8Kernel::Portable
        };
        let bf16 = if amx && features.amx_bf16 {
            Some(Bf16Kernel::Amx)
        } else if features.avx512_bf16 {
            Some(Bf16Kernel::Avx512Bf16)
        } else {
            None
        };
        Self {
            vector,
            int8,
            bf16,
            notes,
        }
    }

    /// This CPU's kernels, capped by `cap` (a `DRAGOMAN_CPU` value).
    pub fn for_cap(cap: Option<&str>) -> Result<Self, String> {
        let detected = Features::detect();
        let Some(cap) = cap.filter(|c| !c.trim().is_empty()) else {
            return Ok(Self::choose(detected, Vec::new()));
        };
        let level = LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(cap.trim()))
            .ok_or_else(|| {
                format!(
                    "{CPU_VARIABLE}={cap}: expected one of {}",
                    LEVELS.join(", ")
                )
            })?;
        let notes = vec![format!("{CPU_VARIABLE}={cap} caps the kernels")];
        Ok(Self::choose(detected.capped(level), notes))
    }

    /// Every distinct set of kernels this machine can run, portable first, each with the
    /// `DRAGOMAN_CPU` level that gives it (the kernels' tests compare them all).
    pub fn variants() -> Vec<(&'static str, Self)> {
        let detected = Features::detect();
        let mut all: Vec<(&'static str, Self)> = Vec::new();
        for (level, name) in LEVELS.iter().enumerate() {
            let k = Self::choose(detected.capped(level), Vec::new());
            if !all.iter().any(|(_, o)| o.to_string() == k.to_string()) {
                all.push((name, k));
            }
        }
        all
    }

    /// [`Self::variants`] without their levels.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        Self::variants().into_iter().map(|(_, k)| k).collect()
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        })
    }
}

impl fmt::Display for Int8Kernel {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::AvxVnni => "avx-vnni",
            Self::Avx512Vnni => "avx512-vnni",
            Self::Amx => "amx",
        })
    }
}

impl fmt::Display for Bf16Kernel {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Portable => "portable",
            Self::Avx512Bf16 => "avx512-bf16",
            Self::Amx => "amx",
        })
    }
}

impl fmt::Display for Kernels {
    /// `f32: avx512, int8: amx, bf16: amx`, as `-v` and the JSON output name them.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "f32: {}, int8: {}, bf16: ", self.vector, self.int8)?;
        match self.bf16 {
            Some(k) => write!(f, "{k}"),
            None => f.write_str("none"),
        }
    }
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

/// The process's kernels: chosen at the first call from the CPU and `DRAGOMAN_CPU`. An
/// invalid `DRAGOMAN_CPU` is reported by [`check_environment`]; here it leaves the detected
/// kernels, with a note.
pub fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(|| {
        let cap = std::env::var(CPU_VARIABLE).ok();
        Kernels::for_cap(cap.as_deref())
            .unwrap_or_else(|why| Kernels::choose(Features::detect(), vec![why]))
    })
}

/// An error naming `DRAGOMAN_CPU` if it is set to something other than a level.
pub fn check_environment() -> Result<(), String> {
    match std::env::var(CPU_VARIABLE) {
        Ok(cap) => Kernels::for_cap(Some(&cap)).map(|_| ()),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_only_remove_features() {
        let all = Features {
            avx2: true,
            avx_vnni: true,
            avx512: true,
            avx512_vnni: true,
            avx512_bf16: true,
            amx_int8: true,
            amx_bf16: true,
        };
        assert_eq!(all.capped(0), Features::default());
        let avx2 = all.capped(1);
        assert!(avx2.avx2 && !avx2.avx_vnni && !avx2.avx512);
        let k = Kernels::choose(all.capped(5), Vec::new());
        assert_eq!(
            k.to_string(),
            "f32: avx512, int8: avx512-vnni, bf16: avx512-bf16"
        );
        let k = Kernels::choose(all.capped(2), Vec::new());
        assert_eq!(k.to_string(), "f32: avx2, int8: avx-vnni, bf16: none");
        let k = Kernels::choose(Features::default(), Vec::new());
        assert_eq!(k.to_string(), "f32: portable, int8: portable, bf16: none");
    }

    #[test]
    fn an_unknown_cap_is_refused_with_the_levels() {
        let err = Kernels::for_cap(Some("avx1024")).unwrap_err();
        assert!(
            err.contains("DRAGOMAN_CPU=avx1024") && err.contains("avx512-vnni"),
            "{err}"
        );
        let portable = Kernels::for_cap(Some("portable")).unwrap();
        assert_eq!(portable.vector, Vector::Portable);
        assert_eq!(portable.int8, Int8Kernel::Portable);
        assert_eq!(portable.bf16, None);
    }
}
