//! The Orders panel: most recent first, filtered with `/`.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row};
use ratatui::Frame;

use super::{draw_table, duration_text};
use crate::model::orders::short_id;
use crate::model::{Model, Panel};

/// The colour of an order state.
pub fn state_color(state: &str) -> Color {
    match state {
        "delivered" => Color::Green,
        "rejected" | "cancelled" | "failed" => Color::Red,
        "cancelling" => Color::Magenta,
        "?" => Color::DarkGray,
        _ => Color::Yellow,
    }
}

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let height = area.height.saturating_sub(3) as usize;
    let filter = m.ui.filter.as_str();
    let selected = m.selected(Panel::Orders);
    // Build only the rows on screen: there may be thousands.
    let position = selected
        .as_deref()
        .and_then(|s| m.orders.recent(filter).position(|e| e.id() == s))
        .unwrap_or(0);
    let start = (position + 1).saturating_sub(height.max(1));
    let rows = m.orders.recent(filter).skip(start).take(height).map(|e| {
        let state = e.state_label();
        let held = if e.fold.held_back() > 0 {
            format!(" +{} held", e.fold.held_back())
        } else {
            String::new()
        };
        Row::new(vec![
            Cell::from(short_id(e.id()).to_string()).bold(),
            Cell::from(format!("{state}{held}")).style(Style::new().fg(state_color(state))),
            Cell::from(duration_text(e.age(m.now))),
            Cell::from(e.fold.kitchen().unwrap_or("-").to_string()),
            Cell::from(e.fold.driver().unwrap_or("-").to_string()),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(17),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Min(6),
    ];
    let shown = m.orders.detailed();
    let total = m.orders.total();
    let mut footer = format!(" {shown} shown ");
    if total > shown as u64 {
        footer = format!(" {shown} recent of {total} ");
    }
    if !filter.is_empty() {
        footer = format!(" filter: {filter} ·{footer}");
    }
    let block = block.title_bottom(Line::from(footer).right_aligned());
    let index = selected.map(|_| position - start);
    draw_table(
        frame,
        area,
        &["ORDER", "STATE", "AGE", "KITCHEN", "DRIVER"],
        &widths,
        rows,
        block,
        index,
    );
}
