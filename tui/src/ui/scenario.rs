//! A scenario on screen: the caption bar narrating each step with its
//! progress, and the verdict once it is over.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::play::Play;

/// Rows the caption bar takes.
pub const HEIGHT: u16 = 2;

/// The caption bar: the step and its progress, then the caption.
pub(super) fn draw_bar(frame: &mut Frame, play: &Play, area: Rect) {
    let total = play.scenario.steps.len();
    let step = play.step.min(total);
    let mut first = vec![
        Span::styled(
            format!(" ▶ {} ", play.scenario.name),
            Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
        ),
        Span::raw(" "),
    ];
    match (&play.verdict, play.started) {
        (Some(v), _) => first.push(if v.passed() {
            Span::styled("PASSED", Style::new().fg(Color::Green).bold())
        } else {
            Span::styled("FAILED", Style::new().fg(Color::Red).bold())
        }),
        (None, None) => first.push(Span::raw("starting the platform…").fg(Color::Yellow)),
        (None, Some(_)) => {
            first.push(Span::raw(format!("step {}/{total} ", step + 1)).bold());
            first.push(Span::raw(progress_bar(step, total)).fg(Color::Yellow));
            if let Some(s) = play.scenario.steps.get(step) {
                first.push(Span::raw(format!("  {}", s.describe())));
            }
            if !play.progress.is_empty() {
                first.push(Span::raw(format!("  · {}", play.progress)).fg(Color::Cyan));
            }
        }
    }
    let caption = play.caption.clone().unwrap_or_default();
    let lines = vec![
        Line::from(first),
        Line::from(Span::styled(
            format!(" {caption}"),
            Style::new().fg(Color::Yellow).bold(),
        )),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// `■■■□□□□`: steps done out of all.
fn progress_bar(done: usize, total: usize) -> String {
    let width = total.min(20);
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!("{}{}", "■".repeat(filled), "□".repeat(width - filled))
}

/// The verdict over the panels, once the scenario is over.
pub(super) fn draw_verdict(frame: &mut Frame, play: &Play, area: Rect) {
    let Some(v) = &play.verdict else { return };
    let mut lines = vec![
        Line::from(Span::raw(play.scenario.proves.clone()).italic()),
        Line::from(""),
    ];
    if let Some(step) = &v.failed_step {
        lines.push(Line::from(vec![
            Span::styled(" FAIL ", Style::new().fg(Color::White).bg(Color::Red).bold()),
            Span::raw(format!(" {step}")),
        ]));
    }
    for j in &v.judged {
        let mark = if j.held {
            Span::styled(" pass ", Style::new().fg(Color::Black).bg(Color::Green).bold())
        } else {
            Span::styled(" FAIL ", Style::new().fg(Color::White).bg(Color::Red).bold())
        };
        lines.push(Line::from(vec![
            mark,
            Span::raw(format!(" {}", j.expected)).bold(),
            Span::raw(format!("  {}", j.saw)).dark_gray(),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        Span::raw("esc hides this · q quits · the panels stay live").dark_gray(),
    ));
    let (title, color) = if v.passed() {
        (" Verdict: PASSED ", Color::Green)
    } else {
        (" Verdict: FAILED ", Color::Red)
    };
    super::popups::show_in(frame, area, title, lines, 96, color);
}
