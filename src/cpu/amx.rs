//! Intel AMX tiles: detection, Linux's permission, and the few tile instructions the int8 and
//! bf16 products use.
//!
//! Rust's AMX intrinsics and target features are unstable (rust-lang/rust#126622), so the
//! instructions are written as inline assembly, which stable Rust assembles for any CPU: the
//! tile registers are not among the registers the compiler allocates, so their contents stay
//! put between `asm!` blocks of one thread. Each kernel call configures the tiles on its own
//! thread (`ldtilecfg`, 64 bytes) and releases them when done.
//!
//! Every tile here has one shape: 16 rows of 64 bytes. tmm0–3 accumulate a 32-row × 32-output
//! block (16 × 16 i32 or f32 each), tmm4–5 hold two 16-row slices of activations, tmm6–7 two
//! slices of weights: 16 rows of a panel in the quad (int8) or pair (bf16) layout, 1 KiB each,
//! contiguous.

/// Bytes of one tile (16 rows of 64 bytes).
pub(super) const TILE_BYTES: usize = 16 * 64;

/// The accumulator tiles of a block at row `r0` (of `rows` real rows, and `panels` real
/// panels) that hold outputs: (tile, first row, rows, panel within the block); the padding rows
/// and a repeated last panel are left out.
pub(super) fn block_outputs(
    r0: usize,
    rows: usize,
    panels: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..4).filter_map(move |t| {
        let (row_tile, panel) = (t / 2, t % 2);
        let first = r0 + row_tile * 16;
        (panel < panels && first < r0 + rows).then(|| (t, first, 16.min(r0 + rows - first), panel))
    })
}

/// Whether the CPU reports AMX-INT8 and AMX-BF16 (CPUID leaf 7: EDX bits 25 and 22, with
/// AMX-TILE, bit 24).
#[cfg(target_arch = "x86_64")]
pub(super) fn cpu_has() -> (bool, bool) {
    // Leaf 7 is valid when the maximum leaf (leaf 0's EAX) reaches it.
    if std::arch::x86_64::__cpuid(0).eax < 7 {
        return (false, false);
    }
    let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
    let tile = edx & (1 << 24) != 0;
    (tile && edx & (1 << 25) != 0, tile && edx & (1 << 22) != 0)
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`),
/// which a process must hold before its first tile instruction; once granted it holds for
/// every thread of the process.
pub(super) fn request_permission() -> Result<(), String> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a plain system call with integer arguments.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!(
                "Linux refused the tile state (arch_prctl: {})",
                std::io::Error::last_os_error()
            ))
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    Err("AMX needs Linux's permission request, which this system lacks".into())
}

/// The tiles configured on the current thread; released on drop.
#[cfg(target_arch = "x86_64")]
pub(super) struct Tiles {
    /// Not `Send`: the configuration belongs to this thread.
    _thread: std::marker::PhantomData<*const ()>,
}

#[cfg(target_arch = "x86_64")]
impl Tiles {
    /// Configures eight 16 × 64-byte tiles.
    ///
    /// # Safety
    /// The CPU must have AMX and the process its permission (the kernels check both).
    pub(super) unsafe fn configure() -> Self {
        #[repr(C, align(64))]
        struct Config([u8; 64]);
        let mut config = Config([0; 64]);
        config.0[0] = 1; // palette 1
        for t in 0..8 {
            // Bytes per row (u16 at 16 + 2t), rows (u8 at 48 + t).
            config.0[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
            config.0[48 + t] = 16;
        }
        std::arch::asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
        Self {
            _thread: std::marker::PhantomData,
        }
    }

    /// Zeroes the four accumulators.
    pub(super) unsafe fn zero_accumulators(&self) {
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack)
        );
    }

    /// Accumulates one 64-byte step: activations rows `a` (32 rows, `stride` bytes apart)
    /// against two B tiles, with `tdpbssd` (signed int8, exact i32 sums).
    pub(super) unsafe fn int8_step(&self, a: *const u8, stride: usize, b: [*const i8; 2]) {
        std::arch::asm!(
            "tileloadd tmm4, [{a} + {stride}*1]",
            "tileloadd tmm5, [{a2} + {stride}*1]",
            "tileloadd tmm6, [{b0} + {row}*1]",
            "tileloadd tmm7, [{b1} + {row}*1]",
            "tdpbssd tmm0, tmm4, tmm6",
            "tdpbssd tmm1, tmm4, tmm7",
            "tdpbssd tmm2, tmm5, tmm6",
            "tdpbssd tmm3, tmm5, tmm7",
            a = in(reg) a,
            a2 = in(reg) a.add(16 * stride),
            stride = in(reg) stride,
            b0 = in(reg) b[0],
            b1 = in(reg) b[1],
            row = in(reg) 64usize,
            options(nostack, readonly)
        );
    }

    /// As [`Self::int8_step`] for bf16 pairs, with `tdpbf16ps` (f32 accumulators).
    pub(super) unsafe fn bf16_step(&self, a: *const u16, stride_bytes: usize, b: [*const u16; 2]) {
        std::arch::asm!(
            "tileloadd tmm4, [{a} + {stride}*1]",
            "tileloadd tmm5, [{a2} + {stride}*1]",
            "tileloadd tmm6, [{b0} + {row}*1]",
            "tileloadd tmm7, [{b1} + {row}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a = in(reg) a,
            a2 = in(reg) (a as *const u8).add(16 * stride_bytes),
            stride = in(reg) stride_bytes,
            b0 = in(reg) b[0],
            b1 = in(reg) b[1],
            row = in(reg) 64usize,
            options(nostack, readonly)
        );
    }

    /// Writes the accumulators: `out[t]` is tile t (row tile t / 2, panel t % 2), 16 × 16
    /// values of 4 bytes (i32 or f32).
    pub(super) unsafe fn store_accumulators<T: Copy>(&self, out: &mut [[[T; 16]; 16]; 4]) {
        const { assert!(std::mem::size_of::<T>() == 4) };
        let base = out.as_mut_ptr() as *mut u8;
        std::arch::asm!(
            "tilestored [{c0} + {row}*1], tmm0",
            "tilestored [{c1} + {row}*1], tmm1",
            "tilestored [{c2} + {row}*1], tmm2",
            "tilestored [{c3} + {row}*1], tmm3",
            c0 = in(reg) base,
            c1 = in(reg) base.add(TILE_BYTES),
            c2 = in(reg) base.add(2 * TILE_BYTES),
            c3 = in(reg) base.add(3 * TILE_BYTES),
            row = in(reg) 64usize,
            options(nostack)
        );
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured on this thread (`Tiles` is not Send).
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
    }
}
