//! HTTP plumbing shared by the services: the listener and the address a
//! node announces, the server (with its timeouts), JSON
//! bodies whose rejections are 4xx answers with a JSON error body naming the
//! field, and the error type every handler returns. Every error answer of
//! every node is the contract's JSON `ErrorBody`, axum's own ones included.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contracts::api::{error_code, ErrorBody};
use serde::de::DeserializeOwned;

use crate::runtime::Node;

/// Takes the HTTP port, so that a busy one fails before the node starts.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    bind(addr, "--http").await
}

/// Takes `addr`, or says which `flag` chooses another.
pub async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}; is the port in use? choose another with {flag}"))
}

/// Puts the node's HTTP address in its heartbeat (figure `http`, and
/// `metrics` for its `/metrics`), so the
/// control room can reach a node it did not start and other nodes find it
/// (the order node calls delivery's `/recall` there), on this host or not.
pub fn announce_http(node: &Node, listener: &tokio::net::TcpListener, common: &crate::config::CommonArgs) {
    if let Ok(addr) = listener.local_addr() {
        let url = advertised_url(
            addr,
            common.advertise.as_deref(),
            &crate::runtime::claim::host_name(),
        );
        // Its API port serves the metrics too, unless --metrics put them
        // on an address of their own (and on its own address, not a proxy's).
        let api = common.advertise_url.clone().unwrap_or_else(|| url.clone());
        node.set_figures(|f| {
            f.metrics.get_or_insert_with(|| format!("{url}/metrics"));
            f.http = Some(api.trim_end_matches('/').to_string());
        });
        // The first heartbeat went out without it; the control room takes
        // the node for up (and its orders for placeable) on the next one.
        node.beat_now();
    }
}

/// The URL others reach a listener on `local` at: on `advertise` if given,
/// on this `host` when it listens on every address (0.0.0.0 says nothing
/// to another host), else on the address it listens on.
pub fn advertised_url(local: SocketAddr, advertise: Option<&str>, host: &str) -> String {
    let port = local.port();
    let name = match advertise {
        Some(a) => a.to_string(),
        None if local.ip().is_unspecified() => host.to_string(),
        None => local.ip().to_string(),
    };
    if name.contains(':') && !name.starts_with('[') {
        format!("http://[{name}]:{port}")
    } else {
        format!("http://{name}:{port}")
    }
}

/// Largest request body accepted (413 above).
pub const MAX_BODY: usize = 64 * 1024;

/// How long a client may take to send a request's headers, and how long a
/// connection may sit idle between requests; then it is closed. Without it a
/// few hundred slow clients hold a node's connections for as long as they
/// like. Our own clients drop idle connections sooner ([`CLIENT_IDLE`]), so
/// they never send on one the server is closing.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a request body may take to arrive (408 after).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the nodes' own HTTP clients keep an idle connection.
pub const CLIENT_IDLE: Duration = Duration::from_secs(5);

/// How long a stopping server waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (up to 10 s) and closes idle connections.
/// Every server also answers `GET /metrics` and counts its requests
/// (crate::metrics).
///
/// hyper's HTTP/1 connection directly rather than `axum::serve`, which has
/// no header-read timeout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    tracing::info!(addr = ?listener.local_addr().ok(), "HTTP listening");
    let app = router
        .route("/metrics", axum::routing::get(crate::metrics::render))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(json_errors));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before we
                // took it: not the listener's end. Wait a little (EMFILE
                // would otherwise spin) and go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that went away or timed out: nothing to do.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .context("requests still running 10 s after the stop; they were cut off")
        .or_else(|e| {
            tracing::warn!("{e:#}");
            anyhow::Ok(())
        })
}

/// Makes every error answer a JSON [`ErrorBody`]: axum answers an unknown
/// path (404), a wrong method (405) or a bad path segment or query (400)
/// with an empty or text body; this rewrites those, keeping the status and
/// the text as the message. Answers that are JSON already pass untouched.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, fallback) = match status {
        StatusCode::NOT_FOUND => (error_code::NOT_FOUND, format!("no such path: {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (
                error_code::METHOD_NOT_ALLOWED,
                format!("{path} does not take {method}; it takes {allowed}"),
            )
        }
        StatusCode::PAYLOAD_TOO_LARGE => (
            error_code::TOO_LARGE,
            format!("the body is over {} KiB", MAX_BODY / 1024),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            error_code::REQUEST_TIMEOUT,
            "the request took too long".to_string(),
        ),
        s if s.is_server_error() => (error_code::INTERNAL, format!("{s}")),
        s => (error_code::BAD_REQUEST, format!("{s}")),
    };
    let message = if text.is_empty() { fallback } else { text };
    let body = serde_json::to_vec(&ErrorBody::new(code, message)).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// An error answer: a status and a JSON [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: ErrorBody,
}

impl From<contracts::token::TokenError> for ApiError {
    fn from(why: contracts::token::TokenError) -> Self {
        let (status, code) = if why.is_forbidden() {
            (StatusCode::FORBIDDEN, error_code::FORBIDDEN)
        } else {
            (StatusCode::UNAUTHORIZED, error_code::UNAUTHORIZED)
        };
        ApiError::new(status, code, why.to_string())
    }
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
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            format!("{e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// A JSON request body. Unlike `axum::Json`, every rejection is a JSON error
/// body: 415 without `content-type: application/json`, 413 over
/// [`MAX_BODY`], 408 when it takes longer than [`BODY_TIMEOUT`], 400 for
/// malformed JSON or data after it, and 400 naming the JSON path of a
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
                error_code::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with 'content-type: application/json'",
            ));
        }
        let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::Bytes::from_request(req, state));
        let bytes = read
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    error_code::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
                )
            })?
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        error_code::TOO_LARGE,
                        format!("the body is over {} KiB", MAX_BODY / 1024),
                    )
                } else {
                    ApiError::new(e.status(), error_code::BAD_BODY, e.body_text())
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

/// The trace span of request `name` served for `order_id`, under the
/// caller's span its `traceparent` header names.
pub fn served(name: &'static str, headers: &axum::http::HeaderMap, order_id: &str) -> tracing::Span {
    let span = crate::otlp::span(name, crate::otlp::Kind::Server, order_id);
    crate::otlp::under_caller(&span, headers.get("traceparent").and_then(|v| v.to_str().ok()));
    span
}

/// Parses JSON, naming the path of whatever is wrong. Anything but
/// whitespace after the JSON value is malformed too: `{…} xyz` is not one
/// order.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let inner = e.inner();
        let path = e.path().to_string();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(inner);
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
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        error_code::MALFORMED_JSON,
        format!("the body is not valid JSON: {e}"),
    )
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

    #[test]
    fn data_after_the_json_value_is_malformed() {
        let order = r#"{"customer":{"name":"A","address":"B"},"items":[{"pizza":"margherita","qty":1}]}"#;
        assert!(parse::<PlaceOrder>(order.as_bytes()).is_ok());
        assert!(parse::<PlaceOrder>(format!("{order} \n").as_bytes()).is_ok());
        for tail in [" xyz", "{}", " 1"] {
            let e = parse::<PlaceOrder>(format!("{order}{tail}").as_bytes()).unwrap_err();
            assert_eq!(e.body.error.code, "malformed_json", "tail {tail:?}");
        }
    }

    #[test]
    fn the_advertised_url_is_one_another_host_can_reach() {
        let any = "0.0.0.0:8080".parse().unwrap();
        let lo = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            advertised_url(any, None, "kitchen-host"),
            "http://kitchen-host:8080"
        );
        assert_eq!(advertised_url(lo, None, "h"), "http://127.0.0.1:8080");
        assert_eq!(advertised_url(any, Some("10.0.0.7"), "h"), "http://10.0.0.7:8080");
        assert_eq!(advertised_url(any, Some("fd00::7"), "h"), "http://[fd00::7]:8080");
    }
}
