//! The payment service over real HTTP: a `pizza-node payment` process next to
//! a real broker, driven with a blocking HTTP client.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use support::{wait_for, Mqtt, Proc, World};

/// A running payment node and how to reach it.
struct Payment {
    proc: Proc,
    base: String,
    http: Client,
}

/// Starts `pizza-node payment --id payment` with `extra` flags (on top of
/// `--latency-ms 0`) and waits until `/healthz` answers.
fn payment(w: &World, extra: &[&str]) -> Payment {
    let port = support::free_port();
    let mut args: Vec<String> = [
        "payment",
        "--id",
        "payment",
        "--broker",
        &w.broker_url(),
        "--data-dir",
        &w.path("payment").display().to_string(),
        "--http",
        &format!("127.0.0.1:{port}"),
        "--latency-ms",
        "0",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    let proc = Proc::spawn("payment", &args, &log(w));
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let base = format!("http://127.0.0.1:{port}");
    let health = format!("{base}/healthz");
    wait_for(Duration::from_secs(30), "payment to answer /healthz", || {
        http.get(&health).send().is_ok_and(|r| r.status() == 200)
    });
    let mut p = Payment { proc, base, http };
    assert!(p.proc.running());
    p.check_health();
    p
}

fn log(w: &World) -> PathBuf {
    w.path("payment.log")
}

impl Payment {
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .expect("payment answers");
        read(r)
    }

    fn pay(&self, order: &str, amount: u64) -> (u16, Value) {
        self.post(
            "/pay",
            &json!({"order_id": order, "amount_cents": amount, "currency": "EUR"}),
        )
    }

    fn refund(&self, payment_id: &str, order: &str) -> (u16, Value) {
        self.post("/refund", &json!({"payment_id": payment_id, "order_id": order}))
    }

    fn check_health(&self) {
        let r = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .expect("payment answers");
        assert_eq!(read(r), (200, json!({"status": "ok"})));
    }
}

fn read(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json().unwrap_or(Value::Null);
    (status, body)
}

fn field_of(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

#[test]
fn a_charge_is_captured_once_and_refunded_once() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let p = payment(&w, &["--decline-rate", "0.0"]);

    let (status, first) = p.pay("o-1", 1250);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "captured");
    let pid = first["payment_id"].as_str().unwrap_or_default().to_string();
    let hex = pid.strip_prefix("pay_").expect("payment ids start with pay_");
    assert_eq!(hex.len(), 32, "{pid}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{pid}");
    assert_eq!(p.pay("o-1", 1250), (200, first.clone()), "a repeat is the same");

    // Another order is another charge; the same order for another amount is
    // a client bug, not a retry.
    let (status, other) = p.pay("o-2", 500);
    assert_eq!(status, 200);
    assert_ne!(other["payment_id"], first["payment_id"]);
    let (status, body) = p.pay("o-1", 999);
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));

    let (status, refund) = p.refund(&pid, "o-1");
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["status"], "refunded");
    assert!(refund["refund_id"]
        .as_str()
        .is_some_and(|r| r.starts_with("ref_")));
    assert_eq!(p.refund(&pid, "o-1"), (200, refund), "a repeat is the same");

    let (status, body) = p.refund("pay_nope", "o-1");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) = p.refund(&pid, "o-2");
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("conflict")));
}

#[test]
fn bad_requests_name_the_field() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let p = payment(&w, &[]);

    let cases = [
        (
            json!({"order_id": "", "amount_cents": 1, "currency": "EUR"}),
            "order_id",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": 0, "currency": "EUR"}),
            "amount_cents",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": -5, "currency": "EUR"}),
            "amount_cents",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": 1, "currency": "eur"}),
            "currency",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": 1, "currency": "EURO"}),
            "currency",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": 1, "currency": "XYZ"}),
            "currency",
        ),
        (
            json!({"order_id": "o-1", "amount_cents": 1_000_001, "currency": "CHF"}),
            "amount_cents",
        ),
        (json!({"order_id": "o-1", "amount_cents": 1}), "currency"),
    ];
    for (body, field) in cases {
        let (status, answer) = p.post("/pay", &body);
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(field_of(&answer), field, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "validation");
    }
    // An unknown field is refused. Only checked loosely: the shared JSON
    // extractor (http.rs) currently names a top-level unknown field `tip.tip`.
    let (status, answer) = p.post(
        "/pay",
        &json!({"order_id": "o-1", "amount_cents": 1, "currency": "EUR", "tip": 1}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(field_of(&answer).contains("tip"), "{answer}");
    let (status, answer) = p.post("/refund", &json!({"payment_id": "", "order_id": "o-1"}));
    assert_eq!((status, field_of(&answer)), (400, "payment_id"), "{answer}");

    // JSON is required, and said so in JSON.
    let r = p
        .http
        .post(format!("{}/pay", p.base))
        .header("content-type", "text/plain")
        .body(r#"{"order_id":"o-1","amount_cents":1,"currency":"EUR"}"#)
        .send()
        .expect("payment answers");
    let (status, answer) = read(r);
    assert_eq!(status, 415);
    assert_eq!(answer["error"]["code"], "unsupported_media_type");
}

#[test]
fn a_decline_is_remembered() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let p = payment(&w, &["--decline-rate", "1.0"]);
    let declined = json!({"status": "declined", "reason": "card declined"});
    assert_eq!(p.pay("o-1", 1250), (402, declined.clone()));
    assert_eq!(p.pay("o-1", 1250), (402, declined));
}

#[test]
fn a_failure_is_not_remembered_and_a_later_retry_succeeds() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mut p = payment(&w, &["--fail-rate", "1.0"]);
    for _ in 0..2 {
        let (status, body) = p.pay("o-1", 1250);
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "payment_failed");
    }
    p.proc.terminate();

    let p = payment(&w, &["--fail-rate", "0.0", "--decline-rate", "0.0"]);
    let (status, body) = p.pay("o-1", 1250);
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("captured")),
        "{body}"
    );
}

#[test]
fn payments_and_refunds_survive_a_crash() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mut p = payment(&w, &["--decline-rate", "0.0"]);
    let (status, paid) = p.pay("o-1", 1250);
    assert_eq!(status, 200, "{paid}");
    let pid = paid["payment_id"].as_str().unwrap_or_default().to_string();
    let (status, refunded) = p.refund(&pid, "o-1");
    assert_eq!(status, 200, "{refunded}");
    // kill -9, then the same store behind a node that declines everything:
    // o-1 keeps its answer, a new order gets the new behaviour.
    p.proc.kill9();
    p = payment(&w, &["--decline-rate", "1.0"]);
    let (status, declined) = p.pay("o-2", 100);
    assert_eq!(status, 402, "{declined}");
    assert_eq!(p.pay("o-1", 1250), (200, paid.clone()));
    assert_eq!(p.refund(&pid, "o-1"), (200, refunded.clone()));

    // And once more after a graceful stop.
    p.proc.terminate();
    let p = payment(&w, &["--decline-rate", "0.0"]);
    assert_eq!(p.pay("o-1", 1250), (200, paid));
    assert_eq!(p.pay("o-2", 100).0, 402);
    assert_eq!(p.refund(&pid, "o-1"), (200, refunded));
}

#[test]
fn pause_heartbeat_and_trace_logs() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let p = payment(&w, &["--decline-rate", "0.0"]);
    let mqtt = Mqtt::connect(w.port, "test-control", None).expect("the broker lets us in");

    // Every request logs its order and the trace id of its traceparent.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = p
        .http
        .post(format!("{}/pay", p.base))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"order_id": "o-traced", "amount_cents": 1250, "currency": "EUR"}))
        .send()
        .expect("payment answers");
    assert_eq!(r.status(), 200);
    wait_for(Duration::from_secs(10), "the request's log line", || {
        std::fs::read_to_string(log(&w)).is_ok_and(|text| {
            text.lines()
                .any(|l| l.contains("POST /pay") && l.contains("o-traced") && l.contains(trace))
        })
    });

    // The heartbeat carries the role's figures.
    mqtt.subscribe("pizza/nodes/payment/status");
    mqtt.expect("pizza/nodes/payment/status", Duration::from_secs(10), |s| {
        s["figures"]["captured"] == 1 && s["handled"].as_u64() >= Some(1)
    });

    // Paused by the control room: 503 until resumed.
    mqtt.publish("pizza/control/payment", r#"{"command":"pause"}"#);
    wait_for(Duration::from_secs(10), "payment to pause", || {
        p.pay("o-pause", 100).0 == 503
    });
    let (_, body) = p.pay("o-pause", 100);
    assert_eq!(body["error"]["code"], "paused");
    mqtt.publish("pizza/control/payment", r#"{"command":"resume"}"#);
    wait_for(Duration::from_secs(10), "payment to resume", || {
        p.pay("o-pause", 100).0 == 200
    });
}
