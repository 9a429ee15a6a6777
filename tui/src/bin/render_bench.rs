//! `cargo run --release -p tui --bin render-bench`: feeds 100,000 orders
//! (800,000 events) through `update`, then measures how long a frame takes
//! to draw and how much memory the control room holds.

use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui::model::{Model, Panel};
use tui::msg::Msg;
use tui::testkit;
use tui::update::update;

const ORDERS: u64 = 100_000;
const FRAMES: u32 = 300;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn frame_time(m: &Model, width: u16, height: u16) -> anyhow::Result<(Duration, Duration)> {
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    let mut times = Vec::with_capacity(FRAMES as usize);
    for _ in 0..FRAMES {
        let start = Instant::now();
        terminal.draw(|f| tui::ui::draw(f, m, &Default::default()))?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() * 99 / 100]))
}

fn main() -> anyhow::Result<()> {
    let before = rss_mib();
    let mut m = testkit::model();
    let start = Instant::now();
    for n in 0..ORDERS {
        let kitchen = if n % 2 == 0 { "kitchen-1" } else { "kitchen-2" };
        for e in testkit::order_events(1_000 + n, n as i64 * 10, 8, kitchen, "Ada") {
            update(&mut m, Msg::Event(Box::new(e)));
        }
    }
    let ingest = start.elapsed();
    let events = ORDERS * 8;
    println!(
        "update: {ORDERS} orders ({events} events) in {:.2} s = {:.0} events/s",
        ingest.as_secs_f64(),
        events as f64 / ingest.as_secs_f64()
    );
    println!(
        "orders seen {} · with detail {} · RSS {:.1} MiB (before {:.1} MiB)",
        m.orders.total(),
        m.orders.detailed(),
        rss_mib(),
        before
    );
    for (label, focus, filter) in [
        ("all panels", Panel::Nodes, ""),
        ("orders focused", Panel::Orders, ""),
        ("orders filtered", Panel::Orders, "delivered"),
    ] {
        m.ui.focus = Some(focus);
        m.ui.filter = filter.into();
        for (w, h) in [(120, 40), (80, 24)] {
            let (p50, p99) = frame_time(&m, w, h)?;
            println!(
                "frame {w}x{h} {label:<16} p50 {:>6.0} µs  p99 {:>6.0} µs",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
    }
    println!("RSS after drawing: {:.1} MiB", rss_mib());
    Ok(())
}
