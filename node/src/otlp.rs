//! OpenTelemetry traces over OTLP/HTTP (protobuf), off unless
//! `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) is given.
//!
//! One trace per order, under the trace id that every event and HTTP call
//! of the order already carries. Each node sends the spans of its own part:
//!
//! | node     | span                         | how                              |
//! |----------|------------------------------|----------------------------------|
//! | order    | `order` (the root)           | from its events, once it ended   |
//! | order    | `POST /orders`, `payment`    | live `tracing` spans             |
//! | payment  | `POST /pay`, `POST /refund`  | live, under the caller's span    |
//! | kitchen  | `queue wait`                 | from the ticket's put time       |
//! | kitchen  | `cooking`                    | live                             |
//! | delivery | `driver wait`                | from the hand-off's time         |
//! | delivery | `trip`                       | live                             |
//!
//! Work a node does is a `tracing` span ([`span`]) that
//! `tracing-opentelemetry` turns into an OTel span; the SDK batches them and
//! `opentelemetry-otlp` posts them. Waits (no process is busy) and the root
//! are recorded from the events' times ([`record`]) into the same batch.
//! No node has to ask another for a parent: the root's span id derives from
//! the trace id ([`root_span_id`]), so every node puts its spans under it.
//!
//! When off, nothing is built: the spans' target ([`TARGET`]) is enabled by
//! no layer, so [`span`] returns a disabled span and [`record`] returns
//! before it builds anything.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use contracts::timeline::Timeline;
use contracts::Envelope;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracerProvider, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use time::OffsetDateTime;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The `tracing` target of spans meant for OpenTelemetry only (the log file
/// leaves them out).
pub const TARGET: &str = "pizza::trace";

/// The instrumentation scope every span is reported under.
const SCOPE: &str = "pizza-platform";

/// The batch the recorded spans ([`record`]) go into, when traces are on.
static RECORDER: OnceLock<Arc<BatchSpanProcessor>> = OnceLock::new();

/// Keeps this process's traces flowing; sends what is still batched when
/// dropped (at the end of `main`).
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "traces not flushed at exit");
        }
    }
}

/// The batch, shared by the SDK (live spans) and [`record`] (spans made
/// from events), so both go out in the same requests.
#[derive(Debug)]
struct Shared(Arc<BatchSpanProcessor>);

impl SpanProcessor for Shared {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.0.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

/// The layer that sends this process's spans to `endpoint` (a collector's
/// OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`) as service `service`
/// (the node id) of `role`, and the guard that flushes them at exit.
pub fn layer<S>(
    endpoint: &str,
    service: &str,
    role: &str,
) -> Result<(impl Layer<S>, Tracing), opentelemetry_otlp::ExporterBuildError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Collector::new()?)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(5))
        .build()?;
    let resource = Resource::builder_empty()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("pizza.role", role.to_string()))
        .build();
    // Set here: the provider cannot reach through the `Arc` to set it.
    opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
    let batch = Arc::new(BatchSpanProcessor::builder(exporter).build());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Shared(batch.clone()))
        .with_resource(resource)
        .build();
    let _ = RECORDER.set(batch);
    let tracer = provider.tracer_with_scope(scope());
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::Targets::new().with_target(TARGET, tracing::Level::TRACE));
    Ok((layer, Tracing { provider }))
}

/// How spans reach the collector: reqwest's blocking client, because the
/// SDK's batch runs on its own thread, outside tokio.
#[derive(Debug)]
struct Collector(reqwest::blocking::Client);

impl Collector {
    fn new() -> Result<Self, opentelemetry_otlp::ExporterBuildError> {
        // Built on a thread of its own: a blocking client may not be made
        // inside the async runtime that calls us.
        let built = std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
        })
        .join();
        match built {
            Ok(Ok(client)) => Ok(Collector(client)),
            Ok(Err(e)) => Err(opentelemetry_otlp::ExporterBuildError::InternalFailure(
                e.to_string(),
            )),
            Err(_) => Err(opentelemetry_otlp::ExporterBuildError::InternalFailure(
                "the thread building the OTLP client panicked".into(),
            )),
        }
    }
}

impl HttpClient for Collector {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let (head, body) = request.into_parts();
            let answer = self
                .0
                .request(head.method, head.uri.to_string())
                .headers(head.headers)
                .body(body.to_vec())
                .send()?;
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                response = response.header(name, value);
            }
            Ok(response.body(answer.bytes()?)?)
        })
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// What a live span is to its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answers a request (`POST /orders`, `POST /pay`).
    Server,
    /// Calls another service (the payment call).
    Client,
    /// Work inside the node (cooking, a trip).
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Internal => "internal",
        }
    }
}

/// A live span named `name` for work on `order_id`, under the current span
/// (see [`under_order`], [`under_caller`] to place it elsewhere). Disabled,
/// and free, when traces are off.
pub fn span(name: &'static str, kind: Kind, order_id: &str) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        "work",
        otel.name = name,
        otel.kind = kind.as_str(),
        order.id = order_id
    )
}

/// Puts `span` under the root span of the order whose trace is `trace_id`.
pub fn under_order(span: &tracing::Span, trace_id: &str) {
    if let Some(trace) = parse_trace_id(trace_id) {
        adopt(span, trace, root_span_id(&trace));
    }
}

/// Puts `span` under the caller's span named in its `traceparent` header.
pub fn under_caller(span: &tracing::Span, traceparent: Option<&str>) {
    let Some((trace, parent)) = traceparent.and_then(parse_traceparent) else {
        return;
    };
    adopt(span, trace, parent);
}

fn adopt(span: &tracing::Span, trace: [u8; 16], parent: [u8; 8]) {
    if span.is_disabled() {
        return;
    }
    let parent = SpanContext::new(
        TraceId::from_bytes(trace),
        SpanId::from_bytes(parent),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(Context::new().with_remote_span_context(parent));
}

/// The `traceparent` header for a call made inside `span`: it names `span`
/// as the caller, so the callee's span goes under it. With traces off, a
/// fresh span id under `trace_id`, as before.
pub fn traceparent(span: &tracing::Span, trace_id: &str) -> String {
    if !span.is_disabled() {
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if sc.is_valid() {
            return format!("00-{}-{}-01", sc.trace_id(), sc.span_id());
        }
    }
    contracts::trace::traceparent(trace_id)
}

/// A span of an order's trace made from its events' times, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpan {
    /// What it measures, e.g. `queue wait`.
    pub name: &'static str,
    /// The order's trace id (16 bytes).
    pub trace_id: [u8; 16],
    /// This span's id.
    pub span_id: [u8; 8],
    /// The span it belongs under; `None` for the order's root span.
    pub parent: Option<[u8; 8]>,
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

/// The span id of the root span of the order whose trace is `trace`: every
/// node derives the same one, so all put their spans under it unasked.
pub fn root_span_id(trace: &[u8; 16]) -> [u8; 8] {
    span_id(trace, ROOT)
}

/// The root span's name, and the salt of its id.
const ROOT: &str = "order";

/// The root span of an order from its applied events (in seq order): from
/// its first event to the one that ended it. `None` for an order that has
/// not ended or whose trace id is not 32 hex digits.
pub fn root_span(events: &[Envelope]) -> Option<TraceSpan> {
    let first = events.first()?;
    let trace_id = parse_trace_id(&first.trace_id)?;
    let timeline = Timeline::of(events)?;
    let total = timeline.total?;
    Some(TraceSpan {
        name: ROOT,
        trace_id,
        span_id: root_span_id(&trace_id),
        parent: None,
        start: timeline.origin,
        end: timeline.origin + total.length,
        order_id: first.order_id.clone(),
    })
}

/// A wait of the order `message` belongs to, from when `message` was made
/// until `until`, under the order's root span (`queue wait` from a
/// kitchen ticket, `driver wait` from a delivery hand-off).
pub fn wait_span(name: &'static str, message: &Envelope, until: OffsetDateTime) -> Option<TraceSpan> {
    let trace_id = parse_trace_id(&message.trace_id)?;
    Some(TraceSpan {
        name,
        trace_id,
        span_id: span_id(&trace_id, name),
        parent: Some(root_span_id(&trace_id)),
        start: message.occurred_at,
        end: until.max(message.occurred_at),
        order_id: message.order_id.clone(),
    })
}

fn parse_trace_id(text: &str) -> Option<[u8; 16]> {
    let bytes = hex::decode(text).ok()?;
    let id: [u8; 16] = bytes.try_into().ok()?;
    (id != [0; 16]).then_some(id)
}

/// The trace id and the caller's span id of a W3C `traceparent`.
fn parse_traceparent(header: &str) -> Option<([u8; 16], [u8; 8])> {
    let trace = parse_trace_id(contracts::trace::trace_id_of(header)?)?;
    let span = hex::decode(header.trim().split('-').nth(2)?).ok()?;
    Some((trace, span.try_into().ok()?))
}

/// `span` as the SDK's exportable span data.
pub fn span_data(span: &TraceSpan) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(span.trace_id),
            SpanId::from_bytes(span.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: span.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: span.parent.is_some(),
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(span.name),
        start_time: span.start.into(),
        end_time: span.end.into(),
        attributes: vec![KeyValue::new("order.id", span.order_id.clone())],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
    }
}

/// Sends the span `make` builds with this process's other spans, when
/// traces are on; with traces off, `make` is not even called (it runs on
/// every ticket and every ended order).
pub fn record(make: impl FnOnce() -> Option<TraceSpan>) {
    let Some(batch) = RECORDER.get() else { return };
    if let Some(span) = make() {
        batch.on_end(span_data(&span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::kind;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

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
                let mut e = Envelope::new(*k, "ord_1", i as u64 + 1, TRACE, *source, serde_json::json!({}));
                e.occurred_at = t0 + time::Duration::milliseconds(*ms);
                e
            })
            .collect()
    }

    #[test]
    fn an_ended_orders_root_span_runs_from_its_first_event_to_its_last() {
        let events = life();
        let root = root_span(&events).expect("a root span");
        assert_eq!(root.parent, None);
        assert_eq!(root.span_id, root_span_id(&root.trace_id));
        assert_eq!(hex::encode(root.trace_id), TRACE);
        assert_eq!(
            (root.start, root.end),
            (events[0].occurred_at, events[6].occurred_at)
        );
        assert_eq!(root_span(&events), Some(root), "the same events, the same span");
    }

    #[test]
    fn an_open_order_or_a_foreign_trace_id_has_no_root_span() {
        let mut open = life();
        open.truncate(5);
        assert_eq!(root_span(&open), None);
        let mut odd = life();
        for e in &mut odd {
            e.trace_id = "not-hex".into();
        }
        assert_eq!(root_span(&odd), None);
        assert_eq!(root_span(&[]), None);
    }

    #[test]
    fn a_wait_goes_under_the_root_from_its_message_until_it_ended() {
        let events = life();
        let ticket = &events[2];
        let taken = events[3].occurred_at;
        let wait = wait_span("queue wait", ticket, taken).expect("a wait");
        assert_eq!(wait.parent, Some(root_span_id(&wait.trace_id)));
        assert_ne!(wait.span_id, root_span_id(&wait.trace_id));
        assert_eq!((wait.end - wait.start).whole_milliseconds(), 55);
        let backwards = wait_span("queue wait", ticket, ticket.occurred_at - time::Duration::SECOND).unwrap();
        assert_eq!(
            backwards.end, backwards.start,
            "a clock step back is a zero wait, not a negative one"
        );
    }

    #[test]
    fn a_traceparent_names_the_trace_and_the_callers_span() {
        let header = format!("00-{TRACE}-00f067aa0ba902b7-01");
        let (trace, span) = parse_traceparent(&header).expect("well formed");
        assert_eq!(hex::encode(trace), TRACE);
        assert_eq!(hex::encode(span), "00f067aa0ba902b7");
        assert_eq!(parse_traceparent("garbage"), None);
        assert_eq!(
            parse_traceparent(&format!("00-{TRACE}-{}-01", "0".repeat(16))),
            None
        );
    }

    #[test]
    fn span_data_keeps_the_ids_times_and_parent() {
        let root = root_span(&life()).unwrap();
        let data = span_data(&root);
        assert_eq!(data.span_context.trace_id(), TraceId::from_bytes(root.trace_id));
        assert_eq!(data.span_context.span_id(), SpanId::from_bytes(root.span_id));
        assert_eq!(data.parent_span_id, SpanId::INVALID);
        assert_eq!(data.start_time, std::time::SystemTime::from(root.start));
        assert_eq!(data.end_time, std::time::SystemTime::from(root.end));
        let wait = wait_span("driver wait", &life()[4], life()[5].occurred_at).unwrap();
        assert_eq!(span_data(&wait).parent_span_id, SpanId::from_bytes(root.span_id));
    }

    #[test]
    fn with_traces_off_spans_are_disabled_and_calls_carry_a_fresh_parent() {
        let s = span("cooking", Kind::Internal, "ord_1");
        assert!(s.is_disabled());
        under_order(&s, TRACE);
        let header = traceparent(&s, TRACE);
        assert_eq!(contracts::trace::trace_id_of(&header), Some(TRACE));
        record(|| panic!("with traces off, no span is built"));
    }
}
