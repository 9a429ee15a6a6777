//! The Drivers panel: who carries what, for how long.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use ratatui::Frame;

use super::{duration_text, selected_style};
use crate::model::nodes::parse_time;
use crate::model::orders::short_id;
use crate::model::{Model, Panel};

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let drivers = m.drivers();
    let selected = m.selected(Panel::Drivers);
    let rows = drivers.iter().map(|(node, d)| {
        let (what, style, since) = match &d.order_id {
            Some(order) => (
                format!("carrying {}", short_id(order)),
                Style::new().fg(Color::Yellow),
                d.since
                    .as_deref()
                    .and_then(parse_time)
                    .map(|t| duration_text(m.now - t))
                    .unwrap_or_default(),
            ),
            None => ("free".to_string(), Style::new().fg(Color::Green), String::new()),
        };
        Row::new(vec![
            Cell::from(d.driver.clone()).bold(),
            Cell::from(node.clone()),
            Cell::from(what).style(style),
            Cell::from(since),
        ])
    });
    let header = Row::new(["DRIVER", "NODE", "DOING", "FOR"]).dark_gray().bold();
    let widths = [
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(18),
        Constraint::Min(5),
    ];
    let index = selected.and_then(|s| drivers.iter().position(|(_, d)| d.driver == s));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(selected_style());
    frame.render_stateful_widget(table, area, &mut TableState::default().with_selected(index));
}
