//! Dead letters: malformed puts, rejected and exhausted messages, re-queue.

mod support;

use std::time::Duration;

use support::{s, wait_for, Mqtt, World};

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_malformed_put_goes_to_the_dlq_with_its_reason_and_the_broker_keeps_running() {
    let w = World::new();
    let mut broker = w.broker(&[]);
    let mqtt = Mqtt::connect(w.port, "test-poker", None).expect("connects");
    mqtt.subscribe("pizza/events/queue.dead_lettered");
    mqtt.subscribe("pizza/q/kitchen/dlq/items");
    // The retained (empty) listing arrives first; it shows the subscription is live.
    mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.is_empty())
    });

    mqtt.publish("pizza/q/kitchen/put", "{this is not json");
    mqtt.publish("pizza/q/kitchen/put", r#"{"event_id":"not-a-uuid"}"#);

    let listing = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 2)
    });
    let letters = listing["letters"].as_array().unwrap();
    assert!(
        s(&letters[0], "reason").starts_with("malformed envelope:"),
        "{listing}"
    );
    assert_eq!(s(&letters[0], "raw"), "{this is not json");
    assert_eq!(s(&letters[1], "raw"), r#"{"event_id":"not-a-uuid"}"#);
    let alert = mqtt.expect("pizza/events/queue.dead_lettered", LONG, |_| true);
    assert_eq!(alert["payload"]["queue"], "kitchen");

    // Still serving: a good put is confirmed and delivered.
    assert!(broker.running());
    let mut producer = w.producer("p1", &["--count", "3"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    let consumer = w.consumer("c1", &["--credit", "3"]);
    wait_for(LONG, "3 deliveries", || consumer.with("acked").len() == 3);
}

#[test]
fn rejected_and_exhausted_messages_are_dead_lettered_and_can_be_requeued() {
    let w = World::new();
    let _broker = w.broker(&["--max-attempts", "3", "--retry-base-ms", "10"]);
    let mqtt = Mqtt::connect(w.port, "test-poker", None).expect("connects");
    mqtt.subscribe("pizza/q/kitchen/dlq/items");
    mqtt.subscribe("pizza/q/stats");

    let mut producer = w.producer("p1", &["--count", "2", "--keys", "2"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    let mut failing = w.consumer("c-retry", &["--credit", "2", "--ack", "retry"]);
    let letters = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 2)
    });
    for l in letters["letters"].as_array().unwrap() {
        assert_eq!(l["attempts"], 3, "{l}");
        assert!(s(l, "reason").contains("gave up after 3 attempts"), "{l}");
    }
    let attempts: Vec<u64> = failing
        .with("delivery_id")
        .iter()
        .map(|d| d["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts.len(), 6, "each message tried 3 times: {attempts:?}");
    failing.kill9();
    // Re-queue only once the keeper knows the failing consumer is gone, or
    // the messages could go to it first and come back marked "offline".
    mqtt.expect("pizza/q/stats", LONG, |v| {
        v["queues"].as_array().is_some_and(|qs| {
            qs.iter().any(|q| {
                q["name"] == "kitchen"
                    && q["consumers"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["id"] == "c-retry" && c["online"] == false))
            })
        })
    });

    // Re-queue them all; a healthy consumer finishes them.
    mqtt.publish("pizza/q/kitchen/dlq/requeue", r#"{"all":true}"#);
    mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.is_empty())
    });
    let healthy = w.consumer("c-ok", &["--credit", "2"]);
    wait_for(LONG, "the re-queued messages done", || {
        healthy.with("acked").len() == 2
    });
    for d in healthy.with("delivery_id") {
        assert!(s(&d, "redelivery").starts_with("re-queued from the DLQ"), "{d}");
    }
    let stats = mqtt.expect("pizza/q/stats", LONG, |v| {
        v["queues"]
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| q["name"] == "kitchen" && q["done_total"] == 2))
    });
    let kitchen = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "kitchen")
        .unwrap()
        .clone();
    assert_eq!(kitchen["dlq"], 0);
    assert_eq!(kitchen["ready"], 0);
    assert_eq!(kitchen["in_flight"], 0);
}

#[test]
fn a_reject_dead_letters_at_once_with_the_consumers_reason() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = Mqtt::connect(w.port, "test-poker", None).expect("connects");
    mqtt.subscribe("pizza/q/kitchen/dlq/items");
    let _consumer = w.consumer("c-reject", &["--credit", "1", "--ack", "reject"]);
    let mut producer = w.producer("p1", &["--count", "1"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    let letters = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 1)
    });
    let l = &letters["letters"][0];
    assert_eq!(l["attempts"], 1);
    assert!(s(l, "reason").contains("rejected by c-reject"), "{l}");
    assert_eq!(l["envelope"]["kind"], "test.message");
}

#[test]
fn an_unreadable_delivery_is_dead_lettered_with_its_reason_and_spoils_nothing_else() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = w.watch("test-poker", &["pizza/q/kitchen/dlq/items", "pizza/q/stats"]);
    let mut producer = w.producer("p1", &["--queue", "kitchen", "--count", "5", "--keys", "5"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    // Well-formed JSON, so the put is stored; but the payload holds a number
    // no consumer can read (out of f64's range).
    let bad = contracts::Envelope::new(
        "kitchen.ticket",
        "o-bad",
        1,
        "t",
        "test-poker",
        serde_json::json!({}),
    );
    let raw = serde_json::to_string(&bad)
        .unwrap()
        .replace(r#""payload":{}"#, r#""payload":{"x":1e400}"#);
    mqtt.publish("pizza/q/kitchen/put", raw);
    // All six wait, so the consumer gets them in one batch.
    mqtt.expect("pizza/q/stats", LONG, |v| {
        v["queues"]
            .as_array()
            .is_some_and(|qs| qs.iter().any(|q| q["name"] == "kitchen" && q["ready"] == 6))
    });
    let consumer = w.consumer("c1", &["--queue", "kitchen", "--credit", "10"]);
    let listing = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 1)
    });
    let letter = &listing["letters"].as_array().unwrap()[0];
    assert!(
        s(letter, "raw").contains(r#""order_id":"o-bad""#),
        "kept as text, since it does not read: {letter}"
    );
    assert!(
        s(letter, "reason").contains("unreadable delivery")
            && s(letter, "reason").contains("number out of range"),
        "{letter}"
    );
    assert_eq!(
        letter["attempts"], 1,
        "rejected at once, not after timeouts: {letter}"
    );
    wait_for(LONG, "the five good ones done", || {
        consumer.with("acked").len() == 5
    });
}

#[test]
fn a_put_too_large_to_deliver_goes_to_the_dlq_and_the_queue_keeps_moving() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mqtt = w.watch(
        "test-poker",
        &["pizza/q/kitchen/dlq/items", "pizza/q/kitchen/confirm/test-poker"],
    );
    mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.is_empty())
    });
    // Within the broker's 256 KiB limit, but with no room left for the
    // delivery's own fields.
    let blob = "x".repeat(250 * 1024);
    let big = contracts::Envelope::new(
        "kitchen.ticket",
        "o-big",
        1,
        "t",
        "test-poker",
        serde_json::json!({ "blob": blob }),
    );
    mqtt.publish("pizza/q/kitchen/put", serde_json::to_vec(&big).unwrap());
    let listing = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 1)
    });
    let letter = &listing["letters"].as_array().unwrap()[0];
    assert!(
        s(letter, "reason").starts_with("envelope too large: "),
        "{letter}"
    );
    let raw = s(letter, "raw");
    assert!(
        raw.contains(r#""order_id":"o-big""#) && raw.ends_with('…') && raw.len() < 8 * 1024,
        "the listing shows the start of it: {} bytes",
        raw.len()
    );
    let confirm = mqtt.expect("pizza/q/kitchen/confirm/test-poker", LONG, |_| true);
    assert_eq!(
        confirm["event_ids"][0],
        big.event_id.to_string(),
        "kept in the DLQ, so confirmed: its producer stops re-sending it"
    );

    let mut producer = w.producer("p1", &["--queue", "kitchen", "--count", "3", "--keys", "3"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    let consumer = w.consumer("c1", &["--queue", "kitchen", "--credit", "3"]);
    wait_for(LONG, "the next puts delivered", || {
        consumer.with("acked").len() == 3
    });
}

#[test]
fn a_forged_ticket_no_order_could_make_is_dead_lettered_by_the_kitchen_with_the_field() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let _kitchen = w.node("kitchen", "kitchen-1", &["--prep-ms", "10"]);
    let mqtt = Mqtt::connect(w.port, "test-forger", None).expect("connects");
    mqtt.subscribe("pizza/q/kitchen/dlq/items");
    mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.is_empty())
    });
    // Four billion pizzas (the kitchen would fill its memory listing their
    // ingredients), and a 2,000-character name.
    let forged = [
        serde_json::json!({"items": [{"pizza": "margherita", "qty": 4_000_000_000u64}], "customer": {"name": "Eve", "address": "X"}}),
        serde_json::json!({"items": [{"pizza": "margherita", "qty": 1}], "customer": {"name": "e".repeat(2_000), "address": "X"}}),
    ];
    for (n, body) in forged.iter().enumerate() {
        let env = contracts::Envelope::new(
            "kitchen.ticket",
            format!("ord_forged{n}"),
            3,
            contracts::envelope::new_trace_id(),
            "eve",
            body.clone(),
        );
        mqtt.publish("pizza/q/kitchen/put", serde_json::to_string(&env).expect("json"));
    }
    let listing = mqtt.expect("pizza/q/kitchen/dlq/items", LONG, |v| {
        v["letters"].as_array().is_some_and(|a| a.len() == 2)
    });
    let reasons: Vec<String> = listing["letters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| s(l, "reason"))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("items[0].qty")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("customer.name")), "{reasons:?}");
}
