//! A rolling restart (rollout.rs, `R`): one node at a time, the next only
//! once the keeper reports the previous taking work again.

use super::*;
use contracts::queue::ConsumerFigures;

/// The keeper's view of queue `kitchen`: who consumes it now, with credit.
fn consumers(m: &mut Model, w: &mut Watchers, online: &[&str]) -> Vec<Effect> {
    let consumers = online
        .iter()
        .map(|id| ConsumerFigures {
            id: id.to_string(),
            credit: 2,
            in_flight: 0,
            online: true,
        })
        .collect();
    step(
        m,
        w,
        Msg::Stats(QueueStats {
            at: rfc(m.now),
            queues: vec![QueueFigures {
                name: "kitchen".into(),
                consumers,
                ..Default::default()
            }],
        }),
    )
}

/// `id` stopped by the restart and started again, heard from.
fn came_back(m: &mut Model, w: &mut Watchers, id: &str, pid: u32) -> Vec<Effect> {
    let mut effects = step(m, w, Msg::Child(ChildEvent::Stopping { id: id.into() }));
    effects.extend(step(
        m,
        w,
        Msg::Child(ChildEvent::Spawned {
            id: id.into(),
            role: Role::Kitchen,
            pid,
            metrics: None,
            links: vec![],
        }),
    ));
    let status = beat(id, "kitchen", NodeState::Up, pid, m.now);
    effects.extend(step(m, w, Msg::Status(Box::new(status))));
    effects
}

fn two_kitchens() -> (Model, Watchers) {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    focus(&mut m, Panel::Nodes);
    select(&mut m, Panel::Nodes, "kitchen-2");
    let mut w = Watchers::default();
    consumers(&mut m, &mut w, &["kitchen-1", "kitchen-2"]);
    (m, w)
}

#[test]
fn r_restarts_a_role_one_node_at_a_time_each_back_at_work_first() {
    let (mut m, mut w) = two_kitchens();
    assert_eq!(step(&mut m, &mut w, key('R')), vec![]);
    assert!(confirm_question(&m).starts_with("Rolling restart of kitchen: its 2 node(s)"));
    assert_eq!(
        step(&mut m, &mut w, key('y')),
        vec![Effect::Restart("kitchen-1".into())]
    );
    // A report while it is down, and one that does not list it yet.
    step(
        &mut m,
        &mut w,
        Msg::Child(ChildEvent::Stopping {
            id: "kitchen-1".into(),
        }),
    );
    assert_eq!(
        consumers(&mut m, &mut w, &["kitchen-1", "kitchen-2"]),
        vec![],
        "down: not yet"
    );
    assert_eq!(
        came_back(&mut m, &mut w, "kitchen-1", 5001),
        vec![],
        "up, not consuming yet"
    );
    assert_eq!(consumers(&mut m, &mut w, &["kitchen-2"]), vec![]);
    // The keeper lists the new process with credit: the next one.
    assert_eq!(
        consumers(&mut m, &mut w, &["kitchen-1", "kitchen-2"]),
        vec![Effect::Restart("kitchen-2".into())]
    );
    assert_eq!(came_back(&mut m, &mut w, "kitchen-2", 5002), vec![]);
    assert_eq!(consumers(&mut m, &mut w, &["kitchen-1", "kitchen-2"]), vec![]);
    assert!(w.rollout.is_none(), "over");
    assert_eq!(last_log(&m).text, "rolling restart of kitchen: done, 2 restarted");
}

#[test]
fn a_node_that_does_not_come_back_stops_the_rollout_with_an_alert() {
    let (mut m, mut w) = two_kitchens();
    step(&mut m, &mut w, key('R'));
    step(&mut m, &mut w, key('y'));
    step(
        &mut m,
        &mut w,
        Msg::Child(ChildEvent::Stopping {
            id: "kitchen-1".into(),
        }),
    );
    let effects = step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(61)));
    assert_eq!(effects, vec![], "kitchen-2 is left alone");
    assert!(w.rollout.is_none());
    assert_eq!(last_log(&m).level, Level::Alert);
    assert_eq!(
        last_log(&m).text,
        "rolling restart of kitchen: stopped: kitchen-1 did not come back within 60 s; 1 left as they are"
    );
}

#[test]
fn a_one_of_a_kind_role_is_not_rolled() {
    let mut m = model();
    up_node(&mut m, "broker", Role::Broker, true, 4000);
    focus(&mut m, Panel::Nodes);
    select(&mut m, Panel::Nodes, "broker");
    let mut w = Watchers::default();
    assert_eq!(step(&mut m, &mut w, key('R')), vec![]);
    assert_eq!(flash(&m), "broker is one of a kind: r restarts it");
}

#[test]
fn a_scenario_step_rolls_a_role_the_same_way() {
    let (mut m, mut w) = two_kitchens();
    let toml = r#"
name = "t"
proves = "a rolling restart from a scenario"
[[step]]
do = "rolling_restart"
role = "kitchen"
[[expect]]
that = "none_lost"
"#;
    let scenario = tui::scenario::Scenario::parse(toml, "test").expect("a valid scenario");
    assert_eq!(scenario.steps[0].describe(), "rolling restart of kitchen");
    let mut play = tui::play::Play::new(scenario, m.now);
    play.started = Some(m.now);
    w.play = Some(play);
    let later = m.now + Duration::milliseconds(250);
    let effects = step(&mut m, &mut w, Msg::Tick(later));
    assert_eq!(effects, vec![Effect::Restart("kitchen-1".into())]);
    assert!(w.rollout.is_some());
    let bad = toml.replace("role = \"kitchen\"", "role = \"broker\"");
    let refused = tui::scenario::Scenario::parse(&bad, "test").expect_err("the broker does not roll");
    assert!(refused.to_string().contains("does not scale"), "{refused}");
}
