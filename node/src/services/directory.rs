//! Who is out there: every node's role and HTTP address, from the retained
//! heartbeats, so the order node can call the delivery node that carries an
//! order (to recall its driver) without being configured with its address.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use contracts::status::{NodeState, NodeStatus};

use crate::error::NodeError;
use crate::runtime::Node;

/// One node as its heartbeat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its role, e.g. `delivery`.
    pub role: String,
    /// Its base URL (figure `http`), if it serves HTTP.
    pub http: Option<String>,
    /// Whether its last status said it is online.
    pub online: bool,
}

/// Nodes by id, kept up to date from `pizza/nodes/+/status`.
#[derive(Clone, Default)]
pub struct Directory {
    nodes: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl Directory {
    /// Follows every node's status.
    pub async fn follow(node: &Node) -> Result<Directory, NodeError> {
        let dir = Directory::default();
        let topics = node.topics().clone();
        let mut rx = node.subscribe(topics.all_status()).await?;
        let nodes = dir.nodes.clone();
        let security = node.link().security().clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let Some(id) = topics.parse_status_topic(&msg.topic) else {
                    continue;
                };
                // A forged heartbeat would send the order node's calls (a
                // recall) to whoever wrote it.
                let body = match security.open_from(&msg.payload, id) {
                    Ok(body) => body,
                    Err(why) => {
                        tracing::warn!(node = id, reason = %why, refused_total = security.refused(), "security: a heartbeat was refused; the directory keeps what it knew");
                        continue;
                    }
                };
                if let Ok(status) = serde_json::from_slice::<NodeStatus>(&body) {
                    let entry = Entry {
                        http: status.figures.http,
                        online: status.state != NodeState::Offline,
                        role: status.role,
                    };
                    lock(&nodes).insert(id.to_string(), entry);
                }
            }
        });
        Ok(dir)
    }

    /// The URL of node `id`, if it is known and serves HTTP.
    pub fn url(&self, id: &str) -> Option<String> {
        lock(&self.nodes).get(id).and_then(|e| e.http.clone())
    }

    /// `(id, url)` of every online node of `role` that serves HTTP.
    pub fn urls_of(&self, role: &str) -> Vec<(String, String)> {
        lock(&self.nodes)
            .iter()
            .filter(|(_, e)| e.role == role && e.online)
            .filter_map(|(id, e)| Some((id.clone(), e.http.clone()?)))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
