//! What flows into `update` ([`Msg`]) and what comes out of it ([`Effect`]).
//!
//! Everything that happens is a message: a key, a heartbeat, an event, a
//! child exiting, a clock tick. `update` never does I/O; it returns effects
//! and the shell (app.rs) carries them out.

use contracts::queue::{DeadLetter, QueueStats};
use contracts::status::{Control, NodeStatus};
use contracts::Envelope;
use ratatui::crossterm::event::KeyEvent;
use time::OffsetDateTime;

use crate::topology::Role;

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Msg {
    /// A key press.
    Key(KeyEvent),
    /// The clock (every 250 ms).
    Tick(OffsetDateTime),
    /// The terminal changed size.
    Resize,
    /// A node heartbeat (or its last will).
    Status(Box<NodeStatus>),
    /// The keeper's queue figures.
    Stats(QueueStats),
    /// A domain event.
    Event(Box<Envelope>),
    /// A queue's dead letters, as the keeper lists them.
    DeadLetters {
        /// The queue (not the DLQ name).
        queue: String,
        /// Its dead letters.
        items: Vec<DeadLetter>,
    },
    /// The control room's own broker connection came up or went down.
    Feed {
        /// Up or down.
        connected: bool,
        /// Why it went down.
        detail: String,
    },
    /// A child process started, exited or failed to start.
    Child(ChildEvent),
    /// The log view's file, read again by the shell (every tick while open).
    LogTail(crate::model::LogTail),
    /// A mouse click or wheel turn, with the terminal's size then (the view
    /// is laid out from it to find what was under the pointer).
    Mouse {
        /// The event.
        event: ratatui::crossterm::event::MouseEvent,
        /// Terminal width.
        width: u16,
        /// Terminal height.
        height: u16,
    },
    /// The supervisor refused an action.
    Refused(String),
    /// Orders placed from the keyboard came back.
    Placed(PlaceOutcome),
    /// The order service answered a cancellation (`DELETE /orders/{id}`).
    CancelAnswered {
        /// The order.
        order_id: String,
        /// Accepted (202), or why not.
        outcome: Result<(), String>,
    },
    /// A backup, destruction or restore of a node's data is over.
    Storage {
        /// Node id.
        node: String,
        /// What was done.
        op: StorageOp,
        /// What came of it, for the log, or why it failed.
        outcome: Result<String, String>,
    },
    /// The fault proxy now applies these toxics to a node's link.
    Network {
        /// Node id.
        node: String,
        /// The link.
        link: String,
        /// The toxics (empty: healed).
        toxics: Vec<crate::model::network::Toxic>,
    },
    /// SIGINT, SIGTERM or SIGHUP reached the control room.
    Terminate,
}

/// How a batch of `POST /orders` went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceOutcome {
    /// Orders asked for.
    pub requested: u32,
    /// Ids of the orders accepted (201).
    pub accepted: Vec<String>,
    /// Refusals by "status code": how many, e.g. `"503 payment_unavailable"`.
    pub refused: std::collections::BTreeMap<String, u32>,
    /// The first refusal's message, for the log.
    pub first_error: Option<String>,
    /// Asked for quietly (see `Effect::PlaceOrders`).
    pub quiet: bool,
}

/// What is done to a node's data directory (`<data-dir>/<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageOp {
    /// `pizza-node backup` into `<data-dir>/backups/<id>/`.
    Backup,
    /// Delete it (the node stopped): a lost disk.
    Destroy,
    /// Restore the newest backup into it (the node stopped).
    Restore,
}

impl StorageOp {
    /// A verb for the log.
    pub fn verb(self) -> &'static str {
        match self {
            StorageOp::Backup => "backup",
            StorageOp::Destroy => "destroy",
            StorageOp::Restore => "restore",
        }
    }
}

/// Something for the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a node that is down, by id.
    Start(String),
    /// Start one more node of a role.
    ScaleUp(Role),
    /// SIGTERM, then SIGKILL after the grace period.
    Stop(String),
    /// kill -9.
    Kill(String),
    /// SIGSTOP (`true`) or SIGCONT (`false`).
    Freeze(String, bool),
    /// Stop, then start again.
    Restart(String),
    /// Restart every node of a role one at a time (taken by the rollout
    /// watcher, `update::step`; the shell never sees it).
    RollingRestart(Role),
    /// Try a canary of a role (taken by the canary watcher,
    /// `update::step`; the shell never sees it).
    Canary(crate::canary::CanaryPlan),
    /// Start node `id` of `role` with `args` on top of the role's.
    Launch {
        /// The role.
        role: Role,
        /// The new node's id.
        id: String,
        /// Its arguments beyond the role's (the same flag replaces).
        args: Vec<String>,
    },
    /// From now on, start every node of `role` with `args` on top of its own
    /// (a promoted canary's); a restart picks them up.
    Respec {
        /// The role.
        role: Role,
        /// The arguments.
        args: Vec<String>,
    },
    /// Back up, destroy or restore a node's data directory.
    Storage {
        /// Node id.
        node: String,
        /// What to do.
        op: StorageOp,
    },
    /// Publish a control command to a node.
    Control(String, Control),
    /// Replace the network faults on one of a node's links (empty: heal).
    Network {
        /// Node id.
        node: String,
        /// The link (`broker`, or a service it calls).
        link: String,
        /// The toxics.
        toxics: Vec<crate::model::network::Toxic>,
    },
    /// Move dead letters back onto their queue (`None`: all of them).
    Requeue(String, Option<u64>),
    /// POST this many orders to the order service at `url`.
    PlaceOrders {
        /// The order service.
        url: String,
        /// How many.
        count: u32,
        /// A stream's batch (chaos mode's load): no log line when all
        /// are accepted.
        quiet: bool,
    },
    /// `DELETE /orders/{id}` on the order service at `url`.
    CancelOrder {
        /// The order service.
        url: String,
        /// The order.
        order_id: String,
    },
    /// Leave the control room.
    Quit {
        /// Stop every node started here (`false`: leave them running).
        stop_nodes: bool,
    },
}

/// Something that happened to a child; becomes a message for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEvent {
    /// A node process started.
    Spawned {
        /// Node id.
        id: String,
        /// Its role.
        role: Role,
        /// OS process id.
        pid: u32,
        /// Where its Prometheus `/metrics` is served, if anywhere.
        metrics: Option<String>,
        /// Its links that go through the fault proxy (`broker`, `payment`).
        links: Vec<String>,
    },
    /// A node process ended.
    Exited {
        /// Node id.
        id: String,
        /// Its role.
        role: Role,
        /// Exit code, when it exited.
        code: Option<i32>,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
        /// Whether the control room asked for it (stop, restart, scale down;
        /// not kill -9, which stands for a crash).
        expected: bool,
        /// On a crash, the last line it wrote (its error, usually), so the
        /// alert says why without opening the log.
        last_words: Option<String>,
    },
    /// The control room asked a node to end (stop, kill, restart).
    Stopping {
        /// Node id.
        id: String,
    },
    /// A node was frozen (SIGSTOP) or thawed (SIGCONT).
    Frozen {
        /// Node id.
        id: String,
        /// Frozen now.
        frozen: bool,
    },
    /// A node found running on attach was taken under this control room's
    /// care (stop, kill, freeze by pid), instead of starting a twin.
    Adopted {
        /// Node id.
        id: String,
        /// Its role.
        role: Role,
        /// OS process id.
        pid: u32,
    },
    /// A node could not be started.
    Failed {
        /// Node id.
        id: String,
        /// Why, for the operator.
        error: String,
    },
}
