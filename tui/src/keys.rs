//! Keys: what each key does where it is pressed. Part of `update`, so pure.
//!
//! Popups take every key while open; then the filter prompt; then the detail
//! view; then the panels. Destructive actions name their target by id and
//! wait for `y` in a [`Popup::Confirm`].

use contracts::status::{Control, Faults};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::model::{Detail, FaultItem, Level, Model, NodeRow, Panel, Popup, Proc, Shown};
use crate::msg::Effect;
use crate::topology::Role;

/// What the canary popup offers: a build that fails 30 % of its work.
pub const DEFAULT_CANARY: &str = "--error-rate 0.3";

/// The default size of a burst (`O`).
pub const DEFAULT_BURST: u32 = 20;
/// The largest burst accepted.
pub const MAX_BURST: u32 = 10_000;

/// Handles one key.
pub fn on_key(m: &mut Model, key: KeyEvent) -> Vec<Effect> {
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    m.ui.flash = None;
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        // ctrl-c asks to quit; a second one (in the quit popup) stops and
        // quits. Other ctrl combinations must not act as their plain letter
        // (ctrl-p is not `p`).
        if key.code != KeyCode::Char('c') {
            return Vec::new();
        }
        if m.ui.popup == Some(Popup::Quit) {
            m.quitting = Some(true);
            return vec![Effect::Quit { stop_nodes: true }];
        }
        m.ui.popup = None;
        return ask_quit(m);
    }
    if let Some(popup) = m.ui.popup.take() {
        return on_popup_key(m, popup, key);
    }
    if m.ui.filtering {
        on_filter_key(m, key);
        return Vec::new();
    }
    if m.ui.detail.is_some() {
        if let Some(effects) = on_detail_key(m, key) {
            return effects;
        }
    }
    match key.code {
        KeyCode::Char('?') => m.ui.popup = Some(Popup::Help),
        KeyCode::Tab => m.ui.focus = Some(m.ui.focused().cycle(true)),
        KeyCode::BackTab => m.ui.focus = Some(m.ui.focused().cycle(false)),
        KeyCode::Char('j') | KeyCode::Down => move_selection(m, 1),
        KeyCode::Char('k') | KeyCode::Up => move_selection(m, -1),
        KeyCode::PageDown => move_selection(m, 10),
        KeyCode::PageUp => move_selection(m, -10),
        KeyCode::Char('g') | KeyCode::Home => move_selection(m, i64::MIN / 2),
        KeyCode::Char('G') | KeyCode::End => move_selection(m, i64::MAX / 2),
        KeyCode::Char('/') => {
            m.ui.focus = Some(Panel::Orders);
            m.ui.filtering = true;
        }
        KeyCode::Enter => open_detail(m),
        KeyCode::Esc => {
            // First esc puts a scenario's verdict away; then it clears the filter.
            if m.ui.scenario_over && !m.ui.verdict_hidden {
                m.ui.verdict_hidden = true;
            } else {
                m.ui.filter.clear();
            }
        }
        KeyCode::Char(' ') => {
            m.ui.frozen = !m.ui.frozen;
            m.ui.flash = Some(if m.ui.frozen {
                "display frozen: space to follow again".into()
            } else {
                "display follows the platform again".into()
            });
        }
        KeyCode::Char('c') => {
            m.ui.chaos = !m.ui.chaos;
            m.ui.flash = Some(if m.ui.chaos {
                "chaos on: nodes break at random while orders stream in; c again to stop".into()
            } else {
                "chaos off: everything is repaired; the ledger counts what is still open".into()
            });
        }
        KeyCode::Char('o') => return place(m, 1),
        KeyCode::Char('O') => {
            m.ui.popup = Some(Popup::Burst {
                input: DEFAULT_BURST.to_string(),
            })
        }
        KeyCode::Char('q') => return ask_quit(m),
        KeyCode::Char('S') => sort(m),
        KeyCode::Char('a') if m.ui.focused() == Panel::Events => {
            m.ui.alerts_only = !m.ui.alerts_only;
            m.ui.events_scroll = 0;
        }
        KeyCode::Char('l') if m.ui.focused() == Panel::Nodes => open_log(m),
        KeyCode::Char('x') if m.ui.focused() == Panel::Orders => return ask_cancel(m),
        KeyCode::Char(c @ ('s' | 'x' | 'K' | 'p' | 'r' | 'R' | 'C' | 'B' | '+' | '-' | 'f')) => {
            return on_node_key(m, c)
        }
        _ => {}
    }
    Vec::new()
}

/// A mouse event: the wheel scrolls what is under the keys (as `j`/`k`,
/// or `J`/`K` in an order's detail); a left click focuses the panel under
/// it and selects the row it lands on.
pub fn on_mouse(m: &mut Model, event: MouseEvent, width: u16, height: u16) -> Vec<Effect> {
    let press = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let in_order = matches!(m.ui.detail, Some(Detail::Order(_)));
    match event.kind {
        MouseEventKind::ScrollDown => on_key(m, press(if in_order { 'J' } else { 'j' })),
        MouseEventKind::ScrollUp => on_key(m, press(if in_order { 'K' } else { 'k' })),
        MouseEventKind::Down(MouseButton::Left) if m.ui.popup.is_none() => {
            let Some((panel, row)) = crate::ui::panel_at(m, width, height, event.column, event.row) else {
                return Vec::new();
            };
            m.ui.focus = Some(panel);
            if let Some(id) = row.and_then(|i| m.selectable(panel).get(i).cloned()) {
                m.ui.selected.insert(panel, id);
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn ask_quit(m: &mut Model) -> Vec<Effect> {
    let owned_alive = m.nodes.values().any(|n| n.owned && n.shown(m.now).is_alive());
    if owned_alive {
        m.ui.popup = Some(Popup::Quit);
        Vec::new()
    } else {
        m.quitting = Some(true);
        vec![Effect::Quit { stop_nodes: true }]
    }
}

/// `S`: the next sort order of the focused table.
fn sort(m: &mut Model) {
    let by = match m.ui.focused() {
        Panel::Nodes => {
            m.ui.node_sort = m.ui.node_sort.next();
            m.ui.node_sort.column()
        }
        Panel::Orders => {
            m.ui.order_sort = m.ui.order_sort.next();
            m.ui.order_sort.column()
        }
        _ => {
            m.ui.flash = Some("S sorts the Nodes and Orders tables".into());
            return;
        }
    };
    m.ui.flash = Some(format!("sorted by {}", by.to_lowercase()));
}

/// `l` on a node: its log, following the end.
fn open_log(m: &mut Model) {
    let Some(id) = m.selected(Panel::Nodes) else {
        m.ui.flash = Some("no node selected".into());
        return;
    };
    m.ui.log_view = crate::model::LogView::default();
    m.ui.detail = Some(Detail::Log(id));
}

/// Keys of the log view; `None` passes the key on.
fn on_log_key(m: &mut Model, key: KeyEvent) -> Option<Vec<Effect>> {
    let view = &mut m.ui.log_view;
    if view.searching {
        match key.code {
            KeyCode::Enter | KeyCode::Esc => view.searching = false,
            KeyCode::Backspace => {
                view.search.pop();
            }
            KeyCode::Char(c) if !c.is_control() && view.search.chars().count() < 60 => view.search.push(c),
            _ => {}
        }
        view.scroll = 0;
        return Some(Vec::new());
    }
    let lines = m.log_tail.shown(&m.ui.log_view).count();
    let view = &mut m.ui.log_view;
    let up = |v: &mut crate::model::LogView, n: usize| v.scroll = (v.scroll + n).min(lines.saturating_sub(1));
    match key.code {
        KeyCode::Char('k') | KeyCode::Up => up(view, 1),
        KeyCode::Char('j') | KeyCode::Down => view.scroll = view.scroll.saturating_sub(1),
        KeyCode::PageUp => up(view, 20),
        KeyCode::PageDown => view.scroll = view.scroll.saturating_sub(20),
        KeyCode::Char('g') | KeyCode::Home => up(view, usize::MAX / 2),
        KeyCode::Char('G') | KeyCode::End => view.scroll = 0,
        KeyCode::Char('w') => view.wrap = !view.wrap,
        KeyCode::Char('/') => {
            view.searching = true;
            view.search.clear();
        }
        KeyCode::Esc if !view.search.is_empty() => view.search.clear(),
        _ => return None,
    }
    Some(Vec::new())
}

fn move_selection(m: &mut Model, by: i64) {
    let panel = m.ui.focused();
    if panel == Panel::Events && m.ui.detail.is_none() {
        // Newest first: down is older.
        let max = m.log.len().saturating_sub(1) as i64;
        m.ui.events_scroll = (m.ui.events_scroll as i64).saturating_add(by).clamp(0, max) as usize;
        return;
    }
    if let Some(Detail::DeadLetters { queue, cursor }) = &mut m.ui.detail {
        let n = m.queues.dead.get(queue.as_str()).map(Vec::len).unwrap_or(0);
        *cursor = step(*cursor, by, n);
        return;
    }
    let ids = m.selectable(panel);
    if ids.is_empty() {
        return;
    }
    let current = m
        .selected(panel)
        .and_then(|id| ids.iter().position(|x| *x == id))
        .unwrap_or(0);
    let next = step(current, by, ids.len());
    m.ui.selected.insert(panel, ids[next].clone());
    if panel == Panel::Orders && matches!(m.ui.detail, Some(Detail::Order(_))) {
        m.ui.detail = Some(Detail::Order(ids[next].clone()));
        m.ui.history_step = None;
        m.ui.detail_scroll = 0;
    }
}

fn step(current: usize, by: i64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (current as i64).saturating_add(by).clamp(0, len as i64 - 1) as usize
}

fn open_detail(m: &mut Model) {
    match m.ui.focused() {
        Panel::Orders => {
            if let Some(id) = m.selected(Panel::Orders) {
                m.ui.selected.insert(Panel::Orders, id.clone());
                m.ui.detail = Some(Detail::Order(id));
                m.ui.history_step = None;
                m.ui.detail_scroll = 0;
            }
        }
        Panel::Queues => {
            if let Some(q) = m.selected(Panel::Queues) {
                m.ui.detail = Some(Detail::DeadLetters { queue: q, cursor: 0 });
            }
        }
        _ => {}
    }
}

/// Keys of an open detail view; `None` passes the key on to the panels.
fn on_detail_key(m: &mut Model, key: KeyEvent) -> Option<Vec<Effect>> {
    if matches!(m.ui.detail, Some(Detail::Log(_))) && !matches!(key.code, KeyCode::Tab | KeyCode::BackTab) {
        if let Some(effects) = on_log_key(m, key) {
            return Some(effects);
        }
    }
    if matches!(m.ui.detail, Some(Detail::Order(_))) {
        // J/K and the page keys scroll a long history; j/k change order.
        let scroll = &mut m.ui.detail_scroll;
        match key.code {
            KeyCode::Char('J') | KeyCode::PageDown => {
                *scroll = scroll.saturating_add(if key.code == KeyCode::PageDown { 10 } else { 1 });
                return Some(Vec::new());
            }
            KeyCode::Char('K') | KeyCode::PageUp => {
                *scroll = scroll.saturating_sub(if key.code == KeyCode::PageUp { 10 } else { 1 });
                return Some(Vec::new());
            }
            _ => {}
        }
    }
    match key.code {
        KeyCode::Tab | KeyCode::BackTab => {
            // Leaving for another panel closes the detail.
            m.ui.detail = None;
            None
        }
        KeyCode::Esc | KeyCode::Backspace => {
            m.ui.detail = None;
            Some(Vec::new())
        }
        KeyCode::Enter => Some(Vec::new()),
        KeyCode::Char('[') | KeyCode::Left | KeyCode::Char(']') | KeyCode::Right => {
            let Some(Detail::Order(id)) = &m.ui.detail else {
                return None;
            };
            let back = matches!(key.code, KeyCode::Char('[') | KeyCode::Left);
            let n = m.orders.get(id).map_or(0, |e| e.fold.applied().len());
            m.ui.history_step = step_history(m.ui.history_step, back, n);
            Some(Vec::new())
        }
        KeyCode::Char('r') | KeyCode::Char('A') => {
            let Some(Detail::DeadLetters { queue, cursor }) = &m.ui.detail else {
                return None;
            };
            let queue = queue.clone();
            let items = m.queues.dead.get(&queue).cloned().unwrap_or_default();
            if key.code == KeyCode::Char('A') {
                m.log.push(
                    m.now,
                    Level::Info,
                    format!("re-queue all {} dead letters of {queue}", items.len()),
                );
                return Some(vec![Effect::Requeue(queue, None)]);
            }
            // The keeper's list may have shrunk since the cursor was placed.
            let Some(item) = items.get((*cursor).min(items.len().saturating_sub(1))) else {
                m.ui.flash = Some(format!("{queue} has no dead letters"));
                return Some(Vec::new());
            };
            m.log.push(
                m.now,
                Level::Info,
                format!("re-queue dead letter {} of {queue}", item.id),
            );
            Some(vec![Effect::Requeue(queue, Some(item.id))])
        }
        _ => None,
    }
}

/// One step through an order's `n` events: back from live starts at the
/// next-to-last event (the last one *is* live); forward past the last one
/// returns to live.
pub fn step_history(at: Option<usize>, back: bool, n: usize) -> Option<usize> {
    match (at, back) {
        (_, _) if n == 0 => None,
        (None, true) => Some(n.saturating_sub(2)),
        (None, false) => None,
        (Some(i), true) => Some(i.saturating_sub(1)),
        (Some(i), false) if i + 1 >= n - 1 => None,
        (Some(i), false) => Some(i + 1),
    }
}

/// `x` on the Orders panel (or an order's detail): cancel the order.
fn ask_cancel(m: &mut Model) -> Vec<Effect> {
    let Some(id) = m.selected(Panel::Orders) else {
        m.ui.flash = Some("no order selected".into());
        return Vec::new();
    };
    let (state, done) = m.orders.get(&id).map_or(("unknown".to_string(), false), |e| {
        (e.state_label().to_string(), e.is_done())
    });
    if done {
        m.ui.flash = Some(format!("order {id} is {state}: there is nothing to cancel"));
        return Vec::new();
    }
    let Some(url) = m.order_url() else {
        m.ui.flash = Some("no order service is up to cancel through".into());
        return Vec::new();
    };
    m.ui.popup = Some(Popup::Confirm {
        question: format!("cancel order {id} ({state})?"),
        effect: Effect::CancelOrder { url, order_id: id },
    });
    Vec::new()
}

fn on_filter_key(m: &mut Model, key: KeyEvent) {
    match key.code {
        KeyCode::Enter => m.ui.filtering = false,
        KeyCode::Esc => {
            m.ui.filtering = false;
            m.ui.filter.clear();
        }
        KeyCode::Backspace => {
            m.ui.filter.pop();
        }
        KeyCode::Char(c) if !c.is_control() && m.ui.filter.chars().count() < 40 => m.ui.filter.push(c),
        _ => {}
    }
}

fn place(m: &mut Model, count: u32) -> Vec<Effect> {
    match m.order_url() {
        Some(url) => {
            m.placing += count;
            vec![Effect::PlaceOrders {
                url,
                count,
                quiet: false,
            }]
        }
        None => {
            let text = "no order service is up: start one (s on the order node) to place orders";
            m.ui.flash = Some(text.into());
            m.log.push(m.now, Level::Warn, text);
            Vec::new()
        }
    }
}

fn on_popup_key(m: &mut Model, popup: Popup, key: KeyEvent) -> Vec<Effect> {
    match popup {
        Popup::Help => {
            // j/k scroll a help taller than the screen; any other key closes.
            match key.code {
                KeyCode::Char('j') | KeyCode::Down => m.ui.help_scroll += 1,
                KeyCode::Char('k') | KeyCode::Up => m.ui.help_scroll = m.ui.help_scroll.saturating_sub(1),
                _ => {
                    m.ui.help_scroll = 0;
                    return Vec::new();
                }
            }
            m.ui.help_scroll = m.ui.help_scroll.min(crate::ui::HELP_LINES);
            m.ui.popup = Some(Popup::Help);
            Vec::new()
        }
        Popup::Confirm { question, effect } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                m.log.push(m.now, Level::Info, format!("{question} yes"));
                vec![effect]
            }
            KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => Vec::new(),
            _ => {
                m.ui.popup = Some(Popup::Confirm { question, effect });
                Vec::new()
            }
        },
        Popup::Quit => match key.code {
            KeyCode::Enter | KeyCode::Char('s') | KeyCode::Char('y') => {
                m.quitting = Some(true);
                vec![Effect::Quit { stop_nodes: true }]
            }
            KeyCode::Char('d') | KeyCode::Char('l') if m.info.network_faults => {
                m.ui.flash = Some(
                    "the nodes' links run through this control room (--network-faults): they stop with it"
                        .into(),
                );
                m.ui.popup = Some(Popup::Quit);
                Vec::new()
            }
            KeyCode::Char('d') | KeyCode::Char('l') => {
                m.quitting = Some(false);
                vec![Effect::Quit { stop_nodes: false }]
            }
            KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => Vec::new(),
            _ => {
                m.ui.popup = Some(Popup::Quit);
                Vec::new()
            }
        },
        Popup::Burst { mut input } => match key.code {
            KeyCode::Enter => {
                let count = if input.is_empty() {
                    DEFAULT_BURST
                } else {
                    input.parse().unwrap_or(DEFAULT_BURST)
                };
                place(m, count.clamp(1, MAX_BURST))
            }
            KeyCode::Esc => Vec::new(),
            KeyCode::Backspace => {
                input.pop();
                m.ui.popup = Some(Popup::Burst { input });
                Vec::new()
            }
            KeyCode::Char(c) if c.is_ascii_digit() => {
                if input.len() < 5 {
                    input.push(c);
                }
                m.ui.popup = Some(Popup::Burst { input });
                Vec::new()
            }
            _ => {
                m.ui.popup = Some(Popup::Burst { input });
                Vec::new()
            }
        },
        Popup::Canary { role, mut input } => match key.code {
            KeyCode::Enter => {
                let args = input.split_whitespace().map(String::from).collect();
                vec![Effect::Canary(crate::canary::CanaryPlan::new(role, args))]
            }
            KeyCode::Esc => Vec::new(),
            KeyCode::Backspace => {
                input.pop();
                m.ui.popup = Some(Popup::Canary { role, input });
                Vec::new()
            }
            KeyCode::Char(c) => {
                if input.len() < 200 {
                    input.push(c);
                }
                m.ui.popup = Some(Popup::Canary { role, input });
                Vec::new()
            }
            _ => {
                m.ui.popup = Some(Popup::Canary { role, input });
                Vec::new()
            }
        },
        Popup::Faults { id, cursor, faults } => on_fault_key(m, id, cursor, faults, key),
    }
}

/// The fault menu's lines for a node of `role`.
pub fn fault_items(role: &str, links: usize) -> Vec<FaultItem> {
    let mut items = vec![
        FaultItem::Latency,
        FaultItem::ErrorRate,
        FaultItem::Drop,
        FaultItem::Duplicate,
        FaultItem::Reorder,
        FaultItem::Pause,
    ];
    if Role::parse(role).is_some_and(Role::keeps_stock) {
        items.push(FaultItem::OutOfStock);
    }
    items.extend((0..links).map(FaultItem::Network));
    items
}

fn on_fault_key(m: &mut Model, id: String, cursor: usize, mut faults: Faults, key: KeyEvent) -> Vec<Effect> {
    let (role, links, network) = m
        .nodes
        .get(&id)
        .map(|n| (n.role.clone(), n.links.clone(), n.network.clone()))
        .unwrap_or_default();
    let items = fault_items(&role, links.len());
    let mut cursor = cursor.min(items.len().saturating_sub(1));
    let mut effects = Vec::new();
    let forward = match key.code {
        KeyCode::Enter | KeyCode::Char(' ') | KeyCode::Char('l') | KeyCode::Right => Some(true),
        KeyCode::Char('h') | KeyCode::Left => Some(false),
        _ => None,
    };
    // A link's line cycles its presets; the proxy, not the node, obeys.
    if let (Some(forward), Some(FaultItem::Network(i))) = (forward, items.get(cursor).copied()) {
        if let Some(link) = links.get(i) {
            let now = network.get(link).map(Vec::as_slice).unwrap_or_default();
            effects.push(Effect::Network {
                node: id.clone(),
                link: link.clone(),
                toxics: crate::model::network::next_preset(now, forward),
            });
        }
        m.ui.popup = Some(Popup::Faults { id, cursor, faults });
        return effects;
    }
    match key.code {
        KeyCode::Esc | KeyCode::Char('f') | KeyCode::Char('q') => return Vec::new(),
        KeyCode::Char('j') | KeyCode::Down => cursor = step(cursor, 1, items.len()),
        KeyCode::Char('k') | KeyCode::Up => cursor = step(cursor, -1, items.len()),
        KeyCode::Enter | KeyCode::Char(' ') | KeyCode::Char('l') | KeyCode::Right => {
            cycle_fault(&mut faults, items[cursor], true, &m.info.ingredients);
            effects.push(Effect::Control(
                id.clone(),
                Control::SetFaults {
                    faults: faults.clone(),
                },
            ));
        }
        KeyCode::Char('h') | KeyCode::Left => {
            cycle_fault(&mut faults, items[cursor], false, &m.info.ingredients);
            effects.push(Effect::Control(
                id.clone(),
                Control::SetFaults {
                    faults: faults.clone(),
                },
            ));
        }
        KeyCode::Char('c') => {
            faults = Faults::default();
            effects.push(Effect::Control(id.clone(), Control::ClearFaults));
            effects.extend(network.into_keys().map(|link| Effect::Network {
                node: id.clone(),
                link,
                toxics: Vec::new(),
            }));
        }
        _ => {}
    }
    m.ui.popup = Some(Popup::Faults { id, cursor, faults });
    effects
}

const LATENCIES: [u64; 5] = [0, 100, 500, 2_000, 5_000];
const RATES: [f64; 5] = [0.0, 0.1, 0.3, 0.5, 1.0];

/// Moves one fault to its next (or previous) setting.
pub fn cycle_fault(f: &mut Faults, item: FaultItem, forward: bool, ingredients: &[String]) {
    fn next<T: PartialEq + Copy>(values: &[T], now: T, forward: bool) -> T {
        let i = values.iter().position(|v| *v == now).unwrap_or(0);
        let n = values.len();
        values[if forward { (i + 1) % n } else { (i + n - 1) % n }]
    }
    match item {
        FaultItem::Latency => f.latency_ms = next(&LATENCIES, f.latency_ms, forward),
        FaultItem::ErrorRate => f.error_rate = next(&RATES, f.error_rate, forward),
        FaultItem::Drop => f.drop_rate = next(&RATES, f.drop_rate, forward),
        FaultItem::Duplicate => f.duplicate_rate = next(&RATES, f.duplicate_rate, forward),
        FaultItem::Reorder => f.reorder_rate = next(&RATES, f.reorder_rate, forward),
        FaultItem::Pause => f.paused = !f.paused,
        FaultItem::OutOfStock => {
            // none → each ingredient in turn → none.
            let mut options: Vec<Option<&String>> = vec![None];
            options.extend(ingredients.iter().map(Some));
            let now = f.out_of_stock.first();
            let i = options.iter().position(|o| *o == now).unwrap_or(0);
            let n = options.len();
            let pick = options[if forward { (i + 1) % n } else { (i + n - 1) % n }];
            f.out_of_stock = pick.map(|s| vec![s.clone()]).unwrap_or_default();
        }
        // A link's faults live in the proxy: on_fault_key sends them.
        FaultItem::Network(_) => {}
    }
}

fn on_node_key(m: &mut Model, c: char) -> Vec<Effect> {
    if m.ui.focused() != Panel::Nodes {
        m.ui.flash = Some(format!(
            "`{c}` acts on a node: tab to the Nodes panel and select one"
        ));
        return Vec::new();
    }
    let Some(id) = m.selected(Panel::Nodes) else {
        m.ui.flash = Some("no node selected".into());
        return Vec::new();
    };
    let Some(row) = m.nodes.get(&id).cloned() else {
        return Vec::new();
    };
    m.ui.selected.insert(Panel::Nodes, id.clone());
    let shown = row.shown(m.now);
    let alive = shown.is_alive();
    let target = target(&row);
    let confirm = |m: &mut Model, question: String, effect: Effect| {
        m.ui.popup = Some(Popup::Confirm { question, effect });
        Vec::new()
    };
    let flash = |m: &mut Model, text: String| {
        m.ui.flash = Some(text);
        Vec::new()
    };
    match c {
        's' if alive => flash(
            m,
            format!("{id} is already running; + starts another {}", row.role),
        ),
        's' if row.owned => vec![Effect::Start(id)],
        's' => flash(m, not_here(&id)),
        'x' if !alive => flash(m, format!("{id} is not running")),
        'x' if row.owned => confirm(
            m,
            format!("Stop {target}? SIGTERM now, SIGKILL after 5 s."),
            Effect::Stop(id),
        ),
        'x' => confirm(
            m,
            format!("Ask {target} to stop?"),
            Effect::Control(id, Control::Stop),
        ),
        'K' if !row.owned => flash(m, not_here(&id)),
        'K' if !alive => flash(m, format!("{id} is not running")),
        'K' => confirm(m, format!("kill -9 {target}?"), Effect::Kill(id)),
        'p' if !alive => flash(m, format!("{id} is not running")),
        'p' if row.owned => vec![Effect::Freeze(id, row.proc != Some(Proc::Frozen))],
        'p' => {
            let paused = shown == Shown::Paused;
            vec![Effect::Control(
                id,
                if paused { Control::Resume } else { Control::Pause },
            )]
        }
        'r' if !row.owned => flash(m, not_here(&id)),
        'r' if !alive => vec![Effect::Start(id)],
        'r' => confirm(m, format!("Restart {target}?"), Effect::Restart(id)),
        'R' => match Role::parse(&row.role).filter(|r| r.scales()) {
            Some(role) => {
                let n = crate::rollout::Rollout::of(m, role).total;
                confirm(
                    m,
                    format!("Rolling restart of {role}: its {n} node(s) one at a time, each back at work before the next?"),
                    Effect::RollingRestart(role),
                )
            }
            None => flash(m, format!("{} is one of a kind: r restarts it", row.role)),
        },
        'C' => match Role::parse(&row.role).filter(|r| r.scales()) {
            Some(role) => {
                m.ui.popup = Some(Popup::Canary {
                    role,
                    input: DEFAULT_CANARY.into(),
                });
                Vec::new()
            }
            None => flash(
                m,
                format!("{} is one of a kind: a canary needs a role that scales", row.role),
            ),
        },
        'B' if !row.data_here() => flash(m, format!("{id}'s data is not this control room's to back up")),
        'B' => vec![Effect::Storage {
            node: id,
            op: crate::msg::StorageOp::Backup,
        }],
        '+' | '-' => scale(m, &row, c == '+'),
        'f' if row.carries_messages() => flash(
            m,
            "the broker takes no injected faults: K kills it, p freezes it".into(),
        ),
        'f' if !alive => flash(m, format!("{id} is not running")),
        'f' => {
            let faults = row.status.as_ref().map(|s| s.faults.clone()).unwrap_or_default();
            m.ui.popup = Some(Popup::Faults {
                id,
                cursor: 0,
                faults,
            });
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn scale(m: &mut Model, row: &NodeRow, up: bool) -> Vec<Effect> {
    let Some(role) = Role::parse(&row.role).filter(|r| r.scales()) else {
        m.ui.flash = Some(format!("{} does not scale", row.role));
        return Vec::new();
    };
    // Nodes already stopping no longer count: a second `-` takes the next one.
    let alive: Vec<&NodeRow> = crate::model::nodes::running(&m.nodes, &row.role, m.now).collect();
    let n = alive.len();
    if up {
        m.log
            .push(m.now, Level::Info, format!("scale {role}: {n} → {}", n + 1));
        return vec![Effect::ScaleUp(role)];
    }
    // Scale down by stopping the newest node of the role started here.
    let newest = alive
        .iter()
        .filter(|n| n.owned)
        .max_by_key(|n| (n.since, n.id.clone()))
        .map(|n| (n.id.clone(), target(n)));
    match newest {
        Some((id, target)) => {
            m.ui.popup = Some(Popup::Confirm {
                question: format!("Scale {role} {n} → {}: stop {target}?", n - 1),
                effect: Effect::Stop(id),
            });
        }
        None => m.ui.flash = Some(format!("no {role} started here is running")),
    }
    Vec::new()
}

/// "kitchen-1 (pid 4242)".
fn target(row: &NodeRow) -> String {
    match row.pid {
        Some(pid) => format!("{} (pid {pid})", row.id),
        None => row.id.clone(),
    }
}

fn not_here(id: &str) -> String {
    format!("{id} was not started by this control room; it can only be put on hold, asked to stop, or given faults")
}
