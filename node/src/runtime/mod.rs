//! The node runtime every role shares: storage, the MQTT link, the heartbeat,
//! the control topic and the faults it sets.

pub mod claim;
pub mod commit;
pub mod faults;
pub mod http;
pub mod inbox;
pub mod link;
pub mod outbox;
pub mod queue;
pub mod request;
pub mod security;
pub mod start;
pub mod stop;
pub mod stream;
pub mod withdraw;
pub mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::status::{Control, Faults, Figures, NodeState, NodeStatus};
use contracts::topics::Topics;
use contracts::Envelope;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::config::BrokerAddr;
use crate::error::NodeError;
use crate::runtime::inbox::Inbox;
use crate::runtime::link::{Incoming, Link, LinkOptions};
use crate::runtime::outbox::{Confirmation, Entry, Outbox};
use crate::runtime::queue::{QueueConsumer, QueueProducer};

/// How often the retained status is published.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node id (MQTT client id).
    pub id: String,
    /// Role name, e.g. `kitchen`.
    pub role: String,
    /// The broker.
    pub broker: BrokerAddr,
    /// Where the node's sled database lives.
    pub data_dir: PathBuf,
    /// Topic prefix.
    pub prefix: String,
    /// The node's key and the trust file (none: unsigned).
    pub security: crate::runtime::security::Security,
}

/// Counters shown in the heartbeat.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages handled successfully.
    pub handled: AtomicU64,
    /// Messages whose handling failed.
    pub failed: AtomicU64,
    /// Messages being handled now.
    pub in_flight: AtomicU64,
}

struct Shared {
    role: String,
    started_at: String,
    inbox: Inbox,
    counters: Counters,
    faults: watch::Sender<Faults>,
    state: watch::Sender<NodeState>,
    figures: Mutex<Figures>,
    /// This host's name, for the heartbeat.
    host: String,
    /// Wakes the heartbeat before its next tick (see [`Node::beat_now`]).
    beat: tokio::sync::Notify,
    /// Its databases, and the server that backs them up online.
    shelf: broker::backup::Shelf,
    _backups: Option<broker::backup::Server>,
}

/// One message of a step, for [`Node::send`].
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// A domain event, to the event log.
    Event(&'a Envelope),
    /// A message for a work queue.
    Put(&'a str, &'a Envelope),
}

/// A running node: cheap to clone, shared by the role's tasks.
#[derive(Clone)]
pub struct Node {
    link: Link,
    shared: Arc<Shared>,
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

impl Node {
    /// Opens the node's storage, connects, and starts the heartbeat and the
    /// control listener.
    pub async fn start(cfg: NodeConfig) -> Result<Node, NodeError> {
        crate::runtime::claim::ensure_free(&cfg.broker, &Topics::new(&cfg.prefix), &cfg.id, &cfg.security)
            .await?;
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| NodeError::Storage(e.into()))?;
        let db = sled::Config::new()
            .path(&cfg.data_dir)
            .flush_every_ms(Some(200))
            // sled's default cache is 1 GiB; an outbox and inbox need little.
            .cache_capacity(16 * 1024 * 1024)
            .open()?;
        let outbox = Outbox::open(&db)?;
        let inbox = Inbox::open(&db)?;
        let link = Link::connect(
            LinkOptions {
                id: cfg.id.clone(),
                role: cfg.role.clone(),
                host: cfg.broker.host.clone(),
                port: cfg.broker.port,
                credentials: cfg.broker.credentials.clone(),
                topics: Topics::new(&cfg.prefix),
                keep_alive: Duration::from_secs(5),
                security: cfg.security.clone(),
            },
            outbox,
        )?;
        let (faults, _) = watch::channel(Faults::default());
        let (state, _) = watch::channel(NodeState::Up);
        let shelf = broker::backup::Shelf::default();
        shelf.add(".", &db);
        let backups = broker::backup::serve(&cfg.data_dir, shelf.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "no online backups of this node"))
            .ok();
        let node = Node {
            link,
            shared: Arc::new(Shared {
                role: cfg.role,
                started_at: now_rfc3339(),
                host: crate::runtime::claim::host_name(),
                beat: tokio::sync::Notify::new(),
                inbox,
                counters: Counters::default(),
                faults,
                state,
                figures: Mutex::new(Figures::default()),
                shelf,
                _backups: backups,
            }),
        };
        let control = node.link.subscribe(node.link.topics().control(&cfg.id)).await?;
        tokio::spawn(node.clone().control_loop(control));
        tokio::spawn(node.clone().heartbeat_loop());
        Ok(node)
    }

    /// Its databases: a service adds its own (the order book) for backups.
    pub fn shelf(&self) -> &broker::backup::Shelf {
        &self.shared.shelf
    }

    /// The node id.
    pub fn id(&self) -> &str {
        self.link.id()
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.shared.role
    }

    /// The MQTT link.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Topic names.
    pub fn topics(&self) -> &Topics {
        self.link.topics()
    }

    /// Handled-message ids.
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// The heartbeat counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Faults active now.
    pub fn faults(&self) -> Faults {
        self.shared.faults.borrow().clone()
    }

    /// Watches the faults (e.g. to drop credit to 0 on pause).
    pub fn watch_faults(&self) -> watch::Receiver<Faults> {
        self.shared.faults.subscribe()
    }

    /// Updates the role's own figures shown in the heartbeat.
    pub fn set_figures(&self, update: impl FnOnce(&mut Figures)) {
        update(&mut self.shared.figures.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Sends the heartbeat now rather than at its next tick: for a figure
    /// others act on as soon as the node shows up (its HTTP address).
    pub fn beat_now(&self) {
        self.shared.beat.notify_one();
    }

    /// The role's figures, as the next heartbeat will show them.
    pub fn figures(&self) -> Figures {
        self.shared
            .figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A producer for work queues.
    pub fn producer(&self) -> QueueProducer {
        QueueProducer::new(self.link.clone())
    }

    /// A consumer of `queue` with `credit`.
    pub async fn consumer(&self, queue: &str, credit: u32) -> Result<QueueConsumer, NodeError> {
        QueueConsumer::start(self.link.clone(), queue, credit).await
    }

    /// Publishes a domain event through the outbox to the broker's event log
    /// (kept until the log confirms it is on disk).
    ///
    /// The duplicate and reorder faults strike here, on the publishing side,
    /// so that every subscriber (the order book, the control room, anyone)
    /// receives the same disordered stream; see [`crate::runtime::faults::roll_send`].
    pub async fn emit(&self, envelope: &Envelope) -> Result<(), NodeError> {
        let entry = self
            .link
            .security()
            .entry(self.topics().log_put(), envelope, Confirmation::Log)?;
        let plan = crate::runtime::faults::roll_send(&self.faults(), &mut rand::thread_rng());
        if plan.delay.is_zero() && !plan.twice {
            return self.link.publish_durable(entry).await;
        }
        tracing::debug!(
            order_id = %envelope.order_id,
            seq = envelope.seq,
            kind = %envelope.kind,
            delay_ms = plan.delay.as_millis() as u64,
            twice = plan.twice,
            "fault: event disordered"
        );
        self.link
            .publish_durable_disordered(entry, plan.delay, plan.twice)
            .await
    }

    /// Sends `outgoing` in order (events to the log as [`Node::emit`] does,
    /// puts to their queues) with one outbox flush: a step that produces
    /// several messages waits for the disk once. Under the duplicate or
    /// reorder faults each goes its own way, as `emit` and `put` send it.
    pub async fn send(&self, outgoing: &[Outgoing<'_>]) -> Result<(), NodeError> {
        match self.entries(outgoing).await? {
            Some(entries) => self.link.publish_durable_many(entries).await,
            None => Ok(()),
        }
    }

    /// The last step of handling the queue message `consumed`: sends
    /// `outgoing` as [`Node::send`] does and records `consumed` as handled
    /// in the same write. A kill -9 after the effect can then not bring the
    /// message back for a second effect (a second trip, a second bake).
    pub async fn finish(&self, consumed: &Envelope, outgoing: &[Outgoing<'_>]) -> Result<(), NodeError> {
        match self.entries(outgoing).await? {
            Some(entries) => {
                self.link
                    .publish_durable_finishing(entries, &consumed.event_id)
                    .await
            }
            // Sent one by one under faults: the record follows the effect.
            None => self.inbox().mark(&consumed.event_id).map(|_| ()),
        }
    }

    /// The outbox entries of `outgoing`; or, under the duplicate or reorder
    /// faults, sends each its own way and returns `None`.
    async fn entries(&self, outgoing: &[Outgoing<'_>]) -> Result<Option<Vec<Entry>>, NodeError> {
        let faults = self.faults();
        if faults.duplicate_rate > 0.0 || faults.reorder_rate > 0.0 {
            for o in outgoing {
                match o {
                    Outgoing::Event(e) => self.emit(e).await?,
                    Outgoing::Put(queue, e) => self.producer().put(queue, e).await?,
                }
            }
            return Ok(None);
        }
        let security = self.link.security();
        outgoing
            .iter()
            .map(|o| match o {
                Outgoing::Event(e) => security.entry(self.topics().log_put(), e, Confirmation::Log),
                Outgoing::Put(queue, e) => security.entry(self.topics().put(queue), e, Confirmation::Keeper),
            })
            .collect::<Result<Vec<_>, NodeError>>()
            .map(Some)
    }

    /// Subscribes to `filter` (status topics, say); for domain events use
    /// [`Node::stream`], which misses none.
    pub async fn subscribe(
        &self,
        filter: impl Into<String>,
    ) -> Result<mpsc::UnboundedReceiver<Incoming>, NodeError> {
        self.link.subscribe(filter).await
    }

    /// A durable subscription `name` to the event log (every kind when
    /// `kinds` is empty), with `credit` events in flight at most.
    pub async fn stream(
        &self,
        name: &str,
        kinds: Vec<String>,
        credit: u32,
    ) -> Result<crate::runtime::stream::EventStream, NodeError> {
        crate::runtime::stream::EventStream::start(self.link.clone(), name, kinds, credit).await
    }

    /// Resolves when the control room asks this node to stop.
    pub async fn stop_requested(&self) {
        let mut state = self.shared.state.subscribe();
        let _ = state.wait_for(|s| *s == NodeState::Stopping).await;
    }

    /// Marks the node as stopping (shown in its status).
    pub fn begin_stop(&self) {
        self.shared.state.send_replace(NodeState::Stopping);
    }

    /// The current status, as the heartbeat publishes it.
    pub fn status(&self) -> NodeStatus {
        let c = &self.shared.counters;
        let faults = self.faults();
        let mut state = *self.shared.state.borrow();
        if state == NodeState::Up && faults.paused {
            state = NodeState::Paused;
        }
        NodeStatus {
            id: self.id().to_string(),
            role: self.shared.role.clone(),
            pid: std::process::id(),
            host: self.shared.host.clone(),
            state,
            started_at: self.shared.started_at.clone(),
            at: now_rfc3339(),
            handled: c.handled.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            outbox: self.link.outbox().len() as u64,
            faults,
            figures: self
                .shared
                .figures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Publishes the offline status and disconnects cleanly.
    pub async fn shutdown(&self) {
        let mut last = self.status();
        last.state = NodeState::Offline;
        self.link.close(&last).await;
    }

    async fn heartbeat_loop(self) {
        let topic = self.topics().status(self.id());
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shared.beat.notified() => {}
            }
            let status = self.status();
            crate::metrics::record(&status);
            if self
                .link
                .publish_json(topic.clone(), &status, true)
                .await
                .is_err()
            {
                return;
            }
        }
    }

    async fn control_loop(self, mut rx: mpsc::UnboundedReceiver<Incoming>) {
        let security = self.link.security().clone();
        while let Some(msg) = rx.recv().await {
            // On a signed platform only a control room commands a node.
            let body = match security.open(&msg.payload, &[contracts::trust::role::CONTROL]) {
                Ok(body) => body,
                Err(why) => {
                    tracing::warn!(reason = %why, refused_total = security.refused(), "security: a control command was refused; nothing changed");
                    continue;
                }
            };
            match serde_json::from_slice::<Control>(&body) {
                Ok(cmd) => {
                    tracing::info!(command = ?cmd, "control command");
                    self.obey(cmd);
                }
                Err(e) => tracing::warn!(error = %e, "ignored a malformed control command"),
            }
        }
    }

    /// Applies a control command.
    pub fn obey(&self, cmd: Control) {
        let faults = &self.shared.faults;
        match cmd {
            Control::SetFaults { faults: f } => match f.validate() {
                Ok(()) => {
                    faults.send_replace(f);
                }
                // Anyone on the broker can send this: an absurd value must
                // not hang an oven or break the dice.
                Err(why) => {
                    tracing::warn!(%why, "refused a set_faults command; the faults stay as they were")
                }
            },
            Control::ClearFaults => {
                faults.send_replace(Faults::default());
            }
            Control::Pause => faults.send_modify(|f| f.paused = true),
            Control::Resume => faults.send_modify(|f| f.paused = false),
            Control::Stop => self.begin_stop(),
        }
    }
}
