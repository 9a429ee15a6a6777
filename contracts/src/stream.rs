//! The durable event stream: how events reach the broker's event log and
//! how subscribers read them back, with cursors kept by the log.
//!
//! Publishing (`<prefix>/log/put`, one [`crate::Envelope`] per message): the
//! log appends it (deduplicated by `event_id`), flushes once per batch, then
//! answers with a [`crate::queue::Confirm`] on `<prefix>/log/confirm/<source>`.
//! A node's outbox forgets an event only on that confirm.
//!
//! Subscribing (`<prefix>/log/subscribe/<client>`, a [`Subscribe`]): the log
//! sends [`StreamBatch`]es on `<prefix>/log/deliver/<client>`, in log order,
//! never more than `credit` events past the last acknowledged position. The
//! subscriber acknowledges with a [`StreamAck`] on `<prefix>/log/ack/<client>`
//! (cumulative: everything up to `position`). A durable subscription's
//! cursor is stored by the log, so after any crash delivery resumes after it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Where a subscription starts when the log does not know it yet (or, for an
/// ephemeral one, every time it is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// The first event in the log.
    #[default]
    Beginning,
    /// Only events appended from now on.
    End,
    /// After this position (the events at `position + 1` and later).
    After(u64),
}

/// Subscriber -> log: open (or resume) a subscription and grant credit.
///
/// Sending it again with the same `session` is harmless (it only updates the
/// credit), so subscribers repeat it as a heartbeat; a new `session` (after a
/// reconnect or a restart) makes the log send again everything after the
/// acknowledged cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The subscription's name, unique per client (`book`, `watch`).
    pub name: String,
    /// Event kinds wanted; empty: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Where a subscription the log does not know yet starts.
    #[serde(default)]
    pub start: Start,
    /// Whether the log keeps the cursor on disk (`false`: in memory only,
    /// gone with the log's process; the subscriber then says where to
    /// start again).
    #[serde(default = "yes")]
    pub durable: bool,
    /// How many events may be delivered and not yet acknowledged.
    pub credit: u32,
    /// Identifies one connection of the subscriber; a new one rewinds to the cursor.
    pub session: String,
}

fn yes() -> bool {
    true
}

/// One event of a [`StreamBatch`], as read by a subscriber.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct StreamEvent {
    /// Its position in the log (from 1, in append order).
    pub position: u64,
    /// The envelope, exactly as it was published.
    #[schemars(with = "crate::Envelope")]
    pub envelope: Box<RawValue>,
}

/// Log -> subscriber: the next events of subscription `name`, in log order.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct StreamBatch {
    /// The subscription.
    pub name: String,
    /// The session it was sent to; a subscriber drops batches of an older one.
    pub session: String,
    /// The position this batch continues from: its events are the wanted
    /// ones in `after + 1 ..= through`. A subscriber that has not read up to
    /// `after` missed a batch and drops this one (the log sends again from
    /// the cursor), unless `after == cursor`.
    pub after: u64,
    /// The cursor this session's sending started from: nothing up to it is
    /// owed to the subscriber any more, so a batch with `after == cursor`
    /// is the start of the stream whatever the subscriber has read.
    pub cursor: u64,
    /// The events, in ascending position.
    pub events: Vec<StreamEvent>,
    /// The position the batch reaches, even where every event in it was
    /// filtered out: acknowledging it moves the cursor past skipped kinds.
    pub through: u64,
}

/// Subscriber -> log: everything of `name` up to `position` is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamAck {
    /// The subscription.
    pub name: String,
    /// The highest position applied; acks are cumulative.
    pub position: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_defaults_are_a_durable_subscription_from_the_beginning() {
        let s: Subscribe = serde_json::from_str(r#"{"name":"book","credit":10,"session":"s1"}"#).unwrap();
        assert!(s.durable);
        assert_eq!(s.start, Start::Beginning);
        assert!(s.kinds.is_empty());
        let after: Subscribe = serde_json::from_str(
            r#"{"name":"w","credit":1,"session":"s","durable":false,"start":{"after":41}}"#,
        )
        .unwrap();
        assert_eq!(after.start, Start::After(41));
        assert!(serde_json::from_str::<Subscribe>(r#"{"name":"b","credit":1,"session":"s","x":1}"#).is_err());
    }

    #[test]
    fn a_batch_keeps_each_envelope_verbatim() {
        let b: StreamBatch = serde_json::from_str(
            r#"{"name":"book","session":"s","after":6,"cursor":6,"through":9,"events":[{"position":7,"envelope":{"kind":"order.paid"}}]}"#,
        )
        .unwrap();
        assert_eq!(b.events[0].position, 7);
        assert_eq!(b.events[0].envelope.get(), r#"{"kind":"order.paid"}"#);
        assert_eq!(b.through, 9);
    }
}
