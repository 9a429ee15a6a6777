//! The fault proxy: one small TCP proxy per link the platform starts (each
//! node → broker, order → payment), inside the control room, so network
//! faults act on real sockets. What each direction of each connection does
//! is [`crate::model::network::plan`]'s answer; this module only moves the
//! bytes.
//!
//! A link keeps its port for the whole run, so a restarted node (or a
//! restarted broker behind it) is reached the same way. The toxics of a
//! link live in a `watch` channel: every connection on it reacts to a
//! change at once (a partition holds, a heal lets the held bytes go).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::model::network::{admits, plan, Admit, Plan, Toxic, Way};

/// Why a link could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No free port, or the address cannot be listened on.
    #[error("cannot open a proxy for {node} → {link}: {source}")]
    Listen {
        /// The node.
        node: String,
        /// The link.
        link: String,
        /// Why.
        source: std::io::Error,
    },
    /// The node has no such link.
    #[error("{node} has no proxied link `{link}` (links go through the proxy when the control room runs with --network-faults)")]
    NoLink {
        /// The node.
        node: String,
        /// The link.
        link: String,
    },
    /// A toxic's setting is out of range.
    #[error("bad toxic for {node} → {link}: {reason}")]
    Bad {
        /// The node.
        node: String,
        /// The link.
        link: String,
        /// What is wrong, naming the field.
        reason: String,
    },
}

struct Link {
    listen: SocketAddr,
    toxics: watch::Sender<Vec<Toxic>>,
    task: tokio::task::JoinHandle<()>,
}

/// Every proxied link, by node and link name.
pub struct Proxies {
    runtime: tokio::runtime::Handle,
    links: HashMap<(String, String), Link>,
}

impl Proxies {
    /// Proxies whose tasks run on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> Proxies {
        Proxies {
            runtime,
            links: HashMap::new(),
        }
    }

    /// The address `node` connects to for `link`, forwarding to `upstream`:
    /// made on first use, the same one afterwards.
    pub fn route(&mut self, node: &str, link: &str, upstream: SocketAddr) -> Result<SocketAddr, ProxyError> {
        let key = (node.to_string(), link.to_string());
        if let Some(l) = self.links.get(&key) {
            return Ok(l.listen);
        }
        let listen_err = |source| ProxyError::Listen {
            node: node.into(),
            link: link.into(),
            source,
        };
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(listen_err)?;
        std_listener.set_nonblocking(true).map_err(listen_err)?;
        let listen = std_listener.local_addr().map_err(listen_err)?;
        let listener = {
            let _inside = self.runtime.enter();
            TcpListener::from_std(std_listener).map_err(listen_err)?
        };
        let (toxics, watching) = watch::channel(Vec::new());
        let task = self.runtime.spawn(serve(listener, upstream, watching));
        self.links.insert(key, Link { listen, toxics, task });
        Ok(listen)
    }

    /// Replaces the toxics of `node`'s `link` (empty: a clean link again).
    pub fn set(&self, node: &str, link: &str, toxics: Vec<Toxic>) -> Result<(), ProxyError> {
        let l = self
            .links
            .get(&(node.to_string(), link.to_string()))
            .ok_or_else(|| ProxyError::NoLink {
                node: node.into(),
                link: link.into(),
            })?;
        if let Some(reason) = toxics.iter().find_map(|t| t.validate().err()) {
            return Err(ProxyError::Bad {
                node: node.into(),
                link: link.into(),
                reason,
            });
        }
        l.toxics.send_replace(toxics);
        Ok(())
    }

    /// The links of `node`, by name.
    pub fn links_of(&self, node: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .links
            .keys()
            .filter(|(n, _)| n == node)
            .map(|(_, l)| l.clone())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for link in self.links.values() {
            link.task.abort();
        }
    }
}

/// Accepts connections on one link until the proxy is dropped.
async fn serve(listener: TcpListener, upstream: SocketAddr, toxics: watch::Receiver<Vec<Toxic>>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    // Out of descriptors, say: try again shortly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                // Drawn once: a toxic with toxicity 0.3 acts on the
                // connections that drew below 0.3, for their whole life.
                let roll: f64 = rand::thread_rng().gen();
                connections.spawn(connection(client, upstream, toxics.clone(), roll));
            }
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// How a connection ended, when the proxy ended it.
enum Cut {
    /// Closed (timeout with `ms`), or one end closed.
    Close,
    /// Reset (reset_peer, down).
    Reset,
}

/// One proxied connection, from admission to its end.
async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut toxics: watch::Receiver<Vec<Toxic>>,
    roll: f64,
) {
    let _ = client.set_nodelay(true);
    // Admission: a partition makes it hang, down refuses it.
    loop {
        let admit = admits(&toxics.borrow_and_update(), roll);
        match admit {
            Admit::Pass => break,
            Admit::Refuse => return reset(client),
            Admit::Wait => {
                if toxics.changed().await.is_err() {
                    return;
                }
            }
        }
    }
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        // The far end is down: the node sees its connection reset, as it
        // would without the proxy.
        Err(_) => return reset(client),
    };
    let _ = server.set_nodelay(true);
    let (mut client, mut server) = (client, server);
    let ending = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let up = pump(cr, sw, Way::Up, toxics.clone(), roll);
        let down = pump(sr, cw, Way::Down, toxics.clone(), roll);
        let cut = watch_cut(toxics, roll);
        tokio::pin!(up, down, cut);
        // A direction that ends cleanly half-closes its peer and the other
        // goes on (a client that shuts its side still gets the whole
        // answer); a failure on either ends both.
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                clean = &mut up, if !up_done => {
                    up_done = true;
                    if !clean || down_done {
                        break Cut::Close;
                    }
                }
                clean = &mut down, if !down_done => {
                    down_done = true;
                    if !clean || up_done {
                        break Cut::Close;
                    }
                }
                cut = &mut cut => break cut,
            }
        }
    };
    if let Cut::Reset = ending {
        reset(server);
        reset(client);
    }
}

/// Drops a socket with SO_LINGER 0: the peer gets a TCP RST.
// Deprecated because a non-zero linger blocks the thread on drop; a zero
// one never waits, it discards the send buffer and resets at once.
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Resolves when the toxics say this connection ends: a reset (reset_peer,
/// down) or a timeout's close, each after its delay; a change restarts
/// the count.
async fn watch_cut(mut toxics: watch::Receiver<Vec<Toxic>>, roll: f64) -> Cut {
    loop {
        let (up, down) = {
            let t = toxics.borrow_and_update();
            (plan(&t, Way::Up, roll), plan(&t, Way::Down, roll))
        };
        let reset = earliest(up.reset_after, down.reset_after);
        let close = earliest(up.close_after, down.close_after);
        let next = match (reset, close) {
            (Some(r), Some(c)) if c < r => Some((c, Cut::Close)),
            (Some(r), _) => Some((r, Cut::Reset)),
            (None, Some(c)) => Some((c, Cut::Close)),
            (None, None) => None,
        };
        match next {
            Some((after, cut)) => tokio::select! {
                _ = tokio::time::sleep(after) => return cut,
                changed = toxics.changed() => if changed.is_err() { return Cut::Close },
            },
            None => {
                if toxics.changed().await.is_err() {
                    return Cut::Close;
                }
            }
        }
    }
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Waits while the toxics hold this direction.
async fn until_flowing(toxics: &mut watch::Receiver<Vec<Toxic>>, way: Way, roll: f64) -> Option<Plan> {
    loop {
        let p = plan(&toxics.borrow_and_update(), way, roll);
        if !p.hold {
            return Some(p);
        }
        toxics.changed().await.ok()?;
    }
}

/// Waits until `deadline`, unless it has passed: tokio's timer wheel
/// turns in milliseconds, and even a zero sleep would wait for the next
/// turn (a clean link measured 2.3 ms a round trip before this).
async fn pause_until(deadline: Instant) {
    if deadline > Instant::now() {
        tokio::time::sleep_until(deadline).await;
    }
}

/// One direction: a reader stamps each chunk as it arrives, a writer lets
/// it go once its latency has passed (so a delay does not slow the
/// stream down, as on a real long link), at the bandwidth, in slices.
/// At the end of the stream it half-closes the far side once everything
/// is written: true; false as soon as either side fails.
async fn pump<R, W>(mut from: R, mut to: W, way: Way, toxics: watch::Receiver<Vec<Toxic>>, roll: f64) -> bool
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    // Bounded: a slow writer slows the reader, and so the sender (TCP's
    // own back-pressure), instead of buffering without end.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let mut reading = toxics.clone();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // A held stream is not read: the sender's kernel buffers fill
            // up and it stalls, as behind a real black hole.
            until_flowing(&mut reading, way, roll).await?;
            let n = from.read(&mut buf).await.ok()?;
            if n == 0 {
                return Some(());
            }
            tx.send((Instant::now(), buf[..n].to_vec())).await.ok()?;
        }
    };
    let mut writing = toxics;
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            let p = until_flowing(&mut writing, way, roll).await?;
            let u: f64 = rand::thread_rng().gen();
            pause_until(at + p.delay(u)).await;
            let pause = p.slices.map_or(Duration::ZERO, |(_, _, d)| d);
            let sizes = p.cut(chunk.len(), || rand::thread_rng().gen());
            let mut at_byte = 0;
            for (i, size) in sizes.into_iter().enumerate() {
                if i > 0 {
                    pause_until(Instant::now() + pause).await;
                }
                to.write_all(&chunk[at_byte..at_byte + size]).await.ok()?;
                at_byte += size;
            }
            pause_until(Instant::now() + p.pace(chunk.len())).await;
        }
        to.shutdown().await.ok()
    };
    tokio::pin!(read, write);
    let mut read_all = false;
    loop {
        tokio::select! {
            // The reader's end drops its sender: the writer drains, then ends.
            r = &mut read, if !read_all => match r {
                Some(()) => read_all = true,
                None => return false,
            },
            w = &mut write => return w.is_some() && read_all,
        }
    }
}
