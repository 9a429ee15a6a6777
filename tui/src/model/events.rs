//! The Events & alerts panel's data: a bounded log of what happened, with
//! alerts (dead letters, breaker changes, crashes, refused orders) marked.

use std::collections::VecDeque;

use time::OffsetDateTime;

/// Lines kept.
pub const LOG_CAP: usize = 500;

/// How a line is highlighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A domain event.
    Event,
    /// Something the operator or the supervisor did.
    Info,
    /// Worth a look (a breaker half-open, a node stopping).
    Warn,
    /// Something failed (DLQ, breaker open, crash, 5xx).
    Alert,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When.
    pub at: OffsetDateTime,
    /// Highlight.
    pub level: Level,
    /// The text.
    pub text: String,
}

/// The log, newest last.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    lines: VecDeque<LogLine>,
    alerts: u64,
    pushed: u64,
}

impl EventLog {
    /// Appends a line, dropping the oldest beyond [`LOG_CAP`].
    pub fn push(&mut self, at: OffsetDateTime, level: Level, text: impl Into<String>) {
        if self.lines.len() == LOG_CAP {
            self.lines.pop_front();
        }
        if level == Level::Alert {
            self.alerts += 1;
        }
        self.pushed += 1;
        self.lines.push_back(LogLine {
            at,
            level,
            text: text.into(),
        });
    }

    /// The lines, newest first.
    pub fn newest(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter().rev()
    }

    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines pushed since the start (dropped ones included).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Alerts since the start.
    pub fn alerts(&self) -> u64 {
        self.alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_and_counts_alerts() {
        let mut log = EventLog::default();
        for i in 0..LOG_CAP + 10 {
            let level = if i % 2 == 0 { Level::Alert } else { Level::Event };
            log.push(OffsetDateTime::UNIX_EPOCH, level, format!("line {i}"));
        }
        assert_eq!(log.len(), LOG_CAP);
        assert_eq!(log.newest().next().map(|l| l.text.as_str()), Some("line 509"));
        assert_eq!(log.alerts(), 255);
    }
}
