//! The payment service: `POST /pay`, `POST /refund`.
//!
//! A stand-in for a card processor. It answers after a simulated latency,
//! fails or declines a share of charges at random, and is idempotent: a
//! charge is keyed by its `order_id` and a refund by its `payment_id`, and
//! both are kept in sled, so a client that retries (the order node after a
//! timeout, the saga after a crash) never charges or refunds twice, even
//! across a restart of this node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::api::{
    error_code, ErrorBody, PayDeclined, PayRequest, PayResponse, RefundRequest, RefundResponse,
};
use tracing::Instrument;

use contracts::token::scope;
use contracts::trust::role;

pub mod decide;
pub mod store;

use decide::{
    decide, decide_refund, validate_pay, validate_refund, ChargeOutcome, Decision, Draws, PaymentRecord,
    Rates, RefundDecision, RefundRecord, DECLINE_REASON,
};
use store::Store;

use crate::config::CommonArgs;
use crate::runtime::http::{ApiError, JsonBody};
use crate::runtime::Node;
use crate::services::openapi::{Bearer, BodyRefused, TokenRefused};
use crate::services::range::MsRange;

/// `pizza-node payment`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address.
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8081")]
    pub http: std::net::SocketAddr,
    /// Time to answer, in ms (a range like 20..200, or one value).
    #[arg(long, default_value = "20..200")]
    pub latency_ms: MsRange,
    /// Share of payments that fail with 500 (0.0..1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of payments declined with 402 (0.0..1.0).
    #[arg(long, default_value_t = 0.05)]
    pub decline_rate: f64,
}

// ---------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------

/// Outcomes since start, shown as heartbeat figures.
#[derive(Debug, Default)]
struct Tally {
    captured: AtomicU64,
    declined: AtomicU64,
    refunded: AtomicU64,
    failed: AtomicU64,
}

struct App {
    node: Node,
    store: Store,
    latency: MsRange,
    rates: Rates,
    tally: Tally,
}

impl App {
    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.publish_figures();
    }

    fn publish_figures(&self) {
        let t = &self.tally;
        let n = |c: &AtomicU64| Some(c.load(Ordering::Relaxed));
        self.node.set_figures(|f| {
            f.payment = contracts::status::PaymentFigures {
                captured: n(&t.captured),
                declined: n(&t.declined),
                refunded: n(&t.refunded),
                failed: n(&t.failed),
            }
        });
    }

    /// What every request goes through before its work: 503 while paused,
    /// then the simulated processor time plus any injected latency.
    async fn gate(&self) -> Result<(), ApiError> {
        let faults = self.node.faults();
        if faults.paused {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                error_code::PAUSED,
                "payment is paused by the control room; try again later",
            ));
        }
        let wait = self.latency.sample() + Duration::from_millis(faults.latency_ms);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Turns a handler's result into the answer, counting it in the
    /// heartbeat: a 5xx is this node failing; a refusal while paused is
    /// neither handled nor failed; anything else (a 402, a 4xx) is handled.
    fn finish(&self, result: Result<Response, ApiError>) -> Response {
        let c = self.node.counters();
        match result {
            Ok(r) => {
                c.handled.fetch_add(1, Ordering::Relaxed);
                r
            }
            Err(e) => {
                if e.body.error.code == error_code::PAUSED {
                    // Not counted: the node was told not to work.
                } else if e.status.is_server_error() {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    self.bump(&self.tally.failed);
                } else {
                    c.handled.fetch_add(1, Ordering::Relaxed);
                }
                e.into_response()
            }
        }
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn new(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The routes, on `app`.
fn router(app: Arc<App>) -> Router {
    // Only the order service may charge and refund (its bearer token).
    let gate = crate::services::tokens::Gate::new(app.node.link().security(), role::PAYMENT, scope::PAYMENT);
    Router::new()
        .route("/pay", post(pay))
        .route("/refund", post(refund))
        .route_layer(axum::middleware::from_fn_with_state(
            gate,
            crate::services::tokens::require,
        ))
        .route("/healthz", get(healthz))
        .with_state(app)
        .merge(crate::services::openapi::route(
            crate::services::openapi::payment(),
        ))
}

/// The payment service.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Pizza Platform: payment service", description = "Charges and refunds orders, each once."),
    paths(pay, refund, healthz),
    components(schemas(PayRequest, PayResponse, PayDeclined, RefundRequest, RefundResponse, ErrorBody, contracts::api::ErrorDetail, crate::services::openapi::Health)),
    modifiers(&Bearer),
    tags((name = "payment", description = "Charges and refunds"))
)]
pub struct PaymentApi;

/// `GET /healthz`: the service answers.
#[utoipa::path(get, operation_id = "payment_health", path = "/healthz", tag = "payment",
    responses((status = 200, description = "Up", body = crate::services::openapi::Health)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `POST /pay`: charges an order once; the same order again answers the
/// first result.
#[utoipa::path(post, operation_id = "pay", path = "/pay", tag = "payment",
    request_body = PayRequest,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Captured", body = PayResponse),
        (status = 402, description = "Declined", body = PayDeclined),
        (status = 409, description = "`conflict`: the order was charged with another amount", body = ErrorBody),
        (status = 500, description = "`internal` or `injected_fault`", body = ErrorBody),
        (status = 503, description = "`paused`", body = ErrorBody),
        BodyRefused, TokenRefused,
    ))]
async fn pay(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<PayRequest>, ApiError>,
) -> Response {
    let _in_flight = InFlight::new(&app.node.counters().in_flight);
    let trace_id = crate::runtime::http::incoming_trace(&headers).unwrap_or_default();
    // Rejected bodies are answered here rather than by the extractor so that
    // every request gets its log line.
    let (order_id, result) = match body {
        Ok(JsonBody(req)) => {
            let span = crate::runtime::http::served("POST /pay", &headers, &req.order_id);
            (req.order_id.clone(), charge(&app, req).instrument(span).await)
        }
        Err(e) => (String::new(), Err(e)),
    };
    let response = app.finish(result);
    let status = response.status();
    tracing::info!(%order_id, %trace_id, status = status.as_u16(), "POST /pay");
    response
}

async fn charge(app: &App, req: PayRequest) -> Result<Response, ApiError> {
    validate_pay(&req).map_err(|e| ApiError::field(e.field, e.message))?;
    app.gate().await?;
    let faults = app.node.faults();
    let rates = Rates {
        // The control room's error rate adds to the configured failures.
        fail: (app.rates.fail + faults.error_rate).clamp(0.0, 1.0),
        decline: app.rates.decline,
    };
    let draws = Draws::from_rng(&mut rand::thread_rng());
    let existing = app.store.payment(&req.order_id).map_err(ApiError::internal)?;
    let outcome = match decide(existing.as_ref(), &req, rates, draws) {
        Decision::Replay(r) => return Ok(answer(r)),
        Decision::Mismatch(r) => return Err(mismatch(r)),
        Decision::Fail => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_code::PAYMENT_FAILED,
                "the card processor failed; nothing was charged, try again",
            ))
        }
        Decision::Decline => ChargeOutcome::Declined {
            reason: DECLINE_REASON.to_string(),
        },
        Decision::Capture => ChargeOutcome::Captured {
            payment_id: format!("pay_{}", uuid::Uuid::new_v4().simple()),
        },
    };
    let record = PaymentRecord {
        order_id: req.order_id.clone(),
        amount_cents: req.amount_cents,
        currency: req.currency.clone(),
        outcome,
        at: now(),
    };
    let held = app
        .store
        .record_payment(record.clone())
        .await
        .map_err(ApiError::internal)?;
    if held != record {
        // A concurrent first attempt for this order recorded its answer
        // first; that one stands.
        return match decide(Some(&held), &req, rates, draws) {
            Decision::Mismatch(r) => Err(mismatch(r)),
            _ => Ok(answer(&held)),
        };
    }
    match &held.outcome {
        ChargeOutcome::Captured { .. } => app.bump(&app.tally.captured),
        ChargeOutcome::Declined { .. } => app.bump(&app.tally.declined),
    }
    Ok(answer(&held))
}

/// The answer a recorded charge gets, the first time and every time after.
/// Now, as records keep it.
fn now() -> String {
    contracts::api::rfc3339(time::OffsetDateTime::now_utc())
}

fn answer(r: &PaymentRecord) -> Response {
    match &r.outcome {
        ChargeOutcome::Captured { payment_id } => {
            (StatusCode::OK, Json(PayResponse::captured(payment_id.clone()))).into_response()
        }
        ChargeOutcome::Declined { reason } => (
            StatusCode::PAYMENT_REQUIRED,
            Json(PayDeclined::new(reason.clone())),
        )
            .into_response(),
    }
}

fn mismatch(r: &PaymentRecord) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        error_code::CONFLICT,
        format!(
            "order {} was already charged for {} {}; a retry must ask for the same amount",
            r.order_id, r.amount_cents, r.currency
        ),
    )
}

/// `POST /refund`: refunds a captured payment once.
#[utoipa::path(post, operation_id = "refund", path = "/refund", tag = "payment",
    request_body = RefundRequest,
    params(("traceparent" = Option<String>, Header, description = "W3C trace context")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Refunded", body = RefundResponse),

        (status = 404, description = "`not_found`: no such payment", body = ErrorBody),
        (status = 409, description = "`conflict`: the payment belongs to another order", body = ErrorBody),
        (status = 500, description = "`internal` or `injected_fault`", body = ErrorBody),
        (status = 503, description = "`paused`", body = ErrorBody),
        BodyRefused, TokenRefused,
    ))]
async fn refund(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<RefundRequest>, ApiError>,
) -> Response {
    let _in_flight = InFlight::new(&app.node.counters().in_flight);
    let trace_id = crate::runtime::http::incoming_trace(&headers).unwrap_or_default();
    let (order_id, payment_id, result) = match body {
        Ok(JsonBody(req)) => {
            let span = crate::runtime::http::served("POST /refund", &headers, &req.order_id);
            (
                req.order_id.clone(),
                req.payment_id.clone(),
                refund_payment(&app, req).instrument(span).await,
            )
        }
        Err(e) => (String::new(), String::new(), Err(e)),
    };
    let response = app.finish(result);
    let status = response.status();
    tracing::info!(%order_id, %payment_id, %trace_id, status = status.as_u16(), "POST /refund");
    response
}

async fn refund_payment(app: &App, req: RefundRequest) -> Result<Response, ApiError> {
    validate_refund(&req).map_err(|e| ApiError::field(e.field, e.message))?;
    app.gate().await?;
    let owner = app.store.owner(&req.payment_id).map_err(ApiError::internal)?;
    let existing = app.store.refund(&req.payment_id).map_err(ApiError::internal)?;
    let refund_id = match decide_refund(owner.as_deref(), existing.as_ref(), &req) {
        RefundDecision::NotFound => {
            return Err(ApiError::not_found(format!(
                "no captured payment {}",
                req.payment_id
            )))
        }
        RefundDecision::Conflict { owner } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                error_code::CONFLICT,
                format!(
                    "payment {} belongs to order {owner}, not {}",
                    req.payment_id, req.order_id
                ),
            ))
        }
        RefundDecision::Replay(r) => r.refund_id.clone(),
        RefundDecision::Refund => {
            let record = RefundRecord {
                refund_id: format!("ref_{}", uuid::Uuid::new_v4().simple()),
                order_id: req.order_id.clone(),
                at: now(),
            };
            let held = app
                .store
                .record_refund(&req.payment_id, record.clone())
                .await
                .map_err(ApiError::internal)?;
            if held == record {
                app.bump(&app.tally.refunded);
            }
            held.refund_id
        }
    };
    Ok((StatusCode::OK, Json(RefundResponse::refunded(refund_id))).into_response())
}

/// Runs the payment service until SIGTERM/SIGINT or the control room's stop.
pub async fn run(args: Args) -> anyhow::Result<()> {
    for (flag, rate) in [
        ("--fail-rate", args.fail_rate),
        ("--decline-rate", args.decline_rate),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&rate),
            "{flag} must be between 0.0 and 1.0, got {rate}"
        );
    }
    let id = args.common.id_or(contracts::trust::role::PAYMENT);
    let dir = args.common.data_dir_for(&id).join("payments");
    let listener = crate::runtime::http::listen(args.http).await?;
    let node = crate::runtime::start::start_node(&args.common, contracts::trust::role::PAYMENT).await?;
    crate::runtime::http::announce_http(&node, &listener, &args.common);
    let store = match Store::open(&dir) {
        Ok(s) => {
            node.shelf().add("payments", s.db());
            s
        }
        Err(e) => {
            node.shutdown().await;
            return Err(e);
        }
    };
    let app = Arc::new(App {
        node: node.clone(),
        store: store.clone(),
        latency: args.latency_ms,
        rates: Rates {
            fail: args.fail_rate,
            decline: args.decline_rate,
        },
        tally: Tally::default(),
    });
    app.publish_figures();
    tracing::info!(
        http = %args.http,
        latency_ms = %args.latency_ms,
        fail_rate = args.fail_rate,
        decline_rate = args.decline_rate,
        "payment ready"
    );
    let served = crate::runtime::http::serve(
        listener,
        router(app),
        crate::runtime::stop::until_stopped(node.clone()),
    )
    .await;
    // Records are flushed per request; this only covers a request cut short.
    if let Err(e) = store.flush().await {
        tracing::warn!(error = %e, "could not flush the payment store on stop");
    }
    node.shutdown().await;
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(order: &str, amount: u64, currency: &str) -> PayRequest {
        PayRequest {
            order_id: order.into(),
            amount_cents: amount,
            currency: currency.into(),
        }
    }

    fn record(outcome: ChargeOutcome) -> PaymentRecord {
        PaymentRecord {
            order_id: "o-1".into(),
            amount_cents: 1250,
            currency: "EUR".into(),
            outcome,
            at: "2025-01-01T00:00:00Z".into(),
        }
    }

    const NONE: Rates = Rates {
        fail: 0.0,
        decline: 0.0,
    };
    const ALL: Rates = Rates {
        fail: 1.0,
        decline: 1.0,
    };
    const MID: Draws = Draws {
        fail: 0.5,
        decline: 0.5,
    };

    #[test]
    fn a_new_charge_follows_the_dice() {
        let r = req("o-1", 1250, "EUR");
        assert_eq!(decide(None, &r, NONE, MID), Decision::Capture);
        assert_eq!(decide(None, &r, ALL, MID), Decision::Fail);
        let decline_only = Rates {
            fail: 0.0,
            decline: 1.0,
        };
        assert_eq!(decide(None, &r, decline_only, MID), Decision::Decline);
        // A draw strikes only below its rate.
        let half = Rates {
            fail: 0.5,
            decline: 0.5,
        };
        assert_eq!(decide(None, &r, half, MID), Decision::Capture);
        let low = Draws {
            fail: 0.49,
            decline: 0.0,
        };
        assert_eq!(decide(None, &r, half, low), Decision::Fail);
        // Rate 0 never strikes, even on a draw of 0.
        let zero = Draws {
            fail: 0.0,
            decline: 0.0,
        };
        assert_eq!(decide(None, &r, NONE, zero), Decision::Capture);
    }

    #[test]
    fn a_recorded_answer_beats_the_dice() {
        let r = req("o-1", 1250, "EUR");
        let paid = record(ChargeOutcome::Captured {
            payment_id: "pay_1".into(),
        });
        assert_eq!(decide(Some(&paid), &r, ALL, MID), Decision::Replay(&paid));
        let declined = record(ChargeOutcome::Declined {
            reason: DECLINE_REASON.into(),
        });
        assert_eq!(
            decide(Some(&declined), &r, NONE, MID),
            Decision::Replay(&declined)
        );
    }

    #[test]
    fn a_retry_for_another_amount_is_a_mismatch() {
        let paid = record(ChargeOutcome::Captured {
            payment_id: "pay_1".into(),
        });
        assert_eq!(
            decide(Some(&paid), &req("o-1", 999, "EUR"), NONE, MID),
            Decision::Mismatch(&paid)
        );
        assert_eq!(
            decide(Some(&paid), &req("o-1", 1250, "USD"), NONE, MID),
            Decision::Mismatch(&paid)
        );
    }

    #[test]
    fn refunds_are_found_checked_and_replayed() {
        let r = RefundRequest {
            payment_id: "pay_1".into(),
            order_id: "o-1".into(),
        };
        assert_eq!(decide_refund(None, None, &r), RefundDecision::NotFound);
        assert_eq!(
            decide_refund(Some("o-2"), None, &r),
            RefundDecision::Conflict { owner: "o-2" }
        );
        assert_eq!(decide_refund(Some("o-1"), None, &r), RefundDecision::Refund);
        let done = RefundRecord {
            refund_id: "ref_1".into(),
            order_id: "o-1".into(),
            at: "t".into(),
        };
        assert_eq!(
            decide_refund(Some("o-1"), Some(&done), &r),
            RefundDecision::Replay(&done)
        );
        // Another order may not learn of, or undo, someone else's refund.
        assert_eq!(
            decide_refund(Some("o-2"), Some(&done), &r),
            RefundDecision::Conflict { owner: "o-2" }
        );
    }

    #[test]
    fn validation_names_the_field() {
        let field = |r: PayRequest| validate_pay(&r).err().map(|e| e.field);
        assert_eq!(field(req("o-1", 1, "EUR")), None);
        assert_eq!(field(req("", 1, "EUR")).as_deref(), Some("order_id"));
        assert_eq!(field(req("  ", 1, "EUR")).as_deref(), Some("order_id"));
        assert_eq!(
            field(req(&"x".repeat(contracts::api::MAX_TEXT_CHARS + 1), 1, "EUR")).as_deref(),
            Some("order_id")
        );
        assert_eq!(field(req("o-1", 0, "EUR")).as_deref(), Some("amount_cents"));
        let most = contracts::api::MAX_AMOUNT_CENTS;
        assert_eq!(field(req("o-1", most, "CHF")), None);
        assert_eq!(
            field(req("o-1", most + 1, "CHF")).as_deref(),
            Some("amount_cents")
        );
        for bad in ["eur", "EU", "EURO", "E1R", "ÉUR", "", "XYZ"] {
            assert_eq!(field(req("o-1", 1, bad)).as_deref(), Some("currency"), "{bad}");
        }
        let refund = |p: &str, o: &str| {
            validate_refund(&RefundRequest {
                payment_id: p.into(),
                order_id: o.into(),
            })
            .err()
            .map(|e| e.field)
        };
        assert_eq!(refund("pay_1", "o-1"), None);
        assert_eq!(refund("", "o-1").as_deref(), Some("payment_id"));
        assert_eq!(refund("pay_1", "").as_deref(), Some("order_id"));
    }

    #[test]
    fn records_round_trip_as_json() {
        for outcome in [
            ChargeOutcome::Captured {
                payment_id: "pay_1".into(),
            },
            ChargeOutcome::Declined {
                reason: DECLINE_REASON.into(),
            },
        ] {
            let r = record(outcome);
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<PaymentRecord>(&text).unwrap(), r);
        }
    }

    #[tokio::test]
    async fn the_store_keeps_the_first_answer_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let paid = record(ChargeOutcome::Captured {
            payment_id: "pay_1".into(),
        });
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.record_payment(paid.clone()).await.unwrap(), paid);
            let late = record(ChargeOutcome::Declined {
                reason: DECLINE_REASON.into(),
            });
            assert_eq!(store.record_payment(late).await.unwrap(), paid);
            let refund = RefundRecord {
                refund_id: "ref_1".into(),
                order_id: "o-1".into(),
                at: "t".into(),
            };
            let again = RefundRecord {
                refund_id: "ref_2".into(),
                ..refund.clone()
            };
            assert_eq!(
                store.record_refund("pay_1", refund.clone()).await.unwrap(),
                refund
            );
            assert_eq!(store.record_refund("pay_1", again).await.unwrap(), refund);
        }
        // sled's flusher thread lets go of the file lock a moment after the
        // last handle drops; a new process would not have to wait.
        let mut tries = 0;
        let store = loop {
            match Store::open(dir.path()) {
                Ok(s) => break s,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot reopen the store: {e:#}"),
            }
        };
        assert_eq!(store.payment("o-1").unwrap(), Some(paid));
        assert_eq!(store.owner("pay_1").unwrap().as_deref(), Some("o-1"));
        assert_eq!(store.owner("pay_2").unwrap(), None);
        assert_eq!(
            store.refund("pay_1").unwrap().map(|r| r.refund_id).as_deref(),
            Some("ref_1")
        );
    }
}
