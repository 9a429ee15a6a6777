//! Popups: help, confirmations, the fault menu, the burst prompt, quit.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::keys::fault_items;
use crate::model::{FaultItem, Model, Popup};

/// Every key, for `?`.
pub const HELP: &[(&str, &str)] = &[
    ("tab / shift-tab", "next / previous panel"),
    ("j k ↑ ↓ g G", "select (by id: a refreshing list never moves it)"),
    ("/", "filter orders (id, state, kitchen, driver)"),
    ("S", "sort the Nodes / Orders table by the next column"),
    ("enter", "order detail, or a queue's dead letters"),
    ("J K pgup pgdn", "in an order: scroll its history"),
    ("esc", "back, clear the filter"),
    ("l", "the node's log: j/k scroll, G follow, / search, w wrap"),
    ("j k / a", "in Events: scroll back / alerts only"),
    ("mouse", "click selects, the wheel scrolls"),
    ("s", "start the selected node (if down)"),
    ("x", "stop it: SIGTERM, then SIGKILL after 5 s"),
    ("K", "kill -9 it"),
    ("p", "pause / resume it (SIGSTOP / SIGCONT)"),
    ("r", "restart it"),
    (
        "R",
        "rolling restart of its role: one node at a time, each back at work first",
    ),
    (
        "C",
        "canary: one more node of its role with other arguments, rolled back or promoted",
    ),
    ("B", "back up its data now (online) into <data-dir>/backups/<id>/"),
    ("+ / -", "one more / one fewer node of its role"),
    (
        "f",
        "fault menu: latency, errors, drop, dup, reorder, stock, network",
    ),
    ("o / O", "place one order / a burst"),
    (
        "c",
        "chaos: break random nodes while orders stream in; the ledger counts them",
    ),
    ("x on an order", "cancel it (DELETE /orders/{id}): watch the saga"),
    ("[ ] ← →", "in an order: step back / forward through its history"),
    ("r / A", "in dead letters: re-queue one / all"),
    ("space", "freeze the display"),
    ("q / ctrl-c", "quit (stop the nodes, or leave them running)"),
];

pub(super) fn draw(frame: &mut Frame, m: &Model, area: Rect) {
    let Some(popup) = &m.ui.popup else { return };
    match popup {
        Popup::Help => {
            // Scrolls (j/k) when the screen is shorter than the list.
            // Leave the header and the key bar in sight.
            let room = area.height.saturating_sub(6) as usize;
            let skip = m.ui.help_scroll.min(HELP.len().saturating_sub(room));
            let title = if HELP.len() > room {
                format!(
                    " Keys {}-{} of {} · j/k scroll · other keys close ",
                    skip + 1,
                    (skip + room).min(HELP.len()),
                    HELP.len()
                )
            } else {
                " Keys (any key closes) ".to_string()
            };
            let lines: Vec<Line> = HELP
                .iter()
                .skip(skip)
                .take(room)
                .map(|(k, what)| {
                    Line::from(vec![
                        Span::styled(format!("{k:>16}  "), Style::new().fg(Color::Cyan).bold()),
                        Span::raw(*what),
                    ])
                })
                .collect();
            show(frame, area, &title, lines, 80);
        }
        Popup::Confirm { question, .. } => {
            let lines = vec![
                Line::from(question.clone()).bold(),
                Line::default(),
                answer_line(&[("y/enter", "yes"), ("n/esc", "no")]),
            ];
            show(frame, area, " Confirm ", lines, 64);
        }
        Popup::Quit => {
            let owned = m
                .nodes
                .values()
                .filter(|n| n.owned && n.shown(m.now).is_alive())
                .count();
            let lines = vec![
                Line::from(format!("{owned} node(s) started here are running.")),
                Line::default(),
                answer_line(&[("enter/s", "stop them and quit")]),
                answer_line(&[("d", "leave them running and quit")]),
                answer_line(&[("esc", "stay")]),
            ];
            show(frame, area, " Quit ", lines, 50);
        }
        Popup::Burst { input } => {
            let lines = vec![
                Line::from(vec![
                    Span::raw("How many orders? "),
                    Span::styled(input.clone(), Style::new().bold().fg(Color::Cyan)),
                    Span::raw("▏").fg(Color::Cyan),
                ]),
                Line::default(),
                answer_line(&[("enter", "place them"), ("esc", "cancel")]),
            ];
            show(frame, area, " Burst ", lines, 44);
        }
        Popup::Canary { role, input } => {
            let lines = vec![
                Line::from(format!("A canary: one more {role}, with these arguments")),
                Line::from("on top of its role's; rolled back above 5 % failed,"),
                Line::from("promoted after 30 s (a rolling restart)."),
                Line::default(),
                Line::from(vec![
                    Span::raw("args "),
                    Span::styled(input.clone(), Style::new().bold().fg(Color::Cyan)),
                    Span::raw("▏").fg(Color::Cyan),
                ]),
                Line::default(),
                answer_line(&[("enter", "start it"), ("esc", "cancel")]),
            ];
            show(frame, area, " Canary ", lines, 56);
        }
        Popup::Faults { id, cursor, faults } => {
            let row = m.nodes.get(id);
            let role = row.map(|n| n.role.as_str()).unwrap_or("");
            let links = row.map(|n| n.links.as_slice()).unwrap_or_default();
            let mut lines = Vec::new();
            for (i, item) in fault_items(role, links.len()).into_iter().enumerate() {
                let net_name;
                let (name, value) = match item {
                    FaultItem::Latency => ("latency", format!("{} ms", faults.latency_ms)),
                    FaultItem::ErrorRate => ("error rate", percent(faults.error_rate)),
                    FaultItem::Drop => ("drop", percent(faults.drop_rate)),
                    FaultItem::Duplicate => ("duplicate", percent(faults.duplicate_rate)),
                    FaultItem::Reorder => ("reorder", percent(faults.reorder_rate)),
                    FaultItem::Pause => ("take no work", if faults.paused { "yes" } else { "no" }.into()),
                    FaultItem::OutOfStock => (
                        "out of stock",
                        faults
                            .out_of_stock
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "nothing".into()),
                    ),
                    FaultItem::Network(i) => {
                        let link = links.get(i).map(String::as_str).unwrap_or("?");
                        net_name = format!("net → {link}");
                        let toxics = row.and_then(|n| n.network.get(link));
                        let labels: Vec<String> = toxics.into_iter().flatten().map(|t| t.label()).collect();
                        let value = if labels.is_empty() {
                            "clean".to_string()
                        } else {
                            labels.join(" ")
                        };
                        (net_name.as_str(), value)
                    }
                };
                let style = if i == *cursor {
                    Style::new().bold().fg(Color::Black).bg(Color::Cyan)
                } else {
                    Style::new()
                };
                lines.push(Line::from(Span::styled(
                    format!(" {name:<14} {value:<14}"),
                    style,
                )));
            }
            lines.push(Line::default());
            lines.push(answer_line(&[("j/k", "select"), ("enter/h/l", "change")]));
            lines.push(answer_line(&[("c", "clear all"), ("esc", "close")]));
            show(frame, area, &format!(" Faults: {id} "), lines, 44);
        }
    }
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

fn answer_line(answers: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (key, what) in answers {
        spans.push(Span::styled(
            format!("{key} "),
            Style::new().fg(Color::Cyan).bold(),
        ));
        spans.push(Span::raw(format!("{what}   ")));
    }
    Line::from(spans)
}

/// A yellow bordered box in the middle of `area`, cleared underneath.
fn show(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16) {
    show_in(frame, area, title, lines, width, Color::Yellow);
}

/// A bordered box of `color` in the middle of `area`, cleared underneath.
pub(super) fn show_in(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    width: u16,
    color: Color,
) {
    let width = width.min(area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height);
    let [row] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(row);
    frame.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(color))
        .title(Span::styled(title.to_string(), Style::new().bold().fg(color)));
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(block),
        rect,
    );
}
