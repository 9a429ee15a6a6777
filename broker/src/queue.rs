//! One durable work queue as plain data: the keeper's decisions, with no I/O.
//!
//! The keeper ([`crate::keeper`]) feeds this in puts, credits, acks and the
//! clock, persists what it returns, and publishes the deliveries it hands out.
//! Everything here is a function of its inputs (time is passed in as
//! milliseconds), which is what lets the tests below check the guarantees
//! without a broker:
//!
//! - **credit**: a consumer never holds more deliveries than its credit;
//! - **per-key FIFO**: at most one message per key is in flight, and one key's
//!   messages go out in put order (only the head of a key is ever eligible);
//! - **retries**: `retry` re-queues the message at its key's head after an
//!   exponential backoff; past `max_attempts` it is dead-lettered;
//! - **leases**: when a consumer goes offline or reconnects as a new
//!   incarnation, its deliveries return to the queue, marked as redeliveries.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use contracts::queue::{ConsumerFigures, Held, Outcome};
use contracts::Envelope;
use uuid::Uuid;

/// Retry and dead-letter policy of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Deliveries tried before a message is dead-lettered.
    pub max_attempts: u32,
    /// Backoff after the first retry; doubled on each further one.
    pub backoff_base_ms: u64,
    /// Backoff ceiling.
    pub backoff_max_ms: u64,
    /// A delivery not acknowledged this long goes back to the queue (the
    /// consumer may be alive but have lost it, e.g. a dropped message).
    pub ack_timeout_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 5,
            backoff_base_ms: 200,
            backoff_max_ms: 10_000,
            ack_timeout_ms: 60_000,
        }
    }
}

impl Policy {
    /// How long to wait before delivering again after `attempt` failed.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(20);
        self.backoff_base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms)
    }
}

/// The envelope fields the keeper routes by; the rest stays raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The envelope's event id (idempotency key).
    pub event_id: Uuid,
    /// The partition key.
    pub order_id: String,
    /// The producer, who gets the confirm.
    pub source: String,
    /// The envelope's seq within its order (reported by withdrawals).
    pub order_seq: u64,
}

/// A message stored in a queue.
///
/// The envelope is kept as the exact JSON that was put: the keeper never
/// needs its payload, and cloning `Bytes` is a reference-count bump.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Position in the queue, unique and increasing in put order.
    pub seq: u64,
    /// Deliveries tried so far.
    pub attempt: u32,
    /// Why the next delivery is a redelivery, if it is one.
    pub redelivery: Option<String>,
    /// Routing fields of the envelope.
    pub meta: Meta,
    /// The envelope JSON, as put.
    pub envelope: Bytes,
}

impl Item {
    /// An item holding `envelope` (serialised here), for tests and tools.
    pub fn from_envelope(seq: u64, envelope: &Envelope) -> Result<Item, serde_json::Error> {
        Ok(Item {
            seq,
            attempt: 0,
            redelivery: None,
            meta: Meta {
                event_id: envelope.event_id,
                order_id: envelope.order_id.clone(),
                source: envelope.source.clone(),
                order_seq: envelope.seq,
            },
            envelope: Bytes::from(serde_json::to_vec(envelope)?),
        })
    }

    /// The partition key: the order id, or the event id when there is none.
    pub fn key(&self) -> String {
        if self.meta.order_id.is_empty() {
            self.meta.event_id.to_string()
        } else {
            self.meta.order_id.clone()
        }
    }
}

#[cfg(test)]
impl Item {
    /// A kitchen ticket for `key` at queue position `seq`, for tests.
    pub(crate) fn ticket(seq: u64, key: &str) -> Item {
        let payload = serde_json::json!({ "n": seq });
        let envelope = Envelope::new("kitchen.ticket", key, 1, "t", "test", payload);
        Item::from_envelope(seq, &envelope).expect("an envelope serialises")
    }
}

/// One delivery to send: the keeper publishes it to `consumer`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// Who gets it.
    pub consumer: String,
    /// The consumer's incarnation it is meant for.
    pub incarnation: String,
    /// Unique id of this delivery.
    pub delivery_id: String,
    /// The item (with `attempt` already counting this delivery).
    pub item: Item,
    /// The consumer takes deliveries in batches (see
    /// [`contracts::queue::Credit::batch`]).
    pub batch: bool,
}

/// What an ack (or a lease expiry) did to a message; the keeper persists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Done: mark it finished in storage.
    Done(Item),
    /// Back in the queue with a new attempt count: update storage.
    Requeued(Item),
    /// Moved to the DLQ: delete from the queue, add to the DLQ.
    Dead {
        /// The message.
        item: Item,
        /// Why.
        reason: String,
    },
    /// Nothing to do: an unknown or stale delivery id.
    Ignored,
}

/// What [`Queue::withdraw`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Withdrawal {
    /// Messages taken off the queue: mark them finished in storage.
    pub removed: Vec<Item>,
    /// A consumer still holds one of the key's messages.
    pub in_flight: bool,
    /// The highest envelope seq of the key held or dropped so far.
    pub last_seq: u64,
}

#[derive(Debug, Clone)]
struct Consumer {
    credit: u32,
    incarnation: String,
    in_flight: u32,
    online: bool,
    batch: bool,
}

#[derive(Debug, Clone)]
struct Lease {
    seq: u64,
    consumer: String,
    /// Back to the queue if not acknowledged by then.
    deadline: u64,
}

/// The state of one work queue.
#[derive(Debug)]
pub struct Queue {
    name: String,
    policy: Policy,
    items: HashMap<u64, Item>,
    /// Each key's messages in put order. The head is the only one that may be
    /// eligible, delayed or in flight: that is the per-key FIFO guarantee.
    by_key: HashMap<String, VecDeque<u64>>,
    /// Key heads ready to deliver now, oldest first.
    eligible: BTreeSet<u64>,
    /// Key heads waiting out a backoff: (due time, seq).
    delayed: BTreeSet<(u64, u64)>,
    leases: HashMap<String, Lease>,
    /// Deliveries taken back from a consumer, kept so that a late `done` for
    /// work that was in fact finished is not done twice.
    released: HashMap<String, u64>,
    consumers: BTreeMap<String, Consumer>,
    /// The consumer served last; the next delivery goes to the one after it.
    last_served: Option<String>,
    next_delivery: u64,
    /// The clock as of the last [`Queue::tick`], in ms.
    now: u64,
    /// Withdrawn keys, with the highest envelope seq seen of each: their
    /// messages are never delivered (again).
    withdrawn: HashMap<String, u64>,
    /// No delivery goes out before this time (ms): after a restart, the
    /// consumers get a moment to say what they were working on.
    hold_until: u64,
    /// Counters since start.
    pub counters: Counters,
}

/// Running totals of a queue, for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Puts accepted.
    pub put: u64,
    /// Messages done.
    pub done: u64,
    /// Deliveries sent to consumers (first ones and redeliveries).
    pub delivered: u64,
    /// Redeliveries (retries and lease expiries).
    pub redelivered: u64,
    /// Messages dead-lettered.
    pub dead: u64,
    /// Messages withdrawn (removed, dropped on put, or not re-queued).
    pub withdrawn: u64,
    /// Deliveries a consumer re-claimed after a keeper restart.
    pub readopted: u64,
}

impl Queue {
    /// An empty queue. `delivery_base` seeds delivery ids so that ids stay
    /// unique across keeper restarts (pass the clock in ms).
    pub fn new(name: impl Into<String>, policy: Policy, delivery_base: u64) -> Self {
        Queue {
            name: name.into(),
            policy,
            items: HashMap::new(),
            by_key: HashMap::new(),
            eligible: BTreeSet::new(),
            delayed: BTreeSet::new(),
            leases: HashMap::new(),
            released: HashMap::new(),
            consumers: BTreeMap::new(),
            last_served: None,
            next_delivery: delivery_base,
            now: 0,
            withdrawn: HashMap::new(),
            hold_until: 0,
            counters: Counters::default(),
        }
    }

    /// Hands nothing out before `until` (ms): a keeper that restarted with
    /// messages lets its consumers re-claim what they hold first (see
    /// [`Queue::credit`]), so work in progress does not go to a second one.
    pub fn hold(&mut self, until: u64) {
        self.hold_until = until;
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a stored message at the tail of its key. Used for fresh puts and
    /// when rebuilding from storage (in seq order).
    pub fn push(&mut self, item: Item) {
        let seq = item.seq;
        let keyed = self.by_key.entry(item.key()).or_default();
        keyed.push_back(seq);
        if keyed.len() == 1 {
            self.eligible.insert(seq);
        }
        self.items.insert(seq, item);
    }

    /// Records an accepted put (counted for the in-rate).
    pub fn put(&mut self, item: Item) {
        self.counters.put += 1;
        self.push(item);
    }

    /// Takes `key` off the queue for good: its waiting messages are removed
    /// (returned, to finish in storage), one in flight stays with its
    /// consumer but will not come back, and later puts of the key are
    /// dropped (see [`Queue::drop_withdrawn`]). Repeating it is harmless.
    pub fn withdraw(&mut self, key: &str) -> Withdrawal {
        let mut last_seq = self.withdrawn.get(key).copied().unwrap_or(0);
        let leased: BTreeSet<u64> = self.leases.values().map(|l| l.seq).collect();
        let mut removed = Vec::new();
        let mut kept = VecDeque::new();
        for seq in self.by_key.remove(key).unwrap_or_default() {
            if leased.contains(&seq) {
                if let Some(item) = self.items.get(&seq) {
                    last_seq = last_seq.max(item.meta.order_seq);
                }
                kept.push_back(seq);
                continue;
            }
            self.eligible.remove(&seq);
            self.delayed.retain(|(_, s)| *s != seq);
            self.forget_released(seq);
            if let Some(item) = self.items.remove(&seq) {
                last_seq = last_seq.max(item.meta.order_seq);
                removed.push(item);
            }
        }
        let in_flight = !kept.is_empty();
        if in_flight {
            self.by_key.insert(key.to_string(), kept);
        }
        self.counters.withdrawn += removed.len() as u64;
        self.withdrawn.insert(key.to_string(), last_seq);
        Withdrawal {
            removed,
            in_flight,
            last_seq,
        }
    }

    /// Remembers a withdrawal restored from storage.
    pub fn restore_withdrawn(&mut self, key: String, last_seq: u64) {
        self.withdrawn.insert(key, last_seq);
    }

    /// Whether `key` was withdrawn.
    pub fn is_withdrawn(&self, key: &str) -> bool {
        self.withdrawn.contains_key(key)
    }

    /// A put for a withdrawn key: returns the key's new last seq (to save)
    /// if the put must be dropped, `None` if it may be queued.
    pub fn drop_withdrawn(&mut self, meta: &Meta) -> Option<u64> {
        // Called for every put: no key is built while nothing is withdrawn.
        if self.withdrawn.is_empty() {
            return None;
        }
        let key = if meta.order_id.is_empty() {
            meta.event_id.to_string()
        } else {
            meta.order_id.clone()
        };
        let last = self.withdrawn.get_mut(&key)?;
        *last = (*last).max(meta.order_seq);
        self.counters.withdrawn += 1;
        Some(*last)
    }

    /// A consumer announced its credit and the deliveries it `held` (works
    /// on). A new incarnation returns every other delivery of the previous
    /// one to the queue; a held delivery this keeper does not know (it
    /// restarted) is leased to the consumer again if its message is still
    /// waiting, so it is not handed to a second consumer.
    pub fn credit(&mut self, consumer: &str, credit: u32, incarnation: &str, held: &[Held]) -> Vec<Effect> {
        let mut effects = Vec::new();
        let stale = self
            .consumers
            .get(consumer)
            .is_some_and(|c| c.incarnation != incarnation);
        if stale {
            let keep: HashSet<&str> = held.iter().map(|h| h.delivery_id.as_str()).collect();
            effects = self.release_except(consumer, &keep, &format!("consumer {consumer} reconnected"));
        }
        self.readopt(consumer, held);
        let c = self.consumers.entry(consumer.to_string()).or_insert(Consumer {
            credit,
            incarnation: incarnation.to_string(),
            in_flight: 0,
            online: true,
            batch: false,
        });
        c.credit = credit;
        c.incarnation = incarnation.to_string();
        c.online = true;
        effects
    }

    /// Whether `consumer` takes its deliveries in batches (it says so in its
    /// credit; older consumers do not).
    pub fn set_batch(&mut self, consumer: &str, batch: bool) {
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.batch = batch;
        }
    }

    /// A consumer went offline (its last will arrived, or its lease ran out):
    /// its deliveries go back to the queue.
    pub fn offline(&mut self, consumer: &str) -> Vec<Effect> {
        let effects = self.release(consumer, &format!("consumer {consumer} went offline"));
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.online = false;
            c.credit = 0;
        }
        effects
    }

    fn release(&mut self, consumer: &str, why: &str) -> Vec<Effect> {
        self.release_except(consumer, &HashSet::new(), why)
    }

    /// Takes back `consumer`'s deliveries except those in `keep`.
    fn release_except(&mut self, consumer: &str, keep: &HashSet<&str>, why: &str) -> Vec<Effect> {
        let ids: Vec<String> = self
            .leases
            .iter()
            .filter(|(id, l)| l.consumer == consumer && !keep.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        let effects = ids
            .into_iter()
            .filter_map(|id| self.take_back(id, |_| why.to_string()))
            .collect();
        let kept = self.leases.values().filter(|l| l.consumer == consumer).count() as u32;
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.in_flight = kept;
        }
        effects
    }

    /// Leases again the `held` deliveries this queue has no lease for, when
    /// their message waits to go out (a keeper restart forgot the leases; the
    /// messages came back from storage as eligible).
    fn readopt(&mut self, consumer: &str, held: &[Held]) {
        let unknown: HashMap<Uuid, &str> = held
            .iter()
            .filter(|h| !self.leases.contains_key(&h.delivery_id))
            .map(|h| (h.event_id, h.delivery_id.as_str()))
            .collect();
        if unknown.is_empty() {
            return;
        }
        let found: Vec<(u64, String)> = self
            .items
            .values()
            .filter_map(|i| unknown.get(&i.meta.event_id).map(|d| (i.seq, d.to_string())))
            .filter(|(seq, _)| self.eligible.contains(seq))
            .collect();
        for (seq, delivery_id) in found {
            self.eligible.remove(&seq);
            self.leases.insert(
                delivery_id,
                Lease {
                    seq,
                    consumer: consumer.to_string(),
                    deadline: self.now + self.policy.ack_timeout_ms,
                },
            );
            if let Some(c) = self.consumers.get_mut(consumer) {
                c.in_flight += 1;
            }
            self.counters.readopted += 1;
        }
    }

    /// Finishes the deliveries `consumer` acknowledged as done whose ack
    /// this queue never applied (the ack was lost, or the keeper restarted
    /// before flushing it; see [`contracts::queue::Credit::settled`]): one
    /// still leased is acked, one whose message waits to go out again is
    /// done, for it has had its effect. Anything else (gone, or out again
    /// to another consumer) stays as it is.
    pub fn settle(&mut self, consumer: &str, settled: &[Held], now: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut unknown = HashSet::new();
        for h in settled {
            if self.leases.contains_key(&h.delivery_id) {
                effects.push(self.ack(consumer, &h.delivery_id, Outcome::Done, None, now));
            } else {
                unknown.insert(h.event_id);
            }
        }
        if !unknown.is_empty() {
            let waiting: Vec<u64> = self
                .items
                .values()
                .filter(|i| unknown.contains(&i.meta.event_id))
                .map(|i| i.seq)
                .filter(|seq| self.eligible.contains(seq) || self.delayed.iter().any(|(_, s)| s == seq))
                .collect();
            for seq in waiting {
                self.delayed.retain(|(_, s)| *s != seq);
                if let Some(item) = self.remove_head(seq) {
                    self.counters.done += 1;
                    effects.push(Effect::Done(item));
                }
            }
        }
        effects.retain(|e| *e != Effect::Ignored);
        effects
    }

    /// Ends the lease `id` without an ack and puts its message back,
    /// remembering the delivery id so a late `done` can still finish it.
    fn take_back(&mut self, id: String, why: impl FnOnce(&Lease) -> String) -> Option<Effect> {
        let lease = self.leases.remove(&id)?;
        if let Some(c) = self.consumers.get_mut(&lease.consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        let why = why(&lease);
        self.released.insert(id, lease.seq);
        Some(self.requeue(lease.seq, why, 0))
    }

    /// Forgets taken-back deliveries of `seq`: it went out again or is gone,
    /// so a late ack for them changes nothing (and the map stays small).
    fn forget_released(&mut self, seq: u64) {
        if !self.released.is_empty() {
            self.released.retain(|_, s| *s != seq);
        }
    }

    /// Puts an in-flight head back: eligible after `delay_ms`, or dead if it
    /// has used up its attempts.
    fn requeue(&mut self, seq: u64, why: String, due: u64) -> Effect {
        let Some(item) = self.items.get_mut(&seq) else {
            return Effect::Ignored;
        };
        if self.withdrawn.contains_key(&item.key()) {
            // Withdrawn while in flight: it does not come back.
            return match self.remove_head(seq) {
                Some(item) => {
                    self.counters.withdrawn += 1;
                    Effect::Done(item)
                }
                None => Effect::Ignored,
            };
        }
        if item.attempt >= self.policy.max_attempts {
            let reason = format!("gave up after {} attempts: {why}", item.attempt);
            return self.kill(seq, reason);
        }
        item.redelivery = Some(why);
        let item = item.clone();
        self.counters.redelivered += 1;
        if due == 0 {
            self.eligible.insert(seq);
        } else {
            self.delayed.insert((due, seq));
        }
        Effect::Requeued(item)
    }

    /// Removes a key head for good and lets the key's next message go.
    fn remove_head(&mut self, seq: u64) -> Option<Item> {
        let item = self.items.remove(&seq)?;
        self.forget_released(seq);
        self.eligible.remove(&seq);
        let key = item.key();
        if let Some(keyed) = self.by_key.get_mut(&key) {
            keyed.retain(|s| *s != seq);
            match keyed.front() {
                Some(next) => {
                    self.eligible.insert(*next);
                }
                None => {
                    self.by_key.remove(&key);
                }
            }
        }
        Some(item)
    }

    fn kill(&mut self, seq: u64, reason: String) -> Effect {
        match self.remove_head(seq) {
            Some(item) => {
                self.counters.dead += 1;
                Effect::Dead { item, reason }
            }
            None => Effect::Ignored,
        }
    }

    /// A consumer acknowledged a delivery.
    pub fn ack(
        &mut self,
        consumer: &str,
        delivery_id: &str,
        outcome: Outcome,
        reason: Option<String>,
        now: u64,
    ) -> Effect {
        let Some(lease) = self.leases.remove(delivery_id) else {
            // A late ack for a delivery we took back. If the work was done and
            // the message has not gone out again, finishing it here saves a
            // second effect; in any other case the redelivery stands.
            if outcome == Outcome::Done {
                if let Some(seq) = self.released.remove(delivery_id) {
                    if self.eligible.contains(&seq) || self.delayed.iter().any(|(_, s)| *s == seq) {
                        self.delayed.retain(|(_, s)| *s != seq);
                        if let Some(item) = self.remove_head(seq) {
                            self.counters.done += 1;
                            return Effect::Done(item);
                        }
                    }
                }
            }
            return Effect::Ignored;
        };
        if let Some(c) = self.consumers.get_mut(&lease.consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        if lease.consumer != consumer {
            tracing::warn!(queue = %self.name, delivery_id, consumer, owner = %lease.consumer, "ack from a consumer that does not hold the delivery; accepted");
        }
        match outcome {
            Outcome::Done => match self.remove_head(lease.seq) {
                Some(item) => {
                    self.counters.done += 1;
                    Effect::Done(item)
                }
                None => Effect::Ignored,
            },
            Outcome::Retry => {
                let why = format!("retry: {}", reason.unwrap_or_else(|| "no reason given".into()));
                let attempt = self.items.get(&lease.seq).map_or(1, |i| i.attempt);
                self.requeue(lease.seq, why, now + self.policy.backoff_ms(attempt))
            }
            Outcome::Reject => {
                let why = format!(
                    "rejected by {consumer}: {}",
                    reason.unwrap_or_else(|| "no reason given".into())
                );
                self.kill(lease.seq, why)
            }
        }
    }

    /// Advances the clock: messages whose backoff has run out become
    /// eligible, and deliveries past their ack timeout go back to the queue
    /// (returned as effects to persist).
    pub fn tick(&mut self, now: u64) -> Vec<Effect> {
        self.now = now;
        while let Some(&(due, seq)) = self.delayed.first() {
            if due > now {
                break;
            }
            self.delayed.pop_first();
            self.eligible.insert(seq);
        }
        let expired: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let timeout_s = self.policy.ack_timeout_ms / 1000;
        expired
            .into_iter()
            .filter_map(|id| {
                self.take_back(id, |l| {
                    format!("not acknowledged by {} within {timeout_s} s", l.consumer)
                })
            })
            .collect()
    }

    /// When the next delayed message becomes due, if any.
    pub fn next_due(&self) -> Option<u64> {
        let held = (self.now < self.hold_until).then_some(self.hold_until);
        let delayed = self.delayed.first().map(|(due, _)| *due);
        held.into_iter().chain(delayed).min()
    }

    /// Hands out as many deliveries as credit allows: oldest eligible message
    /// first, consumers in turn starting after the one served last.
    pub fn dispatch(&mut self) -> Vec<Dispatch> {
        let mut out = Vec::new();
        if self.now < self.hold_until {
            return out;
        }
        while !self.eligible.is_empty() {
            let Some(consumer) = self.next_consumer() else {
                break;
            };
            let Some(seq) = self.eligible.pop_first() else {
                break;
            };
            let Some(item) = self.items.get_mut(&seq) else {
                continue;
            };
            item.attempt += 1;
            let item = item.clone();
            self.next_delivery += 1;
            self.counters.delivered += 1;
            let delivery_id = format!("{}-{}-{}", self.name, seq, self.next_delivery);
            self.forget_released(seq);
            self.leases.insert(
                delivery_id.clone(),
                Lease {
                    seq,
                    consumer: consumer.clone(),
                    deadline: self.now + self.policy.ack_timeout_ms,
                },
            );
            let c = self.consumers.get_mut(&consumer).expect("chosen from consumers");
            c.in_flight += 1;
            out.push(Dispatch {
                consumer: consumer.clone(),
                incarnation: c.incarnation.clone(),
                delivery_id,
                item,
                batch: c.batch,
            });
            self.last_served = Some(consumer);
        }
        out
    }

    /// The next consumer with free credit, round robin.
    fn next_consumer(&self) -> Option<String> {
        let free = |c: &Consumer| c.online && c.in_flight < c.credit;
        let after = self.last_served.as_deref().unwrap_or("");
        self.consumers
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .chain(
                self.consumers
                    .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(after))),
            )
            .find(|(_, c)| free(c))
            .map(|(id, _)| id.clone())
    }

    /// Messages waiting (eligible now or held behind their key's head).
    pub fn ready(&self) -> u64 {
        (self.items.len() - self.leases.len() - self.delayed.len()) as u64
    }

    /// Messages waiting out a backoff.
    pub fn delayed(&self) -> u64 {
        self.delayed.len() as u64
    }

    /// Messages delivered and not acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.leases.len() as u64
    }

    /// Whether the queue holds `seq`.
    pub fn contains(&self, seq: u64) -> bool {
        self.items.contains_key(&seq)
    }

    /// The consumers as the stats show them.
    pub fn consumer_figures(&self) -> Vec<ConsumerFigures> {
        self.consumers
            .iter()
            .map(|(id, c)| ConsumerFigures {
                id: id.clone(),
                credit: c.credit,
                in_flight: c.in_flight,
                online: c.online,
            })
            .collect()
    }

    /// Whether `consumer` is known to this queue.
    pub fn has_consumer(&self, consumer: &str) -> bool {
        self.consumers.contains_key(consumer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `d`'s consumer acks it with `outcome` for `reason` at `now`.
    fn answer(q: &mut Queue, d: &Dispatch, outcome: Outcome, reason: &str, now: u64) -> Effect {
        q.ack(&d.consumer, &d.delivery_id, outcome, Some(reason.into()), now)
    }

    /// A kitchen queue with tickets `a` (seq 1) and `b` (seq 2), as pushed
    /// or as a restarted keeper reads them back from storage.
    fn two_tickets() -> (Queue, Item, Item) {
        let mut q = Queue::new("kitchen", Policy::default(), 0);
        let (a, b) = (Item::ticket(1, "o1"), Item::ticket(2, "o2"));
        q.push(a.clone());
        q.push(b.clone());
        (q, a, b)
    }

    fn held(delivery_id: &str, item: &Item) -> Held {
        Held {
            delivery_id: delivery_id.into(),
            event_id: item.meta.event_id,
        }
    }

    #[test]
    fn after_a_restart_a_consumer_keeps_what_it_holds_and_nothing_goes_out_before() {
        // The restarted keeper: two messages back from storage, no leases.
        let (mut q, a, _) = two_tickets();
        q.hold(3_000);
        q.credit("k2", 2, "k2-new", &[]);
        assert!(q.dispatch().is_empty(), "held back for the consumers to re-claim");
        assert_eq!(q.next_due(), Some(3_000), "the keeper wakes when the hold ends");
        // kitchen-1 reconnects, cooking `a` under its old delivery id.
        q.credit("k1", 2, "k1-new", &[held("kitchen-1-77", &a)]);
        assert_eq!(q.in_flight(), 1);
        q.tick(3_000);
        let out = q.dispatch();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].item.seq, 2, "only b goes out; a stays with k1");
        let done = q.ack("k1", "kitchen-1-77", Outcome::Done, None, 3_100);
        assert!(matches!(done, Effect::Done(ref i) if i.seq == 1), "{done:?}");
        assert_eq!(q.counters.readopted, 1);
        assert_eq!(q.counters.redelivered, 0);
    }

    #[test]
    fn a_done_ack_that_never_reached_the_disk_is_settled_not_handed_out_again() {
        // The restarted keeper: `a` was done (its ack lost before the
        // flush), `b` was not; both came back from storage.
        let (mut q, a, b) = two_tickets();
        q.hold(3_000);
        let effects = q.settle("k1", &[held("kitchen-1-5", &a)], 100);
        assert!(
            matches!(effects[..], [Effect::Done(ref i)] if i.seq == 1),
            "{effects:?}"
        );
        q.credit("k2", 2, "k2-new", &[]);
        q.tick(3_000);
        let out = q.dispatch();
        assert_eq!(
            out.iter().map(|d| d.item.seq).collect::<Vec<_>>(),
            vec![2],
            "a is not cooked again"
        );
        // A settled delivery still leased (the ack itself was lost) is acked.
        let effects = q.settle("k2", &[held(&out[0].delivery_id, &b)], 3_100);
        assert!(
            matches!(effects[..], [Effect::Done(ref i)] if i.seq == 2),
            "{effects:?}"
        );
        assert!(
            q.settle("k2", &[held("gone", &b)], 3_200).is_empty(),
            "settling twice is harmless"
        );
        assert_eq!(q.counters.done, 2);
    }

    #[test]
    fn a_new_incarnation_keeps_the_deliveries_it_still_holds() {
        let (mut q, a, _) = two_tickets();
        q.credit("k1", 2, "i1", &[]);
        let out = q.dispatch();
        assert_eq!(out.len(), 2);
        let kept = &out.iter().find(|d| d.item.seq == 1).unwrap().delivery_id;
        // Reconnected without its session: a new incarnation, still cooking a.
        let effects = q.credit("k1", 2, "i2", &[held(kept, &a)]);
        assert_eq!(effects.len(), 1, "only b comes back: {effects:?}");
        assert_eq!(q.in_flight(), 1);
        assert!(matches!(
            q.ack("k1", kept, Outcome::Done, None, 10),
            Effect::Done(_)
        ));
    }

    fn item(seq: u64, key: &str) -> Item {
        Item::ticket(seq, key)
    }

    fn queue() -> Queue {
        Queue::new("q", Policy::default(), 0)
    }

    #[test]
    fn delivers_only_against_credit() {
        let mut q = queue();
        for s in 1..=5 {
            q.put(item(s, &format!("o{s}")));
        }
        assert!(q.dispatch().is_empty(), "no consumer, no delivery");
        q.credit("k1", 2, "i1", &[]);
        let d = q.dispatch();
        assert_eq!(d.len(), 2);
        assert_eq!(q.ready(), 3);
        assert_eq!(q.in_flight(), 2);
        assert!(q.dispatch().is_empty(), "credit used up");
        q.ack("k1", &d[0].delivery_id, Outcome::Done, None, 0);
        assert_eq!(q.dispatch().len(), 1);
    }

    #[test]
    fn a_consumer_that_asks_for_batches_is_marked_in_its_dispatches() {
        let mut q = queue();
        for s in 1..=3 {
            q.put(item(s, &format!("o{s}")));
        }
        q.credit("old", 1, "i1", &[]);
        q.credit("new", 2, "i2", &[]);
        q.set_batch("new", true);
        let d = q.dispatch();
        assert_eq!(d.len(), 3, "credit still bounds what each one gets");
        for d in &d {
            assert_eq!(d.batch, d.consumer == "new", "{}", d.consumer);
        }
    }

    #[test]
    fn never_two_in_flight_per_key_and_fifo_within_key() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.put(item(2, "a"));
        q.put(item(3, "b"));
        q.credit("k1", 10, "i1", &[]);
        let d = q.dispatch();
        let seqs: Vec<u64> = d.iter().map(|d| d.item.seq).collect();
        assert_eq!(seqs, vec![1, 3], "second 'a' waits behind the first");
        q.ack("k1", &d[0].delivery_id, Outcome::Done, None, 0);
        let d2 = q.dispatch();
        assert_eq!(d2.len(), 1);
        assert_eq!(d2[0].item.seq, 2);
    }

    #[test]
    fn competing_consumers_take_turns() {
        let mut q = queue();
        for s in 1..=10 {
            q.put(item(s, &format!("o{s}")));
        }
        q.credit("k1", 1, "i1", &[]);
        q.credit("k2", 1, "i2", &[]);
        let mut served = HashMap::<String, u32>::new();
        for _ in 0..5 {
            for d in q.dispatch() {
                *served.entry(d.consumer.clone()).or_default() += 1;
                q.ack(&d.consumer, &d.delivery_id, Outcome::Done, None, 0);
            }
        }
        assert_eq!(served.get("k1"), Some(&5));
        assert_eq!(served.get("k2"), Some(&5));
    }

    #[test]
    fn retry_backs_off_then_redelivers_marked() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        let d = q.dispatch().remove(0);
        let e = answer(&mut q, &d, Outcome::Retry, "oven jammed", 1_000);
        assert!(matches!(e, Effect::Requeued(_)));
        assert!(q.dispatch().is_empty(), "still backing off");
        assert_eq!(q.next_due(), Some(1_000 + Policy::default().backoff_ms(1)));
        q.tick(10_000);
        let again = q.dispatch().remove(0);
        assert_eq!(again.item.attempt, 2);
        assert_eq!(again.item.redelivery.as_deref(), Some("retry: oven jammed"));
    }

    #[test]
    fn retries_past_max_attempts_go_to_the_dlq_and_free_the_key() {
        let mut q = Queue::new(
            "q",
            Policy {
                max_attempts: 2,
                backoff_base_ms: 0,
                backoff_max_ms: 0,
                ..Policy::default()
            },
            0,
        );
        q.put(item(1, "a"));
        q.put(item(2, "a"));
        q.credit("k1", 1, "i1", &[]);
        let d = q.dispatch().remove(0);
        q.ack("k1", &d.delivery_id, Outcome::Retry, None, 0);
        q.tick(0);
        let d = q.dispatch().remove(0);
        let e = answer(&mut q, &d, Outcome::Retry, "still broken", 0);
        match e {
            Effect::Dead { item, reason } => {
                assert_eq!(item.seq, 1);
                assert!(reason.contains("2 attempts"), "{reason}");
                assert!(reason.contains("still broken"), "{reason}");
            }
            other => panic!("expected dead, got {other:?}"),
        }
        assert_eq!(q.dispatch()[0].item.seq, 2, "the key moves on");
    }

    #[test]
    fn reject_dead_letters_at_once() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        let d = q.dispatch().remove(0);
        let e = answer(&mut q, &d, Outcome::Reject, "no such pizza", 0);
        assert!(matches!(e, Effect::Dead { ref reason, .. } if reason.contains("no such pizza")));
        assert_eq!(q.ready() + q.in_flight(), 0);
    }

    #[test]
    fn offline_consumer_loses_its_deliveries_to_the_others() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.put(item(2, "b"));
        q.credit("k1", 2, "i1", &[]);
        assert_eq!(q.dispatch().len(), 2);
        q.credit("k2", 2, "i2", &[]);
        let effects = q.offline("k1");
        assert_eq!(effects.len(), 2);
        let d = q.dispatch();
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.consumer == "k2"));
        assert!(d
            .iter()
            .all(|d| d.item.redelivery.as_deref() == Some("consumer k1 went offline")));
    }

    #[test]
    fn new_incarnation_releases_the_old_ones_deliveries() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        let old = q.dispatch().remove(0);
        q.credit("k1", 1, "i2", &[]);
        let d = q.dispatch().remove(0);
        assert_eq!(d.incarnation, "i2");
        assert_eq!(d.item.attempt, 2);
        assert_eq!(
            q.ack("k1", &old.delivery_id, Outcome::Done, None, 0),
            Effect::Ignored
        );
        assert_eq!(q.in_flight(), 1);
    }

    #[test]
    fn late_done_for_a_released_delivery_finishes_it_if_not_resent() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        let d = q.dispatch().remove(0);
        q.offline("k1");
        let effect = q.ack("k1", &d.delivery_id, Outcome::Done, None, 0);
        assert!(matches!(effect, Effect::Done(ref i) if i.seq == 1), "{effect:?}");
        assert_eq!(q.ready(), 0);
    }

    #[test]
    fn taken_back_deliveries_are_forgotten_once_resent_and_a_late_ack_then_changes_nothing() {
        let mut q = queue();
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        let first = q.dispatch().remove(0);
        q.offline("k1");
        assert_eq!(q.released.len(), 1);
        q.credit("k2", 1, "i2", &[]);
        let second = q.dispatch().remove(0);
        assert!(q.released.is_empty(), "resent: nothing left to remember");
        let late = q.ack("k1", &first.delivery_id, Outcome::Done, None, 0);
        assert!(matches!(late, Effect::Ignored), "{late:?}");
        let done = q.ack("k2", &second.delivery_id, Outcome::Done, None, 0);
        assert!(matches!(done, Effect::Done(ref i) if i.seq == 1), "{done:?}");
    }

    #[test]
    fn a_message_that_kills_every_consumer_ends_in_the_dlq() {
        let mut q = Queue::new(
            "q",
            Policy {
                max_attempts: 3,
                ..Policy::default()
            },
            0,
        );
        q.put(item(1, "poison"));
        let mut dead = false;
        for round in 0..5 {
            q.credit("k1", 1, &format!("i{round}"), &[]);
            if q.dispatch().is_empty() {
                break;
            }
            dead |= q.offline("k1").iter().any(|e| matches!(e, Effect::Dead { .. }));
        }
        assert!(dead);
        assert_eq!(q.ready() + q.in_flight(), 0);
    }

    #[test]
    fn an_unacknowledged_delivery_times_out_back_to_the_queue() {
        let mut q = Queue::new(
            "q",
            Policy {
                ack_timeout_ms: 1_000,
                ..Policy::default()
            },
            0,
        );
        q.put(item(1, "a"));
        q.credit("k1", 1, "i1", &[]);
        q.tick(0);
        let lost = q.dispatch().remove(0);
        assert!(q.tick(999).is_empty());
        let effects = q.tick(1_000);
        assert!(matches!(effects[..], [Effect::Requeued(ref i)] if i.seq == 1));
        let again = q.dispatch().remove(0);
        assert_eq!(again.consumer, "k1", "the credit was freed");
        assert_eq!(
            again.item.redelivery.as_deref(),
            Some("not acknowledged by k1 within 1 s")
        );
        assert_eq!(
            q.ack("k1", &lost.delivery_id, Outcome::Done, None, 1_000),
            Effect::Ignored,
            "stale ack: the message is out again"
        );
    }

    fn item_at(seq: u64, key: &str, order_seq: u64) -> Item {
        let envelope = Envelope::new(
            "kitchen.ticket",
            key,
            order_seq,
            "t",
            "test",
            serde_json::Value::Null,
        );
        Item::from_envelope(seq, &envelope).unwrap()
    }

    #[test]
    fn withdrawing_removes_a_keys_waiting_messages_and_drops_later_puts() {
        let mut q = queue();
        q.put(item_at(1, "a", 3));
        q.put(item_at(2, "b", 3));
        q.put(item_at(3, "a", 4));
        let w = q.withdraw("a");
        let removed: Vec<u64> = w.removed.iter().map(|i| i.seq).collect();
        assert_eq!(removed, vec![1, 3]);
        assert!(!w.in_flight);
        assert_eq!(w.last_seq, 4);
        assert_eq!(q.ready(), 1, "only b is left");
        q.credit("k1", 5, "i1", &[]);
        let d = q.dispatch();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].item.meta.order_id, "b");
        // A later put of "a" (say a kitchen finishing it) is dropped, and its
        // seq is remembered for the next withdrawal's answer.
        assert_eq!(q.drop_withdrawn(&item_at(4, "a", 5).meta), Some(5));
        assert_eq!(q.drop_withdrawn(&item_at(5, "b", 5).meta), None);
        let again = q.withdraw("a");
        assert!(again.removed.is_empty());
        assert_eq!(again.last_seq, 5);
        assert_eq!(q.counters.withdrawn, 3);
    }

    #[test]
    fn a_withdrawn_message_in_flight_stays_with_its_consumer_and_never_comes_back() {
        let mut q = queue();
        q.put(item_at(1, "a", 3));
        q.put(item_at(2, "a", 6));
        q.credit("k1", 1, "i1", &[]);
        let d = q.dispatch();
        assert_eq!(d[0].item.seq, 1);
        let w = q.withdraw("a");
        assert!(w.in_flight, "the kitchen holds it");
        assert_eq!(w.removed.len(), 1, "the waiting one is removed");
        assert_eq!(w.last_seq, 6);
        // A retry (or the consumer dying) would normally bring it back.
        assert!(matches!(
            q.ack("k1", &d[0].delivery_id, Outcome::Retry, None, 0),
            Effect::Done(_)
        ));
        assert_eq!((q.ready(), q.in_flight()), (0, 0));
        assert!(!q.withdraw("a").in_flight);
        q.put(item_at(3, "b", 3));
        q.credit("k1", 1, "i1", &[]);
        assert_eq!(q.dispatch().len(), 1, "other keys flow on");
    }

    #[test]
    fn a_withdrawn_message_held_by_a_consumer_that_goes_offline_is_finished() {
        let mut q = queue();
        q.put(item_at(1, "a", 3));
        q.credit("k1", 1, "i1", &[]);
        assert_eq!(q.dispatch().len(), 1);
        q.withdraw("a");
        let effects = q.offline("k1");
        assert!(matches!(effects.as_slice(), [Effect::Done(_)]));
        q.credit("k2", 1, "i2", &[]);
        assert!(q.dispatch().is_empty());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = Policy {
            max_attempts: 9,
            backoff_base_ms: 100,
            backoff_max_ms: 1_000,
            ..Policy::default()
        };
        assert_eq!(p.backoff_ms(1), 100);
        assert_eq!(p.backoff_ms(2), 200);
        assert_eq!(p.backoff_ms(4), 800);
        assert_eq!(p.backoff_ms(5), 1_000);
        assert_eq!(p.backoff_ms(60), 1_000);
    }
}
