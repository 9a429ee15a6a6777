//! Picking a port for a node to listen on.
//!
//! Asking the OS for port 0 and handing the number to a child process is a
//! race: the port comes from the *ephemeral* range, the same range the OS
//! draws from for outgoing connections, and with half a dozen nodes opening
//! MQTT and HTTP connections one of them can take the port before the child
//! binds it ("Address already in use"). Ports below the ephemeral range are
//! never handed out for outgoing connections, so picking one there (and
//! checking it is free) closes the race.
//!
//! A port is picked long before the child binds it (a control room picks
//! every node's port up front), so a second pick in the same process, say a
//! test running beside another, could find it still free and hand it out
//! again: this process remembers what it handed out and never repeats it.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

use rand::Rng;

/// Where we look when the ephemeral range cannot be read: below Linux's
/// default range (32768-60999).
const FALLBACK_LOW: u16 = 32_768;
/// The lowest port we pick: above the well-known and most registered ones.
const FLOOR: u16 = 20_000;

/// Ports this process has handed out. The one lock guards one set; it is
/// held only to check and insert.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Records `port` as handed out; false if it was already.
fn claim(port: u16) -> bool {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    handed.get_or_insert_with(HashSet::new).insert(port)
}

/// The lower bound of the OS's ephemeral port range.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(FALLBACK_LOW)
}

/// A port on 127.0.0.1 that nobody listens on now and that the OS will not
/// hand to an outgoing connection.
pub fn free_port() -> std::io::Result<u16> {
    let high = ephemeral_low();
    if high > FLOOR + 100 {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let port = rng.gen_range(FLOOR..high);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
                return Ok(port);
            }
        }
    }
    // An unusual range: fall back to what the OS offers.
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_below_the_ephemeral_range_and_bindable() {
        let port = free_port().unwrap();
        assert!(port < ephemeral_low() || ephemeral_low() <= FLOOR + 100, "{port}");
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn a_port_is_never_handed_out_twice_by_one_process() {
        let ports: HashSet<u16> = (0..500).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 500);
    }
}
