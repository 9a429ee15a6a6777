//! REST request and response bodies.
//!
//! Request bodies are *input*: they reject unknown fields, so a client's typo
//! (`"quantity"` for `"qty"`) is a 400 naming the field, not a silently
//! ignored value. Response bodies accept unknown fields, so that a server may
//! add a field without breaking older clients.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The order's parts, from the domain: REST bodies are made of them.
pub use crate::domain::{Customer, Item};

use crate::order::{OrderFold, OrderState};
use crate::Envelope;

/// The fewest pizzas of one kind an item may ask for.
pub const MIN_QTY: u32 = 1;
/// The most pizzas of one kind an item may ask for.
pub const MAX_QTY: u32 = 20;
/// The longest customer name or address accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The most pizzas one order may ask for, all items together (one oven
/// batch; without it 3 x the same pizza at [`MAX_QTY`] each would pass).
pub const MAX_PIZZAS_PER_ORDER: u32 = 50;
/// The largest charge `POST /pay` takes, in cents (10,000.00).
pub const MAX_AMOUNT_CENTS: u64 = 1_000_000;
/// The currencies `POST /pay` charges in (ISO 4217).
pub const CURRENCIES: [&str; 4] = ["CHF", "EUR", "GBP", "USD"];
/// The longest `Idempotency-Key` accepted, in bytes (printable ASCII).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `code` of an [`ErrorBody`]: stable, machine-readable, documented once
/// here so that every node and client spells them alike.
pub mod error_code {
    /// 400: the request body failed validation; `field` names the culprit.
    pub const VALIDATION: &str = "validation";
    /// 400: the request body is not JSON, or has data after the JSON value.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// 413: the request body is over the limit.
    pub const TOO_LARGE: &str = "too_large";
    /// 415: the request body is not sent as `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 400: the request body could not be read (broken chunking, a reset).
    pub const BAD_BODY: &str = "bad_body";
    /// 408: the request body did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// 400: a path segment, query parameter or header is not what the
    /// endpoint takes.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 405: the path exists, not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 422: an `Idempotency-Key` sent again with a different order.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// 409: the first request with this `Idempotency-Key` is still running.
    pub const IDEMPOTENCY_IN_PROGRESS: &str = "idempotency_in_progress";
    /// 500: a failure of the node itself (storage, broker); see its log.
    pub const INTERNAL: &str = "internal";
    /// 500: a fault the control room injected failed this request.
    pub const INJECTED_FAULT: &str = "injected_fault";
    /// 402: payment declined the charge.
    pub const PAYMENT_DECLINED: &str = "payment_declined";
    /// 503: payment timed out, refused the connection, or its breaker is open.
    pub const PAYMENT_UNAVAILABLE: &str = "payment_unavailable";
    /// 404: no such order, driver or delivery.
    pub const NOT_FOUND: &str = "not_found";
    /// 401: no bearer token, or one that is expired, for another service
    /// or not signed by a node of the trust file.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: a valid bearer token that does not allow this call.
    pub const FORBIDDEN: &str = "forbidden";
    /// 500 from payment: a simulated processor failure (a retry may succeed).
    pub const PAYMENT_FAILED: &str = "payment_failed";
    /// 503 from a node the control room has paused.
    pub const PAUSED: &str = "paused";
    /// 409: the request contradicts what is recorded.
    pub const CONFLICT: &str = "conflict";
    /// 409 from `DELETE /orders/{id}`: the customer has the pizza already.
    pub const ALREADY_DELIVERED: &str = "already_delivered";
    /// 409 from `DELETE /orders/{id}`: the order was rejected, cancelled or
    /// failed already.
    pub const ALREADY_ENDED: &str = "already_ended";
}

/// What the customer sees when payment cannot be reached (503).
pub const PAYMENT_UNAVAILABLE_MESSAGE: &str = "Payment system is not responding, please try again later";

/// `POST /orders` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// Who orders.
    pub customer: Customer,
    /// What they order; at least one item.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<Item>,
}

/// The first thing wrong with a request body, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `customer.address` or
    /// `items[0].qty`, so a client can highlight it.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl PlaceOrder {
    /// Checks the order against the rules and the menu, and returns the
    /// first problem found, in field order.
    ///
    /// The menu is passed in as a predicate because it is data the order node
    /// loads at run time, and this crate does no I/O.
    ///
    /// Rules: name and address have a visible character (zero-width and
    /// control characters do not count) and are at most [`MAX_TEXT_CHARS`]
    /// characters (counted as sent: padding is stored too, so it counts);
    /// there is at least one item; every `qty` is in
    /// [`MIN_QTY`]..=[`MAX_QTY`], at most [`MAX_PIZZAS_PER_ORDER`] in all;
    /// every pizza is on the menu.
    pub fn validate(&self, is_on_menu: impl Fn(&str) -> bool) -> Result<(), FieldError> {
        validate_order(&self.customer, &self.items, is_on_menu)
    }
}

/// The rules of [`PlaceOrder::validate`], for anything that carries a
/// customer and items (a kitchen ticket, which may come from anyone on the
/// broker, is held to the same rules as the order it was made from).
pub fn validate_order(
    customer: &Customer,
    items: &[Item],
    is_on_menu: impl Fn(&str) -> bool,
) -> Result<(), FieldError> {
    check_text("customer.name", &customer.name)?;
    check_text("customer.address", &customer.address)?;
    if items.is_empty() {
        return Err(FieldError::new(
            "items",
            "order at least one pizza; items is empty",
        ));
    }
    for (i, item) in items.iter().enumerate() {
        if !(MIN_QTY..=MAX_QTY).contains(&item.qty) {
            return Err(FieldError::new(
                format!("items[{i}].qty"),
                format!("qty must be between {MIN_QTY} and {MAX_QTY}, got {}", item.qty),
            ));
        }
        if !is_on_menu(&item.pizza) {
            return Err(FieldError::new(
                format!("items[{i}].pizza"),
                format!("unknown pizza '{}'; see the menu", item.pizza),
            ));
        }
    }
    // Each qty is at most MAX_QTY here, so the sum cannot overflow.
    let pizzas: u32 = items.iter().map(|i| i.qty).sum();
    if pizzas > MAX_PIZZAS_PER_ORDER {
        return Err(FieldError::new(
            "items",
            format!("at most {MAX_PIZZAS_PER_ORDER} pizzas per order, got {pizzas}; split the order"),
        ));
    }
    Ok(())
}

/// Whether `c` shows nothing: whitespace, control characters, and the
/// zero-width and direction marks (a name of only U+200B is blank).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// Checks a required text field: not blank, at most [`MAX_TEXT_CHARS`]
/// characters (also used for ids that become storage keys).
pub fn check_text(field: &str, value: &str) -> Result<(), FieldError> {
    if value.chars().all(is_invisible) {
        return Err(FieldError::new(field, format!("{field} is required")));
    }
    // Characters, not bytes: a limit in bytes would punish non-ASCII names.
    let chars = value.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(FieldError::new(
            field,
            format!("{field} must be at most {MAX_TEXT_CHARS} characters, got {chars}"),
        ));
    }
    Ok(())
}

/// `POST /orders` 201 response: the order is paid and will be cooked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderAccepted {
    /// The new order's id.
    pub order_id: String,
    /// Always `accepted`.
    pub status: String,
    /// The trace id every event of this order carries; quote it to support.
    pub trace_id: String,
}

impl OrderAccepted {
    /// The response for a newly accepted order.
    pub fn new(order_id: impl Into<String>, trace_id: impl Into<String>) -> Self {
        OrderAccepted {
            order_id: order_id.into(),
            status: "accepted".to_string(),
            trace_id: trace_id.into(),
        }
    }
}

/// `DELETE /orders/{id}` 202 response: the cancellation is stored on queue
/// `cancellation` and the order node's executor will run its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelAccepted {
    /// The order.
    pub order_id: String,
    /// Always `cancelling`.
    pub status: String,
    /// The order's trace id; every step is logged with it.
    pub trace_id: String,
    /// What happens next, for a human.
    pub message: String,
}

/// `POST /recall/{order_id}` 200 response from a delivery node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recalled {
    /// The order.
    pub order_id: String,
    /// The driver called back, if one had set off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The highest seq the delivery node used (or will use) for the order's
    /// events: the canceller numbers its own after it.
    pub last_seq: u64,
}

/// Every error response of every node: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, one of [`error_code`].
    pub code: String,
    /// For a human.
    pub message: String,
    /// The offending request field, for validation errors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The order the request created anyway: a declined payment (402)
    /// leaves a `rejected` order to read at `GET /orders/{order_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl ErrorBody {
    /// An error that concerns no particular field.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                order_id: None,
            },
        }
    }

    /// A validation failure (code [`error_code::VALIDATION`]) naming the field.
    pub fn validation(e: FieldError) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: error_code::VALIDATION.to_string(),
                message: e.message,
                field: Some(e.field),
                order_id: None,
            },
        }
    }
}

impl From<FieldError> for ErrorBody {
    fn from(e: FieldError) -> Self {
        ErrorBody::validation(e)
    }
}

/// `GET /orders/{id}` response: one order as its events tell it.
///
/// `kitchen` and `driver` are always present (`null` until known), so a
/// client can rely on the shape without checking for missing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order's id.
    pub order_id: String,
    /// Where the order is now.
    pub state: OrderState,
    /// What was ordered.
    pub items: Vec<Item>,
    /// Who ordered.
    pub customer: Customer,
    /// The kitchen that cooks or cooked it, once known.
    pub kitchen: Option<String>,
    /// The driver who carries or carried it, once known.
    pub driver: Option<String>,
    /// The trace id every event of the order carries.
    pub trace_id: String,
    /// Every event that moved the order, in seq order.
    pub history: Vec<HistoryEntry>,
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The event's seq.
    pub seq: u64,
    /// The event's kind.
    pub kind: String,
    /// When it happened, RFC 3339.
    pub at: String,
    /// The node that produced it.
    pub source: String,
    /// What the event says beyond its kind (a reason, a saga step's
    /// outcome, the driver), when it says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl OrderView {
    /// The `GET /orders/{id}` view of an order's fold, once `order.placed`
    /// is folded. (Here, with the REST types, so the state machine knows
    /// nothing of REST.)
    pub fn of(fold: &OrderFold) -> Option<OrderView> {
        let (state, placed) = (fold.state()?, fold.placed()?);
        Some(OrderView {
            order_id: fold.order_id().to_string(),
            state,
            items: placed.items.clone(),
            customer: placed.customer.clone(),
            kitchen: fold.kitchen().map(str::to_string),
            driver: fold.driver().map(str::to_string),
            trace_id: fold
                .applied()
                .first()
                .map(|e| e.trace_id.clone())
                .unwrap_or_default(),
            history: fold.applied().iter().map(HistoryEntry::from).collect(),
        })
    }
}

impl From<&Envelope> for HistoryEntry {
    fn from(env: &Envelope) -> Self {
        HistoryEntry {
            seq: env.seq,
            kind: env.kind.clone(),
            at: rfc3339(env.occurred_at),
            source: env.source.clone(),
            detail: crate::events::summary(env),
        }
    }
}

/// Formats `t` as RFC 3339.
///
/// RFC 3339 cannot express years outside 0000..=9999 or offsets with seconds;
/// rather than fail a whole response over one such timestamp, fall back to
/// `time`'s own display format, which is still readable.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// `POST /pay` request body (order node -> payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// The order being paid; payment is idempotent on it.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub order_id: String,
    /// Amount to charge, in cents.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub amount_cents: u64,
    /// ISO 4217 code: one of CHF, EUR, GBP, USD.
    #[schema(example = "CHF")]
    pub currency: String,
}

/// `POST /pay` 200 response: the charge went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayResponse {
    /// Payment's id for the charge.
    pub payment_id: String,
    /// `paid`.
    pub status: String,
}

impl PayResponse {
    /// A successful charge: `{"payment_id", "status": "captured"}`.
    pub fn captured(payment_id: impl Into<String>) -> Self {
        PayResponse {
            payment_id: payment_id.into(),
            status: "captured".to_string(),
        }
    }
}

/// `POST /pay` 402 response: the charge was declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayDeclined {
    /// `declined`.
    pub status: String,
    /// Why, e.g. "card declined".
    pub reason: String,
}

impl PayDeclined {
    /// A declined charge.
    pub fn new(reason: impl Into<String>) -> Self {
        PayDeclined {
            status: "declined".to_string(),
            reason: reason.into(),
        }
    }
}

/// `POST /refund` request body (saga compensation -> payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The charge to refund.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub payment_id: String,
    /// The order it belongs to.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub order_id: String,
}

/// `POST /refund` 200 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundResponse {
    /// Payment's id for the refund.
    pub refund_id: String,
    /// `refunded`.
    pub status: String,
}

impl RefundResponse {
    /// A completed refund.
    pub fn refunded(refund_id: impl Into<String>) -> Self {
        RefundResponse {
            refund_id: refund_id.into(),
            status: "refunded".to_string(),
        }
    }
}

/// `GET /drivers` item: one driver and what they carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
pub struct DriverView {
    /// The driver's name.
    pub driver: String,
    /// The order being carried; `null` when the driver is free.
    pub order_id: Option<String>,
    /// Since when the driver carries it, RFC 3339; `null` when free.
    pub since: Option<String>,
}

/// `GET /deliveries/{order_id}` response: one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The order delivered.
    pub order_id: String,
    /// The driver carrying it.
    pub driver: String,
    /// Where the delivery is, e.g. `out_for_delivery` or `delivered`.
    pub state: String,
    /// When the driver was assigned, RFC 3339.
    pub assigned_at: String,
    /// When it was delivered, RFC 3339; `null` while on the way.
    pub delivered_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    const MENU: &[&str] = &["margherita", "funghi"];

    fn on_menu(p: &str) -> bool {
        MENU.contains(&p)
    }

    fn order() -> PlaceOrder {
        PlaceOrder {
            customer: Customer {
                name: "Ada".into(),
                address: "1 Loop Lane".into(),
            },
            items: vec![
                Item {
                    pizza: "margherita".into(),
                    qty: 1,
                },
                Item {
                    pizza: "funghi".into(),
                    qty: 20,
                },
            ],
        }
    }

    /// The field `validate` blames after `edit`.
    fn blamed(edit: impl FnOnce(&mut PlaceOrder)) -> String {
        let mut o = order();
        edit(&mut o);
        o.validate(on_menu).expect_err("should be invalid").field
    }

    #[test]
    fn a_good_order_validates() {
        assert_eq!(order().validate(on_menu), Ok(()));
    }

    #[test]
    fn validation_names_the_exact_field() {
        assert_eq!(blamed(|o| o.customer.name = "   ".into()), "customer.name");
        assert_eq!(blamed(|o| o.customer.name = String::new()), "customer.name");
        assert_eq!(blamed(|o| o.customer.address = "\t\n".into()), "customer.address");
        assert_eq!(
            blamed(|o| o.customer.address = "x".repeat(201)),
            "customer.address"
        );
        assert_eq!(blamed(|o| o.customer.name = "x".repeat(201)), "customer.name");
        assert_eq!(blamed(|o| o.items.clear()), "items");
        assert_eq!(blamed(|o| o.items[0].qty = 0), "items[0].qty");
        assert_eq!(blamed(|o| o.items[1].qty = 21), "items[1].qty");
        assert_eq!(blamed(|o| o.items[1].pizza = "hawaii".into()), "items[1].pizza");
        assert_eq!(
            blamed(|o| o.customer.name = "\u{200B}\u{200D}".into()),
            "customer.name"
        );
        assert_eq!(
            blamed(|o| o.customer.address = "\u{FEFF}\u{2060} ".into()),
            "customer.address"
        );
        // Three lines of 20 are 60 pizzas: each line is fine, the order is not.
        assert_eq!(blamed(|o| o.items = vec![o.items[1].clone(); 3]), "items");
    }

    #[test]
    fn invisible_characters_do_not_make_a_name_but_do_not_spoil_one() {
        let mut o = order();
        o.customer.name = "\u{200B}Zoë\u{200D}".into();
        assert_eq!(o.validate(on_menu), Ok(()));
        o.items = vec![
            o.items[1].clone(),
            o.items[1].clone(),
            Item {
                pizza: "funghi".into(),
                qty: 10,
            },
        ];
        assert_eq!(
            o.validate(on_menu),
            Ok(()),
            "{MAX_PIZZAS_PER_ORDER} pizzas in all"
        );
    }

    #[test]
    fn limits_are_inclusive_and_count_characters() {
        let mut o = order();
        // 200 two-byte characters: 400 bytes, still within the limit.
        o.customer.name = "é".repeat(MAX_TEXT_CHARS);
        o.items[0].qty = MIN_QTY;
        o.items[1].qty = MAX_QTY;
        assert_eq!(o.validate(on_menu), Ok(()));
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let mut o = order();
        o.items[0].pizza = "hawaii".into();
        let e = o.validate(on_menu).unwrap_err();
        assert_eq!(e.to_string(), "unknown pizza 'hawaii'; see the menu");

        let mut o = order();
        o.items[0].qty = 25;
        let e = o.validate(on_menu).unwrap_err();
        assert_eq!(e.message, "qty must be between 1 and 20, got 25");
    }

    #[test]
    fn the_first_problem_in_field_order_wins() {
        let mut o = order();
        o.customer.address = String::new();
        o.items.clear();
        assert_eq!(o.validate(on_menu).unwrap_err().field, "customer.address");
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let text = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
    }

    #[test]
    fn bodies_round_trip() {
        round_trip(&order());
        round_trip(&OrderAccepted::new("o-1", "t"));
        round_trip(&ErrorBody::new(error_code::NOT_FOUND, "no order o-9"));
        round_trip(&ErrorBody::validation(FieldError::new("items", "empty")));
        round_trip(&OrderView {
            order_id: "o-1".into(),
            state: OrderState::OutForDelivery,
            items: order().items,
            customer: order().customer,
            kitchen: Some("kitchen-1".into()),
            driver: None,
            trace_id: "t".into(),
            history: vec![HistoryEntry {
                seq: 1,
                kind: "order.placed".into(),
                at: "2025-01-01T12:00:00Z".into(),
                source: "order-1".into(),
                detail: None,
            }],
        });
        round_trip(&PayRequest {
            order_id: "o-1".into(),
            amount_cents: 1250,
            currency: "EUR".into(),
        });
        round_trip(&PayResponse::captured("p-1"));
        round_trip(&PayDeclined::new("card declined"));
        round_trip(&RefundRequest {
            payment_id: "p-1".into(),
            order_id: "o-1".into(),
        });
        round_trip(&RefundResponse::refunded("r-1"));
        round_trip(&DriverView {
            driver: "Dana".into(),
            order_id: None,
            since: None,
        });
        round_trip(&DeliveryView {
            order_id: "o-1".into(),
            driver: "Dana".into(),
            state: "delivered".into(),
            assigned_at: "2025-01-01T12:00:00Z".into(),
            delivered_at: Some("2025-01-01T12:10:00Z".into()),
        });
    }

    #[test]
    fn the_wire_shape_is_as_documented() {
        let body = json!({
            "customer": {"name": "Ada", "address": "1 Loop Lane"},
            "items": [{"pizza": "margherita", "qty": 2}]
        });
        let o: PlaceOrder = serde_json::from_value(body).unwrap();
        assert_eq!(o.items[0].qty, 2);

        assert_eq!(
            serde_json::to_value(ErrorBody::validation(FieldError::new("items[0].qty", "m"))).unwrap(),
            json!({"error": {"code": "validation", "message": "m", "field": "items[0].qty"}})
        );
        // No field: the key is left out, not null.
        assert_eq!(
            serde_json::to_value(ErrorBody::new("payment_unavailable", "m")).unwrap(),
            json!({"error": {"code": "payment_unavailable", "message": "m"}})
        );
    }

    #[test]
    fn order_view_keeps_unknown_kitchen_and_driver_as_null() {
        let v = OrderView {
            order_id: "o-1".into(),
            state: OrderState::Paid,
            items: vec![],
            customer: order().customer,
            kitchen: None,
            driver: None,
            trace_id: "t".into(),
            history: vec![],
        };
        let json = serde_json::to_value(v).unwrap();
        assert_eq!(json["state"], "paid");
        assert!(json.get("kitchen").is_some_and(|k| k.is_null()));
        assert!(json.get("driver").is_some_and(|d| d.is_null()));
    }

    #[test]
    fn input_bodies_reject_unknown_fields() {
        let typo = json!({
            "customer": {"name": "Ada", "address": "1 Loop Lane"},
            "items": [{"pizza": "margherita", "quantity": 2}]
        });
        let err = serde_json::from_value::<PlaceOrder>(typo).unwrap_err();
        assert!(err.to_string().contains("quantity"), "{err}");

        let extra = json!({
            "customer": {"name": "Ada", "address": "1 Loop Lane", "vip": true},
            "items": []
        });
        assert!(serde_json::from_value::<PlaceOrder>(extra).is_err());

        let pay = json!({"order_id": "o", "amount_cents": 1, "currency": "EUR", "tip": 5});
        assert!(serde_json::from_value::<PayRequest>(pay).is_err());

        let refund = json!({"payment_id": "p", "order_id": "o", "why": "x"});
        assert!(serde_json::from_value::<RefundRequest>(refund).is_err());
    }

    #[test]
    fn responses_tolerate_fields_added_later() {
        let r: PayResponse =
            serde_json::from_value(json!({"payment_id": "p", "status": "captured", "fee": 3})).unwrap();
        assert_eq!(r, PayResponse::captured("p"));
    }

    #[test]
    fn history_entries_carry_rfc3339_times() {
        let mut env = Envelope::new("order.placed", "o-1", 1, "t", "order-1", json!(null));
        env.occurred_at = time::macros::datetime!(2025-03-01 12:30:00 UTC);
        let h = HistoryEntry::from(&env);
        assert_eq!(h.at, "2025-03-01T12:30:00Z");
        assert_eq!(
            (h.seq, h.kind.as_str(), h.source.as_str()),
            (1, "order.placed", "order-1")
        );
    }
}
