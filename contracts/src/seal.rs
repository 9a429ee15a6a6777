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

use crate::trust::{Refusal, Signer, Trust};

const SIGNER: &[u8] = br#""signer":""#;
const SIG: &[u8] = br#"","sig":""#;
/// An Ed25519 signature in hex.
const SIG_HEX: usize = 128;

/// `body` (a JSON object) with `signer`'s seal appended.
pub fn seal(signer: &Signer, body: &[u8]) -> Vec<u8> {
    let sig = signer.signature(&signed(signer.id(), body));
    let mut out = Vec::with_capacity(body.len() + signer.id().len() + SIG_HEX + 24);
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
    out.extend_from_slice(signer.id().as_bytes());
    out.extend_from_slice(SIG);
    out.extend_from_slice(sig.as_bytes());
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

/// A message with its seal, if any, taken off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The message as its signer wrote it.
    pub body: Cow<'a, [u8]>,
    /// Who sealed it, and the signature; `None` if it was not sealed.
    pub seal: Option<(&'a str, &'a str)>,
}

impl Opened<'_> {
    /// Checks the seal against `trust`: there is one, by a listed node, over
    /// these bytes. Returns the signer and its role.
    pub fn verify<'t>(&self, trust: &'t Trust) -> Result<(&str, &'t str), Refusal> {
        let (signer, sig) = self.seal.ok_or(Refusal::Unsigned)?;
        let role = trust.verify_bytes(signer, &signed(signer, &self.body), sig)?;
        Ok((signer, role))
    }
}

/// Takes the seal off `payload`. Anything that does not end in a
/// well-formed seal is returned whole, unsealed.
pub fn open(payload: &[u8]) -> Opened<'_> {
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
    let Some(mid) = rfind(tail, SIG) else {
        return whole;
    };
    let (id, sig) = (&tail[..mid], &tail[mid + SIG.len()..]);
    let plain = |b: &[u8]| !b.iter().any(|c| matches!(c, b'"' | b'\\'));
    if sig.len() != SIG_HEX || !sig.iter().all(u8::is_ascii_hexdigit) || !plain(id) {
        return whole;
    }
    let (Ok(id), Ok(sig)) = (std::str::from_utf8(id), std::str::from_utf8(sig)) else {
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
        seal: Some((id, sig)),
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
        assert_eq!(opened.verify(&trust_of(&[&k])), Ok(("kitchen-1", "kitchen")));
    }

    #[test]
    fn an_empty_object_seals_and_opens() {
        let k = Signer::from_seed("k", [1; 32]);
        let sealed = seal(&k, b"{}");
        assert!(serde_json::from_slice::<serde_json::Value>(&sealed).is_ok());
        let opened = open(&sealed);
        assert_eq!(&*opened.body, b"{}");
        assert!(opened.verify(&trust_of(&[&k])).is_ok());
    }

    #[test]
    fn an_unsealed_message_passes_whole_and_is_refused_as_unsigned() {
        let k = Signer::from_seed("k", [1; 32]);
        let body = br#"{"command":"stop"}"#;
        let opened = open(body);
        assert_eq!((&*opened.body, opened.seal), (&body[..], None));
        assert_eq!(opened.verify(&trust_of(&[&k])), Err(Refusal::Unsigned));
    }

    #[test]
    fn a_changed_body_a_moved_seal_and_an_unknown_signer_are_refused() {
        let k1 = Signer::from_seed("kitchen-1", [1; 32]);
        let k2 = Signer::from_seed("kitchen-2", [2; 32]);
        let trust = trust_of(&[&k1, &k2]);
        let sealed = String::from_utf8(seal(&k1, br#"{"credit":4}"#)).expect("utf-8");
        let changed = sealed.replace("\"credit\":4", "\"credit\":9");
        assert_eq!(
            open(changed.as_bytes()).verify(&trust),
            Err(Refusal::BadSignature("kitchen-1".into()))
        );
        let moved = sealed.replace("kitchen-1", "kitchen-2");
        assert_eq!(
            open(moved.as_bytes()).verify(&trust),
            Err(Refusal::BadSignature("kitchen-2".into()))
        );
        // Sealed by a real node, but on another node's behalf.
        let by_k2 = seal(&k2, br#"{"credit":4}"#);
        assert!(trust.check_sealed_by(&open(&by_k2), "kitchen-2", &[]).is_ok());
        assert!(matches!(
            trust.check_sealed_by(&open(&by_k2), "kitchen-1", &[]),
            Err(Refusal::NotPermitted { .. })
        ));
        assert!(matches!(
            trust.check_sealed_by(&open(&by_k2), "kitchen-2", &["order"]),
            Err(Refusal::NotPermitted { .. })
        ));
        let stranger = Signer::from_seed("thief", [9; 32]);
        assert_eq!(
            open(&seal(&stranger, br#"{"credit":4}"#)).verify(&trust),
            Err(Refusal::UnknownSender("thief".into()))
        );
    }
}
