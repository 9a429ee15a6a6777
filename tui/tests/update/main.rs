//! `update` through the public API: every message kind and every key, as
//! scenarios on a plain model. No sockets, no processes. One module per
//! part of the control room they test; the fixtures are here.

mod canary;
mod chaos;
mod keys;
mod messages;
mod panels;
mod play;
mod rollout;
mod storage;

use std::collections::BTreeMap;

use contracts::api::Customer;
use contracts::events::{self, envelope, OrderPaid, OrderPlaced, QueueDeadLettered};
use contracts::queue::{DeadLetter, QueueFigures, QueueStats};
use contracts::status::{BreakerState, Control, Faults, NodeState, NodeStatus};
use contracts::Envelope;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tui::model::{Detail, Level, LogLine, Model, NodeRow, Panel, Popup, Proc, RunInfo, Shown};
use tui::msg::ChildEvent;
use tui::msg::{Effect, Msg, PlaceOutcome};
use tui::topology::Role;
use tui::update::{step, update, Watchers};

/// The fixed start of every scenario.
const T0: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);
/// What `libc::SIGKILL` is on Linux and macOS.
const SIGKILL: i32 = 9;
const ORDER_URL: &str = "http://127.0.0.1:1234";

// The fixtures every module shares.

/// A fresh model at [`T0`], already drawn (not dirty).
fn model() -> Model {
    let mut m = Model::new(RunInfo::default(), T0);
    m.dirty = false;
    m
}

/// A plain key.
fn key(c: char) -> Msg {
    code(KeyCode::Char(c))
}

/// A key by code, without modifiers.
fn code(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Types each character of `keys`.
fn type_keys(m: &mut Model, keys: &str) -> Vec<Effect> {
    keys.chars().flat_map(|c| update(m, key(c))).collect()
}

/// Moves the clock.
fn tick(m: &mut Model, at: OffsetDateTime) {
    assert_eq!(update(m, Msg::Tick(at)), vec![]);
}

fn rfc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("RFC 3339")
}

/// A heartbeat sent at `at`.
fn beat(id: &str, role: &str, state: NodeState, pid: u32, at: OffsetDateTime) -> NodeStatus {
    NodeStatus {
        id: id.into(),
        role: role.into(),
        pid,
        host: String::new(),
        state,
        started_at: rfc(T0),
        at: rfc(at),
        handled: 0,
        failed: 0,
        in_flight: 0,
        outbox: 0,
        faults: Faults::default(),
        figures: Default::default(),
    }
}

/// The supervisor started `id` now.
fn spawn(m: &mut Model, id: &str, role: Role, pid: u32) {
    let msg = Msg::Child(ChildEvent::Spawned {
        id: id.into(),
        role,
        pid,
        metrics: None,
        links: vec![],
    });
    assert_eq!(update(m, msg), vec![]);
}

/// A node that is up now: started here (`owned`) or found running, then heard.
fn up_node(m: &mut Model, id: &str, role: Role, owned: bool, pid: u32) {
    m.nodes.insert(id.into(), NodeRow::new(id, role.as_str(), owned));
    if owned {
        spawn(m, id, role, pid);
    }
    let status = beat(id, role.as_str(), NodeState::Up, pid, m.now);
    assert_eq!(update(m, Msg::Status(Box::new(status))), vec![]);
    assert_eq!(m.nodes[id].shown(m.now), Shown::Up, "{id} is up");
}

/// An order service that is up and announces its address.
fn order_node(m: &mut Model) {
    let mut status = beat("order-1", "order", NodeState::Up, 3100, m.now);
    status.figures.http = Some(ORDER_URL.into());
    m.nodes
        .insert("order-1".into(), NodeRow::new("order-1", "order", false));
    update(m, Msg::Status(Box::new(status)));
    assert_eq!(m.order_url().as_deref(), Some(ORDER_URL));
}

fn child(m: &mut Model, event: ChildEvent) {
    assert_eq!(update(m, Msg::Child(event)), vec![]);
}

/// `order.placed` of `order_id` at `at`.
fn placed(order_id: &str, at: OffsetDateTime) -> Msg {
    let body = OrderPlaced {
        customer: Customer {
            name: "Ada".into(),
            address: "1 Loop St".into(),
        },
        items: vec![],
        amount_cents: 1250,
    };
    let mut env = envelope(&body, order_id, 1, "4bf92f3577b34da6a3ce929d0e0e4736", "order-1").unwrap();
    env.occurred_at = at;
    Msg::Event(Box::new(env))
}

/// `order.paid` of `order_id` at `at`.
fn paid(order_id: &str, at: OffsetDateTime) -> Msg {
    let body = OrderPaid {
        payment_id: "pay-1".into(),
        amount_cents: 1250,
    };
    let mut env = envelope(&body, order_id, 2, "4bf92f3577b34da6a3ce929d0e0e4736", "order-1").unwrap();
    env.occurred_at = at;
    Msg::Event(Box::new(env))
}

fn dead_letter(id: u64, queue: &str) -> DeadLetter {
    DeadLetter {
        id,
        queue: queue.into(),
        reason: "max attempts".into(),
        attempts: 5,
        at: rfc(T0),
        envelope: None,
        raw: Some("{}".into()),
    }
}

fn stats(name: &str, ready: u64, delayed: u64, dlq: u64) -> Msg {
    Msg::Stats(QueueStats {
        at: rfc(T0),
        queues: vec![QueueFigures {
            name: name.into(),
            ready,
            delayed,
            dlq,
            ..Default::default()
        }],
    })
}

/// The newest log line.
fn last_log(m: &Model) -> &LogLine {
    m.log.newest().next().expect("a log line")
}

fn flash(m: &Model) -> &str {
    m.ui.flash.as_deref().unwrap_or("")
}

fn confirm_question(m: &Model) -> String {
    match &m.ui.popup {
        Some(Popup::Confirm { question, .. }) => question.clone(),
        other => panic!("expected a Confirm popup, got {other:?}"),
    }
}

fn focus(m: &mut Model, panel: Panel) {
    m.ui.focus = Some(panel);
}

fn select(m: &mut Model, panel: Panel, id: &str) {
    m.ui.selected.insert(panel, id.into());
    assert_eq!(m.selected(panel).as_deref(), Some(id));
}

/// A kitchen started here and heard from, selected on the Nodes panel.
fn owned_kitchen(m: &mut Model) {
    up_node(m, "kitchen-1", Role::Kitchen, true, 4242);
    select(m, Panel::Nodes, "kitchen-1");
}

/// A child process exit, as the supervisor reports it.
fn exited(m: &mut Model, id: &str, role: Role, code: Option<i32>, signal: Option<i32>, expected: bool) {
    child(
        m,
        ChildEvent::Exited {
            id: id.into(),
            role,
            code,
            signal,
            expected,
            last_words: None,
        },
    );
}

/// One order's whole life, seq 1 to 8, as the order, kitchen and delivery
/// nodes publish it.
fn life(order_id: &str) -> Vec<Envelope> {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let placed = OrderPlaced {
        customer: Customer {
            name: "Ada".into(),
            address: "1 Loop St".into(),
        },
        items: vec![],
        amount_cents: 1250,
    };
    let mut envs = vec![envelope(&placed, order_id, 1, trace, "order-1").unwrap()];
    fn next<E: events::Event>(envs: &mut Vec<Envelope>, body: E, source: &str) {
        let cause = envs.last().expect("placed first").clone();
        let mut env = events::follow(&body, &cause, cause.seq + 1, source).unwrap();
        env.occurred_at = cause.occurred_at + Duration::milliseconds(10);
        envs.push(env);
    }
    let paid = OrderPaid {
        payment_id: "pay-1".into(),
        amount_cents: 1250,
    };
    next(&mut envs, paid, "order-1");
    let queued = events::OrderQueued {
        queue: "kitchen".into(),
    };
    next(&mut envs, queued, "order-1");
    let kitchen = || "kitchen-1".to_string();
    next(
        &mut envs,
        events::OrderCooking { kitchen: kitchen() },
        "kitchen-1",
    );
    next(&mut envs, events::OrderReady { kitchen: kitchen() }, "kitchen-1");
    let assigned = events::DriverAssigned {
        driver: "Rosa".into(),
        kitchen: Some(kitchen()),
    };
    next(&mut envs, assigned, "delivery");
    let notified = events::CustomerNotified {
        message: "on its way".into(),
    };
    next(&mut envs, notified, "delivery");
    let delivered = events::OrderDelivered {
        driver: "Rosa".into(),
    };
    next(&mut envs, delivered, "delivery");
    envs
}
