//! The control room carries every role: `control-room node <role>` runs it.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child on drop, also when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn control_room_node_broker_serves_mqtt() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port");
    let dir = tempfile::tempdir().expect("a temp dir");
    let _broker = Child(
        Command::new(env!("CARGO_BIN_EXE_control-room"))
            .args([
                "node",
                "broker",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .arg("--log-file")
            .arg(dir.path().join("broker.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("control-room starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the re-executed broker never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unknown_role_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_control-room"))
        .args(["node", "bakery"])
        .output()
        .expect("control-room runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bakery"));
}
