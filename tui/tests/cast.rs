//! `--cast FILE`: recordings are read back the way a player reads them. The
//! header is checked as JSON, every event's shape and time, and the events
//! are replayed through a tiny terminal (cursor moves and characters; colours
//! ignored) whose final screen must be the screen that was drawn.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::Span;
use ratatui::Terminal;
use serde_json::Value;
use tui::cast::{CastTarget, Recorder};
use tui::model::Model;
use tui::msg::Msg;
use tui::update::update;

const EXE: &str = env!("CARGO_BIN_EXE_control-room");

/// A recording as read back: the header and the events.
struct Recording {
    header: Value,
    events: Vec<(f64, String, String)>,
}

/// Parses a cast file strictly: a JSON header, then `[time, kind, data]`
/// lines with non-decreasing times and kinds "o" or "r".
fn parse(text: &str) -> Recording {
    let mut lines = text.lines();
    let header: Value =
        serde_json::from_str(lines.next().expect("a header line")).expect("the header is JSON");
    assert_eq!(header["version"], 2, "{header}");
    assert!(header["timestamp"].as_u64().is_some(), "{header}");
    assert_eq!(header["env"]["TERM"], "xterm-256color", "{header}");
    let mut events = Vec::new();
    let mut last = 0.0f64;
    for line in lines {
        let event: Value = serde_json::from_str(line).expect("an event line is JSON");
        let parts = event.as_array().expect("an event is an array");
        assert_eq!(parts.len(), 3, "{line}");
        let time = parts[0].as_f64().expect("a time in seconds");
        let kind = parts[1].as_str().expect("a kind").to_string();
        let data = parts[2].as_str().expect("a string").to_string();
        assert!(time >= last, "time went back: {time} after {last}");
        assert!(kind == "o" || kind == "r", "unexpected event kind in {line}");
        last = time;
        events.push((time, kind, data));
    }
    assert!(!events.is_empty(), "no frames recorded");
    Recording { header, events }
}

/// Just enough of a terminal to replay what the recorder writes.
struct Vt {
    width: usize,
    height: usize,
    cells: Vec<Vec<String>>,
    x: usize,
    y: usize,
}

impl Vt {
    fn new(width: usize, height: usize) -> Vt {
        Vt {
            width,
            height,
            cells: vec![vec![" ".to_string(); width]; height],
            x: 0,
            y: 0,
        }
    }

    fn resize(&mut self, spec: &str) {
        let (w, h) = spec.split_once('x').expect("COLSxROWS");
        let (w, h): (usize, usize) = (w.parse().expect("cols"), h.parse().expect("rows"));
        for row in &mut self.cells {
            row.resize(w, " ".to_string());
        }
        self.cells.resize(h, vec![" ".to_string(); w]);
        (self.width, self.height) = (w, h);
    }

    fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => {
                    if chars.next_if_eq(&'[').is_none() {
                        chars.next(); // a two-byte escape: nothing we use
                        continue;
                    }
                    let mut params = String::new();
                    let mut last = '\0';
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            last = c;
                            break;
                        }
                        params.push(c);
                    }
                    self.csi(&params, last);
                }
                '\r' => self.x = 0,
                '\n' => self.y = (self.y + 1).min(self.height - 1),
                c if c.is_control() => {}
                c => self.print(c),
            }
        }
    }

    fn csi(&mut self, params: &str, last: char) {
        match last {
            'H' => {
                let mut n = params.split(';').map(|p| p.parse::<usize>().unwrap_or(1));
                let row = n.next().unwrap_or(1).max(1);
                let col = n.next().unwrap_or(1).max(1);
                self.y = (row - 1).min(self.height - 1);
                self.x = (col - 1).min(self.width - 1);
            }
            'J' if params == "2" => {
                for row in &mut self.cells {
                    row.fill(" ".to_string());
                }
            }
            _ => {} // SGR, cursor visibility: not part of the text
        }
    }

    fn print(&mut self, c: char) {
        let width = Span::raw(c.to_string()).width();
        if width == 0 {
            // A combining mark joins the cell before it.
            if self.x > 0 {
                self.cells[self.y][self.x - 1].push(c);
            }
            return;
        }
        if self.x + width > self.width {
            return; // never happens with explicit positioning; clip
        }
        self.cells[self.y][self.x] = c.to_string();
        if width == 2 {
            // A wide character covers the next cell, which shows blank.
            self.cells[self.y][self.x + 1] = " ".to_string();
        }
        self.x += width;
    }

    fn text(&self) -> String {
        self.cells
            .iter()
            .map(|row| row.concat())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replays every event; returns the final screen.
fn replay(rec: &Recording) -> Vt {
    let width = rec.header["width"].as_u64().expect("width") as usize;
    let height = rec.header["height"].as_u64().expect("height") as usize;
    let mut vt = Vt::new(width, height);
    for (_, kind, data) in &rec.events {
        match kind.as_str() {
            "o" => vt.feed(data),
            _ => vt.resize(data),
        }
    }
    vt
}

/// A buffer as text, one line per row, every cell (as the replay shows it).
fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| {
            (area.left()..area.right())
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn press(m: &mut Model, code: KeyCode) {
    update(m, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Draws `m` and records the frame; returns the screen as text.
fn frame(terminal: &mut Terminal<TestBackend>, recorder: &mut Recorder, m: &Model) -> String {
    let frame = terminal.draw(|f| tui::ui::draw(f, m)).expect("drawing in memory");
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
    let mut m = tui::sample::model();

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
    let m = tui::sample::model();
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

/// A `control-room` process, stopped (SIGTERM, then SIGKILL) on drop, with
/// its stdout lines on a channel (as in control_room.rs).
struct Room {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Room {
    fn start(args: &[&str]) -> Room {
        let mut child = Command::new(EXE)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("control-room starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Room {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`.
    fn expect(&mut self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no line with {text:?} in {secs} s; got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "control-room did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first, so it can stop its own children.
            signal(self.child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
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
    // A few more frames (the clock ticks), then SIGTERM.
    std::thread::sleep(Duration::from_millis(1_500));
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
