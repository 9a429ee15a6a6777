//! Canaries (canary.rs): started with their arguments, rolled back on a bad
//! error rate at once, promoted after a good window into a rolling restart.

use super::*;
use tui::canary::{CanaryPlan, Stage};

/// A heartbeat of `id` (a kitchen) with these counters, at `t` s.
fn counters(m: &mut Model, w: &mut Watchers, id: &str, handled: u64, failed: u64, t: i64) -> Vec<Effect> {
    let now = T0 + Duration::seconds(t);
    let mut s = beat(id, "kitchen", NodeState::Up, 4100, now);
    (s.handled, s.failed) = (handled, failed);
    let mut effects = step(m, w, Msg::Status(Box::new(s)));
    effects.extend(step(m, w, Msg::Tick(now)));
    effects
}

fn kitchens() -> (Model, Watchers) {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    focus(&mut m, Panel::Nodes);
    select(&mut m, Panel::Nodes, "kitchen-1");
    (m, Watchers::default())
}

#[test]
fn capital_c_asks_for_the_arguments_and_starts_the_canary_with_them() {
    let (mut m, mut w) = kitchens();
    assert_eq!(step(&mut m, &mut w, key('C')), vec![]);
    assert!(
        matches!(&m.ui.popup, Some(Popup::Canary { role: Role::Kitchen, input }) if input == "--error-rate 0.3")
    );
    for _ in 0.."0.3".len() {
        step(&mut m, &mut w, code(KeyCode::Backspace));
    }
    type_keys(&mut m, "0.8");
    let effects = step(&mut m, &mut w, code(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Launch {
            role: Role::Kitchen,
            id: "kitchen-canary".into(),
            args: vec!["--error-rate".into(), "0.8".into()],
        }]
    );
    assert_eq!(m.ui.canary, Some(Stage::Starting));
    assert!(last_log(&m)
        .text
        .starts_with("canary: kitchen-canary started with --error-rate 0.8"));
}

#[test]
fn a_canary_failing_above_the_threshold_is_stopped_at_once() {
    let (mut m, mut w) = kitchens();
    let plan = CanaryPlan::new(Role::Kitchen, vec!["--error-rate".into(), "0.5".into()]);
    w.canary = Some(tui::canary::Canary::new(plan));
    step(&mut m, &mut w, Msg::Tick(T0));
    counters(&mut m, &mut w, "kitchen-1", 100, 0, 1);
    counters(&mut m, &mut w, "kitchen-canary", 0, 0, 1);
    assert_eq!(m.ui.canary, Some(Stage::Watching));
    // Two failures in three: not yet enough work to judge.
    assert_eq!(counters(&mut m, &mut w, "kitchen-canary", 1, 2, 2), vec![]);
    counters(&mut m, &mut w, "kitchen-1", 110, 0, 3);
    let effects = counters(&mut m, &mut w, "kitchen-canary", 2, 4, 3);
    assert_eq!(effects, vec![Effect::Stop("kitchen-canary".into())]);
    assert_eq!(m.ui.canary, Some(Stage::RolledBack));
    assert_eq!(
        last_log(&m).text,
        "canary: kitchen-canary rolled back: error rate 67 % > 5 % over 6 ticket(s) (the others: 0 %); its work goes back to the queue"
    );
    // Judged: later heartbeats change nothing.
    assert_eq!(counters(&mut m, &mut w, "kitchen-canary", 2, 9, 4), vec![]);
}

#[test]
fn a_good_canary_is_promoted_after_its_window_into_a_rolling_restart() {
    let (mut m, mut w) = kitchens();
    let plan = CanaryPlan::new(Role::Kitchen, vec!["--prep-ms".into(), "100".into()]);
    w.canary = Some(tui::canary::Canary::new(plan));
    step(&mut m, &mut w, Msg::Tick(T0));
    counters(&mut m, &mut w, "kitchen-canary", 0, 0, 1);
    assert_eq!(counters(&mut m, &mut w, "kitchen-canary", 20, 0, 15), vec![]);
    let effects = counters(&mut m, &mut w, "kitchen-canary", 40, 1, 32);
    assert_eq!(
        effects.first(),
        Some(&Effect::Respec {
            role: Role::Kitchen,
            args: vec!["--prep-ms".into(), "100".into()],
        })
    );
    assert_eq!(m.ui.canary, Some(Stage::Promoted));
    assert!(w.rollout.is_some(), "the promotion rolls the others");
    assert!(
        m.log.newest().any(|l| l
            .text
            .starts_with("canary: kitchen-canary promoted: error rate 2 % ≤ 5 % over 41 ticket(s)")),
        "{:?}",
        m.log.newest().map(|l| &l.text).collect::<Vec<_>>()
    );
}

#[test]
fn a_canary_that_gets_too_little_work_is_rolled_back_as_unjudged() {
    let (mut m, mut w) = kitchens();
    w.canary = Some(tui::canary::Canary::new(CanaryPlan::new(Role::Kitchen, vec![])));
    step(&mut m, &mut w, Msg::Tick(T0));
    counters(&mut m, &mut w, "kitchen-canary", 0, 0, 1);
    assert_eq!(counters(&mut m, &mut w, "kitchen-canary", 2, 0, 60), vec![]);
    let effects = counters(&mut m, &mut w, "kitchen-canary", 2, 0, 92);
    assert_eq!(effects, vec![Effect::Stop("kitchen-canary".into())]);
    assert!(last_log(&m)
        .text
        .contains("too little work to judge: 2 ticket(s)"));
}
