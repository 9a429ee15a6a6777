//! The order service: `POST /orders`, `GET /orders/{id}`, `GET /orders`,
//! `GET /orders/{id}/history` (see [`crate::history`]).
//!
//! It validates an order, charges it synchronously through payment (with a
//! timeout and a circuit breaker), then records it and puts a ticket on queue
//! `kitchen` before answering 201, whether or not a kitchen runs. It follows
//! every order by folding all events through the contract's state machine.
//!
//! `DELETE /orders/{id}` puts a cancellation on queue `cancellation`, and so
//! does a kitchen refusing an order (`order.cancelling`); this node's
//! cancellation executor ([`crate::services::order::cancellation`]) consumes that queue.

pub mod book;
pub mod breaker;
pub mod cancellation;
pub mod idempotency;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use contracts::api::{
    self, CancelAccepted, ErrorBody, OrderAccepted, OrderView, PayDeclined, PayRequest, PayResponse,
    PlaceOrder,
};
use contracts::events::{self, CancellationRequest, KitchenTicket, OrderPaid, OrderPlaced, OrderQueued};
use contracts::order::OrderState;
use contracts::queue::{CANCELLATION, KITCHEN};
use contracts::token::scope;
use contracts::trust::role;
use contracts::Envelope;
use serde::Deserialize;
use tracing::Instrument;

use crate::config::CommonArgs;
use crate::otlp;
use crate::runtime::http::{ApiError, JsonBody};
use crate::runtime::{Node, Outgoing};
use crate::services::assets::Menu;
use crate::services::directory::Directory;
use crate::services::openapi::{Bearer, BodyRefused, TokenRefused};
use book::Book;
use breaker::Breaker;
use idempotency::Keys;

/// `pizza-node order`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address.
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8080")]
    pub http: std::net::SocketAddr,
    /// The payment service.
    #[arg(long, env = "PIZZA_PAYMENT_URL", default_value = "http://127.0.0.1:8081")]
    pub payment_url: String,
    /// Give up on payment after this long (then 503).
    #[arg(long, default_value_t = 2000)]
    pub payment_timeout_ms: u64,
    /// Consecutive payment failures that open the circuit breaker.
    #[arg(long, default_value_t = 5)]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial call.
    #[arg(long, default_value_t = 10_000)]
    pub breaker_open_ms: u64,
    /// The menu (TOML); defaults to assets/menu.toml.
    #[arg(long)]
    pub menu: Option<PathBuf>,
    /// Cancellations executed at once.
    #[arg(long, default_value_t = 4)]
    pub cancellations: u32,
}

/// Shared by the handlers and the cancellation executor.
pub(crate) struct Service {
    pub(crate) node: Node,
    menu: Menu,
    pub(crate) book: tokio::sync::Mutex<Book>,
    pub(crate) payment_url: String,
    pub(crate) http: reqwest::Client,
    breaker: Mutex<Breaker>,
    started: Instant,
    /// Asks the keeper to take an order off a queue.
    pub(crate) withdrawals: crate::runtime::withdraw::Withdrawals,
    /// Where the delivery nodes are, to recall a driver.
    pub(crate) directory: Directory,
    /// `Idempotency-Key`s seen by `POST /orders`.
    keys: Keys,
    /// The broker's event log, for a keyed order the book does not have.
    log: crate::history::LogClient,
    /// The bearer tokens for payment and delivery.
    pub(crate) tokens: crate::services::tokens::Tokens,
}

pub(crate) type Shared = Arc<Service>;

/// What payment said.
enum Payment {
    Captured(String),
    Declined(String),
    /// Down, slow, failing, or the breaker is open.
    Unavailable(String),
}

/// The order service.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Pizza Platform: order service", description = "Takes orders, charges them through payment, and tracks each through its state machine."),
    paths(
        place,
        list,
        show,
        cancel,
        crate::history::get_history,
        health,
    ),
    components(schemas(
        PlaceOrder, api::Customer, api::Item, OrderAccepted, OrderView, OrderState, api::HistoryEntry,
        CancelAccepted, contracts::history::HistoryView, contracts::history::HistoryStep,
        contracts::history::RejectedStep, ErrorBody, api::ErrorDetail, crate::services::openapi::Health,
    )),
    modifiers(&Bearer),
    tags((name = "order", description = "Orders: place, read, list, cancel, replay"))
)]
pub struct OrderApi;

/// Runs the order service.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = crate::runtime::http::listen(args.http).await?;
    let node = crate::runtime::start::start_node(&args.common, contracts::trust::role::ORDER).await?;
    crate::runtime::http::announce_http(&node, &listener, &args.common);
    let db = sled::Config::new()
        .path(args.common.data_dir_for(node.id()).join("book"))
        .cache_capacity(64 * 1024 * 1024)
        .open()?;
    node.shelf().add("book", &db);
    let book = Book::open(&db)?;
    tracing::info!(orders = book.len(), "order book loaded");
    let http = reqwest::Client::builder()
        .pool_idle_timeout(crate::runtime::http::CLIENT_IDLE)
        .timeout(Duration::from_millis(args.payment_timeout_ms))
        .connect_timeout(Duration::from_millis(args.payment_timeout_ms))
        .build()?;
    let service = Arc::new(Service {
        node: node.clone(),
        menu: Menu::load(args.menu.as_deref())?,
        book: tokio::sync::Mutex::new(book),
        payment_url: args.payment_url.trim_end_matches('/').to_string(),
        http,
        breaker: Mutex::new(Breaker::new(args.breaker_failures, args.breaker_open_ms)),
        started: Instant::now(),
        withdrawals: crate::runtime::withdraw::Withdrawals::start(node.link().clone()).await?,
        directory: Directory::follow(&node).await?,
        keys: Keys::open(&db)?,
        log: crate::history::LogClient::start(&node).await?,
        tokens: crate::services::tokens::Tokens::new(node.link().security().clone()),
    });
    service.figures();
    service.book_figures(&*service.book.lock().await);

    // Durable: after a crash of this node or of the broker, the book reads
    // on from the last event it had on disk.
    let events = node.stream("book", Vec::new(), BOOK_CREDIT).await?;
    tokio::spawn(follow(service.clone(), events));
    // The executor: a cancellation interrupted by a restart is still on the
    // queue (or comes back from this node's lost lease) and resumes.
    let executor = {
        let s = service.clone();
        tokio::spawn(crate::runtime::worker::run(
            node.clone(),
            CANCELLATION,
            args.cancellations,
            move |d| crate::services::order::cancellation::execute(s.clone(), d),
        ))
    };

    // The order's past, replayed from the broker's event log.
    let history = service.log.clone();
    let router = Router::new()
        .route("/orders", post(place).get(list))
        .route(
            "/orders/:id",
            // Reading stays open; cancelling takes the operator's token.
            get(show).merge(delete(cancel).route_layer(axum::middleware::from_fn_with_state(
                crate::services::tokens::Gate::new(
                    node.link().security(),
                    contracts::trust::role::ORDER,
                    contracts::token::scope::CANCEL,
                ),
                crate::services::tokens::require,
            ))),
        )
        .route(
            "/orders/:id/history",
            get(crate::history::get_history).with_state(history),
        )
        .route("/healthz", get(health))
        .with_state(service.clone())
        .merge(crate::services::openapi::route(crate::services::openapi::order()));
    crate::runtime::http::serve(
        listener,
        router,
        crate::runtime::stop::until_stopped(node.clone()),
    )
    .await?;
    if let Ok(Err(e)) = executor.await {
        tracing::error!(error = %e, "the cancellation executor stopped");
    }
    node.shutdown().await;
    Ok(())
}

impl Service {
    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn figures(&self) {
        let (breaker, remaining) = {
            let b = self.lock_breaker();
            (b.clone(), b.open_remaining_ms(self.now_ms()))
        };
        // A wall-clock time, so a watcher can count down without asking.
        let closes_at = remaining
            .map(|ms| time::OffsetDateTime::now_utc() + Duration::from_millis(ms))
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        self.node.set_figures(|f| {
            breaker.figures(&mut f.order);
            f.order.breaker_half_open_at = closes_at;
        });
    }

    /// The book's figures: orders by state, envelopes waiting behind a gap
    /// in their order's seqs now, and how many a filled gap has released.
    fn book_figures(&self, book: &Book) {
        let orders = OrderState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), book.count_in(*s)))
            .collect();
        self.node.set_figures(|f| {
            f.order.held_back = Some(book.held_back() as u64);
            f.order.released_total = Some(book.released_total());
            f.order.orders = Some(orders);
        });
    }

    /// Calls `POST /pay` through the breaker.
    async fn pay(&self, req: &PayRequest, trace_id: &str) -> Payment {
        if !self.lock_breaker().allow(self.now_ms()) {
            self.figures();
            return Payment::Unavailable("circuit breaker open".into());
        }
        let span = otlp::span(contracts::trust::role::PAYMENT, otlp::Kind::Client, &req.order_id);
        let request = self.http.post(format!("{}/pay", self.payment_url));
        let call = self
            .tokens
            .attach(request, role::PAYMENT, scope::PAYMENT)
            // Names the span of this call: payment's span goes under it.
            .header("traceparent", otlp::traceparent(&span, trace_id))
            .json(req)
            .send();
        let result = answer(call).instrument(span).await;
        {
            let mut b = self.lock_breaker();
            match result {
                Payment::Unavailable(_) => b.failure(self.now_ms()),
                _ => b.success(),
            }
        }
        self.figures();
        result
    }

    /// Records (folds and stores) and publishes an event of this node.
    pub(crate) async fn publish(&self, env: &Envelope) -> Result<(), ApiError> {
        self.book
            .lock()
            .await
            .record(env.clone())
            .map_err(ApiError::internal)?;
        self.node.emit(env).await.map_err(ApiError::internal)
    }

    /// The next event of `cause`'s order, recorded and published.
    async fn follow_up<E: events::Event>(&self, payload: &E, cause: &Envelope) -> Result<Envelope, ApiError> {
        let env = self.next_event(payload, cause).await?;
        self.publish(&env).await?;
        Ok(env)
    }

    /// A new event for `order_id`, caused by `cause`, numbered after the
    /// order's last one.
    async fn next_event<E: events::Event>(
        &self,
        payload: &E,
        cause: &Envelope,
    ) -> Result<Envelope, ApiError> {
        let seq = self.book.lock().await.next_seq(&cause.order_id);
        events::follow(payload, cause, seq, self.node.id()).map_err(ApiError::internal)
    }
}

/// Events the book may be sent before it acknowledges them.
const BOOK_CREDIT: u32 = 2_000;

/// What payment's answer to `POST /pay` means for the order.
async fn answer(call: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>) -> Payment {
    match call.await {
        Ok(r) if r.status() == StatusCode::OK => match r.json::<PayResponse>().await {
            Ok(p) => Payment::Captured(p.payment_id),
            Err(e) => Payment::Unavailable(format!("unreadable answer from payment: {e}")),
        },
        Ok(r) if r.status() == StatusCode::PAYMENT_REQUIRED => {
            let reason = r
                .json::<PayDeclined>()
                .await
                .map(|d| d.reason)
                .unwrap_or_else(|_| "declined".into());
            Payment::Declined(reason)
        }
        Ok(r) => Payment::Unavailable(format!("payment answered {}", r.status())),
        Err(e) if e.is_timeout() => Payment::Unavailable("payment timed out".into()),
        Err(e) => Payment::Unavailable(format!("payment unreachable: {e}")),
    }
}

/// `GET /healthz`: the service answers.
#[utoipa::path(get, operation_id = "order_health", path = "/healthz", tag = "order",
    responses((status = 200, description = "Up", body = crate::services::openapi::Health)))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

fn new_order_id() -> String {
    // Time-ordered, so the book lists the newest first by id.
    format!("ord_{}", uuid::Uuid::now_v7().simple())
}

/// `POST /orders`: validates the order, charges it (through the breaker),
/// and answers 201 once the order and its kitchen ticket are durable.
#[utoipa::path(post, operation_id = "place_order", path = "/orders", tag = "order",
    request_body = PlaceOrder,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key answers the first order's result again (at most 255 characters)."),
        ("traceparent" = Option<String>, Header, description = "W3C trace context; the order's events carry its trace id."),
    ),
    responses(
        (status = 201, description = "Accepted, paid and queued for a kitchen", body = OrderAccepted,
            headers(("idempotent-replayed" = String, description = "`true` when this answers an earlier request with the same Idempotency-Key"))),
        (status = 402, description = "`payment_declined`: the order exists, `rejected` (its `order_id` is in the body)", body = ErrorBody),
        (status = 409, description = "`idempotency_in_progress`: the same key is being answered; ask again shortly", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the key was used for another order", body = ErrorBody),
        (status = 500, description = "`internal` or `injected_fault`", body = ErrorBody),
        (status = 503, description = "`payment_unavailable` (breaker open or payment down) or `paused`", body = ErrorBody),
        BodyRefused,
    ))]
async fn place(
    State(s): State<Shared>,
    headers: HeaderMap,
    JsonBody(order): JsonBody<PlaceOrder>,
) -> Result<Response, ApiError> {
    order
        .validate(|p| s.menu.get(p).is_some())
        .map_err(|e| ApiError::field(e.field, e.message))?;
    let key = idempotency::key_of(&headers)?;
    injected_faults(&s.node).await?;
    // Held until this request answers: the same key meanwhile is a 409.
    let claim = match &key {
        Some(k) => Some(s.keys.claim(k, new_order_id).await?),
        None => None,
    };
    if let Some(c) = claim.as_ref().filter(|c| !c.fresh) {
        if let Some(answer) = replay(&s, &c.order_id, &order).await? {
            return Ok(answer);
        }
    }
    let order_id = claim.as_ref().map_or_else(new_order_id, |c| c.order_id.clone());
    let amount_cents: u64 = order
        .items
        .iter()
        .map(|i| s.menu.get(&i.pizza).map_or(0, |p| p.price_cents) * u64::from(i.qty))
        .sum();
    let trace_id =
        crate::runtime::http::incoming_trace(&headers).unwrap_or_else(contracts::envelope::new_trace_id);
    // The order was placed when it arrived, not when payment answered: the
    // trace timeline's payment stage is placed -> paid.
    let received = time::OffsetDateTime::now_utc();
    let span = otlp::span("POST /orders", otlp::Kind::Server, &order_id);
    otlp::under_order(&span, &trace_id);
    let answer = take(&s, &order, (order_id, trace_id), amount_cents, received)
        .instrument(span)
        .await;
    // The claim is released here, once the request has its answer.
    drop(claim);
    answer
}

/// Pays for a valid order and, once paid, records and queues it: the part
/// of `POST /orders` after its checks.
async fn take(
    s: &Service,
    order: &PlaceOrder,
    (order_id, trace_id): (String, String),
    amount_cents: u64,
    received: time::OffsetDateTime,
) -> Result<Response, ApiError> {
    let req = PayRequest {
        order_id: order_id.clone(),
        amount_cents,
        currency: "CHF".into(),
    };
    let started = Instant::now();
    let payment = s.pay(&req, &trace_id).await;
    let pay_ms = started.elapsed().as_millis() as u64;
    let placed = || placed_event(s, order, &order_id, &trace_id, amount_cents, received);
    match payment {
        Payment::Unavailable(why) => {
            tracing::warn!(%order_id, %trace_id, %why, pay_ms, "payment unavailable: order not taken");
            s.node
                .counters()
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                api::error_code::PAYMENT_UNAVAILABLE,
                api::PAYMENT_UNAVAILABLE_MESSAGE,
            ))
        }
        Payment::Declined(reason) => {
            let placed = placed()?;
            s.publish(&placed).await?;
            let rejected = events::OrderRejected {
                reason: reason.clone(),
            };
            s.follow_up(&rejected, &placed).await?;
            tracing::info!(%order_id, %trace_id, %reason, "payment declined: order rejected");
            Err(declined(order_id, format!("payment declined: {reason}")))
        }
        Payment::Captured(payment_id) => {
            accept(
                s,
                order,
                placed()?,
                OrderPaid {
                    payment_id,
                    amount_cents,
                },
            )
            .await?;
            s.node
                .counters()
                .handled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(%order_id, %trace_id, amount_cents, pay_ms, "order accepted and queued for a kitchen");
            Ok((StatusCode::CREATED, Json(OrderAccepted::new(order_id, trace_id))).into_response())
        }
    }
}

/// A paid order's placed, paid, kitchen ticket and queued: numbered and
/// recorded under one lock, then in the outbox (flushed) with one disk sync
/// before we answer. From here the order survives a kill -9 of this node,
/// and the keeper and the log get it when they can.
async fn accept(s: &Service, order: &PlaceOrder, placed: Envelope, paid: OrderPaid) -> Result<(), ApiError> {
    let (paid, ticket, queued) = {
        let mut book = s.book.lock().await;
        let node = s.node.id();
        let order_id = placed.order_id.clone();
        book.record(placed.clone()).map_err(ApiError::internal)?;
        let paid =
            events::follow(&paid, &placed, book.next_seq(&order_id), node).map_err(ApiError::internal)?;
        book.record(paid.clone()).map_err(ApiError::internal)?;
        let queued = OrderQueued {
            queue: KITCHEN.to_string(),
        };
        let queued =
            events::follow(&queued, &paid, book.next_seq(&order_id), node).map_err(ApiError::internal)?;
        let body = KitchenTicket {
            items: order.items.clone(),
            customer: order.customer.clone(),
        };
        let ticket = events::follow(&body, &queued, queued.seq, node).map_err(ApiError::internal)?;
        book.record(queued.clone()).map_err(ApiError::internal)?;
        (paid, ticket, queued)
    };
    s.node
        .send(&[
            Outgoing::Event(&placed),
            Outgoing::Event(&paid),
            Outgoing::Put(KITCHEN, &ticket),
            Outgoing::Event(&queued),
        ])
        .await
        .map_err(ApiError::internal)
}

/// 402: payment declined `order_id`, which exists now as `rejected`.
fn declined(order_id: impl Into<String>, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        api::error_code::PAYMENT_DECLINED,
        message,
    );
    e.body.error.order_id = Some(order_id.into());
    e
}

/// A repeated `Idempotency-Key` whose order got as far as the book: the
/// first answer again (201, or 402 if payment declined it), marked
/// `idempotent-replayed: true`; 422 if this is not the same order. `None`
/// when an earlier attempt ended before the order existed (place it now).
async fn replay(s: &Service, order_id: &str, order: &PlaceOrder) -> Result<Option<Response>, ApiError> {
    let in_book = s.book.lock().await.view(order_id);
    let view = match in_book {
        Some(view) => Some(view),
        None => earlier_attempt(s, order_id).await?,
    };
    let Some(view) = view else {
        return Ok(None);
    };
    if view.customer != order.customer || view.items != order.items {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            api::error_code::IDEMPOTENCY_KEY_REUSED,
            format!(
                "this {} was used for order {order_id}, with another customer or other items; use a new key for a new order",
                idempotency::HEADER
            ),
        ));
    }
    if view.state == OrderState::Rejected {
        let message = format!(
            "payment declined order {order_id}, placed earlier with this {}",
            idempotency::HEADER
        );
        return Err(declined(order_id, message));
    }
    let mut answer = (
        StatusCode::CREATED,
        Json(OrderAccepted::new(order_id, view.trace_id)),
    )
        .into_response();
    answer
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(answer))
}

/// A keyed order the book does not have. After a kill -9 the book (flushed
/// lazily) can be behind the outbox and the log; placing the order again
/// would then make it twice. Still in the outbox: 409, ask again shortly;
/// in the log: its view; nowhere: the earlier attempt ended before the
/// order existed (payment was down, or the node died first).
async fn earlier_attempt(s: &Service, order_id: &str) -> Result<Option<OrderView>, ApiError> {
    let pending = s.node.link().outbox().pending().map_err(ApiError::internal)?;
    let on_its_way = pending
        .iter()
        .any(|e| serde_json::from_str::<Envelope>(&e.payload).is_ok_and(|env| env.order_id == order_id));
    if on_its_way {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            api::error_code::IDEMPOTENCY_IN_PROGRESS,
            format!(
                "order {order_id} of this {} is on its way to the event log; ask again in a second",
                idempotency::HEADER
            ),
        ));
    }
    let events = s.log.events(order_id).await.map_err(|e| {
        // Unsure whether the order exists: refusing beats making it twice.
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            api::error_code::IDEMPOTENCY_IN_PROGRESS,
            format!(
                "cannot tell whether order {order_id} of this {} exists ({e}); ask again later",
                idempotency::HEADER
            ),
        )
    })?;
    Ok(OrderView::of(&contracts::order::OrderFold::from_envelopes(
        order_id, events,
    )))
}

/// The control room's faults, applied to a new order: paused answers 503;
/// latency waits; an injected error or drop fails the request with 500.
async fn injected_faults(node: &Node) -> Result<(), ApiError> {
    let faults = node.faults();
    if faults.paused {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            api::error_code::PAUSED,
            "the order service is paused by the control room; try again later",
        ));
    }
    match crate::runtime::faults::gate(&faults).await {
        crate::runtime::faults::Verdict::Handle { .. } => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            api::error_code::INJECTED_FAULT,
            "an injected fault failed this request",
        )),
    }
}

fn placed_event(
    s: &Service,
    order: &PlaceOrder,
    order_id: &str,
    trace_id: &str,
    amount_cents: u64,
    received: time::OffsetDateTime,
) -> Result<Envelope, ApiError> {
    let placed = OrderPlaced {
        customer: order.customer.clone(),
        items: order.items.clone(),
        amount_cents,
    };
    let mut env =
        events::envelope(&placed, order_id, 1, trace_id, s.node.id()).map_err(ApiError::internal)?;
    env.occurred_at = received;
    Ok(env)
}

/// `GET /orders/{id}`: the order as the order node's book has it.
#[utoipa::path(get, operation_id = "get_order", path = "/orders/{id}", tag = "order",
    params(("id" = String, Path, description = "The order id, e.g. `ord_0193...`")),
    responses(
        (status = 200, description = "The order, its state and history", body = OrderView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn show(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<OrderView>, ApiError> {
    s.book
        .lock()
        .await
        .view(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))
}

/// Query of `GET /orders`: text, parsed in [`list`] so that a bad value
/// is a 400 naming its parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
}

/// `GET /orders`: the newest orders first.
#[utoipa::path(get, operation_id = "list_orders", path = "/orders", tag = "order",
    params(
        ("state" = Option<OrderState>, Query, description = "Only orders in this state"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 50)"),
    ),
    responses(
        (status = 200, description = "Orders, newest first", body = Vec<OrderView>),
        (status = 400, description = "`validation`, naming `state`, `limit` or an unknown parameter", body = ErrorBody),
    ))]
async fn list(
    State(s): State<Shared>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let Query(q) = q.map_err(|e| {
        // Only an unknown parameter can fail here: every value is text.
        let text = e.body_text();
        let name = text.split('`').nth(1).unwrap_or("query").to_string();
        ApiError::field(name, format!("{text}; GET /orders takes state and limit"))
    })?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<OrderState>()
                .map_err(|e| ApiError::field("state", e.to_string()))?,
        ),
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000).contains(n))
            .ok_or_else(|| {
                ApiError::field(
                    "limit",
                    format!("limit must be a number from 1 to 1000, got '{text}'"),
                )
            })?,
    };
    Ok(Json(s.book.lock().await.list(state, limit)))
}

/// Folds every event from the broker into the book. A batch is flushed
/// before its messages are acknowledged, so none is lost to a kill -9.
async fn follow(s: Shared, mut stream: crate::runtime::stream::EventStream) {
    while let Some(batch) = stream.next().await {
        let mut cancelling = Vec::new();
        let flusher = {
            let mut book = s.book.lock().await;
            for (_, env) in batch.events {
                let order_id = env.order_id.clone();
                let was = book.get(&order_id).and_then(|f| f.state());
                match book.record(env) {
                    Ok(_) => {
                        let fold = book.get(&order_id);
                        let now = fold.and_then(|f| f.state());
                        // Ended just now: its whole trace is known.
                        if now.is_some_and(OrderState::is_terminal) && was != now {
                            otlp::record(|| otlp::root_span(fold?.applied()));
                        }
                        // Another node started a compensation (a kitchen
                        // out of stock); our own were queued when we made them.
                        if now == Some(OrderState::Cancelling) && was != now {
                            let cause = fold.and_then(|f| {
                                f.applied()
                                    .iter()
                                    .rev()
                                    .find(|e| e.kind == events::kind::ORDER_CANCELLING)
                                    .cloned()
                            });
                            cancelling.extend(cause.filter(|c| c.source != s.node.id()));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not record an event"),
                }
            }
            book.flusher()
        };
        // Flushed without the lock: POST /orders must not wait on a disk
        // sync of events that are not its own.
        if let Err(e) = flusher.flush_async().await {
            // Not acknowledged: the log sends these events again.
            tracing::error!(error = %e, "could not flush the order book; events will come again");
            stream.rewind();
            continue;
        }
        s.book_figures(&*s.book.lock().await);
        let mut queued = true;
        for cause in cancelling {
            let reason = events::decode::<events::OrderCancelling>(&cause)
                .map_or_else(|_| "cancelled".to_string(), |c| c.reason);
            if let Err(e) = request_cancellation(&s, &cause, reason, cause.source.clone()).await {
                queued = false;
                tracing::error!(order_id = %cause.order_id, error = ?e, "could not queue the compensation; it is retried when the event comes again");
            }
        }
        // Acknowledged once the book (and any compensation) is on disk.
        if !queued {
            stream.rewind();
        } else if let Err(e) = stream.ack(batch.through).await {
            tracing::warn!(error = %e, "could not acknowledge events; they come again");
        }
    }
}

/// Puts a cancellation of `cause`'s order on queue `cancellation` (durable
/// in the outbox when this returns). Its event id derives from the cause, so
/// the same cause queues it once.
async fn request_cancellation(
    s: &Service,
    cause: &Envelope,
    reason: String,
    requested_by: String,
) -> Result<(), ApiError> {
    let req = CancellationRequest { reason, requested_by };
    let mut env = events::follow(&req, cause, cause.seq, s.node.id()).map_err(ApiError::internal)?;
    // Any fixed, invertible mapping will do; a v5 hash would need a feature.
    env.event_id =
        uuid::Uuid::from_u128(cause.event_id.as_u128() ^ 0x00ca_9ce1_0000_0000_0000_0000_0000_0000);
    s.node
        .producer()
        .put(CANCELLATION, &env)
        .await
        .map_err(ApiError::internal)
}

/// `DELETE /orders/{id}`: 202 once the cancellation is stored on queue
/// `cancellation`; 404 for an unknown order; 409 once it is delivered or has
/// ended otherwise.
#[utoipa::path(delete, operation_id = "cancel_order", path = "/orders/{id}", tag = "order",
    params(("id" = String, Path, description = "The order id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The cancellation is stored; the saga refunds and recalls", body = CancelAccepted),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`already_delivered` or `already_ended`", body = ErrorBody),
        TokenRefused,
    ))]
async fn cancel(State(s): State<Shared>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (state, last) = {
        let book = s.book.lock().await;
        let fold = book
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("no order {id}")))?;
        (fold.state(), fold.applied().last().cloned())
    };
    let (Some(state), Some(last)) = (state, last) else {
        return Err(ApiError::not_found(format!("no order {id}")));
    };
    match state {
        OrderState::Delivered => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                api::error_code::ALREADY_DELIVERED,
                format!("order {id} was delivered already; it can no longer be cancelled"),
            ))
        }
        s if s.is_terminal() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                api::error_code::ALREADY_ENDED,
                format!("order {id} is {s} already; there is nothing to cancel"),
            ))
        }
        OrderState::Cancelling => {}
        _ => {
            // A fresh event id per request: a second DELETE queues a second
            // cancellation, which finds the order cancelled and does nothing.
            let req = CancellationRequest {
                reason: "cancelled by the customer".into(),
                requested_by: "customer".into(),
            };
            let env = events::follow(&req, &last, last.seq, s.node.id()).map_err(ApiError::internal)?;
            s.node
                .producer()
                .put(CANCELLATION, &env)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    tracing::info!(order_id = %id, trace_id = %last.trace_id, was = %state, "cancellation accepted");
    let body = CancelAccepted {
        order_id: id.clone(),
        status: OrderState::Cancelling.to_string(),
        trace_id: last.trace_id.clone(),
        message: format!("the cancellation of order {id} is queued; follow it with GET /orders/{id}"),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
