//! The Nodes panel.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Cell, Row};
use ratatui::Frame;

use super::{draw_table, duration_text};
use crate::model::{Model, Panel, Shown};

/// The colour of a node state.
pub fn state_color(s: &Shown) -> Color {
    match s {
        Shown::Up => Color::Green,
        Shown::Starting | Shown::Stopping => Color::Yellow,
        Shown::Paused => Color::Magenta,
        Shown::Frozen => Color::LightBlue,
        Shown::Down => Color::DarkGray,
        Shown::Crashed(_) | Shown::Offline => Color::Red,
    }
}

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let ids = m.node_ids();
    let selected = m.selected(Panel::Nodes);
    // Narrow screens drop columns rather than cut the id: two kitchens
    // must stay apart at 60 columns.
    let width = area.width.saturating_sub(2);
    let wide = width >= 110;
    let roomy = width >= 76;
    let id_w = ids
        .iter()
        .map(|id| id.chars().count() + 2)
        .max()
        .unwrap_or(4)
        .max(4) as u16;
    let rows = ids.iter().filter_map(|id| m.nodes.get(id)).map(|n| {
        let shown = n.shown(m.now);
        let alive = shown.is_alive();
        let uptime = match (alive, n.since) {
            (true, Some(since)) => duration_text(m.now - since),
            _ => "-".into(),
        };
        let rate = if alive && n.role != "broker" {
            format!("{:.1}", n.rate)
        } else {
            "-".into()
        };
        let pid = match (alive, n.pid) {
            (true, Some(pid)) => pid.to_string(),
            _ => "-".into(),
        };
        // What curl needs: the node's HTTP address, without the scheme.
        let http = n
            .figure_str("http")
            .map(|u| u.trim_start_matches("http://").to_string())
            .unwrap_or_else(|| "-".into());
        let here = if n.owned { "" } else { " ⇢" };
        let mut cells = vec![
            Cell::from(n.role.clone()),
            Cell::from(format!("{}{here}", n.id)).bold(),
            Cell::from(pid),
            Cell::from(shown.label()).style(Style::new().fg(state_color(&shown))),
            Cell::from(uptime),
            Cell::from(rate),
            Cell::from(http),
            Cell::from(n.faults_text(m.now)).fg(Color::Yellow),
        ];
        keep(&mut cells, wide, roomy);
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(8),
        Constraint::Length(id_w),
        Constraint::Length(7),
        Constraint::Length(17),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Min(6),
    ];
    keep(&mut widths, wide, roomy);
    let mut header = super::sorted_header(
        &["ROLE", "ID", "PID", "STATE", "UP", "MSG/S", "HTTP", "FAULTS"],
        m.ui.node_sort.column(),
    );
    keep(&mut header, wide, roomy);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let index = selected.and_then(|s| ids.iter().position(|id| *id == s));
    draw_table(frame, area, &header, &widths, rows, block, index);
}

/// Drops the columns a narrow panel has no room for: HTTP below 110
/// columns, ROLE and UP below 76 (the id says the role).
fn keep<T>(columns: &mut Vec<T>, wide: bool, roomy: bool) {
    let drop: &[usize] = match (wide, roomy) {
        (true, _) => &[],
        (false, true) => &[6],
        (false, false) => &[6, 4, 0],
    };
    for i in drop {
        columns.remove(*i);
    }
}
