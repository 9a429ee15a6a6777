//! Chaos mode (`c`, or `--chaos` headless): a steady stream of orders while
//! a random node is broken at random moments and repaired a little later,
//! with a [`Ledger`] that proves nothing was lost.
//!
//! Plain data beside the model, like the scenario player: fed every
//! message, it answers with effects (orders to place, nodes to kill,
//! freeze, stop and start). Its randomness comes from a seeded generator,
//! so a seed repeats the same choices.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Duration, OffsetDateTime};

use crate::ledger::{Ledger, Tally};
use crate::model::network::{Toxic, ToxicKind, BROKER_LINK};
use crate::model::{Level, Model, Proc};
use crate::msg::{Effect, Msg};
use crate::play::{Judged, Verdict};

/// How a node is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// kill -9, then started again.
    Kill,
    /// SIGTERM (a graceful stop), then started again.
    Stop,
    /// SIGSTOP, then SIGCONT: alive but silent, its leases expire.
    Pause,
    /// Cut off from the broker both ways (the fault proxy), then healed:
    /// running, but unheard.
    Partition,
    /// kill -9 of the broker itself, then started again.
    BrokerKill,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Kill,
        Action::Stop,
        Action::Pause,
        Action::Partition,
        Action::BrokerKill,
    ];

    /// Its name on the command line and in the narration.
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Stop => "stop",
            Action::Pause => "pause",
            Action::Partition => "partition",
            Action::BrokerKill => "broker-kill",
        }
    }

    /// Parses a name of [`Action::name`].
    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == text)
    }
}

/// What chaos does, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosOptions {
    /// Seeds the choices: the same seed, the same sequence of breaks.
    pub seed: u64,
    /// Orders placed per second while chaos runs.
    pub load: f64,
    /// The mean time between a repair and the next break, in seconds
    /// (exponentially distributed).
    pub mean_interval_s: f64,
    /// How long a break lasts, in seconds, at least and at most.
    pub outage_s: (f64, f64),
    /// Which breaks it may choose.
    pub actions: Vec<Action>,
    /// On as soon as the platform is up (`--chaos`), not only on `c`.
    pub autostart: bool,
    /// Run this long, then go quiet and judge (headless ends on the
    /// verdict); `None` runs until the operator turns it off.
    pub duration_s: Option<f64>,
}

impl Default for ChaosOptions {
    fn default() -> ChaosOptions {
        ChaosOptions {
            seed: 7,
            load: 10.0,
            mean_interval_s: 6.0,
            outage_s: (2.0, 6.0),
            actions: Action::ALL.to_vec(),
            autostart: false,
            duration_s: None,
        }
    }
}

/// How long the platform gets, once chaos is over, to finish every
/// accepted order before the open ones are counted as lost.
pub const QUIET_S: f64 = 60.0;

/// A node broken now, and when it is repaired.
#[derive(Debug, Clone, PartialEq)]
struct Break {
    id: String,
    action: Action,
    repair_at: OffsetDateTime,
}

/// Chaos mode's state.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// What it does.
    pub opts: ChaosOptions,
    rng: StdRng,
    /// Breaking and loading now.
    pub on: bool,
    /// When it was last turned on.
    since: Option<OffsetDateTime>,
    /// When it was turned off (its quiet period runs from there).
    pub off_at: Option<OffsetDateTime>,
    next_break: Option<OffsetDateTime>,
    broken: Option<Break>,
    /// Orders owed to the load, fractions included.
    owed: f64,
    last_tick: Option<OffsetDateTime>,
    /// Breaks so far.
    pub breaks: u64,
    /// What became of the orders.
    pub ledger: Ledger,
    /// Headless: the judgement once the quiet period is over.
    pub verdict: Option<Verdict>,
}

impl Chaos {
    /// Chaos mode, off until the model's `ui.chaos` says on (`c`), or
    /// with `autostart` as soon as the platform is up.
    pub fn new(opts: ChaosOptions) -> Chaos {
        Chaos {
            rng: StdRng::seed_from_u64(opts.seed),
            opts,
            on: false,
            since: None,
            off_at: None,
            next_break: None,
            broken: None,
            owed: 0.0,
            last_tick: None,
            breaks: 0,
            ledger: Ledger::default(),
            verdict: None,
        }
    }

    /// The node broken now: its id, how, and when it is repaired.
    pub fn broken(&self) -> Option<(&str, Action, OffsetDateTime)> {
        self.broken
            .as_ref()
            .map(|b| (b.id.as_str(), b.action, b.repair_at))
    }

    /// Whether it has run in this session (its bar is shown from then on).
    pub fn shown(&self) -> bool {
        self.on || self.off_at.is_some()
    }

    /// Notes what a message says about orders (before `update`).
    pub fn observe(&mut self, msg: &Msg) {
        self.ledger.observe(msg);
    }

    /// The figures now.
    pub fn tally(&self) -> Tally {
        self.ledger.tally()
    }

    /// Whether it is quiet long enough for open orders to count as lost.
    pub fn settled(&self, now: OffsetDateTime) -> bool {
        !self.on
            && self.broken.is_none()
            && self.off_at.is_some_and(|t| (now - t).as_seconds_f64() >= QUIET_S)
    }

    /// What to do now, on the model as it is after the message.
    pub fn advance(&mut self, m: &mut Model) -> Vec<Effect> {
        let now = m.now;
        let dt = self
            .last_tick
            .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
        self.last_tick = Some(now);
        let mut effects = Vec::new();
        // Once: `since` is set from the first start on.
        if self.opts.autostart && self.since.is_none() && crate::play::platform_up(m) {
            m.ui.chaos = true;
        }
        if m.ui.chaos != self.on {
            self.switch(m.ui.chaos, m);
            m.dirty = true;
        }
        if let (Some(d), Some(since)) = (self.opts.duration_s, self.since) {
            if self.on && (now - since).as_seconds_f64() >= d {
                m.ui.chaos = false;
                self.switch(false, m);
                m.dirty = true;
            }
        }
        if let Some(b) = self.broken.clone().filter(|b| !self.on || now >= b.repair_at) {
            effects.push(repair(&b));
            say(m, Level::Info, format!("repaired {} ({})", b.id, b.action.name()));
            self.broken = None;
            self.schedule_break(now);
            m.dirty = true;
        }
        if !self.on {
            self.judge(m);
            return effects;
        }
        // The steady stream; an outage does not pile up into a burst.
        self.owed = (self.owed + self.opts.load * dt).min(self.opts.load.max(1.0));
        if self.owed >= 1.0 {
            if let Some(url) = m.order_url() {
                let count = self.owed as u32;
                self.owed -= f64::from(count);
                effects.push(Effect::PlaceOrders {
                    url,
                    count,
                    quiet: true,
                });
            }
        }
        if self.broken.is_none() && self.next_break.is_some_and(|t| now >= t) {
            if let Some(b) = self.choose(m, now) {
                effects.push(breaking(&b));
                self.breaks += 1;
                say(m, Level::Warn, format!("{} {}", b.action.name(), b.id));
                self.broken = Some(b);
                m.dirty = true;
            }
        }
        effects
    }

    /// Turns chaos on or off.
    fn switch(&mut self, on: bool, m: &mut Model) {
        let now = m.now;
        self.on = on;
        if on {
            self.since = Some(now);
            self.off_at = None;
            self.schedule_break(now);
            let text = format!("on: {:.0} orders/s, seed {}", self.opts.load, self.opts.seed);
            say(m, Level::Info, text);
        } else {
            self.off_at = Some(now);
            let text = "off: repairing, then waiting for every accepted order";
            say(m, Level::Info, text.into());
        }
    }

    /// A node to break and how, among the running ones.
    fn choose(&mut self, m: &Model, now: OffsetDateTime) -> Option<Break> {
        let action = self.opts.actions[self.rng.gen_range(0..self.opts.actions.len().max(1))];
        let candidates: Vec<&str> = m
            .nodes
            .values()
            .filter(|n| n.owned && n.proc == Some(Proc::Running))
            .filter(|n| n.carries_messages() == (action == Action::BrokerKill))
            .filter(|n| action != Action::Partition || n.links.iter().any(|l| l == BROKER_LINK))
            .map(|n| n.id.as_str())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let id = candidates[self.rng.gen_range(0..candidates.len())].to_string();
        let (low, high) = self.opts.outage_s;
        let outage = if high > low {
            self.rng.gen_range(low..high)
        } else {
            low
        };
        Some(Break {
            id,
            action,
            repair_at: now + Duration::seconds_f64(outage),
        })
    }

    /// Headless: once quiet long enough, or as soon as nothing is open, the
    /// verdict.
    fn judge(&mut self, m: &Model) {
        let (Some(_), Some(off)) = (self.opts.duration_s, self.off_at) else {
            return;
        };
        let t = self.tally();
        if self.verdict.is_some() || (t.open > 0 && !self.settled(m.now)) {
            return;
        }
        let after = (m.now - off).as_seconds_f64();
        let lost = match t.open {
            0 => format!(
                "all {} accepted orders finished {after:.0} s after chaos",
                t.accepted
            ),
            n => format!(
                "{n} of {} accepted still open {after:.0} s after chaos: {}",
                t.accepted,
                self.ledger.open(5).join(", ")
            ),
        };
        let judged = vec![
            Judged {
                expected: "no accepted order lost".into(),
                held: t.open == 0,
                saw: lost,
            },
            Judged {
                expected: "no order delivered twice".into(),
                held: t.delivered_twice == 0,
                saw: format!("{} delivered twice", t.delivered_twice),
            },
            Judged {
                expected: "no order cooked twice".into(),
                held: t.cooked_twice == 0,
                saw: format!("{} cooked twice", t.cooked_twice),
            },
        ];
        self.verdict = Some(Verdict {
            failed_step: None,
            judged,
        });
    }

    /// The next break, an exponential draw of the mean interval from `now`.
    fn schedule_break(&mut self, now: OffsetDateTime) {
        let wait = self.exponential(self.opts.mean_interval_s);
        self.next_break = Some(now + Duration::seconds_f64(wait));
    }

    /// A draw from the exponential distribution with this mean.
    fn exponential(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        -mean * u.ln()
    }
}

/// A line in the Events panel (and on `--headless`'s stdout).
fn say(m: &mut Model, level: Level, text: String) {
    m.log.push(m.now, level, format!("chaos: {text}"));
}

/// The effect that breaks `b`'s node.
fn breaking(b: &Break) -> Effect {
    match b.action {
        Action::Kill | Action::BrokerKill => Effect::Kill(b.id.clone()),
        Action::Stop => Effect::Stop(b.id.clone()),
        Action::Pause => Effect::Freeze(b.id.clone(), true),
        Action::Partition => network(b, vec![Toxic::new(ToxicKind::Partition)]),
    }
}

/// The effect that repairs it.
fn repair(b: &Break) -> Effect {
    match b.action {
        Action::Pause => Effect::Freeze(b.id.clone(), false),
        Action::Partition => network(b, Vec::new()),
        _ => Effect::Start(b.id.clone()),
    }
}

/// New toxics on `b`'s broker link.
fn network(b: &Break, toxics: Vec<Toxic>) -> Effect {
    Effect::Network {
        node: b.id.clone(),
        link: BROKER_LINK.into(),
        toxics,
    }
}

/// The ledger's figures as lines, for `--headless`.
pub fn ledger_table(breaks: u64, t: &Tally) -> String {
    format!(
        "ledger after {breaks} break(s)\n  attempted {}  accepted {}  refused {}\n  delivered {}  cancelled or rejected {}  open {}\n  delivered twice {}  cooked twice {}",
        t.attempted, t.accepted, t.refused, t.delivered, t.ended, t.open, t.delivered_twice, t.cooked_twice
    )
}
