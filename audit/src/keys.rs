//! The agent's Ed25519 signing key and the ring of public keys a verifier
//! trusts, each with the window of time in which it may sign.

use std::{collections::BTreeMap, fmt};

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Result},
    merkle::Hash,
    timestamp::Timestamp,
    wire,
};

/// Hex digits of a key id.
pub const KEY_ID_LEN: usize = 16;

/// A key's id: the first 16 hex digits (64 bits) of SHA-256 of its 32-byte
/// public key. Derived, never chosen, so a record cannot name one key and
/// be checked against another.
pub fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(KEY_ID_LEN);
    id
}

/// The agent's signing key and its id.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl Signer {
    /// The key whose 32-byte Ed25519 secret is `seed` (RFC 8032 section 5.1.5).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&key.verifying_key());
        Self { key, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The Ed25519 signature of a record hash.
    pub(crate) fn sign_hash(&self, hash: &Hash) -> [u8; 64] {
        self.key.sign(hash).to_bytes()
    }

    /// The Ed25519 signature of a message (a checkpoint note's text).
    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The half-open window `[from, until)` in which a key may sign; `None`
/// leaves that side open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Validity {
    /// Valid at every time.
    pub const ALWAYS: Validity = Validity { from: None, until: None };

    pub fn new(from: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        Self { from, until }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|from| from <= t) && self.until.is_none_or(|until| t < until)
    }
}

/// A public key the verifier trusts, within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: VerifyingKey,
    pub validity: Validity,
}

/// Why a key ring refused a (key id, time) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Unknown,
    OutsideWindow,
}

/// Public keys by key id. Serialized as a list of
/// `{key_id, public_key, validity}`, checked on the way in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<KeyEntry>", into = "Vec<KeyEntry>")]
pub struct KeyRing {
    keys: BTreeMap<String, TrustedKey>,
}

impl KeyRing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` within `validity`, replacing the window if the key is
    /// already there; returns its id. Refuses keys of small order (they
    /// verify forged signatures), keys with a small-order component (no key
    /// pair makes one, and with it batch verification could disagree with
    /// `verify_strict`: see `verify::verify_signatures`) and an id already
    /// taken by another key.
    pub fn add(&mut self, key: VerifyingKey, validity: Validity) -> Result<String> {
        let key_id = key_id_of(&key);
        if key.is_weak() {
            return Err(Error::Key { key_id, reason: "a point of small order".into() });
        }
        if !key.to_edwards().is_torsion_free() {
            return Err(Error::Key { key_id, reason: "a point with a small-order component".into() });
        }
        if let Some(existing) = self.keys.get(&key_id)
            && existing.key != key
        {
            return Err(Error::Key { key_id, reason: "another key has the same id".into() });
        }
        self.keys.insert(key_id.clone(), TrustedKey { key, validity });
        Ok(key_id)
    }

    /// A ring of one key, valid at every time.
    pub fn single(key: VerifyingKey) -> Result<Self> {
        let mut ring = Self::new();
        ring.add(key, Validity::ALWAYS)?;
        Ok(ring)
    }

    pub fn get(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.get(key_id)
    }

    /// The key to check a signature made at `time` by `key_id`.
    pub fn key_at(&self, key_id: &str, time: Timestamp) -> Result<&VerifyingKey, KeyRefusal> {
        let trusted = self.keys.get(key_id).ok_or(KeyRefusal::Unknown)?;
        if !trusted.validity.contains(time) {
            return Err(KeyRefusal::OutsideWindow);
        }
        Ok(&trusted.key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TrustedKey)> {
        self.keys.iter().map(|(id, k)| (id.as_str(), k))
    }
}

/// One key of a serialized [`KeyRing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub key_id: String,
    #[serde(with = "wire::hex32")]
    pub public_key: [u8; 32],
    pub validity: Validity,
}

impl TryFrom<Vec<KeyEntry>> for KeyRing {
    type Error = Error;
    fn try_from(entries: Vec<KeyEntry>) -> Result<Self> {
        let mut ring = KeyRing::new();
        for entry in entries {
            let key = VerifyingKey::from_bytes(&entry.public_key)
                .map_err(|e| Error::Key { key_id: entry.key_id.clone(), reason: e.to_string() })?;
            let derived = key_id_of(&key);
            if derived != entry.key_id {
                return Err(Error::Key { key_id: entry.key_id, reason: format!("the public key's id is {derived}") });
            }
            if ring.keys.contains_key(&derived) {
                return Err(Error::Key { key_id: derived, reason: "listed twice".into() });
            }
            ring.add(key, entry.validity)?;
        }
        Ok(ring)
    }
}

impl From<KeyRing> for Vec<KeyEntry> {
    fn from(ring: KeyRing) -> Self {
        ring.keys
            .into_iter()
            .map(|(key_id, t)| KeyEntry { key_id, public_key: t.key.to_bytes(), validity: t.validity })
            .collect()
    }
}

/// Checks a verified log's records against its own `key_rotation`
/// records, which a key ring's windows may not reflect (a key admin may not
/// yet have ended the old key's window): each rotation is signed by the key
/// it hands over from, and after it the records are signed by that key
/// until `valid_from` and by the new key (whose public key it names) from
/// then on. Returns how many rotations there are.
pub fn check_rotations(records: &[crate::Record]) -> Result<usize> {
    use crate::{body::KeyRotation, record::Kind};
    let mut rotations = 0;
    let mut current: Option<(u64, KeyRotation)> = None;
    for r in records {
        if let Some((rotation, rot)) = &current {
            let expected = if r.time < rot.valid_from { &rot.old_key_id } else { &rot.new_key_id };
            if &r.key_id != expected {
                return Err(Error::KeyRotated { seq: r.seq, key_id: r.key_id.clone(), expected: expected.clone(), rotation: *rotation });
            }
        }
        if r.kind == Kind::KeyRotation {
            let rot: KeyRotation = r.body_as()?;
            let new_key = VerifyingKey::from_bytes(&rot.new_public_key).map_err(|e| Error::Key { key_id: rot.new_key_id.clone(), reason: e.to_string() })?;
            if rot.old_key_id != r.key_id || key_id_of(&new_key) != rot.new_key_id || rot.valid_from < r.time {
                let reason = "a rotation must be signed by the old key, name the new key's id and hand over after it is made".into();
                return Err(Error::WrongBody { seq: r.seq, wanted: "key_rotation", reason });
            }
            rotations += 1;
            current = Some((r.seq, rot));
        }
    }
    Ok(rotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn key_id_is_sixteen_hex_digits_of_the_public_key_hash() {
        let signer = Signer::from_seed(&[1; 32]);
        let full = hex::encode(Sha256::digest(signer.verifying_key().as_bytes()));
        assert_eq!(signer.key_id(), &full[..16]);
        assert_ne!(signer.key_id(), Signer::from_seed(&[2; 32]).key_id());
        assert!(!format!("{signer:?}").contains("secret"), "{signer:?}");
    }

    #[test]
    fn the_window_is_half_open() {
        let w = Validity::new(Some(ts("2025-01-01T00:00:00Z")), Some(ts("2025-02-01T00:00:00Z")));
        assert!(!w.contains(ts("2024-12-31T23:59:59.999999999Z")));
        assert!(w.contains(ts("2025-01-01T00:00:00Z")));
        assert!(w.contains(ts("2025-01-31T23:59:59.999999999Z")));
        assert!(!w.contains(ts("2025-02-01T00:00:00Z")));
        assert!(Validity::ALWAYS.contains(ts("0000-01-01T00:00:00Z")));
    }

    #[test]
    fn key_at_tells_unknown_from_out_of_window() {
        let a = Signer::from_seed(&[1; 32]);
        let mut ring = KeyRing::new();
        let id = ring.add(a.verifying_key(), Validity::new(Some(ts("2025-01-01T00:00:00Z")), None)).unwrap();
        assert_eq!(id, a.key_id());
        assert_eq!(ring.key_at(&id, ts("2025-06-01T00:00:00Z")), Ok(&a.verifying_key()));
        assert_eq!(ring.key_at(&id, ts("2024-06-01T00:00:00Z")), Err(KeyRefusal::OutsideWindow));
        assert_eq!(ring.key_at("0123456789abcdef", ts("2025-06-01T00:00:00Z")), Err(KeyRefusal::Unknown));
    }

    #[test]
    fn refuses_a_small_order_key() {
        // The identity point (y = 1) compresses to 0x01 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(matches!(KeyRing::new().add(weak, Validity::ALWAYS), Err(Error::Key { .. })));
    }

    #[test]
    fn refuses_a_key_with_a_small_order_component() {
        // A real public key plus a point of order 8: on the curve, not of
        // small order, but not in the prime-order subgroup either.
        let real = Signer::from_seed(&[1; 32]).verifying_key().to_edwards();
        let mixed = real + curve25519_dalek::constants::EIGHT_TORSION[1];
        let key = VerifyingKey::from_bytes(mixed.compress().as_bytes()).unwrap();
        assert!(!key.is_weak());
        let err = KeyRing::new().add(key, Validity::ALWAYS).unwrap_err();
        assert!(err.to_string().contains("small-order component"), "{err}");
    }

    #[test]
    fn deserializing_checks_the_key_id() {
        let a = Signer::from_seed(&[1; 32]);
        let ring = KeyRing::single(a.verifying_key()).unwrap();
        let json = serde_json::to_string(&ring).unwrap();
        let forged = json.replace(a.key_id(), "0123456789abcdef");
        let err = serde_json::from_str::<KeyRing>(&forged).unwrap_err();
        assert!(err.to_string().contains("the public key's id is"), "{err}");
    }

    proptest! {
        #[test]
        fn key_ring_serde_round_trip(
            seeds in proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            from in proptest::option::of(0i128..4_000_000_000_000_000_000),
            until in proptest::option::of(0i128..4_000_000_000_000_000_000),
        ) {
            let mut ring = KeyRing::new();
            let validity = Validity::new(
                from.map(|n| Timestamp::from_unix_nanos(n).unwrap()),
                until.map(|n| Timestamp::from_unix_nanos(n).unwrap()),
            );
            for seed in &seeds {
                ring.add(Signer::from_seed(seed).verifying_key(), validity).unwrap();
            }
            let json = serde_json::to_string(&ring).unwrap();
            let back: KeyRing = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, ring);
        }
    }
}
