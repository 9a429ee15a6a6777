//! `control-room --headless`: the same platform and the same model without a
//! terminal. Every line the Events & alerts panel would show is printed to
//! stdout; SIGINT or SIGTERM stops the nodes and exits.

use crate::app::{App, Ending, TICK};
use crate::ui::clock;

/// Runs until a signal arrives.
pub async fn run(mut app: App) -> anyhow::Result<Ending> {
    crate::tty::forward_signals(app.sender());
    println!("broker {}", app.model.info.broker);
    println!("data {}", app.model.info.data_dir);
    println!("logs {}", app.model.info.log_dir);
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
        println!("{} {:?} {}", clock(line.at), line.level, line.text);
    }
    *printed = total;
}
