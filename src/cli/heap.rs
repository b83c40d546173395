//! How the computing processes (`mpc party`, `mpc run`, `mpc pre`) ask the C allocator to
//! keep memory it got back, instead of returning it to the system at once.
//!
//! Why: a run without a dealer builds and drops messages of megabytes many times a second
//! (OT extension, leaky-AND and garbled-row messages, their sealed frames and HTTP
//! bodies). With glibc's defaults each of them is a fresh `mmap` or grows a heap that is
//! trimmed again right after, so every page is faulted in and zeroed by the kernel again:
//! on the 1M-AND benchmark the garbler took about 190,000 page faults and 0.9 s of system
//! time per run; with these settings 22,000 and 0.5 s, at the same peak memory (the peak
//! is the same batch either way). The relay (`mpc serve`) keeps glibc's defaults: it runs
//! for days, and memory it no longer needs should go back.
//!
//! A user who tunes glibc's allocator through `GLIBC_TUNABLES` keeps their own settings.

/// Requests larger than this still get their own mapping (glibc's largest threshold on
/// 64-bit targets); every message and batch buffer of a run is below it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory at the top of the heap is returned to the system only above this much.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Sets the allocator up for a computing process; see the module documentation. Does
/// nothing on other C libraries, or when `GLIBC_TUNABLES` already sets a malloc option.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc."));
        if tuned {
            return;
        }
        // Both are set: setting either one alone switches off glibc's adaptive thresholds
        // and makes things worse (measured: more page faults than the defaults).
        // SAFETY: mallopt only changes allocator parameters under the allocator's own
        // lock; it is safe to call at any time, from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
