//! The Drivers panel: who carries what, for how long.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Cell, Row};
use ratatui::Frame;

use super::{draw_table, duration_text};
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
    let widths = [
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(18),
        Constraint::Min(5),
    ];
    let index = selected.and_then(|s| drivers.iter().position(|(_, d)| d.driver == s));
    draw_table(
        frame,
        area,
        &["DRIVER", "NODE", "DOING", "FOR"],
        &widths,
        rows,
        block,
        index,
    );
}
