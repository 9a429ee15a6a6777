//! The topology: which nodes the control room starts (assets/topology.toml).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// The default topology, compiled in so a fresh checkout needs no files.
pub const DEFAULT: &str = include_str!("../../assets/topology.toml");

/// The platform `--chaos` starts without `--topology` (assets/chaos.toml).
pub const CHAOS: &str = include_str!("../../assets/chaos.toml");

pub use contracts::domain::Role;

/// One node of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// What it runs.
    pub role: Role,
    /// Its id: MQTT client id, data directory and log file name.
    pub id: String,
    /// Extra role flags, e.g. `["--ovens", "3"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// For `role = "external"`: the program and its arguments, e.g.
    /// `["mosquitto", "-p", "{broker_port}"]`; `{broker_port}` and
    /// `{broker_host}` become those of `--broker`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// The nodes to start, in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The nodes.
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeSpec>,
}

/// Why a topology file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read the topology file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not describe a topology.
    #[error("the topology is not valid: {0} (see assets/topology.toml for the format)")]
    Parse(#[from] toml::de::Error),
    /// Two nodes share an id.
    #[error("the topology names node id `{0}` twice; every id must be unique")]
    DuplicateId(String),
    /// An id that cannot be a client id or a file name.
    #[error("node id `{0}` is not allowed: use letters, digits, `-` and `_`")]
    BadId(String),
    /// More than one broker.
    #[error("the topology has more than one broker; the platform runs on one")]
    TwoBrokers,
    /// An external node without a command, or a command on another role.
    #[error("node `{0}`: `command` is what an external node runs, and only it: give role = \"external\" a command, and other roles none")]
    Command(String),
}

impl Topology {
    /// Parses topology TOML.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let topology: Topology = toml::from_str(text)?;
        let mut ids = BTreeSet::new();
        for n in &topology.nodes {
            if !valid_id(&n.id) {
                return Err(TopologyError::BadId(n.id.clone()));
            }
            if !ids.insert(n.id.as_str()) {
                return Err(TopologyError::DuplicateId(n.id.clone()));
            }
        }
        if let Some(n) = topology
            .nodes
            .iter()
            .find(|n| (n.role == Role::External) == n.command.is_empty())
        {
            return Err(TopologyError::Command(n.id.clone()));
        }
        if topology
            .nodes
            .iter()
            .filter(|n| n.role.carries_messages())
            .count()
            > 1
        {
            return Err(TopologyError::TwoBrokers);
        }
        Ok(topology)
    }

    /// Reads `path`, or the compiled-in default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Topology, TopologyError> {
        match path {
            None => Topology::parse(DEFAULT),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| TopologyError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Topology::parse(&text)
            }
        }
    }

    /// The chaos platform ([`CHAOS`]), its kitchens stocked from a file it
    /// writes into `data_dir`: enough for any run.
    pub fn for_chaos(data_dir: &Path) -> Result<Topology, TopologyError> {
        let stock = data_dir.join("chaos-stock.toml");
        let mut text = String::from("[stock]\n");
        for ingredient in crate::customer::ingredients() {
            text.push_str(&format!("{ingredient} = 100000000\n"));
        }
        std::fs::write(&stock, text).map_err(|source| TopologyError::Read {
            path: stock.display().to_string(),
            source,
        })?;
        let mut t = Topology::parse(CHAOS)?;
        for n in t.nodes.iter_mut().filter(|n| n.role.keeps_stock()) {
            n.args
                .extend(["--stock".to_string(), stock.display().to_string()]);
        }
        Ok(t)
    }

    /// The topology without its broker (when attaching to a running one).
    pub fn without_broker(mut self) -> Topology {
        self.nodes.retain(|n| n.role != Role::Broker);
        self
    }
}

/// Ids become MQTT client ids, topic levels and file names.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_topology_is_broker_payment_order_two_kitchens_delivery() {
        let t = Topology::load(None).unwrap();
        let roles: Vec<_> = t.nodes.iter().map(|n| n.role).collect();
        assert_eq!(
            roles,
            [
                Role::Broker,
                Role::Payment,
                Role::Order,
                Role::Kitchen,
                Role::Kitchen,
                Role::Delivery
            ]
        );
        assert_eq!(t.clone().without_broker().nodes.len(), 5);
    }

    #[test]
    fn refuses_duplicate_ids_unknown_roles_and_bad_ids() {
        let dup = "[[node]]\nrole='kitchen'\nid='k'\n[[node]]\nrole='kitchen'\nid='k'\n";
        assert!(matches!(Topology::parse(dup), Err(TopologyError::DuplicateId(id)) if id == "k"));
        let unknown = "[[node]]\nrole='oven'\nid='o'\n";
        let e = Topology::parse(unknown).unwrap_err().to_string();
        assert!(e.contains("oven"), "{e}");
        let bad = "[[node]]\nrole='kitchen'\nid='a/b'\n";
        assert!(matches!(Topology::parse(bad), Err(TopologyError::BadId(_))));
        let brokers = "[[node]]\nrole='broker'\nid='a'\n[[node]]\nrole='broker'\nid='b'\n";
        assert!(matches!(Topology::parse(brokers), Err(TopologyError::TwoBrokers)));
    }
}
