//! A rolling restart (`R` on a node): every node of its role restarted one
//! at a time, the next only once the previous is up and taking work again,
//! so that never fewer than n−1 of them serve.
//!
//! Plain data beside the model, like the scenario player: `observe` reads
//! the keeper's reports, `advance` looks at the model after each message
//! and answers with the restarts.

use time::OffsetDateTime;

use crate::model::{Level, Model, Proc, Shown};
use crate::msg::{Effect, Msg};
use crate::topology::Role;

/// How long one node may take to be back at work before the rollout stops
/// (and leaves the rest alone).
pub const NODE_TIMEOUT_S: i64 = 60;

/// One node being restarted.
#[derive(Debug, Clone, PartialEq)]
struct Current {
    id: String,
    since: OffsetDateTime,
    /// It has been seen going down: from now on "up" is the new process.
    went_down: bool,
    /// The new process is up (heard from).
    up_again: bool,
    /// A report of the keeper's since then lists it with credit: back at
    /// work. (A report from before could still carry the old process's
    /// credit.)
    consuming: bool,
}

/// A rolling restart in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// The role rolled.
    pub role: Role,
    /// Still to restart, in order.
    left: Vec<String>,
    current: Option<Current>,
    /// How many it had to do.
    pub total: usize,
    /// Over: done, or stopped by a node that did not come back.
    pub over: bool,
}

impl Rollout {
    /// Every running node of `role` started here, in id order.
    pub fn of(m: &Model, role: Role) -> Rollout {
        let left: Vec<String> = crate::model::nodes::running(&m.nodes, role.as_str(), m.now)
            .filter(|n| n.owned)
            .map(|n| n.id.clone())
            .collect();
        Rollout {
            role,
            total: left.len(),
            left,
            current: None,
            over: false,
        }
    }

    /// The node being restarted now, and how many are done.
    pub fn progress(&self) -> (Option<&str>, usize) {
        let done = self.total - self.left.len() - usize::from(self.current.is_some());
        (self.current.as_ref().map(|c| c.id.as_str()), done)
    }

    /// Notes a report of the keeper's (before `update`).
    pub fn observe(&mut self, msg: &Msg) {
        let (Some(c), Msg::Stats(stats), Some(queue)) = (&mut self.current, msg, self.role.consumes()) else {
            return;
        };
        if !c.up_again {
            return;
        }
        c.consuming |= stats
            .queues
            .iter()
            .filter(|q| q.name == queue)
            .flat_map(|q| &q.consumers)
            .any(|k| k.id == c.id && k.online && k.credit > 0);
    }

    /// What to do now.
    pub fn advance(&mut self, m: &mut Model) -> Vec<Effect> {
        if self.over {
            return Vec::new();
        }
        if let Some(c) = &mut self.current {
            let Some(row) = m.nodes.get(&c.id) else {
                self.current = None;
                return Vec::new();
            };
            let shown = row.shown(m.now);
            if !matches!(row.proc, Some(Proc::Running)) || shown != Shown::Up {
                c.went_down = true;
            } else if c.went_down {
                c.up_again = true;
            }
            let back = c.up_again && (c.consuming || self.role.consumes().is_none());
            if back {
                let id = c.id.clone();
                self.current = None;
                let done = self.total - self.left.len();
                let text = format!("{id} is back at work ({done}/{})", self.total);
                log(m, self.role, Level::Info, text);
            } else if (m.now - c.since).whole_seconds() > NODE_TIMEOUT_S {
                let text = format!(
                    "stopped: {} did not come back within {NODE_TIMEOUT_S} s; {} left as they are",
                    c.id,
                    self.left.len()
                );
                self.over = true;
                log(m, self.role, Level::Alert, text);
                return Vec::new();
            } else {
                return Vec::new();
            }
        }
        if self.left.is_empty() {
            self.over = true;
            let text = format!("done, {} restarted", self.total);
            log(m, self.role, Level::Info, text);
            return Vec::new();
        }
        let id = self.left.remove(0);
        let n = self.total - self.left.len();
        let text = format!("restarting {id} ({n}/{})", self.total);
        log(m, self.role, Level::Warn, text);
        self.current = Some(Current {
            id: id.clone(),
            since: m.now,
            went_down: false,
            up_again: false,
            consuming: false,
        });
        m.dirty = true;
        vec![Effect::Restart(id)]
    }
}

/// A line in the Events panel.
pub fn log(m: &mut Model, role: Role, level: Level, text: String) {
    m.log
        .push(m.now, level, format!("rolling restart of {role}: {text}"));
    m.dirty = true;
}
