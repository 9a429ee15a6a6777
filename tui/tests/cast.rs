//! `--cast FILE`: recordings are read back the way a player reads them. The
//! header is checked as JSON, every event's shape and time, and the events
//! are replayed through a tiny terminal (cursor moves and characters; colours
//! ignored) whose final screen must be the screen that was drawn.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use tui::cast::{CastTarget, Recorder};
use tui::model::Model;
use tui::msg::Msg;
use tui::update::update;

mod support;

use support::{parse, replay, text, Recording, Room};

fn press(m: &mut Model, code: KeyCode) {
    update(m, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Draws `m` and records the frame; returns the screen as text.
fn frame(terminal: &mut Terminal<TestBackend>, recorder: &mut Recorder, m: &Model) -> String {
    let frame = terminal
        .draw(|f| tui::ui::draw(f, m, &Default::default()))
        .expect("drawing in memory");
    assert!(recorder.record(frame.buffer).is_none(), "recording failed");
    let screen = text(frame.buffer);
    // Distinct times, so "increasing" is checked for real.
    std::thread::sleep(Duration::from_millis(3));
    screen
}

#[test]
fn frames_of_the_sample_model_replay_to_the_final_screen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("sample.cast");
    let mut recorder = Recorder::create(&CastTarget::new(&path)).expect("the file is created");
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("a test terminal");
    let mut m = tui::testkit::model();

    let first = frame(&mut terminal, &mut recorder, &m);
    let mut screen = first.clone();
    for code in [
        KeyCode::Tab,
        KeyCode::Char('j'),
        KeyCode::Tab,
        KeyCode::Tab,
        KeyCode::Char('j'),
        KeyCode::Enter,
        KeyCode::Esc,
        KeyCode::Char('?'),
    ] {
        press(&mut m, code);
        screen = frame(&mut terminal, &mut recorder, &m);
    }
    assert!(recorder.finish().is_none());
    assert_ne!(first, screen, "the keys changed the screen");

    let rec = parse(&std::fs::read_to_string(&path).expect("the cast file"));
    assert_eq!(rec.header["width"], 120);
    assert_eq!(rec.header["height"], 40);
    assert!(rec.events.iter().all(|(_, kind, _)| kind == "o"));
    let times: Vec<f64> = rec.events.iter().map(|e| e.0).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // Only the first frame repaints; the rest are differences.
    let repaints = rec.events.iter().filter(|e| e.2.contains("\x1b[2J")).count();
    assert_eq!(repaints, 1);
    assert!(rec.events[1].2.len() < rec.events[0].2.len() / 2);
    assert_eq!(replay(&rec).text(), screen);

    // Replaying only up to the first frame gives the first screen.
    let one = Recording {
        header: rec.header.clone(),
        events: rec.events[..1].to_vec(),
    };
    assert_eq!(replay(&one).text(), first);
}

#[test]
fn a_resize_is_a_resize_event_and_a_repaint_at_the_new_size() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("resize.cast");
    let mut recorder = Recorder::create(&CastTarget::new(&path)).expect("the file is created");
    let m = tui::testkit::model();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("a test terminal");
    frame(&mut terminal, &mut recorder, &m);
    terminal.backend_mut().resize(80, 24);
    let screen = frame(&mut terminal, &mut recorder, &m);
    assert!(recorder.finish().is_none());

    let rec = parse(&std::fs::read_to_string(&path).expect("the cast file"));
    assert_eq!(rec.header["width"], 120, "the header keeps the first size");
    let kinds: Vec<&str> = rec.events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(kinds, ["o", "r", "o"]);
    assert_eq!(rec.events[1].2, "80x24");
    assert_eq!(replay(&rec).text(), screen);
}

#[test]
fn a_headless_run_records_a_playable_cast() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let topology = dir.path().join("topology.toml");
    std::fs::write(
        &topology,
        "[[node]]\nrole='broker'\nid='broker'\n[[node]]\nrole='kitchen'\nid='kitchen-1'\n",
    )
    .expect("write the topology");
    let data = dir.path().join("data");
    let cast = dir.path().join("run.cast");
    let arg = |p: &Path| p.display().to_string();
    let mut room = Room::start(&[
        "--headless",
        "--topology",
        &arg(&topology),
        "--data-dir",
        &arg(&data),
        "--cast",
        &arg(&cast),
        "--cast-size",
        "100x30",
    ]);
    room.expect("kitchen-1 is up", 60);
    // A few frames on disk (each is flushed as it is drawn), then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&cast).map_or(0, |t| t.lines().count()) < 4 {
        assert!(Instant::now() < deadline, "no frames recorded within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = room.terminate();
    assert!(status.success(), "exit status {status:?}");

    let text = std::fs::read_to_string(&cast).expect("the cast file exists");
    let rec = parse(&text);
    assert_eq!(rec.header["width"], 100);
    assert_eq!(rec.header["height"], 30);
    assert!(rec.events.len() >= 3, "{} events", rec.events.len());
    let screen = replay(&rec).text();
    assert!(screen.contains("Pizza Platform"), "{screen}");
    assert!(screen.contains("Nodes"), "{screen}");
    assert!(screen.contains("kitchen-1"), "{screen}");

    // A real player, when there is one.
    if let Ok(out) = Command::new("asciinema").arg("cat").arg(&cast).output() {
        assert!(out.status.success(), "asciinema cat: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Pizza Platform"));
    }
}
