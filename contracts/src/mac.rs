//! Pair keys: what an envelope on its way to the broker is authenticated
//! with, instead of an Ed25519 signature, because checking a signature per
//! event and per queue put cost a third of the platform's throughput.
//!
//! A node and the broker share a key that nobody else can compute: the
//! X25519 Diffie-Hellman of one's Ed25519 secret and the other's public key
//! from the trust file (the conversion libsodium uses), run through
//! HMAC-SHA256 with both ids. So the trust file needs nothing new, no
//! secret travels, and a kitchen cannot speak for the order node (it does
//! not know the order node's pair key). What is lost against a signature is
//! only that the broker could make a node's tag itself; the broker is the
//! one that stores and hands out every message anyway.
//!
//! An envelope carries `mac`: one tag per broker of the trust file (the
//! embedded one, a standby keeper), each HMAC-SHA256 under the pair key
//! over `source`, the receiver's id and [`crate::trust::signed_bytes`].
//! Protocol messages between one node and the broker (credits, acks,
//! deliveries, confirms, stream batches; `crate::seal`) carry tags the same
//! way, for their one receiver. Heartbeats, control commands, stats and
//! alerts, which everyone may read and check, stay signed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::trust::Signer;

type HmacSha256 = Hmac<Sha256>;

/// A key two nodes share (see the module doc). Keyed once; each tag clones
/// the keyed state, which saves hashing the key again.
#[derive(Clone)]
pub struct PairKey(HmacSha256);

impl std::fmt::Debug for PairKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.write_str("PairKey(..)")
    }
}

/// Tags are HMAC-SHA256: 32 bytes, 64 hex digits.
pub const TAG_HEX: usize = 64;

impl PairKey {
    /// The key `me` shares with node `peer`, whose public key (32 bytes)
    /// the trust file lists. `None` for a key that yields no secret (a
    /// low-order point: anyone could compute it).
    pub fn derive(me: &Signer, peer: &str, peer_public: &[u8; 32]) -> Option<PairKey> {
        let peer_key = ed25519_dalek::VerifyingKey::from_bytes(peer_public).ok()?;
        let shared = peer_key.to_montgomery().mul_clamped(me.scalar_bytes()).to_bytes();
        if shared == [0; 32] {
            return None;
        }
        // Both ids, in a fixed order, so both ends derive the same key and
        // a key is bound to its pair.
        let (a, b) = if me.id() <= peer {
            (me.id(), peer)
        } else {
            (peer, me.id())
        };
        let mut kdf = HmacSha256::new_from_slice(&shared).ok()?;
        kdf.update(b"pizza-platform pair key v1\n");
        kdf.update(a.as_bytes());
        kdf.update(b"\n");
        kdf.update(b.as_bytes());
        let key = kdf.finalize().into_bytes();
        HmacSha256::new_from_slice(&key).ok().map(PairKey)
    }

    fn keyed(&self, domain: &[u8], from: &str, to: &str, bytes: &[u8]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(domain);
        // The direction too: a tag for the broker is no tag for the node.
        mac.update(from.as_bytes());
        mac.update(b"\n");
        mac.update(to.as_bytes());
        mac.update(b"\n");
        mac.update(bytes);
        mac
    }

    fn verify(mac: HmacSha256, tag: &str) -> bool {
        match hex::decode(tag) {
            Ok(raw) if raw.len() == TAG_HEX / 2 => mac.verify_slice(&raw).is_ok(),
            _ => false,
        }
    }

    /// The tag of envelope bytes (`crate::trust::signed_bytes`) sent by
    /// `from` to `to`, hex.
    pub fn tag(&self, from: &str, to: &str, bytes: &[u8]) -> String {
        hex::encode(self.keyed(ENVELOPE, from, to, bytes).finalize().into_bytes())
    }

    /// Whether `tag` (hex) is the tag of envelope bytes from `from` to
    /// `to`, compared in constant time.
    pub fn check(&self, from: &str, to: &str, bytes: &[u8], tag: &str) -> bool {
        PairKey::verify(self.keyed(ENVELOPE, from, to, bytes), tag)
    }

    /// The tag of a sealed protocol message's body (`crate::seal`), hex.
    /// Another domain than envelopes', so neither passes as the other.
    pub fn seal_tag(&self, from: &str, to: &str, body: &[u8]) -> String {
        hex::encode(self.keyed(SEAL, from, to, body).finalize().into_bytes())
    }

    /// Whether `tag` (hex) is the seal tag of `body` from `from` to `to`.
    pub fn check_seal(&self, from: &str, to: &str, body: &[u8], tag: &str) -> bool {
        PairKey::verify(self.keyed(SEAL, from, to, body), tag)
    }
}

/// Envelope tags mix in nothing before the ids; seal tags a prefix no id
/// can start with (ids are `[A-Za-z0-9_-]`).
const ENVELOPE: &[u8] = b"";
const SEAL: &[u8] = b"\0seal\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &Signer) -> [u8; 32] {
        hex::decode(s.public())
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("32 bytes")
    }

    #[test]
    fn both_ends_derive_the_same_key_and_a_third_node_cannot() {
        let order = Signer::from_seed("order", [1; 32]);
        let broker = Signer::from_seed("broker", [2; 32]);
        let kitchen = Signer::from_seed("kitchen-1", [3; 32]);
        let at_order = PairKey::derive(&order, "broker", &public(&broker)).expect("a key");
        let at_broker = PairKey::derive(&broker, "order", &public(&order)).expect("a key");
        let tag = at_order.tag("order", "broker", b"{}");
        assert_eq!(tag.len(), TAG_HEX);
        assert!(at_broker.check("order", "broker", b"{}", &tag));
        // Changed bytes, the other direction, another sender: refused.
        assert!(!at_broker.check("order", "broker", b"{ }", &tag));
        assert!(!at_broker.check("broker", "order", b"{}", &tag));
        assert!(!at_broker.check("kitchen-1", "broker", b"{}", &tag));
        // The kitchen's own key with the broker is another key.
        let kitchens = PairKey::derive(&kitchen, "broker", &public(&broker)).expect("a key");
        assert!(!at_broker.check("order", "broker", b"{}", &kitchens.tag("order", "broker", b"{}")));
        assert!(!at_broker.check("order", "broker", b"{}", "zz"));
        // A seal's tag is no envelope's, and the other way round.
        let sealed = at_order.seal_tag("order", "broker", b"{}");
        assert!(at_broker.check_seal("order", "broker", b"{}", &sealed));
        assert!(!at_broker.check("order", "broker", b"{}", &sealed));
        assert!(!at_broker.check_seal("order", "broker", b"{}", &tag));
    }

    #[test]
    fn a_low_order_public_key_yields_no_key() {
        let me = Signer::from_seed("broker", [2; 32]);
        // The identity point: every scalar times it is the identity.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PairKey::derive(&me, "mallory", &identity).is_none());
    }
}
