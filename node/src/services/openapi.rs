//! The services' OpenAPI 3.1 documents, generated from the REST types in
//! `contracts::api` and the handlers' `#[utoipa::path]` annotations, so
//! that they cannot drift from the code. Each service declares its
//! document next to its handlers (`OrderApi` in order.rs, ...) and serves it at
//! `GET /openapi.json`; [`merged`] is the one committed at
//! `contracts/openapi.yaml` (a test fails when they differ; `pizza-node
//! openapi > contracts/openapi.yaml` writes it again).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::delivery::DeliveryApi;
use super::order::OrderApi;
use super::payment::PaymentApi;

/// `GET /healthz`'s body.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The node's id (delivery only).
    #[schema(required = false)]
    pub id: Option<String>,
    /// The node's role (delivery only).
    #[schema(required = false)]
    pub role: Option<String>,
}

/// What a route behind a bearer token may answer besides its own answers.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its documentation is used.
pub enum TokenRefused {
    /// `unauthorized`: no bearer token, or a bad one (`pizza-node token` makes one)
    #[response(status = 401)]
    Unauthorized(contracts::api::ErrorBody),
    /// `forbidden`: the token's role or scope may not call this route
    #[response(status = 403)]
    Forbidden(contracts::api::ErrorBody),
}

/// What a route that takes a JSON body may answer for one it cannot read.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its documentation is used.
pub enum BodyRefused {
    /// `validation` (naming the field), `malformed_json` or `bad_body`
    #[response(status = 400)]
    Invalid(contracts::api::ErrorBody),
    /// `request_timeout`: the body took longer than 15 s
    #[response(status = 408)]
    Slow(contracts::api::ErrorBody),
    /// `too_large`: over 64 KiB
    #[response(status = 413)]
    TooLarge(contracts::api::ErrorBody),
    /// `unsupported_media_type`: not `application/json`
    #[response(status = 415)]
    NotJson(contracts::api::ErrorBody),
}

/// The bearer tokens (`pizza-node token`, EdDSA JWTs) protected routes take.
pub struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An EdDSA JWT signed by a node of the platform's trust file, for this service and scope \
                         (`pizza-node token --key KEY --audience order --scope cancel`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// One service's document, with the platform's version.
fn versioned(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.info.license = None;
    doc
}

/// The order service's document.
pub fn order() -> utoipa::openapi::OpenApi {
    versioned(OrderApi::openapi())
}

/// The payment service's document.
pub fn payment() -> utoipa::openapi::OpenApi {
    versioned(PaymentApi::openapi())
}

/// The delivery service's document.
pub fn delivery() -> utoipa::openapi::OpenApi {
    versioned(DeliveryApi::openapi())
}

/// The three services in one document (`contracts/openapi.yaml`). Their
/// paths do not overlap but for `/healthz`, which each answers alike; a
/// client picks the service by its base URL.
pub fn merged() -> utoipa::openapi::OpenApi {
    let mut doc = order();
    doc.merge(payment());
    doc.merge(delivery());
    doc.info.title = "Pizza Platform".to_string();
    doc.info.description = Some(
        "The REST contract of the order, payment and delivery services. Every error answer is an \
         ErrorBody whose `code` says what happened."
            .to_string(),
    );
    doc
}

/// The merged document as YAML, as committed.
pub fn merged_yaml() -> Result<String, String> {
    merged().to_yaml().map_err(|e| e.to_string())
}

/// `GET /openapi.json` serving `doc`.
pub fn route(doc: utoipa::openapi::OpenApi) -> Router {
    let doc = std::sync::Arc::new(doc);
    Router::new().route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json((*doc).clone()) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../../contracts/openapi.yaml");
        let generated = merged_yaml().expect("the document writes as YAML");
        assert!(
            committed == generated,
            "contracts/openapi.yaml is not what the code generates; write it again with\n  \
             cargo run -p node --bin pizza-node -- openapi > contracts/openapi.yaml"
        );
    }

    #[test]
    fn every_route_of_every_service_is_documented() {
        let paths =
            |doc: utoipa::openapi::OpenApi| -> Vec<String> { doc.paths.paths.keys().cloned().collect() };
        assert_eq!(
            paths(order()),
            ["/healthz", "/orders", "/orders/{id}", "/orders/{id}/history"]
        );
        assert_eq!(paths(payment()), ["/healthz", "/pay", "/refund"]);
        assert_eq!(
            paths(delivery()),
            [
                "/deliveries/{order_id}",
                "/drivers",
                "/healthz",
                "/recall/{order_id}"
            ]
        );
        let doc = serde_json::to_value(merged()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let cancel = &doc["paths"]["/orders/{id}"]["delete"];
        assert_eq!(cancel["security"][0]["bearer"], serde_json::json!([]));
        assert!(doc["components"]["schemas"]["PlaceOrder"]["properties"]["customer"].is_object());
    }
}
