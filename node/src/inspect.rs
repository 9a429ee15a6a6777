//! `pizza-node replay` and `pizza-node trace`: one order, looked up in the
//! broker's event log and shown as text (or JSON) on stdout.
//!
//! - replay: the order's state at an instant and every step that led there;
//! - trace: how long each stage took (payment, queue wait, cooking, driver
//!   wait, trip) and the total, from `contracts::timeline`, the same
//!   computation the control room's order detail draws.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use contracts::api::rfc3339;
use contracts::history::{self, HistoryView};
use contracts::order::OrderFold;
use contracts::timeline::{Span, Timeline};
use contracts::topics::Topics;
use contracts::Envelope;

use crate::config::{BrokerAddr, CommonArgs};

/// What `replay` and `trace` ask the broker's event log.
#[derive(Debug, clap::Args)]
struct Ask {
    /// The order, e.g. ord_01a1fe2f20e3...
    order_id: String,
    /// Give up when the broker's event log has not answered in this long.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
    #[command(flatten)]
    common: CommonArgs,
}

impl Ask {
    /// The order's events, in log order.
    async fn events(&self) -> anyhow::Result<Vec<Envelope>> {
        let broker: BrokerAddr = self.common.broker.parse()?;
        let topics = Topics::new(&self.common.prefix);
        let order_id = &self.order_id;
        crate::history::fetch(&broker, &topics, order_id, Duration::from_millis(self.timeout_ms))
            .await
            .with_context(|| format!("cannot read order {order_id} from the event log"))
    }
}

/// `pizza-node replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    ask: Ask,
    /// Replay only what had happened by this instant (RFC 3339, e.g.
    /// 2026-01-31T12:00:00Z); default: everything.
    #[arg(long)]
    as_of: Option<String>,
    /// Print the history as one JSON object (as GET /orders/{id}/history).
    #[arg(long)]
    json: bool,
}

/// `pizza-node trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    ask: Ask,
    /// Print the timeline as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `pizza-node replay`.
pub async fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    // Checked before asking anything: a typo should not wait for a broker.
    let as_of = a
        .as_of
        .as_deref()
        .map(history::parse_as_of)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;
    let events = a.ask.events().await?;
    let view = history::replay(&a.ask.order_id, events, as_of)?;
    if a.json {
        println!("{}", serde_json::to_string(&view)?);
    } else {
        print!("{}", replay_text(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `pizza-node trace`.
pub async fn trace(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let events = a.ask.events().await?;
    let order_id = &a.ask.order_id;
    // Replay first: it says why an order has no timeline (unknown, not
    // started) in the same words as `replay`.
    let view = history::replay(order_id, events.iter().cloned(), None)?;
    let fold = OrderFold::from_envelopes(order_id.clone(), events);
    let Some(timeline) = Timeline::of(fold.applied()) else {
        anyhow::bail!("order {order_id} has no events to time");
    };
    if a.json {
        println!("{}", trace_json(&view, &timeline));
    } else {
        print!("{}", trace_text(&view, &timeline));
    }
    Ok(ExitCode::SUCCESS)
}

/// The replay as a table: one line per step with its state after.
pub fn replay_text(v: &HistoryView) -> String {
    let mut out = String::new();
    let when = v.as_of.as_deref().unwrap_or("now");
    let _ = writeln!(out, "order {}  as of {when}: {}", v.order_id, v.state);
    let _ = writeln!(out, "trace {}", v.trace_id);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>4}  {:<32} {:<18} {:<17} {:<10} DETAIL",
        "SEQ", "AT", "EVENT", "STATE AFTER", "BY"
    );
    for s in &v.steps {
        let _ = writeln!(
            out,
            "{:>4}  {:<32} {:<18} {:<17} {:<10} {}",
            s.seq,
            s.at,
            s.kind,
            s.state.as_str(),
            s.source,
            s.detail.as_deref().unwrap_or("")
        );
    }
    for r in &v.rejected {
        let _ = writeln!(
            out,
            "{:>4}  {:<32} {:<18} {:<17} {} ({})",
            r.seq, r.at, r.kind, "skipped", r.source, r.reason
        );
    }
    for h in &v.held_back {
        let _ = writeln!(
            out,
            "{:>4}  {:<32} {:<18} {:<17} {} (waits for an earlier seq)",
            h.seq, h.at, h.kind, "held back", h.source
        );
    }
    if v.later > 0 {
        let _ = writeln!(out, "\n{} later event(s) not replayed", v.later);
    }
    out
}

fn ms(d: time::Duration) -> i128 {
    d.whole_milliseconds()
}

/// Width of the waterfall bars.
const BAR: i128 = 40;

/// The timeline as a table with a waterfall, like the control room's.
pub fn trace_text(v: &HistoryView, t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "order {}  {}", v.order_id, v.state);
    let _ = writeln!(out, "trace {}  from {}", v.trace_id, rfc3339(t.origin));
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<12} {:>10} {:>10}", "STAGE", "START", "DURATION");
    let scale = t
        .stages
        .iter()
        .filter_map(|s| s.span)
        .chain(t.total)
        .map(|s| ms(s.offset + s.length))
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = |s: Span| {
        let pad = (ms(s.offset) * BAR / scale).max(0) as usize;
        let len = (ms(s.length) * BAR / scale).max(1) as usize;
        format!("{}{}", " ".repeat(pad), "█".repeat(len))
    };
    for stage in &t.stages {
        match stage.span {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "{:<12} {:>7} ms {:>7} ms  {}",
                    stage.name,
                    format!("+{}", ms(s.offset)),
                    ms(s.length),
                    bar(s)
                );
            }
            None => {
                let _ = writeln!(out, "{:<12} {:>10} {:>10}", stage.name, "-", "-");
            }
        }
    }
    match (t.total, &t.ended_by) {
        (Some(s), Some(end)) => {
            let _ = writeln!(out, "{:<12} {:>10} {:>7} ms  ({end})", "total", "", ms(s.length));
        }
        _ => {
            let _ = writeln!(out, "{:<12} {:>10} {:>10}  (not finished)", "total", "", "-");
        }
    }
    out
}

/// The timeline as JSON: stages with start and duration in ms (`null` for a
/// stage not reached), and the total.
pub fn trace_json(v: &HistoryView, t: &Timeline) -> serde_json::Value {
    let stages: Vec<serde_json::Value> = t
        .stages
        .iter()
        .map(|s| {
            serde_json::json!({
                "stage": s.name,
                "start_ms": s.span.map(|s| ms(s.offset) as i64),
                "ms": s.span.map(|s| ms(s.length) as i64),
            })
        })
        .collect();
    serde_json::json!({
        "order_id": v.order_id,
        "trace_id": v.trace_id,
        "state": v.state,
        "origin": rfc3339(t.origin),
        "stages": stages,
        "total_ms": t.total.map(|s| ms(s.length) as i64),
        "ended_by": t.ended_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered() -> Vec<Envelope> {
        use contracts::testkit;
        testkit::life("o-1", testkit::t0(), &testkit::DELIVERED, "t-1", "node")
    }

    #[test]
    fn replay_text_lists_every_step_with_its_state() {
        let v = history::replay("o-1", delivered(), None).unwrap();
        let text = replay_text(&v);
        assert!(text.starts_with("order o-1  as of now: delivered\n"), "{text}");
        let cooking = text.lines().find(|l| l.contains("order.cooking")).unwrap();
        assert!(
            cooking.contains("cooking") && cooking.trim_start().starts_with('4'),
            "{cooking}"
        );
        assert_eq!(text.lines().filter(|l| l.contains("order.")).count(), 6);
    }

    #[test]
    fn trace_text_and_json_time_every_stage() {
        let events = delivered();
        let v = history::replay("o-1", events.clone(), None).unwrap();
        let t = Timeline::of(&events).unwrap();
        let text = trace_text(&v, &t);
        let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap().to_string();
        assert!(line("payment").contains("40 ms"), "{text}");
        assert!(line("cooking").contains("5000 ms"), "{text}");
        assert!(line("trip").contains("3650 ms"), "{text}");
        assert!(
            line("total").contains("9000 ms") && line("total").contains("order.delivered"),
            "{text}"
        );
        let json = trace_json(&v, &t);
        assert_eq!(json["stages"][1]["stage"], "queue wait");
        assert_eq!(json["stages"][1]["start_ms"], 45);
        assert_eq!(json["stages"][1]["ms"], 255);
        assert_eq!(json["total_ms"], 9000);
    }
}
