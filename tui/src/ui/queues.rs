//! The Queues panel: each work queue, its consumers and its DLQ, from the
//! keeper's figures, with a minute of depth as a sparkline.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Cell, Row};
use ratatui::Frame;

use super::draw_table;
use crate::model::queues::sparkline;
use crate::model::{Model, Panel};

/// Width of the sparkline column.
const SPARK: u16 = 20;

/// Rows the panel needs: per queue one, one per consumer, one for its DLQ.
pub(super) fn row_count(m: &Model) -> usize {
    m.queues
        .names()
        .iter()
        .map(|q| {
            2 + m
                .queues
                .rows
                .get(q)
                .map(|r| r.figures.consumers.len())
                .unwrap_or(0)
        })
        .sum()
}

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect, block: Block<'static>) {
    let selected = m.selected(Panel::Queues);
    let spark_w = (area.width.saturating_sub(44)).clamp(4, SPARK) as usize;
    let mut rows = Vec::new();
    let mut index = None;
    for name in m.queues.names() {
        if selected.as_deref() == Some(name.as_str()) {
            index = Some(rows.len());
        }
        let Some(q) = m.queues.rows.get(&name) else {
            rows.push(Row::new(vec![
                Cell::from(name.clone()).bold(),
                Cell::from("no figures yet").dark_gray(),
            ]));
            rows.push(Row::new(vec![Cell::from(format!("  {name}.dlq")).dark_gray()]));
            continue;
        };
        let f = &q.figures;
        rows.push(Row::new(vec![
            Cell::from(name.clone()).bold(),
            Cell::from(f.ready.to_string()),
            Cell::from(f.delayed.to_string()),
            Cell::from(f.in_flight.to_string()),
            Cell::from(format!("{:.1}", f.in_rate)),
            Cell::from(format!("{:.1}", f.out_rate)),
            Cell::from(sparkline(&q.depth, spark_w)).fg(Color::Cyan),
        ]));
        for c in &f.consumers {
            let style = if c.online {
                Style::new().fg(Color::Gray)
            } else {
                Style::new().fg(Color::Red)
            };
            let status = if c.online { "" } else { "offline" };
            rows.push(
                Row::new(vec![
                    Cell::from(format!("  └ {}", c.id)),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(format!("{}/{}", c.in_flight, c.credit)),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(status.to_string()),
                ])
                .style(style),
            );
        }
        let dlq_style = if f.dlq > 0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new().fg(Color::DarkGray)
        };
        rows.push(
            Row::new(vec![
                Cell::from(format!("  {name}.dlq")),
                Cell::from(f.dlq.to_string()),
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(""),
                Cell::from(sparkline(&q.dlq, spark_w)),
            ])
            .style(dlq_style),
        );
    }
    let widths = [
        Constraint::Length(18),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Min(4),
    ];
    draw_table(
        frame,
        area,
        &["QUEUE", "READY", "WAIT", "INFL", "IN/S", "OUT/S", "DEPTH 1m"],
        &widths,
        rows,
        block,
        index,
    );
}
