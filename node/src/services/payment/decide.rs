//! What a charge or a refund comes to, as plain functions over the request,
//! what is already recorded, the configured rates and the dice: no I/O.

use contracts::api::{FieldError, PayRequest, RefundRequest};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The reason given for every declined charge.
pub const DECLINE_REASON: &str = "card declined";

/// How a charge ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    /// The money was taken.
    Captured {
        /// The id handed to the client, `pay_<uuid>`.
        payment_id: String,
    },
    /// The card was declined.
    Declined {
        /// Why, as told to the client.
        reason: String,
    },
}

/// One charge as kept in sled, keyed by `order_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The order charged (the idempotency key).
    pub order_id: String,
    /// The amount asked for, in cents.
    pub amount_cents: u64,
    /// The currency asked for.
    pub currency: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: ChargeOutcome,
    /// When it was decided, RFC 3339.
    pub at: String,
}

impl PaymentRecord {
    /// Whether `req` asks for the same charge as this record. A retry must;
    /// the same order id with another amount is a client bug, and answering
    /// it with the old result would hide that.
    pub fn matches(&self, req: &PayRequest) -> bool {
        self.amount_cents == req.amount_cents && self.currency == req.currency
    }
}

/// One refund as kept in sled, keyed by `payment_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// The id handed to the client, `ref_<uuid>`.
    pub refund_id: String,
    /// The order whose charge was refunded.
    pub order_id: String,
    /// When it was refunded, RFC 3339.
    pub at: String,
}

/// Probabilities in 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Share of new charges that fail (500).
    pub fail: f64,
    /// Share of new charges that are declined (402).
    pub decline: f64,
}

/// Uniform random numbers in 0.0..1.0, drawn per request. Passed in rather
/// than drawn inside [`decide`] so the decision can be tested exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draws {
    /// Compared with [`Rates::fail`].
    pub fail: f64,
    /// Compared with [`Rates::decline`].
    pub decline: f64,
}

impl Draws {
    /// Fresh draws from `rng`.
    pub fn from_rng(rng: &mut impl Rng) -> Self {
        Draws {
            fail: rng.gen(),
            decline: rng.gen(),
        }
    }
}

/// What to do with one `POST /pay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Already decided: answer as the first time.
    Replay(&'a PaymentRecord),
    /// Already decided, but for another amount or currency: 409.
    Mismatch(&'a PaymentRecord),
    /// The processor "failed": 500, nothing recorded, so a retry may succeed.
    Fail,
    /// Decline the card: record it and answer 402.
    Decline,
    /// Take the money: record it and answer 200.
    Capture,
}

/// Decides a charge from what is recorded for its order and the dice.
///
/// A recorded answer always wins over the dice: an injected failure must not
/// turn a charge that already went through into a 500, or a client would
/// believe it unpaid. A draw strikes when it is below its rate, so a rate of
/// 0.0 never strikes and 1.0 always does.
pub fn decide<'a>(
    existing: Option<&'a PaymentRecord>,
    req: &PayRequest,
    rates: Rates,
    draws: Draws,
) -> Decision<'a> {
    match existing {
        Some(r) if r.matches(req) => Decision::Replay(r),
        Some(r) => Decision::Mismatch(r),
        None if draws.fail < rates.fail => Decision::Fail,
        None if draws.decline < rates.decline => Decision::Decline,
        None => Decision::Capture,
    }
}

/// What to do with one `POST /refund`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundDecision<'a> {
    /// No captured payment has this id: 404.
    NotFound,
    /// The payment belongs to another order: 409.
    Conflict {
        /// The order the payment belongs to.
        owner: &'a str,
    },
    /// Refunded before: answer with the same refund id.
    Replay(&'a RefundRecord),
    /// Refund it now.
    Refund,
}

/// Decides a refund from the order that owns the payment (`None`: unknown
/// payment) and the refund recorded for it, if any.
pub fn decide_refund<'a>(
    owner: Option<&'a str>,
    existing: Option<&'a RefundRecord>,
    req: &RefundRequest,
) -> RefundDecision<'a> {
    match (owner, existing) {
        (None, _) => RefundDecision::NotFound,
        (Some(owner), _) if owner != req.order_id => RefundDecision::Conflict { owner },
        (Some(_), Some(r)) => RefundDecision::Replay(r),
        (Some(_), None) => RefundDecision::Refund,
    }
}

/// Checks a `POST /pay` body; the first problem in field order names its field.
pub fn validate_pay(req: &PayRequest) -> Result<(), FieldError> {
    contracts::api::check_text("order_id", &req.order_id)?;
    use contracts::api::{CURRENCIES, MAX_AMOUNT_CENTS};
    if !(1..=MAX_AMOUNT_CENTS).contains(&req.amount_cents) {
        return Err(FieldError::new(
            "amount_cents",
            format!(
                "amount_cents must be between 1 and {MAX_AMOUNT_CENTS}, got {}",
                req.amount_cents
            ),
        ));
    }
    let c = &req.currency;
    if !CURRENCIES.contains(&c.as_str()) {
        return Err(FieldError::new(
            "currency",
            format!("currency must be one of {}; got '{c}'", CURRENCIES.join(", ")),
        ));
    }
    Ok(())
}

/// Checks a `POST /refund` body.
pub fn validate_refund(req: &RefundRequest) -> Result<(), FieldError> {
    contracts::api::check_text("payment_id", &req.payment_id)?;
    contracts::api::check_text("order_id", &req.order_id)
}
