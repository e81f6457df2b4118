//! Giving freed heap back to the operating system after the few moments that free a lot.
//!
//! Loading a large API allocates far more than the gateway keeps: the OpenAPI document as a
//! `serde_json::Value` (tens of MB for 10,000 routes), the import's intermediate copies, the
//! previous routing snapshot and key index when a change recompiles them. glibc's allocator
//! returns memory to the system only from the top of the heap and from its own trimming
//! heuristics, so after such a moment the process keeps the freed pages resident: RSS stays at
//! the peak although the heap in use is a fraction of it (bench/README.md, "The 10k-route
//! RSS"). `malloc_trim(0)` walks the free lists and releases every free page (`madvise`), in
//! every arena. It costs a pass over the heap (milliseconds for hundreds of MB), so it is
//! called after boot and after writes that rebuilt the routing snapshot, never per request.
//! On other allocators and platforms this is a no-op.

/// Returns the allocator's free pages to the operating system (glibc only).
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory; it is
    // thread-safe (it takes each arena's lock) and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
