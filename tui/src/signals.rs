//! SIGINT, SIGTERM and SIGHUP, caught before the first node starts and
//! turned into [`Msg::Terminate`] once the app can take them.
//!
//! Caught early on purpose: until a handler is installed a signal takes its
//! default action, which kills the control room on the spot and leaves the
//! nodes it has just started running as orphans. A terminal window closed
//! during start-up (SIGHUP) did exactly that.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

use crate::msg::Msg;

/// The signals that stop the control room, held from [`Signals::catch`] on;
/// one that arrives before [`Signals::forward`] waits in its stream.
pub struct Signals(Vec<Signal>);

impl Signals {
    /// Replaces the default action of SIGINT, SIGTERM and SIGHUP. Must run
    /// inside the tokio runtime.
    pub fn catch() -> std::io::Result<Signals> {
        [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ]
        .into_iter()
        .map(signal)
        .collect::<std::io::Result<Vec<_>>>()
        .map(Signals)
    }

    /// Sends a [`Msg::Terminate`] for every signal, the held ones first.
    pub fn forward(self, tx: UnboundedSender<Msg>) {
        for mut stream in self.0 {
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(Msg::Terminate).is_err() {
                        return;
                    }
                }
            });
        }
    }
}
