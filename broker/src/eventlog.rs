//! The event log: every domain event, appended once, in sled.
//!
//! Nodes publish their events to `<prefix>/log/put`; the log stores each
//! once, confirms it to its producer after the flush (the producer's outbox
//! keeps it until then), and serves it to subscribers through durable
//! subscriptions with cursors ([`crate::subscriptions`], the protocol in
//! `contracts::stream`). The same log rebuilds an order's state at any past
//! instant (`contracts::history::replay`) and answers queries for one
//! order's events (`contracts::history::LogQuery` on
//! `<prefix>/log/query/<client>`). Stored events are also published on
//! `<prefix>/events/<kind>` for anyone watching with a plain MQTT client.
//!
//! Two halves:
//!
//! - [`EventLog`]: the storage, plain and synchronous apart from the flush,
//!   tested and benchmarked without sockets;
//! - [`run`]: the I/O shell, an ordinary MQTT client of its own (so it works
//!   against any MQTT broker, like the keeper): batch -> append -> flush ->
//!   confirm -> republish -> answer queries -> deliver to subscriptions.
//!
//! # Layout
//!
//! One sled tree, `<data-dir>/events`, three kinds of keys:
//!
//! ```text
//! 'l' pos(u64 BE)                                    -> the envelope, as published
//! 'o' len(u16 BE) order_id seq(u64 BE) event_id(16)  -> pos   (one order's events in seq order)
//! 'c' client 0 name                                  -> pos   (a durable subscription's cursor)
//! ```
//!
//! `pos` counts up from 1 in arrival order: the log proper. The `'o'` index
//! reads one order's events with one prefix scan, already in seq order, and
//! makes appending idempotent: an event re-sent by a node's outbox or
//! duplicated by the `duplicate` fault has the same `'o'` key, which is
//! there already, so it is stored once. (Logs written before kept a third
//! key per event, `'e' event_id -> pos`, for that; it cost a random-key
//! insert per event, about a quarter of the log's throughput, and is
//! ignored now.)
//!
//! # No snapshots
//!
//! Replaying all 100,000 events of 12,500 orders from the log through
//! `OrderFold` takes 0.5-0.7 s on the 2-core development machine, and one
//! order's history about 0.2 ms (`replay-bench`), so there are no snapshots:
//! an order's history is its index scan.
//!
//! # Durability
//!
//! Each event's two keys go in one sled batch (atomic), and a batch of
//! messages is flushed once (group commit) before any of them is confirmed
//! or delivered, so a kill -9 leaves either all of an event or none of it,
//! and an event not yet on disk is not yet confirmed: its producer sends it
//! again. sled is the truth: nothing is rebuilt on start, and nothing rests
//! on rumqttd keeping a session (it keeps none across its own crash).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use contracts::history::LogQuery;
use contracts::queue::Confirm;
use contracts::stream::{StreamAck, Subscribe};
use contracts::topics::Topics;
use contracts::trust::{Act, Refusal};
use contracts::Envelope;
use rumqttc::{AsyncClient, QoS};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::server::{pump, Input};
use crate::subscriptions::Subscriptions;
use crate::wire;

/// Most messages taken into one batch before flushing.
const MAX_BATCH: usize = 4_096;
/// A reply larger than this is refused with an error: it must fit in one
/// MQTT message of the embedded broker.
const MAX_REPLY_BYTES: usize = crate::server::MAX_PAYLOAD - 1_024;

const LOG: u8 = b'l';
const BY_ORDER: u8 = b'o';
const CURSOR: u8 = b'c';
/// Most bytes of one delivery message to a subscriber.
const MAX_DELIVERY_BYTES: usize = 64 * 1024;

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// sled failed (disk full, corrupt files, another process holds the lock).
    #[error(
        "event log storage failed: {0}; check the data directory is writable and not used by another broker"
    )]
    Sled(#[from] sled::Error),
    /// A stored record did not decode.
    #[error("the event log holds a record that does not decode ({0}); the data directory may be from another version")]
    Decode(#[from] serde_json::Error),
    /// The MQTT client's request channel closed: its event loop is gone.
    #[error("the event log lost its MQTT client: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// What [`EventLog::append`] did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this position of the log.
    Stored(u64),
    /// Its event id is in the log already; nothing was written.
    Duplicate,
    /// Not a valid envelope; nothing was written. The text says why.
    Malformed(String),
    /// A valid envelope its sender may not publish, or not signed by it
    /// (see `contracts::trust`); nothing was written, nothing confirmed.
    Refused {
        /// Who it claimed to be from.
        sender: String,
        /// Why it was refused.
        reason: String,
    },
}

/// What [`EventLog::read_after`] found.
#[derive(Debug, Default)]
pub struct Read {
    /// `(position, envelope as stored)`, ascending.
    pub events: Vec<(u64, sled::IVec)>,
    /// The last position read.
    pub through: u64,
}

/// What appending read of a well-formed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The producer, who gets the confirm.
    pub source: String,
    /// The event id.
    pub event_id: Uuid,
    /// The event kind (the topic it is republished on).
    pub kind: String,
}

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events stored.
    pub stored: u64,
    /// Messages whose event was stored before.
    pub duplicates: u64,
    /// Messages that were not envelopes.
    pub malformed: u64,
    /// Envelopes refused by the trust file (forged, or outside the
    /// sender's role).
    pub refused: u64,
}

/// The event log's sled storage.
pub struct EventLog {
    db: sled::Db,
    /// The next free position.
    next: u64,
    counters: Counters,
    /// When set, every append is checked against it first.
    trust: Option<std::sync::Arc<crate::trust::TrustStore>>,
}

fn pos_key(pos: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG;
    k[1..].copy_from_slice(&pos.to_be_bytes());
    k
}

/// `'c' client 0 name`: a durable subscription's cursor.
fn cursor_key(client: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + client.len() + name.len());
    k.push(CURSOR);
    k.extend_from_slice(client.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `'o' len order_id`: the prefix of one order's index keys. The length
/// keeps `o-1` from matching the keys of `o-10`.
fn order_prefix(order_id: &str) -> Option<Vec<u8>> {
    let len = u16::try_from(order_id.len()).ok()?;
    let mut k = Vec::with_capacity(3 + order_id.len() + 24);
    k.push(BY_ORDER);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(order_id.as_bytes());
    Some(k)
}

fn read_pos(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_be_bytes(b)
}

impl EventLog {
    /// The database, for backups (`crate::backup::Shelf`).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Opens (or creates) the log in `<dir>/events`.
    pub fn open(dir: &Path) -> Result<EventLog, EventLogError> {
        std::fs::create_dir_all(dir).map_err(sled::Error::from)?;
        let db = sled::Config::new()
            .path(dir.join("events"))
            .mode(sled::Mode::HighThroughput)
            // sled's default cache is 1 GiB; recent events are what is read.
            .cache_capacity(32 * 1024 * 1024)
            // We flush explicitly per batch.
            .flush_every_ms(Some(500))
            .open()?;
        let next = match db.scan_prefix([LOG]).next_back() {
            Some(entry) => read_pos(&entry?.0[1..]) + 1,
            None => 1,
        };
        Ok(EventLog {
            db,
            next,
            counters: Counters::default(),
            trust: None,
        })
    }

    /// Appends only envelopes signed by their source, whose role may
    /// publish their kind.
    pub fn set_trust(&mut self, trust: std::sync::Arc<crate::trust::TrustStore>) {
        self.trust = Some(trust);
    }

    /// Logs a refusal and keeps it for the keeper's `security.refused`
    /// alert (see `TrustStore::report`).
    pub fn report(&self, what: &str, sender: &str, topic: &str, reason: &str) {
        if let Some(trust) = &self.trust {
            trust.report(what, sender, topic, reason);
        }
    }

    /// On a signed log: is a subscribe or stream ack on the topic of a
    /// node of the trust file sealed by that node, or by a control room? A
    /// forged ack would move a node's cursor past events it never read. A
    /// client the file does not list (a control room's `control-room-<pid>`,
    /// a plain watcher) moves only its own cursor and may read unsealed:
    /// every stored event is on `events/<kind>` for anyone anyway.
    pub fn check_subscriber(
        &mut self,
        client: &str,
        opened: &contracts::seal::Opened<'_>,
    ) -> Result<(), Refusal> {
        let Some(trust) = &self.trust else {
            return Ok(());
        };
        if trust.role_of(client).is_none() {
            return Ok(());
        }
        let checked = trust.check_sealed(opened, &[]).and_then(|signer| {
            let role = trust.role_of(&signer).unwrap_or_default();
            if signer == client || role == contracts::trust::role::CONTROL {
                Ok(())
            } else {
                Err(Refusal::NotPermitted {
                    sender: signer,
                    role,
                    action: format!("read or move the stream of {client}"),
                })
            }
        });
        if checked.is_err() {
            self.counters.refused += 1;
        }
        checked
    }

    /// How many events the log holds.
    pub fn len(&self) -> u64 {
        self.next - 1
    }

    /// Whether the log holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters since [`open`](Self::open).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Appends one message (not flushed); see [`append_batch`](Self::append_batch).
    pub fn append(&mut self, payload: &[u8]) -> Result<Appended, EventLogError> {
        let mut out = self.append_batch([payload])?;
        Ok(out.pop().unwrap_or(Appended::Duplicate))
    }

    /// Appends every valid envelope among `payloads` that is not in the log
    /// yet, in order; returns what happened to each. Not flushed: call
    /// [`flush`](Self::flush) once for the batch.
    ///
    /// The envelope is stored exactly as published (it was checked against
    /// the full schema, but its payload is not re-encoded).
    pub fn append_batch<'a>(
        &mut self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Appended>, EventLogError> {
        Ok(self
            .append_checked(payloads)?
            .into_iter()
            .map(|(a, _)| a)
            .collect())
    }

    /// [`append_batch`](Self::append_batch), and for each well-formed
    /// envelope what the check read of it (producer, event id, kind), so the
    /// caller confirms and routes it without parsing it again.
    pub fn append_checked<'a>(
        &mut self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<(Appended, Option<Checked>)>, EventLogError> {
        let mut out = Vec::new();
        let mut batch = sled::Batch::default();
        // Ids stored by this very batch: not visible in the tree until it is
        // applied.
        let mut fresh = HashSet::new();
        let mut next = self.next;
        for raw in payloads {
            let read = match wire::read(raw) {
                Ok(r) => r,
                Err(e) => {
                    out.push((Appended::Malformed(e.to_string()), None));
                    continue;
                }
            };
            let mut untagged = None;
            if let Some(trust) = &self.trust {
                match trust.admit(raw, &read, Act::Publish(&read.kind)) {
                    Ok(u) => untagged = u,
                    Err(why) => {
                        out.push((
                            Appended::Refused {
                                sender: read.meta.source.clone(),
                                reason: why,
                            },
                            None,
                        ));
                        continue;
                    }
                }
            }
            let stored = untagged.as_deref().unwrap_or(raw);
            let (meta, kind) = (read.meta, read.kind.into_owned());
            let Some(mut index) = order_prefix(&meta.order_id) else {
                out.push((
                    Appended::Malformed("order_id is longer than 65535 bytes".into()),
                    None,
                ));
                continue;
            };
            let checked = Checked {
                source: meta.source.clone(),
                event_id: meta.event_id,
                kind,
            };
            index.extend_from_slice(&meta.order_seq.to_be_bytes());
            index.extend_from_slice(meta.event_id.as_bytes());
            if fresh.contains(&meta.event_id) || self.db.contains_key(&index)? {
                out.push((Appended::Duplicate, Some(checked)));
                continue;
            }
            let pos = next;
            next += 1;
            fresh.insert(meta.event_id);
            batch.insert(&pos_key(pos), stored);
            batch.insert(index, &pos.to_be_bytes());
            out.push((Appended::Stored(pos), Some(checked)));
        }
        if next != self.next {
            let _w = crate::backup::writing();
            self.db.apply_batch(batch)?;
            self.next = next;
        }
        for (a, _) in &out {
            match a {
                Appended::Stored(_) => self.counters.stored += 1,
                Appended::Duplicate => self.counters.duplicates += 1,
                Appended::Malformed(_) => self.counters.malformed += 1,
                Appended::Refused { .. } => self.counters.refused += 1,
            }
        }
        Ok(out)
    }

    /// Makes every append so far durable (survives kill -9).
    pub async fn flush(&self) -> Result<(), EventLogError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// [`flush`](Self::flush), blocking.
    pub fn flush_blocking(&self) -> Result<(), EventLogError> {
        self.db.flush()?;
        Ok(())
    }

    /// One order's events as stored (raw JSON), in seq order; one prefix
    /// scan of the index, no scan of the log.
    pub fn order_raw(&self, order_id: &str) -> Result<Vec<sled::IVec>, EventLogError> {
        let Some(prefix) = order_prefix(order_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(prefix) {
            let (_, pos) = entry?;
            if let Some(raw) = self.db.get(pos_key(read_pos(&pos)))? {
                out.push(raw);
            }
        }
        Ok(out)
    }

    /// One order's events, in seq order.
    pub fn order_events(&self, order_id: &str) -> Result<Vec<Envelope>, EventLogError> {
        self.order_raw(order_id)?
            .iter()
            .map(|raw| Ok(serde_json::from_slice(raw)?))
            .collect()
    }

    /// Every event in the log, in the order it was appended, as stored.
    pub fn iter_raw(&self) -> impl DoubleEndedIterator<Item = Result<(u64, sled::IVec), EventLogError>> {
        self.db.scan_prefix([LOG]).map(|entry| {
            entry
                .map(|(k, v)| (read_pos(&k[1..]), v))
                .map_err(EventLogError::from)
        })
    }

    /// The stored cursor of durable subscription `name` of `client`.
    pub fn cursor(&self, client: &str, name: &str) -> Result<Option<u64>, EventLogError> {
        Ok(self.db.get(cursor_key(client, name))?.map(|v| read_pos(&v)))
    }

    /// Stores a durable subscription's cursor (flushed with the next batch;
    /// a cursor lost to a crash only means events are sent again, and the
    /// subscriber's inbox drops them).
    pub fn set_cursor(&self, client: &str, name: &str, cursor: u64) -> Result<(), EventLogError> {
        let _w = crate::backup::writing();
        self.db.insert(cursor_key(client, name), &cursor.to_be_bytes())?;
        Ok(())
    }

    /// Up to `limit` events after position `after` of one of `kinds` (any,
    /// when empty), in log order, and the last position read (filtered-out
    /// events included). The kind is read from the stored envelope only when
    /// there is something to filter.
    pub fn read_after(&self, after: u64, limit: usize, kinds: &[String]) -> Result<Read, EventLogError> {
        let mut read = Read {
            events: Vec::new(),
            through: after,
        };
        if limit == 0 {
            return Ok(read);
        }
        for entry in self.db.range(pos_key(after + 1)..pos_key(u64::MAX)) {
            let (k, v) = entry?;
            let pos = read_pos(&k[1..]);
            read.through = pos;
            // Parsed only when there is something to filter.
            let wanted = kinds.is_empty()
                || wire::kind_of(&v).is_some_and(|kind| crate::subscriptions::wanted(kinds, &kind));
            if wanted {
                read.events.push((pos, v));
                if read.events.len() >= limit {
                    break;
                }
            }
        }
        Ok(read)
    }

    /// The JSON reply to `query` (a `contracts::history::LogReply`), built
    /// around the stored envelopes without re-encoding them.
    pub fn reply(&self, query: &LogQuery) -> Vec<u8> {
        let answer = self.order_raw(&query.order_id).and_then(|raws| {
            let json = {
                let events = raws
                    .iter()
                    .map(|raw| raw_json(raw))
                    .collect::<Result<Vec<_>, _>>()?;
                serde_json::to_vec(&ReplyOut {
                    request_id: &query.request_id,
                    order_id: &query.order_id,
                    events,
                    error: None,
                })?
            };
            Ok((json, raws.len()))
        });
        match answer {
            Ok((json, _)) if json.len() <= MAX_REPLY_BYTES => json,
            Ok((json, n)) => error_reply(
                &query.request_id,
                &query.order_id,
                &format!(
                    "the order's {n} events take {} bytes, more than one message may carry ({MAX_REPLY_BYTES})",
                    json.len()
                ),
            ),
            Err(e) => error_reply(&query.request_id, &query.order_id, &e.to_string()),
        }
    }
}

/// Stored bytes as an embeddable JSON value; they were checked on append.
fn raw_json(raw: &[u8]) -> Result<&RawValue, EventLogError> {
    let text = std::str::from_utf8(raw).map_err(<serde_json::Error as serde::de::Error>::custom)?;
    Ok(serde_json::from_str(text)?)
}

/// A `contracts::history::LogReply`, written around raw envelopes.
#[derive(Serialize)]
struct ReplyOut<'a> {
    request_id: &'a str,
    order_id: &'a str,
    events: Vec<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn error_reply(request_id: &str, order_id: &str, error: &str) -> Vec<u8> {
    serde_json::to_vec(&ReplyOut {
        request_id,
        order_id,
        events: Vec::new(),
        error: Some(error),
    })
    .unwrap_or_default()
}

/// How [`run`] connects.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// MQTT client id (stable: its session holds events while it reconnects).
    pub client_id: String,
    /// Username and password, when the broker asks for them.
    pub credentials: Option<(String, String)>,
    /// Topic prefix.
    pub topics: Topics,
    /// The broker's key: on a signed platform every delivery message is
    /// sealed with it, so subscribers check one seal, not every event.
    pub signer: Option<std::sync::Arc<contracts::trust::Signer>>,
}

/// Records every event put on `<prefix>/log/put`, confirms it once it is
/// on disk, serves the subscriptions and answers log queries, until the MQTT
/// client or the storage fails.
///
/// One batch at a time: take what has arrived, append, flush, then confirm,
/// republish, store cursors and deliver. Nothing is confirmed or delivered
/// before it is on disk.
pub async fn run(opts: RecorderOptions, mut log: EventLog) -> Result<(), EventLogError> {
    let mqtt =
        crate::server::client_options(&opts.client_id, &opts.host, opts.port, opts.credentials.as_ref());
    let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
    eventloop.network_options.set_tcp_nodelay(true);
    // Unbounded: see `server::pump`.
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(pump(eventloop, tx, "event log"));
    tracing::info!(events = log.len(), "event log opened");

    let started = std::time::Instant::now();
    let now_ms = || started.elapsed().as_millis() as u64;
    let mut subs = Subscriptions::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut inputs = Vec::new();
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { return Ok(()) };
                inputs.push(first);
                while inputs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(more) => inputs.push(more),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                subs.tick(now_ms());
                crate::metrics::event_log(&log, &subs);
            }
        }
        let mut publishes = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input {
                Input::Connected => {
                    // Again on every CONNACK: harmless, and it covers a broker
                    // that lost our session.
                    for filter in [
                        opts.topics.log_put(),
                        opts.topics.all_log_queries(),
                        format!("{}/log/subscribe/+", opts.topics.prefix()),
                        format!("{}/log/ack/+", opts.topics.prefix()),
                    ] {
                        client.subscribe(filter, QoS::AtLeastOnce).await?;
                    }
                }
                Input::Publish(p) => publishes.push(p),
            }
        }
        let mut puts = Vec::new();
        let mut control = Vec::new();
        for p in &publishes {
            match opts.topics.parse_log_topic(&p.topic) {
                Some(("put", None)) => puts.push(p),
                Some((verb, Some(client))) => control.push((verb, client, p)),
                _ => {}
            }
        }
        let outcome = log.append_checked(puts.iter().map(|p| &p.payload[..]))?;
        // Cursors first, so that one flush covers both.
        let mut cursor_moved = false;
        for (verb, requester, p) in &control {
            let opened = contracts::seal::open(&p.payload);
            if matches!(*verb, "subscribe" | "ack") {
                if let Err(why) = log.check_subscriber(requester, &opened) {
                    log.report(&format!("stream {verb}"), requester, &p.topic, &why.to_string());
                    continue;
                }
            }
            match *verb {
                "subscribe" => match serde_json::from_slice::<Subscribe>(&opened.body) {
                    Ok(s) => {
                        // The stored cursor matters only to a subscription
                        // not served yet; repeats (every 2 s) skip the read.
                        let stored = if subs.knows(requester, &s.name) {
                            None
                        } else {
                            log.cursor(requester, &s.name)?
                        };
                        if subs.subscribe(requester, s, stored, log.len(), now_ms()) {
                            tracing::debug!(client = %requester, "subscription (re)started");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(client = %requester, error = %e, "ignored a malformed subscribe")
                    }
                },
                "ack" => match serde_json::from_slice::<StreamAck>(&opened.body) {
                    Ok(a) => {
                        if let Some(((c, name), cursor)) = subs.ack(requester, &a, now_ms()) {
                            log.set_cursor(&c, &name, cursor)?;
                            cursor_moved = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(client = %requester, error = %e, "ignored a malformed stream ack")
                    }
                },
                _ => {}
            }
        }
        if cursor_moved || outcome.iter().any(|(a, _)| matches!(a, Appended::Stored(_))) {
            log.flush().await?;
        }
        // Confirm everything on disk, stored now or before (a re-send's first
        // confirm may have been lost).
        let mut confirms: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
        for (p, (a, checked)) in puts.iter().zip(&outcome) {
            match a {
                Appended::Malformed(why) => {
                    tracing::warn!(topic = %p.topic, error = %why, malformed_total = log.counters().malformed, "a malformed event was not recorded")
                }
                Appended::Refused { sender, reason } => log.report("event", sender, &p.topic, reason),
                _ => {}
            }
            if let Some(c) = checked {
                confirms.entry(&c.source).or_default().push(c.event_id);
            }
        }
        for (source, event_ids) in confirms {
            if source.is_empty() || source.contains(['/', '+', '#']) {
                continue;
            }
            let body = seal_for(&opts, &log, source, serde_json::to_vec(&Confirm { event_ids })?);
            client
                .publish(opts.topics.log_confirm(source), QoS::AtLeastOnce, false, body)
                .await?;
        }
        // For anyone watching with a plain MQTT client; nothing correct
        // depends on these.
        for (p, (a, checked)) in puts.iter().zip(&outcome) {
            if let (Appended::Stored(_), Some(c)) = (a, checked) {
                client
                    .publish(
                        opts.topics.event(&c.kind),
                        QoS::AtLeastOnce,
                        false,
                        p.payload.clone(),
                    )
                    .await?;
            }
        }
        for (verb, requester, p) in &control {
            if *verb == "query" {
                let reply = match serde_json::from_slice::<LogQuery>(&contracts::seal::open(&p.payload).body)
                {
                    Ok(q) => log.reply(&q),
                    Err(e) => error_reply("", "", &format!("malformed query: {e}")),
                };
                client
                    .publish(
                        opts.topics.log_reply(requester),
                        QoS::AtLeastOnce,
                        false,
                        seal_for(&opts, &log, requester, reply),
                    )
                    .await?;
            }
        }
        deliver(&client, &opts, &log, &mut subs, now_ms()).await?;
    }
}

/// Sends every subscription what its credit allows, in log order, in
/// batches of at most [`MAX_DELIVERY_BYTES`].
async fn deliver(
    client: &AsyncClient,
    opts: &RecorderOptions,
    log: &EventLog,
    subs: &mut Subscriptions,
    now_ms: u64,
) -> Result<(), EventLogError> {
    let topics = &opts.topics;
    for due in subs.due(log.len()) {
        let seal = |body: Vec<u8>| seal_for(opts, log, &due.key.0, body);
        let Some(sub) = subs.get(&due.key) else { continue };
        let (session, cursor) = (sub.session.clone(), sub.resumed);
        let read = log.read_after(due.from - 1, due.limit, &sub.kinds)?;
        let topic = topics.log_deliver(&due.key.0);
        let mut batch = StreamOut::new(&due.key.1, &session, due.from - 1, cursor);
        for (pos, raw) in &read.events {
            if !batch.is_empty() && batch.len() + raw.len() > MAX_DELIVERY_BYTES {
                let through = *pos - 1;
                client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, seal(batch.take(through)))
                    .await?;
                batch.after = through;
            }
            batch.push(*pos, raw);
        }
        if !batch.is_empty() {
            client
                .publish(topic, QoS::AtLeastOnce, false, seal(batch.take(read.through)))
                .await?;
        }
        let positions: Vec<u64> = read.events.iter().map(|(p, _)| *p).collect();
        subs.sent(&due.key, &positions, read.through, now_ms);
    }
    Ok(())
}

/// `body` for node `to` alone, sealed for it (`crate::trust::seal_for`).
fn seal_for(opts: &RecorderOptions, log: &EventLog, to: &str, body: Vec<u8>) -> Vec<u8> {
    crate::trust::seal_for(log.trust.as_deref(), opts.signer.as_deref(), to, body)
}

/// A [`contracts::stream::StreamBatch`] written around stored envelopes.
struct StreamOut {
    head: Vec<u8>,
    buf: Vec<u8>,
    count: usize,
    /// The position the next message continues from.
    after: u64,
}

impl StreamOut {
    fn new(name: &str, session: &str, after: u64, cursor: u64) -> StreamOut {
        let mut head = br#"{"name":"#.to_vec();
        // Strings always serialise.
        let _ = serde_json::to_writer(&mut head, name);
        head.extend_from_slice(br#","session":"#);
        let _ = serde_json::to_writer(&mut head, session);
        head.extend_from_slice(br#","cursor":"#);
        head.extend_from_slice(cursor.to_string().as_bytes());
        StreamOut {
            head,
            buf: Vec::new(),
            count: 0,
            after,
        }
    }

    fn push(&mut self, position: u64, envelope: &[u8]) {
        if self.count == 0 {
            self.buf.clear();
            self.buf.extend_from_slice(&self.head);
            self.buf.extend_from_slice(br#","after":"#);
            self.buf.extend_from_slice(self.after.to_string().as_bytes());
            self.buf.extend_from_slice(br#","events":["#);
        } else {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(br#"{"position":"#);
        self.buf.extend_from_slice(position.to_string().as_bytes());
        self.buf.extend_from_slice(br#","envelope":"#);
        self.buf.extend_from_slice(envelope);
        self.buf.push(b'}');
        self.count += 1;
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn take(&mut self, through: u64) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend_from_slice(br#"],"through":"#);
        out.extend_from_slice(through.to_string().as_bytes());
        out.push(b'}');
        self.count = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::kind;
    use contracts::history::LogReply;

    fn event(order: &str, seq: u64, kind: &str) -> Vec<u8> {
        let e = Envelope::new(kind, order, seq, "t", "test", serde_json::json!({"n": seq}));
        serde_json::to_vec(&e).unwrap()
    }

    fn seqs(log: &EventLog, order: &str) -> Vec<u64> {
        log.order_events(order).unwrap().iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn appends_once_per_event_and_reads_one_order_in_seq_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = crate::reopen::when_unlocked(|| EventLog::open(dir.path()));
        assert!(log.is_empty());
        let (a3, a1, b1, a10) = (
            event("o-1", 3, kind::ORDER_QUEUED),
            event("o-1", 1, kind::ORDER_PLACED),
            event("o-10", 1, kind::ORDER_PLACED),
            event("o-1", 10, kind::ORDER_DELIVERED),
        );
        let out = log
            .append_batch([&a3[..], &a1, &b1, &a3, b"{nope", &a10])
            .unwrap();
        assert_eq!(
            out,
            [
                Appended::Stored(1),
                Appended::Stored(2),
                Appended::Stored(3),
                Appended::Duplicate,
                out[4].clone(),
                Appended::Stored(4),
            ]
        );
        assert!(matches!(out[4], Appended::Malformed(_)));
        // A re-sent copy in a later batch is a duplicate too.
        assert_eq!(log.append(&a1).unwrap(), Appended::Duplicate);
        assert_eq!(
            log.counters(),
            Counters {
                stored: 4,
                duplicates: 2,
                malformed: 1,
                refused: 0
            }
        );
        assert_eq!(
            seqs(&log, "o-1"),
            [1, 3, 10],
            "seq order, and o-10 is another order"
        );
        assert_eq!(seqs(&log, "o-10"), [1]);
        assert!(seqs(&log, "o-2").is_empty());
        let positions: Vec<u64> = log.iter_raw().map(|r| r.unwrap().0).collect();
        assert_eq!(positions, [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_continues_the_positions() {
        let dir = tempfile::tempdir().unwrap();
        let placed = event("o-1", 1, kind::ORDER_PLACED);
        {
            let mut log = crate::reopen::when_unlocked(|| EventLog::open(dir.path()));
            log.append(&placed).unwrap();
            log.append(&event("o-1", 2, kind::ORDER_PAID)).unwrap();
            log.flush().await.unwrap();
        }
        let mut log = crate::reopen::when_unlocked(|| EventLog::open(dir.path()));
        assert_eq!(log.len(), 2);
        assert_eq!(
            log.append(&placed).unwrap(),
            Appended::Duplicate,
            "still deduplicates"
        );
        assert_eq!(
            log.append(&event("o-1", 3, kind::ORDER_QUEUED)).unwrap(),
            Appended::Stored(3)
        );
        assert_eq!(seqs(&log, "o-1"), [1, 2, 3]);
    }

    #[test]
    fn replies_read_back_as_the_contract_type() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = crate::reopen::when_unlocked(|| EventLog::open(dir.path()));
        log.append(&event("o-1", 2, kind::ORDER_PAID)).unwrap();
        log.append(&event("o-1", 1, kind::ORDER_PLACED)).unwrap();
        let q = LogQuery {
            request_id: "r-1".into(),
            order_id: "o-1".into(),
        };
        let r: LogReply = serde_json::from_slice(&log.reply(&q)).unwrap();
        assert_eq!(r.request_id, "r-1");
        assert_eq!(r.error, None);
        assert_eq!(r.events, log.order_events("o-1").unwrap());
        assert_eq!(r.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        let unknown = LogQuery {
            request_id: "r-2".into(),
            order_id: "nope".into(),
        };
        let r: LogReply = serde_json::from_slice(&log.reply(&unknown)).unwrap();
        assert!(r.events.is_empty() && r.error.is_none());
    }

    #[test]
    fn a_reply_too_large_for_one_message_is_an_error_not_a_lost_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = crate::reopen::when_unlocked(|| EventLog::open(dir.path()));
        let big = "x".repeat(4_000);
        for seq in 1..=100 {
            let e = Envelope::new(
                "order.paid",
                "o-1",
                seq,
                "t",
                "test",
                serde_json::json!({ "pad": big }),
            );
            log.append(&serde_json::to_vec(&e).unwrap()).unwrap();
        }
        let q = LogQuery {
            request_id: "r".into(),
            order_id: "o-1".into(),
        };
        let r: LogReply = serde_json::from_slice(&log.reply(&q)).unwrap();
        assert!(r.events.is_empty());
        assert!(r.error.unwrap().contains("more than one message may carry"));
    }
}
