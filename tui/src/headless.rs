//! `control-room --headless`: the same platform and the same model without a
//! terminal. Every line the Events & alerts panel would show is printed to
//! stdout; SIGINT or SIGTERM stops the nodes and exits.
//!
//! With `--scenario`, it prints the scenario's steps as they run (and the
//! alerts), then a verdict table, and quits: the exit code says whether every
//! expectation held.

use std::io::Write;

use crate::app::{App, Finished, TICK};
use crate::model::Level;
use crate::play::Verdict;
use crate::ui::clock;

/// Runs until a signal arrives, or until the scenario is over.
pub async fn run(mut app: App) -> anyhow::Result<Finished> {
    crate::tty::forward_signals(app.sender());
    let info = &app.model.info;
    say(&format!(
        "broker {}\ndata {}\nlogs {}",
        info.broker, info.data_dir, info.log_dir
    ));
    let scripted = app.model.play.is_some();
    let mut printed = 0u64;
    let mut narrated = 0usize;
    print_new(&app, &mut printed, scripted);
    let mut tick = tokio::time::interval(TICK);
    while app.model.quitting.is_none() {
        let msg = app.next(&mut tick).await;
        app.handle(msg);
        print_new(&app, &mut printed, scripted);
        if let Some(play) = &app.model.play {
            for line in &play.lines[narrated..] {
                say(line);
            }
            narrated = play.lines.len();
            if let Some(verdict) = &play.verdict {
                say(&verdict_table(verdict));
                app.model.quitting = Some(true);
            }
        }
    }
    Ok(app.close().await)
}

/// The verdict as a table, one expectation per line.
pub fn verdict_table(v: &Verdict) -> String {
    let mut out = String::from("\nverdict\n");
    if let Some(step) = &v.failed_step {
        out.push_str(&format!("  FAIL  the timeline: {step}\n"));
    }
    let width = v.judged.iter().map(|j| j.expected.chars().count()).max().unwrap_or(0);
    for j in &v.judged {
        let mark = if j.held { "pass" } else { "FAIL" };
        out.push_str(&format!("  {mark}  {:<width$}  {}\n", j.expected, j.saw));
    }
    out.push_str(if v.passed() {
        "PASSED: every expectation held"
    } else {
        "FAILED"
    });
    out
}

/// Prints log lines not printed yet (only warnings and alerts in a scenario,
/// whose own narration says the rest).
fn print_new(app: &App, printed: &mut u64, scripted: bool) {
    let total = app.model.log.pushed();
    let fresh = (total - *printed).min(app.model.log.len() as u64) as usize;
    let mut lines: Vec<_> = app.model.log.newest().take(fresh).collect();
    lines.reverse();
    for line in lines {
        if scripted && line.level < Level::Warn {
            continue;
        }
        say(&format!("{} {:?} {}", clock(line.at), line.level, line.text));
    }
    *printed = total;
}

/// Prints a line; a closed stdout (`| head`) must not panic the run.
fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}
