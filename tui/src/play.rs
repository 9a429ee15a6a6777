//! Playing a [`Scenario`]: plain data stepped by `update`, like the rest of
//! the model, so a whole scenario can be tested without processes.
//!
//! Every message is first [`Play::observe`]d (orders accepted, kitchens'
//! `order.ready`, dead letters, the breaker opening), then, once `update`
//! has applied it, [`Play::advance`] runs the timeline as far as it can and
//! returns the [`Effect`]s of its actions: the same effects the operator's
//! keys produce. A `wait` holds the timeline until its condition holds on
//! the model, or fails the run after its timeout. At the end the
//! expectations are judged into a [`Verdict`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use contracts::events::kind;
use contracts::status::{BreakerState, Control};
use contracts::trust::role;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{Model, Shown};
use crate::msg::{Effect, Msg};
use crate::scenario::{Expect, Scenario, Step, Until};
use crate::topology::Role;

/// Longest wait for the platform to come up before the first step.
pub const STARTUP_TIMEOUT_S: f64 = 90.0;

/// A heartbeat this long after the last step carries the counters of all
/// the work the steps waited for (nodes beat every second).
const SETTLE_AFTER_S: f64 = 1.0;

/// The longest wait for those heartbeats (a frozen node sends none).
const SETTLE_TIMEOUT_S: f64 = 5.0;

/// How long a stopped or killed node may take to exit: the supervisor's
/// grace period, its SIGKILL, and slack for a loaded machine.
const EXIT_TIMEOUT_S: f64 = 30.0;

/// What the scenario saw happen, for waits and expectations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Orders accepted (201), in the order they were placed.
    pub accepted: Vec<String>,
    /// Refusals by HTTP status.
    pub refused: BTreeMap<u16, u64>,
    /// Distinct `order.ready` event ids per order.
    pub ready: HashMap<String, BTreeSet<Uuid>>,
    /// Orders finished per kitchen.
    pub cooked: BTreeMap<String, u64>,
    /// Messages dead-lettered per queue.
    pub dead: BTreeMap<String, u64>,
    /// The breaker was seen open.
    pub breaker_opened: bool,
}

/// One judged expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// What was expected.
    pub expected: String,
    /// Whether it held.
    pub held: bool,
    /// What was seen.
    pub saw: String,
}

/// How the scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The step that failed (timed out), if one did.
    pub failed_step: Option<String>,
    /// Every expectation.
    pub judged: Vec<Judged>,
}

impl Verdict {
    /// Every step ran and every expectation held.
    pub fn passed(&self) -> bool {
        self.failed_step.is_none() && self.judged.iter().all(|j| j.held)
    }
}

/// A scenario being played.
#[derive(Debug, Clone)]
pub struct Play {
    /// The scenario.
    pub scenario: Scenario,
    /// When the run began (the platform starting).
    pub began: OffsetDateTime,
    /// When the first step started (the platform was up); `None` before.
    pub started: Option<OffsetDateTime>,
    /// The current step (== steps.len() once the timeline is done).
    pub step: usize,
    /// When the current step started.
    pub step_since: OffsetDateTime,
    /// The caption on screen.
    pub caption: Option<String>,
    /// A wait's progress, e.g. `3/5`.
    pub progress: String,
    /// What happened.
    pub seen: Observed,
    /// Orders asked for and not answered yet.
    awaiting: u32,
    /// The current storage step's outcome, once the shell reports it.
    stored: Option<Result<String, String>>,
    /// The current step's action was carried out (for steps that then wait).
    acted: bool,
    /// Narration: one line per step started or finished, for `--headless`.
    pub lines: Vec<String>,
    /// When the last step ended: the expectations wait for heartbeats sent
    /// after it (see [`SETTLE_AFTER_S`]).
    settling: Option<OffsetDateTime>,
    /// Set when the run is over.
    pub verdict: Option<Verdict>,
    /// A step with a caption stays on screen at least this long (seconds),
    /// so that people watching can read it; 0 in headless checks.
    pub pace: f64,
}

impl Play {
    /// A scenario about to run; the platform is starting at `now`.
    pub fn new(scenario: Scenario, now: OffsetDateTime) -> Play {
        let lines = vec![format!("scenario {}: {}", scenario.name, scenario.proves)];
        Play {
            scenario,
            began: now,
            started: None,
            step: 0,
            step_since: now,
            caption: Some("Starting the platform…".into()),
            progress: String::new(),
            seen: Observed::default(),
            awaiting: 0,
            stored: None,
            acted: false,
            lines,
            settling: None,
            verdict: None,
            pace: 0.0,
        }
    }

    /// The same, holding each captioned step at least `pace` seconds.
    pub fn paced(mut self, pace: f64) -> Play {
        self.pace = pace.max(0.0);
        self
    }

    /// Notes what a message says, before `update` applies it.
    pub fn observe(&mut self, msg: &Msg) {
        match msg {
            Msg::Storage { outcome, .. } => self.stored = Some(outcome.clone()),
            Msg::Placed(o) => {
                self.awaiting = self.awaiting.saturating_sub(o.requested);
                self.seen.accepted.extend(o.accepted.iter().cloned());
                for (code, n) in &o.refused {
                    let status = code
                        .split_whitespace()
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    *self.seen.refused.entry(status).or_default() += u64::from(*n);
                }
            }
            // A duplicate (same event id) counts once; a second cook does not.
            Msg::Event(e)
                if e.kind == kind::ORDER_READY
                    && self
                        .seen
                        .ready
                        .entry(e.order_id.clone())
                        .or_default()
                        .insert(e.event_id) =>
            {
                *self.seen.cooked.entry(e.source.clone()).or_default() += 1;
            }
            Msg::Event(e) if e.kind == kind::QUEUE_DEAD_LETTERED => {
                if let Ok(d) = contracts::events::decode::<contracts::events::QueueDeadLettered>(e) {
                    *self.seen.dead.entry(d.queue).or_default() += 1;
                }
            }
            Msg::Status(s)
                if s.role == role::ORDER && s.figures.order.breaker == Some(BreakerState::Open) =>
            {
                self.seen.breaker_opened = true;
            }
            _ => {}
        }
    }

    /// Whether the run is over.
    pub fn finished(&self) -> bool {
        self.verdict.is_some()
    }

    /// Runs the timeline as far as the model allows; the effects to carry out.
    pub fn advance(&mut self, m: &Model) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.finished() {
            return effects;
        }
        let now = m.now;
        if self.started.is_none() {
            if platform_up(m) {
                self.started = Some(now);
                self.step_since = now;
                self.caption = None;
                self.lines
                    .push(format!("platform up after {:.1} s", secs(now - self.began)));
            } else if secs(now - self.began) > STARTUP_TIMEOUT_S {
                self.fail(
                    format!("the platform did not come up within {STARTUP_TIMEOUT_S} s"),
                    m,
                );
                return effects;
            } else {
                return effects;
            }
        }
        // Bounded: every step either finishes now or waits for the model.
        while self.step < self.scenario.steps.len() {
            let step = self.scenario.steps[self.step].clone();
            if !self.acted {
                if let Some(c) = step.caption() {
                    self.caption = Some(c.to_string());
                }
                if !matches!(step, Step::Caption { .. }) {
                    self.lines.push(format!(
                        "[{}/{}] {}",
                        self.step + 1,
                        self.scenario.steps.len(),
                        step.describe()
                    ));
                }
                if let Some(c) = step.caption() {
                    self.lines.push(format!("  » {c}"));
                }
                match self.act(&step, m) {
                    Ok(mut more) => effects.append(&mut more),
                    Err(why) => {
                        self.fail(format!("step {} ({}): {why}", self.step + 1, step.describe()), m);
                        return effects;
                    }
                }
                self.acted = true;
                self.step_since = now;
            }
            let readable = step.caption().is_none() || secs(now - self.step_since) >= self.pace;
            match self.done(&step, m) {
                Done::Yes if !readable => return effects,
                Done::Yes => {
                    if matches!(step, Step::Wait { .. }) {
                        self.lines.push(format!(
                            "      ok after {:.1} s ({})",
                            secs(now - self.step_since),
                            self.progress
                        ));
                    }
                    self.step += 1;
                    self.acted = false;
                    self.progress.clear();
                }
                Done::No => return effects,
                Done::TimedOut(why) => {
                    self.fail(format!("step {} timed out: {why}", self.step + 1), m);
                    return effects;
                }
            }
        }
        // Expectations on the nodes' counters (released, cooked) read their
        // heartbeats: judge on beats sent after the last step, not before.
        let since = *self.settling.get_or_insert(now);
        let fresh = m.nodes.values().all(|n| {
            n.status.is_none()
                || !matches!(n.shown(now), crate::model::Shown::Up)
                || n.heard_at.is_some_and(|t| secs(t - since) >= SETTLE_AFTER_S)
        });
        if !fresh && secs(now - since) < SETTLE_TIMEOUT_S {
            return effects;
        }
        let verdict = Verdict {
            failed_step: None,
            judged: self.judge(m),
        };
        self.finish(verdict);
        effects
    }

    fn fail(&mut self, why: String, m: &Model) {
        self.lines.push(format!("FAILED: {why}"));
        let verdict = Verdict {
            failed_step: Some(why),
            judged: self.judge(m),
        };
        self.finish(verdict);
    }

    fn finish(&mut self, verdict: Verdict) {
        self.caption = Some(if verdict.passed() {
            format!("{}: PASSED. esc shows the panels, q quits.", self.scenario.name)
        } else {
            format!("{}: FAILED. esc shows the panels, q quits.", self.scenario.name)
        });
        self.verdict = Some(verdict);
    }

    /// The effects of a step's action.
    fn act(&mut self, step: &Step, m: &Model) -> Result<Vec<Effect>, String> {
        let node_known = |id: &str| {
            if m.nodes.contains_key(id) {
                Ok(id.to_string())
            } else {
                Err(format!("there is no node {id}"))
            }
        };
        Ok(match step {
            Step::Caption { .. } | Step::Wait { .. } | Step::Sleep { .. } => Vec::new(),
            Step::Backup { node, .. } | Step::Destroy { node, .. } | Step::Restore { node, .. } => {
                self.stored = None;
                let op = step.storage().map(|(op, _)| op).ok_or("not a storage step")?;
                vec![Effect::Storage {
                    node: node_known(node)?,
                    op,
                }]
            }
            Step::Start { node, .. } => vec![Effect::Start(node_known(node)?)],
            Step::Stop { node, .. } => vec![Effect::Stop(node_known(node)?)],
            Step::Kill { node, .. } => vec![Effect::Kill(node_known(node)?)],
            Step::Pause { node, .. } => vec![Effect::Freeze(node_known(node)?, true)],
            Step::Resume { node, .. } => vec![Effect::Freeze(node_known(node)?, false)],
            Step::Restart { node, .. } => vec![Effect::Restart(node_known(node)?)],
            Step::Fault { node, faults, .. } => vec![Effect::Control(
                node_known(node)?,
                Control::SetFaults {
                    faults: faults.clone(),
                },
            )],
            Step::ClearFaults { node, .. } => vec![Effect::Control(node_known(node)?, Control::ClearFaults)],
            Step::Network {
                node, link, toxics, ..
            } => vec![Effect::Network {
                node: node_known(node)?,
                link: link.clone(),
                toxics: toxics.clone(),
            }],
            Step::Scale { role, to, .. } => scale(m, role, *to)?,
            // Parsed: a role that scales.
            Step::RollingRestart { role, .. } => match Role::parse(role) {
                Some(role) => vec![Effect::RollingRestart(role)],
                None => return Err(format!("there is no role {role}")),
            },
            // Parsed: a role that scales.
            Step::Canary {
                role,
                args,
                window_s,
                max_error_rate,
                ..
            } => match Role::parse(role) {
                Some(role) => vec![Effect::Canary(crate::canary::CanaryPlan {
                    role,
                    args: args.clone(),
                    window_s: *window_s,
                    max_error_rate: *max_error_rate,
                })],
                None => return Err(format!("there is no role {role}")),
            },
            Step::Place { count, .. } => {
                let url = m.order_url().ok_or("no order service is up to place orders")?;
                self.awaiting += count;
                vec![Effect::PlaceOrders {
                    url,
                    count: *count,
                    quiet: false,
                }]
            }
            Step::Cancel { order, .. } => {
                let n = self.seen.accepted.len() as i64;
                let index = if *order > 0 { order - 1 } else { n + order };
                let id = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.seen.accepted.get(i))
                    .ok_or_else(|| format!("no order #{order}: {n} accepted so far"))?;
                let url = m.order_url().ok_or("no order service is up to cancel through")?;
                vec![Effect::CancelOrder {
                    url,
                    order_id: id.clone(),
                }]
            }
            Step::Requeue { queue, .. } => vec![Effect::Requeue(queue.clone(), None)],
        })
    }

    /// Whether the current step is over.
    fn done(&mut self, step: &Step, m: &Model) -> Done {
        let elapsed = secs(m.now - self.step_since);
        match step {
            Step::Place { .. } => {
                if self.awaiting == 0 {
                    Done::Yes
                } else if elapsed > 60.0 {
                    Done::TimedOut("the order service did not answer within 60 s".into())
                } else {
                    Done::No
                }
            }
            Step::Sleep { seconds, .. } => {
                if elapsed >= *seconds {
                    Done::Yes
                } else {
                    Done::No
                }
            }
            Step::Wait { timeout_s, .. } => {
                let Some(until) = step.until() else {
                    return Done::TimedOut("the wait has no condition".into());
                };
                let (held, progress) = self.check(&until, m);
                self.progress = progress;
                if held {
                    Done::Yes
                } else if elapsed > *timeout_s {
                    Done::TimedOut(format!(
                        "{} within {timeout_s} s (saw {})",
                        until.describe(),
                        self.progress
                    ))
                } else {
                    Done::No
                }
            }
            // A node the next step starts again must be gone first, or the
            // supervisor still holds it and refuses to start it twice.
            Step::Kill { node, .. } | Step::Stop { node, .. } => {
                let alive = m.nodes.get(node).is_some_and(|n| n.shown(m.now).is_alive());
                if !alive {
                    Done::Yes
                } else if elapsed > EXIT_TIMEOUT_S {
                    Done::TimedOut(format!("{node} did not exit within {EXIT_TIMEOUT_S} s"))
                } else {
                    Done::No
                }
            }
            Step::Backup { .. } | Step::Destroy { .. } | Step::Restore { .. } => match &self.stored {
                Some(Ok(_)) => Done::Yes,
                Some(Err(why)) => Done::TimedOut(why.clone()),
                None if elapsed > 60.0 => Done::TimedOut("not done within 60 s".into()),
                None => Done::No,
            },
            _ => Done::Yes,
        }
    }

    /// Whether `until` holds, and what was seen.
    pub fn check(&self, until: &Until, m: &Model) -> (bool, String) {
        let count = |state: &str| m.orders.counts().get(state).copied().unwrap_or(0);
        let queue = |q: &str| m.queues.rows.get(q).map(|r| r.figures.clone());
        match until {
            Until::Delivered { count: n } => {
                let c = count("delivered");
                (c >= *n, format!("{c}/{n} delivered"))
            }
            Until::Ended => {
                let ended = self.ended(m);
                let n = self.seen.accepted.len();
                (ended == n, format!("{ended}/{n} ended"))
            }
            Until::State { state, count: n } => {
                let c = count(state);
                (c >= *n, format!("{c}/{n} {state}"))
            }
            Until::QueueReady { queue: q, count: n } => {
                let c = queue(q).map_or(0, |f| f.ready);
                (c >= *n, format!("{c}/{n} ready on {q}"))
            }
            Until::Dlq { queue: q, count: n } => {
                let c = queue(q).map_or(0, |f| f.dlq);
                (c >= *n, format!("{c}/{n} in {q}.dlq"))
            }
            Until::Consuming { queue: q, count: n } => {
                let c = queue(q).map_or(0, |f| {
                    f.consumers.iter().filter(|c| c.online && c.credit > 0).count() as u64
                });
                (c >= *n, format!("{c}/{n} consuming {q}"))
            }
            Until::Node { node, state } => {
                let shown = m
                    .nodes
                    .get(node)
                    .map(|n| n.shown(m.now).label())
                    .unwrap_or_default();
                (shown.starts_with(state.as_str()), format!("{node} {shown}"))
            }
            Until::Breaker { state } => {
                let now = breaker(m).unwrap_or_else(|| "unknown".into());
                (now == *state, format!("breaker {now}"))
            }
            Until::Canary { state } => {
                let now = m.ui.canary.map_or("none", |s| s.name());
                (now == state, format!("canary {now}"))
            }
        }
    }

    /// Orders this scenario placed that have ended.
    fn ended(&self, m: &Model) -> usize {
        self.seen
            .accepted
            .iter()
            .filter(|id| m.orders.get(id).is_some_and(|e| e.is_done()))
            .count()
    }

    /// Judges every expectation against the model and what was seen.
    pub fn judge(&self, m: &Model) -> Vec<Judged> {
        self.scenario
            .expect
            .iter()
            .map(|e| {
                let (held, saw) = self.judge_one(e, m);
                Judged {
                    expected: e.describe(),
                    held,
                    saw,
                }
            })
            .collect()
    }

    fn judge_one(&self, e: &Expect, m: &Model) -> (bool, String) {
        let count = |state: &str| m.orders.counts().get(state).copied().unwrap_or(0);
        match e {
            Expect::Delivered { count: n } => {
                let c = count("delivered");
                (c == *n, format!("{c} delivered"))
            }
            Expect::State { state, count: n } => {
                let c = count(state);
                (c == *n, format!("{c} {state}"))
            }
            Expect::NoneLost => {
                let stuck: Vec<String> = self
                    .seen
                    .accepted
                    .iter()
                    .filter_map(|id| {
                        let state = m.orders.get(id).map_or("never seen", |e| e.state_label());
                        (!matches!(state, "delivered" | "cancelled" | "rejected"))
                            .then(|| format!("{} {state}", crate::model::orders::short_id(id)))
                    })
                    .collect();
                let n = self.seen.accepted.len();
                match stuck.as_slice() {
                    [] => (true, format!("all {n} accepted orders accounted for")),
                    _ => (
                        false,
                        format!("{} of {n} not finished: {}", stuck.len(), stuck.join(", ")),
                    ),
                }
            }
            Expect::NoneCookedTwice => {
                let twice: Vec<&String> = self
                    .seen
                    .ready
                    .iter()
                    .filter(|(_, r)| r.len() > 1)
                    .map(|(o, _)| o)
                    .collect();
                (twice.is_empty(), format!("{} cooked twice", twice.len()))
            }
            Expect::KitchenCooked { node, at_least } => {
                let c = self.seen.cooked.get(node).copied().unwrap_or(0);
                (c >= *at_least, format!("{node} cooked {c}"))
            }
            Expect::EachKitchenCooked { kitchens, at_least } => {
                let mut names: BTreeSet<&String> = self.seen.cooked.keys().collect();
                names.extend(kitchens.iter());
                let counts: Vec<String> = names
                    .iter()
                    .map(|k| format!("{k} {}", self.seen.cooked.get(*k).copied().unwrap_or(0)))
                    .collect();
                let held = names
                    .iter()
                    .all(|k| self.seen.cooked.get(*k).copied().unwrap_or(0) >= *at_least);
                (held, counts.join(", "))
            }
            Expect::BreakerOpened => (
                self.seen.breaker_opened,
                if self.seen.breaker_opened {
                    "it opened"
                } else {
                    "it never opened"
                }
                .into(),
            ),
            Expect::DeadLettered { queue, at_least } => {
                let c = self.seen.dead.get(queue).copied().unwrap_or(0);
                (c >= *at_least, format!("{c} dead-lettered on {queue}"))
            }
            Expect::Refused { status, at_least } => {
                let c = self.seen.refused.get(status).copied().unwrap_or(0);
                (c >= *at_least, format!("{c} refused with {status}"))
            }
            Expect::Reordered { at_least } => {
                let c = m
                    .nodes
                    .values()
                    .filter(|n| n.role == role::ORDER)
                    .filter_map(|n| n.figures()?.order.released_total)
                    .sum::<u64>();
                (c >= *at_least, format!("{c} released by the order node"))
            }
            Expect::Alerts { at_least } => {
                let c = m.log.alerts();
                (c >= *at_least, format!("{c} alert(s)"))
            }
        }
    }
}

enum Done {
    Yes,
    No,
    TimedOut(String),
}

fn secs(d: time::Duration) -> f64 {
    d.as_seconds_f64()
}

/// Every node started here is up, the order service answers, and every
/// kitchen and delivery node consumes: the moment a scenario can start.
pub fn platform_up(m: &Model) -> bool {
    let owned: Vec<_> = m.nodes.values().filter(|n| n.owned).collect();
    if owned.is_empty() || !m.feed_up || m.order_url().is_none() {
        return false;
    }
    let consumers = |role: Role| {
        let want = owned.iter().filter(|n| n.role == role.as_str()).count();
        let queue = role.consumes().unwrap_or_default();
        let have = m.queues.rows.get(queue).map_or(0, |q| {
            q.figures
                .consumers
                .iter()
                .filter(|c| c.online && c.credit > 0)
                .count()
        });
        have >= want
    };
    owned.iter().all(|n| n.shown(m.now) == Shown::Up) && consumers(Role::Kitchen) && consumers(Role::Delivery)
}

/// The order node's breaker state.
fn breaker(m: &Model) -> Option<String> {
    m.nodes
        .values()
        .filter(|n| n.role == role::ORDER)
        .find_map(|n| n.breaker().map(|b| b.as_str().to_string()))
}

/// The effects that make `to` nodes of `role` run.
fn scale(m: &Model, role: &str, to: u32) -> Result<Vec<Effect>, String> {
    let r = Role::parse(role)
        .filter(|r| r.scales())
        .ok_or_else(|| format!("{role} does not scale"))?;
    let mut alive: Vec<_> = crate::model::nodes::running(&m.nodes, role, m.now).collect();
    let n = alive.len() as u32;
    if to >= n {
        return Ok((n..to).map(|_| Effect::ScaleUp(r)).collect());
    }
    // Down: stop the newest ones started here, as `-` does.
    alive.retain(|n| n.owned);
    alive.sort_by_key(|n| (n.since, n.id.clone()));
    let excess = (n - to) as usize;
    if alive.len() < excess {
        return Err(format!(
            "cannot scale {role} to {to}: only {} were started here",
            alive.len()
        ));
    }
    Ok(alive
        .iter()
        .rev()
        .take(excess)
        .map(|n| Effect::Stop(n.id.clone()))
        .collect())
}
