//! `--cast FILE`: the control room's screen as an asciicast v2 recording,
//! playable with `asciinema play FILE`.
//!
//! The file is newline-delimited JSON: a header line (version 2, size,
//! start time, title, env), then one `[seconds, "o", "<ANSI text>"]` event
//! per frame. The first frame is a full repaint (clear, then every non-blank
//! cell); every later frame carries only the cells that changed, found with
//! ratatui's own [`Buffer::diff`] (which already skips the cells a wide
//! character covers), so a half-hour recording of a busy screen stays small.
//!
//! **Resizes.** asciicast v2 has an `"r"` event (`"COLSxROWS"`), honoured by
//! asciinema-player 3.6+ and ignored by older players. When a frame's size
//! differs from the previous one, [`Cast`] writes an `"r"` event and then a
//! full repaint at the new size: a player that knows `"r"` shows exactly what
//! the terminal showed, an older one shows the repaint clipped to the header's
//! size. Headless runs draw at one fixed size and never resize.
//!
//! The conversion ([`ansi`]) is pure; [`Cast`] adds the file format over any
//! writer; [`Recorder`] adds the clock and the rule that a recording that
//! cannot be written stops quietly instead of ending the run.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Size;
use ratatui::style::{Color, Modifier};
use serde::Serialize;

/// The size a headless run draws at (there is no terminal to ask).
pub const HEADLESS_SIZE: Size = Size {
    width: 120,
    height: 40,
};

/// The shortest time between two recorded frames of a headless run.
pub const HEADLESS_FRAME: Duration = Duration::from_millis(100);

/// The recording's title.
pub const TITLE: &str = "Pizza Platform control room";

/// What to record: where, and at what size a run without a terminal draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CastTarget {
    /// The asciicast file (created or truncated).
    pub path: PathBuf,
    /// The off-screen size for `--headless`; an interactive run records the
    /// terminal's own size.
    pub headless_size: Size,
}

impl CastTarget {
    /// A target at [`HEADLESS_SIZE`].
    pub fn new(path: impl Into<PathBuf>) -> CastTarget {
        CastTarget {
            path: path.into(),
            headless_size: HEADLESS_SIZE,
        }
    }
}

/// Why a recording failed.
#[derive(Debug, thiserror::Error)]
pub enum CastError {
    /// The file could not be created.
    #[error("cannot create the cast file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing a line failed (disk full, file gone ...).
    #[error("cannot write the cast file: {0}")]
    Write(#[from] std::io::Error),
    /// A line could not be encoded (never expected: strings and numbers only).
    #[error("cannot encode a cast line: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The header line.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// Always 2.
    pub version: u8,
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// When the recording started, in Unix seconds.
    pub timestamp: u64,
    /// Shown by players.
    pub title: String,
    /// The terminal the escape sequences are meant for.
    pub env: Env,
}

/// The header's `env`: what a player should emulate.
#[derive(Debug, Clone, Serialize)]
pub struct Env {
    /// `xterm-256color`: the sequences use 256 and 24-bit colours.
    #[serde(rename = "TERM")]
    pub term: String,
    /// Informational only.
    #[serde(rename = "SHELL")]
    pub shell: String,
}

impl Header {
    /// A version 2 header.
    pub fn new(size: Size, timestamp: u64, title: &str) -> Header {
        Header {
            version: 2,
            width: size.width,
            height: size.height,
            timestamp,
            title: title.to_string(),
            env: Env {
                term: "xterm-256color".into(),
                shell: "/bin/sh".into(),
            },
        }
    }
}

/// The ANSI text that turns a terminal showing `prev` into one showing
/// `next`: only the changed cells, or, without a `prev` of the same size, a
/// full repaint (reset, hide the cursor, clear, then every non-blank cell).
/// Ends with the attributes reset. Empty when nothing changed.
pub fn ansi(prev: Option<&Buffer>, next: &Buffer) -> String {
    match prev {
        Some(prev) if prev.area == next.area => paint(prev.diff(next)),
        _ => {
            // A cleared screen is exactly an empty buffer (blanks, default
            // style), so the repaint is the diff against one.
            let blank = Buffer::empty(next.area);
            let mut text = String::from("\x1b[0m\x1b[?25l\x1b[H\x1b[2J");
            text.push_str(&paint(blank.diff(next)));
            text
        }
    }
}

/// The style a cell is written with (underline colour is not recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

const PLAIN: Pen = Pen {
    fg: Color::Reset,
    bg: Color::Reset,
    modifier: Modifier::empty(),
};

/// Writes `updates` (cells in row-major order, as `Buffer::diff` yields
/// them) as cursor moves, SGR and symbols.
fn paint(updates: Vec<(u16, u16, &Cell)>) -> String {
    let mut text = String::new();
    let mut pen = PLAIN;
    let mut last: Option<(u16, u16)> = None;
    for (x, y, cell) in updates {
        // Like ratatui's crossterm backend: move unless this cell follows
        // the last one written. After a wide character the next update is
        // two columns on, so the cursor is always placed explicitly there
        // and the writer never needs to know character widths.
        if !matches!(last, Some((lx, ly)) if ly == y && x == lx.wrapping_add(1)) {
            let _ = write!(text, "\x1b[{};{}H", u32::from(y) + 1, u32::from(x) + 1);
        }
        last = Some((x, y));
        let want = Pen {
            fg: cell.fg,
            bg: cell.bg,
            modifier: cell.modifier,
        };
        if want != pen {
            text.push_str(&sgr(want));
            pen = want;
        }
        text.push_str(cell.symbol());
    }
    if pen != PLAIN {
        text.push_str("\x1b[0m");
    }
    text
}

/// One SGR sequence setting exactly `pen`: reset, then what differs from
/// the default. Resetting first costs two bytes and spares tracking which
/// modifiers a terminal can turn off one by one.
fn sgr(pen: Pen) -> String {
    let mut codes: Vec<String> = vec!["0".into()];
    for (modifier, code) in [
        (Modifier::BOLD, "1"),
        (Modifier::DIM, "2"),
        (Modifier::ITALIC, "3"),
        (Modifier::UNDERLINED, "4"),
        (Modifier::SLOW_BLINK, "5"),
        (Modifier::RAPID_BLINK, "6"),
        (Modifier::REVERSED, "7"),
        (Modifier::HIDDEN, "8"),
        (Modifier::CROSSED_OUT, "9"),
    ] {
        if pen.modifier.contains(modifier) {
            codes.push(code.into());
        }
    }
    if let Some(fg) = colour(pen.fg, false) {
        codes.push(fg);
    }
    if let Some(bg) = colour(pen.bg, true) {
        codes.push(bg);
    }
    format!("\x1b[{}m", codes.join(";"))
}

/// The SGR parameters for a colour, as crossterm writes them (`Gray` is the
/// normal white 37, `White` the bright 97); `None` for the default.
fn colour(c: Color, background: bool) -> Option<String> {
    let base = |n: u8| Some((if background { n + 10 } else { n }).to_string());
    let extended = if background { 48 } else { 38 };
    match c {
        Color::Reset => None,
        Color::Black => base(30),
        Color::Red => base(31),
        Color::Green => base(32),
        Color::Yellow => base(33),
        Color::Blue => base(34),
        Color::Magenta => base(35),
        Color::Cyan => base(36),
        Color::Gray => base(37),
        Color::DarkGray => base(90),
        Color::LightRed => base(91),
        Color::LightGreen => base(92),
        Color::LightYellow => base(93),
        Color::LightBlue => base(94),
        Color::LightMagenta => base(95),
        Color::LightCyan => base(96),
        Color::White => base(97),
        Color::Indexed(i) => Some(format!("{extended};5;{i}")),
        Color::Rgb(r, g, b) => Some(format!("{extended};2;{r};{g};{b}")),
    }
}

/// An asciicast v2 stream over any writer. The header is written with the
/// first frame, because only then is the size known.
#[derive(Debug)]
pub struct Cast<W: Write> {
    out: W,
    timestamp: u64,
    title: String,
    prev: Option<Buffer>,
}

impl<W: Write> Cast<W> {
    /// A stream that will start at `timestamp` (Unix seconds).
    pub fn new(out: W, timestamp: u64, title: &str) -> Cast<W> {
        Cast {
            out,
            timestamp,
            title: title.to_string(),
            prev: None,
        }
    }

    /// Records `buffer` as the screen `at` after the start. Writes nothing
    /// when the screen did not change.
    pub fn frame(&mut self, at: Duration, buffer: &Buffer) -> Result<(), CastError> {
        let size = Size::new(buffer.area.width, buffer.area.height);
        let time = seconds(at);
        match &self.prev {
            None => {
                let header = Header::new(size, self.timestamp, &self.title);
                serde_json::to_writer(&mut self.out, &header)?;
                self.out.write_all(b"\n")?;
            }
            Some(prev) if prev.area != buffer.area => {
                let resize = format!("{}x{}", size.width, size.height);
                self.event(time, "r", &resize)?;
            }
            Some(_) => {}
        }
        let text = ansi(self.prev.as_ref(), buffer);
        if !text.is_empty() {
            self.event(time, "o", &text)?;
        }
        // Reuse the previous allocation: a frame is ~5,000 cells.
        match &mut self.prev {
            Some(prev) if prev.area == buffer.area => prev.clone_from(buffer),
            prev => *prev = Some(buffer.clone()),
        }
        Ok(())
    }

    fn event(&mut self, time: f64, kind: &str, data: &str) -> Result<(), CastError> {
        serde_json::to_writer(&mut self.out, &(time, kind, data))?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes the writer.
    pub fn flush(&mut self) -> Result<(), CastError> {
        self.out.flush()?;
        Ok(())
    }

    /// The writer, for tests.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Seconds as asciicast writes them: microseconds, so a later frame never
/// gets an earlier time through rounding.
fn seconds(at: Duration) -> f64 {
    at.as_micros() as f64 / 1e6
}

/// A [`Cast`] to a file, timed from its creation. A failed write is logged
/// once and ends the recording, never the run.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    cast: Option<Cast<BufWriter<File>>>,
    start: Instant,
    headless_size: Size,
}

impl Recorder {
    /// Creates (or truncates) the file. This is the one error a caller
    /// sees: a path that cannot be written is a mistake worth stopping for
    /// before anything starts.
    pub fn create(target: &CastTarget) -> Result<Recorder, CastError> {
        let file = File::create(&target.path).map_err(|source| CastError::Create {
            path: target.path.clone(),
            source,
        })?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Recorder {
            path: target.path.clone(),
            cast: Some(Cast::new(BufWriter::new(file), timestamp, TITLE)),
            start: Instant::now(),
            headless_size: target.headless_size,
        })
    }

    /// The size a run without a terminal draws at.
    pub fn headless_size(&self) -> Size {
        self.headless_size
    }

    /// Whether frames are still being written.
    pub fn is_recording(&self) -> bool {
        self.cast.is_some()
    }

    /// Records a completed frame and flushes it, so the file is whole up to
    /// the last frame even if the process is killed. Returns the error the
    /// one time recording stops; after that, does nothing.
    pub fn record(&mut self, buffer: &Buffer) -> Option<CastError> {
        let cast = self.cast.as_mut()?;
        let at = self.start.elapsed();
        let written = cast.frame(at, buffer).and_then(|()| cast.flush());
        self.stop_on(written)
    }

    /// Flushes what is buffered; call at the end of a run.
    pub fn finish(&mut self) -> Option<CastError> {
        let flushed = self.cast.as_mut()?.flush();
        self.stop_on(flushed)
    }

    /// Stops recording because of a failure outside the recorder (drawing);
    /// what was written stays.
    pub fn stop(&mut self) {
        if let Some(cast) = self.cast.as_mut() {
            let _ = cast.flush();
        }
        self.cast = None;
    }

    fn stop_on(&mut self, result: Result<(), CastError>) -> Option<CastError> {
        let e = result.err()?;
        tracing::warn!(path = %self.path.display(), error = %e, "recording stopped");
        self.cast = None;
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn buffer(lines: &[&str]) -> Buffer {
        Buffer::with_lines(lines.iter().copied())
    }

    #[test]
    fn first_frame_is_a_full_repaint_of_the_non_blank_cells() {
        let next = buffer(&["ab", " c"]);
        assert_eq!(
            ansi(None, &next),
            "\x1b[0m\x1b[?25l\x1b[H\x1b[2J\x1b[1;1Hab\x1b[2;2Hc"
        );
    }

    #[test]
    fn a_diff_writes_only_the_changed_cell() {
        let prev = buffer(&["hello", "world"]);
        let next = buffer(&["hello", "wOrld"]);
        assert_eq!(ansi(Some(&prev), &next), "\x1b[2;2HO");
        assert_eq!(ansi(Some(&next), &next), "", "nothing changed");
    }

    #[test]
    fn adjacent_changes_share_one_cursor_move() {
        let prev = buffer(&["abcd"]);
        let next = buffer(&["aXYd"]);
        assert_eq!(ansi(Some(&prev), &next), "\x1b[1;2HXY");
    }

    #[test]
    fn a_size_change_repaints() {
        let prev = buffer(&["ab"]);
        let next = buffer(&["abc"]);
        assert!(ansi(Some(&prev), &next).contains("\x1b[2J"));
    }

    #[test]
    fn colours_and_modifiers_become_sgr_and_are_reset_at_the_end() {
        let prev = Buffer::empty(Rect::new(0, 0, 4, 1));
        let mut next = prev.clone();
        next.set_string(0, 0, "a", Style::new().fg(Color::Red).bg(Color::Blue));
        next.set_string(
            1,
            0,
            "b",
            Style::new()
                .fg(Color::Indexed(208))
                .bg(Color::Rgb(1, 2, 3))
                .add_modifier(Modifier::BOLD | Modifier::DIM | Modifier::ITALIC),
        );
        next.set_string(
            2,
            0,
            "c",
            Style::new()
                .fg(Color::White)
                .bg(Color::DarkGray)
                .add_modifier(Modifier::REVERSED | Modifier::UNDERLINED),
        );
        next.set_string(3, 0, "d", Style::new().fg(Color::Gray));
        assert_eq!(
            ansi(Some(&prev), &next),
            "\x1b[1;1H\x1b[0;31;44ma\
             \x1b[0;1;2;3;38;5;208;48;2;1;2;3mb\
             \x1b[0;4;7;97;100mc\
             \x1b[0;37md\x1b[0m"
        );
    }

    #[test]
    fn a_styled_cell_followed_by_a_plain_one_switches_back() {
        let prev = Buffer::empty(Rect::new(0, 0, 2, 1));
        let mut next = prev.clone();
        next.set_string(0, 0, "a", Style::new().fg(Color::Green));
        next.set_string(1, 0, "b", Style::new());
        assert_eq!(ansi(Some(&prev), &next), "\x1b[1;1H\x1b[0;32ma\x1b[0mb");
    }

    #[test]
    fn a_wide_character_skips_the_cell_it_covers() {
        let prev = buffer(&["abcd"]);
        // ratatui puts the wide character in one cell and blanks the next.
        let next = buffer(&["a界d"]);
        assert_eq!(next[(2, 0)].symbol(), " ");
        // The covered cell is not written (the terminal blanks it itself);
        // the cursor is placed explicitly after the wide character.
        assert_eq!(ansi(Some(&prev), &next), "\x1b[1;2H界");
        let after = buffer(&["a界X"]);
        assert_eq!(ansi(Some(&next), &after), "\x1b[1;4HX");
        assert_eq!(
            ansi(None, &after),
            "\x1b[0m\x1b[?25l\x1b[H\x1b[2J\x1b[1;1Ha界\x1b[1;4HX"
        );
    }

    #[test]
    fn the_stream_has_a_header_then_events_and_skips_unchanged_frames() {
        let mut cast = Cast::new(Vec::new(), 1_700_000_000, "t");
        let a = buffer(&["ab"]);
        let b = buffer(&["aB"]);
        cast.frame(Duration::from_millis(0), &a).expect("write");
        cast.frame(Duration::from_millis(500), &a).expect("write");
        cast.frame(Duration::from_millis(1500), &b).expect("write");
        cast.frame(Duration::from_millis(2000), &buffer(&["abc"]))
            .expect("write");
        let text = String::from_utf8(cast.into_inner()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"version":2,"width":2,"height":1,"timestamp":1700000000,"title":"t","env":{"TERM":"xterm-256color","SHELL":"/bin/sh"}}"#
        );
        assert_eq!(
            lines[1],
            r#"[0.0,"o","\u001b[0m\u001b[?25l\u001b[H\u001b[2J\u001b[1;1Hab"]"#
        );
        assert_eq!(lines[2], r#"[1.5,"o","\u001b[1;2HB"]"#);
        assert_eq!(lines[3], r#"[2.0,"r","3x1"]"#);
        assert!(lines[4].starts_with(r#"[2.0,"o","\u001b[0m"#), "{}", lines[4]);
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_failed_write_stops_the_recording_once() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let target = CastTarget::new(dir.path().join("x.cast"));
        let mut recorder = Recorder::create(&target).expect("create");
        // /dev/full refuses every write: the first flush fails.
        let full = File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full (Linux)");
        recorder.cast = Some(Cast::new(BufWriter::new(full), 0, TITLE));
        assert!(recorder.record(&buffer(&["a"])).is_some());
        assert!(!recorder.is_recording());
        assert!(recorder.record(&buffer(&["b"])).is_none(), "reported once");
        assert!(recorder.finish().is_none());
    }

    #[test]
    fn an_unwritable_path_is_an_error_at_creation() {
        let target = CastTarget::new("/nonexistent-dir/x.cast");
        assert!(matches!(Recorder::create(&target), Err(CastError::Create { .. })));
    }
}
