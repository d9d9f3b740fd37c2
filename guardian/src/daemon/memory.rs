//! The guardian's own memory: small and locked.
//!
//! Locking keeps every page the guardian uses resident so it keeps running under the
//! memory pressure it fights. Loading the eBPF programs parses the kernel's BTF (several
//! MiB, three times: offsets, relocation, attach, much of it in small blocks) and frees it
//! again. So the allocator is told to give large blocks back to the kernel at once (a
//! fixed mmap threshold), the heap is trimmed once startup is done (its free pages,
//! holes included, go back to the kernel), and only then is memory locked:
//!
//! - anonymous memory (heap, thread stacks) with `MCL_ONFAULT`: every page resident now
//!   and every page touched later is locked, but the heap's trimmed holes are not faulted
//!   back in (a plain `mlockall` populates the whole heap, garbage and all: 12 of 29 MiB);
//! - every file mapping (the guardian's code and data, the C library) whole, populated
//!   now: the kill path may run for the first time under pressure, and its code must not
//!   have to be read from disk then.

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
/// what is resident and every page touched later, and populates and locks the file
/// mappings (code) whole.
pub fn trim_and_lock(lock: bool) {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory the allocator holds.
    unsafe {
        libc::malloc_trim(0);
    }
    if !lock {
        return;
    }
    use rustix::mm::{MlockAllFlags, mlockall};
    if let Err(error) =
        mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT)
    {
        tracing::warn!(%error, "mlockall failed; the guardian's memory may be swapped or reclaimed");
        return;
    }
    if let Err(error) = lock_file_mappings() {
        tracing::warn!(%error, "locking the guardian's code whole failed; it is locked as it runs");
    }
}

/// `mlock` of every readable file mapping and the main stack: populates them now (they
/// were locked on fault only by `mlockall(MCL_ONFAULT)`).
fn lock_file_mappings() -> Result<(), LockError> {
    use procfs::process::{MMPermissions, MMapPath, Process};
    let maps = Process::myself()
        .and_then(|me| me.maps())
        .map_err(|error| LockError::Maps(error.to_string()))?;
    for map in maps {
        let whole = matches!(map.pathname, MMapPath::Path(_) | MMapPath::Stack);
        if !whole || !map.perms.contains(MMPermissions::READ) {
            continue;
        }
        let (start, end) = map.address;
        let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(end - start)) else {
            continue;
        };
        // SAFETY: mlock changes no memory contents; the range is one of our own mappings
        // as the kernel lists it, and locking an address no longer mapped only fails.
        unsafe { rustix::mm::mlock(start as *mut core::ffi::c_void, len) }.map_err(|error| {
            LockError::Lock {
                mapping: format!("{:?} at {start:#x}", map.pathname),
                error,
            }
        })?;
    }
    Ok(())
}

/// Why the code could not be locked whole.
#[derive(Debug, thiserror::Error)]
enum LockError {
    #[error("reading /proc/self/maps: {0}")]
    Maps(String),
    #[error("mlock of {mapping}: {error}")]
    Lock {
        mapping: String,
        #[source]
        error: rustix::io::Errno,
    },
}
