//! Node heartbeats (retained on `pizza/nodes/<id>/status`) and the commands
//! the control room sends on `pizza/control/<id>`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Connected and working.
    Up,
    /// Connected, deliberately taking no work.
    Paused,
    /// Finishing in-flight work before exiting.
    Stopping,
    /// Gone: published by the node on a clean exit, or by the broker as LWT.
    Offline,
}

/// A node's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// Role, e.g. `kitchen`.
    pub role: String,
    /// Process id (0 in the LWT, which the broker sends for a dead process).
    pub pid: u32,
    /// Life state.
    pub state: NodeState,
    /// When the node started, RFC 3339.
    #[serde(default)]
    pub started_at: String,
    /// When this heartbeat was sent, RFC 3339.
    #[serde(default)]
    pub at: String,
    /// Messages handled successfully.
    #[serde(default)]
    pub handled: u64,
    /// Messages that failed.
    #[serde(default)]
    pub failed: u64,
    /// Messages being worked on.
    #[serde(default)]
    pub in_flight: u64,
    /// Unconfirmed outbox entries.
    #[serde(default)]
    pub outbox: u64,
    /// Faults active now.
    #[serde(default)]
    pub faults: Faults,
    /// The role's own figures (ovens busy, drivers free, breaker state ...).
    #[serde(default)]
    pub figures: BTreeMap<String, serde_json::Value>,
}

impl NodeStatus {
    /// The last will the broker publishes when the node's connection dies.
    pub fn offline(id: &str, role: &str) -> Self {
        NodeStatus {
            id: id.to_string(),
            role: role.to_string(),
            pid: 0,
            state: NodeState::Offline,
            started_at: String::new(),
            at: String::new(),
            handled: 0,
            failed: 0,
            in_flight: 0,
            outbox: 0,
            faults: Faults::default(),
            figures: BTreeMap::new(),
        }
    }
}

/// Faults injected into a node. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Extra latency before handling each message, in ms.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability (0..1) that handling fails (retry).
    #[serde(default)]
    pub error_rate: f64,
    /// Probability (0..1) that an incoming message is dropped unhandled.
    #[serde(default)]
    pub drop_rate: f64,
    /// Probability (0..1) that an incoming message is handled twice.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Take no new work.
    #[serde(default)]
    pub paused: bool,
    /// Ingredients this node pretends to be out of (kitchen only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_stock: Vec<String>,
}

impl Faults {
    /// Whether any fault is active.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// A command from the control room to one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// Replace the node's faults with these.
    SetFaults {
        /// The faults to apply.
        faults: Faults,
    },
    /// Clear every fault.
    ClearFaults,
    /// Stop taking work (credit 0).
    Pause,
    /// Take work again.
    Resume,
    /// Finish in-flight work, then exit.
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_is_tagged_by_command() {
        let c: Control =
            serde_json::from_str(r#"{"command":"set_faults","faults":{"latency_ms":50}}"#).unwrap();
        assert_eq!(
            c,
            Control::SetFaults {
                faults: Faults {
                    latency_ms: 50,
                    ..Faults::default()
                }
            }
        );
        let c: Control = serde_json::from_str(r#"{"command":"stop"}"#).unwrap();
        assert_eq!(c, Control::Stop);
        assert!(serde_json::from_str::<Control>(r#"{"command":"explode"}"#).is_err());
    }
}
