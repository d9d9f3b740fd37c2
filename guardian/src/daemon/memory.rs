//! The guardian's own memory: small and locked.
//!
//! `mlockall(MCL_CURRENT | MCL_FUTURE)` keeps every page resident so the guardian keeps
//! running under the memory pressure it fights, but it also pins whatever the heap holds
//! when it is called, and glibc's heap keeps freed memory for reuse. Loading the eBPF
//! programs parses the kernel's BTF (several MiB, three times: offsets, relocation,
//! attach) and frees it again: locked as it was, that garbage was most of the guardian's
//! resident memory (26 of 37 MiB with ~100 processes). So the allocator is told to give
//! large blocks back to the kernel at once (a fixed mmap threshold), the heap is trimmed
//! once startup is done, and only then is memory locked: everything the kill path uses
//! afterwards is locked as before, the startup garbage is not.

/// Largest allocation the heap serves; larger ones are mapped and unmapped on their own.
/// glibc's default starts here too but rises to the largest block freed so far (up to
/// 32 MiB), after which the parsed BTF's blocks would stay in the heap once freed.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Called first: large blocks always go back to the kernel when freed.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; it takes the arena lock itself.
    if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) } != 1 {
        tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused; large blocks may stay in the heap");
    }
}

/// Startup done: returns the heap's free pages to the kernel, then (when `lock`) locks
/// every page mapped now and later.
pub fn trim_and_lock(lock: bool) {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory the allocator holds.
    unsafe {
        libc::malloc_trim(0);
    }
    if lock {
        use nix::sys::mman::{MlockAllFlags, mlockall};
        if let Err(error) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
            tracing::warn!(%error, "mlockall failed; the guardian's memory may be swapped or reclaimed");
        }
    }
}
