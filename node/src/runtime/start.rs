//! How a node process comes up from its command line: the runtime started
//! under its id and role ([`start_node`]), then its Prometheus exporter and
//! `--metrics` endpoint ([`serve_metrics`]). Every service and the keeper
//! start this way.

use anyhow::Context;

use crate::config::{BrokerAddr, CommonArgs};
use crate::runtime::{Node, NodeConfig};

/// Starts the node runtime for a role from the common flags.
pub async fn start_node(common: &CommonArgs, role: &str) -> anyhow::Result<Node> {
    let id = common.id_or(role);
    let broker: BrokerAddr = common.broker.parse()?;
    let cfg = NodeConfig {
        data_dir: common.data_dir_for(&id),
        security: common.security(&id, role)?,
        id,
        role: role.to_string(),
        broker,
        prefix: common.prefix.clone(),
    };
    let dir = cfg.data_dir.display().to_string();
    let faults = contracts::status::Faults {
        error_rate: common.error_rate,
        ..Default::default()
    };
    faults
        .validate()
        .map_err(|why| anyhow::anyhow!("--error-rate {}: {why}", common.error_rate))?;
    let node = Node::start(cfg)
        .await
        .with_context(|| format!("cannot start the node (data directory {dir})"))?;
    if common.error_rate > 0.0 {
        node.obey(contracts::status::Control::SetFaults { faults });
    }
    serve_metrics(common, &node).await?;
    Ok(node)
}

/// Installs the node's Prometheus exporter and, with `--metrics`, serves it
/// on its own address until the node stops (the figure `metrics` says where).
/// (Traces start with the logs: their layer is part of the subscriber.)
pub async fn serve_metrics(common: &CommonArgs, node: &Node) -> anyhow::Result<()> {
    let stop = crate::runtime::stop::until_stopped(node.clone());
    if let Some(url) = telemetry(common, node.id(), node.role(), stop).await? {
        node.set_figures(|f| f.metrics = Some(url));
    }
    Ok(())
}

/// The exporter and the `--metrics` endpoint (served until `stop`)
/// of process `id` running as `role`; the endpoint's URL, if any.
pub(crate) async fn telemetry(
    common: &CommonArgs,
    id: &str,
    role: &str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<String>> {
    crate::metrics::install(id, role);
    match common.metrics {
        Some(addr) => Ok(Some(
            crate::metrics::listen(addr, common.advertise.as_deref(), stop).await?,
        )),
        None => Ok(None),
    }
}
