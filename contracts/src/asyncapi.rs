//! The AsyncAPI 3 document of every MQTT topic the platform uses: domain
//! events, the work-queue protocol, the event-log stream, heartbeats,
//! control and stats. Channel addresses come from [`Topics`]' builders and
//! payload schemas from the message types themselves (`schemars`), so the
//! document cannot drift from the code; `contracts/asyncapi.yaml` is this
//! document, committed (a test in node fails when they differ).
//!
//! Operations are written from a node's side: `send` is what a node
//! publishes, `receive` what it subscribes to.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::topics::Topics;

/// One channel: its id, how its address is built, what flows on it, and in
/// which direction a node uses it.
struct Channel {
    id: &'static str,
    address: String,
    summary: &'static str,
    /// `(message id, payload schema)`: one or more messages.
    messages: Vec<(String, Value)>,
    /// `send` (a node publishes) or `receive` (a node subscribes).
    action: &'static str,
    retained: bool,
}

/// Parameter descriptions, by the name used in channel addresses.
const PARAMETERS: [(&str, &str); 5] = [
    ("kind", "An event kind, e.g. `order.placed`."),
    ("queue", "A work queue: `kitchen`, `delivery` or `cancellation`."),
    ("client", "The MQTT client (node id) the message is for or from."),
    ("consumer", "The consuming node's id."),
    ("node", "A node id, e.g. `kitchen-1`."),
];

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// An envelope of `kind` whose payload is `payload`.
fn envelope_of(kind: &str, payload: Value) -> Value {
    json!({
        "allOf": [
            { "$ref": "#/components/schemas/Envelope" },
            { "type": "object", "properties": { "kind": { "const": kind }, "payload": payload } }
        ]
    })
}

/// The document for topics under `topics`' prefix, as JSON.
pub fn document(topics: &Topics) -> Value {
    let mut settings = SchemaSettings::draft07().for_serialize();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut g = settings.into_generator();
    g.subschema_for::<crate::Envelope>();

    let events: Vec<(String, Value)> = crate::events::payload_schemas(&mut g)
        .into_iter()
        .map(|(kind, schema)| (format!("event.{kind}"), envelope_of(kind, schema)))
        .collect();
    let tickets: Vec<(String, Value)> = events
        .iter()
        .filter(|(id, _)| {
            [
                crate::events::kind::KITCHEN_TICKET,
                crate::events::kind::DELIVERY_TICKET,
                crate::events::kind::CANCELLATION_REQUEST,
            ]
            .iter()
            .any(|k| id.ends_with(k))
        })
        .cloned()
        .collect();
    let one = |id: &str, schema: Value| vec![(id.to_string(), schema)];
    let channels = vec![
        Channel {
            id: "logPut",
            address: topics.log_put(),
            summary: "A domain event for the broker's durable event log; confirmed on logConfirm once on disk, resent until then.",
            messages: events.clone(),
            action: "send",
            retained: false,
        },
        Channel {
            id: "logConfirm",
            address: topics.log_confirm("{client}"),
            summary: "The event log's word that these events of `client` are on its disk.",
            messages: one("logConfirm", schema_of::<crate::queue::Confirm>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "events",
            address: topics.event("{kind}"),
            summary: "Every stored event again, for plain MQTT watchers; nothing correct depends on it (use the stream).",
            messages: events.clone(),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "logSubscribe",
            address: topics.log_subscribe("{client}"),
            summary: "Starts or renews a subscription to the event log (durable: the cursor survives restarts).",
            messages: one("logSubscribe", schema_of::<crate::stream::Subscribe>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "logDeliver",
            address: topics.log_deliver("{client}"),
            summary: "The next events of a subscription, in log order, within its credit window.",
            messages: one("streamBatch", schema_of::<crate::stream::StreamBatch>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "logAck",
            address: topics.log_ack("{client}"),
            summary: "Everything of a subscription up to a position is applied: moves its cursor.",
            messages: one("streamAck", schema_of::<crate::stream::StreamAck>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "logQuery",
            address: topics.log_query("{client}"),
            summary: "Asks the event log for one order's events.",
            messages: one("logQuery", schema_of::<crate::history::LogQuery>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "logReply",
            address: topics.log_reply("{client}"),
            summary: "The event log's answer to a query.",
            messages: one("logReply", schema_of::<crate::history::LogReply>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "queuePut",
            address: topics.put("{queue}"),
            summary: "Work for a queue; the keeper confirms it on queueConfirm once on disk.",
            messages: tickets,
            action: "send",
            retained: false,
        },
        Channel {
            id: "queueConfirm",
            address: topics.confirm("{queue}", "{client}"),
            summary: "The keeper's word that these puts of `client` are on its disk.",
            messages: one("queueConfirm", schema_of::<crate::queue::Confirm>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "queueCredit",
            address: topics.credit("{queue}", "{consumer}"),
            summary: "How many deliveries a consumer may hold (0: pause); also its liveness.",
            messages: one("credit", schema_of::<crate::queue::Credit>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "queueDeliver",
            address: topics.deliver("{queue}", "{consumer}"),
            summary: "Deliveries to one consumer, one or a batch; each held until acked or its lease expires.",
            messages: one("delivery", schema_of::<crate::queue::DeliveryMessage>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "queueAck",
            address: topics.ack("{queue}", "{consumer}"),
            summary: "A consumer's outcome for deliveries: done, retry (with backoff) or reject (to the DLQ).",
            messages: one("ack", schema_of::<crate::queue::AckMessage>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "queueAcked",
            address: topics.acked("{queue}", "{consumer}"),
            summary: "The keeper's word that these `done` acks are on its disk.",
            messages: one("acked", schema_of::<crate::queue::Acked>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "queueRequeue",
            address: topics.requeue("{queue}"),
            summary: "Moves dead letters back onto the queue (the control room's operator).",
            messages: one("requeue", schema_of::<crate::queue::Requeue>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "queueDeadLetters",
            address: topics.dlq_items("{queue}"),
            summary: "Retained: the queue's dead letters, each with its reason.",
            messages: one("deadLetters", schema_of::<crate::queue::DeadLetterListing>(&mut g)),
            action: "receive",
            retained: true,
        },
        Channel {
            id: "queueWithdraw",
            address: topics.withdraw("{queue}", "{client}"),
            summary: "Takes an order's messages off a queue (a cancellation).",
            messages: one("withdraw", schema_of::<crate::queue::Withdraw>(&mut g)),
            action: "send",
            retained: false,
        },
        Channel {
            id: "queueWithdrawn",
            address: topics.withdrawn("{queue}", "{client}"),
            summary: "The keeper's answer to a withdrawal.",
            messages: one("withdrawn", schema_of::<crate::queue::Withdrawn>(&mut g)),
            action: "receive",
            retained: false,
        },
        Channel {
            id: "queueStats",
            address: topics.queue_stats(),
            summary: "Retained: every queue's figures, every 500 ms.",
            messages: one("queueStats", schema_of::<crate::queue::QueueStats>(&mut g)),
            action: "receive",
            retained: true,
        },
        Channel {
            id: "nodeStatus",
            address: topics.status("{node}"),
            summary: "Retained: a node's heartbeat every second; the broker publishes `offline` (its last will) when it dies.",
            messages: one("nodeStatus", schema_of::<crate::status::NodeStatus>(&mut g)),
            action: "send",
            retained: true,
        },
        Channel {
            id: "control",
            address: topics.control("{node}"),
            summary: "A command from the control room to one node: faults, pause, resume, stop.",
            messages: one("control", schema_of::<crate::status::Control>(&mut g)),
            action: "receive",
            retained: false,
        },
    ];

    let mut channel_map = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for c in &channels {
        let mut refs = Map::new();
        for (id, payload) in &c.messages {
            let name = id.replace('.', "_");
            messages.insert(
                name.clone(),
                json!({ "name": id, "contentType": "application/json", "payload": payload }),
            );
            refs.insert(
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            );
        }
        let parameters: Map<String, Value> = PARAMETERS
            .iter()
            .filter(|(p, _)| c.address.contains(&format!("{{{p}}}")))
            .map(|(p, d)| (p.to_string(), json!({ "description": d })))
            .collect();
        let mut channel = json!({
            "address": c.address,
            "summary": c.summary,
            "messages": Value::Object(refs.clone()),
            "bindings": { "mqtt": { "bindingVersion": "0.2.0" } },
        });
        if !parameters.is_empty() {
            channel["parameters"] = Value::Object(parameters);
        }
        channel_map.insert(c.id.to_string(), channel);
        let op_messages: Vec<Value> = refs
            .keys()
            .map(|name| json!({ "$ref": format!("#/channels/{}/messages/{name}", c.id) }))
            .collect();
        operations.insert(
            format!("{}{}", c.action, capitalised(c.id)),
            json!({
                "action": c.action,
                "channel": { "$ref": format!("#/channels/{}", c.id) },
                "messages": op_messages,
                "bindings": { "mqtt": { "qos": 1, "retain": c.retained, "bindingVersion": "0.2.0" } },
            }),
        );
    }
    let schemas = Value::Object(g.take_definitions(true));
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Pizza Platform",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every MQTT topic of the platform, from a node's side. Messages are JSON, \
                sent at QoS 1. On a signed platform (a trust file) protocol messages carry `signer` \
                and `sig` as their last fields, and envelopes to the broker `mac` tags (contracts::seal, \
                contracts::mac); receivers check them before anything else.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "protocolVersion": "3.1.1",
                "description": "`pizza-node broker` (rumqttd), or any MQTT 3.1.1 broker with `pizza-node keeper` beside it.",
            }
        },
        "channels": Value::Object(channel_map),
        "operations": Value::Object(operations),
        "components": { "messages": Value::Object(messages), "schemas": schemas },
    })
}

fn capitalised(id: &str) -> String {
    let mut c = id.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `topic` (possibly an MQTT filter) is one of `doc`'s channels.
    fn has_channel(doc: &Value, topic: &str) -> bool {
        let filter = topic.replace(['+', '#'], "{");
        doc["channels"].as_object().is_some_and(|cs| {
            cs.values().any(|c| {
                let address = c["address"].as_str().unwrap_or_default();
                if address == topic {
                    return true;
                }
                // A wildcard filter covers the channel whose address has a
                // parameter at the wildcard's place.
                let (Some(at), Some(param_at)) = (filter.find('{'), address.find('{')) else {
                    return false;
                };
                at == param_at && filter[..at] == address[..at]
            })
        })
    }

    #[test]
    fn every_topic_the_code_builds_is_a_channel_of_the_document() {
        let t = Topics::default();
        let doc = document(&t);
        let built = [
            t.event("{kind}"),
            t.all_events(),
            t.put("{queue}"),
            t.confirm("{queue}", "{client}"),
            t.acked("{queue}", "{consumer}"),
            t.credit("{queue}", "{consumer}"),
            t.deliver("{queue}", "{consumer}"),
            t.ack("{queue}", "{consumer}"),
            t.requeue("{queue}"),
            t.dlq_items("{queue}"),
            t.withdraw("{queue}", "{client}"),
            t.withdrawn("{queue}", "{client}"),
            t.queue_stats(),
            t.status("{node}"),
            t.all_status(),
            t.control("{node}"),
            t.log_query("{client}"),
            t.all_log_queries(),
            t.log_reply("{client}"),
            t.log_put(),
            t.log_confirm("{client}"),
            t.log_subscribe("{client}"),
            t.log_deliver("{client}"),
            t.log_ack("{client}"),
        ];
        for topic in built {
            assert!(
                has_channel(&doc, &topic),
                "{topic} is not in the AsyncAPI document"
            );
        }
        assert!(!has_channel(&doc, "pizza/nowhere"));
    }

    #[test]
    fn every_event_kind_has_a_message_with_its_payload_schema() {
        let doc = document(&Topics::default());
        for kind in crate::events::kind::ALL {
            let name = format!("event_{}", kind.replace('.', "_"));
            let m = &doc["components"]["messages"][&name];
            assert_eq!(m["name"], format!("event.{kind}"), "{name}");
            assert_eq!(m["payload"]["allOf"][1]["properties"]["kind"]["const"], *kind);
            let payload = &m["payload"]["allOf"][1]["properties"]["payload"]["$ref"];
            let schema = payload
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"));
            let schema = schema.unwrap_or_else(|| panic!("{name}: {payload}"));
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
        let placed = &doc["components"]["schemas"]["OrderPlaced"]["properties"];
        assert!(
            placed["customer"].is_object() && placed["items"].is_object(),
            "{placed}"
        );
        // Every reference resolves.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#/").skip(1) {
            let path = &r[..r.find('"').unwrap_or(r.len())];
            let target = path.split('/').try_fold(&doc, |v, part| v.get(part));
            assert!(target.is_some(), "dangling $ref #/{path}");
        }
    }
}
