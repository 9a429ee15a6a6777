//! The shell around `update`: owns the supervisor, the broker feed and the
//! HTTP client, turns what they report into [`Msg`]s and carries out the
//! [`Effect`]s `update` returns. The terminal is not here (see `tty.rs`), so
//! the same [`App`] runs the control room, `--headless`, and the tests.

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::cast::{CastTarget, Recorder};
use crate::feed::Feed;
use crate::model::{Model, RunInfo};
use crate::msg::{ChildEvent, Effect, Msg};
use crate::supervisor::{BrokerTarget, Supervisor, SupervisorConfig, STOP_GRACE};
use crate::topology::Topology;
use crate::update::{step, Watchers};

/// How often the clock ticks (and the supervisor reaps children).
pub const TICK: Duration = Duration::from_millis(250);

/// What the control room runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The executable nodes are re-executed from.
    pub exe: PathBuf,
    /// Node state lives under here.
    pub data_dir: PathBuf,
    /// Start a broker, or attach to one.
    pub broker: BrokerTarget,
    /// The nodes to start.
    pub topology: Topology,
    /// Topic prefix.
    pub prefix: String,
    /// A scenario to play (`--scenario`).
    pub scenario: Option<crate::scenario::Scenario>,
    /// Seconds each captioned step of the scenario stays on screen at least.
    pub pace: f64,
    /// Record the operator's actions into this scenario file (`--record`).
    pub record: Option<PathBuf>,
    /// Record the screen as an asciicast file (`--cast`).
    pub cast: Option<CastTarget>,
    /// What chaos mode does (`c`; `--chaos` starts it at once).
    pub chaos: crate::chaos::ChaosOptions,
    /// Route every node's links through the fault proxy
    /// (`--network-faults`; on by itself for a scenario with a `network`
    /// step and for chaos with its `partition` action).
    pub network_faults: bool,
    /// Back up every node this often, in seconds (`--backup-every`).
    pub backup_every: Option<f64>,
}

impl Options {
    /// Where logs go: `<data_dir>/logs`.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// How the control room ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every node it started was stopped; these exited.
    Stopped(Vec<ChildEvent>),
    /// These nodes (id, pid) were left running on purpose.
    Detached(Vec<(String, u32)>),
}

/// The model plus everything that talks to the outside.
pub struct App {
    /// The model `update` changes.
    pub model: Model,
    /// The scenario player and the recorder, beside the model.
    pub watchers: Watchers,
    /// What it runs.
    opts: Options,
    supervisor: Supervisor,
    feed: Feed,
    http: reqwest::Client,
    /// The control room's bearer tokens (cancelling an order takes one).
    tokens: node::services::tokens::Tokens,
    tx: UnboundedSender<Msg>,
    rx: UnboundedReceiver<Msg>,
    cast: Option<Recorder>,
    /// The log view's file as last read: node id and size.
    log_read: Option<(String, Option<u64>)>,
}

impl App {
    /// Connects to the broker and starts the topology; attached to a running
    /// platform, it adopts the nodes it finds live instead of starting twins.
    pub async fn start(opts: Options) -> anyhow::Result<App> {
        // First, so a cast file that cannot be created stops the run before
        // any node is started.
        let cast = opts.cast.as_ref().map(Recorder::create).transpose()?;
        let (tx, rx) = unbounded_channel();
        let mut supervisor = Supervisor::new(SupervisorConfig {
            exe: opts.exe.clone(),
            data_dir: opts.data_dir.clone(),
            log_dir: opts.log_dir(),
            broker: opts.broker.clone(),
            topology: opts.topology.clone(),
            scrape_targets: vec![
                opts.data_dir.join(SCRAPE_TARGETS),
                // The latest control room's, where assets/prometheus looks.
                std::env::temp_dir().join("pizza-platform").join(SCRAPE_TARGETS),
            ],
        });
        if opts.network_faults {
            let proxies = crate::proxy::Proxies::new(tokio::runtime::Handle::current());
            supervisor = supervisor.with_proxies(proxies);
        }
        // The control room's key seals its commands: on a signed platform a
        // node obeys only a control room.
        let keys = supervisor.control_security()?;
        let tokens = node::services::tokens::Tokens::new(keys.clone());
        let feed = Feed::start(&supervisor.broker_url(), &opts.prefix, keys.clone(), tx.clone())?;
        let info = RunInfo {
            broker: supervisor.broker_url(),
            data_dir: opts.data_dir.display().to_string(),
            log_dir: opts.log_dir().display().to_string(),
            ingredients: crate::customer::ingredients(),
            network_faults: opts.network_faults,
        };
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            // Below the nodes' 15 s idle cut-off: never send on a
            // connection the node is closing.
            .pool_idle_timeout(node::runtime::http::CLIENT_IDLE)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let now = OffsetDateTime::now_utc();
        let model = Model::new(info, now);
        let watchers = Watchers {
            play: opts
                .scenario
                .clone()
                .map(|s| crate::play::Play::new(s, now).paced(opts.pace)),
            recording: opts.record.as_ref().map(|_| crate::record::Recording::new(now)),
            chaos: Some(crate::chaos::Chaos::new(opts.chaos.clone())),
            rollout: None,
            canary: None,
            backups: opts.backup_every.map(crate::storage::Schedule::every),
        };
        let mut app = App {
            opts,
            model,
            watchers,
            supervisor,
            feed,
            http,
            tokens,
            tx,
            rx,
            cast,
            log_read: None,
        };
        let live = match &app.opts.broker {
            BrokerTarget::Own { .. } => Default::default(),
            BrokerTarget::Attach { url } => {
                let addr: node::config::BrokerAddr = url.parse()?;
                let topics = contracts::topics::Topics::new(&app.opts.prefix);
                node::runtime::claim::live_holders(&addr, &topics, &topics.all_status(), &keys).await?
            }
        };
        for event in app.supervisor.start_topology_except(&live) {
            app.handle(Msg::Child(event));
        }
        Ok(app)
    }

    /// The screen recorder asked for with `--cast`, handed to whichever
    /// loop draws (the terminal's, or headless's off-screen one).
    pub fn take_recorder(&mut self) -> Option<Recorder> {
        self.cast.take()
    }

    /// A sender for messages from elsewhere (keys, signals).
    pub fn sender(&self) -> UnboundedSender<Msg> {
        self.tx.clone()
    }

    /// Waits for the next message: one from the feed, a task or a sender,
    /// or a clock tick (which also reaps exited children).
    pub async fn next(&mut self, tick: &mut tokio::time::Interval) -> Msg {
        tokio::select! {
            Some(msg) = self.rx.recv() => msg,
            _ = tick.tick() => {
                for event in self.supervisor.poll() {
                    self.handle(Msg::Child(event));
                }
                if let Some(crate::model::Detail::Log(id)) = &self.model.ui.detail {
                    // Read again only when the file grew (or another opened).
                    let seen = (id.clone(), crate::tail::node_log_len(&self.opts.log_dir(), id));
                    if self.log_read.as_ref() != Some(&seen) || self.model.log_tail.id != *id {
                        let tail = crate::tail::node_log(&self.opts.log_dir(), id);
                        self.log_read = Some(seen);
                        self.handle(Msg::LogTail(tail));
                    }
                }
                Msg::Tick(OffsetDateTime::now_utc())
            }
        }
    }

    /// Like [`App::next`], but gives up with `None` after `frame_in` (the
    /// time until the next frame may be drawn), so a dirty model is drawn
    /// even when no message comes. `None` waits as long as it takes.
    pub async fn next_within(
        &mut self,
        tick: &mut tokio::time::Interval,
        frame_in: Option<Duration>,
    ) -> Option<Msg> {
        match frame_in {
            Some(wait) => tokio::select! {
                msg = self.next(tick) => Some(msg),
                _ = tokio::time::sleep(wait) => None,
            },
            None => Some(self.next(tick).await),
        }
    }

    /// A message already waiting, if any.
    pub fn try_next(&mut self) -> Option<Msg> {
        self.rx.try_recv().ok()
    }

    /// Runs `update` and carries out its effects.
    pub fn handle(&mut self, msg: Msg) {
        for effect in step(&mut self.model, &mut self.watchers, msg) {
            self.carry_out(effect);
        }
    }

    fn carry_out(&mut self, effect: Effect) {
        let sup = &mut self.supervisor;
        let result = match effect {
            Effect::Start(id) => sup.start(&id).map(Some),
            Effect::ScaleUp(role) => Ok(Some(sup.scale_up(role))),
            Effect::Stop(id) => sup.stop(&id).map(Some),
            Effect::Kill(id) => sup.kill(&id).map(Some),
            Effect::Freeze(id, frozen) => sup.freeze(&id, frozen).map(Some),
            Effect::Restart(id) => sup.restart(&id).map(Some),
            // `update::step` starts the rollout and canary watchers for them.
            Effect::RollingRestart(_) | Effect::Canary(_) => Ok(None),
            Effect::Launch { role, id, args } => sup.launch(role, &id, &args).map(Some),
            Effect::Respec { role, args } => {
                sup.respec(role, &args);
                Ok(None)
            }
            Effect::Control(id, control) => {
                if let Err(e) = self.feed.control(&id, &control) {
                    self.handle(Msg::Refused(format!("cannot reach {id}: {e}")));
                }
                Ok(None)
            }
            Effect::Network { node, link, toxics } => {
                match sup.network(&node, &link, toxics.clone()) {
                    Ok(()) => self.handle(Msg::Network { node, link, toxics }),
                    Err(e) => self.handle(Msg::Refused(e.to_string())),
                }
                Ok(None)
            }
            Effect::Storage { node, op } => {
                if op != crate::msg::StorageOp::Backup && sup.is_running(&node) {
                    let outcome = Err(format!("stop {node} first: its data is in use"));
                    self.handle(Msg::Storage { node, op, outcome });
                    return;
                }
                let (data, tx) = (self.opts.data_dir.clone(), self.tx.clone());
                tokio::task::spawn_blocking(move || {
                    let outcome = crate::storage::carry_out(&data, &node, op);
                    let _ = tx.send(Msg::Storage { node, op, outcome });
                });
                Ok(None)
            }
            Effect::Requeue(queue, id) => {
                if let Err(e) = self.feed.requeue(&queue, id) {
                    self.handle(Msg::Refused(format!("cannot re-queue on {queue}: {e}")));
                }
                Ok(None)
            }
            Effect::PlaceOrders { url, count, quiet } => {
                let (http, tx) = (self.http.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let outcome = crate::customer::place(&http, &url, count).await;
                    let _ = tx.send(Msg::Placed(crate::msg::PlaceOutcome { quiet, ..outcome }));
                });
                Ok(None)
            }
            Effect::CancelOrder { url, order_id } => {
                let request = self
                    .http
                    .delete(format!("{}/orders/{order_id}", url.trim_end_matches('/')));
                let request = self.tokens.attach(
                    request,
                    contracts::trust::role::ORDER,
                    contracts::token::scope::CANCEL,
                );
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let outcome = crate::customer::cancel(request).await;
                    let _ = tx.send(Msg::CancelAnswered { order_id, outcome });
                });
                Ok(None)
            }
            // The caller sees `model.quitting` and calls `finish`.
            Effect::Quit { .. } => Ok(None),
        };
        match result {
            Ok(Some(event)) => self.handle(Msg::Child(event)),
            Ok(None) => {}
            Err(e) => self.handle(Msg::Refused(e.to_string())),
        }
    }

    /// Ends the run: stops every node started here, or detaches from them
    /// when the operator chose to leave them running.
    pub async fn finish(mut self) -> Ending {
        self.feed.close().await;
        self.save_recording();
        if self.model.quitting == Some(false) {
            return Ending::Detached(self.supervisor.detach());
        }
        let mut supervisor = self.supervisor;
        let exited = tokio::task::spawn_blocking(move || supervisor.shutdown(STOP_GRACE)).await;
        Ending::Stopped(exited.unwrap_or_default())
    }
}

impl App {
    /// Writes the recorded session (`--record`) as a scenario. A failure is
    /// logged: the nodes must still be stopped.
    fn save_recording(&mut self) {
        let (Some(path), Some(rec)) = (&self.opts.record, &self.watchers.recording) else {
            return;
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recorded".into());
        let scenario = rec.scenario(&name, self.opts.topology.nodes.clone(), self.model.now);
        let written = toml::to_string_pretty(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                let header = "# Recorded with `control-room --record`. Replay it with\n\
                              # `control-room --scenario FILE` (or `--headless --scenario FILE`).\n\n";
                std::fs::write(path, format!("{header}{text}")).map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => {
                tracing::info!(path = %path.display(), steps = scenario.steps.len(), "session recorded")
            }
            Err(e) => tracing::error!(path = %path.display(), error = %e, "could not write the recording"),
        }
    }

    /// The scenario's verdict, once it is over.
    fn verdict(&self) -> Option<crate::play::Verdict> {
        let chaos = self.watchers.chaos.as_ref().and_then(|c| c.verdict.clone());
        self.watchers
            .play
            .as_ref()
            .and_then(|p| p.verdict.clone())
            .or(chaos)
    }

    /// [`App::finish`], keeping the scenario's verdict.
    pub async fn close(self) -> Finished {
        let verdict = self.verdict();
        Finished {
            ending: self.finish().await,
            verdict,
        }
    }
}

/// How a run ended, with the verdict of the scenario it played, if any.
#[derive(Debug, Clone)]
pub struct Finished {
    /// What happened to the nodes.
    pub ending: Ending,
    /// The scenario's verdict (`None` without a scenario, or one cut short).
    pub verdict: Option<crate::play::Verdict>,
}

/// The Prometheus targets file the control room keeps, in its run's data
/// directory and in `$TMPDIR/pizza-platform/`.
pub const SCRAPE_TARGETS: &str = "prometheus-targets.json";

/// A fresh per-run data directory: `$TMPDIR/pizza-platform/run-<time>-<pid>`.
pub fn per_run_dir() -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    std::env::temp_dir()
        .join("pizza-platform")
        .join(format!("run-{stamp}-{}", std::process::id()))
}
