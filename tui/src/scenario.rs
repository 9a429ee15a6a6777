//! The scenario format: a timeline of actions and the expectations checked
//! at the end, in TOML (`assets/scenarios/*.toml`, documented in the README).
//!
//! ```toml
//! name = "buffering"
//! proves = "Orders placed while no kitchen runs wait in the durable queue."
//!
//! [[node]]                      # optional: the platform to start (as in
//! role = "broker"               # assets/topology.toml); default topology
//! id = "broker"                 # when there is none
//!
//! [[step]]
//! do = "stop"
//! node = "kitchen-1"
//! caption = "The only kitchen closes."
//!
//! [[step]]
//! do = "wait"
//! until = "queue_ready"
//! queue = "kitchen"
//! count = 5
//! timeout_s = 20
//!
//! [[expect]]
//! that = "delivered"
//! count = 5
//! ```
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key is an error
//! naming it, not an action silently skipped.

use std::path::Path;

use contracts::status::Faults;
use serde::{Deserialize, Serialize};

use crate::topology::{NodeSpec, Role, Topology};

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, e.g. `buffering`.
    pub name: String,
    /// One line: what the scenario proves.
    pub proves: String,
    /// The platform to start; the default topology when empty.
    #[serde(default, rename = "node", skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSpec>,
    /// The timeline.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// Checked at the end.
    #[serde(default, rename = "expect")]
    pub expect: Vec<Expect>,
}

/// One action of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Show a caption (and keep it until the next one).
    Caption {
        /// The text.
        text: String,
    },
    /// Start a node that is down.
    Start {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// SIGTERM (then SIGKILL after the grace period).
    Stop {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// kill -9.
    Kill {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// SIGSTOP.
    Pause {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// SIGCONT.
    Resume {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Stop, then start again.
    Restart {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Restart every node of a role one at a time, the next once the
    /// previous takes work again (the control room's `R`).
    RollingRestart {
        /// The role.
        role: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Start a canary of a role: one more node with `args` on top of the
    /// role's, rolled back (stopped) when more than `max_error_rate` of its
    /// work fails, promoted after `window_s` (the control room's `C`).
    Canary {
        /// The role.
        role: String,
        /// Its arguments beyond the role's, e.g. `["--error-rate", "0.3"]`.
        #[serde(default)]
        args: Vec<String>,
        /// Seconds it is watched before it is promoted.
        #[serde(default = "default_window")]
        window_s: f64,
        /// The share of failed work above which it is rolled back.
        #[serde(default = "default_max_error_rate")]
        max_error_rate: f64,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Run `to` nodes of a role (starting or stopping the newest).
    Scale {
        /// The role.
        role: String,
        /// How many should run.
        to: u32,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Replace a node's injected faults.
    Fault {
        /// Node id.
        node: String,
        /// The faults (the fault menu's fields).
        faults: Faults,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Replace the network faults on one of a node's links (the fault
    /// proxy's toxics: latency, bandwidth, timeout, reset_peer, slicer,
    /// down, partition); `toxics = []` heals the link.
    Network {
        /// Node id.
        node: String,
        /// The link: `broker` (the default), a service it calls (`payment`),
        /// or `api`, the calls others make to it (delivery's recalls).
        #[serde(default = "broker_link")]
        link: String,
        /// The toxics, e.g. `[{ type = "partition" }]`.
        #[serde(default)]
        toxics: Vec<crate::model::network::Toxic>,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Back up a node's data (`pizza-node backup`, online) into
    /// `<data-dir>/backups/<id>/`; the step waits until it is written.
    Backup {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Delete a stopped node's data directory: a lost disk.
    Destroy {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Restore a stopped node's data from its newest backup.
    Restore {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Clear a node's faults.
    ClearFaults {
        /// Node id.
        node: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Place orders as a customer would.
    Place {
        /// How many.
        count: u32,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Cancel an order this scenario placed (`DELETE /orders/{id}`).
    Cancel {
        /// Which: 1 is the first order placed, -1 the latest.
        order: i64,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Move every dead letter of a queue back onto it.
    Requeue {
        /// The queue (not the DLQ name).
        queue: String,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Wait until a condition holds; fail the scenario after `timeout_s`.
    Wait {
        /// The condition: see [`Until`] for each one's fields.
        until: UntilKind,
        /// For `delivered`, `state`, `queue_ready`, `dlq`, `consuming`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
        /// For `queue_ready`, `dlq`, `consuming`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// For `state` (an order state), `node` and `breaker`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        /// For `node`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// Give up after this many seconds.
        #[serde(default = "default_timeout")]
        timeout_s: f64,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Let time pass.
    Sleep {
        /// Seconds.
        seconds: f64,
        /// Shown while the step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
}

fn default_window() -> f64 {
    30.0
}

fn default_max_error_rate() -> f64 {
    0.05
}

fn broker_link() -> String {
    crate::model::network::BROKER_LINK.into()
}

fn default_timeout() -> f64 {
    30.0
}

/// The name of a `wait` step's condition (`until = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UntilKind {
    /// See [`Until::Delivered`].
    Delivered,
    /// See [`Until::Ended`].
    Ended,
    /// See [`Until::State`].
    State,
    /// See [`Until::QueueReady`].
    QueueReady,
    /// See [`Until::Dlq`].
    Dlq,
    /// See [`Until::Consuming`].
    Consuming,
    /// See [`Until::Node`].
    Node,
    /// See [`Until::Breaker`].
    Breaker,
    /// See [`Until::Canary`].
    Canary,
}

/// What a `wait` step waits for, with its fields checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// At least `count` orders delivered.
    Delivered {
        /// How many.
        count: u64,
    },
    /// Every order this scenario placed has ended (delivered, cancelled,
    /// rejected or failed).
    Ended,
    /// At least `count` orders in `state`.
    State {
        /// The order state, e.g. `cooking`.
        state: String,
        /// How many.
        count: u64,
    },
    /// At least `count` messages ready on `queue`.
    QueueReady {
        /// The queue.
        queue: String,
        /// How many.
        count: u64,
    },
    /// At least `count` dead letters in `queue`'s DLQ.
    Dlq {
        /// The queue (not the DLQ name).
        queue: String,
        /// How many.
        count: u64,
    },
    /// At least `count` online consumers with credit on `queue`.
    Consuming {
        /// The queue.
        queue: String,
        /// How many.
        count: u64,
    },
    /// A node shows `state` as the Nodes panel does (prefix match, so
    /// `crashed` matches `crashed (SIGKILL)`).
    Node {
        /// Node id.
        node: String,
        /// E.g. `up`, `down`, `crashed`, `paused`.
        state: String,
    },
    /// The order node's circuit breaker is in `state` (`open`, `closed`,
    /// `half_open`).
    Breaker {
        /// The breaker state.
        state: String,
    },
    /// The latest canary is in `state`: `watching`, `rolled_back` or
    /// `promoted`.
    Canary {
        /// The canary's stage.
        state: String,
    },
}

impl Until {
    /// The condition of a `wait` step, or what field it lacks.
    pub fn of(
        kind: UntilKind,
        count: Option<u64>,
        queue: Option<&str>,
        state: Option<&str>,
        node: Option<&str>,
    ) -> Result<Until, String> {
        // The name as written in the file (`queue_ready`), not the Rust one.
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let need = |what: &str| format!("wait until {name} needs `{what}`");
        let count = || count.ok_or_else(|| need("count"));
        let queue = || queue.map(str::to_string).ok_or_else(|| need("queue"));
        let state = || state.map(str::to_string).ok_or_else(|| need("state"));
        Ok(match kind {
            UntilKind::Delivered => Until::Delivered { count: count()? },
            UntilKind::Ended => Until::Ended,
            UntilKind::State => Until::State {
                state: state()?,
                count: count()?,
            },
            UntilKind::QueueReady => {
                let (queue, count) = (queue()?, count()?);
                Until::QueueReady { queue, count }
            }
            UntilKind::Dlq => {
                let (queue, count) = (queue()?, count()?);
                Until::Dlq { queue, count }
            }
            UntilKind::Consuming => {
                let (queue, count) = (queue()?, count()?);
                Until::Consuming { queue, count }
            }
            UntilKind::Node => Until::Node {
                node: node.map(str::to_string).ok_or_else(|| need("node"))?,
                state: state()?,
            },
            UntilKind::Breaker => Until::Breaker { state: state()? },
            UntilKind::Canary => Until::Canary { state: state()? },
        })
    }
}

impl Step {
    /// The step for a storage operation on `node`.
    pub fn of_storage(op: crate::msg::StorageOp, node: String) -> Step {
        use crate::msg::StorageOp;
        match op {
            StorageOp::Backup => Step::Backup { node, caption: None },
            StorageOp::Destroy => Step::Destroy { node, caption: None },
            StorageOp::Restore => Step::Restore { node, caption: None },
        }
    }

    /// What a storage step does, and to which node.
    pub fn storage(&self) -> Option<(crate::msg::StorageOp, &str)> {
        use crate::msg::StorageOp;
        match self {
            Step::Backup { node, .. } => Some((StorageOp::Backup, node)),
            Step::Destroy { node, .. } => Some((StorageOp::Destroy, node)),
            Step::Restore { node, .. } => Some((StorageOp::Restore, node)),
            _ => None,
        }
    }

    /// A `wait` step's condition (`None` for other steps, or a `wait`
    /// missing a field, which [`Scenario::parse`] refuses).
    pub fn until(&self) -> Option<Until> {
        self.condition()?.ok()
    }

    /// A `wait` step's condition, or what field it lacks; `None` for other
    /// steps.
    fn condition(&self) -> Option<Result<Until, String>> {
        let Step::Wait {
            until,
            count,
            queue,
            state,
            node,
            ..
        } = self
        else {
            return None;
        };
        Some(Until::of(
            *until,
            *count,
            queue.as_deref(),
            state.as_deref(),
            node.as_deref(),
        ))
    }
}

/// An expectation checked at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "that", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// Exactly `count` orders delivered.
    Delivered {
        /// How many.
        count: u64,
    },
    /// Exactly `count` orders in `state`.
    State {
        /// The order state.
        state: String,
        /// How many.
        count: u64,
    },
    /// Every order accepted (201) ended delivered, cancelled or rejected:
    /// none is stuck or failed.
    NoneLost,
    /// No order was cooked to the end twice (two `order.ready` events).
    NoneCookedTwice,
    /// `node` finished cooking at least `at_least` orders.
    KitchenCooked {
        /// Kitchen id.
        node: String,
        /// At least this many.
        at_least: u64,
    },
    /// Every kitchen that cooked anything, and every kitchen listed, cooked
    /// at least `at_least` orders.
    EachKitchenCooked {
        /// Kitchens that must have worked.
        kitchens: Vec<String>,
        /// At least this many each.
        at_least: u64,
    },
    /// The order node's circuit breaker opened at some point.
    BreakerOpened,
    /// At least `at_least` messages of `queue` were dead-lettered.
    DeadLettered {
        /// The queue.
        queue: String,
        /// At least this many.
        at_least: u64,
    },
    /// At least `at_least` orders were refused with HTTP `status`.
    Refused {
        /// E.g. 503.
        status: u16,
        /// At least this many.
        at_least: u64,
    },
    /// The order node released at least `at_least` events it had held
    /// back behind a gap (its `released_total` figure): disorder happened
    /// and was repaired.
    Reordered {
        /// At least this many.
        at_least: u64,
    },
    /// At least `at_least` alerts (red lines) were raised.
    Alerts {
        /// At least this many.
        at_least: u64,
    },
}

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read the scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for the format.
    #[error("scenario {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What toml said (it names the key and the line).
        message: String,
    },
    /// Valid TOML, but it does not make sense.
    #[error("scenario {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, and how to fix it.
        message: String,
    },
}

impl Scenario {
    /// Parses and checks a scenario; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        s.check().map_err(|message| ScenarioError::Invalid {
            path: path.to_string(),
            message,
        })?;
        Ok(s)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        Scenario::parse(&text, &shown)
    }

    /// The platform it runs on.
    pub fn topology(&self) -> Result<Topology, String> {
        if self.nodes.is_empty() {
            return Topology::parse(crate::topology::DEFAULT).map_err(|e| e.to_string());
        }
        let text = toml::to_string(&TopologyFile {
            node: self.nodes.clone(),
        })
        .map_err(|e| e.to_string())?;
        Topology::parse(&text).map_err(|e| e.to_string())
    }

    fn check(&self) -> Result<(), String> {
        let topology = self.topology()?;
        let known = |id: &str| topology.nodes.iter().any(|n| n.id == id) || scaled_id(id);
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            let bad_node = |id: &str| format!("step {n}: no node '{id}' in the scenario's platform");
            match step {
                Step::Start { node, .. }
                | Step::Stop { node, .. }
                | Step::Kill { node, .. }
                | Step::Pause { node, .. }
                | Step::Resume { node, .. }
                | Step::Restart { node, .. }
                | Step::Fault { node, .. }
                | Step::ClearFaults { node, .. }
                | Step::Network { node, .. }
                | Step::Backup { node, .. }
                | Step::Destroy { node, .. }
                | Step::Restore { node, .. }
                    if !known(node) =>
                {
                    return Err(bad_node(node))
                }
                Step::Canary {
                    window_s,
                    max_error_rate,
                    ..
                } if !(window_s.is_finite() && *window_s > 0.0 && (0.0..=1.0).contains(max_error_rate)) => {
                    return Err(format!(
                        "step {n}: a canary needs window_s above 0 and max_error_rate within 0..=1"
                    ))
                }
                Step::Scale { role, .. } | Step::RollingRestart { role, .. } | Step::Canary { role, .. } => {
                    match Role::parse(role) {
                        Some(r) if r.scales() => {}
                        _ => {
                            return Err(format!(
                                "step {n}: role '{role}' does not scale (kitchen, delivery, payment do)"
                            ))
                        }
                    }
                }
                Step::Fault { faults, .. } => {
                    faults.validate().map_err(|why| format!("step {n}: {why}"))?;
                }
                Step::Network { link, toxics, .. } => {
                    let named = [crate::model::network::BROKER_LINK, crate::supervisor::API_LINK];
                    if !named.contains(&link.as_str()) && Role::parse(link).is_none() {
                        return Err(format!(
                            "step {n}: link '{link}' is neither `broker`, `api` nor a service a node calls (e.g. `payment`)"
                        ));
                    }
                    for t in toxics {
                        t.validate().map_err(|why| format!("step {n}: {why}"))?;
                    }
                }
                Step::Cancel { order: 0, .. } => {
                    return Err(format!(
                        "step {n}: order 0 names no order: 1 is the first placed, -1 the latest"
                    ))
                }
                Step::Wait { timeout_s, .. }
                | Step::Sleep {
                    seconds: timeout_s, ..
                } if !(timeout_s.is_finite() && *timeout_s >= 0.0) => {
                    return Err(format!(
                        "step {n}: a duration must be a positive number of seconds"
                    ))
                }
                wait @ Step::Wait { .. } => {
                    if let Some(Err(e)) = wait.condition() {
                        return Err(format!("step {n}: {e}"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `kitchen-3`: a node a `scale` step may start.
fn scaled_id(id: &str) -> bool {
    id.rsplit_once('-')
        .is_some_and(|(role, n)| Role::parse(role).is_some() && n.parse::<u32>().is_ok())
}

#[derive(Serialize)]
struct TopologyFile {
    node: Vec<NodeSpec>,
}

impl Step {
    /// The caption shown while it runs, if any.
    pub fn caption(&self) -> Option<&str> {
        match self {
            Step::Caption { text } => Some(text),
            Step::Start { caption, .. }
            | Step::Stop { caption, .. }
            | Step::Kill { caption, .. }
            | Step::Pause { caption, .. }
            | Step::Resume { caption, .. }
            | Step::Restart { caption, .. }
            | Step::RollingRestart { caption, .. }
            | Step::Scale { caption, .. }
            | Step::Fault { caption, .. }
            | Step::ClearFaults { caption, .. }
            | Step::Network { caption, .. }
            | Step::Canary { caption, .. }
            | Step::Backup { caption, .. }
            | Step::Destroy { caption, .. }
            | Step::Restore { caption, .. }
            | Step::Place { caption, .. }
            | Step::Cancel { caption, .. }
            | Step::Requeue { caption, .. }
            | Step::Wait { caption, .. }
            | Step::Sleep { caption, .. } => caption.as_deref(),
        }
    }

    /// What it does, in a few words: `kill -9 kitchen-1`.
    pub fn describe(&self) -> String {
        match self {
            Step::Caption { .. } => "caption".into(),
            Step::Start { node, .. } => format!("start {node}"),
            Step::Stop { node, .. } => format!("stop {node}"),
            Step::Kill { node, .. } => format!("kill -9 {node}"),
            Step::Pause { node, .. } => format!("pause {node}"),
            Step::Resume { node, .. } => format!("resume {node}"),
            Step::Restart { node, .. } => format!("restart {node}"),
            Step::RollingRestart { role, .. } => format!("rolling restart of {role}"),
            Step::Scale { role, to, .. } => format!("scale {role} to {to}"),
            Step::Fault { node, faults, .. } => format!("faults on {node}: {}", faults_text(faults)),
            Step::ClearFaults { node, .. } => format!("clear faults on {node}"),
            Step::Backup { node, .. } => format!("back up {node}"),
            Step::Destroy { node, .. } => format!("destroy {node}'s data directory"),
            Step::Restore { node, .. } => format!("restore {node} from its newest backup"),
            Step::Canary { role, args, .. } => format!("a canary of {role} with {}", args.join(" ")),
            Step::Network {
                node, link, toxics, ..
            } => match crate::model::network::describe(link, toxics) {
                Some(what) => format!("network of {node}: {what}"),
                None => format!("heal {node} → {link}"),
            },
            Step::Place { count, .. } => format!("place {count} order(s)"),
            Step::Cancel { order, .. } => format!("cancel order #{order}"),
            Step::Requeue { queue, .. } => format!("re-queue the dead letters of {queue}"),
            Step::Wait { timeout_s, .. } => match self.until() {
                Some(until) => format!("wait until {} (≤ {timeout_s} s)", until.describe()),
                None => "wait".into(),
            },
            Step::Sleep { seconds, .. } => format!("sleep {seconds} s"),
        }
    }
}

/// `error_rate 1, out_of_stock basil`.
pub fn faults_text(f: &Faults) -> String {
    let mut parts = Vec::new();
    if f.latency_ms > 0 {
        parts.push(format!("latency {} ms", f.latency_ms));
    }
    for (name, v) in [
        ("error_rate", f.error_rate),
        ("drop_rate", f.drop_rate),
        ("duplicate_rate", f.duplicate_rate),
        ("reorder_rate", f.reorder_rate),
    ] {
        if v > 0.0 {
            parts.push(format!("{name} {v}"));
        }
    }
    if f.reorder_rate > 0.0 && f.reorder_window_ms > 0 {
        parts.push(format!("reorder_window_ms {}", f.reorder_window_ms));
    }
    if f.paused {
        parts.push("paused".into());
    }
    if !f.out_of_stock.is_empty() {
        parts.push(format!("out_of_stock {}", f.out_of_stock.join(" ")));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

impl Until {
    /// `5 orders delivered`.
    pub fn describe(&self) -> String {
        match self {
            Until::Delivered { count } => format!("{count} orders delivered"),
            Until::Ended => "every order placed has ended".into(),
            Until::State { state, count } => format!("{count} orders {state}"),
            Until::QueueReady { queue, count } => format!("{count} ready on queue {queue}"),
            Until::Dlq { queue, count } => format!("{count} in {queue}'s DLQ"),
            Until::Consuming { queue, count } => format!("{count} consumers on {queue}"),
            Until::Node { node, state } => format!("{node} is {state}"),
            Until::Breaker { state } => format!("the breaker is {state}"),
            Until::Canary { state } => format!("the canary is {state}"),
        }
    }
}

impl Expect {
    /// `5 orders delivered`.
    pub fn describe(&self) -> String {
        match self {
            Expect::Delivered { count } => format!("{count} orders delivered"),
            Expect::State { state, count } => format!("{count} orders {state}"),
            Expect::NoneLost => "no accepted order lost".into(),
            Expect::NoneCookedTwice => "no order cooked twice".into(),
            Expect::KitchenCooked { node, at_least } => format!("{node} cooked at least {at_least}"),
            Expect::EachKitchenCooked { kitchens, at_least } => {
                format!("{} each cooked at least {at_least}", kitchens.join(", "))
            }
            Expect::BreakerOpened => "the circuit breaker opened".into(),
            Expect::DeadLettered { queue, at_least } => {
                format!("at least {at_least} dead-lettered on {queue}")
            }
            Expect::Refused { status, at_least } => format!("at least {at_least} refused with {status}"),
            Expect::Reordered { at_least } => format!("at least {at_least} events held back and released"),
            Expect::Alerts { at_least } => format!("at least {at_least} alert(s)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
name = "buffering"
proves = "orders wait"

[[step]]
do = "stop"
node = "kitchen-1"
caption = "close"

[[step]]
do = "fault"
node = "kitchen-2"
faults = { error_rate = 1.0, out_of_stock = ["basil"] }

[[step]]
do = "wait"
until = "queue_ready"
queue = "kitchen"
count = 5
timeout_s = 20

[[step]]
do = "place"
count = 5

[[expect]]
that = "delivered"
count = 5

[[expect]]
that = "none_lost"
"#;

    #[test]
    fn parses_steps_waits_and_expectations() {
        let s = Scenario::parse(SAMPLE, "t").unwrap();
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.steps[0].caption(), Some("close"));
        assert_eq!(
            s.steps[2].until(),
            Some(Until::QueueReady {
                queue: "kitchen".into(),
                count: 5
            })
        );
        assert_eq!(
            s.steps[2].describe(),
            "wait until 5 ready on queue kitchen (≤ 20 s)"
        );
        assert_eq!(
            s.steps[1].describe(),
            "faults on kitchen-2: error_rate 1, out_of_stock basil"
        );
        assert_eq!(s.expect, vec![Expect::Delivered { count: 5 }, Expect::NoneLost]);
        assert_eq!(s.topology().unwrap().nodes.len(), 6, "the default platform");
    }

    #[test]
    fn a_misspelt_key_an_unknown_node_or_action_is_an_error_that_names_it() {
        let typo = SAMPLE.replace("timeout_s = 20", "timout_s = 20");
        let e = Scenario::parse(&typo, "t").unwrap_err().to_string();
        assert!(e.contains("timout_s"), "{e}");
        let node = SAMPLE.replace("node = \"kitchen-1\"", "node = \"oven-1\"");
        let e = Scenario::parse(&node, "t").unwrap_err().to_string();
        assert!(e.contains("step 1: no node 'oven-1'"), "{e}");
        let action = SAMPLE.replace("do = \"place\"", "do = \"bake\"");
        let e = Scenario::parse(&action, "t").unwrap_err().to_string();
        assert!(e.contains("bake"), "{e}");
        let missing = SAMPLE.replace("queue = \"kitchen\"\n", "");
        let e = Scenario::parse(&missing, "t").unwrap_err().to_string();
        assert!(e.contains("step 3: wait until queue_ready needs `queue`"), "{e}");
    }

    #[test]
    fn a_network_step_names_its_link_and_checks_its_toxics() {
        let step = |body: &str| {
            format!("name = \"n\"\nproves = \"p\"\n\n[[step]]\ndo = \"network\"\nnode = \"kitchen-1\"\n{body}\n\n[[expect]]\nthat = \"none_lost\"\n")
        };
        let s = Scenario::parse(&step(r#"toxics = [{ type = "partition" }]"#), "t").unwrap();
        assert_eq!(s.steps[0].describe(), "network of kitchen-1: broker: partition");
        let s = Scenario::parse(&step("link = \"payment\""), "t").unwrap();
        assert_eq!(s.steps[0].describe(), "heal kitchen-1 → payment");
        let e = Scenario::parse(&step("link = \"oven\""), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("step 1: link 'oven'"), "{e}");
        let bad = step(r#"toxics = [{ type = "latency", ms = 10, toxicity = 3.0 }]"#);
        let e = Scenario::parse(&bad, "t").unwrap_err().to_string();
        assert!(e.contains("step 1: toxicity"), "{e}");
        let text = toml::to_string(
            &Scenario::parse(&step(r#"toxics = [{ type = "timeout", ms = 5 }]"#), "t").unwrap(),
        )
        .unwrap();
        assert_eq!(
            Scenario::parse(&text, "t").unwrap().steps[0].describe(),
            "network of kitchen-1: broker: black hole"
        );
    }

    #[test]
    fn a_scenario_round_trips_through_toml() {
        let s = Scenario::parse(SAMPLE, "t").unwrap();
        let text = toml::to_string(&s).unwrap();
        assert_eq!(Scenario::parse(&text, "again").unwrap(), s);
    }
}
