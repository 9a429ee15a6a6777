//! The node runtime shared by every Pizza Platform service, and the roles.
//!
//! - [`link`]: the one MQTT connection, owned by one task (reconnect,
//!   resubscribe, routing, the outbox window, confirmation).
//! - [`commit`]: group commit, many writers waiting for one sled flush.
//! - [`outbox`] / [`inbox`]: what must not be lost, what must not be done twice.
//! - [`queue`]: [`QueueProducer`] and [`QueueConsumer`] over the keeper protocol.
//! - [`stream`]: a durable subscription to the broker's event log.
//! - [`runtime`]: [`Node`]: heartbeat, control topic, faults.
//! - [`config`] / [`logging`]: the flags every `pizza-node` subcommand shares.
//! - [`roles`]: order, payment, kitchen, delivery.
//! - [`faults`]: injected faults, on incoming messages and on published events.
//! - [`worker`]: the consume loop queue-consuming roles share.
//! - [`request`]: request/reply over MQTT (withdrawals, the event log).
//! - [`withdraw`]: asking the keeper to take an order off a queue.
//! - [`ports`]: a free port that no outgoing connection can take first.
//! - [`cli`]: the `pizza-node` command line, also run by the control room.
//! - [`allocator`]: the binaries' allocator (mimalloc) and its one setting.
//! - [`history`]: asking the broker's event log for an order's events, and
//!   `GET /orders/{id}/history`.
//! - [`inspect`]: `pizza-node replay` and `pizza-node trace`.

pub mod allocator;
pub mod asyncapi;
pub mod claim;
pub mod cli;
pub mod commit;
pub mod config;
pub mod error;
pub mod faults;
pub mod history;
pub mod inbox;
pub mod inspect;
pub mod keeper;
pub mod link;
pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod outbox;
pub mod ports;
pub mod queue;
pub mod request;
pub mod roles;
pub mod runtime;
pub mod security;
pub mod stream;
pub mod tokens;
pub mod withdraw;
pub mod worker;

pub use error::NodeError;
pub use queue::{Acker, QueueConsumer, QueueProducer};
pub use runtime::{Node, NodeConfig};
