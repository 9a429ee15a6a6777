//! `control-room`: opens the Pizza Platform control room.
//!
//! `cargo run --release` builds only this binary, so it carries every role:
//! `control-room node <role> [flags]` runs the node crate's command line in
//! this process, exactly as `pizza-node <role>` would, and the supervisor
//! starts nodes by re-executing itself that way.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ratatui::layout::Size;
use tui::app::{per_run_dir, App, Ending, Finished, Options};
use tui::cast::CastTarget;
use tui::supervisor::{free_port, BrokerTarget};
use tui::topology::Topology;

// The nodes this binary runs (`control-room node …`) use the node binary's
// allocator: node/src/allocator.rs.
#[global_allocator]
static ALLOCATOR: node::allocator::Allocator = node::allocator::ALLOCATOR;

/// The Pizza Platform control room: start, stop, scale and watch the platform.
#[derive(Debug, Parser)]
#[command(name = "control-room", version, about)]
struct Args {
    /// Attach to a running broker (mqtt://HOST:PORT) instead of starting one.
    #[arg(long, env = "PIZZA_BROKER")]
    broker: Option<String>,
    /// The nodes to start (TOML); defaults to assets/topology.toml
    /// (assets/chaos.toml with --chaos).
    #[arg(long)]
    topology: Option<PathBuf>,
    /// Keep node state here between runs (default: a fresh directory per run).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// No terminal UI: start the topology, print events and alerts to
    /// stdout, stop everything on SIGINT/SIGTERM.
    #[arg(long)]
    headless: bool,
    /// Topic prefix.
    #[arg(long, env = "PIZZA_PREFIX", default_value = "pizza")]
    prefix: String,
    /// Play a scenario (assets/scenarios/*.toml): visibly, with captions, or
    /// with --headless as a check whose exit code is the verdict.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Seconds each captioned scenario step stays on screen at least
    /// (default: 2.5 in the control room, 0 with --headless).
    #[arg(long, value_name = "SECONDS")]
    pace: Option<f64>,
    /// Record what you do in this session as a scenario file, to replay it
    /// with --scenario.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Record the screen as an asciicast v2 file (play it with
    /// `asciinema play FILE`). Works with --headless too: the screen is then
    /// drawn off-screen at --cast-size.
    #[arg(long, value_name = "FILE")]
    cast: Option<PathBuf>,
    /// Chaos mode from the start: a steady stream of orders (--load) while
    /// random nodes are killed, stopped, paused, cut off from the broker,
    /// the broker itself killed, and
    /// repaired; a ledger counts what became of every order. With
    /// --headless it runs --duration seconds, waits for the open orders,
    /// prints the ledger and exits 1 on a lost or doubled order.
    #[arg(long)]
    chaos: bool,
    /// Chaos mode's seed: the same seed, the same choices.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Orders per second while chaos runs.
    #[arg(long, default_value_t = 10.0)]
    load: f64,
    /// Seconds of chaos before it goes quiet and is judged (default with
    /// --headless: 120; in the control room: until `c`).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Mean seconds between one repair and the next break.
    #[arg(long, value_name = "SECONDS", default_value_t = 6.0)]
    chaos_interval: f64,
    /// What chaos may do, comma-separated: kill, stop, pause, partition,
    /// broker-kill.
    #[arg(long, value_delimiter = ',', default_value = "kill,stop,pause,partition,broker-kill", value_parser = parse_action)]
    chaos_actions: Vec<tui::chaos::Action>,
    /// Back up every node's data this often (seconds) into
    /// <data-dir>/backups/<id>/, the newest 5 kept (`pizza-node restore`
    /// reads them).
    #[arg(long, value_name = "SECONDS")]
    backup_every: Option<f64>,
    /// Route every node's broker link and the order node's payment calls
    /// through the control room's fault proxy, for network faults (the
    /// fault menu's `net` lines). Nodes then cannot be left running when it
    /// quits. On by itself for a scenario with a `network` step and for
    /// chaos with its `partition` action.
    #[arg(long)]
    network_faults: bool,
    /// The size a --headless --cast run draws at, COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", default_value = "120x40", value_parser = parse_size)]
    cast_size: Size,
}

/// `kill` -> [`tui::chaos::Action::Kill`].
fn parse_action(text: &str) -> Result<tui::chaos::Action, String> {
    tui::chaos::Action::parse(text).ok_or_else(|| {
        let names: Vec<&str> = tui::chaos::Action::ALL.iter().map(|a| a.name()).collect();
        format!("unknown chaos action {text:?}: one of {}", names.join(", "))
    })
}

/// `120x40` -> 120 columns, 40 rows.
fn parse_size(text: &str) -> Result<Size, String> {
    let bad = || format!("expected COLSxROWS like 120x40, got {text:?}");
    let (cols, rows) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let width: u16 = cols.trim().parse().map_err(|_| bad())?;
    let height: u16 = rows.trim().parse().map_err(|_| bad())?;
    if width == 0 || height == 0 {
        return Err(bad());
    }
    Ok(Size { width, height })
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let _program = args.next();
    let rest: Vec<_> = args.collect();
    if rest.first().is_some_and(|a| a == "node") {
        // Hidden entry point: the same parser as `pizza-node`.
        let argv = std::iter::once("pizza-node".into()).chain(rest.into_iter().skip(1));
        return match node::cli::Cli::try_parse_from(argv) {
            Ok(cli) => node::cli::run(cli),
            Err(e) => {
                let _ = e.print();
                ExitCode::from(2)
            }
        };
    }
    let args = Args::parse();
    let interactive = !args.headless;
    if interactive && !(std::io::stdout().is_terminal() && std::io::stdin().is_terminal()) {
        eprintln!("control-room: there is no terminal here, and the control room draws on one.");
        eprintln!("  Run the platform without a screen:  control-room --headless");
        eprintln!("  Or run single nodes by hand:         control-room node broker | order | payment | kitchen | delivery");
        eprintln!("                                       (control-room node --help lists every flag)");
        return ExitCode::from(2);
    }
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("control-room: {}", node::cli::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.clone().unwrap_or_else(per_run_dir);
    std::fs::create_dir_all(data_dir.join("logs"))
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    // The terminal belongs to the UI: logs go to a file, always.
    let log = data_dir.join("logs").join("control-room.log");
    let _logs = node::logging::init(node::config::LogFormat::Pretty, Some(&log), None)
        .with_context(|| format!("cannot open the log file {}", log.display()))?;
    let scenario = match &args.scenario {
        Some(path) => Some(tui::scenario::Scenario::load(path)?),
        None => None,
    };
    // A scenario brings its own platform unless --topology says otherwise.
    let mut topology = match (&scenario, &args.topology) {
        (Some(s), None) => s.topology().map_err(anyhow::Error::msg)?,
        (None, None) if args.chaos => Topology::for_chaos(&data_dir)?,
        _ => Topology::load(args.topology.as_deref())?,
    };
    let broker = match args.broker {
        Some(url) => {
            topology = topology.without_broker();
            BrokerTarget::Attach { url }
        }
        None => BrokerTarget::Own {
            port: free_port().context("cannot find a free port for the broker")?,
        },
    };
    let scenario_network = scenario.as_ref().is_some_and(|s| {
        s.steps
            .iter()
            .any(|step| matches!(step, tui::scenario::Step::Network { .. }))
    });
    let opts = Options {
        exe: std::env::current_exe().context("cannot find this executable to start nodes from")?,
        data_dir,
        broker,
        topology,
        prefix: args.prefix,
        scenario,
        pace: args.pace.unwrap_or(if args.headless { 0.0 } else { 2.5 }),
        record: args.record.clone(),
        cast: args.cast.map(|path| CastTarget {
            path,
            headless_size: args.cast_size,
        }),
        chaos: tui::chaos::ChaosOptions {
            seed: args.seed,
            load: args.load,
            mean_interval_s: args.chaos_interval,
            actions: args.chaos_actions.clone(),
            autostart: args.chaos,
            duration_s: args.duration.or((args.chaos && args.headless).then_some(120.0)),
            ..Default::default()
        },
        network_faults: args.network_faults
            || scenario_network
            || (args.chaos && args.chaos_actions.contains(&tui::chaos::Action::Partition)),
        backup_every: args.backup_every,
    };
    anyhow::ensure!(
        args.backup_every.is_none_or(|s| s.is_finite() && s >= 1.0),
        "--backup-every must be seconds, at least 1"
    );
    anyhow::ensure!(
        args.load.is_finite() && args.load >= 0.0,
        "--load must be orders per second, 0 or more, got {}",
        args.load
    );
    anyhow::ensure!(
        args.chaos_interval.is_finite() && args.chaos_interval > 0.0,
        "--chaos-interval must be seconds above 0, got {}",
        args.chaos_interval
    );
    if let Some(d) = args.duration {
        anyhow::ensure!(
            d.is_finite() && d > 0.0,
            "--duration must be seconds above 0, got {d}"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let Finished { ending, verdict } = runtime.block_on(async {
        // Before any node starts: see signals.rs.
        let signals = tui::signals::Signals::catch().context("cannot catch SIGINT, SIGTERM and SIGHUP")?;
        let app = App::start(opts.clone()).await?;
        if args.headless {
            tui::headless::run(app, signals).await
        } else {
            tui::tty::run(app, signals).await
        }
    })?;
    // The terminal may be gone (its window closed): write, never panic.
    let text = match ending {
        Ending::Stopped(exited) => format!(
            "Stopped {} node(s). State and logs: {}",
            exited.len(),
            opts.data_dir.display()
        ),
        Ending::Detached(left) => {
            let mut text = format!("Left {} node(s) running:\n", left.len());
            for (id, pid) in &left {
                text.push_str(&format!("  {id:<12} pid {pid}\n"));
            }
            let pids: Vec<String> = left.iter().map(|(_, p)| p.to_string()).collect();
            text.push_str(&format!("Stop them with: kill {}", pids.join(" ")));
            text
        }
    };
    let _ = writeln!(std::io::stdout(), "{text}");
    if let (Some(v), false) = (&verdict, args.headless) {
        let _ = writeln!(std::io::stdout(), "{}", tui::headless::verdict_table(v));
    }
    if let Some(path) = &args.record {
        let _ = writeln!(std::io::stdout(), "Session recorded as {}", path.display());
    }
    Ok(match verdict {
        Some(v) if !v.passed() => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}
