//! The Pizza Platform control room.
//!
//! The Elm architecture: a [`model::Model`] of plain data, a pure
//! [`update::update`] that takes a [`msg::Msg`] and returns [`msg::Effect`]s,
//! and a [`ui::draw`] that only reads the model. Beside the model, the tools
//! that watch it ([`update::Watchers`]: the scenario player, the recorder),
//! fed the same messages by [`update::step`]. Around them a thin shell:
//!
//! - [`app`]: carries out effects, collects messages (the shell).
//! - [`supervisor`]: the node processes (start, stop, kill, freeze, scale).
//! - `feed`: the control room's own broker connection.
//! - `customer`: places orders over HTTP like a customer.
//! - `tail`: reads the end of a node's log for the log view.
//! - [`tty`] / [`headless`]: the two ways to run it; [`signals`]: how
//!   either is stopped.
//! - [`topology`]: which nodes to start.
//! - [`scenario`] / [`play`] / `record`: scripted runs, their player,
//!   and recording an operator's session into a scenario.
//! - [`cast`]: `--cast FILE`, the screen as an asciicast recording.
//! - [`chaos`] / [`ledger`]: chaos mode and the ledger that proves it lost
//!   nothing; [`rollout`]: a rolling restart.

// Public: what the binaries, tests and benches drive. The shell's private
// rooms (the feed, the customer, the log tail, the recorder) are reached
// only through `app`.

// Nothing from outside the process is unwrapped: errors are values here
// (tests may unwrap what they built themselves).
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod canary;
pub mod cast;
pub mod chaos;
mod customer;
mod feed;
pub mod headless;
pub mod keys;
pub mod ledger;
pub mod model;
pub mod msg;
pub mod play;
pub mod proxy;
mod record;
pub mod rollout;
pub mod scenario;
pub mod signals;
pub mod storage;
pub mod supervisor;
mod tail;
pub mod testkit;
pub mod topology;
pub mod tty;
pub mod ui;
pub mod update;
