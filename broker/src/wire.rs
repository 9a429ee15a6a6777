//! The keeper's zero-copy view of envelopes.
//!
//! A put is validated against the full [`Envelope`] schema, but through a
//! borrowed view whose payload stays a [`RawValue`]: no JSON tree is built.
//! Deliveries (and the journal, see [`crate::journal`]) carry the envelope
//! bytes as they came, so the payload is never re-serialised by the keeper.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use bytes::Bytes;
use contracts::Envelope;
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::queue::Meta;

/// The envelope schema, borrowed; mirrors [`Envelope`] field for field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Fields are read only to validate them.
struct EnvelopeView<'a> {
    schema: u32,
    event_id: Uuid,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    seq: u64,
    #[serde(borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: time::OffsetDateTime,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sig: Option<Cow<'a, str>>,
    /// Kept raw so that [`Read::untagged`] can find it in the bytes.
    #[serde(default, borrow)]
    mac: Option<&'a RawValue>,
}

/// A well-formed envelope as [`read`] found it.
#[derive(Debug)]
pub struct Read<'a> {
    /// Its routing fields.
    pub meta: Meta,
    /// Its event kind.
    pub kind: Cow<'a, str>,
    /// Whether it carries an Ed25519 `sig`.
    pub signed: bool,
    /// Its `mac` tags, by receiver (empty when it has none).
    pub tags: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    /// Where its `mac` member lies in the bytes it was read from.
    mac_member: Option<Range<usize>>,
}

impl Read<'_> {
    /// `raw` (the bytes this was read from) without its `mac` member: the
    /// bytes its tags cover when the sender tagged the envelope as it wrote
    /// it (as `contracts::trust::signed_bytes` does), so a tag is checked
    /// without parsing the payload or serialising anything. `None` when it
    /// has no tags or the key is escaped (the caller then checks the full
    /// envelope).
    pub fn untagged(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let span = self.mac_member.clone()?;
        let mut out = Vec::with_capacity(raw.len() - span.len());
        out.extend_from_slice(raw.get(..span.start)?);
        out.extend_from_slice(raw.get(span.end..)?);
        Some(out)
    }
}

/// Checks that `raw` is a well-formed envelope and reads what the keeper and
/// the event log need of it, borrowing from `raw`.
pub fn read(raw: &[u8]) -> Result<Read<'_>, serde_json::Error> {
    let v: EnvelopeView<'_> = serde_json::from_slice(raw)?;
    let tags = match v.mac {
        Some(mac) => serde_json::from_str(mac.get())?,
        None => BTreeMap::new(),
    };
    let mac_member = v.mac.and_then(|mac| member_span(raw, mac.get(), b"\"mac\""));
    Ok(Read {
        meta: Meta {
            event_id: v.event_id,
            order_id: v.order_id.into_owned(),
            source: v.source.into_owned(),
            order_seq: v.seq,
        },
        kind: v.kind,
        signed: v.sig.is_some(),
        tags,
        mac_member,
    })
}

/// Checks that `raw` is a well-formed envelope and returns its routing fields.
pub fn check_envelope(raw: &[u8]) -> Result<Meta, serde_json::Error> {
    Ok(read(raw)?.meta)
}

/// [`check_envelope`], and the event's kind (the event log routes by it).
pub fn check_event(raw: &[u8]) -> Result<(Meta, String), serde_json::Error> {
    let r = read(raw)?;
    Ok((r.meta, r.kind.into_owned()))
}

/// The bytes to cut from the JSON object `raw` to remove its member `key`
/// whose value is `value` (a slice of `raw`): the member and the comma
/// before it, or after it when it comes first. `None` when `value` is not
/// in `raw` or the key is not written plainly before it.
fn member_span(raw: &[u8], value: &str, key: &[u8]) -> Option<Range<usize>> {
    let start = (value.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let end = start.checked_add(value.len()).filter(|&e| e <= raw.len())?;
    let skip_back = |mut i: usize| {
        while i > 0 && raw[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    let colon = skip_back(start).checked_sub(1).filter(|&i| raw[i] == b':')?;
    let key_start = skip_back(colon).checked_sub(key.len())?;
    if &raw[key_start..key_start + key.len()] != key {
        return None;
    }
    let before = skip_back(key_start).checked_sub(1)?;
    match raw[before] {
        b',' => Some(before..end),
        b'{' => {
            let mut after = end;
            while raw.get(after).is_some_and(u8::is_ascii_whitespace) {
                after += 1;
            }
            match raw.get(after) {
                Some(b',') => Some(key_start..after + 1),
                _ => None,
            }
        }
        _ => None,
    }
}

/// An event's kind, read without checking the rest of the envelope (for
/// filtering events that were checked when they were appended).
pub fn kind_of(raw: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: Cow<'a, str>,
    }
    serde_json::from_slice::<Kind<'_>>(raw)
        .ok()
        .map(|k| k.kind.into_owned())
}

/// Serialises a [`contracts::queue::Delivery`] around the raw envelope,
/// without parsing the envelope again: an item's envelope was checked when
/// it was put (or read back from the journal), so its bytes are valid JSON.
pub fn delivery_json(
    delivery_id: &str,
    attempt: u32,
    redelivery: Option<&str>,
    incarnation: &str,
    envelope: &Bytes,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(envelope.len() + 160);
    out.extend_from_slice(br#"{"delivery_id":"#);
    serde_json::to_writer(&mut out, delivery_id)?;
    out.extend_from_slice(br#","attempt":"#);
    out.extend_from_slice(attempt.to_string().as_bytes());
    if let Some(reason) = redelivery {
        out.extend_from_slice(br#","redelivery":"#);
        serde_json::to_writer(&mut out, reason)?;
    }
    out.extend_from_slice(br#","incarnation":"#);
    serde_json::to_writer(&mut out, incarnation)?;
    out.extend_from_slice(br#","envelope":"#);
    out.extend_from_slice(envelope);
    out.push(b'}');
    Ok(out)
}

/// A [`contracts::queue::DeliveryMessage::Batch`] being built from
/// [`delivery_json`] outputs, without parsing them again.
#[derive(Debug, Default)]
pub struct DeliveryBatch {
    buf: Vec<u8>,
    count: usize,
}

impl DeliveryBatch {
    const HEAD: &'static [u8] = br#"{"deliveries":["#;

    /// Appends one delivery (the output of [`delivery_json`]).
    pub fn push(&mut self, delivery: &[u8]) {
        if self.count == 0 {
            self.buf.clear();
            self.buf.extend_from_slice(Self::HEAD);
        } else {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(delivery);
        self.count += 1;
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The message, and the builder emptied for the next batch.
    pub fn take(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend_from_slice(b"]}");
        self.count = 0;
        out
    }
}

/// A queue item as the layout before the journal stored it (read only to
/// move such a queue into the journal, see [`crate::store`]).
#[derive(Deserialize)]
pub struct StoredIn {
    /// Position in the queue.
    pub seq: u64,
    /// Deliveries tried.
    pub attempt: u32,
    /// Why the next delivery repeats one.
    #[serde(default)]
    pub redelivery: Option<String>,
    /// The envelope as put.
    pub envelope: Box<RawValue>,
}

/// The full envelope, for the rare paths that show it (dead letters).
pub fn full_envelope(envelope: &Bytes) -> Option<Envelope> {
    serde_json::from_slice(envelope).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            "order.paid",
            "o-1",
            2,
            "0af7651916cd43dd8448eb211c80319c",
            "order-1",
            serde_json::json!({"x": [1, 2]}),
        )
    }

    #[test]
    fn checks_and_extracts_routing_fields() {
        let e = sample();
        let raw = serde_json::to_vec(&e).unwrap();
        let meta = check_envelope(&raw).unwrap();
        assert_eq!(meta.event_id, e.event_id);
        assert_eq!(meta.order_id, "o-1");
        assert_eq!(meta.source, "order-1");
    }

    #[test]
    fn rejects_what_the_full_schema_rejects() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["surprise"] = serde_json::json!(true);
        assert!(check_envelope(v.to_string().as_bytes()).is_err());
        let mut v = serde_json::to_value(sample()).unwrap();
        v["occurred_at"] = serde_json::json!("yesterday");
        assert!(check_envelope(v.to_string().as_bytes()).is_err());
        assert!(check_envelope(b"{not json").is_err());
    }

    #[test]
    fn the_untagged_bytes_are_the_envelope_without_its_mac_member() {
        let mut e = sample();
        let bare = serde_json::to_vec(&e).unwrap();
        assert!(
            read(&bare).unwrap().untagged(&bare).is_none(),
            "no tags, nothing to cut"
        );
        e.mac.insert("broker".into(), "ab".repeat(32));
        e.mac.insert("keeper".into(), "cd".repeat(32));
        let raw = serde_json::to_vec(&e).unwrap();
        let r = read(&raw).unwrap();
        assert_eq!(r.tags.len(), 2);
        assert_eq!(r.untagged(&raw).unwrap(), bare, "written last");

        let text = String::from_utf8(raw).unwrap();
        let (head, mac) = text.split_once(r#","mac":"#).unwrap();
        let mac = &mac[..mac.len() - 1];
        let first = format!(r#"{{ "mac" : {mac} , {}}}"#, &head[1..]);
        let r = read(first.as_bytes()).unwrap();
        let cut: serde_json::Value = serde_json::from_slice(&r.untagged(first.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            cut,
            serde_json::from_slice::<serde_json::Value>(&bare).unwrap(),
            "written first"
        );
        // In the middle too; under an escaped key it is left to the full check.
        let (a, b) = head.split_once(r#","seq""#).unwrap();
        let middle = format!(r#"{a},"mac":{mac},"seq"{b}}}"#);
        assert_eq!(read(middle.as_bytes()).unwrap().tags.len(), 2);
        assert!(read(middle.as_bytes())
            .unwrap()
            .untagged(middle.as_bytes())
            .is_some());
        let escaped = text.replace(r#""mac""#, r#""m\u0061c""#);
        assert!(read(escaped.as_bytes())
            .unwrap()
            .untagged(escaped.as_bytes())
            .is_none());
        // Tags must be strings.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["mac"]["broker"] = serde_json::json!(1);
        assert!(read(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn a_delivery_reads_back_as_the_contract_type() {
        let e = sample();
        let raw = Bytes::from(serde_json::to_vec(&e).unwrap());
        let json = delivery_json("d-1", 2, Some("retry: \"x\"\n"), "inc-\\1", &raw).unwrap();
        let d: contracts::queue::Delivery = serde_json::from_slice(&json).unwrap();
        assert_eq!(d.envelope, e);
        assert_eq!(d.attempt, 2);
        assert_eq!(
            d.redelivery.as_deref(),
            Some("retry: \"x\"\n"),
            "strings are escaped"
        );
        assert_eq!(
            (d.delivery_id.as_str(), d.incarnation.as_str()),
            ("d-1", "inc-\\1")
        );
        let first = delivery_json("d-2", 1, None, "i", &raw).unwrap();
        let d: contracts::queue::Delivery = serde_json::from_slice(&first).unwrap();
        assert_eq!(d.redelivery, None);
    }

    #[test]
    fn a_delivery_batch_reads_back_as_the_contract_type() {
        let e = sample();
        let raw = Bytes::from(serde_json::to_vec(&e).unwrap());
        let mut batch = DeliveryBatch::default();
        assert!(batch.is_empty());
        for i in 0..3 {
            batch.push(&delivery_json(&format!("d-{i}"), 1, None, "inc-1", &raw).unwrap());
        }
        let json = batch.take();
        assert!(batch.is_empty());
        let m: contracts::queue::DeliveryMessage = serde_json::from_slice(&json).unwrap();
        let ds = m.into_deliveries();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds[2].delivery_id, "d-2");
        assert_eq!(ds[0].envelope, e);
        batch.push(&delivery_json("d-9", 1, None, "inc-1", &raw).unwrap());
        let m: contracts::queue::DeliveryMessage = serde_json::from_slice(&batch.take()).unwrap();
        assert_eq!(m.into_deliveries().len(), 1, "the builder starts afresh");
    }
}
