//! The outbox: messages a node must not lose, kept in sled from before they
//! are sent until the receiver has them.
//!
//! A queue put leaves the outbox when the keeper's confirm arrives (the put is
//! then on the keeper's disk); an event leaves it when the event log's
//! confirm arrives (likewise on disk). Never on a PUBACK: that only says the
//! broker holds it in memory. Whatever is still here is sent again after a
//! timeout, after every reconnect and after a restart; receivers deduplicate
//! by event id, so a second copy is harmless.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::NodeError;

/// What confirms an outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// The keeper's confirm on the put's queue.
    Keeper,
    /// The event log's confirm (`pub_ack` in outboxes written before events
    /// were confirmed by the log: they are confirmed by the log now too).
    #[serde(alias = "pub_ack")]
    Log,
}

/// One message waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The message's event id.
    pub id: Uuid,
    /// Where it goes.
    pub topic: String,
    /// The JSON payload.
    pub payload: String,
    /// What removes it.
    pub confirmation: Confirmation,
}

impl Entry {
    /// `envelope` bound for `topic`, kept until `confirmation`.
    pub fn for_envelope(
        topic: String,
        envelope: &contracts::Envelope,
        confirmation: Confirmation,
    ) -> Result<Entry, NodeError> {
        Ok(Entry {
            id: envelope.event_id,
            topic,
            payload: serde_json::to_string(envelope)?,
            confirmation,
        })
    }
}

/// The outbox, a sled tree keyed by event id.
pub struct Outbox {
    tree: sled::Tree,
    /// The inbox's tree, for [`Outbox::add_finishing`]: a step's last
    /// messages and the record that its message was handled are one write.
    inbox: sled::Tree,
    commit: crate::runtime::commit::GroupCommit,
    emptied: Notify,
    /// Entries waiting, kept up to date: sled's `len` is a full scan, and
    /// the heartbeat asks every second.
    count: AtomicUsize,
}

impl Outbox {
    /// Opens the outbox in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, NodeError> {
        let tree = db.open_tree("outbox")?;
        Ok(Outbox {
            count: AtomicUsize::new(tree.len()),
            tree,
            inbox: db.open_tree(crate::runtime::inbox::TREE)?,
            commit: crate::runtime::commit::GroupCommit::start(db.clone()),
            emptied: Notify::new(),
        })
    }

    /// Stores an entry and flushes, so it survives a kill -9 from here on.
    pub async fn add(&self, entry: &Entry) -> Result<(), NodeError> {
        self.add_many(std::slice::from_ref(entry)).await
    }

    /// Stores several entries with one flush (group commit).
    pub async fn add_many(&self, entries: &[Entry]) -> Result<(), NodeError> {
        let fresh = {
            let _w = broker::backup::writing();
            self.insert(entries)?
        };
        self.stored(fresh).await
    }

    /// Stores `entries`, then records `handled` in the inbox, then flushes.
    ///
    /// A kill -9 leaves both or the entries alone, never the record without
    /// the effect (the effect would be lost): sled writes one log in order
    /// and recovers a prefix of it, and the record is written last. Only
    /// "the effects without the record" remains, for writes still in sled's
    /// buffers at the kill, and then the effects' derived ids make the
    /// second run's messages the same ones. Not a sled transaction: that
    /// takes sled's global write lock, which waits for every flush in
    /// progress, and made the order flow 9x slower (flow-bench at 500/s:
    /// POST -> delivered p50 64 ms -> 558 ms).
    pub async fn add_finishing(&self, entries: &[Entry], handled: &Uuid) -> Result<(), NodeError> {
        let fresh = {
            // Both in a backup, or neither.
            let _w = broker::backup::writing();
            let fresh = self.insert(entries)?;
            self.inbox.insert(handled.as_bytes(), &[][..])?;
            fresh
        };
        self.stored(fresh).await
    }

    /// Writes `entries` (not flushed); returns how many are new. A re-added
    /// entry (same id) replaces itself and is counted once.
    fn insert(&self, entries: &[Entry]) -> Result<usize, NodeError> {
        let mut fresh = 0;
        for e in entries {
            let previous = self.tree.insert(e.id.as_bytes(), serde_json::to_vec(e)?)?;
            fresh += usize::from(previous.is_none());
        }
        Ok(fresh)
    }

    /// Counts `fresh` new entries and waits until they are on disk.
    async fn stored(&self, fresh: usize) -> Result<(), NodeError> {
        self.count.fetch_add(fresh, Ordering::Relaxed);
        self.commit.durable().await?;
        Ok(())
    }

    /// Removes confirmed entries; returns how many were here.
    pub fn confirm(&self, ids: &[Uuid]) -> Result<usize, NodeError> {
        let _w = broker::backup::writing();
        let mut removed = 0;
        for id in ids {
            if self.tree.remove(id.as_bytes())?.is_some() {
                removed += 1;
            }
        }
        self.count.fetch_sub(removed, Ordering::Relaxed);
        if removed > 0 && self.tree.is_empty() {
            self.emptied.notify_waiters();
        }
        Ok(removed)
    }

    /// Whether `id` is still waiting.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.tree.contains_key(id.as_bytes()).unwrap_or(false)
    }

    /// Every entry waiting.
    pub fn pending(&self) -> Result<Vec<Entry>, NodeError> {
        self.tree
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// How many entries wait.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Waits until every entry is confirmed.
    pub async fn drained(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_stay_until_confirmed_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        {
            let db = sled::open(dir.path()).unwrap();
            let outbox = Outbox::open(&db).unwrap();
            let entry = Entry {
                id,
                topic: "pizza/q/kitchen/put".into(),
                payload: "{}".into(),
                confirmation: Confirmation::Keeper,
            };
            outbox.add(&entry).await.unwrap();
            assert_eq!(outbox.confirm(&[Uuid::new_v4()]).unwrap(), 0);
            assert_eq!(outbox.len(), 1);
        }
        // sled's background flusher may hold the file lock a moment after
        // the first handle drops (seen under load): reopen with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::open(dir.path()) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot reopen the outbox: {e}"),
            }
        };
        let outbox = Outbox::open(&db).unwrap();
        assert_eq!(outbox.pending().unwrap()[0].id, id);
        assert_eq!(outbox.len(), 1, "counted from the tree on reopen");
        assert_eq!(outbox.confirm(&[id]).unwrap(), 1);
        assert!(outbox.is_empty());
        assert_eq!(outbox.len(), 0);
        outbox.drained().await;
    }

    #[tokio::test]
    async fn a_finishing_write_records_the_handled_message_with_its_effects() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let outbox = Outbox::open(&db).unwrap();
        let inbox = crate::runtime::inbox::Inbox::open(&db).unwrap();
        let (handled, effect) = (Uuid::new_v4(), Uuid::new_v4());
        let entry = Entry {
            id: effect,
            topic: "pizza/log/put".into(),
            payload: "{}".into(),
            confirmation: Confirmation::Log,
        };
        outbox
            .add_finishing(std::slice::from_ref(&entry), &handled)
            .await
            .unwrap();
        assert!(inbox.seen(&handled), "the consumed message is recorded");
        assert_eq!(outbox.pending().unwrap(), vec![entry.clone()]);
        assert_eq!(outbox.len(), 1);
        // Written again (a retry after a lost confirm): counted once.
        outbox.add_finishing(&[entry], &handled).await.unwrap();
        assert_eq!(outbox.len(), 1);
    }
}
