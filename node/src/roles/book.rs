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
        };
        for v in tree.iter().values() {
            let env: Envelope = serde_json::from_slice(&v?)?;
            book.fold(env);
        }
        Ok(book)
    }

    fn fold(&mut self, env: Envelope) -> Offer {
        let id = env.order_id.clone();
        let fold = self
            .folds
            .entry(id.clone())
            .or_insert_with(|| OrderFold::new(id.clone()));
        let offer = fold.offer(env);
        if fold.placed().is_some() {
            self.placed.insert(id, ());
        }
        offer
    }

    /// Folds one event in and stores it (unflushed: see [`Book::flush`]).
    /// Returns what the fold did; duplicates are not stored again.
    pub fn record(&mut self, env: Envelope) -> Result<Offer, NodeError> {
        let k = key(&env);
        let bytes = serde_json::to_vec(&env)?;
        let offer = self.fold(env);
        if matches!(offer, Offer::Applied { .. } | Offer::HeldBack) {
            self.tree.insert(k, bytes)?;
        }
        Ok(offer)
    }

    /// Makes recorded events durable.
    pub async fn flush(&self) -> Result<(), NodeError> {
        self.tree.flush_async().await?;
        Ok(())
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
        self.folds.get(order_id)?.view()
    }

    /// The newest orders first, optionally only those in `state`.
    pub fn list(&self, state: Option<OrderState>, limit: usize) -> Vec<OrderView> {
        self.placed
            .keys()
            .rev()
            .filter_map(|id| self.folds.get(id))
            .filter(|f| state.is_none() || f.state() == state)
            .filter_map(OrderFold::view)
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
