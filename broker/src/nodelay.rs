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
            let mut seen: HashSet<u64> = HashSet::new();
            loop {
                sweep(&ports, &mut seen);
                std::thread::sleep(SWEEP);
            }
        })?;
    Ok(())
}

/// Sets TCP_NODELAY on accepted connections not seen before. Sockets are
/// known by inode, not by fd number: a reconnect often gets the number of
/// the connection that just closed, and must not be taken for it.
fn sweep(ports: &[u16], seen: &mut HashSet<u64>) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let mut open = HashSet::new();
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else {
            continue;
        };
        // "socket:[12345]" for a socket; anything else is not one.
        let Some(inode) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|l| socket_inode(&l))
        else {
            continue;
        };
        open.insert(inode);
        if !seen.insert(inode) {
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
        if is_ours && sock.peer_addr().is_ok() {
            let _ = sock.set_tcp_nodelay(true);
        }
    }
    // Forget closed sockets, so the set stays as small as the open ones.
    seen.retain(|i| open.contains(i));
}

fn socket_inode(link: &std::path::Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_known_by_inode() {
        assert_eq!(socket_inode(std::path::Path::new("socket:[12345]")), Some(12345));
        assert_eq!(socket_inode(std::path::Path::new("/dev/null")), None);
        assert_eq!(socket_inode(std::path::Path::new("pipe:[77]")), None);
    }
}
