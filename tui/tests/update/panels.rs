//! Sorting, the log view, the mouse.

use super::*;

#[test]
fn s_cycles_the_sort_of_the_focused_table() {
    let mut m = tui::testkit::model();
    m.ui.focus = Some(Panel::Orders);
    let by_age = m.selectable(Panel::Orders);
    update(&mut m, key('S'));
    assert_eq!(m.ui.order_sort, tui::model::OrderSort::State);
    assert_eq!(m.ui.flash.as_deref(), Some("sorted by state"));
    let states: Vec<String> = m
        .order_rows()
        .iter()
        .map(|e| e.state_label().to_string())
        .collect();
    assert_eq!(states.first().map(String::as_str), Some("placed"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("delivered"), "{states:?}");
    for _ in 0..3 {
        update(&mut m, key('S'));
    }
    assert_eq!(m.selectable(Panel::Orders), by_age, "back to newest first");

    m.ui.focus = Some(Panel::Nodes);
    update(&mut m, key('S'));
    update(&mut m, key('S'));
    assert_eq!(m.ui.node_sort, tui::model::NodeSort::Rate);
    assert_eq!(
        m.node_ids().first().map(String::as_str),
        Some("delivery"),
        "busiest first"
    );
}

#[test]
fn l_opens_the_selected_nodes_log_and_its_keys_scroll_search_and_wrap() {
    let mut m = tui::testkit::model();
    m.ui.selected.insert(Panel::Nodes, "kitchen-2".into());
    update(&mut m, key('l'));
    assert_eq!(m.ui.detail, Some(Detail::Log("kitchen-2".into())));
    let lines = (0..30).map(|i| format!("line {i}")).collect();
    update(
        &mut m,
        Msg::LogTail(tui::model::LogTail {
            id: "kitchen-2".into(),
            path: "k.log".into(),
            lines,
            error: None,
        }),
    );
    assert_eq!(m.ui.log_view.scroll, 0, "follows the end");
    update(&mut m, key('k'));
    update(&mut m, key('k'));
    assert_eq!(m.ui.log_view.scroll, 2);
    update(&mut m, key('g'));
    assert_eq!(m.ui.log_view.scroll, 29, "the top, no further");
    update(&mut m, key('G'));
    assert_eq!(m.ui.log_view.scroll, 0);
    update(&mut m, key('w'));
    assert!(m.ui.log_view.wrap);
    for c in "/line 2".chars() {
        update(&mut m, key(c));
    }
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.log_view.search, "line 2");
    let shown: Vec<&String> = m.log_tail.shown(&m.ui.log_view).collect();
    assert_eq!(shown.len(), 11, "line 2 and line 20-29: {shown:?}");
    update(&mut m, code(KeyCode::Esc));
    assert!(m.ui.log_view.search.is_empty(), "the first esc clears the search");
    assert!(m.ui.detail.is_some());
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None, "the second closes the view");
}

#[test]
fn events_scroll_with_j_and_k_and_a_shows_alerts_only() {
    let mut m = tui::testkit::model();
    m.ui.focus = Some(Panel::Events);
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(m.ui.events_scroll, 2);
    update(&mut m, key('k'));
    assert_eq!(m.ui.events_scroll, 1);
    update(&mut m, key('G'));
    assert_eq!(m.ui.events_scroll, m.log.len() - 1, "the oldest line, no further");
    update(&mut m, key('g'));
    assert_eq!(m.ui.events_scroll, 0, "back to following");
    update(&mut m, key('a'));
    assert!(m.ui.alerts_only);
    update(&mut m, key('a'));
    assert!(!m.ui.alerts_only);
}

#[test]
fn help_scrolls_with_j_and_k_and_any_other_key_closes_it() {
    let mut m = model();
    update(&mut m, key('?'));
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(m.ui.popup, Some(Popup::Help));
    assert_eq!(m.ui.help_scroll, 2);
    update(&mut m, key('x'));
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.ui.help_scroll, 0);
}

#[test]
fn a_click_focuses_the_panel_and_selects_the_row_and_the_wheel_scrolls() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut m = tui::testkit::model();
    let mouse = |kind, column, row| Msg::Mouse {
        event: MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        },
        width: 120,
        height: 40,
    };
    // At 120x40 the Nodes table starts at row 2: border 2, header 3, rows
    // from 4 in node order (broker, payment, order, kitchen-1 ...).
    update(&mut m, mouse(MouseEventKind::Down(MouseButton::Left), 10, 7));
    assert_eq!(m.ui.focused(), Panel::Nodes);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-1"));
    update(&mut m, mouse(MouseEventKind::ScrollDown, 10, 7));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-2"));
    // The Orders panel, lower left: border at row 21, header 22, and the
    // newest order on row 23.
    update(&mut m, mouse(MouseEventKind::Down(MouseButton::Left), 5, 23));
    assert_eq!(m.ui.focused(), Panel::Orders);
    assert_eq!(
        m.selected(Panel::Orders),
        m.selectable(Panel::Orders).first().cloned()
    );
}
