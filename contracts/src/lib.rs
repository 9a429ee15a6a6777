//! The Pizza Platform wire contract.
//!
//! Every byte that crosses a process boundary is one of the types in this
//! crate, serialised as JSON (snake_case). The crate does no I/O, so the
//! broker, the nodes, the control room and any test can share it.
//!
//! - [`domain`]: the vocabulary below the rest: customer, item, role.
//! - [`envelope`]: the [`Envelope`] every domain event and queue item travels in.
//! - [`queue`]: the durable work-queue protocol spoken with the keeper.
//! - [`topics`]: the MQTT topic names, built in one place.
//! - [`status`]: node heartbeats and control-room commands.
//! - [`events`]: one type per domain event payload.
//! - [`order`]: the order state machine, a pure fold over envelopes.
//! - [`api`]: REST request and response bodies.
//! - [`trace`]: W3C `traceparent` headers.
//! - [`history`]: the event log's query protocol, and replay of an order to
//!   any instant.
//! - [`stream`]: the durable event stream: publish to the log, subscribe
//!   with a cursor the log keeps.
//! - [`timeline`]: an order's trace timeline (how long each stage took).
//! - [`acl`]: a Mosquitto `acl_file` made from the permission table.
//! - [`login`]: MQTT logins and the client ids each may use.
//! - [`trust`]: node keys, the trust file, signed envelopes and the
//!   permission table (which role may publish, put and consume what).

// Nothing from outside the process is unwrapped: errors are values here
// (tests may unwrap what they built themselves).
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod acl;
pub mod api;
pub mod asyncapi;
pub mod domain;
pub mod envelope;
pub mod events;
pub mod history;
pub mod login;
pub mod mac;
pub mod order;
pub mod queue;
pub mod seal;
pub mod status;
pub mod stream;
pub mod testkit;
pub mod timeline;
pub mod token;
pub mod topics;
pub mod trace;
pub mod trust;

pub use envelope::{Envelope, SCHEMA_VERSION};
