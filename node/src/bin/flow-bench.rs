//! `flow-bench`: time from `POST /orders` to `order.delivered`, end to end
//! through real processes (broker, payment, order, kitchen, delivery), with
//! prep and trip times set to 0.
//!
//! `cargo build --release -p node && cargo run --release -p node --bin flow-bench [-- --orders 1000 --rate 50 --connections 8]`
//!
//! `--connections N` keep-alive clients place the orders, together at
//! `--rate` per second (`--rate 0`: as fast as they can). It reports the
//! accepted orders/s while placing, the delivered orders/s from the first
//! POST to the last delivery, and POST -> delivered percentiles.
//!
//! It runs the `pizza-node` binary next to its own executable, on free
//! ports, with a temporary data directory, and stops every process it
//! started when it ends, fails, or is stopped (SIGINT, SIGTERM).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use contracts::trust::role;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `pizza-node keeper`, a broker in the trust file.
const KEEPER: &str = contracts::domain::Role::Keeper.as_str();

#[derive(Debug, Parser)]
#[command(about = "Measure POST /orders -> delivered through real processes")]
struct Args {
    /// Orders to place.
    #[arg(long, default_value_t = 1_000)]
    orders: usize,
    /// Orders per second, all connections together; 0: unpaced.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// Concurrent keep-alive HTTP clients placing orders.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Kitchens.
    #[arg(long, default_value_t = 2)]
    kitchens: usize,
    /// Ovens per kitchen: its credit. With prep 0 an oven is busy only for
    /// the round trip of ack and next delivery (~15 ms), so 16 ovens carry
    /// ~1,000/s per kitchen; fewer make the kitchens the bottleneck.
    #[arg(long, default_value_t = 16)]
    ovens: u32,
    /// Drivers: delivery's credit (the same reasoning as --ovens).
    #[arg(long, default_value_t = 32)]
    drivers: u32,
    /// Run on this broker (mqtt://HOST:PORT, e.g. Mosquitto) with
    /// `pizza-node keeper` beside it, instead of `pizza-node broker`.
    #[arg(long)]
    broker: Option<String>,
    /// Every node signs and checks (`--key`/`--trust`), as the control
    /// room's platform runs; compare with a run without it.
    #[arg(long)]
    signed: bool,
}

/// A child process killed when dropped.
struct Child9(Child);

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(node::ports::free_port()?)
}

fn spawn(bin: &Path, dir: &Path, args: &[String]) -> anyhow::Result<Child9> {
    let child = Command::new(bin)
        .args(args)
        .arg("--log-file")
        .arg(dir.join(format!("{}.log", args[2])))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}; build it first: cargo build --release -p node",
                bin.display()
            )
        })?;
    Ok(Child9(child))
}

async fn wait_up(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(url)
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
    {
        anyhow::ensure!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn stopped() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin: PathBuf = std::env::current_exe()?
        .parent()
        .context("the executable has no directory")?
        .join("pizza-node");
    let dir = std::env::temp_dir().join(format!("flow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // Dropping `run` (on a signal) drops its processes, which kills them.
    let result = tokio::select! {
        r = run(&args, &bin, &dir) => r,
        s = stopped() => Err(anyhow::anyhow!("stopped by {s}; every node it started was killed")),
    };
    match &result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(_) => eprintln!("logs kept in {}", dir.display()),
    }
    result
}

async fn run(args: &Args, bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let (mqtt, order, payment, delivery) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let broker = args
        .broker
        .clone()
        .unwrap_or_else(|| format!("mqtt://127.0.0.1:{mqtt}"));
    let at: node::config::BrokerAddr = broker.parse()?;
    // Every key is in the trust file before the first node reads it.
    let trust = dir.join("keys").join("trust.json");
    let kitchens: Vec<String> = (1..=args.kitchens.max(1))
        .map(|k| format!("kitchen-{k}"))
        .collect();
    let mut keys = std::collections::BTreeMap::new();
    if args.signed {
        let fixed = [
            (role::BROKER, role::BROKER),
            (KEEPER, role::BROKER),
            (role::PAYMENT, role::PAYMENT),
            (role::ORDER, role::ORDER),
            (role::DELIVERY, role::DELIVERY),
        ];
        let all = fixed
            .into_iter()
            .chain(kitchens.iter().map(|k| (k.as_str(), role::KITCHEN)));
        for (id, role) in all {
            let key = broker::trust::make_key(&dir.join("keys"), id, role, &trust)?;
            keys.insert(id.to_string(), key.display().to_string());
        }
    }
    let key_args = |id: &str| -> Vec<String> {
        match keys.get(id) {
            Some(key) => vec![
                "--key".into(),
                key.clone(),
                "--trust".into(),
                trust.display().to_string(),
            ],
            None => Vec::new(),
        }
    };
    let node = |role: &str, id: &str, extra: &[String]| -> Vec<String> {
        let mut a: Vec<String> = [role, "--id", id, "--broker", &broker, "--data-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(dir.join(id).display().to_string());
        a.extend_from_slice(extra);
        a.extend(key_args(id));
        a
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut procs = vec![if args.broker.is_some() {
        spawn(bin, dir, &node(KEEPER, KEEPER, &[]))?
    } else {
        spawn(
            bin,
            dir,
            &[
                role::BROKER.into(),
                "--id".into(),
                role::BROKER.into(),
                "--listen".into(),
                format!("127.0.0.1:{mqtt}"),
                "--data-dir".into(),
                dir.join(role::BROKER).display().to_string(),
            ]
            .into_iter()
            .chain(key_args(role::BROKER))
            .collect::<Vec<_>>(),
        )?
    }];
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect((at.host.as_str(), at.port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "the broker did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pay_http = format!("127.0.0.1:{payment}");
    procs.push(spawn(
        bin,
        dir,
        &node(
            role::PAYMENT,
            role::PAYMENT,
            &s(&["--http", &pay_http, "--latency-ms", "0", "--decline-rate", "0"]),
        ),
    )?);
    let order_http = format!("127.0.0.1:{order}");
    let pay_url = format!("http://{pay_http}");
    procs.push(spawn(
        bin,
        dir,
        &node(
            role::ORDER,
            role::ORDER,
            &s(&["--http", &order_http, "--payment-url", &pay_url]),
        ),
    )?);
    // Enough of everything: this measures latency, not the saga (a kitchen
    // that runs out cancels the order instead).
    let stock = dir.join("stock.toml");
    std::fs::write(
        &stock,
        "[stock]\ndough = 1000000\ntomato = 1000000\nmozzarella = 1000000\nbasil = 1000000\n",
    )?;
    let stock = stock.display().to_string();
    for k in &kitchens {
        procs.push(spawn(
            bin,
            dir,
            &node(
                role::KITCHEN,
                k,
                &s(&[
                    "--prep-ms",
                    "0",
                    "--ovens",
                    &args.ovens.to_string(),
                    "--stock",
                    &stock,
                ]),
            ),
        )?);
    }
    let del_http = format!("127.0.0.1:{delivery}");
    procs.push(spawn(
        bin,
        dir,
        &node(
            role::DELIVERY,
            role::DELIVERY,
            &s(&[
                "--http",
                &del_http,
                "--trip-ms",
                "0",
                "--drivers",
                &args.drivers.to_string(),
            ]),
        ),
    )?);

    let http = reqwest::Client::new();
    let orders_url = format!("http://{order_http}/orders");
    wait_up(&http, &format!("http://{order_http}/healthz")).await?;
    wait_up(&http, &format!("http://{pay_http}/healthz")).await?;
    wait_up(&http, &format!("http://{del_http}/healthz")).await?;
    let rate = if args.rate == 0 {
        "unpaced".to_string()
    } else {
        format!("{}/s", args.rate)
    };
    println!(
        "flow-bench: {} orders at {rate} from {} connections on {}; payment, order, {} kitchen(s) ({} ovens each), delivery ({} drivers); prep 0, trip 0{}",
        args.orders,
        args.connections,
        if args.broker.is_some() {
            format!("{broker} with pizza-node keeper")
        } else {
            "pizza-node broker".to_string()
        },
        args.kitchens.max(1),
        args.ovens,
        args.drivers,
        if args.signed { "; signed" } else { "" }
    );

    let started = Instant::now();
    let placed = place(args, &orders_url).await?;
    let placing_s = started.elapsed().as_secs_f64();
    let accepted = placed.len();
    println!(
        "accepted: {accepted} of {} in {placing_s:.2} s = {:.0} orders/s",
        args.orders,
        accepted as f64 / placing_s
    );

    let stages = delivered(args, &orders_url, &placed).await?;
    let total_s = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = stages.iter().filter_map(|s| s.last().copied()).collect();
    latencies.sort_by(f64::total_cmp);
    let mut post_ms: Vec<f64> = placed.iter().map(|p| p.post_ms).collect();
    post_ms.sort_by(f64::total_cmp);
    println!(
        "delivered: {} in {total_s:.2} s from the first POST = {:.0} orders/s",
        latencies.len(),
        latencies.len() as f64 / total_s
    );
    println!(
        "POST /orders answered (201): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&post_ms, 0.5),
        percentile(&post_ms, 0.99)
    );
    println!(
        "POST -> delivered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} orders)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        latencies.len()
    );
    // Where the time goes: each event's time since the POST.
    let mut line = String::from("ms since POST, p50/p99:");
    for (i, kind) in STAGES.iter().enumerate() {
        let mut at: Vec<f64> = stages.iter().map(|s| s[i]).collect();
        at.sort_by(f64::total_cmp);
        line.push_str(&format!(
            " {kind} {:.1}/{:.1}",
            percentile(&at, 0.5),
            percentile(&at, 0.99)
        ));
    }
    println!("{line}");
    drop(procs);
    Ok(())
}

/// One accepted order.
struct Placed {
    order_id: String,
    sent: OffsetDateTime,
    post_ms: f64,
}

/// Places `args.orders` orders from `args.connections` clients, paced
/// together at `args.rate` (0: unpaced). Any answer but 201 fails the run.
async fn place(args: &Args, orders_url: &str) -> anyhow::Result<Vec<Placed>> {
    let body = serde_json::json!({
        "customer": {"name": "Ada", "address": "Seestrasse 1, 8002 Zürich"},
        "items": [{"pizza": "margherita", "qty": 1}]
    });
    // Tokens, one per order: paced by a ticker, or all at once.
    let (tokens, rx) = token_channel(args.orders);
    let pace = args.rate;
    let count = args.orders;
    let ticker = tokio::spawn(async move {
        if pace == 0 {
            for _ in 0..count {
                let _ = tokens.send(()).await;
            }
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / pace as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..count {
            tick.tick().await;
            let _ = tokens.send(()).await;
        }
    });
    let mut workers = Vec::new();
    for _ in 0..args.connections.max(1) {
        let rx = rx.clone();
        let body = body.clone();
        let url = orders_url.to_string();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut placed = Vec::new();
            while rx.lock().await.recv().await.is_some() {
                let sent = OffsetDateTime::now_utc();
                let started = Instant::now();
                let r = http.post(&url).json(&body).send().await?;
                let post_ms = started.elapsed().as_secs_f64() * 1e3;
                anyhow::ensure!(r.status() == 201, "POST /orders answered {}", r.status());
                let v: serde_json::Value = r.json().await?;
                placed.push(Placed {
                    order_id: v["order_id"].as_str().unwrap_or_default().to_string(),
                    sent,
                    post_ms,
                });
            }
            anyhow::Ok(placed)
        }));
    }
    let mut all = Vec::with_capacity(args.orders);
    for w in workers {
        all.extend(w.await??);
    }
    ticker.await?;
    Ok(all)
}

/// A channel of tokens that many workers take from, one each.
fn token_channel(
    cap: usize,
) -> (
    tokio::sync::mpsc::Sender<()>,
    std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap.max(1));
    (tx, std::sync::Arc::new(tokio::sync::Mutex::new(rx)))
}

/// The events of an order's life whose time since the POST is reported,
/// `order.delivered` last.
const STAGES: [&str; 6] = [
    "order.paid",
    "order.queued",
    "order.cooking",
    "order.ready",
    "driver.assigned",
    "order.delivered",
];

/// Waits (up to 120 s after the last POST) until every placed order is
/// delivered; returns for each one the ms from its POST to each of
/// [`STAGES`] (0 for a stage its history lacks).
async fn delivered(args: &Args, orders_url: &str, placed: &[Placed]) -> anyhow::Result<Vec<[f64; 6]>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let chunk = placed.len().div_ceil(args.connections.max(1)).max(1);
    let mut checks = Vec::new();
    for part in placed.chunks(chunk) {
        let ids: Vec<(String, OffsetDateTime)> = part.iter().map(|p| (p.order_id.clone(), p.sent)).collect();
        let url = orders_url.to_string();
        checks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut out = Vec::with_capacity(ids.len());
            for (id, sent) in ids {
                loop {
                    let v: serde_json::Value = http.get(format!("{url}/{id}")).send().await?.json().await?;
                    let at = |kind: &str| {
                        v["history"]
                            .as_array()
                            .and_then(|h| h.iter().find(|e| e["kind"] == kind))
                            .and_then(|e| e["at"].as_str())
                            .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
                            .map(|at| (at - sent).as_seconds_f64() * 1e3)
                    };
                    if at("order.delivered").is_some() {
                        out.push(STAGES.map(|k| at(k).unwrap_or(0.0)));
                        break;
                    }
                    anyhow::ensure!(Instant::now() < deadline, "order {id} was not delivered in time");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(placed.len());
    for c in checks {
        all.extend(c.await??);
    }
    Ok(all)
}
