//! Full views opened with `enter`: one order's state machine with its trace
//! timeline, and one queue's dead letters.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::orders::state_color;
use super::{clock, draw_table};
use crate::model::orders::{OrderEntry, Step};
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
    // Stepping through the history shows the order as it was after one
    // event: the state then, and the later events dimmed.
    let as_of = m.ui.history_step.filter(|i| *i < steps.len());
    draw_summary(frame, e, &steps, as_of, summary);
    draw_steps(frame, m, e, &steps, (as_of, titled), table);
    draw_waterfall(frame, e, titled, timeline);
}

/// Its state (now, or as of the step looked at), trace id and customer.
fn draw_summary(frame: &mut Frame, e: &OrderEntry, steps: &[Step], as_of: Option<usize>, summary: Rect) {
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
}

/// The state machine: one row per event applied, then the rejected ones,
/// scrolled with J/K when they do not fit.
fn draw_steps(
    frame: &mut Frame,
    m: &Model,
    e: &OrderEntry,
    steps: &[Step],
    (as_of, titled): (Option<usize>, bool),
    table: Rect,
) {
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
    // On a wide screen the DETAIL column wraps, so a saga step's reason is
    // read in full.
    let fixed: u16 = [4u16, 9, 10, 18, 17, 10]
        .iter()
        .enumerate()
        .filter(|(i, _)| shown(*i))
        .map(|(_, w)| w + 1)
        .sum();
    let detail_w = table.width.saturating_sub(fixed).max(8) as usize;
    let fits = table.height.saturating_sub(1 + u16::from(titled)) as usize;
    // No row taller than the room with its scroll line (it would not draw);
    // below 100 columns one line a row, so every step still fits at 80×24.
    let tallest = if wide { fits.saturating_sub(1).max(1) } else { 1 };
    let mut heights = Vec::new();
    let rows = steps.iter().enumerate().map(|(i, s)| {
        let mut detail = wrap(&s.detail, detail_w);
        detail.truncate(tallest);
        heights.push(detail.len().max(1));
        let row = Row::new(keep(vec![
            Cell::from(s.seq.to_string()),
            Cell::from(clock(s.at)),
            Cell::from(format!("+{} ms", (s.at - t0).whole_milliseconds())),
            Cell::from(s.kind.clone()),
            Cell::from(s.state).style(Style::new().fg(state_color(s.state))),
            Cell::from(s.source.clone()),
            Cell::from(Text::from(detail.into_iter().map(Line::from).collect::<Vec<_>>())),
        ]))
        .height(heights[i] as u16);
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
    let rows: Vec<Row> = rows.collect();
    heights.extend(std::iter::repeat_n(1, e.fold.rejected().len()));
    let (offset, scroll_line) = scroll(&heights, fits, m.ui.detail_scroll);
    let table_block = match scroll_line {
        Some((above, below)) => table_block.title_bottom(
            Line::from(format!(" {above} above · {below} below · J/K scroll "))
                .right_aligned()
                .dark_gray(),
        ),
        None => table_block,
    };
    frame.render_stateful_widget(
        Table::new(rows.into_iter().chain(rejected), widths)
            .header(Row::new(header).dark_gray().bold())
            .block(table_block),
        table,
        &mut TableState::default().with_offset(offset),
    );
}

/// The first row to draw so that row `wanted` is as high as it can be while
/// the last rows still fill the room, and, for a history taller than
/// `fits` lines (it gives one up for this), how many rows are above and
/// below the window.
fn scroll(heights: &[usize], fits: usize, wanted: usize) -> (usize, Option<(usize, usize)>) {
    let total_rows = heights.len();
    let lines: usize = heights.iter().sum();
    let room = if lines > fits {
        fits.saturating_sub(1)
    } else {
        fits
    };
    // The furthest scroll that still fills the room: the last rows fit.
    let mut last_start = total_rows;
    let mut used = 0;
    while last_start > 0 && used + heights[last_start - 1] <= room {
        last_start -= 1;
        used += heights[last_start];
    }
    let offset = wanted.min(last_start.min(total_rows.saturating_sub(1)));
    if lines <= fits {
        return (offset, None);
    }
    let mut drawn = 0;
    let below_from = (offset..total_rows)
        .find(|i| {
            drawn += heights[*i];
            drawn > room
        })
        .unwrap_or(total_rows);
    (offset, Some((offset, total_rows - below_from)))
}

/// The trace timeline as a waterfall.
fn draw_waterfall(frame: &mut Frame, e: &OrderEntry, titled: bool, timeline: Rect) {
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

/// `text` in lines of at most `width` characters, broken between words
/// where it can be (a word longer than a line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let len = line.chars().count();
            let need = word.chars().count() + usize::from(len > 0);
            if len + need <= width {
                if len > 0 {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a whole line.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
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

#[cfg(test)]
mod tests {
    use super::{scroll, wrap};

    #[test]
    fn wrap_breaks_between_words_and_cuts_only_a_word_too_long() {
        assert_eq!(
            wrap("step refund failed after 3 attempts", 12),
            ["step refund", "failed after", "3 attempts"]
        );
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
    }

    #[test]
    fn a_history_scrolls_until_its_last_rows_fill_the_room() {
        let ten = [1; 10];
        assert_eq!(scroll(&ten, 20, 3), (0, None), "it fits: no scrolling");
        // 5 lines: 4 rows and the scroll line.
        assert_eq!(scroll(&ten, 5, 0), (0, Some((0, 6))));
        assert_eq!(scroll(&ten, 5, 2), (2, Some((2, 4))));
        assert_eq!(scroll(&ten, 5, 99), (6, Some((6, 0))), "no further than the end");
        // A tall last row stops the window earlier.
        assert_eq!(scroll(&[1, 1, 1, 1, 3], 5, 99), (3, Some((3, 0))));
    }
}
