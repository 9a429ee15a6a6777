//! `control-room --headless`: the same platform and the same model without a
//! terminal. Every line the Events & alerts panel would show is printed to
//! stdout; SIGINT or SIGTERM stops the nodes and exits.
//!
//! With `--scenario`, it prints the scenario's steps as they run (and the
//! alerts), then a verdict table, and quits: the exit code says whether every
//! expectation held.
//! With `--chaos`, it prints what chaos does (in the events) and the ledger
//! every 10 s, then
//! the ledger and a verdict once the run is over and quiet.
//! With `--cast FILE` the screen is drawn anyway, off-screen (ratatui's
//! `TestBackend` at `--cast-size`), whenever the model changed and at most
//! every [`HEADLESS_FRAME`], and recorded: a scripted run in CI leaves a
//! recording as playable as an interactive one.

use std::io::Write;
use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::app::{App, Finished, TICK};
use crate::cast::{Recorder, HEADLESS_FRAME};
use crate::model::Level;
use crate::msg::Msg;
use crate::play::Verdict;
use crate::signals::Signals;
use crate::ui::clock;

/// Runs until a signal arrives, or until the scenario is over.
pub async fn run(mut app: App, signals: Signals) -> anyhow::Result<Finished> {
    signals.forward(app.sender());
    let mut screen = match app.take_recorder() {
        Some(recorder) => Some(OffScreen::new(recorder)?),
        None => None,
    };
    let info = &app.model.info;
    say(&format!(
        "broker {}\ndata {}\nlogs {}",
        info.broker, info.data_dir, info.log_dir
    ));
    let scripted = app.watchers.play.is_some();
    let mut printed = 0u64;
    let mut narrated = 0usize;
    let mut last_ledger = Instant::now();
    print_new(&app, &mut printed, scripted);
    let mut tick = tokio::time::interval(TICK);
    let mut last_frame = Instant::now() - HEADLESS_FRAME;
    while app.model.quitting.is_none() {
        // Without a recording nothing is drawn, so `dirty` is not waited on.
        let wait = (screen.is_some() && app.model.dirty)
            .then(|| (last_frame + HEADLESS_FRAME).saturating_duration_since(Instant::now()));
        if let Some(msg) = app.next_within(&mut tick, wait).await {
            app.handle(msg);
        }
        if let Some(s) = screen.as_mut() {
            if app.model.dirty && last_frame.elapsed() >= HEADLESS_FRAME {
                s.draw(&mut app);
                last_frame = Instant::now();
            }
        }
        print_new(&app, &mut printed, scripted);
        if let Some(play) = &app.watchers.play {
            for line in &play.lines[narrated..] {
                say(line);
            }
            narrated = play.lines.len();
            if let Some(verdict) = &play.verdict {
                say(&verdict_table(verdict));
                app.model.quitting = Some(true);
            }
        }
        if let Some(chaos) = &app.watchers.chaos {
            if chaos.on && last_ledger.elapsed() >= LEDGER_EVERY {
                say(&format!(
                    "{} {}",
                    clock(app.model.now),
                    ledger_line(&chaos.tally())
                ));
                last_ledger = Instant::now();
            }
            if let Some(verdict) = &chaos.verdict {
                say(&crate::chaos::ledger_table(chaos.breaks, &chaos.tally()));
                say(&verdict_table(verdict));
                app.model.quitting = Some(true);
            }
        }
    }
    if let Some(mut s) = screen {
        // The last state before quitting (the verdict on screen), then
        // everything on disk before the nodes are stopped (which takes
        // seconds).
        app.model.dirty = true;
        s.draw(&mut app);
        s.recorder.finish();
    }
    Ok(app.close().await)
}

/// How often a chaos run prints its ledger.
const LEDGER_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The ledger on one line.
fn ledger_line(t: &crate::ledger::Tally) -> String {
    format!(
        "ledger: attempted {} accepted {} refused {} delivered {} open {} delivered twice {} cooked twice {}",
        t.attempted, t.accepted, t.refused, t.delivered, t.open, t.delivered_twice, t.cooked_twice
    )
}

/// The verdict as a table, one expectation per line.
pub fn verdict_table(v: &Verdict) -> String {
    let mut out = String::from("\nverdict\n");
    if let Some(step) = &v.failed_step {
        out.push_str(&format!("  FAIL  the timeline: {step}\n"));
    }
    let width = v
        .judged
        .iter()
        .map(|j| j.expected.chars().count())
        .max()
        .unwrap_or(0);
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

/// A terminal that is only memory, and the recorder its frames go to.
struct OffScreen {
    terminal: Terminal<TestBackend>,
    recorder: Recorder,
}

impl OffScreen {
    fn new(recorder: Recorder) -> anyhow::Result<OffScreen> {
        let size = recorder.headless_size();
        let terminal = Terminal::new(TestBackend::new(size.width, size.height))
            .map_err(|e| anyhow::anyhow!("cannot set up the off-screen terminal: {e}"))?;
        Ok(OffScreen { terminal, recorder })
    }

    /// Draws the model and records the frame. A drawing error (none is
    /// expected in memory) is treated like a write error: recording stops.
    fn draw(&mut self, app: &mut App) {
        app.model.dirty = false;
        if !self.recorder.is_recording() {
            return;
        }
        let stopped = match self
            .terminal
            .draw(|f| crate::ui::draw(f, &app.model, &app.watchers))
        {
            Ok(frame) => self.recorder.record(frame.buffer).map(|e| e.to_string()),
            Err(e) => {
                self.recorder.stop();
                Some(format!("cannot draw off-screen: {e}"))
            }
        };
        if let Some(e) = stopped {
            app.handle(Msg::Refused(format!("recording stopped: {e}")));
        }
    }
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
