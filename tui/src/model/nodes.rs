//! The Nodes panel's data: what the supervisor knows of each process, merged
//! with what the node says of itself in its heartbeat.

use std::collections::BTreeMap;

use contracts::api::DriverView;
use contracts::status::{BreakerState, Figures, NodeState, NodeStatus};
use time::OffsetDateTime;

/// Work samples kept: one per heartbeat (every second), so a minute.
pub const WORK_SAMPLES: usize = 60;

/// A heartbeat older than this means the node is not answering.
pub const STALE_AFTER: time::Duration = time::Duration::seconds(3);

/// The process as the supervisor sees it (only for nodes started here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proc {
    /// Spawned; no heartbeat yet.
    Starting,
    /// Running (heartbeats decide the rest).
    Running,
    /// SIGSTOPped by the operator.
    Frozen,
    /// Asked to stop; not exited yet.
    Stopping,
    /// Exited.
    Exited {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal, if one ended it.
        signal: Option<i32>,
        /// Whether the control room asked for it.
        expected: bool,
    },
    /// Could not be started.
    Failed(String),
}

/// What the Nodes panel shows as a node's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Started, not heard from yet.
    Starting,
    /// Working.
    Up,
    /// Frozen by the operator (SIGSTOP): the process does not run at all.
    Frozen,
    /// On hold: running and connected, deliberately taking no work (the
    /// "take no work" fault). A different word from frozen on purpose.
    Paused,
    /// Finishing before it exits.
    Stopping,
    /// Stopped on purpose, or gone quietly.
    Down,
    /// Ended without being asked; the text says how.
    Crashed(String),
    /// Its process runs but it does not reach the broker.
    Offline,
}

impl Shown {
    /// The text in the state column.
    pub fn label(&self) -> String {
        match self {
            Shown::Starting => "starting".into(),
            Shown::Up => "up".into(),
            Shown::Frozen => "frozen".into(),
            Shown::Paused => "on hold".into(),
            Shown::Stopping => "stopping".into(),
            Shown::Down => "down".into(),
            Shown::Crashed(how) => format!("crashed ({how})"),
            Shown::Offline => "offline".into(),
        }
    }

    /// Whether the node runs (can be stopped, paused, killed).
    pub fn is_alive(&self) -> bool {
        !matches!(self, Shown::Down | Shown::Crashed(_))
    }
}

/// One row of the Nodes panel.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Node id.
    pub id: String,
    /// Role name.
    pub role: String,
    /// Started by this control room (so it can be killed, frozen, restarted).
    pub owned: bool,
    /// OS pid, from the supervisor or the heartbeat.
    pub pid: Option<u32>,
    /// The supervisor's view, for owned nodes.
    pub proc: Option<Proc>,
    /// The latest heartbeat.
    pub status: Option<NodeStatus>,
    /// When that heartbeat arrived.
    pub heard_at: Option<OffsetDateTime>,
    /// Since when the current process runs.
    pub since: Option<OffsetDateTime>,
    /// Where its Prometheus `/metrics` is, as the supervisor started it.
    pub metrics: Option<String>,
    /// Messages handled per second, from the last two heartbeats.
    pub rate: f64,
    /// Messages handled between heartbeats over the last minute, oldest
    /// first: the Nodes panel's work sparkline.
    pub work: std::collections::VecDeque<u64>,
    /// Its links through the control room's fault proxy (`broker`, the
    /// services it calls); none with `--direct`, or for a node not ours.
    pub links: Vec<String>,
    /// The network faults on those links now, by link.
    pub network: std::collections::BTreeMap<String, Vec<super::network::Toxic>>,
    rated: bool,
    last_count: Option<(OffsetDateTime, u64)>,
}

impl NodeRow {
    /// Whether its data directory is this control room's to back up: a
    /// node it started, not an external program with data of its own.
    pub fn data_here(&self) -> bool {
        self.owned && crate::topology::Role::parse(&self.role) != Some(crate::topology::Role::External)
    }

    /// Whether this is a broker (ours or an external one): no heartbeat,
    /// no injected faults; it starts first and stops last.
    pub fn carries_messages(&self) -> bool {
        crate::topology::Role::parse(&self.role).is_some_and(|r| r.carries_messages())
    }

    /// Where its `/metrics` is: as started here, or as its heartbeat says
    /// (a node another control room or a person started).
    pub fn metrics_url(&self) -> Option<&str> {
        self.metrics
            .as_deref()
            .or_else(|| self.figures()?.metrics.as_deref())
    }

    /// A row for a node known only by id and role so far.
    pub fn new(id: &str, role: &str, owned: bool) -> NodeRow {
        NodeRow {
            id: id.to_string(),
            role: role.to_string(),
            owned,
            pid: None,
            proc: None,
            status: None,
            heard_at: None,
            since: None,
            metrics: None,
            rate: 0.0,
            work: std::collections::VecDeque::new(),
            links: Vec::new(),
            network: Default::default(),
            rated: false,
            last_count: None,
        }
    }

    /// Takes a heartbeat in.
    pub fn heard(&mut self, status: NodeStatus, now: OffsetDateTime) {
        let at = parse_time(&status.at).unwrap_or(now);
        if status.state == NodeState::Offline {
            self.rate = 0.0;
            self.rated = false;
            self.last_count = None;
        } else {
            if let Some((then, count)) = self.last_count {
                if status.handled >= count {
                    if self.work.len() == WORK_SAMPLES {
                        self.work.pop_front();
                    }
                    self.work.push_back(status.handled - count);
                }
                let secs = (at - then).as_seconds_f64();
                if secs > 0.2 && status.handled >= count {
                    let now = (status.handled - count) as f64 / secs;
                    // Smoothed over about 5 s, like the keeper's queue rates:
                    // a kitchen finishing one pizza every few seconds would
                    // otherwise flicker between 0 and 1/s.
                    self.rate = match self.rated {
                        false => now,
                        true => self.rate + (1.0 - (-secs / 5.0).exp()) * (now - self.rate),
                    };
                    self.rated = true;
                }
            }
            self.last_count = Some((at, status.handled));
            if status.pid != 0 {
                self.pid = Some(status.pid);
            }
            if self.since.is_none() {
                self.since = parse_time(&status.started_at);
            }
            if self.proc == Some(Proc::Starting) {
                self.proc = Some(Proc::Running);
            }
        }
        self.heard_at = Some(now);
        self.status = Some(status);
    }

    /// The state to show at `now`.
    pub fn shown(&self, now: OffsetDateTime) -> Shown {
        let beat = self.status.as_ref().map(|s| s.state);
        let stale = self.heard_at.is_none_or(|t| now - t > STALE_AFTER);
        match &self.proc {
            Some(Proc::Starting) => Shown::Starting,
            Some(Proc::Frozen) => Shown::Frozen,
            Some(Proc::Stopping) => Shown::Stopping,
            Some(Proc::Exited { expected: true, .. }) => Shown::Down,
            Some(Proc::Exited { code, signal, .. }) => Shown::Crashed(exit_text(*code, *signal)),
            Some(Proc::Failed(_)) => Shown::Crashed("did not start".into()),
            // A broker has no heartbeat; its process running is all there is.
            Some(Proc::Running) if self.carries_messages() => Shown::Up,
            Some(Proc::Running) => match beat {
                Some(NodeState::Paused) => Shown::Paused,
                Some(NodeState::Stopping) => Shown::Stopping,
                Some(NodeState::Up) if !stale => Shown::Up,
                _ => Shown::Offline,
            },
            None => match (beat, self.status.as_ref().map(|s| s.pid)) {
                (Some(NodeState::Up), _) if !stale => Shown::Up,
                (Some(NodeState::Paused), _) => Shown::Paused,
                (Some(NodeState::Stopping), _) => Shown::Stopping,
                // The broker publishes the last will (pid 0) for a dead connection.
                (Some(NodeState::Offline), Some(0)) => Shown::Crashed("connection lost".into()),
                (Some(NodeState::Offline), _) => Shown::Down,
                _ => Shown::Offline,
            },
        }
    }

    /// Active faults as a short text ("" when none); an open breaker counts
    /// down to its half-open trial at `now`.
    pub fn faults_text(&self, now: OffsetDateTime) -> String {
        // The network first: it is the control room's own doing, known
        // even while the node cannot be heard.
        let mut parts: Vec<String> = self
            .network
            .iter()
            .filter_map(|(link, toxics)| super::network::describe(link, toxics))
            .collect();
        let Some(s) = &self.status else {
            return parts.join(" ");
        };
        let f = &s.faults;
        if f.latency_ms > 0 {
            parts.push(format!("+{}ms", f.latency_ms));
        }
        if f.error_rate > 0.0 {
            parts.push(format!("err {:.0}%", f.error_rate * 100.0));
        }
        if f.drop_rate > 0.0 {
            parts.push(format!("drop {:.0}%", f.drop_rate * 100.0));
        }
        if f.duplicate_rate > 0.0 {
            parts.push(format!("dup {:.0}%", f.duplicate_rate * 100.0));
        }
        if f.reorder_rate > 0.0 {
            parts.push(format!("reorder {:.0}%", f.reorder_rate * 100.0));
        }
        if f.paused {
            parts.push("on hold".into());
        }
        if !f.out_of_stock.is_empty() {
            parts.push(format!("no {}", f.out_of_stock.join(",")));
        }
        let order = self.figures().map(|f| &f.order);
        if let Some(b) = order
            .and_then(|o| o.breaker)
            .filter(|b| *b != BreakerState::Closed)
        {
            // Why a burst still gets 503s: the open window's time left.
            let left = order
                .and_then(|o| o.breaker_half_open_at.as_deref())
                .and_then(parse_time)
                .filter(|_| b == BreakerState::Open)
                .map(|at| format!(" {}s", (at - now).whole_seconds().max(0) + 1))
                .unwrap_or_default();
            let b = b.as_str();
            match order.and_then(|o| o.breaker_rejected).filter(|n| *n > 0) {
                Some(n) => parts.push(format!("breaker {b}{left} ({n} refused)")),
                None => parts.push(format!("breaker {b}{left}")),
            }
        }
        // The order book waiting for a gap in some order's seqs to fill.
        if let Some(n) = order.and_then(|o| o.held_back).filter(|n| *n > 0) {
            parts.push(format!("{n} held"));
        }
        parts.join(" ")
    }

    /// The figures of its last heartbeat.
    pub fn figures(&self) -> Option<&Figures> {
        Some(&self.status.as_ref()?.figures)
    }

    /// Its HTTP API's base URL, as its heartbeat says.
    pub fn http(&self) -> Option<&str> {
        self.figures()?.http.as_deref()
    }

    /// Its order service's breaker state, as its heartbeat says.
    pub fn breaker(&self) -> Option<BreakerState> {
        self.figures()?.order.breaker
    }

    /// The drivers a delivery node reports.
    pub fn drivers(&self) -> Vec<DriverView> {
        self.figures()
            .and_then(|f| f.delivery.drivers.clone())
            .unwrap_or_default()
    }
}

/// "exit 1", "SIGKILL".
pub fn exit_text(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => signal_name(sig),
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "gone".into(),
    }
}

/// Parses RFC 3339, as every timestamp on the wire is.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Every node, by id.
pub type Nodes = BTreeMap<String, NodeRow>;

/// The nodes of `role` that run and are not on their way out: what scaling
/// counts (a second `-` takes the next node, not the one already stopping).
pub fn running<'a>(
    nodes: &'a Nodes,
    role: &'a str,
    now: OffsetDateTime,
) -> impl Iterator<Item = &'a NodeRow> + 'a {
    nodes
        .values()
        .filter(move |n| n.role == role && n.shown(now).is_alive() && n.shown(now) != Shown::Stopping)
}

/// A signal number as people know it.
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        n => format!("signal {n}"),
    }
}
