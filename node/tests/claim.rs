//! One id, one live node: a second node started under a live node's id
//! refuses to start and names the holder, instead of knocking it off the
//! broker for ever; once the holder is dead (kill -9) the id is free again.

mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{pizza_node, World};

const LONG: Duration = Duration::from_secs(30);

/// Starts a kitchen under `id` with its own data directory, as a second
/// control room would.
fn kitchen_in(w: &World, id: &str, dir: &str) -> Child {
    Command::new(pizza_node())
        .args(["kitchen", "--id", id, "--broker", &w.broker_url(), "--data-dir"])
        .arg(w.path(dir))
        .arg("--log-file")
        .arg(w.path(&format!("{dir}.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pizza-node starts")
}

/// Waits up to `limit` for `child` to exit; its code and stderr, or `None`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<(Option<i32>, String)> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Some((status.code(), err));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Kills and reaps on drop, also when an assertion fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_node_with_a_live_nodes_id_refuses_and_a_dead_ones_id_is_free() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let status = "pizza/nodes/kitchen-1/status";
    let mqtt = w.watch("claim-watch", &[status]);
    let mut first = w.node("kitchen", "kitchen-1", &[]);
    let beat = mqtt.expect(status, LONG, |s| s["state"] == "up");
    let pid = beat["pid"].as_u64().expect("a pid in the heartbeat");
    assert!(beat["host"].as_str().is_some_and(|h| !h.is_empty()), "{beat}");

    let mut twin = Reaped(kitchen_in(&w, "kitchen-1", "twin"));
    let Some((code, err)) = exit_within(&mut twin.0, LONG) else {
        panic!("a second kitchen-1 started beside the live one");
    };
    assert_ne!(code, Some(0));
    assert!(
        err.contains(&format!(
            "node id kitchen-1 is held by a live node (pid {pid} on host"
        )),
        "{err}"
    );
    assert!(first.running(), "the holder was not disturbed");
    let lost = w.log_events("kitchen-1", "lost the broker; reconnecting");
    assert!(lost.is_empty(), "the holder was knocked off: {lost:?}");

    // kill -9: its retained heartbeat still says "up", but its pid is gone.
    first.kill9();
    let mut heir = Reaped(kitchen_in(&w, "kitchen-1", "heir"));
    let heir_pid = u64::from(heir.0.id());
    let deadline = Instant::now() + LONG;
    loop {
        if let Some((code, err)) = exit_within(&mut heir.0, Duration::ZERO) {
            panic!("the id of a dead node stays taken: exit {code:?}: {err}");
        }
        let beats = mqtt.take_all();
        if beats
            .iter()
            .any(|(_, b)| b["pid"] == heir_pid && b["state"] == "up")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no heartbeat from the heir");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_standalone_keeper_stands_by_while_the_embedded_broker_keeps_the_queues() {
    let w = World::new();
    let _broker = w.broker(&[]);
    let mut second = w.keeper("keeper-2", "keeper-2", false);
    let refused = "another keeper serves this prefix (or it cannot be told): this one refuses to serve and stands by to take over";
    support::wait_for(LONG, "the keeper to stand by", || {
        !w.log_events("keeper-2", refused).is_empty()
    });
    let holder = w.log_events("keeper-2", refused)[0]["holder"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        holder.contains("pizza-node broker"),
        "names the embedded keeper: {holder}"
    );
    // Still standing by after several more rounds of the embedded keeper's
    // stats (each one a chance for the standby to be wrong): it never serves.
    let stats = w.watch("test-stats", &["pizza/q/stats"]);
    let mut rounds = std::collections::BTreeSet::new();
    while rounds.len() < 6 {
        let s = stats.expect("pizza/q/stats", LONG, |s| !rounds.contains(&s["at"].to_string()));
        rounds.insert(s["at"].to_string());
    }
    assert!(second.running(), "a standby keeper waits");
    assert!(
        w.log_events("keeper-2", "keeper serving: the work queues and the event log")
            .is_empty(),
        "two keepers served one prefix"
    );
}
