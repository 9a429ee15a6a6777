//! The node's one MQTT connection.
//!
//! - Stable client id (= node id), `clean_session = false`, keep-alive, and a
//!   last will that marks the node offline (retained) if it dies.
//! - Reconnects with capped exponential backoff; when the broker answers
//!   `session_present = false` (it lost our session, e.g. it restarted), it
//!   subscribes again, since rumqttc does not.
//! - Incoming messages are routed to whoever subscribed to a matching filter,
//!   and acknowledged (PUBACK) only when that receiver says it is handled, so
//!   a node that dies mid-message gets it again.
//! - Outbox entries are sent through here; their PUBACKs (for events) and the
//!   keeper's confirms (for queue puts) remove them; what is still unconfirmed
//!   is sent again after a timeout and after every reconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use contracts::queue::Confirm;
use contracts::status::NodeStatus;
use contracts::topics::Topics;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::acks::{AckOrder, Ticket};
use crate::error::NodeError;
use crate::outbox::{Confirmation, Entry, Outbox};

/// Unconfirmed queue puts are sent again after this long.
const RESEND_PUT_AFTER: Duration = Duration::from_secs(3);
/// Events without a PUBACK are sent again after this long.
const RESEND_EVENT_AFTER: Duration = Duration::from_secs(10);
/// Ceiling of the reconnect backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// When recent events go out a second time after a broker restart.
const ECHO_AGAIN_AFTER: Duration = Duration::from_secs(5);

/// Where and who to connect as.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Client id, which is the node id.
    pub id: String,
    /// Role, for the last will.
    pub role: String,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Username and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// Topic prefix.
    pub topics: Topics,
    /// MQTT keep-alive; the broker declares us dead after 1.5 times this.
    pub keep_alive: Duration,
}

/// Which connection of this process is live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epoch {
    /// CONNACKs received so far.
    pub connections: u64,
    /// Whether the broker kept our session on the last one. When it did not
    /// (it restarted), whatever it held for us is gone.
    pub session_present: bool,
}

/// A message that arrived on a subscription. Call [`Incoming::ack`] once it
/// is handled; until then the broker keeps it for us.
pub struct Incoming {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its place in the ack order (`None` for QoS 0, which has no ack).
    ticket: Option<Ticket>,
    link: Link,
}

impl Incoming {
    /// Tells the broker this message is handled. The PUBACK leaves once
    /// every message that arrived before it is handled too (see
    /// [`crate::acks`]).
    ///
    /// Cancel-safe: the work runs in a task of its own, so a caller dropped
    /// mid-await (a `select!` branch losing) can neither leave its slot
    /// unfinished, which would hold back every later PUBACK, nor drop acks
    /// already taken from the order.
    pub async fn ack(self) {
        let Some(ticket) = self.ticket else { return };
        let link = self.link;
        let _ = tokio::spawn(async move {
            // Held across the sends so that two finishers cannot interleave.
            let _sending = link.shared.ack_send.lock().await;
            let ready = lock(&link.shared.acks).finish(ticket);
            for publish in ready {
                // Fails only when the connection is closing; the broker then
                // keeps the message for our next session, the safe side.
                let _ = link.client.ack(&publish).await;
            }
        })
        .await;
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("topic", &self.topic).finish()
    }
}

struct Route {
    filter: String,
    tx: mpsc::UnboundedSender<Incoming>,
}

struct Shared {
    topics: Topics,
    id: String,
    routes: Mutex<Vec<Route>>,
    /// Packet ids handed out, in the order our publishes were queued: `Some`
    /// for outbox entries removed on PUBACK. rumqttc reports each new publish
    /// as `Outgoing::Publish(pkid)` in that same order, which is how a PUBACK
    /// is traced back to its outbox entry.
    queued: Mutex<VecDeque<Option<Uuid>>>,
    in_flight: Mutex<HashMap<u16, Option<Uuid>>>,
    /// Incoming messages waiting for their PUBACK, in arrival order.
    acks: Mutex<AckOrder<Publish>>,
    /// Serialises the sending of PUBACKs.
    ack_send: tokio::sync::Mutex<()>,
    /// Serialises "note in `queued`, then hand to rumqttc".
    send_lock: tokio::sync::Mutex<()>,
    sent_at: Mutex<HashMap<Uuid, Instant>>,
    /// Events published lately, published again after a broker restart.
    recent: Mutex<crate::recent::Recent>,
    outbox: Outbox,
    epoch: watch::Sender<Epoch>,
    /// Set once our DISCONNECT has been written.
    closed: watch::Sender<bool>,
}

/// A handle on the node's MQTT connection; cheap to clone.
#[derive(Clone)]
pub struct Link {
    client: AsyncClient,
    shared: Arc<Shared>,
}

/// Lock a std mutex, recovering from poisoning: every critical section here
/// leaves its data consistent, so a panic elsewhere must not wedge the link.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an MQTT topic matches a filter with `+` and `#` wildcards.
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Link {
    /// Connects (in the background: this returns at once, and the link keeps
    /// trying until the broker is there).
    pub fn connect(opts: LinkOptions, outbox: Outbox) -> Link {
        let will = NodeStatus::offline(&opts.id, &opts.role);
        let mut mqtt = MqttOptions::new(&opts.id, &opts.host, opts.port);
        mqtt.set_clean_session(false)
            .set_keep_alive(opts.keep_alive)
            .set_manual_acks(true)
            .set_inflight(500)
            .set_max_packet_size(512 * 1024, 512 * 1024)
            .set_last_will(LastWill::new(
                opts.topics.status(&opts.id),
                serde_json::to_vec(&will).unwrap_or_default(),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some((u, p)) = &opts.credentials {
            mqtt.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
        // Small messages, latency-sensitive: no Nagle delays.
        eventloop.network_options.set_tcp_nodelay(true);
        let (epoch, _) = watch::channel(Epoch::default());
        let shared = Arc::new(Shared {
            topics: opts.topics.clone(),
            id: opts.id.clone(),
            routes: Mutex::new(Vec::new()),
            queued: Mutex::new(VecDeque::new()),
            in_flight: Mutex::new(HashMap::new()),
            send_lock: tokio::sync::Mutex::new(()),
            acks: Mutex::new(AckOrder::default()),
            ack_send: tokio::sync::Mutex::new(()),
            sent_at: Mutex::new(HashMap::new()),
            recent: Mutex::new(crate::recent::Recent::default()),
            outbox,
            epoch,
            closed: watch::channel(false).0,
        });
        let link = Link { client, shared };
        // Confirms for our queue puts come back on one topic per queue.
        let confirms = link.route(format!("{}/q/+/confirm/{}", opts.topics.prefix(), opts.id));
        tokio::spawn(drive(eventloop, link.clone()));
        tokio::spawn(confirm_loop(confirms, link.clone()));
        tokio::spawn(resend_loop(link.clone()));
        link
    }

    /// The node id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The topic names.
    pub fn topics(&self) -> &Topics {
        &self.shared.topics
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.shared.outbox
    }

    /// Changes on every CONNACK, once the subscriptions are in place again.
    pub fn epoch(&self) -> watch::Receiver<Epoch> {
        self.shared.epoch.subscribe()
    }

    fn route(&self, filter: String) -> mpsc::UnboundedReceiver<Incoming> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.routes).push(Route { filter, tx });
        rx
    }

    /// Subscribes to `filter` (QoS 1); matching messages arrive on the
    /// returned channel. Kept across reconnects.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
    ) -> Result<mpsc::UnboundedReceiver<Incoming>, NodeError> {
        let filter = filter.into();
        let rx = self.route(filter.clone());
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        Ok(rx)
    }

    /// Publishes at QoS 1 without the outbox: for messages whose loss a later
    /// one repairs (heartbeats, credits, acks, stats).
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), NodeError> {
        self.send(topic.into(), payload, retain, None).await
    }

    /// Serialises `body` as JSON and publishes it like [`Link::publish`].
    pub async fn publish_json<T: serde::Serialize>(
        &self,
        topic: impl Into<String>,
        body: &T,
        retain: bool,
    ) -> Result<(), NodeError> {
        self.publish(topic, serde_json::to_vec(body)?, retain).await
    }

    /// Writes `entry` to the outbox (flushed), then sends it. It is sent
    /// again until confirmed.
    pub async fn publish_durable(&self, entry: Entry) -> Result<(), NodeError> {
        self.publish_durable_many(std::slice::from_ref(&entry)).await
    }

    /// Like [`Link::publish_durable`] for many entries with one flush.
    pub async fn publish_durable_many(&self, entries: &[Entry]) -> Result<(), NodeError> {
        self.shared.outbox.add_many(entries).await?;
        for e in entries {
            self.send_entry(e).await?;
        }
        Ok(())
    }

    /// Like [`Link::publish_durable`], disordered by injected faults: the
    /// entry is written to the outbox (flushed) first, exactly as without
    /// faults, then its send is held back for `delay` (in a task of its own,
    /// so the caller's later messages overtake it) and, if `twice`, a second
    /// copy follows it.
    ///
    /// A held-back entry counts as sent from the moment it is written, so the
    /// resend loop does not send it early and undo the reordering; if the
    /// node dies meanwhile, the outbox sends it after the restart.
    pub async fn publish_durable_disordered(
        &self,
        entry: Entry,
        delay: Duration,
        twice: bool,
    ) -> Result<(), NodeError> {
        self.shared.outbox.add(&entry).await?;
        if delay.is_zero() {
            return self.send_disordered(&entry, twice).await;
        }
        lock(&self.shared.sent_at).insert(entry.id, Instant::now());
        let link = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = link.send_disordered(&entry, twice).await {
                // Still in the outbox: the resend loop or a restart sends it.
                tracing::debug!(error = %e, "a held-back event could not be sent yet");
            }
        });
        Ok(())
    }

    /// Sends `entry`, and a second copy if `twice`. The copy is not tied to
    /// the outbox entry: the first PUBACK confirms it, and receivers drop the
    /// copy by event id.
    async fn send_disordered(&self, entry: &Entry, twice: bool) -> Result<(), NodeError> {
        self.send_entry(entry).await?;
        if twice {
            self.send(
                entry.topic.clone(),
                entry.payload.clone().into_bytes(),
                false,
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn send_entry(&self, entry: &Entry) -> Result<(), NodeError> {
        let now = Instant::now();
        lock(&self.shared.sent_at).insert(entry.id, now);
        if entry.confirmation == Confirmation::PubAck {
            lock(&self.shared.recent).note(now, entry.clone());
        }
        let pubacked = (entry.confirmation == Confirmation::PubAck).then_some(entry.id);
        self.send(
            entry.topic.clone(),
            entry.payload.clone().into_bytes(),
            false,
            pubacked,
        )
        .await
    }

    async fn send(
        &self,
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        pubacked: Option<Uuid>,
    ) -> Result<(), NodeError> {
        let _order = self.shared.send_lock.lock().await;
        lock(&self.shared.queued).push_back(pubacked);
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// Publishes the offline status and closes the connection cleanly.
    ///
    /// Waits (up to 2 s) until the DISCONNECT has been written: `disconnect`
    /// only queues it, and a process that exits first leaves the broker to
    /// fire the last will instead of keeping this final status.
    pub async fn close(&self, last_status: &NodeStatus) {
        let mut closed = self.shared.closed.subscribe();
        let topic = self.shared.topics.status(&self.shared.id);
        let _ = self.publish_json(topic, last_status, true).await;
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), closed.wait_for(|c| *c)).await;
    }

    /// Publishes again the events of the last moments (see [`crate::recent`]).
    async fn echo_recent(&self) {
        let recent = lock(&self.shared.recent).since(Instant::now());
        let mut sent = 0;
        for e in &recent {
            if self
                .send(e.topic.clone(), e.payload.clone().into_bytes(), false, None)
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(
                events = sent,
                "the broker restarted: recent events published again"
            );
        }
    }

    /// Sends every outbox entry due for a resend (`all`: every entry).
    async fn resend(&self, all: bool) -> Result<usize, NodeError> {
        let now = Instant::now();
        let due: Vec<Entry> = {
            let sent_at = lock(&self.shared.sent_at);
            self.shared
                .outbox
                .pending()?
                .into_iter()
                .filter(|e| {
                    let wait = match e.confirmation {
                        Confirmation::Keeper => RESEND_PUT_AFTER,
                        Confirmation::PubAck => RESEND_EVENT_AFTER,
                    };
                    all || sent_at.get(&e.id).is_none_or(|t| now.duration_since(*t) >= wait)
                })
                .collect()
        };
        for e in &due {
            self.send_entry(e).await?;
        }
        Ok(due.len())
    }

    fn dispatch(&self, publish: Publish) {
        let topic = publish.topic.clone();
        let payload = publish.payload.clone();
        let ticket = (publish.qos != QoS::AtMostOnce).then(|| lock(&self.shared.acks).arrive(publish));
        let incoming = Incoming {
            topic: topic.clone(),
            payload,
            ticket,
            link: self.clone(),
        };
        let routes = lock(&self.shared.routes);
        match routes.iter().find(|r| matches(&r.filter, &topic)) {
            Some(r) => {
                if let Err(mpsc::error::SendError(unwanted)) = r.tx.send(incoming) {
                    // The receiver is gone (its part shut down): let the
                    // broker forget the message rather than resend it forever.
                    tokio::spawn(unwanted.ack());
                }
            }
            None => {
                tokio::spawn(incoming.ack());
            }
        }
    }

    fn on_outgoing_publish(&self, pkid: u16) {
        let mut in_flight = lock(&self.shared.in_flight);
        // A packet id we already know is a resend after reconnect.
        if let std::collections::hash_map::Entry::Vacant(slot) = in_flight.entry(pkid) {
            slot.insert(lock(&self.shared.queued).pop_front().flatten());
        }
    }

    fn on_puback(&self, pkid: u16) {
        let id = lock(&self.shared.in_flight).remove(&pkid).flatten();
        if let Some(id) = id {
            lock(&self.shared.sent_at).remove(&id);
            if let Err(e) = self.shared.outbox.confirm(&[id]) {
                tracing::error!(error = %e, "could not remove an acknowledged event from the outbox");
            }
        }
    }

    /// After a CONNACK: subscribe again if the session is new, send the
    /// outbox again, then tell consumers (new epoch).
    async fn reconnected(self, session_present: bool) {
        if !session_present {
            let filters: Vec<String> = lock(&self.shared.routes)
                .iter()
                .map(|r| r.filter.clone())
                .collect();
            for f in filters {
                if self.client.subscribe(f, QoS::AtLeastOnce).await.is_err() {
                    return;
                }
            }
        }
        match self.resend(true).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(resent = n, "outbox sent again after reconnect"),
            Err(e) => tracing::warn!(error = %e, "could not resend the outbox"),
        }
        if !session_present {
            // Once now, and once more when slower subscribers (the control
            // room, other nodes) have had time to reconnect and subscribe.
            self.echo_recent().await;
            let link = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(ECHO_AGAIN_AFTER).await;
                link.echo_recent().await;
            });
        }
        self.shared.epoch.send_modify(|e| {
            e.connections += 1;
            e.session_present = session_present;
        });
    }
}

/// Polls the event loop forever, reconnecting with capped backoff.
async fn drive(mut eventloop: EventLoop, link: Link) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(50);
                lock(&link.shared.acks).reconnected();
                tracing::info!(session_present = ack.session_present, "connected to the broker");
                // Not awaited here: its subscribes go through the request
                // channel this very loop drains.
                tokio::spawn(link.clone().reconnected(ack.session_present));
            }
            Ok(Event::Incoming(Packet::Publish(p))) => link.dispatch(p),
            Ok(Event::Incoming(Packet::PubAck(ack))) => link.on_puback(ack.pkid),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => link.on_outgoing_publish(pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                link.shared.closed.send_replace(true);
            }
            Ok(_) => {}
            Err(rumqttc::ConnectionError::RequestsDone) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "lost the broker; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Removes confirmed queue puts from the outbox.
async fn confirm_loop(mut rx: mpsc::UnboundedReceiver<Incoming>, link: Link) {
    while let Some(msg) = rx.recv().await {
        match serde_json::from_slice::<Confirm>(&msg.payload) {
            Ok(c) => {
                {
                    let mut sent_at = lock(&link.shared.sent_at);
                    for id in &c.event_ids {
                        sent_at.remove(id);
                    }
                }
                if let Err(e) = link.shared.outbox.confirm(&c.event_ids) {
                    tracing::error!(error = %e, "could not remove confirmed puts from the outbox");
                }
            }
            Err(e) => tracing::warn!(topic = %msg.topic, error = %e, "ignored a malformed confirm"),
        }
        msg.ack().await;
    }
}

/// Sends unconfirmed outbox entries again once their timeout passes.
async fn resend_loop(link: Link) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match link.resend(false).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(resent = n, "unconfirmed outbox entries sent again"),
            Err(NodeError::Closed(_)) => return,
            Err(e) => tracing::warn!(error = %e, "could not resend the outbox"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn filters_match_like_mqtt() {
        assert!(matches("pizza/q/+/confirm/n1", "pizza/q/kitchen/confirm/n1"));
        assert!(!matches("pizza/q/+/confirm/n1", "pizza/q/kitchen/confirm/n2"));
        assert!(matches("pizza/events/#", "pizza/events/order.paid"));
        assert!(!matches("pizza/events/+", "pizza/events/a/b"));
        assert!(!matches("pizza/a", "pizza/a/b"));
    }
}
