//! The supervisor: owns the node processes the control room starts.
//!
//! Every node is this same binary re-executed as `control-room node <role>`
//! (design.md: `cargo run --release` never builds `pizza-node`). Each child
//! runs in its own process group with its output in a log file, so nothing it
//! prints reaches the terminal the control room draws on.
//!
//! The supervisor never leaves orphans: [`Supervisor::shutdown`] stops every
//! child (SIGTERM, then SIGKILL after a grace period), and dropping it kills
//! whatever is left, which covers panics. [`Supervisor::detach`] is the one
//! way to leave nodes running, and it is explicit.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contracts::status::NodeStatus;

use crate::msg::ChildEvent;
use crate::topology::{NodeSpec, Role, Topology};

/// How long a stopped node gets to finish before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The link in front of a node's own HTTP API, for the nodes that find it
/// by its heartbeat (delivery, whose recalls the order node sends):
/// upstream is the callers' requests.
pub const API_LINK: &str = "api";

/// The id the control room signs as in its platform's trust file.
pub const CONTROL_ROOM_ID: &str = "control-room";

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerTarget {
    /// Start one (the topology's broker) on this free port.
    Own {
        /// The port it listens on (127.0.0.1).
        port: u16,
    },
    /// Attach to one that already runs.
    Attach {
        /// `mqtt://HOST:PORT`.
        url: String,
    },
}

impl BrokerTarget {
    /// The URL nodes and the control room connect to.
    pub fn url(&self) -> String {
        match self {
            BrokerTarget::Own { port } => format!("mqtt://127.0.0.1:{port}"),
            BrokerTarget::Attach { url } => url.clone(),
        }
    }
}

/// What the supervisor needs to start nodes.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The executable that understands `node <role> ...` (normally this one).
    pub exe: PathBuf,
    /// Nodes keep their state under `<data_dir>/<id>`.
    pub data_dir: PathBuf,
    /// Node logs go to `<log_dir>/<id>.log`.
    pub log_dir: PathBuf,
    /// The broker.
    pub broker: BrokerTarget,
    /// The topology: start order and flags for each role.
    pub topology: Topology,
    /// Files kept current with every started node's `/metrics` address, in
    /// Prometheus' `file_sd` format (assets/prometheus/prometheus.yml reads
    /// one).
    pub scrape_targets: Vec<PathBuf>,
}

/// Why a supervisor action was refused.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// No node has this id.
    #[error("no node `{0}` was started by this control room")]
    Unknown(String),
    /// The node is already running.
    #[error("node `{0}` is already running")]
    Running(String),
    /// The node is not running.
    #[error("node `{0}` is not running")]
    NotRunning(String),
    /// The process could not be started.
    #[error("cannot start node `{id}`: {source}")]
    Spawn {
        /// Node id.
        id: String,
        /// Why.
        source: std::io::Error,
    },
    /// The node's key could not be made or listed in the trust file.
    #[error("cannot make the key of node `{id}`: {reason}")]
    Keys {
        /// Node id.
        id: String,
        /// Why.
        reason: String,
    },
    /// No free port.
    #[error("cannot find a free port for node `{id}`: {source}")]
    Port {
        /// Node id.
        id: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What the control room asked of a running node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// Nothing: an exit now is a crash (kill -9 stays here on purpose).
    Nothing,
    /// To stop; SIGKILL at `kill_at` if it has not (`None`: already sent).
    Stop {
        /// When the grace period ends.
        kill_at: Option<Instant>,
    },
}

struct Proc {
    role: Role,
    /// `None` for a node adopted on attach: not our child, watched by pid.
    child: Option<Child>,
    pid: u32,
    /// Whether the control room asked it to end (its exit is then expected).
    asked: Asked,
    /// Start it again once it has exited.
    restart: bool,
}

/// Owns the node processes.
pub struct Supervisor {
    cfg: SupervisorConfig,
    /// Every node ever started, by id: how to start it again.
    specs: BTreeMap<String, NodeSpec>,
    running: BTreeMap<String, Proc>,
    /// Ports are chosen once per id so a restarted node keeps its address.
    ports: HashMap<String, u16>,
    detached: bool,
    /// The fault proxy every node's links go through (`None`: nodes
    /// connect directly, `--direct`).
    proxies: Option<crate::proxy::Proxies>,
}

impl Supervisor {
    /// A supervisor that has started nothing yet.
    pub fn new(cfg: SupervisorConfig) -> Supervisor {
        let mut ports = HashMap::new();
        if let BrokerTarget::Own { port } = cfg.broker {
            for n in cfg.topology.nodes.iter().filter(|n| n.role == Role::Broker) {
                ports.insert(n.id.clone(), port);
            }
        }
        Supervisor {
            cfg,
            specs: BTreeMap::new(),
            running: BTreeMap::new(),
            ports,
            detached: false,
            proxies: None,
        }
    }

    /// Routes every link of the nodes it starts from now on through a
    /// fault proxy (see [`crate::proxy`]).
    pub fn with_proxies(mut self, proxies: crate::proxy::Proxies) -> Supervisor {
        self.proxies = Some(proxies);
        self
    }

    /// Replaces the network faults on `id`'s `link`.
    pub fn network(
        &mut self,
        id: &str,
        link: &str,
        toxics: Vec<crate::model::network::Toxic>,
    ) -> Result<(), crate::proxy::ProxyError> {
        match &self.proxies {
            Some(p) => p.set(id, link, toxics),
            None => Err(crate::proxy::ProxyError::NoLink {
                node: id.into(),
                link: link.into(),
            }),
        }
    }

    /// The address `id` reaches `upstream` at for `link`: through its proxy
    /// when there is one.
    fn reach(
        &mut self,
        id: &str,
        link: &str,
        upstream: (&str, u16),
    ) -> Result<(String, u16), SupervisorError> {
        let Some(proxies) = &mut self.proxies else {
            return Ok((upstream.0.to_string(), upstream.1));
        };
        let spawn_err = |e: String| SupervisorError::Spawn {
            id: id.to_string(),
            source: std::io::Error::other(e),
        };
        let far = std::net::ToSocketAddrs::to_socket_addrs(&upstream)
            .map_err(|e| spawn_err(format!("cannot resolve {}:{}: {e}", upstream.0, upstream.1)))?
            .next()
            .ok_or_else(|| spawn_err(format!("{}:{} resolves to nothing", upstream.0, upstream.1)))?;
        let near = proxies
            .route(id, link, far)
            .map_err(|e| spawn_err(e.to_string()))?;
        Ok((near.ip().to_string(), near.port()))
    }

    /// The broker's address as node `id` reaches it.
    fn broker_for(&mut self, id: &str) -> Result<node::config::BrokerAddr, SupervisorError> {
        let mut url: node::config::BrokerAddr =
            self.broker_url()
                .parse()
                .map_err(|e: node::NodeError| SupervisorError::Spawn {
                    id: id.to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        let (host, port) = self.reach(id, crate::model::network::BROKER_LINK, (&url.host, url.port))?;
        (url.host, url.port) = (host, port);
        Ok(url)
    }

    /// The broker URL every node gets.
    pub fn broker_url(&self) -> String {
        self.cfg.broker.url()
    }

    /// Where node logs go.
    pub fn log_dir(&self) -> &Path {
        &self.cfg.log_dir
    }

    /// Starts every node of the topology, in order.
    pub fn start_topology(&mut self) -> Vec<ChildEvent> {
        self.start_topology_except(&BTreeMap::new())
    }

    /// Starts every node of the topology except those `live` already (found
    /// by [`node::runtime::claim::live_holders`] on attach): a local one that no
    /// other control room supervises is adopted; the others are left to
    /// their owner (shown from their heartbeats). Never a twin.
    pub fn start_topology_except(&mut self, live: &BTreeMap<String, NodeStatus>) -> Vec<ChildEvent> {
        let here = node::runtime::claim::host_name();
        let mut events = Vec::new();
        for holder in live.values() {
            if holder.host == here
                && node::runtime::claim::runs_node(holder.pid, &holder.id)
                && !node::runtime::claim::supervised_elsewhere(holder.pid)
            {
                if let Some(event) = self.adopt(holder) {
                    events.push(event);
                }
            }
        }
        let specs = self.cfg.topology.nodes.clone();
        for spec in specs.into_iter().filter(|s| !live.contains_key(&s.id)) {
            events.push(self.start_spec(spec));
        }
        events
    }

    /// Takes a live local node under care: its pid is signalled like a
    /// child's, and a restart keeps its HTTP port.
    fn adopt(&mut self, holder: &NodeStatus) -> Option<ChildEvent> {
        let role = Role::parse(&holder.role)?;
        let spec = self
            .cfg
            .topology
            .nodes
            .iter()
            .find(|n| n.id == holder.id)
            .cloned()
            .unwrap_or_else(|| NodeSpec {
                role,
                id: holder.id.clone(),
                args: Vec::new(),
                command: Vec::new(),
            });
        let port = holder
            .figures
            .http
            .as_deref()
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.trim_end_matches('/').parse().ok());
        if let Some(port) = port {
            self.ports.insert(holder.id.clone(), port);
        }
        self.specs.insert(holder.id.clone(), spec);
        self.running.insert(
            holder.id.clone(),
            Proc {
                role,
                child: None,
                pid: holder.pid,
                asked: Asked::Nothing,
                restart: false,
            },
        );
        tracing::info!(id = %holder.id, pid = holder.pid, "adopted a running node");
        Some(ChildEvent::Adopted {
            id: holder.id.clone(),
            role,
            pid: holder.pid,
        })
    }

    /// The key of node `id` (made, and listed in the trust file, if new).
    fn make_key(&self, id: &str, role: &str) -> Result<PathBuf, SupervisorError> {
        let keys = self.cfg.data_dir.join("keys");
        node::runtime::security::make_key(&keys, id, role, &self.trust_file()).map_err(|e| {
            SupervisorError::Keys {
                id: id.to_string(),
                reason: e.to_string(),
            }
        })
    }

    fn trust_file(&self) -> PathBuf {
        self.cfg.data_dir.join("keys").join("trust.json")
    }

    /// The control room's own key (id [`CONTROL_ROOM_ID`], role control),
    /// made if new, which seals its commands, and the platform's trust
    /// file, which checks the heartbeats it shows.
    pub fn control_security(&self) -> Result<node::runtime::security::Security, SupervisorError> {
        let role = contracts::trust::role::CONTROL;
        let key = self.make_key(CONTROL_ROOM_ID, role)?;
        node::runtime::security::Security::load(Some(&key), Some(&self.trust_file()), CONTROL_ROOM_ID, role)
            .map_err(|e| SupervisorError::Keys {
                id: CONTROL_ROOM_ID.to_string(),
                reason: e.to_string(),
            })
    }

    /// Starts a node that was started before (and has exited) by id.
    pub fn start(&mut self, id: &str) -> Result<ChildEvent, SupervisorError> {
        if self.running.contains_key(id) {
            return Err(SupervisorError::Running(id.to_string()));
        }
        let spec = self
            .specs
            .get(id)
            .or_else(|| self.cfg.topology.nodes.iter().find(|n| n.id == id))
            .cloned()
            .ok_or_else(|| SupervisorError::Unknown(id.to_string()))?;
        Ok(self.start_spec(spec))
    }

    /// Starts one more node of `role`, named `<role>-<n>` with the first free
    /// n, with the flags the topology gives that role.
    pub fn scale_up(&mut self, role: Role) -> ChildEvent {
        let args = self.role_args(role);
        let id = (1..)
            .map(|n| format!("{role}-{n}"))
            .find(|id| !self.running.contains_key(id) && !self.specs.contains_key(id))
            .unwrap_or_else(|| role.to_string());
        self.start_spec(NodeSpec {
            role,
            id,
            args,
            command: Vec::new(),
        })
    }

    /// Starts node `id` of `role` with `extra` on top of the role's flags (a
    /// canary).
    pub fn launch(&mut self, role: Role, id: &str, extra: &[String]) -> Result<ChildEvent, SupervisorError> {
        if self.running.contains_key(id) {
            return Err(SupervisorError::Running(id.to_string()));
        }
        let args = crate::canary::merge_args(&self.role_args(role), extra);
        Ok(self.start_spec(NodeSpec {
            role,
            id: id.to_string(),
            args,
            command: Vec::new(),
        }))
    }

    /// Every node of `role` starts with `extra` on top of its flags from
    /// now on (a promoted canary's); running ones pick them up on restart.
    pub fn respec(&mut self, role: Role, extra: &[String]) {
        let topology = self.cfg.topology.nodes.iter_mut();
        for spec in topology.chain(self.specs.values_mut()).filter(|s| s.role == role) {
            spec.args = crate::canary::merge_args(&spec.args, extra);
        }
    }

    /// The flags the topology (or the first node started) gives `role`.
    fn role_args(&self, role: Role) -> Vec<String> {
        self.cfg
            .topology
            .nodes
            .iter()
            .chain(self.specs.values())
            .find(|n| n.role == role)
            .map(|n| n.args.clone())
            .unwrap_or_default()
    }

    fn start_spec(&mut self, spec: NodeSpec) -> ChildEvent {
        let id = spec.id.clone();
        match self.spawn(&spec) {
            Ok(proc) => {
                let pid = proc.pid;
                self.running.insert(id.clone(), proc);
                self.specs.insert(id.clone(), spec.clone());
                self.write_scrape_targets();
                ChildEvent::Spawned {
                    metrics: self.metrics_url(&id),
                    links: self.proxies.as_ref().map(|p| p.links_of(&id)).unwrap_or_default(),
                    id,
                    role: spec.role,
                    pid,
                }
            }
            Err(e) => {
                self.specs.insert(id.clone(), spec);
                ChildEvent::Failed {
                    id,
                    error: e.to_string(),
                }
            }
        }
    }

    fn port_for(&mut self, id: &str) -> Result<u16, SupervisorError> {
        if let Some(p) = self.ports.get(id) {
            return Ok(*p);
        }
        let port = free_port().map_err(|source| SupervisorError::Port {
            id: id.to_string(),
            source,
        })?;
        self.ports.insert(id.to_string(), port);
        Ok(port)
    }

    /// The HTTP address of a node the supervisor gave a port to.
    pub fn http_url(&self, id: &str) -> Option<String> {
        let spec = self.specs.get(id)?;
        if !spec.role.serves_http() {
            return None;
        }
        self.ports.get(id).map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// Where node `id` serves Prometheus `/metrics`: its API port for a
    /// node with one, else the port the supervisor gave its `--metrics`.
    pub fn metrics_url(&self, id: &str) -> Option<String> {
        let spec = self.specs.get(id)?;
        if spec.role.serves_http() {
            return self.http_url(id).map(|u| format!("{u}/metrics"));
        }
        self.ports
            .get(&metrics_key(id))
            .map(|p| format!("http://127.0.0.1:{p}/metrics"))
    }

    /// Rewrites the scrape-target files: every node ever started here with
    /// a `/metrics` (one that is down shows as such in Prometheus).
    fn write_scrape_targets(&self) {
        let targets: Vec<String> = self.specs.keys().filter_map(|id| self.metrics_url(id)).collect();
        let body = scrape_targets(&targets);
        for path in &self.cfg.scrape_targets {
            // Written aside and renamed: Prometheus never reads half a file.
            let aside = path.with_extension("json.tmp");
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&aside, &body))
                .and_then(|()| std::fs::rename(&aside, path));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the Prometheus targets");
            }
        }
    }

    /// The program and command line for `spec`: this executable's `node
    /// <role> ...`, or an external node's own command.
    fn command_for(&mut self, spec: &NodeSpec) -> Result<(PathBuf, Vec<String>), SupervisorError> {
        if spec.role != Role::External {
            return Ok((self.cfg.exe.clone(), self.args_for(spec)?));
        }
        let url = self.broker_for(&spec.id)?;
        let fill = |part: &String| {
            part.replace("{broker_port}", &url.port.to_string())
                .replace("{broker_host}", &url.host)
        };
        let mut parts = spec.command.iter().map(fill);
        let program = parts.next().ok_or_else(|| SupervisorError::Spawn {
            id: spec.id.clone(),
            source: std::io::Error::other("an external node needs a command"),
        })?;
        Ok((PathBuf::from(program), parts.collect()))
    }

    /// The command line for `spec` (without the executable).
    fn args_for(&mut self, spec: &NodeSpec) -> Result<Vec<String>, SupervisorError> {
        let mut args = vec![
            "node".to_string(),
            spec.role.to_string(),
            "--id".into(),
            spec.id.clone(),
        ];
        let data = self.cfg.data_dir.join(&spec.id);
        let log = self.cfg.log_dir.join(format!("{}.log", spec.id));
        args.extend(["--data-dir".into(), data.display().to_string()]);
        args.extend(["--log-file".into(), log.display().to_string()]);
        // Every node signs what it sends and checks what it receives. Its
        // key is made (or kept) and listed in the trust file before it
        // starts, so that the others know it by its first message.
        let role = contracts::trust::role_for(spec.role.as_str());
        let key = self.make_key(&spec.id, role)?;
        args.extend(["--key".into(), key.display().to_string()]);
        args.extend(["--trust".into(), self.trust_file().display().to_string()]);
        if spec.role == Role::Broker {
            let port = self.port_for(&spec.id)?;
            args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        } else {
            let url = self.broker_for(&spec.id)?;
            let login = url
                .credentials
                .map(|(u, p)| format!("{u}:{p}@"))
                .unwrap_or_default();
            let host = match url.host.contains(':') {
                true => format!("[{}]", url.host),
                false => url.host,
            };
            args.extend(["--broker".into(), format!("mqtt://{login}{host}:{}", url.port)]);
        }
        if spec.role.serves_http() {
            let port = self.port_for(&spec.id)?;
            args.extend(["--http".into(), format!("127.0.0.1:{port}")]);
            // Found by its heartbeat's URL: announce the proxy in front of
            // it, so the callers' link can be faulted too.
            if spec.role.reached_by_heartbeat() && self.proxies.is_some() {
                let (host, near) = self.reach(&spec.id, API_LINK, ("127.0.0.1", port))?;
                args.extend(["--advertise-url".into(), format!("http://{host}:{near}")]);
            }
        } else {
            // Its /metrics needs an address of its own.
            let port = self.port_for(&metrics_key(&spec.id))?;
            args.extend(["--metrics".into(), format!("127.0.0.1:{port}")]);
        }
        // Where the services it calls are, unless its own flags say so.
        for &(flag, callee) in spec.role.calls() {
            if spec.args.iter().any(|a| a == flag) {
                continue;
            }
            let first = self.cfg.topology.nodes.iter().find(|n| n.role == callee);
            if let Some(id) = first.map(|n| n.id.clone()) {
                let port = self.port_for(&id)?;
                let (host, port) = self.reach(&spec.id, callee.as_str(), ("127.0.0.1", port))?;
                args.extend([flag.to_string(), format!("http://{host}:{port}")]);
            }
        }
        args.extend(spec.args.iter().cloned());
        Ok(args)
    }

    fn spawn(&mut self, spec: &NodeSpec) -> Result<Proc, SupervisorError> {
        let (program, args) = self.command_for(spec)?;
        let spawn_err = |source| SupervisorError::Spawn {
            id: spec.id.clone(),
            source,
        };
        std::fs::create_dir_all(&self.cfg.log_dir).map_err(spawn_err)?;
        let out = output_file(&self.cfg.log_dir, &spec.id).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group: a ^C in the shell after a detach does not
            // reach the nodes, and no child shares the terminal.
            .process_group(0)
            .spawn()
            .map_err(spawn_err)?;
        tracing::info!(id = %spec.id, pid = child.id(), ?args, "started node");
        Ok(Proc {
            role: spec.role,
            pid: child.id(),
            child: Some(child),
            asked: Asked::Nothing,
            restart: false,
        })
    }

    /// Asks a node to stop: SIGTERM now, SIGKILL after [`STOP_GRACE`].
    pub fn stop(&mut self, id: &str) -> Result<ChildEvent, SupervisorError> {
        let p = self.proc(id)?;
        signal(p.pid, libc::SIGTERM);
        // A frozen process cannot handle SIGTERM until it runs again.
        signal(p.pid, libc::SIGCONT);
        p.asked = Asked::Stop {
            kill_at: Some(Instant::now() + STOP_GRACE),
        };
        Ok(ChildEvent::Stopping { id: id.to_string() })
    }

    /// kill -9: a crash on purpose, so its exit shows as a crash.
    pub fn kill(&mut self, id: &str) -> Result<ChildEvent, SupervisorError> {
        let p = self.proc(id)?;
        signal(p.pid, libc::SIGKILL);
        p.asked = Asked::Nothing;
        p.restart = false;
        Ok(ChildEvent::Stopping { id: id.to_string() })
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) a node.
    pub fn freeze(&mut self, id: &str, frozen: bool) -> Result<ChildEvent, SupervisorError> {
        let p = self.proc(id)?;
        signal(p.pid, if frozen { libc::SIGSTOP } else { libc::SIGCONT });
        Ok(ChildEvent::Frozen {
            id: id.to_string(),
            frozen,
        })
    }

    /// Stops a node and starts it again once it has exited.
    pub fn restart(&mut self, id: &str) -> Result<ChildEvent, SupervisorError> {
        let event = self.stop(id)?;
        if let Some(p) = self.running.get_mut(id) {
            p.restart = true;
        }
        Ok(event)
    }

    fn proc(&mut self, id: &str) -> Result<&mut Proc, SupervisorError> {
        self.running
            .get_mut(id)
            .ok_or_else(|| SupervisorError::NotRunning(id.to_string()))
    }

    /// Whether `id` runs under this supervisor.
    pub fn is_running(&self, id: &str) -> bool {
        self.running.contains_key(id)
    }

    /// The ids of running nodes.
    pub fn running_ids(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// Reaps exited children, escalates overdue stops to SIGKILL and starts
    /// nodes waiting to restart. Call it often (every tick).
    pub fn poll(&mut self) -> Vec<ChildEvent> {
        let now = Instant::now();
        let mut events = Vec::new();
        let mut restart = Vec::new();
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            let Some(p) = self.running.get_mut(&id) else {
                continue;
            };
            let ended = match &mut p.child {
                Some(child) => child.try_wait().map(|s| s.map(|s| (s.code(), s.signal()))),
                // Not our child: no exit status, only whether the pid runs.
                None => Ok((!node::runtime::claim::pid_alive(p.pid)).then_some((None, None))),
            };
            match ended {
                Ok(Some((code, sig))) => {
                    let expected = p.asked != Asked::Nothing;
                    if p.restart {
                        restart.push(id.clone());
                    }
                    let last_words = (!expected).then(|| last_line(&self.cfg.log_dir, &id)).flatten();
                    events.push(ChildEvent::Exited {
                        id: id.clone(),
                        role: p.role,
                        code,
                        signal: sig,
                        expected,
                        last_words,
                    });
                    self.running.remove(&id);
                }
                Ok(None) => {
                    if let Asked::Stop {
                        kill_at: Some(deadline),
                    } = p.asked
                    {
                        if now >= deadline {
                            tracing::warn!(%id, "did not stop within the grace period; SIGKILL");
                            signal(p.pid, libc::SIGKILL);
                            p.asked = Asked::Stop { kill_at: None };
                        }
                    }
                }
                Err(e) => tracing::warn!(%id, error = %e, "cannot check the node process"),
            }
        }
        for id in restart {
            if let Some(spec) = self.specs.get(&id).cloned() {
                events.push(self.start_spec(spec));
            }
        }
        events
    }

    /// Stops every node (the broker last, so the others can say goodbye),
    /// waiting up to `grace` before SIGKILL. Returns what exited.
    pub fn shutdown(&mut self, grace: Duration) -> Vec<ChildEvent> {
        let (brokers, others): (Vec<String>, Vec<String>) = self
            .running
            .keys()
            .cloned()
            .partition(|id| self.running[id].role.carries_messages());
        let mut events = self.stop_and_wait(&others, grace);
        events.extend(self.stop_and_wait(&brokers, grace));
        events
    }

    fn stop_and_wait(&mut self, ids: &[String], grace: Duration) -> Vec<ChildEvent> {
        for id in ids {
            let _ = self.stop(id);
            if let Some(p) = self.running.get_mut(id) {
                p.restart = false;
                p.asked = Asked::Stop {
                    kill_at: Some(Instant::now() + grace),
                };
            }
        }
        let mut events = Vec::new();
        let deadline = Instant::now() + grace + Duration::from_secs(2);
        while ids.iter().any(|id| self.running.contains_key(id)) && Instant::now() < deadline {
            events.extend(self.poll());
            std::thread::sleep(Duration::from_millis(20));
        }
        events
    }

    /// Leaves every running node running and forgets it: the control room
    /// may exit without stopping them. Returns their ids and pids.
    pub fn detach(&mut self) -> Vec<(String, u32)> {
        self.detached = true;
        std::mem::take(&mut self.running)
            .into_iter()
            .map(|(id, p)| (id, p.pid))
            .collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.detached && self.running.is_empty() {
            return;
        }
        // A panic or an early return: no orphans, whatever happened.
        // Adopted nodes were not started here: they are left alone.
        for p in self.running.values_mut() {
            if let Some(child) = &mut p.child {
                signal(p.pid, libc::SIGKILL);
                let _ = child.wait();
            }
        }
    }
}

/// The key under which a node's metrics port is kept (its id's is its
/// HTTP or MQTT port).
fn metrics_key(id: &str) -> String {
    format!("{id}/metrics")
}

/// A Prometheus `file_sd` document listing the `/metrics` URLs given.
pub fn scrape_targets(urls: &[String]) -> String {
    let targets: Vec<&str> = urls
        .iter()
        .filter_map(|u| u.strip_prefix("http://"))
        .filter_map(|u| u.strip_suffix("/metrics"))
        .collect();
    let doc = serde_json::json!([{ "targets": targets, "labels": { "platform": "pizza" } }]);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The last non-empty line of a node's output file (where its stderr, and
/// so its `Error: ...` on a failed start, goes).
fn last_line(dir: &Path, id: &str) -> Option<String> {
    let lines = crate::tail::lines(&dir.join(format!("{id}.out")), 4096).ok()?;
    let line = lines.iter().rev().map(|l| l.trim()).find(|l| !l.is_empty())?;
    Some(line.chars().take(300).collect())
}

fn output_file(dir: &Path, id: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{id}.out")))
}

/// Sends `sig` to `pid`. The pid is one of our own children, still unreaped,
/// so it cannot have been recycled for another process; or an adopted node,
/// checked to run that node when adopted and watched every tick since.
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A port nobody listens on right now (127.0.0.1), outside the range the
/// OS uses for outgoing connections (see [`node::ports`]).
pub fn free_port() -> std::io::Result<u16> {
    node::ports::free_port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_targets_are_host_and_port_of_each_metrics_url() {
        let doc = scrape_targets(&[
            "http://127.0.0.1:4100/metrics".to_string(),
            "http://127.0.0.1:4101/metrics".to_string(),
        ]);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(
            v[0]["targets"],
            serde_json::json!(["127.0.0.1:4100", "127.0.0.1:4101"])
        );
        assert_eq!(v[0]["labels"]["platform"], "pizza");
    }

    #[test]
    fn last_line_is_the_last_non_empty_line_of_the_output_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_line(dir.path(), "delivery"), None, "no file yet");
        let long = "x".repeat(5000);
        std::fs::write(
            dir.path().join("delivery.out"),
            format!("{long}\nstarting\nError: cannot listen on 127.0.0.1:20001\n\n"),
        )
        .unwrap();
        assert_eq!(
            last_line(dir.path(), "delivery").as_deref(),
            Some("Error: cannot listen on 127.0.0.1:20001")
        );
    }
}
