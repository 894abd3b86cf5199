//! Measurements for the throughput benchmark: one projection's speed at a given shape on the
//! process's kernels, and the machine's f32 peak (fused multiply-adds in independent
//! registers on every thread), so the two can be printed side by side from one run.

use std::time::Instant;

use rayon::prelude::*;

use super::bf16::Bf16Matrix;
use super::int8::Int8Matrix;
use super::packed::PackedMatrix;

/// The fastest of `repeats` runs of `x [m, k] · Wᵀ [k, n]` with `dtype` ("f32", "int8" or
/// "bf16") weights, in seconds; `None` for a dtype these kernels cannot run.
pub fn projection_seconds(
    dtype: &str,
    m: usize,
    n: usize,
    k: usize,
    repeats: usize,
) -> Option<f64> {
    let values = |len: usize, seed: u32| -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(977);
                ((h >> 9) % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    };
    let (w, x) = (values(n * k, 1), values(m * k, 2));
    let product: Box<dyn Fn() -> Vec<f32>> = match dtype {
        "f32" => {
            let w = PackedMatrix::pack(&w, n, k);
            Box::new(move || w.matmul_t(&x, m, None))
        }
        "int8" => {
            let w = Int8Matrix::quantize(&w, n, k);
            Box::new(move || w.matmul_t(&x, m, None))
        }
        "bf16" => {
            let w = Bf16Matrix::convert(&w, n, k)?;
            Box::new(move || w.matmul_t(&x, m, None))
        }
        _ => return None,
    };
    std::hint::black_box(product());
    (0..repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(product());
            started.elapsed().as_secs_f64()
        })
        .min_by(f64::total_cmp)
}

/// Independent accumulators per thread: enough to cover the FMA latency on two ports, and
/// few enough to stay in registers beside the two constants. AVX2 and scalar code have 16
/// vector registers (16 chains spilled to the stack there and read about half of Zen 3's
/// peak); AVX-512 has 32.
const CHAINS_IN_16_REGISTERS: usize = 12;
const CHAINS_IN_32_REGISTERS: usize = 16;

/// The f32 multiply-add peak of every thread of rayon's pool together, in GFLOP/s, on the
/// vector width of the process's f32 kernel.
pub fn f32_peak_gflops() -> f64 {
    let threads = rayon::current_num_threads();
    let (lanes, chains) = match super::kernels().vector {
        super::Vector::Avx512 => (16, CHAINS_IN_32_REGISTERS),
        super::Vector::Avx2 => (8, CHAINS_IN_16_REGISTERS),
        super::Vector::Portable => (1, CHAINS_IN_16_REGISTERS),
    };
    // 240 M vector multiply-adds a thread, about 40 ms at two a cycle and 3 GHz: long enough
    // that waking the pool does not count.
    let iterations = 240_000_000 / chains;
    let run = || {
        let started = Instant::now();
        (0..threads).into_par_iter().for_each(|t| {
            std::hint::black_box(fma_chains(iterations, t as f32));
        });
        started.elapsed().as_secs_f64()
    };
    run();
    let seconds = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    (threads * iterations * chains * lanes * 2) as f64 / seconds / 1e9
}

fn fma_chains(iterations: usize, seed: f32) -> f32 {
    match super::kernels().vector {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the kernels chose AVX-512, so the CPU has it.
        super::Vector::Avx512 => unsafe { x86::chains512(iterations, seed) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the kernels chose AVX2 + FMA, so the CPU has them.
        super::Vector::Avx2 => unsafe { x86::chains256(iterations, seed) },
        _ => {
            let mut acc = [seed; CHAINS_IN_16_REGISTERS];
            for _ in 0..iterations {
                for a in acc.iter_mut() {
                    *a = a.mul_add(0.999_999, 1e-7);
                }
            }
            acc.iter().sum()
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{CHAINS_IN_16_REGISTERS, CHAINS_IN_32_REGISTERS};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chains512(iterations: usize, seed: f32) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(seed); CHAINS_IN_32_REGISTERS];
        for _ in 0..iterations {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chains256(iterations: usize, seed: f32) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(seed); CHAINS_IN_16_REGISTERS];
        for _ in 0..iterations {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut lanes = [0f32; 8];
        let mut sum = 0.0;
        for v in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            sum += lanes.iter().sum::<f32>();
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probes_measure_something() {
        assert!(super::projection_seconds("f32", 2, 40, 32, 2).unwrap() > 0.0);
        assert!(super::projection_seconds("int8", 2, 40, 32, 1).is_some());
        assert_eq!(super::projection_seconds("f64", 2, 40, 32, 1), None);
    }
}
