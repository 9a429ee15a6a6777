//! A node that reconnects with a huge outbox drains it within its window,
//! without starving its keep-alive (the link never reconnects on its own).

mod support;

use std::time::Duration;

use support::World;

const ENTRIES: &str = "50000";

#[test]
fn a_reconnect_with_50_000_unconfirmed_entries_confirms_all_and_never_reconnects_on_its_own() {
    let w = World::new();
    // No broker yet: every put stays in the producer's outbox.
    let mut offline = w.producer(
        "p1",
        &[
            "--queue",
            "kitchen",
            "--count",
            ENTRIES,
            "--keys",
            "100",
            "--timeout-s",
            "1",
            "--log-format",
            "json",
        ],
    );
    assert_eq!(
        offline.wait_exit(Duration::from_secs(300)),
        Some(1),
        "nothing could be confirmed"
    );
    let written = offline.with("put").len();
    assert_eq!(written.to_string(), ENTRIES);

    let _broker = w.broker(&[]);
    // The same node again, with nothing new to put: it sends its outbox.
    let mut again = w.producer(
        "p1",
        &[
            "--queue",
            "kitchen",
            "--count",
            "0",
            "--timeout-s",
            "240",
            "--log-format",
            "json",
        ],
    );
    assert_eq!(
        again.wait_exit(Duration::from_secs(300)),
        Some(0),
        "the outbox drained"
    );
    // Both runs log to p1.log; the first only ever failed to connect.
    let connects = w.log_events("p1", "connected to the broker");
    assert_eq!(connects.len(), 1, "one connection: {connects:?}");
    let since = connects[0]["timestamp"].as_str().unwrap_or_default().to_string();
    let lost: Vec<_> = w
        .log_events("p1", "lost the broker; reconnecting")
        .into_iter()
        .filter(|l| l["timestamp"].as_str().unwrap_or_default() > since.as_str())
        .collect();
    assert!(lost.is_empty(), "the link dropped while draining: {lost:?}");

    // The keeper holds every one of them, once.
    let stats = w.watch("test-stats", &["pizza/q/stats"]);
    stats.expect("pizza/q/stats", Duration::from_secs(30), |s| {
        s["queues"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|q| q["name"] == "kitchen" && q["ready"].as_u64() == ENTRIES.parse().ok())
    });
}
