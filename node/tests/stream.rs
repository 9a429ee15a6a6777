//! The durable event stream over the real broker: confirms after the log's
//! flush, and a durable subscription that misses nothing across a kill -9
//! of its subscriber and of the broker.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Mqtt, World};

const LONG: Duration = Duration::from_secs(30);

fn event(n: usize) -> contracts::Envelope {
    contracts::Envelope::new(
        "order.placed",
        format!("o-{n}"),
        1,
        "t",
        "test-pub",
        json!({"n": n}),
    )
}

/// Publishes events `range` to the log and waits for every confirm.
fn publish_confirmed(w: &World, range: std::ops::Range<usize>) -> Vec<uuid::Uuid> {
    let publisher = w.watch("test-pub", &["pizza/log/confirm/test-pub"]);
    let mut waiting: HashSet<uuid::Uuid> = HashSet::new();
    let mut ids = Vec::new();
    for n in range {
        let e = event(n);
        waiting.insert(e.event_id);
        ids.push(e.event_id);
        publisher.publish("pizza/log/put", serde_json::to_vec(&e).unwrap());
    }
    while !waiting.is_empty() {
        let confirm = publisher.expect("pizza/log/confirm/test-pub", LONG, |_| true);
        for id in confirm["event_ids"].as_array().into_iter().flatten() {
            if let Some(id) = id.as_str().and_then(|s| s.parse().ok()) {
                waiting.remove(&id);
            }
        }
    }
    ids
}

fn subscribe(sub: &Mqtt, session: &str) {
    let body = json!({"name": "audit", "credit": 64, "session": session});
    sub.publish("pizza/log/subscribe/test-sub", body.to_string());
}

/// Reads the subscription until `want` events arrived, acknowledging each
/// batch; returns `(position, event id)` in arrival order.
fn read(sub: &Mqtt, session: &str, want: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.len() < want {
        let batch: Value = sub.expect("pizza/log/deliver/test-sub", LONG, |b| b["session"] == session);
        for e in batch["events"].as_array().into_iter().flatten() {
            got.push((
                e["position"].as_u64().unwrap_or_default(),
                e["envelope"]["event_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        let ack = json!({"name": "audit", "position": batch["through"]});
        sub.publish("pizza/log/ack/test-sub", ack.to_string());
    }
    got
}

#[test]
fn a_durable_subscriber_gets_everything_after_its_cursor_across_its_absence_and_kill_9_of_the_broker() {
    let w = World::new();
    let mut broker = w.broker(&[]);

    let first = publish_confirmed(&w, 0..20);
    let sub = w.watch("test-sub", &["pizza/log/deliver/test-sub"]);
    subscribe(&sub, "s1");
    let read_first = read(&sub, "s1", 20);
    assert_eq!(
        read_first.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        first.iter().map(|id| id.to_string()).collect::<Vec<_>>(),
        "the first 20, in log order"
    );
    // The subscriber goes away (after the broker has acknowledged its last
    // ack: until the PUBACK, MQTT promises nothing, and rumqttd can drop a
    // publish that a DISCONNECT follows closely; then the log rightly sends
    // the first 20 again);
    // 500 events are published while it is away, with the broker killed -9
    // and restarted in between.
    sub.close();
    let mut ids = publish_confirmed(&w, 20..270);
    broker.kill9();
    broker = w.broker(&[]);
    ids.extend(publish_confirmed(&w, 270..520));

    let sub = w.watch("test-sub", &["pizza/log/deliver/test-sub"]);
    subscribe(&sub, "s2");
    let got = read(&sub, "s2", 500);
    let positions: Vec<u64> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (21..=520).collect::<Vec<u64>>(),
        "after the cursor, in log order, none twice"
    );
    assert_eq!(
        got.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        ids.iter().map(|id| id.to_string()).collect::<Vec<_>>()
    );
    drop(broker);
}

#[test]
fn an_event_sent_again_is_confirmed_again_and_stored_once() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let publisher = w.watch("test-pub", &["pizza/log/confirm/test-pub", "pizza/events/#"]);
    let e = event(1);
    for _ in 0..2 {
        publisher.publish("pizza/log/put", serde_json::to_vec(&e).unwrap());
        let c = publisher.expect("pizza/log/confirm/test-pub", LONG, |_| true);
        assert_eq!(c["event_ids"][0], e.event_id.to_string());
    }
    // A malformed one is not confirmed (it names no one) and stops nothing.
    publisher.publish("pizza/log/put", "{not an envelope");
    let marker = event(2);
    publisher.publish("pizza/log/put", serde_json::to_vec(&marker).unwrap());
    publisher.expect("pizza/log/confirm/test-pub", LONG, |c| {
        c["event_ids"][0] == marker.event_id.to_string()
    });
    // The plain topic carries each stored event once: the marker's copy
    // comes after the first event's (one subscription, one order).
    publisher.expect("pizza/events/order.placed", LONG, |v| {
        v["event_id"] == marker.event_id.to_string()
    });
    let seen: Vec<String> = publisher
        .take_all()
        .into_iter()
        .filter(|(t, _)| t.starts_with("pizza/events/"))
        .map(|(_, v)| v["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    let first = seen.iter().filter(|id| **id == e.event_id.to_string()).count();
    assert_eq!(first, 1, "stored once, republished once: {seen:?}");
}
