//! The broker process: an embedded MQTT server (rumqttd) and, in the same
//! process, the keeper of the durable work queues (sled).
//!
//! - [`server`]: rumqttd, configured with bounded memory and optional auth.
//! - [`queue`]: one work queue as plain data (credit, per-key FIFO, retries,
//!   leases, DLQ), tested without sockets.
//! - [`journal`]: how a queue's puts and acks are packed into few sled
//!   records, replayed on start and truncated from the front (plain data).
//! - [`store`]: the queues' sled storage, with group-commit flushes.
//! - [`keeper`]: the MQTT client that runs the queues over ordinary topics.
//! - [`eventlog`]: every domain event appended once to sled, confirmed to
//!   its producer, served to durable subscriptions, and one order's events
//!   served to whoever asks over MQTT (replay, trace).
//! - [`subscriptions`]: the log's subscriptions as plain data (cursors,
//!   credit, rewinds).
//!
//! [`serve`] runs all three; `pizza-node broker` is its command line.
//! [`serve_keeper`] runs the keeper and the log alone, against any MQTT
//! broker; `pizza-node keeper` is its command line.

// Nothing from outside the process is unwrapped: errors are values here
// (tests may unwrap what they built themselves).
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod backup;
pub mod eventlog;
pub mod journal;
pub mod keeper;
pub mod metrics;
#[cfg(target_os = "linux")]
pub mod nodelay;
pub mod queue;
#[cfg(test)]
mod reopen;
pub mod server;
pub mod store;
pub mod subscriptions;
pub mod trust;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use contracts::topics::Topics;

pub use keeper::{Keeper, KeeperError, KeeperOptions};
pub use queue::Policy;
pub use server::ServerOptions;

/// Errors that stop the broker process.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The MQTT server could not start.
    #[error("the MQTT server could not start on {addr}: {reason}; is the port already in use?")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The keeper failed.
    #[error(transparent)]
    Keeper(#[from] KeeperError),
    /// The event log failed.
    #[error(transparent)]
    EventLog(#[from] eventlog::EventLogError),
    /// The keeper's or the log's task panicked or was cancelled.
    #[error("a broker task ended unexpectedly: {0}; this is a bug, please report it with the broker's log")]
    Task(String),
    /// The backup socket could not be served.
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
}

/// Everything `pizza-node broker` is told.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The MQTT server's listeners and users.
    pub server: ServerOptions,
    /// What its keeper and event log keep, and how.
    pub keeping: Keeping,
}

/// What the keeper and the event log keep, and how: the same for the
/// broker's own and for `pizza-node keeper` against another broker.
#[derive(Debug, Clone)]
pub struct Keeping {
    /// Where the queues and the event log are stored.
    pub data_dir: PathBuf,
    /// Topic prefix.
    pub prefix: String,
    /// Retry and DLQ policy.
    pub policy: Policy,
    /// Consumer lease.
    pub lease: Duration,
    /// When set, the event log and the keeper take only what the trust file
    /// says the sender may send, signed by it (`contracts::trust`).
    pub trust: Option<Arc<trust::TrustStore>>,
    /// Signs the keeper's own events; its id must be in the trust file with
    /// role `broker`.
    pub signer: Option<Arc<contracts::trust::Signer>>,
}

/// Runs the MQTT server, the keeper and the event log until the keeper or
/// the event log fails. The server has
/// no shutdown API; the process exiting stops it.
pub async fn serve(opts: BrokerOptions) -> Result<(), BrokerError> {
    let addr = opts.server.listen;
    // rumqttd only logs a failed bind on its own thread; try the address
    // first so that a taken port is a clear error here.
    let listen_error = |e: std::io::Error| BrokerError::Listen {
        addr,
        reason: e.to_string(),
    };
    drop(std::net::TcpListener::bind(addr).map_err(listen_error)?);
    if let Some(v5) = opts.server.listen_v5 {
        drop(std::net::TcpListener::bind(v5).map_err(|e| BrokerError::Listen {
            addr: v5,
            reason: e.to_string(),
        })?);
    }
    server::spawn(&opts.server).map_err(listen_error)?;
    #[cfg(target_os = "linux")]
    nodelay::spawn(
        [Some(addr), opts.server.listen_v5]
            .into_iter()
            .flatten()
            .map(|a| a.port())
            .collect(),
    )
    .map_err(listen_error)?;
    tracing::info!(%addr, "MQTT server listening");

    // The keeper and the log log in like anyone else; behind a users file
    // with the broker's own login.
    let credentials = opts.server.logins.as_ref().map(|l| l.internal());
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    serve_keeper(KeeperRun {
        host,
        port: addr.port(),
        credentials,
        keeping: opts.keeping,
    })
    .await
}

/// Where the keeper and the event log connect, and what they keep: the
/// part of [`BrokerOptions`] that needs no embedded server.
#[derive(Debug, Clone)]
pub struct KeeperRun {
    /// The MQTT broker's host (any MQTT 3.1.1 broker).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Login, if the broker wants one.
    pub credentials: Option<(String, String)>,
    /// What they keep, and how.
    pub keeping: Keeping,
}

/// Runs the keeper of the work queues and the event log as MQTT clients of
/// the broker at `run.host:run.port`, until one of them fails. They need
/// nothing from the broker but MQTT 3.1.1 with QoS 1 and retained messages:
/// `pizza-node broker` runs this next to its embedded rumqttd, `pizza-node
/// keeper` against any broker.
pub async fn serve_keeper(run: KeeperRun) -> Result<(), BrokerError> {
    let topics = Topics::new(&run.keeping.prefix);
    let data_dir = run.keeping.data_dir.clone();
    // Opened before anything connects, so that a storage problem stops the
    // keeper at once instead of after the first event.
    let mut log = eventlog::EventLog::open(&run.keeping.data_dir)?;
    if let Some(trust) = &run.keeping.trust {
        log.set_trust(trust.clone());
    }
    let (log_id, keeper_id) = (client_id(&run, "eventlog"), client_id(&run, "keeper"));
    let recorder = eventlog::RecorderOptions {
        host: run.host.clone(),
        port: run.port,
        client_id: log_id,
        credentials: run.credentials.clone(),
        topics: topics.clone(),
        signer: run.keeping.signer.clone(),
    };
    let keeper_opts = KeeperOptions {
        host: run.host,
        port: run.port,
        client_id: keeper_id,
        credentials: run.credentials,
        topics,
        data_dir: data_dir.clone(),
        policy: run.keeping.policy,
        lease: run.keeping.lease,
        queues: vec![
            contracts::queue::KITCHEN.into(),
            contracts::queue::DELIVERY.into(),
        ],
        trust: run.keeping.trust,
        signer: run.keeping.signer,
    };
    let (keeper, eventloop) = Keeper::open(keeper_opts)?;
    // `pizza-node backup --data-dir` asks here while the keeper runs.
    let shelf = backup::Shelf::default();
    shelf.add("queues", keeper.db());
    shelf.add("events", log.db());
    let _backups = backup::serve(&data_dir, shelf)?;
    // Tasks of their own, so the keeper and the log run on two cores (a
    // join in one task polls them on one thread).
    let keeper = tokio::spawn(async move { keeper.run(eventloop).await.map_err(BrokerError::from) });
    let log = tokio::spawn(async move { eventlog::run(recorder, log).await.map_err(BrokerError::from) });
    let joined = |r: Result<Result<(), BrokerError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(BrokerError::Task(e.to_string())))
    };
    tokio::try_join!(async { joined(keeper.await) }, async { joined(log.await) })?;
    Ok(())
}

/// `pizza-keeper` (for prefix `pizza`), under the login if there is one.
fn client_id(run: &KeeperRun, part: &str) -> String {
    let name = format!(
        "{}-{part}",
        run.keeping.prefix.trim_end_matches('/').replace('/', "-")
    );
    contracts::login::client_id(run.credentials.as_ref().map(|(u, _)| u.as_str()), &name)
}
