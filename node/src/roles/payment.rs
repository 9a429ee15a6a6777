//! The payment service: `POST /pay`, `POST /refund`.

use crate::config::CommonArgs;
use crate::roles::range::MsRange;

/// `pizza-node payment`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address.
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8081")]
    pub http: std::net::SocketAddr,
    /// Time to answer, in ms (a range like 20..200, or one value).
    #[arg(long, default_value = "20..200")]
    pub latency_ms: MsRange,
    /// Share of payments that fail with 500 (0.0..1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of payments declined with 402 (0.0..1.0).
    #[arg(long, default_value_t = 0.05)]
    pub decline_rate: f64,
}

/// Runs the payment service.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("payment is not implemented yet")
}
