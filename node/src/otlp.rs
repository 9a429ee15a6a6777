//! OpenTelemetry traces over OTLP/HTTP (protobuf), off unless
//! `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) is given.
//!
//! Every event of an order carries the trace id of the `POST /orders` that
//! started it and the instant it happened, so one order's whole trace falls
//! out of its events ([`order_spans`], a plain function over the same
//! timeline the control room draws): a root span for the order, and under
//! it the POST, the payment call, the queue wait, cooking, the driver wait
//! and the trip, each under the service that did it. The order node, which
//! folds every event of every order, exports an order's trace once the
//! order has ended. Span ids derive from the trace id and the span's name,
//! so a trace sent twice is the same trace.
//!
//! When off, nothing is built: [`export_order`] returns at its first line.

use std::sync::OnceLock;
use std::time::Duration;

use contracts::events::kind;
use contracts::timeline::Timeline;
use contracts::Envelope;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Traces waiting to be sent; beyond this many, new ones are dropped (a
/// collector that is down must not grow the node's memory).
const QUEUE: usize = 1_024;

/// The exporter of this process, when traces are on.
static EXPORTER: OnceLock<mpsc::Sender<Vec<TraceSpan>>> = OnceLock::new();

/// One span of an order's trace, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpan {
    /// What it measures, e.g. `cooking`.
    pub name: &'static str,
    /// The service that did it (its node id), shown as `service.name`.
    pub service: String,
    /// The order's trace id (16 bytes).
    pub trace_id: [u8; 16],
    /// This span's id.
    pub span_id: [u8; 8],
    /// The span it belongs under; `None` for the order's root span.
    pub parent: Option<[u8; 8]>,
    /// Server (the POST), client (the payment call) or internal.
    pub kind: SpanKind,
    /// When it began.
    pub start: OffsetDateTime,
    /// When it ended.
    pub end: OffsetDateTime,
    /// The order it belongs to.
    pub order_id: String,
}

/// A span id that depends only on the trace and the span's name.
fn span_id(trace: &[u8; 16], name: &str) -> [u8; 8] {
    // FNV-1a, 64 bit: stable across processes and releases (std's hasher is
    // not), and no crate needed for eight bytes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in trace.iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

/// An order's trace from its applied events (in seq order): the root span
/// from its first event to the one that ended it, and one child per stage
/// it went through. Empty for an order that has not ended or whose trace id
/// is not 32 hex digits.
pub fn order_spans(events: &[Envelope]) -> Vec<TraceSpan> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let Some(trace_id) = parse_trace_id(&first.trace_id) else {
        return Vec::new();
    };
    let Some(timeline) = Timeline::of(events) else {
        return Vec::new();
    };
    let Some(total) = timeline.total else {
        return Vec::new();
    };
    let source_of = |k: &str| events.iter().find(|e| e.kind == k).map(|e| e.source.clone());
    let at = |k: &str| events.iter().find(|e| e.kind == k).map(|e| e.occurred_at);
    let order_node = first.source.clone();
    let root = span_id(&trace_id, "order");
    let span = |name: &'static str, service: String, kind, start, end| TraceSpan {
        name,
        service,
        trace_id,
        span_id: span_id(&trace_id, name),
        parent: Some(root),
        kind,
        start,
        end,
        order_id: first.order_id.clone(),
    };
    let mut spans = vec![TraceSpan {
        parent: None,
        span_id: root,
        ..span(
            "order",
            order_node.clone(),
            SpanKind::Internal,
            timeline.origin,
            timeline.origin + total.length,
        )
    }];
    // The POST answers once the order is queued (or, declined, rejected).
    let answered = at(kind::ORDER_QUEUED).or_else(|| at(kind::ORDER_REJECTED));
    if let (Some(start), Some(end)) = (at(kind::ORDER_PLACED), answered) {
        spans.push(span(
            "POST /orders",
            order_node.clone(),
            SpanKind::Server,
            start,
            end,
        ));
    }
    for stage in &timeline.stages {
        let Some(s) = stage.span else { continue };
        let (service, kind) = match stage.name {
            "payment" => ("payment".to_string(), SpanKind::Client),
            "queue wait" => ("keeper".to_string(), SpanKind::Internal),
            "cooking" => (
                source_of(kind::ORDER_COOKING).unwrap_or_default(),
                SpanKind::Internal,
            ),
            _ => (
                source_of(kind::DRIVER_ASSIGNED).unwrap_or_default(),
                SpanKind::Internal,
            ),
        };
        let start = timeline.origin + s.offset;
        spans.push(span(stage.name, service, kind, start, start + s.length));
    }
    spans
}

fn parse_trace_id(text: &str) -> Option<[u8; 16]> {
    let bytes = hex::decode(text).ok()?;
    let id: [u8; 16] = bytes.try_into().ok()?;
    (id != [0; 16]).then_some(id)
}

fn unix_nanos(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The OTLP request for `spans`: one resource (service) per node that took
/// part.
pub fn request(spans: &[TraceSpan]) -> ExportTraceServiceRequest {
    let mut services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let resource_spans = services
        .into_iter()
        .map(|service| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "pizza-platform".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: spans
                    .iter()
                    .filter(|s| s.service == service)
                    .map(|s| Span {
                        trace_id: s.trace_id.to_vec(),
                        span_id: s.span_id.to_vec(),
                        parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
                        name: s.name.to_string(),
                        kind: s.kind as i32,
                        start_time_unix_nano: unix_nanos(s.start),
                        end_time_unix_nano: unix_nanos(s.end),
                        attributes: vec![text("order.id", &s.order_id)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Turns traces on for this process: spans go to `endpoint` (a collector's
/// OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`) in the background.
/// Only the first call counts.
pub fn install(endpoint: &str) {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    EXPORTER.get_or_init(|| {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_loop(url, rx));
        tx
    });
}

/// Sends `events`' trace when traces are on and the order has ended.
pub fn export_order(events: &[Envelope]) {
    let Some(tx) = EXPORTER.get() else { return };
    let spans = order_spans(events);
    if !spans.is_empty() && tx.try_send(spans).is_err() {
        tracing::debug!("trace queue full: an order's trace was dropped");
    }
}

/// Posts what arrives, batching what is waiting into one request.
async fn send_loop(url: String, mut rx: mpsc::Receiver<Vec<TraceSpan>>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(5)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no OTLP client: traces are off");
            return;
        }
    };
    while let Some(mut spans) = rx.recv().await {
        while let Ok(more) = rx.try_recv() {
            spans.extend(more);
        }
        let body = request(&spans).encode_to_vec();
        let sent = client
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(%url, status = %r.status(), "the OTLP collector refused traces"),
            Err(e) => tracing::warn!(%url, error = %e, "traces not sent: is the OTLP collector up?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life() -> Vec<Envelope> {
        let steps = [
            (kind::ORDER_PLACED, "order", 0),
            (kind::ORDER_PAID, "order", 40),
            (kind::ORDER_QUEUED, "order", 45),
            (kind::ORDER_COOKING, "kitchen-2", 100),
            (kind::ORDER_READY, "kitchen-2", 400),
            (kind::DRIVER_ASSIGNED, "delivery", 450),
            (kind::ORDER_DELIVERED, "delivery", 900),
        ];
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        steps
            .iter()
            .enumerate()
            .map(|(i, (k, source, ms))| {
                let mut e = Envelope::new(
                    *k,
                    "ord_1",
                    i as u64 + 1,
                    "4bf92f3577b34da6a3ce929d0e0e4736",
                    *source,
                    serde_json::json!({}),
                );
                e.occurred_at = t0 + time::Duration::milliseconds(*ms);
                e
            })
            .collect()
    }

    #[test]
    fn a_delivered_order_is_one_trace_with_a_span_per_stage_under_its_root() {
        let spans = order_spans(&life());
        let names: Vec<&str> = spans.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "order",
                "POST /orders",
                "payment",
                "queue wait",
                "cooking",
                "driver wait",
                "trip"
            ]
        );
        let root = &spans[0];
        assert_eq!(root.parent, None);
        assert_eq!((root.end - root.start).whole_milliseconds(), 900);
        for s in &spans[1..] {
            assert_eq!(s.parent, Some(root.span_id), "{}", s.name);
            assert_eq!(s.trace_id, root.trace_id);
            assert!(s.start >= root.start && s.end <= root.end, "{}", s.name);
        }
        let ms = |name: &str| {
            let s = spans.iter().find(|s| s.name == name).unwrap();
            (s.end - s.start).whole_milliseconds()
        };
        assert_eq!(
            (ms("POST /orders"), ms("payment"), ms("queue wait")),
            (45, 40, 55)
        );
        assert_eq!((ms("cooking"), ms("driver wait"), ms("trip")), (300, 50, 450));
        let cooking = spans.iter().find(|s| s.name == "cooking").unwrap();
        assert_eq!(cooking.service, "kitchen-2");
        let ids: std::collections::BTreeSet<_> = spans.iter().map(|s| s.span_id).collect();
        assert_eq!(ids.len(), spans.len(), "span ids are distinct");
        assert_eq!(order_spans(&life()), spans, "the same events, the same trace");
    }

    #[test]
    fn an_open_order_or_a_foreign_trace_id_makes_no_trace() {
        let mut open = life();
        open.truncate(5);
        assert!(order_spans(&open).is_empty());
        let mut odd = life();
        for e in &mut odd {
            e.trace_id = "not-hex".into();
        }
        assert!(order_spans(&odd).is_empty());
        assert!(order_spans(&[]).is_empty());
    }

    #[test]
    fn the_request_groups_spans_by_service_and_round_trips_as_protobuf() {
        let req = request(&order_spans(&life()));
        let services: Vec<String> = req
            .resource_spans
            .iter()
            .map(|r| match &r.resource.as_ref().unwrap().attributes[0].value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) => s.clone(),
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(services, ["delivery", "keeper", "kitchen-2", "order", "payment"]);
        let bytes = req.encode_to_vec();
        let back = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
        assert_eq!(back, req);
        let spans: usize = back
            .resource_spans
            .iter()
            .map(|r| r.scope_spans[0].spans.len())
            .sum();
        assert_eq!(spans, 7);
    }
}
