//! The trust file and key files on disk, for the keeper, the event log and
//! the nodes (which reach it through this crate). The checks themselves are
//! `contracts::trust`, plain functions; this is the I/O around them.
//!
//! The control room adds a node to the trust file before it starts it, so a
//! message from a sender not listed yet makes the store read the file again
//! when it changed since the last read (a forger naming random senders costs
//! us a `stat` each, never a read).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use contracts::mac::PairKey;
use contracts::trust::{Act, Refusal, Signer, Trust, TrustFile, Trusted};
use contracts::Envelope;

use crate::wire::Read;

/// Reading or writing a key or trust file failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file's content is not usable.
    #[error("{path}: {reason}; make keys with `pizza-node keygen`")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The trust file, re-read when a sender is not in it yet.
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    /// Read for every check; written only by a reload. An RwLock because
    /// checks run on several tasks at once and never wait for each other.
    state: RwLock<State>,
    refused: AtomicU64,
    /// Refusals since the keeper last took them, alike ones counted
    /// together: an attacker's flood is a few counted alerts, not a flood of
    /// them. A Mutex: written on refusals only, taken every stats interval.
    reports: Mutex<BTreeMap<Report, u64>>,
    /// This process's own key, for the pair keys it shares with the others
    /// (`contracts::mac`); none: it takes and makes signatures only.
    me: Option<Arc<Signer>>,
    /// Pair keys derived so far, by peer id, with the public key each was
    /// derived from (a re-keyed node gets a new one). An RwLock: read on
    /// every tagged message, written once per peer.
    pairs: RwLock<HashMap<String, ([u8; 32], PairKey)>>,
    /// When the store was opened, and the ms after it when the next
    /// [`TrustStore::refresh`] is due.
    opened: Instant,
    refresh_due: AtomicU64,
}

/// One kind of refusal, for the `security.refused` alert.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Report {
    /// What was refused (`event`, `put`, `credit` ...).
    pub what: String,
    /// Who it claimed to be from.
    pub sender: String,
    /// Why.
    pub reason: String,
    /// Where it came.
    pub topic: String,
}

/// At most this many kinds of refusal are kept between alerts; beyond it
/// they are counted in the log only.
const MAX_REPORTS: usize = 32;

#[derive(Debug)]
struct State {
    trust: Trust,
    /// The ids of the trust file's brokers, kept with it: every tagged
    /// message goes to them.
    brokers: Vec<String>,
    /// The file's modification time when it was read.
    modified: Option<SystemTime>,
}

impl TrustStore {
    /// Reads `path`.
    pub fn open(path: &Path) -> Result<TrustStore, TrustError> {
        let modified = modified(path);
        let trust = Trust::new(&read_trust_file(path)?).map_err(|reason| invalid(path, reason))?;
        Ok(TrustStore {
            path: path.to_path_buf(),
            state: RwLock::new(State::new(trust, modified)),
            refused: AtomicU64::new(0),
            reports: Mutex::new(BTreeMap::new()),
            me: None,
            pairs: RwLock::new(HashMap::new()),
            opened: Instant::now(),
            refresh_due: AtomicU64::new(0),
        })
    }

    /// The store as used by the holder of `me`: it takes envelopes tagged
    /// for `me` and tags its own for the brokers ([`TrustStore::tag`]).
    pub fn with_own_key(mut self, me: Arc<Signer>) -> TrustStore {
        self.me = Some(me);
        self
    }

    /// The key this process shares with `peer`, if it has a key of its own
    /// and the trust file lists `peer` with a usable one.
    fn pair(&self, peer: &str) -> Option<PairKey> {
        let me = self.me.as_deref()?;
        // Its own statement: the read guard must be gone before a reload
        // takes the write lock.
        let known = self.read().trust.public_key(peer).map(|(_, k)| k);
        let public = match known {
            Some(k) => k,
            None if self.reload(peer) => self.read().trust.public_key(peer)?.1,
            None => return None,
        };
        let pairs = self.pairs.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, key)) = pairs.get(peer).filter(|(k, _)| *k == public) {
            return Some(key.clone());
        }
        drop(pairs);
        let key = PairKey::derive(me, peer, &public)?;
        self.pairs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.to_string(), (public, key.clone()));
        Some(key)
    }

    /// The brokers of the trust file other than this process, each with
    /// the key this process shares with it.
    fn brokers(&self) -> Vec<(String, PairKey)> {
        self.refresh();
        let me = self.me.as_deref().map_or("", |m| m.id());
        let ids = self.read().brokers.clone();
        ids.into_iter()
            .filter(|id| id != me)
            .filter_map(|id| {
                let key = self.pair(&id)?;
                Some((id, key))
            })
            .collect()
    }

    /// `env` made ready to send to the brokers: tagged for every broker of
    /// the trust file (`contracts::mac`), or signed when it lists none but
    /// this process (or it has no key: unchanged).
    pub fn tag(&self, env: &Envelope) -> Envelope {
        let Some(me) = self.me.as_deref() else {
            return env.clone();
        };
        let Some(mac) = self.broker_tags(me, &contracts::trust::signed_bytes(env)) else {
            return me.sign(env);
        };
        let mut tagged = env.clone();
        tagged.sig = None;
        tagged.mac = mac;
        tagged
    }

    /// [`tag`](Self::tag), written out as JSON: the same bytes, made
    /// without cloning the envelope or serialising it twice (the tags
    /// cover the envelope without `mac`, and serde writes `mac` last).
    pub fn tagged_json(&self, env: &Envelope) -> Result<String, serde_json::Error> {
        let Some(me) = self.me.as_deref() else {
            return serde_json::to_string(env);
        };
        if env.sig.is_some() || !env.mac.is_empty() {
            // Sealed already: `tag` replaces the old proof.
            return serde_json::to_string(&self.tag(env));
        }
        let bytes = contracts::trust::signed_bytes(env);
        let Some(mac) = self.broker_tags(me, &bytes) else {
            return serde_json::to_string(&me.sign(env));
        };
        let mut json = String::from_utf8(bytes).map_err(serde::ser::Error::custom)?;
        json.pop(); // the closing brace
        json.push_str(r#","mac":"#);
        json.push_str(&serde_json::to_string(&mac)?);
        json.push('}');
        Ok(json)
    }

    /// `me`'s tag of envelope bytes `bytes` for each broker of the trust
    /// file other than itself; `None` when there is no such broker.
    fn broker_tags(&self, me: &Signer, bytes: &[u8]) -> Option<BTreeMap<String, String>> {
        let brokers = self.brokers();
        if brokers.is_empty() {
            return None;
        }
        Some(
            brokers
                .into_iter()
                .map(|(b, key)| {
                    let tag = key.tag(me.id(), &b, bytes);
                    (b, tag)
                })
                .collect(),
        )
    }

    /// A protocol message (`contracts::seal`) for node `to` alone (a
    /// delivery, a confirm, a stream batch): tagged with the key this
    /// process shares with it, signed when there is none, unchanged when
    /// this process has no key.
    pub fn seal_for(&self, to: &str, body: Vec<u8>) -> Vec<u8> {
        let Some(me) = self.me.as_deref() else {
            return body;
        };
        match self.pair(to) {
            Some(key) => contracts::seal::seal_tagged(me.id(), &[(to, &key)], &body),
            None => contracts::seal::seal(me, &body),
        }
    }

    /// A protocol message for the brokers (a credit, an ack, a stream
    /// subscribe): tagged for each broker of the trust file, signed when it
    /// lists none, unchanged when this process has no key.
    pub fn seal_for_brokers(&self, body: Vec<u8>) -> Vec<u8> {
        let Some(me) = self.me.as_deref() else {
            return body;
        };
        let brokers = self.brokers();
        if brokers.is_empty() {
            return contracts::seal::seal(me, &body);
        }
        let to: Vec<(&str, &PairKey)> = brokers.iter().map(|(id, k)| (id.as_str(), k)).collect();
        contracts::seal::seal_tagged(me.id(), &to, &body)
    }

    /// How many messages were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether the file lists any node of `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.read().trust.has_role(role)
    }

    /// Logs a refusal (`security: a put was refused …`) and keeps it for the
    /// next `security.refused` alert. `sender` is who the message said it
    /// was from.
    pub fn report(&self, what: &str, sender: &str, topic: &str, reason: &str) {
        let a = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        tracing::warn!(
            topic,
            sender,
            reason,
            refused_total = self.refused(),
            "security: {a} {what} was refused; nothing changed"
        );
        let report = Report {
            what: what.to_string(),
            sender: sender.to_string(),
            reason: reason.to_string(),
            topic: topic.to_string(),
        };
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if reports.len() < MAX_REPORTS || reports.contains_key(&report) {
            *reports.entry(report).or_default() += 1;
        }
    }

    /// The refusals since the last call, each with its count.
    pub fn take_reports(&self) -> Vec<(Report, u64)> {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *reports).into_iter().collect()
    }

    /// `id`'s role, if listed (reading the file again for a new id).
    pub fn role_of(&self, id: &str) -> Option<String> {
        self.check(id, |t| {
            t.role_of(id)
                .map(str::to_string)
                .ok_or(Refusal::UnknownSender(id.into()))
        })
        .ok()
    }

    /// Checks the envelope `raw` (as [`crate::wire::read`] found it) for
    /// `act` and returns the bytes to keep of it. A tag for this broker is
    /// checked on the bytes as they came, without its `mac` member, and
    /// those are kept: no one after the broker can check the tags (its own
    /// seal vouches for what it passes on), and they would only make every
    /// stored copy and every delivery bigger. Anything else (a signature, a
    /// member written another way, a bad tag) is checked on the full
    /// envelope and kept as it came.
    pub fn admit(&self, raw: &[u8], read: &Read<'_>, act: Act<'_>) -> Result<Option<Vec<u8>>, String> {
        if let Some(untagged) = self.untagged(raw, read, act) {
            return Ok(Some(untagged));
        }
        let env = serde_json::from_slice::<Envelope>(raw).map_err(|e| format!("unreadable: {e}"))?;
        match act {
            Act::Publish(_) => self.check_event(&env),
            Act::Put(queue) => self.check_put(&env, queue),
        }
        .map_err(|r| r.to_string())?;
        Ok(None)
    }

    /// [`admit`](Self::admit)'s fast path: `raw` without its tags, if its
    /// tag for this broker covers them and the sender may `act`.
    fn untagged(&self, raw: &[u8], read: &Read<'_>, act: Act<'_>) -> Option<Vec<u8>> {
        let me = self.me.as_deref()?.id();
        let tag = read.tags.get(me).filter(|_| !read.signed)?;
        let source = read.meta.source.as_str();
        let key = self.pair(source)?;
        let bytes = read.untagged(raw)?;
        let receiver = Some((me, &key));
        let ok = self
            .read()
            .trust
            .check_tagged(source, act, &bytes, Some(tag), receiver);
        ok.is_ok().then_some(bytes)
    }

    /// An event for the log (see `Trust::check_event`).
    pub fn check_event(&self, env: &Envelope) -> Result<(), Refusal> {
        let key = self.key_for_envelope(env);
        let receiver = self.receiver(key.as_ref());
        self.check(&env.source, |t| t.check_event_for(env, receiver))
    }

    /// A put on `queue` (see `Trust::check_put`).
    pub fn check_put(&self, env: &Envelope, queue: &str) -> Result<(), Refusal> {
        let key = self.key_for_envelope(env);
        let receiver = self.receiver(key.as_ref());
        self.check(&env.source, |t| t.check_put_for(env, queue, receiver))
    }

    /// The key a tagged `env` is checked with here (none for a signed one:
    /// no key to derive).
    fn key_for_envelope(&self, env: &Envelope) -> Option<PairKey> {
        if env.sig.is_some() || env.mac.is_empty() {
            return None;
        }
        self.pair(&env.source)
    }

    /// The key a tagged seal is checked with here.
    fn key_for_seal(&self, opened: &contracts::seal::Opened<'_>) -> Option<PairKey> {
        match opened.seal {
            Some((signer, contracts::seal::Proof::Tags(_))) => self.pair(signer),
            _ => None,
        }
    }

    /// This process as the receiver of a tag, with `key`.
    fn receiver<'a>(&'a self, key: Option<&'a PairKey>) -> Option<(&'a str, &'a PairKey)> {
        Some((self.me.as_deref()?.id(), key?))
    }

    /// A sealed protocol message (see `Trust::check_sealed`); the signer.
    pub fn check_sealed(
        &self,
        opened: &contracts::seal::Opened<'_>,
        roles: &[&str],
    ) -> Result<String, Refusal> {
        let sender = opened.seal.map_or("", |(id, _)| id);
        let key = self.key_for_seal(opened);
        let receiver = self.receiver(key.as_ref());
        self.check(sender, |t| t.check_sealed(opened, roles, receiver))
    }

    /// A sealed message only `sender` may send (see `Trust::check_sealed_by`).
    pub fn check_sealed_by(
        &self,
        opened: &contracts::seal::Opened<'_>,
        sender: &str,
        roles: &[&str],
    ) -> Result<(), Refusal> {
        let signer = opened.seal.map_or("", |(id, _)| id);
        let key = self.key_for_seal(opened);
        let receiver = self.receiver(key.as_ref());
        self.check(signer, |t| t.check_sealed_by(opened, sender, roles, receiver))
    }

    /// A consumer of `queue` (see `Trust::check_consumer`).
    pub fn check_consumer(&self, id: &str, queue: &str) -> Result<(), Refusal> {
        self.check(id, |t| t.check_consumer(id, queue))
    }

    /// A bearer token for a call to a service of role `audience` that
    /// needs `scope` (see `contracts::token::verify`); its claims.
    pub fn check_token(
        &self,
        token: &str,
        audience: &str,
        scope: &str,
    ) -> Result<contracts::token::Claims, contracts::token::TokenError> {
        use contracts::token::{verify, TokenError};
        // Its own statement: the read guard must be gone before a reload
        // takes the write lock.
        let first = verify(&self.read().trust, token, audience, scope);
        let result = match first {
            Err(TokenError::UnknownIssuer(id)) if self.reload(&id) => {
                verify(&self.read().trust, token, audience, scope)
            }
            other => other,
        };
        if result.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn check<T>(&self, sender: &str, f: impl Fn(&Trust) -> Result<T, Refusal>) -> Result<T, Refusal> {
        let first = f(&self.read().trust);
        let result = match first {
            Err(Refusal::UnknownSender(_)) if self.reload(sender) => f(&self.read().trust),
            other => other,
        };
        if result.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Reads the file again if it changed since the last read; whether
    /// `sender` is known now.
    fn reload(&self, sender: &str) -> bool {
        let now = modified(&self.path);
        if now == self.read().modified {
            return false;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.trust.knows(sender) {
            return true; // another task reloaded meanwhile
        }
        self.reread(&mut state, now);
        state.trust.knows(sender)
    }

    /// Reads the file again if it changed, at most once a second: a broker
    /// keyed after this process started (a standby keeper) must get this
    /// process's tags too, before it has sent anything here.
    fn refresh(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.refresh_due.load(Ordering::Relaxed);
        if now < due
            || self
                .refresh_due
                .compare_exchange(
                    due,
                    now.saturating_add(1_000),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let modified = modified(&self.path);
        if modified == self.read().modified {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.modified != modified {
            self.reread(&mut state, modified);
        }
    }

    fn reread(&self, state: &mut State, modified: Option<SystemTime>) {
        state.modified = modified;
        match read_trust_file(&self.path).and_then(|f| Trust::new(&f).map_err(|r| invalid(&self.path, r))) {
            Ok(trust) => *state = State::new(trust, modified),
            Err(e) => tracing::warn!(error = %e, "could not read the trust file again; keeping the old one"),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn new(trust: Trust, modified: Option<SystemTime>) -> State {
        let brokers = trust
            .nodes_of_role(contracts::trust::role::BROKER)
            .map(|(id, _)| id.to_string())
            .collect();
        State {
            trust,
            brokers,
            modified,
        }
    }
}

/// What the keeper and the event log send node `to` alone (a delivery, a
/// confirm, a stream batch): tagged for it by `trust` where that holds the
/// broker's key ([`TrustStore::seal_for`]), else signed by `signer`, else
/// (an unsigned platform) unchanged.
pub fn seal_for(trust: Option<&TrustStore>, signer: Option<&Signer>, to: &str, body: Vec<u8>) -> Vec<u8> {
    match trust {
        Some(t) if t.me.is_some() => t.seal_for(to, body),
        _ => contracts::seal::seal_if(signer, body),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn invalid(path: &Path, reason: impl Into<String>) -> TrustError {
    TrustError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrustError + '_ {
    move |source| TrustError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a trust file.
pub fn read_trust_file(path: &Path) -> Result<TrustFile, TrustError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| invalid(path, e.to_string()))
}

/// Reads node `id`'s key file.
pub fn read_key(path: &Path, id: &str) -> Result<Signer, TrustError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Signer::from_text(id, &text).map_err(|reason| invalid(path, reason))
}

/// Makes a key for node `id` with `role`: writes `dir/<id>.key` (readable
/// by its owner only) and lists the public key in `trust` (created if
/// missing; written whole to a temporary file, then renamed, so a reader
/// never sees half a file). An existing key file is kept: a node keeps its
/// key across restarts. Returns the key file's path.
pub fn make_key(dir: &Path, id: &str, role: &str, trust: &Path) -> Result<PathBuf, TrustError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key_path = dir.join(format!("{id}.key"));
    let signer = if key_path.exists() {
        read_key(&key_path, id)?
    } else {
        let signer = Signer::from_seed(id, rand::random());
        write_private(&key_path, &signer.to_text())?;
        signer
    };
    let mut file = if trust.exists() {
        read_trust_file(trust)?
    } else {
        TrustFile::default()
    };
    let entry = Trusted {
        role: role.to_string(),
        key: signer.public(),
    };
    if file.nodes.get(id) != Some(&entry) {
        file.nodes.insert(id.to_string(), entry);
        let text = serde_json::to_string_pretty(&file).map_err(|e| invalid(trust, e.to_string()))?;
        let tmp = trust.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, trust).map_err(io(trust))?;
    }
    Ok(key_path)
}

fn write_private(path: &Path, text: &str) -> Result<(), TrustError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::trust::role;

    #[test]
    fn keys_made_by_hand_verify_and_a_node_added_later_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let trust = dir.path().join("trust.json");
        let k1 = make_key(dir.path(), "kitchen-1", role::KITCHEN, &trust).unwrap();
        let store = TrustStore::open(&trust).unwrap();
        let kitchen = read_key(&k1, "kitchen-1").unwrap();
        let ready = Envelope::new("order.ready", "o", 5, "t", "kitchen-1", serde_json::Value::Null);
        assert_eq!(store.check_event(&kitchen.sign(&ready)), Ok(()));
        assert_eq!(store.refused(), 0);
        // The same id again keeps its key.
        make_key(dir.path(), "kitchen-1", role::KITCHEN, &trust).unwrap();
        assert_eq!(read_key(&k1, "kitchen-1").unwrap().public(), kitchen.public());

        let k2 = make_key(dir.path(), "kitchen-2", role::KITCHEN, &trust).unwrap();
        let second = read_key(&k2, "kitchen-2").unwrap();
        let mut ready2 = ready.clone();
        ready2.source = "kitchen-2".into();
        assert_eq!(store.check_event(&second.sign(&ready2)), Ok(()));
        assert!(store.check_event(&ready2).is_err(), "unsigned");
        assert_eq!(store.refused(), 1);
    }

    /// Keys made into one trust file in a temporary directory.
    struct Keys {
        dir: tempfile::TempDir,
        trust: PathBuf,
    }

    impl Keys {
        fn new() -> Keys {
            let dir = tempfile::tempdir().unwrap();
            let trust = dir.path().join("trust.json");
            Keys { dir, trust }
        }

        fn key(&self, id: &str, role: &str) -> Arc<Signer> {
            let path = make_key(self.dir.path(), id, role, &self.trust).unwrap();
            Arc::new(read_key(&path, id).unwrap())
        }

        /// The store as the holder of `me` uses it.
        fn store(&self, me: &Arc<Signer>) -> TrustStore {
            TrustStore::open(&self.trust).unwrap().with_own_key(me.clone())
        }
    }

    #[test]
    fn a_broker_admits_a_tagged_envelope_from_its_bytes_and_keeps_it_without_tags() {
        let keys = Keys::new();
        let (order, kitchen, broker) = (
            keys.key("order", role::ORDER),
            keys.key("kitchen-1", role::KITCHEN),
            keys.key("broker", role::BROKER),
        );
        let (at_order, at_broker) = (keys.store(&order), keys.store(&broker));
        let placed = Envelope::new(
            "order.placed",
            "o-1",
            1,
            "t",
            "order",
            serde_json::json!({"total": 12.5, "items": [{"name": "Margherita"}]}),
        );
        let raw = serde_json::to_vec(&at_order.tag(&placed)).unwrap();
        let admit = |raw: &[u8], act| {
            let read = crate::wire::read(raw).map_err(|e| e.to_string())?;
            at_broker.admit(raw, &read, act)
        };
        assert_eq!(
            at_order.tagged_json(&placed).unwrap().as_bytes(),
            raw,
            "written out alike"
        );
        let kept = admit(&raw, Act::Publish("order.placed"))
            .unwrap()
            .expect("checked from the bytes");
        assert_eq!(
            kept,
            contracts::trust::signed_bytes(&placed),
            "kept without its tags"
        );
        let back: Envelope = serde_json::from_slice(&kept).unwrap();
        assert_eq!((back.event_id, back.mac.len()), (placed.event_id, 0));

        // The same bytes with the payload changed: the tag no longer covers them.
        let forged = String::from_utf8(raw.clone()).unwrap().replace("12.5", "0.5");
        assert!(admit(forged.as_bytes(), Act::Publish("order.placed"))
            .unwrap_err()
            .contains("order"));
        // A tagged envelope is still held to the permission table.
        let put = admit(&raw, Act::Put("delivery")).unwrap_err();
        assert!(put.contains("put on queue delivery"), "{put}");
        // The kitchen's tag for the broker does not pass as the order's.
        let mut as_order = keys.store(&kitchen).tag(&placed);
        as_order.source = "order".into();
        assert!(admit(
            &serde_json::to_vec(&as_order).unwrap(),
            Act::Publish("order.placed")
        )
        .is_err());

        // Tags written before the other members: checked on the full
        // envelope, and kept as they came.
        let mut v = serde_json::to_value(at_order.tag(&placed)).unwrap();
        let mac = v.as_object_mut().unwrap().remove("mac").unwrap();
        let first = format!("{{\"mac\":{mac},{}", &v.to_string()[1..]);
        assert_eq!(admit(first.as_bytes(), Act::Publish("order.placed")), Ok(None));
        assert_eq!(at_broker.refused(), 3);
    }

    #[test]
    fn envelopes_tagged_for_the_broker_pass_there_and_nowhere_else() {
        let keys = Keys::new();
        let key = |id: &str, role: &str| keys.key(id, role);
        let (order, kitchen, broker) = (
            key("order", role::ORDER),
            key("kitchen-1", role::KITCHEN),
            key("broker", role::BROKER),
        );
        let store = |me: &Arc<Signer>| keys.store(me);
        let (at_order, at_kitchen, at_broker) = (store(&order), store(&kitchen), store(&broker));
        let placed = Envelope::new("order.placed", "o", 1, "t", "order", serde_json::Value::Null);
        let tagged = at_order.tag(&placed);
        assert_eq!((tagged.sig.as_deref(), tagged.mac.len()), (None, 1), "{tagged:?}");
        // Through the wire and back, as the event log reads it.
        let back: Envelope = serde_json::from_slice(&serde_json::to_vec(&tagged).unwrap()).unwrap();
        assert_eq!(at_broker.check_event(&back), Ok(()));
        assert_eq!(at_broker.check_put(&back, "kitchen"), Ok(()));
        // Changed after tagging; read by another node than the broker.
        let mut changed = back.clone();
        changed.seq = 2;
        assert_eq!(
            at_broker.check_event(&changed),
            Err(Refusal::BadSignature("order".into()))
        );
        assert!(at_kitchen.check_event(&back).is_err());
        // The kitchen's own tags, on an envelope claiming the order node.
        let mut as_order = at_kitchen.tag(&placed);
        as_order.source = "order".into();
        assert_eq!(
            at_broker.check_event(&as_order),
            Err(Refusal::BadSignature("order".into()))
        );
        // With its own name it is the role table that refuses it.
        let mut own = placed.clone();
        own.source = "kitchen-1".into();
        assert!(matches!(
            at_broker.check_event(&at_kitchen.tag(&own)),
            Err(Refusal::NotPermitted { .. })
        ));
        // A broker's own envelopes are signed: it lists no other broker.
        assert!(at_broker.tag(&placed).sig.is_some());

        // A node keyed after the broker read the file: its first tagged
        // event is taken (the file is read again), and one from a sender
        // nobody keyed is refused, neither waiting on the other.
        let late = key("kitchen-2", role::KITCHEN);
        let ready = Envelope::new("order.ready", "o", 5, "t", "kitchen-2", serde_json::Value::Null);
        let at_late = store(&late);
        assert_eq!(at_broker.check_event(&at_late.tag(&ready)), Ok(()));
        let mut forged = at_late.tag(&ready);
        forged.source = "mallory".into();
        assert_eq!(
            at_broker.check_event(&forged),
            Err(Refusal::UnknownSender("mallory".into()))
        );
    }

    #[test]
    fn protocol_messages_are_tagged_for_their_one_reader() {
        use contracts::seal::{open, Proof};
        let keys = Keys::new();
        let key = |id: &str, role: &str| keys.key(id, role);
        let (kitchen, other, broker) = (
            key("kitchen-1", role::KITCHEN),
            key("kitchen-2", role::KITCHEN),
            key("broker", role::BROKER),
        );
        let store = |me: &Arc<Signer>| keys.store(me);
        let (at_kitchen, at_other, at_broker) = (store(&kitchen), store(&other), store(&broker));
        let credit = br#"{"credit":4,"incarnation":"a1"}"#.to_vec();

        // A kitchen's credit, for the broker.
        let sealed = at_kitchen.seal_for_brokers(credit.clone());
        let opened = open(&sealed);
        assert!(
            matches!(opened.seal, Some(("kitchen-1", Proof::Tags(_)))),
            "{opened:?}"
        );
        assert_eq!(
            at_broker.check_sealed_by(&opened, "kitchen-1", &[role::KITCHEN]),
            Ok(())
        );
        assert!(
            at_other.check_sealed(&opened, &[]).is_err(),
            "only the broker can check it"
        );

        // A delivery for kitchen-1: it passes there, not at kitchen-2.
        let delivery = at_broker.seal_for("kitchen-1", credit.clone());
        let opened = open(&delivery);
        assert_eq!(
            at_kitchen.check_sealed(&opened, &[role::BROKER]),
            Ok("broker".into())
        );
        assert_eq!(
            at_other.check_sealed(&opened, &[role::BROKER]),
            Err(Refusal::BadSignature("broker".into()))
        );
        // kitchen-2 cannot make one that passes as the broker's at kitchen-1.
        let text = String::from_utf8(at_other.seal_for("kitchen-1", credit.clone())).unwrap();
        let forged = text.replace("\"signer\":\"kitchen-2\"", "\"signer\":\"broker\"");
        assert_eq!(
            at_kitchen.check_sealed(&open(forged.as_bytes()), &[role::BROKER]),
            Err(Refusal::BadSignature("broker".into()))
        );
        // For a reader nobody keyed it is signed, so it still proves its sender.
        let signed = at_broker.seal_for("a-plain-mqtt-client", credit);
        let opened = open(&signed);
        assert!(matches!(opened.seal, Some(("broker", Proof::Signature(_)))));
        assert_eq!(
            at_kitchen.check_sealed(&opened, &[role::BROKER]),
            Ok("broker".into())
        );

        // A standby keeper keyed now gets the kitchen's tags too (the file
        // is read again within a second), before it has sent anything.
        let standby = key("standby", role::BROKER);
        let at_standby = store(&standby);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let sealed = at_kitchen.seal_for_brokers(b"{}".to_vec());
            if at_standby.check_sealed(&open(&sealed), &[]).is_ok() {
                assert_eq!(
                    at_broker.check_sealed(&open(&sealed), &[]),
                    Ok("kitchen-1".into())
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the standby never got a tag"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k = make_key(dir.path(), "order", role::ORDER, &dir.path().join("t.json")).unwrap();
        let mode = std::fs::metadata(k).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
