//! Test support: real `pizza-node` processes on ephemeral ports, killed on
//! drop, with their stdout JSON lines collected for assertions.

#![allow(dead_code)]

pub mod net;
pub mod platform;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn pizza_node() -> &'static str {
    env!("CARGO_BIN_EXE_pizza-node")
}

/// A port nobody listens on right now, that no outgoing connection takes.
pub fn free_port() -> u16 {
    node::ports::free_port().expect("a free port")
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process, SIGKILLed and reaped on drop (also when a test panics).
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `pizza-node ARGS`, logging to `log` and collecting stdout.
    pub fn spawn(name: &str, args: &[String], log: &Path) -> Proc {
        let mut command = Command::new(pizza_node());
        command
            .args(args)
            .arg("--log-file")
            .arg(log)
            .env("RUST_LOG", "info,rumqttd=warn,rumqttc=warn");
        Proc::run(name, command)
    }

    /// Starts another program (an external broker), collecting stdout.
    pub fn program(name: &str, program: &str, args: &[String]) -> Proc {
        let mut command = Command::new(program);
        command.args(args);
        Proc::run(name, command)
    }

    fn run(name: &str, mut command: Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout is piped");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// The JSON lines printed so far.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines that have `field`.
    pub fn with(&self, field: &str) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l.get(field).is_some())
            .collect()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 10 s).
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id() as i32;
        // SAFETY-free: plain kill(2) through the `kill` command keeps the
        // tests free of libc.
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One test's world: a temp dir, a broker port, and the processes started.
pub struct World {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Every node started gets a key, listed in `keys/trust.json`.
    pub signed: bool,
    /// Every node logs in as its id (password `pw-<id>`), the test's own
    /// clients as `test` (see [`World::login`]).
    pub logins: bool,
}

impl Drop for World {
    /// A failed test keeps its directory (logs, data) for the post-mortem.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir")).keep();
            eprintln!("test directory kept for inspection: {}", kept.display());
        }
    }
}

impl World {
    pub fn new() -> World {
        World {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            signed: false,
            logins: false,
        }
    }

    /// A world whose nodes sign and check everything, as the control
    /// room's platform does.
    pub fn signed() -> World {
        let mut w = World::new();
        w.signed = true;
        w
    }

    /// `--key` and `--trust` for node `id` running as `cmd` (its key made
    /// now), in a signed world; nothing otherwise.
    pub fn key_args(&self, cmd: &str, id: &str) -> Vec<String> {
        if !self.signed {
            return Vec::new();
        }
        let role = match cmd {
            "put" | "consume" => "worker",
            other => node::runtime::security::role_for(other),
        };
        let trust = self.trust_file();
        let key = self.make_key(id, role);
        vec![
            "--key".into(),
            key.display().to_string(),
            "--trust".into(),
            trust.display().to_string(),
        ]
    }

    /// Makes (or keeps) `id`'s key with `role` and lists it in the trust file.
    pub fn make_key(&self, id: &str, role: &str) -> PathBuf {
        node::runtime::security::make_key(&self.path("keys"), id, role, &self.trust_file()).expect("a key")
    }

    /// A bearer token signed by `id` (role `role`, its key made if new) for
    /// `audience` and `scope`.
    pub fn token(&self, id: &str, role: &str, audience: &str, scope: &str) -> String {
        let signer = node::runtime::security::read_key(&self.make_key(id, role), id).expect("the key reads");
        signer
            .token(audience, scope, contracts::token::now_s())
            .expect("a token")
    }

    /// The signed world's trust file.
    pub fn trust_file(&self) -> PathBuf {
        self.path("keys").join("trust.json")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A test client connected as `id` and subscribed to `filters`.
    pub fn watch(&self, id: &str, filters: &[&str]) -> Mqtt {
        let mqtt = self.test_client(id);
        for f in filters {
            mqtt.subscribe(f);
        }
        mqtt
    }

    pub fn broker_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker URL node `id` runs with: under its own login when the
    /// world has logins.
    pub fn broker_url_for(&self, id: &str) -> String {
        match self.login(id) {
            Some((u, p)) => format!("mqtt://{u}:{p}@127.0.0.1:{}", self.port),
            None => self.broker_url(),
        }
    }

    /// `(login, password)` of `id` in a world with logins.
    pub fn login(&self, id: &str) -> Option<(String, String)> {
        self.logins.then(|| (id.to_string(), format!("pw-{id}")))
    }

    /// A test client `id`: under the login `test` in a world with logins.
    pub fn test_client(&self, id: &str) -> Mqtt {
        self.try_test_client(id).expect("the test client connects")
    }

    /// [`test_client`](Self::test_client), or the broker's refusal.
    fn try_test_client(&self, id: &str) -> Result<Mqtt, String> {
        let login = self.login("test");
        let client_id = contracts::login::client_id(login.as_ref().map(|(u, _)| u.as_str()), id);
        let credentials = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        Mqtt::connect(self.port, &client_id, credentials)
    }

    /// Starts the broker and waits until it accepts connections and its
    /// keeper has published stats.
    pub fn broker(&self, extra: &[&str]) -> Proc {
        let mut args = vec![
            "broker".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.port),
            "--data-dir".into(),
            self.path("broker").display().to_string(),
        ];
        args.extend(self.key_args("broker", "broker"));
        args.extend(extra.iter().map(|s| s.to_string()));
        let p = Proc::spawn("broker", &args, &self.path("broker.log"));
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        wait_for(Duration::from_secs(20), "the broker to listen", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        });
        self.wait_keeper(extra);
        p
    }

    /// Waits until the keeper has subscribed: it publishes its retained DLQ
    /// listing right after, so a put sent from then on is not lost.
    fn wait_keeper(&self, broker_args: &[&str]) {
        let credentials = self.login("test").or_else(|| {
            broker_args
                .iter()
                .position(|a| *a == "--users")
                .and_then(|i| broker_args.get(i + 1))
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|text| {
                    text.lines()
                        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                        .min()
                        .and_then(|l| l.split_once(':'))
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                })
        });
        let creds = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        // Under the login: the broker pins logins to their client ids.
        let probe_id = contracts::login::client_id(creds.map(|(u, _)| u), "test-keeper-probe");
        let mut probe = None;
        wait_for(
            Duration::from_secs(20),
            "the broker to accept MQTT connections",
            || {
                probe = Mqtt::connect(self.port, &probe_id, creds).ok();
                probe.is_some()
            },
        );
        let mqtt = probe.expect("connected");
        mqtt.subscribe("pizza/q/kitchen/dlq/items");
        mqtt.expect("pizza/q/kitchen/dlq/items", Duration::from_secs(20), |_| true);
        // The event log has its own connection: it answers a query once it
        // has subscribed (its put subscription comes first), so an event
        // published from then on is not dropped for want of a subscriber.
        mqtt.subscribe("pizza/log/reply/test-keeper-probe");
        let answered = (0..40).any(|i| {
            let query = serde_json::json!({"request_id": format!("probe-{i}"), "order_id": "none"});
            mqtt.publish("pizza/log/query/test-keeper-probe", query.to_string());
            mqtt.wait(
                "pizza/log/reply/test-keeper-probe",
                Duration::from_millis(500),
                |_| true,
            )
            .is_ok()
        });
        assert!(answered, "the broker's event log did not answer within 20 s");
    }

    fn node_args(&self, cmd: &str, id: &str) -> Vec<String> {
        let mut args = vec![
            cmd.to_string(),
            "--id".into(),
            id.into(),
            "--broker".into(),
            self.broker_url_for(id),
            "--data-dir".into(),
            self.path(id).display().to_string(),
        ];
        args.extend(self.key_args(cmd, id));
        args
    }

    /// `pizza-node consume --id ID ARGS`.
    pub fn consumer(&self, id: &str, extra: &[&str]) -> Proc {
        let mut args = self.node_args("consume", id);
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(id, &args, &self.path(&format!("{id}.log")))
    }

    /// `pizza-node put --id ID ARGS`.
    pub fn producer(&self, id: &str, extra: &[&str]) -> Proc {
        let mut args = self.node_args("put", id);
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(id, &args, &self.path(&format!("{id}.log")))
    }
}

/// A field of a JSON line as a string.
pub fn s(v: &serde_json::Value, field: &str) -> String {
    v.get(field)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

/// A raw MQTT client for poking the broker from a test.
pub struct Mqtt {
    pub client: rumqttc::Client,
    rx: std::sync::mpsc::Receiver<Result<rumqttc::Event, String>>,
    /// Messages received but not yet matched by an `expect`.
    backlog: std::cell::RefCell<Vec<(String, serde_json::Value)>>,
    /// QoS 1 publishes written and not yet acknowledged by the broker.
    unacked: std::sync::Arc<std::sync::atomic::AtomicIsize>,
}

impl Mqtt {
    /// Connects (clean session) as `id`, with optional credentials; returns
    /// the CONNACK outcome: Ok once connected, Err with the broker's refusal.
    pub fn connect(port: u16, id: &str, credentials: Option<(&str, &str)>) -> Result<Mqtt, String> {
        let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(512 * 1024, 512 * 1024);
        if let Some((u, p)) = credentials {
            opts.set_credentials(u, p);
        }
        let (client, mut connection) = rumqttc::Client::new(opts, 100);
        let (tx, rx) = std::sync::mpsc::channel();
        let unacked = std::sync::Arc::new(std::sync::atomic::AtomicIsize::new(0));
        let counter = unacked.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            for event in connection.iter() {
                if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = &event {
                    counter.fetch_sub(1, SeqCst);
                }
                let stop = event.is_err();
                if tx.send(event.map_err(|e| e.to_string())).is_err() || stop {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => {
                    return Ok(Mqtt {
                        client,
                        rx,
                        backlog: Default::default(),
                        unacked,
                    })
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("no CONNACK within 10 s".into()),
            }
        }
    }

    /// Subscribes at QoS 1.
    pub fn subscribe(&self, filter: &str) {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .expect("subscribe");
    }

    /// Publishes at QoS 1.
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.try_publish(topic, payload).expect("publish");
    }

    /// Publishes at QoS 1; Err when the connection is already gone (a
    /// broker that closed it after a denied publish, say).
    pub fn try_publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<(), String> {
        self.unacked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.into())
            .map_err(|e| e.to_string())
    }

    /// Publishes at QoS 1, retained: what the broker hands every later
    /// subscriber of `topic` first (a heartbeat, say).
    pub fn publish_retained(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.unacked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload.into())
            .expect("publish");
    }

    /// Disconnects cleanly once the broker has acknowledged everything
    /// published so far: unlike a drop, which can lose the last publishes (a
    /// final ack, say) still queued in the client or on the wire.
    pub fn close(self) {
        wait_for(
            Duration::from_secs(10),
            "the broker to acknowledge every publish",
            || self.unacked.load(std::sync::atomic::Ordering::SeqCst) <= 0,
        );
        let _ = self.client.disconnect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => {
                    return
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Every message received so far and not yet matched by an `expect`,
    /// in arrival order, without waiting.
    pub fn take_all(&self) -> Vec<(String, serde_json::Value)> {
        let mut out = std::mem::take(&mut *self.backlog.borrow_mut());
        while let Ok(event) = self.rx.try_recv() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        out.push((p.topic.clone(), v));
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("MQTT connection failed: {e}"),
            }
        }
        out
    }

    /// Waits for a message on `topic` whose JSON satisfies `check`.
    pub fn expect(
        &self,
        topic: &str,
        limit: Duration,
        check: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait(topic, limit, check).unwrap_or_else(|seen| {
            panic!("nothing matching arrived on {topic} within {limit:?}; saw {seen:?}")
        })
    }

    /// [`expect`](Self::expect), or what else arrived on `topic` when
    /// nothing matching did in time.
    pub fn wait(
        &self,
        topic: &str,
        limit: Duration,
        mut check: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, Vec<serde_json::Value>> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        {
            let mut backlog = self.backlog.borrow_mut();
            if let Some(i) = backlog.iter().position(|(t, v)| t == topic && check(v)) {
                return Ok(backlog.remove(i).1);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&p.payload) {
                        if p.topic == topic && check(&v) {
                            return Ok(v);
                        }
                        if p.topic == topic {
                            seen.push(v.clone());
                        }
                        self.backlog.borrow_mut().push((p.topic.clone(), v));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("MQTT connection failed while waiting for {topic}: {e}"),
                Err(_) => return Err(seen),
            }
        }
    }
}

impl World {
    /// `pizza-node ROLE --id ID ... EXTRA`, logging JSON to `<id>.log`.
    pub fn node(&self, role: &str, id: &str, extra: &[&str]) -> Proc {
        let mut args = self.node_args(role, id);
        args.extend(["--log-format".to_string(), "json".to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(id, &args, &self.path(&format!("{id}.log")))
    }

    /// Log lines of node `id` whose message is `message` (JSON logs).
    pub fn log_events(&self, id: &str, message: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path(&format!("{id}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }
}

/// A blocking HTTP client for tests.
pub struct Http {
    client: reqwest::blocking::Client,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }
}

impl Http {
    /// The client itself, for requests with headers of their own.
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// GET; (status, JSON body or Null).
    pub fn get(&self, url: &str) -> (u16, serde_json::Value) {
        match self.client.get(url).send() {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(serde_json::Value::Null)),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// POST a JSON body; (status, JSON body or Null).
    pub fn post(&self, url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        match self.client.post(url).json(body).send() {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(serde_json::Value::Null)),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// DELETE; (status, JSON body or Null).
    pub fn delete(&self, url: &str) -> (u16, serde_json::Value) {
        match self.client.delete(url).send() {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(serde_json::Value::Null)),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// POST raw bytes with a content type.
    pub fn post_raw(&self, url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        match self
            .client
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
        {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(serde_json::Value::Null)),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// Waits until GET `url` answers 200.
    pub fn wait_up(&self, url: &str) {
        wait_for(Duration::from_secs(30), &format!("{url} to answer"), || {
            self.get(url).0 == 200
        });
    }
}

impl World {
    /// Waits until the keeper's stats list every one of `consumers` as
    /// online on `queue`, so work put from now on can reach them all.
    pub fn wait_consumers(&self, queue: &str, consumers: &[&str]) {
        let mqtt = Mqtt::connect(self.port, "test-consumer-probe", None).expect("connects");
        mqtt.subscribe("pizza/q/stats");
        mqtt.expect("pizza/q/stats", Duration::from_secs(30), |v| {
            v["queues"].as_array().is_some_and(|qs| {
                qs.iter().any(|q| {
                    q["name"] == queue
                        && consumers.iter().all(|id| {
                            q["consumers"]
                                .as_array()
                                .is_some_and(|cs| cs.iter().any(|c| c["id"] == *id && c["online"] == true))
                        })
                })
            })
        });
    }
}

/// An external broker and a standalone keeper: the platform on any MQTT
/// broker (`pizza-node keeper`), here Debian's Mosquitto.
impl World {
    /// Starts Mosquitto on this world's port (no persistence: a restart
    /// forgets every session and retained message) and waits until it
    /// accepts connections.
    pub fn mosquitto(&self) -> Proc {
        let program = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is installed (.ci/run installs it: apt-get install -y mosquitto)");
        let conf = self.path("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                // `user root`: as root, Mosquitto would drop to user
                // `mosquitto`, who cannot write the log in our temp dir.
                "listener {} 127.0.0.1\nuser root\npersistence false\n\
                 max_queued_messages 0\nlog_dest file {}\n{}",
                self.port,
                self.path("mosquitto.log").display(),
                self.mosquitto_access(),
            ),
        )
        .expect("a mosquitto config");
        let p = Proc::program("mosquitto", program, &["-c".into(), conf.display().to_string()]);
        wait_for(
            Duration::from_secs(20),
            "mosquitto to accept MQTT connections",
            || self.try_test_client("mosquitto-probe").is_ok(),
        );
        p
    }

    /// Mosquitto's access settings: anyone, or (with logins) the logins of
    /// `nodes.txt` (`ID:ROLE` lines, written by the test) and `test` (role
    /// control), each limited by the ACL `pizza-node acl` makes for them.
    fn mosquitto_access(&self) -> String {
        if !self.logins {
            return "allow_anonymous true\n".into();
        }
        let nodes = std::fs::read_to_string(self.path("nodes.txt")).expect("nodes.txt lists the nodes");
        let mut nodes: Vec<&str> = nodes.lines().filter(|l| !l.is_empty()).collect();
        nodes.push("test:control");
        let passwords = self.path("mosquitto.passwd");
        let lines: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.split_once(':'))
            .filter_map(|(id, _)| self.login(id))
            .map(|(u, p)| format!("{u}:{p}\n"))
            .collect();
        std::fs::write(&passwords, lines.concat()).expect("a password file");
        let hashed = std::process::Command::new("mosquitto_passwd")
            .arg("-U")
            .arg(&passwords)
            .status()
            .expect("mosquitto_passwd runs (package mosquitto)");
        assert!(hashed.success(), "mosquitto_passwd -U hashed the passwords");
        let mut acl = std::process::Command::new(pizza_node());
        acl.arg("acl");
        for n in &nodes {
            acl.arg("--node").arg(n);
        }
        let out = acl.output().expect("pizza-node acl runs");
        assert!(
            out.status.success(),
            "pizza-node acl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let acl_file = self.path("mosquitto.acl");
        std::fs::write(&acl_file, &out.stdout).expect("an acl file");
        format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\n",
            passwords.display(),
            acl_file.display()
        )
    }

    /// `pizza-node keeper --id ID` on this world's broker, keeping its data
    /// in `<data>`; waits until it serves when `wait` (a standby keeper
    /// does not).
    pub fn keeper(&self, id: &str, data: &str, wait: bool) -> Proc {
        let args: Vec<String> = [
            "keeper".to_string(),
            "--id".into(),
            "keeper".into(),
            "--broker".into(),
            self.broker_url_for("keeper"),
            "--data-dir".into(),
            self.path(data).display().to_string(),
            "--log-format".into(),
            "json".into(),
        ]
        .into();
        let p = Proc::spawn(id, &args, &self.path(&format!("{id}.log")));
        if wait {
            self.wait_keeper(&[]);
        }
        p
    }
}

impl World {
    /// `pizza-node ROLE --id ID --data-dir ... ARGS` inside network
    /// namespace `ns` (a host of [`net::Net`]), logging JSON to `<id>.log`.
    pub fn node_in(&self, ns: &str, role: &str, id: &str, args: &[String]) -> Proc {
        let log = self.path(&format!("{id}.log"));
        let mut all = vec![
            "netns".to_string(),
            "exec".into(),
            ns.into(),
            pizza_node().into(),
            role.into(),
            "--id".into(),
            id.into(),
            "--data-dir".into(),
            self.path(id).display().to_string(),
            "--log-format".into(),
            "json".into(),
            "--log-file".into(),
            log.display().to_string(),
        ];
        all.extend(args.iter().cloned());
        // `ip netns exec` execs the command: the pid is the node's own, so
        // kill -9 hits the node.
        Proc::program(id, "ip", &all)
    }
}
