//! OpenTelemetry traces, received as a collector receives them: a small
//! OTLP/HTTP receiver decodes what every node sends with the official
//! protobuf definitions (`opentelemetry-proto`), and one order's trace is
//! each node's part of it, under one root, as long as its events say.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use support::platform::Platform;
use support::wait_for;

/// `(service.name, span)` for every span received.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP receiver on a free port: every `POST /v1/traces` body is
/// decoded and kept; anything it cannot decode fails the test.
fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let sink = sink.clone();
            std::thread::spawn(move || serve(stream, sink));
        }
    });
    (url, received)
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: std::net::TcpStream, sink: Received) {
    let mut out = stream.try_clone().expect("a second handle");
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        assert!(head.starts_with("POST /v1/traces "), "unexpected request: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/x-protobuf"),
            "{head}"
        );
        let req = ExportTraceServiceRequest::decode(&body[..]).expect("an OTLP trace request");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                let mut all = sink.lock().unwrap();
                all.extend(ss.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
}

/// The instant of the first `kind` step in an order's history, in ns.
fn at(history: &serde_json::Value, kind: &str) -> i128 {
    let step = history["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} in {history}"));
    let text = step["at"].as_str().expect("an instant");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp_nanos()
}

#[test]
fn every_node_sends_its_part_of_one_orders_trace_under_one_root() {
    let (collector, received) = receiver();
    // The variable a collector's users set: every node started from here
    // inherits it, as the control room's children do.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &collector);
    let mut p = Platform::new(&[]);
    p.payment();
    p.order();
    p.start("kitchen", "kitchen-1", &["--ovens", "2", "--prep-ms", "150"]);
    p.delivery_taking("100");
    p.w.wait_consumers("kitchen", &["kitchen-1"]);

    let (status, placed) = p.place();
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("an order id").to_string();
    let trace = placed["trace_id"].as_str().expect("a trace id").to_string();
    p.wait_state(std::slice::from_ref(&id), "delivered", Duration::from_secs(60));

    const NAMES: [&str; 8] = [
        "POST /orders",
        "POST /pay",
        "cooking",
        "driver wait",
        "order",
        "payment",
        "queue wait",
        "trip",
    ];
    let mut spans: Vec<(String, Span)> = Vec::new();
    wait_for(
        Duration::from_secs(30),
        "every node's spans of the order at the collector",
        || {
            spans = received
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s)| hex::encode(&s.trace_id) == trace)
                .cloned()
                .collect();
            NAMES.iter().all(|n| spans.iter().any(|(_, s)| s.name == *n))
        },
    );
    let by_name: BTreeMap<&str, &(String, Span)> = spans.iter().map(|x| (x.1.name.as_str(), x)).collect();
    assert_eq!(by_name.keys().copied().collect::<Vec<_>>(), NAMES, "these spans");
    assert_eq!(spans.len(), NAMES.len(), "one span each: {spans:?}");

    // Who sent what, and under which parent.
    let services: Vec<(&str, &str)> = NAMES.iter().map(|n| (*n, by_name[n].0.as_str())).collect();
    assert_eq!(
        services,
        [
            ("POST /orders", "order"),
            ("POST /pay", "payment"),
            ("cooking", "kitchen-1"),
            ("driver wait", "delivery"),
            ("order", "order"),
            ("payment", "order"),
            ("queue wait", "kitchen-1"),
            ("trip", "delivery"),
        ]
    );
    let span = |n: &str| &by_name[n].1;
    let root = span("order");
    assert!(root.parent_span_id.is_empty(), "the order span is the root");
    let parents = [
        ("POST /orders", "order"),
        ("payment", "POST /orders"),
        ("POST /pay", "payment"),
        ("queue wait", "order"),
        ("cooking", "order"),
        ("driver wait", "order"),
        ("trip", "order"),
    ];
    for (child, parent) in parents {
        let (c, p) = (span(child), span(parent));
        assert_eq!(c.parent_span_id, p.span_id, "{child} is under {parent}");
        assert!(
            c.start_time_unix_nano >= p.start_time_unix_nano,
            "{child} starts within {parent}"
        );
        assert!(c.end_time_unix_nano >= c.start_time_unix_nano, "{child}");
    }
    for (child, parent) in [("payment", "POST /orders"), ("POST /pay", "payment")] {
        assert!(
            span(child).end_time_unix_nano <= span(parent).end_time_unix_nano,
            "the call {child} ends before {parent} answers"
        );
    }
    assert_eq!(span("POST /orders").kind, 2, "the POST is a server span");
    assert_eq!(span("payment").kind, 3, "the payment call is a client span");
    assert_eq!(span("POST /pay").kind, 2, "payment serves it");

    // As long as the events say.
    let (_, history) = p.http.get(&format!("{}/{id}/history", p.orders_url()));
    let ns = |s: &Span| {
        (
            i128::from(s.start_time_unix_nano),
            i128::from(s.end_time_unix_nano),
        )
    };
    // The root is the order's life, from its events (RFC 3339 in the
    // history keeps what the envelope kept; allow a microsecond).
    let (start, end) = ns(root);
    assert!(
        (start - at(&history, "order.placed")).abs() <= 1_000,
        "the root starts when the order was placed"
    );
    assert!(
        (end - at(&history, "order.delivered")).abs() <= 1_000,
        "the root ends when it was delivered"
    );
    // Live spans hold the events they made.
    for (name, from, to) in [
        ("cooking", "order.cooking", "order.ready"),
        ("trip", "driver.assigned", "order.delivered"),
    ] {
        let (start, end) = ns(span(name));
        assert!(
            start <= at(&history, from) + 1_000 && end + 1_000 >= at(&history, to),
            "{name} ({start}..{end}) holds {from}..{to}"
        );
    }
    let (start, end) = ns(span("cooking"));
    assert!(
        end - start >= 150_000_000,
        "cooking took the kitchen's 150 ms: {} ns",
        end - start
    );
    let (start, end) = ns(span("trip"));
    assert!(
        end - start >= 100_000_000,
        "the trip took its 100 ms: {} ns",
        end - start
    );
    // Waits are recorded from the events: the queue wait ends when cooking began.
    let (_, end) = ns(span("queue wait"));
    assert!(
        (end - at(&history, "order.cooking")).abs() <= 1_000,
        "the queue wait ends as cooking starts"
    );
}
