//! The circuit breaker on order -> payment, through real processes:
//! thresholds set by flag, no call to payment while open, one trial call
//! when half-open, and the figures in the order node's status.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::platform::Platform;
use support::wait_for;

const LONG: Duration = Duration::from_secs(60);

/// Calls that reached payment, from its own log (one line per `POST /pay`).
fn payment_calls(p: &Platform) -> usize {
    p.w.log_events("payment", "POST /pay").len()
}

/// Places an order that must be refused as payment being unavailable.
fn refused(p: &Platform) -> Duration {
    let started = Instant::now();
    let (status, body) = p.place();
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "payment_unavailable", "{body}");
    took
}

#[test]
fn the_breaker_opens_after_the_set_failures_refuses_without_calling_payment_and_closes_after_one_trial() {
    let mut p = Platform::new(&[]);
    p.payment();
    p.order_with(&["--breaker-failures", "3", "--breaker-open-ms", "3000"]);
    let mqtt = p.mqtt("test-control");
    p.set_faults(&mqtt, "payment", &json!({"error_rate": 1.0}), "error_rate");
    let order_status = "pizza/nodes/order/status";
    mqtt.subscribe(order_status);
    let figures = |check: &dyn Fn(&Value) -> bool| -> Value {
        mqtt.expect(order_status, LONG, |s| check(&s["figures"]))["figures"].clone()
    };
    figures(&|f| f["breaker"] == "closed");

    // Closed: three failing calls reach payment, then the breaker opens.
    for _ in 0..3 {
        refused(&p);
    }
    wait_for(LONG, "payment to log 3 calls", || payment_calls(&p) == 3);
    let f = figures(&|f| f["breaker"] == "open");
    assert_eq!(
        (
            &f["breaker_failures"],
            &f["breaker_opened"],
            &f["breaker_rejected"]
        ),
        (&json!(3), &json!(1), &json!(0)),
        "{f}"
    );

    // Open: refused at once, and payment never hears of it.
    let slowest = (0..5).map(|_| refused(&p)).max().unwrap_or_default();
    eprintln!("slowest 503 while open: {slowest:?}");
    let f = figures(&|f| f["breaker_rejected"] == 5);
    assert_eq!(f["breaker"], "open", "{f}");
    // A heartbeat later than the refusals, so payment's log is written.
    assert_eq!(payment_calls(&p), 3, "no call reached payment while open");

    // Half-open after the open time: one trial; it fails, so open again.
    wait_for(LONG, "the trial call to reach payment", || {
        refused(&p);
        payment_calls(&p) == 4
    });
    let f = figures(&|f| f["breaker_opened"] == 2);
    assert_eq!(f["breaker"], "open", "{f}");
    assert_eq!(payment_calls(&p), 4, "one trial only");

    // Payment recovers: the next trial succeeds and closes the breaker.
    p.set_faults(&mqtt, "payment", &json!({"error_rate": 0.0}), "error_rate");
    wait_for(LONG, "the trial to be accepted", || {
        let (status, body) = p.place();
        match status {
            201 => true,
            503 => false,
            other => panic!("unexpected {other}: {body}"),
        }
    });
    assert_eq!(payment_calls(&p), 5, "the accepted order was the one trial");
    // Heartbeats from before the outage are closed too: wait for one that
    // has seen both openings.
    let f = figures(&|f| f["breaker"] == "closed" && f["breaker_opened"] == 2);
    assert_eq!(f["breaker_failures"], 0, "{f}");
    assert_eq!(p.place().0, 201, "closed: calls go through again");
    wait_for(LONG, "payment to log the next call", || payment_calls(&p) == 6);
}
