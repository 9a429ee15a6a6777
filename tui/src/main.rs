//! `control-room`: the Pizza Platform control room.
//!
//! The interactive control room is the next issue. What is here already is
//! how it will start nodes: `cargo run --release` builds only this binary, so
//! it carries every role itself. `control-room node <role> [flags]` runs the
//! node crate's command line in this process, exactly as `pizza-node <role>`
//! would; the supervisor will re-execute `current_exe()` with it.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let program = args.next();
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
    let _ = program;
    println!("control-room {}", env!("CARGO_PKG_VERSION"));
    if !std::io::stdout().is_terminal() {
        println!("No terminal here: the control room needs one.");
    }
    println!("The interactive control room is not built yet. Every role already runs headless,");
    println!("from this binary or from pizza-node:");
    println!("  control-room node broker --listen 127.0.0.1:1883 --data-dir data/broker");
    println!("  control-room node payment | order | kitchen --id kitchen-1 | delivery");
    println!("  control-room node --help");
    ExitCode::SUCCESS
}
