//! The four services of the pizza business. Each is a `pizza-node`
//! subcommand: `Args` are its flags, `run` serves until SIGTERM/SIGINT or a
//! `stop` command from the control room.
//!
//! The flow of one order (see `ARCHITECTURE.md`):
//! order --POST /pay--> payment; order --queue kitchen--> kitchen
//! --queue delivery--> delivery; every step publishes events the order node
//! folds into each order's state.

pub mod assets;
pub mod delivery;
pub mod directory;
pub mod http;
pub mod kitchen;
pub mod openapi;
pub mod order;
pub mod payment;
pub mod range;
pub mod tokens;

use std::net::SocketAddr;

use anyhow::Context;

use crate::runtime::Node;

/// Takes the HTTP port, so that a busy one fails before the node starts.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    bind(addr, "--http").await
}

/// Takes `addr`, or says which `flag` chooses another.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is the port in use? choose another with {flag}"))
}

/// Puts the node's HTTP address in its heartbeat (figure `http`, and
/// `metrics` for its `/metrics`), so the
/// control room can reach a node it did not start and other nodes find it
/// (the order node calls delivery's `/recall` there), on this host or not.
pub fn announce_http(node: &Node, listener: &tokio::net::TcpListener, advertise: Option<&str>) {
    if let Ok(addr) = listener.local_addr() {
        let url = advertised_url(addr, advertise, &crate::runtime::claim::host_name());
        // Its API port serves the metrics too, unless --metrics put them
        // on an address of their own.
        node.set_figures(|f| {
            f.metrics.get_or_insert_with(|| format!("{url}/metrics"));
            f.http = Some(url);
        });
        // The first heartbeat went out without it; the control room takes
        // the node for up (and its orders for placeable) on the next one.
        node.beat_now();
    }
}

/// The URL others reach a listener on `local` at: on `advertise` if given,
/// on this `host` when it listens on every address (0.0.0.0 says nothing
/// to another host), else on the address it listens on.
pub fn advertised_url(local: SocketAddr, advertise: Option<&str>, host: &str) -> String {
    let port = local.port();
    let name = match advertise {
        Some(a) => a.to_string(),
        None if local.ip().is_unspecified() => host.to_string(),
        None => local.ip().to_string(),
    };
    if name.contains(':') && !name.starts_with('[') {
        format!("http://[{name}]:{port}")
    } else {
        format!("http://{name}:{port}")
    }
}

pub use http::serve;

#[cfg(test)]
mod tests {
    use super::advertised_url;

    #[test]
    fn the_advertised_url_is_one_another_host_can_reach() {
        let any = "0.0.0.0:8080".parse().unwrap();
        let lo = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            advertised_url(any, None, "kitchen-host"),
            "http://kitchen-host:8080"
        );
        assert_eq!(advertised_url(lo, None, "h"), "http://127.0.0.1:8080");
        assert_eq!(advertised_url(any, Some("10.0.0.7"), "h"), "http://10.0.0.7:8080");
        assert_eq!(advertised_url(any, Some("fd00::7"), "h"), "http://[fd00::7]:8080");
    }
}
