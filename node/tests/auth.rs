//! Optional password authentication on the embedded broker.

mod support;

use std::time::Duration;

use support::{Mqtt, World};

#[test]
fn only_the_right_password_gets_in() {
    let w = World::new();
    let users = w.path("users.txt");
    std::fs::write(&users, "# who may connect\nada:lovelace\nkeeper:s3cret\n").unwrap();
    let _broker = w.broker(&["--users", users.to_str().unwrap()]);

    let wrong = Mqtt::connect(w.port, "intruder", Some(("ada", "babbage")));
    assert!(wrong.is_err(), "a wrong password is refused");
    let none = Mqtt::connect(w.port, "anonymous", None);
    assert!(none.is_err(), "no credentials are refused");
    assert!(Mqtt::connect(w.port, "ada-client", Some(("ada", "lovelace"))).is_ok());

    // Nodes log in through the broker URL, and the queues work behind auth.
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
