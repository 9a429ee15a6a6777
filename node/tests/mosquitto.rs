//! The platform on another broker: Debian's Mosquitto, started on an
//! ephemeral port without persistence, with `pizza-node keeper` running the
//! queues and the event log beside it. No guarantee may depend on the
//! embedded broker: every accepted order is delivered once, through kills
//! of a kitchen, of Mosquitto (which then forgets every session) and of
//! the keeper.

mod support;

use std::time::Duration;

use support::platform::Platform;
use support::wait_for;

const KITCHENS: [&str; 2] = ["kitchen-1", "kitchen-2"];

/// Payment, order and delivery on Mosquitto, and `kitchens` kitchens.
fn platform(kitchens: usize) -> Platform {
    let mut p = Platform::on_mosquitto();
    p.payment();
    p.order();
    p.delivery_taking("0..20");
    for k in &KITCHENS[..kitchens] {
        p.kitchen_stocked(k, "20..60", "2");
    }
    p
}

/// Places `n` orders; every one must be accepted.
fn place(p: &Platform, n: usize) -> Vec<String> {
    p.place_many(n)
}

/// Every order in `ids` delivered, complete in its view, and once.
fn assert_each_delivered_once(p: &Platform, ids: &[String]) {
    p.wait_state(ids, "delivered", Duration::from_secs(120));
    for id in ids {
        let view = p.view(id);
        let seqs: Vec<u64> = view["history"]
            .as_array()
            .map(|h| h.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "order {id}'s view has a gap: {view}");
    }
    let tally = p.tally(ids, &KITCHENS);
    tally.assert_each_once_in_the_log_and_delivered_once();
    assert!(
        tally.cooked_twice.is_empty(),
        "cooked twice: {:?}",
        tally.cooked_twice
    );
}

#[test]
fn the_flow_buffers_scales_and_survives_a_kitchen_kill_on_mosquitto() {
    let mut p = platform(0);
    // One slow kitchen: the orders wait in the keeper's queue.
    p.kitchen_stocked("kitchen-1", "100..150", "1");
    let mut ids = place(&p, 30);
    let queued = ids.iter().filter(|id| p.view(id)["state"] == "queued").count();
    assert!(queued > 10, "only {queued} of 30 orders waited in the queue");
    // Scale out: a second kitchen takes from the same queue.
    p.kitchen_stocked("kitchen-2", "20..60", "2");
    wait_for(Duration::from_secs(60), "both kitchens to cook", || {
        let cooks = p.cooks(&KITCHENS);
        KITCHENS
            .iter()
            .all(|k| cooks.values().any(|by| by.iter().any(|c| c == k)))
    });
    // kill -9 of a kitchen mid-stream; its tickets go to the other one.
    p.proc("kitchen-1").kill9();
    ids.extend(place(&p, 20));
    p.kitchen_stocked("kitchen-1", "20..60", "2");
    ids.extend(place(&p, 10));
    assert_each_delivered_once(&p, &ids);
}

/// 20 orders, kill -9 of `victim`, 10 orders while it is down (payment is
/// up: they go into the order node's outbox), `restart`, 20 more: every
/// order delivered once.
fn kill_mid_stream(victim: &str, restart: impl FnOnce(&Platform) -> support::Proc) {
    let mut p = platform(2);
    let mut ids = place(&p, 20);
    p.proc(victim).kill9();
    ids.extend(place(&p, 10));
    let again = restart(&p);
    p.procs.insert(victim.into(), again);
    ids.extend(place(&p, 20));
    assert_each_delivered_once(&p, &ids);
}

#[test]
fn a_kill_9_of_mosquitto_mid_stream_loses_no_order() {
    // Mosquitto comes back empty: no session, no retained message.
    kill_mid_stream("mosquitto", |p| p.w.mosquitto());
}

#[test]
fn a_kill_9_of_the_keeper_mid_stream_loses_no_order() {
    kill_mid_stream("keeper", |p| p.w.keeper("keeper", "keeper", true));
}

#[test]
fn a_second_keeper_stands_by_while_the_first_serves_then_takes_over() {
    let mut p = platform(1);
    let first = p.place_many(5);
    // Same prefix, same storage: it must not serve while the first lives.
    let mut second = p.w.keeper("keeper-2", "keeper", false);
    wait_for(Duration::from_secs(20), "the second keeper to stand by", || {
        !p.w.log_events("keeper-2", "another keeper serves this prefix (or it cannot be told): this one refuses to serve and stands by to take over")
            .is_empty()
    });
    let refused = p.w.log_events("keeper-2", "another keeper serves this prefix (or it cannot be told): this one refuses to serve and stands by to take over");
    let holder = refused[0]["holder"].as_str().unwrap_or_default().to_string();
    assert!(
        holder.starts_with("pid "),
        "the refusal names the holder: {holder}"
    );
    p.wait_state(&first, "delivered", Duration::from_secs(60));
    assert!(
        p.w.log_events("keeper-2", "keeper serving: the work queues and the event log")
            .is_empty(),
        "a second keeper served while the first lived"
    );
    assert!(second.running(), "a standby keeper keeps waiting");

    p.proc("keeper").kill9();
    wait_for(Duration::from_secs(30), "the second keeper to take over", || {
        !p.w.log_events("keeper-2", "keeper serving: the work queues and the event log")
            .is_empty()
    });
    let later = p.place_many(5);
    assert_each_delivered_once(&p, &[first, later].concat());
}

#[test]
fn behind_the_generated_acl_a_kitchens_login_can_neither_command_nor_eavesdrop() {
    let mut p = Platform::on_mosquitto_with_logins(&[
        ("payment", "payment"),
        ("order", "order"),
        ("delivery", "delivery"),
        ("kitchen-1", "kitchen"),
    ]);
    p.payment();
    p.order();
    p.delivery_taking("0..20");
    p.kitchen_stocked("kitchen-1", "20..60", "2");
    let first = place(&p, 10);
    p.wait_state(&first, "delivered", Duration::from_secs(60));

    // Someone holding the kitchen's login, on an unsigned platform: only
    // the broker's ACL stands in the way.
    let login = Some(("kitchen-1", "pw-kitchen-1"));
    let thief = support::Mqtt::connect(p.w.port, "kitchen-1~thief", login)
        .expect("the kitchen's login connects under its own ids");
    thief.subscribe("pizza/q/delivery/deliver/delivery");
    thief.subscribe("pizza/log/reply/#");
    // Mosquitto drops a denied publish and then the connection (v3.1.1
    // has no way to say "denied"), so each command goes on a connection of
    // its own, and a refused hand-over to a closed connection is the denial
    // itself, not a test failure.
    for (n, target) in ["delivery", "order"].into_iter().enumerate() {
        let commander = support::Mqtt::connect(p.w.port, &format!("kitchen-1~commander-{n}"), login)
            .expect("the kitchen's login connects under its own ids");
        let _ = commander.try_publish(&format!("pizza/control/{target}"), r#"{"command":"stop"}"#);
    }
    let later = place(&p, 10);
    // Through the delivery queue and with log queries (the tally's) while
    // the thief listens.
    assert_each_delivered_once(&p, &[first, later].concat());
    assert!(p.proc("delivery").running(), "a kitchen's login stopped delivery");
    assert!(
        p.proc("order").running(),
        "a kitchen's login stopped the order node"
    );
    let overheard = thief.take_all();
    assert!(
        overheard.is_empty(),
        "the kitchen's login read others' messages: {overheard:?}"
    );
}
