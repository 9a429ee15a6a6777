//! The view, drawn from the sample model with ratatui's TestBackend and
//! compared with insta snapshots at 120×40 and 80×24.

use contracts::queue::DeadLetter;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use tui::model::{Model, Panel};
use tui::msg::Msg;
use tui::update::update;

fn draw(m: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal
        .draw(|f| tui::ui::draw(f, m, &Default::default()))
        .expect("drawing");
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            let line: String = (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn press(m: &mut Model, code: KeyCode) {
    update(m, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn focus(m: &mut Model, panel: Panel) {
    m.ui.focus = Some(panel);
}

/// Every box drawn is closed: as many bottom corners as top corners, and the
/// footer's help hint is on the last line. At 80×24 this is what "nothing
/// cut off" means.
fn assert_whole(screen: &str) {
    let tops = screen.matches('╭').count();
    let bottoms = screen.matches('╰').count();
    assert_eq!(tops, bottoms, "a panel is cut off:\n{screen}");
    assert!(tops >= 1, "no panel drawn:\n{screen}");
    let last = screen.lines().last().unwrap_or_default();
    assert!(last.contains("? help"), "the key bar is missing:\n{screen}");
    assert!(
        screen.starts_with(" Pizza Platform"),
        "the header is missing:\n{screen}"
    );
}

#[test]
fn full_layout_at_120x40() {
    let mut m = tui::testkit::model();
    m.ui.selected.insert(Panel::Nodes, "kitchen-2".into());
    let screen = draw(&m, 120, 40);
    assert_whole(&screen);
    for text in ["Nodes", "Queues", "Orders", "Drivers", "Events & alerts"] {
        assert!(screen.contains(text), "{text} missing:\n{screen}");
    }
    assert!(screen.contains("crashed (SIGKILL)"));
    assert!(screen.contains("breaker open"));
    insta::assert_snapshot!("full_120x40", screen);
}

#[test]
fn every_panel_fits_at_80x24() {
    for panel in Panel::ALL {
        let mut m = tui::testkit::model();
        focus(&mut m, panel);
        let screen = draw(&m, 80, 24);
        assert_whole(&screen);
        assert!(screen.contains(panel.title()), "{panel:?}:\n{screen}");
        insta::assert_snapshot!(format!("compact_{panel:?}_80x24"), screen);
    }
}

#[test]
fn order_detail_shows_the_state_machine_and_the_timeline() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut m = tui::testkit::model();
        focus(&mut m, Panel::Orders);
        m.ui.selected.insert(Panel::Orders, tui::testkit::order_id(2));
        press(&mut m, KeyCode::Enter);
        let screen = draw(&m, w, h);
        assert_whole(&screen);
        for text in [
            "order.delivered",
            "out_for_delivery",
            "trace timeline",
            "trip",
            "kitchen-2",
        ] {
            assert!(screen.contains(text), "{text} missing at {w}x{h}:\n{screen}");
        }
        insta::assert_snapshot!(format!("order_detail_{w}x{h}"), screen);
    }
}

#[test]
fn popups_fit_at_80x24() {
    let cases: [(&str, &[KeyCode]); 6] = [
        ("help", &[KeyCode::Char('?')]),
        (
            "faults",
            &[KeyCode::Char('G'), KeyCode::Char('k'), KeyCode::Char('f')],
        ),
        (
            "confirm_kill",
            &[KeyCode::Char('G'), KeyCode::Char('k'), KeyCode::Char('K')],
        ),
        ("burst", &[KeyCode::Char('O')]),
        (
            "canary",
            &[KeyCode::Char('G'), KeyCode::Char('k'), KeyCode::Char('C')],
        ),
        ("quit", &[KeyCode::Char('q')]),
    ];
    for (name, keys) in cases {
        let mut m = tui::testkit::model();
        for k in keys {
            press(&mut m, *k);
        }
        assert!(m.ui.popup.is_some(), "{name}: no popup");
        let screen = draw(&m, 80, 24);
        assert_whole(&screen);
        insta::assert_snapshot!(format!("popup_{name}_80x24"), screen);
    }
}

#[test]
fn dead_letters_list_reason_and_attempts() {
    let mut m = tui::testkit::model();
    update(
        &mut m,
        Msg::DeadLetters {
            queue: "kitchen".into(),
            items: vec![DeadLetter {
                id: 7,
                queue: "kitchen".into(),
                reason: "out of stock: mozzarella".into(),
                attempts: 5,
                at: "2026-11-21T12:00:40Z".into(),
                envelope: None,
                raw: Some("{\"not\":\"an envelope\"}".into()),
            }],
        },
    );
    focus(&mut m, Panel::Queues);
    press(&mut m, KeyCode::Enter);
    let screen = draw(&m, 80, 24);
    assert_whole(&screen);
    assert!(screen.contains("out of stock: mozzarella"), "{screen}");
    insta::assert_snapshot!("dead_letters_80x24", screen);
}

/// A customer's cancellation, as its events arrive: the saga's steps with
/// their outcomes, then stepping back to where the order was.
#[test]
fn a_cancelled_orders_saga_shows_its_steps_and_its_history_can_be_stepped_back() {
    let mut m = tui::testkit::model();
    let id = add_cancelled_order(&mut m);
    focus(&mut m, Panel::Orders);
    m.ui.selected.insert(Panel::Orders, id.into());
    press(&mut m, KeyCode::Enter);
    let live = draw(&m, 120, 40);
    assert_whole(&live);
    for text in [
        "withdraw_ticket done: ticket withdrawn",
        "recall_driver skipped",
        "pay_9",
        "cancelled",
    ] {
        assert!(live.contains(text), "{text} missing:\n{live}");
    }
    // Back to just after order.cancelling: the order was `cancelling` then.
    for _ in 0..5 {
        press(&mut m, KeyCode::Char('['));
    }
    let then = draw(&m, 120, 40);
    assert_whole(&then);
    assert!(then.contains("as of seq 4 (12:00:30) cancelling"), "{then}");
    insta::assert_snapshot!("order_saga_stepped_back_120x40", then);
}

/// Adds an order whose nine events run through a cancellation saga.
fn add_cancelled_order(m: &mut Model) -> &'static str {
    use contracts::events::{self as ev, step, SagaStep, StepOutcome};
    let id = "ord_cancelled";
    let at = time::macros::datetime!(2026-11-21 12:00:30 UTC);
    let placed = ev::OrderPlaced {
        customer: contracts::api::Customer {
            name: "Edsger".into(),
            address: "3 Saga Way".into(),
        },
        items: vec![],
        amount_cents: 1800,
    };
    let mut events = vec![ev::envelope(&placed, id, 1, "0000000000000000000000000000000c", "order").unwrap()];
    let next =
        |payload: serde_json::Value, kind: &str, source: &str, events: &mut Vec<contracts::Envelope>| {
            let last = events.last().unwrap().clone();
            let mut e =
                contracts::Envelope::new(kind, id, last.seq + 1, last.trace_id.clone(), source, payload);
            e.occurred_at = last.occurred_at + time::Duration::milliseconds(120);
            events.push(e);
        };
    let saga = |step: &str, outcome: StepOutcome, detail: &str| {
        serde_json::to_value(SagaStep {
            step: step.into(),
            outcome,
            detail: detail.into(),
            attempts: 1,
        })
        .unwrap()
    };
    events[0].occurred_at = at;
    next(
        serde_json::json!({"payment_id": "pay_9", "amount_cents": 1800}),
        ev::kind::ORDER_PAID,
        "order",
        &mut events,
    );
    next(
        serde_json::json!({"queue": "kitchen"}),
        ev::kind::ORDER_QUEUED,
        "order",
        &mut events,
    );
    next(
        serde_json::json!({"reason": "cancelled by the customer"}),
        ev::kind::ORDER_CANCELLING,
        "order",
        &mut events,
    );
    next(
        saga(
            step::WITHDRAW_TICKET,
            StepOutcome::Done,
            "ticket withdrawn before any kitchen started it",
        ),
        ev::kind::SAGA_STEP,
        "order",
        &mut events,
    );
    next(
        saga(
            step::RECALL_DRIVER,
            StepOutcome::Skipped,
            "no driver was assigned",
        ),
        ev::kind::SAGA_STEP,
        "order",
        &mut events,
    );
    next(
        serde_json::json!({"payment_id": "pay_9"}),
        ev::kind::PAYMENT_REFUNDED,
        "order",
        &mut events,
    );
    next(
        serde_json::json!({"message": "Your order was cancelled (cancelled by the customer). Any payment is refunded."}),
        ev::kind::CUSTOMER_NOTIFIED,
        "order",
        &mut events,
    );
    next(
        serde_json::json!({"reason": "cancelled by the customer"}),
        ev::kind::ORDER_CANCELLED,
        "order",
        &mut events,
    );
    for e in events {
        update(m, Msg::Event(Box::new(e)));
    }
    id
}

const SIZES: [(u16, u16); 3] = [(120, 40), (80, 24), (60, 20)];

#[test]
fn an_order_detail_scrolls_to_its_last_event_at_every_size() {
    for (w, h) in SIZES {
        let mut m = tui::testkit::model();
        let id = add_cancelled_order(&mut m);
        focus(&mut m, Panel::Orders);
        m.ui.selected.insert(Panel::Orders, id.into());
        press(&mut m, KeyCode::Enter);
        for _ in 0..20 {
            press(&mut m, KeyCode::Char('J'));
        }
        let screen = draw(&m, w, h);
        assert_whole(&screen);
        assert!(screen.contains("order.cancelled"), "{w}x{h}:\n{screen}");
        insta::assert_snapshot!(format!("order_detail_scrolled_end_{w}x{h}"), screen);
    }
}

/// A node's log as the shell reads it.
fn with_log(m: &mut Model, id: &str) {
    let lines = (1..=60)
        .map(|i| match i % 10 {
            0 => format!("2026-11-21T12:00:{:02}.000000Z  WARN node::runtime::link: lost the broker; reconnecting error=I/O: Connection refused (os error 111) retry_in_ms=1600 attempt={i}", i % 60),
            _ => format!("2026-11-21T12:00:{:02}.000000Z  INFO node::services::kitchen: ticket cooked order_id=ord_{i:04} kitchen={id}", i % 60),
        })
        .collect();
    update(
        m,
        Msg::LogTail(tui::model::LogTail {
            id: id.into(),
            path: format!("/tmp/logs/{id}.log"),
            lines,
            error: None,
        }),
    );
}

#[test]
fn the_log_view_follows_searches_and_wraps_at_every_size() {
    for (w, h) in SIZES {
        let mut m = tui::testkit::model();
        m.ui.selected.insert(Panel::Nodes, "kitchen-2".into());
        press(&mut m, KeyCode::Char('l'));
        with_log(&mut m, "kitchen-2");
        let following = draw(&m, w, h);
        assert_whole(&following);
        assert!(
            following.contains("12:00:59.000000Z"),
            "the end is shown:\n{following}"
        );
        insta::assert_snapshot!(format!("log_following_{w}x{h}"), following);

        press(&mut m, KeyCode::Char('/'));
        for c in "lost".chars() {
            press(&mut m, KeyCode::Char(c));
        }
        press(&mut m, KeyCode::Enter);
        press(&mut m, KeyCode::Char('w'));
        let searched = draw(&m, w, h);
        assert_whole(&searched);
        assert!(searched.contains("6 matching"), "{searched}");
        assert!(
            searched.contains("attempt=60"),
            "wrapped, the line's end shows:\n{searched}"
        );
        assert!(!searched.contains("ticket cooked"), "{searched}");
        insta::assert_snapshot!(format!("log_searched_wrapped_{w}x{h}"), searched);
    }
}

#[test]
fn the_events_panel_scrolls_and_shows_alerts_only_at_every_size() {
    for (w, h) in SIZES {
        let mut m = tui::testkit::model();
        focus(&mut m, Panel::Events);
        for _ in 0..3 {
            press(&mut m, KeyCode::Char('j'));
        }
        let scrolled = draw(&m, w, h);
        assert_whole(&scrolled);
        assert!(scrolled.contains("↑ 3 newer"), "{scrolled}");
        insta::assert_snapshot!(format!("events_scrolled_{w}x{h}"), scrolled);
        press(&mut m, KeyCode::Char('a'));
        let alerts = draw(&m, w, h);
        assert_whole(&alerts);
        assert!(alerts.contains("alerts only"), "{alerts}");
        assert!(!alerts.contains("order.placed"), "{alerts}");
        insta::assert_snapshot!(format!("events_alerts_only_{w}x{h}"), alerts);
    }
}

#[test]
fn sorted_tables_mark_their_column_and_node_ids_are_never_cut() {
    for (w, h) in SIZES {
        let mut m = tui::testkit::model();
        focus(&mut m, Panel::Orders);
        press(&mut m, KeyCode::Char('S'));
        let orders = draw(&m, w, h);
        assert_whole(&orders);
        assert!(orders.contains("STATE▾"), "{orders}");
        insta::assert_snapshot!(format!("orders_by_state_{w}x{h}"), orders);
        focus(&mut m, Panel::Nodes);
        press(&mut m, KeyCode::Char('S'));
        press(&mut m, KeyCode::Char('S'));
        let nodes = draw(&m, w, h);
        assert_whole(&nodes);
        assert!(nodes.contains("MSG/S▾"), "{nodes}");
        for id in ["kitchen-1", "kitchen-2", "delivery"] {
            assert!(nodes.contains(id), "{id} cut at {w}x{h}:\n{nodes}");
        }
        insta::assert_snapshot!(format!("nodes_by_rate_{w}x{h}"), nodes);
    }
}

#[test]
fn a_wide_screen_shows_each_nodes_work_over_the_last_minute() {
    let mut m = tui::testkit::model();
    // Ten more heartbeats of kitchen-2, busier each second.
    let t0 = tui::testkit::t0() + time::Duration::seconds(60);
    for i in 1..=10u64 {
        let at = t0 + time::Duration::seconds(i as i64);
        let status = tui::testkit::status("kitchen-2", "kitchen", 4247, 112 + i * i, at);
        update(&mut m, Msg::Status(Box::new(status)));
    }
    assert_eq!(
        m.nodes["kitchen-2"].work.iter().rev().take(3).collect::<Vec<_>>(),
        [&19, &17, &15]
    );
    let screen = draw(&m, 160, 40);
    assert_whole(&screen);
    assert!(screen.contains("WORK 1m"), "{screen}");
    assert!(screen.contains('█'), "{screen}");
    insta::assert_snapshot!("nodes_work_160x40", screen);
}

/// Chaos mode's bar under the panels: its state and the ledger, with a
/// doubled delivery in red. Drawn at 120×40 and 80×24 (where it must not
/// push the panels off the screen).
#[test]
fn the_chaos_bar_shows_the_ledger() {
    use tui::chaos::{Chaos, ChaosOptions};
    use tui::update::{step, Watchers};
    let mut m = tui::testkit::model();
    let mut w = Watchers {
        chaos: Some(Chaos::new(ChaosOptions {
            mean_interval_s: 1e9,
            ..Default::default()
        })),
        ..Default::default()
    };
    let ids: Vec<String> = (0..3).map(|i| format!("ord_chaos_{i}")).collect();
    step(
        &mut m,
        &mut w,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE)),
    );
    step(
        &mut m,
        &mut w,
        Msg::Placed(tui::msg::PlaceOutcome {
            requested: 4,
            accepted: ids.clone(),
            refused: [("503 payment_unavailable".to_string(), 1)].into(),
            first_error: None,
            quiet: true,
        }),
    );
    for (n, id) in [&ids[0], &ids[1], &ids[1]].into_iter().enumerate() {
        let mut e = contracts::Envelope::new(
            contracts::events::kind::ORDER_DELIVERED,
            id,
            8,
            "t",
            "delivery",
            serde_json::json!({"driver": "Ada"}),
        );
        e.event_id = uuid::Uuid::from_u128(n as u128 + 1);
        e.occurred_at = m.now;
        step(&mut m, &mut w, Msg::Event(Box::new(e)));
    }
    for (width, height) in [(120, 40), (80, 24)] {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
        terminal.draw(|f| tui::ui::draw(f, &m, &w)).expect("drawing");
        let buffer = terminal.backend().buffer();
        let screen = (0..height)
            .map(|y| {
                let line: String = (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
                line.trim_end().to_string()
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_whole(&screen);
        assert!(screen.contains("CHAOS  on"), "{screen}");
        let ledger = if width >= 110 {
            "attempted 4 accepted 3 refused 1 delivered 2 cancelled 0 in flight 1 delivered twice 1 cooked twice 0"
        } else {
            "sent 4 ok 3 refused 1 delivered 2 open 1 ×2 delivered 1 ×2 cooked 0"
        };
        assert!(screen.contains(ledger), "{screen}");
        insta::assert_snapshot!(format!("chaos_bar_{width}x{height}"), screen);
    }
}
