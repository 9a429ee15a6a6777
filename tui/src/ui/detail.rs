//! Full views opened with `enter`: one order's state machine with its trace
//! timeline, and one queue's dead letters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::orders::state_color;
use super::{clock, draw_table};
use crate::model::Model;

fn frame_block(title: String) -> Block<'static> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Span::styled(title, Style::new().bold().fg(Color::Cyan)))
}

pub(super) fn draw_order(frame: &mut Frame, m: &Model, id: &str, area: Rect) {
    let block = frame_block(format!(" Order {id} "));
    let Some(e) = m.orders.get(id) else {
        let text =
            Paragraph::new("This order is no longer in memory (only the most recent keep their detail).")
                .block(block);
        frame.render_widget(text, area);
        return;
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let steps = e.steps();
    // Titles only when there is room for them: at 80×24 every step and
    // every stage must still fit.
    let rows_needed = (steps.len() + e.fold.rejected().len()) as u16 + 1;
    let titled = inner.height >= 2 + rows_needed + 1 + 6;
    let stages_h = if titled { 6 } else { 5 };
    let [summary, table, timeline] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(stages_h),
    ])
    .areas(inner);

    let state = e.state_label();
    let trace = e
        .fold
        .applied()
        .first()
        .map(|x| x.trace_id.clone())
        .unwrap_or_default();
    let who = e
        .fold
        .placed()
        .map(|p| {
            format!(
                "{} · {} · {} item(s)",
                p.customer.name,
                p.customer.address,
                p.items.len()
            )
        })
        .unwrap_or_default();
    // Stepping through the history shows the order as it was after one
    // event: the state then, and the later events dimmed.
    let as_of = m.ui.history_step.filter(|i| *i < steps.len());
    let mut first = match as_of {
        Some(i) => vec![
            Span::raw(format!("as of seq {} ({}) ", steps[i].seq, clock(steps[i].at))).fg(Color::Yellow),
            Span::styled(
                steps[i].state.to_string(),
                Style::new().bold().fg(state_color(steps[i].state)),
            ),
            Span::raw(format!("  now {state}  ")).dark_gray(),
            Span::raw("[ ] step · ] past the end: live").fg(Color::Yellow),
        ],
        None => vec![
            Span::raw("state ").dark_gray(),
            Span::styled(state.to_string(), Style::new().bold().fg(state_color(state))),
            Span::raw("  trace ").dark_gray(),
            Span::raw(trace),
        ],
    };
    if e.fold.held_back() > 0 {
        let gaps: Vec<String> = e
            .fold
            .gaps()
            .iter()
            .map(|g| format!("{}..{}", g.start(), g.end()))
            .collect();
        first.push(Span::raw(format!("  waiting for seq {}", gaps.join(","))).fg(Color::Magenta));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(who).dark_gray()]),
        summary,
    );

    let t0 = e.first_at;
    // Narrow screens drop the SINCE column so the detail keeps some room,
    // and below 80 columns AT and BY too, so the event names stay whole.
    let wide = table.width >= 100;
    let narrow = table.width < 78;
    let shown = move |i: usize| (wide || i != 2) && (!narrow || (i != 1 && i != 5));
    let keep = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shown(*i))
            .map(|(_, c)| c)
            .collect()
    };
    let rows = steps.iter().enumerate().map(|(i, s)| {
        let row = Row::new(keep(vec![
            Cell::from(s.seq.to_string()),
            Cell::from(clock(s.at)),
            Cell::from(format!("+{} ms", (s.at - t0).whole_milliseconds())),
            Cell::from(s.kind.clone()),
            Cell::from(s.state).style(Style::new().fg(state_color(s.state))),
            Cell::from(s.source.clone()),
            Cell::from(s.detail.clone()),
        ]));
        match as_of {
            Some(at) if i == at => row.reversed(),
            Some(at) if i > at => row.dark_gray(),
            _ => row,
        }
    });
    let rejected = e.fold.rejected().iter().map(|r| {
        Row::new(keep(vec![
            Cell::from(r.envelope.seq.to_string()),
            Cell::from(clock(r.envelope.occurred_at)),
            Cell::from(""),
            Cell::from(r.envelope.kind.clone()),
            Cell::from("skipped"),
            Cell::from(r.envelope.source.clone()),
            Cell::from(r.error.to_string()),
        ]))
        .fg(Color::Red)
    });
    let all_widths = [
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(18),
        Constraint::Length(17),
        Constraint::Length(10),
        Constraint::Min(8),
    ];
    let all_header = ["SEQ", "AT", "SINCE", "EVENT", "STATE AFTER", "BY", "DETAIL"];
    let widths: Vec<Constraint> = (0..7).filter(|i| shown(*i)).map(|i| all_widths[i]).collect();
    let header: Vec<&str> = (0..7).filter(|i| shown(*i)).map(|i| all_header[i]).collect();
    let table_block = if titled {
        Block::new().title(Span::raw("state machine").dark_gray())
    } else {
        Block::new()
    };
    // Scrolled with J/K when the history is longer than the room for it.
    let total_rows = steps.len() + e.fold.rejected().len();
    let fits = table.height.saturating_sub(1 + u16::from(titled)) as usize;
    // A history longer than the room gives up one row for its scroll line.
    let room = if total_rows > fits {
        fits.saturating_sub(1)
    } else {
        fits
    };
    let offset = m.ui.detail_scroll.min(total_rows.saturating_sub(room.max(1)));
    let table_block = if total_rows > fits {
        let more = total_rows.saturating_sub(room + offset);
        table_block.title_bottom(
            Line::from(format!(" {offset} above · {more} below · J/K scroll "))
                .right_aligned()
                .dark_gray(),
        )
    } else {
        table_block
    };
    frame.render_stateful_widget(
        Table::new(rows.chain(rejected), widths)
            .header(Row::new(header).dark_gray().bold())
            .block(table_block),
        table,
        &mut TableState::default().with_offset(offset),
    );

    // The trace timeline as a waterfall: each bar starts where its stage
    // began, all on one time scale, like a tracing UI.
    let stages = e.timeline();
    let total = stages
        .iter()
        .filter_map(|(_, s)| *s)
        .map(|s| (s.offset + s.length).whole_milliseconds())
        .max()
        .unwrap_or(0)
        .max(1);
    let room = timeline.width.saturating_sub(24).max(1) as i128;
    let mut lines = Vec::new();
    if titled {
        lines.push(Line::from(Span::raw("trace timeline").dark_gray()));
    }
    for (label, stage) in stages {
        let line = match stage {
            Some(s) => {
                let ms = s.length.whole_milliseconds();
                let pad = (s.offset.whole_milliseconds() * room / total) as usize;
                let len = ((ms * room) / total).max(1) as usize;
                Line::from(vec![
                    Span::raw(format!("{label:<12}")),
                    Span::raw(format!("{ms:>8} ms ")),
                    Span::raw(" ".repeat(pad)),
                    Span::styled("█".repeat(len), Style::new().fg(Color::Cyan)),
                ])
            }
            None => Line::from(vec![
                Span::raw(format!("{label:<12}")),
                Span::raw("       - ").dark_gray(),
            ]),
        };
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), timeline);
}

pub(super) fn draw_dead_letters(frame: &mut Frame, m: &Model, queue: &str, cursor: usize, area: Rect) {
    let items = m.queues.dead.get(queue).map(Vec::as_slice).unwrap_or(&[]);
    let block = frame_block(format!(" {queue}.dlq: {} dead letter(s) ", items.len()));
    if items.is_empty() {
        let text = Paragraph::new(
            "No dead letters. A message lands here after its last attempt fails, or when it cannot be read.",
        )
        .wrap(Wrap { trim: true })
        .block(block);
        frame.render_widget(text, area);
        return;
    }
    let rows = items.iter().map(|d| {
        let what = d
            .envelope
            .as_ref()
            .map(|e| format!("{} {}", e.kind, e.order_id))
            .or_else(|| d.raw.clone())
            .unwrap_or_default();
        Row::new(vec![
            Cell::from(d.id.to_string()),
            Cell::from(d.attempts.to_string()),
            Cell::from(d.at.clone()),
            Cell::from(d.reason.clone()).fg(Color::Red),
            Cell::from(what),
        ])
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(20),
        Constraint::Percentage(40),
        Constraint::Min(10),
    ];
    let index = cursor.min(items.len() - 1);
    // The selected letter's reason in full below the table: the column
    // cuts it ("step refund failed after 3 a…").
    let [list, full] = Layout::vertical([Constraint::Min(3), Constraint::Length(4)]).areas(area);
    draw_table(
        frame,
        list,
        &["ID", "TRIES", "AT", "REASON", "MESSAGE"],
        &widths,
        rows,
        block,
        Some(index),
    );
    let chosen = &items[index];
    let text = Paragraph::new(vec![Line::from(vec![
        Span::raw(format!("#{} ", chosen.id)).bold(),
        Span::raw(chosen.reason.clone()).fg(Color::Red),
    ])])
    .wrap(Wrap { trim: true })
    .block(
        Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(Style::new().fg(Color::DarkGray)),
    );
    frame.render_widget(text, full);
}
