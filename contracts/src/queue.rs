//! The durable work-queue protocol, spoken between producers, consumers and
//! the keeper over ordinary MQTT topics (see [`crate::topics`]).
//!
//! ```text
//! producer --put(Envelope)--> keeper --confirm(Confirm)--> producer
//! consumer --credit(Credit)-> keeper --deliver(Delivery)-> consumer
//! consumer --ack(AckBatch)--> keeper
//! ```
//!
//! A consumer whose credit says `batch: true` gets its deliveries as
//! [`DeliveryMessage::Batch`] (many in one MQTT message); one that leaves it
//! out gets one [`Delivery`] per message, as before.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Envelope;

/// Queue of paid orders waiting for a kitchen.
pub const KITCHEN: &str = "kitchen";
/// Queue of cooked orders waiting for a driver.
pub const DELIVERY: &str = "delivery";
/// Queue of cancellations waiting for the order node's executor (a customer's
/// `DELETE /orders/{id}`, or a kitchen that could not make the order).
pub const CANCELLATION: &str = "cancellation";

/// The dead-letter queue name of `queue`, e.g. `kitchen.dlq`.
pub fn dlq_name(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Keeper -> producer: these puts are stored durably (flushed to disk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// Event ids of the confirmed envelopes; one message confirms a batch.
    pub event_ids: Vec<Uuid>,
}

/// Keeper -> consumer: these `done` acks are stored durably (flushed), so
/// the consumer may stop naming them in [`Credit::settled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acked {
    /// The delivery ids whose acks are on disk.
    pub delivery_ids: Vec<String>,
}

/// Consumer -> keeper: how many unacknowledged deliveries this consumer can
/// hold at once (a kitchen with two free ovens says 2).
///
/// Credit is a window, not an increment: the keeper delivers while the
/// consumer's in-flight count is below `credit`. Sending it again is harmless,
/// which lets a consumer repeat it as a heartbeat. Credit 0 pauses delivery.
///
/// Unknown fields are ignored, unlike in the other messages: a consumer
/// newer than its keeper (one that asks for `batch`, say) must still get
/// work, one delivery per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credit {
    /// Maximum unacknowledged deliveries.
    pub credit: u32,
    /// Identifies one connection of the consumer. A new incarnation tells the
    /// keeper that deliveries sent to the previous one are gone: it returns
    /// them to the queue at once.
    pub incarnation: String,
    /// The consumer reads [`DeliveryMessage::Batch`]: the keeper may send
    /// several deliveries in one message (one MQTT message per batch instead
    /// of per delivery). Absent (false) in older consumers, which get one
    /// [`Delivery`] per message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// Deliveries this consumer is working on now (handed out, not yet
    /// acknowledged). A keeper that restarted, or that sees a new
    /// incarnation, gives them back to it instead of to another consumer:
    /// the work in progress is not started twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Held>,
    /// Deliveries this consumer acknowledged as done whose ack the keeper
    /// has not confirmed ([`Acked`]) yet. An ack can be lost on the way, or
    /// be applied by a keeper that dies before its flush; a keeper finishes
    /// these instead of handing them to another consumer (which would cook
    /// a pizza twice).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<Held>,
}

/// One delivery a consumer holds (see [`Credit::held`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// The delivery id it was handed out under; its ack will name it.
    pub delivery_id: String,
    /// The message's event id.
    pub event_id: uuid::Uuid,
}

/// Keeper -> consumer: one message to work on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Unique id of this delivery; the ack names it.
    pub delivery_id: String,
    /// 1 on first delivery, incremented on every redelivery.
    pub attempt: u32,
    /// Why this is a redelivery (`None` on the first attempt), e.g.
    /// "consumer kitchen-1 went offline" or "retry: oven jammed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivery: Option<String>,
    /// The consumer incarnation this delivery was meant for; a consumer drops
    /// deliveries addressed to an earlier incarnation of itself.
    pub incarnation: String,
    /// The message itself.
    pub envelope: Envelope,
}

/// Keeper -> consumer: what arrives on a deliver topic. A consumer that
/// asked for batches (see [`Credit::batch`]) must read both forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum DeliveryMessage {
    /// Several deliveries in one message.
    Batch {
        /// The deliveries, in the order the keeper handed them out.
        deliveries: Vec<Delivery>,
    },
    /// A single delivery.
    One(Box<Delivery>),
}

impl DeliveryMessage {
    /// Reads a deliver topic's payload into its deliveries, each on its
    /// own: one that does not read (its envelope's payload holds a number
    /// out of range, say, which the keeper's put check lets through) is an
    /// [`Unreadable`] for the consumer to reject, and spoils nothing else.
    ///
    /// Faster than deserialising the untagged enum, which buffers the whole
    /// message before choosing a form: a batch is tried first, and a single
    /// delivery fails that try at its first key. An error means the payload
    /// is neither form, not even a delivery id to reject.
    pub fn parse(payload: &[u8]) -> Result<Vec<Result<Delivery, Unreadable>>, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Batch<'a> {
            #[serde(borrow)]
            deliveries: Vec<&'a serde_json::value::RawValue>,
        }
        if let Ok(b) = serde_json::from_slice::<Batch>(payload) {
            return Ok(b
                .deliveries
                .iter()
                .map(|raw| Unreadable::check(raw.get().as_bytes()))
                .collect());
        }
        match Unreadable::check(payload) {
            Err(u) if u.delivery_id.is_none() => Err(serde::de::Error::custom(u.reason)),
            one => Ok(vec![one]),
        }
    }

    /// The deliveries carried, whatever the form.
    pub fn into_deliveries(self) -> Vec<Delivery> {
        match self {
            DeliveryMessage::Batch { deliveries } => deliveries,
            DeliveryMessage::One(d) => vec![*d],
        }
    }
}

/// A delivery that arrived but does not read as a [`Delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its id, when at least that reads: the consumer rejects it by this id,
    /// with [`Unreadable::reason`], and the keeper dead-letters it.
    pub delivery_id: Option<String>,
    /// The incarnation it was meant for, when that reads.
    pub incarnation: Option<String>,
    /// Why it does not read.
    pub reason: String,
}

impl Unreadable {
    /// Reads one delivery, or says why it does not read.
    fn check(bytes: &[u8]) -> Result<Delivery, Unreadable> {
        #[derive(Deserialize)]
        struct Ids {
            delivery_id: Option<String>,
            incarnation: Option<String>,
        }
        serde_json::from_slice::<Delivery>(bytes).map_err(|e| {
            let ids = serde_json::from_slice::<Ids>(bytes).ok();
            let (delivery_id, incarnation) = ids.map_or((None, None), |i| (i.delivery_id, i.incarnation));
            Unreadable {
                delivery_id,
                incarnation,
                reason: e.to_string(),
            }
        })
    }
}

/// What the consumer did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Handled: delete it.
    Done,
    /// Transient failure: deliver again later, with backoff.
    Retry,
    /// Can never succeed: move it to the dead-letter queue now.
    Reject,
}

/// One acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The delivery being acknowledged.
    pub delivery_id: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// Why, for retry and reject; shown in the DLQ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Consumer -> keeper: one or many acks in one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum AckMessage {
    /// Several acks at once.
    Batch {
        /// The acks.
        acks: Vec<Ack>,
    },
    /// A single ack.
    One(Ack),
}

impl AckMessage {
    /// The acks carried, whatever the form.
    pub fn into_acks(self) -> Vec<Ack> {
        match self {
            AckMessage::Batch { acks } => acks,
            AckMessage::One(a) => vec![a],
        }
    }
}

/// Anyone -> keeper: move dead letters back to their queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requeue {
    /// Dead-letter ids to move back; empty with `all` to move every one.
    #[serde(default)]
    pub ids: Vec<u64>,
    /// Move every dead letter of the queue back.
    #[serde(default)]
    pub all: bool,
}

/// Anyone -> keeper: take one order's messages off a queue, for good.
///
/// Its messages that wait are removed; one in flight is left to its consumer
/// but will not be delivered again; and later puts for the order are
/// confirmed and dropped. This is how a cancellation stops a kitchen ticket
/// that is not cooking yet, and a cooked order before a driver takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// Echoed in the answer.
    pub request_id: String,
    /// The order (the partition key) to withdraw.
    pub order_id: String,
}

/// Keeper -> the client that asked: what a [`Withdraw`] did. Asking again is
/// harmless and is how a client waits for an in-flight message to finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawn {
    /// The request answered.
    pub request_id: String,
    /// The queue.
    pub queue: String,
    /// The order.
    pub order_id: String,
    /// Messages taken off the queue by this request.
    pub removed: u32,
    /// A consumer still holds one of the order's messages.
    pub in_flight: bool,
    /// The highest envelope seq of the order this queue has held or dropped
    /// (0 if none): the cancelling side numbers its events after it.
    pub last_seq: u64,
}

/// One message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeadLetter {
    /// Id within the DLQ, used to re-queue it.
    pub id: u64,
    /// The queue it came from.
    pub queue: String,
    /// Why it is here.
    pub reason: String,
    /// How many deliveries were tried.
    pub attempts: u32,
    /// When it arrived, RFC 3339.
    pub at: String,
    /// The envelope, when the message was well-formed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
    /// The raw payload (lossy UTF-8), when it could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// Keeper -> everyone, retained on [`crate::topics::Topics::dlq_items`]: the
/// newest dead letters of one queue. An object, not a bare list, so that on
/// a signed platform it carries the keeper's seal like the stats do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeadLetterListing {
    /// The queue whose dead letters these are.
    pub queue: String,
    /// Its newest dead letters, oldest first.
    pub letters: Vec<DeadLetter>,
}

/// Keeper -> everyone, every 500 ms on [`crate::topics::Topics::queue_stats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueStats {
    /// When these figures were taken, RFC 3339.
    pub at: String,
    /// One entry per queue.
    pub queues: Vec<QueueFigures>,
}

/// The figures of one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueFigures {
    /// Queue name.
    pub name: String,
    /// Messages ready to deliver now (including ones held back behind an
    /// in-flight message of the same key).
    pub ready: u64,
    /// Messages waiting out a retry backoff.
    pub delayed: u64,
    /// Messages delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Messages in this queue's DLQ.
    pub dlq: u64,
    /// Puts per second, smoothed over about 5 s.
    pub in_rate: f64,
    /// Acks `done` per second, smoothed over about 5 s.
    pub out_rate: f64,
    /// Total puts accepted since the keeper started.
    pub put_total: u64,
    /// Total messages done since the keeper started.
    pub done_total: u64,
    /// Total redeliveries since the keeper started.
    pub redelivered_total: u64,
    /// Total deliveries (first ones and redeliveries) since the keeper
    /// started. Absent from keepers that predate it.
    #[serde(default)]
    pub delivered_total: u64,
    /// Consumers that announced credit.
    pub consumers: Vec<ConsumerFigures>,
}

/// One consumer as the keeper sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsumerFigures {
    /// Consumer (node) id.
    pub id: String,
    /// Its announced credit.
    pub credit: u32,
    /// Deliveries it holds unacknowledged.
    pub in_flight: u32,
    /// Whether it is connected, as far as the keeper knows.
    pub online: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_accepts_one_or_many() {
        let one: AckMessage = serde_json::from_str(r#"{"delivery_id":"d1","outcome":"done"}"#).unwrap();
        assert_eq!(one.into_acks().len(), 1);
        let many: AckMessage = serde_json::from_str(
            r#"{"acks":[{"delivery_id":"d1","outcome":"retry","reason":"busy"},{"delivery_id":"d2","outcome":"reject"}]}"#,
        )
        .unwrap();
        let acks = many.into_acks();
        assert_eq!(acks[0].outcome, Outcome::Retry);
        assert_eq!(acks[1].outcome, Outcome::Reject);
    }

    #[test]
    fn delivery_message_is_one_or_many_and_credit_batch_is_optional() {
        let e = Envelope::new("kitchen.ticket", "o1", 3, "t", "order-1", serde_json::json!({}));
        let d = Delivery {
            delivery_id: "kitchen-1-1".into(),
            attempt: 1,
            redelivery: None,
            incarnation: "k1-abc".into(),
            envelope: e,
        };
        let one = serde_json::to_vec(&d).unwrap();
        assert_eq!(DeliveryMessage::parse(&one).unwrap(), vec![Ok(d.clone())]);
        let one: DeliveryMessage = serde_json::from_slice(&one).unwrap();
        assert_eq!(one.into_deliveries(), vec![d.clone()]);
        let many = serde_json::to_vec(&DeliveryMessage::Batch {
            deliveries: vec![d.clone(), d.clone()],
        })
        .unwrap();
        assert_eq!(DeliveryMessage::parse(&many).unwrap().len(), 2);
        assert!(DeliveryMessage::parse(b"[1,2]").is_err(), "neither form");
        let many: DeliveryMessage = serde_json::from_slice(&many).unwrap();
        assert_eq!(many.into_deliveries().len(), 2);
        // An older consumer's credit (no `batch`) still reads, as false, and
        // a credit without batches is written as before.
        let newer: Credit = serde_json::from_str(r#"{"credit":2,"incarnation":"i","window_ms":5}"#).unwrap();
        assert_eq!(newer.credit, 2, "a field from a newer consumer is ignored");
        let old: Credit = serde_json::from_str(r#"{"credit":2,"incarnation":"i"}"#).unwrap();
        assert!(!old.batch);
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"credit":2,"incarnation":"i"}"#
        );
    }

    #[test]
    fn dlq_name_appends_suffix() {
        assert_eq!(dlq_name(KITCHEN), "kitchen.dlq");
    }

    #[test]
    fn an_unreadable_delivery_spoils_only_itself() {
        let e = Envelope::new("kitchen.ticket", "o1", 1, "t", "order-1", serde_json::json!({}));
        let good = |id: &str| Delivery {
            delivery_id: id.into(),
            attempt: 1,
            redelivery: None,
            incarnation: "k1".into(),
            envelope: e.clone(),
        };
        let good_json = |id: &str| serde_json::to_string(&good(id)).unwrap();
        // Well-formed JSON that the keeper's put check passes, but whose
        // payload a full read refuses (a number out of f64's range).
        let bad = good_json("d-2").replace(r#""payload":{}"#, r#""payload":{"x":1e400}"#);
        let batch = format!(
            r#"{{"deliveries":[{},{bad},{}]}}"#,
            good_json("d-1"),
            good_json("d-3")
        );
        let read = DeliveryMessage::parse(batch.as_bytes()).unwrap();
        assert_eq!(read[0], Ok(good("d-1")));
        assert_eq!(read[2], Ok(good("d-3")));
        let Err(u) = &read[1] else { panic!("{read:?}") };
        assert_eq!(u.delivery_id.as_deref(), Some("d-2"));
        assert_eq!(u.incarnation.as_deref(), Some("k1"));
        assert!(u.reason.contains("number out of range"), "{}", u.reason);
        // Alone, it is still one to reject, not an error.
        let alone = DeliveryMessage::parse(bad.as_bytes()).unwrap();
        assert!(matches!(&alone[..], [Err(u)] if u.delivery_id.as_deref() == Some("d-2")));
    }
}
