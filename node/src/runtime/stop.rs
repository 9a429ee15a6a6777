//! When a node stops: on SIGTERM or SIGINT, or on the control room's `stop`.

use super::Node;

/// Resolves on SIGINT or SIGTERM.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves when the node should stop: a signal or the control room's `stop`.
pub async fn until_stopped(node: Node) {
    tokio::select! {
        _ = terminated() => {}
        _ = node.stop_requested() => {}
    }
    node.begin_stop();
}
