//! `pizza-node keeper`: the queue keeper and the event log on their own, as
//! MQTT clients of any broker (Mosquitto, EMQX, HiveMQ, or our embedded
//! one), so that no guarantee depends on the broker but MQTT itself.
//!
//! The keeper is a single writer: two keepers on one prefix would hand out
//! the same ticket twice. So it runs as a node with id `keeper`, and the id
//! claim ([`crate::runtime::claim`]) is its lease: a second keeper refuses to serve
//! while the first lives, stands by, and takes over when the first is gone.
//! Should two ever serve at once (the first was frozen past its heartbeat,
//! or cut off, and comes back), the fencing number decides: each heartbeat
//! carries the `epoch` at which its keeper took over, and a keeper that
//! hears a live one with a later epoch stops serving at once ([`fenced_by`]).

use std::time::Duration;

use anyhow::Context;
use contracts::domain::Role;
use contracts::status::{NodeState, NodeStatus};
use contracts::topics::Topics;

use crate::cli::QueuePolicyArgs;
use crate::config::{BrokerAddr, CommonArgs};
use crate::error::NodeError;
use crate::runtime::security::Security;
use crate::runtime::{Node, NodeConfig};

/// The figure that carries a keeper's fencing number.
pub const EPOCH: &str = "epoch";

/// How often a standby keeper looks whether the serving one is gone.
const STANDBY_POLL: Duration = Duration::from_millis(500);

/// `pizza-node keeper`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub queues: QueuePolicyArgs,
}

/// Who this keeper is, as its heartbeat says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// When it took over, in ms since the epoch: later wins.
    pub epoch: u64,
    /// Its process.
    pub pid: u32,
    /// Its host.
    pub host: String,
}

impl Lease {
    /// The lease a heartbeat shows, if it is a live keeper's.
    pub fn of(status: &NodeStatus) -> Option<Lease> {
        if status.state == NodeState::Offline || status.pid == 0 {
            return None;
        }
        Some(Lease {
            epoch: status.figures.epoch?,
            pid: status.pid,
            host: status.host.clone(),
        })
    }
}

/// Whether a heartbeat on the keeper's id from `other` ends `mine`: it is
/// another live keeper that took over later (on a tie, the larger
/// host/pid: any fixed order does, as long as both keepers agree).
pub fn fenced_by(mine: &Lease, other: &Lease) -> bool {
    if other.pid == mine.pid && other.host == mine.host {
        return false;
    }
    (other.epoch, &other.host, other.pid) > (mine.epoch, &mine.host, mine.pid)
}

/// Stands by while another keeper serves, then serves until stopped, fenced
/// or failed.
pub async fn run(a: Args) -> anyhow::Result<()> {
    let id = a.common.id_or(Role::Keeper.as_str());
    let broker: BrokerAddr = a.common.broker.parse()?;
    let topics = Topics::new(&a.common.prefix);
    let data_dir = a.common.data_dir_for(&id);
    // Loaded first: a forged heartbeat on the keeper's id must neither keep
    // it standing by nor fence it.
    let security = a.common.security(&id, Role::Keeper.as_str())?;
    if !stand_by(&broker, &topics, &id, &security).await? {
        return Ok(());
    }
    let node = Node::start(NodeConfig {
        // The node's own outbox and inbox, beside the queues' store.
        data_dir: data_dir.join("node"),
        security: security.clone(),
        id: id.clone(),
        role: Role::Keeper.as_str().into(),
        broker: broker.clone(),
        prefix: a.common.prefix.clone(),
    })
    .await
    .with_context(|| format!("cannot start the keeper (data directory {})", data_dir.display()))?;
    crate::runtime::start::serve_metrics(&a.common, &node).await?;
    let epoch = wall_ms();
    node.set_figures(|f| f.epoch = Some(epoch));
    let mine = Lease {
        epoch,
        pid: std::process::id(),
        host: crate::runtime::claim::host_name(),
    };
    tracing::info!(prefix = %a.common.prefix, epoch, broker = %a.common.broker, "keeper serving: the work queues and the event log");
    let mut heartbeats = node.subscribe(topics.status(&id)).await?;
    let checks = security.clone();
    let fence = async {
        while let Some(m) = heartbeats.recv().await {
            let Some(status) = crate::runtime::claim::heartbeat(&topics, &checks, &m.topic, &m.payload)
            else {
                continue;
            };
            if let Some(other) = Lease::of(&status).filter(|o| fenced_by(&mine, o)) {
                return other;
            }
        }
        // The link is gone: the node is stopping.
        std::future::pending().await
    };
    let run = broker::serve_keeper(broker::KeeperRun {
        host: broker.host.clone(),
        port: broker.port,
        credentials: broker.credentials.clone(),
        keeping: a.queues.keeping(data_dir, &a.common.prefix, security),
    });
    let outcome = tokio::select! {
        r = run => r.map_err(anyhow::Error::from),
        other = fence => {
            tracing::error!(other_pid = other.pid, other_host = %other.host, other_epoch = other.epoch, epoch, "fenced: another keeper took over this prefix later; this one stops serving so that no ticket is handed out twice");
            Err(anyhow::anyhow!(
                "fenced by the keeper of pid {} on host {} (epoch {} > {epoch}); start this one again to stand by",
                other.pid, other.host, other.epoch
            ))
        }
        () = crate::runtime::stop::until_stopped(node.clone()) => Ok(()),
    };
    node.shutdown().await;
    outcome
}

/// Waits while a live keeper holds `id`, saying so once. Returns false if
/// told to stop meanwhile. Unlike a service, a standby keeper does not take
/// "the broker is unreachable" for "free": it waits for the broker too.
async fn stand_by(
    broker: &BrokerAddr,
    topics: &Topics,
    id: &str,
    security: &Security,
) -> Result<bool, NodeError> {
    let mut said = None;
    loop {
        let holders = crate::runtime::claim::census(broker, topics, &topics.status(id), security).await?;
        let holder = match &holders {
            Some(h) => match h.get(id) {
                None => match keeper_publishing(broker, topics).await? {
                    Some(false) => return Ok(true),
                    Some(true) => {
                        "a keeper without a heartbeat (the one inside `pizza-node broker`)".to_string()
                    }
                    None => format!("the broker {}:{} is unreachable", broker.host, broker.port),
                },
                Some(s) => format!("pid {} on host {}", s.pid, s.host),
            },
            None => format!("the broker {}:{} is unreachable", broker.host, broker.port),
        };
        if said.as_ref() != Some(&holder) {
            tracing::warn!(prefix = %topics.prefix(), %holder, "another keeper serves this prefix (or it cannot be told): this one refuses to serve and stands by to take over");
            said = Some(holder);
        }
        tokio::select! {
            () = tokio::time::sleep(STANDBY_POLL) => {}
            () = crate::runtime::stop::terminated() => return Ok(false),
        }
    }
}

/// Whether some keeper serves this prefix now, heartbeat or not: a live
/// keeper (`pizza-node broker`'s own included) publishes queue stats every
/// second, so a fresh (not retained) one within
/// [`crate::runtime::claim::PROOF_OF_LIFE`] proves it. `None` when the broker cannot
/// be reached.
async fn keeper_publishing(broker: &BrokerAddr, topics: &Topics) -> Result<Option<bool>, NodeError> {
    use rumqttc::{AsyncClient, Event, Packet, QoS};
    let (_, opts) = broker.one_shot("keeper-probe", 1024 * 1024);
    let (client, mut events) = AsyncClient::new(opts, 16);
    if client
        .subscribe(topics.queue_stats(), QoS::AtMostOnce)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let deadline = tokio::time::Instant::now() + crate::runtime::claim::PROOF_OF_LIFE;
    let mut reached = false;
    let seen = loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => break false,
            Ok(Err(_)) if !reached => return Ok(None),
            Ok(Err(_)) => break false,
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => reached = true,
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if !p.retain => break true,
            Ok(Ok(_)) => {}
        }
    };
    let _ = client.disconnect().await;
    Ok(reached.then_some(seen))
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(epoch: u64, pid: u32, host: &str) -> Lease {
        Lease {
            epoch,
            pid,
            host: host.into(),
        }
    }

    #[test]
    fn a_later_keeper_fences_an_earlier_one_and_not_the_other_way() {
        let (first, second) = (lease(100, 7, "a"), lease(200, 8, "b"));
        assert!(fenced_by(&first, &second));
        assert!(!fenced_by(&second, &first));
        assert!(!fenced_by(&first, &first.clone()), "its own heartbeat");
    }

    #[test]
    fn on_a_tie_exactly_one_keeper_stops() {
        let (a, b) = (lease(100, 7, "a"), lease(100, 7, "b"));
        assert_ne!(fenced_by(&a, &b), fenced_by(&b, &a));
    }

    #[test]
    fn only_a_live_keepers_heartbeat_is_a_lease() {
        let mut s = NodeStatus::offline("keeper", "keeper");
        assert_eq!(Lease::of(&s), None, "the last will");
        s.state = NodeState::Up;
        s.pid = 9;
        assert_eq!(Lease::of(&s), None, "no epoch: not a keeper");
        s.figures.epoch = Some(5);
        assert_eq!(Lease::of(&s).map(|l| l.epoch), Some(5));
    }
}
