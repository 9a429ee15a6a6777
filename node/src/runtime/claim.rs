//! Who holds a node id: a node refuses to start while a live node holds
//! its id, and a control room attaching to a running platform adopts the
//! nodes it finds instead of starting twins.
//!
//! MQTT has one session per client id: a second client with the same id
//! knocks the first off, which reconnects and knocks the second off, for
//! ever. So the check must happen *before* connecting under the id: a probe
//! connection with a throw-away id reads the retained heartbeats.
//!
//! Deciding from a heartbeat is [`judge`], a plain function. A retained
//! heartbeat outlives a kill -9 by the broker's keep-alive grace, so "up"
//! in it proves nothing by itself. On the same host the pid says it for
//! sure; from another host only a *newer* heartbeat proves life, so the
//! probe waits [`PROOF_OF_LIFE`] for one.

use std::collections::BTreeMap;
use std::time::Duration;

use contracts::status::{NodeState, NodeStatus};
use contracts::topics::Topics;
use rumqttc::{AsyncClient, Event, Packet, QoS};

use crate::config::BrokerAddr;
use crate::error::NodeError;
use crate::runtime::security::Security;
use crate::runtime::HEARTBEAT;

/// How long a heartbeat from another host is awaited as proof of life: a
/// live node beats every [`HEARTBEAT`]; two and a half beats allow for one
/// lost or late.
pub const PROOF_OF_LIFE: Duration = Duration::from_millis(HEARTBEAT.as_millis() as u64 * 5 / 2);

/// How long the probe waits for the broker before giving up on the check
/// (a node started while the broker is down still starts, and connects
/// when the broker is back, as it always has).
const REACH: Duration = Duration::from_secs(2);

/// What a retained heartbeat says about its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody, or a node that is gone.
    Free,
    /// A live process on this host.
    Live,
    /// A node on another host (or one that does not say its host): alive
    /// only if it beats again.
    Unsure,
}

/// Judges `status` as seen from `here` (this host's name) by process
/// `me`; `alive` tells whether a local pid runs.
pub fn judge(status: &NodeStatus, here: &str, me: u32, alive: impl Fn(u32) -> bool) -> Holder {
    if status.state == NodeState::Offline || status.pid == 0 {
        return Holder::Free;
    }
    if status.host.is_empty() || status.host != here {
        return Holder::Unsure;
    }
    if status.pid != me && alive(status.pid) {
        Holder::Live
    } else {
        Holder::Free
    }
}

/// This host's name, as heartbeats carry it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether process `pid` on this host runs (a zombie, killed but not yet
/// reaped by its parent, does not).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) if std::path::Path::new("/proc/self/stat").exists() => false,
        // No /proc: ask the kernel.
        Err(_) => libc::pid_t::try_from(pid).is_ok_and(|pid| {
            // SAFETY: kill(2) with signal 0 only checks; no memory involved.
            let r = unsafe { libc::kill(pid, 0) };
            r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        }),
    }
}

/// Whether local process `pid` is node `id` (its command line names the
/// id, or is a node's default id for its role), so that a heartbeat's pid
/// is not signalled after it was recycled for another program.
pub fn runs_node(pid: u32, id: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let names_id = args.contains(&id.as_bytes());
    let is_ours = args.first().is_some_and(|exe| {
        let exe = String::from_utf8_lossy(exe);
        exe.ends_with("pizza-node") || exe.ends_with("control-room")
    });
    names_id && is_ours
}

/// Whether local process `pid` is a child of another live control room,
/// which supervises it: such a node is left to that control room, not
/// adopted (a node whose control room quit and left it running has been
/// handed to init, or to a subreaper, and may be adopted).
pub fn supervised_elsewhere(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command name: state, then the parent's pid.
    let parent = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    let Some(parent) = parent.filter(|p| *p != std::process::id() && *p > 1) else {
        return false;
    };
    std::fs::read(format!("/proc/{parent}/cmdline")).is_ok_and(|cmdline| {
        let exe = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(exe).ends_with("control-room")
    })
}

/// The live holders among the retained heartbeats under `filter` (a status
/// topic or `.../nodes/+/status`), by id. Empty when the broker cannot be
/// reached within [`REACH`]: then nobody can be holding a session either.
/// On a signed platform a heartbeat counts only as
/// [`Security::open_heartbeat`] says: a forged one holds no id.
pub async fn live_holders(
    broker: &BrokerAddr,
    topics: &Topics,
    filter: &str,
    security: &Security,
) -> Result<BTreeMap<String, NodeStatus>, NodeError> {
    Ok(census(broker, topics, filter, security)
        .await?
        .unwrap_or_default())
}

/// The heartbeat a status message carries, if it counts: well-formed, on
/// the topic of the node it names, and sealed by that node where the trust
/// file lists it.
pub fn heartbeat(topics: &Topics, security: &Security, topic: &str, payload: &[u8]) -> Option<NodeStatus> {
    let id = topics.parse_status_topic(topic)?;
    let body = match security.open_heartbeat(payload, id) {
        Ok(body) => body,
        Err(why) => {
            tracing::warn!(topic, %why, "security: a heartbeat was refused; it holds no id");
            return None;
        }
    };
    serde_json::from_slice::<NodeStatus>(&body)
        .ok()
        .filter(|s| s.id == id)
}

/// Like [`live_holders`], but `None` when the broker could not be reached:
/// for a caller that must not take "unreachable" for "free" (a standby
/// keeper).
pub async fn census(
    broker: &BrokerAddr,
    topics: &Topics,
    filter: &str,
    security: &Security,
) -> Result<Option<BTreeMap<String, NodeStatus>>, NodeError> {
    let (probe, opts) = broker.one_shot("probe", 512 * 1024);
    let (client, mut events) = AsyncClient::new(opts, 64);
    // Retained messages are queued for us when the subscription is made; a
    // message we publish to ourselves after it comes back behind them.
    let marker = format!("{}/probe/{probe}", topics.prefix());
    let subscribed = async {
        client.subscribe(filter, QoS::AtLeastOnce).await?;
        client.subscribe(&marker, QoS::AtLeastOnce).await?;
        client.publish(&marker, QoS::AtLeastOnce, false, Vec::new()).await
    };
    if subscribed.await.is_err() {
        return Ok(None);
    }
    let (here, me) = (host_name(), std::process::id());
    let mut seen: BTreeMap<String, NodeStatus> = BTreeMap::new();
    let mut reached = false;
    let mut retained_done = false;
    let mut proof_until = None;
    let deadline = tokio::time::Instant::now() + REACH;
    loop {
        let until = proof_until.unwrap_or(deadline);
        let event = match tokio::time::timeout_at(until, events.poll()).await {
            Err(_) => break,
            Ok(Err(_)) if !reached => return Ok(None),
            Ok(Err(_)) => break,
            Ok(Ok(event)) => event,
        };
        let Event::Incoming(Packet::Publish(p)) = event else {
            if matches!(event, Event::Incoming(Packet::ConnAck(_))) {
                reached = true;
            }
            continue;
        };
        if p.topic == marker {
            retained_done = true;
            let unsure = seen
                .values()
                .any(|s| judge(s, &here, me, pid_alive) == Holder::Unsure);
            if !unsure {
                break;
            }
            // Keep only the sure ones; an unsure one must beat again.
            seen.retain(|_, s| judge(s, &here, me, pid_alive) == Holder::Live);
            proof_until = Some(tokio::time::Instant::now() + PROOF_OF_LIFE);
            continue;
        }
        let Some(status) = heartbeat(topics, security, &p.topic, &p.payload) else {
            continue;
        };
        // Before the marker an unsure one waits for its proof (see above);
        // after it, any heartbeat is a fresh one: the proof.
        if judge(&status, &here, me, pid_alive) == Holder::Free {
            seen.remove(&status.id);
        } else {
            seen.insert(status.id.clone(), status);
        }
    }
    let _ = client.disconnect().await;
    if !retained_done {
        // Only the sure ones count when the probe was cut short.
        seen.retain(|_, s| judge(s, &here, me, pid_alive) == Holder::Live);
    }
    Ok(reached.then_some(seen))
}

/// Fails with [`NodeError::IdTaken`] when a live node holds `id`.
pub async fn ensure_free(
    broker: &BrokerAddr,
    topics: &Topics,
    id: &str,
    security: &Security,
) -> Result<(), NodeError> {
    let holders = live_holders(broker, topics, &topics.status(id), security).await?;
    match holders.get(id) {
        Some(holder) => Err(NodeError::IdTaken {
            id: id.to_string(),
            pid: holder.pid,
            host: holder.host.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(pid: u32, host: &str, state: NodeState) -> NodeStatus {
        NodeStatus {
            host: host.into(),
            pid,
            state,
            ..NodeStatus::offline("kitchen-1", "kitchen")
        }
    }

    #[test]
    fn an_offline_heartbeat_or_a_last_will_frees_the_id() {
        let alive = |_| true;
        assert_eq!(
            judge(&beat(7, "h", NodeState::Offline), "h", 1, alive),
            Holder::Free
        );
        assert_eq!(judge(&beat(0, "h", NodeState::Up), "h", 1, alive), Holder::Free);
    }

    #[test]
    fn on_this_host_the_pid_decides() {
        let up = beat(7, "h", NodeState::Up);
        assert_eq!(judge(&up, "h", 1, |p| p == 7), Holder::Live);
        assert_eq!(judge(&up, "h", 1, |_| false), Holder::Free, "killed -9");
        assert_eq!(judge(&up, "h", 7, |_| true), Holder::Free, "our own");
        let paused = beat(7, "h", NodeState::Paused);
        assert_eq!(judge(&paused, "h", 1, |_| true), Holder::Live);
    }

    #[test]
    fn from_another_host_only_a_new_beat_proves_life() {
        assert_eq!(
            judge(&beat(7, "other", NodeState::Up), "h", 1, |_| true),
            Holder::Unsure
        );
        assert_eq!(
            judge(&beat(7, "", NodeState::Up), "h", 1, |_| false),
            Holder::Unsure
        );
    }

    #[test]
    fn a_process_that_does_not_name_the_id_is_not_that_node() {
        assert!(!runs_node(std::process::id(), "kitchen-1"));
        assert!(!runs_node(u32::MAX, "kitchen-1"));
    }

    #[test]
    fn a_child_of_a_test_is_not_supervised_by_a_control_room() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert!(!supervised_elsewhere(child.id()), "its parent is this test");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_one_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
