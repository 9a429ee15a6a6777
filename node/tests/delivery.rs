//! The delivery service end to end: a real broker, a real `pizza-node
//! delivery`, tickets put on queue `delivery` over raw MQTT.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use contracts::api::{Customer, DeliveryView, DriverView};
use contracts::events::{self, DeliveryTicket};
use contracts::queue::Confirm;
use contracts::Envelope;
use support::{free_port, wait_for, Mqtt, Proc, World};
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

/// `pizza-node delivery --id ID` against `w`'s broker with 2 drivers whose
/// trips take `trip_ms`; returns the process and its HTTP base URL.
fn delivery(w: &World, id: &str, trip_ms: &str) -> (Proc, String) {
    let http = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "delivery",
        "--id",
        id,
        "--broker",
        &w.broker_url(),
        "--data-dir",
        &w.path(id).display().to_string(),
        "--http",
        &http,
        "--drivers",
        "2",
        "--trip-ms",
        trip_ms,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let p = Proc::spawn(id, &args, &w.path(&format!("{id}.log")));
    let base = format!("http://{http}");
    wait_for(LONG, "the delivery node's HTTP server", || {
        reqwest::blocking::get(format!("{base}/healthz")).is_ok_and(|r| r.status().is_success())
    });
    (p, base)
}

fn ticket(order_id: &str) -> Envelope {
    let body = DeliveryTicket {
        kitchen: "kitchen-1".into(),
        customer: Customer {
            name: "Ada".into(),
            address: "1 Loop Lane".into(),
        },
    };
    events::envelope(&body, order_id, 5, contracts::envelope::new_trace_id(), "test")
        .expect("a ticket serialises")
}

fn put(mqtt: &Mqtt, env: &Envelope) {
    mqtt.publish(
        "pizza/q/delivery/put",
        serde_json::to_vec(env).expect("an envelope serialises"),
    );
}

/// Waits until the keeper has confirmed every id in `ids` (stored durably).
fn expect_confirmed(mqtt: &Mqtt, ids: &[Uuid]) {
    let mut waiting: HashSet<Uuid> = ids.iter().copied().collect();
    mqtt.expect("pizza/q/delivery/confirm/test", LONG, |v| {
        if let Ok(c) = serde_json::from_value::<Confirm>(v.clone()) {
            for id in c.event_ids {
                waiting.remove(&id);
            }
        }
        waiting.is_empty()
    });
}

/// Waits for event `kind` of `ticket`'s order and checks what every event of
/// a trip must carry.
fn expect_event(mqtt: &Mqtt, ticket: &Envelope, kind: &str, seq: u64) -> serde_json::Value {
    let e = mqtt.expect(&format!("pizza/events/{kind}"), LONG, |v| {
        v["order_id"] == ticket.order_id.as_str()
    });
    assert_eq!(e["kind"], kind, "{e}");
    assert_eq!(e["seq"], seq, "{e}");
    assert_eq!(e["trace_id"], ticket.trace_id.as_str(), "{e}");
    assert_eq!(e["causation_id"], ticket.event_id.to_string(), "{e}");
    assert_eq!(e["source"], "delivery-1", "{e}");
    e
}

fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    let r = reqwest::blocking::get(url).expect("GET answers");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().expect("a JSON body")
}

#[test]
fn tickets_are_delivered_by_free_drivers_and_a_bad_one_is_dead_lettered() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = Mqtt::connect(w.port, "test-delivery", None).expect("connects");
    mqtt.subscribe("pizza/events/#");
    mqtt.subscribe("pizza/q/delivery/confirm/test");
    mqtt.subscribe("pizza/q/delivery/dlq/items");
    mqtt.subscribe("pizza/nodes/delivery-1/status");
    let (mut node, base) = delivery(&w, "delivery-1", "0");

    let tickets: Vec<Envelope> = (1..=5).map(|i| ticket(&format!("order-{i}"))).collect();
    let mut bad = ticket("order-bad");
    bad.payload = serde_json::json!({ "pizza": "not a delivery ticket" });
    for t in tickets.iter().chain([&bad]) {
        put(&mqtt, t);
    }
    let ids: Vec<Uuid> = tickets.iter().chain([&bad]).map(|t| t.event_id).collect();
    expect_confirmed(&mqtt, &ids);

    let drivers = ["Ada", "Brian"];
    for t in &tickets {
        let assigned = expect_event(&mqtt, t, "driver.assigned", 6);
        let driver = assigned["payload"]["driver"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(drivers.contains(&driver.as_str()), "{assigned}");
        assert_eq!(assigned["payload"]["kitchen"], "kitchen-1");
        let notified = expect_event(&mqtt, t, "customer.notified", 7);
        assert_eq!(notified["payload"]["message"], "Your pizza is on its way!");
        let delivered = expect_event(&mqtt, t, "order.delivered", 8);
        assert_eq!(delivered["payload"]["driver"], driver.as_str());

        let url = format!("{base}/deliveries/{}", t.order_id);
        wait_for(LONG, "the delivery shown as delivered", || {
            get_json::<DeliveryView>(&url).state == "delivered"
        });
        let view: DeliveryView = get_json(&url);
        assert_eq!(view.order_id, t.order_id);
        assert_eq!(view.driver, driver);
        assert!(view.delivered_at.is_some(), "{view:?}");
    }

    // The bad ticket is dead-lettered with the decode error.
    let listing = mqtt.expect("pizza/q/delivery/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| {
            a.iter()
                .any(|l| l["envelope"]["event_id"] == bad.event_id.to_string())
        })
    });
    let letter = listing["letters"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|l| l["envelope"]["event_id"] == bad.event_id.to_string())
        })
        .expect("the bad ticket is listed");
    let reason = letter["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("rejected by delivery-1"), "{letter}");
    assert!(reason.contains("malformed delivery.ticket payload"), "{letter}");
    let unknown = reqwest::blocking::get(format!("{base}/deliveries/order-bad")).expect("GET answers");
    assert_eq!(unknown.status(), 404);

    let listed: Vec<DriverView> = get_json(&format!("{base}/drivers"));
    let names: Vec<&str> = listed.iter().map(|d| d.driver.as_str()).collect();
    assert_eq!(names, drivers);
    wait_for(LONG, "both drivers back", || {
        get_json::<Vec<DriverView>>(&format!("{base}/drivers"))
            .iter()
            .all(|d| d.order_id.is_none() && d.since.is_none())
    });

    // The heartbeat shows the role's figures.
    // (Counters and figures move at slightly different moments of a
    // delivery, so wait for a heartbeat taken after all of them.)
    let status = mqtt.expect("pizza/nodes/delivery-1/status", LONG, |v| {
        v["figures"]["delivered"] == 5 && v["handled"] == 5 && v["in_flight"] == 0
    });
    assert_eq!(status["figures"]["drivers_free"], 2, "{status}");
    assert_eq!(status["figures"]["drivers_busy"], 0, "{status}");
    assert_eq!(status["failed"], 1, "the bad ticket: {status}");

    // A graceful stop exits cleanly and says so in the retained status.
    assert_eq!(node.terminate(), Some(0));
    mqtt.expect("pizza/nodes/delivery-1/status", LONG, |v| v["state"] == "offline");
}

#[test]
fn a_paused_delivery_node_takes_no_tickets_until_resumed() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = Mqtt::connect(w.port, "test-delivery", None).expect("connects");
    mqtt.subscribe("pizza/events/#");
    mqtt.subscribe("pizza/q/delivery/confirm/test");
    mqtt.subscribe("pizza/q/stats");
    let (_node, base) = delivery(&w, "delivery-1", "0");

    let consumer_credit = |v: &serde_json::Value| -> Option<u64> {
        v["queues"].as_array()?.iter().find(|q| q["name"] == "delivery")?["consumers"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == "delivery-1")?["credit"]
            .as_u64()
    };
    mqtt.expect("pizza/q/stats", LONG, |v| consumer_credit(v) == Some(2));
    mqtt.publish("pizza/control/delivery-1", r#"{"command":"pause"}"#);
    mqtt.expect("pizza/q/stats", LONG, |v| consumer_credit(v) == Some(0));

    let t = ticket("order-paused");
    put(&mqtt, &t);
    expect_confirmed(&mqtt, &[t.event_id]);
    // The keeper reports the ticket waiting, not handed out.
    mqtt.expect("pizza/q/stats", LONG, |v| {
        v["queues"].as_array().is_some_and(|qs| {
            qs.iter().any(|q| {
                q["name"] == "delivery" && q["put_total"] == 1 && q["ready"] == 1 && q["in_flight"] == 0
            })
        })
    });
    let none = reqwest::blocking::get(format!("{base}/deliveries/order-paused")).expect("GET answers");
    assert_eq!(none.status(), 404);

    mqtt.publish("pizza/control/delivery-1", r#"{"command":"resume"}"#);
    expect_event(&mqtt, &t, "driver.assigned", 6);
    expect_event(&mqtt, &t, "order.delivered", 8);
}

#[test]
fn a_graceful_stop_lets_the_trip_under_way_finish() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = Mqtt::connect(w.port, "test-delivery", None).expect("connects");
    mqtt.subscribe("pizza/events/#");
    mqtt.subscribe("pizza/nodes/delivery-1/status");
    let (mut node, _base) = delivery(&w, "delivery-1", "1500");

    let t = ticket("order-late");
    put(&mqtt, &t);
    expect_event(&mqtt, &t, "driver.assigned", 6);
    // SIGTERM while the driver is on the road: the trip still ends with
    // order.delivered before the node goes offline.
    assert_eq!(node.terminate(), Some(0));
    expect_event(&mqtt, &t, "order.delivered", 8);
    let last = mqtt.expect("pizza/nodes/delivery-1/status", LONG, |v| v["state"] == "offline");
    assert_eq!(last["handled"], 1, "{last}");
}
