//! Prometheus `/metrics` on every node, in the text exposition format.
//!
//! Series are recorded through the `metrics` facade where their figures are
//! made: the heartbeat (every second) records the node's counters and its
//! role's figures ([`samples`], a plain function of the heartbeat), the HTTP
//! middleware ([`track`]) each request, the keeper and the event log their
//! queues and subscriptions (`broker::metrics`). The exporter installed here
//! renders them at `GET /metrics`: on every HTTP server a node runs (its API
//! port), and on `--metrics ADDR` for nodes without one.
//!
//! Every series carries the labels `node` and `role`, so that one Prometheus
//! tells a platform's nodes apart without relabelling.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contracts::order::OrderState;
use contracts::status::{BreakerState, Figures, NodeState, NodeStatus};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The exporter of this process, once installed.
static EXPORTER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds: a local hop is well under a
/// millisecond, a payment call with injected latency seconds.
const HTTP_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The HTTP latency histogram's name.
const HTTP_SECONDS: &str = "pizza_http_request_duration_seconds";

/// Installs this process's exporter, labelling every series with the node's
/// id and role. Only the first call installs; a process runs one node.
/// Without an exporter (another recorder was installed first, as in a test
/// harness) recording still works and `/metrics` says so.
pub fn install(node: &str, role: &str) {
    EXPORTER.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .add_global_label("node", node)
            .add_global_label("role", role)
            .set_buckets_for_metric(Matcher::Full(HTTP_SECONDS.into()), &HTTP_BUCKETS)
            .and_then(PrometheusBuilder::install_recorder);
        match built {
            Ok(handle) => {
                describe();
                broker::metrics::describe();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Prometheus exporter: /metrics will be empty");
                None
            }
        }
    });
}

/// `GET /metrics`: every series of this process.
pub async fn render() -> Response {
    let body = match EXPORTER.get() {
        Some(Some(handle)) => handle.render(),
        _ => "# no exporter installed in this process\n".to_string(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Serves `/metrics` alone on `addr` (for a node without an HTTP API) until
/// `stop` resolves. Returns the URL others scrape it at.
pub async fn listen(
    addr: std::net::SocketAddr,
    advertise: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<String> {
    let listener = crate::runtime::http::bind(addr, "--metrics").await?;
    let local = listener.local_addr()?;
    let url = format!(
        "{}/metrics",
        crate::runtime::http::advertised_url(local, advertise, &crate::runtime::claim::host_name())
    );
    tokio::spawn(async move {
        if let Err(e) = crate::runtime::http::serve(listener, axum::Router::new(), stop).await {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(url)
}

/// Counts every HTTP request by route (the pattern, so that order ids do
/// not make a series each), method and status, and records its latency.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("pizza_http_requests_total", &labels).increment(1);
    metrics::histogram!(HTTP_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// What a series is, for the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A total that only grows (restarts at 0 with the process).
    Counter,
}

/// One value of one series, taken from a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name.
    pub name: &'static str,
    /// Gauge or counter.
    pub kind: Kind,
    /// Labels beyond `node` and `role`.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// A role figure that is a number, as a series.
struct Series {
    /// Reads it from the heartbeat's figures.
    figure: fn(&Figures) -> Option<u64>,
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

impl Series {
    const fn gauge(name: &'static str, help: &'static str, figure: fn(&Figures) -> Option<u64>) -> Series {
        Series {
            figure,
            name,
            kind: Kind::Gauge,
            help,
        }
    }

    const fn counter(name: &'static str, help: &'static str, figure: fn(&Figures) -> Option<u64>) -> Series {
        Series {
            figure,
            name,
            kind: Kind::Counter,
            help,
        }
    }
}

/// The role figures that are numbers (a table: one series a line).
#[rustfmt::skip]
const FIGURES: [Series; 10] = [
    Series::gauge("pizza_kitchen_ovens", "Ovens of this kitchen.", |f| f.kitchen.ovens),
    Series::gauge("pizza_kitchen_ovens_busy", "Ovens cooking now.", |f| f.kitchen.ovens_busy),
    Series::gauge("pizza_delivery_drivers_busy", "Drivers on a trip now.", |f| f.delivery.drivers_busy),
    Series::gauge("pizza_delivery_drivers_free", "Drivers waiting for an order.", |f| f.delivery.drivers_free),
    Series::counter("pizza_delivery_delivered_total", "Orders delivered by this node.", |f| f.delivery.delivered),
    Series::gauge("pizza_breaker_consecutive_failures", "Payment calls failed in a row.", |f| f.order.breaker_failures),
    Series::counter("pizza_breaker_opened_total", "Times the payment breaker opened.", |f| f.order.breaker_opened),
    Series::counter("pizza_breaker_rejected_total", "Payment calls the open breaker refused.", |f| f.order.breaker_rejected),
    Series::gauge("pizza_order_events_held_back", "Events waiting behind a gap in their order's seqs.", |f| f.order.held_back),
    Series::counter("pizza_order_events_released_total", "Events released once their gap filled.", |f| f.order.released_total),
];

/// The series a heartbeat gives: the runtime's counters for every node, and
/// the figures of its role (ovens, drivers, breaker, orders by state).
pub fn samples(status: &NodeStatus) -> Vec<Sample> {
    let plain = |name, kind, value: u64| Sample {
        name,
        kind,
        labels: Vec::new(),
        value: value as f64,
    };
    let mut out = vec![
        plain("pizza_node_messages_handled_total", Kind::Counter, status.handled),
        plain("pizza_node_messages_failed_total", Kind::Counter, status.failed),
        plain("pizza_node_messages_in_flight", Kind::Gauge, status.in_flight),
        plain("pizza_outbox_depth", Kind::Gauge, status.outbox),
        plain(
            "pizza_node_paused",
            Kind::Gauge,
            u64::from(status.state == NodeState::Paused),
        ),
        plain(
            "pizza_node_faults_active",
            Kind::Gauge,
            u64::from(status.faults.any()),
        ),
    ];
    for Series {
        figure, name, kind, ..
    } in FIGURES
    {
        if let Some(v) = figure(&status.figures) {
            out.push(plain(name, kind, v));
        }
    }
    if let Some(state) = status.figures.order.breaker {
        for s in BreakerState::ALL {
            out.push(Sample {
                name: "pizza_breaker_state",
                kind: Kind::Gauge,
                labels: vec![("state", s.as_str().to_string())],
                value: f64::from(u8::from(s == state)),
            });
        }
    }
    if let Some(orders) = &status.figures.order.orders {
        for state in OrderState::ALL {
            let n = orders.get(state.as_str()).copied().unwrap_or(0);
            out.push(Sample {
                name: "pizza_orders",
                kind: Kind::Gauge,
                labels: vec![("state", state.as_str().to_string())],
                value: n as f64,
            });
        }
    }
    out
}

/// Records a heartbeat's [`samples`].
pub fn record(status: &NodeStatus) {
    for s in samples(status) {
        match s.kind {
            Kind::Gauge => metrics::gauge!(s.name, &s.labels).set(s.value),
            Kind::Counter => metrics::counter!(s.name, &s.labels).absolute(s.value as u64),
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "pizza_http_requests_total",
        "HTTP requests answered, by route, method and status."
    );
    describe_histogram!(HTTP_SECONDS, "HTTP request latency, by route, method and status.");
    describe_counter!("pizza_node_messages_handled_total", "Messages this node handled.");
    describe_counter!(
        "pizza_node_messages_failed_total",
        "Messages whose handling failed."
    );
    describe_gauge!("pizza_node_messages_in_flight", "Messages being handled now.");
    describe_gauge!(
        "pizza_outbox_depth",
        "Outbox entries the broker has not confirmed."
    );
    describe_gauge!("pizza_node_paused", "1 while the node takes no work.");
    describe_gauge!(
        "pizza_node_faults_active",
        "1 while any injected fault is active."
    );
    describe_gauge!(
        "pizza_breaker_state",
        "The payment breaker: 1 for the state it is in."
    );
    describe_gauge!("pizza_orders", "Orders in the order node's book, by state.");
    for Series { name, kind, help, .. } in FIGURES {
        match kind {
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Counter => describe_counter!(name, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(role: &str, figures: serde_json::Value) -> NodeStatus {
        let mut s = NodeStatus::offline("n-1", role);
        s.state = NodeState::Up;
        s.handled = 7;
        s.outbox = 3;
        s.figures = serde_json::from_value(figures).unwrap();
        s
    }

    fn value(samples: &[Sample], name: &str, label: Option<&str>) -> Option<f64> {
        samples
            .iter()
            .filter(|s| s.name == name)
            .find(|s| match label {
                Some(l) => s.labels.iter().any(|(_, v)| v == l),
                None => true,
            })
            .map(|s| s.value)
    }

    #[test]
    fn a_kitchens_heartbeat_gives_its_counters_and_ovens() {
        let s = samples(&status(
            "kitchen",
            serde_json::json!({"ovens": 4, "ovens_busy": 3, "stock_low": []}),
        ));
        assert_eq!(value(&s, "pizza_node_messages_handled_total", None), Some(7.0));
        assert_eq!(value(&s, "pizza_outbox_depth", None), Some(3.0));
        assert_eq!(value(&s, "pizza_kitchen_ovens", None), Some(4.0));
        assert_eq!(value(&s, "pizza_kitchen_ovens_busy", None), Some(3.0));
        assert_eq!(value(&s, "pizza_node_paused", None), Some(0.0));
        assert!(s.iter().all(|x| !x.name.starts_with("pizza_breaker")), "{s:?}");
        assert!(s.iter().all(|x| x.name != "pizza_orders"), "{s:?}");
    }

    #[test]
    fn the_order_nodes_breaker_is_one_hot_and_every_order_state_has_a_series() {
        let s = samples(&status(
            "order",
            serde_json::json!({"breaker": "half_open", "breaker_opened": 2, "orders": {"cooking": 5, "delivered": 9}}),
        ));
        assert_eq!(value(&s, "pizza_breaker_state", Some("half_open")), Some(1.0));
        assert_eq!(value(&s, "pizza_breaker_state", Some("open")), Some(0.0));
        assert_eq!(value(&s, "pizza_breaker_state", Some("closed")), Some(0.0));
        assert_eq!(value(&s, "pizza_breaker_opened_total", None), Some(2.0));
        assert_eq!(value(&s, "pizza_orders", Some("cooking")), Some(5.0));
        assert_eq!(value(&s, "pizza_orders", Some("delivered")), Some(9.0));
        assert_eq!(value(&s, "pizza_orders", Some("failed")), Some(0.0));
        let states = s.iter().filter(|x| x.name == "pizza_orders").count();
        assert_eq!(states, OrderState::ALL.len());
    }

    #[test]
    fn every_counter_is_named_total_and_every_figure_series_is_described() {
        for Series { name, kind, help, .. } in FIGURES {
            assert_eq!(kind == Kind::Counter, name.ends_with("_total"), "{name}");
            assert!(name.starts_with("pizza_") && !help.is_empty(), "{name}");
        }
        let s = samples(&status("order", serde_json::json!({})));
        for x in &s {
            assert_eq!(x.kind == Kind::Counter, x.name.ends_with("_total"), "{}", x.name);
        }
    }
}
