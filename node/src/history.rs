//! The client side of the broker's event log: ask for one order's events
//! over MQTT (`contracts::history`), and `GET /orders/{id}/history`.
//!
//! Two ways to ask, one protocol:
//!
//! - [`LogClient`] rides on a running node's connection (the order node): it
//!   subscribes to its reply topic once and pairs replies with questions by
//!   request id, so any number of HTTP requests can be open at once;
//! - [`fetch`] opens a short-lived connection of its own, for one-shot
//!   commands (`pizza-node replay`, `pizza-node trace`) that have no node.
//!
//! The log is the broker's, so an answer needs the broker: when none comes
//! within the timeout the caller says so (HTTP 503), rather than guessing.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use contracts::api::error_code;
use contracts::history::{self, HistoryView, LogQuery, LogReply, ReplayError};
use contracts::topics::Topics;
use contracts::Envelope;
use rumqttc::{AsyncClient, Event, Packet, QoS};

use crate::config::BrokerAddr;
use crate::error::NodeError;
use crate::runtime::http::ApiError;
use crate::runtime::request::Requests;
use crate::runtime::Node;

/// How long the order node waits for the event log before answering 503.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// Why the event log gave no events.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No answer in time: the broker is down, busy, or has no event log
    /// (a third-party MQTT broker).
    #[error("the broker's event log did not answer within {0:?}; is `pizza-node broker` running?")]
    Timeout(Duration),
    /// The broker could not be reached at all.
    #[error("cannot reach the broker at {addr}: {reason}")]
    Unreachable {
        /// host:port.
        addr: String,
        /// What the connection said.
        reason: String,
    },
    /// The log answered with an error.
    #[error("the event log could not answer: {0}")]
    Log(String),
    /// The node's own connection failed.
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// Asks the event log over a node's own MQTT connection. Cheap to clone.
#[derive(Clone)]
pub struct LogClient {
    requests: Requests<LogReply>,
    timeout: Duration,
}

impl LogClient {
    /// Subscribes to the node's reply topic and starts pairing replies.
    pub async fn start(node: &Node) -> Result<LogClient, NodeError> {
        let link = node.link().clone();
        let replies = link.topics().log_reply(link.id());
        Ok(LogClient {
            requests: Requests::start(link, replies).await?,
            timeout: ANSWER_WITHIN,
        })
    }

    /// Every event of `order_id` the log holds, in seq order.
    pub async fn events(&self, order_id: &str) -> Result<Vec<Envelope>, HistoryError> {
        let link = self.requests.link();
        let topic = link.topics().log_query(link.id());
        let reply = self
            .requests
            .ask(topic, self.timeout, |request_id| LogQuery {
                request_id,
                order_id: order_id.to_string(),
            })
            .await?;
        match reply {
            Some(reply) => events_of(reply),
            // Timed out, or the pairing task is gone (the node is stopping).
            None => Err(HistoryError::Timeout(self.timeout)),
        }
    }
}

fn events_of(reply: LogReply) -> Result<Vec<Envelope>, HistoryError> {
    match reply.error {
        Some(e) => Err(HistoryError::Log(e)),
        None => Ok(reply.events),
    }
}

/// Asks the event log once over a connection of its own (clean session,
/// a fresh client id), then disconnects.
pub async fn fetch(
    broker: &BrokerAddr,
    topics: &Topics,
    order_id: &str,
    timeout: Duration,
) -> Result<Vec<Envelope>, HistoryError> {
    let (client_id, opts) = broker.one_shot("pizza-cli", 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let query = serde_json::to_vec(&LogQuery {
        request_id: request_id.clone(),
        order_id: order_id.to_string(),
    })
    .map_err(NodeError::from)?;
    let reply_topic = topics.log_reply(&client_id);
    let exchange = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .subscribe(reply_topic.clone(), QoS::AtLeastOnce)
                        .await
                        .map_err(NodeError::from)?;
                }
                // Ask once the reply topic is certainly ours.
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    client
                        .publish(
                            topics.log_query(&client_id),
                            QoS::AtLeastOnce,
                            false,
                            query.clone(),
                        )
                        .await
                        .map_err(NodeError::from)?;
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == reply_topic => {
                    match serde_json::from_slice::<LogReply>(&contracts::seal::open(&p.payload).body) {
                        Ok(reply) if reply.request_id == request_id => return events_of(reply),
                        Ok(_) => {}
                        Err(e) => return Err(HistoryError::Log(format!("unreadable reply: {e}"))),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(HistoryError::Unreachable {
                        addr: format!("{}:{}", broker.host, broker.port),
                        reason: e.to_string(),
                    })
                }
            }
        }
    };
    let result = tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(HistoryError::Timeout(timeout)));
    let _ = client.try_disconnect();
    result
}

/// The query string of `GET /orders/{id}/history`.
#[derive(Debug, serde::Deserialize)]
pub struct HistoryParams {
    /// RFC 3339 instant; absent: now.
    as_of: Option<String>,
}

/// `GET /orders/{id}/history?as_of=RFC3339`: the order's state at `as_of`
/// (now when absent), replayed from the broker's event log.
///
/// 400 naming `as_of` when it is not an RFC 3339 instant; 404 for an order
/// the log does not know, or one not yet placed at `as_of`; 503 when the log
/// does not answer in time.
#[utoipa::path(get, operation_id = "get_order_history", path = "/orders/{id}/history", tag = "order",
    params(
        ("id" = String, Path, description = "The order id"),
        ("as_of" = Option<String>, Query, description = "An RFC 3339 instant; absent: now"),
    ),
    responses(
        (status = 200, description = "The order's state at `as_of`, step by step", body = contracts::history::HistoryView),
        (status = 400, description = "`validation` naming `as_of`", body = contracts::api::ErrorBody),
        (status = 404, description = "`not_found`: the log does not know the order", body = contracts::api::ErrorBody),
        (status = 409, description = "`conflict`: the order was not placed yet at `as_of`", body = contracts::api::ErrorBody),
        (status = 503, description = "`event_log_unavailable`", body = contracts::api::ErrorBody),
    ))]
pub async fn get_history(
    State(log): State<LogClient>,
    Path(order_id): Path<String>,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryView>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::field("as_of", e.body_text()))?;
    let as_of = params
        .as_of
        .as_deref()
        .map(history::parse_as_of)
        .transpose()
        .map_err(|e| ApiError::field("as_of", e))?;
    let events = log.events(&order_id).await.map_err(|e| match e {
        HistoryError::Node(e) => ApiError::internal(e),
        e => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "event_log_unavailable",
            e.to_string(),
        ),
    })?;
    history::replay(&order_id, events, as_of)
        .map(Json)
        .map_err(|e| match e {
            ReplayError::NotStarted { .. } => {
                ApiError::new(StatusCode::CONFLICT, error_code::CONFLICT, e.to_string())
            }
            e => ApiError::not_found(e.to_string()),
        })
}
