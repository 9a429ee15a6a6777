//! The interactive control room: the terminal, the keyboard, signals and the
//! frame clock around an [`App`].
//!
//! Draws at most ~30 times a second and only when the model changed, so an
//! idle control room costs next to nothing. The terminal is restored on every
//! way out: a normal quit, an error, a panic (ratatui's hook) and a signal.
//!
//! With `--cast FILE` every frame drawn is also recorded, at the terminal's
//! size; a resize becomes a resize event and a full repaint (see `cast.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Stdout;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, MouseEventKind};
use ratatui::crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedSender;

use crate::app::{App, Finished, TICK};
use crate::msg::Msg;
use crate::signals::Signals;

/// The shortest time between two frames.
pub const FRAME: Duration = Duration::from_millis(33);

/// Messages handled before a frame is drawn, at most (keeps keys responsive
/// under a flood of events).
const BATCH: usize = 2_000;

/// Runs the control room until the operator quits.
pub async fn run(mut app: App, signals: Signals) -> anyhow::Result<Finished> {
    let mut recorder = app.take_recorder();
    let mut terminal = enter().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
    let stop_keys = Arc::new(AtomicBool::new(false));
    spawn_key_reader(app.sender(), stop_keys.clone());
    signals.forward(app.sender());

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_frame = Instant::now() - FRAME;
    let drawn: anyhow::Result<()> = async {
        loop {
            let wait = app
                .model
                .dirty
                .then(|| (last_frame + FRAME).saturating_duration_since(Instant::now()));
            if let Some(msg) = app.next_within(&mut tick, wait).await {
                app.handle(msg);
                for _ in 0..BATCH {
                    match app.try_next() {
                        Some(msg) => app.handle(msg),
                        None => break,
                    }
                }
            }
            if app.model.quitting.is_some() {
                return Ok(());
            }
            if app.model.dirty && last_frame.elapsed() >= FRAME {
                let frame = terminal.draw(|f| crate::ui::draw(f, &app.model, &app.watchers))?;
                let stopped = recorder.as_mut().and_then(|r| r.record(frame.buffer));
                app.model.dirty = false;
                last_frame = Instant::now();
                if let Some(e) = stopped {
                    app.handle(Msg::Refused(format!("recording stopped: {e}")));
                }
            }
        }
    }
    .await;
    // The key reader is told to stop but not waited for: on a terminal that
    // hung up (its window closed) it may never return from reading, and the
    // nodes must be stopped regardless.
    stop_keys.store(true, Ordering::Relaxed);
    // Before the nodes are stopped (seconds): a second signal or a kill
    // must find the recording complete.
    if let Some(r) = recorder.as_mut() {
        r.finish();
    }
    leave();
    // `leave` has shown the cursor. Dropping the Terminal would show it again
    // and, on a terminal that is gone, print the failure to a stderr that is
    // gone too, which panics. It lives until the process exits anyway.
    std::mem::forget(terminal);
    drawn?;
    Ok(app.close().await)
}

/// Raw mode and the alternate screen, with a panic hook that restores the
/// terminal first.
///
/// Not ratatui's `init`: its hook prints when restoring fails, and when the
/// terminal is gone (the window closed) that print panics inside the panic
/// hook, which aborts, and an abort skips the supervisor's cleanup.
fn enter() -> std::io::Result<Terminal<CrosstermBackend<Stdout>>> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
    terminal::enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen, event::EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(std::io::stdout()))
}

/// Leaves raw mode and the alternate screen; errors are ignored, because
/// there may be no terminal left to restore.
fn leave() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        event::DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Reads keys on a thread of its own (crossterm's read blocks).
fn spawn_key_reader(tx: UnboundedSender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Resize(..)) => Msg::Resize,
                // Clicks and the wheel; moves and drags are noise.
                Ok(Event::Mouse(m)) if !matches!(m.kind, MouseEventKind::Moved | MouseEventKind::Drag(_)) => {
                    let (width, height) = terminal::size().unwrap_or((80, 24));
                    Msg::Mouse {
                        event: m,
                        width,
                        height,
                    }
                }
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}
