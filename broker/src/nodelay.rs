//! TCP_NODELAY for rumqttd's accepted connections.
//!
//! rumqttd 0.20 never sets TCP_NODELAY on the sockets it accepts and has no
//! option for it. With Nagle's algorithm on, a small message written while an
//! earlier one is unacknowledged waits for the peer's delayed ACK: measured
//! here, the keeper received puts 20 ms late on average (40 ms tails), and
//! the durable queue crawled at ~10k msg/s because its windows drained at
//! that pace. Since the server runs in our process, its sockets are our file
//! descriptors: a sweeper sets the option on every TCP socket whose local
//! port is one of the listen ports. Setting it twice, or on a socket closing
//! concurrently, is harmless.

use std::collections::HashSet;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

/// How often new connections are looked for.
const SWEEP: Duration = Duration::from_millis(100);

/// Starts a thread that keeps TCP_NODELAY set on connections accepted on `ports`.
pub fn spawn(ports: Vec<u16>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("nodelay".into())
        .spawn(move || {
            let mut done: HashSet<RawFd> = HashSet::new();
            loop {
                sweep(&ports, &mut done);
                std::thread::sleep(SWEEP);
            }
        })?;
    Ok(())
}

fn sweep(ports: &[u16], done: &mut HashSet<RawFd>) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: HashSet<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // Forget closed descriptors: their numbers get reused by new sockets.
    done.retain(|fd| open.contains(fd));
    for fd in open {
        if done.contains(&fd) {
            continue;
        }
        // SAFETY: `fd` was open a moment ago. If it has been closed (or
        // reused) since, the calls below fail harmlessly or act on another
        // socket of this process, which the port check then skips.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&borrowed);
        let Ok(local) = sock.local_addr() else {
            continue;
        };
        let is_ours = local.as_socket().is_some_and(|a| ports.contains(&a.port()));
        // The listening socket itself has no peer; accepted ones do.
        if is_ours && sock.peer_addr().is_ok() && sock.set_tcp_nodelay(true).is_ok() {
            done.insert(fd);
        }
    }
}
