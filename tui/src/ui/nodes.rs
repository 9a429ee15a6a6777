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
        let here = if n.owned { "" } else { " ⇢" };
        Row::new(vec![
            Cell::from(n.role.clone()),
            Cell::from(format!("{}{here}", n.id)).bold(),
            Cell::from(pid),
            Cell::from(shown.label()).style(Style::new().fg(state_color(&shown))),
            Cell::from(uptime),
            Cell::from(rate),
            Cell::from(n.faults_text(m.now)).fg(Color::Yellow),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(17),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Min(6),
    ];
    let index = selected.and_then(|s| ids.iter().position(|id| *id == s));
    draw_table(
        frame,
        area,
        &["ROLE", "ID", "PID", "STATE", "UP", "MSG/S", "FAULTS"],
        &widths,
        rows,
        block,
        index,
    );
}
