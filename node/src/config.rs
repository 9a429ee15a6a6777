//! Flags every `pizza-node` subcommand shares, each also read from a
//! `PIZZA_*` environment variable.

use std::path::PathBuf;

use crate::error::NodeError;

/// How the node logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The common flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Node id: the MQTT client id and the name shown everywhere. Defaults to
    /// the role name.
    #[arg(long, env = "PIZZA_ID")]
    pub id: Option<String>,
    /// The broker: mqtt://HOST:PORT or mqtt://USER:PASSWORD@HOST:PORT.
    #[arg(long, env = "PIZZA_BROKER", default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// Where the node keeps its state (outbox, inbox, queues). Defaults to
    /// ./data/<id>.
    #[arg(long, env = "PIZZA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "PIZZA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Log to this file instead of stderr.
    #[arg(long, env = "PIZZA_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// Topic prefix.
    #[arg(long, env = "PIZZA_PREFIX", default_value = "pizza")]
    pub prefix: String,
    /// The host (name or address) other nodes and the control room reach
    /// this node's HTTP at, announced in its heartbeat. Defaults to the
    /// listen address, or this host's name when listening on 0.0.0.0 or ::.
    #[arg(long, env = "PIZZA_ADVERTISE")]
    pub advertise: Option<String>,
    /// The whole URL its heartbeat announces for its HTTP API, over
    /// --advertise (e.g. a proxy in front of it: the control room's fault
    /// proxy with --network-faults).
    #[arg(long, value_name = "URL")]
    pub advertise_url: Option<String>,
    /// This node's private key (`pizza-node keygen` makes it). With
    /// `--trust`, the node signs everything it sends.
    #[arg(long, env = "PIZZA_KEY", requires = "trust")]
    pub key: Option<PathBuf>,
    /// The platform's trust file (node id -> role -> public key). With
    /// `--key`, the node refuses any message not signed by its sender or
    /// outside the sender's role.
    #[arg(long, env = "PIZZA_TRUST", requires = "key")]
    pub trust: Option<PathBuf>,
    /// Serve Prometheus `/metrics` on this address (e.g. 127.0.0.1:9464).
    /// Nodes with an HTTP API serve it there as well.
    #[arg(long, env = "PIZZA_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Send OpenTelemetry traces (OTLP/HTTP, protobuf) to this collector,
    /// e.g. http://127.0.0.1:4318 (Jaeger's). Off when absent.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Start with this share (0..1) of the work it handles failing, as the
    /// fault menu's error rate would: a bad build, for trying canaries.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub error_rate: f64,
}

impl CommonArgs {
    /// The node id, or `default` when none was given.
    pub fn id_or(&self, default: &str) -> String {
        self.id.clone().unwrap_or_else(|| default.to_string())
    }

    /// Node `id`'s key and trust file (running as `role`); none when
    /// neither flag is given.
    pub fn security(
        &self,
        id: &str,
        role: &str,
    ) -> Result<crate::runtime::security::Security, crate::error::NodeError> {
        crate::runtime::security::Security::load(self.key.as_deref(), self.trust.as_deref(), id, role)
    }

    /// The data directory for node `id`.
    pub fn data_dir_for(&self, id: &str) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(id))
    }
}

/// A parsed `mqtt://` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Username and password, if given.
    pub credentials: Option<(String, String)>,
}

impl BrokerAddr {
    /// Options for a short-lived connection of its own (a query, a probe):
    /// a fresh client id `<kind>-<12 hex>` (under the login, if any: see
    /// `contracts::login`), returned with them, a clean session, a 5 s
    /// keep-alive, and these credentials.
    pub fn one_shot(&self, kind: &str, max_incoming: usize) -> (String, rumqttc::MqttOptions) {
        let name = format!("{kind}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let id = contracts::login::client_id(self.credentials.as_ref().map(|(u, _)| u.as_str()), &name);
        let mut opts = rumqttc::MqttOptions::new(&id, &self.host, self.port);
        opts.set_clean_session(true)
            .set_keep_alive(std::time::Duration::from_secs(5))
            .set_max_packet_size(max_incoming, 64 * 1024);
        if let Some((u, p)) = &self.credentials {
            opts.set_credentials(u, p);
        }
        (id, opts)
    }
}

impl std::str::FromStr for BrokerAddr {
    type Err = NodeError;

    fn from_str(url: &str) -> Result<Self, NodeError> {
        let bad = || NodeError::BrokerUrl(url.to_string());
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .unwrap_or(url);
        let rest = rest.trim_end_matches('/');
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((cred, hp)) => {
                let (u, p) = cred.split_once(':').ok_or_else(bad)?;
                (Some((u.to_string(), p.to_string())), hp)
            }
            None => (None, rest),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(BrokerAddr {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let a: BrokerAddr = "mqtt://127.0.0.1:1883".parse().unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.credentials),
            ("127.0.0.1", 1883, None)
        );
        let a: BrokerAddr = "mqtt://ada:s3cret@localhost:2000".parse().unwrap();
        assert_eq!(a.credentials, Some(("ada".into(), "s3cret".into())));
        assert!("mqtt://localhost".parse::<BrokerAddr>().is_err());
        assert!("mqtt://:1883".parse::<BrokerAddr>().is_err());
    }
}
