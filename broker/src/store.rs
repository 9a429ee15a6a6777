//! The keeper's durable state in sled: queue items, dead letters, and the
//! event ids already accepted (so a re-sent put is stored once).
//!
//! Layout, per queue `q`:
//! - tree `items/q`: seq (u64 big-endian) -> [`Stored`] JSON
//! - tree `dlq/q`:   id  (u64 big-endian) -> [`DeadLetter`] JSON
//! - tree `seen/q`:  event id (16 bytes)  -> seq
//! - tree `meta`:    `next_seq` -> u64
//!
//! Durability: callers batch writes and call [`Store::flush`] once per batch
//! before confirming (group commit). sled's flush survives kill -9 of the
//! process; it does not promise survival of a power cut.

use std::path::Path;

use contracts::queue::DeadLetter;
use contracts::Envelope;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::queue::Item;

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

/// A queue item as stored.
#[derive(Debug, Deserialize)]
struct Stored {
    attempt: u32,
    #[serde(default)]
    redelivery: Option<String>,
    envelope: Envelope,
}

/// [`Stored`] borrowed, to write without cloning the envelope.
#[derive(Serialize)]
struct StoredRef<'a> {
    attempt: u32,
    redelivery: &'a Option<String>,
    envelope: &'a Envelope,
}

/// The keeper's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
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
            // We flush explicitly per batch; the background flush only bounds
            // what a crash can lose of the non-critical writes (attempt counts).
            .flush_every_ms(Some(500))
            .open()?;
        Ok(Store { db })
    }

    fn items(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("items/{queue}"))?)
    }

    fn dlq(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("dlq/{queue}"))?)
    }

    fn seen_tree(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("seen/{queue}"))?)
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

    /// Whether `event_id` was already accepted on `queue`.
    pub fn seen(&self, queue: &str, event_id: &Uuid) -> Result<bool, StoreError> {
        Ok(self.seen_tree(queue)?.contains_key(event_id.as_bytes())?)
    }

    /// Stores a new item and remembers its event id (not flushed).
    pub fn add(&self, queue: &str, item: &Item) -> Result<(), StoreError> {
        self.save(queue, item)?;
        self.seen_tree(queue)?
            .insert(item.envelope.event_id.as_bytes(), &key(item.seq))?;
        Ok(())
    }

    /// Stores an updated item (not flushed).
    pub fn save(&self, queue: &str, item: &Item) -> Result<(), StoreError> {
        let stored = StoredRef {
            attempt: item.attempt,
            redelivery: &item.redelivery,
            envelope: &item.envelope,
        };
        self.items(queue)?
            .insert(key(item.seq), serde_json::to_vec(&stored)?)?;
        Ok(())
    }

    /// Deletes a finished item (not flushed).
    pub fn remove(&self, queue: &str, seq: u64) -> Result<(), StoreError> {
        self.items(queue)?.remove(key(seq))?;
        Ok(())
    }

    /// Every item of `queue` in seq order, to rebuild after a restart.
    pub fn load(&self, queue: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for entry in self.items(queue)?.iter() {
            let (k, v) = entry?;
            let s: Stored = serde_json::from_slice(&v)?;
            out.push(Item {
                seq: unkey(&k),
                attempt: s.attempt,
                redelivery: s.redelivery,
                envelope: s.envelope,
            });
        }
        Ok(out)
    }

    /// Adds a dead letter; returns it with its id.
    pub fn bury(&self, mut letter: DeadLetter) -> Result<DeadLetter, StoreError> {
        let tree = self.dlq(&letter.queue)?;
        letter.id = self.db.generate_id()?;
        tree.insert(key(letter.id), serde_json::to_vec(&letter)?)?;
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
        Ok(self.dlq(queue)?.len() as u64)
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
        Ok(out)
    }

    /// Forgets that an event id was accepted, so a re-queued dead letter can
    /// be put again.
    pub fn forget(&self, queue: &str, event_id: &Uuid) -> Result<(), StoreError> {
        self.seen_tree(queue)?.remove(event_id.as_bytes())?;
        Ok(())
    }

    /// Makes every write so far durable. Confirms go out only after this.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}
