//! The events a node published in the last moments, to publish again when
//! the broker comes back from a restart.
//!
//! rumqttd keeps messages in memory only. An event it acknowledged (so it
//! left our outbox) but had not yet forwarded to every subscriber when its
//! process died is gone for those subscribers, and a gap in one order's seqs
//! holds back every later event of that order in every fold. So after a
//! reconnect to a broker that lost our session, a node publishes the events
//! of the last [`KEEP`] again; every consumer drops the copies it already had
//! by event id.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::outbox::Entry;

/// How far back events are kept.
pub const KEEP: Duration = Duration::from_secs(30);
/// At most this many (the oldest go first), so a busy node's memory stays bounded.
pub const CAP: usize = 10_000;

/// Events published recently, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    entries: VecDeque<(Instant, Entry)>,
}

impl Recent {
    /// Notes an event published at `now`. A resend of the same event is
    /// noted again rather than looked up (that would cost a scan per event);
    /// the copy it causes is dropped by event id like any other.
    pub fn note(&mut self, now: Instant, entry: Entry) {
        self.entries.push_back((now, entry));
        self.prune(now);
    }

    /// The events published within [`KEEP`] of `now`, oldest first.
    pub fn since(&mut self, now: Instant) -> Vec<Entry> {
        self.prune(now);
        self.entries.iter().map(|(_, e)| e.clone()).collect()
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.entries.front() {
            if now.duration_since(*at) > KEEP || self.entries.len() > CAP {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Confirmation;

    fn entry(n: u128) -> Entry {
        Entry {
            id: uuid::Uuid::from_u128(n),
            topic: "pizza/events/order.paid".into(),
            payload: "{}".into(),
            confirmation: Confirmation::PubAck,
        }
    }

    #[test]
    fn keeps_the_last_moments_and_no_more() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        r.note(t0, entry(1));
        r.note(t0 + Duration::from_secs(20), entry(2));
        let ids = |v: Vec<Entry>| v.into_iter().map(|e| e.id.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(r.since(t0 + Duration::from_secs(25))), vec![1, 2]);
        assert_eq!(
            ids(r.since(t0 + Duration::from_secs(31))),
            vec![2],
            "older than KEEP go"
        );
        for n in 0..(CAP as u128 + 10) {
            r.note(t0 + Duration::from_secs(30), entry(100 + n));
        }
        assert_eq!(r.since(t0 + Duration::from_secs(30)).len(), CAP);
    }
}
