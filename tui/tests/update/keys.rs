//! Every key: selection, popups, confirmations, node and fault commands.

use super::*;

#[test]
fn help_opens_with_question_mark_and_any_key_closes_it() {
    let mut m = model();
    assert_eq!(update(&mut m, key('?')), vec![]);
    assert!(m.dirty);
    assert_eq!(m.ui.popup, Some(Popup::Help));
    // The closing key does nothing else: `q` here does not quit.
    assert_eq!(update(&mut m, key('q')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.quitting, None);
    update(&mut m, key('?'));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.ui.focused(), Panel::Nodes, "tab only closed help");
    update(&mut m, key('?'));
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.popup, None);
}

#[test]
fn a_key_release_does_nothing() {
    let mut m = model();
    let mut release = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(update(&mut m, Msg::Key(release)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn tab_and_shift_tab_cycle_the_panels() {
    let mut m = model();
    assert_eq!(m.ui.focused(), Panel::Nodes);
    let mut seen = vec![];
    for _ in 0..5 {
        update(&mut m, code(KeyCode::Tab));
        seen.push(m.ui.focused());
    }
    assert_eq!(
        seen,
        [
            Panel::Queues,
            Panel::Orders,
            Panel::Drivers,
            Panel::Events,
            Panel::Nodes
        ]
    );
    let back_tab = Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    update(&mut m, back_tab.clone());
    assert_eq!(m.ui.focused(), Panel::Events);
    update(&mut m, back_tab);
    assert_eq!(m.ui.focused(), Panel::Drivers);
}

#[test]
fn j_k_g_and_arrows_move_the_node_selection_by_id() {
    let mut m = model();
    for (id, role) in [
        ("kitchen-1", Role::Kitchen),
        ("broker", Role::Broker),
        ("order-1", Role::Order),
        ("kitchen-2", Role::Kitchen),
    ] {
        up_node(&mut m, id, role, false, 1);
    }
    assert_eq!(m.node_ids(), ["broker", "order-1", "kitchen-1", "kitchen-2"]);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("broker"), "first row");
    let sel = |m: &Model| m.selected(Panel::Nodes).unwrap();
    update(&mut m, key('j'));
    assert_eq!(sel(&m), "order-1");
    update(&mut m, code(KeyCode::Down));
    assert_eq!(sel(&m), "kitchen-1");
    update(&mut m, key('k'));
    assert_eq!(sel(&m), "order-1");
    update(&mut m, code(KeyCode::Up));
    update(&mut m, code(KeyCode::Up));
    assert_eq!(sel(&m), "broker", "k stops at the top");
    update(&mut m, key('G'));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, key('j'));
    assert_eq!(sel(&m), "kitchen-2", "j stops at the bottom");
    update(&mut m, key('g'));
    assert_eq!(sel(&m), "broker");
    update(&mut m, code(KeyCode::End));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, code(KeyCode::PageUp));
    assert_eq!(sel(&m), "broker");
    update(&mut m, code(KeyCode::PageDown));
    assert_eq!(sel(&m), "kitchen-2");
    update(&mut m, code(KeyCode::Home));
    assert_eq!(sel(&m), "broker");
}

#[test]
fn the_node_selection_stays_on_its_id_when_rows_are_added_before_it() {
    let mut m = model();
    up_node(&mut m, "kitchen-2", Role::Kitchen, false, 2);
    up_node(&mut m, "kitchen-3", Role::Kitchen, false, 3);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-3"));
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 1);
    spawn(&mut m, "broker", Role::Broker, 100);
    assert_eq!(m.node_ids(), ["broker", "kitchen-1", "kitchen-2", "kitchen-3"]);
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-3"));
    update(&mut m, key('k'));
    assert_eq!(m.selected(Panel::Nodes).as_deref(), Some("kitchen-2"));
}

#[test]
fn the_order_selection_stays_on_its_id_when_new_orders_arrive() {
    let mut m = model();
    focus(&mut m, Panel::Orders);
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    assert_eq!(m.selectable(Panel::Orders), ["ord-2", "ord-1"], "newest first");
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, placed("ord-3", T0));
    update(&mut m, placed("ord-4", T0));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, key('k'));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-2"));
}

#[test]
fn the_driver_selection_moves_over_every_delivery_nodes_drivers() {
    let mut m = model();
    let mut s = beat("delivery-1", "delivery", NodeState::Up, 61, T0);
    s.figures.delivery.drivers = serde_json::from_value(serde_json::json!([
        {"driver": "dora", "order_id": null, "since": null},
        {"driver": "ezra", "order_id": "ord-1", "since": rfc(T0)},
    ]))
    .ok();
    update(&mut m, Msg::Status(Box::new(s)));
    focus(&mut m, Panel::Drivers);
    assert_eq!(m.selectable(Panel::Drivers), ["dora", "ezra"]);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Drivers).as_deref(), Some("ezra"));
    // The events panel has nothing to select.
    focus(&mut m, Panel::Events);
    assert_eq!(update(&mut m, key('j')), vec![]);
    assert_eq!(m.selected(Panel::Events), None);
}

#[test]
fn slash_filters_the_orders_enter_keeps_the_filter_esc_clears_it() {
    let mut m = model();
    for id in ["ord-apple", "ord-berry", "ord-apricot"] {
        update(&mut m, placed(id, T0));
    }
    assert_eq!(update(&mut m, key('/')), vec![]);
    assert!(m.ui.filtering);
    assert_eq!(m.ui.focused(), Panel::Orders, "/ moves to the orders");
    // While filtering, letters go to the filter: `q` does not quit.
    assert_eq!(type_keys(&mut m, "APq"), vec![]);
    assert_eq!(m.quitting, None);
    assert_eq!(m.ui.filter, "APq");
    assert_eq!(m.selectable(Panel::Orders), Vec::<String>::new());
    update(&mut m, code(KeyCode::Backspace));
    assert_eq!(m.ui.filter, "AP");
    assert_eq!(
        m.selectable(Panel::Orders),
        ["ord-apricot", "ord-apple"],
        "case-insensitive"
    );
    update(&mut m, code(KeyCode::Enter));
    assert!(!m.ui.filtering);
    assert_eq!(m.ui.filter, "AP", "enter keeps the filter");
    assert_eq!(m.selectable(Panel::Orders), ["ord-apricot", "ord-apple"]);
    // Esc on the panel clears it.
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.filter, "");
    assert_eq!(m.selectable(Panel::Orders).len(), 3);
    // Esc while typing clears and stops filtering.
    update(&mut m, key('/'));
    type_keys(&mut m, "berry");
    assert_eq!(m.selectable(Panel::Orders), ["ord-berry"]);
    update(&mut m, code(KeyCode::Esc));
    assert!(!m.ui.filtering);
    assert_eq!(m.ui.filter, "");
    assert_eq!(m.selectable(Panel::Orders).len(), 3);
}

#[test]
fn the_filter_matches_the_state_too_and_stops_at_40_characters() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    update(&mut m, paid("ord-2", T0));
    update(&mut m, key('/'));
    type_keys(&mut m, "paid");
    assert_eq!(m.selectable(Panel::Orders), ["ord-2"]);
    type_keys(&mut m, &"x".repeat(50));
    assert_eq!(m.ui.filter.chars().count(), 40);
}

#[test]
fn x_on_an_order_asks_then_cancels_it_through_the_order_service() {
    let mut m = model();
    order_node(&mut m);
    update(&mut m, placed("ord-1", T0));
    update(&mut m, paid("ord-1", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(confirm_question(&m), "cancel order ord-1 (paid)?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::CancelOrder {
            url: ORDER_URL.into(),
            order_id: "ord-1".into()
        }]
    );
    update(
        &mut m,
        Msg::CancelAnswered {
            order_id: "ord-1".into(),
            outcome: Ok(()),
        },
    );
    assert!(
        flash(&m).starts_with("cancellation of ord-1 accepted"),
        "{}",
        flash(&m)
    );
    update(
        &mut m,
        Msg::CancelAnswered {
            order_id: "ord-1".into(),
            outcome: Err("409 order ord-1 was delivered already".into()),
        },
    );
    assert_eq!(last_log(&m).level, Level::Warn);
    assert!(last_log(&m).text.contains("409"), "{}", last_log(&m).text);
}

#[test]
fn x_on_an_order_without_an_order_service_or_one_that_ended_only_flashes() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert!(flash(&m).contains("no order service"), "{}", flash(&m));
}

#[test]
fn brackets_step_through_an_orders_history_and_back_to_live() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, paid("ord-1", T0));
    focus(&mut m, Panel::Orders);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.history_step, None, "live");
    update(&mut m, key('['));
    assert_eq!(m.ui.history_step, Some(0), "as of the first event");
    update(&mut m, code(KeyCode::Left));
    assert_eq!(m.ui.history_step, Some(0), "stays at the first");
    update(&mut m, key(']'));
    assert_eq!(m.ui.history_step, None, "past the last: live again");
    update(&mut m, key('['));
    update(&mut m, code(KeyCode::Esc));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.history_step, None, "a reopened detail is live");
}

#[test]
fn history_steps_are_clamped() {
    use tui::keys::step_history;
    assert_eq!(step_history(None, true, 0), None);
    assert_eq!(step_history(None, true, 5), Some(3));
    assert_eq!(step_history(Some(3), false, 5), None);
    assert_eq!(step_history(Some(2), false, 5), Some(3));
    assert_eq!(step_history(Some(0), true, 5), Some(0));
    assert_eq!(step_history(None, false, 5), None);
}

#[test]
fn enter_opens_an_order_and_esc_closes_it() {
    let mut m = model();
    update(&mut m, placed("ord-1", T0));
    update(&mut m, placed("ord-2", T0));
    focus(&mut m, Panel::Orders);
    assert_eq!(update(&mut m, code(KeyCode::Enter)), vec![]);
    assert_eq!(m.ui.detail, Some(Detail::Order("ord-2".into())));
    // j moves the detail to the next order.
    update(&mut m, key('j'));
    assert_eq!(m.ui.detail, Some(Detail::Order("ord-1".into())));
    assert_eq!(m.selected(Panel::Orders).as_deref(), Some("ord-1"));
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None);
    // Tab leaves the detail for the next panel.
    update(&mut m, code(KeyCode::Enter));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.ui.detail, None);
    assert_eq!(m.ui.focused(), Panel::Drivers);
}

#[test]
fn enter_with_no_orders_opens_nothing() {
    let mut m = model();
    focus(&mut m, Panel::Orders);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.detail, None);
    focus(&mut m, Panel::Nodes);
    up_node(&mut m, "kitchen-1", Role::Kitchen, false, 1);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(m.ui.detail, None, "nodes have no detail view");
}

#[test]
fn enter_on_a_queue_opens_its_dead_letters_r_requeues_one_and_a_all() {
    let mut m = model();
    update(&mut m, stats("kitchen", 0, 0, 2));
    update(
        &mut m,
        Msg::DeadLetters {
            queue: "delivery".into(),
            items: vec![dead_letter(7, "delivery"), dead_letter(9, "delivery")],
        },
    );
    focus(&mut m, Panel::Queues);
    update(&mut m, key('j'));
    assert_eq!(m.selected(Panel::Queues).as_deref(), Some("delivery"));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "delivery".into(),
            cursor: 0
        })
    );
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("delivery".into(), Some(7))]
    );
    assert_eq!(last_log(&m).text, "re-queue dead letter 7 of delivery");
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "delivery".into(),
            cursor: 1
        }),
        "the cursor stops at the last dead letter"
    );
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("delivery".into(), Some(9))]
    );
    assert_eq!(
        update(&mut m, key('A')),
        vec![Effect::Requeue("delivery".into(), None)]
    );
    assert_eq!(last_log(&m).text, "re-queue all 2 dead letters of delivery");
    assert!(m.ui.detail.is_some(), "the view stays open");
    update(&mut m, code(KeyCode::Esc));
    assert_eq!(m.ui.detail, None);
}

#[test]
fn r_on_a_queue_without_dead_letters_flashes() {
    let mut m = model();
    focus(&mut m, Panel::Queues);
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.detail,
        Some(Detail::DeadLetters {
            queue: "kitchen".into(),
            cursor: 0
        })
    );
    assert_eq!(update(&mut m, key('r')), vec![]);
    assert_eq!(flash(&m), "kitchen has no dead letters");
}

#[test]
fn r_requeues_the_highlighted_letter_after_the_list_shrinks() {
    let mut m = model();
    let list = |ids: &[u64]| Msg::DeadLetters {
        queue: "kitchen".into(),
        items: ids.iter().map(|i| dead_letter(*i, "kitchen")).collect(),
    };
    update(&mut m, list(&[7, 8, 9]));
    focus(&mut m, Panel::Queues);
    update(&mut m, code(KeyCode::Enter));
    update(&mut m, key('G'));
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("kitchen".into(), Some(9))]
    );
    // The keeper lists the two that are left.
    update(&mut m, list(&[7, 8]));
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Requeue("kitchen".into(), Some(8))],
        "flash: {}",
        flash(&m)
    );
}

#[test]
fn space_freezes_the_display_but_keys_still_redraw() {
    let mut m = model();
    update(&mut m, key(' '));
    assert!(m.ui.frozen);
    assert!(flash(&m).contains("frozen"), "{}", flash(&m));
    m.dirty = false;
    update(&mut m, Msg::Tick(T0 + Duration::seconds(5)));
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-1", "kitchen", NodeState::Up, 1, T0))),
    );
    update(&mut m, stats("kitchen", 1, 0, 0));
    update(&mut m, placed("ord-1", T0));
    update(
        &mut m,
        Msg::DeadLetters {
            queue: "kitchen".into(),
            items: vec![],
        },
    );
    update(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    spawn(&mut m, "kitchen-2", Role::Kitchen, 2);
    update(&mut m, Msg::Placed(PlaceOutcome::default()));
    assert!(!m.dirty, "data does not redraw while frozen");
    assert_eq!(m.orders.total(), 1, "but the model follows");
    assert!(m.nodes.contains_key("kitchen-1"));
    update(&mut m, key('j'));
    assert!(m.dirty, "keys redraw");
    m.dirty = false;
    update(&mut m, Msg::Resize);
    assert!(m.dirty, "a resize redraws");
    update(&mut m, key(' '));
    assert!(!m.ui.frozen);
    assert_eq!(flash(&m), "display follows the platform again");
    m.dirty = false;
    update(&mut m, stats("kitchen", 2, 0, 0));
    assert!(m.dirty);
}

#[test]
fn a_refused_burst_flashes_even_while_frozen() {
    let mut m = model();
    update(&mut m, key(' '));
    m.dirty = false;
    let outcome = PlaceOutcome {
        requested: 1,
        accepted: vec![],
        refused: BTreeMap::from([("503 payment_unavailable".to_string(), 1)]),
        first_error: None,
        quiet: false,
    };
    update(&mut m, Msg::Placed(outcome));
    assert!(flash(&m).contains("503 payment_unavailable"));
    assert!(m.dirty, "the answer to `o` is drawn like a refusal is");
}

#[test]
fn capital_letters_and_symbols_arrive_with_shift() {
    let shifted = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT));
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, shifted('?'));
    assert_eq!(m.ui.popup, Some(Popup::Help));
    update(&mut m, code(KeyCode::Esc));
    update(&mut m, shifted('K'));
    assert_eq!(confirm_question(&m), "kill -9 kitchen-1 (pid 4242)?");
    update(&mut m, key('n'));
    assert_eq!(update(&mut m, shifted('+')), vec![Effect::ScaleUp(Role::Kitchen)]);
    update(&mut m, shifted('O'));
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "20".into() }));
}

#[test]
fn the_flash_clears_on_the_next_key() {
    let mut m = model();
    update(&mut m, key(' '));
    assert!(m.ui.flash.is_some());
    update(&mut m, key('j'));
    assert_eq!(m.ui.flash, None);
}

#[test]
fn o_without_an_order_service_flashes() {
    let mut m = model();
    // An order node that is down does not count.
    up_node(&mut m, "order-1", Role::Order, true, 31);
    exited(&mut m, "order-1", Role::Order, Some(0), None, true);
    assert_eq!(update(&mut m, key('o')), vec![]);
    assert!(flash(&m).starts_with("no order service is up"), "{}", flash(&m));
    assert_eq!(last_log(&m).level, Level::Warn);
    assert_eq!(m.placing, 0);
}

#[test]
fn o_places_one_order_with_an_order_service_up() {
    let mut m = model();
    order_node(&mut m);
    assert_eq!(
        update(&mut m, key('o')),
        vec![Effect::PlaceOrders {
            url: ORDER_URL.into(),
            count: 1,
            quiet: false,
        }]
    );
    assert_eq!(m.placing, 1);
    // Once its heartbeat is stale it is no longer up.
    tick(&mut m, T0 + Duration::seconds(10));
    assert_eq!(update(&mut m, key('o')), vec![]);
    assert!(flash(&m).starts_with("no order service is up"));
}

#[test]
fn capital_o_asks_how_many_digits_and_backspace_edit_enter_places() {
    let mut m = model();
    order_node(&mut m);
    assert_eq!(update(&mut m, key('O')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "20".into() }));
    update(&mut m, code(KeyCode::Backspace));
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "2".into() }));
    assert_eq!(type_keys(&mut m, "5x"), vec![], "letters are ignored");
    assert_eq!(m.ui.popup, Some(Popup::Burst { input: "25".into() }));
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::PlaceOrders {
            url: ORDER_URL.into(),
            count: 25,
            quiet: false,
        }]
    );
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.placing, 25);
}

#[test]
fn the_burst_is_clamped_and_an_empty_one_is_the_default() {
    let mut m = model();
    order_node(&mut m);
    let burst = |m: &mut Model, typed: &str| {
        update(m, key('O'));
        update(m, code(KeyCode::Backspace));
        update(m, code(KeyCode::Backspace));
        type_keys(m, typed);
        update(m, code(KeyCode::Enter))
    };
    let count = |effects: Vec<Effect>| match effects.as_slice() {
        [Effect::PlaceOrders { count, .. }] => *count,
        other => panic!("expected one PlaceOrders, got {other:?}"),
    };
    assert_eq!(count(burst(&mut m, "")), 20);
    assert_eq!(count(burst(&mut m, "0")), 1);
    assert_eq!(
        count(burst(&mut m, "9999999")),
        10_000,
        "5 digits at most, then clamped"
    );
}

#[test]
fn esc_cancels_the_burst() {
    let mut m = model();
    order_node(&mut m);
    update(&mut m, key('O'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.placing, 0);
}

#[test]
fn q_with_owned_nodes_running_asks_and_enter_stops_them() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('q')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(m.quitting, None);
    // Another key keeps the question open.
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Quit { stop_nodes: true }]
    );
    assert_eq!(m.quitting, Some(true));
}

#[test]
fn d_in_the_quit_popup_leaves_the_nodes_running() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('q'));
    assert_eq!(update(&mut m, key('d')), vec![Effect::Quit { stop_nodes: false }]);
    assert_eq!(m.quitting, Some(false));
}

#[test]
fn esc_in_the_quit_popup_stays() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('q'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.quitting, None);
}

#[test]
fn q_without_owned_nodes_running_quits_at_once() {
    let mut m = model();
    // A node found running and one started here that has stopped.
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4242);
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    assert_eq!(update(&mut m, key('q')), vec![Effect::Quit { stop_nodes: true }]);
    assert_eq!(m.quitting, Some(true));
    assert_eq!(m.ui.popup, None);
}

#[test]
fn ctrl_c_behaves_like_q() {
    let ctrl_c = || Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let mut m = model();
    assert_eq!(update(&mut m, ctrl_c()), vec![Effect::Quit { stop_nodes: true }]);
    assert_eq!(m.quitting, Some(true));

    let mut m = model();
    owned_kitchen(&mut m);
    // Even while typing a filter.
    update(&mut m, key('/'));
    assert_eq!(update(&mut m, ctrl_c()), vec![]);
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(update(&mut m, key('d')), vec![Effect::Quit { stop_nodes: false }]);
    assert_eq!(m.quitting, Some(false));
}

#[test]
fn x_asks_naming_the_node_and_pid_then_y_stops_it() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('x')), vec![]);
    let question = confirm_question(&m);
    assert!(question.contains("kitchen-1 (pid 4242)"), "{question}");
    assert_eq!(
        question,
        "Stop kitchen-1 (pid 4242)? SIGTERM now, SIGKILL after 5 s."
    );
    // Any other key leaves the question open.
    assert_eq!(update(&mut m, key('j')), vec![]);
    assert_eq!(confirm_question(&m), question);
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-1".into())]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(last_log(&m).text, format!("{question} yes"));
}

#[test]
fn n_answers_the_confirmation_with_nothing() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('x'));
    let lines = m.log.len();
    assert_eq!(update(&mut m, key('n')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(m.log.len(), lines);
    update(&mut m, key('x'));
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn capital_k_asks_then_kills() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('K')), vec![]);
    assert_eq!(confirm_question(&m), "kill -9 kitchen-1 (pid 4242)?");
    assert_eq!(update(&mut m, key('y')), vec![Effect::Kill("kitchen-1".into())]);
}

#[test]
fn p_freezes_and_after_the_frozen_event_thaws() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Freeze("kitchen-1".into(), true)]
    );
    child(
        &mut m,
        ChildEvent::Frozen {
            id: "kitchen-1".into(),
            frozen: true,
        },
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Freeze("kitchen-1".into(), false)]
    );
}

#[test]
fn r_asks_then_restarts_and_starts_a_node_that_is_down() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('r')), vec![]);
    assert_eq!(confirm_question(&m), "Restart kitchen-1 (pid 4242)?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::Restart("kitchen-1".into())]
    );
    exited(&mut m, "kitchen-1", Role::Kitchen, None, Some(SIGKILL), false);
    assert_eq!(update(&mut m, key('r')), vec![Effect::Start("kitchen-1".into())]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn s_flashes_on_a_running_node_and_starts_a_down_one() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('s')), vec![]);
    assert_eq!(
        flash(&m),
        "kitchen-1 is already running; + starts another kitchen"
    );
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    assert_eq!(update(&mut m, key('s')), vec![Effect::Start("kitchen-1".into())]);
    assert_eq!(m.ui.flash, None);
}

#[test]
fn x_k_p_on_a_node_that_is_down_flash_not_running() {
    let mut m = model();
    owned_kitchen(&mut m);
    exited(&mut m, "kitchen-1", Role::Kitchen, Some(0), None, true);
    for c in ['x', 'K', 'p', 'f'] {
        assert_eq!(update(&mut m, key(c)), vec![], "{c}");
        assert_eq!(flash(&m), "kitchen-1 is not running", "{c}");
        assert_eq!(m.ui.popup, None, "{c}");
    }
}

#[test]
fn plus_scales_the_role_up() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('+')), vec![Effect::ScaleUp(Role::Kitchen)]);
    assert_eq!(last_log(&m).text, "scale kitchen: 1 → 2");
}

#[test]
fn plus_on_the_broker_flashes() {
    let mut m = model();
    spawn(&mut m, "broker", Role::Broker, 100);
    assert_eq!(update(&mut m, key('+')), vec![]);
    assert_eq!(flash(&m), "broker does not scale");
}

#[test]
fn minus_asks_to_stop_the_newest_kitchen() {
    let mut m = model();
    // kitchen-2 first, kitchen-1 five seconds later: newest is by start, not id.
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    tick(&mut m, T0 + Duration::seconds(5));
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    // Found running, not started here: never the one scaled down.
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4009);
    select(&mut m, Panel::Nodes, "kitchen-2");
    assert_eq!(update(&mut m, key('-')), vec![]);
    let question = confirm_question(&m);
    assert_eq!(question, "Scale kitchen 3 → 2: stop kitchen-1 (pid 4001)?");
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-1".into())]);
}

#[test]
fn minus_with_no_owned_node_of_the_role_flashes() {
    let mut m = model();
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4009);
    assert_eq!(update(&mut m, key('-')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert_eq!(flash(&m), "no kitchen started here is running");
}

#[test]
fn a_second_minus_stops_the_next_newest_kitchen() {
    let mut m = model();
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    tick(&mut m, T0 + Duration::seconds(1));
    up_node(&mut m, "kitchen-2", Role::Kitchen, true, 4002);
    tick(&mut m, T0 + Duration::seconds(2));
    up_node(&mut m, "kitchen-3", Role::Kitchen, true, 4003);
    select(&mut m, Panel::Nodes, "kitchen-1");
    update(&mut m, key('-'));
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-3".into())]);
    child(
        &mut m,
        ChildEvent::Stopping {
            id: "kitchen-3".into(),
        },
    );
    update(&mut m, key('-'));
    assert_eq!(
        confirm_question(&m),
        "Scale kitchen 2 → 1: stop kitchen-2 (pid 4002)?"
    );
    assert_eq!(update(&mut m, key('y')), vec![Effect::Stop("kitchen-2".into())]);
}

#[test]
fn f_opens_the_fault_menu_enter_cycles_c_clears_esc_closes() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 0,
            faults: Faults::default()
        })
    );
    let latency = |ms| Faults {
        latency_ms: ms,
        ..Faults::default()
    };
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(100) }
        )]
    );
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(500) }
        )]
    );
    assert_eq!(
        update(&mut m, key('h')),
        vec![Effect::Control(
            "kitchen-1".into(),
            Control::SetFaults { faults: latency(100) }
        )],
        "h goes back"
    );
    // The next line: the error rate.
    update(&mut m, key('j'));
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(id, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(id, "kitchen-1");
    assert_eq!(faults.latency_ms, 100);
    assert!(faults.error_rate > 0.0);
    assert_eq!(
        update(&mut m, key('c')),
        vec![Effect::Control("kitchen-1".into(), Control::ClearFaults)]
    );
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 1,
            faults: Faults::default()
        })
    );
    assert_eq!(update(&mut m, code(KeyCode::Esc)), vec![]);
    assert_eq!(m.ui.popup, None);
}

#[test]
fn the_fault_menu_starts_from_the_nodes_faults_and_offers_out_of_stock_to_kitchens() {
    let mut m = model();
    m.info.ingredients = vec!["basil".into(), "mozzarella".into()];
    owned_kitchen(&mut m);
    let mut s = beat("kitchen-1", "kitchen", NodeState::Up, 4242, T0);
    s.faults.latency_ms = 2_000;
    update(&mut m, Msg::Status(Box::new(s)));
    update(&mut m, key('f'));
    update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        m.ui.popup,
        Some(Popup::Faults {
            id: "kitchen-1".into(),
            cursor: 0,
            faults: Faults {
                latency_ms: 5_000,
                ..Faults::default()
            }
        })
    );
    type_keys(&mut m, "jjjjjjj");
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(
        faults.out_of_stock,
        ["basil"],
        "the last line of a kitchen's menu"
    );
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(faults.out_of_stock, ["mozzarella"]);
}

#[test]
fn the_fault_menu_sets_reorder_after_duplicate_and_the_row_shows_it() {
    let mut m = model();
    owned_kitchen(&mut m);
    update(&mut m, key('f'));
    // latency, error rate, drop, duplicate, reorder
    type_keys(&mut m, "jjjj");
    let effects = update(&mut m, code(KeyCode::Enter));
    let [Effect::Control(_, Control::SetFaults { faults })] = effects.as_slice() else {
        panic!("expected one SetFaults, got {effects:?}");
    };
    assert_eq!(
        faults,
        &Faults {
            reorder_rate: 0.1,
            ..Faults::default()
        }
    );
    let mut s = beat("kitchen-1", "kitchen", NodeState::Up, 4242, T0);
    s.faults = faults.clone();
    s.faults.duplicate_rate = 0.5;
    update(&mut m, Msg::Status(Box::new(s)));
    assert_eq!(m.nodes["kitchen-1"].faults_text(m.now), "dup 50% reorder 10%");
}

#[test]
fn the_order_rows_faults_show_breaker_refusals_and_held_back_events() {
    let mut m = model();
    let mut s = beat("order-1", "order", NodeState::Up, 31, T0);
    s.figures.order.breaker = Some(BreakerState::Open);
    s.figures.order.breaker_rejected = Some(5);
    s.figures.order.held_back = Some(2);
    update(&mut m, Msg::Status(Box::new(s)));
    assert_eq!(
        m.nodes["order-1"].faults_text(m.now),
        "breaker open (5 refused) 2 held"
    );
}

#[test]
fn an_open_breaker_counts_down_to_its_half_open_trial() {
    let mut m = model();
    let mut s = beat("order-1", "order", NodeState::Up, 31, T0);
    s.figures.order.breaker = Some(BreakerState::Open);
    let at = (T0 + Duration::milliseconds(4_500))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.figures.order.breaker_half_open_at = Some(at);
    update(&mut m, Msg::Status(Box::new(s)));
    tick(&mut m, T0);
    assert_eq!(m.nodes["order-1"].faults_text(m.now), "breaker open 5s");
    tick(&mut m, T0 + Duration::seconds(4));
    assert_eq!(m.nodes["order-1"].faults_text(m.now), "breaker open 1s");
}

#[test]
fn f_on_the_broker_flashes() {
    let mut m = model();
    spawn(&mut m, "broker", Role::Broker, 100);
    update(
        &mut m,
        Msg::Feed {
            connected: true,
            detail: String::new(),
        },
    );
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert_eq!(m.ui.popup, None);
    assert!(
        flash(&m).starts_with("the broker takes no injected faults"),
        "{}",
        flash(&m)
    );
}

#[test]
fn node_keys_on_a_node_not_started_here() {
    let mut m = model();
    up_node(&mut m, "kitchen-7", Role::Kitchen, false, 777);
    for c in ['K', 'r'] {
        assert_eq!(update(&mut m, key(c)), vec![], "{c}");
        assert!(flash(&m).contains("not started"), "{c}: {}", flash(&m));
        assert_eq!(m.ui.popup, None);
    }
    assert_eq!(update(&mut m, key('s')), vec![]);
    assert_eq!(
        flash(&m),
        "kitchen-7 is already running; + starts another kitchen"
    );
    // It can be asked to stop, and paused over the broker.
    update(&mut m, key('x'));
    assert_eq!(confirm_question(&m), "Ask kitchen-7 (pid 777) to stop?");
    assert_eq!(
        update(&mut m, key('y')),
        vec![Effect::Control("kitchen-7".into(), Control::Stop)]
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Control("kitchen-7".into(), Control::Pause)]
    );
    update(
        &mut m,
        Msg::Status(Box::new(beat("kitchen-7", "kitchen", NodeState::Paused, 777, T0))),
    );
    assert_eq!(
        update(&mut m, key('p')),
        vec![Effect::Control("kitchen-7".into(), Control::Resume)]
    );
    assert_eq!(update(&mut m, key('f')), vec![]);
    assert!(matches!(m.ui.popup, Some(Popup::Faults { .. })));
}

#[test]
fn node_keys_outside_the_nodes_panel_flash_and_do_nothing() {
    let mut m = model();
    owned_kitchen(&mut m);
    for panel in [Panel::Queues, Panel::Orders, Panel::Drivers, Panel::Events] {
        focus(&mut m, panel);
        for c in ['s', 'x', 'K', 'p', 'r', '+', '-', 'f'] {
            if c == 'x' && panel == Panel::Orders {
                continue; // x cancels an order there
            }
            assert_eq!(update(&mut m, key(c)), vec![], "{c} on {panel:?}");
            assert_eq!(
                flash(&m),
                format!("`{c}` acts on a node: tab to the Nodes panel and select one"),
                "{c} on {panel:?}"
            );
            assert_eq!(m.ui.popup, None, "{c} on {panel:?}");
        }
    }
}

#[test]
fn node_keys_with_no_node_flash() {
    let mut m = model();
    assert_eq!(update(&mut m, key('x')), vec![]);
    assert_eq!(flash(&m), "no node selected");
}

#[test]
fn a_links_menu_line_cycles_its_network_faults_and_c_heals_it() {
    use tui::model::network::{Toxic, ToxicKind};
    let mut m = model();
    owned_kitchen(&mut m);
    m.nodes.get_mut("kitchen-1").expect("row").links = vec!["broker".into()];
    update(&mut m, key('f'));
    // The kitchen's lines: 6 faults, out of stock, then its broker link.
    for _ in 0..7 {
        update(&mut m, key('j'));
    }
    let effects = update(&mut m, code(KeyCode::Enter));
    let latency = vec![Toxic::new(ToxicKind::Latency {
        ms: 200,
        jitter_ms: 0,
    })];
    assert_eq!(
        effects,
        vec![Effect::Network {
            node: "kitchen-1".into(),
            link: "broker".into(),
            toxics: latency.clone(),
        }]
    );
    // The shell reports what the proxy applies; the row and its FAULTS show it.
    let applied = Msg::Network {
        node: "kitchen-1".into(),
        link: "broker".into(),
        toxics: latency,
    };
    update(&mut m, applied);
    assert_eq!(m.nodes["kitchen-1"].faults_text(m.now), "broker: +200ms");
    assert!(m
        .log
        .newest()
        .any(|l| l.text == "network: kitchen-1 → broker: +200ms"));
    let back = update(&mut m, key('h'));
    assert_eq!(
        back,
        vec![Effect::Network {
            node: "kitchen-1".into(),
            link: "broker".into(),
            toxics: vec![],
        }],
        "h goes back to a clean link"
    );
    let cleared = update(&mut m, key('c'));
    assert_eq!(
        cleared,
        vec![
            Effect::Control("kitchen-1".into(), Control::ClearFaults),
            Effect::Network {
                node: "kitchen-1".into(),
                link: "broker".into(),
                toxics: vec![],
            }
        ]
    );
    update(
        &mut m,
        Msg::Network {
            node: "kitchen-1".into(),
            link: "broker".into(),
            toxics: vec![],
        },
    );
    assert_eq!(m.nodes["kitchen-1"].faults_text(m.now), "");
}

#[test]
fn a_nodes_network_faults_survive_its_restart() {
    use tui::model::network::{Toxic, ToxicKind};
    let mut m = model();
    owned_kitchen(&mut m);
    let partition = vec![Toxic::new(ToxicKind::Partition)];
    update(
        &mut m,
        Msg::Network {
            node: "kitchen-1".into(),
            link: "broker".into(),
            toxics: partition,
        },
    );
    let again = Msg::Child(ChildEvent::Spawned {
        id: "kitchen-1".into(),
        role: Role::Kitchen,
        pid: 4343,
        metrics: None,
        links: vec!["broker".into()],
    });
    update(&mut m, again);
    assert_eq!(
        m.nodes["kitchen-1"].faults_text(m.now),
        "broker: partition",
        "the proxy keeps a link's toxics across the node's restart"
    );
}

#[test]
fn with_network_faults_the_nodes_cannot_be_left_running() {
    let mut m = model();
    owned_kitchen(&mut m);
    m.info.network_faults = true;
    update(&mut m, key('q'));
    assert_eq!(m.ui.popup, Some(Popup::Quit));
    assert_eq!(update(&mut m, key('d')), vec![]);
    assert_eq!(m.quitting, None);
    assert!(flash(&m).contains("--network-faults"), "{}", flash(&m));
    assert_eq!(m.ui.popup, Some(Popup::Quit), "still asking");
    assert_eq!(update(&mut m, key('s')), vec![Effect::Quit { stop_nodes: true }]);
}
