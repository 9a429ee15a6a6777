//! The view: draws the model, and nothing else. Every function here reads
//! the [`Model`] and writes to the frame; none changes anything.
//!
//! Two layouts: at 100×30 and more every panel is on screen; below that the
//! focused panel fills the body with a tab bar above it and the latest
//! events below, so nothing is cut off at 80×24.

mod detail;
mod drivers;
mod events;
mod nodes;
mod orders;
mod popups;
mod queues;
mod scenario;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::{Detail, Model, Panel};

/// The width and height from which every panel is shown at once.
pub const FULL_LAYOUT: (u16, u16) = (100, 30);

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, m: &Model) {
    let area = frame.area();
    let bar_h = if m.play.is_some() { scenario::HEIGHT } else { 0 };
    let [header, body, bar, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(bar_h),
        Constraint::Length(2),
    ])
    .areas(area);
    draw_header(frame, m, header);
    draw_footer(frame, m, footer);
    if let Some(play) = &m.play {
        scenario::draw_bar(frame, play, bar);
    }
    match &m.ui.detail {
        Some(Detail::Order(id)) => detail::draw_order(frame, m, id, body),
        Some(Detail::DeadLetters { queue, cursor }) => {
            detail::draw_dead_letters(frame, m, queue, *cursor, body)
        }
        None if area.width >= FULL_LAYOUT.0 && area.height >= FULL_LAYOUT.1 => draw_full(frame, m, body),
        None => draw_compact(frame, m, body),
    }
    if let Some(play) = m
        .play
        .as_ref()
        .filter(|_| m.ui.popup.is_none() && !m.ui.verdict_hidden)
    {
        scenario::draw_verdict(frame, play, body);
    }
    popups::draw(frame, m, area);
}

fn draw_full(frame: &mut Frame, m: &Model, area: Rect) {
    let nodes_h = (m.nodes.len() as u16 + 3).clamp(6, 12);
    let mid_h = (queues::row_count(m).max(m.drivers().len()) as u16 + 3).clamp(6, 14);
    let [top, mid, bottom] = Layout::vertical([
        Constraint::Length(nodes_h),
        Constraint::Length(mid_h),
        Constraint::Min(5),
    ])
    .areas(area);
    let [q, d] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(mid);
    let [o, e] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    draw_panel(frame, m, Panel::Nodes, top);
    draw_panel(frame, m, Panel::Queues, q);
    draw_panel(frame, m, Panel::Drivers, d);
    draw_panel(frame, m, Panel::Orders, o);
    draw_panel(frame, m, Panel::Events, e);
}

fn draw_compact(frame: &mut Frame, m: &Model, area: Rect) {
    let focus = m.ui.focused();
    let events_h = if focus == Panel::Events { 0 } else { 6 };
    let [tabs, main, events] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(events_h),
    ])
    .areas(area);
    let mut spans = Vec::new();
    for (i, p) in Panel::ALL.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" │ ").dark_gray());
        }
        let style = if *p == focus {
            Style::new().fg(Color::Black).bg(Color::Cyan).bold()
        } else {
            Style::new().fg(Color::Gray)
        };
        spans.push(Span::styled(format!(" {} ", p.title()), style));
    }
    frame.render_widget(Line::from(spans), tabs);
    draw_panel(frame, m, focus, main);
    if events_h > 0 {
        events::draw(frame, m, events, block(m, Panel::Events));
    }
}

fn draw_panel(frame: &mut Frame, m: &Model, panel: Panel, area: Rect) {
    let b = block(m, panel);
    match panel {
        Panel::Nodes => nodes::draw(frame, m, area, b),
        Panel::Queues => queues::draw(frame, m, area, b),
        Panel::Orders => orders::draw(frame, m, area, b),
        Panel::Drivers => drivers::draw(frame, m, area, b),
        Panel::Events => events::draw(frame, m, area, b),
    }
}

/// A panel's frame: bright and titled in bold when focused.
fn block(m: &Model, panel: Panel) -> Block<'static> {
    let focused = m.ui.focused() == panel;
    let b = Block::bordered().border_type(BorderType::Rounded);
    if focused {
        b.border_style(Style::new().fg(Color::Cyan)).title(Span::styled(
            format!(" {} ", panel.title()),
            Style::new().bold().fg(Color::Cyan),
        ))
    } else {
        b.border_style(Style::new().fg(Color::DarkGray))
            .title(Span::styled(
                format!(" {} ", panel.title()),
                Style::new().fg(Color::Gray),
            ))
    }
}

/// Draws a table in its frame with the header in grey and row `selected`
/// reversed; ratatui scrolls to keep that row on screen.
fn draw_table<'a>(
    frame: &mut Frame,
    area: Rect,
    header: &[&'a str],
    widths: &[Constraint],
    rows: impl IntoIterator<Item = Row<'a>>,
    block: Block<'a>,
    selected: Option<usize>,
) {
    let header = Row::new(header.iter().copied()).dark_gray().bold();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_stateful_widget(table, area, &mut TableState::default().with_selected(selected));
}

fn draw_header(frame: &mut Frame, m: &Model, area: Rect) {
    let feed = if m.feed_up {
        Span::styled("● ", Style::new().fg(Color::Green))
    } else {
        Span::styled("○ ", Style::new().fg(Color::Red))
    };
    let counts = m.orders.counts();
    let n = |s: &str| counts.get(s).copied().unwrap_or(0);
    let done = n("delivered");
    let failed = n("rejected") + n("cancelled") + n("failed");
    let active = m.orders.total() - done - failed;
    let title = Span::styled(
        " Pizza Platform ",
        Style::new().bold().fg(Color::Black).bg(Color::Yellow),
    );
    let mut first = vec![title, Span::raw(" "), feed, Span::raw(m.info.broker.clone())];
    let total = m.orders.total();
    // The long form when it fits, else the short one: nothing is cut.
    let long = format!("  orders {total} · {active} active · {done} delivered · {failed} ended undelivered");
    let width = area.width as usize;
    let used = 18 + m.info.broker.chars().count();
    if used + long.chars().count() <= width {
        first.extend([
            Span::raw("  orders ").dark_gray(),
            Span::raw(total.to_string()).bold(),
            Span::raw(format!(" · {active} active · ")),
            Span::styled(format!("{done} delivered"), Style::new().fg(Color::Green)),
            Span::raw(" · "),
            Span::styled(format!("{failed} ended undelivered"), Style::new().fg(Color::Red)),
        ]);
    } else {
        first.extend([
            Span::raw(format!("  {total} orders ")),
            Span::raw(format!("{active} active ")).yellow(),
            Span::styled(format!("{done}✓ "), Style::new().fg(Color::Green)),
            Span::styled(format!("{failed}✗"), Style::new().fg(Color::Red)),
        ]);
    }
    if m.placing > 0 {
        first.push(Span::raw(format!(" +{}", m.placing)).yellow());
    }
    if m.ui.frozen {
        first.push(Span::raw(" "));
        first.push(Span::styled(
            " FROZEN ",
            Style::new().bold().fg(Color::Black).bg(Color::Magenta),
        ));
    }
    let mut second = vec![
        Span::raw(" data ").dark_gray(),
        Span::raw(m.info.data_dir.clone()),
    ];
    if 7 + m.info.data_dir.chars().count() + 7 + m.info.log_dir.chars().count() <= width {
        second.push(Span::raw("  logs ").dark_gray());
        second.push(Span::raw(m.info.log_dir.clone()));
    } else {
        second.push(Span::raw("  (logs in logs/)").dark_gray());
    }
    let second = Line::from(second);
    frame.render_widget(Paragraph::new(vec![Line::from(first), second]), area);
}

fn draw_footer(frame: &mut Frame, m: &Model, area: Rect) {
    let [status, keys] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let status_line = if m.ui.filtering {
        Line::from(vec![
            Span::raw(" / ").bold().fg(Color::Cyan),
            Span::raw(m.ui.filter.clone()),
            Span::raw("▏").fg(Color::Cyan),
            Span::raw("  enter apply · esc clear").dark_gray(),
        ])
    } else if let Some(flash) = &m.ui.flash {
        Line::from(Span::raw(format!(" {flash}")).fg(Color::Yellow))
    } else if !m.ui.filter.is_empty() {
        Line::from(vec![
            Span::raw(" filter ").dark_gray(),
            Span::raw(m.ui.filter.clone()).fg(Color::Cyan),
            Span::raw("  (esc clears)").dark_gray(),
        ])
    } else {
        Line::default()
    };
    frame.render_widget(status_line, status);
    frame.render_widget(hint_line(&key_hints(m), area.width), keys);
}

/// The keys that apply now, most useful first.
pub fn key_hints(m: &Model) -> Vec<(&'static str, &'static str)> {
    if m.ui.popup.is_some() {
        return Vec::new();
    }
    let mut hints = Vec::new();
    match &m.ui.detail {
        Some(Detail::Order(_)) => hints.extend([("esc", "back"), ("j/k", "prev/next order")]),
        Some(Detail::DeadLetters { .. }) => hints.extend([
            ("esc", "back"),
            ("j/k", "select"),
            ("r", "re-queue"),
            ("A", "re-queue all"),
        ]),
        None => match m.ui.focused() {
            Panel::Nodes => hints.extend([
                ("s", "start"),
                ("x", "stop"),
                ("K", "kill -9"),
                ("p", "pause"),
                ("r", "restart"),
                ("+/-", "scale"),
                ("f", "faults"),
            ]),
            Panel::Queues => hints.push(("enter", "dead letters")),
            Panel::Orders => hints.extend([("enter", "detail"), ("/", "filter")]),
            Panel::Drivers | Panel::Events => {}
        },
    }
    hints.extend([
        ("o", "order"),
        ("O", "burst"),
        ("tab", "panel"),
        ("space", "freeze"),
        ("q", "quit"),
    ]);
    hints
}

/// Key hints that fit in `width`, always ending with `?` for the rest.
fn hint_line(hints: &[(&str, &str)], width: u16) -> Line<'static> {
    let help = " ? help";
    let mut used = help.len();
    let mut spans = Vec::new();
    for (key, what) in hints {
        let len = key.chars().count() + what.chars().count() + 2;
        if used + len > width as usize {
            break;
        }
        used += len;
        spans.push(Span::styled(
            format!(" {key}"),
            Style::new().fg(Color::Cyan).bold(),
        ));
        spans.push(Span::raw(format!(" {what}")).dark_gray());
    }
    spans.push(Span::styled(" ?", Style::new().fg(Color::Cyan).bold()));
    spans.push(Span::raw(" help").dark_gray());
    Line::from(spans)
}

/// "12s", "3m05s", "1h02m".
pub fn duration_text(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// "HH:MM:SS" (UTC, as every timestamp on the wire).
pub fn clock(t: time::OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}
