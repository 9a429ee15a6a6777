//! The Events & alerts panel: newest first, alerts in red.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::clock;
use crate::model::{Level, Model};

/// The style of a log level.
pub fn level_style(level: Level) -> Style {
    match level {
        Level::Event => Style::new(),
        Level::Info => Style::new().fg(Color::Cyan),
        Level::Warn => Style::new().fg(Color::Yellow),
        Level::Alert => Style::new().fg(Color::Red),
    }
}

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let height = area.height.saturating_sub(2) as usize;
    let alerts_only = m.ui.alerts_only;
    let lines: Vec<Line> = m
        .log
        .newest()
        .filter(|l| !alerts_only || l.level == Level::Alert)
        .skip(m.ui.events_scroll)
        .take(height)
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", clock(l.at)), Style::new().fg(Color::DarkGray)),
                Span::styled(l.text.clone(), level_style(l.level)),
            ])
        })
        .collect();
    let mut title = format!(" {} alerts ", m.log.alerts());
    if alerts_only {
        title = format!(" alerts only ({}) · a: all ", m.log.alerts());
    }
    if m.ui.events_scroll > 0 {
        title = format!(" ↑ {} newer · g: newest ·{title}", m.ui.events_scroll);
    }
    let block = block.title_bottom(Line::from(title).right_aligned());
    // Wrapped, so a long line (a saga step's reason) is read in full.
    let text = Paragraph::new(lines).block(block).wrap(Wrap { trim: false });
    frame.render_widget(text, area);
}
