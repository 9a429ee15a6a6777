//! The delivery service: consumes queue `delivery`, one delivery per free driver.

use std::path::PathBuf;

use crate::config::CommonArgs;
use crate::roles::range::MsRange;

/// `pizza-node delivery`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// HTTP listen address (GET /deliveries/{order_id}, GET /drivers).
    #[arg(long, env = "PIZZA_HTTP", default_value = "127.0.0.1:8083")]
    pub http: std::net::SocketAddr,
    /// How many drivers.
    #[arg(long, default_value_t = 3)]
    pub drivers: u32,
    /// Driver names (TOML, `drivers = [...]`); defaults to assets/drivers.toml.
    #[arg(long)]
    pub drivers_file: Option<PathBuf>,
    /// Trip time in ms (a range like 3000..8000, or one value; 0 = instant).
    #[arg(long, default_value = "3000..8000")]
    pub trip_ms: MsRange,
}

/// Runs the delivery service.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("delivery is not implemented yet")
}
