//! The scenario player beside the model, fed by `step`.

use super::*;

/// A scenario with its platform already up (`started`), stepped by ticks.
/// The watchers carry it beside the model; [`step`] feeds both.
fn playing(m: &Model, toml: &str) -> Watchers {
    let scenario = tui::scenario::Scenario::parse(toml, "test").expect("a valid scenario");
    let mut play = tui::play::Play::new(scenario, m.now);
    play.started = Some(m.now);
    Watchers {
        play: Some(play),
        recording: None,
        ..Default::default()
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
            count: 2,
            quiet: false,
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
    let exit = tui::testkit::killed("kitchen-1", Role::Kitchen);
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
        ..Default::default()
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
