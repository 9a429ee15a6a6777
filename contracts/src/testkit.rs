//! The fixtures that tests and benches share (each crate has its `testkit`;
//! this is the bottom one): an order's life as
//! the platform publishes it. Nothing in production code uses them.

use time::OffsetDateTime;

use crate::events::kind;
use crate::Envelope;

/// A delivered order's life: each event with its milliseconds after the
/// placing (payment 40 ms, queue wait 255 ms, cooking 5 s, driver wait
/// 50 ms, trip 3.65 s).
pub const DELIVERED: [(&str, i64); 8] = [
    (kind::ORDER_PLACED, 0),
    (kind::ORDER_PAID, 40),
    (kind::ORDER_QUEUED, 45),
    (kind::ORDER_COOKING, 300),
    (kind::ORDER_READY, 5_300),
    (kind::DRIVER_ASSIGNED, 5_350),
    (kind::CUSTOMER_NOTIFIED, 5_351),
    (kind::ORDER_DELIVERED, 9_000),
];

/// The kinds of [`DELIVERED`], in seq order.
pub const DELIVERED_KINDS: [&str; 8] = {
    let mut kinds = [""; 8];
    let mut i = 0;
    while i < DELIVERED.len() {
        kinds[i] = DELIVERED[i].0;
        i += 1;
    }
    kinds
};

/// A fixed instant to start lives at (day 20,000 of the Unix epoch), so
/// that what tests print is the same on every run.
pub fn t0() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

/// Order `order`'s envelopes through `steps` (an event kind and its
/// milliseconds after `start`), seq 1 on, in trace `trace` from `source`,
/// with empty payloads.
pub fn life(
    order: &str,
    start: OffsetDateTime,
    steps: &[(&str, i64)],
    trace: &str,
    source: &str,
) -> Vec<Envelope> {
    steps
        .iter()
        .zip(1..)
        .map(|((k, ms), seq)| {
            let mut e = Envelope::new(*k, order, seq, trace, source, serde_json::Value::Null);
            e.occurred_at = start + time::Duration::milliseconds(*ms);
            e
        })
        .collect()
}
