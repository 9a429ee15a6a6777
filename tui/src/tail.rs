//! Reading the end of a node's log or output file, for the log view and
//! for a crash alert's last words. Only the file's tail is read, however
//! long the node has been running.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::model::LogTail;

/// How much of the end of a log file the log view reads.
pub const TAIL_BYTES: u64 = 256 * 1024;

/// The complete lines in the last `max_bytes` of `path`, oldest first (a
/// line cut by the start of the window is left out).
pub fn lines(path: &Path, max_bytes: u64) -> std::io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    Ok(lines)
}

/// The size of node `id`'s log file, if it has one: the shell reads the
/// tail again only when this changed.
pub fn node_log_len(log_dir: &Path, id: &str) -> Option<u64> {
    std::fs::metadata(log_dir.join(format!("{id}.log")))
        .ok()
        .map(|m| m.len())
}

/// Node `id`'s log tail from `<log_dir>/<id>.log`, for [`Msg::LogTail`].
///
/// [`Msg::LogTail`]: crate::msg::Msg::LogTail
pub fn node_log(log_dir: &Path, id: &str) -> LogTail {
    let path = log_dir.join(format!("{id}.log"));
    let (lines, error) = match lines(&path, TAIL_BYTES) {
        Ok(lines) => (lines, None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            Vec::new(),
            Some(
                "no log file here: a node started elsewhere logs where it was started (its --log-file)"
                    .into(),
            ),
        ),
        Err(e) => (Vec::new(), Some(format!("cannot read it: {e}"))),
    };
    LogTail {
        id: id.to_string(),
        path: path.display().to_string(),
        lines,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_whole_lines_of_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        assert_eq!(lines(&path, 1024).unwrap(), vec!["first line", "second", "third"]);
        assert_eq!(
            lines(&path, 12).unwrap(),
            vec!["third"],
            "the cut 'second' is left out"
        );
    }

    #[test]
    fn a_missing_log_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let tail = node_log(dir.path(), "ghost");
        assert!(tail.lines.is_empty());
        assert!(tail.error.is_some_and(|e| e.contains("started elsewhere")));
    }
}
