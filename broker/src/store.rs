//! The keeper's durable state in sled: queue journals, dead letters, and
//! withdrawn keys.
//!
//! Layout, per queue `q`:
//! - tree `log/q`:  record number (u64 big-endian) -> a run of put and done
//!   operations (see [`crate::journal`]), a few records per batch;
//! - tree `seen/q`: record number -> event ids accepted in one batch (16
//!   bytes each), for deduplicating re-sent puts;
//! - tree `dlq/q`:  id (u64 big-endian) -> [`DeadLetter`] JSON;
//! - tree `withdrawn/q`: order id -> the highest seq seen of it;
//! - key `next_seq`: the next queue position.
//!
//! Durability: writes are buffered per batch and written by [`Store::flush`],
//! which the keeper calls once per batch before confirming (group commit).
//! sled's flush survives kill -9 of the process; it does not promise
//! survival of a power cut.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use contracts::queue::DeadLetter;
use uuid::Uuid;

use crate::journal::{self, JournalError, Live, Op, Replay, Seen};
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
    /// A journal record did not decode.
    #[error(
        "queue storage holds a damaged journal record ({0}); the data directory may be from another version"
    )]
    Journal(#[from] JournalError),
}

/// One queue's journal as the store writes it.
#[derive(Debug)]
struct Journal {
    live: Live,
    seen: Seen,
    /// The record being filled: its number and bytes.
    open: Option<(u64, Vec<u8>)>,
    /// Full records waiting for the next flush.
    sealed: Vec<(u64, Vec<u8>)>,
}

impl Journal {
    fn new() -> Journal {
        Journal {
            live: Live::default(),
            seen: Seen::new(journal::SEEN_KEEP),
            open: None,
            sealed: Vec::new(),
        }
    }
}

/// The keeper's sled database.
pub struct Store {
    db: sled::Db,
    /// DLQ sizes, counted once and then kept up to date: sled's `len` is a
    /// full scan, and the stats ask every 500 ms.
    dead: Arc<Mutex<HashMap<String, u64>>>,
    trees: Arc<Mutex<HashMap<String, sled::Tree>>>,
    journals: BTreeMap<String, Journal>,
    /// The next record number, for every queue's `log` and `seen` trees.
    next_record: u64,
    /// The next free seq as last written.
    next_seq: u64,
    /// Something was written (or waits to be) since the last flush.
    dirty: bool,
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
    /// The database, for backups (`crate::backup::Shelf`).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(sled::Error::from)?;
        let db = sled::Config::new()
            .path(dir.join("queues"))
            .mode(sled::Mode::HighThroughput)
            // sled's default cache is 1 GiB; the queues need far less.
            .cache_capacity(64 * 1024 * 1024)
            // We flush explicitly per batch; the background flush is only a
            // backstop.
            .flush_every_ms(Some(500))
            .open()?;
        // Record numbers go on from the highest ever written.
        let next_record = db
            .tree_names()
            .iter()
            .filter(|n| n.starts_with(b"log/") || n.starts_with(b"seen/"))
            .map(|n| Ok(db.open_tree(n)?.last()?.map_or(0, |(k, _)| unkey(&k))))
            .collect::<Result<Vec<u64>, sled::Error>>()?
            .into_iter()
            .max()
            .map_or(1, |last| last + 1);
        let next_seq = db.get("next_seq")?.map_or(1, |v| unkey(&v));
        Ok(Store {
            db,
            dead: Default::default(),
            trees: Default::default(),
            journals: BTreeMap::new(),
            next_record,
            next_seq,
            dirty: false,
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

    fn log(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("log", queue)
    }

    fn seen(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("seen", queue)
    }

    fn journal(&mut self, queue: &str) -> &mut Journal {
        // Looked up several times per message: no key is built once it exists.
        if !self.journals.contains_key(queue) {
            self.journals.insert(queue.to_string(), Journal::new());
        }
        self.journals
            .get_mut(queue)
            .expect("the journal was just inserted")
    }

    fn dlq(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("dlq", queue)
    }

    fn withdrawn(&self, queue: &str) -> Result<sled::Tree, StoreError> {
        self.tree("withdrawn", queue)
    }

    /// Records that `order_id` was withdrawn from `queue`, with the highest
    /// envelope seq seen of it (not flushed).
    pub fn set_withdrawn(&mut self, queue: &str, order_id: &str, last_seq: u64) -> Result<(), StoreError> {
        let _w = crate::backup::writing();
        self.withdrawn(queue)?
            .insert(order_id.as_bytes(), &key(last_seq))?;
        self.dirty = true;
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
                let n = std::str::from_utf8(n).ok()?;
                // `items/` is the layout before the journal (see `migrate`).
                n.strip_prefix("log/")
                    .or_else(|| n.strip_prefix("seen/"))
                    .or_else(|| n.strip_prefix("items/"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The next free seq, persisted so that seqs never repeat.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Remembers the next free seq (written with the batch it belongs to).
    pub fn set_next_seq(&mut self, seq: u64) -> Result<(), StoreError> {
        let _w = crate::backup::writing();
        if seq != self.next_seq {
            self.db.insert("next_seq", &key(seq))?;
            self.next_seq = seq;
            self.dirty = true;
        }
        Ok(())
    }

    /// Appends an operation to `queue`'s open record (sealing it when
    /// full), and returns the record's number.
    fn append(&mut self, queue: &str, write: impl FnOnce(&mut Vec<u8>)) -> u64 {
        self.dirty = true;
        let next = self.next_record;
        let j = self.journal(queue);
        let (r, bytes) = j.open.get_or_insert_with(|| (next, Vec::new()));
        let r = *r;
        write(bytes);
        j.live.record(r);
        if bytes.len() >= journal::RECORD_BYTES {
            j.sealed.extend(j.open.take());
        }
        if r == next {
            self.next_record += 1;
        }
        r
    }

    /// Stores a new item unless its event id was accepted lately (then
    /// returns false and stores nothing). Written at the next flush.
    pub fn add(&mut self, queue: &str, item: &Item) -> Result<bool, StoreError> {
        let id = item.meta.event_id;
        let j = self.journal(queue);
        if j.live.contains(&id) || !j.seen.accept(id) {
            return Ok(false);
        }
        self.save(queue, item)?;
        Ok(true)
    }

    /// Stores an item's new version (written at the next flush).
    pub fn save(&mut self, queue: &str, item: &Item) -> Result<(), StoreError> {
        let r = self.append(queue, |b| journal::put(b, item));
        self.journal(queue).live.put(item.meta.event_id, r);
        Ok(())
    }

    /// Marks an item finished (written at the next flush). Its event id is
    /// still remembered, so a late re-sent put of it is not stored again.
    pub fn finish(&mut self, queue: &str, event_id: &Uuid) -> Result<(), StoreError> {
        self.append(queue, |b| journal::done(b, event_id));
        self.journal(queue).live.done(event_id);
        Ok(())
    }

    /// Every live item of `queue` in put order, to rebuild after a restart.
    /// Call once per queue, before writing to it.
    pub fn load(&mut self, queue: &str) -> Result<Vec<Item>, StoreError> {
        let mut replay = Replay::default();
        for entry in self.log(queue)?.iter() {
            let (k, v) = entry?;
            replay.record(unkey(&k), &v)?;
        }
        let mut seen = Seen::new(journal::SEEN_KEEP);
        for entry in self.seen(queue)?.iter() {
            let (k, v) = entry?;
            seen.restore(unkey(&k), &v);
        }
        let (live, mut items) = replay.finish()?;
        let j = self.journal(queue);
        j.live = live;
        j.seen = seen;
        items.extend(self.migrate(queue)?);
        items.sort_by_key(|i| i.seq);
        Ok(items)
    }

    /// Moves a queue stored in the layout before the journal (tree
    /// `items/q`: event id -> stored item JSON, or empty once done) into
    /// the journal, and returns its live items.
    fn migrate(&mut self, queue: &str) -> Result<Vec<Item>, StoreError> {
        let name = format!("items/{queue}");
        if !self.db.tree_names().iter().any(|n| n == name.as_bytes()) {
            return Ok(Vec::new());
        }
        let old = self.db.open_tree(&name)?;
        let mut items = Vec::new();
        for (n, entry) in old.iter().enumerate() {
            if n % 10_000 == 9_999 {
                // Accepted ids go in records of their own size, so that the
                // window evicts them a record at a time.
                self.write()?;
            }
            let (k, v) = entry?;
            let Ok(id) = Uuid::from_slice(&k) else { continue };
            // Known already: moved by an earlier start that crashed before
            // the old tree was dropped.
            let j = self.journal(queue);
            if j.live.contains(&id) || !j.seen.accept(id) || v.is_empty() {
                continue;
            }
            let s: wire::StoredIn = serde_json::from_slice(&v)?;
            let envelope = bytes::Bytes::from(s.envelope.get().to_owned());
            let item = Item {
                seq: s.seq,
                attempt: s.attempt,
                redelivery: s.redelivery,
                meta: wire::check_envelope(&envelope)?,
                envelope,
            };
            self.save(queue, &item)?;
            items.push(item);
        }
        self.write()?;
        self.db.flush()?;
        self.db.drop_tree(name.as_bytes())?;
        self.db.flush()?;
        tracing::info!(queue, live = items.len(), "queue moved to the journal layout");
        Ok(items)
    }

    /// Adds a dead letter; returns it with its id.
    pub fn bury(&mut self, mut letter: DeadLetter) -> Result<DeadLetter, StoreError> {
        let _w = crate::backup::writing();
        self.dirty = true;
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

    fn lock_dead(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adjusts a counted DLQ size (an uncounted one is counted when asked).
    fn adjust_dead(&self, queue: &str, change: impl FnOnce(u64) -> u64) {
        if let Some(n) = self.lock_dead().get_mut(queue) {
            *n = change(*n);
        }
    }

    /// Dead letters of `queue` to re-queue (`ids`, or all of them); they
    /// stay in the DLQ until [`Store::remove_dead`].
    pub fn pick_dead(&self, queue: &str, ids: &[u64], all: bool) -> Result<Vec<DeadLetter>, StoreError> {
        let tree = self.dlq(queue)?;
        if all {
            return self.dead_letters(queue);
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(v) = tree.get(key(*id))? {
                out.push(serde_json::from_slice(&v)?);
            }
        }
        Ok(out)
    }

    /// Takes re-queued dead letters out of the DLQ. The journal is written
    /// first: sled keeps write order, so a crash in between leaves a letter
    /// both re-queued and in the DLQ (a duplicate), never in neither.
    pub fn remove_dead(&mut self, queue: &str, ids: &[u64]) -> Result<(), StoreError> {
        let _w = crate::backup::writing();
        self.write()?;
        self.dirty = true;
        let tree = self.dlq(queue)?;
        let mut taken = 0;
        for id in ids {
            taken += u64::from(tree.remove(key(*id))?.is_some());
        }
        self.adjust_dead(queue, |n| n.saturating_sub(taken));
        Ok(())
    }

    /// Writes the batch's records, deletes the ones no longer needed, and
    /// makes every write so far durable. Confirms go out only after this.
    /// Does nothing when nothing changed.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        self.write()?;
        self.db.flush_async().await?;
        self.dirty = false;
        Ok(())
    }

    /// Writes the batch's records and deletes the ones no longer needed,
    /// without waiting for the disk (sled's background flush follows).
    fn write(&mut self) -> Result<(), StoreError> {
        // One batch's records, all or none in a backup.
        let _w = crate::backup::writing();
        let touched: Vec<String> = self
            .journals
            .iter()
            .filter(|(_, j)| j.open.is_some() || !j.sealed.is_empty() || j.seen.has_pending())
            .map(|(name, _)| name.clone())
            .collect();
        for queue in touched {
            self.copy_forward(&queue)?;
            let seen_record = self.next_record;
            let j = self.journal(&queue);
            j.sealed.extend(j.open.take());
            let records = std::mem::take(&mut j.sealed);
            let seen = j.seen.seal(seen_record);
            if seen.is_some() {
                self.next_record += 1;
            }
            let log = self.log(&queue)?;
            for (r, bytes) in records {
                log.insert(key(r), bytes)?;
            }
            let seen_tree = self.seen(&queue)?;
            if let Some(bytes) = seen {
                seen_tree.insert(key(seen_record), bytes)?;
            }
            let j = self.journal(&queue);
            let (gone, forgotten) = (j.live.truncate(u64::MAX), j.seen.evict());
            for r in gone {
                log.remove(key(r))?;
            }
            for r in forgotten {
                seen_tree.remove(key(r))?;
            }
        }
        Ok(())
    }

    /// When a queue's journal holds many more records than its live items
    /// need (an old record pinned by a few long-lived items, say), re-writes
    /// the oldest record's live items into the open record, so that it and
    /// the empty records behind it can go.
    fn copy_forward(&mut self, queue: &str) -> Result<(), StoreError> {
        let j = self.journal(queue);
        let Some((oldest, live)) = j.live.oldest() else {
            return Ok(());
        };
        let needed = journal::COPY_FORWARD_AFTER + j.live.items() / journal::LIVE_PER_RECORD;
        if live == 0 || j.live.records() <= needed {
            return Ok(());
        }
        let Some(bytes) = self.log(queue)?.get(key(oldest))? else {
            return Ok(());
        };
        // Newest first: a record can hold several versions of an item, and
        // only the last one is current.
        for op in journal::ops(&bytes)?.into_iter().rev() {
            if let Op::Put { id, op } = op {
                if self.journal(queue).live.is_at(&id, oldest) {
                    let r = self.append(queue, |b| b.extend_from_slice(op));
                    self.journal(queue).live.put(id, r);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, order: &str) -> Item {
        Item::ticket(seq, order)
    }

    #[tokio::test]
    async fn reopening_restores_live_items_in_put_order_and_still_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (item(3, "o1"), item(1, "o2"), item(2, "o3"));
        {
            let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
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
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
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
        assert_eq!(store.pick_dead("kitchen", &[a.id], false).unwrap().len(), 1);
        assert_eq!(store.dead_count("kitchen").unwrap(), 2, "picked, not yet removed");
        store.remove_dead("kitchen", &[a.id]).unwrap();
        assert_eq!(store.dead_count("kitchen").unwrap(), 1);
    }

    /// Puts and finishes `n` fresh items on `queue`, one flush per `batch`;
    /// returns the last.
    async fn churn(store: &mut Store, queue: &str, n: u64, batch: u64) -> Item {
        let mut last = None;
        for i in 0..n {
            let it = item(1_000 + i, &format!("c{i}"));
            assert!(store.add(queue, &it).unwrap());
            store.finish(queue, &it.meta.event_id).unwrap();
            if i % batch == 0 {
                store.flush().await.unwrap();
            }
            last = Some(it);
        }
        store.flush().await.unwrap();
        last.unwrap()
    }

    #[tokio::test]
    async fn finished_work_is_deleted_and_a_long_lived_item_is_carried_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut pinned = item(1, "stuck");
        let finished;
        {
            let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
            assert!(store.add("kitchen", &pinned).unwrap());
            // A retry re-writes it with its new attempt count, here into the
            // same record: only this last version may be carried forward.
            pinned.attempt = 4;
            pinned.redelivery = Some("retry: oven cold".into());
            store.save("kitchen", &pinned).unwrap();
            store.flush().await.unwrap();
            finished = Some(churn(&mut store, "kitchen", 5_000, 10).await);
            let records = store.log("kitchen").unwrap().len();
            assert!(
                records <= journal::COPY_FORWARD_AFTER + 2,
                "the journal stays short behind one long-lived item: {records} records"
            );
            assert!(
                store.log("kitchen").unwrap().first().unwrap().is_some(),
                "the live item's record is kept"
            );
        }
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
        assert_eq!(store.load("kitchen").unwrap(), vec![pinned.clone()]);
        assert!(
            !store.add("kitchen", &finished.unwrap()).unwrap(),
            "finished ids are still remembered after a restart"
        );
        store.finish("kitchen", &pinned.meta.event_id).unwrap();
        store.flush().await.unwrap();
        assert_eq!(
            store.log("kitchen").unwrap().len(),
            0,
            "nothing live, nothing kept"
        );
    }

    #[tokio::test]
    async fn a_queue_in_the_old_layout_is_moved_into_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (live, done) = (item(2, "o1"), item(1, "o2"));
        {
            let db = crate::reopen::when_unlocked(|| sled::open(dir.path().join("queues")));
            let old = db.open_tree("items/kitchen").unwrap();
            let envelope = std::str::from_utf8(&live.envelope).unwrap();
            let stored = format!(r#"{{"seq":2,"attempt":1,"redelivery":null,"envelope":{envelope}}}"#);
            old.insert(live.meta.event_id.as_bytes(), stored.as_bytes())
                .unwrap();
            old.insert(done.meta.event_id.as_bytes(), &[]).unwrap();
            db.flush().unwrap();
        }
        let restored = Item {
            attempt: 1,
            ..live.clone()
        };
        {
            let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
            assert_eq!(store.queue_names(), vec!["kitchen".to_string()]);
            assert_eq!(store.load("kitchen").unwrap(), vec![restored.clone()]);
            assert!(
                !store.add("kitchen", &done).unwrap(),
                "a finished id still deduplicates"
            );
            assert!(!store
                .db
                .tree_names()
                .iter()
                .any(|n| n == "items/kitchen".as_bytes()));
        }
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
        assert_eq!(store.load("kitchen").unwrap(), vec![restored], "moved for good");
    }

    #[tokio::test]
    async fn many_long_lived_items_do_not_let_the_journal_grow_without_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
        let stuck: Vec<Item> = (0..100).map(|i| item(i, &format!("stuck{i}"))).collect();
        for it in &stuck {
            assert!(store.add("kitchen", it).unwrap());
        }
        store.flush().await.unwrap();
        churn(&mut store, "kitchen", 5_000, 10).await;
        let records = store.log("kitchen").unwrap().len();
        assert!(records <= journal::COPY_FORWARD_AFTER + 8, "{records} records");
        drop(store);
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
        assert_eq!(
            store.load("kitchen").unwrap(),
            stuck,
            "every stuck item kept, once"
        );
    }

    #[tokio::test]
    async fn a_move_interrupted_before_the_old_tree_was_dropped_is_not_done_twice() {
        let dir = tempfile::tempdir().unwrap();
        let live = item(2, "o1");
        let envelope = std::str::from_utf8(&live.envelope).unwrap().to_string();
        let stored = format!(r#"{{"seq":2,"attempt":0,"envelope":{envelope}}}"#);
        let write_old = || {
            let db = crate::reopen::when_unlocked(|| sled::open(dir.path().join("queues")));
            let old = db.open_tree("items/kitchen").unwrap();
            old.insert(live.meta.event_id.as_bytes(), stored.as_bytes())
                .unwrap();
            db.flush().unwrap();
        };
        write_old();
        {
            let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
            assert_eq!(store.load("kitchen").unwrap(), vec![live.clone()]);
        }
        // As if the drop of the old tree had not reached the disk.
        write_old();
        let mut store = crate::reopen::when_unlocked(|| Store::open(dir.path()));
        assert_eq!(store.load("kitchen").unwrap(), vec![live]);
        store.flush().await.unwrap();
        let puts: usize = store
            .log("kitchen")
            .unwrap()
            .iter()
            .values()
            .map(|v| {
                let v = v.unwrap();
                journal::ops(&v)
                    .unwrap()
                    .iter()
                    .filter(|op| matches!(op, Op::Put { .. }))
                    .count()
            })
            .sum();
        assert_eq!(puts, 1, "the item is in the journal once");
    }
}
