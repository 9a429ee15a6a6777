//! Asking the keeper to take an order off a queue ([`contracts::queue::Withdraw`])
//! and waiting for its answer: the request/reply a cancellation needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::queue::{Withdraw, Withdrawn};
use tokio::sync::oneshot;

use crate::error::NodeError;
use crate::link::Link;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Withdrawn>>>>;

/// Withdrawals in progress, matched to the keeper's answers by request id.
#[derive(Clone)]
pub struct Withdrawals {
    link: Link,
    pending: Pending,
}

impl Withdrawals {
    /// Subscribes to this node's answers on every queue.
    pub async fn start(link: Link) -> Result<Self, NodeError> {
        let mut rx = link.subscribe(link.topics().withdrawn("+", link.id())).await?;
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match serde_json::from_slice::<Withdrawn>(&msg.payload) {
                    Ok(answer) => {
                        let waiter = lock(&routes).remove(&answer.request_id);
                        if let Some(tx) = waiter {
                            let _ = tx.send(answer);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %msg.topic, error = %e, "ignored a malformed withdraw answer")
                    }
                }
                msg.ack().await;
            }
        });
        Ok(Withdrawals { link, pending })
    }

    /// Withdraws `order_id` from `queue`; `None` if the keeper did not
    /// answer within `wait` (it may be down: ask again, it is idempotent).
    pub async fn withdraw(
        &self,
        queue: &str,
        order_id: &str,
        wait: Duration,
    ) -> Result<Option<Withdrawn>, NodeError> {
        let request_id = uuid::Uuid::now_v7().simple().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(request_id.clone(), tx);
        let req = Withdraw {
            request_id: request_id.clone(),
            order_id: order_id.to_string(),
        };
        let topic = self.link.topics().withdraw(queue, self.link.id());
        if let Err(e) = self.link.publish_json(topic, &req, false).await {
            lock(&self.pending).remove(&request_id);
            return Err(e);
        }
        let answer = tokio::time::timeout(wait, rx).await.ok().and_then(Result::ok);
        lock(&self.pending).remove(&request_id);
        Ok(answer)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
