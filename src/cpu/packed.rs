//! f32 weights packed once at load for the CPU's projections, `x Wᵀ + b`: the encoder's, the
//! decoder's and the output layer.
//!
//! A general matrix product (the `gemm` crate under candle) first copies its weight operand
//! into panels its kernel can stream, on every call. For the output layer of opus-mt (a
//! 59 514 × 512 weight) that is 122 MB copied per decoding step: 17 % of a beam search's
//! time. Here the weight is stored in that panel form from the start — [n / 16][k][16], the
//! 16 outputs of a panel side by side for each input feature — and the kernel reads it in
//! place. AVX2: six input rows times one panel in twelve 8-lane registers; AVX-512: twelve
//! rows times two panels in twenty-four 16-lane registers (the weights of two panels read
//! once for twice the rows). Either way each output is one plain sum over k, in order, of
//! fused multiply-adds, then the bias is added: every variant gives the same bits.
use rayon::prelude::*;

use super::Vector;

/// Outputs per panel (two 8-lane registers, one 16-lane register).
pub(super) const NR: usize = 16;
/// Input rows per AVX2 tile.
pub(super) const MR: usize = 6;
/// Input rows per AVX-512 tile (of two panels).
const MR_512: usize = 12;
/// Bytes of input rows a task keeps in the core's L2 cache while it passes its panels over them.
const ROW_BLOCK_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub struct PackedMatrix {
    panels: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl PackedMatrix {
    /// Packs a row-major weight `w` [n, k]; the last panel is padded with zeros.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight is not [n, k]");
        let mut panels = vec![0f32; n.div_ceil(NR) * NR * k];
        super::huge_pages::advise(&mut panels);
        panels
            .par_chunks_mut(NR * k.max(1))
            .enumerate()
            .for_each(|(p, panel)| {
                // Each weight row read in order into its column of the panel (which fits in L1).
                for (o, row) in w[p * NR * k..].chunks_exact(k.max(1)).take(NR).enumerate() {
                    for (out, &v) in panel.chunks_exact_mut(NR).zip(row) {
                        out[o] = v;
                    }
                }
            });
        Self {
            panels,
            rows: n,
            cols: k,
        }
    }

    /// n: the outputs (the weight's rows).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// k: the inputs (the weight's columns).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weight's rows `ids`, one after another (an embedding lookup); `None` if an id is
    /// out of range.
    pub fn gather_rows(&self, ids: &[u32]) -> Option<Vec<f32>> {
        let k = self.cols;
        let mut out = Vec::with_capacity(ids.len() * k);
        for &id in ids {
            let id = id as usize;
            if id >= self.rows {
                return None;
            }
            let panel = &self.panels[(id / NR) * NR * k..][..NR * k];
            out.extend(panel.iter().skip(id % NR).step_by(NR));
        }
        Some(out)
    }

    /// `x` [m, k] times the weight transposed, plus `bias` [n]: [m, n], row-major.
    pub fn matmul_t(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        assert_shapes(x, m, self.cols, bias, self.rows);
        self.matmul_t_on(super::kernels().vector, x, m, bias)
    }

    /// [`Self::matmul_t`] on the kernel of `vector`, which the CPU must have.
    pub(super) fn matmul_t_on(
        &self,
        vector: Vector,
        x: &[f32],
        m: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        let (n, k) = (self.rows, self.cols);
        let rows_per_tile = match vector {
            Vector::Avx512 => MR_512,
            _ => MR,
        };
        // SAFETY: `run` writes every (row, output) of its task's block, and the kernels chose
        // `vector` from what the CPU has.
        unsafe {
            product(m, n, 4 * k, rows_per_tile, |task, out| {
                self.run(vector, task, x, bias, out)
            })
        }
    }

    /// # Safety
    /// `out` must point to an [m, n] buffer of which this task alone writes its block; the
    /// CPU must have `vector`.
    unsafe fn run(
        &self,
        vector: Vector,
        task: &Task,
        x: &[f32],
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        match vector {
            #[cfg(target_arch = "x86_64")]
            Vector::Avx512 => avx512::run(self, task, x, bias, out),
            #[cfg(target_arch = "x86_64")]
            Vector::Avx2 => avx2::run(self, task, x, bias, out),
            _ => run_portable(self, task, x, bias, out),
        }
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.panels[p * NR * self.cols..][..NR * self.cols]
    }
}

/// Panics unless `x` is [m, k] and `bias`, if any, is [n] (every product's operands).
pub(super) fn assert_shapes(x: &[f32], m: usize, k: usize, bias: Option<&[f32]>, n: usize) {
    assert_eq!(x.len(), m * k, "input is not [m, k]");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "bias is not [n]");
    }
}

/// The [m, n] result of a product whose `work` writes one task's block: the tasks cover `m`
/// input rows × the panels of `n` outputs and run in parallel; each is a block of rows kept in
/// the core's L2 cache (`row_bytes` each; a multiple of the kernel's `rows_per_tile`) times a
/// run of panels, and there are enough of them for rayon to balance the threads. The buffer is not zero-filled (64 × 59 514 floats every
/// decoding step would cost).
///
/// # Safety
/// `work` must write every element of its task's block (`SharedOut::write_panel`), and nothing
/// outside it.
pub(super) unsafe fn product(
    m: usize,
    n: usize,
    row_bytes: usize,
    rows_per_tile: usize,
    work: impl Fn(&Task, &SharedOut) + Sync + Send,
) -> Vec<f32> {
    let mut y: Vec<f32> = Vec::with_capacity(m * n);
    if m == 0 || n == 0 {
        return y;
    }
    let panels = n.div_ceil(NR);
    let block_rows = (ROW_BLOCK_BYTES / row_bytes.max(1) / rows_per_tile).max(1) * rows_per_tile;
    let row_blocks = m.div_ceil(block_rows);
    let wanted = (rayon::current_num_threads() * 4).div_ceil(row_blocks.max(1));
    let per_task = panels.div_ceil(wanted.max(1)).max(1);
    let panel_runs = panels.div_ceil(per_task);
    let out = SharedOut(y.as_mut_ptr());
    (0..row_blocks * panel_runs)
        .into_par_iter()
        .for_each(|task| {
            let (block, run) = (task / panel_runs, task % panel_runs);
            let task = Task {
                rows: block * block_rows..((block + 1) * block_rows).min(m),
                panels: run * per_task..((run + 1) * per_task).min(panels),
            };
            work(&task, &out)
        });
    // SAFETY: the tasks cover every row and every output, and each writes its whole block.
    unsafe { y.set_len(m * n) };
    y
}

pub(super) struct Task {
    pub(super) rows: std::ops::Range<usize>,
    pub(super) panels: std::ops::Range<usize>,
}

impl Task {
    /// One task over all `m` rows and the panels of `n` outputs (the kernels' tests).
    #[cfg(test)]
    pub(super) fn covering(m: usize, n: usize) -> Self {
        Self {
            rows: 0..m,
            panels: 0..n.div_ceil(NR),
        }
    }

    /// The task's tiles, panel by panel: (panel, first row, rows ≤ MR).
    pub(super) fn tiles(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.tiles_of(MR, 1).map(|(p, _, r0, rows)| (p, r0, rows))
    }

    /// The task's tiles of up to `panels_per_tile` panels by up to `rows_per_tile` rows, panel
    /// run by panel run (the rows' block stays in cache while the panels stream past):
    /// (first panel, panels, first row, rows).
    pub(super) fn tiles_of(
        &self,
        rows_per_tile: usize,
        panels_per_tile: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        (self.panels.clone())
            .step_by(panels_per_tile)
            .flat_map(move |p| {
                let panels = panels_per_tile.min(self.panels.end - p);
                (self.rows.clone())
                    .step_by(rows_per_tile)
                    .map(move |r0| (p, panels, r0, rows_per_tile.min(self.rows.end - r0)))
            })
    }
}

/// The panels one row tile fetches into L2 while it runs: its share (`tile` of the `tiles` in
/// its task's row block) of the cache lines of the `P` panels after the ones it reads. Memory
/// then streams at the pace of the whole pass over the rows instead of in a burst during the
/// first tile, which left the other tiles waiting on memory when the weights do not fit in
/// cache (every decoding step reads a few hundred MB of them).
#[cfg(target_arch = "x86_64")]
struct Ahead<const P: usize> {
    next: [*const u8; P],
    tiles: usize,
    tile: usize,
}

#[cfg(target_arch = "x86_64")]
impl<const P: usize> Ahead<P> {
    /// Bytes in a cache line, the unit of the fetches.
    const LINE: usize = 64;

    /// For the tile of `task` at row `r0` over panels `p..p + P` of `m`; past the task's last
    /// panel, that panel stands in (already cached, so the fetches cost little).
    fn new(m: &PackedMatrix, task: &Task, rows_per_tile: usize, p: usize, r0: usize) -> Self {
        let last = task.panels.end - 1;
        Self {
            next: std::array::from_fn(|i| m.panel((p + P + i).min(last)).as_ptr() as *const u8),
            tiles: task.rows.len().div_ceil(rows_per_tile),
            tile: (r0 - task.rows.start) / rows_per_tile,
        }
    }

    /// The cache lines, of a panel's `lines`, that this tile fetches.
    fn lines(&self, lines: usize) -> std::ops::Range<usize> {
        let share = lines.div_ceil(self.tiles);
        self.tile * share..(self.tile + 1) * share
    }

    /// Fetches cache line `line` of next panel `i` into L2 (a hint: it never faults).
    #[inline(always)]
    unsafe fn fetch(&self, i: usize, line: usize) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        _mm_prefetch::<_MM_HINT_T1>(self.next[i].wrapping_add(line * Self::LINE) as *const i8);
    }
}

/// The output buffer of one product, written by its tasks in disjoint blocks.
pub(super) struct SharedOut(pub(super) *mut f32);
// SAFETY: used only for disjoint writes from the tasks of one product.
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The buffer's start (a method, so that closures capture the whole `Sync` wrapper).
    pub(super) fn ptr(&self) -> *mut f32 {
        self.0
    }

    /// Writes `value(r, c)` to rows `first_row..first_row + rows` and, of panel `p`'s 16
    /// outputs, those that exist, in an [m, n] buffer.
    ///
    /// # Safety
    /// The rows must lie inside the buffer, and no other task may write this block.
    #[inline(always)]
    pub(super) unsafe fn write_panel(
        &self,
        n: usize,
        p: usize,
        first_row: usize,
        rows: usize,
        value: impl Fn(usize, usize) -> f32,
    ) {
        let first = p * NR;
        let width = NR.min(n - first);
        for r in 0..rows {
            let dst = self.0.add((first_row + r) * n + first);
            for c in 0..width {
                dst.add(c).write(value(r, c));
            }
        }
    }
}

/// Writes `acc` (rows × 16 sums of panel `p`) to the outputs that exist, adding the bias.
///
/// # Safety
/// As [`SharedOut::write_panel`].
#[inline(always)]
unsafe fn store<const R: usize>(
    acc: &[[f32; NR]; R],
    m: &PackedMatrix,
    p: usize,
    first_row: usize,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    store_sums(acc, R, m.rows, p, first_row, bias, out)
}

/// Writes the first `rows` rows of `acc` (f32 sums of panel `p` of an [m, n] product) plus
/// the bias to the outputs that exist: the f32 and bf16 kernels' store.
///
/// # Safety
/// As [`SharedOut::write_panel`].
#[inline(always)]
pub(super) unsafe fn store_sums(
    acc: &[[f32; NR]],
    rows: usize,
    n: usize,
    p: usize,
    first_row: usize,
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    out.write_panel(n, p, first_row, rows, |r, c| {
        acc[r][c] + bias.map_or(0.0, |b| b[p * NR + c])
    })
}

/// The kernel without AVX2: the same sums (one fused multiply-add per input, in order).
///
/// # Safety
/// As [`PackedMatrix::run`].
unsafe fn run_portable(
    m: &PackedMatrix,
    task: &Task,
    x: &[f32],
    bias: Option<&[f32]>,
    out: &SharedOut,
) {
    let k = m.cols;
    for (p, r0, rows) in task.tiles() {
        let panel = m.panel(p);
        for i in r0..r0 + rows {
            let mut sums = [0f32; NR];
            for (&xv, w) in x[i * k..][..k].iter().zip(panel.chunks_exact(NR)) {
                for c in 0..NR {
                    sums[c] = xv.mul_add(w[c], sums[c]);
                }
            }
            store::<1>(&[sums], m, p, i, bias, out);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;
    /// Panel rows (one cache line each) fetched ahead of the loads: the panel is read from L2
    /// or memory, and the hardware prefetcher alone left the FMAs waiting (~3 % of a run).
    /// Past the panel's end the hint is harmless: prefetches never fault.
    const PREFETCH: usize = 16;
    /// Steps between two fetches of the next panel: a chunk is unrolled, so the fetches cost
    /// no loop of their own. (One fetch every `tiles` steps, as on AVX-512, was 15–30 % slower
    /// on Zen 3 when a task has only 2–3 tiles and the weights sit in cache.)
    const CHUNK: usize = 8;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn run(
        m: &PackedMatrix,
        task: &Task,
        x: &[f32],
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let k = m.cols;
        for (p, r0, rows) in task.tiles() {
            let panel = m.panel(p).as_ptr();
            let ahead = Ahead::<1>::new(m, task, MR, p, r0);
            let x = x.as_ptr().add(r0 * k);
            match rows {
                6 => store(&tile::<6>(x, k, panel, &ahead), m, p, r0, bias, out),
                5 => store(&tile::<5>(x, k, panel, &ahead), m, p, r0, bias, out),
                4 => store(&tile::<4>(x, k, panel, &ahead), m, p, r0, bias, out),
                3 => store(&tile::<3>(x, k, panel, &ahead), m, p, r0, bias, out),
                2 => store(&tile::<2>(x, k, panel, &ahead), m, p, r0, bias, out),
                _ => store(&tile::<1>(x, k, panel, &ahead), m, p, r0, bias, out),
            }
        }
    }

    /// Sums of `R` rows of `x` (k apart) against one panel: [R][16]; this tile's share of the
    /// next panel is fetched into L2 on the way, spread over the chunks.
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const f32,
        k: usize,
        panel: *const f32,
        ahead: &Ahead<1>,
    ) -> [[f32; NR]; R] {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let chunks = k / CHUNK;
        // A lone tile streams each panel once, which the fetches just ahead of the loads
        // cover; fetching the next panel too cost 3–10 % at 2–4 rows on Zen 3. A panel row of
        // 16 floats is one cache line.
        let mut lines = if ahead.tiles > 1 {
            ahead.lines(k)
        } else {
            0..0
        };
        let per_chunk = lines.len().div_ceil(chunks.max(1));
        for c in 0..chunks {
            for line in lines.by_ref().take(per_chunk) {
                ahead.fetch(0, line);
            }
            // From the chunk's first step, so that the unrolled steps address by constants.
            let (x, w) = (x.add(c * CHUNK), panel.add(c * CHUNK * NR));
            for i in 0..CHUNK {
                step(x.add(i), k, w.add(i * NR), &mut acc);
            }
        }
        for i in chunks * CHUNK..k {
            step(x.add(i), k, panel.add(i * NR), &mut acc);
        }
        let mut sums = [[0f32; NR]; R];
        for (s, a) in sums.iter_mut().zip(&acc) {
            _mm256_storeu_ps(s.as_mut_ptr(), a[0]);
            _mm256_storeu_ps(s.as_mut_ptr().add(8), a[1]);
        }
        sums
    }

    /// One input of the `R` rows (`x` points at row 0's, the others k apart) times its panel
    /// row `w`, added to `acc`.
    #[inline(always)]
    unsafe fn step<const R: usize>(
        x: *const f32,
        k: usize,
        w: *const f32,
        acc: &mut [[__m256; 2]; R],
    ) {
        _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(PREFETCH * NR) as *const i8);
        let w0 = _mm256_loadu_ps(w);
        let w1 = _mm256_loadu_ps(w.add(8));
        for (r, acc) in acc.iter_mut().enumerate() {
            let xv = _mm256_set1_ps(*x.add(r * k));
            acc[0] = _mm256_fmadd_ps(xv, w0, acc[0]);
            acc[1] = _mm256_fmadd_ps(xv, w1, acc[1]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;
    use std::arch::x86_64::*;
    /// As AVX2's: panel rows fetched ahead of the loads, here for both panels of a tile.
    const PREFETCH: usize = 16;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn run(
        m: &PackedMatrix,
        task: &Task,
        x: &[f32],
        bias: Option<&[f32]>,
        out: &SharedOut,
    ) {
        let k = m.cols;
        for (p, panels, r0, rows) in task.tiles_of(MR_512, 2) {
            let x = x.as_ptr().add(r0 * k);
            let w = [m.panel(p).as_ptr(), m.panel(p + panels - 1).as_ptr()];
            let ahead = Ahead::<2>::new(m, task, MR_512, p, r0);
            macro_rules! tile {
                ($($r:literal)*) => {
                    match rows {
                        $($r => {
                            let sums = tile::<$r>(x, k, w, panels, &ahead);
                            for (i, sums) in sums.iter().enumerate().take(panels) {
                                store::<$r>(sums, m, p + i, r0, bias, out);
                            }
                        })*
                        _ => unreachable!("a tile has 1 to {MR_512} rows"),
                    }
                };
            }
            tile!(1 2 3 4 5 6 7 8 9 10 11 12);
        }
    }

    /// Sums of `R` rows of `x` (k apart) against panels `w` (the second one only if `panels`
    /// is 2): [panel][R][16]; this tile's share of `ahead` is fetched into L2 on the way, one
    /// panel row per `ahead.tiles` steps.
    #[inline(always)]
    unsafe fn tile<const R: usize>(
        x: *const f32,
        k: usize,
        w: [*const f32; 2],
        panels: usize,
        ahead: &Ahead<2>,
    ) -> [[[f32; NR]; R]; 2] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        let every = ahead.tiles;
        if panels == 2 {
            // A panel row of 16 floats is one cache line.
            for (c, line) in ahead.lines(k).enumerate() {
                ahead.fetch(0, line);
                ahead.fetch(1, line);
                for i in c * every..((c + 1) * every).min(k) {
                    _mm_prefetch::<_MM_HINT_T0>(w[0].wrapping_add((i + PREFETCH) * NR) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(w[1].wrapping_add((i + PREFETCH) * NR) as *const i8);
                    let w0 = _mm512_loadu_ps(w[0].add(i * NR));
                    let w1 = _mm512_loadu_ps(w[1].add(i * NR));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*x.add(r * k + i));
                        acc[0] = _mm512_fmadd_ps(xv, w0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(xv, w1, acc[1]);
                    }
                }
            }
        } else {
            for i in 0..k {
                _mm_prefetch::<_MM_HINT_T0>(w[0].wrapping_add((i + PREFETCH) * NR) as *const i8);
                let w0 = _mm512_loadu_ps(w[0].add(i * NR));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x.add(r * k + i));
                    acc[0] = _mm512_fmadd_ps(xv, w0, acc[0]);
                }
            }
        }
        let mut sums = [[[0f32; NR]; R]; 2];
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(sums[0][r].as_mut_ptr(), a[0]);
            _mm512_storeu_ps(sums[1][r].as_mut_ptr(), a[1]);
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::math::test_values;

    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, bias: &[f32]) -> Vec<f64> {
        let mut y = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| x[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
                y[i * n + j] = dot + bias[j] as f64;
            }
        }
        y
    }

    #[test]
    fn products_match_a_plain_sum_for_every_tile_shape() {
        // Row counts cover every tile height and several row blocks (k = 3000 gives blocks of
        // 18 rows); output counts cover partial panels.
        for (m, k, n) in [
            (1, 1, 1),
            (7, 5, 17),
            (13, 64, 33),
            (64, 3000, 20),
            (2, 512, 100),
            (25, 40, 50),
            (12, 17, 48),
        ] {
            let x = test_values(m * k, 1);
            let w = test_values(n * k, 2);
            let bias = test_values(n, 3);
            let packed = PackedMatrix::pack(&w, n, k);
            let want = reference(&x, m, &w, n, k, &bias);
            let got = packed.matmul_t(&x, m, Some(&bias));
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                let tolerance = 1e-5 * (1.0 + r.abs());
                assert!(
                    (*g as f64 - r).abs() < tolerance,
                    "{m}x{k}x{n} [{i}]: {g} vs {r}"
                );
            }
            let task = Task::covering(m, n);
            let mut portable = vec![0f32; m * n];
            // SAFETY: one task covering the whole [m, n] buffer.
            unsafe {
                run_portable(
                    &packed,
                    &task,
                    &x,
                    Some(&bias),
                    &SharedOut(portable.as_mut_ptr()),
                )
            };
            for kernels in crate::cpu::Kernels::available() {
                let vector = kernels.vector;
                let got = packed.matmul_t_on(vector, &x, m, Some(&bias));
                assert_eq!(
                    portable, got,
                    "{m}x{k}x{n}: portable and {vector} sums differ"
                );
            }
        }
    }

    #[test]
    fn gathered_rows_are_the_weight_rows() {
        let (n, k) = (37, 5);
        let w = test_values(n * k, 4);
        let packed = PackedMatrix::pack(&w, n, k);
        let got = packed.gather_rows(&[36, 0, 17]).unwrap();
        let want: Vec<f32> = [36, 0, 17]
            .iter()
            .flat_map(|&r| w[r * k..(r + 1) * k].to_vec())
            .collect();
        assert_eq!(got, want);
        assert_eq!(packed.gather_rows(&[37]), None);
    }
}
