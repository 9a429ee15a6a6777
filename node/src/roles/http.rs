//! HTTP plumbing shared by the roles: JSON bodies whose rejections are 4xx
//! answers with a JSON error body naming the field, and the error type every
//! handler returns.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use contracts::api::ErrorBody;
use serde::de::DeserializeOwned;

/// Largest request body accepted (413 above).
pub const MAX_BODY: usize = 64 * 1024;

/// An error answer: a status and a JSON [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::new(code, message),
        }
    }

    /// 400 naming the offending field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody::validation(contracts::api::FieldError::new(field, message)),
        }
    }

    /// 404 for something that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 for a failure of this node (storage, broker).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A JSON request body. Unlike `axum::Json`, every rejection is a JSON error
/// body: 415 without `content-type: application/json`, 413 over
/// [`MAX_BODY`], 400 for malformed JSON, and 400 naming the JSON path of a
/// missing, unknown or mistyped field.
pub struct JsonBody<T>(pub T);

#[axum::async_trait]
impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with 'content-type: application/json'",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("the body is over {} KiB", MAX_BODY / 1024),
                    )
                } else {
                    ApiError::new(e.status(), "bad_body", e.body_text())
                }
            })?;
        parse(&bytes).map(JsonBody)
    }
}

/// The trace id of a request's W3C `traceparent` header, if well formed.
pub fn incoming_trace(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    contracts::trace::trace_id_of(value).map(str::to_string)
}

/// Parses JSON, naming the path of whatever is wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let path = e.path().to_string();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        // serde names an unknown or missing field in the message, not the path.
        let field = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| message.split(p).nth(1).and_then(|rest| rest.split('`').next()))
            .map(|name| {
                // An unknown field is already in the path; a missing one is not.
                if path == name || path.ends_with(&format!(".{name}")) {
                    path.clone()
                } else if path == "." {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                }
            })
            .unwrap_or(path);
        ApiError::field(field, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::api::PlaceOrder;

    fn field_of(body: &str) -> Option<String> {
        parse::<PlaceOrder>(body.as_bytes())
            .err()
            .and_then(|e| e.body.error.field)
    }

    #[test]
    fn names_the_json_path_of_what_is_wrong() {
        assert_eq!(field_of(r#"{"items":[]}"#).as_deref(), Some("customer"));
        assert_eq!(
            field_of(r#"{"customer":{"name":"A"},"items":[]}"#).as_deref(),
            Some("customer.address")
        );
        assert_eq!(
            field_of(r#"{"customer":{"name":"A","address":"B"},"items":[{"pizza":"x","qty":"two"}]}"#)
                .as_deref(),
            Some("items[0].qty")
        );
        assert_eq!(
            field_of(r#"{"customer":{"name":"A","address":"B"},"items":[],"tip":5}"#).as_deref(),
            Some("tip")
        );
        let e = parse::<PlaceOrder>(b"{nope").unwrap_err();
        assert_eq!(e.body.error.code, "malformed_json");
    }
}
