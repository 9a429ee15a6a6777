//! How fast the event log appends, replays and answers: writes 100,000
//! events (12,500 orders x 8 events) into a temporary event log through the
//! broker's own append code, then times
//!
//! - appending them (batches of 1,000 with one flush each, as the recorder
//!   does under load);
//! - replaying the whole log through the order state machine (`OrderFold`),
//!   reading every event back from sled;
//! - one order's history: the index scan, the MQTT reply as the broker
//!   builds it, and `contracts::history::replay`.
//!
//! `cargo run --release -p node --bin replay-bench [-- ORDERS]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use broker::eventlog::{Appended, EventLog};
use contracts::events::kind;
use contracts::history::LogQuery;
use contracts::order::{OrderFold, OrderState};
use contracts::Envelope;
use time::OffsetDateTime;

/// One delivered order's life: 8 events.
const LIFE: [(&str, i64); 8] = contracts::testkit::DELIVERED;

/// Events per append batch (and per flush).
const BATCH: usize = 1_000;

fn payload(kind: &str) -> serde_json::Value {
    match kind {
        kind::ORDER_PLACED => serde_json::json!({
            "customer": {"name": "Ada", "address": "Seestrasse 1, 8002 Zürich"},
            "items": [{"pizza": "margherita", "qty": 2}],
            "amount_cents": 2400,
        }),
        kind::ORDER_PAID => serde_json::json!({"payment_id": "pay_0123456789", "amount_cents": 2400}),
        kind::ORDER_QUEUED => serde_json::json!({"queue": "kitchen"}),
        kind::ORDER_COOKING | kind::ORDER_READY => serde_json::json!({"kitchen": "kitchen-1"}),
        kind::DRIVER_ASSIGNED => serde_json::json!({"driver": "Dana", "kitchen": "kitchen-1"}),
        kind::ORDER_DELIVERED => serde_json::json!({"driver": "Dana"}),
        _ => serde_json::json!({"message": "Your pizza is on its way!"}),
    }
}

/// The events of `orders` orders, interleaved as a busy platform publishes
/// them (every order's step 1, then every order's step 2 ...), serialised.
fn workload(orders: usize) -> anyhow::Result<(Vec<Vec<u8>>, Vec<String>)> {
    let t0 = OffsetDateTime::now_utc();
    let ids: Vec<String> = (0..orders).map(|i| format!("ord_bench_{i:08}")).collect();
    let mut out = Vec::with_capacity(orders * LIFE.len());
    for (step, (k, ms)) in LIFE.iter().enumerate() {
        for (i, id) in ids.iter().enumerate() {
            let mut e = Envelope::new(
                *k,
                id.clone(),
                step as u64 + 1,
                "0af7651916cd43dd8448eb211c80319c",
                "bench",
                payload(k),
            );
            e.occurred_at = t0 + time::Duration::milliseconds(ms + i as i64);
            out.push(serde_json::to_vec(&e)?);
        }
    }
    Ok((out, ids))
}

/// A directory removed on drop (tempfile is only a dev-dependency).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("replay-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

// The platform's allocator, so that this measures what the nodes run.
#[global_allocator]
static ALLOCATOR: node::allocator::Allocator = node::allocator::ALLOCATOR;

fn main() -> anyhow::Result<()> {
    node::allocator::tune();
    let orders: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the argument is the number of orders")?,
        None => 12_500,
    };
    let (events, ids) = workload(orders)?;
    let n = events.len();
    let bytes: usize = events.iter().map(Vec::len).sum();
    println!(
        "replay-bench: {orders} orders x {} events = {n} events ({:.1} MiB of JSON)",
        LIFE.len(),
        bytes as f64 / 1_048_576.0
    );
    let dir = TempDir::new()?;
    let mut log = EventLog::open(dir.path())?;

    // Append, as the recorder does: a batch, then one flush.
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        let out = log.append_batch(chunk.iter().map(Vec::as_slice))?;
        anyhow::ensure!(
            out.iter().all(|a| matches!(a, Appended::Stored(_))),
            "every event is new"
        );
        log.flush_blocking()?;
    }
    let append = started.elapsed();
    println!(
        "append   {n} events in {:>8.1} ms  ({:.0} events/s; batches of {BATCH}, one flush each)",
        append.as_secs_f64() * 1e3,
        per_s(n, append)
    );
    // Re-sending everything stores nothing.
    let started = Instant::now();
    for chunk in events.chunks(BATCH) {
        log.append_batch(chunk.iter().map(Vec::as_slice))?;
    }
    let dupes = started.elapsed();
    println!(
        "re-send  {n} duplicates in {:>6.1} ms  ({:.0} events/s; nothing written)",
        dupes.as_secs_f64() * 1e3,
        per_s(n, dupes)
    );
    anyhow::ensure!(log.len() == n as u64, "duplicates were stored");
    drop(log);

    // Replay everything from a freshly opened log: read, parse, fold.
    let started = Instant::now();
    let log = EventLog::open(dir.path())?;
    let opened = started.elapsed();
    let started = Instant::now();
    let mut folds: HashMap<String, OrderFold> = HashMap::with_capacity(orders);
    for entry in log.iter_raw() {
        let (_, raw) = entry?;
        let env: Envelope = serde_json::from_slice(&raw)?;
        folds
            .entry(env.order_id.clone())
            .or_insert_with(|| OrderFold::new(env.order_id.clone()))
            .offer(env);
    }
    let replay = started.elapsed();
    let delivered = folds
        .values()
        .filter(|f| f.state() == Some(OrderState::Delivered))
        .count();
    anyhow::ensure!(
        delivered == orders,
        "every order replays to delivered ({delivered} of {orders})"
    );
    println!(
        "replay   {n} events in {:>8.1} ms  ({:.0} events/s; read from sled + parse + OrderFold; reopen took {:.1} ms)",
        replay.as_secs_f64() * 1e3,
        per_s(n, replay),
        opened.as_secs_f64() * 1e3
    );

    // One order's history, many times over random-ish orders.
    let rounds = 1_000.min(orders);
    let pick = |i: usize| &ids[(i * 7_919) % ids.len()];
    let started = Instant::now();
    for i in 0..rounds {
        let raw = log.order_raw(pick(i))?;
        anyhow::ensure!(raw.len() == LIFE.len(), "the index finds the order's events");
    }
    let scan = started.elapsed();
    let started = Instant::now();
    for i in 0..rounds {
        let q = LogQuery {
            request_id: "r".into(),
            order_id: pick(i).clone(),
        };
        std::hint::black_box(log.reply(&q));
    }
    let reply = started.elapsed();
    let started = Instant::now();
    for i in 0..rounds {
        let id = pick(i);
        let view = contracts::history::replay(id, log.order_events(id)?, None)?;
        anyhow::ensure!(view.state == OrderState::Delivered, "replays to delivered");
    }
    let history = started.elapsed();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
    println!(
        "history  one order (8 events): index scan {:.1} µs, MQTT reply JSON {:.1} µs, scan + parse + replay {:.1} µs  (mean of {rounds})",
        us(scan),
        us(reply),
        us(history)
    );
    Ok(())
}
