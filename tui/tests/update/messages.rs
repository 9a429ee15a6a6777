//! Every message kind: heartbeats, stats, events, child processes, answers.

use super::*;

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
    // Chaos mode's stream: only its refusals are news.
    let logged = m.log.len();
    update(
        &mut m,
        Msg::Placed(PlaceOutcome {
            requested: 1,
            accepted: vec!["ord-0000dddd".into()],
            quiet: true,
            ..Default::default()
        }),
    );
    assert_eq!(m.log.len(), logged, "a quiet batch all accepted logs nothing");
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
        quiet: false,
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
