//! `update`: the one place the model changes. Pure: no I/O, no clock, no
//! randomness; what must happen outside comes back as [`Effect`]s.

use contracts::events::{self, kind};
use contracts::status::{BreakerState, NodeState, NodeStatus};
use contracts::Envelope;

use crate::chaos::Chaos;
use crate::keys;
use crate::model::orders::short_id;
use crate::model::{Level, Model, NodeRow, Proc};
use crate::msg::ChildEvent;
use crate::msg::{Effect, Msg, PlaceOutcome};
use crate::play::Play;
use crate::record::Recording;
use crate::rollout::Rollout;

/// What watches the model beside it, fed the same messages: the scenario
/// being played (`--scenario`), the operator's session being recorded
/// (`--record`) and chaos mode with its ledger. Their own state, not the
/// model's.
#[derive(Debug, Default)]
pub struct Watchers {
    /// The scenario player.
    pub play: Option<Play>,
    /// The recorder.
    pub recording: Option<Recording>,
    /// Chaos mode (`c`, `--chaos`).
    pub chaos: Option<Chaos>,
    /// A rolling restart in progress (`R`).
    pub rollout: Option<Rollout>,
    /// A canary being watched, or the last one judged (`C`).
    pub canary: Option<crate::canary::Canary>,
    /// Backups of every node on a period (`--backup-every`).
    pub backups: Option<crate::storage::Schedule>,
}

/// [`update`] with its watchers: the player sees each message before the
/// model changes, then acts on the changed model; the recorder notes what
/// the operator's keys did and which orders were accepted. Pure too.
pub fn step(m: &mut Model, w: &mut Watchers, msg: Msg) -> Vec<Effect> {
    if let Some(play) = &mut w.play {
        play.observe(&msg);
    }
    if let Some(chaos) = &mut w.chaos {
        chaos.observe(&msg);
    }
    if let Some(rollout) = &mut w.rollout {
        rollout.observe(&msg);
    }
    if let Some(canary) = &mut w.canary {
        canary.observe(&msg);
    }
    let key = matches!(msg, Msg::Key(_));
    let accepted = match &msg {
        Msg::Placed(o) => Some(o.accepted.clone()),
        _ => None,
    };
    let mut effects = update(m, msg);
    if let Some(r) = &mut w.recording {
        if key {
            r.note(m.now, &effects, &m.nodes);
        }
        if let Some(ids) = accepted {
            r.accepted(&ids);
        }
    }
    if let Some(play) = &mut w.play {
        let before = (play.step, play.lines.len(), play.finished());
        effects.extend(play.advance(m));
        if (play.step, play.lines.len(), play.finished()) != before {
            m.dirty = true;
        }
        m.ui.playing = true;
        m.ui.scenario_over = play.finished();
    }
    if let Some(chaos) = &mut w.chaos {
        effects.extend(chaos.advance(m));
        m.ui.chaos_bar = chaos.shown();
    }
    if let Some(schedule) = &mut w.backups {
        effects.extend(schedule.advance(m));
    }
    for plan in take_canaries(&mut effects) {
        match &w.canary {
            Some(c) if !c.over() => m.ui.flash = Some(format!("canary {} is still being watched", c.id)),
            _ => w.canary = Some(crate::canary::Canary::new(plan)),
        }
    }
    if let Some(c) = &mut w.canary {
        effects.extend(c.advance(m));
        m.ui.canary = Some(c.stage);
    }
    for role in take_rollouts(&mut effects) {
        match &w.rollout {
            Some(r) => m.ui.flash = Some(format!("a rolling restart of {} is still running", r.role)),
            None => {
                crate::rollout::log(m, role, Level::Warn, "one node at a time".into());
                w.rollout = Some(Rollout::of(m, role));
            }
        }
    }
    if let Some(r) = &mut w.rollout {
        effects.extend(r.advance(m));
        if r.over {
            w.rollout = None;
        }
    }
    effects
}

/// The canaries asked for, taken out of `effects` (they are the canary
/// watcher's, not the shell's).
fn take_canaries(effects: &mut Vec<Effect>) -> Vec<crate::canary::CanaryPlan> {
    let mut plans = Vec::new();
    effects.retain(|e| match e {
        Effect::Canary(plan) => {
            plans.push(plan.clone());
            false
        }
        _ => true,
    });
    plans
}

/// The rolling restarts asked for, taken out of `effects` (they are the
/// rollout watcher's, not the shell's).
fn take_rollouts(effects: &mut Vec<Effect>) -> Vec<crate::topology::Role> {
    let mut roles = Vec::new();
    effects.retain(|e| match e {
        Effect::RollingRestart(role) => {
            roles.push(*role);
            false
        }
        _ => true,
    });
    roles
}

/// Applies `msg` to the model and says what the shell must do.
pub fn update(m: &mut Model, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => {
            m.dirty = true;
            keys::on_key(m, key)
        }
        Msg::Mouse { event, width, height } => {
            m.dirty = true;
            keys::on_mouse(m, event, width, height)
        }
        Msg::Terminate => {
            m.quitting = Some(true);
            vec![Effect::Quit { stop_nodes: true }]
        }
        news => {
            if absorb(m, news) {
                data_changed(m);
            }
            Vec::new()
        }
    }
}

/// Takes in what happened elsewhere (the platform, the clock, the shell),
/// which asks nothing of the shell; true when it changed data on screen.
fn absorb(m: &mut Model, msg: Msg) -> bool {
    match msg {
        // Ages and uptimes show whole seconds: redraw once a second.
        Msg::Tick(now) => {
            let next_second = now.unix_timestamp() != m.now.unix_timestamp();
            m.now = now;
            next_second
        }
        // Redrawn even when frozen: the layout changed, or the operator
        // must read why something was refused.
        Msg::Resize => {
            m.dirty = true;
            false
        }
        Msg::Refused(text) => {
            m.log.push(m.now, Level::Warn, text.clone());
            m.ui.flash = Some(text);
            m.dirty = true;
            false
        }
        Msg::Status(status) => {
            on_status(m, *status);
            true
        }
        Msg::Stats(stats) => {
            m.queues.report(stats);
            true
        }
        Msg::Event(env) => {
            on_event(m, *env);
            true
        }
        Msg::DeadLetters { queue, items } => {
            m.queues.dead.insert(queue, items);
            true
        }
        Msg::Feed { connected, detail } => {
            on_feed(m, connected, &detail);
            true
        }
        Msg::Child(event) => {
            on_child(m, event);
            true
        }
        Msg::Placed(outcome) => {
            on_placed(m, outcome);
            true
        }
        Msg::CancelAnswered { order_id, outcome } => {
            let (level, text) = match outcome {
                Ok(()) => (
                    Level::Info,
                    format!("cancellation of {order_id} accepted: watch its saga in the detail view"),
                ),
                Err(why) => (Level::Warn, format!("cancellation of {order_id} refused: {why}")),
            };
            m.ui.flash = Some(text.clone());
            m.log.push(m.now, level, text);
            true
        }
        Msg::Storage { node, op, outcome } => {
            let (level, text) = match outcome {
                Ok(text) => (Level::Info, text),
                Err(why) => (Level::Alert, format!("{} of {node} failed: {why}", op.verb())),
            };
            m.log.push(m.now, level, text);
            true
        }
        Msg::Network { node, link, toxics } => {
            let text = match crate::model::network::describe(&link, &toxics) {
                Some(what) => format!("network: {node} → {what}"),
                None => format!("network: {node} → {link} healed"),
            };
            m.log.push(m.now, Level::Warn, text);
            if let Some(row) = m.nodes.get_mut(&node) {
                match toxics.is_empty() {
                    true => row.network.remove(&link),
                    false => row.network.insert(link, toxics),
                };
            }
            true
        }
        Msg::LogTail(tail) => {
            let changed = m.log_tail != tail;
            m.log_tail = tail;
            changed
        }
        // Handled by `update`.
        Msg::Key(_) | Msg::Mouse { .. } | Msg::Terminate => false,
    }
}

/// The control room's own broker connection came up or went down.
fn on_feed(m: &mut Model, connected: bool, detail: &str) {
    if connected != m.feed_up {
        let (level, text) = if connected {
            (Level::Info, "connected to the broker".to_string())
        } else {
            (Level::Alert, format!("lost the broker: {detail}; reconnecting"))
        };
        m.log.push(m.now, level, text);
    }
    m.feed_up = connected;
    if connected {
        // The broker answers; a broker started here is up.
        for row in m.nodes.values_mut().filter(|r| r.carries_messages()) {
            if row.proc == Some(Proc::Starting) {
                row.proc = Some(Proc::Running);
            }
        }
    }
}

/// Data changed: redraw, unless the operator froze the display.
fn data_changed(m: &mut Model) {
    if !m.ui.frozen {
        m.dirty = true;
    }
}

fn on_status(m: &mut Model, status: NodeStatus) {
    let now = m.now;
    let id = status.id.clone();
    let row = m
        .nodes
        .entry(id.clone())
        .or_insert_with(|| NodeRow::new(&status.id, &status.role, false));
    let breaker_before = row.breaker();
    let was_proc = row.proc.clone();
    let before = row.status.take();
    row.heard(status, now);
    let Some(after) = &row.status else { return };

    // Collected first: the row is borrowed until the log is written.
    let mut lines = Vec::new();
    if let (Some(b), Some(a)) = (breaker_before, row.breaker()) {
        if a != b {
            let level = if a == BreakerState::Open {
                Level::Alert
            } else {
                Level::Warn
            };
            let (b, a) = (b.as_str(), a.as_str());
            lines.push((level, format!("{id}: circuit breaker {b} → {a}")));
        }
    }
    if before.as_ref().map(|s| s.state) != Some(after.state) {
        let pid = after.pid;
        match after.state {
            NodeState::Up => lines.push((Level::Info, format!("{id} is up (pid {pid})"))),
            NodeState::Paused => lines.push((Level::Warn, format!("{id} on hold: taking no work"))),
            NodeState::Stopping => lines.push((Level::Info, format!("{id} is stopping"))),
            NodeState::Offline if pid == 0 && matches!(was_proc, None | Some(Proc::Running)) => lines.push((
                Level::Alert,
                format!("{id} lost its broker connection (last will)"),
            )),
            NodeState::Offline => {}
        }
    }
    if before.is_some_and(|b| b.faults != after.faults) {
        let text = row.faults_text(now);
        let text = if text.is_empty() { "none".to_string() } else { text };
        lines.push((Level::Warn, format!("{id}: faults now {text}")));
    }
    for (level, text) in lines {
        m.log.push(now, level, text);
    }
}

fn on_event(m: &mut Model, env: Envelope) {
    let (level, text) = describe(&env);
    m.log.push(env.occurred_at, level, text);
    m.orders.offer(env);
}

/// A log line for a domain event.
pub fn describe(env: &Envelope) -> (Level, String) {
    let id = short_id(&env.order_id);
    let by = &env.source;
    let reason = || {
        env.payload
            .get("reason")
            .and_then(|r| r.as_str())
            .unwrap_or("no reason given")
            .to_string()
    };
    match env.kind.as_str() {
        kind::QUEUE_DEAD_LETTERED => {
            let dl = events::decode::<events::QueueDeadLettered>(env);
            let text = match dl {
                Ok(d) => format!(
                    "DLQ {}: {} after {} attempt(s){}",
                    d.queue,
                    d.reason,
                    d.attempts,
                    d.order_id
                        .map(|o| format!(", order {}", short_id(&o)))
                        .unwrap_or_default()
                ),
                Err(e) => format!("DLQ: an alert that cannot be read: {e}"),
            };
            (Level::Alert, text)
        }
        kind::SECURITY_REFUSED => {
            let text = match events::decode::<events::SecurityRefused>(env) {
                Ok(r) => format!(
                    "security: refused {} × {} from {} on {}: {}",
                    r.count,
                    r.what,
                    if r.sender.is_empty() {
                        "no one named"
                    } else {
                        &r.sender
                    },
                    r.topic,
                    r.reason
                ),
                Err(e) => format!("security: an alert that cannot be read: {e}"),
            };
            (Level::Alert, text)
        }
        kind::ORDER_REJECTED | kind::ORDER_FAILED => {
            (Level::Alert, format!("{:<17} {id} {} ← {by}", env.kind, reason()))
        }
        kind::ORDER_CANCELLING | kind::ORDER_CANCELLED => {
            (Level::Warn, format!("{:<17} {id} {} ← {by}", env.kind, reason()))
        }
        kind::DRIVER_ASSIGNED | kind::ORDER_DELIVERED => {
            let driver = env.payload.get("driver").and_then(|d| d.as_str()).unwrap_or("?");
            (Level::Event, format!("{:<17} {id} {driver} ← {by}", env.kind))
        }
        _ => (Level::Event, format!("{:<17} {id} ← {by}", env.kind)),
    }
}

fn on_child(m: &mut Model, event: ChildEvent) {
    let now = m.now;
    match event {
        ChildEvent::Spawned {
            id,
            role,
            pid,
            metrics,
            links,
        } => {
            let row = m
                .nodes
                .entry(id.clone())
                .or_insert_with(|| NodeRow::new(&id, role.as_str(), true));
            // A link's faults outlive the process: the proxy keeps them.
            let network = std::mem::take(&mut row.network);
            *row = NodeRow::new(&id, role.as_str(), true);
            row.pid = Some(pid);
            row.metrics = metrics;
            row.links = links;
            row.network = network;
            row.proc = Some(if m.feed_up && role.carries_messages() {
                Proc::Running
            } else {
                Proc::Starting
            });
            row.since = Some(now);
            m.log.push(now, Level::Info, format!("started {id} (pid {pid})"));
        }
        ChildEvent::Adopted { id, role, pid } => {
            // Its heartbeat may be here already: keep it, take it under care.
            let row = m
                .nodes
                .entry(id.clone())
                .or_insert_with(|| NodeRow::new(&id, role.as_str(), true));
            row.owned = true;
            row.pid = Some(pid);
            row.proc = Some(Proc::Running);
            // Up since it started, not since it was adopted (a heartbeat
            // not yet here fills it in).
            row.since = row
                .status
                .as_ref()
                .and_then(|s| crate::model::nodes::parse_time(&s.started_at));
            m.log.push(
                now,
                Level::Info,
                format!("adopted {id} (pid {pid}): it was running already, so none was started"),
            );
        }
        ChildEvent::Exited {
            id,
            role,
            code,
            signal,
            expected,
            last_words,
        } => {
            let row = m
                .nodes
                .entry(id.clone())
                .or_insert_with(|| NodeRow::new(&id, role.as_str(), true));
            row.proc = Some(Proc::Exited {
                code,
                signal,
                expected,
            });
            row.rate = 0.0;
            let how = crate::model::nodes::exit_text(code, signal);
            if expected {
                m.log.push(now, Level::Info, format!("{id} stopped ({how})"));
            } else {
                let why = last_words.map(|w| format!(": {w}")).unwrap_or_default();
                m.log
                    .push(now, Level::Alert, format!("{id} crashed ({how}){why}"));
            }
        }
        ChildEvent::Stopping { id } => {
            if let Some(row) = m.nodes.get_mut(&id) {
                row.proc = Some(Proc::Stopping);
            }
        }
        ChildEvent::Frozen { id, frozen } => {
            if let Some(row) = m.nodes.get_mut(&id) {
                row.proc = Some(if frozen { Proc::Frozen } else { Proc::Running });
                let text = if frozen {
                    format!("{id} frozen (SIGSTOP): its heartbeat stops, its lease will expire")
                } else {
                    format!("{id} thawed (SIGCONT)")
                };
                m.log.push(now, Level::Warn, text);
            }
        }
        ChildEvent::Failed { id, error } => {
            let row = m
                .nodes
                .entry(id.clone())
                .or_insert_with(|| NodeRow::new(&id, "?", true));
            row.proc = Some(Proc::Failed(error.clone()));
            m.log.push(now, Level::Alert, error);
        }
    }
}

fn on_placed(m: &mut Model, o: PlaceOutcome) {
    m.placing = m.placing.saturating_sub(o.requested);
    let accepted = o.accepted.len();
    if o.refused.is_empty() {
        if o.quiet {
            return;
        }
        let text = match o.accepted.as_slice() {
            [one] => format!("POST /orders → 201, order {}", short_id(one)),
            _ => format!("POST /orders ×{accepted} → all 201"),
        };
        m.log.push(m.now, Level::Info, text);
        return;
    }
    let refusals: Vec<String> = o.refused.iter().map(|(k, n)| format!("{n}× {k}")).collect();
    let short = format!(
        "POST /orders ×{}: {accepted} × 201, {}",
        o.requested,
        refusals.join(", ")
    );
    // A declined card (4xx) is business as usual; a 5xx or no answer is an outage.
    let outage = o.refused.keys().any(|k| !k.starts_with('4'));
    let level = if outage { Level::Alert } else { Level::Warn };
    let long = match o.first_error {
        Some(e) => format!("{short}: {e}"),
        None => short.clone(),
    };
    // The flash is the operator's answer: shown even while frozen.
    m.ui.flash = Some(short);
    m.dirty = true;
    m.log.push(m.now, level, long);
}
