//! The node's one MQTT connection, and the one task that owns it.
//!
//! - Stable client id (= node id), `clean_session = false`, keep-alive, and a
//!   last will that marks the node offline (retained) if it dies.
//! - Reconnects with capped exponential backoff, and subscribes again after
//!   every CONNACK (rumqttc does not, and a restarted broker forgot us).
//! - **One owner.** The link's state (routes, the outbox window, what is on
//!   the wire since when) belongs to one task, [`Owner`]; handles talk to it
//!   through a channel, and the task that polls rumqttc only forwards what
//!   arrives. No lock is shared around the connection.
//! - **A bounded window.** At most [`WINDOW`] outbox entries are unconfirmed
//!   on the wire at once, well below rumqttc's and rumqttd's in-flight limit
//!   (500), so a reconnect with a huge outbox drains at full speed and
//!   keep-alive pings are never stuck behind a backlog.
//! - **Confirms, not PUBACKs.** An outbox entry leaves only on the
//!   receiver's own confirm: the keeper's for a queue put, the event log's for
//!   an event, each sent after its flush. A PUBACK only says rumqttd had the
//!   message in memory, which a broker crash forgets.
//! - Incoming messages are acknowledged by rumqttc at once: nothing rests on
//!   rumqttd keeping them, since queues redeliver by lease and the event
//!   stream by cursor.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use contracts::queue::Confirm;
use contracts::status::NodeStatus;
use contracts::topics::Topics;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::error::NodeError;
use crate::runtime::outbox::{Entry, Outbox};

/// Most outbox entries sent and not yet confirmed at once.
pub const WINDOW: usize = 256;
/// An entry unconfirmed this long is sent again.
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// How long a graceful close waits for the outbox to be confirmed.
const DRAIN_ON_CLOSE: Duration = Duration::from_secs(3);
/// Ceiling of the reconnect backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
    /// What the node signs with and checks against.
    pub security: crate::runtime::security::Security,
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

/// A message that arrived on a subscription.
#[derive(Debug)]
pub struct Incoming {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
}

/// What handles ask of the owner.
enum Command {
    Subscribe(String, mpsc::UnboundedSender<Incoming>),
    /// Outbox entries (already stored) to send within the window.
    Send(Vec<Entry>),
    /// A second copy of an entry, not tracked (the duplicate fault).
    Copy(Entry),
}

/// What the polling task forwards to the owner.
enum Arrived {
    ConnAck(bool),
    Publish(Publish),
}

struct Shared {
    topics: Topics,
    id: String,
    outbox: Outbox,
    epoch: watch::Sender<Epoch>,
    /// Set once our DISCONNECT has been written.
    closed: watch::Sender<bool>,
    security: crate::runtime::security::Security,
}

/// A handle on the node's MQTT connection; cheap to clone.
#[derive(Clone)]
pub struct Link {
    client: AsyncClient,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
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
    /// trying until the broker is there). Whatever the outbox holds from an
    /// earlier run is sent as soon as the broker answers.
    pub fn connect(opts: LinkOptions, outbox: Outbox) -> Result<Link, NodeError> {
        let will = NodeStatus::offline(&opts.id, &opts.role);
        // Under its login: a broker with a users file admits a login only
        // with its own client ids (`contracts::login`).
        let login = opts.credentials.as_ref().map(|(u, _)| u.as_str());
        let mut mqtt = MqttOptions::new(
            contracts::login::client_id(login, &opts.id),
            &opts.host,
            opts.port,
        );
        mqtt.set_clean_session(false)
            .set_keep_alive(opts.keep_alive)
            .set_inflight(500)
            .set_max_packet_size(512 * 1024, 512 * 1024)
            .set_last_will(LastWill::new(
                opts.topics.status(&opts.id),
                opts.security.seal(serde_json::to_vec(&will).unwrap_or_default()),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some((u, p)) = &opts.credentials {
            mqtt.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
        // Small messages, latency-sensitive: no Nagle delays.
        eventloop.network_options.set_tcp_nodelay(true);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (arrived_tx, arrived_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            topics: opts.topics.clone(),
            id: opts.id.clone(),
            outbox,
            epoch: watch::channel(Epoch::default()).0,
            closed: watch::channel(false).0,
            security: opts.security.clone(),
        });
        let owner = Owner {
            client: client.clone(),
            shared: shared.clone(),
            confirms: [
                format!("{}/q/+/confirm/{}", opts.topics.prefix(), opts.id),
                opts.topics.log_confirm(&opts.id),
            ],
            routes: Vec::new(),
            waiting: shared.outbox.pending()?.into(),
            on_wire: HashMap::new(),
        };
        tokio::spawn(poll(eventloop, arrived_tx, shared.clone()));
        tokio::spawn(owner.run(commands_rx, arrived_rx));
        Ok(Link {
            client,
            commands,
            shared,
        })
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

    /// What this node signs with and checks against.
    pub fn security(&self) -> &crate::runtime::security::Security {
        &self.shared.security
    }

    /// Changes on every CONNACK, once the subscriptions are in place again.
    pub fn epoch(&self) -> watch::Receiver<Epoch> {
        self.shared.epoch.subscribe()
    }

    /// Beats every `period` and on every new connection.
    pub fn beats(&self, period: Duration) -> Beats {
        Beats {
            epoch: self.epoch(),
            repeat: tokio::time::interval(period),
        }
    }

    fn command(&self, c: Command) -> Result<(), NodeError> {
        self.commands.send(c).map_err(|_| NodeError::LinkGone)
    }

    /// Subscribes to `filter` (QoS 1); matching messages arrive on the
    /// returned channel. Kept across reconnects.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
    ) -> Result<mpsc::UnboundedReceiver<Incoming>, NodeError> {
        let filter = filter.into();
        let (tx, rx) = mpsc::unbounded_channel();
        // The route first: the owner takes commands before arrivals, so no
        // message can come in before it is known where it goes.
        self.command(Command::Subscribe(filter.clone(), tx))?;
        // Then the SUBSCRIBE, queued here in program order, so that it
        // leaves before whatever the caller publishes next (a credit that
        // makes the keeper deliver, say).
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
        self.client
            .publish(topic.into(), QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// Serialises `body` as JSON and publishes it like [`Link::publish`].
    pub async fn publish_json<T: serde::Serialize>(
        &self,
        topic: impl Into<String>,
        body: &T,
        retain: bool,
    ) -> Result<(), NodeError> {
        let sealed = self.shared.security.seal(serde_json::to_vec(body)?);
        self.publish(topic, sealed, retain).await
    }

    /// Like [`Link::publish_json`] for a message only the brokers read
    /// (credit, ack, stream subscribe, query): tagged for them instead of
    /// signed ([`crate::runtime::security::Security::seal_for_brokers`]).
    pub async fn publish_to_brokers<T: serde::Serialize>(
        &self,
        topic: impl Into<String>,
        body: &T,
    ) -> Result<(), NodeError> {
        let sealed = self.shared.security.seal_for_brokers(serde_json::to_vec(body)?);
        self.publish(topic, sealed, false).await
    }

    /// Writes `entry` to the outbox (flushed), then sends it. It is sent
    /// again until confirmed.
    pub async fn publish_durable(&self, entry: Entry) -> Result<(), NodeError> {
        self.publish_durable_many(vec![entry]).await
    }

    /// Like [`Link::publish_durable`] for many entries with one flush.
    pub async fn publish_durable_many(&self, entries: Vec<Entry>) -> Result<(), NodeError> {
        self.shared.outbox.add_many(&entries).await?;
        self.command(Command::Send(entries))
    }

    /// Like [`Link::publish_durable_many`], recording `handled` in the inbox
    /// in the same write ([`crate::runtime::outbox::Outbox::add_finishing`]).
    pub async fn publish_durable_finishing(
        &self,
        entries: Vec<Entry>,
        handled: &Uuid,
    ) -> Result<(), NodeError> {
        self.shared.outbox.add_finishing(&entries, handled).await?;
        self.command(Command::Send(entries))
    }

    /// Like [`Link::publish_durable`], disordered by injected faults: the
    /// entry is written to the outbox (flushed) first, exactly as without
    /// faults, then its send is held back for `delay` (so the caller's later
    /// messages overtake it) and, if `twice`, a second copy follows it.
    /// If the node dies meanwhile, the outbox sends it after the restart.
    pub async fn publish_durable_disordered(
        &self,
        entry: Entry,
        delay: Duration,
        twice: bool,
    ) -> Result<(), NodeError> {
        self.shared.outbox.add(&entry).await?;
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let copy = twice.then(|| entry.clone());
            // Fails only when the link is gone; the outbox still has it.
            let _ = commands.send(Command::Send(vec![entry]));
            if let Some(copy) = copy {
                let _ = commands.send(Command::Copy(copy));
            }
        });
        Ok(())
    }

    /// Publishes the offline status and closes the connection cleanly.
    ///
    /// Waits (up to 2 s) until the DISCONNECT has been written: `disconnect`
    /// only queues it, and a process that exits first leaves the broker to
    /// fire the last will instead of keeping this final status.
    ///
    /// First it gives the outbox up to [`DRAIN_ON_CLOSE`] to be confirmed, so
    /// that a graceful stop leaves nothing for the next start to send; what
    /// is still unconfirmed then stays in the outbox, safe.
    pub async fn close(&self, last_status: &NodeStatus) {
        let _ = tokio::time::timeout(DRAIN_ON_CLOSE, self.shared.outbox.drained()).await;
        let mut closed = self.shared.closed.subscribe();
        let topic = self.shared.topics.status(&self.shared.id);
        let _ = self.publish_json(topic, last_status, true).await;
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), closed.wait_for(|c| *c)).await;
    }
}

/// A clock for what a part repeats on its own (credit, a subscription):
/// ticks every `period`, and at once on every new connection.
pub struct Beats {
    epoch: watch::Receiver<Epoch>,
    repeat: tokio::time::Interval,
}

/// One tick of [`Beats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The period passed.
    Repeat,
    /// A new connection (CONNACK), with what the broker said of our session.
    Connected(Epoch),
}

impl Beats {
    /// The next beat; `None` once the link is gone. The first one comes at once.
    pub async fn next(&mut self) -> Option<Beat> {
        tokio::select! {
            changed = self.epoch.changed() => {
                changed.ok()?;
                Some(Beat::Connected(*self.epoch.borrow_and_update()))
            }
            _ = self.repeat.tick() => Some(Beat::Repeat),
        }
    }
}

/// Polls rumqttc's event loop forever, reconnecting with capped backoff,
/// and forwards what the owner needs. It never waits on the owner (the
/// channel is unbounded): the owner's own publishes go through this loop.
async fn poll(mut eventloop: EventLoop, to_owner: mpsc::UnboundedSender<Arrived>, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(50);
    let mut ever_connected = false;
    loop {
        let arrived = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = Duration::from_millis(50);
                ever_connected = true;
                tracing::info!(session_present = ack.session_present, "connected to the broker");
                Arrived::ConnAck(ack.session_present)
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Arrived::Publish(p),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                shared.closed.send_replace(true);
                continue;
            }
            Ok(_) => continue,
            Err(rumqttc::ConnectionError::RequestsDone) => return,
            // After our own DISCONNECT the broker closes the socket: that is
            // the end of the link, not a lost broker to reconnect to.
            Err(_) if *shared.closed.borrow() => return,
            Err(e) => {
                let retry_in_ms = backoff.as_millis() as u64;
                // A node started beside its broker may try before it listens.
                if ever_connected {
                    tracing::warn!(error = %e, retry_in_ms, "lost the broker; reconnecting");
                } else {
                    tracing::info!(error = %e, retry_in_ms, "the broker does not answer yet; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if to_owner.send(arrived).is_err() {
            return;
        }
    }
}

struct Route {
    filter: String,
    tx: mpsc::UnboundedSender<Incoming>,
}

/// The link's state, owned by one task.
struct Owner {
    client: AsyncClient,
    shared: Arc<Shared>,
    /// The confirm topics of the keeper and of the event log for us.
    confirms: [String; 2],
    routes: Vec<Route>,
    /// Stored entries not on the wire yet, oldest first.
    waiting: VecDeque<Entry>,
    /// Entries sent and not confirmed, with when they were last sent.
    on_wire: HashMap<Uuid, (Entry, Instant)>,
}

impl Owner {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut arrived: mpsc::UnboundedReceiver<Arrived>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connected = false;
        loop {
            let step = tokio::select! {
                // Commands first: a route is in place before its messages.
                biased;
                c = commands.recv() => match c {
                    Some(c) => self.on_command(c).await,
                    None => return,
                },
                a = arrived.recv() => match a {
                    Some(Arrived::ConnAck(session_present)) => {
                        connected = true;
                        self.on_connack(session_present).await
                    }
                    Some(Arrived::Publish(p)) => {
                        self.on_publish(p);
                        Ok(())
                    }
                    None => return,
                },
                _ = tick.tick() => self.resend_overdue().await,
            };
            let step = match step {
                Ok(()) if connected => self.fill().await,
                other => other,
            };
            if let Err(e) = step {
                // The request channel closed: the connection is shutting down.
                tracing::debug!(error = %e, "the link's owner stops");
                return;
            }
        }
    }

    async fn on_command(&mut self, c: Command) -> Result<(), NodeError> {
        match c {
            Command::Subscribe(filter, tx) => self.routes.push(Route { filter, tx }),
            Command::Send(entries) => self.waiting.extend(entries),
            Command::Copy(entry) => {
                self.client
                    .publish(entry.topic, QoS::AtLeastOnce, false, entry.payload.into_bytes())
                    .await?;
            }
        }
        Ok(())
    }

    /// Subscribes again (the broker may have lost our session, and rumqttc
    /// does not), puts everything unconfirmed back in line, then tells the
    /// consumers (new epoch).
    async fn on_connack(&mut self, session_present: bool) -> Result<(), NodeError> {
        let filters = self
            .confirms
            .iter()
            .cloned()
            .chain(self.routes.iter().map(|r| r.filter.clone()))
            .collect::<Vec<_>>();
        for f in filters {
            self.client.subscribe(f, QoS::AtLeastOnce).await?;
        }
        // Oldest first: what was on the wire goes before what waits.
        let mut again: Vec<(Entry, Instant)> = self.on_wire.drain().map(|(_, v)| v).collect();
        again.sort_by_key(|(_, at)| *at);
        if !again.is_empty() {
            tracing::info!(
                resent = again.len(),
                waiting = self.waiting.len(),
                "outbox sent again after reconnect"
            );
        }
        for (e, _) in again.into_iter().rev() {
            self.waiting.push_front(e);
        }
        self.shared.epoch.send_modify(|e| {
            e.connections += 1;
            e.session_present = session_present;
        });
        Ok(())
    }

    fn on_publish(&mut self, p: Publish) {
        if self.confirms.iter().any(|f| matches(f, &p.topic)) {
            self.on_confirm(&p);
            return;
        }
        let incoming = Incoming {
            topic: p.topic,
            payload: p.payload,
        };
        match self.routes.iter().find(|r| matches(&r.filter, &incoming.topic)) {
            Some(r) => {
                // A receiver that is gone (its part shut down) drops it.
                let _ = r.tx.send(incoming);
            }
            None => tracing::debug!(topic = %incoming.topic, "a message nobody here subscribed to"),
        }
    }

    fn on_confirm(&mut self, p: &Publish) {
        // A forged confirm would drop from the outbox what was never stored.
        let body = match self
            .shared
            .security
            .open(&p.payload, &[contracts::trust::role::BROKER])
        {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(topic = %p.topic, reason = %why, refused_total = self.shared.security.refused(), "security: a confirm was refused; the outbox keeps sending");
                return;
            }
        };
        let confirm = match serde_json::from_slice::<Confirm>(&body) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(topic = %p.topic, error = %e, "ignored a malformed confirm");
                return;
            }
        };
        for id in &confirm.event_ids {
            self.on_wire.remove(id);
        }
        if let Err(e) = self.shared.outbox.confirm(&confirm.event_ids) {
            tracing::error!(error = %e, "could not remove confirmed entries from the outbox");
        }
    }

    /// Sends waiting entries while the window has room.
    async fn fill(&mut self) -> Result<(), NodeError> {
        while self.on_wire.len() < WINDOW {
            let Some(entry) = self.waiting.pop_front() else {
                break;
            };
            // Confirmed meanwhile (sent twice after a restart, say): skip it.
            if self.on_wire.contains_key(&entry.id) || !self.shared.outbox.contains(&entry.id) {
                continue;
            }
            self.send(&entry).await?;
            self.on_wire.insert(entry.id, (entry, Instant::now()));
        }
        Ok(())
    }

    async fn send(&self, entry: &Entry) -> Result<(), NodeError> {
        self.client
            .publish(
                entry.topic.clone(),
                QoS::AtLeastOnce,
                false,
                entry.payload.clone().into_bytes(),
            )
            .await?;
        Ok(())
    }

    /// Sends again what has waited too long for its confirm.
    async fn resend_overdue(&mut self) -> Result<(), NodeError> {
        let now = Instant::now();
        let overdue: Vec<Uuid> = self
            .on_wire
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= RESEND_AFTER)
            .map(|(id, _)| *id)
            .collect();
        if !overdue.is_empty() {
            tracing::debug!(resent = overdue.len(), "unconfirmed outbox entries sent again");
        }
        for id in overdue {
            if let Some((entry, at)) = self.on_wire.get_mut(&id) {
                *at = now;
                let entry = entry.clone();
                self.send(&entry).await?;
            }
        }
        Ok(())
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
