//! The Orders panel: most recent first, filtered with `/`.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Row};
use ratatui::Frame;

use super::{draw_table, duration_text};
use crate::model::orders::short_id;
use crate::model::{Model, Panel};

/// The first row on screen when row `position` is selected and `height`
/// rows fit: the view scrolls only as far as it must. Shared with mouse
/// clicks, which must find the row that was drawn where they landed.
pub fn first_row(position: usize, height: usize) -> usize {
    (position + 1).saturating_sub(height.max(1))
}

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
    let listed = m.order_rows();
    let position = selected
        .as_deref()
        .and_then(|s| listed.iter().position(|e| e.id() == s))
        .unwrap_or(0);
    let start = first_row(position, height);
    // Build only the rows on screen: there may be thousands.
    let rows = listed.iter().skip(start).take(height).map(|e| {
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
    let kept = m.orders.detailed();
    let total = m.orders.total();
    let mut footer = format!(" {kept} shown ");
    if total > kept as u64 {
        footer = format!(" {kept} recent of {total} ");
    }
    if !filter.is_empty() {
        // What the filter leaves, not what there is.
        footer = format!(" filter: {filter} · {} of {kept} match ", listed.len());
    }
    let block = block.title_bottom(Line::from(footer).right_aligned());
    let index = (!listed.is_empty() && selected.is_some()).then(|| position - start);
    let header = super::sorted_header(
        &["ORDER", "STATE", "AGE", "KITCHEN", "DRIVER"],
        m.ui.order_sort.column(),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    draw_table(frame, area, &header, &widths, rows, block, index);
}
