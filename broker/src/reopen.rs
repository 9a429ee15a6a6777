//! Test support: reopening a sled directory another handle just closed.
//!
//! sled's background flusher keeps the directory's file lock for a moment
//! after the last handle drops, so a test that reopens at once can see
//! `WouldBlock` (seen on a loaded CI machine). A new process never meets
//! this; tests poll for the lock with a deadline instead of sleeping.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Calls `open` until it succeeds or 10 s have passed, then panics with the
/// last error.
pub(crate) fn when_unlocked<T, E: Debug>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(e) if Instant::now() >= deadline => panic!("cannot reopen: {e:?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
