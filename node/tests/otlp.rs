//! OpenTelemetry traces, received as a collector receives them: a small
//! OTLP/HTTP receiver decodes what the order node sends with the official
//! protobuf definitions (`opentelemetry-proto`), and one order's trace has a
//! span for each stage, under one root, as long as its events say.

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

#[test]
fn one_orders_trace_has_its_stages_under_one_root_as_long_as_its_events_say() {
    let (collector, received) = receiver();
    let mut p = Platform::new(&[]);
    p.payment();
    p.order_with(&["--otlp-endpoint", &collector]);
    p.start("kitchen", "kitchen-1", &["--ovens", "2", "--prep-ms", "150"]);
    p.delivery_taking("100");
    p.w.wait_consumers("kitchen", &["kitchen-1"]);

    let (status, placed) = p.place();
    assert_eq!(status, 201, "{placed}");
    let id = placed["order_id"].as_str().expect("an order id").to_string();
    let trace = placed["trace_id"].as_str().expect("a trace id").to_string();
    p.wait_state(std::slice::from_ref(&id), "delivered", Duration::from_secs(60));

    let mut spans: Vec<(String, Span)> = Vec::new();
    wait_for(
        Duration::from_secs(20),
        "the order's trace at the collector",
        || {
            spans = received
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, s)| hex::encode(&s.trace_id) == trace)
                .cloned()
                .collect();
            spans.len() >= 7
        },
    );
    let by_name: BTreeMap<&str, &(String, Span)> = spans.iter().map(|x| (x.1.name.as_str(), x)).collect();
    let names: Vec<&str> = by_name.keys().copied().collect();
    assert_eq!(
        names,
        [
            "POST /orders",
            "cooking",
            "driver wait",
            "order",
            "payment",
            "queue wait",
            "trip"
        ],
        "one span each"
    );
    let (_, root) = by_name["order"];
    assert!(root.parent_span_id.is_empty(), "the order span is the root");
    for (service, s) in &spans {
        if s.name != "order" {
            assert_eq!(s.parent_span_id, root.span_id, "{} is under the root", s.name);
        }
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
        assert!(
            s.start_time_unix_nano >= root.start_time_unix_nano
                && s.end_time_unix_nano <= root.end_time_unix_nano,
            "{} lies within the order",
            s.name
        );
        assert!(!service.is_empty(), "{} names its service", s.name);
    }
    assert_eq!(by_name["cooking"].0, "kitchen-1");
    assert_eq!(by_name["trip"].0, "delivery");
    assert_eq!(by_name["POST /orders"].1.kind, 2, "the POST is a server span");

    // As long as the events say: cooking is order.cooking -> order.ready.
    let (_, history) = p.http.get(&format!("{}/{id}/history", p.orders_url()));
    let at = |kind: &str| -> i128 {
        let step = history["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["kind"] == kind))
            .unwrap_or_else(|| panic!("no {kind} in {history}"));
        let text = step["at"].as_str().expect("an instant");
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
            .unix_timestamp_nanos()
    };
    let cooking = &by_name["cooking"].1;
    let length = i128::from(cooking.end_time_unix_nano - cooking.start_time_unix_nano);
    // RFC 3339 in the history keeps what the envelope kept; allow a microsecond.
    let expected = at("order.ready") - at("order.cooking");
    assert!(
        (length - expected).abs() <= 1_000,
        "cooking {length} ns, events say {expected} ns"
    );
    assert!(
        length >= 150_000_000,
        "cooking took the kitchen's 150 ms: {length} ns"
    );
}
