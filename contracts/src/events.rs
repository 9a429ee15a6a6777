//! Domain events: one payload type per event kind.
//!
//! An event travels as an [`Envelope`] whose `kind` names the event (see
//! [`kind`]) and whose `payload` is the JSON of the matching type below. The
//! [`Event`] trait ties each payload type to its kind, so that producers never
//! spell a kind by hand:
//!
//! ```
//! use contracts::events::{self, OrderPaid};
//!
//! let paid = OrderPaid { payment_id: "pay-1".into(), amount_cents: 1250 };
//! let env = events::envelope(&paid, "o-1", 2, "4bf92f3577b34da6a3ce929d0e0e4736", "order-1")?;
//! assert_eq!(env.kind, "order.paid");
//!
//! // ... and consumers never decode a payload as the wrong type:
//! let back: OrderPaid = events::decode(&env)?;
//! assert_eq!(back, paid);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Payloads are *input* to every consumer, so they reject unknown fields: a
//! producer that drifts from the contract fails loudly at the first consumer
//! instead of having its extra data silently ignored.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Customer, Item};
use crate::Envelope;

/// The event kinds, as they appear in [`Envelope::kind`] and in the topic
/// `pizza/events/<kind>`.
pub mod kind {
    /// A customer placed an order (the order node accepted `POST /orders`).
    pub const ORDER_PLACED: &str = "order.placed";
    /// Payment took the money.
    pub const ORDER_PAID: &str = "order.paid";
    /// Payment declined; the order ends here.
    pub const ORDER_REJECTED: &str = "order.rejected";
    /// The kitchen ticket is stored durably on the `kitchen` queue.
    pub const ORDER_QUEUED: &str = "order.queued";
    /// A kitchen started cooking.
    pub const ORDER_COOKING: &str = "order.cooking";
    /// The kitchen finished; the order waits for a driver.
    pub const ORDER_READY: &str = "order.ready";
    /// A driver took the order and is on the way.
    pub const DRIVER_ASSIGNED: &str = "driver.assigned";
    /// The customer has the pizza.
    pub const ORDER_DELIVERED: &str = "order.delivered";
    /// Compensation started (e.g. out of stock): refund, then cancel.
    pub const ORDER_CANCELLING: &str = "order.cancelling";
    /// Compensation finished; the order ends here.
    pub const ORDER_CANCELLED: &str = "order.cancelled";
    /// The order cannot be completed nor compensated automatically.
    pub const ORDER_FAILED: &str = "order.failed";
    /// Payment gave the money back.
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    /// The customer was told something ("Your pizza is on its way!").
    pub const CUSTOMER_NOTIFIED: &str = "customer.notified";
    /// The keeper moved a message to a dead-letter queue (an alert).
    pub const QUEUE_DEAD_LETTERED: &str = "queue.dead_lettered";
    /// The work item on the `kitchen` queue.
    pub const KITCHEN_TICKET: &str = "kitchen.ticket";
    /// The work item on the `delivery` queue.
    pub const DELIVERY_TICKET: &str = "delivery.ticket";
    /// The work item on the `cancellation` queue.
    pub const CANCELLATION_REQUEST: &str = "cancellation.request";
    /// One step of a cancellation finished (done, skipped or failed).
    pub const SAGA_STEP: &str = "saga.step";
    /// The broker refused forged or unpermitted messages (an alert).
    pub const SECURITY_REFUSED: &str = "security.refused";

    /// Every kind above, in the order an order usually meets them.
    pub const ALL: &[&str] = &[
        ORDER_PLACED,
        ORDER_PAID,
        ORDER_REJECTED,
        ORDER_QUEUED,
        ORDER_COOKING,
        ORDER_READY,
        DRIVER_ASSIGNED,
        ORDER_DELIVERED,
        ORDER_CANCELLING,
        ORDER_CANCELLED,
        ORDER_FAILED,
        PAYMENT_REFUNDED,
        CUSTOMER_NOTIFIED,
        QUEUE_DEAD_LETTERED,
        KITCHEN_TICKET,
        DELIVERY_TICKET,
        CANCELLATION_REQUEST,
        SAGA_STEP,
        SECURITY_REFUSED,
    ];

    /// Whether `kind` is one of [`ALL`].
    pub fn is_known(kind: &str) -> bool {
        ALL.contains(&kind)
    }
}

/// A payload type and the event kind it travels under.
///
/// Implemented by every payload in this module; the kind is a constant of the
/// type rather than a field, so a payload can never claim the wrong kind.
pub trait Event: Serialize + DeserializeOwned {
    /// The [`kind`] this payload is sent as.
    const KIND: &'static str;
}

/// Wraps `event` in a fresh [`Envelope`] of kind `E::KIND`.
///
/// Serialising these payloads cannot fail in practice (they hold only strings,
/// numbers and lists), but the error is returned rather than unwrapped so that
/// a future payload with, say, a non-string map key fails at the producer
/// instead of panicking it.
pub fn envelope<E: Event>(
    event: &E,
    order_id: impl Into<String>,
    seq: u64,
    trace_id: impl Into<String>,
    source: impl Into<String>,
) -> Result<Envelope, serde_json::Error> {
    let payload = serde_json::to_value(event)?;
    Ok(Envelope::new(E::KIND, order_id, seq, trace_id, source, payload))
}

/// An event that follows from `cause`: same order, same trace, caused by it,
/// numbered `seq` and sent by `source`. Its event id derives from the cause,
/// the kind and the seq ([`Envelope::derived_id`]), so taking the same step
/// twice yields the same event, stored once.
pub fn follow<E: Event>(
    event: &E,
    cause: &Envelope,
    seq: u64,
    source: impl Into<String>,
) -> Result<Envelope, serde_json::Error> {
    let mut env =
        envelope(event, cause.order_id.clone(), seq, cause.trace_id.clone(), source)?.caused_by(cause);
    env.event_id = Envelope::derived_id(cause.event_id, E::KIND, seq);
    Ok(env)
}

/// Decodes the payload of `env` as `E`, checking first that `env` is of kind
/// `E::KIND`.
///
/// The kind check matters because several payloads share a shape (e.g.
/// [`OrderCancelled`] and [`OrderFailed`] are both `{reason}`): decoding by
/// shape alone would accept the wrong event.
pub fn decode<E: Event>(env: &Envelope) -> Result<E, DecodeError> {
    if env.kind != E::KIND {
        return Err(DecodeError::WrongKind {
            expected: E::KIND,
            found: env.kind.clone(),
        });
    }
    env.payload_as().map_err(|source| DecodeError::Payload {
        kind: E::KIND,
        source,
    })
}

/// Why [`decode`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The envelope carries another kind of event.
    #[error("expected event {expected}, got {found}")]
    WrongKind {
        /// The kind asked for.
        expected: &'static str,
        /// The kind the envelope carries.
        found: String,
    },
    /// The kind matched but the payload does not fit its type.
    #[error("malformed {kind} payload: {source}")]
    Payload {
        /// The kind whose payload was malformed.
        kind: &'static str,
        /// What serde found wrong.
        source: serde_json::Error,
    },
}

/// A one-line account of what `env` says beyond its kind, for histories and
/// timelines: the reason of a cancellation, a saga step's outcome, the
/// kitchen or driver. `None` when the kind says it all or the payload does
/// not decode, and for the kitchen's events, whose source is the kitchen.
pub fn summary(env: &Envelope) -> Option<String> {
    use kind::*;
    match env.kind.as_str() {
        ORDER_PAID => decode::<OrderPaid>(env).ok().map(|p| p.payment_id),
        ORDER_REJECTED => decode::<OrderRejected>(env).ok().map(|p| p.reason),
        DRIVER_ASSIGNED => decode::<DriverAssigned>(env).ok().map(|p| p.driver),
        ORDER_DELIVERED => decode::<OrderDelivered>(env).ok().map(|p| p.driver),
        ORDER_CANCELLING => decode::<OrderCancelling>(env).ok().map(|p| p.reason),
        ORDER_CANCELLED => decode::<OrderCancelled>(env).ok().map(|p| p.reason),
        ORDER_FAILED => decode::<OrderFailed>(env).ok().map(|p| p.reason),
        PAYMENT_REFUNDED => decode::<PaymentRefunded>(env).ok().map(|p| p.payment_id),
        CUSTOMER_NOTIFIED => decode::<CustomerNotified>(env).ok().map(|p| p.message),
        QUEUE_DEAD_LETTERED => decode::<QueueDeadLettered>(env)
            .ok()
            .map(|p| format!("{}: {}", p.queue, p.reason)),
        SECURITY_REFUSED => decode::<SecurityRefused>(env)
            .ok()
            .map(|p| format!("{} × {}: {}", p.count, p.what, p.reason)),
        SAGA_STEP => decode::<SagaStep>(env).ok().map(|p| {
            let outcome = match p.outcome {
                StepOutcome::Done => "done",
                StepOutcome::Skipped => "skipped",
                StepOutcome::Failed => "failed",
            };
            format!("{} {outcome}: {}", p.step, p.detail)
        }),
        _ => None,
    }
}

/// Implements [`Event`] for a payload type. A macro, so that the table of
/// `type => kind` pairs reads as one list and no pair can be forgotten halfway.
macro_rules! events {
    ($($ty:ident => $kind:ident),* $(,)?) => {
        $(impl Event for $ty {
            const KIND: &'static str = kind::$kind;
        })*

        /// Every kind with its payload's JSON Schema (a reference into
        /// `generator`'s definitions), for the AsyncAPI document.
        pub fn payload_schemas(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<(&'static str, serde_json::Value)> {
            vec![$((kind::$kind, generator.subschema_for::<$ty>().to_value())),*]
        }
    };
}

events! {
    OrderPlaced => ORDER_PLACED,
    OrderPaid => ORDER_PAID,
    OrderRejected => ORDER_REJECTED,
    OrderQueued => ORDER_QUEUED,
    OrderCooking => ORDER_COOKING,
    OrderReady => ORDER_READY,
    DriverAssigned => DRIVER_ASSIGNED,
    OrderDelivered => ORDER_DELIVERED,
    OrderCancelling => ORDER_CANCELLING,
    OrderCancelled => ORDER_CANCELLED,
    OrderFailed => ORDER_FAILED,
    PaymentRefunded => PAYMENT_REFUNDED,
    CustomerNotified => CUSTOMER_NOTIFIED,
    QueueDeadLettered => QUEUE_DEAD_LETTERED,
    KitchenTicket => KITCHEN_TICKET,
    DeliveryTicket => DELIVERY_TICKET,
    CancellationRequest => CANCELLATION_REQUEST,
    SagaStep => SAGA_STEP,
    SecurityRefused => SECURITY_REFUSED,
}

/// `order.placed`: the order as the customer placed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaced {
    /// Who ordered, and where to deliver.
    pub customer: Customer,
    /// What was ordered.
    pub items: Vec<Item>,
    /// Total price, in cents (integer: money is never a float).
    pub amount_cents: u64,
}

/// `order.paid`: payment took the money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPaid {
    /// Payment's id for the charge; a refund names it.
    pub payment_id: String,
    /// Amount charged, in cents.
    pub amount_cents: u64,
}

/// `order.rejected`: payment declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRejected {
    /// Why, as payment said it (e.g. "card declined").
    pub reason: String,
}

/// `order.queued`: the kitchen ticket is stored durably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderQueued {
    /// The queue holding the ticket (normally [`crate::queue::KITCHEN`]).
    pub queue: String,
}

/// `order.cooking`: a kitchen started cooking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCooking {
    /// Node id of the kitchen.
    pub kitchen: String,
}

/// `order.ready`: the kitchen finished cooking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderReady {
    /// Node id of the kitchen.
    pub kitchen: String,
}

/// `driver.assigned`: a driver took the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverAssigned {
    /// The driver's name.
    pub driver: String,
    /// The kitchen the driver picks up from, when delivery knows it.
    pub kitchen: Option<String>,
}

/// `order.delivered`: the customer has the pizza.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderDelivered {
    /// The driver who delivered it.
    pub driver: String,
}

/// `order.cancelling`: compensation started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelling {
    /// Why (e.g. "out of stock: mozzarella").
    pub reason: String,
}

/// `order.cancelled`: compensation finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// Why the order was cancelled.
    pub reason: String,
}

/// `order.failed`: the order can be neither completed nor compensated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderFailed {
    /// What went wrong; an operator reads this.
    pub reason: String,
}

/// `payment.refunded`: payment gave the money back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRefunded {
    /// The charge that was refunded.
    pub payment_id: String,
}

/// `customer.notified`: the customer was told something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerNotified {
    /// What the customer was told.
    pub message: String,
}

/// `cancellation.request`: the work item on queue `cancellation`, for the
/// order node's cancellation executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancellationRequest {
    /// Why the order is cancelled, e.g. "cancelled by the customer".
    pub reason: String,
    /// Who asked: `customer`, or the node that could not go on.
    pub requested_by: String,
}

/// The steps of a cancellation, in the order the executor runs them.
pub mod step {
    /// Take the kitchen ticket off its queue if no kitchen has started it.
    pub const WITHDRAW_TICKET: &str = "withdraw_ticket";
    /// Stop the order reaching a driver, and call back a driver carrying it.
    pub const RECALL_DRIVER: &str = "recall_driver";
    /// Give the money back (`POST /refund` on payment).
    pub const REFUND: &str = "refund";
    /// Tell the customer.
    pub const NOTIFY_CUSTOMER: &str = "notify_customer";
    /// Every step, in order.
    pub const ALL: &[&str] = &[WITHDRAW_TICKET, RECALL_DRIVER, REFUND, NOTIFY_CUSTOMER];
}

/// How a saga step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It had its effect.
    Done,
    /// Nothing to do (e.g. no driver was assigned).
    Skipped,
    /// It failed every attempt: the cancellation goes to the DLQ.
    Failed,
}

/// `saga.step`: one step of a cancellation, as the executor finished it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SagaStep {
    /// One of [`step`].
    pub step: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// What happened, for a human.
    pub detail: String,
    /// Attempts made.
    pub attempts: u32,
}

/// `queue.dead_lettered`: the keeper gave up on a queue message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueDeadLettered {
    /// The queue the message came from.
    pub queue: String,
    /// Why it was dead-lettered (the consumer's reject reason, or "max attempts").
    pub reason: String,
    /// The dead message's event id, when it was a well-formed envelope.
    pub event_id: Option<Uuid>,
    /// The dead message's order, when it was a well-formed envelope.
    pub order_id: Option<String>,
    /// How many deliveries were tried.
    pub attempts: u32,
}

/// `security.refused`: the broker refused messages that were unsigned,
/// forged, or outside their sender's role. Alike refusals within one stats
/// interval are one alert, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityRefused {
    /// What was refused: `event`, `put`, `credit`, `ack`, `heartbeat` ...
    pub what: String,
    /// Who it claimed to be from (empty when it named no one).
    pub sender: String,
    /// Why, e.g. `'kitchen-1' (role kitchen) may not publish order.delivered`.
    pub reason: String,
    /// The topic it came on.
    pub topic: String,
    /// How many alike were refused since the last alert.
    pub count: u64,
}

/// `kitchen.ticket`: the work item a kitchen takes from the `kitchen` queue.
///
/// It carries everything the kitchen needs, so that cooking does not depend
/// on the order node being up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KitchenTicket {
    /// What to cook.
    pub items: Vec<Item>,
    /// Who it is for (printed on the box).
    pub customer: Customer,
}

/// `delivery.ticket`: the work item a driver takes from the `delivery` queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTicket {
    /// Where to pick the order up.
    pub kitchen: String,
    /// Where to take it.
    pub customer: Customer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn customer() -> Customer {
        Customer {
            name: "Ada".into(),
            address: "1 Loop Lane".into(),
        }
    }

    fn items() -> Vec<Item> {
        vec![Item {
            pizza: "margherita".into(),
            qty: 2,
        }]
    }

    /// The kinds every payload type claims, in the order of [`kind::ALL`].
    fn payload_kinds() -> Vec<&'static str> {
        vec![
            OrderPlaced::KIND,
            OrderPaid::KIND,
            OrderRejected::KIND,
            OrderQueued::KIND,
            OrderCooking::KIND,
            OrderReady::KIND,
            DriverAssigned::KIND,
            OrderDelivered::KIND,
            OrderCancelling::KIND,
            OrderCancelled::KIND,
            OrderFailed::KIND,
            PaymentRefunded::KIND,
            CustomerNotified::KIND,
            QueueDeadLettered::KIND,
            KitchenTicket::KIND,
            DeliveryTicket::KIND,
            CancellationRequest::KIND,
            SagaStep::KIND,
            SecurityRefused::KIND,
        ]
    }

    #[test]
    fn a_follow_up_keeps_the_order_and_trace_and_names_its_cause() {
        let cause = envelope(&OrderRejected { reason: "x".into() }, "o1", 3, "t1", "order").unwrap();
        let next = follow(&OrderCancelled { reason: "y".into() }, &cause, 4, "kitchen-1").unwrap();
        assert_eq!(
            (next.order_id.as_str(), next.trace_id.as_str(), next.seq),
            ("o1", "t1", 4)
        );
        assert_eq!(
            (next.causation_id, next.source.as_str()),
            (Some(cause.event_id), "kitchen-1")
        );
        assert_eq!(next.kind, kind::ORDER_CANCELLED);
    }

    #[test]
    fn every_kind_has_exactly_one_payload_type() {
        assert_eq!(payload_kinds(), kind::ALL);
        let mut unique = kind::ALL.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), kind::ALL.len(), "a kind is listed twice");
    }

    #[test]
    fn kinds_are_dotted_snake_case() {
        for k in kind::ALL {
            let (noun, verb) = k.split_once('.').expect("noun.verb");
            for part in [noun, verb] {
                assert!(!part.is_empty(), "{k}");
                assert!(part.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{k}");
            }
        }
    }

    #[test]
    fn envelope_stamps_kind_and_metadata() {
        let e = envelope(
            &OrderCooking {
                kitchen: "kitchen-1".into(),
            },
            "o-1",
            4,
            "t",
            "kitchen-1",
        )
        .unwrap();
        assert_eq!(e.kind, "order.cooking");
        assert_eq!(e.order_id, "o-1");
        assert_eq!(e.seq, 4);
        assert_eq!(e.source, "kitchen-1");
        assert_eq!(e.payload, json!({"kitchen": "kitchen-1"}));
    }

    #[test]
    fn decode_round_trips_every_payload() {
        fn check<E: Event + PartialEq + std::fmt::Debug>(event: E) {
            let env = envelope(&event, "o-1", 1, "t", "s").unwrap();
            // Through text too, as it travels.
            let text = serde_json::to_string(&env).unwrap();
            let env: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(decode::<E>(&env).unwrap(), event);
        }
        check(OrderPlaced {
            customer: customer(),
            items: items(),
            amount_cents: 2400,
        });
        check(OrderPaid {
            payment_id: "p".into(),
            amount_cents: 2400,
        });
        check(OrderRejected { reason: "r".into() });
        check(OrderQueued {
            queue: "kitchen".into(),
        });
        check(OrderCooking { kitchen: "k".into() });
        check(OrderReady { kitchen: "k".into() });
        check(DriverAssigned {
            driver: "d".into(),
            kitchen: None,
        });
        check(OrderDelivered { driver: "d".into() });
        check(OrderCancelling { reason: "r".into() });
        check(OrderCancelled { reason: "r".into() });
        check(OrderFailed { reason: "r".into() });
        check(PaymentRefunded {
            payment_id: "p".into(),
        });
        check(CustomerNotified { message: "m".into() });
        check(QueueDeadLettered {
            queue: "kitchen".into(),
            reason: "max attempts".into(),
            event_id: Some(Uuid::from_u128(7)),
            order_id: Some("o-1".into()),
            attempts: 5,
        });
        check(KitchenTicket {
            items: items(),
            customer: customer(),
        });
        check(DeliveryTicket {
            kitchen: "k".into(),
            customer: customer(),
        });
    }

    #[test]
    fn decode_checks_the_kind_not_just_the_shape() {
        let env = envelope(&OrderCancelled { reason: "r".into() }, "o", 1, "t", "s").unwrap();
        let err = decode::<OrderFailed>(&env).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::WrongKind {
                expected: "order.failed",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "expected event order.failed, got order.cancelled"
        );
    }

    #[test]
    fn payloads_reject_unknown_fields() {
        let mut env = envelope(&OrderReady { kitchen: "k".into() }, "o", 1, "t", "s").unwrap();
        env.payload["oven"] = json!(3);
        let err = decode::<OrderReady>(&env).unwrap_err();
        assert!(matches!(err, DecodeError::Payload { .. }), "{err}");
        assert!(err.to_string().contains("oven"), "{err}");
    }

    #[test]
    fn optional_payload_fields_may_be_omitted() {
        let d: DriverAssigned = serde_json::from_value(json!({"driver": "d"})).unwrap();
        assert_eq!(d.kitchen, None);
        let q: QueueDeadLettered =
            serde_json::from_value(json!({"queue": "q", "reason": "r", "attempts": 1})).unwrap();
        assert_eq!((q.event_id, q.order_id), (None, None));
    }
}
