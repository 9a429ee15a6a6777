//! A Pizza Platform node: the runtime every service shares, and the services.
//!
//! - [`runtime`]: what any node of any business needs, and nothing of pizzas:
//!   [`Node`] (heartbeat, control topic, faults, stop), the one MQTT
//!   [`runtime::link`], the [`runtime::outbox`] and [`runtime::inbox`], group
//!   commit, the queue client, durable event-stream subscriptions, the
//!   consume loop ([`runtime::worker`]), request/reply, signing. It never
//!   imports [`services`].
//! - [`services`]: the pizza business, one folder per service (order,
//!   payment, kitchen, delivery) over the shared HTTP plumbing (errors, JSON
//!   bodies, OpenAPI, bearer tokens).
//! - [`keeper`]: `pizza-node keeper`, the queue keeper beside an external broker.
//! - [`config`] / [`logging`] / [`metrics`] / [`otlp`]: flags every subcommand
//!   shares, logs, Prometheus, traces.
//! - [`cli`]: the `pizza-node` command line, also run by the control room.
//! - [`history`]: asking the broker's event log for an order's events, and
//!   `GET /orders/{id}/history`.
//! - [`inspect`]: `pizza-node replay` and `pizza-node trace`.
//! - [`ports`]: a free port that no outgoing connection can take first.
//! - [`allocator`]: the binaries' allocator (mimalloc) and its one setting.
//! - [`asyncapi`]: writes `contracts/asyncapi.yaml`.

// Nothing from outside the process is unwrapped: errors are values here
// (tests may unwrap what they built themselves).
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod allocator;
pub mod asyncapi;
pub mod cli;
pub mod config;
pub mod error;
pub mod history;
pub mod inspect;
pub mod keeper;
pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod ports;
pub mod runtime;
pub mod services;

/// Online backups and restores of a node's sled state (the broker's, with
/// its queues and event log, too): `pizza-node backup` / `restore`.
pub use broker::backup;
pub use error::NodeError;
pub use runtime::queue::{Acker, QueueConsumer, QueueProducer};
pub use runtime::{Node, NodeConfig};
