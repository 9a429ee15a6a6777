//! The envelope: the metadata every message carries around its payload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Version of the envelope schema. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One domain event or queue item, with everything needed to route,
/// deduplicate, order and trace it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Schema version of this envelope ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// Unique id of this message; consumers and the keeper deduplicate on it.
    pub event_id: Uuid,
    /// What happened, e.g. `order.paid` (see [`crate::events::kind`]).
    pub kind: String,
    /// The partition key: the keeper never has two messages of one key in
    /// flight, and delivers one key's messages in put order.
    pub order_id: String,
    /// Position of this event in its order's life, from 1.
    pub seq: u64,
    /// Trace id (32 lowercase hex digits, W3C trace-context) shared by every
    /// message caused by one `POST /orders`.
    pub trace_id: String,
    /// The event that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// When it happened, RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub occurred_at: OffsetDateTime,
    /// Id of the node that produced it; the keeper sends put confirms here.
    pub source: String,
    /// The event's own data; its shape is given by `kind`.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// The sender's Ed25519 signature over the envelope without this field
    /// and `mac` (hex; see [`crate::trust`]). `None` on a platform run
    /// without a trust file, and where `mac` authenticates it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// What a node's envelope for the broker carries instead of `sig`: a tag
    /// per broker id of the trust file, under the key only that broker and
    /// the sender share (hex; see [`crate::mac`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mac: BTreeMap<String, String>,
}

impl Envelope {
    /// A new envelope with a fresh event id, stamped now.
    pub fn new(
        kind: impl Into<String>,
        order_id: impl Into<String>,
        seq: u64,
        trace_id: impl Into<String>,
        source: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Envelope {
            schema: SCHEMA_VERSION,
            event_id: Uuid::new_v4(),
            kind: kind.into(),
            order_id: order_id.into(),
            seq,
            trace_id: trace_id.into(),
            causation_id: None,
            occurred_at: OffsetDateTime::now_utc(),
            source: source.into(),
            payload,
            sig: None,
            mac: BTreeMap::new(),
        }
    }

    /// Marks this envelope as caused by `cause`, inheriting its trace.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.causation_id = Some(cause.event_id);
        self.trace_id = cause.trace_id.clone();
        self
    }

    /// The event id of the event of `kind`, numbered `seq`, that follows
    /// from the event `cause`: a name-based (v5) UUID, so the same step
    /// taken twice (a ticket redelivered to a second kitchen, a retry after
    /// a crash) yields the same id, and the event log and the queues store
    /// it once. Whoever does the work second is fenced off by construction.
    pub fn derived_id(cause: Uuid, kind: &str, seq: u64) -> Uuid {
        let mut name = Vec::with_capacity(16 + kind.len() + 8);
        name.extend_from_slice(cause.as_bytes());
        name.extend_from_slice(kind.as_bytes());
        name.extend_from_slice(&seq.to_be_bytes());
        Uuid::new_v5(&Uuid::NAMESPACE_OID, &name)
    }

    /// Decodes the payload as `T`.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}

/// A fresh W3C trace id: 32 lowercase hex digits, never all zero.
pub fn new_trace_id() -> String {
    Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_snake_case_json() {
        let e = Envelope::new(
            "order.paid",
            "o-1",
            2,
            new_trace_id(),
            "order-1",
            serde_json::json!({"a": 1}),
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"event_id\""));
        assert!(text.contains("\"occurred_at\""));
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = Envelope::new("k", "o", 1, "t", "s", serde_json::Value::Null);
        let mut v = serde_json::to_value(&e).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Envelope>(v).is_err());
    }

    #[test]
    fn trace_ids_are_w3c_shaped() {
        let t = new_trace_id();
        assert_eq!(t.len(), 32);
        assert!(t
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
