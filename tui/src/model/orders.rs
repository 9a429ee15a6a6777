//! The Orders panel's data: every order's events folded through the
//! contracts' state machine, with bounded memory.
//!
//! The most recent [`DETAIL_CAP`] orders keep their full event history (for
//! the detail view); older ones are folded into counts by final state. So
//! 100,000 orders cost what 2,000 do.

use std::collections::{BTreeMap, HashMap, VecDeque};

use contracts::order::{Offer, OrderFold, OrderState};
/// A stage of the trace timeline (from `contracts::timeline`).
pub use contracts::timeline::Span;
use contracts::timeline::Timeline;
use contracts::Envelope;
use time::{Duration, OffsetDateTime};

/// Orders whose every event is kept.
pub const DETAIL_CAP: usize = 2_000;

/// One order with detail.
#[derive(Debug, Clone)]
pub struct OrderEntry {
    /// The folded events.
    pub fold: OrderFold,
    /// The earliest event time seen.
    pub first_at: OffsetDateTime,
    /// The kind of the latest event seen (shown while a gap holds the fold back).
    pub last_kind: String,
}

impl OrderEntry {
    /// The order id.
    pub fn id(&self) -> &str {
        self.fold.order_id()
    }

    /// The state's name; `?` while the fold waits for an earlier event.
    pub fn state_label(&self) -> &str {
        match self.fold.state() {
            Some(s) => s.as_str(),
            None => "?",
        }
    }

    /// Whether the order has reached a terminal state.
    pub fn is_done(&self) -> bool {
        self.fold.state().is_some_and(OrderState::is_terminal)
    }

    /// Time from the first event to the last one if done, else to `now`.
    pub fn age(&self, now: OffsetDateTime) -> Duration {
        let end = if self.is_done() {
            self.fold.applied().last().map(|e| e.occurred_at).unwrap_or(now)
        } else {
            now
        };
        end - self.first_at
    }

    /// Whether `needle` (lower case) is in the id, state, kitchen or driver.
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.id().to_lowercase().contains(needle)
            || self.state_label().contains(needle)
            || self
                .fold
                .kitchen()
                .is_some_and(|k| k.to_lowercase().contains(needle))
            || self
                .fold
                .driver()
                .is_some_and(|d| d.to_lowercase().contains(needle))
    }

    /// Each step the order took: when, which event, the state after it and
    /// the node that sent it.
    pub fn steps(&self) -> Vec<Step> {
        let mut state = None;
        self.fold
            .applied()
            .iter()
            .map(|e| {
                if let Ok(s) = OrderState::step(state, e) {
                    state = Some(s);
                }
                Step {
                    at: e.occurred_at,
                    kind: e.kind.clone(),
                    state: state.map(|s| s.as_str()).unwrap_or("?"),
                    source: e.source.clone(),
                    seq: e.seq,
                    detail: contracts::events::summary(e).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The trace timeline: each stage's start (from the first event seen,
    /// held-back ones included) and length; `None` for a stage not reached.
    /// Computed by `contracts::timeline`, as `pizza-node trace` does.
    pub fn timeline(&self) -> Vec<(&'static str, Option<Span>)> {
        Timeline::from_origin(self.fold.applied(), self.first_at)
            .stages
            .into_iter()
            .map(|s| (s.name, s.span))
            .collect()
    }
}

/// One applied event, for the detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When it happened.
    pub at: OffsetDateTime,
    /// Event kind.
    pub kind: String,
    /// The order's state after it.
    pub state: &'static str,
    /// The node that sent it.
    pub source: String,
    /// Its seq.
    pub seq: u64,
    /// What it says beyond its kind (a reason, a saga step, the driver).
    pub detail: String,
}

/// What happened to an event offered to the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// A new order appeared.
    NewOrder,
    /// An order moved (or an event was held back for it).
    Changed,
    /// A duplicate, an alert, or an event of an order already aggregated.
    Nothing,
}

/// Every order seen.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    entries: HashMap<String, OrderEntry>,
    /// Ids with detail, oldest first.
    recency: VecDeque<String>,
    /// Orders beyond the detail cap, by the state they had when aggregated.
    archived: BTreeMap<&'static str, u64>,
    cap: usize,
}

impl OrderBook {
    /// A book keeping detail for `cap` orders.
    pub fn with_cap(cap: usize) -> OrderBook {
        OrderBook {
            cap: cap.max(1),
            ..Default::default()
        }
    }

    /// Folds one event in.
    pub fn offer(&mut self, env: Envelope) -> Noted {
        if env.seq == 0 || env.order_id.is_empty() {
            return Noted::Nothing;
        }
        let id = env.order_id.clone();
        let at = env.occurred_at;
        let kind = env.kind.clone();
        let mut noted = Noted::Changed;
        if !self.entries.contains_key(&id) {
            // An order already aggregated must not come back as new.
            if self.archived_ids_may_contain(&env) {
                return Noted::Nothing;
            }
            self.entries.insert(
                id.clone(),
                OrderEntry {
                    fold: OrderFold::new(id.clone()),
                    first_at: at,
                    last_kind: kind.clone(),
                },
            );
            self.recency.push_back(id.clone());
            noted = Noted::NewOrder;
            self.evict();
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return Noted::Nothing;
        };
        match entry.fold.offer(env) {
            Offer::Applied { .. } | Offer::HeldBack => {
                entry.first_at = entry.first_at.min(at);
                entry.last_kind = kind;
                noted
            }
            _ => Noted::Nothing,
        }
    }

    /// Only `order.placed` starts an order; a later event of an unknown order
    /// is either for an archived order or one placed before we listened.
    /// Both are worth showing only when they are the first event (seq 1).
    fn archived_ids_may_contain(&self, env: &Envelope) -> bool {
        env.seq > 1 && self.total() > self.entries.len() as u64
    }

    fn evict(&mut self) {
        while self.recency.len() > self.cap {
            let Some(old) = self.recency.pop_front() else {
                break;
            };
            if let Some(e) = self.entries.remove(&old) {
                let state = e.fold.state().map(|s| s.as_str()).unwrap_or("?");
                *self.archived.entry(state).or_default() += 1;
            }
        }
    }

    /// An order with detail.
    pub fn get(&self, id: &str) -> Option<&OrderEntry> {
        self.entries.get(id)
    }

    /// Orders with detail, most recent first, that match `filter`.
    pub fn recent<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a OrderEntry> + 'a {
        let needle = filter.to_lowercase();
        self.recency
            .iter()
            .rev()
            .filter_map(|id| self.entries.get(id))
            .filter(move |e| e.matches(&needle))
    }

    /// Ids of [`recent`](Self::recent), for moving a selection.
    pub fn recent_ids(&self, filter: &str) -> Vec<String> {
        self.recent(filter).map(|e| e.id().to_string()).collect()
    }

    /// Orders seen in all.
    pub fn total(&self) -> u64 {
        self.entries.len() as u64 + self.archived.values().sum::<u64>()
    }

    /// Orders with detail.
    pub fn detailed(&self) -> usize {
        self.entries.len()
    }

    /// How many orders are in each state (aggregated ones included).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = self.archived.clone();
        for e in self.entries.values() {
            let s = e.fold.state().map(|s| s.as_str()).unwrap_or("?");
            *counts.entry(s).or_default() += 1;
        }
        counts
    }
}

/// The last 8 characters of an id: order ids are UUIDv7, whose first
/// characters are a timestamp shared by every order of the same minute.
pub fn short_id(id: &str) -> &str {
    let start = id.char_indices().rev().nth(7).map(|(i, _)| i).unwrap_or(0);
    &id[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::{envelope, OrderPaid, OrderPlaced};

    fn placed(id: &str, at: OffsetDateTime) -> Envelope {
        let body = OrderPlaced {
            customer: contracts::api::Customer {
                name: "Ada".into(),
                address: "1 Loop St".into(),
            },
            items: vec![],
            amount_cents: 1250,
        };
        let mut e = envelope(&body, id, 1, "t", "order").unwrap();
        e.occurred_at = at;
        e
    }

    fn paid(id: &str, at: OffsetDateTime) -> Envelope {
        let body = OrderPaid {
            payment_id: "p".into(),
            amount_cents: 1250,
        };
        let mut e = envelope(&body, id, 2, "t", "order").unwrap();
        e.occurred_at = at;
        e
    }

    #[test]
    fn folds_out_of_order_events_and_times_the_stages() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut book = OrderBook::with_cap(10);
        assert_eq!(
            book.offer(paid("o1", t0 + Duration::milliseconds(40))),
            Noted::NewOrder
        );
        assert_eq!(book.get("o1").unwrap().state_label(), "?");
        assert_eq!(book.offer(placed("o1", t0)), Noted::Changed);
        assert_eq!(
            book.offer(placed("o1", t0)),
            Noted::Nothing,
            "a duplicate changes nothing"
        );
        let e = book.get("o1").unwrap();
        assert_eq!(e.state_label(), "paid");
        assert_eq!(e.first_at, t0);
        let payment = Span {
            offset: Duration::ZERO,
            length: Duration::milliseconds(40),
        };
        assert_eq!(e.timeline()[0], ("payment", Some(payment)));
        assert_eq!(e.timeline()[1], ("queue wait", None));
        let steps = e.steps();
        assert_eq!(
            steps.iter().map(|s| s.state).collect::<Vec<_>>(),
            ["placed", "paid"]
        );
    }

    #[test]
    fn memory_is_bounded_and_old_orders_are_counted_by_state() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut book = OrderBook::with_cap(100);
        for i in 0..1_000 {
            book.offer(placed(&format!("o{i}"), t0));
        }
        assert_eq!(book.detailed(), 100);
        assert_eq!(book.total(), 1_000);
        assert_eq!(book.counts()["placed"], 1_000);
        // A late event of an aggregated order does not bring it back.
        assert_eq!(book.offer(paid("o1", t0)), Noted::Nothing);
        assert_eq!(book.total(), 1_000);
        assert_eq!(book.recent("").next().map(|e| e.id()), Some("o999"));
        assert_eq!(
            book.recent_ids("o99").len(),
            10,
            "o990..o999; o99 itself is aggregated"
        );
    }

    #[test]
    fn short_ids_are_the_random_tail() {
        assert_eq!(short_id("ord_0193aa00bb11cc22dd33ee44ff556677"), "ff556677");
        assert_eq!(short_id("abc"), "abc");
    }
}
