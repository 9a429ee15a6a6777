//! The loss ledger: Jepsen's total-queue check, kept live. Every number is
//! what the control room itself saw: the answers to its own `POST /orders`
//! and the events of the broker's event log (its feed), never a node's
//! claim about itself.
//!
//! Plain data, fed the same messages as the model.

use std::collections::{BTreeMap, BTreeSet};

use contracts::events::kind;
use uuid::Uuid;

use crate::msg::Msg;

/// What became of every order the control room tried to place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// `POST /orders` sent.
    pub attempted: u64,
    /// Refusals by status and code (`503 payment_unavailable`).
    pub refused: BTreeMap<String, u64>,
    /// Accepted (201), by order id.
    accepted: BTreeSet<String>,
    /// Distinct `order.delivered` events per order (a resend of the same
    /// event is one; a second delivery is another).
    delivered: BTreeMap<String, BTreeSet<Uuid>>,
    /// Distinct `order.ready` events per order: cooked more than once.
    ready: BTreeMap<String, BTreeSet<Uuid>>,
    /// Orders that ended without a delivery, rightly: cancelled, rejected.
    ended: BTreeSet<String>,
}

/// The ledger's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// `POST /orders` sent.
    pub attempted: u64,
    /// Answered 201.
    pub accepted: u64,
    /// Answered anything else (or not at all).
    pub refused: u64,
    /// Accepted and delivered.
    pub delivered: u64,
    /// Accepted and cancelled or rejected since.
    pub ended: u64,
    /// Accepted, not finished yet: lost, once the platform is quiet.
    pub open: u64,
    /// Delivered by two or more `order.delivered` events.
    pub delivered_twice: u64,
    /// Cooked by two or more `order.ready` events.
    pub cooked_twice: u64,
}

impl Ledger {
    /// Notes what `msg` says about orders.
    pub fn observe(&mut self, msg: &Msg) {
        match msg {
            Msg::Placed(o) => {
                self.attempted += u64::from(o.requested);
                self.accepted.extend(o.accepted.iter().cloned());
                for (why, n) in &o.refused {
                    *self.refused.entry(why.clone()).or_default() += u64::from(*n);
                }
            }
            Msg::Event(e) => {
                let seen = match e.kind.as_str() {
                    kind::ORDER_DELIVERED => &mut self.delivered,
                    kind::ORDER_READY => &mut self.ready,
                    kind::ORDER_CANCELLED | kind::ORDER_REJECTED => {
                        self.ended.insert(e.order_id.clone());
                        return;
                    }
                    _ => return,
                };
                seen.entry(e.order_id.clone()).or_default().insert(e.event_id);
            }
            _ => {}
        }
    }

    /// The figures now.
    pub fn tally(&self) -> Tally {
        let accepted = |of: &BTreeMap<String, BTreeSet<Uuid>>, at_least: usize| {
            self.accepted
                .iter()
                .filter(|id| of.get(*id).is_some_and(|s| s.len() >= at_least))
                .count() as u64
        };
        let delivered = accepted(&self.delivered, 1);
        let ended = self
            .accepted
            .iter()
            .filter(|id| self.ended.contains(*id) && !self.delivered.contains_key(*id))
            .count() as u64;
        Tally {
            attempted: self.attempted,
            accepted: self.accepted.len() as u64,
            refused: self.refused.values().sum(),
            delivered,
            ended,
            open: self.accepted.len() as u64 - delivered - ended,
            delivered_twice: accepted(&self.delivered, 2),
            cooked_twice: accepted(&self.ready, 2),
        }
    }

    /// The accepted orders not finished yet, at most `n` of them.
    pub fn open(&self, n: usize) -> Vec<&str> {
        self.accepted
            .iter()
            .filter(|id| !self.delivered.contains_key(*id) && !self.ended.contains(*id))
            .take(n)
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::PlaceOutcome;
    use contracts::Envelope;

    fn placed(accepted: &[&str], refused: u32) -> Msg {
        Msg::Placed(PlaceOutcome {
            requested: accepted.len() as u32 + refused,
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
            refused: [("503 payment_unavailable".to_string(), refused)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            first_error: None,
            quiet: true,
        })
    }

    fn event(kind: &str, order: &str, id: u128) -> Msg {
        let mut e = Envelope::new(kind, order, 1, "t", "n", serde_json::Value::Null);
        e.event_id = Uuid::from_u128(id);
        Msg::Event(Box::new(e))
    }

    #[test]
    fn it_counts_what_was_accepted_and_what_became_of_it() {
        let mut l = Ledger::default();
        l.observe(&placed(&["a", "b", "c", "d"], 2));
        l.observe(&event(kind::ORDER_READY, "a", 1));
        l.observe(&event(kind::ORDER_DELIVERED, "a", 2));
        // The same event again (a resend) is one delivery.
        l.observe(&event(kind::ORDER_DELIVERED, "a", 2));
        // b cooked twice and delivered twice.
        l.observe(&event(kind::ORDER_READY, "b", 3));
        l.observe(&event(kind::ORDER_READY, "b", 4));
        l.observe(&event(kind::ORDER_DELIVERED, "b", 5));
        l.observe(&event(kind::ORDER_DELIVERED, "b", 6));
        l.observe(&event(kind::ORDER_CANCELLED, "c", 7));
        // Not ours: not counted.
        l.observe(&event(kind::ORDER_DELIVERED, "x", 8));
        assert_eq!(
            l.tally(),
            Tally {
                attempted: 6,
                accepted: 4,
                refused: 2,
                delivered: 2,
                ended: 1,
                open: 1,
                delivered_twice: 1,
                cooked_twice: 1,
            }
        );
        assert_eq!(l.open(10), ["d"]);
    }
}
