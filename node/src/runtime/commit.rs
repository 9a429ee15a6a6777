//! Group commit: many tasks wait for one sled flush.
//!
//! Every HTTP request that must be durable before it is answered (a payment
//! record, an order's outbox entries) used to call sled's `flush_async` on
//! its own. Under a burst of concurrent requests sled 0.34's `flush_async`
//! stalled for good (measured: `flow-bench --rate 500 --connections 32`
//! wedged within the first second, payment calls timing out for ever). Here
//! one task does the flushing: a caller writes, then asks; the task takes
//! every request waiting, runs one blocking flush (which covers every write
//! made before it started), and answers them all. Fewer flushes, and no
//! concurrent ones.

use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle on one database's flusher; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher of `db`. It stops when every handle is dropped.
    pub fn start(db: sled::Db) -> GroupCommit {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut waiters = vec![first];
                while let Ok(more) = rx.try_recv() {
                    waiters.push(more);
                }
                let db = db.clone();
                let result = match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the flush task failed: {e}")),
                };
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        GroupCommit { tx }
    }

    /// Resolves once everything written before this call is on disk.
    pub async fn durable(&self) -> Result<(), sled::Error> {
        let (tx, rx) = oneshot::channel();
        let gone = || sled::Error::ReportableBug("the group-commit task stopped".into());
        self.tx.send(tx).map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(sled::Error::Io(std::io::Error::other(e))),
            Err(_) => Err(gone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_writers_are_all_made_durable() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let commit = GroupCommit::start(db.clone());
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let (db, commit) = (db.clone(), commit.clone());
            tasks.push(tokio::spawn(async move {
                db.insert(i.to_be_bytes(), &b"x"[..]).unwrap();
                commit.durable().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(db.len(), 200);
    }
}
