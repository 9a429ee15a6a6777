//! The event log's query protocol, and replay: an order's state at any
//! instant, rebuilt from its events.
//!
//! The broker process appends every domain event to an event log (see
//! `broker::eventlog`). The broker speaks only MQTT, so the log is queried
//! over two ordinary topics (see [`crate::topics::Topics::log_query`]):
//!
//! ```text
//! client -> broker  <prefix>/log/query/<client>  {"request_id":"r-1","order_id":"ord_..."}
//! broker -> client  <prefix>/log/reply/<client>  {"request_id":"r-1","order_id":"ord_...","events":[Envelope...]}
//! ```
//!
//! The client subscribes to its reply topic before it asks; `request_id`
//! pairs a reply with its question (a client may have several open). The
//! events come in seq order; an order the log has never seen gets an empty
//! list, and a query the log cannot answer gets `error` instead.
//!
//! [`replay`] is the pure half: it folds an order's envelopes, optionally only
//! those that had happened by an instant `as_of`, through the one state
//! machine ([`OrderFold`]) and explains each step.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::{rfc3339, HistoryEntry};
use crate::order::{OrderFold, OrderState};
use crate::Envelope;

/// A question to the event log: every event of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Chosen by the client; the reply carries it back.
    pub request_id: String,
    /// The order whose events are wanted.
    pub order_id: String,
}

/// The event log's answer to a [`LogQuery`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogReply {
    /// The query's `request_id`.
    pub request_id: String,
    /// The query's `order_id`.
    pub order_id: String,
    /// Every event of the order the log holds, in seq order (each event once,
    /// however often it was published). Empty for an order never seen.
    #[serde(default)]
    pub events: Vec<Envelope>,
    /// Set when the log could not answer (a malformed query, a storage
    /// error, an answer too large for one message); `events` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parses an `as_of` instant (RFC 3339, e.g. `2026-01-31T12:00:00.5Z`).
///
/// A `+` in a URL query string decodes to a space, so
/// `as_of=2026-01-31T13:00:00+01:00` arrives as `...13:00:00 01:00`; a space
/// where the offset's sign belongs is read as the `+` it was.
pub fn parse_as_of(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|first| match text.rfind(' ') {
            Some(i) if i > 10 => {
                let mut fixed = text.to_string();
                fixed.replace_range(i..=i, "+");
                OffsetDateTime::parse(&fixed, &Rfc3339).map_err(|_| first)
            }
            _ => Err(first),
        })
        .map_err(|e| format!("'{text}' is not an RFC 3339 instant like 2026-01-31T12:00:00Z ({e})"))
}

/// An order's state at an instant, and how it got there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// The order.
    pub order_id: String,
    /// The instant replayed to (RFC 3339); `None`: every event in the log.
    pub as_of: Option<String>,
    /// The order's state at that instant.
    pub state: OrderState,
    /// The trace id of the order's first event.
    pub trace_id: String,
    /// The events applied, in seq order, each with the state after it.
    pub steps: Vec<HistoryStep>,
    /// Events that had happened but wait behind a missing seq (the log
    /// lacks an earlier event, or a clock put an earlier seq after `as_of`).
    pub held_back: Vec<HistoryEntry>,
    /// Events skipped as illegal transitions.
    pub rejected: Vec<RejectedStep>,
    /// Events in the log that happened after `as_of`, not replayed.
    pub later: usize,
}

/// One applied event of a [`HistoryView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryStep {
    /// The event's seq.
    pub seq: u64,
    /// Its kind.
    pub kind: String,
    /// When it happened, RFC 3339.
    pub at: String,
    /// The node that sent it.
    pub source: String,
    /// The order's state after it.
    pub state: OrderState,
    /// Its event id.
    pub event_id: Uuid,
    /// What it says beyond its kind (a reason, a saga step's outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An event of a [`HistoryView`] that the state machine refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedStep {
    /// The event's seq.
    pub seq: u64,
    /// Its kind.
    pub kind: String,
    /// When it happened, RFC 3339.
    pub at: String,
    /// The node that sent it.
    pub source: String,
    /// Why it could not be applied.
    pub reason: String,
}

/// Why an order has no state to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The log holds no event of this order.
    #[error("no order {order_id} in the event log")]
    UnknownOrder {
        /// The order asked for.
        order_id: String,
    },
    /// The order exists, but `as_of` is before it was placed: at that instant
    /// there was no such order (HTTP answers 404 for this, as for an
    /// unknown order, and says when the order begins).
    #[error("order {order_id} did not exist yet at {as_of}; its first event is at {first}")]
    NotYetPlaced {
        /// The order asked for.
        order_id: String,
        /// The instant asked for, RFC 3339.
        as_of: String,
        /// When its first event happened, RFC 3339.
        first: String,
    },
    /// The log has events of the order but not its `order.placed` (seq 1),
    /// so the state machine cannot start.
    #[error("the event log has {events} event(s) of order {order_id} but not the one that placed it")]
    NotStarted {
        /// The order asked for.
        order_id: String,
        /// How many events of it the log holds.
        events: usize,
    },
}

/// Replays `order_id`'s `events` (in any order, duplicates allowed) through
/// the order state machine, keeping only those that happened at or before
/// `as_of` (all of them when `None`).
///
/// "Happened" is the event's `occurred_at`, stamped by the node that sent
/// it. Nodes' clocks may differ, so an event can carry an earlier time than
/// the event before it; the fold still applies events in seq order only, and
/// an event whose predecessor is cut off by `as_of` is reported in
/// `held_back` rather than applied out of order.
pub fn replay(
    order_id: &str,
    events: impl IntoIterator<Item = Envelope>,
    as_of: Option<OffsetDateTime>,
) -> Result<HistoryView, ReplayError> {
    let mut fold = OrderFold::new(order_id);
    let (mut seen, mut later) = (0usize, 0usize);
    let mut first: Option<OffsetDateTime> = None;
    for env in events {
        if env.order_id != order_id {
            continue;
        }
        seen += 1;
        first = Some(first.map_or(env.occurred_at, |f| f.min(env.occurred_at)));
        if as_of.is_some_and(|t| env.occurred_at > t) {
            later += 1;
            continue;
        }
        fold.offer(env);
    }
    let Some(state) = fold.state() else {
        return Err(match (first, as_of) {
            (None, _) => ReplayError::UnknownOrder {
                order_id: order_id.to_string(),
            },
            (Some(first), Some(t)) if t < first => ReplayError::NotYetPlaced {
                order_id: order_id.to_string(),
                as_of: rfc3339(t),
                first: rfc3339(first),
            },
            _ => ReplayError::NotStarted {
                order_id: order_id.to_string(),
                events: seen,
            },
        });
    };

    let mut after = None;
    let steps = fold
        .applied()
        .iter()
        .map(|e| {
            // Applied events were legal in this order, so stepping again
            // reproduces the fold's states exactly.
            after = OrderState::step(after, e).ok().or(after);
            HistoryStep {
                seq: e.seq,
                kind: e.kind.clone(),
                at: rfc3339(e.occurred_at),
                source: e.source.clone(),
                state: after.unwrap_or(state),
                event_id: e.event_id,
                detail: crate::events::summary(e),
            }
        })
        .collect();
    Ok(HistoryView {
        order_id: order_id.to_string(),
        as_of: as_of.map(rfc3339),
        state,
        trace_id: fold
            .applied()
            .first()
            .map(|e| e.trace_id.clone())
            .unwrap_or_default(),
        steps,
        held_back: fold.held().map(HistoryEntry::from).collect(),
        rejected: fold
            .rejected()
            .iter()
            .map(|r| RejectedStep {
                seq: r.envelope.seq,
                kind: r.envelope.kind.clone(),
                at: rfc3339(r.envelope.occurred_at),
                source: r.envelope.source.clone(),
                reason: r.error.to_string(),
            })
            .collect(),
        later,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::kind;
    use time::Duration;

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::milliseconds(ms)
    }

    /// A delivered order, one event every 100 ms from `at(0)`, seqs 1..=8.
    fn delivered() -> Vec<Envelope> {
        let steps: Vec<_> = crate::testkit::DELIVERED
            .iter()
            .zip(0..)
            .map(|((k, _), i)| (*k, 100 * i))
            .collect();
        let mut envs = crate::testkit::life("o-1", at(0), &steps, "trace-1", "node");
        for e in &mut envs {
            e.event_id = Uuid::from_u128(u128::from(e.seq));
        }
        envs
    }

    fn kinds_and_states(v: &HistoryView) -> Vec<(u64, String, OrderState)> {
        v.steps.iter().map(|s| (s.seq, s.kind.clone(), s.state)).collect()
    }

    #[test]
    fn without_as_of_every_event_is_replayed() {
        let mut events = delivered();
        events.reverse();
        events.push(events[0].clone()); // a duplicate
        let v = replay("o-1", events, None).unwrap();
        assert_eq!(v.state, OrderState::Delivered);
        assert_eq!(v.as_of, None);
        assert_eq!(v.trace_id, "trace-1");
        let seqs: Vec<u64> = v.steps.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
        assert_eq!(v.steps[3].state, OrderState::Cooking);
        assert_eq!(
            v.steps[6].state,
            OrderState::OutForDelivery,
            "a notification changes nothing"
        );
        assert_eq!(v.later, 0);
        assert!(v.held_back.is_empty() && v.rejected.is_empty());
    }

    #[test]
    fn as_of_replays_only_what_had_happened() {
        // Cooking began at 300 ms; 350 ms is mid-cook.
        let v = replay("o-1", delivered(), Some(at(350))).unwrap();
        assert_eq!(v.state, OrderState::Cooking);
        assert_eq!(
            kinds_and_states(&v).last().cloned(),
            Some((4, kind::ORDER_COOKING.to_string(), OrderState::Cooking))
        );
        assert_eq!(v.later, 4);
        assert_eq!(v.as_of.as_deref(), Some(rfc3339(at(350)).as_str()));
        // An event's own instant includes it.
        let v = replay("o-1", delivered(), Some(at(400))).unwrap();
        assert_eq!(v.state, OrderState::Ready);
        // The very first instant: placed.
        let v = replay("o-1", delivered(), Some(at(0))).unwrap();
        assert_eq!(v.state, OrderState::Placed);
    }

    #[test]
    fn as_of_before_the_first_event_means_no_such_order_then() {
        let err = replay("o-1", delivered(), Some(at(-1))).unwrap_err();
        assert_eq!(
            err,
            ReplayError::NotYetPlaced {
                order_id: "o-1".into(),
                as_of: rfc3339(at(-1)),
                first: rfc3339(at(0)),
            }
        );
        assert!(err.to_string().contains("did not exist yet"));
    }

    #[test]
    fn an_order_without_events_is_unknown_and_one_without_its_start_is_not_started() {
        assert_eq!(
            replay("o-1", Vec::new(), None),
            Err(ReplayError::UnknownOrder {
                order_id: "o-1".into()
            })
        );
        // Events of other orders do not count.
        let mut other = delivered();
        for e in &mut other {
            e.order_id = "o-2".into();
        }
        assert!(matches!(
            replay("o-1", other, None),
            Err(ReplayError::UnknownOrder { .. })
        ));
        let without_placed: Vec<Envelope> = delivered().into_iter().skip(1).collect();
        assert_eq!(
            replay("o-1", without_placed, None),
            Err(ReplayError::NotStarted {
                order_id: "o-1".into(),
                events: 7
            })
        );
    }

    #[test]
    fn a_skewed_clock_holds_an_event_back_instead_of_reordering() {
        let mut events = delivered();
        // The kitchen's clock is behind: `ready` (seq 5) claims 250 ms,
        // before `cooking` (seq 4, 300 ms).
        events[4].occurred_at = at(250);
        let v = replay("o-1", events, Some(at(260))).unwrap();
        assert_eq!(v.state, OrderState::Queued);
        assert_eq!(v.held_back.len(), 1);
        assert_eq!(v.held_back[0].seq, 5);
    }

    #[test]
    fn illegal_events_are_listed_with_the_reason() {
        let mut events = delivered();
        events[1].kind = kind::ORDER_READY.to_string(); // seq 2: ready while placed
        let v = replay("o-1", events, Some(at(100))).unwrap();
        assert_eq!(v.state, OrderState::Placed);
        assert_eq!(v.rejected.len(), 1);
        assert!(
            v.rejected[0].reason.contains("allowed only in cooking"),
            "{:?}",
            v.rejected
        );
    }

    #[test]
    fn as_of_parses_rfc3339_and_forgives_a_decoded_plus() {
        let t = parse_as_of("2026-01-31T13:00:00+01:00").unwrap();
        assert_eq!(t, parse_as_of("2026-01-31T12:00:00Z").unwrap());
        assert_eq!(parse_as_of("2026-01-31T13:00:00 01:00"), Ok(t));
        let err = parse_as_of("yesterday").unwrap_err();
        assert!(err.contains("'yesterday'") && err.contains("RFC 3339"), "{err}");
        assert!(parse_as_of("2026-01-31 12:00:00").is_err());
    }

    #[test]
    fn the_protocol_round_trips() {
        let q = LogQuery {
            request_id: "r-1".into(),
            order_id: "o-1".into(),
        };
        let text = serde_json::to_string(&q).unwrap();
        assert_eq!(text, r#"{"request_id":"r-1","order_id":"o-1"}"#);
        assert!(serde_json::from_str::<LogQuery>(r#"{"request_id":"r","order_id":"o","x":1}"#).is_err());
        let r = LogReply {
            request_id: "r-1".into(),
            order_id: "o-1".into(),
            events: delivered(),
            error: None,
        };
        let back: LogReply = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(!serde_json::to_string(&r).unwrap().contains("\"error\""));
    }
}
