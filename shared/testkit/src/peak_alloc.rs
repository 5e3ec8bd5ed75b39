//! A global allocator for any test binary that links this crate; it counts, per thread, the bytes in use and
//! their high-water mark, so a property test can assert that one call on hostile input never
//! allocates more than a bound derived from its input and limits.
//!
//! The counters are per thread because `cargo test` runs tests on parallel threads: a global
//! count would charge one test for another's allocations. The code under test runs on the
//! calling thread (no rayon or thread pools in the image or JSON paths), so nothing it
//! allocates is missed. Memory freed on another thread than the one that allocated it skews
//! both threads' counts; none of the measured calls hand memory across threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, with the calling thread's counters updated on every call.
struct PeakTracking;

thread_local! {
    // `const` thread-locals without destructors never allocate and are usable at any point of
    // a thread's life, which an allocator needs: it runs before and after everything else.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

#[global_allocator]
static ALLOCATOR: PeakTracking = PeakTracking;

fn record(delta: isize) {
    // `try_with` rather than `with`: never panic inside the allocator.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// The workspace denies unsafe code; a global allocator cannot be written without it. Each
// method forwards to `System` with the caller's arguments unchanged, so the contract the
// caller upholds for `PeakTracking` is exactly the one `System` needs.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for PeakTracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; see above.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; see above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; see above.
        unsafe { System.dealloc(ptr, layout) };
        record(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; see above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as one step: the old and new blocks are not both charged while the
            // contents are copied, which understates a peak by at most the old block.
            record(signed(new_size) - signed(layout.size()));
        }
        new
    }
}

/// Runs `f` and returns its result with the most bytes it had allocated at once on this thread
/// (memory it frees again counts until freed; memory it returns counts too).
pub fn peak_bytes_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, usize::try_from(peak - before).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_counts_memory_freed_before_the_call_returns() {
        let ((), peak) = peak_bytes_during(|| {
            let big = vec![1u8; 1 << 20];
            drop(std::hint::black_box(big));
            let small = vec![2u8; 1 << 10];
            drop(std::hint::black_box(small));
        });
        assert!((1 << 20..(1 << 20) + 4096).contains(&peak), "{peak}");
    }

    #[test]
    fn other_threads_allocations_are_not_counted() {
        let ((), peak) = peak_bytes_during(|| {
            let handle = std::thread::spawn(|| drop(std::hint::black_box(vec![0u8; 8 << 20])));
            let _ = handle.join();
        });
        // Spawning a thread allocates a little on this one (its handle, name, packet).
        assert!(peak < 1 << 20, "{peak}");
    }
}
