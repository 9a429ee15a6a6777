//! W3C trace context: every message caused by one `POST /orders` carries its
//! trace id, and HTTP calls carry it in a `traceparent` header.

/// The trace id of a W3C `traceparent` header
/// (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`), if well formed.
/// All-zero ids are invalid by the spec.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; later versions may append more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && !zero(trace)
        && hex(span, 16)
        && !zero(span)
        && hex(flags, 2);
    ok.then_some(trace)
}

/// A `traceparent` header for `trace_id`, with a fresh span id.
pub fn traceparent(trace_id: &str) -> String {
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace_id}-{span}-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_well_formed_traceparents() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_of(&format!("00-{t}-00f067aa0ba902b7-01")), Some(t));
        assert_eq!(trace_id_of(&format!(" 00-{t}-00f067aa0ba902b7-00 ")), Some(t));
        assert_eq!(trace_id_of(""), None);
        assert_eq!(trace_id_of("garbage"), None);
        assert_eq!(trace_id_of(&format!("00-{t}-00f067aa0ba902b7")), None);
        assert_eq!(trace_id_of(&format!("00-{t}-00f067aa0ba902b7-01-extra")), None);
        assert_eq!(
            trace_id_of(&format!("00-{}-00f067aa0ba902b7-01", t.to_uppercase())),
            None
        );
        assert_eq!(
            trace_id_of(&format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32))),
            None
        );
        assert_eq!(trace_id_of(&format!("00-{t}-{}-01", "0".repeat(16))), None);
        assert_eq!(trace_id_of(&format!("ff-{t}-00f067aa0ba902b7-01")), None);
    }

    #[test]
    fn a_written_traceparent_reads_back() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id_of(&traceparent(t)), Some(t));
    }
}
