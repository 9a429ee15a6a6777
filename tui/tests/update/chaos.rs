//! Chaos mode (chaos.rs): the load it places, what it breaks and repairs,
//! and that a seed repeats its choices.

use super::*;
use tui::chaos::{Action, Chaos, ChaosOptions};

/// 4 orders/s; a break about every second, lasting 2 s; kills and pauses.
fn chaos(seed: u64) -> Watchers {
    Watchers {
        chaos: Some(Chaos::new(ChaosOptions {
            seed,
            load: 4.0,
            mean_interval_s: 1.0,
            outage_s: (2.0, 2.0),
            actions: vec![Action::Kill, Action::Pause],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// An order service found running, a broker and two kitchens started here.
fn platform() -> Model {
    let mut m = model();
    order_node(&mut m);
    up_node(&mut m, "broker", Role::Broker, true, 4000);
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    m
}

/// Ticks (and heartbeats) every 250 ms for `secs` seconds from `from`; every effect with the
/// second it came at.
fn run(m: &mut Model, w: &mut Watchers, from: f64, secs: f64) -> Vec<(f64, Effect)> {
    let mut out = Vec::new();
    let mut t = from;
    while t < from + secs {
        t += 0.25;
        let now = T0 + Duration::seconds_f64(t);
        // The order service keeps beating: its URL stays placeable.
        let mut beat = beat("order-1", "order", NodeState::Up, 3100, now);
        beat.figures.http = Some(ORDER_URL.into());
        update(m, Msg::Status(Box::new(beat)));
        let effects = step(m, w, Msg::Tick(now));
        out.extend(effects.into_iter().map(|e| (t, e)));
    }
    out
}

fn placed(effects: &[(f64, Effect)]) -> u32 {
    effects
        .iter()
        .map(|(_, e)| match e {
            Effect::PlaceOrders { count, quiet, .. } => {
                assert!(quiet, "the stream does not log every batch");
                *count
            }
            _ => 0,
        })
        .sum()
}

fn breaks(effects: &[(f64, Effect)]) -> Vec<(f64, Effect)> {
    effects
        .iter()
        .filter(|(_, e)| !matches!(e, Effect::PlaceOrders { .. }))
        .cloned()
        .collect()
}

#[test]
fn off_it_does_nothing_and_c_starts_the_load_and_the_breaking() {
    let (mut m, mut w) = (platform(), chaos(7));
    assert_eq!(run(&mut m, &mut w, 0.0, 5.0), vec![]);
    step(&mut m, &mut w, key('c'));
    assert!(m.ui.chaos && flash(&m).starts_with("chaos on"));
    let effects = run(&mut m, &mut w, 5.0, 20.0);
    let n = placed(&effects);
    assert!((76..=80).contains(&n), "4 orders/s for 20 s, got {n}");
    let broken = breaks(&effects);
    assert!(broken.len() >= 6, "a break every ~3 s and its repair: {broken:?}");
    // Breaks and repairs alternate, each repair 2 s after its break, on a
    // kitchen: the broker is not a target of kill or pause, and the order
    // service was not started here.
    for pair in broken.chunks(2) {
        match pair {
            [(at, Effect::Kill(id)), (back, Effect::Start(again))]
            | [(at, Effect::Freeze(id, true)), (back, Effect::Freeze(again, false))] => {
                assert_eq!(id, again);
                assert!(id.starts_with("kitchen-"), "{id}");
                assert!((back - at - 2.0).abs() < 0.3, "repaired after {} s", back - at);
            }
            [(_, last)] => assert!(matches!(last, Effect::Kill(_) | Effect::Freeze(_, true))),
            other => panic!("not a break and its repair: {other:?}"),
        }
    }
}

#[test]
fn c_again_repairs_at_once_and_the_stream_stops() {
    let (mut m, mut w) = (platform(), chaos(7));
    step(&mut m, &mut w, key('c'));
    // Until something is broken.
    let mut t = 0.0;
    while breaks(&run(&mut m, &mut w, t, 0.25)).is_empty() {
        t += 0.25;
        assert!(t < 30.0, "nothing broke");
    }
    let effects = step(&mut m, &mut w, key('c'));
    assert!(flash(&m).starts_with("chaos off"));
    assert!(
        matches!(effects.as_slice(), [Effect::Start(_) | Effect::Freeze(_, false)]),
        "{effects:?}"
    );
    assert_eq!(run(&mut m, &mut w, t + 0.25, 10.0), vec![], "quiet once off");
}

#[test]
fn a_seed_repeats_its_choices() {
    let choices = |seed| {
        let (mut m, mut w) = (platform(), chaos(seed));
        step(&mut m, &mut w, key('c'));
        breaks(&run(&mut m, &mut w, 0.0, 30.0))
    };
    assert_eq!(choices(7), choices(7));
    assert_ne!(choices(7), choices(8));
}

#[test]
fn the_broker_kill_targets_only_the_broker() {
    let mut w = chaos(3);
    if let Some(c) = &mut w.chaos {
        c.opts.actions = vec![Action::BrokerKill];
    }
    let mut m = platform();
    step(&mut m, &mut w, key('c'));
    let broken = breaks(&run(&mut m, &mut w, 0.0, 10.0));
    assert!(!broken.is_empty());
    for (_, e) in broken {
        assert!(
            matches!(&e, Effect::Kill(id) | Effect::Start(id) if id == "broker"),
            "{e:?}"
        );
    }
}

#[test]
fn a_partition_cuts_a_proxied_node_off_the_broker_and_heals_it() {
    use tui::model::network::{Toxic, ToxicKind};
    let mut w = chaos(5);
    if let Some(c) = &mut w.chaos {
        c.opts.actions = vec![Action::Partition];
    }
    let mut m = platform();
    // Only kitchen-1's link runs through the proxy.
    m.nodes.get_mut("kitchen-1").expect("row").links = vec!["broker".into()];
    step(&mut m, &mut w, key('c'));
    let broken = breaks(&run(&mut m, &mut w, 0.0, 10.0));
    assert!(broken.len() >= 2, "{broken:?}");
    for (i, (_, e)) in broken.iter().enumerate() {
        let toxics = if i % 2 == 0 {
            vec![Toxic::new(ToxicKind::Partition)]
        } else {
            vec![]
        };
        assert_eq!(
            e,
            &Effect::Network {
                node: "kitchen-1".into(),
                link: "broker".into(),
                toxics
            },
            "break {i}: partitioned, then healed, only the proxied node"
        );
    }
}
