//! `control-room --headless`: the same platform and the same model without a
//! terminal. Every line the Events & alerts panel would show is printed to
//! stdout; SIGINT or SIGTERM stops the nodes and exits.

use std::io::Write;

use crate::app::{App, Ending, TICK};
use crate::ui::clock;

/// Runs until a signal arrives.
pub async fn run(mut app: App) -> anyhow::Result<Ending> {
    crate::tty::forward_signals(app.sender());
    let info = &app.model.info;
    say(&format!(
        "broker {}\ndata {}\nlogs {}",
        info.broker, info.data_dir, info.log_dir
    ));
    let mut printed = 0u64;
    print_new(&app, &mut printed);
    let mut tick = tokio::time::interval(TICK);
    while app.model.quitting.is_none() {
        let msg = app.next(&mut tick).await;
        app.handle(msg);
        print_new(&app, &mut printed);
    }
    Ok(app.finish().await)
}

/// Prints log lines not printed yet.
fn print_new(app: &App, printed: &mut u64) {
    let total = app.model.log.pushed();
    let fresh = (total - *printed).min(app.model.log.len() as u64) as usize;
    let mut lines: Vec<_> = app.model.log.newest().take(fresh).collect();
    lines.reverse();
    for line in lines {
        say(&format!("{} {:?} {}", clock(line.at), line.level, line.text));
    }
    *printed = total;
}

/// Prints a line; a closed stdout (`| head`) must not panic the run.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
