//! A node's part in the platform's trust: the key it signs everything it
//! sends with, and the trust file it checks what it receives against
//! (`contracts::trust` has the rules, `broker::trust` the files).
//!
//! Both or neither: a node run by hand without `--key`/`--trust` signs
//! nothing and checks nothing (it says so in its log), which is how it
//! talks to an unsigned platform. The control room always runs its
//! platform signed.

use std::path::Path;
use std::sync::Arc;

use broker::trust::TrustStore;
pub use broker::trust::{make_key, read_key};
pub use contracts::trust::role_for;
use contracts::trust::{Refusal, Signer};
use contracts::Envelope;

use crate::error::NodeError;
use crate::runtime::outbox::{Confirmation, Entry};

/// What a node signs with and checks against.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Signs every envelope this node sends.
    pub signer: Option<Arc<Signer>>,
    /// Checks every envelope this node receives.
    pub trust: Option<Arc<TrustStore>>,
}

impl Security {
    /// Reads the key and the trust file of node `id` (role `role`, as
    /// `pizza-node` names it) and checks that the trust file lists this key
    /// for this id with that role, so a misconfigured node fails at start
    /// rather than having every message refused.
    pub fn load(
        key: Option<&Path>,
        trust: Option<&Path>,
        id: &str,
        role: &str,
    ) -> Result<Security, NodeError> {
        let (key, trust) = match (key, trust) {
            (None, None) => {
                tracing::warn!("no --key and --trust: this node signs nothing and believes any message; the control room's platform runs with both");
                return Ok(Security::default());
            }
            (Some(k), Some(t)) => (k, t),
            _ => {
                return Err(NodeError::Security(
                    "--key and --trust go together; make both with `pizza-node keygen`".into(),
                ))
            }
        };
        let security = |e: broker::trust::TrustError| NodeError::Security(e.to_string());
        let signer = broker::trust::read_key(key, id).map_err(security)?;
        let file = broker::trust::read_trust_file(trust).map_err(security)?;
        let want = contracts::trust::role_for(role);
        match file.nodes.get(id) {
            Some(t) if t.key == signer.public() && t.role == want => {}
            Some(t) if t.key != signer.public() => {
                return Err(NodeError::Security(format!(
                    "{} lists another key for node '{id}' than {}; run `pizza-node keygen` again for it",
                    trust.display(),
                    key.display()
                )))
            }
            Some(t) => {
                return Err(NodeError::Security(format!(
                    "{} gives node '{id}' role '{}', but it runs as {want}",
                    trust.display(),
                    t.role
                )))
            }
            None => {
                return Err(NodeError::Security(format!(
                    "node '{id}' is not in {}; add it with `pizza-node keygen --id {id} --role {want}`",
                    trust.display()
                )))
            }
        }
        let signer = Arc::new(signer);
        let store = TrustStore::open(trust)
            .map_err(security)?
            .with_own_key(signer.clone());
        Ok(Security {
            signer: Some(signer),
            trust: Some(Arc::new(store)),
        })
    }

    /// The outbox entry of `envelope` for `topic` (an event for the log or
    /// a put: both for the broker), tagged for the brokers of the trust
    /// file (`contracts::mac`; signed where it lists none).
    pub fn entry(
        &self,
        topic: String,
        envelope: &Envelope,
        confirmation: Confirmation,
    ) -> Result<Entry, NodeError> {
        let payload = match (&self.signer, &self.trust) {
            (Some(_), Some(t)) => t.tagged_json(envelope)?,
            (Some(s), None) => serde_json::to_string(&s.sign(envelope))?,
            (None, _) => serde_json::to_string(envelope)?,
        };
        Ok(Entry {
            id: envelope.event_id,
            topic,
            payload,
            confirmation,
        })
    }

    /// A protocol message (credit, ack, heartbeat, request) with this
    /// node's seal ([`contracts::seal`]); unchanged on an unsigned node.
    pub fn seal(&self, body: Vec<u8>) -> Vec<u8> {
        contracts::seal::seal_if(self.signer.as_deref(), body)
    }

    /// A protocol message for the brokers (credit, ack, stream subscribe,
    /// query), tagged for each of them (`contracts::mac`): the brokers are
    /// its only readers, and a tag costs a fraction of a signature.
    /// Unchanged on an unsigned node.
    pub fn seal_for_brokers(&self, body: Vec<u8>) -> Vec<u8> {
        match (&self.signer, &self.trust) {
            (Some(_), Some(t)) => t.seal_for_brokers(body),
            _ => self.seal(body),
        }
    }

    /// Takes the seal off a protocol message and, on a signed node, checks
    /// it: sealed by a listed node whose role is one of `roles`. Returns the
    /// message as its signer wrote it.
    pub fn open<'a>(&self, payload: &'a [u8], roles: &[&str]) -> Result<std::borrow::Cow<'a, [u8]>, Refusal> {
        let opened = contracts::seal::open(payload);
        if let Some(t) = &self.trust {
            t.check_sealed(&opened, roles)?;
        }
        Ok(opened.body)
    }

    /// Like [`Security::open`], for a message only node `sender` may send
    /// (its heartbeat, say): sealed by exactly that node.
    pub fn open_from<'a>(
        &self,
        payload: &'a [u8],
        sender: &str,
    ) -> Result<std::borrow::Cow<'a, [u8]>, Refusal> {
        let opened = contracts::seal::open(payload);
        if let Some(t) = &self.trust {
            t.check_sealed_by(&opened, sender, &[])?;
        }
        Ok(opened.body)
    }

    /// Takes the seal off node `id`'s heartbeat and checks it. A node the
    /// trust file lists counts only sealed by itself: a forged heartbeat
    /// could hold its id (a restart would refuse to start), fence a keeper
    /// or send calls to another address. A node the file does not list (a
    /// hand-run, unsigned one) passes as it came, as on an unsigned node.
    pub fn open_heartbeat<'a>(
        &self,
        payload: &'a [u8],
        id: &str,
    ) -> Result<std::borrow::Cow<'a, [u8]>, Refusal> {
        match &self.trust {
            Some(t) if t.role_of(id).is_some() => self.open_from(payload, id),
            _ => Ok(contracts::seal::open(payload).body),
        }
    }

    /// How many messages this node refused.
    pub fn refused(&self) -> u64 {
        self.trust.as_ref().map_or(0, |t| t.refused())
    }
}
