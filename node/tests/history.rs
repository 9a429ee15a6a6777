//! The event log through real processes: orders placed on the platform are
//! recorded by the broker, replayed to any instant by
//! `GET /orders/{id}/history` and `pizza-node replay`, timed by
//! `pizza-node trace`, and still there after the broker is killed -9.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::platform::Platform;
use support::{pizza_node, wait_for, Mqtt};

const LONG: Duration = Duration::from_secs(60);

/// Every kind of a delivered order's life, in seq order.
const DELIVERED: [&str; 8] = contracts::testkit::DELIVERED_KINDS;

fn history_url(p: &Platform, id: &str) -> String {
    format!("{}/{id}/history", p.orders_url())
}

/// `GET /orders/{id}/history`, polled until the log holds the whole life
/// (the recorder may lag the order node by a batch).
fn full_history(p: &Platform, id: &str) -> Value {
    let mut last = Value::Null;
    wait_for(LONG, &format!("the event log to hold all of {id}"), || {
        let (status, body) = p.http.get(&history_url(p, id));
        let done = status == 200 && body["steps"].as_array().map(Vec::len) == Some(DELIVERED.len());
        last = body;
        done
    });
    last
}

fn kinds(history: &Value) -> Vec<String> {
    history["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| x["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn seqs(history: &Value) -> Vec<u64> {
    history["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["seq"].as_u64()).collect())
        .unwrap_or_default()
}

/// Runs `pizza-node ARGS` to its end (killed after `limit`); returns the
/// exit code, stdout and stderr.
fn cli(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(pizza_node())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pizza-node starts");
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pizza-node {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        code,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

#[test]
fn history_replays_a_delivered_order_to_any_instant_over_http_and_the_cli() {
    let p = Platform::with_kitchen("kitchen-1", "200", "2");
    let ids = p.place_many(2);
    p.wait_state(&ids, "delivered", LONG);
    let id = &ids[0];

    // (a) No as_of: the final state, every step in seq order, and the same
    // story as the order node's own book.
    let h = full_history(&p, id);
    assert_eq!(h["order_id"], *id);
    assert_eq!(h["state"], "delivered", "{h}");
    assert_eq!(h["as_of"], Value::Null);
    assert_eq!(seqs(&h), (1..=8).collect::<Vec<u64>>());
    assert_eq!(kinds(&h), DELIVERED);
    let view = p.view(id);
    assert_eq!(view["state"], h["state"]);
    let book: Vec<&Value> = view["history"].as_array().expect("history").iter().collect();
    for (step, entry) in h["steps"].as_array().expect("steps").iter().zip(&book) {
        assert_eq!(
            (&step["seq"], &step["kind"], &step["at"], &step["source"]),
            (&entry["seq"], &entry["kind"], &entry["at"], &entry["source"])
        );
    }
    assert_eq!(h["later"], 0);

    // (b) as_of an intermediate event's instant: the state right after it.
    let cooking = &h["steps"][3];
    assert_eq!(cooking["kind"], "order.cooking");
    let at = cooking["at"].as_str().expect("at").to_string();
    let (status, mid) = p.http.get(&format!("{}?as_of={at}", history_url(&p, id)));
    assert_eq!(status, 200, "{mid}");
    assert_eq!(mid["state"], "cooking", "{mid}");
    assert_eq!(seqs(&mid), [1, 2, 3, 4]);
    assert_eq!(mid["later"], 4);
    let placed_at = h["steps"][0]["at"].as_str().expect("at").to_string();
    let (status, first) = p.http.get(&format!("{}?as_of={placed_at}", history_url(&p, id)));
    assert_eq!(
        (status, first["state"].as_str()),
        (200, Some("placed")),
        "{first}"
    );
    // Before the first event the order did not exist.
    let (status, before) = p
        .http
        .get(&format!("{}?as_of=2000-01-01T00:00:00Z", history_url(&p, id)));
    assert_eq!(status, 404, "{before}");
    assert!(
        before["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not exist yet"),
        "{before}"
    );

    // (c) A bad as_of is a 400 naming the field; an unknown order a 404.
    let (status, bad) = p.http.get(&format!("{}?as_of=yesterday", history_url(&p, id)));
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["field"], "as_of", "{bad}");
    let (status, unknown) = p.http.get(&history_url(&p, "ord_nope"));
    assert_eq!(status, 404, "{unknown}");

    // (d) The same through the command line.
    let broker = p.w.broker_url();
    let (code, out, err) = cli(&["replay", id, "--broker", &broker], LONG);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with(&format!("order {id}  as of now: delivered")),
        "{out}"
    );
    for (kind, state) in DELIVERED.iter().zip([
        "placed",
        "paid",
        "queued",
        "cooking",
        "ready",
        "out_for_delivery",
        "out_for_delivery",
        "delivered",
    ]) {
        let line = out
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("{kind} in {out}"));
        assert!(line.contains(state), "{line}");
    }

    let (code, out, err) = cli(&["replay", id, "--as-of", &at, "--broker", &broker], LONG);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": cooking"), "{out}");
    assert!(!out.contains("order.ready"), "{out}");
    assert!(out.contains("4 later event(s) not replayed"), "{out}");

    let (code, out, err) = cli(&["replay", id, "--json", "--broker", &broker], LONG);
    assert_eq!(code, Some(0), "{err}");
    let json: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(json, h, "the CLI's JSON is the endpoint's");

    let (code, out, err) = cli(&["trace", id, "--broker", &broker], LONG);
    assert_eq!(code, Some(0), "{err}");
    for stage in ["payment", "queue wait", "cooking", "driver wait", "trip", "total"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("{stage} in {out}"));
        assert!(line.contains(" ms"), "{stage} has a duration: {line}");
    }
    assert!(out.contains("order.delivered"), "{out}");

    let (code, out, err) = cli(&["trace", id, "--json", "--broker", &broker], LONG);
    assert_eq!(code, Some(0), "{err}");
    let trace: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let stage_ms = |name: &str| {
        trace["stages"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["stage"] == name))
            .and_then(|x| x["ms"].as_i64())
            .unwrap_or_else(|| panic!("{name} timed: {trace}"))
    };
    assert!(stage_ms("cooking") >= 200, "a 200 ms prep time: {trace}");
    let total = trace["total_ms"].as_i64().expect("a total");
    let sum: i64 = ["payment", "queue wait", "cooking", "driver wait", "trip"]
        .iter()
        .map(|s| stage_ms(s))
        .sum();
    assert!(total >= sum, "total {total} covers the stages {sum}: {trace}");
    assert_eq!(trace["ended_by"], "order.delivered");

    let (code, _, err) = cli(&["replay", "ord_nope", "--broker", &broker], LONG);
    assert_eq!(code, Some(1));
    assert!(err.contains("no order ord_nope in the event log"), "{err}");
    let (code, _, err) = cli(&["trace", "ord_nope", "--broker", &broker], LONG);
    assert_eq!(code, Some(1));
    assert!(err.contains("no order ord_nope"), "{err}");
    let (code, _, err) = cli(&["replay", id, "--as-of", "soon", "--broker", &broker], LONG);
    assert_eq!(code, Some(1));
    assert!(err.contains("--as-of") && err.contains("RFC 3339"), "{err}");
}

#[test]
fn the_history_survives_a_kill_9_of_the_broker_and_its_absence_is_a_503() {
    let mut p = Platform::with_kitchen("kitchen-1", "0", "1");
    let ids = p.place_many(3);
    p.wait_state(&ids, "delivered", LONG);
    let before: Vec<Value> = ids.iter().map(|id| full_history(&p, id)).collect();

    // Re-sent and malformed events change nothing in the log, as the raw
    // protocol shows (the replay would hide a duplicate anyway).
    let mqtt = Mqtt::connect(p.w.port, "test-log", None).expect("connects");
    mqtt.subscribe("pizza/log/reply/test-log");
    let ask = |request: &str, order_id: &str| {
        let query = json!({"request_id": request, "order_id": order_id});
        mqtt.publish("pizza/log/query/test-log", query.to_string());
        mqtt.expect("pizza/log/reply/test-log", LONG, |r| r["request_id"] == request)
    };
    let logged = ask("r-1", &ids[0]);
    let events = logged["events"].as_array().expect("events").clone();
    assert_eq!(events.len(), DELIVERED.len(), "{logged}");
    mqtt.publish("pizza/log/put", events[2].to_string());
    mqtt.publish("pizza/log/put", "{not an envelope");
    // A fresh event behind them: once it is in the log, so is whatever
    // came before it on the put topic.
    let mut marker = events[0].clone();
    marker["order_id"] = json!("ord_marker");
    marker["event_id"] = json!("00000000-0000-4000-8000-000000000001");
    mqtt.publish("pizza/log/put", marker.to_string());
    let mut n = 0;
    wait_for(LONG, "the marker event in the log", || {
        n += 1;
        ask(&format!("m-{n}"), "ord_marker")["events"]
            .as_array()
            .is_some_and(|e| e.len() == 1)
    });
    let again = ask("r-2", &ids[0]);
    assert_eq!(again["events"], logged["events"], "stored once");
    let (status, _) = p.http.get(&history_url(&p, &ids[0]));
    assert_eq!(status, 200, "a malformed event did not stop the log");

    p.proc("broker").kill9();
    let started = Instant::now();
    let (status, body) = p.http.get(&history_url(&p, &ids[0]));
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did not answer"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "answered in time");
    let (code, _, err) = cli(
        &[
            "trace",
            &ids[0],
            "--broker",
            &p.w.broker_url(),
            "--timeout-ms",
            "2000",
        ],
        LONG,
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot"), "{err}");

    // Same data directory, same port: the events come back from sled.
    let broker = p.w.broker(&[]);
    p.procs.insert("broker".into(), broker);
    for (id, was) in ids.iter().zip(&before) {
        let mut now = Value::Null;
        wait_for(LONG, "the order node to reach the restarted broker", || {
            let (status, body) = p.http.get(&history_url(&p, id));
            now = body;
            status == 200
        });
        assert_eq!(&now, was, "{id} reads the same after the restart");
    }
}
