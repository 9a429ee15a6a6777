//! Who may say what: node keys, the trust file, signed envelopes, and the
//! permission table (which role may publish which event kind, put to and
//! consume which queue).
//!
//! Every envelope a node sends carries `sig`: an Ed25519 signature, by the
//! node named in its `source`, over the envelope's JSON without `sig`
//! ([`signed_bytes`]). Serialization is deterministic (struct fields in
//! declaration order, payload maps sorted), so a receiver that parsed the
//! envelope re-creates exactly the signed bytes. A receiver checks the
//! signature against the key the trust file lists for `source`, then the
//! permission of that node's role, before anything else.
//!
//! Ed25519 rather than an HMAC per node: anyone holding the trust file can
//! check a signature, but only the key's owner can make one, so no node (and
//! no reader of the trust file) can speak for another. Envelopes a node
//! sends to the broker (events, queue puts), the bulk of the traffic, carry
//! `mac` tags instead, under keys only the node and the broker can derive
//! from the same keys ([`crate::mac`], [`Trust::verify_for`]): as strong
//! against every other node, and a fraction of the cost.
//!
//! Types and checks only, no I/O: reading the files is the nodes' business.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::events::kind;
use crate::mac::PairKey;
use crate::queue::{CANCELLATION, DELIVERY, KITCHEN};
use crate::Envelope;

/// The roles of the trust file.
pub mod role {
    /// The order service.
    pub const ORDER: &str = "order";
    /// The payment service.
    pub const PAYMENT: &str = "payment";
    /// A kitchen.
    pub const KITCHEN: &str = "kitchen";
    /// The delivery service.
    pub const DELIVERY: &str = "delivery";
    /// The broker, its keeper and event log (also `pizza-node keeper`).
    pub const BROKER: &str = "broker";
    /// The control room.
    pub const CONTROL: &str = "control";
    /// The generic `pizza-node producer` / `consumer` of the queue demos.
    pub const WORKER: &str = "worker";
    /// Every role a trust file may name.
    pub const ALL: [&str; 7] = [BROKER, ORDER, PAYMENT, KITCHEN, DELIVERY, CONTROL, WORKER];
    /// The node role of `pizza-node put`, a [`WORKER`] in the trust file.
    pub const PRODUCER: &str = "producer";
    /// The node role of `pizza-node consume`, a [`WORKER`] in the trust file.
    pub const CONSUMER: &str = "consumer";
}

/// The trust-file role of a node that runs as `pizza-node <node_role>`:
/// the keeper is the broker's, the queue demos' producer and consumer are
/// workers, the services are themselves.
pub fn role_for(node_role: &str) -> &str {
    match node_role {
        "keeper" => role::BROKER,
        role::PRODUCER | role::CONSUMER => role::WORKER,
        other => other,
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `sig` at all.
    #[error("unsigned: the message has no signature")]
    Unsigned,
    /// `source` is not in the trust file.
    #[error("unknown sender '{0}': not in the trust file")]
    UnknownSender(String),
    /// The signature does not match `source`'s key and the bytes.
    #[error("bad signature: not signed by '{0}', or changed after signing")]
    BadSignature(String),
    /// A real node, outside its role's permissions.
    #[error("'{sender}' (role {role}) may not {action}")]
    NotPermitted {
        /// The signing node.
        sender: String,
        /// Its role in the trust file.
        role: String,
        /// What it tried, e.g. `publish order.delivered`.
        action: String,
    },
}

impl Refusal {
    /// Who the refused message claimed to be from, if it named anyone.
    pub fn sender(&self) -> &str {
        match self {
            Refusal::Unsigned => "",
            Refusal::UnknownSender(s) | Refusal::BadSignature(s) => s,
            Refusal::NotPermitted { sender, .. } => sender,
        }
    }
}

/// May `role` publish events of `kind` to the event log? The business
/// kinds ([`kind::ALL`]) only from their roles; other kinds (the demos',
/// the benchmarks') from the generic workers.
pub fn may_publish(role: &str, kind: &str) -> bool {
    use kind::*;
    if !ALL.contains(&kind) {
        return role == role::WORKER;
    }
    let allowed: &[&str] = match role {
        role::ORDER => &[
            ORDER_PLACED,
            ORDER_PAID,
            ORDER_REJECTED,
            ORDER_QUEUED,
            ORDER_CANCELLING,
            ORDER_CANCELLED,
            ORDER_FAILED,
            PAYMENT_REFUNDED,
            CUSTOMER_NOTIFIED,
            SAGA_STEP,
        ],
        role::KITCHEN => &[ORDER_COOKING, ORDER_READY, ORDER_CANCELLING, ORDER_FAILED],
        role::DELIVERY => &[DRIVER_ASSIGNED, CUSTOMER_NOTIFIED, ORDER_DELIVERED, ORDER_FAILED],
        role::BROKER => &[QUEUE_DEAD_LETTERED, SECURITY_REFUSED],
        _ => &[],
    };
    allowed.contains(&kind)
}

/// The business queues and who puts to each; any other queue is the demos'.
const PUTS: [(&str, &str); 3] = [
    (KITCHEN, role::ORDER),
    (CANCELLATION, role::ORDER),
    (DELIVERY, role::KITCHEN),
];

/// The business queues and who consumes each.
const CONSUMES: [(&str, &str); 3] = [
    (KITCHEN, role::KITCHEN),
    (CANCELLATION, role::ORDER),
    (DELIVERY, role::DELIVERY),
];

/// May `role` put messages on `queue`? The business queues only from their
/// producer's role; the demos' queues from the generic workers.
pub fn may_put(role: &str, queue: &str) -> bool {
    allowed(&PUTS, role, queue)
}

/// May `role` consume `queue`?
pub fn may_consume(role: &str, queue: &str) -> bool {
    allowed(&CONSUMES, role, queue)
}

fn allowed(table: &[(&str, &str)], role: &str, queue: &str) -> bool {
    match table.iter().find(|(q, _)| *q == queue) {
        Some((_, r)) => *r == role,
        None => role == role::WORKER,
    }
}

/// A node's private key, and the id it signs as.
pub struct Signer {
    id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Signer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A key from 32 random bytes (the caller draws them).
    pub fn from_seed(id: impl Into<String>, seed: [u8; 32]) -> Signer {
        Signer {
            id: id.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A key file's text: the 32-byte secret in hex.
    pub fn from_text(id: impl Into<String>, text: &str) -> Result<Signer, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("a key is 32 bytes, this one is {}", b.len()))?;
        Ok(Signer::from_seed(id, seed))
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The id it signs as.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public half, as the trust file lists it (hex).
    pub fn public(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// `env` signed (any earlier `sig` is replaced).
    pub fn sign(&self, env: &Envelope) -> Envelope {
        let mut signed = env.clone();
        signed.sig = Some(self.signature(&signed_bytes(env)));
        signed
    }

    /// The signature of `bytes`, hex.
    pub fn signature(&self, bytes: &[u8]) -> String {
        hex::encode(self.key.sign(bytes).to_bytes())
    }

    /// The X25519 secret of this key (the first half of its SHA-512, as
    /// Ed25519 expands it), for [`crate::mac::PairKey`].
    pub(crate) fn scalar_bytes(&self) -> [u8; 32] {
        self.key.to_scalar_bytes()
    }

    /// The private key as PKCS#8 DER, the form JWT libraries take.
    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>, String> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        self.key
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|e| format!("cannot encode the key: {e}"))
    }
}

/// The bytes an envelope's signature or tags cover: its JSON without `sig`
/// and `mac`.
pub fn signed_bytes(env: &Envelope) -> Vec<u8> {
    let unsigned = Unsigned {
        schema: env.schema,
        event_id: &env.event_id,
        kind: &env.kind,
        order_id: &env.order_id,
        seq: env.seq,
        trace_id: &env.trace_id,
        causation_id: env.causation_id.as_ref(),
        occurred_at: env.occurred_at,
        source: &env.source,
        payload: &env.payload,
    };
    // Serializing a parsed envelope cannot fail (no maps with non-string keys).
    serde_json::to_vec(&unsigned).unwrap_or_default()
}

/// An [`Envelope`] as it serializes without `sig` and `mac`, borrowed: a
/// copy of every envelope (its payload too) per check cost more than the
/// check. The same fields in the same order, with the same attributes (a
/// test holds the bytes equal).
#[derive(Serialize)]
struct Unsigned<'a> {
    schema: u32,
    event_id: &'a uuid::Uuid,
    kind: &'a str,
    order_id: &'a str,
    seq: u64,
    trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a uuid::Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: time::OffsetDateTime,
    source: &'a str,
    payload: &'a serde_json::Value,
}

/// One node of the trust file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trusted {
    /// Its role (see [`role`]).
    pub role: String,
    /// Its public key, hex.
    pub key: String,
}

/// The trust file: node id -> role and public key. JSON,
/// `{"nodes":{"kitchen-1":{"role":"kitchen","key":"…"}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    /// Every node that may speak on the platform.
    pub nodes: BTreeMap<String, Trusted>,
}

/// A parsed trust file, keys decoded once.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    nodes: BTreeMap<String, (String, VerifyingKey)>,
}

impl Trust {
    /// Decodes every key; names the first node whose key is unusable.
    pub fn new(file: &TrustFile) -> Result<Trust, String> {
        let mut nodes = BTreeMap::new();
        for (id, t) in &file.nodes {
            let bytes: [u8; 32] = hex::decode(&t.key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("node '{id}': the key is not 32 bytes of hex"))?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|e| format!("node '{id}': {e}"))?;
            nodes.insert(id.clone(), (t.role.clone(), key));
        }
        Ok(Trust { nodes })
    }

    /// Whether `id` is listed.
    pub fn knows(&self, id: &str) -> bool {
        self.nodes.contains_key(id)
    }

    /// Whether any listed node has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.nodes.values().any(|(r, _)| r == role)
    }

    /// `id`'s role and public key (32 bytes), if listed.
    pub fn public_key(&self, id: &str) -> Option<(&str, [u8; 32])> {
        self.nodes.get(id).map(|(r, k)| (r.as_str(), k.to_bytes()))
    }

    /// `id`'s role, if listed.
    pub fn role_of(&self, id: &str) -> Option<&str> {
        self.nodes.get(id).map(|(r, _)| r.as_str())
    }

    /// Checks `env`'s signature by its `source`; returns the sender's role.
    pub fn verify(&self, env: &Envelope) -> Result<&str, Refusal> {
        self.verify_for(env, None)
    }

    /// Checks `env` as received by `receiver` (its id, and the key it shares
    /// with `env.source`, see [`crate::mac`]): signed by its source, or
    /// tagged by it for this receiver. Returns the sender's role.
    pub fn verify_for(&self, env: &Envelope, receiver: Option<(&str, &PairKey)>) -> Result<&str, Refusal> {
        if let Some(sig) = env.sig.as_deref() {
            return self.verify_bytes(&env.source, &signed_bytes(env), sig);
        }
        if env.mac.is_empty() {
            return Err(Refusal::Unsigned);
        }
        let tag = receiver.and_then(|(me, _)| env.mac.get(me));
        self.verify_tagged(&env.source, &signed_bytes(env), tag.map(String::as_str), receiver)
    }

    /// Checks that `tag` is `source`'s tag of `bytes` (an envelope without
    /// `sig` and `mac`, as [`signed_bytes`] or the broker's zero-copy read
    /// makes them) for `receiver`; returns the sender's role.
    pub fn verify_tagged(
        &self,
        source: &str,
        bytes: &[u8],
        tag: Option<&str>,
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<&str, Refusal> {
        let (role, _) = self
            .nodes
            .get(source)
            .ok_or_else(|| Refusal::UnknownSender(source.to_string()))?;
        let tagged = match (receiver, tag) {
            (Some((me, key)), Some(tag)) => key.check(source, me, bytes, tag),
            _ => false,
        };
        if tagged {
            Ok(role)
        } else {
            Err(Refusal::BadSignature(source.to_string()))
        }
    }

    /// The ids and public keys of the nodes of `role`.
    pub fn nodes_of_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = (&'a str, [u8; 32])> + 'a {
        self.nodes
            .iter()
            .filter(move |(_, (r, _))| r == role)
            .map(|(id, (_, k))| (id.as_str(), k.to_bytes()))
    }

    /// Checks that `sig` (hex) is node `id`'s signature of `bytes`; returns
    /// its role.
    pub fn verify_bytes(&self, id: &str, bytes: &[u8], sig: &str) -> Result<&str, Refusal> {
        let (role, key) = self
            .nodes
            .get(id)
            .ok_or_else(|| Refusal::UnknownSender(id.to_string()))?;
        let bad = || Refusal::BadSignature(id.to_string());
        let sig: [u8; 64] = hex::decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        key.verify(bytes, &Signature::from_bytes(&sig))
            .map_err(|_| bad())?;
        Ok(role)
    }

    /// An event for the log: signed by its source, whose role may publish
    /// its kind.
    pub fn check_event(&self, env: &Envelope) -> Result<(), Refusal> {
        self.check_event_for(env, None)
    }

    /// [`Trust::check_event`] by `receiver`, which takes tags too (see
    /// [`Trust::verify_for`]).
    pub fn check_event_for(&self, env: &Envelope, receiver: Option<(&str, &PairKey)>) -> Result<(), Refusal> {
        let role = self.verify_for(env, receiver)?;
        Act::Publish(&env.kind).permit(&env.source, role)
    }

    /// The check of [`Trust::check_event_for`] or [`Trust::check_put_for`]
    /// for an envelope the receiver read as bytes (see
    /// [`Trust::verify_tagged`]): `source` tagged `bytes` for this receiver
    /// and may `act`.
    pub fn check_tagged(
        &self,
        source: &str,
        act: Act<'_>,
        bytes: &[u8],
        tag: Option<&str>,
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<(), Refusal> {
        let role = self.verify_tagged(source, bytes, tag, receiver)?;
        act.permit(source, role)
    }

    /// A message put on `queue`: signed by its source, whose role may put
    /// there.
    pub fn check_put(&self, env: &Envelope, queue: &str) -> Result<(), Refusal> {
        self.check_put_for(env, queue, None)
    }

    /// [`Trust::check_put`] by `receiver` (see [`Trust::verify_for`]).
    pub fn check_put_for(
        &self,
        env: &Envelope,
        queue: &str,
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<(), Refusal> {
        let role = self.verify_for(env, receiver)?;
        Act::Put(queue).permit(&env.source, role)
    }

    /// A sealed protocol message ([`crate::seal`]) as `receiver` gets it
    /// (needed for a tagged seal, see [`crate::seal::Opened::verify`]):
    /// sealed by a listed node whose role is one of `roles` (any role if
    /// empty). Returns the signer.
    pub fn check_sealed(
        &self,
        opened: &crate::seal::Opened<'_>,
        roles: &[&str],
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<String, Refusal> {
        let (signer, role) = opened.verify(self, receiver)?;
        if roles.is_empty() || roles.contains(&role) {
            Ok(signer.to_string())
        } else {
            Err(Refusal::NotPermitted {
                sender: signer.to_string(),
                role: role.to_string(),
                action: format!("send this (only {})", roles.join(", ")),
            })
        }
    }

    /// A sealed message only node `sender` may send (its credit, ack or
    /// heartbeat, on a topic that names it): sealed by exactly that node,
    /// whose role is one of `roles` (any if empty).
    pub fn check_sealed_by(
        &self,
        opened: &crate::seal::Opened<'_>,
        sender: &str,
        roles: &[&str],
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<(), Refusal> {
        let signer = self.check_sealed(opened, roles, receiver)?;
        if signer == sender {
            Ok(())
        } else {
            Err(Refusal::NotPermitted {
                role: self.role_of(&signer).unwrap_or_default().to_string(),
                sender: signer,
                action: format!("speak for {sender}"),
            })
        }
    }

    /// May node `id` consume `queue`? (Credits name their consumer in the
    /// topic.)
    pub fn check_consumer(&self, id: &str, queue: &str) -> Result<(), Refusal> {
        let role = self
            .role_of(id)
            .ok_or_else(|| Refusal::UnknownSender(id.to_string()))?;
        if may_consume(role, queue) {
            Ok(())
        } else {
            Err(Refusal::NotPermitted {
                sender: id.to_string(),
                role: role.to_string(),
                action: format!("consume queue {queue}"),
            })
        }
    }
}

/// What an envelope asks of its receiver, in the permission table's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act<'a> {
    /// Be appended to the event log as an event of this kind.
    Publish(&'a str),
    /// Be put on this queue.
    Put(&'a str),
}

impl Act<'_> {
    /// Whether `sender`, of `role`, may do this.
    pub fn permit(self, sender: &str, role: &str) -> Result<(), Refusal> {
        let ok = match self {
            Act::Publish(kind) => may_publish(role, kind),
            Act::Put(queue) => may_put(role, queue),
        };
        if ok {
            return Ok(());
        }
        // Formatted only for a refusal: this runs for every event and put.
        let action = match self {
            Act::Publish(kind) => format!("publish {kind}"),
            Act::Put(queue) => format!("put on queue {queue}"),
        };
        Err(Refusal::NotPermitted {
            sender: sender.to_string(),
            role: role.to_string(),
            action,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_signed_bytes_are_the_envelope_without_sig_and_mac() {
        let mut env = Envelope::new(
            "order.paid",
            "o-1",
            2,
            "t",
            "order",
            serde_json::json!({"amount": 12.5, "items": [{"name": "Margherita \u{1F355}"}]}),
        );
        env.causation_id = Some(uuid::Uuid::new_v4());
        let plain = serde_json::to_vec(&env).expect("serializes");
        env.sig = Some("ab".repeat(64));
        env.mac.insert("broker".into(), "cd".repeat(32));
        assert_eq!(signed_bytes(&env), plain);
        env.causation_id = None;
        let mut bare = env.clone();
        bare.sig = None;
        bare.mac.clear();
        assert_eq!(signed_bytes(&env), serde_json::to_vec(&bare).expect("serializes"));
    }

    fn signer(id: &str, n: u8) -> Signer {
        Signer::from_seed(id, [n; 32])
    }

    /// A trust file listing `nodes` with their roles (also for the token
    /// tests).
    pub(crate) fn trust(nodes: &[(&Signer, &str)]) -> Trust {
        let file = TrustFile {
            nodes: nodes
                .iter()
                .map(|(s, role)| {
                    let t = Trusted {
                        role: role.to_string(),
                        key: s.public(),
                    };
                    (s.id().to_string(), t)
                })
                .collect(),
        };
        Trust::new(&file).unwrap()
    }

    fn event(kind: &str, source: &str) -> Envelope {
        Envelope::new(
            kind,
            "ord_1",
            7,
            "t",
            source,
            serde_json::json!({"driver": "Ada", "n": 1.5}),
        )
    }

    #[test]
    fn a_signed_envelope_verifies_after_a_trip_over_the_wire() {
        let delivery = signer("delivery", 1);
        let t = trust(&[(&delivery, role::DELIVERY)]);
        let signed = delivery.sign(&event(kind::ORDER_DELIVERED, "delivery"));
        let wire = serde_json::to_vec(&signed).unwrap();
        let back: Envelope = serde_json::from_slice(&wire).unwrap();
        assert_eq!(t.check_event(&back), Ok(()));
        assert_eq!(t.verify(&back), Ok(role::DELIVERY));
    }

    #[test]
    fn forgeries_are_refused_with_the_reason() {
        let delivery = signer("delivery", 1);
        let kitchen = signer("kitchen-1", 2);
        let t = trust(&[(&delivery, role::DELIVERY), (&kitchen, role::KITCHEN)]);
        let real = event(kind::ORDER_DELIVERED, "delivery");

        assert_eq!(t.check_event(&real), Err(Refusal::Unsigned));
        // Signed by the kitchen, claiming to be delivery.
        assert_eq!(
            t.check_event(&kitchen.sign(&real)),
            Err(Refusal::BadSignature("delivery".into()))
        );
        // Changed after signing.
        let mut changed = delivery.sign(&real);
        changed.payload["driver"] = serde_json::json!("Mallory");
        assert_eq!(
            t.check_event(&changed),
            Err(Refusal::BadSignature("delivery".into()))
        );
        let mut reseq = delivery.sign(&real);
        reseq.seq = 5;
        assert!(t.check_event(&reseq).is_err());
        // A key nobody listed.
        let stranger = signer("mallory", 9);
        let e = stranger.sign(&event(kind::ORDER_DELIVERED, "mallory"));
        assert_eq!(t.check_event(&e), Err(Refusal::UnknownSender("mallory".into())));
        // A real kitchen outside its role.
        let e = kitchen.sign(&event(kind::ORDER_DELIVERED, "kitchen-1"));
        assert!(
            matches!(t.check_event(&e), Err(Refusal::NotPermitted { .. })),
            "{:?}",
            t.check_event(&e)
        );
        assert!(t.check_put(&e, KITCHEN).is_err());
        assert_eq!(t.check_put(&e, DELIVERY), Ok(()));
    }

    #[test]
    fn the_permission_table_gives_each_role_its_own_events_and_queues() {
        assert!(may_publish(role::DELIVERY, kind::ORDER_DELIVERED));
        assert!(!may_publish(role::KITCHEN, kind::ORDER_DELIVERED));
        assert!(may_publish(role::KITCHEN, kind::ORDER_READY));
        assert!(!may_publish(role::ORDER, kind::ORDER_COOKING));
        assert!(!may_publish(role::CONTROL, kind::ORDER_PLACED));
        for k in kind::ALL {
            assert!(!may_publish("stranger", k));
        }
        assert!(may_put(role::ORDER, KITCHEN) && !may_put(role::KITCHEN, KITCHEN));
        assert!(may_put(role::KITCHEN, DELIVERY) && !may_put(role::ORDER, DELIVERY));
        assert!(may_consume(role::KITCHEN, KITCHEN) && !may_consume(role::WORKER, KITCHEN));
        assert!(may_put(role::WORKER, "demo") && may_consume(role::WORKER, "demo"));
        assert!(!may_put(role::ORDER, "demo"));
        assert!(may_publish(role::WORKER, "bench.message") && !may_publish(role::ORDER, "bench.message"));
        assert!(!may_publish(role::WORKER, kind::ORDER_PLACED));
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_named() {
        let s = signer("order", 3);
        let back = Signer::from_text("order", &format!("{}\n", s.to_text())).unwrap();
        assert_eq!(back.public(), s.public());
        assert!(Signer::from_text("order", "abc").is_err());
        assert!(Signer::from_text("order", "00").unwrap_err().contains("32 bytes"));
        let mut file = TrustFile::default();
        file.nodes.insert(
            "x".into(),
            Trusted {
                role: "order".into(),
                key: "zz".into(),
            },
        );
        assert!(Trust::new(&file).unwrap_err().contains("'x'"));
    }
}
