//! The kitchen: consumes queue `kitchen`, one ticket per free oven.

use std::path::PathBuf;

use crate::config::CommonArgs;
use crate::roles::range::MsRange;

/// `pizza-node kitchen`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Ovens: tickets cooked at once (the credit announced to the keeper).
    #[arg(long, default_value_t = 2)]
    pub ovens: u32,
    /// Prep time in ms (a range like 5000..10000, or one value; 0 = instant).
    #[arg(long, default_value = "5000..10000")]
    pub prep_ms: MsRange,
    /// Starting stock (TOML); defaults to assets/stock.toml.
    #[arg(long)]
    pub stock: Option<PathBuf>,
    /// The menu (TOML); defaults to assets/menu.toml.
    #[arg(long)]
    pub menu: Option<PathBuf>,
}

/// Runs the kitchen.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("kitchen is not implemented yet")
}
