//! Per-order ordering under disorder, through real processes: with the
//! duplicate and reorder faults on every node that publishes an order's
//! events, each consumer (the order node's book, and this test as a plain
//! subscriber folding with the contract's `OrderFold`, as the control room
//! does) still applies one order's events in seq order, exactly once, and
//! ends where an undisturbed run ends.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use contracts::order::OrderFold;
use contracts::Envelope;
use serde_json::{json, Value};
use support::platform::{history_kinds, Platform};
use support::{wait_for, Mqtt};

/// Orders per run.
const N: usize = 15;
const LIMIT: Duration = Duration::from_secs(120);
const TERMINAL: [&str; 4] = ["delivered", "rejected", "cancelled", "failed"];

/// What one order ended as, seen by one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ending {
    state: String,
    kinds: Vec<String>,
    seqs: Vec<u64>,
}

/// What a run ended with.
struct Run {
    /// Per order, in placing order: the order node's view (`GET /orders/{id}`).
    book: Vec<Ending>,
    /// The same orders as this test's own subscriber folded them.
    watcher: Vec<Ending>,
    /// Envelopes that arrived at the subscriber after a later seq of their
    /// order: the disorder the folds had to repair.
    overtaken: usize,
    /// Envelopes that arrived at the subscriber more than once.
    duplicates: usize,
    /// The order node's last status, once nothing was held back any more.
    order_status: Value,
}

/// This test as one more consumer of the event stream: the arrival order as
/// it was, and one fold per order.
#[derive(Default)]
struct Watcher {
    folds: HashMap<String, OrderFold>,
    /// Highest seq that arrived, per order.
    highest: HashMap<String, u64>,
    seen: HashSet<uuid::Uuid>,
    overtaken: usize,
    duplicates: usize,
}

impl Watcher {
    fn absorb(&mut self, mqtt: &Mqtt) {
        for (topic, v) in mqtt.take_all() {
            if !topic.starts_with("pizza/events/") {
                continue;
            }
            let Ok(env) = serde_json::from_value::<Envelope>(v) else {
                panic!("a malformed event on {topic}");
            };
            if !self.seen.insert(env.event_id) {
                self.duplicates += 1;
            }
            let highest = self.highest.entry(env.order_id.clone()).or_default();
            if env.seq < *highest {
                self.overtaken += 1;
            }
            *highest = (*highest).max(env.seq);
            let id = env.order_id.clone();
            self.folds
                .entry(id.clone())
                .or_insert_with(|| OrderFold::new(id))
                .offer(env);
        }
    }

    fn ending(&self, id: &str) -> Option<Ending> {
        let fold = self.folds.get(id)?;
        assert!(
            fold.rejected().is_empty(),
            "{id}: illegal transitions {:?}",
            fold.rejected()
        );
        Some(Ending {
            state: fold.state()?.as_str().to_string(),
            kinds: fold.applied().iter().map(|e| e.kind.clone()).collect(),
            seqs: fold.applied().iter().map(|e| e.seq).collect(),
        })
    }
}

fn book_ending(view: &Value) -> Ending {
    Ending {
        state: view["state"].as_str().unwrap_or_default().to_string(),
        kinds: history_kinds(view),
        seqs: view["history"]
            .as_array()
            .map(|h| h.iter().filter_map(|e| e["seq"].as_u64()).collect())
            .unwrap_or_default(),
    }
}

/// Runs a platform (one kitchen, no prep or trip time), puts `faults` on
/// the order, kitchen and delivery nodes, places [`N`] orders and waits
/// until every one is in a terminal state for the order node and for the
/// subscriber alike.
fn run(faults: Option<&Value>) -> Run {
    let p = Platform::with_kitchen("kitchen-1", "0", "4");
    let mqtt = p.mqtt("test-watcher");
    mqtt.subscribe("pizza/events/#");
    // Subscriptions are handled in order: once the retained status of the
    // later one arrives, the event subscription is in place.
    mqtt.subscribe("pizza/nodes/order/status");
    mqtt.expect("pizza/nodes/order/status", LIMIT, |_| true);
    if let Some(faults) = faults {
        for node in ["order", "kitchen-1", "delivery"] {
            p.set_faults(&mqtt, node, faults, "reorder_rate");
        }
    }

    let ids = p.place_many(N);
    let mut watcher = Watcher::default();
    wait_for(
        LIMIT,
        "every order to end for the book and the subscriber",
        || {
            watcher.absorb(&mqtt);
            ids.iter().all(|id| {
                let subscriber_done = watcher
                    .ending(id)
                    .is_some_and(|e| TERMINAL.contains(&e.state.as_str()));
                subscriber_done && TERMINAL.contains(&p.view(id)["state"].as_str().unwrap_or_default())
            })
        },
    );
    // The book has applied every order's last event; its figures follow
    // within a heartbeat. Under faults, wait for one showing releases: a
    // heartbeat already on its way may predate them (and if none ever
    // comes, `expect` fails with what it saw).
    let order_status = mqtt.expect("pizza/nodes/order/status", Duration::from_secs(30), |s| {
        let f = &s["figures"];
        f["held_back"] == 0 && (faults.is_none() || f["released_total"].as_u64() > Some(0))
    });
    watcher.absorb(&mqtt);
    Run {
        book: ids.iter().map(|id| book_ending(&p.view(id))).collect(),
        watcher: ids.iter().map(|id| watcher.ending(id).expect("folded")).collect(),
        overtaken: watcher.overtaken,
        duplicates: watcher.duplicates,
        order_status,
    }
}

#[test]
fn heavy_reordering_and_duplicates_end_every_order_as_an_undisturbed_run_does() {
    let calm = run(None);
    let expected = calm.book[0].clone();
    assert_eq!(expected.state, "delivered", "{expected:?}");
    assert_eq!(
        expected.seqs,
        (1..=expected.kinds.len() as u64).collect::<Vec<_>>()
    );
    for (i, ending) in calm.book.iter().chain(&calm.watcher).enumerate() {
        assert_eq!(ending, &expected, "undisturbed order #{i}");
    }
    eprintln!(
        "undisturbed: overtaken {}, duplicates {}, released {}",
        calm.overtaken, calm.duplicates, calm.order_status["figures"]["released_total"]
    );

    let faults = json!({"reorder_rate": 0.6, "reorder_window_ms": 300, "duplicate_rate": 0.5});
    let rough = run(Some(&faults));
    eprintln!(
        "disordered: overtaken {}, duplicates {}, order node figures {}",
        rough.overtaken, rough.duplicates, rough.order_status["figures"]
    );
    for (i, (book, watcher)) in rough.book.iter().zip(&rough.watcher).enumerate() {
        // Same final state, same steps, every seq once and in order: for the
        // order node and for a plain subscriber.
        assert_eq!(book, &expected, "order #{i} in the order node's book");
        assert_eq!(watcher, &expected, "order #{i} as a subscriber folded it");
    }
    // The disorder really happened, and was repaired.
    assert!(rough.overtaken > 0, "no event was overtaken on the wire");
    // Duplicates are sent (the fault strikes the node's publishing), but the
    // event log stores each event once, so even a plain subscriber of the
    // events topics sees each once.
    assert_eq!(rough.duplicates, 0, "the log republished a duplicate");
    let figures = &rough.order_status["figures"];
    assert!(
        figures["released_total"].as_u64() > Some(0),
        "the order node released nothing held back: {figures}"
    );
    assert_eq!(figures["held_back"], 0, "{figures}");
}
