//! A canary (`C` on a node, or `do = "canary"`): one more node of a role,
//! started with different arguments (a "new build"), watched against the
//! others. Worse than the threshold, it is stopped at once (rolled back:
//! its tickets go back to the queue); good for the whole window, it is
//! promoted: the role's arguments become its own and a rolling restart
//! replaces the others.
//!
//! Plain data beside the model, like the rollout: `observe` reads the
//! heartbeats' counters, `advance` decides and answers with effects.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::model::{Level, Model};
use crate::msg::{Effect, Msg};
use crate::topology::Role;

/// Work the canary must have done before it is judged at all.
pub const MIN_SAMPLES: u64 = 5;

/// What to try.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    /// The role.
    pub role: Role,
    /// The canary's arguments on top of the role's (the same flag replaces
    /// the role's value).
    pub args: Vec<String>,
    /// Seconds it is watched before it is promoted.
    pub window_s: f64,
    /// The share of failed work above which it is rolled back, 0..1.
    pub max_error_rate: f64,
}

impl CanaryPlan {
    /// A plan with the default window (30 s) and threshold (5 %).
    pub fn new(role: Role, args: Vec<String>) -> CanaryPlan {
        CanaryPlan {
            role,
            args,
            window_s: 30.0,
            max_error_rate: 0.05,
        }
    }
}

/// Where a canary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Started, not heard from yet.
    Starting,
    /// Up and being watched.
    Watching,
    /// Stopped: worse than the threshold, or too little work to judge.
    RolledBack,
    /// Good: its arguments are the role's now.
    Promoted,
}

impl Stage {
    /// Its name in scenario files (`until = "canary"`, `state = …`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Starting => "starting",
            Stage::Watching => "watching",
            Stage::RolledBack => "rolled_back",
            Stage::Promoted => "promoted",
        }
    }
}

/// A node's counters, first and latest heard.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    first: (u64, u64),
    last: (u64, u64),
}

impl Counts {
    /// Work done and failed since first heard.
    fn delta(&self) -> (u64, u64) {
        (
            self.last.0.saturating_sub(self.first.0),
            self.last.1.saturating_sub(self.first.1),
        )
    }
}

/// The share of work that failed, and how much work that was.
fn rate((handled, failed): (u64, u64)) -> (f64, u64) {
    let n = handled + failed;
    if n == 0 {
        (0.0, 0)
    } else {
        (failed as f64 / n as f64, n)
    }
}

/// A canary in progress (or judged).
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// What it tries.
    pub plan: CanaryPlan,
    /// The canary node's id.
    pub id: String,
    /// Where it stands.
    pub stage: Stage,
    /// Why it ended as it did, once judged.
    pub verdict: Option<String>,
    started: Option<OffsetDateTime>,
    watched_from: Option<OffsetDateTime>,
    /// The canary's counters, and the other nodes' of the role.
    canary: Option<Counts>,
    others: BTreeMap<String, Counts>,
}

impl Canary {
    /// A canary for `plan`, named `<role>-canary`.
    pub fn new(plan: CanaryPlan) -> Canary {
        Canary {
            id: format!("{}-canary", plan.role),
            plan,
            stage: Stage::Starting,
            verdict: None,
            started: None,
            watched_from: None,
            canary: None,
            others: BTreeMap::new(),
        }
    }

    /// Whether it is judged (rolled back or promoted).
    pub fn over(&self) -> bool {
        matches!(self.stage, Stage::RolledBack | Stage::Promoted)
    }

    /// The canary's error rate and work so far, and the others'.
    pub fn rates(&self) -> ((f64, u64), (f64, u64)) {
        let mine = self.canary.map_or((0, 0), |c| c.delta());
        let theirs = self.others.values().fold((0, 0), |(h, f), c| {
            let (dh, df) = c.delta();
            (h + dh, f + df)
        });
        (rate(mine), rate(theirs))
    }

    /// Notes a heartbeat (before `update`).
    pub fn observe(&mut self, msg: &Msg) {
        let Msg::Status(s) = msg else { return };
        if s.role != self.plan.role.as_str() || self.over() {
            return;
        }
        let now = (s.handled, s.failed);
        let counts = if s.id == self.id {
            self.canary.get_or_insert(Counts {
                first: now,
                last: now,
            })
        } else {
            self.others.entry(s.id.clone()).or_insert(Counts {
                first: now,
                last: now,
            })
        };
        counts.last = now;
    }

    /// What to do now: start it, then stop or promote it.
    pub fn advance(&mut self, m: &mut Model) -> Vec<Effect> {
        let now = m.now;
        let Some(started) = self.started else {
            self.started = Some(now);
            let text = format!(
                "{} started with {} (watched {:.0} s; rolled back above {:.0} % failed)",
                self.id,
                self.plan.args.join(" "),
                self.plan.window_s,
                self.plan.max_error_rate * 100.0
            );
            self.say(m, Level::Warn, text);
            return vec![Effect::Launch {
                role: self.plan.role,
                id: self.id.clone(),
                args: self.plan.args.clone(),
            }];
        };
        match self.stage {
            Stage::Starting if self.canary.is_some() => {
                self.stage = Stage::Watching;
                self.watched_from = Some(now);
                m.dirty = true;
                Vec::new()
            }
            Stage::Starting if (now - started).as_seconds_f64() > 60.0 => {
                let why = "it never came up within 60 s".to_string();
                self.roll_back(m, why)
            }
            Stage::Watching => self.judge(m),
            _ => Vec::new(),
        }
    }

    /// Rolls back on a bad rate at once; promotes after the window.
    fn judge(&mut self, m: &mut Model) -> Vec<Effect> {
        let watched = self.watched_from.map_or(0.0, |t| (m.now - t).as_seconds_f64());
        let ((mine, n), (theirs, _)) = self.rates();
        let limit = self.plan.max_error_rate;
        let pct = |r: f64| format!("{:.0} %", r * 100.0);
        if n >= MIN_SAMPLES && mine > limit {
            let why = format!(
                "error rate {} > {} over {n} ticket(s) (the others: {})",
                pct(mine),
                pct(limit),
                pct(theirs)
            );
            return self.roll_back(m, why);
        }
        if watched >= self.plan.window_s && n >= MIN_SAMPLES {
            self.stage = Stage::Promoted;
            let why = format!(
                "error rate {} ≤ {} over {n} ticket(s) in {:.0} s",
                pct(mine),
                pct(limit),
                watched
            );
            self.say(
                m,
                Level::Info,
                format!("{} promoted: {why}; rolling it out", self.id),
            );
            self.verdict = Some(why);
            return vec![
                Effect::Respec {
                    role: self.plan.role,
                    args: self.plan.args.clone(),
                },
                Effect::RollingRestart(self.plan.role),
            ];
        }
        if watched >= 3.0 * self.plan.window_s {
            let why = format!("too little work to judge: {n} ticket(s) in {watched:.0} s");
            return self.roll_back(m, why);
        }
        Vec::new()
    }

    fn roll_back(&mut self, m: &mut Model, why: String) -> Vec<Effect> {
        self.stage = Stage::RolledBack;
        let text = format!("{} rolled back: {why}; its work goes back to the queue", self.id);
        self.say(m, Level::Alert, text);
        self.verdict = Some(why);
        vec![Effect::Stop(self.id.clone())]
    }

    fn say(&self, m: &mut Model, level: Level, text: String) {
        m.log.push(m.now, level, format!("canary: {text}"));
        m.ui.flash = Some(format!("canary: {}", self.stage.name()));
        m.dirty = true;
    }
}

/// `base` with `extra` on top: a flag in `extra` replaces the same flag
/// (and its value) in `base`, so that clap never sees it twice.
pub fn merge_args(base: &[String], extra: &[String]) -> Vec<String> {
    let flags: Vec<&str> = extra
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a))
        .collect();
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in base {
        if skip_value {
            skip_value = false;
            if !a.starts_with("--") {
                continue;
            }
        }
        let flag = a.split('=').next().unwrap_or(a);
        if a.starts_with("--") && flags.contains(&flag) {
            // `--flag value`: drop the value too (not `--flag=value`).
            skip_value = !a.contains('=');
            continue;
        }
        out.push(a.clone());
    }
    out.extend(extra.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_canarys_flag_replaces_the_roles_and_keeps_the_rest() {
        let base = args("--ovens 2 --prep-ms 1500..2000 --verbose");
        assert_eq!(
            merge_args(&base, &args("--prep-ms 4000 --fail-rate 0.3")),
            args("--ovens 2 --verbose --prep-ms 4000 --fail-rate 0.3")
        );
        assert_eq!(
            merge_args(&args("--ovens=2 --x 1"), &args("--ovens 4")),
            args("--x 1 --ovens 4")
        );
        assert_eq!(merge_args(&base, &[]), base);
    }

    #[test]
    fn the_error_rate_counts_failed_work_since_first_heard() {
        let c = Counts {
            first: (10, 2),
            last: (17, 5),
        };
        assert_eq!(c.delta(), (7, 3));
        assert_eq!(rate(c.delta()), (0.3, 10));
        assert_eq!(rate((0, 0)), (0.0, 0));
    }
}
