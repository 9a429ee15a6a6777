//! What the control room's integration tests share: a `control-room`
//! process killed on drop, and an asciicast reader.

#![allow(dead_code)] // Each test file uses a part.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::text::Span;
use serde_json::Value;

/// The binary under test.
pub const EXE: &str = env!("CARGO_BIN_EXE_control-room");

/// A `control-room` process that is stopped (SIGTERM, then SIGKILL) on drop,
/// with its stdout lines on a channel.
pub struct Room {
    /// The process.
    pub child: Child,
    /// Stdout lines as they arrive.
    pub lines: mpsc::Receiver<String>,
    /// Every stdout line so far.
    pub seen: Vec<String>,
}

impl Room {
    pub fn start(args: &[&str]) -> Room {
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

    /// Waits for a line containing `text`; returns it.
    pub fn expect(&mut self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
                return l.clone();
            }
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

    /// Pids of every node it said it started.
    pub fn node_pids(&self) -> Vec<u32> {
        self.seen
            .iter()
            .filter(|l| l.contains(" started "))
            .filter_map(|l| l.split("(pid ").nth(1))
            .filter_map(|rest| rest.trim_end_matches(')').parse().ok())
            .collect()
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
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
            // Its nodes run in process groups of their own: the ones it
            // said it started go too.
            for pid in self.node_pids() {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A recording as read back: the header and the events.
pub struct Recording {
    /// The header line.
    pub header: Value,
    /// `(time, kind, data)` per event.
    pub events: Vec<(f64, String, String)>,
}

/// Parses a cast file strictly: a JSON header, then `[time, kind, data]`
/// lines with non-decreasing times and kinds "o" or "r".
pub fn parse(text: &str) -> Recording {
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
pub struct Vt {
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

    /// The screen as text, one line per row.
    pub fn text(&self) -> String {
        self.cells
            .iter()
            .map(|row| row.concat())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replays every event; returns the final screen.
pub fn replay(rec: &Recording) -> Vt {
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
pub fn text(buffer: &Buffer) -> String {
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

impl Room {
    /// Waits for the process to exit on its own; its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "control-room did not finish in {secs} s; output:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
