//! A signed platform (every node with `--key` and `--trust`, as the control
//! room runs it) against an attacker on the broker: each forgery of issue
//! "Trust between nodes" is sent over raw MQTT, by a client with no key and
//! by one holding the kitchen's key, and changes nothing. The real orders
//! flow meanwhile, signed end to end.

mod support;

use std::time::Duration;

use contracts::events::kind;
use contracts::Envelope;
use serde_json::{json, Value};
use support::platform::{history_kinds, Platform};
use support::wait_for;

const LONG: Duration = Duration::from_secs(60);

/// An envelope as a node would send it, for a forger to publish.
fn forged(kind: &str, order_id: &str, seq: u64, source: &str, payload: Value) -> Envelope {
    Envelope::new(
        kind,
        order_id,
        seq,
        "0af7651916cd43dd8448eb211c80319c",
        source,
        payload,
    )
}

fn kinds_in_the_log(p: &Platform, order_id: &str) -> Vec<String> {
    let (status, view) = p.http.get(&format!("{}/{order_id}/history", p.orders_url()));
    assert_eq!(status, 200, "{view}");
    view["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["kind"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn forged_events_puts_and_credits_change_nothing_and_real_orders_flow_signed() {
    let mut p = Platform::signed(&[]);
    p.payment();
    p.order();
    // No kitchen yet: the real order waits in `queued`, a fixed target.
    let (status, placed) = p.place();
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("an order id").to_string();
    p.wait_state(std::slice::from_ref(&id), "queued", LONG);

    let attacker = p.mqtt("attacker");
    // 1. An anonymous order.delivered "from delivery".
    let delivered = forged(
        kind::ORDER_DELIVERED,
        &id,
        4,
        "delivery",
        json!({"driver": "Mallory"}),
    );
    attacker.publish("pizza/log/put", serde_json::to_vec(&delivered).expect("json"));
    // 2. The same, signed with the kitchen's real key (wrong role), and one
    //    claiming to be delivery but signed by the kitchen (wrong key).
    let kitchen_key =
        broker::trust::read_key(&p.w.make_key("kitchen-1", "kitchen"), "kitchen-1").expect("a key");
    let as_kitchen = forged(
        kind::ORDER_DELIVERED,
        &id,
        4,
        "kitchen-1",
        json!({"driver": "Mallory"}),
    );
    attacker.publish(
        "pizza/log/put",
        serde_json::to_vec(&kitchen_key.sign(&as_kitchen)).expect("json"),
    );
    attacker.publish(
        "pizza/log/put",
        serde_json::to_vec(&kitchen_key.sign(&delivered)).expect("json"),
    );
    // 3. A forged order.placed, and a ticket for that unpaid order.
    let fake = "ord_forged0000000000000000000000";
    let fake_placed = forged(
        kind::ORDER_PLACED,
        fake,
        1,
        "order",
        json!({"customer": {"name": "M", "address": "X"}, "items": [{"pizza": "margherita", "qty": 1}], "amount_cents": 0}),
    );
    attacker.publish("pizza/log/put", serde_json::to_vec(&fake_placed).expect("json"));
    let ticket = forged(
        kind::KITCHEN_TICKET,
        fake,
        3,
        "order",
        json!({"customer": {"name": "M", "address": "X"}, "items": [{"pizza": "margherita", "qty": 1}]}),
    );
    attacker.publish("pizza/q/kitchen/put", serde_json::to_vec(&ticket).expect("json"));
    attacker.publish(
        "pizza/q/kitchen/put",
        serde_json::to_vec(&kitchen_key.sign(&ticket)).expect("json"),
    );
    // 4. A thief's credit on the kitchen queue.
    let thief = p.mqtt("thief");
    thief.subscribe("pizza/q/kitchen/deliver/thief");
    thief.publish(
        "pizza/q/kitchen/credit/thief",
        json!({"credit": 10, "incarnation": "thief-1", "batch": true}).to_string(),
    );

    // The broker refused and counted each: 4 events, 2 puts, 1 credit.
    wait_for(LONG, "the broker to refuse the forgeries", || {
        let log = std::fs::read_to_string(p.w.path("broker.log")).unwrap_or_default();
        log.matches("security: an event was refused").count() >= 4
            && log.matches("security: a put was refused").count() >= 2
            && log.contains("security: a credit was refused")
    });
    let view = p.view(&id);
    assert_eq!(view["state"], "queued", "{view}");
    assert_eq!(view["driver"], Value::Null, "{view}");
    assert!(!kinds_in_the_log(&p, &id).contains(&kind::ORDER_DELIVERED.to_string()));
    assert_eq!(p.http.get(&format!("{}/{fake}", p.orders_url())).0, 404);

    // Now the kitchen and delivery: the real order is cooked and delivered,
    // by the real nodes, signed all the way; the forged ticket never is and
    // the thief gets nothing.
    p.kitchen_stocked("kitchen-1", "0", "2");
    p.delivery();
    let (status, second) = p.place();
    assert_eq!(status, 201, "{second}");
    let ids = vec![
        id.clone(),
        second["order_id"].as_str().expect("an id").to_string(),
    ];
    p.wait_state(&ids, "delivered", LONG);
    let view = p.view(&id);
    assert_ne!(view["driver"], "Mallory", "{view}");
    assert_eq!(
        history_kinds(&view)
            .iter()
            .filter(|k| *k == kind::ORDER_DELIVERED)
            .count(),
        1,
        "{view}"
    );
    let cooks = p.cooks(&["kitchen-1"]);
    let broker_log = std::fs::read_to_string(p.w.path("broker.log")).unwrap_or_default();
    // Exactly the 7 forgeries: no real node's message was refused.
    assert_eq!(broker_log.matches("security: ").count(), 7, "{broker_log}");
    assert!(
        !cooks.contains_key(fake),
        "the forged ticket was cooked: {cooks:?}"
    );
    assert_eq!(cooks.len(), 2, "{cooks:?}");
    assert!(thief.take_all().is_empty(), "the thief was given work");
}

#[test]
fn a_node_whose_key_is_not_in_the_trust_file_refuses_to_start() {
    let w = support::World::signed();
    let _broker = w.broker(&[]);
    // A key made elsewhere, for the same id: not the one the file lists.
    let other = w.path("elsewhere");
    let key =
        node::security::make_key(&other, "kitchen-9", "kitchen", &other.join("trust.json")).expect("a key");
    w.make_key("kitchen-9", "kitchen");
    let args: Vec<String> = [
        "kitchen",
        "--id",
        "kitchen-9",
        "--broker",
        &w.broker_url(),
        "--data-dir",
        &w.path("kitchen-9").display().to_string(),
        "--key",
        &key.display().to_string(),
        "--trust",
        &w.trust_file().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // It checks its keys before it connects, so it ends at once.
    let out = std::process::Command::new(support::pizza_node())
        .args(&args)
        .output()
        .expect("pizza-node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lists another key for node 'kitchen-9'"),
        "{stderr}"
    );
}
