//! The control room end to end, the way an operator drives it: real broker
//! and node processes (this crate's own binary, re-executed), real HTTP,
//! keys fed through `update`. Only the terminal is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui::app::{App, Ending, Options};
use tui::model::{Model, Panel, Shown};
use tui::msg::Msg;
use tui::supervisor::{free_port, BrokerTarget};
use tui::topology::{NodeSpec, Role, Topology};

mod support;

use support::{signal, Room, EXE};

/// The default topology, fast: short cooking and trips, payment always
/// answering yes. `broker_args` tune the keeper; `kitchens` names them.
fn fast_platform(broker_args: &[&str], kitchens: &[&str]) -> Topology {
    let node = |role, id: &str, args: &[&str]| NodeSpec {
        role,
        id: id.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        command: Vec::new(),
    };
    let mut nodes = vec![
        node(Role::Broker, "broker", broker_args),
        node(
            Role::Payment,
            "payment",
            &["--latency-ms", "1", "--decline-rate", "0"],
        ),
        node(Role::Order, "order", &[]),
    ];
    nodes.extend(
        kitchens
            .iter()
            .map(|k| node(Role::Kitchen, k, &["--prep-ms", "200..400"])),
    );
    nodes.push(node(
        Role::Delivery,
        "delivery",
        &["--drivers", "4", "--trip-ms", "100..200"],
    ));
    Topology { nodes }
}

fn options(dir: &Path, topology: Topology) -> Options {
    Options {
        exe: PathBuf::from(EXE),
        data_dir: dir.to_path_buf(),
        broker: BrokerTarget::Own {
            port: free_port().expect("a free port"),
        },
        topology,
        prefix: "pizza".into(),
        scenario: None,
        pace: 0.0,
        record: None,
        cast: None,
        chaos: Default::default(),
        network_faults: false,
        backup_every: None,
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.handle(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn keys(app: &mut App, codes: &str) {
    for c in codes.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// A control room started on `topology`, once its platform is up: the
/// broker connected, the order service placeable, every kitchen consuming.
async fn up(dir: &Path, topology: Topology) -> App {
    let kitchens = topology.nodes.iter().filter(|n| n.role == Role::Kitchen).count();
    let mut app = App::start(options(dir, topology))
        .await
        .expect("the control room starts");
    wait(&mut app, 60, "the platform up", |m| {
        m.feed_up && kitchens_online(m) == kitchens && m.order_url().is_some()
    })
    .await;
    app
}

/// Feeds messages into the app until `done` holds; fails after `secs`.
async fn wait(app: &mut App, secs: u64, what: &str, done: impl Fn(&Model) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tick = tokio::time::interval(tui::app::TICK);
    while !done(&app.model) {
        if Instant::now() > deadline {
            let log: Vec<String> = app.model.log.newest().take(40).map(|l| l.text.clone()).collect();
            let outputs = node_outputs(&app.model.info.log_dir);
            panic!(
                "timed out waiting for {what}; latest log lines:\n{}\n{outputs}",
                log.join("\n")
            );
        }
        let msg = app.next(&mut tick).await;
        app.handle(msg);
    }
}

/// The last lines each node printed or logged (panics end up in `.out`).
fn node_outputs(log_dir: &str) -> String {
    let Ok(dir) = std::fs::read_dir(log_dir) else {
        return String::new();
    };
    dir.filter_map(Result::ok)
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(12)..].join("\n");
            format!("--- {}\n{tail}\n", e.path().display())
        })
        .collect()
}

fn shown(m: &Model, id: &str) -> Option<Shown> {
    m.nodes.get(id).map(|n| n.shown(m.now))
}

fn count(m: &Model, state: &str) -> u64 {
    m.orders.counts().get(state).copied().unwrap_or(0)
}

fn kitchens_online(m: &Model) -> usize {
    m.queues
        .rows
        .get("kitchen")
        .map(|q| {
            q.figures
                .consumers
                .iter()
                .filter(|c| c.online && c.credit > 0)
                .count()
        })
        .unwrap_or(0)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Selects node `id` on the Nodes panel with `g` and `j`, as a user would.
fn select_node(app: &mut App, id: &str) {
    app.model.ui.focus = Some(Panel::Nodes);
    keys(app, "g");
    for _ in 0..10 {
        if app.model.selected(Panel::Nodes).as_deref() == Some(id) {
            return;
        }
        keys(app, "j");
    }
    panic!("cannot select {id}: nodes are {:?}", app.model.node_ids());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_session_orders_kill_scale_payment_outage_and_clean_quit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut app = App::start(options(
        dir.path(),
        fast_platform(&[], &["kitchen-1", "kitchen-2"]),
    ))
    .await
    .expect("the control room starts");
    let ids = ["broker", "payment", "order", "kitchen-1", "kitchen-2", "delivery"];
    wait(&mut app, 60, "every node up and both kitchens consuming", |m| {
        m.feed_up
            && ids.iter().all(|id| shown(m, id) == Some(Shown::Up))
            && kitchens_online(m) == 2
            && m.order_url().is_some()
    })
    .await;

    // A burst of 20 (the default), all the way to delivered.
    keys(&mut app, "O");
    key(&mut app, KeyCode::Enter);
    wait(&mut app, 60, "20 orders delivered", |m| {
        count(m, "delivered") == 20
    })
    .await;
    let drivers = app.model.drivers();
    assert_eq!(
        drivers.len(),
        4,
        "the Drivers panel lists the delivery node's drivers"
    );

    // kill -9 a kitchen: confirm names it, and it shows as crashed.
    select_node(&mut app, "kitchen-1");
    keys(&mut app, "K");
    let question = match &app.model.ui.popup {
        Some(tui::model::Popup::Confirm { question, .. }) => question.clone(),
        other => panic!("expected a confirmation, got {other:?}"),
    };
    assert!(question.contains("kitchen-1"), "{question}");
    keys(&mut app, "y");
    wait(&mut app, 10, "kitchen-1 crashed", |m| {
        shown(m, "kitchen-1") == Some(Shown::Crashed("SIGKILL".into()))
    })
    .await;

    // Scale kitchens back up to three.
    select_node(&mut app, "kitchen-2");
    keys(&mut app, "+");
    keys(&mut app, "+");
    wait(&mut app, 30, "three kitchens up and consuming", |m| {
        let up = m
            .nodes
            .values()
            .filter(|n| n.role == "kitchen" && n.shown(m.now) == Shown::Up)
            .count();
        up == 3 && kitchens_online(m) == 3
    })
    .await;
    keys(&mut app, "O");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    keys(&mut app, "12");
    key(&mut app, KeyCode::Enter);
    wait(&mut app, 60, "32 orders delivered", |m| {
        count(m, "delivered") == 32
    })
    .await;
    let new_kitchens_cooked = app
        .model
        .orders
        .recent("")
        .any(|o| matches!(o.fold.kitchen(), Some("kitchen-3" | "kitchen-4")));
    assert!(new_kitchens_cooked, "the scaled-up kitchens took work");

    // A node killed outside the control room shows as crashed; `s` brings it back.
    let delivery_pid = app.model.nodes["delivery"].pid.expect("delivery's pid");
    signal(delivery_pid, libc::SIGKILL);
    wait(&mut app, 5, "delivery crashed", |m| {
        shown(m, "delivery") == Some(Shown::Crashed("SIGKILL".into()))
    })
    .await;
    select_node(&mut app, "delivery");
    keys(&mut app, "s");
    wait(&mut app, 30, "delivery up again", |m| {
        shown(m, "delivery") == Some(Shown::Up)
    })
    .await;

    // Payment down: orders are refused with 503 and the log says so.
    select_node(&mut app, "payment");
    keys(&mut app, "x");
    keys(&mut app, "y");
    wait(&mut app, 15, "payment down", |m| {
        shown(m, "payment") == Some(Shown::Down)
    })
    .await;
    keys(&mut app, "o");
    wait(&mut app, 30, "a 503 in the events", |m| {
        m.log.newest().any(|l| l.text.contains("503 payment_unavailable"))
    })
    .await;
    assert_eq!(count(&app.model, "delivered"), 32, "nothing accepted was lost");

    // Quit, stopping everything: no process is left behind.
    let pids: Vec<u32> = app.model.nodes.values().filter_map(|n| n.pid).collect();
    assert!(pids.len() >= 7, "{pids:?}");
    keys(&mut app, "q");
    assert_eq!(app.model.ui.popup, Some(tui::model::Popup::Quit));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.model.quitting, Some(true));
    match app.finish().await {
        Ending::Stopped(exited) => assert_eq!(exited.len(), 6, "{exited:?}"),
        other => panic!("expected a stop, got {other:?}"),
    }
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Kills the pids on drop: nodes a test left running on purpose must not
/// outlive a failed assertion.
struct Leftovers(Vec<u32>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in &self.0 {
            signal(*pid, libc::SIGKILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_control_room_adopts_the_running_nodes_and_shows_the_earlier_orders() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let topology = fast_platform(&[], &["kitchen-1", "kitchen-2"]);
    let opts = options(dir.path(), topology.clone());
    let BrokerTarget::Own { port } = opts.broker else {
        unreachable!("options start a broker")
    };
    let mut first = App::start(opts).await.expect("the control room starts");
    let ids = ["broker", "payment", "order", "kitchen-1", "kitchen-2", "delivery"];
    wait(&mut first, 60, "every node up", |m| {
        ids.iter().all(|id| shown(m, id) == Some(Shown::Up)) && kitchens_online(m) == 2
    })
    .await;
    keys(&mut first, "O");
    key(&mut first, KeyCode::Enter);
    wait(&mut first, 60, "20 orders delivered", |m| {
        count(m, "delivered") == 20
    })
    .await;
    // q, then leave the nodes running.
    keys(&mut first, "qd");
    let Ending::Detached(left) = first.finish().await else {
        panic!("expected the nodes left running");
    };
    let _guard = Leftovers(left.iter().map(|(_, pid)| *pid).collect());
    assert_eq!(left.len(), 6, "{left:?}");

    let dir2 = tempfile::tempdir().expect("a temp dir");
    let attach = Options {
        broker: BrokerTarget::Attach {
            url: format!("mqtt://127.0.0.1:{port}"),
        },
        ..options(dir2.path(), topology.without_broker())
    };
    let mut second = App::start(attach)
        .await
        .expect("the second control room attaches");
    // The broker was attached to, not adopted: it is not a node with a
    // heartbeat, and stays when this control room quits.
    let nodes: Vec<&(String, u32)> = left.iter().filter(|(id, _)| id != "broker").collect();
    wait(&mut second, 30, "the earlier orders and every node", |m| {
        count(m, "delivered") == 20
            && nodes.iter().all(|(id, pid)| {
                m.nodes
                    .get(id)
                    .is_some_and(|n| n.owned && n.pid == Some(*pid) && n.shown(m.now) == Shown::Up)
            })
    })
    .await;
    let started: Vec<String> = second
        .model
        .log
        .newest()
        .filter(|l| l.text.starts_with("started "))
        .map(|l| l.text.clone())
        .collect();
    assert!(started.is_empty(), "twins started: {started:?}");
    // Attached from another data dir, its key is not the platform's: it
    // says so, once, instead of having its commands refused in silence.
    let strangers = second
        .model
        .log
        .newest()
        .filter(|l| l.text.contains("signs with a key this control room's trust file"))
        .count();
    assert_eq!(strangers, 1, "the warning about the foreign platform");
    // Nobody knocks anybody off: no node lost its broker session.
    let log_dir = dir.path().join("logs");
    for (id, _) in &left {
        let text = std::fs::read_to_string(log_dir.join(format!("{id}.log"))).unwrap_or_default();
        assert!(
            !text.contains("lost the broker"),
            "{id} lost its session:\n{text}"
        );
    }
    // Adopted nodes stop by pid, like those started here.
    keys(&mut second, "q");
    key(&mut second, KeyCode::Enter);
    match second.finish().await {
        Ending::Stopped(exited) => assert_eq!(exited.len(), 5, "{exited:?}"),
        other => panic!("expected a stop, got {other:?}"),
    }
    // They were this test's children (the first control room's), so they
    // stay zombies until the test ends: `pid_alive` counts those as gone.
    let running: Vec<u32> = nodes
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| node::runtime::claim::pid_alive(*p))
        .collect();
    assert!(running.is_empty(), "adopted nodes left running: {running:?}");
}

const BROKER_AND_KITCHEN: &str =
    "[[node]]\nrole='broker'\nid='broker'\n[[node]]\nrole='kitchen'\nid='kitchen-1'\n";

/// Writes `text` as `dir/name` and returns its path.
fn topology_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the topology");
    path.display().to_string()
}

#[test]
fn headless_starts_the_topology_and_sigterm_stops_every_node() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let topology = topology_file(dir.path(), "topology.toml", BROKER_AND_KITCHEN);
    let data = dir.path().join("data");
    let data = data.display().to_string();
    let mut room = Room::start(&["--headless", "--topology", &topology, "--data-dir", &data]);
    let broker = room.expect("broker mqtt://", 20);
    room.expect("kitchen-1 is up", 60);
    let pids = room.node_pids();
    assert_eq!(pids.len(), 2, "{:?}", room.seen);
    assert!(pids.iter().all(|p| alive(*p)));

    // A second control room attaches to the first one's broker: it starts
    // its kitchen, and no broker of its own.
    let url = broker.trim_start_matches("broker ").to_string();
    let topology2 = topology_file(
        dir.path(),
        "two.toml",
        "[[node]]\nrole='broker'\nid='b'\n[[node]]\nrole='kitchen'\nid='kitchen-9'\n",
    );
    let data2 = dir.path().join("data2").display().to_string();
    let mut attached = Room::start(&[
        "--headless",
        "--broker",
        &url,
        "--topology",
        &topology2,
        "--data-dir",
        &data2,
    ]);
    attached.expect("kitchen-9 is up", 60);
    assert!(
        !attached.seen.iter().any(|l| l.contains("started b ")),
        "{:?}",
        attached.seen
    );
    // kitchen-1 belongs to the first control room, which still runs: seen,
    // not adopted (so quitting the second leaves it alone).
    attached.expect("kitchen-1 is up", 20);
    assert!(
        !attached.seen.iter().any(|l| l.contains("adopted")),
        "{:?}",
        attached.seen
    );
    room.expect("kitchen-9 is up", 20);
    let attached_pids = attached.node_pids();
    assert!(attached.terminate().success());
    assert!(attached_pids.iter().all(|p| !alive(*p)), "{attached_pids:?}");

    let status = room.terminate();
    assert!(status.success(), "exit status {status:?}");
    room.expect("Stopped 2 node(s)", 5);
    let left: Vec<&u32> = pids.iter().filter(|p| alive(**p)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(Path::new(&data).join("logs").join("kitchen-1.log").exists());
}

#[test]
fn without_a_terminal_it_says_so_and_points_to_headless() {
    let out = Command::new(EXE)
        .stdin(Stdio::null())
        .output()
        .expect("control-room runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no terminal"), "{err}");
    assert!(err.contains("--headless"), "{err}");
    assert!(err.contains("control-room node"), "{err}");
}

fn error_rate(m: &Model, id: &str) -> f64 {
    m.nodes
        .get(id)
        .and_then(|n| n.status.as_ref())
        .map(|s| s.faults.error_rate)
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_kitchen_dead_letters_a_ticket_and_the_dlq_view_requeues_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // A broker that gives up after two attempts.
    let platform = fast_platform(&["--max-attempts", "2", "--retry-base-ms", "50"], &["kitchen-1"]);
    let mut app = up(dir.path(), platform).await;

    // Fault menu: error rate up to 100% on kitchen-1.
    select_node(&mut app, "kitchen-1");
    keys(&mut app, "fj");
    keys(&mut app, "llll");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.model.ui.popup, None);
    wait(&mut app, 10, "kitchen-1 failing every ticket", |m| {
        error_rate(m, "kitchen-1") == 1.0
    })
    .await;

    keys(&mut app, "o");
    wait(&mut app, 30, "the ticket in the DLQ", |m| {
        m.queues.dead.get("kitchen").is_some_and(|d| d.len() == 1)
            && m.log.newest().any(|l| l.text.starts_with("DLQ kitchen"))
    })
    .await;
    let letter = app.model.queues.dead["kitchen"][0].clone();
    assert_eq!(letter.attempts, 2);
    assert!(letter.reason.contains("injected error"), "{}", letter.reason);
    let order = letter
        .envelope
        .as_ref()
        .map(|e| e.order_id.clone())
        .expect("the ticket");
    assert_eq!(
        app.model.orders.get(&order).map(|o| o.state_label()),
        Some("queued")
    );

    // Heal the kitchen, open the DLQ from the Queues panel, re-queue.
    select_node(&mut app, "kitchen-1");
    keys(&mut app, "fc");
    key(&mut app, KeyCode::Esc);
    wait(&mut app, 10, "kitchen-1 healed", |m| {
        error_rate(m, "kitchen-1") == 0.0
    })
    .await;
    app.model.ui.focus = Some(Panel::Queues);
    keys(&mut app, "g");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(
        &app.model.ui.detail,
        Some(tui::model::Detail::DeadLetters { queue, .. }) if queue == "kitchen"
    ));
    keys(&mut app, "r");
    wait(
        &mut app,
        30,
        "the re-queued order delivered and the DLQ empty",
        |m| {
            m.orders.get(&order).map(|o| o.state_label()) == Some("delivered")
                && m.queues.dead.get("kitchen").is_some_and(Vec::is_empty)
        },
    )
    .await;
}

/// `R` on a kitchen: both kitchens restarted one after the other (new
/// pids), the second only once the first takes work again, while orders
/// placed before and during the rollout are each delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_replaces_every_kitchen_one_at_a_time_losing_no_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut app = up(dir.path(), fast_platform(&[], &["kitchen-1", "kitchen-2"])).await;
    let pid = |m: &Model, id: &str| m.nodes.get(id).and_then(|n| n.pid);
    let before = (pid(&app.model, "kitchen-1"), pid(&app.model, "kitchen-2"));
    keys(&mut app, "O");
    key(&mut app, KeyCode::Enter);
    select_node(&mut app, "kitchen-2");
    keys(&mut app, "Ry");
    // Never both kitchens away at once: watched on every message.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut tick = tokio::time::interval(tui::app::TICK);
    let mut fewest_up = 2;
    while !app
        .model
        .log
        .newest()
        .any(|l| l.text == "rolling restart of kitchen: done, 2 restarted")
    {
        assert!(Instant::now() < deadline, "the rolling restart did not finish");
        let up = ["kitchen-1", "kitchen-2"]
            .iter()
            .filter(|id| shown(&app.model, id) == Some(Shown::Up))
            .count();
        fewest_up = fewest_up.min(up);
        let msg = app.next(&mut tick).await;
        app.handle(msg);
    }
    assert_eq!(fewest_up, 1, "one kitchen at a time was away");
    let after = (pid(&app.model, "kitchen-1"), pid(&app.model, "kitchen-2"));
    assert!(
        after.0 != before.0 && after.1 != before.1,
        "{before:?} -> {after:?}"
    );
    let order = |m: &Model| {
        m.log
            .newest()
            .position(|l| l.text.contains("restarting kitchen-1"))
    };
    let second = |m: &Model| {
        m.log
            .newest()
            .position(|l| l.text.contains("restarting kitchen-2"))
    };
    let back = |m: &Model| {
        m.log
            .newest()
            .position(|l| l.text.contains("kitchen-1 is back at work"))
    };
    // Newest first: kitchen-2's restart after kitchen-1 was back, after its own.
    assert!(second(&app.model) < back(&app.model) && back(&app.model) < order(&app.model));
    wait(&mut app, 60, "the 20 orders delivered", |m| {
        count(m, "delivered") == 20
    })
    .await;
    app.close().await;
}

/// Pids of the nodes a control room started, from its log file.
fn pids_in_log(log: &Path) -> Vec<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("started node"))
        .filter_map(|l| l.split(" pid=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A pseudo-terminal whose output is drained until it is closed, so the
/// control room can draw; closing it is closing the terminal window.
struct Pty {
    slave: std::fs::File,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn open() -> Pty {
        use std::os::fd::FromRawFd;
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds into the given integers.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // openpty's fds are inherited by default; a master inherited by the
        // control room would keep its terminal open after we close ours.
        for fd in [master, slave] {
            // SAFETY: fcntl on fds we own.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // SAFETY: both fds were just opened and are owned here.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let drain = std::thread::spawn(move || {
            use std::io::Read;
            use std::os::fd::AsRawFd;
            let mut master = master;
            let mut buf = [0u8; 8192];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let mut fds = libc::pollfd {
                    fd: master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut fds, 1, 100) } > 0 && master.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
            }
            // Dropping the master here hangs the terminal up.
        });
        Pty {
            slave,
            stop,
            drain: Some(drain),
        }
    }

    /// Closes the terminal: the kernel sends SIGHUP to its session.
    fn close(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
    }
}

#[test]
fn closing_the_terminal_window_stops_every_node() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("a temp dir");
    let topology = topology_file(dir.path(), "topology.toml", BROKER_AND_KITCHEN);
    let data = dir.path().join("data");
    let mut pty = Pty::open();
    let io = || pty.slave.try_clone().expect("a pty fd");
    let mut cmd = Command::new(EXE);
    cmd.args(["--topology", &topology, "--data-dir", &data.display().to_string()])
        .stdin(io())
        .stdout(io())
        .stderr(io());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own with the pty as controlling terminal,
            // like a shell in a terminal window.
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("control-room starts");
    let mut room = Room {
        child,
        lines: mpsc::channel().1,
        seen: Vec::new(),
    };
    let log = data.join("logs").join("control-room.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_in_log(&log).len() < 2 {
        assert!(Instant::now() < deadline, "the nodes did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids = pids_in_log(&log);
    assert!(pids.iter().all(|p| alive(*p)));

    pty.close();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|p| alive(*p)) || room.child.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "after the terminal closed: control room exited {:?}, nodes alive {:?}\n{}",
            room.child.try_wait(),
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `--record`: an operator's session (a burst, a kitchen killed and started
/// again, one order cancelled) becomes a scenario; played headless, the
/// recording reaches the same verdict the live session did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_replays_to_the_same_verdict() {
    use tui::scenario::{Expect, Scenario, Step};
    let dir = tempfile::tempdir().expect("a temp dir");
    let recorded = dir.path().join("session.toml");
    let mut opts = options(
        &dir.path().join("live"),
        fast_platform(&[], &["kitchen-1", "kitchen-2"]),
    );
    opts.record = Some(recorded.clone());
    let mut app = App::start(opts).await.expect("the control room starts");
    wait(&mut app, 60, "the platform up", tui::play::platform_up).await;

    keys(&mut app, "O");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    keys(&mut app, "6");
    key(&mut app, KeyCode::Enter);
    wait(&mut app, 30, "6 orders accepted", |m| m.orders.total() == 6).await;
    select_node(&mut app, "kitchen-1");
    keys(&mut app, "Ky");
    wait(&mut app, 10, "kitchen-1 crashed", |m| {
        shown(m, "kitchen-1") == Some(Shown::Crashed("SIGKILL".into()))
    })
    .await;
    keys(&mut app, "s");
    // Cancel the oldest order unless it is already delivered.
    app.model.ui.focus = Some(Panel::Orders);
    keys(&mut app, "G");
    keys(&mut app, "x");
    if app.model.ui.popup.is_some() {
        keys(&mut app, "y");
    }
    wait(&mut app, 60, "every order ended", |m| {
        m.orders
            .counts()
            .iter()
            .filter(|(s, _)| ["delivered", "cancelled"].contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>()
            == 6
    })
    .await;
    keys(&mut app, "q");
    key(&mut app, KeyCode::Enter);
    app.finish().await;

    let scenario = Scenario::load(&recorded).unwrap_or_else(|e| panic!("{e}"));
    let steps: Vec<String> = scenario.steps.iter().map(Step::describe).collect();
    for wanted in ["place 6 order(s)", "kill -9 kitchen-1", "start kitchen-1"] {
        assert!(steps.iter().any(|s| s == wanted), "{wanted} not in {steps:?}");
    }
    assert!(
        steps.iter().any(|s| s.starts_with("sleep ")),
        "the pauses are kept: {steps:?}"
    );
    assert_eq!(scenario.expect, vec![Expect::NoneLost, Expect::NoneCookedTwice]);

    let data = dir.path().join("replay").display().to_string();
    let mut room = Room::start(&[
        "--headless",
        "--scenario",
        &recorded.display().to_string(),
        "--data-dir",
        &data,
    ]);
    let code = room.wait_exit(180);
    let out = room.seen.join("\n");
    assert!(out.contains("PASSED: every expectation held"), "{out}");
    assert!(
        out.contains("all 6 accepted orders accounted for"),
        "the replay placed the recorded orders: {out}"
    );
    assert_eq!(code, Some(0), "{out}");
}
