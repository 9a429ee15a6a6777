//! The control room's own broker connection: heartbeats, queue figures,
//! events and dead letters come in as [`Msg`]s; control commands and
//! re-queues go out.
//!
//! It is a clean session on purpose: it must not leave a session queueing
//! messages for it at the broker after it quits. Events come through an
//! ephemeral subscription to the broker's event log from its first
//! position, so the Orders panel holds every order the log has (also when
//! the control room attaches to a platform already running), and resumes
//! after the last event it read when the broker or the connection comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::queue::{DeadLetterListing, QueueStats, Requeue};
use contracts::status::{Control, NodeStatus};
use contracts::stream::Start;
use contracts::topics::Topics;
use contracts::trust::Refusal;
use contracts::Envelope;
use node::config::BrokerAddr;
use node::runtime::security::Security;
use node::runtime::stream::Reader;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc::UnboundedSender;

use crate::msg::Msg;

/// Incoming packets can hold a whole DLQ listing.
const MAX_PACKET: usize = 4 * 1024 * 1024;
/// Events the log may send ahead of the control room's acks.
const EVENT_CREDIT: u32 = 5_000;

/// The handle to publish with.
#[derive(Clone)]
pub struct Feed {
    client: AsyncClient,
    topics: Topics,
    seal: Keys,
}

/// The control room's key, which seals what it sends, and its platform's
/// trust file, which checks the heartbeats it shows.
#[derive(Clone)]
struct Keys(Security);

impl Keys {
    fn body<T: serde::Serialize>(&self, body: &T) -> Vec<u8> {
        // Our own types serialize; an empty body would be refused, not lost.
        self.0.seal(serde_json::to_vec(body).unwrap_or_default())
    }

    /// A node that seals its heartbeat with a key this control room's trust
    /// file does not list: this control room attached to a signed platform
    /// from another data dir, so the nodes will refuse its commands.
    fn stranger<'a>(&self, topics: &Topics, topic: &'a str, payload: &[u8]) -> Option<&'a str> {
        let id = topics.parse_status_topic(topic)?;
        let trust = self.0.trust.as_ref()?;
        let sealed = contracts::seal::open(payload).seal.is_some();
        (sealed && trust.role_of(id).is_none()).then_some(id)
    }

    /// Why a heartbeat is refused: it names a node of the trust file but is
    /// not sealed by that node (a forgery could send the operator's orders
    /// to another address). Nodes the file does not list are shown as they
    /// come: that is a platform of hand-run, unsigned nodes attached to.
    fn refuses(&self, topics: &Topics, topic: &str, payload: &[u8]) -> Option<Refusal> {
        let trust = self.0.trust.as_ref()?;
        if let Some(id) = topics.parse_status_topic(topic) {
            return self.0.open_heartbeat(payload, id).err();
        }
        // The queue stats, which scenarios wait on, and the dead-letter
        // listings, which the operator re-queues from: from a keeper of this
        // platform (one the trust file lists), sealed.
        let keepers = topic == topics.queue_stats()
            || matches!(topics.parse_queue_topic(topic), Some((_, "dlq", Some("items"))));
        if keepers && trust.has_role(contracts::trust::role::BROKER) {
            return self.0.open(payload, &[contracts::trust::role::BROKER]).err();
        }
        None
    }
}

impl Feed {
    /// Connects (and keeps reconnecting) to `broker`, sending what arrives
    /// to `tx`; what it sends is sealed with `keys`.
    pub fn start(
        broker: &str,
        prefix: &str,
        keys: Security,
        tx: UnboundedSender<Msg>,
    ) -> anyhow::Result<Feed> {
        let seal = Keys(keys);
        let addr: BrokerAddr = broker.parse()?;
        let id = format!("control-room-{}", std::process::id());
        // The log's topics name `id`; the connection goes under the login.
        let login = addr.credentials.as_ref().map(|(u, _)| u.as_str());
        let mut opts = MqttOptions::new(contracts::login::client_id(login, &id), addr.host, addr.port);
        opts.set_clean_session(true)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if let Some((user, password)) = addr.credentials {
            opts.set_credentials(user, password);
        }
        let (client, eventloop) = AsyncClient::new(opts, 1024);
        let topics = Topics::new(prefix);
        let stream = Stream {
            reader: Arc::new(Mutex::new(Reader::new(
                "watch",
                Vec::new(),
                false,
                EVENT_CREDIT,
                Start::Beginning,
            ))),
            client_id: id,
            seal: seal.clone(),
        };
        tokio::spawn(announce(client.clone(), topics.clone(), stream.clone()));
        tokio::spawn(pump(eventloop, client.clone(), topics.clone(), stream, tx));
        Ok(Feed { client, topics, seal })
    }

    /// Sends a control command to node `id`.
    ///
    /// Queued at once, without awaiting: commands must leave in the order the
    /// operator gave them (four presses on "error rate" end at 100%, not at
    /// whichever of four spawned sends happened to go last).
    pub fn control(&self, id: &str, control: &Control) -> anyhow::Result<()> {
        let payload = self.seal.body(control);
        self.client
            .try_publish(self.topics.control(id), QoS::AtLeastOnce, false, payload)?;
        Ok(())
    }

    /// Moves dead letters of `queue` back (`None`: all); queued in order like
    /// [`control`](Self::control).
    pub fn requeue(&self, queue: &str, id: Option<u64>) -> anyhow::Result<()> {
        let body = match id {
            Some(id) => Requeue {
                ids: vec![id],
                all: false,
            },
            None => Requeue {
                ids: vec![],
                all: true,
            },
        };
        let payload = self.seal.body(&body);
        self.client
            .try_publish(self.topics.requeue(queue), QoS::AtLeastOnce, false, payload)?;
        Ok(())
    }

    /// Says goodbye to the broker.
    pub async fn close(&self) {
        let _ = self.client.disconnect().await;
    }
}

/// The control room's subscription to the event log.
#[derive(Clone)]
struct Stream {
    reader: Arc<Mutex<Reader>>,
    client_id: String,
    seal: Keys,
}

impl Stream {
    fn reader(&self) -> std::sync::MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The subscribe message as it stands now.
    fn subscribe_body(&self) -> Vec<u8> {
        let subscribe = self.reader().subscribe();
        self.seal.body(&subscribe)
    }

    /// Queues the subscribe message without waiting (from the event loop's
    /// own task, which must not wait on its request channel); a full channel
    /// only delays it to the next repeat.
    fn subscribe(&self, client: &AsyncClient, topics: &Topics) {
        let topic = topics.log_subscribe(&self.client_id);
        let _ = client.try_publish(topic, QoS::AtLeastOnce, false, self.subscribe_body());
    }
}

/// Repeats the subscription (the log forgets a silent subscriber).
async fn announce(client: AsyncClient, topics: Topics, stream: Stream) {
    let mut tick = tokio::time::interval(node::runtime::stream::REPEAT);
    loop {
        tick.tick().await;
        let topic = topics.log_subscribe(&stream.client_id);
        if client
            .publish(topic, QoS::AtLeastOnce, false, stream.subscribe_body())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn pump(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: Topics,
    stream: Stream,
    tx: UnboundedSender<Msg>,
) {
    let deliveries = topics.log_deliver(&stream.client_id);
    let mut warned = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // A clean session forgets subscriptions: make them on every connect.
                for topic in [
                    topics.all_status(),
                    topics.queue_stats(),
                    format!("{}/q/+/dlq/items", topics.prefix()),
                ] {
                    let _ = client.subscribe(topic, QoS::AtMostOnce).await;
                }
                let _ = client.subscribe(deliveries.clone(), QoS::AtLeastOnce).await;
                // A new session: the log sends again after what we have read.
                stream.reader().new_session();
                stream.subscribe(&client, &topics);
                if tx
                    .send(Msg::Feed {
                        connected: true,
                        detail: String::new(),
                    })
                    .is_err()
                {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == deliveries => {
                let read = stream.reader().read(&p.payload);
                match read {
                    Ok(read) => {
                        for (position, raw) in read.events {
                            match serde_json::from_str::<Envelope>(raw.get()) {
                                Ok(e) => {
                                    if tx.send(Msg::Event(Box::new(e))).is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(position, error = %e, "skipped an event the control room cannot read")
                                }
                            }
                        }
                        if read.through > 0 {
                            let ack = stream.reader().ack(read.through);
                            let body = stream.seal.body(&ack);
                            let _ = client.try_publish(
                                topics.log_ack(&stream.client_id),
                                QoS::AtMostOnce,
                                false,
                                body,
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "skipped a stream delivery the control room cannot read")
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(id) = stream
                    .seal
                    .stranger(&topics, &p.topic, &p.payload)
                    .filter(|_| !warned)
                {
                    warned = true;
                    let text = format!("{id} signs with a key this control room's trust file (--data-dir/keys) does not list: the nodes will refuse its commands; attach with the platform's --data-dir");
                    if tx.send(Msg::Refused(text)).is_err() {
                        return;
                    }
                }
                if let Some(why) = stream.seal.refuses(&topics, &p.topic, &p.payload) {
                    tracing::warn!(topic = %p.topic, reason = %why, "security: a heartbeat or stats message was refused; not shown");
                    continue;
                }
                if let Some(msg) = decode(&topics, &p.topic, &p.payload) {
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                let msg = Msg::Feed {
                    connected: false,
                    detail: e.to_string(),
                };
                if tx.send(msg).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Turns one publish into a message; anything unreadable is logged and
/// skipped (the control room watches, it never crashes on bad input).
pub fn decode(topics: &Topics, topic: &str, payload: &[u8]) -> Option<Msg> {
    let parsed = if topics.parse_status_topic(topic).is_some() {
        serde_json::from_slice::<NodeStatus>(payload).map(|s| Msg::Status(Box::new(s)))
    } else if topic == topics.queue_stats() {
        serde_json::from_slice::<QueueStats>(payload).map(Msg::Stats)
    } else if let Some((queue, "dlq", Some("items"))) = topics.parse_queue_topic(topic) {
        serde_json::from_slice::<DeadLetterListing>(payload).map(|listing| Msg::DeadLetters {
            queue: queue.to_string(),
            items: listing.letters,
        })
    } else if topic.starts_with(&format!("{}/events/", topics.prefix())) {
        serde_json::from_slice::<Envelope>(payload).map(|e| Msg::Event(Box::new(e)))
    } else {
        return None;
    };
    match parsed {
        Ok(msg) => Some(msg),
        Err(e) => {
            tracing::warn!(%topic, error = %e, "skipped a message the control room cannot read");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::trust::role;

    /// The security of node `id` (`role`) on a platform whose trust file
    /// is in `dir`.
    fn security(dir: &std::path::Path, id: &str, role: &str) -> Security {
        let trust = dir.join("trust.json");
        let key = node::runtime::security::make_key(dir, id, role, &trust).expect("a key");
        Security::load(Some(&key), Some(&trust), id, role).expect("keys load")
    }

    #[test]
    fn a_dead_letter_listing_is_shown_only_when_a_keeper_sealed_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let keeper = security(dir.path(), "broker", role::BROKER);
        let kitchen = security(dir.path(), "kitchen-1", role::KITCHEN);
        let control = Keys(security(dir.path(), "control-room", role::CONTROL));
        let topics = Topics::new("pizza");
        let topic = topics.dlq_items("kitchen");
        let listing = serde_json::to_vec(&DeadLetterListing {
            queue: "kitchen".into(),
            letters: Vec::new(),
        })
        .expect("JSON");

        assert!(
            control
                .refuses(&topics, &topic, &keeper.seal(listing.clone()))
                .is_none(),
            "the keeper's listing is shown"
        );
        assert!(
            control.refuses(&topics, &topic, &listing).is_some(),
            "an unsealed listing (anyone on the broker) is refused"
        );
        assert!(
            control.refuses(&topics, &topic, &kitchen.seal(listing)).is_some(),
            "a listing sealed by a kitchen is refused"
        );
    }
}
