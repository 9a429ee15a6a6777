//! Backups from the control room (storage.rs): `B`, `--backup-every`, and
//! what the shell reports back.

use super::*;
use tui::msg::StorageOp;
use tui::storage::Schedule;

fn backup_of(id: &str) -> Effect {
    Effect::Storage {
        node: id.into(),
        op: StorageOp::Backup,
    }
}

#[test]
fn capital_b_backs_up_the_selected_node_it_started() {
    let mut m = model();
    owned_kitchen(&mut m);
    assert_eq!(update(&mut m, key('B')), vec![backup_of("kitchen-1")]);
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4999);
    select(&mut m, Panel::Nodes, "kitchen-9");
    assert_eq!(update(&mut m, key('B')), vec![]);
    assert!(flash(&m).contains("not this control room's"), "{}", flash(&m));
}

#[test]
fn the_schedule_backs_up_every_running_node_once_a_period() {
    let mut m = model();
    up_node(&mut m, "broker", Role::Broker, true, 4000);
    up_node(&mut m, "kitchen-1", Role::Kitchen, true, 4001);
    up_node(&mut m, "kitchen-9", Role::Kitchen, false, 4999);
    let mut w = Watchers {
        backups: Some(Schedule::every(60.0)),
        ..Default::default()
    };
    assert_eq!(step(&mut m, &mut w, Msg::Tick(T0)), vec![]);
    assert_eq!(
        step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(59))),
        vec![]
    );
    let due = step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(60)));
    assert_eq!(
        due,
        vec![backup_of("broker"), backup_of("kitchen-1")],
        "not a node it did not start"
    );
    assert_eq!(
        step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(61))),
        vec![]
    );
    assert_eq!(
        step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(120))).len(),
        2
    );
}

#[test]
fn a_failed_backup_is_an_alert_naming_the_node() {
    let mut m = model();
    let failed = Msg::Storage {
        node: "broker".into(),
        op: StorageOp::Restore,
        outcome: Err("broker has no backup to restore".into()),
    };
    update(&mut m, failed);
    assert_eq!(last_log(&m).level, Level::Alert);
    assert_eq!(
        last_log(&m).text,
        "restore of broker failed: broker has no backup to restore"
    );
}

#[test]
fn a_scenarios_restore_step_waits_for_the_shell_and_fails_with_its_reason() {
    let mut m = model();
    up_node(&mut m, "broker", Role::Broker, true, 4000);
    let s = tui::scenario::Scenario::parse(
        "name = \"d\"\nproves = \"p\"\n\n[[node]]\nrole = \"broker\"\nid = \"broker\"\n\n[[step]]\ndo = \"restore\"\nnode = \"broker\"\n\n[[expect]]\nthat = \"none_lost\"\n",
        "t",
    )
    .expect("parses");
    let mut play = tui::play::Play::new(s, T0);
    play.started = Some(T0);
    let mut w = Watchers {
        play: Some(play),
        ..Default::default()
    };
    let effects = step(&mut m, &mut w, Msg::Tick(T0));
    assert!(
        effects.contains(&Effect::Storage {
            node: "broker".into(),
            op: StorageOp::Restore
        }),
        "{effects:?}"
    );
    step(&mut m, &mut w, Msg::Tick(T0 + Duration::seconds(1)));
    assert!(
        !w.play.as_ref().is_some_and(|p| p.finished()),
        "waits for the shell"
    );
    let failed = Msg::Storage {
        node: "broker".into(),
        op: StorageOp::Restore,
        outcome: Err("broker has no backup to restore".into()),
    };
    step(&mut m, &mut w, failed);
    let play = w.play.as_ref().expect("play");
    let verdict = play.verdict.as_ref().expect("failed at once");
    assert!(
        verdict
            .failed_step
            .as_deref()
            .is_some_and(|s| s.contains("broker has no backup to restore")),
        "{verdict:?}"
    );
}
