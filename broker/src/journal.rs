//! A queue's journal: how the keeper's changes are packed into few sled
//! records, as plain data (no sled here).
//!
//! Writing each put and each ack as its own sled key cost two B-tree updates
//! per message, more than half of the keeper's time. Instead a queue's
//! changes are appended, in order, to records of up to [`RECORD_BYTES`], and
//! a batch of hundreds of messages becomes a few sled inserts:
//!
//! - `Put`: an item as it now is (a new put, a retry with its new attempt
//!   count, a dead letter re-queued). A later `Put` of the same event id
//!   replaces it.
//! - `Done`: the item with this event id is finished (acked, dead-lettered
//!   or withdrawn).
//!
//! Replaying the records in order ([`Replay`]) gives the live items.
//!
//! **Truncation.** [`Live`] counts, per record, the puts that are still the
//! current version of a live item. Only the *oldest* records are ever
//! deleted, and only when that count is zero. That is safe because a `Done`
//! only cancels puts in the same or older records, and those are gone
//! already. One long-lived item would pin every record after it, so when a
//! queue has far more records than its live items need, the oldest record's
//! live puts are copied forward into the newest first
//! ([`COPY_FORWARD_AFTER`]).
//!
//! Deleting old records after writing new ones relies on sled recovering
//! a prefix of its writes after a crash (its log is sequential), as the
//! keeper did before the journal.
//!
//! **Deduplication.** A put is idempotent by event id. [`Seen`] remembers
//! the accepted ids, in its own records, for the last [`SEEN_KEEP`] puts of
//! a queue (on top of every live item). A re-send older than that is
//! accepted again; consumers' inboxes drop the second delivery.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use uuid::Uuid;

use crate::queue::Item;
use crate::wire;

/// A record is sealed once it holds this many bytes (sled keeps values this
/// size inline; larger ones become files of their own).
pub const RECORD_BYTES: usize = 64 * 1024;
/// Accepted event ids remembered per queue, beyond the live ones.
pub const SEEN_KEEP: usize = 200_000;
/// Records a queue's journal may hold beyond what its live items need
/// before its oldest record's live items are copied forward.
pub const COPY_FORWARD_AFTER: usize = 64;
/// Live items a record is expected to hold at least, for that count (a full
/// record holds about 150).
pub const LIVE_PER_RECORD: usize = 32;

const PUT: u8 = b'P';
const DONE: u8 = b'D';
/// The length written for "no redelivery reason".
const NONE: u32 = u32::MAX;

/// A journal record that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The record ends inside an operation.
    #[error("a queue journal record is cut short at byte {0}")]
    Truncated(usize),
    /// The record holds a byte that starts no known operation.
    #[error("a queue journal record holds an unknown operation {0:#04x} at byte {1}")]
    UnknownOp(u8, usize),
    /// A stored envelope is not valid any more.
    #[error("a queue journal record holds an envelope that does not decode: {0}")]
    Envelope(#[from] serde_json::Error),
    /// A stored redelivery reason is not UTF-8.
    #[error("a queue journal record holds a reason that is not UTF-8")]
    Reason,
}

/// Appends a `Put` of `item` to `buf`.
///
/// Layout: `P`, event id (16), seq (u64), attempt (u32), reason length
/// (u32, `u32::MAX` for none) and bytes, envelope length (u32) and bytes;
/// integers big-endian.
pub fn put(buf: &mut Vec<u8>, item: &Item) {
    buf.push(PUT);
    buf.extend_from_slice(item.meta.event_id.as_bytes());
    buf.extend_from_slice(&item.seq.to_be_bytes());
    buf.extend_from_slice(&item.attempt.to_be_bytes());
    match &item.redelivery {
        Some(reason) => {
            buf.extend_from_slice(&(reason.len() as u32).to_be_bytes());
            buf.extend_from_slice(reason.as_bytes());
        }
        None => buf.extend_from_slice(&NONE.to_be_bytes()),
    }
    buf.extend_from_slice(&(item.envelope.len() as u32).to_be_bytes());
    buf.extend_from_slice(&item.envelope);
}

/// Appends a `Done` of `event_id` to `buf`: `D` and the id (16 bytes).
pub fn done(buf: &mut Vec<u8>, event_id: &Uuid) {
    buf.push(DONE);
    buf.extend_from_slice(event_id.as_bytes());
}

/// One operation of a record. A put keeps its encoded bytes, so it can be
/// copied forward as it is and decoded only if it is still live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// An item's current version.
    Put {
        /// Its event id.
        id: Uuid,
        /// The whole encoded operation (see [`put`]).
        op: &'a [u8],
    },
    /// An item finished.
    Done(Uuid),
}

/// Reads a record's bytes front to back.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JournalError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(JournalError::Truncated(self.at))?;
        let bytes = &self.buf[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, JournalError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, JournalError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    fn id(&mut self) -> Result<Uuid, JournalError> {
        let mut b = [0; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(Uuid::from_bytes(b))
    }

    /// A length-prefixed run of bytes; `None` for the "none" length.
    fn sized(&mut self) -> Result<Option<&'a [u8]>, JournalError> {
        match self.u32()? {
            NONE => Ok(None),
            n => self.take(n as usize).map(Some),
        }
    }
}

/// The operations of a record, in order.
pub fn ops(record: &[u8]) -> Result<Vec<Op<'_>>, JournalError> {
    let mut c = Cursor { buf: record, at: 0 };
    let mut out = Vec::new();
    while c.at < record.len() {
        let start = c.at;
        match c.take(1)?[0] {
            PUT => {
                let id = c.id()?;
                c.take(8 + 4)?; // seq, attempt
                c.sized()?; // reason
                c.sized()?.ok_or(JournalError::Truncated(c.at))?; // envelope
                out.push(Op::Put {
                    id,
                    op: &record[start..c.at],
                });
            }
            DONE => out.push(Op::Done(c.id()?)),
            other => return Err(JournalError::UnknownOp(other, start)),
        }
    }
    Ok(out)
}

/// Decodes a `Put` operation (as [`Op::Put`] holds it) into its item,
/// checking the envelope again.
pub fn item(op: &[u8]) -> Result<Item, JournalError> {
    let mut c = Cursor { buf: op, at: 1 };
    c.id()?;
    let seq = c.u64()?;
    let attempt = c.u32()?;
    let redelivery = match c.sized()? {
        Some(r) => Some(String::from_utf8(r.to_vec()).map_err(|_| JournalError::Reason)?),
        None => None,
    };
    let envelope = c.sized()?.ok_or(JournalError::Truncated(c.at))?;
    let envelope = Bytes::copy_from_slice(envelope);
    Ok(Item {
        seq,
        attempt,
        redelivery,
        meta: wire::check_envelope(&envelope)?,
        envelope,
    })
}

/// Which record holds the current version of each live item, and how many
/// such items each record holds.
#[derive(Debug, Default)]
pub struct Live {
    at: HashMap<Uuid, u64>,
    /// Every record that exists, with its live count (zero included).
    records: BTreeMap<u64, u32>,
}

impl Live {
    /// Notes that record `r` exists.
    pub fn record(&mut self, r: u64) {
        self.records.entry(r).or_insert(0);
    }

    /// `id`'s current version is now in record `r`.
    pub fn put(&mut self, id: Uuid, r: u64) {
        self.record(r);
        if let Some(old) = self.at.insert(id, r) {
            self.release(old);
        }
        if let Some(n) = self.records.get_mut(&r) {
            *n += 1;
        }
    }

    /// `id` is finished.
    pub fn done(&mut self, id: &Uuid) {
        if let Some(old) = self.at.remove(id) {
            self.release(old);
        }
    }

    fn release(&mut self, r: u64) {
        if let Some(n) = self.records.get_mut(&r) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether `id` is live.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.at.contains_key(id)
    }

    /// Whether `id`'s current version is in record `r`.
    pub fn is_at(&self, id: &Uuid, r: u64) -> bool {
        self.at.get(id) == Some(&r)
    }

    /// The oldest record and its live count.
    pub fn oldest(&self) -> Option<(u64, u32)> {
        self.records.first_key_value().map(|(r, n)| (*r, *n))
    }

    /// How many records exist.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// How many items are live.
    pub fn items(&self) -> usize {
        self.at.len()
    }

    /// Forgets the oldest records with no live item, up to (not including)
    /// record `before`; returns them, for deletion.
    pub fn truncate(&mut self, before: u64) -> Vec<u64> {
        let mut gone = Vec::new();
        while let Some((r, 0)) = self.oldest() {
            if r >= before {
                break;
            }
            self.records.remove(&r);
            gone.push(r);
        }
        gone
    }
}

/// The event ids a queue accepted lately, for deduplicating re-sent puts.
#[derive(Debug)]
pub struct Seen {
    keep: usize,
    ids: HashSet<Uuid>,
    /// The sealed records of ids, oldest first. An id is in at most one.
    records: VecDeque<(u64, Vec<Uuid>)>,
    /// Accepted since the last seal.
    pending: Vec<Uuid>,
}

impl Seen {
    /// Remembers the last `keep` accepted ids.
    pub fn new(keep: usize) -> Seen {
        Seen {
            keep,
            ids: HashSet::new(),
            records: VecDeque::new(),
            pending: Vec::new(),
        }
    }

    /// Accepts `id` unless it was accepted lately; returns whether it is new.
    pub fn accept(&mut self, id: Uuid) -> bool {
        let new = self.ids.insert(id);
        if new {
            self.pending.push(id);
        }
        new
    }

    /// Whether ids were accepted since the last seal.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the ids accepted since the last seal as record `r`'s bytes.
    pub fn seal(&mut self, r: u64) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let ids = std::mem::take(&mut self.pending);
        let bytes = ids.iter().flat_map(|id| *id.as_bytes()).collect();
        self.records.push_back((r, ids));
        Some(bytes)
    }

    /// Takes a stored record back in (on start).
    pub fn restore(&mut self, r: u64, bytes: &[u8]) {
        let ids: Vec<Uuid> = bytes
            .chunks_exact(16)
            .filter_map(|c| Uuid::from_slice(c).ok())
            .filter(|id| self.ids.insert(*id))
            .collect();
        self.records.push_back((r, ids));
    }

    /// Forgets the oldest records beyond the ids to keep; returns them, for
    /// deletion.
    pub fn evict(&mut self) -> Vec<u64> {
        let mut gone = Vec::new();
        while self.ids.len() > self.keep {
            let Some((r, ids)) = self.records.pop_front() else {
                break;
            };
            for id in &ids {
                self.ids.remove(id);
            }
            gone.push(r);
        }
        gone
    }
}

/// Replays a queue's records, oldest first, into its live items.
#[derive(Debug, Default)]
pub struct Replay {
    live: Live,
    /// The current version of each live item, still encoded.
    latest: HashMap<Uuid, Vec<u8>>,
}

impl Replay {
    /// Applies record `r`.
    pub fn record(&mut self, r: u64, bytes: &[u8]) -> Result<(), JournalError> {
        self.live.record(r);
        for op in ops(bytes)? {
            match op {
                Op::Put { id, op } => {
                    self.live.put(id, r);
                    self.latest.insert(id, op.to_vec());
                }
                Op::Done(id) => {
                    self.live.done(&id);
                    self.latest.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// The live items in put order, and the record bookkeeping to go on
    /// writing with.
    pub fn finish(self) -> Result<(Live, Vec<Item>), JournalError> {
        let mut items = self
            .latest
            .values()
            .map(|op| item(op))
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| i.seq);
        Ok((self.live, items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, order: &str) -> Item {
        Item::ticket(seq, order)
    }

    #[test]
    fn a_put_round_trips_with_its_attempt_and_reason() {
        let mut a = item(7, "o1");
        a.attempt = 3;
        a.redelivery = Some("lease expired: ovens went quiet".into());
        let b = item(8, "o2");
        let mut rec = Vec::new();
        put(&mut rec, &a);
        done(&mut rec, &a.meta.event_id);
        put(&mut rec, &b);
        let ops = ops(&rec).unwrap();
        assert_eq!(ops.len(), 3);
        let Op::Put { id, op } = ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(id, a.meta.event_id);
        assert_eq!(super::item(op).unwrap(), a);
        assert_eq!(ops[1], Op::Done(a.meta.event_id));
        let Op::Put { op, .. } = ops[2] else {
            panic!("{ops:?}")
        };
        assert_eq!(super::item(op).unwrap(), b);
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut rec = Vec::new();
        put(&mut rec, &item(1, "o1"));
        for cut in 0..rec.len() - 1 {
            assert!(ops(&rec[..cut + 1]).is_err(), "cut at {cut}");
        }
        assert!(matches!(ops(b"X"), Err(JournalError::UnknownOp(b'X', 0))));
    }

    #[test]
    fn replay_keeps_the_latest_version_of_live_items_in_put_order() {
        let (a, b, c) = (item(1, "o1"), item(2, "o2"), item(3, "o3"));
        let mut r1 = Vec::new();
        put(&mut r1, &c);
        put(&mut r1, &a);
        put(&mut r1, &b);
        let mut r2 = Vec::new();
        done(&mut r2, &b.meta.event_id);
        let retried = Item {
            attempt: 2,
            redelivery: Some("retry".into()),
            ..a.clone()
        };
        put(&mut r2, &retried);
        let mut replay = Replay::default();
        replay.record(10, &r1).unwrap();
        replay.record(11, &r2).unwrap();
        let (live, items) = replay.finish().unwrap();
        assert_eq!(items, vec![retried, c]);
        // Record 10 still holds c; record 11 holds the retried a.
        assert_eq!(live.oldest(), Some((10, 1)));
        assert_eq!(live.items(), 2);
    }

    #[test]
    fn only_the_oldest_empty_records_are_truncated() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut live = Live::default();
        live.put(a, 1);
        live.put(b, 2);
        live.put(c, 3);
        live.done(&b);
        assert_eq!(live.truncate(4), Vec::<u64>::new(), "record 1 still holds a");
        live.done(&a);
        assert_eq!(live.truncate(4), vec![1, 2]);
        live.put(c, 4); // a newer version of c
        assert_eq!(live.truncate(4), vec![3], "the open record is never truncated");
        assert_eq!(live.oldest(), Some((4, 1)));
    }

    #[test]
    fn seen_remembers_the_last_ids_and_evicts_whole_records() {
        let mut seen = Seen::new(3);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        assert!(seen.accept(ids[0]) && seen.accept(ids[1]));
        assert!(!seen.accept(ids[0]), "a re-send is recognised before the seal");
        let first = seen.seal(1).unwrap();
        assert_eq!(first.len(), 32);
        assert!(seen.accept(ids[2]) && seen.accept(ids[3]));
        seen.seal(2);
        assert_eq!(
            seen.evict(),
            vec![1],
            "4 ids kept, 3 allowed: the oldest record goes"
        );
        assert!(seen.accept(ids[0]), "forgotten, so accepted again");
        assert!(!seen.accept(ids[3]));
        let mut again = Seen::new(3);
        again.restore(1, &first);
        assert!(!again.accept(ids[1]), "restored from its record");
    }
}
