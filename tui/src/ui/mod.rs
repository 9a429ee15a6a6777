//! The view: draws the model, and nothing else. Every function here reads
//! the [`Model`] and writes to the frame; none changes anything.
//!
//! Two layouts: at 100×30 and more every panel is on screen; below that the
//! focused panel fills the body with a tab bar above it and the latest
//! events below, so nothing is cut off at 80×24.

mod chaos;
mod detail;
mod drivers;
mod events;
mod log;
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
use crate::update::Watchers;

/// Lines in the help popup (keys clamp its scroll to this).
pub const HELP_LINES: usize = popups::HELP.len();

/// The width and height from which every panel is shown at once.
pub const FULL_LAYOUT: (u16, u16) = (100, 30);

/// Draws the whole screen, with the bars of what watches it (the
/// scenario being played, chaos mode).
pub fn draw(frame: &mut Frame, m: &Model, w: &Watchers) {
    let area = frame.area();
    let play = w.play.as_ref();
    let chaos = w.chaos.as_ref().filter(|_| m.ui.chaos_bar);
    let [header, body, bar, chaos_bar, footer] = screen(play.is_some(), chaos.is_some(), area);
    draw_header(frame, m, header);
    draw_footer(frame, m, footer);
    if let Some(play) = play {
        scenario::draw_bar(frame, play, bar);
    }
    if let Some(c) = chaos {
        chaos::draw_bar(frame, c, m.now, chaos_bar);
    }
    match &m.ui.detail {
        Some(Detail::Order(id)) => detail::draw_order(frame, m, id, body),
        Some(Detail::Log(id)) => log::draw(frame, m, id, body),
        Some(Detail::DeadLetters { queue, cursor }) => {
            detail::draw_dead_letters(frame, m, queue, *cursor, body)
        }
        None => {
            if let Some(tabs) = tab_bar(full(area), body) {
                draw_tabs(frame, m, tabs);
            }
            for (panel, rect) in panel_areas(m, full(area), body) {
                draw_panel(frame, m, panel, rect);
            }
        }
    }
    if let Some(play) = play.filter(|_| m.ui.popup.is_none() && !m.ui.verdict_hidden) {
        scenario::draw_verdict(frame, play, body);
    }
    popups::draw(frame, m, area);
}

/// Header, body, scenario bar, chaos bar and footer.
fn screen(playing: bool, chaos: bool, area: Rect) -> [Rect; 5] {
    let bar_h = if playing { scenario::HEIGHT } else { 0 };
    let chaos_h = if chaos { chaos::HEIGHT } else { 0 };
    Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(bar_h),
        Constraint::Length(chaos_h),
        Constraint::Length(2),
    ])
    .areas(area)
}

/// Whether a screen of `area` shows every panel at once.
fn full(area: Rect) -> bool {
    area.width >= FULL_LAYOUT.0 && area.height >= FULL_LAYOUT.1
}

/// Where each panel is drawn in the body: every one at full size, else the
/// focused one with the latest events below it. Shared by the view and by
/// mouse clicks, so a click finds what was drawn under it.
fn panel_areas(m: &Model, full: bool, body: Rect) -> Vec<(Panel, Rect)> {
    if full {
        let nodes_h = (m.nodes.len() as u16 + 3).clamp(6, 12);
        let mid_h = (queues::row_count(m).max(m.drivers().len()) as u16 + 3).clamp(6, 14);
        let [top, mid, bottom] = Layout::vertical([
            Constraint::Length(nodes_h),
            Constraint::Length(mid_h),
            Constraint::Min(5),
        ])
        .areas(body);
        let [q, d] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(mid);
        let [o, e] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
        return vec![
            (Panel::Nodes, top),
            (Panel::Queues, q),
            (Panel::Drivers, d),
            (Panel::Orders, o),
            (Panel::Events, e),
        ];
    }
    let focus = m.ui.focused();
    let events_h = if focus == Panel::Events { 0 } else { 6 };
    let [_tabs, main, events] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(events_h),
    ])
    .areas(body);
    let mut areas = vec![(focus, main)];
    if events_h > 0 {
        areas.push((Panel::Events, events));
    }
    areas
}

/// The compact layout's tab bar.
fn tab_bar(full: bool, body: Rect) -> Option<Rect> {
    (!full).then_some(Rect { height: 1, ..body })
}

fn draw_tabs(frame: &mut Frame, m: &Model, tabs: Rect) {
    let focus = m.ui.focused();
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
}

/// What a click at (`x`, `y`) on a `width`×`height` screen lands on: a
/// panel and, on a table row, that row's index in the panel's list
/// ([`Model::selectable`]), found the way the view scrolled it.
pub fn panel_at(m: &Model, width: u16, height: u16, x: u16, y: u16) -> Option<(Panel, Option<usize>)> {
    let area = Rect::new(0, 0, width, height);
    let [_, body, _, _, _] = screen(m.ui.playing, m.ui.chaos_bar, area);
    if m.ui.detail.is_some() {
        return None;
    }
    let inside = |r: &Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
    if let Some(tabs) = tab_bar(full(area), body).filter(|t| inside(t)) {
        // The tab bar: " Nodes  │  Queues ..." left to right.
        let mut left = tabs.x;
        for p in Panel::ALL {
            let w = p.title().chars().count() as u16 + 2;
            if x < left + w {
                return Some((p, None));
            }
            left += w + 3;
        }
        return None;
    }
    let (panel, rect) = panel_areas(m, full(area), body)
        .into_iter()
        .find(|(_, r)| inside(r))?;
    // Border, then the header row of a table.
    let drawn = (y >= rect.y + 2 && y + 1 < rect.y + rect.height).then(|| (y - rect.y - 2) as usize);
    let first = match panel {
        // Only Orders scrolls by itself (the others fit their rows).
        Panel::Orders => {
            let position = m
                .selected(Panel::Orders)
                .and_then(|s| m.order_rows().iter().position(|e| e.id() == s))
                .unwrap_or(0);
            orders::first_row(position, rect.height.saturating_sub(3) as usize)
        }
        _ => 0,
    };
    Some((panel, drawn.map(|r| first + r)))
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
        Some(Detail::Order(_)) => hints.extend([
            ("esc", "back"),
            ("j/k", "prev/next order"),
            ("J/K", "scroll"),
            ("[/]", "history"),
        ]),
        Some(Detail::Log(_)) => hints.extend([
            ("esc", "back"),
            ("j/k", "scroll"),
            ("G", "follow"),
            ("/", "search"),
            ("w", "wrap"),
        ]),
        Some(Detail::DeadLetters { .. }) => hints.extend([
            ("esc", "back"),
            ("j/k", "select"),
            ("r", "re-queue"),
            ("A", "re-queue all"),
        ]),
        None => match m.ui.focused() {
            Panel::Nodes => hints.extend([
                ("l", "log"),
                ("s", "start"),
                ("x", "stop"),
                ("K", "kill -9"),
                ("p", "pause"),
                ("r", "restart"),
                ("+/-", "scale"),
                ("f", "faults"),
                ("S", "sort"),
            ]),
            Panel::Queues => hints.push(("enter", "dead letters")),
            Panel::Orders => hints.extend([("enter", "detail"), ("/", "filter"), ("S", "sort")]),
            Panel::Events => hints.extend([("j/k", "scroll"), ("a", "alerts only")]),
            Panel::Drivers => {}
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

/// Table headers with the sort column marked: `STATE▾`.
fn sorted_header(names: &[&str], by: &str) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            if *n == by {
                format!("{n}▾")
            } else {
                n.to_string()
            }
        })
        .collect()
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
