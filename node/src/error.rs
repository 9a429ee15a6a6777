//! Errors of the node runtime.

/// What can go wrong in the node runtime.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A live node holds this id; starting would knock it off the broker.
    #[error("node id {id} is held by a live node (pid {pid} on host {host}); stop that node first, or start this one with another --id")]
    IdTaken {
        /// The id.
        id: String,
        /// The holder's pid.
        pid: u32,
        /// The holder's host.
        host: String,
    },
    /// The node's sled database failed.
    #[error("node storage failed: {0}; check that the data directory is writable and that no other node with this id uses it")]
    Storage(#[from] sled::Error),
    /// A value did not (de)serialise.
    #[error("could not encode or decode a message: {0}")]
    Json(#[from] serde_json::Error),
    /// The MQTT client is gone (the node is shutting down).
    #[error("the node's MQTT connection is closed: {0}")]
    Closed(#[from] rumqttc::ClientError),
    /// The task that owns the MQTT connection has stopped.
    #[error("the node's MQTT link has stopped (the node is shutting down)")]
    LinkGone,
    /// A `--broker` URL could not be understood.
    #[error(
        "bad broker address '{0}': expected mqtt://HOST:PORT (optionally mqtt://USER:PASSWORD@HOST:PORT)"
    )]
    BrokerUrl(String),
    /// The node's key or the trust file is missing, unreadable or does not
    /// list this node as it runs.
    #[error("node keys: {0}")]
    Security(String),
}
