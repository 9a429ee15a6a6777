//! The durable work queues, end to end: a real broker process, real producer
//! and consumer processes, ephemeral ports, temp dirs.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use support::{s, wait_for, World};

const LONG: Duration = Duration::from_secs(60);

/// event_id -> deliveries of it, in the order each consumer printed them.
fn deliveries(procs: &[&support::Proc]) -> HashMap<String, Vec<serde_json::Value>> {
    let mut by_id: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for p in procs {
        for l in p.with("delivery_id") {
            by_id.entry(s(&l, "event_id")).or_default().push(l);
        }
    }
    by_id
}

fn put_ids(p: &support::Proc) -> HashSet<String> {
    p.with("put").iter().map(|l| s(l, "put")).collect()
}

/// Every repeat delivery of a message must say why it is a repeat.
fn assert_repeats_are_marked(by_id: &HashMap<String, Vec<serde_json::Value>>) {
    for (id, ds) in by_id {
        let mut ds = ds.clone();
        ds.sort_by_key(|d| d["at_ns"].as_u64().unwrap_or(0));
        for d in ds.iter().skip(1) {
            assert!(
                d["redelivery"].is_string(),
                "{id} was delivered again without a redelivery reason: {ds:?}"
            );
        }
    }
}

#[test]
fn buffered_messages_reach_a_consumer_that_connects_later() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mut producer = w.producer("p1", &["--queue", "kitchen", "--count", "1000", "--keys", "1000"]);
    assert_eq!(producer.wait_exit(LONG), Some(0), "every put is confirmed");
    let put = put_ids(&producer);
    assert_eq!(put.len(), 1000);

    let consumer = w.consumer("c1", &["--queue", "kitchen", "--credit", "50"]);
    wait_for(LONG, "1000 deliveries", || consumer.with("acked").len() >= 1000);
    let by_id = deliveries(&[&consumer]);
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    assert_eq!(delivered, put, "exactly the messages put were delivered");
    assert_repeats_are_marked(&by_id);
}

#[test]
fn two_consumers_share_the_work() {
    let w = World::new();
    let _broker = w.broker(&[]);
    // Work long enough that scheduling noise on a loaded machine does not
    // decide the split.
    let a = w.consumer("c-a", &["--credit", "1", "--work-ms", "20"]);
    let b = w.consumer("c-b", &["--credit", "1", "--work-ms", "20"]);
    w.wait_consumers("kitchen", &["c-a", "c-b"]);
    let mut producer = w.producer("p1", &["--count", "200", "--keys", "200"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    wait_for(LONG, "200 acks", || {
        a.with("acked").len() + b.with("acked").len() >= 200
    });
    let (na, nb) = (a.with("acked").len(), b.with("acked").len());
    eprintln!("split: c-a {na}, c-b {nb}");
    assert_eq!(na + nb, 200);
    assert!(na >= 50 && nb >= 50, "both take a fair share: {na} / {nb}");
}

#[test]
fn one_key_is_never_in_flight_twice_and_stays_in_order() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let consumers: Vec<_> = (1..=3)
        .map(|i| w.consumer(&format!("c{i}"), &["--credit", "4", "--work-ms", "1"]))
        .collect();
    w.wait_consumers("kitchen", &["c1", "c2", "c3"]);
    let mut producer = w.producer("p1", &["--count", "1000", "--keys", "50"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    wait_for(LONG, "1000 acks", || {
        consumers.iter().map(|c| c.with("acked").len()).sum::<usize>() >= 1000
    });

    // Per key: (received, acked, seq) intervals across all consumers.
    let mut per_key: BTreeMap<String, Vec<(u64, u64, u64)>> = BTreeMap::new();
    let mut worked = Vec::new();
    for c in &consumers {
        let acked: HashMap<String, u64> = c
            .with("acked")
            .iter()
            .map(|l| (s(l, "acked"), l["at_ns"].as_u64().unwrap_or(0)))
            .collect();
        let got = c.with("delivery_id");
        worked.push(got.len());
        for d in got {
            let end = acked[&s(&d, "delivery_id")];
            let start = d["at_ns"].as_u64().unwrap_or(0);
            per_key
                .entry(s(&d, "key"))
                .or_default()
                .push((start, end, d["seq"].as_u64().unwrap_or(0)));
        }
    }
    eprintln!("work per consumer: {worked:?}");
    assert_eq!(per_key.len(), 50);
    for (key, mut spans) in per_key {
        spans.sort();
        let seqs: Vec<u64> = spans.iter().map(|s| s.2).collect();
        assert_eq!(
            seqs,
            (1..=20).collect::<Vec<_>>(),
            "key {key} delivered in put order"
        );
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "key {key}: two deliveries in flight at once: {pair:?}"
            );
        }
    }
    assert!(
        worked.iter().all(|n| *n > 0),
        "all three consumers worked: {worked:?}"
    );
}

#[test]
fn deliveries_held_by_a_killed_consumer_go_to_another() {
    let w = World::new();
    let _broker = w.broker(&[]);
    // The slow one takes 5 and sits on them.
    let mut slow = w.consumer("slow", &["--credit", "5", "--work-ms", "600000"]);
    w.wait_consumers("kitchen", &["slow"]);
    let mut producer = w.producer("p1", &["--count", "5", "--keys", "5"]);
    assert_eq!(producer.wait_exit(LONG), Some(0));
    wait_for(LONG, "5 deliveries held by the slow consumer", || {
        slow.with("delivery_id").len() == 5
    });
    let held: HashSet<String> = slow
        .with("delivery_id")
        .iter()
        .map(|d| s(d, "event_id"))
        .collect();

    let fast = w.consumer("fast", &["--credit", "5"]);
    slow.kill9();
    wait_for(LONG, "the fast consumer to finish the 5", || {
        fast.with("acked").len() >= 5
    });
    let redelivered = fast.with("delivery_id");
    let got: HashSet<String> = redelivered.iter().map(|d| s(d, "event_id")).collect();
    assert_eq!(got, held, "everything the killed consumer held was redelivered");
    for d in &redelivered {
        assert_eq!(d["attempt"], 2);
        assert!(
            s(d, "redelivery").contains("slow went offline"),
            "the redelivery says why: {d}"
        );
    }
}

#[test]
fn killing_the_broker_mid_stream_loses_no_confirmed_message() {
    let w = World::new();
    let mut broker = w.broker(&[]);
    let consumer = w.consumer("c1", &["--credit", "20", "--work-ms", "1"]);
    let mut producer = w.producer("p1", &["--count", "3000", "--keys", "300", "--rate", "1000"]);
    wait_for(LONG, "the stream to be flowing", || {
        consumer.with("acked").len() > 300
    });
    broker.kill9();
    std::thread::sleep(Duration::from_millis(300)); // the broker is down for a while
    let _broker = w.broker(&[]);
    assert_eq!(
        producer.wait_exit(Duration::from_secs(120)),
        Some(0),
        "the producer got every confirm in the end"
    );
    let put = put_ids(&producer);
    assert_eq!(put.len(), 3000);
    wait_for(Duration::from_secs(120), "every put message delivered", || {
        let delivered: HashSet<String> = consumer
            .with("delivery_id")
            .iter()
            .map(|d| s(d, "event_id"))
            .collect();
        delivered.is_superset(&put)
    });
    let by_id = deliveries(&[&consumer]);
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    assert_eq!(delivered, put, "the delivered set equals the put set");
    let repeats = by_id.values().filter(|d| d.len() > 1).count();
    eprintln!("messages delivered more than once across the broker restart: {repeats}");
    assert_repeats_are_marked(&by_id);
}

/// The kitchen queue's figures in a `pizza/q/stats` message.
fn kitchen(stats: &serde_json::Value) -> Option<&serde_json::Value> {
    stats["queues"]
        .as_array()?
        .iter()
        .find(|q| q["name"] == "kitchen")
}

#[test]
fn finished_work_stays_finished_after_the_broker_is_killed() {
    let w = World::new();
    let mut broker = w.broker(&[]);
    let mut producer = w.producer("p1", &["--queue", "kitchen", "--count", "300", "--keys", "300"]);
    assert_eq!(producer.wait_exit(LONG), Some(0), "every put is confirmed");
    let mqtt = w.watch("test-watch", &["pizza/q/stats"]);
    let mut consumer = w.consumer("c1", &["--queue", "kitchen", "--credit", "50"]);
    // Stats are published between batches, after the batch's flush: once
    // they show the work done, the dones are on disk.
    mqtt.expect("pizza/q/stats", LONG, |v| {
        kitchen(v).is_some_and(|k| k["done_total"] == 300 && k["ready"] == 0 && k["in_flight"] == 0)
    });
    consumer.kill9();
    drop(mqtt);
    broker.kill9();

    let _broker = w.broker(&[]);
    let mqtt = w.watch("test-watch-2", &["pizza/q/stats"]);
    let later = w.consumer("c2", &["--queue", "kitchen", "--credit", "50"]);
    let stats = mqtt.expect("pizza/q/stats", LONG, |v| {
        kitchen(v).is_some_and(|k| {
            k["consumers"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["id"] == "c2" && c["online"] == true))
        })
    });
    let k = kitchen(&stats).cloned().unwrap_or_default();
    assert_eq!(
        (
            k["ready"].as_u64(),
            k["in_flight"].as_u64(),
            k["done_total"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "nothing finished came back after the restart: {k}"
    );
    assert!(
        later.with("delivery_id").is_empty(),
        "the new consumer was given finished work"
    );
}
