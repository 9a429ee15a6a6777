//! The binaries' memory allocator: mimalloc, told to keep freed memory a
//! while.
//!
//! Measured with `flow-bench --orders 12000 --rate 0 --connections 32` (2
//! cores): glibc malloc 852 delivered orders/s, a fifth of all CPU in its
//! locks and consolidation; mimalloc with its defaults 888 and 940, with
//! 5 % of all CPU now the kernel zeroing pages, because mimalloc hands freed
//! memory back to the OS after 10 ms and every burst faults it in again;
//! mimalloc keeping it for a second 1,265-1,364. A node's memory under load
//! is tens of MB, so holding it a second longer costs nothing worth having.
//!
//! Each binary names it (`#[global_allocator] static ALLOCATOR: Allocator =
//! ALLOCATOR;`), and [`tune`] runs first thing in `cli::run`.

/// The allocator every binary uses.
pub type Allocator = mimalloc::MiMalloc;

/// The value a binary's `#[global_allocator]` static is set to.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same position in its v2 and v3
/// option enums; libmimalloc-sys names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before it goes back to the
/// OS, in ms (mimalloc's default: 10).
const KEEP_FREED_MS: std::os::raw::c_long = 1_000;

/// Sets the purge delay. Harmless where mimalloc is not the allocator (a
/// test binary): the option then only goes unused.
pub fn tune() {
    // SAFETY: mi_option_set stores a number in mimalloc's option table; any
    // value is valid for this option and it may be set at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_FREED_MS) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_is_the_option_we_mean() {
        super::tune();
        // SAFETY: reads mimalloc's option table.
        let now = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(now, super::KEEP_FREED_MS);
    }
}
