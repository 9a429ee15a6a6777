//! The work-queue client API the roles use: [`QueueProducer`] puts through
//! the outbox, [`QueueConsumer`] takes deliveries against credit and acks them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use contracts::queue::{
    Ack, AckMessage, Acked, Credit, Delivery, DeliveryMessage, Held, Outcome, Unreadable,
};
use contracts::Envelope;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::NodeError;
use crate::runtime::link::{Beat, Incoming, Link};
use crate::runtime::outbox::Confirmation;

/// How often a consumer repeats its credit.
pub const CREDIT_REPEAT: std::time::Duration = std::time::Duration::from_secs(2);

/// Puts messages on work queues. A put is durable locally (outbox) when
/// [`QueueProducer::put`] returns, and durable at the keeper once confirmed.
#[derive(Clone)]
pub struct QueueProducer {
    link: Link,
}

impl QueueProducer {
    /// A producer over `link`.
    pub fn new(link: Link) -> Self {
        QueueProducer { link }
    }

    /// Writes `envelope` to the outbox and sends it to `queue`'s keeper.
    pub async fn put(&self, queue: &str, envelope: &Envelope) -> Result<(), NodeError> {
        self.put_many(queue, std::slice::from_ref(envelope)).await
    }

    /// Puts many envelopes with one outbox flush (group commit).
    pub async fn put_many(&self, queue: &str, envelopes: &[Envelope]) -> Result<(), NodeError> {
        let topic = self.link.topics().put(queue);
        let entries = envelopes
            .iter()
            .map(|e| self.link.security().entry(topic.clone(), e, Confirmation::Keeper))
            .collect::<Result<Vec<_>, NodeError>>()?;
        self.link.publish_durable_many(entries).await
    }

    /// Whether the keeper has confirmed `event_id` (it left the outbox).
    pub fn confirmed(&self, event_id: &Uuid) -> bool {
        !self.link.outbox().contains(event_id)
    }
}

/// Takes deliveries from one queue.
///
/// It announces its credit as soon as its subscription is in place, and with
/// a fresh incarnation after every reconnect, so the keeper takes back what
/// the previous connection held. Deliveries for an older incarnation are
/// dropped here: the keeper has already given them to someone else.
///
/// It asks for deliveries in batches (many in one MQTT message), and reads
/// single ones too.
pub struct QueueConsumer {
    queue: String,
    link: Link,
    rx: mpsc::UnboundedReceiver<Incoming>,
    /// Deliveries of a batch message not handed out yet.
    pending: VecDeque<Delivery>,
    state: Arc<Mutex<CreditState>>,
}

struct CreditState {
    credit: u32,
    incarnation: String,
    /// Deliveries handed out and not acknowledged yet (delivery id ->
    /// event id), named in every credit so a restarted keeper leases them
    /// to us again rather than to another consumer.
    held: BTreeMap<String, Uuid>,
    /// Acknowledged as done, not yet confirmed by the keeper.
    settling: Settling,
}

/// Most `done` acks named as unconfirmed at once. The keeper confirms each
/// within one flush, so only an old keeper (without confirms) reaches it.
const MAX_SETTLING: usize = 4096;

/// Deliveries acknowledged as done whose ack the keeper has not confirmed,
/// oldest first: named in every credit ([`Credit::settled`]) so that a lost
/// ack, or a keeper that died before flushing it, cannot send the message
/// to another consumer for a second effect.
#[derive(Debug, Default)]
struct Settling {
    order: VecDeque<String>,
    ids: HashMap<String, Uuid>,
}

impl Settling {
    fn add(&mut self, delivery_id: String, event_id: Uuid) {
        if self.ids.insert(delivery_id.clone(), event_id).is_none() {
            self.order.push_back(delivery_id);
        }
        while self.ids.len() > MAX_SETTLING || self.order.len() > 2 * MAX_SETTLING {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.ids.remove(&oldest);
        }
    }

    fn confirm(&mut self, delivery_ids: &[String]) {
        for d in delivery_ids {
            self.ids.remove(d);
        }
        while self.order.front().is_some_and(|d| !self.ids.contains_key(d)) {
            self.order.pop_front();
        }
    }

    fn listed(&self) -> Vec<Held> {
        self.order
            .iter()
            .filter_map(|d| {
                self.ids.get(d).map(|e| Held {
                    delivery_id: d.clone(),
                    event_id: *e,
                })
            })
            .collect()
    }
}

fn lock(m: &Mutex<CreditState>) -> std::sync::MutexGuard<'_, CreditState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl QueueConsumer {
    /// Subscribes to `queue`'s deliveries for this node and announces `credit`.
    pub async fn start(link: Link, queue: &str, credit: u32) -> Result<Self, NodeError> {
        let rx = link.subscribe(link.topics().deliver(queue, link.id())).await?;
        let acked = link.subscribe(link.topics().acked(queue, link.id())).await?;
        let state = Arc::new(Mutex::new(CreditState {
            credit,
            incarnation: new_incarnation(link.id()),
            held: BTreeMap::new(),
            settling: Settling::default(),
        }));
        tokio::spawn(confirm_acks(acked, state.clone(), link.security().clone()));
        let consumer = QueueConsumer {
            queue: queue.to_string(),
            link: link.clone(),
            rx,
            pending: VecDeque::new(),
            state: state.clone(),
        };
        tokio::spawn(announce_on_reconnect(link, queue.to_string(), state));
        consumer.announce().await?;
        Ok(consumer)
    }

    /// The queue consumed.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    async fn announce(&self) -> Result<(), NodeError> {
        announce(&self.link, &self.queue, &self.state).await
    }

    /// Changes the credit (e.g. an oven freed or broke) and announces it.
    pub async fn set_credit(&self, credit: u32) -> Result<(), NodeError> {
        lock(&self.state).credit = credit;
        self.announce().await
    }

    /// The next delivery, or `None` when the link is gone. Cancel-safe: a
    /// delivery is either returned or still waiting (in the channel, or in
    /// the rest of a batch).
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(d) = self.pop() {
                return Some(d);
            }
            let msg = self.rx.recv().await?;
            self.accept(msg);
        }
    }

    /// A delivery that has already arrived, if any (for acking in batches).
    pub async fn try_next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(d) = self.pop() {
                return Some(d);
            }
            let msg = self.rx.try_recv().ok()?;
            self.accept(msg);
        }
    }

    /// The next delivery of the current batch that is meant for this
    /// incarnation. Checked here, not on arrival, so that one taken back by
    /// the keeper after a reconnect is not handed out from the batch either.
    fn pop(&mut self) -> Option<Delivery> {
        while let Some(d) = self.pending.pop_front() {
            let mut state = lock(&self.state);
            if d.incarnation == state.incarnation {
                state.held.insert(d.delivery_id.clone(), d.envelope.event_id);
                return Some(d);
            }
            tracing::debug!(delivery_id = %d.delivery_id, "dropped a delivery meant for an earlier connection");
        }
        None
    }

    /// No await between taking a message off the channel and queueing its
    /// deliveries: `next` is used in `select!`, and a delivery taken but not
    /// kept would be lost until the keeper's ack timeout.
    fn accept(&mut self, msg: Incoming) {
        // On a signed platform a delivery message is sealed by the keeper,
        // which checked every put in it: one check per message, not one per
        // delivery. A forged one is dropped whole, not rejected: it may
        // carry real delivery ids.
        let security = self.link.security();
        let body = match security.open(&msg.payload, &[contracts::trust::role::BROKER]) {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(queue = %self.queue, reason = %why, refused_total = security.refused(), "security: a delivery was refused");
                return;
            }
        };
        let parsed = DeliveryMessage::parse(&body);
        match parsed {
            Ok(deliveries) => {
                for d in deliveries {
                    match d {
                        Ok(d) => self.pending.push_back(d),
                        Err(bad) => self.reject(bad),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "ignored a malformed delivery");
            }
        }
    }

    /// Rejects a delivery that does not read, so the keeper dead-letters it
    /// with the reason instead of waiting out its ack timeout.
    fn reject(&self, bad: Unreadable) {
        tracing::warn!(queue = %self.queue, delivery_id = ?bad.delivery_id, reason = %bad.reason, "rejected an unreadable delivery");
        let ours = bad.incarnation.as_deref() == Some(lock(&self.state).incarnation.as_str());
        let Some(delivery_id) = bad.delivery_id.filter(|_| ours) else {
            return;
        };
        let acker = self.acker();
        let reason = format!("unreadable delivery: {}", bad.reason);
        tokio::spawn(async move {
            if let Err(e) = acker.ack(&delivery_id, Outcome::Reject, Some(reason)).await {
                tracing::warn!(%delivery_id, error = %e, "could not reject an unreadable delivery");
            }
        });
    }

    /// A handle that acknowledges this consumer's deliveries, for tasks that
    /// work on several deliveries at once.
    pub fn acker(&self) -> Acker {
        Acker {
            link: self.link.clone(),
            topic: self.link.topics().ack(&self.queue, self.link.id()),
            state: self.state.clone(),
        }
    }
}

/// Acknowledges deliveries of one consumer; cheap to clone.
#[derive(Clone)]
pub struct Acker {
    link: Link,
    topic: String,
    state: Arc<Mutex<CreditState>>,
}

impl Acker {
    /// Acknowledges a delivery.
    pub async fn ack(
        &self,
        delivery_id: &str,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<(), NodeError> {
        self.ack_many(vec![Ack {
            delivery_id: delivery_id.to_string(),
            outcome,
            reason,
        }])
        .await
    }

    /// Stops naming a delivery as held without acknowledging it (it was
    /// dropped on purpose: the keeper's ack timeout brings it back).
    pub fn forget(&self, delivery_id: &str) {
        lock(&self.state).held.remove(delivery_id);
    }

    /// Acknowledges several deliveries in one message.
    pub async fn ack_many(&self, acks: Vec<Ack>) -> Result<(), NodeError> {
        {
            let mut state = lock(&self.state);
            for a in &acks {
                let held = state.held.remove(&a.delivery_id);
                if let (Some(event_id), Outcome::Done) = (held, a.outcome) {
                    state.settling.add(a.delivery_id.clone(), event_id);
                }
            }
        }
        self.link
            .publish_to_brokers(self.topic.clone(), &AckMessage::Batch { acks })
            .await
    }
}

fn new_incarnation(id: &str) -> String {
    format!("{id}-{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn announce(link: &Link, queue: &str, state: &Mutex<CreditState>) -> Result<(), NodeError> {
    let credit = {
        let s = lock(state);
        Credit {
            credit: s.credit,
            incarnation: s.incarnation.clone(),
            batch: true,
            held: s
                .held
                .iter()
                .map(|(delivery_id, event_id)| Held {
                    delivery_id: delivery_id.clone(),
                    event_id: *event_id,
                })
                .collect(),
            settled: s.settling.listed(),
        }
    };
    link.publish_to_brokers(link.topics().credit(queue, link.id()), &credit)
        .await
}

/// Stops naming acks as unconfirmed once the keeper confirms them.
async fn confirm_acks(
    mut acked: mpsc::UnboundedReceiver<Incoming>,
    state: Arc<Mutex<CreditState>>,
    security: crate::runtime::security::Security,
) {
    while let Some(msg) = acked.recv().await {
        let body = match security.open(&msg.payload, &[contracts::trust::role::BROKER]) {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(reason = %why, refused_total = security.refused(), "security: an ack confirm was refused");
                continue;
            }
        };
        match serde_json::from_slice::<Acked>(&body) {
            Ok(a) => lock(&state).settling.confirm(&a.delivery_ids),
            Err(e) => tracing::warn!(error = %e, "ignored a malformed ack confirm"),
        }
    }
}

/// Repeats the credit every [`CREDIT_REPEAT`] (credit is a window, so a
/// repeat is harmless, and it reaches a keeper that subscribed after our last
/// one), and at once after each reconnect. When the broker lost our session,
/// deliveries it held for us are gone: a new incarnation tells the keeper.
async fn announce_on_reconnect(link: Link, queue: String, state: Arc<Mutex<CreditState>>) {
    let mut beats = link.beats(CREDIT_REPEAT);
    while let Some(beat) = beats.next().await {
        // The first connection of a process needs no new incarnation: each
        // process starts with its own.
        if let Beat::Connected(e) = beat {
            if e.connections > 1 && !e.session_present {
                lock(&state).incarnation = new_incarnation(link.id());
            }
        }
        if announce(&link, &queue, &state).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfirmed_done_acks_are_listed_oldest_first_until_confirmed() {
        let mut s = Settling::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        s.add("d1".into(), a);
        s.add("d2".into(), b);
        s.add("d1".into(), a);
        let ids = |s: &Settling| s.listed().into_iter().map(|h| h.delivery_id).collect::<Vec<_>>();
        assert_eq!(ids(&s), ["d1", "d2"]);
        s.confirm(&["d2".into()]);
        assert_eq!(ids(&s), ["d1"]);
        s.confirm(&["d1".into(), "unknown".into()]);
        assert!(s.listed().is_empty());
    }

    #[test]
    fn the_unconfirmed_list_stays_bounded() {
        let mut s = Settling::default();
        for n in 0..MAX_SETTLING + 10 {
            s.add(format!("d{n}"), Uuid::new_v4());
        }
        let listed = s.listed();
        assert_eq!(listed.len(), MAX_SETTLING);
        assert_eq!(listed[0].delivery_id, "d10", "the oldest went first");
    }
}
