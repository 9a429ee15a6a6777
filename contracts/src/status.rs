//! Node heartbeats (retained on `pizza/nodes/<id>/status`) and the commands
//! the control room sends on `pizza/control/<id>`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// Role, e.g. `kitchen`.
    pub role: String,
    /// Process id (0 in the LWT, which the broker sends for a dead process).
    pub pid: u32,
    /// The host the process runs on (its hostname), so a pid can be checked
    /// where it means something. Empty from nodes that predate it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
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
    pub figures: Figures,
}

/// The figures a node reports beside its counters: those of its role, the
/// rest absent. On the wire one flat JSON object (`{"http":…,"ovens":4}`);
/// here one typed field per figure, so a renamed figure is a compile error
/// on both sides, not an empty column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Figures {
    /// Nodes with an HTTP API: its base URL (`http://host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Its Prometheus `/metrics` URL, when it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// A keeper: the epoch it serves the prefix under (a standby takes over
    /// with a higher one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The order node's.
    #[serde(flatten)]
    pub order: OrderFigures,
    /// Payment's.
    #[serde(flatten)]
    pub payment: PaymentFigures,
    /// A kitchen's.
    #[serde(flatten)]
    pub kitchen: KitchenFigures,
    /// Delivery's.
    #[serde(flatten)]
    pub delivery: DeliveryFigures,
}

/// Where the order node's circuit breaker around payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once, without trying.
    Open,
    /// One trial call goes through; its result decides.
    HalfOpen,
}

impl BreakerState {
    /// Every state, in the order the metrics list them.
    pub const ALL: [BreakerState; 3] = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];

    /// Its name on the wire, e.g. `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The order node's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderFigures {
    /// The breaker's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
    /// Payment calls failed in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_failures: Option<u64>,
    /// Times the breaker opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_opened: Option<u64>,
    /// Calls the open breaker refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_rejected: Option<u64>,
    /// When an open breaker lets a trial call through, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_half_open_at: Option<String>,
    /// Events waiting behind a gap in their order's seqs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<u64>,
    /// Events released once their gap filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_total: Option<u64>,
    /// Orders in the book by state (`{"queued":3,…}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<BTreeMap<String, u64>>,
}

/// Payment's figures: outcomes since it started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PaymentFigures {
    /// Payments captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<u64>,
    /// Payments declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined: Option<u64>,
    /// Payments refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<u64>,
    /// Calls that failed (injected or configured failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
}

/// A kitchen's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KitchenFigures {
    /// Its ovens (its credit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovens: Option<u64>,
    /// Ovens cooking now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovens_busy: Option<u64>,
    /// Ingredients running low, as `"basil: 3"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_low: Option<Vec<String>>,
}

/// Delivery's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryFigures {
    /// Drivers waiting for an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drivers_free: Option<u64>,
    /// Drivers on a trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drivers_busy: Option<u64>,
    /// Orders delivered by this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// Every driver and where they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drivers: Option<Vec<crate::api::DriverView>>,
}

impl NodeStatus {
    /// The last will the broker publishes when the node's connection dies.
    pub fn offline(id: &str, role: &str) -> Self {
        NodeStatus {
            id: id.to_string(),
            role: role.to_string(),
            pid: 0,
            host: String::new(),
            state: NodeState::Offline,
            started_at: String::new(),
            at: String::new(),
            handled: 0,
            failed: 0,
            in_flight: 0,
            outbox: 0,
            faults: Faults::default(),
            figures: Figures::default(),
        }
    }
}

/// Faults injected into a node. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Probability (0..1) that an incoming message is handled twice, and
    /// that an event this node publishes is sent twice.
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Probability (0..1) that an event this node publishes is held back
    /// (after its outbox write) for a random time within the reorder window,
    /// so that the order's later events overtake it.
    #[serde(default)]
    pub reorder_rate: f64,
    /// The reorder window in ms; 0 means [`DEFAULT_REORDER_WINDOW_MS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reorder_window_ms: u64,
    /// Take no new work.
    #[serde(default)]
    pub paused: bool,
    /// Ingredients this node pretends to be out of (kitchen only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_stock: Vec<String>,
}

/// The longest injected delay a node accepts, in ms (a minute).
pub const MAX_FAULT_MS: u64 = 60_000;

/// The reorder window when [`Faults::reorder_window_ms`] is 0: long enough
/// for an order's next events (a few ms apart without prep or trip time) to
/// overtake a held-back one, short enough not to slow a demo down.
pub const DEFAULT_REORDER_WINDOW_MS: u64 = 500;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Faults {
    /// Whether any fault is active.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }

    /// Checks that the faults are ones a node can act on, naming the first
    /// field that is not: rates are probabilities (0..=1), delays at most
    /// [`MAX_FAULT_MS`] (a larger one would hang a handler past any stop),
    /// and a handful of short ingredient names. A node refuses a command
    /// whose faults fail this, instead of applying them.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
        ];
        for (field, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{field} must be between 0 and 1, got {rate}"));
            }
        }
        for (field, ms) in [
            ("latency_ms", self.latency_ms),
            ("reorder_window_ms", self.reorder_window_ms),
        ] {
            if ms > MAX_FAULT_MS {
                return Err(format!("{field} must be at most {MAX_FAULT_MS}, got {ms}"));
            }
        }
        if self.out_of_stock.len() > 32 || self.out_of_stock.iter().any(|i| i.is_empty() || i.len() > 64) {
            return Err("out_of_stock takes at most 32 ingredient names of 1 to 64 characters".into());
        }
        Ok(())
    }

    /// The reorder window in effect, in ms.
    pub fn reorder_window(&self) -> u64 {
        if self.reorder_window_ms == 0 {
            DEFAULT_REORDER_WINDOW_MS
        } else {
            self.reorder_window_ms
        }
    }
}

/// A command from the control room to one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    fn figures_are_one_flat_object_on_the_wire_with_only_the_roles_own() {
        let mut f = Figures {
            http: Some("http://127.0.0.1:8080".into()),
            ..Figures::default()
        };
        f.order.breaker = Some(BreakerState::HalfOpen);
        f.order.held_back = Some(0);
        f.kitchen.ovens = Some(4);
        let wire = serde_json::to_value(&f).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"http": "http://127.0.0.1:8080", "breaker": "half_open", "held_back": 0, "ovens": 4})
        );
        assert_eq!(serde_json::from_value::<Figures>(wire).unwrap(), f);
        // A figure this build does not know (a newer node) is left out, not
        // a reason to drop the whole heartbeat.
        let newer = serde_json::json!({"ovens": 2, "oven_temperature": 250});
        let read: Figures = serde_json::from_value(newer).unwrap();
        assert_eq!(read.kitchen.ovens, Some(2));
        assert_eq!(
            serde_json::to_value(Figures::default()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn faults_a_node_cannot_act_on_are_refused_by_name() {
        assert_eq!(Faults::default().validate(), Ok(()));
        let bad = |f: Faults| f.validate().unwrap_err();
        assert!(bad(Faults {
            error_rate: -5.0,
            ..Faults::default()
        })
        .starts_with("error_rate"));
        assert!(bad(Faults {
            drop_rate: 7.0,
            ..Faults::default()
        })
        .starts_with("drop_rate"));
        assert!(bad(Faults {
            reorder_rate: f64::NAN,
            ..Faults::default()
        })
        .starts_with("reorder_rate"));
        assert!(bad(Faults {
            latency_ms: u64::MAX,
            ..Faults::default()
        })
        .starts_with("latency_ms"));
        let stock = Faults {
            out_of_stock: vec!["x".repeat(200)],
            ..Faults::default()
        };
        assert!(bad(stock).starts_with("out_of_stock"));
        let fine = Faults {
            latency_ms: MAX_FAULT_MS,
            error_rate: 1.0,
            out_of_stock: vec!["basil".into()],
            ..Faults::default()
        };
        assert_eq!(fine.validate(), Ok(()));
    }

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

    #[test]
    fn reorder_fields_are_optional_both_ways() {
        // A command written before the reorder fault existed still parses.
        let old: Faults = serde_json::from_str(r#"{"duplicate_rate":0.5}"#).unwrap();
        assert_eq!(old.reorder_rate, 0.0);
        assert_eq!(old.reorder_window(), DEFAULT_REORDER_WINDOW_MS);
        let f: Faults = serde_json::from_str(r#"{"reorder_rate":0.3,"reorder_window_ms":200}"#).unwrap();
        assert_eq!((f.reorder_rate, f.reorder_window()), (0.3, 200));
        let text = serde_json::to_string(&Faults::default()).unwrap();
        assert!(!text.contains("reorder_window_ms"), "{text}");
        assert!(text.contains("\"reorder_rate\":0.0"), "{text}");
    }
}
