//! `update` through the public API: every message kind and every key, as
//! scenarios on a plain model. No sockets, no processes.

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
use tui::msg::{Effect, Msg, PlaceOutcome};
use tui::supervisor::ChildEvent;
use tui::topology::Role;
use tui::update::{step, update, Watchers};

/// The fixed start of every scenario.
const T0: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);
/// What `libc::SIGKILL` is on Linux and macOS.
const SIGKILL: i32 = 9;
const ORDER_URL: &str = "http://127.0.0.1:1234";

// ---------------------------------------------------------------- helpers

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

// ------------------------------------------------------------- messages

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

#[test]
fn tick_marks_dirty_only_when_the_displayed_second_changes() {
    let mut m = model();
    tick(&mut m, T0 + Duration::milliseconds(250));
    assert!(!m.dirty, "same second");
    assert_eq!(m.now, T0 + Duration::milliseconds(250));
    tick(&mut m, T0 + Duration::milliseconds(750));
    assert!(!m.dirty, "still the same second");
    tick(&mut m, T0 + Duration::milliseconds(1000));
    assert!(m.dirty, "the second changed");
    assert_eq!(m.now, T0 + Duration::seconds(1));
}

#[test]
fn resize_marks_dirty() {
    let mut m = model();
    assert_eq!(update(&mut m, Msg::Resize), vec![]);
    assert!(m.dirty);
}

#[test]
fn a_heartbeat_from_an_unknown_node_adds_a_row_not_owned() {
    let mut m = model();
    let effects = update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-7", "kitchen", NodeState::Up, 777, T0))),
    );
    assert_eq!(effects, vec![]);
    assert!(m.dirty);
    let row = &m.nodes["kitchen-7"];
    assert!(!row.owned);
    assert_eq!(row.proc, None);
    assert_eq!(row.role, "kitchen");
    assert_eq!(row.pid, Some(777));
    assert_eq!(row.since, Some(T0));
    assert_eq!(row.shown(m.now), Shown::Up);
    let line = last_log(&m);
    assert_eq!(line.level, Level::Info);
    assert_eq!(line.text, "kitchen-7 is up (pid 777)");
}

#[test]
fn a_heartbeat_goes_stale_after_three_seconds() {
    let mut m = model();
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    tick(&mut m, T0 + Duration::seconds(3));
    assert_eq!(m.nodes["kitchen-7"].shown(m.now), Shown::Up);
    tick(&mut m, T0 + Duration::seconds(4));
    assert_eq!(m.nodes["kitchen-7"].shown(m.now), Shown::Offline);
}

#[test]
fn the_rate_comes_from_two_heartbeats_handled_and_at() {
    let mut m = model();
    let mut first = beat("kitchen-1", "kitchen", NodeState::Up, 42, T0);
    first.handled = 10;
    update(&mut m, Msg::Status(Box::new(first)));
    assert_eq!(m.nodes["kitchen-1"].rate, 0.0, "one heartbeat gives no rate");
    let mut second = beat(
        "kitchen-1",
        "kitchen",
        NodeState::Up,
        42,
        T0 + Duration::seconds(2),
    );
    second.handled = 40;
    update(&mut m, Msg::Status(Box::new(second)));
    assert_eq!(m.nodes["kitchen-1"].rate, 15.0, "30 messages in 2 s");
    // A heartbeat with the same `at` does not divide by zero.
    let mut third = beat(
        "kitchen-1",
        "kitchen",
        NodeState::Up,
        42,
        T0 + Duration::seconds(2),
    );
    third.handled = 50;
    update(&mut m, Msg::Status(Box::new(third)));
    assert_eq!(m.nodes["kitchen-1"].rate, 15.0);
}

#[test]
fn a_breaker_opening_logs_an_alert_and_half_open_a_warning() {
    let mut m = model();
    let with_breaker = |b: BreakerState, at| {
        let mut s = beat("order-1", "order", NodeState::Up, 31, at);
        s.figures.order.breaker = Some(b);
        Msg::Status(Box::new(s))
    };
    update(&mut m, with_breaker(BreakerState::Closed, T0));
    let lines = m.log.len();
    update(
        &mut m,
        with_breaker(BreakerState::Closed, T0 + Duration::seconds(1)),
    );
    assert_eq!(m.log.len(), lines, "no change, no line");
    update(
        &mut m,
        with_breaker(BreakerState::Open, T0 + Duration::seconds(2)),
    );
    let line = last_log(&m);
    assert_eq!(line.level, Level::Alert);
    assert_eq!(line.text, "order-1: circuit breaker closed → open");
    assert_eq!(m.log.alerts(), 1);
    assert_eq!(m.nodes["order-1"].faults_text(m.now), "breaker open");
    update(
        &mut m,
        with_breaker(BreakerState::HalfOpen, T0 + Duration::seconds(3)),
    );
    let line = last_log(&m);
    assert_eq!(line.level, Level::Warn);
    assert_eq!(line.text, "order-1: circuit breaker open → half_open");
}

#[test]
fn a_fault_change_in_a_heartbeat_is_logged() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 42);
    let mut s = beat("kitchen-1", "kitchen", NodeState::Up, 42, T0);
    s.faults.latency_ms = 100;
    update(&mut m, Msg::Status(Box::new(s.clone())));
    assert_eq!(last_log(&m).level, Level::Warn);
    assert_eq!(last_log(&m).text, "kitchen-1: faults now +100ms");
    s.faults = Faults::default();
    update(&mut m, Msg::Status(Box::new(s)));
    assert_eq!(last_log(&m).text, "kitchen-1: faults now none");
}

#[test]
fn a_paused_heartbeat_shows_paused_and_warns() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 42);
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-1", "kitchen", NodeState::Paused, 42, T0))),
    );
    assert_eq!(m.nodes["kitchen-1"].shown(m.now), Shown::Paused);
    assert_eq!(
        m.nodes["kitchen-1"].shown(m.now).label(),
        "on hold",
        "not SIGSTOP's word"
    );
    assert_eq!(last_log(&m).level, Level::Warn);
    assert_eq!(last_log(&m).text, "kitchen-1 on hold: taking no work");
}

#[test]
fn a_last_will_with_pid_0_shows_the_node_crashed() {
    let mut m = model();
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    let alerts = m.log.alerts();
    update(
        &mut m,
        Msg::Status(Box::new(NodeStatus::offline("kitchen-7", "kitchen"))),
    );
    let row = &m.nodes["kitchen-7"];
    assert_eq!(row.shown(m.now), Shown::Crashed("connection lost".into()));
    assert!(!row.shown(m.now).is_alive());
    assert_eq!(row.rate, 0.0);
    assert_eq!(m.log.alerts(), alerts + 1);
    assert_eq!(
        last_log(&m).text,
        "kitchen-7 lost its broker connection (last will)"
    );
}

#[test]
fn a_clean_offline_heartbeat_shows_the_node_down() {
    let mut m = model();
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    let alerts = m.log.alerts();
    update(
        &mut m,
        Msg::Status(Box::new(beat(
            "kitchen-7",
            "kitchen",
            NodeState::Offline,
            777,
            T0,
        ))),
    );
    assert_eq!(m.nodes["kitchen-7"].shown(m.now), Shown::Down);
    assert_eq!(m.log.alerts(), alerts, "a clean exit is no alert");
}

#[test]
fn stats_fill_the_queue_rows_and_their_history() {
    let mut m = model();
    update(&mut m, stats("kitchen", 3, 2, 1));
    assert!(m.dirty);
    update(&mut m, stats("kitchen", 7, 0, 4));
    let row = &m.queues.rows["kitchen"];
    assert_eq!(row.figures.ready, 7);
    assert_eq!(row.figures.dlq, 4);
    assert_eq!(row.depth.iter().copied().collect::<Vec<_>>(), [5, 7]);
    assert_eq!(row.dlq.iter().copied().collect::<Vec<_>>(), [1, 4]);
    assert_eq!(m.queues.names(), ["kitchen", "delivery"]);
}

#[test]
fn an_event_adds_the_order_and_a_log_line() {
    let mut m = model();
    assert_eq!(update(&mut m, placed("ord-0000aaaa", T0)), vec![]);
    assert!(m.dirty);
    assert_eq!(m.orders.total(), 1);
    assert_eq!(m.orders.get("ord-0000aaaa").unwrap().state_label(), "placed");
    let line = last_log(&m);
    assert_eq!(line.level, Level::Event);
    assert_eq!(line.at, T0);
    assert!(line.text.starts_with("order.placed"), "{}", line.text);
    assert!(line.text.contains("0000aaaa"), "{}", line.text);
    assert!(line.text.ends_with("← order-1"), "{}", line.text);
    update(&mut m, paid("ord-0000aaaa", T0 + Duration::seconds(1)));
    assert_eq!(m.orders.get("ord-0000aaaa").unwrap().state_label(), "paid");
    assert_eq!(m.orders.total(), 1);
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

#[test]
fn a_gap_holds_an_orders_events_back_until_it_fills() {
    let mut m = model();
    let id = "ord-0000beef";
    let envs = life(id);
    update(&mut m, Msg::Event(Box::new(envs[2].clone())));
    update(&mut m, Msg::Event(Box::new(envs[0].clone())));
    let e = m.orders.get(id).expect("the order");
    assert_eq!(e.state_label(), "placed");
    assert_eq!(e.fold.held_back(), 1);
    assert_eq!(e.fold.gaps(), [2..=2], "shown as: waiting for seq 2");
    update(&mut m, Msg::Event(Box::new(envs[1].clone())));
    let e = m.orders.get(id).expect("the order");
    assert_eq!((e.state_label(), e.fold.held_back()), ("queued", 0));
}

#[test]
fn one_orders_events_shuffled_and_duplicated_are_applied_once_in_seq_order() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let id = "ord-0000beef";
    let life = life(id);
    let kinds: Vec<&str> = life.iter().map(|e| e.kind.as_str()).collect();
    let mut held_somewhere = false;
    for seed in 0..50 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut stream: Vec<Envelope> = life.clone();
        stream.extend(life.iter().filter(|_| rng.gen_bool(0.5)).cloned());
        stream.shuffle(&mut rng);
        let mut m = model();
        for env in stream {
            update(&mut m, Msg::Event(Box::new(env)));
            held_somewhere |= m.orders.get(id).is_some_and(|e| e.fold.held_back() > 0);
        }
        let e = m.orders.get(id).expect("the order");
        assert_eq!(e.state_label(), "delivered", "seed {seed}");
        assert_eq!(e.fold.held_back(), 0, "seed {seed}");
        assert!(
            e.fold.rejected().is_empty(),
            "seed {seed}: {:?}",
            e.fold.rejected()
        );
        let steps = e.steps();
        assert_eq!(
            steps.iter().map(|s| s.seq).collect::<Vec<_>>(),
            (1..=8).collect::<Vec<_>>(),
            "seed {seed}: each seq once, in order"
        );
        assert_eq!(
            steps.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
            kinds,
            "seed {seed}"
        );
        assert_eq!(steps.last().map(|s| s.state), Some("delivered"), "seed {seed}");
        assert_eq!(
            (e.fold.kitchen(), e.fold.driver()),
            (Some("kitchen-1"), Some("Rosa"))
        );
        assert_eq!(m.orders.total(), 1, "seed {seed}");
    }
    assert!(held_somewhere, "the shuffles made gaps");
}

#[test]
fn a_security_refusal_is_an_alert_naming_sender_and_reason() {
    let mut m = model();
    let body = contracts::events::SecurityRefused {
        what: "event".into(),
        sender: "delivery".into(),
        reason: "unsigned: the message has no signature".into(),
        topic: "pizza/log/put".into(),
        count: 3,
    };
    let env = envelope(&body, "", 0, "4bf92f3577b34da6a3ce929d0e0e4736", "broker").unwrap();
    update(&mut m, Msg::Event(Box::new(env)));
    let line = last_log(&m);
    assert_eq!(line.level, Level::Alert);
    assert_eq!(
        line.text,
        "security: refused 3 × event from delivery on pizza/log/put: unsigned: the message has no signature"
    );
    assert_eq!(m.orders.total(), 0);
}

#[test]
fn a_dead_lettered_event_is_an_alert_and_no_order() {
    let mut m = model();
    let body = QueueDeadLettered {
        queue: "kitchen".into(),
        reason: "max attempts".into(),
        event_id: None,
        order_id: Some("ord-0000bbbb".into()),
        attempts: 5,
    };
    let env = envelope(
        &body,
        "ord-0000bbbb",
        0,
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "broker",
    )
    .unwrap();
    update(&mut m, Msg::Event(Box::new(env)));
    let line = last_log(&m);
    assert_eq!(line.level, Level::Alert);
    assert_eq!(
        line.text,
        "DLQ kitchen: max attempts after 5 attempt(s), order 0000bbbb"
    );
    assert_eq!(m.log.alerts(), 1);
    assert_eq!(m.orders.total(), 0, "an alert is not a step of the order");
}

#[test]
fn dead_letters_are_stored_by_queue() {
    let mut m = model();
    let items = vec![dead_letter(7, "kitchen"), dead_letter(9, "kitchen")];
    let effects = update(
        &mut m,
        Msg::DeadLetters {
            queue: "kitchen".into(),
            items: items.clone(),
        },
    );
    assert_eq!(effects, vec![]);
    assert!(m.dirty);
    assert_eq!(m.queues.dead["kitchen"], items);
}

#[test]
fn the_feed_logs_once_per_change() {
    let mut m = model();
    let feed = |connected: bool| Msg::Feed {
        connected,
        detail: "connection refused".into(),
    };
    update(&mut m, feed(false));
    assert!(m.log.is_empty(), "down at start is no change");
    update(&mut m, feed(true));
    assert!(m.feed_up);
    assert_eq!(m.log.len(), 1);
    assert_eq!(last_log(&m).level, Level::Info);
    assert_eq!(last_log(&m).text, "connected to the broker");
    update(&mut m, feed(true));
    assert_eq!(m.log.len(), 1, "still up: no new line");
    update(&mut m, feed(false));
    assert!(!m.feed_up);
    assert_eq!(m.log.len(), 2);
    assert_eq!(last_log(&m).level, Level::Alert);
    assert_eq!(
        last_log(&m).text,
        "lost the broker: connection refused; reconnecting"
    );
    update(&mut m, feed(false));
    assert_eq!(m.log.len(), 2);
}

#[test]
fn the_feed_coming_up_shows_a_starting_broker_running() {
    let mut m = model();
    spawn(&mut m, "broker", Role::Broker, 100);
    assert_eq!(m.nodes["broker"].proc, Some(Proc::Starting));
    assert_eq!(m.nodes["broker"].shown(m.now), Shown::Starting);
    update(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    assert_eq!(m.nodes["broker"].proc, Some(Proc::Running));
    assert_eq!(m.nodes["broker"].shown(m.now), Shown::Up);
    // A broker restarted while the feed is up is running at once.
    exited(&mut m, "broker", Role::Broker, Some(0), None, true);
    spawn(&mut m, "broker", Role::Broker, 101);
    assert_eq!(m.nodes["broker"].proc, Some(Proc::Running));
    assert_eq!(m.nodes["broker"].pid, Some(101));
}

#[test]
fn a_spawned_node_starts_then_runs_on_its_first_heartbeat() {
    let mut m = model();
    spawn(&mut m, "kitchen-1", Role::Kitchen, 4242);
    assert!(m.dirty);
    let row = &m.nodes["kitchen-1"];
    assert!(row.owned);
    assert_eq!(row.pid, Some(4242));
    assert_eq!(row.since, Some(T0));
    assert_eq!(row.shown(m.now), Shown::Starting);
    assert_eq!(last_log(&m).text, "started kitchen-1 (pid 4242)");
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-1", "kitchen", NodeState::Up, 4242, T0))),
    );
    assert_eq!(m.nodes["kitchen-1"].proc, Some(Proc::Running));
    assert_eq!(m.nodes["kitchen-1"].shown(m.now), Shown::Up);
}

#[test]
fn an_expected_exit_shows_down_and_an_unexpected_one_crashed() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4242);
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4243);
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    assert_eq!(m.nodes["kitchen-1"].shown(m.now), Shown::Down);
    assert_eq!(last_log(&m).level, Level::Info);
    assert_eq!(last_log(&m).text, "kitchen-1 stopped (exit 0)");
    assert_eq!(m.log.alerts(), 0);
    exited(&mut m, "kitchen-2", Role::Kitchen, None, Some(SIGKILL), false);
    assert_eq!(
        m.nodes["kitchen-2"].shown(m.now),
        Shown::Crashed("SIGKILL".into())
    );
    assert_eq!(m.nodes["kitchen-2"].rate, 0.0);
    assert_eq!(last_log(&m).level, Level::Alert);
    assert_eq!(last_log(&m).text, "kitchen-2 crashed (SIGKILL)");
    assert_eq!(m.log.alerts(), 1);
}

#[test]
fn a_crash_alert_carries_the_last_line_the_node_wrote() {
    let mut m = model();
    up_node(&mut m, "delivery", Role::Delivery, true, 77);
    child(
        &mut m,
        ChildEvent::Exited {
            id: "delivery".into(),
            role: Role::Delivery,
            code: Some(1),
            signal: None,
            expected: false,
            last_words: Some("Error: cannot listen on 127.0.0.1:20001".into()),
        },
    );
    assert_eq!(
        last_log(&m).text,
        "delivery crashed (exit 1): Error: cannot listen on 127.0.0.1:20001"
    );
}

#[test]
fn an_exit_with_a_code_names_it() {
    let mut m = model();
    up_node(&mut m, "payment-1", Role::Payment, true, 50);
    exited(&mut m, "payment-1", Role::Payment, Some(3), None, false);
    assert_eq!(m.nodes["payment-1"].shown(m.now), Shown::Crashed("exit 3".into()));
}

#[test]
fn stopping_frozen_and_failed_children() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4242);
    child(
        &mut m,
        ChildEvent::Stopping {
            id: "kitchen-1".into(),
        },
    );
    assert_eq!(m.nodes["kitchen-1"].shown(m.now), Shown::Stopping);

    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4243);
    child(
        &mut m,
        ChildEvent::Frozen {
            id: "kitchen-2".into(),
            frozen: true,
        },
    );
    assert_eq!(m.nodes["kitchen-2"].proc, Some(Proc::Frozen));
    assert_eq!(m.nodes["kitchen-2"].shown(m.now), Shown::Frozen);
    assert_eq!(m.nodes["kitchen-2"].shown(m.now).label(), "frozen");
    assert_eq!(last_log(&m).level, Level::Warn);
    assert!(last_log(&m).text.starts_with("kitchen-2 frozen (SIGSTOP)"));
    child(
        &mut m,
        ChildEvent::Frozen {
            id: "kitchen-2".into(),
            frozen: false,
        },
    );
    assert_eq!(m.nodes["kitchen-2"].proc, Some(Proc::Running));
    assert_eq!(m.nodes["kitchen-2"].shown(m.now), Shown::Up);
    assert_eq!(last_log(&m).text, "kitchen-2 thawed (SIGCONT)");

    child(
        &mut m,
        ChildEvent::Failed {
            id: "delivery-1".into(),
            error: "cannot start delivery-1: no such file".into(),
        },
    );
    let row = &m.nodes["delivery-1"];
    assert!(row.owned);
    assert_eq!(
        row.proc,
        Some(Proc::Failed("cannot start delivery-1: no such file".into()))
    );
    assert_eq!(row.shown(m.now), Shown::Crashed("did not start".into()));
    assert_eq!(last_log(&m).level, Level::Alert);
    assert_eq!(last_log(&m).text, "cannot start delivery-1: no such file");
}

#[test]
fn events_of_unknown_children_are_ignored_where_there_is_no_row() {
    let mut m = model();
    child(&mut m, ChildEvent::Stopping { id: "ghost".into() });
    child(
        &mut m,
        ChildEvent::Frozen {
            id: "ghost".into(),
            frozen: true,
        },
    );
    assert!(m.nodes.is_empty());
    assert!(m.log.is_empty());
}

#[test]
fn a_refusal_warns_and_flashes() {
    let mut m = model();
    m.ui.frozen = true;
    assert_eq!(
        update(&mut m, Msg::Refused("kitchen-1 is already running".into())),
        vec![]
    );
    assert_eq!(flash(&m), "kitchen-1 is already running");
    assert_eq!(last_log(&m).level, Level::Warn);
    assert_eq!(last_log(&m).text, "kitchen-1 is already running");
    assert!(m.dirty, "an answer to the operator shows even while frozen");
}

#[test]
fn placed_orders_all_accepted_log_info() {
    let mut m = model();
    m.placing = 3;
    let outcome = PlaceOutcome {
        requested: 2,
        accepted: vec!["ord-0000aaaa".into(), "ord-0000bbbb".into()],
        ..Default::default()
    };
    assert_eq!(update(&mut m, Msg::Placed(outcome)), vec![]);
    assert_eq!(m.placing, 1);
    assert_eq!(last_log(&m).level, Level::Info);
    assert_eq!(last_log(&m).text, "POST /orders ×2 → all 201");
    assert_eq!(m.ui.flash, None);
    assert_eq!(m.log.alerts(), 0);

    let one = PlaceOutcome {
        requested: 1,
        accepted: vec!["ord-0000cccc".into()],
        ..Default::default()
    };
    update(&mut m, Msg::Placed(one));
    assert_eq!(m.placing, 0);
    assert_eq!(last_log(&m).text, "POST /orders → 201, order 0000cccc");
    update(
        &mut m,
        Msg::Placed(PlaceOutcome {
            requested: 5,
            ..Default::default()
        }),
    );
    assert_eq!(m.placing, 0, "never below zero");
}

#[test]
fn refused_orders_alert_and_flash_the_status() {
    let mut m = model();
    m.placing = 5;
    let outcome = PlaceOutcome {
        requested: 5,
        accepted: vec!["ord-0000aaaa".into(), "ord-0000bbbb".into()],
        refused: BTreeMap::from([("503 payment_unavailable".to_string(), 3)]),
        first_error: Some("payment is unavailable".into()),
    };
    assert_eq!(update(&mut m, Msg::Placed(outcome)), vec![]);
    assert_eq!(m.placing, 0);
    let line = last_log(&m);
    assert_eq!(line.level, Level::Alert);
    assert!(line.text.contains("503 payment_unavailable"), "{}", line.text);
    assert!(line.text.contains("payment is unavailable"), "{}", line.text);
    assert!(flash(&m).contains("503 payment_unavailable"), "{}", flash(&m));
    assert!(
        line.text.starts_with(flash(&m)),
        "the flash is the log line's short form"
    );
    assert_eq!(m.log.alerts(), 1);
}

#[test]
fn terminate_quits_and_stops_the_nodes() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4242);
    assert_eq!(
        update(&mut m, Msg::Terminate),
        vec![Effect::Quit { stop_nodes: true }]
    );
    assert_eq!(m.quitting, Some(true));
    assert_eq!(m.ui.popup, None, "no question asked");
}

// ----------------------------------------------------------------- keys

#[test]
fn help_opens_with_question_mark_and_any_key_closes_it() {
    let mut m = model();
    assert_eq!(update(&mut m, key('?')), vec![]);
    assert!(m.dirty);
    assert_eq!(m.ui.popup, Some(Popup::Help));
    // The closing key does nothing else: `q` here does not quit.
    assert_eq!(update(&mut m, key('q')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.quitting, None);
    update(&mut m, key('?'));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.ui.focused(), Panel::Nodes, "tab only closed help");
    update(&mut m, key('?'));
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.popup, None);
}

#[test]
fn a_key_release_does_nothing() {
    let mut m = model();
    let mut release = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(update(&mut m, Msg::Key(release)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn tab_and_shift_tab_cycle_the_panels() {
    let mut m = model();
    assert_eq!(m.ui.focused(), Panel::Nodes);
    let mut seen = vec![];
    for _ in 0..5 {
        update(&mut m, code(KeyCode::Tab));
        seen.push(m.ui.focused());
    }
    assert_eq!(
        seen,
        [
            Panel::Queues,
            Panel::Orders,
            Panel::Drivers,
            Panel::Events,
            Panel::Nodes
        ]
    );
    let back_tab = Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    update(&mut m, back_tab.clone());
    assert_eq!(m.ui.focused(), Panel::Events);
    update(&mut m, back_tab);
    assert_eq!(m.ui.focused(), Panel::Drivers);
}

#[test]
fn j_k_g_and_arrows_move_the_node_selection_by_id() {
    let mut m = model();
    for (id, role) in [
        ("kitchen-1", Role::Kitchen),
        ("broker", Role::Broker),
        ("order-1", Role::Order),
        ("kitchen-2", Role::Kitchen),
    ] {
        up_node(&mut m, id, role, false, 1);
    }
    assert_eq!(m.node_ids(), ["broker", "order-1", "kitchen-1", "kitchen-2"]);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("broker"), "first row");
    let sel = |m: &Model| m.selected(Panel::Nodes).unwrap();
    update(&mut m, key('j'));
    assert_eq!(sel(&m), "order-1");
    update(&mut m, code(KeyCode::Down));
    assert_eq!(sel(&m), "kitchen-1");
    update(&mut m, key('k'));
    assert_eq!(sel(&m), "order-1");
    update(&mut m, code(KeyCode::Up));
    update(&mut m, code(KeyCode::Up));
    assert_eq!(sel(&m), "broker", "k stops at the top");
    update(&mut m, key('G'));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, key('j'));
    assert_eq!(sel(&m), "kitchen-2", "j stops at the bottom");
    update(&mut m, key('g'));
    assert_eq!(sel(&m), "broker");
    update(&mut m, code(KeyCode::End));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, code(KeyCode::PageUp));
    assert_eq!(sel(&m), "broker");
    update(&mut m, code(KeyCode::PageDown));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, code(KeyCode::Home));
    assert_eq!(sel(&m), "broker");
}

#[test]
fn the_node_selection_stays_on_its_id_when_rows_are_added_before_it() {
    let mut m = model();
    up_node(&mut m, "kitchen-2", Role::Kitchen, false, 2);
    up_node(&mut m, "kitchen-3", Role::Kitchen, false, 3);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-3"));
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 1);
    spawn(&mut m, "broker", Role::Broker, 100);
    assert_eq!(m.node_ids(), ["broker", "kitchen-1", "kitchen-2", "kitchen-3"]);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-3"));
    update(&mut m, key('k'));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-2"));
}

#[test]
fn the_order_selection_stays_on_its_id_when_new_orders_arrive() {
    let mut m = model();
    focus(&mut m, Panel::Orders);
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    assert_eq!(m.selectable(Panel::Orders), ["ord-2", "ord-1"], "newest first");
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, placed("ord-3", T0));
    update(&mut m, placed("ord-4", T0));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, key('k'));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-2"));
}

#[test]
fn the_driver_selection_moves_over_every_delivery_nodes_drivers() {
    let mut m = model();
    let mut s = beat("delivery-1", "delivery", NodeState::Up, 61, T0);
    s.figures.delivery.drivers = serde_json::from_value(serde_json::json!([
        {"driver": "dora", "order_id": null, "since": null},
        {"driver": "ezra", "order_id": "ord-1", "since": rfc(T0)},
    ]))
    .ok();
    update(&mut m, Msg::Status(Box::new(s)));
    focus(&mut m, Panel::Drivers);
    assert_eq!(m.selectable(Panel::Drivers), ["dora", "ezra"]);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Drivers).as_deref(), Some("ezra"));
    // The events panel has nothing to select.
    focus(&mut m, Panel::Events);
    assert_eq!(update(&mut m, key('j')), vec![]);
    assert_eq!(m.selected(Panel::Events), None);
}

#[test]
fn slash_filters_the_orders_enter_keeps_the_filter_esc_clears_it() {
    let mut m = model();
    for id in ["ord-apple", "ord-berry", "ord-apricot"] {
        update(&mut m, placed(id, T0));
    }
    assert_eq!(update(&mut m, key('/')), vec![]);
    assert!(m.ui.filtering);
    assert_eq!(m.ui.focused(), Panel::Orders, "/ moves to the orders");
    // While filtering, letters go to the filter: `q` does not quit.
    assert_eq!(type_keys(&mut m, "APq"), vec![]);
    assert_eq!(m.quitting, None);
    assert_eq!(m.ui.filter, "APq");
    assert_eq!(m.selectable(Panel::Orders), Vec::<String>::new());
    update(&mut m, code(KeyCode::Backspace));
    assert_eq!(m.ui.filter, "AP");
    assert_eq!(
        m.selectable(Panel::Orders),
        ["ord-apricot", "ord-apple"],
        "case-insensitive"
    );
    update(&mut m, code(KeyCode::Enter));
    assert!(!m.ui.filtering);
    assert_eq!(m.ui.filter, "AP", "enter keeps the filter");
    assert_eq!(m.selectable(Panel::Orders), ["ord-apricot", "ord-apple"]);
    // Esc on the panel clears it.
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.filter, "");
    assert_eq!(m.selectable(Panel::Orders).len(), 3);
    // Esc while typing clears and stops filtering.
    update(&mut m, key('/'));
    type_keys(&mut m, "berry");
    assert_eq!(m.selectable(Panel::Orders), ["ord-berry"]);
    update(&mut m, code(KeyCode::Esc));
    assert!(!m.ui.filtering);
    assert_eq!(m.ui.filter, "");
    assert_eq!(m.selectable(Panel::Orders).len(), 3);
}

#[test]
fn the_filter_matches_the_state_too_and_stops_at_40_characters() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    update(&mut m, paid("ord-2", T0));
    update(&mut m, key('/'));
    type_keys(&mut m, "paid");
    assert_eq!(m.selectable(Panel::Orders), ["ord-2"]);
    type_keys(&mut m, &"x".repeat(50));
    assert_eq!(m.ui.filter.chars().count(), 40);
}

#[test]
fn x_on_an_order_asks_then_cancels_it_through_the_order_service() {
    let mut m = model();
    order_node(&mut m);
    update(&mut m, placed("ord-1", T0));
    update(&mut m, paid("ord-1", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(confirm_question(&m), "cancel order ord-1 (paid)?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::CancelOrder {
            url: ORDER_URL.into(),
            order_id: "ord-1".into()
        }]
    );
    update(
        &mut m,
        Msg::CancelAnswered {
            order_id: "ord-1".into(),
            outcome: Ok(()),
        },
    );
    assert!(
        flash(&m).starts_with("cancellation of ord-1 accepted"),
        "{}",
        flash(&m)
    );
    update(
        &mut m,
        Msg::CancelAnswered {
            order_id: "ord-1".into(),
            outcome: Err("409 order ord-1 was delivered already".into()),
        },
    );
    assert_eq!(last_log(&m).level, Level::Warn);
    assert!(last_log(&m).text.contains("409"), "{}", last_log(&m).text);
}

#[test]
fn x_on_an_order_without_an_order_service_or_one_that_ended_only_flashes() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert!(flash(&m).contains("no order service"), "{}", flash(&m));
}

#[test]
fn brackets_step_through_an_orders_history_and_back_to_live() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, paid("ord-1", T0));
    focus(&mut m, Panel::Orders);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.history_step, None, "live");
    update(&mut m, key('['));
    assert_eq!(m.ui.history_step, Some(0), "as of the first event");
    update(&mut m, code(KeyCode::Left));
    assert_eq!(m.ui.history_step, Some(0), "stays at the first");
    update(&mut m, key(']'));
    assert_eq!(m.ui.history_step, None, "past the last: live again");
    update(&mut m, key('['));
    update(&mut m, code(KeyCode::Esc));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.history_step, None, "a reopened detail is live");
}

#[test]
fn history_steps_are_clamped() {
    use tui::keys::step_history;
    assert_eq!(step_history(None, true, 0), None);
    assert_eq!(step_history(None, true, 5), Some(3));
    assert_eq!(step_history(Some(3), false, 5), None);
    assert_eq!(step_history(Some(2), false, 5), Some(3));
    assert_eq!(step_history(Some(0), true, 5), Some(0));
    assert_eq!(step_history(None, false, 5), None);
}

#[test]
fn enter_opens_an_order_and_esc_closes_it() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, code(KeyCode::Enter)), vec![]);
    assert_eq!(m.ui.detail, Some(Detail::Order("ord-2".into())));
    // j moves the detail to the next order.
    update(&mut m, key('j'));
    assert_eq!(m.ui.detail, Some(Detail::Order("ord-1".into())));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None);
    // Tab leaves the detail for the next panel.
    update(&mut m, code(KeyCode::Enter));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.ui.detail, None);
    assert_eq!(m.ui.focused(), Panel::Drivers);
}

#[test]
fn enter_with_no_orders_opens_nothing() {
    let mut m = model();
    focus(&mut m, Panel::Orders);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.detail, None);
    focus(&mut m, Panel::Nodes);
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 1);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.detail, None, "nodes have no detail view");
}

#[test]
fn enter_on_a_queue_opens_its_dead_letters_r_requeues_one_and_a_all() {
    let mut m = model();
    update(&mut m, stats("kitchen", 0, 0, 2));
    update(
        &mut m,
        Msg::DeadLetters {
            queue: "delivery".into(),
            items: vec![dead_letter(7, "delivery"), dead_letter(9, "delivery")],
        },
    );
    focus(&mut m, Panel::Queues);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Queues).as_deref(), Some("delivery"));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "delivery".into(),
            cursor: 0
        })
    );
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("delivery".into(), Some(7))]
    );
    assert_eq!(last_log(&m).text, "re-queue dead letter 7 of delivery");
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "delivery".into(),
            cursor: 1
        }),
        "the cursor stops at the last dead letter"
    );
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("delivery".into(), Some(9))]
    );
    assert_eq!(
        update(&mut m, key('A')),
        vec![Effect::Requeue("delivery".into(), None)]
    );
    assert_eq!(last_log(&m).text, "re-queue all 2 dead letters of delivery");
    assert!(m.ui.detail.is_some(), "the view stays open");
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None);
}

#[test]
fn r_on_a_queue_without_dead_letters_flashes() {
    let mut m = model();
    focus(&mut m, Panel::Queues);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "kitchen".into(),
            cursor: 0
        })
    );
    assert_eq!(update(&mut m, key('r')), vec![]);
    assert_eq!(flash(&m), "kitchen has no dead letters");
}

#[test]
fn r_requeues_the_highlighted_letter_after_the_list_shrinks() {
    let mut m = model();
    let list = |ids: &[u64]| Msg::DeadLetters {
        queue: "kitchen".into(),
        items: ids.iter().map(|i| dead_letter(*i, "kitchen")).collect(),
    };
    update(&mut m, list(&[7, 8, 9]));
    focus(&mut m, Panel::Queues);
    update(&mut m, code(KeyCode::Enter));
    update(&mut m, key('G'));
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("kitchen".into(), Some(9))]
    );
    // The keeper lists the two that are left.
    update(&mut m, list(&[7, 8]));
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("kitchen".into(), Some(8))],
        "flash: {}",
        flash(&m)
    );
}

#[test]
fn space_freezes_the_display_but_keys_still_redraw() {
    let mut m = model();
    update(&mut m, key(' '));
    assert!(m.ui.frozen);
    assert!(flash(&m).contains("frozen"), "{}", flash(&m));
    m.dirty = false;
    update(&mut m, Msg::Tick(T0 + Duration::seconds(5)));
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-1", "kitchen", NodeState::Up, 1, T0))),
    );
    update(&mut m, stats("kitchen", 1, 0, 0));
    update(&mut m, placed("ord-1", T0));
    update(
        &mut m,
        Msg::DeadLetters {
            queue: "kitchen".into(),
            items: vec![],
        },
    );
    update(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    spawn(&mut m, "kitchen-2", Role::Kitchen, 2);
    update(&mut m, Msg::Placed(PlaceOutcome::default()));
    assert!(!m.dirty, "data does not redraw while frozen");
    assert_eq!(m.orders.total(), 1, "but the model follows");
    assert!(m.nodes.contains_key("kitchen-1"));
    update(&mut m, key('j'));
    assert!(m.dirty, "keys redraw");
    m.dirty = false;
    update(&mut m, Msg::Resize);
    assert!(m.dirty, "a resize redraws");
    update(&mut m, key(' '));
    assert!(!m.ui.frozen);
    assert_eq!(flash(&m), "display follows the platform again");
    m.dirty = false;
    update(&mut m, stats("kitchen", 2, 0, 0));
    assert!(m.dirty);
}

#[test]
fn a_refused_burst_flashes_even_while_frozen() {
    let mut m = model();
    update(&mut m, key(' '));
    m.dirty = false;
    let outcome = PlaceOutcome {
        requested: 1,
        accepted: vec![],
        refused: BTreeMap::from([("503 payment_unavailable".to_string(), 1)]),
        first_error: None,
    };
    update(&mut m, Msg::Placed(outcome));
    assert!(flash(&m).contains("503 payment_unavailable"));
    assert!(m.dirty, "the answer to `o` is drawn like a refusal is");
}

#[test]
fn capital_letters_and_symbols_arrive_with_shift() {
    let shifted = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT));
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, shifted('?'));
    assert_eq!(m.ui.popup, Some(Popup::Help));
    update(&mut m, code(KeyCode::Esc));
    update(&mut m, shifted('K'));
    assert_eq!(confirm_question(&m), "kill -9 kitchen-1 (pid 4242)?");
    update(&mut m, key('n'));
    assert_eq!(update(&mut m, shifted('+')), vec![Effect::ScaleUp(Role::Kitchen)]);
    update(&mut m, shifted('O'));
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "20".into() }));
}

#[test]
fn the_flash_clears_on_the_next_key() {
    let mut m = model();
    update(&mut m, key(' '));
    assert!(m.ui.flash.is_some());
    update(&mut m, key('j'));
    assert_eq!(m.ui.flash, None);
}

#[test]
fn o_without_an_order_service_flashes() {
    let mut m = model();
    // An order node that is down does not count.
    up_node(&mut m, "order-1", Role::Order, true, 31);
    exited(&mut m, "order-1", Role::Order, Some(0), None, true);
    assert_eq!(update(&mut m, key('o')), vec![]);
    assert!(flash(&m).starts_with("no order service is up"), "{}", flash(&m));
    assert_eq!(last_log(&m).level, Level::Warn);
    assert_eq!(m.placing, 0);
}

#[test]
fn o_places_one_order_with_an_order_service_up() {
    let mut m = model();
    order_node(&mut m);
    assert_eq!(
        update(&mut m, key('o')),
        vec![Effect::PlaceOrders {
            url: ORDER_URL.into(),
            count: 1
        }]
    );
    assert_eq!(m.placing, 1);
    // Once its heartbeat is stale it is no longer up.
    tick(&mut m, T0 + Duration::seconds(10));
    assert_eq!(update(&mut m, key('o')), vec![]);
    assert!(flash(&m).starts_with("no order service is up"));
}

#[test]
fn capital_o_asks_how_many_digits_and_backspace_edit_enter_places() {
    let mut m = model();
    order_node(&mut m);
    assert_eq!(update(&mut m, key('O')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "20".into() }));
    update(&mut m, code(KeyCode::Backspace));
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "2".into() }));
    assert_eq!(type_keys(&mut m, "5x"), vec![], "letters are ignored");
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "25".into() }));
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::PlaceOrders {
            url: ORDER_URL.into(),
            count: 25
        }]
    );
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.placing, 25);
}

#[test]
fn the_burst_is_clamped_and_an_empty_one_is_the_default() {
    let mut m = model();
    order_node(&mut m);
    let burst = |m: &mut Model, typed: &str| {
        update(m, key('O'));
        update(m, code(KeyCode::Backspace));
        update(m, code(KeyCode::Backspace));
        type_keys(m, typed);
        update(m, code(KeyCode::Enter))
    };
    let count = |effects: Vec<Effect>| match effects.as_slice() {
        [Effect::PlaceOrders { count, .. }] => *count,
        other => panic!("expected one PlaceOrders, got {other:?}"),
    };
    assert_eq!(count(burst(&mut m, "")), 20);
    assert_eq!(count(burst(&mut m, "0")), 1);
    assert_eq!(
        count(burst(&mut m, "9999999")),
        10_000,
        "5 digits at most, then clamped"
    );
}

#[test]
fn esc_cancels_the_burst() {
    let mut m = model();
    order_node(&mut m);
    update(&mut m, key('O'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.placing, 0);
}

#[test]
fn q_with_owned_nodes_running_asks_and_enter_stops_them() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('q')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(m.quitting, None);
    // Another key keeps the question open.
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Quit { stop_nodes: true }]
    );
    assert_eq!(m.quitting, Some(true));
}

#[test]
fn d_in_the_quit_popup_leaves_the_nodes_running() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('q'));
    assert_eq!(update(&mut m, key('d')), vec![Effect::Quit { stop_nodes: false }]);
    assert_eq!(m.quitting, Some(false));
}

#[test]
fn esc_in_the_quit_popup_stays() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('q'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.quitting, None);
}

#[test]
fn q_without_owned_nodes_running_quits_at_once() {
    let mut m = model();
    // A node found running and one started here that has stopped.
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4242);
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    assert_eq!(update(&mut m, key('q')), vec![Effect::Quit { stop_nodes: true }]);
    assert_eq!(m.quitting, Some(true));
    assert_eq!(m.ui.popup, None);
}

#[test]
fn ctrl_c_behaves_like_q() {
    let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let mut m = model();
    assert_eq!(update(&mut m, ctrl_c()), vec![Effect::Quit { stop_nodes: true }]);
    assert_eq!(m.quitting, Some(true));

    let mut m = model();
    owned_kitchen(&mut m);
    // Even while typing a filter.
    update(&mut m, key('/'));
    assert_eq!(update(&mut m, ctrl_c()), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(update(&mut m, key('d')), vec![Effect::Quit { stop_nodes: false }]);
    assert_eq!(m.quitting, Some(false));
}

#[test]
fn x_asks_naming_the_node_and_pid_then_y_stops_it() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('x')), vec![]);
    let question = confirm_question(&m);
    assert!(question.contains("kitchen-1 (pid 4242)"), "{question}");
    assert_eq!(
        question,
        "Stop kitchen-1 (pid 4242)? SIGTERM now, SIGKILL after 5 s."
    );
    // Any other key leaves the question open.
    assert_eq!(update(&mut m, key('j')), vec![]);
    assert_eq!(confirm_question(&m), question);
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-1".into())]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(last_log(&m).text, format!("{question} yes"));
}

#[test]
fn n_answers_the_confirmation_with_nothing() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('x'));
    let lines = m.log.len();
    assert_eq!(update(&mut m, key('n')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.log.len(), lines);
    update(&mut m, key('x'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn capital_k_asks_then_kills() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('K')), vec![]);
    assert_eq!(confirm_question(&m), "kill -9 kitchen-1 (pid 4242)?");
    assert_eq!(update(&mut m, key('y')), vec![Effect::Kill("kitchen-1".into())]);
}

#[test]
fn p_freezes_and_after_the_frozen_event_thaws() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Freeze("kitchen-1".into(), true)]
    );
    child(
        &mut m,
        ChildEvent::Frozen {
            id: "kitchen-1".into(),
            frozen: true,
        },
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Freeze("kitchen-1".into(), false)]
    );
}

#[test]
fn r_asks_then_restarts_and_starts_a_node_that_is_down() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('r')), vec![]);
    assert_eq!(confirm_question(&m), "Restart kitchen-1 (pid 4242)?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::Restart("kitchen-1".into())]
    );
    exited(&mut m, "kitchen-1", Role::Kitchen, None, Some(SIGKILL), false);
    assert_eq!(update(&mut m, key('r')), vec![Effect::Start("kitchen-1".into())]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn s_flashes_on_a_running_node_and_starts_a_down_one() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('s')), vec![]);
    assert_eq!(
        flash(&m),
        "kitchen-1 is already running; + starts another kitchen"
    );
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    assert_eq!(update(&mut m, key('s')), vec![Effect::Start("kitchen-1".into())]);
    assert_eq!(m.ui.flash, None);
}

#[test]
fn x_k_p_on_a_node_that_is_down_flash_not_running() {
    let mut m = model();
    owned_kitchen(&mut m);
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    for c in ['x', 'K', 'p', 'f'] {
        assert_eq!(update(&mut m, key(c)), vec![], "{c}");
        assert_eq!(flash(&m), "kitchen-1 is not running", "{c}");
        assert_eq!(m.ui.popup, None, "{c}");
    }
}

#[test]
fn plus_scales_the_role_up() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('+')), vec![Effect::ScaleUp(Role::Kitchen)]);
    assert_eq!(last_log(&m).text, "scale kitchen: 1 → 2");
}

#[test]
fn plus_on_the_broker_flashes() {
    let mut m = model();
    spawn(&mut m, "broker", Role::Broker, 100);
    assert_eq!(update(&mut m, key('+')), vec![]);
    assert_eq!(flash(&m), "broker does not scale");
}

#[test]
fn minus_asks_to_stop_the_newest_kitchen() {
    let mut m = model();
    // kitchen-2 first, kitchen-1 five seconds later: newest is by start, not id.
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    tick(&mut m, T0 + Duration::seconds(5));
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    // Found running, not started here: never the one scaled down.
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4009);
    select(&mut m, Panel::Nodes, "kitchen-2");
    assert_eq!(update(&mut m, key('-')), vec![]);
    let question = confirm_question(&m);
    assert_eq!(question, "Scale kitchen 3 → 2: stop kitchen-1 (pid 4001)?");
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-1".into())]);
}

#[test]
fn minus_with_no_owned_node_of_the_role_flashes() {
    let mut m = model();
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4009);
    assert_eq!(update(&mut m, key('-')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(flash(&m), "no kitchen started here is running");
}

#[test]
fn a_second_minus_stops_the_next_newest_kitchen() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    tick(&mut m, T0 + Duration::seconds(1));
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    tick(&mut m, T0 + Duration::seconds(2));
    up_node(&mut m, "kitchen-3", Role::Kitchen, true, 4003);
    select(&mut m, Panel::Nodes, "kitchen-1");
    update(&mut m, key('-'));
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-3".into())]);
    child(
        &mut m,
        ChildEvent::Stopping {
            id: "kitchen-3".into(),
        },
    );
    update(&mut m, key('-'));
    assert_eq!(
        confirm_question(&m),
        "Scale kitchen 2 → 1: stop kitchen-2 (pid 4002)?"
    );
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-2".into())]);
}

#[test]
fn f_opens_the_fault_menu_enter_cycles_c_clears_esc_closes() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 0,
            faults: Faults::default()
        })
    );
    let latency = |ms| Faults {
        latency_ms: ms,
        ..Faults::default()
    };
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(100) }
        )]
    );
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(500) }
        )]
    );
    assert_eq!(
        update(&mut m, key('h')),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(100) }
        )],
        "h goes back"
    );
    // The next line: the error rate.
    update(&mut m, key('j'));
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(id, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(id, "kitchen-1");
    assert_eq!(faults.latency_ms, 100);
    assert!(faults.error_rate > 0.0);
    assert_eq!(
        update(&mut m, key('c')),
        vec![Effect::Control("kitchen-1".into(), Control::ClearFaults)]
    );
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 1,
            faults: Faults::default()
        })
    );
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn the_fault_menu_starts_from_the_nodes_faults_and_offers_out_of_stock_to_kitchens() {
    let mut m = model();
    m.info.ingredients = vec!["basil".into(), "mozzarella".into()];
    owned_kitchen(&mut m);
    let mut s = beat("kitchen-1", "kitchen", NodeState::Up, 4242, T0);
    s.faults.latency_ms = 2_000;
    update(&mut m, Msg::Status(Box::new(s)));
    update(&mut m, key('f'));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 0,
            faults: Faults {
                latency_ms: 5_000,
                ..Faults::default()
            }
        })
    );
    type_keys(&mut m, "jjjjjjj");
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(
        faults.out_of_stock,
        ["basil"],
        "the last line of a kitchen's menu"
    );
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(faults.out_of_stock, ["mozzarella"]);
}

#[test]
fn the_fault_menu_sets_reorder_after_duplicate_and_the_row_shows_it() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('f'));
    // latency, error rate, drop, duplicate, reorder
    type_keys(&mut m, "jjjj");
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(
        faults,
        &Faults {
            reorder_rate: 0.1,
            ..Faults::default()
        }
    );
    let mut s = beat("kitchen-1", "kitchen", NodeState::Up, 4242, T0);
    s.faults = faults.clone();
    s.faults.duplicate_rate = 0.5;
    update(&mut m, Msg::Status(Box::new(s)));
    assert_eq!(m.nodes["kitchen-1"].faults_text(m.now), "dup 50% reorder 10%");
}

#[test]
fn the_order_rows_faults_show_breaker_refusals_and_held_back_events() {
    let mut m = model();
    let mut s = beat("order-1", "order", NodeState::Up, 31, T0);
    s.figures.order.breaker = Some(BreakerState::Open);
    s.figures.order.breaker_rejected = Some(5);
    s.figures.order.held_back = Some(2);
    update(&mut m, Msg::Status(Box::new(s)));
    assert_eq!(
        m.nodes["order-1"].faults_text(m.now),
        "breaker open (5 refused) 2 held"
    );
}

#[test]
fn an_open_breaker_counts_down_to_its_half_open_trial() {
    let mut m = model();
    let mut s = beat("order-1", "order", NodeState::Up, 31, T0);
    s.figures.order.breaker = Some(BreakerState::Open);
    let at = (T0 + Duration::milliseconds(4_500))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.figures.order.breaker_half_open_at = Some(at);
    update(&mut m, Msg::Status(Box::new(s)));
    tick(&mut m, T0);
    assert_eq!(m.nodes["order-1"].faults_text(m.now), "breaker open 5s");
    tick(&mut m, T0 + Duration::seconds(4));
    assert_eq!(m.nodes["order-1"].faults_text(m.now), "breaker open 1s");
}

#[test]
fn f_on_the_broker_flashes() {
    let mut m = model();
    spawn(&mut m, "broker", Role::Broker, 100);
    update(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert!(
        flash(&m).starts_with("the broker takes no injected faults"),
        "{}",
        flash(&m)
    );
}

#[test]
fn node_keys_on_a_node_not_started_here() {
    let mut m = model();
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    for c in ['K', 'r'] {
        assert_eq!(update(&mut m, key(c)), vec![], "{c}");
        assert!(flash(&m).contains("not started"), "{c}: {}", flash(&m));
        assert_eq!(m.ui.popup, None);
    }
    assert_eq!(update(&mut m, key('s')), vec![]);
    assert_eq!(
        flash(&m),
        "kitchen-7 is already running; + starts another kitchen"
    );
    // It can be asked to stop, and paused over the broker.
    update(&mut m, key('x'));
    assert_eq!(confirm_question(&m), "Ask kitchen-7 (pid 777) to stop?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::Control("kitchen-7".into(), Control::Stop)]
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Control("kitchen-7".into(), Control::Pause)]
    );
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-7", "kitchen", NodeState::Paused, 777, T0))),
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Control("kitchen-7".into(), Control::Resume)]
    );
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert!(matches!(m.ui.popup, Some(Popup::Faults { .. })));
}

#[test]
fn node_keys_outside_the_nodes_panel_flash_and_do_nothing() {
    let mut m = model();
    owned_kitchen(&mut m);
    for panel in [Panel::Queues, Panel::Orders, Panel::Drivers, Panel::Events] {
        focus(&mut m, panel);
        for c in ['s', 'x', 'K', 'p', 'r', '+', '-', 'f'] {
            if c == 'x' && panel == Panel::Orders {
                continue; // x cancels an order there
            }
            assert_eq!(update(&mut m, key(c)), vec![], "{c} on {panel:?}");
            assert_eq!(
                flash(&m),
                format!("`{c}` acts on a node: tab to the Nodes panel and select one"),
                "{c} on {panel:?}"
            );
            assert_eq!(m.ui.popup, None, "{c} on {panel:?}");
        }
    }
}

#[test]
fn node_keys_with_no_node_flash() {
    let mut m = model();
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(flash(&m), "no node selected");
}

/// A scenario with its platform already up (`started`), stepped by ticks.
/// The watchers carry it beside the model; [`step`] feeds both.
fn playing(m: &Model, toml: &str) -> Watchers {
    let scenario = tui::scenario::Scenario::parse(toml, "test").expect("a valid scenario");
    let mut play = tui::play::Play::new(scenario, m.now);
    play.started = Some(m.now);
    Watchers {
        play: Some(play),
        recording: None,
    }
}

const PLACE_THEN_WAIT: &str = r#"
name = "t"
proves = "p"

[[step]]
do = "place"
count = 2
caption = "Two orders."

[[step]]
do = "wait"
until = "delivered"
count = 2
timeout_s = 5

[[expect]]
that = "delivered"
count = 2

[[expect]]
that = "none_lost"
"#;

#[test]
fn a_scenario_places_through_the_order_service_then_waits_and_times_out_into_a_failed_verdict() {
    let mut m = model();
    order_node(&mut m);
    let mut w = playing(&m, PLACE_THEN_WAIT);
    let effects = step(&mut m, &mut w, Msg::Tick(T0 + Duration::milliseconds(250)));
    assert_eq!(
        effects,
        vec![Effect::PlaceOrders {
            url: ORDER_URL.into(),
            count: 2
        }]
    );
    // The place step waits for the answer, then the wait step begins.
    step(
        &mut m,
        &mut w,
        Msg::Placed(PlaceOutcome {
            requested: 2,
            accepted: vec!["ord-1".into(), "ord-2".into()],
            ..PlaceOutcome::default()
        }),
    );
    step(&mut m, &mut w, placed("ord-1", T0));
    let play = w.play.as_ref().expect("playing");
    assert_eq!((play.step, play.verdict.is_none()), (1, true));
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(7)));
    let v = w.play.as_ref().and_then(|p| p.verdict.clone()).expect("over");
    assert!(!v.passed());
    assert_eq!(
        v.failed_step.as_deref(),
        Some("step 2 timed out: 2 orders delivered within 5 s (saw 0/2 delivered)")
    );
    assert_eq!(v.judged[0].saw, "0 delivered");
    assert!(!v.judged[1].held, "{:?}", v.judged[1]);
    assert!(
        v.judged[1].saw.contains("2 of 2 not finished"),
        "{}",
        v.judged[1].saw
    );
    // esc puts the verdict away (the panels show), then clears the filter.
    step(&mut m, &mut w, code(KeyCode::Esc));
    assert!(m.ui.verdict_hidden);
}

#[test]
fn a_kill_step_waits_for_the_node_to_exit_before_the_next_step_starts_it() {
    let mut m = model();
    owned_kitchen(&mut m);
    let mut w = playing(
        &m,
        "name = \"t\"\nproves = \"p\"\n[[step]]\ndo = \"kill\"\nnode = \"kitchen-1\"\n[[step]]\ndo = \"start\"\nnode = \"kitchen-1\"\n",
    );
    let effects = step(&mut m, &mut w, Msg::Tick(T0 + Duration::milliseconds(250)));
    assert_eq!(effects, vec![Effect::Kill("kitchen-1".into())]);
    step(
        &mut m,
        &mut w,
        Msg::Child(ChildEvent::Stopping {
            id: "kitchen-1".into(),
        }),
    );
    // Still running: starting it now would be refused as a twin.
    let effects = step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(1)));
    assert_eq!((effects, w.play.as_ref().map(|p| p.step)), (vec![], Some(0)));
    let exit = ChildEvent::Exited {
        id: "kitchen-1".into(),
        role: Role::Kitchen,
        code: None,
        signal: Some(9),
        expected: false,
        last_words: None,
    };
    assert_eq!(
        step(&mut m, &mut w, Msg::Child(exit)),
        vec![Effect::Start("kitchen-1".into())]
    );
}

#[test]
fn the_verdict_waits_for_a_heartbeat_sent_after_the_last_step() {
    let mut m = model();
    up_node(&mut m, "order-1", Role::Order, false, 3100);
    let mut w = playing(
        &m,
        "name = \"t\"\nproves = \"p\"\n[[step]]\ndo = \"caption\"\ntext = \"x\"\n",
    );
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::milliseconds(250)));
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(1)));
    // Its counters are from before the steps ended: not judged on yet.
    assert!(w.play.as_ref().is_some_and(|p| p.verdict.is_none()));
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::milliseconds(1500)));
    let status = beat("order-1", "order", NodeState::Up, 3100, m.now);
    step(&mut m, &mut w, Msg::Status(Box::new(status)));
    assert!(w.play.as_ref().is_some_and(|p| p.verdict.is_some()));
}

#[test]
fn a_paced_scenario_holds_a_captioned_step_on_screen() {
    let mut m = model();
    order_node(&mut m);
    let scenario = tui::scenario::Scenario::parse(
        "name = \"t\"\nproves = \"p\"\n[[step]]\ndo = \"caption\"\ntext = \"Read me.\"\n",
        "test",
    )
    .expect("valid");
    let mut play = tui::play::Play::new(scenario, m.now).paced(2.0);
    play.started = Some(m.now);
    let mut w = Watchers {
        play: Some(play),
        recording: None,
    };
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(1)));
    let p = w.play.as_ref().expect("playing");
    assert_eq!(
        (p.caption.as_deref(), p.verdict.is_some()),
        (Some("Read me."), false)
    );
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(4)));
    let p = w.play.as_ref().expect("playing");
    assert!(p.verdict.as_ref().is_some_and(|v| v.passed()), "{:?}", p.verdict);
}

// ------------------------------------------------ sorting, logs, mouse

#[test]
fn s_cycles_the_sort_of_the_focused_table() {
    let mut m = tui::sample::model();
    m.ui.focus = Some(Panel::Orders);
    let by_age = m.selectable(Panel::Orders);
    update(&mut m, key('S'));
    assert_eq!(m.ui.order_sort, tui::model::OrderSort::State);
    assert_eq!(m.ui.flash.as_deref(), Some("sorted by state"));
    let states: Vec<String> = m
        .order_rows()
        .iter()
        .map(|e| e.state_label().to_string())
        .collect();
    assert_eq!(states.first().map(String::as_str), Some("placed"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("delivered"), "{states:?}");
    for _ in 0..3 {
        update(&mut m, key('S'));
    }
    assert_eq!(m.selectable(Panel::Orders), by_age, "back to newest first");

    m.ui.focus = Some(Panel::Nodes);
    update(&mut m, key('S'));
    update(&mut m, key('S'));
    assert_eq!(m.ui.node_sort, tui::model::NodeSort::Rate);
    assert_eq!(
        m.node_ids().first().map(String::as_str),
        Some("delivery"),
        "busiest first"
    );
}

#[test]
fn l_opens_the_selected_nodes_log_and_its_keys_scroll_search_and_wrap() {
    let mut m = tui::sample::model();
    m.ui.selected.insert(Panel::Nodes, "kitchen-2".into());
    update(&mut m, key('l'));
    assert_eq!(m.ui.detail, Some(Detail::Log("kitchen-2".into())));
    let lines = (0..30).map(|i| format!("line {i}")).collect();
    update(
        &mut m,
        Msg::LogTail(tui::model::LogTail {
            id: "kitchen-2".into(),
            path: "k.log".into(),
            lines,
            error: None,
        }),
    );
    assert_eq!(m.ui.log_view.scroll, 0, "follows the end");
    update(&mut m, key('k'));
    update(&mut m, key('k'));
    assert_eq!(m.ui.log_view.scroll, 2);
    update(&mut m, key('g'));
    assert_eq!(m.ui.log_view.scroll, 29, "the top, no further");
    update(&mut m, key('G'));
    assert_eq!(m.ui.log_view.scroll, 0);
    update(&mut m, key('w'));
    assert!(m.ui.log_view.wrap);
    for c in "/line 2".chars() {
        update(&mut m, key(c));
    }
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.log_view.search, "line 2");
    let shown: Vec<&String> = m.log_tail.shown(&m.ui.log_view).collect();
    assert_eq!(shown.len(), 11, "line 2 and line 20-29: {shown:?}");
    update(&mut m, code(KeyCode::Esc));
    assert!(m.ui.log_view.search.is_empty(), "the first esc clears the search");
    assert!(m.ui.detail.is_some());
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None, "the second closes the view");
}

#[test]
fn events_scroll_with_j_and_k_and_a_shows_alerts_only() {
    let mut m = tui::sample::model();
    m.ui.focus = Some(Panel::Events);
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(m.ui.events_scroll, 2);
    update(&mut m, key('k'));
    assert_eq!(m.ui.events_scroll, 1);
    update(&mut m, key('G'));
    assert_eq!(m.ui.events_scroll, m.log.len() - 1, "the oldest line, no further");
    update(&mut m, key('g'));
    assert_eq!(m.ui.events_scroll, 0, "back to following");
    update(&mut m, key('a'));
    assert!(m.ui.alerts_only);
    update(&mut m, key('a'));
    assert!(!m.ui.alerts_only);
}

#[test]
fn help_scrolls_with_j_and_k_and_any_other_key_closes_it() {
    let mut m = model();
    update(&mut m, key('?'));
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(m.ui.popup, Some(Popup::Help));
    assert_eq!(m.ui.help_scroll, 2);
    update(&mut m, key('x'));
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.ui.help_scroll, 0);
}

#[test]
fn a_click_focuses_the_panel_and_selects_the_row_and_the_wheel_scrolls() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut m = tui::sample::model();
    let mouse = |kind, column, row| Msg::Mouse {
        event: MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        },
        width: 120,
        height: 40,
    };
    // At 120x40 the Nodes table starts at row 2: border 2, header 3, rows
    // from 4 in node order (broker, payment, order, kitchen-1 ...).
    update(&mut m, mouse(MouseEventKind::Down(MouseButton::Left), 10, 7));
    assert_eq!(m.ui.focused(), Panel::Nodes);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-1"));
    update(&mut m, mouse(MouseEventKind::ScrollDown, 10, 7));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-2"));
    // The Orders panel, lower left: border at row 21, header 22, and the
    // newest order on row 23.
    update(&mut m, mouse(MouseEventKind::Down(MouseButton::Left), 5, 23));
    assert_eq!(m.ui.focused(), Panel::Orders);
    assert_eq!(
        m.selected(Panel::Orders),
        m.selectable(Panel::Orders).first().cloned()
    );
}
