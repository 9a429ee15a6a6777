//! The queue keeper: the I/O shell around [`crate::queue::Queue`].
//!
//! It is an ordinary MQTT client (so it works unchanged against any MQTT
//! 3.1.1 broker) that owns the queues' storage. One task runs the loop:
//!
//! 1. take every message waiting (a batch: puts, credits, acks, statuses);
//! 2. apply them to the in-memory queues and append the changes to the
//!    queues' journals ([`crate::journal`]);
//! 3. write the journals' records and flush sled once for the whole batch
//!    (group commit), and only then publish the put confirms;
//! 4. hand out deliveries against credit; publish stats every 500 ms.
//!
//! Nothing is confirmed before it is on disk, and all queue state is rebuilt
//! from sled on start, so a kill -9 of the keeper loses no confirmed message.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use contracts::queue::{
    AckMessage, Acked, Confirm, Credit, DeadLetter, DeadLetterListing, Outcome, QueueFigures, QueueStats,
    Requeue, Withdraw, Withdrawn,
};
use contracts::status::{NodeState, NodeStatus};
use contracts::topics::Topics;
use contracts::trust::{role, Act};
use contracts::Envelope;
use rumqttc::{AsyncClient, EventLoop, QoS};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::queue::{Effect, Item, Policy, Queue};
use crate::server::{pump, Input};
use crate::store::{Store, StoreError};
use crate::trust::TrustStore;
use crate::wire;

/// How often the keeper publishes `pizza/q/stats`.
pub const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// Most dead letters listed on a queue's retained `dlq/items` topic.
const DLQ_LISTED: usize = 200;
/// Largest envelope a put may carry: a delivery wraps it in its id,
/// attempt, reason and incarnation, and must still fit the broker's payload
/// limit, or the broker would drop the keeper's connection over it again
/// and again.
pub const MAX_ENVELOPE: usize = crate::server::MAX_PAYLOAD - 8 * 1024;
/// Longest redelivery reason kept from a consumer's ack.
const MAX_REASON: usize = 1024;
/// Bytes of the retained DLQ listing, well within the payload limit.
const DLQ_LISTING_BYTES: usize = crate::server::MAX_PAYLOAD / 2;
/// Longest raw text of one letter in the listing (the DLQ keeps it all).
const LISTED_RAW: usize = 4 * 1024;
/// Most messages taken into one batch before flushing.
const MAX_BATCH: usize = 4_096;
/// Most bytes of deliveries sent in one message to a consumer that takes
/// batches (well under the broker's and the nodes' packet limits).
const DELIVERY_BATCH_BYTES: usize = 64 * 1024;

/// Errors that stop the keeper.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The MQTT client's request channel closed: its event loop is gone.
    #[error("the keeper lost its MQTT client: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// How to run the keeper.
#[derive(Debug, Clone)]
pub struct KeeperOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// MQTT client id of the keeper.
    pub client_id: String,
    /// Username and password, when the broker asks for them.
    pub credentials: Option<(String, String)>,
    /// Topic prefix.
    pub topics: Topics,
    /// Where the sled database lives.
    pub data_dir: PathBuf,
    /// Retry and DLQ policy for every queue.
    pub policy: Policy,
    /// A consumer silent (no heartbeat, credit or ack) this long while holding
    /// deliveries loses them.
    pub lease: Duration,
    /// Queues that exist (and show in stats) before anything is put on them.
    pub queues: Vec<String>,
    /// When set, a put must be signed by its source, whose role may put on
    /// the queue, and a credit must name a consumer whose role may consume
    /// it; anything else is refused (logged, counted, never confirmed).
    pub trust: Option<std::sync::Arc<crate::trust::TrustStore>>,
    /// Signs the keeper's own events (dead-letter alerts) as this node.
    pub signer: Option<std::sync::Arc<contracts::trust::Signer>>,
}

/// Work collected while applying one batch, done after the flush.
#[derive(Default)]
struct Batch {
    /// (queue, producer) -> event ids to confirm.
    confirms: BTreeMap<(String, String), Vec<Uuid>>,
    /// (queue, consumer) -> delivery ids whose `done` ack to confirm.
    acked: BTreeMap<(String, String), Vec<String>>,
    /// Dead letters added: publish alerts for them.
    buried: Vec<DeadLetter>,
    /// Queues whose DLQ listing changed.
    dlq_changed: BTreeSet<String>,
    /// Answers to withdrawals: (topic, answer), sent after the flush.
    withdrawn: Vec<(String, Withdrawn)>,
}

impl Batch {
    /// Confirms `consumer`'s `done` acks after the flush.
    fn acked(&mut self, queue: &str, consumer: &str, delivery_ids: impl IntoIterator<Item = String>) {
        let mut ids = delivery_ids.into_iter().peekable();
        if ids.peek().is_some() {
            self.acked
                .entry((queue.to_string(), consumer.to_string()))
                .or_default()
                .extend(ids);
        }
    }

    /// Confirms `id` to its producer after the flush (a put without a
    /// source has no one to confirm to).
    fn confirm(&mut self, queue: &str, source: String, id: Uuid) {
        if !source.is_empty() {
            self.confirms
                .entry((queue.to_string(), source))
                .or_default()
                .push(id);
        }
    }
}

/// The keeper's state: queues, storage, and its MQTT client.
pub struct Keeper {
    opts: KeeperOptions,
    store: Store,
    queues: BTreeMap<String, Queue>,
    client: AsyncClient,
    next_seq: u64,
    started: Instant,
    /// Last time each consumer showed a sign of life, in keeper ms.
    last_seen: HashMap<String, u64>,
    /// Counters at the last stats, for rates.
    rates: HashMap<String, Rates>,
    last_stats: Instant,
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

fn wall_ms() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1_000_000
}

/// Queue names are path segments of topics; keep them plain.
fn valid_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// How long a keeper that restarted with messages waits before handing any
/// out: consumers reconnect and name what they hold (their credit's `held`)
/// within it, and keep it, instead of a second consumer starting it again.
pub const READOPT_GRACE_MS: u64 = 3_000;

impl Keeper {
    /// The queues' database, for backups (`crate::backup::Shelf`).
    pub fn db(&self) -> &sled::Db {
        self.store.db()
    }

    /// Opens storage, rebuilds every queue from it, and connects.
    pub fn open(opts: KeeperOptions) -> Result<(Keeper, EventLoop), KeeperError> {
        let mut store = Store::open(&opts.data_dir)?;
        let mut names: BTreeSet<String> = store.queue_names().into_iter().collect();
        names.extend(opts.queues.iter().cloned());
        let base = wall_ms();
        let mut queues = BTreeMap::new();
        for name in names {
            let mut q = Queue::new(name.clone(), opts.policy, base);
            let items = store.load(&name)?;
            let restored = items.len();
            for mut item in items {
                // Attempt counts are saved unflushed, so any restored item may
                // have been delivered before the crash: say so.
                if item.redelivery.is_none() {
                    item.redelivery =
                        Some("the keeper restarted; this may have been delivered before".into());
                }
                q.push(item);
            }
            if restored > 0 {
                tracing::info!(queue = %name, restored, "queue rebuilt from storage");
                // The leases died with the last keeper: let the consumers
                // re-claim what they are still working on first.
                q.hold(READOPT_GRACE_MS);
            }
            for (order_id, last_seq) in store.load_withdrawn(&name)? {
                q.restore_withdrawn(order_id, last_seq);
            }
            queues.insert(name, q);
        }
        let next_seq = store.next_seq();

        let mqtt =
            crate::server::client_options(&opts.client_id, &opts.host, opts.port, opts.credentials.as_ref());
        let (client, mut eventloop) = AsyncClient::new(mqtt, 10_000);
        eventloop.network_options.set_tcp_nodelay(true);
        let keeper = Keeper {
            opts,
            store,
            queues,
            client,
            next_seq,
            started: Instant::now(),
            last_seen: HashMap::new(),
            rates: HashMap::new(),
            last_stats: Instant::now(),
        };
        Ok((keeper, eventloop))
    }

    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs the keeper until its MQTT client or its storage fails.
    pub async fn run(mut self, eventloop: EventLoop) -> Result<(), KeeperError> {
        // Unbounded: see `server::pump`.
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(eventloop, tx, "keeper"));

        let mut stats = tokio::time::interval(STATS_INTERVAL);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self
                .queues
                .values()
                .filter_map(Queue::next_due)
                .min()
                .map(|due| Duration::from_millis(due.saturating_sub(self.ms())))
                .unwrap_or(STATS_INTERVAL);
            let mut batch = Batch::default();
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { return Ok(()) };
                    self.handle(first, &mut batch).await?;
                    let mut taken = 1;
                    while taken < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(input) => self.handle(input, &mut batch).await?,
                            Err(_) => break,
                        }
                        taken += 1;
                    }
                }
                _ = tokio::time::sleep(wake) => {}
                _ = stats.tick() => {
                    self.expire_leases(&mut batch)?;
                    self.publish_stats().await?;
                    self.alert_refusals().await?;
                }
            }
            self.tick(&mut batch)?;
            self.finish(batch).await?;
        }
    }

    /// Flush, confirm, alert, then deliver: the order is the guarantee.
    async fn finish(&mut self, batch: Batch) -> Result<(), KeeperError> {
        // Acks and retries are flushed too: the stats published next never
        // show work done that a crash could bring back.
        self.store.set_next_seq(self.next_seq)?;
        self.store.flush().await?;
        for ((queue, producer), event_ids) in batch.confirms {
            let topic = self.opts.topics.confirm(&queue, &producer);
            self.publish_for(&producer, topic, &Confirm { event_ids }).await?;
        }
        for ((queue, consumer), delivery_ids) in batch.acked {
            let topic = self.opts.topics.acked(&queue, &consumer);
            self.publish_for(&consumer, topic, &Acked { delivery_ids })
                .await?;
        }
        for (topic, answer) in batch.withdrawn {
            self.publish_sealed(topic, &answer, false).await?;
        }
        for letter in &batch.buried {
            self.alert(letter).await?;
        }
        for queue in &batch.dlq_changed {
            self.publish_dlq(queue).await?;
        }
        self.deliver().await
    }

    async fn deliver(&mut self) -> Result<(), KeeperError> {
        let mut out = Vec::new();
        // Attempt counts are not written per delivery (that would double the
        // writes per message); they are saved when a message is re-queued,
        // and after a crash every restored message is marked as a possible
        // redelivery.
        for (name, q) in self.queues.iter_mut() {
            let dispatched = q.dispatch();
            if !dispatched.is_empty() {
                out.push((name.clone(), dispatched));
            }
        }
        for (queue, dispatched) in out {
            // A consumer that takes batches gets this round's deliveries in
            // as few messages as the size cap allows, in dispatch order.
            let mut batches: BTreeMap<String, wire::DeliveryBatch> = BTreeMap::new();
            for d in dispatched {
                let item = &d.item;
                let delivery = wire::delivery_json(
                    &d.delivery_id,
                    item.attempt,
                    item.redelivery.as_deref(),
                    &d.incarnation,
                    &item.envelope,
                )
                .unwrap_or_default();
                if !d.batch {
                    let topic = self.opts.topics.deliver(&queue, &d.consumer);
                    self.client
                        .publish(
                            topic,
                            QoS::AtLeastOnce,
                            false,
                            self.seal_for(&d.consumer, delivery),
                        )
                        .await?;
                    continue;
                }
                if delivery.is_empty() {
                    // Cannot be joined into a batch; its ack timeout brings it back.
                    tracing::warn!(%queue, delivery_id = %d.delivery_id, "a delivery did not encode");
                    continue;
                }
                let batch = batches.entry(d.consumer.clone()).or_default();
                if !batch.is_empty() && batch.len() + delivery.len() > DELIVERY_BATCH_BYTES {
                    let body = self.seal_for(&d.consumer, batch.take());
                    let topic = self.opts.topics.deliver(&queue, &d.consumer);
                    self.client.publish(topic, QoS::AtLeastOnce, false, body).await?;
                }
                batch.push(&delivery);
            }
            for (consumer, mut batch) in batches {
                if !batch.is_empty() {
                    let topic = self.opts.topics.deliver(&queue, &consumer);
                    self.client
                        .publish(
                            topic,
                            QoS::AtLeastOnce,
                            false,
                            self.seal_for(&consumer, batch.take()),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn handle(&mut self, input: Input, batch: &mut Batch) -> Result<(), KeeperError> {
        let (topic, payload) = match input {
            Input::Connected => return self.subscribe().await,
            Input::Publish(p) => (p.topic, p.payload),
        };
        if let Some(node) = self.opts.topics.parse_status_topic(&topic) {
            let node = node.to_string();
            return self.on_status(&node, &payload, batch);
        }
        let Some((queue, verb, client)) = self.opts.topics.parse_queue_topic(&topic) else {
            return Ok(());
        };
        let (queue, verb, client) = (queue.to_string(), verb.to_string(), client.map(str::to_string));
        if !valid_queue_name(&queue) {
            tracing::warn!(%topic, "ignored: queue names are lowercase letters, digits, '-' and '_'");
            return Ok(());
        }
        match (verb.as_str(), client) {
            ("put", None) => self.on_put(&queue, &payload, batch),
            ("credit", Some(consumer)) => {
                let credit = self.consumer_says("credit", Topics::credit, (&queue, &consumer), &payload);
                credit.map_or(Ok(()), |c| self.on_credit(&queue, &consumer, c, batch))
            }
            ("ack", Some(consumer)) => {
                let acks = self.consumer_says("ack", Topics::ack, (&queue, &consumer), &payload);
                acks.map_or(Ok(()), |a| self.on_ack(&queue, &consumer, a, batch))
            }
            ("dlq", Some(cmd)) if cmd == "requeue" => self.on_requeue(&queue, &payload, batch),
            ("withdraw", Some(client)) => self.on_withdraw(&queue, &client, &payload, batch),
            _ => Ok(()),
        }
    }

    async fn subscribe(&mut self) -> Result<(), KeeperError> {
        let t = &self.opts.topics;
        let p = t.prefix();
        let filters = [
            format!("{p}/q/+/put"),
            format!("{p}/q/+/credit/+"),
            format!("{p}/q/+/ack/+"),
            format!("{p}/q/+/dlq/requeue"),
            format!("{p}/q/+/withdraw/+"),
            t.all_status(),
        ];
        for f in filters {
            self.client.subscribe(f, QoS::AtLeastOnce).await?;
        }
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for q in names {
            self.publish_dlq(&q).await?;
        }
        tracing::info!(client = %self.opts.client_id, "keeper connected and subscribed");
        Ok(())
    }

    fn queue(&mut self, name: &str) -> &mut Queue {
        let (policy, base) = (self.opts.policy, wall_ms());
        self.queues
            .entry(name.to_string())
            .or_insert_with(|| Queue::new(name, policy, base))
    }

    fn on_put(&mut self, queue: &str, payload: &Bytes, batch: &mut Batch) -> Result<(), KeeperError> {
        if payload.len() > MAX_ENVELOPE {
            let reason = format!(
                "envelope too large: {} bytes, at most {MAX_ENVELOPE}",
                payload.len()
            );
            // Kept in the DLQ, so confirmed: its producer must stop re-sending.
            if let Ok(meta) = wire::check_envelope(payload) {
                batch.confirm(queue, meta.source, meta.event_id);
            }
            return self.refuse(queue, reason, payload, batch);
        }
        let read = match wire::read(payload) {
            Ok(r) => r,
            Err(e) => return self.refuse(queue, format!("malformed envelope: {e}"), payload, batch),
        };
        let mut envelope = payload.clone();
        if let Some(trust) = &self.opts.trust {
            match trust.admit(payload, &read, Act::Put(queue)) {
                Ok(untagged) => envelope = untagged.map_or(envelope, Bytes::from),
                Err(why) => {
                    // Not to the DLQ: a forger could fill it. Not confirmed either.
                    trust.report("put", &read.meta.source, &self.opts.topics.put(queue), &why);
                    return Ok(());
                }
            }
        }
        let meta = read.meta;
        let id = meta.event_id;
        let source = meta.source.clone();
        if let Some(last_seq) = self.queue(queue).drop_withdrawn(&meta) {
            // The order was withdrawn (cancelled): confirmed, so the producer
            // stops re-sending it, but never delivered.
            tracing::info!(queue, order_id = %meta.order_id, "put for a withdrawn order dropped");
            self.store.set_withdrawn(queue, &meta.order_id, last_seq)?;
            batch.confirm(queue, source, id);
            return Ok(());
        }
        let item = Item {
            seq: self.next_seq,
            attempt: 0,
            redelivery: None,
            meta,
            envelope,
        };
        // A duplicate (a re-sent put) stores nothing but is confirmed again:
        // its first confirm may have been lost.
        if self.store.add(queue, &item)? {
            self.next_seq += 1;
            self.queue(queue).put(item);
        }
        batch.confirm(queue, source, id);
        Ok(())
    }

    /// Sends a put that cannot be queued to the DLQ, keeping its text.
    fn refuse(
        &mut self,
        queue: &str,
        reason: String,
        payload: &[u8],
        batch: &mut Batch,
    ) -> Result<(), KeeperError> {
        tracing::warn!(queue, %reason, "put refused and sent to the DLQ");
        let letter = DeadLetter {
            id: 0,
            queue: queue.to_string(),
            reason,
            attempts: 0,
            at: now_rfc3339(),
            envelope: None,
            raw: Some(String::from_utf8_lossy(payload).into_owned()),
        };
        self.bury(letter, batch)
    }

    /// [`decode`] of what `consumer` itself sends about its deliveries (a
    /// credit, an ack on `topic`), refused unless its role may consume
    /// `queue`.
    fn consumer_says<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        topic: fn(&Topics, &str, &str) -> String,
        (queue, consumer): (&str, &str),
        payload: &[u8],
    ) -> Option<T> {
        let topics = &self.opts.topics;
        let trust = self.opts.trust.as_deref();
        let value = decode(
            trust,
            what,
            queue,
            || topic(topics, queue, consumer),
            Some(consumer),
            &[],
            payload,
        )?;
        if let Some(trust) = trust {
            if let Err(why) = trust.check_consumer(consumer, queue) {
                trust.report(what, consumer, &topic(topics, queue, consumer), &why.to_string());
                return None;
            }
        }
        Some(value)
    }

    /// Notes that `consumer` is alive (its lease is renewed); returns now.
    fn heard_from(&mut self, consumer: &str) -> u64 {
        let now = self.ms();
        self.last_seen.insert(consumer.to_string(), now);
        now
    }

    fn on_credit(
        &mut self,
        queue: &str,
        consumer: &str,
        credit: Credit,
        batch: &mut Batch,
    ) -> Result<(), KeeperError> {
        let now = self.heard_from(consumer);
        let q = self.queue(queue);
        let before = q.counters.readopted;
        // Acks that may have been lost first, so their deliveries are not
        // taken back below and handed to someone else.
        let mut effects = q.settle(consumer, &credit.settled, now);
        if !effects.is_empty() {
            tracing::info!(
                queue,
                consumer,
                finished = effects.len(),
                "finished deliveries whose done ack had not reached the disk"
            );
        }
        effects.extend(q.credit(consumer, credit.credit, &credit.incarnation, &credit.held));
        let readopted = q.counters.readopted - before;
        if readopted > 0 {
            tracing::info!(
                queue,
                consumer,
                readopted,
                "a consumer re-claimed the deliveries it still works on"
            );
        }
        q.set_batch(consumer, credit.batch);
        batch.acked(queue, consumer, credit.settled.into_iter().map(|h| h.delivery_id));
        self.apply(queue, effects, batch)
    }

    fn on_ack(
        &mut self,
        queue: &str,
        consumer: &str,
        acks: AckMessage,
        batch: &mut Batch,
    ) -> Result<(), KeeperError> {
        let acks = acks.into_acks();
        let now = self.heard_from(consumer);
        let mut effects = Vec::with_capacity(acks.len());
        let q = self.queue(queue);
        let mut confirmed = Vec::new();
        for a in acks {
            // The reason travels with every redelivery: keep it short.
            let reason = a.reason.map(|mut r| {
                cut(&mut r, MAX_REASON);
                r
            });
            let effect = q.ack(consumer, &a.delivery_id, a.outcome, reason, now);
            // An ignored `done` is not confirmed: after a keeper restart the
            // lease is unknown while the message waits, and only the
            // consumer's next credit (naming it as settled, with its event
            // id) can finish it.
            if a.outcome == Outcome::Done && effect != Effect::Ignored {
                confirmed.push(a.delivery_id);
            }
            effects.push(effect);
        }
        batch.acked(queue, consumer, confirmed);
        self.apply(queue, effects, batch)
    }

    fn on_status(&mut self, node: &str, payload: &[u8], batch: &mut Batch) -> Result<(), KeeperError> {
        let opened = contracts::seal::open(payload);
        // A forged "offline" would hand a live kitchen's tickets to another
        // one, which would cook them a second time.
        if let Some(trust) = &self.opts.trust {
            if let Err(why) = trust.check_sealed_by(&opened, node, &[]) {
                trust.report(
                    "heartbeat",
                    node,
                    &self.opts.topics.status(node),
                    &why.to_string(),
                );
                return Ok(());
            }
        }
        let Ok(status) = serde_json::from_slice::<NodeStatus>(&opened.body) else {
            return Ok(());
        };
        self.heard_from(node);
        if status.state == NodeState::Offline {
            self.consumer_gone(node, batch)?;
        }
        Ok(())
    }

    fn consumer_gone(&mut self, node: &str, batch: &mut Batch) -> Result<(), KeeperError> {
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in names {
            let q = self.queue(&name);
            if q.has_consumer(node) {
                let effects = q.offline(node);
                if !effects.is_empty() {
                    tracing::info!(queue = %name, consumer = node, returned = effects.len(), "consumer offline: deliveries returned to the queue");
                }
                self.apply(&name, effects, batch)?;
            }
        }
        Ok(())
    }

    /// Advances every queue's clock; ack timeouts return deliveries.
    fn tick(&mut self, batch: &mut Batch) -> Result<(), KeeperError> {
        let now = self.ms();
        let names: Vec<String> = self.queues.keys().cloned().collect();
        for name in names {
            let effects = self.queue(&name).tick(now);
            if !effects.is_empty() {
                tracing::warn!(queue = %name, returned = effects.len(), "deliveries not acknowledged in time returned to the queue");
            }
            self.apply(&name, effects, batch)?;
        }
        Ok(())
    }

    /// Takes deliveries back from consumers that have been silent too long
    /// (a paused or wedged process whose connection the broker still keeps).
    fn expire_leases(&mut self, batch: &mut Batch) -> Result<(), KeeperError> {
        let now = self.ms();
        let lease = self.opts.lease.as_millis() as u64;
        let silent: BTreeSet<String> = self
            .queues
            .values()
            .flat_map(|q| q.consumer_figures())
            .filter(|c| c.online && c.in_flight > 0)
            .filter(|c| now.saturating_sub(*self.last_seen.get(&c.id).unwrap_or(&0)) > lease)
            .map(|c| c.id)
            .collect();
        for node in silent {
            tracing::warn!(consumer = %node, "lease expired: no sign of life; deliveries returned");
            self.consumer_gone(&node, batch)?;
        }
        Ok(())
    }

    fn on_withdraw(
        &mut self,
        queue: &str,
        client: &str,
        payload: &[u8],
        batch: &mut Batch,
    ) -> Result<(), KeeperError> {
        let Some(req) = decode::<Withdraw>(
            self.opts.trust.as_deref(),
            "withdraw request",
            queue,
            || self.opts.topics.withdraw(queue, client),
            Some(client),
            &[role::ORDER],
            payload,
        ) else {
            return Ok(());
        };
        if req.order_id.is_empty() {
            tracing::warn!(queue, client, "ignored a withdraw without an order id");
            return Ok(());
        }
        let w = self.queue(queue).withdraw(&req.order_id);
        for item in &w.removed {
            self.store.finish(queue, &item.meta.event_id)?;
        }
        self.store.set_withdrawn(queue, &req.order_id, w.last_seq)?;
        tracing::info!(queue, order_id = %req.order_id, removed = w.removed.len(), in_flight = w.in_flight, "withdrawn");
        let answer = Withdrawn {
            request_id: req.request_id,
            queue: queue.to_string(),
            order_id: req.order_id,
            removed: w.removed.len() as u32,
            in_flight: w.in_flight,
            last_seq: w.last_seq,
        };
        batch
            .withdrawn
            .push((self.opts.topics.withdrawn(queue, client), answer));
        Ok(())
    }

    fn on_requeue(&mut self, queue: &str, payload: &[u8], batch: &mut Batch) -> Result<(), KeeperError> {
        let Some(req) = decode::<Requeue>(
            self.opts.trust.as_deref(),
            "requeue",
            queue,
            || self.opts.topics.requeue(queue),
            None,
            &[role::CONTROL],
            payload,
        ) else {
            return Ok(());
        };
        let letters = self.store.pick_dead(queue, &req.ids, req.all)?;
        let taken: Vec<u64> = letters.iter().map(|l| l.id).collect();
        for letter in letters {
            let Some(envelope) = letter.envelope else {
                tracing::warn!(
                    queue,
                    id = letter.id,
                    "dropped a malformed dead letter on requeue: it has no envelope to deliver"
                );
                continue;
            };
            let item = match Item::from_envelope(self.next_seq, &envelope) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(queue, id = letter.id, error = %e, "dropped a dead letter that cannot be re-queued");
                    continue;
                }
            };
            if self.queue(queue).drop_withdrawn(&item.meta).is_some() {
                tracing::info!(queue, order_id = %item.meta.order_id, "dead letter of a withdrawn order not re-queued");
                continue;
            }
            let item = Item {
                redelivery: Some(format!("re-queued from the DLQ (was: {})", letter.reason)),
                ..item
            };
            // A put after the item's done: the journal's replay brings it back.
            self.store.save(queue, &item)?;
            self.next_seq += 1;
            self.queue(queue).put(item);
        }
        self.store.remove_dead(queue, &taken)?;
        batch.dlq_changed.insert(queue.to_string());
        Ok(())
    }

    fn apply(&mut self, queue: &str, effects: Vec<Effect>, batch: &mut Batch) -> Result<(), KeeperError> {
        for effect in effects {
            match effect {
                Effect::Done(item) => self.store.finish(queue, &item.meta.event_id)?,
                Effect::Requeued(item) => self.store.save(queue, &item)?,
                Effect::Dead { item, reason } => {
                    self.store.finish(queue, &item.meta.event_id)?;
                    tracing::warn!(queue, order_id = %item.meta.order_id, %reason, "dead-lettered");
                    let envelope = wire::full_envelope(&item.envelope);
                    // An envelope only a full read refuses is kept as text.
                    let raw = envelope
                        .is_none()
                        .then(|| String::from_utf8_lossy(&item.envelope).into_owned());
                    let letter = DeadLetter {
                        id: 0,
                        queue: queue.to_string(),
                        reason,
                        attempts: item.attempt,
                        at: now_rfc3339(),
                        envelope,
                        raw,
                    };
                    self.bury(letter, batch)?;
                }
                Effect::Ignored => {}
            }
        }
        Ok(())
    }

    fn bury(&mut self, letter: DeadLetter, batch: &mut Batch) -> Result<(), KeeperError> {
        let queue = letter.queue.clone();
        let letter = self.store.bury(letter)?;
        batch.dlq_changed.insert(queue.clone());
        batch.buried.push(letter);
        self.queue(&queue);
        Ok(())
    }

    /// Publishes a `queue.dead_lettered` alert event for a new dead letter.
    async fn alert(&self, letter: &DeadLetter) -> Result<(), KeeperError> {
        let (order_id, trace_id, event_id) = match &letter.envelope {
            Some(e) => (e.order_id.clone(), e.trace_id.clone(), Some(e.event_id)),
            None => (String::new(), contracts::envelope::new_trace_id(), None),
        };
        let payload = contracts::events::QueueDeadLettered {
            queue: letter.queue.clone(),
            reason: letter.reason.clone(),
            event_id,
            order_id: Some(order_id.clone()).filter(|o| !o.is_empty()),
            attempts: letter.attempts,
        };
        let mut alert = self.alert_envelope(
            contracts::events::kind::QUEUE_DEAD_LETTERED,
            order_id,
            trace_id,
            serde_json::to_value(&payload).unwrap_or_default(),
        );
        alert.causation_id = event_id;
        let alert = self.signed(alert);
        // Into the event log like any node's event. Not kept in an outbox:
        // the dead letter itself is durable, the alert only tells of it.
        self.publish(self.opts.topics.log_put(), &alert, false).await
    }

    /// Publishes one `security.refused` alert per kind of refusal since the
    /// last stats interval (the keeper's and the event log's: they share
    /// the trust store), counted, so the control room shows an attack.
    async fn alert_refusals(&self) -> Result<(), KeeperError> {
        let Some(trust) = &self.opts.trust else {
            return Ok(());
        };
        for (r, count) in trust.take_reports() {
            let payload = contracts::events::SecurityRefused {
                what: r.what,
                sender: r.sender,
                reason: r.reason,
                topic: r.topic,
                count,
            };
            let alert = self.alert_envelope(
                contracts::events::kind::SECURITY_REFUSED,
                String::new(),
                contracts::envelope::new_trace_id(),
                serde_json::to_value(&payload).unwrap_or_default(),
            );
            self.publish(self.opts.topics.log_put(), &self.signed(alert), false)
                .await?;
        }
        Ok(())
    }

    /// Publishes a withdrawal's answer or the stats sealed with the
    /// broker's key: a forged confirm would make a node drop from its
    /// outbox what the keeper never stored.
    async fn publish_sealed<T: serde::Serialize>(
        &self,
        topic: String,
        body: &T,
        retain: bool,
    ) -> Result<(), KeeperError> {
        let payload = self.seal(serde_json::to_vec(body).unwrap_or_default());
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// Publishes an answer for node `to` alone (confirm, acked), sealed for
    /// it ([`Keeper::seal_for`]): a forged confirm would make a node drop
    /// from its outbox what the keeper never stored.
    async fn publish_for<T: serde::Serialize>(
        &self,
        to: &str,
        topic: String,
        body: &T,
    ) -> Result<(), KeeperError> {
        let payload = self.seal_for(to, serde_json::to_vec(body).unwrap_or_default());
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await?;
        Ok(())
    }

    /// A message everyone may read (stats, a withdrawal's answer) signed
    /// with the broker's key, on a signed platform.
    fn seal(&self, body: Vec<u8>) -> Vec<u8> {
        contracts::seal::seal_if(self.opts.signer.as_deref(), body)
    }

    /// A message for node `to` alone (a delivery, a confirm, an acked),
    /// tagged for it on a signed platform: one tag per message, not a check
    /// per delivery at the consumer (every put in it was checked here).
    fn seal_for(&self, to: &str, body: Vec<u8>) -> Vec<u8> {
        crate::trust::seal_for(self.opts.trust.as_deref(), self.opts.signer.as_deref(), to, body)
    }

    /// `alert` signed with the broker's key, on a signed platform.
    fn signed(&self, alert: Envelope) -> Envelope {
        match &self.opts.signer {
            Some(signer) => signer.sign(&alert),
            None => alert,
        }
    }

    /// An alert event from the keeper (seq 0: about an order, not a step in
    /// its life), from the broker's key id on a signed platform.
    fn alert_envelope(
        &self,
        kind: &str,
        order_id: String,
        trace_id: String,
        payload: serde_json::Value,
    ) -> Envelope {
        let mut alert = Envelope::new(kind, order_id, 0, trace_id, self.opts.client_id.clone(), payload);
        if let Some(signer) = &self.opts.signer {
            alert.source = signer.id().to_string();
        }
        alert
    }

    /// Publishes the newest dead letters of `queue`, retained.
    async fn publish_dlq(&self, queue: &str) -> Result<(), KeeperError> {
        let mut letters = self.store.dead_letters(queue)?;
        let skip = letters.len().saturating_sub(DLQ_LISTED);
        letters.drain(..skip);
        // Within the broker's payload limit: long raw texts are cut, and the
        // oldest letters left out if they still do not fit.
        let mut sizes = Vec::with_capacity(letters.len());
        for letter in &mut letters {
            if let Some(raw) = &mut letter.raw {
                cut(raw, LISTED_RAW);
            }
            sizes.push(serde_json::to_vec(letter).map_or(0, |v| v.len() + 1));
        }
        let mut total: usize = sizes.iter().sum();
        let mut dropped = 0;
        while total > DLQ_LISTING_BYTES && dropped < sizes.len() {
            total -= sizes[dropped];
            dropped += 1;
        }
        letters.drain(..dropped);
        let listing = DeadLetterListing {
            queue: queue.to_string(),
            letters,
        };
        // Sealed: the operator re-queues and purges what the listing shows.
        self.publish_sealed(self.opts.topics.dlq_items(queue), &listing, true)
            .await
    }

    async fn publish_stats(&mut self) -> Result<(), KeeperError> {
        let secs = self.last_stats.elapsed().as_secs_f64().max(0.001);
        self.last_stats = Instant::now();
        let mut figures = Vec::with_capacity(self.queues.len());
        for (name, q) in &self.queues {
            let c = q.counters;
            let rates = self.rates.entry(name.clone()).or_default();
            rates.observe(c.put, c.done, secs);
            figures.push(QueueFigures {
                name: name.clone(),
                ready: q.ready(),
                delayed: q.delayed(),
                in_flight: q.in_flight(),
                dlq: self.store.dead_count(name)?,
                in_rate: rates.in_rate,
                out_rate: rates.out_rate,
                put_total: c.put,
                done_total: c.done,
                redelivered_total: c.redelivered,
                delivered_total: c.delivered,
                consumers: q.consumer_figures(),
            });
        }
        let stats = QueueStats {
            at: now_rfc3339(),
            queues: figures,
        };
        crate::metrics::queues(&stats);
        // Sealed: scenarios and the operator act on what the stats say.
        self.publish_sealed(self.opts.topics.queue_stats(), &stats, true)
            .await
    }

    async fn publish<T: serde::Serialize>(
        &self,
        topic: String,
        body: &T,
        retain: bool,
    ) -> Result<(), KeeperError> {
        let payload = serde_json::to_vec(body).unwrap_or_default();
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary, and marks
/// the cut.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// Decodes a protocol message (credit, ack, withdraw, requeue), its seal
/// taken off. On a signed platform it must be sealed by `client` (the node
/// the topic names, when it names one) with one of `roles` (any if empty);
/// a refused one is logged and ignored, changing nothing. A malformed one is
/// logged and ignored too: unlike a put, it carries no work to keep.
fn decode<T: serde::de::DeserializeOwned>(
    trust: Option<&TrustStore>,
    what: &str,
    queue: &str,
    topic: impl FnOnce() -> String,
    client: Option<&str>,
    roles: &[&str],
    payload: &[u8],
) -> Option<T> {
    let opened = contracts::seal::open(payload);
    if let Some(trust) = trust {
        let checked = match client {
            Some(c) => trust.check_sealed_by(&opened, c, roles),
            None => trust.check_sealed(&opened, roles).map(|_| ()),
        };
        if let Err(why) = checked {
            trust.report(what, client.unwrap_or_default(), &topic(), &why.to_string());
            return None;
        }
    }
    match serde_json::from_slice(&opened.body) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(queue, error = %e, "ignored a malformed {what}");
            None
        }
    }
}

/// A queue's in and out rates, smoothed over about [`RATE_WINDOW_S`]
/// seconds: one 500 ms interval holds 0 or 1 completions of a 5 s cook, so
/// the raw rate would flicker between 0 and 2/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Rates {
    put: u64,
    done: u64,
    in_rate: f64,
    out_rate: f64,
}

/// The time constant of [`Rates`], in seconds.
const RATE_WINDOW_S: f64 = 5.0;

impl Rates {
    /// Takes the counters `secs` after the previous observation in.
    fn observe(&mut self, put: u64, done: u64, secs: f64) {
        let alpha = 1.0 - (-secs / RATE_WINDOW_S).exp();
        let now_in = put.saturating_sub(self.put) as f64 / secs;
        let now_out = done.saturating_sub(self.done) as f64 / secs;
        self.in_rate += alpha * (now_in - self.in_rate);
        self.out_rate += alpha * (now_out - self.out_rate);
        self.put = put;
        self.done = done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters_and_marks_the_cut() {
        let mut short = "oven jammed".to_string();
        cut(&mut short, 64);
        assert_eq!(short, "oven jammed");
        let mut long = "é".repeat(10); // 2 bytes each
        cut(&mut long, 5);
        assert_eq!(long, "éé…");
    }

    #[test]
    fn rates_are_smoothed_and_converge() {
        let mut r = Rates::default();
        // One completion every 2 s, observed every 500 ms.
        let mut done = 0;
        for tick in 0..200 {
            if tick % 4 == 0 {
                done += 1;
            }
            r.observe(done * 2, done, 0.5);
        }
        assert!((r.out_rate - 0.5).abs() < 0.25, "{}", r.out_rate);
        assert!((r.in_rate - 1.0).abs() < 0.5, "{}", r.in_rate);
        // Work stops: the rate decays towards zero instead of jumping.
        r.observe(done * 2, done, 0.5);
        assert!(r.out_rate > 0.2, "{}", r.out_rate);
        for _ in 0..100 {
            r.observe(done * 2, done, 0.5);
        }
        assert!(r.out_rate < 0.01, "{}", r.out_rate);
    }
}
