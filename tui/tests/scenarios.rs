//! Every shipped scenario, played headless with real processes, must pass;
//! a scenario whose expectation fails must exit non-zero; the committed
//! recording of the buffering demo must play back.

mod support;

use std::path::{Path, PathBuf};

use support::{parse, replay, Room};
use tui::scenario::Scenario;

/// The scenarios the README lists, each proving one behaviour.
const SHIPPED: &[&str] = &[
    "buffering",
    "scaling",
    "payment_outage",
    "kitchen_outage",
    "kill_during_cooking",
    "broker_restart",
    "out_of_stock",
    "cancellation_dlq",
    "disorder",
    "pause_past_lease",
    "partition",
    "rolling_restart",
    "canary_rollback",
    "disaster",
    "on_mosquitto",
];

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// Plays `file` headless in a temp data directory; (exit code, output).
fn play(file: &Path) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().display().to_string();
    let mut room = Room::start(&[
        "--headless",
        "--scenario",
        &file.display().to_string(),
        "--data-dir",
        &data,
    ]);
    let code = room.wait_exit(240);
    (code, room.seen.join("\n"))
}

fn passes(name: &str) {
    let (code, out) = play(&assets().join("scenarios").join(format!("{name}.toml")));
    assert!(out.contains("PASSED: every expectation held"), "{name}:\n{out}");
    assert_eq!(code, Some(0), "{name}:\n{out}");
}

#[test]
fn the_shipped_scenarios_are_exactly_the_listed_ones_and_all_parse() {
    let mut found: Vec<String> = std::fs::read_dir(assets().join("scenarios"))
        .expect("assets/scenarios")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.expect.is_empty(), "{} expects nothing", s.name);
            assert_eq!(p.file_stem().and_then(|s| s.to_str()), Some(s.name.as_str()));
            s.name
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = SHIPPED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
    let readme = std::fs::read_to_string(assets().join("../README.md")).expect("README");
    for name in SHIPPED {
        assert!(
            readme.contains(&format!("`{name}`")),
            "the README does not list {name}"
        );
    }
}

#[test]
fn a_scenario_whose_expectation_fails_exits_1_with_the_verdict() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("impossible.toml");
    std::fs::write(
        &file,
        r#"
name = "impossible"
proves = "nothing: it expects an order that is never placed"

[[node]]
role = "broker"
id = "broker"

[[node]]
role = "payment"
id = "payment"

[[node]]
role = "order"
id = "order"

[[step]]
do = "wait"
until = "delivered"
count = 1
timeout_s = 1

[[expect]]
that = "delivered"
count = 1
"#,
    )
    .expect("writes");
    let (code, out) = play(&file);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "FAIL  the timeline: step 1 timed out: 1 orders delivered within 1 s (saw 0/1 delivered)"
        ),
        "{out}"
    );
    assert!(out.contains("FAIL  1 orders delivered  0 delivered"), "{out}");
}

#[test]
fn a_bad_scenario_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "name = \"t\"\nproves = \"p\"\n[[step]]\ndo = \"bake\"\n").expect("writes");
    let data = dir.path().join("data").display().to_string();
    // Spawned, not `output()`: should the check ever let the file through,
    // a platform would start, and the test must fail rather than hang.
    let mut child = std::process::Command::new(support::EXE)
        .args([
            "--headless",
            "--scenario",
            &file.display().to_string(),
            "--data-dir",
            &data,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a bad scenario was not refused within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut err)
        .expect("reads stderr");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("is not valid") && err.contains("bake"), "{err}");
}

#[test]
fn the_committed_buffering_recording_plays_back_to_its_verdict() {
    let text = std::fs::read_to_string(assets().join("recordings/buffering.cast"))
        .expect("the recording is committed");
    let rec = parse(&text);
    assert_eq!(
        (rec.header["width"].as_u64(), rec.header["height"].as_u64()),
        (Some(120), Some(40))
    );
    let last = rec.events.last().map_or(0.0, |e| e.0);
    assert!(last > 3.0, "a demo lasts more than a few seconds: {last}");
    let screen = replay(&rec).text();
    for text in [
        "Pizza Platform",
        "buffering",
        "PASSED",
        "5 orders delivered",
        "kitchen-1 cooked at least 5",
    ] {
        assert!(screen.contains(text), "{text} not on the final screen:\n{screen}");
    }
}

macro_rules! shipped {
    ($($name:ident),* $(,)?) => {
        $(#[test]
        fn $name() {
            passes(stringify!($name));
        })*
    };
}

shipped! {
    buffering,
    scaling,
    payment_outage,
    kitchen_outage,
    kill_during_cooking,
    broker_restart,
    out_of_stock,
    cancellation_dlq,
    disorder,
    pause_past_lease,
    partition,
    rolling_restart,
    canary_rollback,
    disaster,
    on_mosquitto,
}

/// `--headless --chaos`, as the README shows it (shorter): orders stream in
/// while random nodes, the broker included, are killed, stopped, paused and
/// partitioned;
/// it ends with the ledger and a verdict: nothing lost, nothing doubled.
#[test]
fn a_headless_chaos_run_breaks_nodes_and_loses_no_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().display().to_string();
    let mut room = Room::start(&[
        "--headless",
        "--chaos",
        "--seed",
        "11",
        "--load",
        "20",
        "--duration",
        "30",
        "--chaos-interval",
        "1",
        "--data-dir",
        &data,
    ]);
    let code = room.wait_exit(240);
    let out = room.seen.join("\n");
    let breaks = room
        .seen
        .iter()
        .filter(|l| {
            ["kill ", "stop ", "pause ", "partition ", "broker-kill "]
                .iter()
                .any(|a| l.contains(&format!("chaos: {a}")))
        })
        .count();
    assert!(breaks >= 3, "only {breaks} breaks in 30 s:\n{out}");
    let accepted: u64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("attempted "))
        .and_then(|l| l.split("accepted ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        accepted >= 200,
        "a stream of 20/s for 30 s, {accepted} accepted:\n{out}"
    );
    assert!(out.contains("PASSED: every expectation held"), "{out}");
    assert!(
        out.contains("open 0") && out.contains("delivered twice 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
}
