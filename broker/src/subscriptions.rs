//! The event log's subscriptions as plain data: who reads the log, from
//! where, with how much credit, and what is due to be sent.
//!
//! No sockets and no sled here: [`crate::eventlog::run`] feeds it the
//! messages and the clock, reads the log for what [`Subscriptions::due`]
//! asks, and persists the cursors [`Subscriptions::ack`] returns.
//!
//! The rules:
//!
//! - A subscription is `(client, name)`. Its cursor (`acked`) is the highest
//!   position its subscriber has applied; everything after it will be sent
//!   (again, if need be) until acknowledged.
//! - At most `credit` delivered events are unacknowledged at once, so a
//!   slow or dead subscriber costs a bounded number of messages.
//! - A new session (the subscriber reconnected or restarted) rewinds the
//!   subscription to its cursor, and so does silence: unacknowledged events
//!   are sent again after [`RESEND_AFTER`] while the subscriber is heard from.
//! - A subscription not heard from for [`FORGET_AFTER`] is dropped from
//!   memory; a durable one's cursor is on disk and resumes it.

use std::collections::{HashMap, VecDeque};

use contracts::stream::{Start, StreamAck, Subscribe};

/// Unacknowledged events are sent again after this long without progress.
pub const RESEND_AFTER_MS: u64 = 5_000;
/// A subscription not heard from this long is dropped from memory.
pub const FORGET_AFTER_MS: u64 = 30_000;
/// Most events delivered and unacknowledged per subscription, whatever the
/// subscriber asks: bounds the broker's memory per subscriber.
pub const MAX_CREDIT: u32 = 10_000;

/// Whether `kind` passes a filter of `kinds` (empty: every kind).
pub fn wanted(kinds: &[String], kind: &str) -> bool {
    kinds.is_empty() || kinds.iter().any(|k| k == kind)
}

/// `(client, name)`.
pub type Key = (String, String);

/// One subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sub {
    /// Kinds wanted (empty: all).
    pub kinds: Vec<String>,
    /// Whether the cursor is kept on disk.
    pub durable: bool,
    /// The window.
    pub credit: u32,
    /// The subscriber's current session.
    pub session: String,
    /// Everything up to here is applied by the subscriber.
    pub acked: u64,
    /// Everything up to here has been read for it (sent, or filtered out).
    pub sent: u64,
    /// Where this session's sending started (see `StreamBatch::cursor`).
    pub resumed: u64,
    /// Positions sent and not acknowledged, ascending.
    unacked: VecDeque<u64>,
    heard_ms: u64,
    progress_ms: u64,
}

impl Sub {
    /// Whether `kind` is wanted.
    pub fn wants(&self, kind: &str) -> bool {
        wanted(&self.kinds, kind)
    }

    /// How many more events may be sent now.
    pub fn free(&self) -> usize {
        (self.credit as usize).saturating_sub(self.unacked.len())
    }

    fn rewind(&mut self, now_ms: u64) {
        self.sent = self.acked;
        self.resumed = self.acked;
        self.unacked.clear();
        self.progress_ms = now_ms;
    }
}

/// What [`Subscriptions::due`] asks the log to read for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The subscription.
    pub key: Key,
    /// Read from this position on.
    pub from: u64,
    /// At most this many matching events.
    pub limit: usize,
}

/// Every subscription the log serves.
#[derive(Debug, Default)]
pub struct Subscriptions {
    subs: HashMap<Key, Sub>,
}

impl Subscriptions {
    /// Handles a [`Subscribe`] from `client`. `stored` is the durable cursor
    /// on disk, if any; `end` the log's last position. Returns `true` when the
    /// subscription was (re)started and needs sending.
    pub fn subscribe(
        &mut self,
        client: &str,
        s: Subscribe,
        stored: Option<u64>,
        end: u64,
        now_ms: u64,
    ) -> bool {
        let key = (client.to_string(), s.name.clone());
        let credit = s.credit.min(MAX_CREDIT);
        let start_at = |start: Start| match start {
            Start::Beginning => 0,
            Start::End => end,
            Start::After(p) => p.min(end),
        };
        match self.subs.get_mut(&key) {
            Some(sub) if sub.session == s.session => {
                sub.credit = credit;
                sub.kinds = s.kinds;
                sub.heard_ms = now_ms;
                false
            }
            Some(sub) => {
                sub.session = s.session;
                sub.credit = credit;
                sub.kinds = s.kinds;
                sub.heard_ms = now_ms;
                if !s.durable {
                    // An ephemeral subscriber says where it is each time.
                    sub.acked = start_at(s.start);
                }
                sub.durable = s.durable;
                sub.rewind(now_ms);
                true
            }
            None => {
                let acked = match (s.durable, stored) {
                    (true, Some(cursor)) => cursor.min(end),
                    _ => start_at(s.start),
                };
                self.subs.insert(
                    key,
                    Sub {
                        kinds: s.kinds,
                        durable: s.durable,
                        credit,
                        session: s.session,
                        acked,
                        sent: acked,
                        resumed: acked,
                        unacked: VecDeque::new(),
                        heard_ms: now_ms,
                        progress_ms: now_ms,
                    },
                );
                true
            }
        }
    }

    /// Handles a [`StreamAck`]; returns the cursor to store when the
    /// subscription is durable and its cursor moved.
    pub fn ack(&mut self, client: &str, ack: &StreamAck, now_ms: u64) -> Option<(Key, u64)> {
        let key = (client.to_string(), ack.name.clone());
        let sub = self.subs.get_mut(&key)?;
        sub.heard_ms = now_ms;
        // Never past what was sent: an ack from an earlier session (or a
        // forged one) cannot skip events never delivered.
        let position = ack.position.min(sub.sent);
        while sub.unacked.front().is_some_and(|p| *p <= position) {
            sub.unacked.pop_front();
        }
        let mut cursor = sub.acked.max(position);
        if sub.unacked.is_empty() {
            // Nothing outstanding: what was read but filtered out is done too.
            cursor = sub.sent;
        }
        if cursor == sub.acked {
            return None;
        }
        sub.acked = cursor;
        sub.progress_ms = now_ms;
        sub.durable.then_some((key, cursor))
    }

    /// Rewinds subscriptions whose events went unacknowledged too long,
    /// and forgets those not heard from at all.
    pub fn tick(&mut self, now_ms: u64) {
        self.subs
            .retain(|_, s| now_ms.saturating_sub(s.heard_ms) < FORGET_AFTER_MS);
        for sub in self.subs.values_mut() {
            let stalled = !sub.unacked.is_empty()
                && now_ms.saturating_sub(sub.progress_ms) >= RESEND_AFTER_MS
                && now_ms.saturating_sub(sub.heard_ms) < RESEND_AFTER_MS;
            if stalled {
                sub.rewind(now_ms);
            }
        }
    }

    /// The subscriptions that have credit and something left to read in a
    /// log ending at `end`.
    pub fn due(&self, end: u64) -> Vec<Due> {
        let mut out: Vec<Due> = self
            .subs
            .iter()
            .filter(|(_, s)| s.sent < end && s.free() > 0)
            .map(|(k, s)| Due {
                key: k.clone(),
                from: s.sent + 1,
                limit: s.free(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Records what was read for `key`: the positions sent (ascending) and
    /// the last position read. Ignored for a subscription that is gone.
    pub fn sent(&mut self, key: &Key, positions: &[u64], through: u64, now_ms: u64) {
        if let Some(sub) = self.subs.get_mut(key) {
            if sub.unacked.is_empty() && !positions.is_empty() {
                sub.progress_ms = now_ms;
            }
            sub.unacked.extend(positions.iter().copied());
            sub.sent = sub.sent.max(through);
            if sub.unacked.is_empty() {
                // Everything read was filtered out: nothing to wait for, and
                // nothing up to here is owed.
                sub.acked = sub.sent;
                sub.resumed = sub.sent;
            }
        }
    }

    /// Every subscription, for the metrics.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Sub)> {
        self.subs.iter()
    }

    /// Whether subscription `name` of `client` is being served.
    pub fn knows(&self, client: &str, name: &str) -> bool {
        self.subs.contains_key(&(client.to_string(), name.to_string()))
    }

    /// One subscription.
    pub fn get(&self, key: &Key) -> Option<&Sub> {
        self.subs.get(key)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(name: &str, session: &str, credit: u32, start: Start, durable: bool) -> Subscribe {
        Subscribe {
            name: name.into(),
            kinds: vec![],
            start,
            durable,
            credit,
            session: session.into(),
        }
    }

    fn key(c: &str, n: &str) -> Key {
        (c.into(), n.into())
    }

    #[test]
    fn credit_bounds_what_is_unacknowledged_and_acks_move_the_cursor() {
        let mut s = Subscriptions::default();
        assert!(s.subscribe("order", sub("book", "s1", 2, Start::Beginning, true), None, 5, 0));
        assert_eq!(
            s.due(5),
            vec![Due {
                key: key("order", "book"),
                from: 1,
                limit: 2
            }]
        );
        s.sent(&key("order", "book"), &[1, 2], 2, 0);
        assert!(s.due(5).is_empty(), "no credit left");
        let ack = StreamAck {
            name: "book".into(),
            position: 1,
        };
        assert_eq!(s.ack("order", &ack, 1), Some((key("order", "book"), 1)));
        assert_eq!(s.due(5)[0].from, 3);
        assert_eq!(s.due(5)[0].limit, 1);
        // An ack beyond what was sent cannot skip unsent events.
        let ahead = StreamAck {
            name: "book".into(),
            position: 99,
        };
        assert_eq!(s.ack("order", &ahead, 2), Some((key("order", "book"), 2)));
        assert_eq!(s.get(&key("order", "book")).unwrap().acked, 2);
    }

    #[test]
    fn a_new_session_rewinds_to_the_cursor_and_a_repeat_does_not() {
        let mut s = Subscriptions::default();
        s.subscribe("order", sub("book", "s1", 10, Start::Beginning, true), None, 9, 0);
        s.sent(&key("order", "book"), &[1, 2, 3, 4], 4, 0);
        s.ack(
            "order",
            &StreamAck {
                name: "book".into(),
                position: 2,
            },
            0,
        );
        assert!(!s.subscribe("order", sub("book", "s1", 10, Start::Beginning, true), None, 9, 1));
        assert_eq!(s.due(9)[0].from, 5, "same session: carries on");
        assert!(s.subscribe("order", sub("book", "s2", 10, Start::Beginning, true), None, 9, 2));
        assert_eq!(s.due(9)[0].from, 3, "new session: from the cursor");
    }

    #[test]
    fn a_durable_cursor_resumes_and_an_ephemeral_one_starts_where_told() {
        let mut s = Subscriptions::default();
        s.subscribe(
            "order",
            sub("book", "s", 10, Start::Beginning, true),
            Some(7),
            9,
            0,
        );
        assert_eq!(s.due(9)[0].from, 8);
        s.subscribe(
            "room",
            sub("watch", "a", 10, Start::After(3), false),
            Some(7),
            9,
            0,
        );
        assert_eq!(
            s.get(&key("room", "watch")).unwrap().acked,
            3,
            "no stored cursor for an ephemeral one"
        );
        s.subscribe("tail", sub("t", "a", 10, Start::End, false), None, 9, 0);
        assert!(s.due(9).iter().all(|d| d.key != key("tail", "t")));
    }

    #[test]
    fn silence_rewinds_and_a_long_silence_forgets() {
        let mut s = Subscriptions::default();
        s.subscribe("order", sub("book", "s", 10, Start::Beginning, true), None, 3, 0);
        s.sent(&key("order", "book"), &[1, 2, 3], 3, 0);
        s.tick(RESEND_AFTER_MS - 1);
        assert!(s.due(3).is_empty());
        // Heard from (a repeated subscribe), but no ack: send again.
        s.subscribe(
            "order",
            sub("book", "s", 10, Start::Beginning, true),
            None,
            3,
            RESEND_AFTER_MS,
        );
        s.tick(RESEND_AFTER_MS);
        assert_eq!(s.due(3)[0].from, 1);
        s.tick(RESEND_AFTER_MS + FORGET_AFTER_MS);
        assert!(s.is_empty());
    }

    #[test]
    fn filtered_out_events_advance_the_cursor() {
        let mut s = Subscriptions::default();
        let mut only = sub("alerts", "s", 10, Start::Beginning, true);
        only.kinds = vec!["queue.dead_lettered".into()];
        s.subscribe("room", only, None, 100, 0);
        assert!(s
            .get(&key("room", "alerts"))
            .unwrap()
            .wants("queue.dead_lettered"));
        assert!(!s.get(&key("room", "alerts")).unwrap().wants("order.paid"));
        s.sent(&key("room", "alerts"), &[], 100, 0);
        assert_eq!(s.get(&key("room", "alerts")).unwrap().acked, 100);
        assert!(s.due(100).is_empty());
    }
}
