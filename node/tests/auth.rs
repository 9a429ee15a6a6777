//! Optional password authentication on the embedded broker.

mod support;

use std::time::Duration;

use support::{Mqtt, World};

/// A world whose broker runs with a users file of `lines`.
fn behind_users(lines: &str) -> (World, support::Proc) {
    let w = World::new();
    let users = w.path("users.txt");
    std::fs::write(&users, lines).unwrap();
    let broker = w.broker(&["--users", users.to_str().unwrap()]);
    (w, broker)
}

#[test]
fn only_the_right_password_gets_in() {
    let (w, _broker) = behind_users("# who may connect\nada:lovelace\nkeeper:s3cret\n");

    let wrong = Mqtt::connect(w.port, "intruder", Some(("ada", "babbage")));
    assert!(wrong.is_err(), "a wrong password is refused");
    let none = Mqtt::connect(w.port, "anonymous", None);
    assert!(none.is_err(), "no credentials are refused");
    assert!(Mqtt::connect(w.port, "ada~client", Some(("ada", "lovelace"))).is_ok());

    // Nodes log in through the broker URL, and the queues work behind auth
    // (the keeper and the log with the broker's own login; node p1 as
    // client id `ada~p1`).
    let url = format!("mqtt://ada:lovelace@127.0.0.1:{}", w.port);
    let dir = w.path("p1");
    let mut producer = support::Proc::spawn(
        "p1",
        &[
            "put",
            "--id",
            "p1",
            "--broker",
            &url,
            "--data-dir",
            dir.to_str().unwrap(),
            "--count",
            "5",
        ]
        .map(String::from),
        &w.path("p1.log"),
    );
    assert_eq!(
        producer.wait_exit(Duration::from_secs(60)),
        Some(0),
        "puts confirmed behind auth"
    );
    let lines = producer.with("confirmed");
    assert_eq!(lines[0]["confirmed"], 5);
}

#[test]
fn a_login_connects_only_with_its_own_client_ids_and_cannot_knock_a_node_off() {
    let (w, _broker) = behind_users("order:o\nkitchen-1:k\n");

    let order = Mqtt::connect(w.port, "order", Some(("order", "o"))).expect("order logs in as itself");
    order.subscribe("pizza/test/alive");
    // MQTT lets the newer connection with an id win; the broker refuses
    // the kitchen's login that id, so the order node stays connected.
    for taken in ["order", "order~x", "kitchen-10", "~broker~pizza-keeper"] {
        assert!(
            Mqtt::connect(w.port, taken, Some(("kitchen-1", "k"))).is_err(),
            "login kitchen-1 may not connect as {taken}"
        );
    }
    let kitchen = Mqtt::connect(w.port, "kitchen-1~probe", Some(("kitchen-1", "k")))
        .expect("kitchen-1 may use ids under its login");
    // Published until seen: the subscription may not be in place yet.
    let mut seen = None;
    for n in 0..50 {
        kitchen.publish("pizza/test/alive", format!("{{\"n\":{n}}}"));
        if let Ok(v) = order.wait("pizza/test/alive", Duration::from_millis(200), |_| true) {
            seen = Some(v);
            break;
        }
    }
    assert!(
        seen.is_some(),
        "the order node's connection is still up and receiving"
    );
}
