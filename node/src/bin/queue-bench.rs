//! `queue-bench`: how fast the embedded broker and the durable queue are.
//!
//! One run, one process: it starts the broker (rumqttd + keeper) on a free
//! port with a temporary data directory, then measures
//!
//! 1. raw MQTT QoS 1 throughput: one publisher, one subscriber, 100-byte
//!    payloads, through the embedded broker;
//! 2. durable queue throughput: put -> (group-committed) confirm -> deliver
//!    -> ack, one producer and one consumer;
//! 3. put -> deliver latency at a paced rate (p50 / p99);
//! 4. the process's resident memory afterwards.
//!
//! `cargo run --release -p node --bin queue-bench [-- --raw N --queue N --rate R --secs S]`;
//! `-- --stream-only --queue N` runs only the event stream (for profiling
//! the event log with `perf record`); `-- --compare-signed N` runs it N
//! times each unsigned and signed, alternating, and prints the medians.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use contracts::Envelope;
use node::config::BrokerAddr;
use node::{Node, NodeConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use time::OffsetDateTime;

#[derive(Debug, Parser)]
#[command(about = "Measure a broker (the embedded one, or --broker) and the durable work queue")]
struct Args {
    /// Messages for the raw MQTT run.
    #[arg(long, default_value_t = 200_000)]
    raw: u64,
    /// Messages for the queue throughput run.
    #[arg(long, default_value_t = 50_000)]
    queue: u64,
    /// Puts per batch (one outbox flush each) in the throughput run.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Paced rate (messages/s) for the latency run.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// The thin consumer asks for one delivery per MQTT message (as
    /// consumers did before delivery batches), for comparison.
    #[arg(long)]
    single_deliveries: bool,
    /// Run against this broker (mqtt://HOST:PORT, e.g. Mosquitto) with the
    /// keeper and the event log in this process, instead of the embedded one.
    #[arg(long)]
    broker: Option<String>,
    /// Sign every message and check every signature (Ed25519), as the
    /// control room's platform does; compare with a run without.
    #[arg(long)]
    signed: bool,
    /// Run only the thin-client event stream (for profiling the event log).
    #[arg(long)]
    stream_only: bool,
    /// Run N rounds, each once unsigned and once `--signed` (each run a
    /// fresh process, broker and data dir), and print every path's median
    /// of both and what signing costs: the comparison the trust issue
    /// asks for, on a machine whose runs vary by a fifth.
    #[arg(long, value_name = "N")]
    compare_signed: Option<u32>,
    /// End with one `figures:` line (name=value, msg/s), for
    /// `--compare-signed` to read.
    #[arg(long, hide = true)]
    figures: bool,
}

/// What one run measured, by path (msg/s or events/s), in the order run.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures(Vec<(String, f64)>);

impl Figures {
    fn add(&mut self, name: &str, value: f64) {
        self.0.push((name.to_string(), value));
    }

    /// The `figures:` line.
    fn line(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v:.0}")).collect();
        format!("figures: {}", parts.join(" "))
    }

    /// Reads a `figures:` line back; `None` for any other line.
    fn parse(line: &str) -> Option<Figures> {
        let rest = line.strip_prefix("figures: ")?;
        rest.split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .map(Figures)
    }
}

/// Every path's median unsigned and signed, and how many fewer per cent
/// signed did, from runs of both kinds (paths in the order first seen).
fn compare(unsigned: &[Figures], signed: &[Figures]) -> Vec<(String, f64, f64, f64)> {
    let median = |runs: &[Figures], name: &str| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter_map(|f| f.0.iter().find(|(n, _)| n == name).map(|(_, x)| *x))
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let names: Vec<String> = unsigned
        .first()
        .map(|f| f.0.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    names
        .into_iter()
        .map(|n| {
            let (u, s) = (median(unsigned, &n), median(signed, &n));
            let fewer = (1.0 - s / u) * 100.0;
            (n, u, s, fewer)
        })
        .collect()
}

/// `--compare-signed N`: this binary run 2N times, alternating.
fn compare_signed(args: &Args, rounds: u32) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut common: Vec<String> = vec![
        format!("--raw={}", args.raw),
        format!("--queue={}", args.queue),
        format!("--batch={}", args.batch),
        format!("--rate={}", args.rate),
        format!("--secs={}", args.secs),
        "--figures".into(),
    ];
    if args.single_deliveries {
        common.push("--single-deliveries".into());
    }
    if args.stream_only {
        common.push("--stream-only".into());
    }
    if let Some(b) = &args.broker {
        common.push(format!("--broker={b}"));
    }
    let (mut unsigned, mut signed) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for sign in [false, true] {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(&common);
            if sign {
                cmd.arg("--signed");
            }
            let out = cmd.stderr(std::process::Stdio::inherit()).output()?;
            anyhow::ensure!(
                out.status.success(),
                "round {round} (signed: {sign}) failed: {}",
                out.status
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let figures = text
                .lines()
                .find_map(Figures::parse)
                .context("a run printed no figures line")?;
            println!(
                "round {round} {}: {}",
                if sign { "signed  " } else { "unsigned" },
                figures.line()
            );
            if sign { &mut signed } else { &mut unsigned }.push(figures);
        }
    }
    println!("medians of {rounds} alternated rounds:");
    println!(
        "{:<10} {:>12} {:>12} {:>8}",
        "path", "unsigned", "signed", "fewer"
    );
    for (name, u, s, fewer) in compare(&unsigned, &signed) {
        println!("{name:<10} {u:>12.0} {s:>12.0} {fewer:>7.1}%");
    }
    println!("(raw involves no signing: its difference is this machine's noise)");
    Ok(())
}

/// With `--signed`: where every bench client's key and the trust file are.
/// Set once in `main`; a static so the runs below need no extra parameter.
static KEYS: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Client `id`'s keys (made on first use), or none without `--signed`.
fn security(id: &str, role: &str) -> anyhow::Result<node::runtime::security::Security> {
    let Some(dir) = KEYS.get() else {
        return Ok(Default::default());
    };
    let trust = dir.join("trust.json");
    let key = broker::trust::make_key(dir, id, contracts::trust::role_for(role), &trust)?;
    Ok(node::runtime::security::Security::load(
        Some(&key),
        Some(&trust),
        id,
        role,
    )?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(node::ports::free_port()?)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

// The platform's allocator, so that this measures what the nodes run.
#[global_allocator]
static ALLOCATOR: node::allocator::Allocator = node::allocator::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    node::allocator::tune();
    let args = Args::parse();
    if let Some(rounds) = args.compare_signed {
        return compare_signed(&args, rounds);
    }
    // Warnings and errors only (RUST_LOG overrides), so the figures stay readable.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rumqttd=off")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("queue-bench-{}-{port}", std::process::id()));
    if args.signed {
        let _ = KEYS.set(dir.join("keys"));
        // Every client the runs use, listed before the broker reads the file.
        for id in [
            "bench-thin-producer",
            "bench-thin-consumer",
            "bench-stream-producer",
            "bench-producer",
            "bench-consumer",
            "bench-stream-sub",
        ] {
            security(id, "producer")?;
        }
        println!("queue-bench: signed (Ed25519) and checked, as the control room's platform runs");
    }
    let result = run(&args, port, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, port: u16, dir: &std::path::Path) -> anyhow::Result<()> {
    let at = match &args.broker {
        Some(url) => {
            let at: BrokerAddr = url.parse()?;
            // The keeper and the event log alone, as clients of that broker.
            let keeper = broker::KeeperRun {
                host: at.host.clone(),
                port: at.port,
                credentials: at.credentials.clone(),
                keeping: keeping(dir.join("keeper"))?,
            };
            tokio::spawn(async move {
                if let Err(e) = broker::serve_keeper(keeper).await {
                    eprintln!("keeper failed: {e}");
                }
            });
            println!(
                "queue-bench: broker {url}, keeper in this process, data in {}",
                dir.display()
            );
            at
        }
        None => {
            embedded(port, dir).await?;
            BrokerAddr {
                host: "127.0.0.1".into(),
                port,
                credentials: None,
            }
        }
    };
    run_on(args, &at, dir).await
}

/// What the bench's keeper keeps in `data_dir`: the default policy, a
/// 15 s lease, signed as the broker when the bench runs signed.
fn keeping(data_dir: std::path::PathBuf) -> anyhow::Result<broker::Keeping> {
    let keys = security(contracts::trust::role::BROKER, contracts::trust::role::BROKER)?;
    Ok(broker::Keeping {
        data_dir,
        prefix: "pizza".into(),
        policy: broker::Policy::default(),
        lease: Duration::from_secs(15),
        trust: keys.trust,
        signer: keys.signer,
    })
}

/// Starts `pizza-node broker`'s parts in this process on `port`.
async fn embedded(port: u16, dir: &std::path::Path) -> anyhow::Result<()> {
    let opts = broker::BrokerOptions {
        server: broker::ServerOptions {
            listen: format!("127.0.0.1:{port}").parse()?,
            listen_v5: None,
            console: None,
            logins: None,
        },
        keeping: keeping(dir.join("broker"))?,
    };
    tokio::spawn(async move {
        if let Err(e) = broker::serve(opts).await {
            eprintln!("broker failed: {e}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the embedded broker did not start listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "queue-bench: embedded broker on 127.0.0.1:{port}, data in {}",
        dir.display()
    );
    Ok(())
}

async fn run_on(args: &Args, at: &BrokerAddr, dir: &std::path::Path) -> anyhow::Result<()> {
    let mut figures = Figures::default();
    let done = |figures: &Figures| {
        if args.figures {
            println!("{}", figures.line());
        }
    };
    if args.stream_only {
        let stream = thin_stream(at, args.queue)
            .await
            .context("thin-client event stream run")?;
        println!(
            "durable event stream, thin MQTT clients: {stream:>9.0} events/s ({} events)",
            args.queue
        );
        figures.add("stream", stream);
        done(&figures);
        return Ok(());
    }
    let raw = raw_mqtt(at, args.raw).await.context("raw MQTT run")?;
    figures.add("raw", raw);
    println!(
        "raw MQTT QoS1, 100 B, 1 pub -> 1 sub: {:>9.0} msg/s ({} msgs)",
        raw, args.raw
    );

    let (p50, p99) = raw_latency(at, args.rate, args.secs)
        .await
        .context("raw latency run")?;
    println!(
        "raw MQTT QoS1 pub->sub latency at {} msg/s: p50 {:.2} ms, p99 {:.2} ms",
        args.rate, p50, p99
    );

    let thin = thin_queue(at, args.queue, !args.single_deliveries)
        .await
        .context("thin-client queue run")?;
    figures.add("thin", thin);
    println!(
        "durable queue, thin MQTT clients (no client outbox): {:>9.0} msg/s ({} msgs) = {:.1}% of raw",
        thin,
        args.queue,
        thin / raw * 100.0
    );

    let stream = thin_stream(at, args.queue)
        .await
        .context("thin-client event stream run")?;
    figures.add("stream", stream);
    println!(
        "durable event stream, thin MQTT clients (put -> confirm, subscribe -> ack): {:>9.0} events/s ({} events) = {:.1}% of raw",
        stream,
        args.queue,
        stream / raw * 100.0
    );

    let broker_addr = at.clone();
    let start = |id: &str| -> anyhow::Result<_> {
        Ok(Node::start(NodeConfig {
            id: id.into(),
            role: "producer".into(),
            broker: broker_addr.clone(),
            data_dir: dir.join(id),
            prefix: "pizza".into(),
            security: security(id, "producer")?,
        }))
    };
    let producer_node = start("bench-producer")?.await?;
    let consumer_node = start("bench-consumer")?.await?;

    let queued = queue_throughput(&producer_node, &consumer_node, args.queue, args.batch).await?;
    figures.add("node", queued);
    println!(
        "durable queue via node runtime (sled outbox): {:>9.0} msg/s ({} msgs, put batches of {})",
        queued, args.queue, args.batch
    );
    println!("node runtime queue / raw: {:.1}%", queued / raw * 100.0);

    let (p50, p99, n) = latency(&producer_node, &consumer_node, args.rate, args.secs).await?;
    println!(
        "put->deliver latency at {} msg/s: p50 {:.2} ms, p99 {:.2} ms ({n} msgs)",
        args.rate, p50, p99
    );
    println!("process RSS (broker + keeper + both nodes): {:.0} MiB", rss_mib());
    done(&figures);
    Ok(())
}

/// One publisher, one subscriber, QoS 1, 100-byte payloads.
async fn raw_mqtt(at: &BrokerAddr, count: u64) -> anyhow::Result<f64> {
    let mut sub_opts = MqttOptions::new("bench-raw-sub", &at.host, at.port);
    sub_opts
        .set_inflight(1_000)
        .set_keep_alive(Duration::from_secs(30));
    let (sub, mut sub_loop) = AsyncClient::new(sub_opts, 10_000);
    sub.subscribe("bench/raw", QoS::AtLeastOnce).await?;
    // Wait for the SUBACK before publishing.
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_loop.poll().await? {
            break;
        }
    }
    // The publisher stays at most WINDOW ahead of the subscriber: rumqttd
    // keeps only a bounded log per topic (see broker::server), so an
    // unbounded flood would measure loss, not throughput.
    const WINDOW: u64 = 5_000;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let got = received.clone();
    let receiver = tokio::spawn(async move {
        while got.load(std::sync::atomic::Ordering::Relaxed) < count {
            if let Ok(Event::Incoming(Packet::Publish(_))) = sub_loop.poll().await {
                got.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Instant::now()
    });
    let mut pub_opts = MqttOptions::new("bench-raw-pub", &at.host, at.port);
    pub_opts
        .set_inflight(1_000)
        .set_keep_alive(Duration::from_secs(30));
    let (publisher, mut pub_loop) = AsyncClient::new(pub_opts, 10_000);
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let payload = vec![b'x'; 100];
    let started = Instant::now();
    for sent in 0..count {
        while sent - received.load(std::sync::atomic::Ordering::Relaxed).min(sent) > WINDOW {
            tokio::task::yield_now().await;
        }
        publisher
            .publish("bench/raw", QoS::AtLeastOnce, false, payload.clone())
            .await?;
    }
    let done = tokio::time::timeout(Duration::from_secs(120), receiver).await??;
    Ok(count as f64 / done.duration_since(started).as_secs_f64())
}

/// Paced QoS 1 publishes; latency from publish to the subscriber's receipt.
async fn raw_latency(at: &BrokerAddr, rate: u64, secs: u64) -> anyhow::Result<(f64, f64)> {
    let total = rate * secs;
    let mut sub_opts = MqttOptions::new("bench-lat-sub", &at.host, at.port);
    sub_opts.set_keep_alive(Duration::from_secs(30));
    let (sub, mut sub_loop) = AsyncClient::new(sub_opts, 10_000);
    sub_loop.network_options.set_tcp_nodelay(true);
    sub.subscribe("bench/lat", QoS::AtLeastOnce).await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_loop.poll().await? {
            break;
        }
    }
    let receiver = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        while (samples.len() as u64) < total {
            if let Ok(Event::Incoming(Packet::Publish(p))) = sub_loop.poll().await {
                let sent = u128::from_le_bytes(p.payload[..16].try_into().unwrap_or([0; 16]));
                samples.push((wall_ns() - sent) as f64 / 1e6);
            }
        }
        samples
    });
    let mut pub_opts = MqttOptions::new("bench-lat-pub", &at.host, at.port);
    pub_opts.set_keep_alive(Duration::from_secs(30));
    let (publisher, mut pub_loop) = AsyncClient::new(pub_opts, 10_000);
    pub_loop.network_options.set_tcp_nodelay(true);
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for _ in 0..total {
        tick.tick().await;
        let mut payload = wall_ns().to_le_bytes().to_vec();
        payload.resize(100, b'x');
        publisher
            .publish("bench/lat", QoS::AtLeastOnce, false, payload)
            .await?;
    }
    let mut samples = tokio::time::timeout(Duration::from_secs(60), receiver).await??;
    samples.sort_by(f64::total_cmp);
    Ok((percentile(&samples, 0.50), percentile(&samples, 0.99)))
}

fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The queue protocol spoken by bare rumqttc clients: the producer keeps no
/// outbox and the consumer acks in batches. This measures the keeper itself
/// (durable confirms, credit, acks), not the node runtime's client side.
async fn thin_queue(at: &BrokerAddr, count: u64, batch: bool) -> anyhow::Result<f64> {
    use contracts::queue::{Ack, AckMessage, Credit, Outcome};
    #[derive(serde::Deserialize)]
    struct DeliveryId {
        delivery_id: String,
    }
    /// A deliver message, one or a batch (the consumer asks for batches).
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum DeliveryIds {
        Batch { deliveries: Vec<DeliveryId> },
        One(DeliveryId),
    }
    let client = |id: &str| thin_client(at, id);
    let (consumer, mut consumer_loop) = client("bench-thin-consumer");
    let seal = security("bench-thin-consumer", "producer")?;
    consumer
        .subscribe("pizza/q/bench-thin/deliver/bench-thin-consumer", QoS::AtLeastOnce)
        .await?;
    let credit = Credit {
        credit: 1_000,
        incarnation: "thin-1".into(),
        batch,
        held: Vec::new(),
        settled: Vec::new(),
    };
    consumer
        .publish(
            "pizza/q/bench-thin/credit/bench-thin-consumer",
            QoS::AtLeastOnce,
            false,
            seal.seal_for_brokers(serde_json::to_vec(&credit)?),
        )
        .await?;
    // rumqttc's poll is not cancel-safe, so one task polls and forwards ids;
    // the acker waits on the channel (which is) with a timeout.
    let (ids_tx, mut ids) = tokio::sync::mpsc::unbounded_channel();
    let polling = tokio::spawn(async move {
        while let Ok(event) = consumer_loop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let ids = match serde_json::from_slice::<DeliveryIds>(&p.payload) {
                    Ok(DeliveryIds::Batch { deliveries }) => deliveries,
                    Ok(DeliveryIds::One(d)) => vec![d],
                    Err(_) => continue,
                };
                if ids.into_iter().any(|d| ids_tx.send(d.delivery_id).is_err()) {
                    break;
                }
            }
        }
    });
    let consuming = tokio::spawn(async move {
        let mut done = 0u64;
        let mut acks = Vec::new();
        while done < count {
            let next = tokio::time::timeout(Duration::from_millis(2), ids.recv()).await;
            let paused = next.is_err();
            match next {
                Ok(Some(delivery_id)) => acks.push(Ack {
                    delivery_id,
                    outcome: Outcome::Done,
                    reason: None,
                }),
                Ok(None) => anyhow::bail!("the thin consumer lost its connection"),
                Err(_) => {}
            }
            // Ack in batches: at 200, or when the stream pauses.
            if acks.len() >= 200 || (paused && !acks.is_empty()) {
                done += acks.len() as u64;
                let msg = AckMessage::Batch {
                    acks: std::mem::take(&mut acks),
                };
                let body = seal.seal_for_brokers(serde_json::to_vec(&msg)?);
                consumer
                    .publish(
                        "pizza/q/bench-thin/ack/bench-thin-consumer",
                        QoS::AtLeastOnce,
                        false,
                        body,
                    )
                    .await?;
            }
        }
        anyhow::Ok(Instant::now())
    });

    let (started, confirmed) = put_all(at, "bench-thin-producer", "pizza/q/bench-thin", count).await?;
    let acked = tokio::time::timeout(Duration::from_secs(300), consuming).await???;
    polling.abort();
    println!(
        "  (thin: all confirmed in {:.2} s, all acked in {:.2} s)",
        confirmed.duration_since(started).as_secs_f64(),
        acked.duration_since(started).as_secs_f64()
    );
    Ok(count as f64 / acked.duration_since(started).as_secs_f64())
}

/// One producer putting events to the log (at most 10,000 unconfirmed),
/// one durable subscriber reading them back and acknowledging each batch:
/// events/s from the first put to the last event read.
async fn thin_stream(at: &BrokerAddr, count: u64) -> anyhow::Result<f64> {
    use contracts::stream::{Start, StreamAck, StreamBatch, Subscribe};
    let client = |id: &str| thin_client(at, id);
    let (sub, mut sub_loop) = client("bench-stream-sub");
    let seal = security("bench-stream-sub", "producer")?;
    sub.subscribe("pizza/log/deliver/bench-stream-sub", QoS::AtLeastOnce)
        .await?;
    let subscribe = Subscribe {
        name: "bench".into(),
        kinds: vec![],
        // The log is empty when this runs (a fresh data dir; nothing before
        // it publishes events). From the beginning, not from the end, so an
        // event appended before the subscribe lands is not skipped.
        start: Start::Beginning,
        durable: true,
        credit: 5_000,
        session: "bench-1".into(),
    };
    let subscribe = seal.seal_for_brokers(serde_json::to_vec(&subscribe)?);
    let reading = tokio::spawn(async move {
        let mut read = 0u64;
        // Repeated, as the node runtime does: the first may come before the
        // log listens, and a repeat with the same session only renews credit.
        let mut renew = tokio::time::interval(Duration::from_secs(1));
        while read < count {
            let event = tokio::select! {
                event = sub_loop.poll() => event,
                _ = renew.tick() => {
                    sub.try_publish("pizza/log/subscribe/bench-stream-sub", QoS::AtLeastOnce, false, subscribe.clone())?;
                    continue;
                }
            };
            let Ok(event) = event else {
                anyhow::bail!("the thin subscriber lost its connection");
            };
            if let Event::Incoming(Packet::Publish(p)) = event {
                let Ok(batch) = serde_json::from_slice::<StreamBatch>(&p.payload) else {
                    continue;
                };
                read += batch.events.len() as u64;
                let ack = StreamAck {
                    name: "bench".into(),
                    position: batch.through,
                };
                sub.try_publish(
                    "pizza/log/ack/bench-stream-sub",
                    QoS::AtLeastOnce,
                    false,
                    seal.seal_for_brokers(serde_json::to_vec(&ack)?),
                )?;
            }
        }
        tokio::spawn(async move { while sub_loop.poll().await.is_ok() {} });
        anyhow::Ok(Instant::now())
    });

    let (started, confirmed) = put_all(at, "bench-stream-producer", "pizza/log", count).await?;
    let read = tokio::time::timeout(Duration::from_secs(300), reading).await???;
    println!(
        "  (stream: all confirmed in {:.2} s, all read in {:.2} s)",
        confirmed.duration_since(started).as_secs_f64(),
        read.duration_since(started).as_secs_f64()
    );
    Ok(count as f64 / read.duration_since(started).as_secs_f64())
}

/// A bench client: long keep-alive, a large in-flight window, no Nagle.
fn thin_client(at: &BrokerAddr, id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(id, &at.host, at.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1_000)
        .set_max_packet_size(512 * 1024, 512 * 1024);
    let (c, mut l) = AsyncClient::new(o, 10_000);
    l.network_options.set_tcp_nodelay(true);
    (c, l)
}

/// Puts `count` envelopes from `producer` on `<base>/put`, windowed, and
/// waits for their confirms on `<base>/confirm/<producer>`; returns when
/// the first went out and when the last was confirmed.
async fn put_all(
    at: &BrokerAddr,
    producer: &str,
    base: &str,
    count: u64,
) -> anyhow::Result<(Instant, Instant)> {
    // Tagged for the broker as a node's outbox tags it (contracts::mac).
    let trust = security(producer, "producer")?.trust;
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let e = envelope(i, producer);
            match &trust {
                Some(t) => t.tagged_json(&e).map(String::into_bytes),
                None => serde_json::to_vec(&e),
            }
        })
        .collect::<Result<_, _>>()?;
    // Let the consumer's credit and subscriptions land (a benchmark, not a
    // test: a short settle is enough here).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let confirm = format!("{base}/confirm/{producer}");
    put_windowed(at, producer, &format!("{base}/put"), &confirm, bodies).await
}

/// Publishes `bodies` on `put` as client `id`, keeping at most 10,000
/// unconfirmed (counted from the [`contracts::queue::Confirm`]s on
/// `confirm`), as a real producer's outbox does: rumqttd keeps only
/// ~10 MiB per topic filter (see broker::server), so a receiver that falls
/// further behind a flood loses messages, and this client has no outbox to
/// send them again; the run would then hang instead of measuring. Returns
/// when it started and when the last confirm came.
async fn put_windowed(
    at: &BrokerAddr,
    id: &str,
    put: &str,
    confirm: &str,
    bodies: Vec<Vec<u8>>,
) -> anyhow::Result<(Instant, Instant)> {
    use contracts::queue::Confirm;
    const WINDOW: u64 = 10_000;
    let count = bodies.len() as u64;
    let (producer, mut producer_loop) = thin_client(at, id);
    producer.subscribe(confirm, QoS::AtLeastOnce).await?;
    let confirmed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = confirmed.clone();
    let confirming = tokio::spawn(async move {
        let mut confirmed = 0u64;
        while confirmed < count {
            if let Ok(Event::Incoming(Packet::Publish(p))) = producer_loop.poll().await {
                if let Ok(c) = serde_json::from_slice::<Confirm>(&contracts::seal::open(&p.payload).body) {
                    confirmed += c.event_ids.len() as u64;
                    seen.store(confirmed, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        tokio::spawn(async move { while producer_loop.poll().await.is_ok() {} });
        Instant::now()
    });
    let started = Instant::now();
    for (sent, body) in bodies.into_iter().enumerate() {
        while sent as u64 >= confirmed.load(std::sync::atomic::Ordering::Relaxed) + WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        producer.publish(put, QoS::AtLeastOnce, false, body).await?;
    }
    let done = tokio::time::timeout(Duration::from_secs(300), confirming).await??;
    Ok((started, done))
}

fn envelope(n: u64, source: &str) -> Envelope {
    Envelope::new(
        "bench.message",
        format!("order-{n}"),
        1,
        "0af7651916cd43dd8448eb211c80319c",
        source,
        serde_json::json!({ "n": n }),
    )
}

/// Puts `count` messages in batches and waits until the consumer acked all.
async fn queue_throughput(producer: &Node, consumer: &Node, count: u64, batch: usize) -> anyhow::Result<f64> {
    let mut queue = consumer.consumer("bench", 1_000).await?;
    let acker = queue.acker();
    let counter = tokio::spawn(async move {
        let mut done = 0u64;
        while done < count {
            let Some(first) = queue.next().await else { break };
            let mut acks = vec![first.delivery_id];
            while let Some(d) = queue.try_next().await {
                acks.push(d.delivery_id);
            }
            done += acks.len() as u64;
            let acks = acks
                .into_iter()
                .map(|delivery_id| contracts::queue::Ack {
                    delivery_id,
                    outcome: contracts::queue::Outcome::Done,
                    reason: None,
                })
                .collect();
            acker.ack_many(acks).await?;
        }
        anyhow::Ok((Instant::now(), queue))
    });
    let q = producer.producer();
    let started = Instant::now();
    let mut n = 0;
    while n < count {
        let size = batch.min((count - n) as usize) as u64;
        let envelopes: Vec<Envelope> = (n..n + size).map(|i| envelope(i, producer.id())).collect();
        q.put_many("bench", &envelopes).await?;
        n += size;
    }
    let put_done = started.elapsed();
    tokio::time::timeout(Duration::from_secs(300), producer.link().outbox().drained()).await?;
    let confirmed = started.elapsed();
    let (finished, _queue) = tokio::time::timeout(Duration::from_secs(300), counter).await???;
    println!(
        "  (all put in {:.2} s, all confirmed in {:.2} s, all acked in {:.2} s)",
        put_done.as_secs_f64(),
        confirmed.as_secs_f64(),
        finished.duration_since(started).as_secs_f64()
    );
    Ok(count as f64 / finished.duration_since(started).as_secs_f64())
}

/// Puts one message at a time at `rate`; latency is put start -> delivery.
async fn latency(
    producer: &Node,
    consumer: &Node,
    rate: u64,
    secs: u64,
) -> anyhow::Result<(f64, f64, usize)> {
    let total = rate * secs;
    let mut queue = consumer.consumer("bench-latency", 100).await?;
    let acker = queue.acker();
    let collector = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        while (samples.len() as u64) < total {
            let Some(d) = queue.next().await else { break };
            let ms = (OffsetDateTime::now_utc() - d.envelope.occurred_at).as_seconds_f64() * 1_000.0;
            samples.push(ms);
            acker
                .ack(&d.delivery_id, contracts::queue::Outcome::Done, None)
                .await?;
        }
        anyhow::Ok(samples)
    });
    let q = producer.producer();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for i in 0..total {
        tick.tick().await;
        q.put("bench-latency", &envelope(i, producer.id())).await?;
    }
    let mut samples = tokio::time::timeout(Duration::from_secs(60), collector).await???;
    samples.sort_by(f64::total_cmp);
    Ok((
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[(&str, f64)]) -> Figures {
        Figures(values.iter().map(|(n, v)| (n.to_string(), *v)).collect())
    }

    #[test]
    fn a_figures_line_reads_back_and_nothing_else_does() {
        let f = run(&[("raw", 81000.0), ("stream", 29408.0)]);
        assert_eq!(f.line(), "figures: raw=81000 stream=29408");
        assert_eq!(Figures::parse(&f.line()), Some(f));
        assert_eq!(Figures::parse("raw MQTT QoS1: 81000 msg/s"), None);
        assert_eq!(Figures::parse("figures: raw=fast"), None);
    }

    #[test]
    fn the_comparison_takes_medians_per_path() {
        let unsigned = [
            run(&[("raw", 100.0), ("node", 20.0)]),
            run(&[("raw", 300.0), ("node", 22.0)]),
            run(&[("raw", 200.0), ("node", 24.0)]),
        ];
        let signed = [
            run(&[("raw", 200.0), ("node", 18.0)]),
            run(&[("raw", 200.0), ("node", 19.0)]),
        ];
        let c = compare(&unsigned, &signed);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].0.as_str(), c[0].1, c[0].2, c[0].3),
            ("raw", 200.0, 200.0, 0.0)
        );
        assert_eq!((c[1].0.as_str(), c[1].1, c[1].2), ("node", 22.0, 18.5));
        assert!((c[1].3 - 15.909).abs() < 0.01, "{}", c[1].3);
    }
}
