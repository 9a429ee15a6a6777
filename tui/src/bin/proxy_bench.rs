//! `cargo run --release -p tui --bin proxy-bench`: what the fault proxy
//! costs a link with no toxics, against the same socket without it:
//! small request/answer round trips (an MQTT publish and its PUBACK) and a
//! one-way bulk stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tui::proxy::Proxies;

const ROUND_TRIPS: usize = 20_000;
const BULK_MIB: usize = 256;

/// A server that echoes 64-byte messages, or swallows a stream.
async fn server() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(addr)
}

/// p50 and p99 of `ROUND_TRIPS` 64-byte round trips to `addr`.
async fn round_trips(addr: SocketAddr) -> anyhow::Result<(Duration, Duration)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let (msg, mut back) = ([7u8; 64], [0u8; 64]);
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((times[times.len() / 2], times[times.len() * 99 / 100]))
}

/// MiB/s of a `BULK_MIB` stream to `addr`, echoed back and read.
async fn bulk(addr: SocketAddr) -> anyhow::Result<f64> {
    let s = TcpStream::connect(addr).await?;
    let (mut r, mut w) = s.into_split();
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..BULK_MIB * 16 {
            w.write_all(&chunk).await?;
        }
        w.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < BULK_MIB * 1024 * 1024 {
        let n = r.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the stream ended after {got} bytes");
        got += n;
    }
    writer.await??;
    Ok(BULK_MIB as f64 / t.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let upstream = server().await?;
    let mut proxies = Proxies::new(tokio::runtime::Handle::current());
    let near = proxies.route("bench", "broker", upstream)?;
    println!("{ROUND_TRIPS} round trips of 64 bytes, then {BULK_MIB} MiB echoed");
    println!("{:<14} {:>10} {:>10} {:>10}", "", "p50 µs", "p99 µs", "MiB/s");
    for (name, addr) in [("direct", upstream), ("through proxy", near)] {
        let (p50, p99) = round_trips(addr).await?;
        let rate = bulk(addr).await?;
        println!(
            "{name:<14} {:>10.1} {:>10.1} {:>10.0}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            rate
        );
    }
    Ok(())
}
