//! The delivery service: consumes queue `delivery`, one delivery per free driver.
//!
//! The credit announced to the keeper is the number of drivers, so the keeper
//! never hands this node more tickets than it has drivers; an order with no
//! free driver waits in the queue, where its depth shows it. Each delivery
//! runs in its own task: take a driver, publish `driver.assigned` and the
//! customer notification, drive for the trip time, publish `order.delivered`,
//! free the driver, record the ticket in the inbox, ack.
//!
//! The pure parts (the driver pool, the delivery records behind the HTTP
//! views, the per-delivery decision, the events of a trip) are plain data and
//! functions in [`decide`]; the I/O shell ([`run`]) is here.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use contracts::api::{self, DeliveryView, DriverView, ErrorBody, Recalled};
use contracts::events::DeliveryTicket;
use contracts::queue::{Delivery, DELIVERY};
use contracts::Envelope;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

pub mod decide;

use decide::{
    arrival, decide, departure, now, Decision, Deliveries, DriverPool, RecallRefused, TripState, DELIVERED,
    REMEMBERED,
};

use crate::config::CommonArgs;
use crate::otlp;
use crate::runtime::http::ApiError;
use crate::runtime::worker::{self, Handled};
use crate::runtime::{Node, Outgoing};
use crate::services::openapi::{Bearer, TokenRefused};
use crate::services::range::MsRange;

/// `pizza-node delivery`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address (GET /deliveries/{order_id}, GET /drivers, POST /recall/{order_id}).
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8083")]
    pub http: std::net::SocketAddr,
    /// How many drivers.
    #[arg(long, default_value_t = 3)]
    pub drivers: u32,
    /// Driver names (TOML, `drivers = [...]`); defaults to assets/drivers.toml.
    #[arg(long)]
    pub drivers_file: Option<PathBuf>,
    /// Trip time in ms (a range like 3000..8000, or one value; 0 = instant).
    #[arg(long, default_value = "3000..8000")]
    pub trip_ms: MsRange,
}

// ---------------------------------------------------------------------------
// The I/O shell
// ---------------------------------------------------------------------------

/// Everything behind one lock: small, and never held across an await.
struct Desk {
    pool: DriverPool,
    deliveries: Deliveries,
    /// Tickets being delivered right now, by event id.
    in_progress: HashSet<Uuid>,
    /// Trips under way (or waiting for a driver), by order id.
    trips: HashMap<String, TripState>,
    delivered: u64,
}

/// The running service, shared by the consumer loop, the delivery tasks and
/// the HTTP handlers.
struct Service {
    node: Node,
    trip: MsRange,
    /// One permit per free driver. Credit normally keeps the tickets under
    /// way at or below the driver count, but not always: after a lost session
    /// the keeper re-sends what the old connection held while those trips
    /// still run. Then a ticket waits here for a driver instead of failing.
    drivers: Semaphore,
    desk: Mutex<Desk>,
    /// Wakes trips when a recall comes; each trip checks its own state.
    recalls: tokio::sync::Notify,
}

/// How a trip ended.
enum TripEnd {
    /// Handed over by this driver.
    Delivered(String),
    /// Called off by the order node's cancellation.
    Recalled(Option<String>),
}

impl Service {
    fn desk(&self) -> MutexGuard<'_, Desk> {
        // Every critical section leaves the desk consistent, so a panic in
        // one task must not wedge the others.
        self.desk.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn show_figures(&self, desk: &Desk) {
        self.node.set_figures(|f| {
            let d = &mut f.delivery;
            d.drivers_free = Some(desk.pool.free_count() as u64);
            d.drivers_busy = Some(desk.pool.busy_count() as u64);
            d.delivered = Some(desk.delivered);
            // Who carries what: the control room's Drivers panel.
            d.drivers = Some(desk.pool.views());
        });
    }

    /// One ticket from the queue. The shared worker has already applied the
    /// fault gate and the inbox; it records and acks what this returns.
    async fn handle(&self, d: Delivery) -> Handled {
        let ticket = &d.envelope;
        let decision = {
            let mut desk = self.desk();
            let decision = decide(ticket, desk.in_progress.contains(&ticket.event_id));
            if matches!(decision, Decision::Deliver(_)) {
                // Under the same lock as the check, so a racing redelivery
                // of this ticket sees it.
                desk.in_progress.insert(ticket.event_id);
            }
            decision
        };
        match decision {
            Decision::InProgress => {
                tracing::info!(order_id = %ticket.order_id, trace_id = %ticket.trace_id, node = %self.node.id(), "ticket already on its way here; retry later");
                Handled::Retry("this ticket is being delivered already".into())
            }
            Decision::Reject(reason) => {
                tracing::warn!(order_id = %ticket.order_id, trace_id = %ticket.trace_id, node = %self.node.id(), %reason, "rejected a ticket");
                Handled::Reject(reason)
            }
            Decision::Deliver(body) => {
                let result = self.deliver(ticket, &body).await;
                self.desk().in_progress.remove(&ticket.event_id);
                match result {
                    Ok(TripEnd::Delivered(driver)) => {
                        tracing::info!(order_id = %ticket.order_id, trace_id = %ticket.trace_id, %driver, node = %self.node.id(), attempt = d.attempt, "delivered");
                        Handled::Done
                    }
                    Ok(TripEnd::Recalled(driver)) => {
                        tracing::info!(order_id = %ticket.order_id, trace_id = %ticket.trace_id, ?driver, node = %self.node.id(), "recalled: the order was cancelled");
                        Handled::Done
                    }
                    Err(e) => {
                        tracing::warn!(order_id = %ticket.order_id, trace_id = %ticket.trace_id, node = %self.node.id(), error = %format!("{e:#}"), "delivery failed; the ticket goes back to the queue");
                        Handled::Retry(format!("{e:#}"))
                    }
                }
            }
        }
    }

    /// Whether the trip of `order_id` was recalled.
    fn recalled(&self, order_id: &str) -> bool {
        self.desk().trips.get(order_id).is_some_and(|t| t.recalled)
    }

    /// Resolves when the trip of `order_id` is recalled.
    async fn until_recalled(&self, order_id: &str) {
        loop {
            let woken = self.recalls.notified();
            if self.recalled(order_id) {
                return;
            }
            woken.await;
        }
    }

    /// Takes a driver, makes the trip, frees the driver. A recall ends it
    /// early, whether it waits for a driver or is on the road.
    async fn deliver(&self, ticket: &Envelope, body: &DeliveryTicket) -> anyhow::Result<TripEnd> {
        let order_id = ticket.order_id.as_str();
        self.desk()
            .trips
            .insert(order_id.to_string(), TripState::new(ticket.seq));
        let end = self.drive(ticket, body).await;
        self.desk().trips.remove(order_id);
        end
    }

    async fn drive(&self, ticket: &Envelope, body: &DeliveryTicket) -> anyhow::Result<TripEnd> {
        let order_id = ticket.order_id.as_str();
        let _permit = tokio::select! {
            permit = self.drivers.acquire() => permit.context("the driver pool is closed")?,
            () = self.until_recalled(order_id) => return Ok(TripEnd::Recalled(None)),
        };
        let assignment = {
            let mut desk = self.desk();
            // Under the same lock as a recall: either it came first and no
            // driver leaves, or the driver is recorded before it answers.
            if desk.trips.get(order_id).is_some_and(|t| t.recalled) {
                return Ok(TripEnd::Recalled(None));
            }
            let since = now();
            let a = desk
                .pool
                .take(order_id, &since)
                .context("no free driver although one was counted free")?;
            if let Some(t) = desk.trips.get_mut(order_id) {
                t.driver = Some(a.driver.clone());
            }
            desk.deliveries.assigned(order_id, &a.driver, &since);
            self.show_figures(&desk);
            a
        };
        otlp::record(|| otlp::wait_span("driver wait", ticket, OffsetDateTime::now_utc()));
        let span = otlp::span("trip", otlp::Kind::Internal, order_id);
        otlp::under_order(&span, &ticket.trace_id);
        let trip = self.trip(ticket, body, &assignment.driver).instrument(span).await;
        let mut desk = self.desk();
        desk.pool.free(&assignment);
        match &trip {
            Ok(TripEnd::Delivered(_)) => {
                desk.deliveries.delivered(order_id, &now());
                desk.delivered += 1;
            }
            Ok(TripEnd::Recalled(_)) | Err(_) => desk.deliveries.forget(order_id),
        }
        self.show_figures(&desk);
        trip
    }

    async fn trip(&self, ticket: &Envelope, body: &DeliveryTicket, driver: &str) -> anyhow::Result<TripEnd> {
        let source = self.node.id();
        let [assigned, notified] = departure(ticket, body, driver, source)?;
        // Assigned and notified with one outbox flush.
        self.node
            .send(&[Outgoing::Event(&assigned), Outgoing::Event(&notified)])
            .await?;
        // Injected latency is applied once, by the fault gate before the
        // handling; the trip itself is the --trip-ms sample.
        tokio::select! {
            () = tokio::time::sleep(self.trip.sample()) => {}
            () = self.until_recalled(&ticket.order_id) => {
                return Ok(TripEnd::Recalled(Some(driver.to_string())));
            }
        }
        {
            let mut desk = self.desk();
            match desk.trips.get_mut(&ticket.order_id) {
                Some(t) if t.recalled => return Ok(TripEnd::Recalled(Some(driver.to_string()))),
                Some(t) => t.arrived = true,
                None => {}
            }
        }
        // Delivered and the ticket's inbox record in one write: a kill -9
        // after this cannot send a second driver.
        self.node
            .finish(ticket, &[Outgoing::Event(&arrival(ticket, driver, source)?)])
            .await?;
        Ok(TripEnd::Delivered(driver.to_string()))
    }
}

fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/drivers", get(drivers))
        .route("/deliveries/:order_id", get(delivery))
        .route(
            "/recall/:order_id",
            // Only the order service's cancellations call drivers back.
            post(recall).route_layer(axum::middleware::from_fn_with_state(
                crate::services::tokens::Gate::new(
                    svc.node.link().security(),
                    contracts::trust::role::DELIVERY,
                    contracts::token::scope::RECALL,
                ),
                crate::services::tokens::require,
            )),
        )
        .with_state(svc)
        .merge(crate::services::openapi::route(
            crate::services::openapi::delivery(),
        ))
}

/// The delivery service.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Pizza Platform: delivery service", description = "Drivers take ready orders from queue `delivery`."),
    paths(drivers, delivery, recall, healthz),
    components(schemas(DriverView, DeliveryView, Recalled, ErrorBody, api::ErrorDetail, crate::services::openapi::Health)),
    modifiers(&Bearer),
    tags((name = "delivery", description = "Drivers and deliveries"))
)]
pub struct DeliveryApi;

/// `GET /healthz`: the service answers, with its id and role.
#[utoipa::path(get, operation_id = "delivery_health", path = "/healthz", tag = "delivery",
    responses((status = 200, description = "Up", body = crate::services::openapi::Health)))]
async fn healthz(State(svc): State<Arc<Service>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "id": svc.node.id(), "role": svc.node.role() }))
}

/// `GET /drivers`: every driver and what it does.
#[utoipa::path(get, operation_id = "list_drivers", path = "/drivers", tag = "delivery",
    responses((status = 200, description = "The drivers", body = Vec<DriverView>)))]
async fn drivers(State(svc): State<Arc<Service>>) -> Json<Vec<DriverView>> {
    Json(svc.desk().pool.views())
}

/// `GET /deliveries/{order_id}`: an order's delivery by this node.
#[utoipa::path(get, operation_id = "get_delivery", path = "/deliveries/{order_id}", tag = "delivery",
    params(("order_id" = String, Path, description = "The order id")),
    responses(
        (status = 200, description = "Its driver and state", body = DeliveryView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
async fn delivery(
    State(svc): State<Arc<Service>>,
    Path(order_id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    svc.desk()
        .deliveries
        .view(&order_id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no delivery of order '{order_id}' is known here")))
}

/// `POST /recall/{order_id}`: the order was cancelled. A trip under way here
/// ends without `order.delivered` and its driver comes back; the answer
/// says which seqs the trip used. 404 if this node does not carry the order,
/// 409 if it was delivered already.
#[utoipa::path(post, operation_id = "recall_driver", path = "/recall/{order_id}", tag = "delivery",
    params(("order_id" = String, Path, description = "The order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The trip is called off", body = Recalled),
        (status = 404, description = "`not_found`: not on a trip from this node", body = ErrorBody),
        (status = 409, description = "`already_delivered`", body = ErrorBody),
        TokenRefused,
    ))]
async fn recall(
    State(svc): State<Arc<Service>>,
    Path(order_id): Path<String>,
) -> Result<Json<Recalled>, ApiError> {
    let answer = {
        let mut desk = svc.desk();
        desk.trips
            .get_mut(&order_id)
            .map(|t| t.recall().map(|last_seq| (last_seq, t.driver.clone())))
    };
    match answer {
        Some(Ok((last_seq, driver))) => {
            svc.recalls.notify_waiters();
            tracing::info!(%order_id, ?driver, "recall: the trip is called off");
            Ok(Json(Recalled {
                order_id,
                driver,
                last_seq,
            }))
        }
        Some(Err(RecallRefused::Delivered)) => Err(delivered(&order_id)),
        None => match svc.desk().deliveries.view(&order_id) {
            Some(v) if v.state == DELIVERED => Err(delivered(&order_id)),
            _ => Err(ApiError::not_found(format!(
                "order '{order_id}' is not on a trip from this node"
            ))),
        },
    }
}

fn delivered(order_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        api::error_code::ALREADY_DELIVERED,
        format!("order '{order_id}' was delivered already; it cannot be recalled"),
    )
}

/// Runs the delivery service until SIGTERM/SIGINT or a `stop` command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.drivers == 0 {
        anyhow::bail!("--drivers must be at least 1: with no driver nothing is ever delivered");
    }
    // Read the names and take the port before connecting, so a bad file or
    // a busy port fails fast.
    let names = super::assets::drivers(args.drivers_file.as_deref(), args.drivers as usize)?;
    let listener = crate::runtime::http::listen(args.http).await?;
    let node = crate::runtime::start::start_node(&args.common, contracts::trust::role::DELIVERY).await?;
    crate::runtime::http::announce_http(&node, &listener, &args.common);
    let svc = Arc::new(Service {
        node: node.clone(),
        trip: args.trip_ms,
        drivers: Semaphore::new(names.len()),
        recalls: tokio::sync::Notify::new(),
        desk: Mutex::new(Desk {
            pool: DriverPool::new(names),
            deliveries: Deliveries::new(REMEMBERED),
            in_progress: HashSet::new(),
            trips: HashMap::new(),
            delivered: 0,
        }),
    });
    svc.show_figures(&svc.desk());
    tracing::info!(id = %node.id(), drivers = args.drivers, trip_ms = %args.trip_ms, "delivery service ready");

    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(crate::runtime::http::serve(
        listener,
        router(svc.clone()),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let s = svc.clone();
    worker::run(node.clone(), DELIVERY, args.drivers, move |d| {
        let s = s.clone();
        async move { s.handle(d).await }
    })
    .await
    .context("cannot consume queue delivery")?;
    node.shutdown().await;
    let _ = http_stop.send(());
    http.await.context("the HTTP server task panicked")??;
    tracing::info!("delivery service stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::decide::{ASSIGNED, ON_ITS_WAY};
    use super::*;
    use contracts::api::Customer;
    use contracts::events::{self, CustomerNotified, DriverAssigned, OrderDelivered};

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn ticket_body() -> DeliveryTicket {
        DeliveryTicket {
            kitchen: "kitchen-1".into(),
            customer: Customer {
                name: "Ada".into(),
                address: "1 Loop Lane".into(),
            },
        }
    }

    fn ticket(seq: u64) -> Envelope {
        events::envelope(
            &ticket_body(),
            "o-1",
            seq,
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "kitchen-1",
        )
        .unwrap()
    }

    #[test]
    fn the_pool_hands_out_free_drivers_until_none_is_left() {
        let mut pool = DriverPool::new(names(&["Ada", "Brian"]));
        assert_eq!((pool.free_count(), pool.busy_count()), (2, 0));
        let a = pool.take("o-1", "t1").unwrap();
        let b = pool.take("o-2", "t2").unwrap();
        assert_eq!((a.driver.as_str(), b.driver.as_str()), ("Ada", "Brian"));
        assert_eq!(pool.take("o-3", "t3"), None, "every driver is out");
        assert_eq!((pool.free_count(), pool.busy_count()), (0, 2));
        assert!(pool.free(&a));
        assert!(!pool.free(&a), "freeing twice is refused");
        assert_eq!((pool.free_count(), pool.busy_count()), (1, 1));
        assert_eq!(pool.take("o-3", "t3").unwrap().driver, "Ada");
    }

    #[test]
    fn the_driver_idle_longest_goes_next() {
        let mut pool = DriverPool::new(names(&["Ada", "Brian", "Chiara"]));
        let a = pool.take("o-1", "t").unwrap();
        assert!(pool.free(&a));
        // Ada just came back: Brian and Chiara have waited longer.
        assert_eq!(pool.take("o-2", "t").unwrap().driver, "Brian");
        assert_eq!(pool.take("o-3", "t").unwrap().driver, "Chiara");
        assert_eq!(pool.take("o-4", "t").unwrap().driver, "Ada");
    }

    #[test]
    fn drivers_with_the_same_name_are_told_apart() {
        let mut pool = DriverPool::new(names(&["Sam", "Sam"]));
        let first = pool.take("o-1", "t").unwrap();
        let second = pool.take("o-2", "t").unwrap();
        assert!(pool.free(&second));
        let views = pool.views();
        assert_eq!(views[0].order_id.as_deref(), Some("o-1"));
        assert_eq!(views[1].order_id, None);
        assert!(pool.free(&first));
    }

    #[test]
    fn the_pool_lists_who_carries_what_since_when() {
        let mut pool = DriverPool::new(names(&["Ada", "Brian"]));
        pool.take("o-1", "2025-01-01T12:00:00Z").unwrap();
        assert_eq!(
            pool.views(),
            vec![
                DriverView {
                    driver: "Ada".into(),
                    order_id: Some("o-1".into()),
                    since: Some("2025-01-01T12:00:00Z".into()),
                },
                DriverView {
                    driver: "Brian".into(),
                    order_id: None,
                    since: None,
                },
            ]
        );
    }

    #[test]
    fn a_delivery_goes_from_assigned_to_delivered() {
        let mut d = Deliveries::new(10);
        assert_eq!(d.view("o-1"), None);
        d.assigned("o-1", "Ada", "t1");
        let v = d.view("o-1").unwrap();
        assert_eq!((v.state.as_str(), v.driver.as_str()), (ASSIGNED, "Ada"));
        assert_eq!(v.delivered_at, None);
        d.delivered("o-1", "t2");
        let v = d.view("o-1").unwrap();
        assert_eq!(v.state, DELIVERED);
        assert_eq!(
            (v.assigned_at.as_str(), v.delivered_at.as_deref()),
            ("t1", Some("t2"))
        );
        // A redelivered ticket starts the record again.
        d.assigned("o-1", "Brian", "t3");
        assert_eq!(d.view("o-1").unwrap().state, ASSIGNED);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn deliveries_forget_the_oldest_past_their_cap_and_failed_trips() {
        let mut d = Deliveries::new(2);
        d.assigned("o-1", "Ada", "t");
        d.assigned("o-2", "Ada", "t");
        d.assigned("o-3", "Ada", "t");
        assert_eq!(d.len(), 2);
        assert!(d.view("o-1").is_none());
        d.forget("o-2");
        assert!(d.view("o-2").is_none());
        // o-2 was forgotten: re-adding it must not be evicted by its stale entry.
        d.assigned("o-4", "Ada", "t");
        d.assigned("o-2", "Ada", "t");
        assert!(d.view("o-2").is_some());
        assert!(d.view("o-4").is_some());
        assert!(d.view("o-3").is_none());
    }

    #[test]
    fn a_good_ticket_is_delivered() {
        assert_eq!(decide(&ticket(5), false), Decision::Deliver(ticket_body()));
    }

    #[test]
    fn a_ticket_under_way_here_is_not_started_twice() {
        assert_eq!(decide(&ticket(5), true), Decision::InProgress);
    }

    #[test]
    fn tickets_that_cannot_be_delivered_are_rejected_with_a_reason() {
        let mut bad = ticket(5);
        bad.payload = serde_json::json!({"kitchen": "k"});
        let Decision::Reject(reason) = decide(&bad, false) else {
            panic!("a ticket without a customer is rejected");
        };
        assert!(reason.contains("customer"), "{reason}");

        let mut wrong = ticket(5);
        wrong.kind = "order.ready".into();
        let Decision::Reject(reason) = decide(&wrong, false) else {
            panic!("a ticket of another kind is rejected");
        };
        assert!(reason.contains("expected event delivery.ticket"), "{reason}");

        assert!(matches!(
            decide(&ticket(u64::MAX - 1), false),
            Decision::Reject(_)
        ));

        let mut huge = ticket(5);
        huge.payload["customer"]["name"] = serde_json::json!("x".repeat(200_000));
        let Decision::Reject(reason) = decide(&huge, false) else {
            panic!("a 200,000-character name is rejected");
        };
        assert!(reason.contains("customer.name"), "{reason}");
    }

    #[test]
    fn a_recall_before_departure_uses_no_seq_after_it_the_departures_and_never_after_arrival() {
        let mut waiting = TripState::new(5);
        assert_eq!(waiting.recall(), Ok(5));
        assert!(waiting.recalled);
        let mut driving = TripState::new(5);
        driving.driver = Some("Ada".into());
        assert_eq!(driving.recall(), Ok(7));
        let mut arrived = driving.clone();
        arrived.recalled = false;
        arrived.arrived = true;
        assert_eq!(arrived.recall(), Err(RecallRefused::Delivered));
        assert!(!arrived.recalled);
    }

    #[test]
    fn a_trip_publishes_three_events_caused_by_the_ticket() {
        let t = ticket(5);
        let [assigned, notified] = departure(&t, &ticket_body(), "Ada", "delivery-1").unwrap();
        let delivered = arrival(&t, "Ada", "delivery-1").unwrap();
        for (e, kind, seq) in [
            (&assigned, "driver.assigned", 6),
            (&notified, "customer.notified", 7),
            (&delivered, "order.delivered", 8),
        ] {
            assert_eq!((e.kind.as_str(), e.seq), (kind, seq));
            assert_eq!(e.order_id, t.order_id);
            assert_eq!(e.trace_id, t.trace_id);
            assert_eq!(e.causation_id, Some(t.event_id));
            assert_eq!(e.source, "delivery-1");
        }
        let a: DriverAssigned = events::decode(&assigned).unwrap();
        assert_eq!(
            (a.driver.as_str(), a.kitchen.as_deref()),
            ("Ada", Some("kitchen-1"))
        );
        let n: CustomerNotified = events::decode(&notified).unwrap();
        assert_eq!(n.message, ON_ITS_WAY);
        let d: OrderDelivered = events::decode(&delivered).unwrap();
        assert_eq!(d.driver, "Ada");
    }
}
