//! One order's trace timeline: how long each stage of its life took.
//!
//! Every event of an order carries the trace id of the `POST /orders` that
//! started it and the time it happened, so the stages fall out of the events
//! themselves: payment (placed -> paid), queue wait (queued -> cooking),
//! cooking (cooking -> ready), driver wait (ready -> driver assigned) and trip
//! (driver assigned -> delivered), plus the total from the first event to the
//! one that ended the order.
//!
//! Pure: the control room's order detail and `pizza-node trace` both draw
//! from [`Timeline`], so they can never disagree.

use time::{Duration, OffsetDateTime};

use crate::events::kind;
use crate::order::OrderState;
use crate::Envelope;

/// The stages, in the order an order meets them: (name, the event that
/// starts it, the event that ends it).
pub const STAGES: &[(&str, &str, &str)] = &[
    ("payment", kind::ORDER_PLACED, kind::ORDER_PAID),
    ("queue wait", kind::ORDER_QUEUED, kind::ORDER_COOKING),
    ("cooking", kind::ORDER_COOKING, kind::ORDER_READY),
    ("driver wait", kind::ORDER_READY, kind::DRIVER_ASSIGNED),
    ("trip", kind::DRIVER_ASSIGNED, kind::ORDER_DELIVERED),
];

/// A stretch of time on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When it began, counted from the timeline's origin (the order's first
    /// event).
    pub offset: Duration,
    /// How long it took.
    pub length: Duration,
}

/// One stage of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// Its name, one of [`STAGES`].
    pub name: &'static str,
    /// When and how long; `None` for a stage the order has not (or never)
    /// reached, e.g. cooking for a rejected order.
    pub span: Option<Span>,
}

/// An order's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The instant offsets count from: the order's first event.
    pub origin: OffsetDateTime,
    /// Every stage of [`STAGES`], in that order.
    pub stages: Vec<Stage>,
    /// From the origin to the event that put the order in a terminal state
    /// (delivered, rejected, cancelled, failed); `None` while it is running.
    pub total: Option<Span>,
    /// The kind of the event that ended the order, when it has ended.
    pub ended_by: Option<String>,
}

impl Timeline {
    /// The timeline of `events` (an order's applied events, in seq order),
    /// measured from the earliest of them; `None` when there are none.
    pub fn of(events: &[Envelope]) -> Option<Timeline> {
        let origin = events.iter().map(|e| e.occurred_at).min()?;
        Some(Timeline::from_origin(events, origin))
    }

    /// The timeline of `events` measured from `origin`. The control room
    /// passes the earliest time it has seen for the order, which may belong to
    /// an event still held back behind a gap.
    pub fn from_origin(events: &[Envelope], origin: OffsetDateTime) -> Timeline {
        // The first event of a kind: a re-sent duplicate under another seq
        // would be a later copy, never the moment the stage began.
        let at = |k: &str| events.iter().find(|e| e.kind == k).map(|e| e.occurred_at);
        let stages = STAGES
            .iter()
            .map(|(name, from, to)| Stage {
                name,
                span: at(from).zip(at(to)).map(|(start, end)| Span {
                    offset: start - origin,
                    length: end - start,
                }),
            })
            .collect();
        let (total, ended_by) = match terminal_event(events) {
            Some(end) => (
                Some(Span {
                    offset: Duration::ZERO,
                    length: end.occurred_at - origin,
                }),
                Some(end.kind.clone()),
            ),
            None => (None, None),
        };
        Timeline {
            origin,
            stages,
            total,
            ended_by,
        }
    }

    /// The stage called `name`, if it is one of [`STAGES`].
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// The first event after which the order was in a terminal state, found by
/// stepping the state machine (events that do not fit are skipped, as the
/// fold skips them).
fn terminal_event(events: &[Envelope]) -> Option<&Envelope> {
    let mut state = None;
    for e in events {
        if let Ok(next) = OrderState::step(state, e) {
            state = Some(next);
            if next.is_terminal() {
                return Some(e);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::milliseconds(ms)
    }

    fn life(steps: &[(&str, i64)]) -> Vec<Envelope> {
        crate::testkit::life("o-1", at(0), steps, "t", "test")
    }

    fn ms(span: Option<Span>) -> Option<(i128, i128)> {
        span.map(|s| (s.offset.whole_milliseconds(), s.length.whole_milliseconds()))
    }

    #[test]
    fn a_delivered_order_has_every_stage_and_a_total() {
        let events = life(&[
            (kind::ORDER_PLACED, 1_000),
            (kind::ORDER_PAID, 1_040),
            (kind::ORDER_QUEUED, 1_050),
            (kind::ORDER_COOKING, 1_300),
            (kind::ORDER_READY, 6_300),
            (kind::DRIVER_ASSIGNED, 6_400),
            (kind::CUSTOMER_NOTIFIED, 6_401),
            (kind::ORDER_DELIVERED, 9_400),
        ]);
        let t = Timeline::of(&events).unwrap();
        assert_eq!(t.origin, at(1_000));
        let got: Vec<_> = t.stages.iter().map(|s| (s.name, ms(s.span))).collect();
        assert_eq!(
            got,
            [
                ("payment", Some((0, 40))),
                ("queue wait", Some((50, 250))),
                ("cooking", Some((300, 5_000))),
                ("driver wait", Some((5_300, 100))),
                ("trip", Some((5_400, 3_000))),
            ]
        );
        assert_eq!(ms(t.total), Some((0, 8_400)));
        assert_eq!(t.ended_by.as_deref(), Some(kind::ORDER_DELIVERED));
        assert_eq!(ms(t.stage("cooking").and_then(|s| s.span)), Some((300, 5_000)));
        assert!(t.stage("nap").is_none());
    }

    #[test]
    fn an_unfinished_order_has_no_total_and_stages_not_reached_are_none() {
        let events = life(&[
            (kind::ORDER_PLACED, 0),
            (kind::ORDER_PAID, 10),
            (kind::ORDER_QUEUED, 20),
        ]);
        let t = Timeline::of(&events).unwrap();
        assert_eq!(ms(t.stages[0].span), Some((0, 10)));
        assert!(t.stages[1..].iter().all(|s| s.span.is_none()));
        assert_eq!(t.total, None);
        assert_eq!(t.ended_by, None);
    }

    #[test]
    fn a_rejected_order_ends_at_the_rejection() {
        let events = life(&[(kind::ORDER_PLACED, 0), (kind::ORDER_REJECTED, 30)]);
        let t = Timeline::of(&events).unwrap();
        assert_eq!(ms(t.total), Some((0, 30)));
        assert_eq!(t.ended_by.as_deref(), Some(kind::ORDER_REJECTED));
        assert!(t.stages.iter().all(|s| s.span.is_none()));
    }

    #[test]
    fn offsets_count_from_the_given_origin() {
        let events = life(&[(kind::ORDER_PLACED, 100), (kind::ORDER_PAID, 150)]);
        let t = Timeline::from_origin(&events, at(0));
        assert_eq!(ms(t.stages[0].span), Some((100, 50)));
        assert!(Timeline::of(&[]).is_none());
    }
}
