//! Online backups of a process's sled databases, and their restore.
//!
//! A process (the broker with its keeper and event log, or a node with its
//! outbox, inbox and order book) lists its databases on a [`Shelf`] and
//! serves backups on a Unix socket in its data directory
//! (`<data-dir>/backup.sock`, as private as the data itself).
//! `pizza-node backup` asks there; with no process running it reads the
//! databases directly.
//!
//! **Consistency.** Every write to those databases takes the shared side
//! of one lock, [`writing`]; a backup takes its exclusive side while it
//! reads. So a backup holds exactly the writes made before it, none after:
//! the state a crash at that instant would have left, which the platform
//! is built to recover from (producers re-send what was not confirmed,
//! receivers drop repeats). sled's own iterators are no snapshot, and
//! without the lock a backup could hold a later write without an earlier one.
//!
//! The archive: a magic line, then per database its path relative to the
//! data directory and sled's export of it (every tree, every key and
//! value), framed by lengths, then an FNV-1a hash of all that: a truncated
//! or damaged file is refused before anything is written.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

/// The name of the socket a running process serves backups on.
pub const SOCKET: &str = "backup.sock";

const MAGIC: &[u8] = b"PIZZA-BACKUP 1\n";

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file or socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// sled refused.
    #[error("the database at {path}: {source}")]
    Sled {
        /// Where.
        path: String,
        /// Why.
        source: sled::Error,
    },
    /// Not an archive, or a damaged one.
    #[error("{0} is not a whole Pizza Platform backup: {1}")]
    Damaged(String, String),
    /// Restoring over data that is there.
    #[error("{0} already holds a database: restore into an empty directory, or pass --force to replace it")]
    Occupied(String),
    /// No database to back up.
    #[error(
        "no sled database in {0} (a node's data directory holds one, the broker's `queues` and `events`)"
    )]
    Empty(String),
    /// The running process answered with an error.
    #[error("the running process refused the backup: {0}")]
    Refused(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// The one lock between writers and backups. Writers share it (they never
/// wait for one another); a backup takes it alone, briefly, while it reads.
static WRITES: RwLock<()> = RwLock::new(());

/// Taken around every write to a database a [`Shelf`] lists (keep it for
/// one logical write: a batch, an insert; never across an `.await`).
pub fn writing() -> RwLockReadGuard<'static, ()> {
    // A writer that panicked left nothing half-done that the lock guards:
    // each sled operation is atomic on its own.
    WRITES.read().unwrap_or_else(|e| e.into_inner())
}

/// The databases of one process, by path relative to its data directory.
#[derive(Clone, Default)]
pub struct Shelf {
    dbs: Arc<Mutex<Vec<(String, sled::Db)>>>,
}

impl std::fmt::Debug for Shelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|(n, _)| n.clone()).collect();
        f.debug_struct("Shelf").field("dbs", &names).finish()
    }
}

impl Shelf {
    /// Lists `db`, kept at `path` under the data directory (`.` for the
    /// directory itself).
    pub fn add(&self, path: &str, db: &sled::Db) {
        self.lock().push((path.to_string(), db.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, sled::Db)>> {
        self.dbs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A consistent archive of every database listed.
    pub fn archive(&self) -> Result<Vec<u8>, BackupError> {
        let dbs = self.lock().clone();
        let _alone = WRITES.write().unwrap_or_else(|e| e.into_inner());
        let refs: Vec<(&str, &sled::Db)> = dbs.iter().map(|(p, d)| (p.as_str(), d)).collect();
        encode(&refs)
    }
}

/// A running process's backup server: answers each connection on
/// `<dir>/backup.sock` with an archive (or `ERR why`), until dropped.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves backups of `shelf` on `<dir>/backup.sock`.
pub fn serve(dir: &Path, shelf: Shelf) -> Result<Server, BackupError> {
    let path = dir.join(SOCKET);
    // A socket left by a killed process: nobody answers on it.
    let _ = std::fs::remove_file(&path);
    let listener =
        tokio::net::UnixListener::bind(&path).map_err(io(format!("cannot listen on {}", path.display())))?;
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let shelf = shelf.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let answer = tokio::task::spawn_blocking(move || shelf.archive())
                    .await
                    .unwrap_or_else(|e| Err(BackupError::Refused(e.to_string())));
                let bytes = match answer {
                    Ok(bytes) => bytes,
                    Err(e) => format!("ERR {e}").into_bytes(),
                };
                let _ = conn.write_all(&bytes).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(Server { path, task })
}

/// What a backup or restore covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The databases, by path.
    pub dbs: Vec<String>,
    /// Keys in all of them.
    pub keys: u64,
    /// Bytes of the archive.
    pub bytes: u64,
    /// Taken from the running process (`false`: read from the files).
    pub online: bool,
}

/// Backs up the data directory `dir` into `to`: from the process running
/// there if there is one, else from its files. `to` is written whole or
/// not at all (a temporary file, then a rename).
pub fn backup(dir: &Path, to: &Path) -> Result<Summary, BackupError> {
    let (bytes, online) = match std::os::unix::net::UnixStream::connect(dir.join(SOCKET)) {
        Ok(mut conn) => {
            let mut bytes = Vec::new();
            conn.read_to_end(&mut bytes)
                .map_err(io("cannot read the backup from the running process"))?;
            if let Some(why) = bytes.strip_prefix(b"ERR ") {
                return Err(BackupError::Refused(String::from_utf8_lossy(why).into_owned()));
            }
            (bytes, true)
        }
        Err(_) => (offline(dir)?, false),
    };
    let archive = decode(&bytes, &to.display().to_string())?;
    let tmp = to.with_extension("partial");
    std::fs::write(&tmp, &bytes).map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, to).map_err(io(format!("cannot write {}", to.display())))?;
    Ok(Summary {
        keys: archive.keys(),
        dbs: archive.dbs.into_iter().map(|d| d.path).collect(),
        bytes: bytes.len() as u64,
        online,
    })
}

/// The databases under `dir` read from their files (no process runs there).
fn offline(dir: &Path) -> Result<Vec<u8>, BackupError> {
    let mut found = Vec::new();
    if dir.join("conf").is_file() {
        found.push((".".to_string(), dir.to_path_buf()));
    }
    let entries = std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    let mut subs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("conf").is_file())
        .collect();
    subs.sort();
    for p in subs {
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            found.push((name.to_string(), p.clone()));
        }
    }
    if found.is_empty() {
        return Err(BackupError::Empty(dir.display().to_string()));
    }
    let mut dbs = Vec::new();
    for (name, path) in found {
        let db = sled::open(&path).map_err(|source| BackupError::Sled {
            path: path.display().to_string(),
            source,
        })?;
        dbs.push((name, db));
    }
    let refs: Vec<(&str, &sled::Db)> = dbs.iter().map(|(p, d)| (p.as_str(), d)).collect();
    encode(&refs)
}

/// Restores the archive `from` into the data directory `dir`. Refuses to
/// write over a database unless `force` (which replaces it).
pub fn restore(from: &Path, dir: &Path, force: bool) -> Result<Summary, BackupError> {
    let bytes = std::fs::read(from).map_err(io(format!("cannot read {}", from.display())))?;
    let archive = decode(&bytes, &from.display().to_string())?;
    for db in &archive.dbs {
        let path = dir.join(&db.path);
        if path.join("conf").exists() || path.join("db").exists() {
            if !force {
                return Err(BackupError::Occupied(path.display().to_string()));
            }
            // sled's own files only: a node's directory also holds others'.
            for name in ["conf", "db", "blobs"] {
                let p = path.join(name);
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
            for e in std::fs::read_dir(&path)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                if e.file_name().to_string_lossy().starts_with("snap.") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    for db in &archive.dbs {
        let path = dir.join(&db.path);
        std::fs::create_dir_all(&path).map_err(io(format!("cannot create {}", path.display())))?;
        let sled_err = |source| BackupError::Sled {
            path: path.display().to_string(),
            source,
        };
        let target = sled::open(&path).map_err(sled_err)?;
        for tree in &db.trees {
            let t = target.open_tree(&tree.name).map_err(sled_err)?;
            let mut batch = sled::Batch::default();
            for (k, v) in &tree.pairs {
                batch.insert(k.as_slice(), v.as_slice());
            }
            t.apply_batch(batch).map_err(sled_err)?;
        }
        target.flush().map_err(sled_err)?;
    }
    Ok(Summary {
        keys: archive.keys(),
        dbs: archive.dbs.into_iter().map(|d| d.path).collect(),
        bytes: bytes.len() as u64,
        online: false,
    })
}

/// A decoded archive.
#[derive(Debug, Default)]
struct Archive {
    dbs: Vec<DbImage>,
}

impl Archive {
    fn keys(&self) -> u64 {
        self.dbs
            .iter()
            .flat_map(|d| &d.trees)
            .map(|t| t.pairs.len() as u64)
            .sum()
    }
}

#[derive(Debug)]
struct DbImage {
    path: String,
    trees: Vec<TreeImage>,
}

#[derive(Debug)]
struct TreeImage {
    name: Vec<u8>,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a whole one.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode(dbs: &[(&str, &sled::Db)]) -> Result<Vec<u8>, BackupError> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(dbs.len() as u64).to_be_bytes());
    for (path, db) in dbs {
        put(&mut out, path.as_bytes());
        let names = db.tree_names();
        out.extend_from_slice(&(names.len() as u64).to_be_bytes());
        for name in names {
            let tree = db.open_tree(&name).map_err(|source| BackupError::Sled {
                path: path.to_string(),
                source,
            })?;
            put(&mut out, &name);
            let pairs: Vec<(sled::IVec, sled::IVec)> =
                tree.iter()
                    .collect::<Result<_, _>>()
                    .map_err(|source| BackupError::Sled {
                        path: path.to_string(),
                        source,
                    })?;
            out.extend_from_slice(&(pairs.len() as u64).to_be_bytes());
            for (k, v) in pairs {
                put(&mut out, &k);
                put(&mut out, &v);
            }
        }
    }
    let hash = fnv(&out);
    out.extend_from_slice(&hash.to_be_bytes());
    Ok(out)
}

/// Reads what [`encode`] wrote; `name` names the file in errors.
fn decode(bytes: &[u8], name: &str) -> Result<Archive, BackupError> {
    let damaged = |why: &str| BackupError::Damaged(name.to_string(), why.to_string());
    if !bytes.starts_with(MAGIC) {
        return Err(damaged("it does not start as one"));
    }
    let (body, tail) = bytes.split_at(bytes.len().saturating_sub(8).max(MAGIC.len()));
    let hash = tail
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| damaged("it is cut short"))?;
    if fnv(body) != hash {
        return Err(damaged("its checksum does not match (cut short or changed)"));
    }
    let mut r = Reader {
        bytes: &body[MAGIC.len()..],
    };
    let short = || damaged("it is cut short");
    let mut archive = Archive::default();
    for _ in 0..r.count().ok_or_else(short)? {
        let path = String::from_utf8(r.chunk().ok_or_else(short)?.to_vec())
            .map_err(|_| damaged("a path is not UTF-8"))?;
        // Only below the data directory.
        if Path::new(&path)
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(damaged(&format!("the path {path:?} leaves the data directory")));
        }
        let mut trees = Vec::new();
        for _ in 0..r.count().ok_or_else(short)? {
            let name = r.chunk().ok_or_else(short)?.to_vec();
            let n = r.count().ok_or_else(short)?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let k = r.chunk().ok_or_else(short)?.to_vec();
                let v = r.chunk().ok_or_else(short)?.to_vec();
                pairs.push((k, v));
            }
            trees.push(TreeImage { name, pairs });
        }
        archive.dbs.push(DbImage { path, trees });
    }
    Ok(archive)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn count(&mut self) -> Option<u64> {
        let (n, rest) = self.bytes.split_first_chunk::<8>()?;
        self.bytes = rest;
        Some(u64::from_be_bytes(*n))
    }

    fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.count()?).ok()?;
        if n > self.bytes.len() {
            return None;
        }
        let (chunk, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(dir: &Path) -> sled::Db {
        let db = sled::open(dir).expect("open");
        db.insert("a", "1").expect("insert");
        let t = db.open_tree("queue/kitchen").expect("tree");
        for i in 0u32..100 {
            t.insert(i.to_be_bytes(), vec![7u8; 50]).expect("insert");
        }
        db.flush().expect("flush");
        db
    }

    #[test]
    fn an_archive_restores_every_tree_and_key_into_an_empty_directory() {
        let from = tempfile::tempdir().expect("dir");
        let shelf = Shelf::default();
        shelf.add("queues", &filled(&from.path().join("queues")));
        let bytes = shelf.archive().expect("archive");
        let file = from.path().join("b.pzb");
        std::fs::write(&file, &bytes).expect("write");
        let to = tempfile::tempdir().expect("dir");
        let summary = restore(&file, to.path(), false).expect("restore");
        assert_eq!((summary.dbs, summary.keys), (vec!["queues".to_string()], 101));
        let db = crate::reopen::when_unlocked(|| sled::open(to.path().join("queues")));
        assert_eq!(db.get("a").expect("get").as_deref(), Some(&b"1"[..]));
        assert_eq!(db.open_tree("queue/kitchen").expect("tree").len(), 100);
        drop(db);
        let again = restore(&file, to.path(), false).expect_err("occupied");
        assert!(matches!(again, BackupError::Occupied(_)), "{again}");
        crate::reopen::when_unlocked(|| restore(&file, to.path(), true));
    }

    #[test]
    fn a_damaged_or_cut_archive_is_refused_before_anything_is_written() {
        let from = tempfile::tempdir().expect("dir");
        let shelf = Shelf::default();
        shelf.add(".", &filled(from.path()));
        let mut bytes = shelf.archive().expect("archive");
        for broken in [bytes[..bytes.len() / 2].to_vec(), b"hello".to_vec()] {
            assert!(decode(&broken, "f").is_err());
        }
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        let e = decode(&bytes, "f").expect_err("changed");
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    #[test]
    fn a_path_that_leaves_the_data_directory_is_refused() {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&1u64.to_be_bytes());
        put(&mut out, b"../etc");
        out.extend_from_slice(&0u64.to_be_bytes());
        let hash = fnv(&out);
        out.extend_from_slice(&hash.to_be_bytes());
        let e = decode(&out, "f").expect_err("refused");
        assert!(e.to_string().contains("leaves the data directory"), "{e}");
    }

    #[test]
    fn an_offline_backup_reads_the_databases_it_finds() {
        let dir = tempfile::tempdir().expect("dir");
        drop(filled(&dir.path().join("events")));
        drop(filled(&dir.path().join("queues")));
        let to = dir.path().join("b.pzb");
        let s = crate::reopen::when_unlocked(|| backup(dir.path(), &to));
        assert_eq!(s.dbs, vec!["events".to_string(), "queues".to_string()]);
        assert!(!s.online);
        assert_eq!(s.keys, 202);
    }
}
