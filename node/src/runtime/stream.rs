//! Reading the broker's event log through a subscription (the protocol is
//! `contracts::stream`).
//!
//! - [`Reader`]: the subscriber's side as plain data: what to announce, which
//!   arriving batches to keep, what to acknowledge. The control room's feed
//!   uses it over its own connection.
//! - [`EventStream`]: a node's durable subscription over its [`Link`]: it
//!   announces itself on every (re)connect and every [`REPEAT`], and hands
//!   out events in log order; the caller acknowledges a position once what
//!   it did with the events up to it is on disk. After a crash of either
//!   side, delivery resumes after the last acknowledged position, so nothing
//!   is missed; the caller's own idempotence (the order book drops events it
//!   has by event id) absorbs what comes twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::stream::{Start, StreamAck, StreamBatch, Subscribe};
use contracts::Envelope;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::error::NodeError;
use crate::runtime::link::{Beat, Incoming, Link};

/// How often a subscription is announced again (a heartbeat: the log
/// forgets subscriptions it does not hear from, and resends what is not
/// acknowledged only while it hears from them).
pub const REPEAT: Duration = Duration::from_secs(2);

/// One subscription, seen from the subscriber.
#[derive(Debug, Clone)]
pub struct Reader {
    name: String,
    kinds: Vec<String>,
    durable: bool,
    credit: u32,
    start: Start,
    session: String,
    /// The highest position handed out in this process.
    high: u64,
    /// The highest position acknowledged.
    acked: u64,
}

impl Reader {
    /// A subscription `name` to `kinds` (empty: all), starting at `start`
    /// when the log does not know it (always, when not `durable`).
    pub fn new(name: &str, kinds: Vec<String>, durable: bool, credit: u32, start: Start) -> Reader {
        Reader {
            name: name.to_string(),
            kinds,
            durable,
            credit,
            start,
            session: new_session(),
            high: 0,
            acked: 0,
        }
    }

    /// Takes a new session: the log sends again from the cursor. Call it on
    /// every new connection.
    pub fn new_session(&mut self) {
        self.session = new_session();
    }

    /// The subscribe message to send now. An ephemeral subscription that has
    /// read something resumes after it.
    pub fn subscribe(&self) -> Subscribe {
        let start = match (self.durable, self.high) {
            (false, high) if high > 0 => Start::After(high),
            _ => self.start,
        };
        Subscribe {
            name: self.name.clone(),
            kinds: self.kinds.clone(),
            start,
            durable: self.durable,
            credit: self.credit,
            session: self.session.clone(),
        }
    }

    /// The events of a delivery message that are new to this process, in
    /// log order, and the position acknowledging the whole message covers.
    /// A message of another subscription or an older session yields nothing.
    pub fn read(&mut self, payload: &[u8]) -> Result<Read, serde_json::Error> {
        Ok(self.read_batch(serde_json::from_slice(payload)?))
    }

    /// [`read`](Self::read), of a message already parsed.
    pub fn read_batch(&mut self, batch: StreamBatch) -> Read {
        // Another subscription's, an older session's, or one past a batch
        // that never arrived (the log rewinds and sends from the cursor).
        let contiguous = batch.after <= self.high || batch.after == batch.cursor;
        if batch.name != self.name || batch.session != self.session || !contiguous {
            return Read::default();
        }
        let events: Vec<(u64, Box<RawValue>)> = batch
            .events
            .into_iter()
            .filter(|e| e.position > self.high)
            .map(|e| (e.position, e.envelope))
            .collect();
        self.high = self.high.max(batch.through);
        if let Some((last, _)) = events.last() {
            self.high = self.high.max(*last);
        }
        Read {
            events,
            through: batch.through,
        }
    }

    /// Forgets what was read after the last ack and takes a new session, so
    /// that the log sends it again: for a subscriber that could not apply it.
    pub fn rewind(&mut self) {
        self.high = self.acked;
        self.new_session();
    }

    /// The ack for everything up to `position`.
    pub fn ack(&mut self, position: u64) -> StreamAck {
        self.acked = self.acked.max(position);
        StreamAck {
            name: self.name.clone(),
            position,
        }
    }

    /// The highest position read so far in this process.
    pub fn high(&self) -> u64 {
        self.high
    }
}

/// What [`Reader::read`] kept of one delivery message.
#[derive(Debug, Default)]
pub struct Read {
    /// `(position, envelope as stored)`, ascending; only positions not read before.
    pub events: Vec<(u64, Box<RawValue>)>,
    /// Acknowledging this position covers the message (skipped kinds too).
    pub through: u64,
}

fn new_session() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn lock(m: &Mutex<Reader>) -> std::sync::MutexGuard<'_, Reader> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node's durable subscription to the event log.
pub struct EventStream {
    link: Link,
    rx: mpsc::UnboundedReceiver<Incoming>,
    /// Shared with the task that announces it: it takes a new session on
    /// every reconnect, and arriving batches are read against that session.
    reader: Arc<Mutex<Reader>>,
}

impl EventStream {
    /// Subscribes to the log as `name` (durable, from the beginning when new).
    pub async fn start(
        link: Link,
        name: &str,
        kinds: Vec<String>,
        credit: u32,
    ) -> Result<EventStream, NodeError> {
        let rx = link.subscribe(link.topics().log_deliver(link.id())).await?;
        let reader = Arc::new(Mutex::new(Reader::new(
            name,
            kinds,
            true,
            credit,
            Start::Beginning,
        )));
        tokio::spawn(announce(link.clone(), reader.clone()));
        Ok(EventStream { link, rx, reader })
    }

    /// The next events, in log order, as many as have arrived (at least one
    /// message's worth); `None` when the link is gone. Each comes with its
    /// position; an envelope that does not read is logged and skipped (its
    /// position still counts for the ack).
    pub async fn next(&mut self) -> Option<Batch> {
        loop {
            let first = self.rx.recv().await?;
            let mut batch = Batch::default();
            self.take(first, &mut batch);
            while let Ok(more) = self.rx.try_recv() {
                self.take(more, &mut batch);
            }
            if batch.through > 0 {
                return Some(batch);
            }
        }
    }

    fn take(&self, msg: Incoming, batch: &mut Batch) {
        // Before the reader sees it: on a signed platform the log seals each
        // delivery message (it checked every event it appended), so a forged
        // one moves no position either, even one with no events and a high
        // `through`. One check per message, not one per event.
        let security = self.link.security();
        let body = match security.open(&msg.payload, &[contracts::trust::role::BROKER]) {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(topic = %msg.topic, reason = %why, refused_total = security.refused(), "security: a stream delivery was refused");
                return;
            }
        };
        let message: StreamBatch = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic = %msg.topic, error = %e, "ignored a malformed stream delivery");
                return;
            }
        };
        let read = lock(&self.reader).read_batch(message);
        for (position, raw) in read.events {
            match serde_json::from_str::<Envelope>(raw.get()) {
                Ok(env) => batch.events.push((position, env)),
                Err(e) => tracing::warn!(position, error = %e, "skipped an event that does not read"),
            }
        }
        batch.through = batch.through.max(read.through);
    }

    /// Asks for everything after the last ack again (at the next announce),
    /// for a subscriber that could not apply what it was given.
    pub fn rewind(&self) {
        lock(&self.reader).rewind();
    }

    /// Tells the log everything up to `position` is applied (and on disk).
    pub async fn ack(&self, position: u64) -> Result<(), NodeError> {
        let ack = lock(&self.reader).ack(position);
        // Fire-and-forget: a lost ack only means those events come again.
        self.link
            .publish_to_brokers(self.link.topics().log_ack(self.link.id()), &ack)
            .await
    }
}

/// Events handed out by [`EventStream::next`].
#[derive(Debug, Default)]
pub struct Batch {
    /// `(position, envelope)`, ascending.
    pub events: Vec<(u64, Envelope)>,
    /// Acknowledge this once they are applied.
    pub through: u64,
}

/// Announces the subscription at once, on every reconnect (with a new
/// session) and every [`REPEAT`].
async fn announce(link: Link, reader: Arc<Mutex<Reader>>) {
    let mut beats = link.beats(REPEAT);
    while let Some(beat) = beats.next().await {
        if let Beat::Connected(_) = beat {
            lock(&reader).new_session();
        }
        let subscribe = lock(&reader).subscribe();
        if link
            .publish_to_brokers(link.topics().log_subscribe(link.id()), &subscribe)
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(r: &Reader, positions: &[u64], through: u64) -> Vec<u8> {
        delivery_after(
            r,
            positions.first().map_or(through, |p| p - 1),
            0,
            positions,
            through,
        )
    }

    fn delivery_after(r: &Reader, after: u64, cursor: u64, positions: &[u64], through: u64) -> Vec<u8> {
        let events: Vec<serde_json::Value> = positions
            .iter()
            .map(|p| serde_json::json!({"position": p, "envelope": {"n": p}}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "name": r.name, "session": r.session, "after": after, "cursor": cursor, "events": events, "through": through
        }))
        .unwrap()
    }

    #[test]
    fn repeats_and_other_sessions_are_dropped() {
        let mut r = Reader::new("book", vec![], true, 10, Start::Beginning);
        let first = delivery(&r, &[1, 2, 3], 3);
        let got = r.read(&first).unwrap();
        assert_eq!(got.events.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
        // The log rewound (a timeout): 2 and 3 again, then 4.
        let again = delivery(&r, &[2, 3, 4], 4);
        let got = r.read(&again).unwrap();
        assert_eq!(got.events.iter().map(|e| e.0).collect::<Vec<_>>(), [4]);
        assert_eq!(got.through, 4);
        let old = delivery(&r, &[5], 5);
        r.new_session();
        assert!(
            r.read(&old).unwrap().events.is_empty(),
            "an older session's batch"
        );
        assert!(r.read(b"{nope").is_err());
    }

    #[test]
    fn a_batch_after_a_missing_one_is_dropped() {
        let mut r = Reader::new("book", vec![], true, 10, Start::Beginning);
        r.read(&delivery(&r, &[1, 2], 2)).unwrap();
        let skipped = delivery_after(&r, 5, 0, &[6, 7], 7);
        assert!(r.read(&skipped).unwrap().events.is_empty(), "3..5 never arrived");
        assert_eq!(r.high(), 2);
        let filtered = delivery_after(&r, 2, 0, &[5], 5);
        assert_eq!(
            r.read(&filtered).unwrap().events.len(),
            1,
            "3 and 4 were filtered out"
        );
    }

    #[test]
    fn a_restarted_subscriber_takes_the_stream_from_the_logs_cursor() {
        let mut r = Reader::new("book", vec![], true, 10, Start::Beginning);
        let resumed = delivery_after(&r, 40, 40, &[41, 42], 42);
        assert_eq!(r.read(&resumed).unwrap().events.len(), 2);
        let lost_first = delivery_after(&r, 50, 45, &[51], 51);
        assert!(
            r.read(&lost_first).unwrap().events.is_empty(),
            "43..50 never arrived"
        );
    }

    #[test]
    fn an_ephemeral_reader_resumes_after_what_it_read() {
        let mut r = Reader::new("watch", vec![], false, 10, Start::Beginning);
        assert_eq!(r.subscribe().start, Start::Beginning);
        let d = delivery(&r, &[1, 2], 7);
        r.read(&d).unwrap();
        assert_eq!(r.subscribe().start, Start::After(7));
        let durable = Reader::new("book", vec![], true, 10, Start::Beginning);
        assert_eq!(
            durable.subscribe().start,
            Start::Beginning,
            "the log keeps a durable cursor"
        );
    }
}
