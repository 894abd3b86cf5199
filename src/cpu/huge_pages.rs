//! Transparent huge pages for the large buffers weights are read or packed into.
//!
//! A model's weights fill a few hundred MB of fresh memory at load; in 4 KiB pages that is
//! tens of thousands of page faults, which took a third of the load time. Where the kernel
//! gives huge pages on request (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise, a
//! common default), asking for them makes that a few hundred faults.

/// Below this a buffer is left alone (a huge page is 2 MiB).
const MIN_BYTES: usize = 4 << 20;

/// Asks for huge pages over `buffer`, which must not have been written yet (a fresh `vec!` of
/// zeros is untouched memory). Only a hint: failures and other systems change nothing.
pub fn advise<T>(buffer: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        let bytes = std::mem::size_of_val(buffer);
        if bytes < MIN_BYTES {
            return;
        }
        const PAGE: usize = 4096;
        let start = buffer.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + bytes - aligned) / PAGE * PAGE;
        // SAFETY: the range lies inside `buffer`, which we borrow mutably; MADV_HUGEPAGE does
        // not change its contents.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}
