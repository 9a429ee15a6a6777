//! The fault proxy on real sockets: an echo server behind it, toxics set
//! and cleared while a client talks through it.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};
use tui::model::network::{Direction, Toxic, ToxicKind};
use tui::proxy::Proxies;

/// Long enough for bytes on loopback to have arrived if they were let through.
const QUIET: Duration = Duration::from_millis(400);
/// Deadline for what must arrive.
const DEADLINE: Duration = Duration::from_secs(10);

/// An echo server on an ephemeral port.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn proxied() -> (Proxies, SocketAddr) {
    let upstream = echo().await;
    let mut proxies = Proxies::new(tokio::runtime::Handle::current());
    let near = proxies.route("kitchen-1", "broker", upstream).expect("route");
    (proxies, near)
}

async fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(DEADLINE, s.read_exact(&mut buf))
        .await
        .expect("the bytes arrive before the deadline")
        .expect("read");
    buf
}

#[tokio::test]
async fn a_clean_link_passes_bytes_both_ways_and_keeps_its_port() {
    let (mut proxies, near) = proxied().await;
    let mut s = TcpStream::connect(near).await.expect("connect");
    s.write_all(b"hello").await.expect("write");
    assert_eq!(read_exactly(&mut s, 5).await, b"hello");
    let again = proxies
        .route("kitchen-1", "broker", "127.0.0.1:9".parse().expect("addr"))
        .expect("route");
    assert_eq!(again, near, "a link keeps its address for the run");
    assert_eq!(proxies.links_of("kitchen-1"), vec!["broker".to_string()]);
}

#[tokio::test]
async fn a_partition_holds_every_byte_and_new_connections_until_it_heals() {
    let (proxies, near) = proxied().await;
    let mut old = TcpStream::connect(near).await.expect("connect");
    old.write_all(b"one").await.expect("write");
    assert_eq!(read_exactly(&mut old, 3).await, b"one");

    proxies
        .set("kitchen-1", "broker", vec![Toxic::new(ToxicKind::Partition)])
        .expect("set");
    old.write_all(b"two").await.expect("write");
    let mut buf = [0u8; 3];
    assert!(
        timeout(QUIET, old.read_exact(&mut buf)).await.is_err(),
        "nothing passes a partition"
    );
    // A new connection is accepted by the proxy but reaches nothing.
    let mut new = TcpStream::connect(near).await.expect("connect");
    new.write_all(b"new").await.expect("write");
    assert!(timeout(QUIET, new.read_exact(&mut buf)).await.is_err());

    proxies.set("kitchen-1", "broker", vec![]).expect("heal");
    assert_eq!(
        read_exactly(&mut old, 3).await,
        b"two",
        "held bytes flow after the heal"
    );
    assert_eq!(read_exactly(&mut new, 3).await, b"new");
}

#[tokio::test]
async fn down_cuts_existing_connections_and_refuses_new_ones() {
    let (proxies, near) = proxied().await;
    let mut old = TcpStream::connect(near).await.expect("connect");
    old.write_all(b"x").await.expect("write");
    assert_eq!(read_exactly(&mut old, 1).await, b"x");
    proxies
        .set("kitchen-1", "broker", vec![Toxic::new(ToxicKind::Down)])
        .expect("set");
    let mut buf = [0u8; 8];
    let cut = timeout(DEADLINE, old.read(&mut buf)).await.expect("cut in time");
    assert!(
        matches!(&cut, Ok(0))
            || cut
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "the existing connection is cut: {cut:?}"
    );
    let mut new = TcpStream::connect(near).await.expect("the kernel accepts");
    let refused = timeout(DEADLINE, new.read(&mut buf))
        .await
        .expect("refused in time");
    assert!(
        matches!(&refused, Ok(0)) || refused.is_err(),
        "a new connection is refused: {refused:?}"
    );
}

#[tokio::test]
async fn reset_peer_resets_after_its_delay() {
    let (proxies, near) = proxied().await;
    let mut s = TcpStream::connect(near).await.expect("connect");
    let toxic = Toxic::new(ToxicKind::ResetPeer { ms: 300 });
    let set_at = Instant::now();
    proxies.set("kitchen-1", "broker", vec![toxic]).expect("set");
    let mut buf = [0u8; 8];
    let read = timeout(DEADLINE, s.read(&mut buf)).await.expect("reset in time");
    assert!(
        read.as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset)
            || matches!(read, Ok(0)),
        "reset: {read:?}"
    );
    assert!(
        set_at.elapsed() >= Duration::from_millis(300),
        "not before its delay"
    );
}

#[tokio::test]
async fn latency_delays_one_direction_and_a_slicer_keeps_every_byte_in_order() {
    let (proxies, near) = proxied().await;
    let toxics = vec![
        Toxic {
            kind: ToxicKind::Latency {
                ms: 250,
                jitter_ms: 0,
            },
            direction: Direction::Downstream,
            toxicity: 1.0,
        },
        Toxic::new(ToxicKind::Slicer {
            average_bytes: 7,
            size_variation: 3,
            delay_us: 100,
        }),
    ];
    proxies.set("kitchen-1", "broker", toxics).expect("set");
    let mut s = TcpStream::connect(near).await.expect("connect");
    let message: Vec<u8> = (0..2_000u32).map(|i| (i % 251) as u8).collect();
    let sent_at = Instant::now();
    s.write_all(&message).await.expect("write");
    assert_eq!(read_exactly(&mut s, message.len()).await, message);
    assert!(
        sent_at.elapsed() >= Duration::from_millis(250),
        "the echo comes back no sooner than the latency"
    );
}

#[tokio::test]
async fn a_bad_toxic_or_an_unknown_link_is_refused_by_name() {
    let (proxies, _) = proxied().await;
    let mut t = Toxic::new(ToxicKind::Partition);
    t.toxicity = 2.0;
    let e = proxies.set("kitchen-1", "broker", vec![t]).expect_err("refused");
    assert!(e.to_string().contains("toxicity"), "{e}");
    let e = proxies.set("kitchen-1", "payment", vec![]).expect_err("refused");
    assert!(e.to_string().contains("payment"), "{e}");
}

#[tokio::test]
async fn a_client_that_shuts_its_side_still_gets_the_whole_answer() {
    let (_proxies, near) = proxied().await;
    let mut s = TcpStream::connect(near).await.expect("connect");
    let message: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    s.write_all(&message).await.expect("write");
    s.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    timeout(DEADLINE, s.read_to_end(&mut back))
        .await
        .expect("the answer ends before the deadline")
        .expect("read");
    assert_eq!(
        back.len(),
        message.len(),
        "every byte echoed after the half-close"
    );
    assert_eq!(back, message);
}
