//! Backups with real processes: a running broker backed up online while a
//! producer writes, its data destroyed, restored, and every message put
//! before the backup delivered by the restored broker.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use support::{pizza_node, s, wait_for, World};

const LONG: Duration = Duration::from_secs(60);

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(pizza_node()).args(args).output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_running_brokers_backup_restores_its_queue_after_its_data_is_lost() {
    let w = World::new();
    let mut broker = w.broker(&[]);
    let mut first = w.producer("p1", &["--queue", "kitchen", "--count", "300", "--keys", "300"]);
    assert_eq!(first.wait_exit(LONG), Some(0), "every put is confirmed");
    let kept: HashSet<String> = first.with("put").iter().map(|l| s(l, "put")).collect();
    assert_eq!(kept.len(), 300);

    // Online: the broker answers on its backup socket while it runs, and
    // while another producer writes.
    let data = w.path("broker");
    let file = w.path("broker.pzb");
    let mut second = w.producer("p2", &["--queue", "kitchen", "--count", "2000", "--keys", "2000"]);
    let (code, out) = run(&[
        "backup",
        "--data-dir",
        &data.display().to_string(),
        "--to",
        &file.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("online, from the running process"), "{out}");
    assert_eq!(second.wait_exit(LONG), Some(0));

    broker.kill9();
    std::fs::remove_dir_all(&data).expect("the disk is lost");
    let (code, out) = run(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("queues, events"), "{out}");
    let (code, out) = run(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert_eq!(code, Some(1), "a second restore over the data is refused: {out}");
    assert!(out.contains("--force"), "{out}");

    let _broker = w.broker(&[]);
    let consumer = w.consumer("c1", &["--queue", "kitchen", "--credit", "100"]);
    wait_for(LONG, "the 300 messages put before the backup", || {
        let got: HashSet<String> = consumer
            .with("delivery_id")
            .iter()
            .map(|l| s(l, "event_id"))
            .collect();
        kept.is_subset(&got)
    });
    // The backup is a cut: of the second producer's puts, some prefix,
    // confirmed before it, came back with it; nothing that was never put.
    let all: HashSet<String> = first
        .with("put")
        .iter()
        .chain(second.with("put").iter())
        .map(|l| s(l, "put"))
        .collect();
    let got: HashSet<String> = consumer
        .with("delivery_id")
        .iter()
        .map(|l| s(l, "event_id"))
        .collect();
    assert!(got.is_subset(&all), "only messages that were put come back");
}

#[test]
fn a_damaged_backup_is_refused_and_writes_nothing() {
    let w = World::new();
    let file = w.path("bad.pzb");
    std::fs::write(&file, b"PIZZA-BACKUP 1\nnot really").expect("write");
    let target = w.path("target");
    let (code, out) = run(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &target.display().to_string(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("is not a whole Pizza Platform backup"), "{out}");
    assert!(!target.exists(), "nothing written");
}
