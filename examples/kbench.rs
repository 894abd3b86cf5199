use dragoman::models::{int8::Int8Matrix, packed::PackedMatrix};
use std::time::Instant;
fn vals(n: usize, s: u32) -> Vec<f32> { (0..n).map(|i| (((i as u32).wrapping_mul(2654435761) ^ s) >> 9) as f32 / 8388608.0 - 1.0).collect() }
fn main() {
    for (m, k, n) in [(1400, 512, 512), (1400, 512, 2048), (1400, 2048, 512), (16, 512, 59514), (64, 512, 59514), (64, 512, 512)] {
        let x = vals(m * k, 1); let w = vals(n * k, 2);
        let q = Int8Matrix::quantize(&w, n, k); let p = PackedMatrix::pack(&w, n, k);
        let reps = (2e10 / (2.0 * (m * n * k) as f64)).ceil() as usize;
        let _ = q.matmul_t(&x, m, None); let _ = p.matmul_t(&x, m, None);
        let t = Instant::now(); for _ in 0..reps { std::hint::black_box(q.matmul_t(&x, m, None)); } let ti = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now(); for _ in 0..reps { std::hint::black_box(p.matmul_t(&x, m, None)); } let tf = t.elapsed().as_secs_f64() / reps as f64;
        let ops = 2.0 * (m * n * k) as f64;
        println!("{m}x{k}x{n}: int8 {:.2} ms ({:.0} GOP/s), f32 {:.2} ms ({:.0} GFLOP/s)", ti * 1e3, ops / ti / 1e9, tf * 1e3, ops / tf / 1e9);
    }
}
