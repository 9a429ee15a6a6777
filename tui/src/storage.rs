//! What the control room does to a node's data directory: back it up
//! (`B`, `--backup-every`, `do = "backup"`), destroy it (a lost disk, for
//! the `disaster` scenario) and restore it from its newest backup. The
//! shell runs these on a blocking thread; [`Schedule`] is the plain-data
//! clock of `--backup-every`.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::model::{Model, Proc};
use crate::msg::{Effect, StorageOp};

/// Backups kept per node; older ones are deleted.
pub const KEEP: usize = 5;

/// Where node `id`'s backups go: `<data-dir>/backups/<id>/`.
pub fn backups_of(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("backups").join(id)
}

/// The newest backup of node `id`, if any.
pub fn newest(data_dir: &Path, id: &str) -> Option<PathBuf> {
    list(&backups_of(data_dir, id)).pop()
}

/// A node's backups, oldest first (their names sort by time).
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pzb"))
        .collect();
    files.sort();
    files
}

/// Does `op` to node `id`'s data directory under `data_dir`; a line for
/// the log, or why it failed.
pub fn carry_out(data_dir: &Path, id: &str, op: StorageOp) -> Result<String, String> {
    let dir = data_dir.join(id);
    match op {
        StorageOp::Backup => {
            let to_dir = backups_of(data_dir, id);
            std::fs::create_dir_all(&to_dir)
                .map_err(|e| format!("cannot create {}: {e}", to_dir.display()))?;
            let stamp = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let to = to_dir.join(format!("{id}-{stamp:015}.pzb"));
            let s = node::backup::backup(&dir, &to).map_err(|e| e.to_string())?;
            let old = list(&to_dir);
            for stale in old.iter().take(old.len().saturating_sub(KEEP)) {
                let _ = std::fs::remove_file(stale);
            }
            Ok(format!(
                "backed up {id}: {} ({} key(s), {} KB{}) → {}",
                s.dbs.join(", "),
                s.keys,
                s.bytes.div_ceil(1024),
                if s.online { ", online" } else { "" },
                to.display()
            ))
        }
        StorageOp::Destroy => {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot delete {}: {e}", dir.display()))?;
            Ok(format!("destroyed {id}'s data directory {}", dir.display()))
        }
        StorageOp::Restore => {
            let from = newest(data_dir, id).ok_or_else(|| format!("{id} has no backup to restore"))?;
            let s = node::backup::restore(&from, &dir, true).map_err(|e| e.to_string())?;
            Ok(format!(
                "restored {id} from {}: {} ({} key(s))",
                from.display(),
                s.dbs.join(", "),
                s.keys
            ))
        }
    }
}

/// `--backup-every`: every running node started here, backed up on a
/// period. Plain data, stepped with the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    every: Duration,
    next: Option<OffsetDateTime>,
}

impl Schedule {
    /// A backup of every node each `every_s` seconds, the first one period
    /// after the first look.
    pub fn every(every_s: f64) -> Schedule {
        Schedule {
            every: Duration::seconds_f64(every_s),
            next: None,
        }
    }

    /// The backups due now.
    pub fn advance(&mut self, m: &Model) -> Vec<Effect> {
        let next = *self.next.get_or_insert(m.now + self.every);
        if m.now < next {
            return Vec::new();
        }
        self.next = Some(m.now + self.every);
        m.nodes
            .values()
            .filter(|n| n.data_here() && n.proc == Some(Proc::Running))
            .map(|n| Effect::Storage {
                node: n.id.clone(),
                op: StorageOp::Backup,
            })
            .collect()
    }
}
