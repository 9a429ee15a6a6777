//! The inbox: ids of messages already handled, so that a redelivered message
//! has no second effect.

use uuid::Uuid;

use crate::error::NodeError;

/// The sled tree the inbox lives in (the outbox writes it too, see
/// [`crate::runtime::outbox::Outbox::add_finishing`]).
pub(crate) const TREE: &str = "inbox";

/// Handled message ids, in sled.
pub struct Inbox {
    tree: sled::Tree,
}

impl Inbox {
    /// Opens the inbox in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, NodeError> {
        Ok(Inbox {
            tree: db.open_tree(TREE)?,
        })
    }

    /// Whether `id` was handled before.
    pub fn seen(&self, id: &Uuid) -> bool {
        self.tree.contains_key(id.as_bytes()).unwrap_or(false)
    }

    /// Records `id` as handled. Returns false if it already was.
    pub fn mark(&self, id: &Uuid) -> Result<bool, NodeError> {
        let _w = broker::backup::writing();
        Ok(self.tree.insert(id.as_bytes(), &[])?.is_none())
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let inbox = Inbox::open(&db).unwrap();
        let id = Uuid::new_v4();
        assert!(!inbox.seen(&id));
        assert!(inbox.mark(&id).unwrap());
        assert!(!inbox.mark(&id).unwrap());
        assert!(inbox.seen(&id));
    }
}
