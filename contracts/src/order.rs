//! The order state machine, as a pure fold over an order's envelopes.
//!
//! Two layers:
//!
//! - [`OrderState::apply`] (and [`OrderState::initial`], [`OrderState::step`])
//!   is the transition function: one state and one envelope in, the next
//!   state or a [`Transition`] error out. It looks only at the envelope's
//!   `kind`, never at the clock or the payload, so every node, the control
//!   room and a replay agree on an order's state given the same events.
//! - [`OrderFold`] is how every view of an order uses it: envelopes arrive
//!   from MQTT duplicated and out of order, and the fold puts them back into
//!   seq order (dropping duplicates, holding back gaps) before applying them.
//!
//! ```text
//!  placed ─paid─> paid ─queued─> queued ─cooking─> cooking ─ready─> ready
//!    │              └──────────cooking──────────────^                 │
//!  rejected                                                 driver.assigned
//!                                                                     v
//!                         delivered <─delivered─ out_for_delivery ────┘
//!
//!  any non-terminal ─cancelling─> cancelling ─cancelled─> cancelled
//!  paid|queued|cooking|ready ─cancelled─> cancelled
//!  any non-terminal ─failed─> failed
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::{self, kind, OrderPlaced};
use crate::Envelope;

/// Where an order is in its life.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Accepted, not yet paid.
    Placed,
    /// Paid; the kitchen ticket is being queued.
    Paid,
    /// The kitchen ticket waits on the `kitchen` queue.
    Queued,
    /// A kitchen is cooking it.
    Cooking,
    /// Cooked; waiting for a driver.
    Ready,
    /// A driver is carrying it.
    OutForDelivery,
    /// Delivered. Terminal.
    Delivered,
    /// Payment declined. Terminal.
    Rejected,
    /// Being compensated (refund in progress).
    Cancelling,
    /// Compensated. Terminal.
    Cancelled,
    /// Neither completed nor compensated; needs an operator. Terminal.
    Failed,
}

use OrderState::*;

/// The states that still expect events that move them.
const NON_TERMINAL: &[OrderState] = &[Placed, Paid, Queued, Cooking, Ready, OutForDelivery, Cancelling];

/// The transition table: `(kind, states it may arrive in, state it leads to)`.
///
/// One table rather than a `match` so that the error message can say which
/// states *would* have accepted an event, and so that a test can check every
/// kind is covered.
///
/// `order.cooking` is accepted in `paid` as well as `queued`: `order.queued`
/// records the order node's bookkeeping (the keeper confirmed the put), while
/// `order.cooking` comes from the kitchen that took the ticket. The kitchen
/// needs only the ticket, not the queued event, so the queued event is not a
/// precondition of cooking: an order path without it (a producer that skips
/// it, or a replay of a log recorded before it existed) is still a legal life.
/// Seq already orders the two events, so allowing `paid -> cooking` loses no
/// information: when `order.queued` does come, it comes first.
const MOVES: &[(&str, &[OrderState], OrderState)] = &[
    (kind::ORDER_PAID, &[Placed], Paid),
    (kind::ORDER_REJECTED, &[Placed], Rejected),
    (kind::ORDER_QUEUED, &[Paid], Queued),
    (kind::ORDER_COOKING, &[Queued, Paid], Cooking),
    (kind::ORDER_READY, &[Cooking], Ready),
    (kind::DRIVER_ASSIGNED, &[Ready], OutForDelivery),
    (kind::ORDER_DELIVERED, &[OutForDelivery], Delivered),
    (kind::ORDER_CANCELLING, NON_TERMINAL, Cancelling),
    (
        kind::ORDER_CANCELLED,
        &[Paid, Queued, Cooking, Ready, Cancelling],
        Cancelled,
    ),
    (kind::ORDER_FAILED, NON_TERMINAL, Failed),
];

/// Kinds that are part of an order's history but do not move its state, so
/// they are accepted in every state, terminal ones included: a refund or a
/// notification naturally follows a cancellation or a delivery, and a
/// dead-letter alert reports on an order without deciding its fate (the saga
/// events that follow it do that).
const NO_CHANGE: &[&str] = &[
    kind::PAYMENT_REFUNDED,
    kind::CUSTOMER_NOTIFIED,
    kind::QUEUE_DEAD_LETTERED,
    kind::KITCHEN_TICKET,
    kind::DELIVERY_TICKET,
    kind::CANCELLATION_REQUEST,
    kind::SAGA_STEP,
    kind::SECURITY_REFUSED,
];

impl OrderState {
    /// Every state, in the order of a typical life.
    #[rustfmt::skip]
    pub const ALL: &'static [OrderState] = &[
        Placed, Paid, Queued, Cooking, Ready, OutForDelivery, Delivered,
        Rejected, Cancelling, Cancelled, Failed,
    ];

    /// The state's wire name, e.g. `out_for_delivery`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placed => "placed",
            Paid => "paid",
            Queued => "queued",
            Cooking => "cooking",
            Ready => "ready",
            OutForDelivery => "out_for_delivery",
            Delivered => "delivered",
            Rejected => "rejected",
            Cancelling => "cancelling",
            Cancelled => "cancelled",
            Failed => "failed",
        }
    }

    /// Whether the order's life is over: only no-change events may follow.
    pub fn is_terminal(self) -> bool {
        matches!(self, Delivered | Rejected | Cancelled | Failed)
    }

    /// The state an order starts in, from its first event.
    ///
    /// Only `order.placed` starts an order; anything else is a [`Transition`]
    /// error with `from: None`.
    pub fn initial(env: &Envelope) -> Result<OrderState, Transition> {
        Self::step(None, env)
    }

    /// The state after `env`, or why `env` cannot happen in this state.
    pub fn apply(&self, env: &Envelope) -> Result<OrderState, Transition> {
        Self::step(Some(*self), env)
    }

    /// [`initial`](Self::initial) when `from` is `None`, else
    /// [`apply`](Self::apply): the one function a fold needs.
    pub fn step(from: Option<OrderState>, env: &Envelope) -> Result<OrderState, Transition> {
        next_state(from, &env.kind).map_err(|reason| Transition {
            from,
            kind: env.kind.clone(),
            reason,
        })
    }
}

/// The transition function on kinds; the error is the reason.
fn next_state(from: Option<OrderState>, event: &str) -> Result<OrderState, String> {
    if !kind::is_known(event) {
        return Err("unknown event kind".to_string());
    }
    let Some(from) = from else {
        return if event == kind::ORDER_PLACED {
            Ok(Placed)
        } else {
            Err(format!("an order starts with {}", kind::ORDER_PLACED))
        };
    };
    if event == kind::ORDER_PLACED {
        return Err("an order is placed only once, as its first event".to_string());
    }
    if NO_CHANGE.contains(&event) {
        return Ok(from);
    }
    if from.is_terminal() {
        return Err(format!("{from} is a terminal state"));
    }
    // Every known kind that is neither `order.placed` nor a no-change kind
    // has a row (a test checks this), so `find` fails only on a bug.
    let Some((_, sources, to)) = MOVES.iter().find(|(k, _, _)| *k == event) else {
        return Err("no transition defined for this kind".to_string());
    };
    if sources.contains(&from) {
        Ok(*to)
    } else {
        Err(format!("{event} is allowed only in {}", list(sources)))
    }
}

/// `a, b or c`.
fn list(states: &[OrderState]) -> String {
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderState {
    type Err = ParseOrderStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderState::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseOrderStateError { value: s.to_string() })
    }
}

/// A string that names no [`OrderState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order state '{value}'; expected one of: {}", valid_states())]
pub struct ParseOrderStateError {
    /// The string that was given.
    pub value: String,
}

/// `placed, paid, ...`: the valid names, for error messages.
fn valid_states() -> String {
    let names: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
    names.join(", ")
}

/// An event that cannot happen in the order's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {kind} {}: {reason}", describe(.from))]
pub struct Transition {
    /// The state the order was in; `None` before its first event.
    pub from: Option<OrderState>,
    /// The kind of the offending event.
    pub kind: String,
    /// Why it cannot happen, e.g. "order.ready is allowed only in cooking".
    pub reason: String,
}

/// `in state placed`, or `before order.placed` for an order not yet started.
fn describe(from: &Option<OrderState>) -> String {
    match from {
        Some(state) => format!("in state {state}"),
        None => format!("before {}", kind::ORDER_PLACED),
    }
}

/// What [`OrderFold::offer`] did with an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The envelope was next in seq order and was folded in, followed by any
    /// held-back envelopes it released.
    Applied {
        /// Envelopes that took effect (this one and released ones).
        applied: usize,
        /// Envelopes skipped as illegal transitions (see
        /// [`OrderFold::rejected`]).
        illegal: usize,
    },
    /// Its seq is beyond a gap; it waits until the gap fills.
    HeldBack,
    /// Seen before: same event id, or a seq already folded or held.
    Duplicate,
    /// Seq 0: seqs start at 1, so this envelope can never be folded.
    InvalidSeq,
    /// It belongs to another order.
    OtherOrder,
}

/// An envelope the fold skipped because its transition was illegal.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedEvent {
    /// The skipped envelope.
    pub envelope: Envelope,
    /// Why it could not be applied.
    pub error: Transition,
}

/// One order's events, folded in seq order: the one place every view of an
/// order (order node, control room, replay) computes its state.
///
/// Offer envelopes in any order, any number of times; the result depends only
/// on the set of envelopes offered:
///
/// - duplicates (same event id, or a seq already folded or held) are dropped,
///   the first one offered wins;
/// - an envelope beyond a gap is held back until the gap fills;
/// - envelopes are applied strictly in seq order, from seq 1.
///
/// An illegal transition does not stall the fold: its envelope is recorded in
/// [`rejected`](Self::rejected), leaves the state unchanged, and its seq counts
/// as folded. Stalling would freeze the order's view forever on one bad event
/// (nothing will ever re-send that seq), and panicking would let one bad
/// producer crash every observer; recording it keeps the view live and makes
/// the anomaly visible.
#[derive(Debug, Clone)]
pub struct OrderFold {
    order_id: String,
    state: Option<OrderState>,
    /// The seq the fold waits for; every seq below it is folded.
    next_seq: u64,
    applied: Vec<Envelope>,
    rejected: Vec<RejectedEvent>,
    held: BTreeMap<u64, Envelope>,
    /// Event ids folded or held, to drop re-sent copies.
    seen: HashSet<Uuid>,
    placed: Option<OrderPlaced>,
    kitchen: Option<String>,
    driver: Option<String>,
}

impl OrderFold {
    /// An empty fold for the order `order_id`.
    pub fn new(order_id: impl Into<String>) -> Self {
        OrderFold {
            order_id: order_id.into(),
            state: None,
            next_seq: 1,
            applied: Vec::new(),
            rejected: Vec::new(),
            held: BTreeMap::new(),
            seen: HashSet::new(),
            placed: None,
            kitchen: None,
            driver: None,
        }
    }

    /// Folds in every envelope of `envs` that belongs to `order_id`.
    pub fn from_envelopes(order_id: impl Into<String>, envs: impl IntoIterator<Item = Envelope>) -> Self {
        let mut fold = OrderFold::new(order_id);
        for env in envs {
            fold.offer(env);
        }
        fold
    }

    /// Offers one envelope; see the type's documentation for what happens.
    pub fn offer(&mut self, env: Envelope) -> Offer {
        if env.order_id != self.order_id {
            return Offer::OtherOrder;
        }
        if env.seq == 0 {
            return Offer::InvalidSeq;
        }
        if env.seq < self.next_seq || self.held.contains_key(&env.seq) || self.seen.contains(&env.event_id) {
            return Offer::Duplicate;
        }
        self.seen.insert(env.event_id);
        if env.seq > self.next_seq {
            self.held.insert(env.seq, env);
            return Offer::HeldBack;
        }

        let (mut applied, mut illegal) = (0, 0);
        let mut next = Some(env);
        while let Some(env) = next {
            if self.fold_one(env) {
                applied += 1;
            } else {
                illegal += 1;
            }
            next = self.held.remove(&self.next_seq);
        }
        Offer::Applied { applied, illegal }
    }

    /// Applies `env`, whose seq is `next_seq`; returns whether it was legal.
    fn fold_one(&mut self, env: Envelope) -> bool {
        // Saturating: reaching u64::MAX would take 2^64 events, but the fold
        // must not be the thing that panics if a bug ever got it there.
        self.next_seq = self.next_seq.saturating_add(1);
        match OrderState::step(self.state, &env) {
            Ok(state) => {
                self.state = Some(state);
                self.note_details(&env);
                self.applied.push(env);
                true
            }
            Err(error) => {
                self.rejected.push(RejectedEvent { envelope: env, error });
                false
            }
        }
    }

    /// Remembers what views show besides the state: the order itself, its
    /// kitchen and its driver.
    ///
    /// A payload that does not decode is ignored here: the state machine looks
    /// only at kinds, and a malformed payload is the consumer's problem to
    /// report (with [`events::decode`]), not a reason to change the state.
    fn note_details(&mut self, env: &Envelope) {
        match env.kind.as_str() {
            kind::ORDER_PLACED => self.placed = events::decode(env).ok(),
            kind::ORDER_COOKING => {
                if let Ok(e) = events::decode::<events::OrderCooking>(env) {
                    self.kitchen = Some(e.kitchen);
                }
            }
            kind::ORDER_READY => {
                if let Ok(e) = events::decode::<events::OrderReady>(env) {
                    self.kitchen = Some(e.kitchen);
                }
            }
            kind::DRIVER_ASSIGNED => {
                if let Ok(e) = events::decode::<events::DriverAssigned>(env) {
                    self.driver = Some(e.driver);
                    // Only fill in the kitchen: the kitchen's own events are
                    // the better witness of who cooked.
                    if self.kitchen.is_none() {
                        self.kitchen = e.kitchen;
                    }
                }
            }
            kind::ORDER_DELIVERED => {
                if let Ok(e) = events::decode::<events::OrderDelivered>(env) {
                    self.driver = Some(e.driver);
                }
            }
            _ => {}
        }
    }

    /// The order this fold is for.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// The current state; `None` until `order.placed` (seq 1) is folded.
    pub fn state(&self) -> Option<OrderState> {
        self.state
    }

    /// The envelopes that took effect, in seq order: the order's history.
    ///
    /// Illegal ones are not here but in [`rejected`](Self::rejected), so the
    /// seqs may skip where one was.
    pub fn applied(&self) -> &[Envelope] {
        &self.applied
    }

    /// The envelopes skipped as illegal transitions, in seq order.
    pub fn rejected(&self) -> &[RejectedEvent] {
        &self.rejected
    }

    /// The seq the fold waits for next; every seq below it is folded.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The highest seq seen, folded or held back (0 before any): a new
    /// event for the order must be numbered above it.
    pub fn highest_seq(&self) -> u64 {
        self.held
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.next_seq.saturating_sub(1))
    }

    /// How many envelopes wait behind a gap.
    pub fn held_back(&self) -> usize {
        self.held.len()
    }

    /// The envelopes waiting behind a gap, in seq order.
    pub fn held(&self) -> impl Iterator<Item = &Envelope> {
        self.held.values()
    }

    /// The missing seqs that hold envelopes back, as ranges (a bogus seq far
    /// ahead would make a list of single seqs enormous).
    pub fn gaps(&self) -> Vec<RangeInclusive<u64>> {
        let mut gaps = Vec::new();
        let mut expected = self.next_seq;
        for &seq in self.held.keys() {
            if seq > expected {
                gaps.push(expected..=seq - 1);
            }
            expected = seq.saturating_add(1);
        }
        gaps
    }

    /// The order as placed (customer, items, amount), once `order.placed` is
    /// folded.
    pub fn placed(&self) -> Option<&OrderPlaced> {
        self.placed.as_ref()
    }

    /// The kitchen that cooks or cooked the order, once known.
    pub fn kitchen(&self) -> Option<&str> {
        self.kitchen.as_deref()
    }

    /// The driver who carries or carried the order, once known.
    pub fn driver(&self) -> Option<&str> {
        self.driver.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OrderView;
    use crate::domain::{Customer, Item};
    use proptest::prelude::*;
    use serde_json::json;

    /// An envelope of `kind` with a payload that fits it, and an event id
    /// derived from the seq so that tests are deterministic.
    fn env(kind: &str, seq: u64) -> Envelope {
        let payload = match kind {
            kind::ORDER_PLACED => json!({
                "customer": {"name": "Ada", "address": "1 Loop Lane"},
                "items": [{"pizza": "margherita", "qty": 2}],
                "amount_cents": 2400,
            }),
            kind::ORDER_PAID => json!({"payment_id": "p-1", "amount_cents": 2400}),
            kind::ORDER_QUEUED => json!({"queue": "kitchen"}),
            kind::ORDER_COOKING | kind::ORDER_READY => json!({"kitchen": "kitchen-1"}),
            kind::DRIVER_ASSIGNED => json!({"driver": "Dana", "kitchen": "kitchen-1"}),
            kind::ORDER_DELIVERED => json!({"driver": "Dana"}),
            kind::PAYMENT_REFUNDED => json!({"payment_id": "p-1"}),
            kind::CUSTOMER_NOTIFIED => json!({"message": "Your pizza is on its way!"}),
            _ => json!({"reason": "test"}),
        };
        let mut e = Envelope::new(kind, "o-1", seq, "trace", "test", payload);
        e.event_id = Uuid::from_u128(u128::from(seq));
        e
    }

    /// Envelopes of `kinds` with seqs 1..=n.
    fn log(kinds: &[&str]) -> Vec<Envelope> {
        kinds.iter().zip(1..).map(|(k, seq)| env(k, seq)).collect()
    }

    fn apply(from: OrderState, kind: &str) -> Result<OrderState, Transition> {
        from.apply(&env(kind, 2))
    }

    #[test]
    fn states_have_snake_case_names_everywhere() {
        for &s in OrderState::ALL {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, json!(s.as_str()));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(s.as_str().parse::<OrderState>(), Ok(s));
        }
        assert_eq!(OutForDelivery.as_str(), "out_for_delivery");
        assert_eq!(OrderState::ALL.len(), 11);
    }

    #[test]
    fn parse_error_names_the_value_and_the_choices() {
        let err = "baking".parse::<OrderState>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("'baking'"), "{msg}");
        for s in OrderState::ALL {
            assert!(msg.contains(s.as_str()), "{msg}");
        }
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = OrderState::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [&Delivered, &Rejected, &Cancelled, &Failed]);
    }

    #[test]
    fn every_kind_has_a_rule() {
        for k in kind::ALL {
            let covered =
                *k == kind::ORDER_PLACED || NO_CHANGE.contains(k) || MOVES.iter().any(|(m, _, _)| m == k);
            assert!(covered, "{k} has no transition rule");
        }
        for (m, _, _) in MOVES {
            assert!(kind::is_known(m), "{m}");
        }
    }

    #[test]
    fn only_order_placed_starts_an_order() {
        assert_eq!(OrderState::initial(&env(kind::ORDER_PLACED, 1)), Ok(Placed));
        let err = OrderState::initial(&env(kind::ORDER_PAID, 1)).unwrap_err();
        assert_eq!(err.from, None);
        assert_eq!(
            err.to_string(),
            "illegal transition: order.paid before order.placed: an order starts with order.placed"
        );
    }

    #[test]
    fn legal_transitions() {
        let cases = [
            (Placed, kind::ORDER_PAID, Paid),
            (Placed, kind::ORDER_REJECTED, Rejected),
            (Paid, kind::ORDER_QUEUED, Queued),
            (Queued, kind::ORDER_COOKING, Cooking),
            (Paid, kind::ORDER_COOKING, Cooking),
            (Cooking, kind::ORDER_READY, Ready),
            (Ready, kind::DRIVER_ASSIGNED, OutForDelivery),
            (OutForDelivery, kind::ORDER_DELIVERED, Delivered),
        ];
        for (from, k, to) in cases {
            assert_eq!(apply(from, k), Ok(to), "{k} in {from}");
        }
    }

    #[test]
    fn cancelling_and_failing_work_from_any_non_terminal_state() {
        for &from in NON_TERMINAL {
            assert_eq!(apply(from, kind::ORDER_CANCELLING), Ok(Cancelling), "{from}");
            assert_eq!(apply(from, kind::ORDER_FAILED), Ok(Failed), "{from}");
        }
    }

    #[test]
    fn cancelled_needs_money_taken_or_compensation_started() {
        for from in [Paid, Queued, Cooking, Ready, Cancelling] {
            assert_eq!(apply(from, kind::ORDER_CANCELLED), Ok(Cancelled), "{from}");
        }
        // Nothing to cancel before payment (that is `rejected`), and a pizza
        // already on the road is delivered or failed, not cancelled.
        for from in [Placed, OutForDelivery] {
            assert!(apply(from, kind::ORDER_CANCELLED).is_err(), "{from}");
        }
    }

    #[test]
    fn no_change_kinds_are_accepted_in_every_state() {
        for &from in OrderState::ALL {
            for k in NO_CHANGE {
                assert_eq!(apply(from, k), Ok(from), "{k} in {from}");
            }
        }
    }

    #[test]
    fn terminal_states_accept_nothing_that_moves() {
        for from in [Delivered, Rejected, Cancelled, Failed] {
            for k in kind::ALL.iter().filter(|k| !NO_CHANGE.contains(k)) {
                assert!(apply(from, k).is_err(), "{k} in {from}");
            }
        }
    }

    #[test]
    fn illegal_transitions_say_what_and_where() {
        let err = apply(Placed, kind::ORDER_READY).unwrap_err();
        assert_eq!(
            err,
            Transition {
                from: Some(Placed),
                kind: "order.ready".into(),
                reason: "order.ready is allowed only in cooking".into(),
            }
        );
        assert!(err
            .to_string()
            .starts_with("illegal transition: order.ready in state placed"));

        let err = apply(Placed, kind::ORDER_COOKING).unwrap_err();
        assert_eq!(err.reason, "order.cooking is allowed only in queued or paid");

        for (from, k) in [
            (Placed, kind::ORDER_QUEUED),
            (Paid, kind::ORDER_PAID),
            (Paid, kind::ORDER_REJECTED),
            (Queued, kind::ORDER_READY),
            (Cooking, kind::DRIVER_ASSIGNED),
            (Ready, kind::ORDER_DELIVERED),
            (Cancelling, kind::ORDER_COOKING),
            (Cooking, kind::ORDER_QUEUED),
            (Paid, kind::ORDER_PLACED),
        ] {
            assert!(apply(from, k).is_err(), "{k} in {from}");
        }
    }

    #[test]
    fn terminal_and_unknown_errors() {
        let err = apply(Delivered, kind::ORDER_FAILED).unwrap_err();
        assert_eq!(err.reason, "delivered is a terminal state");
        let err = apply(Cooking, "order.teleported").unwrap_err();
        assert_eq!(err.reason, "unknown event kind");
        let err = OrderState::initial(&env("order.teleported", 1)).unwrap_err();
        assert_eq!(err.reason, "unknown event kind");
    }

    #[test]
    fn fold_applies_in_order_and_records_details() {
        let mut fold = OrderFold::new("o-1");
        assert_eq!(fold.state(), None);
        assert!(OrderView::of(&fold).is_none());
        for e in log(&[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_COOKING,
            kind::ORDER_READY,
            kind::DRIVER_ASSIGNED,
        ]) {
            assert_eq!(
                fold.offer(e),
                Offer::Applied {
                    applied: 1,
                    illegal: 0
                }
            );
        }
        assert_eq!(fold.state(), Some(OutForDelivery));
        assert_eq!(fold.kitchen(), Some("kitchen-1"));
        assert_eq!(fold.driver(), Some("Dana"));
        assert_eq!(fold.placed().map(|p| p.amount_cents), Some(2400));

        let view = OrderView::of(&fold).unwrap();
        assert_eq!(view.state, OutForDelivery);
        assert_eq!(
            view.customer,
            Customer {
                name: "Ada".into(),
                address: "1 Loop Lane".into()
            }
        );
        assert_eq!(
            view.items,
            [Item {
                pizza: "margherita".into(),
                qty: 2
            }]
        );
        let seqs: Vec<u64> = view.history.iter().map(|h| h.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn fold_holds_back_gaps_and_releases_them() {
        let [placed, paid, queued, cooking] = <[Envelope; 4]>::try_from(log(&[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_QUEUED,
            kind::ORDER_COOKING,
        ]))
        .unwrap();
        let mut fold = OrderFold::new("o-1");
        assert_eq!(fold.offer(cooking), Offer::HeldBack);
        assert_eq!(fold.offer(paid), Offer::HeldBack);
        assert_eq!(fold.gaps(), [1..=1, 3..=3]);
        assert_eq!(fold.held_back(), 2);
        assert_eq!(
            fold.offer(placed),
            Offer::Applied {
                applied: 2,
                illegal: 0
            }
        );
        assert_eq!(fold.state(), Some(Paid));
        assert_eq!(fold.gaps(), [3..=3]);
        assert_eq!(
            fold.offer(queued),
            Offer::Applied {
                applied: 2,
                illegal: 0
            }
        );
        assert_eq!(fold.state(), Some(Cooking));
        assert_eq!(fold.held_back(), 0);
        assert!(fold.gaps().is_empty());
        assert_eq!(fold.next_seq(), 5);
    }

    #[test]
    fn fold_drops_duplicates_and_strangers() {
        let mut fold = OrderFold::new("o-1");
        let placed = env(kind::ORDER_PLACED, 1);
        let ready = env(kind::ORDER_READY, 5);
        fold.offer(placed.clone());
        fold.offer(ready.clone());
        // The very same message again.
        assert_eq!(fold.offer(placed.clone()), Offer::Duplicate);
        assert_eq!(fold.offer(ready.clone()), Offer::Duplicate);
        // A different event claiming a seq already folded or held.
        let mut again = env(kind::ORDER_PAID, 1);
        again.event_id = Uuid::from_u128(100);
        assert_eq!(fold.offer(again), Offer::Duplicate);
        let mut again = env(kind::ORDER_PAID, 5);
        again.event_id = Uuid::from_u128(101);
        assert_eq!(fold.offer(again), Offer::Duplicate);
        // A known event id under a new seq is still the same event.
        let mut moved = placed;
        moved.seq = 9;
        assert_eq!(fold.offer(moved), Offer::Duplicate);

        assert_eq!(fold.offer(env(kind::ORDER_PAID, 0)), Offer::InvalidSeq);
        let mut stranger = env(kind::ORDER_PAID, 2);
        stranger.order_id = "o-2".into();
        assert_eq!(fold.offer(stranger), Offer::OtherOrder);

        assert_eq!(fold.applied().len(), 1);
        assert_eq!(fold.held_back(), 1);
    }

    #[test]
    fn illegal_events_are_recorded_and_do_not_stall_the_fold() {
        let mut fold = OrderFold::new("o-1");
        let events = log(&[
            kind::ORDER_PLACED,
            kind::ORDER_READY, // illegal in placed
            kind::ORDER_PAID,
        ]);
        let [placed, ready, paid] = <[Envelope; 3]>::try_from(events).unwrap();
        assert_eq!(fold.offer(paid), Offer::HeldBack);
        assert_eq!(fold.offer(ready), Offer::HeldBack);
        assert_eq!(
            fold.offer(placed),
            Offer::Applied {
                applied: 2,
                illegal: 1
            }
        );
        assert_eq!(fold.state(), Some(Paid));
        assert_eq!(fold.next_seq(), 4);
        let seqs: Vec<u64> = fold.applied().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!(fold.rejected().len(), 1);
        assert_eq!(fold.rejected()[0].envelope.seq, 2);
        assert_eq!(fold.rejected()[0].error.from, Some(Placed));
        // Its kitchen is not believed either.
        assert_eq!(fold.kitchen(), None);
    }

    #[test]
    fn a_bogus_far_seq_yields_one_gap_range() {
        let mut fold = OrderFold::new("o-1");
        fold.offer(env(kind::ORDER_PLACED, 1));
        fold.offer(env(kind::ORDER_PAID, u64::MAX));
        assert_eq!(fold.gaps(), [2..=u64::MAX - 1]);
    }

    // ---- properties ----

    /// Legal lives of an order, as the main events that move it.
    const LIVES: &[&[&str]] = &[
        &[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_QUEUED,
            kind::ORDER_COOKING,
            kind::ORDER_READY,
            kind::DRIVER_ASSIGNED,
            kind::ORDER_DELIVERED,
        ],
        &[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_COOKING,
            kind::ORDER_READY,
            kind::DRIVER_ASSIGNED,
            kind::ORDER_DELIVERED,
        ],
        &[kind::ORDER_PLACED, kind::ORDER_REJECTED],
        &[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_QUEUED,
            kind::ORDER_COOKING,
            kind::ORDER_CANCELLING,
            kind::ORDER_CANCELLED,
        ],
        &[
            kind::ORDER_PLACED,
            kind::ORDER_PAID,
            kind::ORDER_QUEUED,
            kind::ORDER_FAILED,
        ],
        // Unfinished lives are legal too: a view may look at any moment.
        &[kind::ORDER_PLACED, kind::ORDER_PAID, kind::ORDER_QUEUED],
    ];

    /// A legal event log, seqs 1..=n: one of [`LIVES`] with no-change events
    /// interleaved anywhere after `order.placed`.
    fn legal_log() -> impl Strategy<Value = Vec<Envelope>> {
        let extras = prop::collection::vec(
            (any::<prop::sample::Index>(), prop::sample::select(NO_CHANGE)),
            0..5,
        );
        (prop::sample::select(LIVES), extras).prop_map(|(life, extras)| {
            let mut kinds = life.to_vec();
            for (at, k) in extras {
                // Position 1..=len: never before `order.placed`.
                let pos = 1 + at.index(kinds.len());
                kinds.insert(pos, k);
            }
            log(&kinds)
        })
    }

    /// What folding `log` in order gives: (state, history seqs).
    fn in_order(log: &[Envelope]) -> (Option<OrderState>, Vec<Envelope>) {
        let mut state = None;
        for e in log {
            state = Some(OrderState::step(state, e).expect("the log is legal"));
        }
        (state, log.to_vec())
    }

    /// `log` shuffled, with some messages sent more than once.
    fn delivered(log: Vec<Envelope>) -> impl Strategy<Value = Vec<Envelope>> {
        let n = log.len();
        prop::collection::vec(any::<prop::sample::Index>(), 0..n * 2).prop_flat_map(move |dups| {
            let mut sent = log.clone();
            sent.extend(dups.iter().map(|i| log[i.index(n)].clone()));
            Just(sent).prop_shuffle()
        })
    }

    proptest! {
        #[test]
        fn any_arrival_order_folds_like_in_order(
            (log, sent) in legal_log().prop_flat_map(|log| (Just(log.clone()), delivered(log)))
        ) {
            let (state, history) = in_order(&log);
            let fold = OrderFold::from_envelopes("o-1", sent);
            prop_assert_eq!(fold.state(), state);
            prop_assert_eq!(fold.applied(), &history[..]);
            prop_assert_eq!(fold.held_back(), 0);
            prop_assert!(fold.rejected().is_empty());
            prop_assert_eq!(fold.next_seq(), log.len() as u64 + 1);
        }

        #[test]
        fn a_gap_holds_everything_after_it(
            (log, sent, missing) in legal_log().prop_flat_map(|log| {
                let n = log.len();
                (
                    Just(log.clone()),
                    delivered(log),
                    // Which seqs never arrive: 1..n of the n seqs, so never none
                    // and never all.
                    prop::collection::btree_set(1..=n as u64, 1..n),
                )
            })
        ) {
            let first_gap = *missing.iter().next().expect("non-empty");
            let mut fold = OrderFold::new("o-1");
            for env in sent.iter().filter(|e| !missing.contains(&e.seq)) {
                fold.offer(env.clone());
                prop_assert!(fold.applied().iter().all(|e| e.seq < first_gap));
            }
            let before_gap = &log[..first_gap as usize - 1];
            let (state, history) = in_order(before_gap);
            prop_assert_eq!(fold.state(), state);
            prop_assert_eq!(fold.applied(), &history[..]);
            prop_assert_eq!(fold.next_seq(), first_gap);
            let held = log.iter().filter(|e| e.seq > first_gap && !missing.contains(&e.seq)).count();
            prop_assert_eq!(fold.held_back(), held);
            prop_assert_eq!(fold.gaps().first().map(|g| *g.start()), (held > 0).then_some(first_gap));

            // Once the missing ones arrive, the fold catches up completely.
            for seq in missing {
                fold.offer(log[seq as usize - 1].clone());
            }
            let (state, history) = in_order(&log);
            prop_assert_eq!(fold.state(), state);
            prop_assert_eq!(fold.applied(), &history[..]);
            prop_assert_eq!(fold.held_back(), 0);
        }
    }
}
