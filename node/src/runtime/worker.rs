//! The consume loop every queue-consuming role shares.
//!
//! A role gives a handler for one message; [`run`] does the rest the same
//! way for every role: credit (0 while paused), injected faults, inbox
//! deduplication, counters, the ack, and a graceful stop that lets work in
//! progress finish.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use contracts::queue::{Delivery, Outcome};

use crate::runtime::faults::{self, Verdict};
use crate::runtime::queue::Acker;
use crate::runtime::Node;

/// How a handler finished with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Done: it has had its effect.
    Done,
    /// A transient failure: deliver it again later.
    Retry(String),
    /// It can never succeed: dead-letter it with this reason.
    Reject(String),
}

/// Longest a graceful stop waits for work in progress.
const DRAIN: Duration = Duration::from_secs(30);

/// Consumes `queue` with `credit` until the node is told to stop, running
/// `handler` for each new message (at most `credit` at once).
pub async fn run<F, Fut>(node: Node, queue: &str, credit: u32, handler: F) -> Result<(), crate::NodeError>
where
    F: Fn(Delivery) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Handled> + Send + 'static,
{
    let mut consumer = node.consumer(queue, credit).await?;
    let acker = consumer.acker();
    let mut faults = node.watch_faults();
    let mut paused = faults.borrow().paused;
    if paused {
        consumer.set_credit(0).await?;
    }
    let mut work = tokio::task::JoinSet::new();
    let stop = crate::runtime::stop::until_stopped(node.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = faults.changed() => {
                if changed.is_err() {
                    break;
                }
                let now_paused = faults.borrow_and_update().paused;
                if now_paused != paused {
                    paused = now_paused;
                    consumer.set_credit(if paused { 0 } else { credit }).await?;
                }
            }
            delivery = consumer.next() => {
                let Some(d) = delivery else { break };
                work.spawn(handle(node.clone(), acker.clone(), d, handler.clone()));
            }
            Some(_) = work.join_next(), if !work.is_empty() => {}
        }
    }
    // Take no more, finish what is in the ovens (or on the road).
    let _ = consumer.set_credit(0).await;
    let _ = tokio::time::timeout(DRAIN, async { while work.join_next().await.is_some() {} }).await;
    Ok(())
}

async fn handle<F, Fut>(node: Node, acker: Acker, d: Delivery, handler: F)
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Handled>,
{
    let counters = node.counters();
    let twice = match faults::gate(&node.faults()).await {
        // Lost on the way: no effect and no ack; the keeper's ack timeout
        // brings it back.
        Verdict::Drop => {
            tracing::warn!(order_id = %d.envelope.order_id, delivery_id = %d.delivery_id, "fault: delivery dropped");
            acker.forget(&d.delivery_id);
            return;
        }
        Verdict::Fail => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            let _ = acker
                .ack(&d.delivery_id, Outcome::Retry, Some("injected error".into()))
                .await;
            return;
        }
        Verdict::Handle { twice } => twice,
    };
    counters.in_flight.fetch_add(1, Ordering::Relaxed);
    let delivery_id = d.delivery_id.clone();
    // Copied only for the duplicate fault: a delivery carries its payload.
    let outcome = if twice {
        once(&node, d.clone(), &handler).await;
        tracing::warn!(order_id = %d.envelope.order_id, "fault: delivery handled twice");
        once(&node, d, &handler).await
    } else {
        once(&node, d, &handler).await
    };
    counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    let (outcome, reason) = match outcome {
        Handled::Done => {
            counters.handled.fetch_add(1, Ordering::Relaxed);
            (Outcome::Done, None)
        }
        Handled::Retry(why) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            (Outcome::Retry, Some(why))
        }
        Handled::Reject(why) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            (Outcome::Reject, Some(why))
        }
    };
    if let Err(e) = acker.ack(&delivery_id, outcome, reason).await {
        tracing::warn!(error = %e, "could not ack; the keeper will deliver it again");
    }
}

/// Runs the handler unless the inbox says this message already had its effect.
async fn once<F, Fut>(node: &Node, d: Delivery, handler: &F) -> Handled
where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Handled>,
{
    if node.inbox().seen(&d.envelope.event_id) {
        tracing::info!(order_id = %d.envelope.order_id, "already handled; acknowledged without effect");
        return Handled::Done;
    }
    let event_id = d.envelope.event_id;
    let outcome = handler(d).await;
    // Marked before the ack, so a duplicate (redelivered, or the duplicate
    // fault's second run) finds it.
    if outcome == Handled::Done {
        if let Err(e) = node.inbox().mark(&event_id) {
            tracing::error!(error = %e, "could not record a handled message; it may be handled again");
        }
    }
    outcome
}
