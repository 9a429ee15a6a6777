//! `Idempotency-Key` on `POST /orders`: a client that did not see the
//! answer (a timeout, a dropped connection, a crash of either side) sends
//! the same request with the same key again and gets the first order back,
//! not a second one.
//!
//! A key is bound to an order id before payment is called, and the binding
//! is on disk (flushed) before anything else of the order is. So after a
//! kill -9 at any point the retry finds the binding and either answers with
//! the order (it got as far as the book) or places it again under the same
//! id, which payment charges once (it is idempotent on the order id).
//!
//! Keys are never forgotten, like the orders in the book they point to.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use contracts::api::{error_code, MAX_IDEMPOTENCY_KEY};

use crate::error::NodeError;
use crate::runtime::http::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// The keys seen, in sled, and the ones a request is working on now.
pub struct Keys {
    /// key -> order id.
    tree: sled::Tree,
    /// Keys of requests in progress. A std mutex: held for an insert or a
    /// remove, never across an await.
    running: Mutex<HashSet<String>>,
}

/// A key this request holds until it answers (409 for anyone else).
pub struct Claim<'a> {
    keys: &'a Keys,
    key: String,
    /// The order the key stands for.
    pub order_id: String,
    /// Whether the key is new (no earlier request can have made the order).
    pub fresh: bool,
}

impl Keys {
    /// Opens the keys' tree in the order node's database.
    pub fn open(db: &sled::Db) -> Result<Keys, NodeError> {
        Ok(Keys {
            tree: db.open_tree("idempotency_keys")?,
            running: Mutex::new(HashSet::new()),
        })
    }

    /// Takes `key` for this request, binding it to `new_id` if it is new.
    /// 409 while another request holds it.
    pub async fn claim(&self, key: &str, new_id: impl FnOnce() -> String) -> Result<Claim<'_>, ApiError> {
        if !self.lock().insert(key.to_string()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                error_code::IDEMPOTENCY_IN_PROGRESS,
                format!("a request with {HEADER} '{key}' is still running; ask again when it has answered"),
            ));
        }
        // From here the claim's drop releases the key, whatever happens.
        let mut claim = Claim {
            keys: self,
            key: key.to_string(),
            order_id: String::new(),
            fresh: false,
        };
        match self.tree.get(key).map_err(ApiError::internal)? {
            Some(id) => claim.order_id = String::from_utf8_lossy(&id).into_owned(),
            None => {
                claim.order_id = new_id();
                claim.fresh = true;
                {
                    let _w = broker::backup::writing();
                    self.tree
                        .insert(key, claim.order_id.as_bytes())
                        .map_err(ApiError::internal)?;
                }
                self.tree.flush_async().await.map_err(ApiError::internal)?;
            }
        }
        Ok(claim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.keys.lock().remove(&self.key);
    }
}

/// The request's key, if it sent one: 1 to [`MAX_IDEMPOTENCY_KEY`]
/// printable ASCII characters (a UUID is the usual choice), else 400 naming
/// the header.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| is_valid(k)).ok_or_else(|| {
        ApiError::field(
            HEADER,
            format!("{HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters, e.g. a UUID"),
        )
    })?;
    Ok(Some(key.to_string()))
}

fn is_valid(key: &str) -> bool {
    (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_printable_ascii_of_bounded_length() {
        assert!(is_valid("0b6e2c1e-5f0a-4c1e-9a7e-3f1d2b8c9a10"));
        assert!(is_valid("k"));
        assert!(!is_valid(""));
        assert!(!is_valid("with space"));
        assert!(!is_valid(&"k".repeat(MAX_IDEMPOTENCY_KEY + 1)));
        assert!(is_valid(&"k".repeat(MAX_IDEMPOTENCY_KEY)));
    }

    #[tokio::test]
    async fn a_key_stands_for_one_order_and_one_request_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let keys = Keys::open(&db).unwrap();
        let first = keys.claim("k1", || "ord_1".into()).await.unwrap();
        assert_eq!((first.order_id.as_str(), first.fresh), ("ord_1", true));
        let busy = keys.claim("k1", || "ord_2".into()).await.err().unwrap();
        assert_eq!(busy.status, StatusCode::CONFLICT);
        drop(first);
        let again = keys.claim("k1", || "ord_3".into()).await.unwrap();
        assert_eq!((again.order_id.as_str(), again.fresh), ("ord_1", false));
        drop(again);
        // On disk: a restarted node knows the key.
        drop(keys);
        let keys = Keys::open(&db).unwrap();
        assert_eq!(
            keys.claim("k1", || "ord_4".into()).await.unwrap().order_id,
            "ord_1"
        );
    }
}
