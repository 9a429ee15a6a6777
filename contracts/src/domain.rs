//! The domain's vocabulary, below events, the state machine and REST: who
//! ordered what ([`Customer`], [`Item`]) and the roles a node plays
//! ([`Role`]). Everything above is made of these.

use serde::{Deserialize, Serialize};

use crate::trust::role;

/// Who ordered, and where to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// The customer's name.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S", example = "Ada Lovelace")]
    pub name: String,
    /// The delivery address.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"\S",
        example = "12 Analytical Row"
    )]
    pub address: String,
}

/// One line of an order: a pizza from the menu and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Menu name of the pizza, e.g. `margherita`.
    #[schema(example = "margherita")]
    pub pizza: String,
    /// How many, 1 to 20 (at most 50 pizzas per order).
    #[schema(minimum = 1, maximum = 20)]
    pub qty: u32,
}

/// A node role, as `control-room node <role>` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The MQTT broker and queue keeper.
    Broker,
    /// Another MQTT broker (Mosquitto, say): a program of its own, started
    /// from the node's `command`; it has no heartbeat.
    External,
    /// The queue keeper and the event log alone (`pizza-node keeper`), for
    /// a broker that is not ours.
    Keeper,
    /// The payment service (HTTP).
    Payment,
    /// The order service (HTTP).
    Order,
    /// A kitchen (consumes `kitchen`).
    Kitchen,
    /// The delivery service (consumes `delivery`).
    Delivery,
}

impl Role {
    /// Every role, in start order.
    pub const ALL: [Role; 7] = [
        Role::Broker,
        Role::External,
        Role::Keeper,
        Role::Payment,
        Role::Order,
        Role::Kitchen,
        Role::Delivery,
    ];

    /// The subcommand name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Broker => role::BROKER,
            Role::External => "external",
            Role::Keeper => "keeper",
            Role::Payment => role::PAYMENT,
            Role::Order => role::ORDER,
            Role::Kitchen => role::KITCHEN,
            Role::Delivery => role::DELIVERY,
        }
    }

    /// Parses a role name as heartbeats carry it.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role serves HTTP (and so needs a port).
    pub fn serves_http(self) -> bool {
        matches!(self, Role::Payment | Role::Order | Role::Delivery)
    }

    /// Whether `+`/`-` may change how many of it run. The broker, the
    /// keeper (a single writer) and an external program are one each.
    pub fn scales(self) -> bool {
        !matches!(self, Role::Broker | Role::External | Role::Keeper)
    }

    /// The HTTP services a node of this role calls, each with the flag that
    /// tells it where: the control room passes the URL of the node it
    /// started for that role.
    pub fn calls(self) -> &'static [(&'static str, Role)] {
        match self {
            Role::Order => &[("--payment-url", Role::Payment)],
            _ => &[],
        }
    }

    /// Whether other nodes find its HTTP API at the URL its heartbeat
    /// announces (delivery: the order node's recalls), rather than by a flag.
    pub fn reached_by_heartbeat(self) -> bool {
        matches!(self, Role::Delivery)
    }

    /// The work queue its nodes take work from, if any.
    pub fn consumes(self) -> Option<&'static str> {
        match self {
            Role::Kitchen => Some(crate::queue::KITCHEN),
            Role::Delivery => Some(crate::queue::DELIVERY),
            Role::Order => Some(crate::queue::CANCELLATION),
            _ => None,
        }
    }

    /// Whether its nodes keep a stock of ingredients (and so can be made to
    /// run out of one, a fault of their own).
    pub fn keeps_stock(self) -> bool {
        matches!(self, Role::Kitchen)
    }

    /// Whether the others need it to talk at all (a broker): it starts
    /// first and stops last.
    pub fn carries_messages(self) -> bool {
        matches!(self, Role::Broker | Role::External)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
