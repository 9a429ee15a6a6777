//! The payment records, kept in sled.

use std::path::Path;

use anyhow::Context;
use sled::Transactional;

use super::decide::{ChargeOutcome, PaymentRecord, RefundRecord};

/// Payments and refunds in sled.
///
/// The node's runtime keeps its own sled database private, so payment opens
/// a second one in a `payments` directory inside the node's data directory.
#[derive(Clone)]
pub struct Store {
    commit: crate::runtime::commit::GroupCommit,
    /// order_id -> [`PaymentRecord`] (JSON).
    /// The database, for backups.
    db: sled::Db,
    payments: sled::Tree,
    /// payment_id -> order_id, to find a charge from a refund request.
    payment_ids: sled::Tree,
    /// payment_id -> [`RefundRecord`] (JSON).
    refunds: sled::Tree,
}

impl Store {
    /// The database, for backups (`broker::backup::Shelf`).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = sled::Config::new()
            .path(dir)
            // sled's default cache is 1 GiB; a few records need little.
            .cache_capacity(8 * 1024 * 1024)
            .open()
            .with_context(|| format!("cannot open the payment store in {}", dir.display()))?;
        Ok(Store {
            db: db.clone(),
            payments: db.open_tree("payments")?,
            payment_ids: db.open_tree("payment_ids")?,
            refunds: db.open_tree("refunds")?,
            commit: crate::runtime::commit::GroupCommit::start(db),
        })
    }

    /// The charge recorded for `order_id`.
    pub fn payment(&self, order_id: &str) -> anyhow::Result<Option<PaymentRecord>> {
        read_json(&self.payments, order_id.as_bytes())
    }

    /// Records `record` unless its order already has one; returns the record
    /// that holds afterwards (the other one if a concurrent request won), and
    /// makes it durable before returning, since the client is told about it.
    pub async fn record_payment(&self, record: PaymentRecord) -> anyhow::Result<PaymentRecord> {
        let value = serde_json::to_vec(&record)?;
        let key = record.order_id.as_bytes();
        let payment_id = match &record.outcome {
            ChargeOutcome::Captured { payment_id } => Some(payment_id.as_bytes()),
            ChargeOutcome::Declined { .. } => None,
        };
        // One transaction for the record and its index, so a refund never
        // finds a payment id whose charge is missing, and check-and-insert so
        // two concurrent first attempts cannot both charge.
        let written = broker::backup::writing();
        let previous: Option<sled::IVec> = (&self.payments, &self.payment_ids)
            .transaction(|(payments, ids)| {
                if let Some(existing) = payments.get(key)? {
                    return Ok(Some(existing));
                }
                payments.insert(key, value.as_slice())?;
                if let Some(id) = payment_id {
                    ids.insert(id, key)?;
                }
                Ok(None)
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                anyhow::anyhow!("cannot record the payment: {e:?}")
            })?;
        drop(written);
        self.flush().await?;
        match previous {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(record),
        }
    }

    /// The order that owns captured payment `payment_id`.
    pub fn owner(&self, payment_id: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .payment_ids
            .get(payment_id.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The refund recorded for `payment_id`.
    pub fn refund(&self, payment_id: &str) -> anyhow::Result<Option<RefundRecord>> {
        read_json(&self.refunds, payment_id.as_bytes())
    }

    /// Records a refund unless one exists; returns the one that holds.
    pub async fn record_refund(
        &self,
        payment_id: &str,
        record: RefundRecord,
    ) -> anyhow::Result<RefundRecord> {
        let value = serde_json::to_vec(&record)?;
        let swapped = {
            let _w = broker::backup::writing();
            self.refunds
                .compare_and_swap(payment_id.as_bytes(), None as Option<&[u8]>, Some(value))?
        };
        self.flush().await?;
        match swapped {
            Ok(()) => Ok(record),
            Err(cas) => match cas.current {
                Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
                // A refund is never removed, so a failed swap always sees one.
                None => anyhow::bail!("refund of {payment_id} vanished while recording it"),
            },
        }
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.commit
            .durable()
            .await
            .context("cannot flush the payment store")?;
        Ok(())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> anyhow::Result<Option<T>> {
    match tree.get(key)? {
        Some(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("a stored payment record is corrupt")?,
        )),
        None => Ok(None),
    }
}
