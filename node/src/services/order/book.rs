//! The order node's book: every order's state, folded from its events
//! through the contract's state machine, and kept in sled so that a restart
//! rebuilds it.

use std::collections::{BTreeMap, HashMap};

use contracts::api::OrderView;
use contracts::order::{Offer, OrderFold, OrderState};
use contracts::Envelope;

use crate::error::NodeError;

/// Every order this node knows.
pub struct Book {
    /// `order_id/seq/event_id` -> envelope JSON.
    tree: sled::Tree,
    folds: HashMap<String, OrderFold>,
    /// order ids by when they were placed, newest last (ids are time-ordered).
    placed: BTreeMap<String, ()>,
    /// Envelopes waiting behind a gap now, over all orders.
    held_back: usize,
    /// Envelopes that waited behind a gap and were applied once it filled,
    /// since the node started: the proof that disorder was repaired.
    released_total: u64,
    /// Orders per state, kept as events move them (for the metrics).
    by_state: HashMap<OrderState, u64>,
}

fn key(env: &Envelope) -> String {
    format!("{}/{:020}/{}", env.order_id, env.seq, env.event_id)
}

impl Book {
    /// Opens the book in `db` and folds everything recorded.
    pub fn open(db: &sled::Db) -> Result<Book, NodeError> {
        let tree = db.open_tree("orders")?;
        let mut book = Book {
            tree: tree.clone(),
            folds: HashMap::new(),
            placed: BTreeMap::new(),
            held_back: 0,
            released_total: 0,
            by_state: HashMap::new(),
        };
        for v in tree.iter().values() {
            let env: Envelope = serde_json::from_slice(&v?)?;
            book.fold(env);
        }
        // Stored in seq order, so the replay releases nothing; counting
        // starts with this run.
        book.released_total = 0;
        Ok(book)
    }

    fn fold(&mut self, env: Envelope) -> Offer {
        let id = env.order_id.clone();
        let fold = self
            .folds
            .entry(id.clone())
            .or_insert_with(|| OrderFold::new(id.clone()));
        let before = fold.state();
        let offer = fold.offer(env);
        let after = fold.state();
        if before != after {
            if let Some(n) = before.and_then(|s| self.by_state.get_mut(&s)) {
                *n = n.saturating_sub(1);
            }
            if let Some(s) = after {
                *self.by_state.entry(s).or_default() += 1;
            }
        }
        if fold.placed().is_some() {
            self.placed.insert(id, ());
        }
        match offer {
            Offer::HeldBack => self.held_back += 1,
            // The offered envelope plus any it released from behind the gap.
            Offer::Applied { applied, illegal } => {
                let released = (applied + illegal).saturating_sub(1);
                self.held_back = self.held_back.saturating_sub(released);
                self.released_total += released as u64;
            }
            _ => {}
        }
        offer
    }

    /// Envelopes waiting behind a gap in their order's seqs now.
    pub fn held_back(&self) -> usize {
        self.held_back
    }

    /// How many orders are in `state` now.
    pub fn count_in(&self, state: OrderState) -> u64 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }

    /// Envelopes released from behind a gap since the node started.
    pub fn released_total(&self) -> u64 {
        self.released_total
    }

    /// Folds one event in and stores it (unflushed: see [`Book::flush`]).
    /// Returns what the fold did; duplicates are not stored again.
    pub fn record(&mut self, env: Envelope) -> Result<Offer, NodeError> {
        let k = key(&env);
        let bytes = serde_json::to_vec(&env)?;
        let offer = self.fold(env);
        if matches!(offer, Offer::Applied { .. } | Offer::HeldBack) {
            let _w = broker::backup::writing();
            self.tree.insert(k, bytes)?;
        }
        Ok(offer)
    }

    /// Makes recorded events durable: a handle to flush the book with after
    /// letting go of its lock (what was recorded before the call is on disk
    /// when its `flush_async` ends).
    pub fn flusher(&self) -> sled::Tree {
        self.tree.clone()
    }

    /// One order's fold.
    pub fn get(&self, order_id: &str) -> Option<&OrderFold> {
        self.folds.get(order_id)
    }

    /// The next seq an event of `order_id` should carry.
    pub fn next_seq(&self, order_id: &str) -> u64 {
        self.folds.get(order_id).map_or(1, OrderFold::next_seq)
    }

    /// The view `GET /orders/{id}` shows.
    pub fn view(&self, order_id: &str) -> Option<OrderView> {
        contracts::api::OrderView::of(self.folds.get(order_id)?)
    }

    /// The newest orders first, optionally only those in `state`.
    pub fn list(&self, state: Option<OrderState>, limit: usize) -> Vec<OrderView> {
        self.placed
            .keys()
            .rev()
            .filter_map(|id| self.folds.get(id))
            .filter(|f| state.is_none() || f.state() == state)
            .filter_map(contracts::api::OrderView::of)
            .take(limit)
            .collect()
    }

    /// Orders in `state` (e.g. to resume compensations after a restart).
    pub fn in_state(&self, state: OrderState) -> Vec<String> {
        self.folds
            .values()
            .filter(|f| f.state() == Some(state))
            .map(|f| f.order_id().to_string())
            .collect()
    }

    /// How many orders are known.
    pub fn len(&self) -> usize {
        self.placed.len()
    }

    /// Whether no order is known.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::{self, OrderPaid, OrderPlaced, OrderQueued};

    fn order(id: &str) -> Vec<Envelope> {
        let placed = OrderPlaced {
            customer: contracts::api::Customer {
                name: "Ada".into(),
                address: "1 Loop St".into(),
            },
            items: vec![],
            amount_cents: 1250,
        };
        let placed = events::envelope(&placed, id, 1, "t", "order").unwrap();
        let paid = OrderPaid {
            payment_id: "p".into(),
            amount_cents: 1250,
        };
        let paid = events::follow(&paid, &placed, 2, "order").unwrap();
        let queued = OrderQueued {
            queue: "kitchen".into(),
        };
        let queued = events::follow(&queued, &paid, 3, "order").unwrap();
        vec![placed, paid, queued]
    }

    #[test]
    fn held_back_envelopes_are_counted_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut book = Book::open(&db).unwrap();
        let [placed, paid, queued]: [Envelope; 3] = order("o1").try_into().unwrap();
        assert_eq!(book.record(queued.clone()).unwrap(), Offer::HeldBack);
        assert_eq!(book.record(paid.clone()).unwrap(), Offer::HeldBack);
        assert_eq!(book.record(queued).unwrap(), Offer::Duplicate);
        assert_eq!((book.held_back(), book.released_total()), (2, 0));
        assert_eq!(
            book.record(placed).unwrap(),
            Offer::Applied {
                applied: 3,
                illegal: 0
            }
        );
        assert_eq!((book.held_back(), book.released_total()), (0, 2));
        assert_eq!(book.record(paid).unwrap(), Offer::Duplicate);
        assert_eq!(book.get("o1").and_then(|f| f.state()), Some(OrderState::Queued));

        drop(book);
        let book = Book::open(&db).unwrap();
        assert_eq!(
            (book.held_back(), book.released_total()),
            (0, 0),
            "a replay releases nothing"
        );
        assert_eq!(book.get("o1").map(|f| f.applied().len()), Some(3));
    }
}
