//! The flow of an order through real processes: broker, payment, order,
//! kitchens, delivery. Each test is one of the seed's scenarios.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
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
    assert_eq!(history_kinds(&view), contracts::testkit::DELIVERED_KINDS);
}

#[test]
fn a_stopped_or_killed_kitchen_bakes_every_queued_order_exactly_once_after_restart() {
    let mut p = Platform::with_kitchen("kitchen-1", "300", "1");
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
    let mut p = Platform::with_kitchen("kitchen-1", "20", "2");
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
    let mut p = Platform::with_kitchen("kitchen-1", "100", "2");
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
    let view = p.view(&ids[1]);
    assert_eq!(compensation(&view), refunded_saga("skipped", &[]), "{view}");
    let reason = view["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["kind"] == "order.cancelling"))
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_default();
    assert!(reason.contains("out of basil"), "{view}");
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

/// The order's events from `order.cancelling` on, saga steps with their
/// step and outcome.
/// A cancellation's steps from `order.cancelling` on, ending refunded and
/// cancelled: the ticket withdrawn or not (`withdraw`), no driver to
/// recall, then `failed` steps before the refund.
fn refunded_saga(withdraw: &str, failed: &[&str]) -> Vec<String> {
    let mut steps = vec![
        "order.cancelling".to_string(),
        format!("saga.step withdraw_ticket {withdraw}"),
        "saga.step recall_driver skipped".into(),
    ];
    steps.extend(failed.iter().map(|s| s.to_string()));
    steps.extend(["payment.refunded", "customer.notified", "order.cancelled"].map(String::from));
    steps
}

fn compensation(view: &Value) -> Vec<String> {
    let history = view["history"].as_array().cloned().unwrap_or_default();
    let from = history
        .iter()
        .position(|e| e["kind"] == "order.cancelling")
        .unwrap_or(history.len());
    history[from..]
        .iter()
        .map(|e| match e["kind"].as_str().unwrap_or_default() {
            // "withdraw_ticket done: ticket withdrawn ..."
            "saga.step" => format!(
                "saga.step {}",
                e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .split(':')
                    .next()
                    .unwrap_or_default()
            ),
            k => k.to_string(),
        })
        .collect()
}

fn step_detail(view: &Value, step: &str) -> String {
    view["history"]
        .as_array()
        .and_then(|h| {
            h.iter().find(|e| {
                e["kind"] == "saga.step" && e["detail"].as_str().is_some_and(|d| d.starts_with(step))
            })
        })
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_queued_order_cancelled_by_the_customer_never_reaches_a_kitchen_and_is_refunded() {
    let mut p = Platform::up(&[]);
    let ids = p.place_many(2);
    p.wait_state(&ids, "queued", LONG);
    let (status, body) = p.cancel(&ids[0]);
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("cancelling")),
        "{body}"
    );
    p.wait_state(&ids[..1], "cancelled", LONG);
    let view = p.view(&ids[0]);
    assert_eq!(compensation(&view), refunded_saga("done", &[]), "{view}");
    // Every step is logged with the order's trace id.
    let trace = view["trace_id"].as_str().unwrap_or_default().to_string();
    let steps = p.w.log_events("order", "cancellation step");
    let ours: Vec<&Value> = steps
        .iter()
        .filter(|l| l["order_id"] == ids[0].as_str())
        .collect();
    assert_eq!(ours.len(), 4, "{steps:?}");
    assert!(ours.iter().all(|l| l["trace_id"] == trace.as_str()), "{ours:?}");

    // A kitchen opening now cooks only the order still wanted.
    p.kitchen("kitchen-1", "0", "2");
    p.wait_state(&ids[1..], "delivered", LONG);
    let cooks = p.cooks(&["kitchen-1"]);
    assert_eq!(cooks.keys().collect::<Vec<_>>(), [&ids[1]], "{cooks:?}");

    // Once over, an order cannot be cancelled; an unknown one is 404.
    let (status, body) = p.cancel(&ids[0]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_ended")),
        "{body}"
    );
    let (status, body) = p.cancel(&ids[1]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_delivered")),
        "{body}"
    );
    assert_eq!(p.cancel("ord_nope").0, 404);
}

#[test]
fn cancelling_an_order_in_the_oven_waits_for_it_and_cancelling_one_on_the_road_recalls_the_driver() {
    let mut p = Platform::new(&[]);
    p.payment();
    p.order();
    p.delivery_taking("60000");
    p.kitchen("kitchen-1", "1500", "2");
    let ids = p.place_many(2);
    p.wait_state(&ids[..1], "cooking", LONG);
    let (status, body) = p.cancel(&ids[0]);
    assert_eq!(status, 202, "{body}");
    p.wait_state(&ids[1..], "out_for_delivery", LONG);
    let (status, body) = p.cancel(&ids[1]);
    assert_eq!(status, 202, "{body}");
    p.wait_state(&ids, "cancelled", LONG);

    let in_oven = p.view(&ids[0]);
    assert!(
        step_detail(&in_oven, "withdraw_ticket").contains("already cooking"),
        "{in_oven}"
    );
    let kinds = history_kinds(&in_oven);
    assert!(
        !kinds.iter().any(|k| k == "driver.assigned"),
        "the cooked pizza never left: {kinds:?}"
    );

    let on_road = p.view(&ids[1]);
    assert!(
        step_detail(&on_road, "recall_driver").contains("called back"),
        "{on_road}"
    );
    assert!(
        !history_kinds(&on_road).iter().any(|k| k == "order.delivered"),
        "{on_road}"
    );
    // Seqs stay one unbroken line across the three nodes that wrote them.
    let seqs: Vec<u64> = on_road["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["seq"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{on_road}");
    // Every driver is free again.
    let drivers_url = format!("http://127.0.0.1:{}/drivers", p.delivery_port);
    wait_for(LONG, "every driver to be back", || {
        p.http
            .get(&drivers_url)
            .1
            .as_array()
            .is_some_and(|d| d.len() == 3 && d.iter().all(|x| x["order_id"].is_null()))
    });
}

#[test]
fn a_cancellation_whose_refund_keeps_failing_goes_to_the_dlq_with_an_alert_and_finishes_when_requeued() {
    let mut p = Platform::up(&[]);
    let mqtt = support::Mqtt::connect(p.w.port, "test-alerts", None).expect("connects");
    mqtt.subscribe("pizza/events/queue.dead_lettered");
    let ids = p.place_many(1);
    p.wait_state(&ids, "queued", LONG);
    p.proc("payment").kill9();
    let (status, body) = p.cancel(&ids[0]);
    assert_eq!(status, 202, "{body}");
    let alert = mqtt.expect("pizza/events/queue.dead_lettered", LONG, |a| {
        a["payload"]["queue"] == "cancellation"
    });
    let reason = alert["payload"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("step refund failed after 3 attempts"), "{alert}");
    assert_eq!(alert["order_id"], ids[0].as_str(), "{alert}");
    let view = p.view(&ids[0]);
    assert_eq!(view["state"], "cancelling", "{view}");
    assert_eq!(
        compensation(&view).last().map(String::as_str),
        Some("saga.step refund failed"),
        "{view}"
    );

    // Payment is back; the operator re-queues the dead letter.
    p.payment();
    mqtt.publish("pizza/q/cancellation/dlq/requeue", r#"{"all":true}"#);
    p.wait_state(&ids, "cancelled", LONG);
    let view = p.view(&ids[0]);
    assert_eq!(
        compensation(&view),
        refunded_saga("done", &["saga.step refund failed"]),
        "{view}"
    );
}

#[test]
fn fault_commands_a_node_cannot_act_on_are_refused_and_change_nothing() {
    let mut p = Platform::new(&[]);
    p.kitchen("kitchen-1", "10", "1");
    let mqtt = p.mqtt("test-bad-faults");
    let status = "pizza/nodes/kitchen-1/status";
    mqtt.subscribe(status);
    mqtt.expect(status, LONG, |s| s["state"] == "up");
    for bad in [
        json!({"latency_ms": u64::MAX}),
        json!({"error_rate": -5.0}),
        json!({"drop_rate": 7.0}),
    ] {
        let command = json!({"command": "set_faults", "faults": bad});
        mqtt.publish("pizza/control/kitchen-1", command.to_string());
    }
    // Commands are taken in order: once this one shows, the bad ones were seen.
    p.set_faults(&mqtt, "kitchen-1", &json!({"error_rate": 0.25}), "error_rate");
    let beat = mqtt.expect(status, LONG, |s| s["faults"]["error_rate"] == 0.25);
    assert_eq!(beat["faults"]["latency_ms"], 0, "{beat}");
    assert_eq!(beat["faults"]["drop_rate"], 0.0, "{beat}");
    let refused = p.w.log_events(
        "kitchen-1",
        "refused a set_faults command; the faults stay as they were",
    );
    assert_eq!(refused.len(), 3, "each bad command is logged with its reason");
    assert!(refused[0]["why"]
        .as_str()
        .unwrap_or_default()
        .starts_with("latency_ms"));
}
