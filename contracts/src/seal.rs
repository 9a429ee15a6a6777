//! Sealed protocol messages: credits, acks, withdrawals, re-queues and
//! control commands carry their signer and signature as the last two fields
//! of their JSON object.
//!
//! ```text
//! {"credit":4,"incarnation":"a1","signer":"kitchen-1","sig":"<128 hex>"}
//! ```
//!
//! The signature covers `signer`, a newline, and the object exactly as it was
//! before the seal was appended (`{"credit":4,"incarnation":"a1"}`), so the
//! receiver checks the bytes it got, with no canonical JSON to agree on, and
//! a seal cannot be moved to another signer. [`open`] takes the seal off
//! again; a message without one passes through unchanged, which is how an
//! unsigned platform (no `--trust`) reads them. Envelopes are signed in
//! their own `sig` field instead ([`crate::trust::signed_bytes`]), because
//! the keeper re-encodes them without re-parsing.

use std::borrow::Cow;

use crate::mac::PairKey;
use crate::trust::{Refusal, Signer, Trust};

const SIGNER: &[u8] = br#""signer":""#;
const SIG: &[u8] = br#"","sig":""#;
const MAC: &[u8] = br#"","mac":""#;
/// An Ed25519 signature in hex.
const SIG_HEX: usize = 128;

/// `body` (a JSON object) with `signer`'s seal appended.
pub fn seal(signer: &Signer, body: &[u8]) -> Vec<u8> {
    let sig = signer.signature(&signed(signer.id(), body));
    append(body, signer.id(), SIG, &sig)
}

/// `body` (a JSON object) sealed by `from` with a tag for each receiver in
/// `to` (its id and the key `from` shares with it, see [`crate::mac`]):
/// `…,"signer":"order","mac":"broker=<64 hex>,standby=<64 hex>"}`. Only a
/// named receiver can check it, at a fraction of a signature's cost.
pub fn seal_tagged(from: &str, to: &[(&str, &PairKey)], body: &[u8]) -> Vec<u8> {
    let mut tags = String::with_capacity(to.len() * (crate::mac::TAG_HEX + 16));
    for (id, key) in to {
        if !tags.is_empty() {
            tags.push(',');
        }
        tags.push_str(id);
        tags.push('=');
        tags.push_str(&key.seal_tag(from, id, body));
    }
    append(body, from, MAC, &tags)
}

fn append(body: &[u8], signer: &str, field: &[u8], proof: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + signer.len() + proof.len() + 24);
    match body.strip_suffix(b"}") {
        Some(open) => {
            out.extend_from_slice(open);
            if open.iter().rev().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                out.push(b',');
            }
        }
        // Not an object: sealed anyway, so the receiver refuses it by name.
        None => out.extend_from_slice(body),
    }
    out.extend_from_slice(SIGNER);
    out.extend_from_slice(signer.as_bytes());
    out.extend_from_slice(field);
    out.extend_from_slice(proof.as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

/// `body` sealed by `signer`, or unchanged without one (an unsigned node or
/// broker): what every sender of protocol messages does.
pub fn seal_if(signer: Option<&Signer>, body: Vec<u8>) -> Vec<u8> {
    match signer {
        Some(s) => seal(s, &body),
        None => body,
    }
}

/// How a seal proves who made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    /// An Ed25519 signature, hex: anyone with the trust file can check it.
    Signature(&'a str),
    /// Tags for named receivers (`id=hex,id=hex`): each can check its own.
    Tags(&'a str),
}

impl<'a> Proof<'a> {
    /// The tag for receiver `me`, if the seal has one.
    pub fn tag_for(&self, me: &str) -> Option<&'a str> {
        let Proof::Tags(tags) = *self else { return None };
        tags.split(',')
            .find_map(|t| t.split_once('=').filter(|(to, _)| *to == me).map(|(_, tag)| tag))
    }
}

/// A message with its seal, if any, taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The message as its signer wrote it.
    pub body: Cow<'a, [u8]>,
    /// Who sealed it, and the proof; `None` if it was not sealed.
    pub seal: Option<(&'a str, Proof<'a>)>,
}

impl Opened<'_> {
    /// Checks the seal against `trust` as `receiver` (its id and the key
    /// it shares with the signer; needed for a tagged seal only): there is
    /// one, by a listed node, over these bytes. Returns the signer and its
    /// role.
    pub fn verify<'t>(
        &self,
        trust: &'t Trust,
        receiver: Option<(&str, &PairKey)>,
    ) -> Result<(&str, &'t str), Refusal> {
        let (signer, proof) = self.seal.ok_or(Refusal::Unsigned)?;
        let role = match proof {
            Proof::Signature(sig) => trust.verify_bytes(signer, &signed(signer, &self.body), sig)?,
            Proof::Tags(_) => {
                let role = trust
                    .role_of(signer)
                    .ok_or_else(|| Refusal::UnknownSender(signer.to_string()))?;
                let tagged = receiver.is_some_and(|(me, key)| {
                    proof
                        .tag_for(me)
                        .is_some_and(|tag| key.check_seal(signer, me, &self.body, tag))
                });
                if !tagged {
                    return Err(Refusal::BadSignature(signer.to_string()));
                }
                role
            }
        };
        Ok((signer, role))
    }
}

/// Takes the seal off `payload`. Anything that does not end in a
/// well-formed seal is returned whole, unsealed.
pub fn open<'a>(payload: &'a [u8]) -> Opened<'a> {
    let whole = Opened {
        body: Cow::Borrowed(payload),
        seal: None,
    };
    let Some(rest) = payload.strip_suffix(b"\"}") else {
        return whole;
    };
    let Some(at) = rfind(rest, SIGNER) else {
        return whole;
    };
    let tail = &rest[at + SIGNER.len()..];
    let plain = |b: &[u8]| !b.iter().any(|c| matches!(c, b'"' | b'\\'));
    // Exactly one proof field, well formed: a signature's 128 hex digits,
    // or tags with nothing that could end the string early.
    let text = |b: &'a [u8]| std::str::from_utf8(b).ok();
    let proof = match (rfind(tail, SIG), rfind(tail, MAC)) {
        (Some(mid), None) => {
            let sig = &tail[mid + SIG.len()..];
            let ok = sig.len() == SIG_HEX && sig.iter().all(u8::is_ascii_hexdigit);
            text(sig).filter(|_| ok).map(|sig| (mid, Proof::Signature(sig)))
        }
        (None, Some(mid)) => {
            let tags = &tail[mid + MAC.len()..];
            let ok = !tags.is_empty() && plain(tags);
            text(tags).filter(|_| ok).map(|tags| (mid, Proof::Tags(tags)))
        }
        _ => None,
    };
    let Some((mid, proof)) = proof else {
        return whole;
    };
    let id = &tail[..mid];
    let Some(id) = text(id).filter(|_| plain(id)) else {
        return whole;
    };
    let head = &payload[..at];
    let mut body = match head.strip_suffix(b",") {
        Some(fields) => fields.to_vec(),
        None => head.to_vec(),
    };
    body.push(b'}');
    Opened {
        body: Cow::Owned(body),
        seal: Some((id, proof)),
    }
}

fn signed(signer: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(signer.len() + 1 + body.len());
    bytes.extend_from_slice(signer.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(body);
    bytes
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::{TrustFile, Trusted};

    fn trust_of(signers: &[&Signer]) -> Trust {
        let file = TrustFile {
            nodes: signers
                .iter()
                .map(|s| {
                    (
                        s.id().to_string(),
                        Trusted {
                            role: "kitchen".into(),
                            key: s.public(),
                        },
                    )
                })
                .collect(),
        };
        Trust::new(&file).expect("valid keys")
    }

    #[test]
    fn a_sealed_message_opens_to_its_exact_bytes_and_verifies() {
        let k = Signer::from_seed("kitchen-1", [1; 32]);
        let body = br#"{"credit":4,"incarnation":"a1"}"#;
        let sealed = seal(&k, body);
        let text = String::from_utf8(sealed.clone()).expect("utf-8");
        assert!(
            text.starts_with(r#"{"credit":4,"incarnation":"a1","signer":"kitchen-1","sig":""#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&sealed).expect("still JSON");
        assert_eq!(v["signer"], "kitchen-1");
        let opened = open(&sealed);
        assert_eq!(&*opened.body, body);
        assert_eq!(
            opened.verify(&trust_of(&[&k]), None),
            Ok(("kitchen-1", "kitchen"))
        );
    }

    #[test]
    fn an_empty_object_seals_and_opens() {
        let k = Signer::from_seed("k", [1; 32]);
        let sealed = seal(&k, b"{}");
        assert!(serde_json::from_slice::<serde_json::Value>(&sealed).is_ok());
        let opened = open(&sealed);
        assert_eq!(&*opened.body, b"{}");
        assert!(opened.verify(&trust_of(&[&k]), None).is_ok());
    }

    #[test]
    fn an_unsealed_message_passes_whole_and_is_refused_as_unsigned() {
        let k = Signer::from_seed("k", [1; 32]);
        let body = br#"{"command":"stop"}"#;
        let opened = open(body);
        assert_eq!((&*opened.body, opened.seal), (&body[..], None));
        assert_eq!(opened.verify(&trust_of(&[&k]), None), Err(Refusal::Unsigned));
    }

    #[test]
    fn a_changed_body_a_moved_seal_and_an_unknown_signer_are_refused() {
        let k1 = Signer::from_seed("kitchen-1", [1; 32]);
        let k2 = Signer::from_seed("kitchen-2", [2; 32]);
        let trust = trust_of(&[&k1, &k2]);
        let sealed = String::from_utf8(seal(&k1, br#"{"credit":4}"#)).expect("utf-8");
        let changed = sealed.replace("\"credit\":4", "\"credit\":9");
        assert_eq!(
            open(changed.as_bytes()).verify(&trust, None),
            Err(Refusal::BadSignature("kitchen-1".into()))
        );
        let moved = sealed.replace("kitchen-1", "kitchen-2");
        assert_eq!(
            open(moved.as_bytes()).verify(&trust, None),
            Err(Refusal::BadSignature("kitchen-2".into()))
        );
        // Sealed by a real node, but on another node's behalf.
        let by_k2 = seal(&k2, br#"{"credit":4}"#);
        assert!(trust
            .check_sealed_by(&open(&by_k2), "kitchen-2", &[], None)
            .is_ok());
        assert!(matches!(
            trust.check_sealed_by(&open(&by_k2), "kitchen-1", &[], None),
            Err(Refusal::NotPermitted { .. })
        ));
        assert!(matches!(
            trust.check_sealed_by(&open(&by_k2), "kitchen-2", &["order"], None),
            Err(Refusal::NotPermitted { .. })
        ));
        let stranger = Signer::from_seed("thief", [9; 32]);
        assert_eq!(
            open(&seal(&stranger, br#"{"credit":4}"#)).verify(&trust, None),
            Err(Refusal::UnknownSender("thief".into()))
        );
    }

    #[test]
    fn a_tagged_seal_passes_its_named_receiver_and_no_one_else() {
        let public = |s: &Signer| -> [u8; 32] {
            hex::decode(s.public())
                .ok()
                .and_then(|b| b.try_into().ok())
                .expect("32 bytes")
        };
        let k = Signer::from_seed("kitchen-1", [1; 32]);
        let broker = Signer::from_seed("broker", [2; 32]);
        let standby = Signer::from_seed("standby", [3; 32]);
        let trust = trust_of(&[&k, &broker, &standby]);
        let to_broker = PairKey::derive(&k, "broker", &public(&broker)).expect("a key");
        let to_standby = PairKey::derive(&k, "standby", &public(&standby)).expect("a key");
        let body = br#"{"credit":4,"incarnation":"a1"}"#;
        let sealed = seal_tagged(
            "kitchen-1",
            &[("broker", &to_broker), ("standby", &to_standby)],
            body,
        );
        let v: serde_json::Value = serde_json::from_slice(&sealed).expect("still JSON");
        assert_eq!(v["signer"], "kitchen-1");
        let opened = open(&sealed);
        assert_eq!(&*opened.body, body);
        let at_broker = PairKey::derive(&broker, "kitchen-1", &public(&k)).expect("a key");
        let at_standby = PairKey::derive(&standby, "kitchen-1", &public(&k)).expect("a key");
        assert_eq!(
            opened.verify(&trust, Some(("broker", &at_broker))),
            Ok(("kitchen-1", "kitchen"))
        );
        assert!(opened.verify(&trust, Some(("standby", &at_standby))).is_ok());
        // Without the key, with another receiver's key, or changed: refused.
        let bad = Err(Refusal::BadSignature("kitchen-1".into()));
        assert_eq!(opened.verify(&trust, None), bad);
        assert_eq!(opened.verify(&trust, Some(("standby", &at_broker))), bad);
        let text = String::from_utf8(sealed).expect("utf-8");
        let changed = text.replace("\"credit\":4", "\"credit\":9");
        assert_eq!(
            open(changed.as_bytes()).verify(&trust, Some(("broker", &at_broker))),
            bad
        );
        // A tag made for the standby does not pass at the broker.
        let only_standby = seal_tagged("kitchen-1", &[("standby", &to_standby)], body);
        assert_eq!(
            open(&only_standby).verify(&trust, Some(("broker", &at_broker))),
            bad
        );
    }
}
