//! The embedded MQTT server: rumqttd configured for this project.
//!
//! rumqttd keeps every message in in-memory segments until they rotate
//! (~340 B per message). Its defaults (100 MiB x 10 segments) let RSS climb
//! past 300 MB, so we use 1 MiB x 10 segments per topic filter: the router's
//! log for one filter is bounded by ~10 MiB, and a node that is offline longer
//! than that window relies on the durable queues, not on the broker's memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::Logins;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Bytes per router segment.
pub const SEGMENT_SIZE: usize = 1024 * 1024;
/// Segments kept per topic filter.
pub const SEGMENT_COUNT: usize = 10;
/// Largest accepted MQTT payload.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// What the embedded server listens on and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// MQTT 3.1.1 listener.
    pub listen: SocketAddr,
    /// Optional MQTT 5 listener.
    pub listen_v5: Option<SocketAddr>,
    /// Optional rumqttd console (HTTP) listener.
    pub console: Option<SocketAddr>,
    /// Who may connect, with which client ids; `None` lets anyone in.
    pub logins: Option<Arc<Logins>>,
}

fn settings(name: &str, listen: SocketAddr, logins: &Option<Arc<Logins>>) -> ServerSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if let Some(logins) = logins.clone() {
        // rumqttd's own `auth` map checks passwords only; this hook also pins
        // each login to its client ids.
        connections.set_auth_handler(move |client_id: String, login: String, password: String| {
            let admitted = logins.admit(&client_id, &login, &password);
            if let Err(why) = &admitted {
                tracing::warn!(%client_id, %login, %why, "connection refused");
            }
            std::future::ready(admitted.is_ok())
        });
    }
    ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    }
}

/// The rumqttd configuration for `opts`.
pub fn config(opts: &ServerOptions) -> Config {
    let mut v4 = HashMap::new();
    v4.insert("1".to_string(), settings("v4", opts.listen, &opts.logins));
    let v5 = opts.listen_v5.map(|addr| {
        let mut m = HashMap::new();
        m.insert("1".to_string(), settings("v5", addr, &opts.logins));
        m
    });
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 500,
            max_segment_size: SEGMENT_SIZE,
            max_segment_count: SEGMENT_COUNT,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(v4),
        v5,
        ws: None,
        cluster: None,
        console: opts.console.map(|addr| {
            // Its reload handle is private, so set the one public field.
            let mut console = rumqttd::ConsoleSettings::default();
            console.listen = addr.to_string();
            console
        }),
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// Starts rumqttd on its own threads. It has no shutdown API: it stops when
/// the process exits.
pub fn spawn(opts: &ServerOptions) -> std::io::Result<()> {
    let mut broker = rumqttd::Broker::new(config(opts));
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "the MQTT server stopped");
            }
        })?;
    Ok(())
}

/// The MQTT options of the broker's own clients (the keeper, the event
/// log): a persistent session, room for the largest payload, and the
/// credentials when the broker asks for them.
pub fn client_options(
    client_id: &str,
    host: &str,
    port: u16,
    credentials: Option<&(String, String)>,
) -> rumqttc::MqttOptions {
    let mut mqtt = rumqttc::MqttOptions::new(client_id, host, port);
    mqtt.set_clean_session(false)
        .set_keep_alive(std::time::Duration::from_secs(10))
        .set_inflight(1_000)
        .set_max_packet_size(MAX_PAYLOAD * 2, MAX_PAYLOAD * 2);
    if let Some((u, p)) = credentials {
        mqtt.set_credentials(u, p);
    }
    mqtt
}

/// What a broker's own client's MQTT event loop hands its owner.
pub enum Input {
    /// A CONNACK: subscribe (again). Harmless when the session survived,
    /// and it covers a broker restart that lost it (rumqttc does not
    /// re-subscribe).
    Connected,
    /// A message on a subscribed topic.
    Publish(rumqttc::Publish),
}

/// Drives a client's MQTT event loop, forwarding what matters to its
/// owner and reconnecting with capped backoff, until the owner is gone.
///
/// The channel is unbounded on purpose: the event loop must never wait on
/// its owner, or the owner's own publishes (which the event loop sends)
/// could deadlock against it. The broker's in-flight window bounds the flow.
pub async fn pump(
    mut eventloop: rumqttc::EventLoop,
    tx: tokio::sync::mpsc::UnboundedSender<Input>,
    who: &'static str,
) {
    use rumqttc::{Event, Packet};
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        let input = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => Input::Publish(p),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = std::time::Duration::from_millis(100);
                Input::Connected
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "{who} lost the broker; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                continue;
            }
        };
        if tx.send(input).is_err() {
            return;
        }
    }
}
