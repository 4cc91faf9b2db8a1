//! The memory allocator of every binary built on this crate (the agent, its
//! tests, benches and examples): mimalloc, without transparent huge pages.
//!
//! A sync builds and drops hundreds of thousands of small objects
//! (selectors, rules, names, netlink expressions); glibc's malloc spent
//! about a fifth of the sync's time on them, mimalloc much less
//! (BENCHMARKS.md). mimalloc asks for transparent huge pages on its
//! arenas, which raised the daemon's peak RSS by a third (2 MiB pages where
//! a few KiB were touched); `configure` turns them off for the process,
//! which brings the peak back to what glibc needed.
//!
//! Must not: allocate, or be configured anywhere else.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for this process (`PR_SET_THP_DISABLE`; the
/// kernel checks it on every page fault, so it also covers the arena
/// mimalloc mapped before `main`). Call first thing in `main`; the benches
/// call it too, so they measure the agent's configuration. Returns the
/// error of `prctl` (the agent runs on without it, with a higher peak).
pub fn configure() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Hand the memory a sync freed (snapshot, translation, netlink batch) back
/// to the kernel: the daemon idles between syncs.
pub fn release_free_memory() {
    // SAFETY: mi_collect only releases memory no live allocation uses; no
    // pointer is passed.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_turns_off_transparent_huge_pages() {
        configure().expect("prctl(PR_SET_THP_DISABLE)");
        // SAFETY: PR_GET_THP_DISABLE reads the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
        // Memory still works after a collection.
        let v: Vec<u64> = (0..100_000).collect();
        drop(v);
        release_free_memory();
        let w: Vec<u64> = (0..1_000).collect();
        assert_eq!(w.iter().sum::<u64>(), 499_500);
    }
}
