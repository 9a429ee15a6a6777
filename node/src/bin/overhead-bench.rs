//! `overhead-bench`: what the circuit breaker and the outbox add to one
//! order, measured in-process, without a broker.
//!
//! `cargo run --release -p node --bin overhead-bench [-- --calls 10000000 --orders 2000]`
//!
//! - The breaker: `allow` then `success`, as `POST /orders` does around its
//!   payment call, bare and behind the order node's `Mutex` with its clock.
//! - The outbox: `Outbox::add` (sled insert + flush) of a realistic envelope,
//!   in a sled configured as the node runtime configures it; `POST /orders`
//!   makes four such writes before it answers 201 (`order.placed`,
//!   `order.paid`, the kitchen ticket, `order.queued`).
//!
//! For the whole `POST /orders` round trip through real processes, see
//! `flow-bench`.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use contracts::events::{self, KitchenTicket};
use node::runtime::outbox::{Confirmation, Entry, Outbox};
use node::services::order::breaker::Breaker;

#[derive(Debug, Parser)]
#[command(about = "Measure the per-order cost of the circuit breaker and the outbox")]
struct Args {
    /// Breaker allow+success pairs to time.
    #[arg(long, default_value_t = 10_000_000)]
    calls: u64,
    /// Orders whose outbox writes to time.
    #[arg(long, default_value_t = 2_000)]
    orders: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn breaker(calls: u64) {
    let mut b = Breaker::new(5, 10_000);
    let started = Instant::now();
    for i in 0..calls {
        if black_box(&mut b).allow(black_box(i)) {
            b.success();
        }
    }
    let bare = started.elapsed().as_nanos() as f64 / calls as f64;

    // As the order node does it: a std Mutex around the breaker, the clock
    // read for `now`, and the lock taken once for allow and once for success.
    let shared = Mutex::new(Breaker::new(5, 10_000));
    let start = Instant::now();
    let started = Instant::now();
    for _ in 0..calls {
        guarded_call(&shared, start);
    }
    let locked = started.elapsed().as_nanos() as f64 / calls as f64;
    println!(
        "breaker allow+success: {bare:.1} ns bare, {locked:.1} ns with the mutex and clock ({calls} calls)"
    );
}

/// The rest of the breaker's bookkeeping per call: after every payment call
/// the order node writes the breaker's four figures into the node's status
/// (`Breaker::figures`, as `Service::figures` in roles/order.rs does).
/// One payment call's breaker work as the order node does it: the clock
/// read for `now`, the lock taken once for allow and once for success.
fn guarded_call(shared: &Mutex<Breaker>, start: Instant) {
    let now = start.elapsed().as_millis() as u64;
    let allowed = shared.lock().map(|mut b| b.allow(now)).unwrap_or(false);
    if black_box(allowed) {
        if let Ok(mut b) = shared.lock() {
            b.success();
        }
    }
}

async fn breaker_figures(calls: u64, dir: &std::path::Path) -> anyhow::Result<()> {
    // A node whose broker is not there: `start` returns at once and its link
    // keeps trying in the background, which is all `set_figures` needs.
    let node = node::Node::start(node::NodeConfig {
        id: "overhead-bench".into(),
        role: contracts::trust::role::ORDER.into(),
        broker: "mqtt://127.0.0.1:9".parse()?,
        data_dir: dir.join("node"),
        prefix: "pizza".into(),
        security: Default::default(),
    })
    .await?;
    let shared = Mutex::new(Breaker::new(5, 10_000));
    let start = Instant::now();
    let started = Instant::now();
    for _ in 0..calls {
        guarded_call(&shared, start);
        let Ok(breaker) = shared.lock().map(|b| b.clone()) else {
            continue;
        };
        node.set_figures(|f| breaker.figures(&mut f.order));
    }
    let full = started.elapsed().as_nanos() as f64 / calls as f64;
    println!("breaker allow+success+status figures (the order node's whole bookkeeping): {full:.0} ns ({calls} calls)");
    Ok(())
}

async fn outbox(orders: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    // The node runtime's sled settings (runtime.rs `Node::start`).
    let db = sled::Config::new()
        .path(dir.join("outbox"))
        .flush_every_ms(Some(200))
        .cache_capacity(16 * 1024 * 1024)
        .open()
        .with_context(|| format!("cannot open sled in {}", dir.display()))?;
    let outbox = Outbox::open(&db)?;
    let ticket = KitchenTicket {
        items: vec![contracts::api::Item {
            pizza: "margherita".into(),
            qty: 2,
        }],
        customer: contracts::api::Customer {
            name: "Ada".into(),
            address: "Seestrasse 1, 8002 Zürich".into(),
        },
    };
    let mut one = Vec::with_capacity(orders);
    let mut four = Vec::with_capacity(orders);
    for i in 0..orders {
        let order_id = format!("ord_{i:032}");
        let env = events::envelope(
            &ticket,
            &order_id,
            3,
            contracts::envelope::new_trace_id(),
            "order",
        )?;
        let entry = Entry::for_envelope("pizza/q/kitchen/put".into(), &env, Confirmation::Keeper)?;
        let started = Instant::now();
        outbox.add(&entry).await?;
        one.push(started.elapsed());
        outbox.confirm(&[entry.id])?;

        // The four durable writes of one POST /orders, one after another.
        let started = Instant::now();
        for seq in 1..=4 {
            let env = events::envelope(&ticket, &order_id, seq, "t", "order")?;
            let entry = Entry::for_envelope("pizza/log/put".into(), &env, Confirmation::Log)?;
            outbox.add(&entry).await?;
            outbox.confirm(&[entry.id])?;
        }
        four.push(started.elapsed());
    }
    drop(outbox);
    drop(db);
    one.sort();
    four.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "outbox add+flush, one entry: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({orders} writes)",
        us(percentile(&one, 0.5)),
        us(percentile(&one, 0.99)),
        us(one.last().copied().unwrap_or_default())
    );
    println!(
        "outbox per order (4 writes before 201): p50 {:.0} µs, p99 {:.0} µs ({orders} orders)",
        us(percentile(&four, 0.5)),
        us(percentile(&four, 0.99))
    );
    Ok(())
}

// The platform's allocator, so that this measures what the nodes run.
#[global_allocator]
static ALLOCATOR: node::allocator::Allocator = node::allocator::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    node::allocator::tune();
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("overhead-bench-{}", std::process::id()));
    breaker(args.calls);
    let result = async {
        breaker_figures(args.calls / 10, &dir).await?;
        outbox(args.orders, &dir).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
