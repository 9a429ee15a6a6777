//! The four services of the pizza business. Each is a `pizza-node`
//! subcommand ([`Service`], the one list of them): `Args` are its flags,
//! `run` serves until SIGTERM/SIGINT or a `stop` command from the control
//! room. A service starts its node with `runtime::start::start_node`.
//!
//! The flow of one order (see `ARCHITECTURE.md`):
//! order --POST /pay--> payment; order --queue kitchen--> kitchen
//! --queue delivery--> delivery; every step publishes events the order node
//! folds into each order's state.

pub mod assets;
pub mod delivery;
pub mod directory;
pub mod kitchen;
pub mod openapi;
pub mod order;
pub mod payment;
pub mod range;
pub mod tokens;

use contracts::trust::role;

use crate::config::CommonArgs;

/// Every service as a `pizza-node` subcommand: adding a service is a folder
/// here and one variant (with its three match arms) below.
#[derive(Debug, clap::Subcommand)]
pub enum Service {
    /// The order service (HTTP): takes orders, charges them, tracks them.
    Order(order::Args),
    /// The payment service (HTTP).
    Payment(payment::Args),
    /// A kitchen: cooks tickets from queue `kitchen`.
    Kitchen(kitchen::Args),
    /// The delivery service: drivers take orders from queue `delivery`.
    Delivery(delivery::Args),
}

impl Service {
    /// The flags every node has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Service::Order(a) => &a.common,
            Service::Payment(a) => &a.common,
            Service::Kitchen(a) => &a.common,
            Service::Delivery(a) => &a.common,
        }
    }

    /// The role it runs as (its default node id, too).
    pub fn role(&self) -> &'static str {
        match self {
            Service::Order(_) => role::ORDER,
            Service::Payment(_) => role::PAYMENT,
            Service::Kitchen(_) => role::KITCHEN,
            Service::Delivery(_) => role::DELIVERY,
        }
    }

    /// Serves until stopped.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Service::Order(a) => order::run(a).await,
            Service::Payment(a) => payment::run(a).await,
            Service::Kitchen(a) => kitchen::run(a).await,
            Service::Delivery(a) => delivery::run(a).await,
        }
    }
}
