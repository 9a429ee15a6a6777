//! Chaos mode's bar: what it is breaking now, and the ledger.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::chaos::Chaos;

/// Its height in lines.
pub const HEIGHT: u16 = 2;

/// Chaos's state on the first line, the ledger on the second.
pub(super) fn draw_bar(frame: &mut Frame, chaos: &Chaos, now: time::OffsetDateTime, area: Rect) {
    let badge = Style::new().fg(Color::White).bg(Color::Red).bold();
    let mut first = vec![Span::styled(" ⚡ CHAOS ", badge), Span::raw(" ")];
    if chaos.on {
        first.push(Span::raw("on").fg(Color::Red).bold());
    } else {
        first.push(Span::raw("off").dark_gray());
    }
    first.push(Span::raw(format!(
        " · seed {} · {:.0} orders/s · {} break(s)",
        chaos.opts.seed, chaos.opts.load, chaos.breaks
    )));
    match chaos.broken() {
        Some((id, action, repair_at)) => first.push(
            Span::raw(format!(
                " · now: {} {id}, repaired in {:.0} s",
                action.name(),
                (repair_at - now).as_seconds_f64().max(0.0)
            ))
            .fg(Color::Yellow),
        ),
        None if !chaos.on => first.push(Span::raw(" · c starts it again").dark_gray()),
        None => {}
    }
    let t = chaos.tally();
    let number = |label: &str, n: u64, bad: bool| {
        let style = if bad && n > 0 {
            Style::new().fg(Color::Red).bold()
        } else {
            Style::new()
        };
        vec![
            Span::raw(format!(" {label} ")).dark_gray(),
            Span::styled(n.to_string(), style),
        ]
    };
    let lost = chaos.settled(now);
    let open = if lost { "LOST" } else { "in flight" };
    let mut second = vec![Span::raw(" ledger").bold()];
    if area.width >= 110 {
        second.extend(number("attempted", t.attempted, false));
        second.extend(number("accepted", t.accepted, false));
        second.extend(number("refused", t.refused, false));
        second.extend(number("delivered", t.delivered, false));
        second.extend(number("cancelled", t.ended, false));
        second.extend(number(open, t.open, lost));
        second.extend(number("delivered twice", t.delivered_twice, true));
        second.extend(number("cooked twice", t.cooked_twice, true));
    } else {
        // The same figures in 80 columns.
        second.extend(number("sent", t.attempted, false));
        second.extend(number("ok", t.accepted, false));
        second.extend(number("refused", t.refused, false));
        second.extend(number("delivered", t.delivered, false));
        second.extend(number(if lost { "LOST" } else { "open" }, t.open, lost));
        second.extend(number("×2 delivered", t.delivered_twice, true));
        second.extend(number("×2 cooked", t.cooked_twice, true));
    }
    frame.render_widget(Paragraph::new(vec![Line::from(first), Line::from(second)]), area);
}
