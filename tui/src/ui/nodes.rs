//! The Nodes panel.

use contracts::trust::role;
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

/// The columns, each with the least panel width it is shown at: narrow
/// screens drop columns rather than cut the id (two kitchens must stay
/// apart at 60 columns).
const COLUMNS: [(&str, u16); 11] = [
    ("ROLE", 76),
    ("ID", 0),
    ("PID", 0),
    ("STATE", 0),
    ("UP", 76),
    ("MSG/S", 0),
    ("DONE", 96),
    ("WORK 1m", 124),
    ("HTTP", 104),
    ("METRICS", 150),
    ("FAULTS", 0),
];

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let ids = m.node_ids();
    let selected = m.selected(Panel::Nodes);
    let width = area.width.saturating_sub(2);
    let shown_col: Vec<bool> = COLUMNS.iter().map(|(_, min)| width >= *min).collect();
    let keep = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .zip(&shown_col)
            .filter(|(_, keep)| **keep)
            .map(|(c, _)| c)
            .collect()
    };
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
        let busy = alive && n.role != role::BROKER;
        let rate = if busy {
            format!("{:.1}", n.rate)
        } else {
            "-".into()
        };
        let pid = match (alive, n.pid) {
            (true, Some(pid)) => pid.to_string(),
            _ => "-".into(),
        };
        // Which kitchen cooked how many: what it handled since it started.
        let done = match (&n.status, n.role.as_str()) {
            (_, "broker") | (None, _) => "-".into(),
            (Some(s), _) => s.handled.to_string(),
        };
        let work = crate::model::queues::sparkline(&n.work, 12);
        // What curl needs: the node's HTTP address, without the scheme.
        let http = n
            .http()
            .map(|u| u.trim_start_matches("http://").to_string())
            .unwrap_or_else(|| "-".into());
        // Where Prometheus scrapes it (assets/prometheus).
        let metrics = n
            .metrics_url()
            .map(|u| u.trim_start_matches("http://").to_string())
            .unwrap_or_else(|| "-".into());
        let here = if n.owned { "" } else { " ⇢" };
        Row::new(keep(vec![
            Cell::from(n.role.clone()),
            Cell::from(format!("{}{here}", n.id)).bold(),
            Cell::from(pid),
            Cell::from(shown.label()).style(Style::new().fg(state_color(&shown))),
            Cell::from(uptime),
            Cell::from(rate),
            Cell::from(done),
            Cell::from(work).fg(Color::Cyan),
            Cell::from(http),
            Cell::from(metrics).fg(Color::DarkGray),
            Cell::from(n.faults_text(m.now)).fg(Color::Yellow),
        ]))
    });
    let all_widths = [
        Constraint::Length(8),
        Constraint::Length(id_w),
        Constraint::Length(7),
        Constraint::Length(17),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(16),
        Constraint::Length(24),
        Constraint::Min(6),
    ];
    let widths: Vec<Constraint> = all_widths
        .iter()
        .zip(&shown_col)
        .filter(|(_, keep)| **keep)
        .map(|(w, _)| *w)
        .collect();
    let names: Vec<&str> = COLUMNS
        .iter()
        .zip(&shown_col)
        .filter(|(_, keep)| **keep)
        .map(|((name, _), _)| *name)
        .collect();
    let header = super::sorted_header(&names, m.ui.node_sort.column());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let index = selected.and_then(|s| ids.iter().position(|id| *id == s));
    draw_table(frame, area, &header, &widths, rows, block, index);
}
