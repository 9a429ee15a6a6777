//! The four services of the pizza business. Each is a `pizza-node`
//! subcommand: `Args` are its flags, `run` serves until SIGTERM/SIGINT or a
//! `stop` command from the control room.
//!
//! The flow of one order (see `ARCHITECTURE.md`):
//! order --POST /pay--> payment; order --queue kitchen--> kitchen
//! --queue delivery--> delivery; every step publishes events the order node
//! folds into each order's state.

pub mod assets;
pub mod book;
pub mod breaker;
pub mod cancellation;
pub mod delivery;
pub mod directory;
pub mod http;
pub mod kitchen;
pub mod order;
pub mod payment;
pub mod range;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;

use crate::runtime::Node;

/// Takes the HTTP port, so that a busy one fails before the node starts.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is the port in use? choose another with --http"))
}

/// Puts the node's HTTP address in its heartbeat (figure `http`), so the
/// control room can reach a node it did not start.
pub fn announce_http(node: &Node, listener: &tokio::net::TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        node.set_figure("http", format!("http://{addr}"));
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "HTTP listening");
    axum::serve(
        listener,
        router.layer(axum::extract::DefaultBodyLimit::max(http::MAX_BODY)),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server failed")
}

/// Resolves when the node should stop: a signal or the control room's `stop`.
pub async fn until_stopped(node: Node) {
    tokio::select! {
        _ = crate::cli::terminated() => {}
        _ = node.stop_requested() => {}
    }
    node.begin_stop();
}
