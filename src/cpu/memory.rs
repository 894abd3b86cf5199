//! How the process keeps memory between decoding steps (glibc's allocator on Linux).
//!
//! Every decoding step allocates the same large buffers again: the logits alone are rows ×
//! vocabulary floats (15 MB at beam 4 × 16 sentences for opus-mt). By default glibc serves
//! buffers that large with fresh `mmap`s, or hands the freed top of its heap back to the
//! kernel, so each step faults in and zeroes new pages: about 300 000 page faults in the
//! benchmark's beam search. Once a model is loaded (and the load's own buffers are handed
//! back), keeping freed step buffers in the heap lets the next step reuse them: 120 000–140 000
//! faults and 0.6 s less kernel time there, with the same peak memory (within 6 MB), since the
//! steps need that memory anyway.

/// Hands memory freed while loading back to the system, then keeps step buffers for reuse.
/// Call after each model load; only a tuning, so failures are ignored.
pub fn settle_after_load() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: plain calls into the C allocator with valid parameters.
    unsafe {
        /// Allocations below this come from the heap (glibc's upper limit on 64-bit: 32 MiB).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        /// Freed memory at the heap's top is returned only beyond this.
        const TRIM_THRESHOLD: libc::c_int = 256 << 20;
        libc::malloc_trim(0);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
