//! The keeper's durable state in sled: queue items, dead letters, and the
//! event ids already accepted (so a re-sent put is stored once).
//!
//! Layout, per queue `q`:
//! - tree `items/q`: event id (16 bytes) -> stored item JSON (see
//!   [`wire::stored_json`]), or an empty tombstone once the item is done;
//! - tree `dlq/q`:   id (u64 big-endian) -> [`DeadLetter`] JSON;
//! - key `next_seq`: the next queue position.
//!
//! Keying items by event id makes a put one compare-and-swap that both
//! deduplicates and stores, and a done one tombstone write that keeps the
//! dedupe record: two sled operations per message (sled costs ~8 µs an
//! operation here, so the count is the throughput). Put order lives in the
//! stored `seq`; a restart sorts the live items by it.
//!
//! Durability: callers batch writes and call [`Store::flush`] once per batch
//! before confirming (group commit). sled's flush survives kill -9 of the
//! process; it does not promise survival of a power cut.

use std::path::Path;

use bytes::Bytes;
use contracts::queue::DeadLetter;
use uuid::Uuid;

use crate::queue::Item;
use crate::wire;

/// Errors of the keeper's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (disk full, corrupt files, another process holds the lock).
    #[error(
        "queue storage failed: {0}; check the data directory is writable and not used by another broker"
    )]
    Sled(#[from] sled::Error),
    /// A stored record did not decode.
    #[error("queue storage holds a record that does not decode ({0}); the data directory may be from another version")]
    Decode(#[from] serde_json::Error),
}

/// The keeper's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// DLQ sizes, counted once and then kept up to date: sled's `len` is a
    /// full scan, and the stats ask every 500 ms.
    dead: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    trees: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, sled::Tree>>>,
}

fn key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn unkey(k: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = k.len().min(8);
    b[..n].copy_from_slice(&k[..n]);
    u64::from_be_bytes(b)
}

impl Store {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(sled::Error::from)?;
        let db = sled::Config::new()
            .path(dir.join("queues"))
            .mode(sled::Mode::HighThroughput)
            // sled's default cache is 1 GiB; the queues need far less.
            .cache_capacity(64 * 1024 * 1024)
            // We flush explicitly per batch; the background flush only bounds
            // what a crash can lose of the non-critical writes (attempt counts).
            .flush_every_ms(Some(500))
            .open()?;
        Ok(Store {
            db,
            dead: Default::default(),
            trees: Default::default(),
        })
    }

    /// The tree `{kind}/{queue}`, opened once and then served from a cache
    /// (opening by name on every message showed up in profiles).
    fn tree(&self, kind: &str, queue: &str) -> Result<sled::Tree, StoreError> {
        let name = format!("{kind}/{queue}");
        let mut trees = self.trees.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = trees.get(&name) {
            return Ok(t.clone());
        }
        let t = self.db.open_tree(&name)?;
        trees.insert(name, t.clone());
        Ok(t)
    }

    fn items(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("items", queue)
    }

    fn dlq(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("dlq", queue)
    }

    fn withdrawn(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("withdrawn", queue)
    }

    /// Records that `order_id` was withdrawn from `queue`, with the highest
    /// envelope seq seen of it (not flushed).
    pub fn set_withdrawn(&self, queue: &str, order_id: &str, last_seq: u64) -> Result<(), StoreError> {
        self.withdrawn(queue)?
            .insert(order_id.as_bytes(), &key(last_seq))?;
        Ok(())
    }

    /// Every withdrawn key of `queue` and its last seq.
    pub fn load_withdrawn(&self, queue: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.withdrawn(queue)?.iter() {
            let (k, v) = entry?;
            out.push((String::from_utf8_lossy(&k).into_owned(), unkey(&v)));
        }
        Ok(out)
    }

    /// Names of the queues that have ever held anything.
    pub fn queue_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix("items/")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }

    /// The next free seq, persisted so that seqs never repeat.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.db.get("next_seq")?.map_or(1, |v| unkey(&v)))
    }

    /// Remembers the next free seq (written with the batch it belongs to).
    pub fn set_next_seq(&self, seq: u64) -> Result<(), StoreError> {
        self.db.insert("next_seq", &key(seq))?;
        Ok(())
    }

    /// Stores a new item unless its event id was accepted before (then
    /// returns false and stores nothing). Not flushed.
    pub fn add(&self, queue: &str, item: &Item) -> Result<bool, StoreError> {
        let value = wire::stored_json(item)?;
        let swapped = self.items(queue)?.compare_and_swap(
            item.meta.event_id.as_bytes(),
            None as Option<&[u8]>,
            Some(value),
        )?;
        Ok(swapped.is_ok())
    }

    /// Stores an updated item (not flushed).
    pub fn save(&self, queue: &str, item: &Item) -> Result<(), StoreError> {
        self.items(queue)?
            .insert(item.meta.event_id.as_bytes(), wire::stored_json(item)?)?;
        Ok(())
    }

    /// Marks an item finished: a tombstone that still deduplicates a late
    /// re-sent put of it (not flushed).
    pub fn finish(&self, queue: &str, event_id: &Uuid) -> Result<(), StoreError> {
        self.items(queue)?.insert(event_id.as_bytes(), &[])?;
        Ok(())
    }

    /// Every live item of `queue` in put order, to rebuild after a restart.
    pub fn load(&self, queue: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for entry in self.items(queue)?.iter() {
            let (_, v) = entry?;
            if v.is_empty() {
                continue;
            }
            let s: wire::StoredIn = serde_json::from_slice(&v)?;
            let envelope = Bytes::from(s.envelope.get().to_owned());
            out.push(Item {
                seq: s.seq,
                attempt: s.attempt,
                redelivery: s.redelivery,
                meta: wire::check_envelope(&envelope)?,
                envelope,
            });
        }
        out.sort_by_key(|i| i.seq);
        Ok(out)
    }

    /// Adds a dead letter; returns it with its id.
    pub fn bury(&self, mut letter: DeadLetter) -> Result<DeadLetter, StoreError> {
        let tree = self.dlq(&letter.queue)?;
        letter.id = self.db.generate_id()?;
        tree.insert(key(letter.id), serde_json::to_vec(&letter)?)?;
        self.adjust_dead(&letter.queue, |n| n + 1);
        Ok(letter)
    }

    /// Dead letters of `queue`, oldest first.
    pub fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.dlq(queue)?
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    /// How many dead letters `queue` holds.
    pub fn dead_count(&self, queue: &str) -> Result<u64, StoreError> {
        let mut dead = self.lock_dead();
        if let Some(n) = dead.get(queue) {
            return Ok(*n);
        }
        let n = self.dlq(queue)?.len() as u64;
        dead.insert(queue.to_string(), n);
        Ok(n)
    }

    fn lock_dead(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u64>> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adjusts a counted DLQ size (an uncounted one is counted when asked).
    fn adjust_dead(&self, queue: &str, change: impl FnOnce(u64) -> u64) {
        if let Some(n) = self.lock_dead().get_mut(queue) {
            *n = change(*n);
        }
    }

    /// Takes dead letters out of the DLQ (`ids`, or all of them).
    pub fn exhume(&self, queue: &str, ids: &[u64], all: bool) -> Result<Vec<DeadLetter>, StoreError> {
        let tree = self.dlq(queue)?;
        let wanted: Vec<u64> = if all {
            tree.iter()
                .keys()
                .filter_map(|k| k.ok().map(|k| unkey(&k)))
                .collect()
        } else {
            ids.to_vec()
        };
        let mut out = Vec::new();
        for id in wanted {
            if let Some(v) = tree.remove(key(id))? {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        let taken = out.len() as u64;
        self.adjust_dead(queue, |n| n.saturating_sub(taken));
        Ok(out)
    }

    /// Makes every write so far durable. Confirms go out only after this.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::Envelope;

    fn item(seq: u64, order: &str) -> Item {
        let e = Envelope::new(
            "kitchen.ticket",
            order,
            1,
            "t",
            "p1",
            serde_json::json!({"n": seq}),
        );
        Item::from_envelope(seq, &e).unwrap()
    }

    #[tokio::test]
    async fn reopening_restores_live_items_in_put_order_and_still_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (item(3, "o1"), item(1, "o2"), item(2, "o3"));
        {
            let store = Store::open(dir.path()).unwrap();
            for i in [&a, &b, &c] {
                assert!(store.add("kitchen", i).unwrap());
            }
            assert!(
                !store.add("kitchen", &a).unwrap(),
                "a re-sent put is not stored twice"
            );
            store.finish("kitchen", &c.meta.event_id).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let seqs: Vec<u64> = store.load("kitchen").unwrap().iter().map(|i| i.seq).collect();
        assert_eq!(seqs, vec![1, 3], "live items, in seq order");
        assert!(
            !store.add("kitchen", &c).unwrap(),
            "a finished id still deduplicates"
        );
        assert_eq!(store.queue_names(), vec!["kitchen".to_string()]);
        let letter = |id| DeadLetter {
            id,
            queue: "kitchen".into(),
            reason: "test".into(),
            attempts: 1,
            at: String::new(),
            envelope: None,
            raw: None,
        };
        assert_eq!(store.dead_count("kitchen").unwrap(), 0);
        let a = store.bury(letter(0)).unwrap();
        store.bury(letter(0)).unwrap();
        assert_eq!(store.dead_count("kitchen").unwrap(), 2, "counted without a scan");
        assert_eq!(store.exhume("kitchen", &[a.id], false).unwrap().len(), 1);
        assert_eq!(store.dead_count("kitchen").unwrap(), 1);
    }
}
