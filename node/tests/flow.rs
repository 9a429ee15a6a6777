//! The flow of an order through real processes: broker, payment, order,
//! kitchens, delivery. Each test is one of the seed's scenarios.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::platform::{history_kinds, Platform};
use support::wait_for;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_payment_outage_answers_503_quickly_and_recovers() {
    let mut p = Platform::new(&[]);
    p.order(); // payment is not running
    let started = Instant::now();
    let (status, body) = p.place();
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Payment system is not responding, please try again later"
    );
    assert!(
        took < Duration::from_millis(2000),
        "answered within the timeout + 1 s: {took:?}"
    );
    assert_eq!(
        p.http
            .get(&format!("http://127.0.0.1:{}/healthz", p.order_port))
            .0,
        200
    );
    assert_eq!(p.http.get(&p.orders_url()).1, json!([]), "no order was taken");

    p.payment();
    // The breaker may still be open from the failure; it lets a trial through
    // within its open time.
    wait_for(LONG, "an order to be accepted again", || p.place().0 == 201);
}

#[test]
fn orders_wait_in_the_queue_until_a_kitchen_starts() {
    let mut p = Platform::up(&[]);
    let ids = p.place_many(5);
    p.wait_state(&ids, "queued", LONG);
    p.kitchen("kitchen-1", "0", "2");
    p.wait_state(&ids, "delivered", LONG);
    let view = p.view(&ids[0]);
    assert_eq!(view["kitchen"], "kitchen-1");
    assert!(view["driver"].is_string(), "{view}");
    assert_eq!(
        history_kinds(&view),
        [
            "order.placed",
            "order.paid",
            "order.queued",
            "order.cooking",
            "order.ready",
            "driver.assigned",
            "customer.notified",
            "order.delivered"
        ]
    );
}

#[test]
fn a_stopped_or_killed_kitchen_bakes_every_queued_order_exactly_once_after_restart() {
    let mut p = Platform::up(&[]);
    p.kitchen("kitchen-1", "300", "1");
    let first = p.place_many(6);
    // Graceful stop while tickets wait.
    wait_for(LONG, "the first ticket cooked", || {
        !p.cooks(&["kitchen-1"]).is_empty()
    });
    assert_eq!(
        p.proc("kitchen-1").terminate(),
        Some(0),
        "a graceful stop exits 0"
    );
    p.kitchen("kitchen-1", "300", "1");
    p.wait_state(&first, "delivered", LONG);

    // kill -9 mid-cook.
    let second = p.place_many(6);
    wait_for(LONG, "a ticket in the oven", || {
        p.view(&second[0])["state"] == "cooking"
    });
    p.proc("kitchen-1").kill9();
    p.kitchen("kitchen-1", "300", "1");
    p.wait_state(&second, "delivered", LONG);

    let cooks = p.cooks(&["kitchen-1"]);
    for id in first.iter().chain(&second) {
        assert_eq!(
            cooks.get(id).map(Vec::len),
            Some(1),
            "{id} cooked exactly once: {cooks:?}"
        );
    }
}

#[test]
fn two_kitchens_share_the_orders() {
    let mut p = Platform::up(&[]);
    p.kitchen("kitchen-1", "20", "2");
    p.kitchen("kitchen-2", "20", "2");
    p.w.wait_consumers("kitchen", &["kitchen-1", "kitchen-2"]);
    let ids = p.place_many(40);
    p.wait_state(&ids, "delivered", LONG);
    let cooks = p.cooks(&["kitchen-1", "kitchen-2"]);
    let mut per_kitchen: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let by = &cooks[id];
        assert_eq!(by.len(), 1, "{id} cooked once: {by:?}");
        *per_kitchen.entry(by[0].clone()).or_default() += 1;
    }
    eprintln!("split: {per_kitchen:?}");
    assert!(
        per_kitchen.values().all(|n| *n >= 10) && per_kitchen.len() == 2,
        "{per_kitchen:?}"
    );
}

#[test]
fn delivery_killed_while_orders_become_ready_still_delivers_every_order() {
    let mut p = Platform::up(&[]);
    p.kitchen("kitchen-1", "100", "2");
    let ids = p.place_many(10);
    wait_for(LONG, "some orders ready or on the road", || {
        ids.iter().any(|id| {
            let state = p.view(id)["state"].clone();
            state != "queued" && state != "cooking"
        })
    });
    p.proc("delivery").kill9();
    p.delivery();
    p.wait_state(&ids, "delivered", LONG);
}

#[test]
fn bad_input_is_refused_with_the_field_and_creates_nothing() {
    let mut p = Platform::new(&[]);
    p.payment();
    p.order();
    let url = p.orders_url();
    let cases = [
        (
            json!({"customer": {"name": "Ada", "address": ""}, "items": [{"pizza": "margherita", "qty": 1}]}),
            "customer.address",
        ),
        (
            json!({"customer": {"name": "Ada", "address": "X"}, "items": [{"pizza": "hawaii", "qty": 1}]}),
            "items[0].pizza",
        ),
        (
            json!({"customer": {"name": "Ada", "address": "X"}, "items": [{"pizza": "margherita", "qty": 0}]}),
            "items[0].qty",
        ),
        (
            json!({"customer": {"name": "Ada", "address": "X"}, "items": [{"pizza": "margherita", "qty": 21}]}),
            "items[0].qty",
        ),
        (
            json!({"customer": {"name": "Ada", "address": "X"}, "items": []}),
            "items",
        ),
        (
            json!({"customer": {"name": "Ada"}, "items": []}),
            "customer.address",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = p.http.post(&url, &body);
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = p.http.post(
        &url,
        &json!({"customer": {"name": "Ada", "address": "X"}, "items": [{"pizza": "hawaii", "qty": 1}]}),
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hawaii"),
        "{answer}"
    );
    assert_eq!(
        p.http.post_raw(&url, "application/json", b"{not json".to_vec()).0,
        400
    );
    assert_eq!(p.http.post_raw(&url, "text/plain", b"{}".to_vec()).0, 415);
    assert_eq!(
        p.http.post_raw(&url, "application/json", vec![b' '; 70 * 1024]).0,
        413
    );
    assert_eq!(p.http.get(&format!("{url}/ord_nope")).0, 404);
    assert_eq!(p.http.get(&format!("{url}?state=baking")).0, 400);
    assert_eq!(p.http.get(&url).1, json!([]), "no order was created");
    assert!(p.proc("order").running());
    assert_eq!(p.place().0, 201, "still taking good orders");
}

#[test]
fn duplicated_and_dropped_deliveries_still_deliver_every_order_once() {
    // A 30% drop with the default 5 attempts dead-letters some order in about
    // one run in twenty (0.3^5 per order); 20 attempts make that 3e-11.
    let mut p = Platform::up(&["--ack-timeout-ms", "1500", "--max-attempts", "20"]);
    p.kitchen("kitchen-1", "0", "4");
    let mqtt = support::Mqtt::connect(p.w.port, "test-control", None).expect("connects");
    let faults = json!({"command": "set_faults", "faults": {"duplicate_rate": 0.5, "drop_rate": 0.3}});
    for node in ["kitchen-1", "delivery"] {
        // A command reaches a node once it listens: wait for its heartbeat.
        let status = format!("pizza/nodes/{node}/status");
        mqtt.subscribe(&status);
        mqtt.expect(&status, LONG, |s| s["state"] == "up");
        mqtt.publish(&format!("pizza/control/{node}"), faults.to_string());
        mqtt.expect(&status, LONG, |s| s["faults"]["drop_rate"] == 0.3);
    }

    let ids = p.place_many(20);
    p.wait_state(&ids, "delivered", Duration::from_secs(120));
    for id in &ids {
        let kinds = history_kinds(&p.view(id));
        for once in [
            "order.cooking",
            "order.ready",
            "driver.assigned",
            "order.delivered",
        ] {
            assert_eq!(kinds.iter().filter(|k| *k == once).count(), 1, "{id}: {kinds:?}");
        }
    }
    let cooks = p.cooks(&["kitchen-1"]);
    assert!(
        ids.iter().all(|id| cooks.get(id).map(Vec::len) == Some(1)),
        "each cooked once: {cooks:?}"
    );
}

#[test]
fn an_order_a_kitchen_cannot_make_is_refunded_then_cancelled() {
    let mut p = Platform::up(&[]);
    // Basil for one margherita only: the second order cannot be made.
    let stock = p.w.path("stock.toml");
    std::fs::write(
        &stock,
        "[stock]\ndough = 10\ntomato = 10\nmozzarella = 10\nbasil = 2\n",
    )
    .unwrap();
    p.start(
        "kitchen",
        "kitchen-1",
        &[
            "--prep-ms",
            "0",
            "--ovens",
            "1",
            "--stock",
            stock.to_str().unwrap(),
        ],
    );
    let ids = p.place_many(2); // two margheritas each: 2 basil, then none
    p.wait_state(&ids[..1], "delivered", LONG);
    p.wait_state(&ids[1..], "cancelled", LONG);
    let kinds = history_kinds(&p.view(&ids[1]));
    let tail: Vec<&str> = kinds.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["order.cancelling", "payment.refunded", "order.cancelled"],
        "{kinds:?}"
    );
}

#[test]
fn a_declined_payment_ends_in_rejected() {
    let mut p = Platform::new(&[]);
    p.payment_declining("1.0");
    p.order();
    let (status, body) = p.place();
    assert_eq!(status, 402, "{body}");
    let orders = p.http.get(&p.orders_url()).1;
    assert_eq!(orders[0]["state"], "rejected", "{orders}");
}

#[test]
fn the_order_node_obeys_pause_and_injected_errors() {
    let mut p = Platform::new(&[]);
    p.payment();
    p.order();
    let mqtt = support::Mqtt::connect(p.w.port, "test-control", None).expect("connects");
    mqtt.subscribe("pizza/nodes/order/status");
    mqtt.expect("pizza/nodes/order/status", LONG, |s| s["state"] == "up");
    mqtt.publish("pizza/control/order", r#"{"command":"pause"}"#);
    mqtt.expect("pizza/nodes/order/status", LONG, |s| s["state"] == "paused");
    let (status, body) = p.place();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("paused")),
        "{body}"
    );
    mqtt.publish(
        "pizza/control/order",
        r#"{"command":"set_faults","faults":{"error_rate":1.0}}"#,
    );
    mqtt.expect("pizza/nodes/order/status", LONG, |s| {
        s["faults"]["error_rate"] == 1.0
    });
    assert_eq!(p.place().0, 500);
    mqtt.publish("pizza/control/order", r#"{"command":"clear_faults"}"#);
    mqtt.expect("pizza/nodes/order/status", LONG, |s| {
        s["faults"]["error_rate"] == 0.0
    });
    assert_eq!(p.place().0, 201);
}
