//! The order service: `POST /orders`, `GET /orders/{id}`, `GET /orders`.

use std::path::PathBuf;

use crate::config::CommonArgs;

/// `pizza-node order`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address.
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8080")]
    pub http: std::net::SocketAddr,
    /// The payment service.
    #[arg(long, env = "PIZZA_PAYMENT_URL", default_value = "http://127.0.0.1:8081")]
    pub payment_url: String,
    /// Give up on payment after this long (then 503).
    #[arg(long, default_value_t = 2000)]
    pub payment_timeout_ms: u64,
    /// Consecutive payment failures that open the circuit breaker.
    #[arg(long, default_value_t = 5)]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial call.
    #[arg(long, default_value_t = 10_000)]
    pub breaker_open_ms: u64,
    /// The menu (TOML); defaults to assets/menu.toml.
    #[arg(long)]
    pub menu: Option<PathBuf>,
}

/// Runs the order service.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("order is not implemented yet")
}
