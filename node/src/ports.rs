//! Picking a port for a node to listen on.
//!
//! Asking the OS for port 0 and handing the number to a child process is a
//! race: the port comes from the *ephemeral* range, the same range the OS
//! draws from for outgoing connections, and with half a dozen nodes opening
//! MQTT and HTTP connections one of them can take the port before the child
//! binds it ("Address already in use"). Ports below the ephemeral range are
//! never handed out for outgoing connections, so picking one there (and
//! checking it is free) closes the race.

use std::net::TcpListener;

use rand::Rng;

/// Where we look when the ephemeral range cannot be read: below Linux's
/// default range (32768-60999).
const FALLBACK_LOW: u16 = 32_768;
/// The lowest port we pick: above the well-known and most registered ones.
const FLOOR: u16 = 20_000;

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
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
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
}
