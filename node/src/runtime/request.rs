//! Asking over MQTT and waiting for the answer: the request/reply that the
//! keeper's withdrawals and the broker's event log both speak.
//!
//! The asker subscribes once to its reply topic; each question carries a
//! fresh request id, and each reply is handed to the question waiting for
//! it. A reply nobody waits for (its question timed out) is dropped. Asking
//! does not go through the outbox: a lost question is answered by the
//! timeout, and asking again is the caller's choice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::NodeError;
use crate::runtime::link::{Incoming, Link};

/// A reply that names the request it answers.
pub trait Reply: DeserializeOwned + Send + 'static {
    /// The request id it answers.
    fn request_id(&self) -> &str;
}

impl Reply for contracts::queue::Withdrawn {
    fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl Reply for contracts::history::LogReply {
    fn request_id(&self) -> &str {
        &self.request_id
    }
}

type Pending<R> = Arc<Mutex<HashMap<String, oneshot::Sender<R>>>>;

/// Questions open over one link, paired with their replies. Cheap to clone.
pub struct Requests<R> {
    link: Link,
    pending: Pending<R>,
}

impl<R> Clone for Requests<R> {
    fn clone(&self) -> Self {
        Requests {
            link: self.link.clone(),
            pending: self.pending.clone(),
        }
    }
}

impl<R: Reply> Requests<R> {
    /// Subscribes to `replies` (a topic filter) and starts pairing.
    pub async fn start(link: Link, replies: String) -> Result<Self, NodeError> {
        let rx = link.subscribe(replies).await?;
        let pending: Pending<R> = Arc::default();
        tokio::spawn(pair(rx, pending.clone(), link.security().clone()));
        Ok(Requests { link, pending })
    }

    /// The link the questions go out on.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Publishes the question `ask` builds around a fresh request id on
    /// `topic`; the reply, or `None` if none came within `wait`.
    pub async fn ask<Q: Serialize>(
        &self,
        topic: String,
        wait: Duration,
        ask: impl FnOnce(String) -> Q,
    ) -> Result<Option<R>, NodeError> {
        let request_id = uuid::Uuid::now_v7().simple().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(request_id.clone(), tx);
        let sent = self
            .link
            .publish_to_brokers(topic, &ask(request_id.clone()))
            .await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(wait, rx).await.ok().and_then(Result::ok),
            Err(e) => {
                lock(&self.pending).remove(&request_id);
                return Err(e);
            }
        };
        lock(&self.pending).remove(&request_id);
        Ok(answer)
    }
}

/// Hands each reply to the question waiting for it.
async fn pair<R: Reply>(
    mut rx: mpsc::UnboundedReceiver<Incoming>,
    pending: Pending<R>,
    security: crate::runtime::security::Security,
) {
    while let Some(msg) = rx.recv().await {
        // Replies come from the broker (the keeper, the log), sealed.
        let body = match security.open(&msg.payload, &[contracts::trust::role::BROKER]) {
            Ok(body) => body,
            Err(why) => {
                tracing::warn!(topic = %msg.topic, reason = %why, refused_total = security.refused(), "security: a reply was refused");
                continue;
            }
        };
        match serde_json::from_slice::<R>(&body) {
            Ok(reply) => {
                if let Some(tx) = lock(&pending).remove(reply.request_id()) {
                    let _ = tx.send(reply);
                }
            }
            Err(e) => tracing::warn!(topic = %msg.topic, error = %e, "ignored a malformed reply"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
