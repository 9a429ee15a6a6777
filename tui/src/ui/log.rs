//! The log view (`l` on a node): the tail of its log file, following the
//! end unless scrolled, filtered by `/`, long lines cut or wrapped (`w`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use crate::model::Model;

/// The style of a log line, from the level word tracing writes in it.
fn line_style(line: &str) -> Style {
    let head: String = line.chars().take(40).collect();
    if head.contains("ERROR") {
        Style::new().fg(Color::Red)
    } else if head.contains(" WARN") {
        Style::new().fg(Color::Yellow)
    } else if head.contains("DEBUG") || head.contains("TRACE") {
        Style::new().fg(Color::DarkGray)
    } else {
        Style::new()
    }
}

pub(super) fn draw(frame: &mut Frame, m: &Model, id: &str, area: Rect) {
    let view = &m.ui.log_view;
    let tail = &m.log_tail;
    let following = if view.scroll == 0 { "following" } else { "scrolled" };
    let mut title = format!(" Log {id} · {following} ");
    if !view.search.is_empty() || view.searching {
        let cursor = if view.searching { "▏" } else { "" };
        title = format!(" Log {id} · /{}{cursor} · {following} ", view.search);
    }
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(title, Style::new().bold().fg(Color::Cyan)));
    let inner_h = area.height.saturating_sub(2) as usize;
    if tail.id != id {
        let text = Paragraph::new("reading the log…").block(block);
        frame.render_widget(text, area);
        return;
    }
    if let Some(error) = &tail.error {
        let text = Paragraph::new(format!("{}: {error}", tail.path))
            .wrap(Wrap { trim: true })
            .block(block);
        frame.render_widget(text, area);
        return;
    }
    let shown: Vec<&String> = tail.shown(view).collect();
    // The window ends `scroll` lines before the end.
    let end = shown.len().saturating_sub(view.scroll);
    let start = end.saturating_sub(inner_h.max(1));
    let lines: Vec<Line> = shown[start..end]
        .iter()
        .map(|l| Line::from(Span::styled(l.to_string(), line_style(l))))
        .collect();
    let footer = format!(
        " lines {}-{} of {}{} · {} ",
        start + 1,
        end,
        shown.len(),
        if view.search.is_empty() { "" } else { " matching" },
        if view.wrap { "wrapped" } else { "cut (w wraps)" },
    );
    let block = block.title_bottom(Line::from(footer).right_aligned().dark_gray());
    let mut text = Paragraph::new(lines).block(block);
    if view.wrap {
        text = text.wrap(Wrap { trim: false });
        // Wrapped lines take more rows: keep the last ones in view.
        let width = area.width.saturating_sub(2).max(1) as usize;
        let rows: usize = shown[start..end]
            .iter()
            .map(|l| l.chars().count().div_ceil(width).max(1))
            .sum();
        text = text.scroll((rows.saturating_sub(inner_h) as u16, 0));
    }
    frame.render_widget(text, area);
}
