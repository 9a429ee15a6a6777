//! Delivery's pure parts: the driver pool, the delivery records behind the
//! HTTP views, the per-delivery decision and the events of a trip. Plain
//! data and functions; the service in `mod.rs` is their I/O shell.

use std::collections::{HashMap, VecDeque};

use contracts::api::{DeliveryView, DriverView};
use contracts::events::{self, CustomerNotified, DeliveryTicket, DriverAssigned, OrderDelivered};
use contracts::Envelope;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the customer is told when the driver sets off.
pub const ON_ITS_WAY: &str = "Your pizza is on its way!";

/// `state` of a delivery whose driver is on the way.
pub const ASSIGNED: &str = "assigned";

/// `state` of a delivery that reached the customer.
pub const DELIVERED: &str = "delivered";

/// How many events one ticket causes (assigned, notified, delivered): they
/// take the ticket's seq + 1 ..= seq + 3.
const EVENTS_PER_TRIP: u64 = 3;

/// Most deliveries remembered for `GET /deliveries/{order_id}`, so that a
/// long-running node does not grow without bound.
pub(super) const REMEMBERED: usize = 10_000;

/// Now, RFC 3339.
pub(super) fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The driver pool
// ---------------------------------------------------------------------------

/// One driver and the order they carry, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    name: String,
    trip: Option<Trip>,
    /// When the driver last became free, on the pool's own clock: the
    /// driver idle longest goes next, so the work is shared out.
    idle_since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Trip {
    order_id: String,
    since: String,
}

/// A driver handed out by [`DriverPool::take`]; give it back to
/// [`DriverPool::free`]. It names the slot rather than only the driver, so
/// that two drivers with the same name (a drivers file may repeat one) are
/// still told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    slot: usize,
    /// The driver's name.
    pub driver: String,
}

/// The drivers of one delivery node, free or on a trip.
#[derive(Debug, Clone, Default)]
pub struct DriverPool {
    slots: Vec<Slot>,
    clock: u64,
}

impl DriverPool {
    /// A pool of free drivers, taken first in the order given.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let slots: Vec<Slot> = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| Slot {
                name,
                trip: None,
                idle_since: i as u64,
            })
            .collect();
        let clock = slots.len() as u64;
        DriverPool { slots, clock }
    }

    /// Sends the driver idle longest on a trip with `order_id`, starting at
    /// `since`; `None` when every driver is out.
    pub fn take(&mut self, order_id: &str, since: &str) -> Option<Assignment> {
        let slot = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.trip.is_none())
            .min_by_key(|(_, s)| s.idle_since)
            .map(|(i, _)| i)?;
        let s = self.slots.get_mut(slot)?;
        s.trip = Some(Trip {
            order_id: order_id.to_string(),
            since: since.to_string(),
        });
        Some(Assignment {
            slot,
            driver: s.name.clone(),
        })
    }

    /// Brings the driver of `a` back. Returns false if they were not out.
    pub fn free(&mut self, a: &Assignment) -> bool {
        let Some(s) = self.slots.get_mut(a.slot) else {
            return false;
        };
        if s.trip.take().is_none() {
            return false;
        }
        s.idle_since = self.clock;
        self.clock += 1;
        true
    }

    /// How many drivers wait for an order.
    pub fn free_count(&self) -> usize {
        self.slots.iter().filter(|s| s.trip.is_none()).count()
    }

    /// How many drivers are on a trip.
    pub fn busy_count(&self) -> usize {
        self.slots.len() - self.free_count()
    }

    /// Every driver, in pool order, as `GET /drivers` shows them.
    pub fn views(&self) -> Vec<DriverView> {
        self.slots
            .iter()
            .map(|s| DriverView {
                driver: s.name.clone(),
                order_id: s.trip.as_ref().map(|t| t.order_id.clone()),
                since: s.trip.as_ref().map(|t| t.since.clone()),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Delivery records (for GET /deliveries/{order_id})
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    driver: String,
    assigned_at: String,
    delivered_at: Option<String>,
}

/// The deliveries this node made or is making, newest [`REMEMBERED`] kept.
/// In memory only: after a restart, the order node's event-sourced view is
/// the place to ask.
#[derive(Debug, Clone)]
pub struct Deliveries {
    by_order: HashMap<String, Record>,
    /// Order ids, oldest first, to forget the oldest past `cap`.
    arrival: VecDeque<String>,
    cap: usize,
}

impl Deliveries {
    /// Remembers at most `cap` deliveries (at least one).
    pub fn new(cap: usize) -> Self {
        Deliveries {
            by_order: HashMap::new(),
            arrival: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// `driver` took `order_id` at `at`. A later assignment of the same order
    /// (a redelivered ticket) replaces the earlier one.
    pub fn assigned(&mut self, order_id: &str, driver: &str, at: &str) {
        let record = Record {
            driver: driver.to_string(),
            assigned_at: at.to_string(),
            delivered_at: None,
        };
        if self.by_order.insert(order_id.to_string(), record).is_none() {
            self.arrival.push_back(order_id.to_string());
        }
        while self.by_order.len() > self.cap {
            let Some(oldest) = self.arrival.pop_front() else {
                break;
            };
            self.by_order.remove(&oldest);
        }
    }

    /// `order_id` reached the customer at `at`.
    pub fn delivered(&mut self, order_id: &str, at: &str) {
        if let Some(r) = self.by_order.get_mut(order_id) {
            r.delivered_at = Some(at.to_string());
        }
    }

    /// Forgets an assignment whose trip failed: the driver is back, and the
    /// ticket goes back to the queue to be tried again.
    pub fn forget(&mut self, order_id: &str) {
        if self.by_order.remove(order_id).is_some() {
            self.arrival.retain(|o| o != order_id);
        }
    }

    /// The view of `order_id`, if this node remembers it.
    pub fn view(&self, order_id: &str) -> Option<DeliveryView> {
        self.by_order.get(order_id).map(|r| DeliveryView {
            order_id: order_id.to_string(),
            driver: r.driver.clone(),
            state: if r.delivered_at.is_some() {
                DELIVERED
            } else {
                ASSIGNED
            }
            .to_string(),
            assigned_at: r.assigned_at.clone(),
            delivered_at: r.delivered_at.clone(),
        })
    }

    /// How many deliveries are remembered.
    pub fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Recalling a driver
// ---------------------------------------------------------------------------

/// Where one ticket's trip is, as far as a recall cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TripState {
    /// The ticket's seq; the trip's events follow it.
    pub ticket_seq: u64,
    /// The driver who set off, once one has (`driver.assigned` is out).
    pub driver: Option<String>,
    /// The pizza was handed over: too late to recall.
    pub arrived: bool,
    /// A recall came: the trip ends without `order.delivered`.
    pub recalled: bool,
}

/// Why a recall cannot be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecallRefused {
    /// The customer has the pizza.
    Delivered,
}

impl TripState {
    /// A trip about to wait for a driver.
    pub fn new(ticket_seq: u64) -> Self {
        TripState {
            ticket_seq,
            driver: None,
            arrived: false,
            recalled: false,
        }
    }

    /// Calls the trip off; the highest seq its events use (the ticket's, if
    /// no driver set off; else the departure's, `ticket + 2`).
    pub fn recall(&mut self) -> Result<u64, RecallRefused> {
        if self.arrived {
            return Err(RecallRefused::Delivered);
        }
        self.recalled = true;
        Ok(if self.driver.is_some() {
            self.ticket_seq + 2
        } else {
            self.ticket_seq
        })
    }
}

// ---------------------------------------------------------------------------
// The per-delivery decision and the events of a trip
// ---------------------------------------------------------------------------

/// What to do with one delivered ticket (after the fault gate let it through).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// This node is delivering the same ticket right now (the keeper sent it
    /// again, e.g. after our session was lost): try again later, when the
    /// inbox will know it.
    InProgress,
    /// Can never be delivered: dead-letter it with this reason.
    Reject(String),
    /// Deliver it.
    Deliver(DeliveryTicket),
}

/// Decides what to do with `ticket`, given whether a delivery of it is
/// `in_progress` on this node. (The shared worker has already skipped
/// tickets the inbox has seen.)
pub fn decide(ticket: &Envelope, in_progress: bool) -> Decision {
    if in_progress {
        return Decision::InProgress;
    }
    if ticket.seq > u64::MAX - EVENTS_PER_TRIP {
        return Decision::Reject(format!(
            "seq {} leaves no room for the events of the trip",
            ticket.seq
        ));
    }
    match events::decode::<DeliveryTicket>(ticket) {
        Ok(t) => {
            let checked = contracts::api::check_text("customer.name", &t.customer.name)
                .and_then(|()| contracts::api::check_text("customer.address", &t.customer.address))
                .and_then(|()| contracts::api::check_text("kitchen", &t.kitchen));
            match checked {
                Ok(()) => Decision::Deliver(t),
                Err(e) => {
                    Decision::Reject(format!("not a ticket a driver takes: {}: {}", e.field, e.message))
                }
            }
        }
        Err(e) => Decision::Reject(e.to_string()),
    }
}

/// An event caused by `ticket`: same order and trace, `n` after its seq.
fn caused<E: events::Event>(
    event: &E,
    ticket: &Envelope,
    n: u64,
    source: &str,
) -> Result<Envelope, serde_json::Error> {
    events::follow(event, ticket, ticket.seq.saturating_add(n), source)
}

/// The events published when `driver` sets off with `ticket`:
/// `driver.assigned` (seq + 1), then `customer.notified` (seq + 2).
pub fn departure(
    ticket: &Envelope,
    body: &DeliveryTicket,
    driver: &str,
    source: &str,
) -> Result<[Envelope; 2], serde_json::Error> {
    let assigned = DriverAssigned {
        driver: driver.to_string(),
        kitchen: Some(body.kitchen.clone()),
    };
    let notified = CustomerNotified {
        message: ON_ITS_WAY.to_string(),
    };
    Ok([
        caused(&assigned, ticket, 1, source)?,
        caused(&notified, ticket, 2, source)?,
    ])
}

/// The event published when `driver` hands the pizza over: `order.delivered`
/// (seq + 3).
pub fn arrival(ticket: &Envelope, driver: &str, source: &str) -> Result<Envelope, serde_json::Error> {
    let delivered = OrderDelivered {
        driver: driver.to_string(),
    };
    caused(&delivered, ticket, 3, source)
}
