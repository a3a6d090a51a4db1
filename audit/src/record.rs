//! Audit records: a versioned envelope around a JSON body, hashed over its
//! RFC 8785 canonical bytes and signed with Ed25519.
//!
//! ```text
//! hash = SHA-256( "ballast-record-v1\0" || JCS({version, seq, prev, time, key_id, kind, body}) )
//! sig  = Ed25519(signing key, hash)          // 32-byte message; checked with verify_strict
//! ```
//!
//! Anyone can re-hash a record with a stock JCS library: drop `hash` and
//! `sig` from the JSON object, canonicalize, prefix the domain string.
//! The body stays a [`serde_json::Value`], so a verifier needs none of the
//! engine's types; [`crate::body`] has typed bodies for the kinds whose
//! fields this crate knows.

use std::fmt::Write as _;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    body::RecordBody,
    error::{Error, Result},
    frame,
    index::Keys,
    keys::{KeyRefusal, KeyRing, Signer},
    merkle::{self, Hash},
    timestamp::Timestamp,
    verify::ChainState,
    wire,
};

/// Recognising canonical JSON in one pass, so that the JCS crate's slower
/// canonicalization is only needed for unusual records.
mod canonical;

/// The envelope version this crate writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// Prefix of every hashed record, so a record hash can never be mistaken for
/// the hash of anything else (a Merkle node, another format's object).
pub const HASH_DOMAIN: &[u8] = b"ballast-record-v1\0";

/// `prev` of the first record.
pub const GENESIS_PREV: Hash = [0; 32];

/// The largest integer a JSON number in a record may hold: JCS writes every
/// number as an IEEE 754 double, which holds integers exactly up to 2^53 - 1.
/// Larger values (and all money) go in decimal strings.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// What a record says happened. Closed: a verifier refuses kinds it does not
/// know, and a new kind is a new record version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A client's Investment Policy Statement version was registered.
    IpsRegistered,
    /// The engine's decision for one account.
    Decision,
    /// An advisor approved trades queued for review.
    ApprovalGranted,
    /// An advisor rejected trades queued for review.
    ApprovalRejected,
    /// A settlement transaction was signed; written before it is broadcast.
    SettlementSubmitted,
    /// A settlement transaction was mined and confirmed.
    SettlementConfirmed,
    /// A settlement transaction reverted or was abandoned.
    SettlementFailed,
    /// A log checkpoint (size, root) was anchored on-chain.
    CheckpointAnchored,
    /// Trading stopped: circuit breaker, integrity failure, operator.
    Halt,
    /// The agent's signing key changed.
    KeyRotation,
    /// The ledger refused an account's legs while a batch was planned: they
    /// were left out of it (listed last: an index stores a kind by its
    /// place in [`Kind::ALL`]).
    SettlementRefused,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::IpsRegistered,
        Kind::Decision,
        Kind::ApprovalGranted,
        Kind::ApprovalRejected,
        Kind::SettlementSubmitted,
        Kind::SettlementConfirmed,
        Kind::SettlementFailed,
        Kind::CheckpointAnchored,
        Kind::Halt,
        Kind::KeyRotation,
        Kind::SettlementRefused,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IpsRegistered => "ips_registered",
            Kind::Decision => "decision",
            Kind::ApprovalGranted => "approval_granted",
            Kind::ApprovalRejected => "approval_rejected",
            Kind::SettlementSubmitted => "settlement_submitted",
            Kind::SettlementConfirmed => "settlement_confirmed",
            Kind::SettlementFailed => "settlement_failed",
            Kind::CheckpointAnchored => "checkpoint_anchored",
            Kind::Halt => "halt",
            Kind::KeyRotation => "key_rotation",
            Kind::SettlementRefused => "settlement_refused",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed audit record. In the log its bytes are the JCS form of this
/// whole object, `hash` and `sig` included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// Position in the log, from 0.
    pub seq: u64,
    /// Hash of the previous record; [`GENESIS_PREV`] for seq 0.
    #[serde(with = "wire::hex32")]
    pub prev: Hash,
    pub time: Timestamp,
    /// Id of the signing key ([`crate::keys::key_id_of`]).
    pub key_id: String,
    pub kind: Kind,
    /// A JSON object; its shape depends on `kind`.
    pub body: Value,
    /// SHA-256 over the domain prefix and the canonical envelope without
    /// `hash` and `sig`.
    #[serde(with = "wire::hex32")]
    pub hash: Hash,
    /// Ed25519 signature of `hash`.
    #[serde(with = "wire::hex64")]
    pub sig: [u8; 64],
}

/// The envelope as hashed: everything but `hash` and `sig`.
#[derive(Serialize)]
struct Signable<'a> {
    version: u32,
    seq: u64,
    #[serde(with = "wire::hex32")]
    prev: &'a Hash,
    time: &'a Timestamp,
    key_id: &'a str,
    kind: Kind,
    body: &'a Value,
}

/// The RFC 8785 bytes of `value`.
pub fn canonical_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value)
}

/// `SHA-256(HASH_DOMAIN || canonical)`.
pub fn domain_hash(canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(canonical);
    h.finalize().into()
}

impl Record {
    /// Builds and signs a record of `kind` whose body is `body` serialized to
    /// JSON. The body must serialize to an object, with no integer beyond
    /// ±[`MAX_SAFE_INTEGER`]; it is stored as it reads back from its
    /// canonical bytes (so `1.0` becomes `1`), which is what a reader of the
    /// log will see.
    pub fn sign<B: Serialize + ?Sized>(
        signer: &Signer,
        seq: u64,
        prev: Hash,
        time: Timestamp,
        kind: Kind,
        body: &B,
    ) -> Result<Record> {
        Ok(Self::sign_with_payload(signer, seq, prev, time, kind, body)?.0)
    }

    /// [`Record::sign`], and the record's canonical bytes (a log frame's
    /// payload), serializing the body once where [`canonical`] recognises
    /// its text as canonical.
    pub(crate) fn sign_with_payload<B: Serialize + ?Sized>(
        signer: &Signer,
        seq: u64,
        prev: Hash,
        time: Timestamp,
        kind: Kind,
        body: &B,
    ) -> Result<(Record, Vec<u8>)> {
        let mut draft = Draft::new(signer.key_id(), seq, time, kind, body)?;
        draft.link(prev)?;
        let (record, frame) = draft.seal(signer)?;
        Ok((record, frame[frame::FRAME_HEADER_LEN..].to_vec()))
    }

    /// Builds and signs a record from a typed body.
    pub fn sign_body<B: RecordBody>(
        signer: &Signer,
        seq: u64,
        prev: Hash,
        time: Timestamp,
        body: &B,
    ) -> Result<Record> {
        Self::sign(signer, seq, prev, time, B::KIND, body)
    }

    /// The canonical bytes the hash covers (without the domain prefix).
    pub fn signable_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let sorted = self.sorted_json(false)?;
        if canonical::members(&sorted).is_some() {
            return Ok(sorted);
        }
        self.signable_bytes_by_crate()
    }

    /// [`Record::signable_bytes`] by the JCS crate alone: the definition.
    pub(crate) fn signable_bytes_by_crate(&self) -> serde_json::Result<Vec<u8>> {
        canonical_json(&Signable {
            version: self.version,
            seq: self.seq,
            prev: &self.prev,
            time: &self.time,
            key_id: &self.key_id,
            kind: self.kind,
            body: &self.body,
        })
    }

    /// The hash the record's contents call for (not the stored `hash`).
    pub fn compute_hash(&self) -> serde_json::Result<Hash> {
        Ok(domain_hash(&self.signable_bytes()?))
    }

    /// The canonical bytes of the whole record: a log frame's payload.
    pub fn canonical_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let sorted = self.sorted_json(true)?;
        if canonical::members(&sorted).is_some() {
            return Ok(sorted);
        }
        self.canonical_bytes_by_crate()
    }

    /// [`Record::canonical_bytes`] by the JCS crate alone: the definition.
    pub(crate) fn canonical_bytes_by_crate(&self) -> serde_json::Result<Vec<u8>> {
        canonical_json(self)
    }

    /// The record as JSON with its members in RFC 8785 order, each value
    /// written by serde_json (as the JCS crate writes strings), with `hash`
    /// and `sig` if `sealed`. When [`canonical::members`] recognises the
    /// result it is the canonical form, found without the crate's
    /// buffering and sorting of every object.
    fn sorted_json(&self, sealed: bool) -> serde_json::Result<Vec<u8>> {
        self.sorted_json_around(&serde_json::to_vec(&self.body)?, sealed)
    }

    /// [`Record::sorted_json`] with the body's text given.
    fn sorted_json_around(&self, body_text: &[u8], sealed: bool) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(body_text.len() + 512);
        self.sorted_json_into(body_text, sealed, &mut out)?;
        Ok(out)
    }

    /// [`Record::sorted_json_around`], appended to `out`.
    fn sorted_json_into(&self, body_text: &[u8], sealed: bool, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(BODY_OPEN);
        out.extend_from_slice(body_text);
        self.members_after_body_into(sealed, out)
    }

    /// The members after the body, and the closing brace, appended to `out`.
    fn members_after_body_into(&self, sealed: bool, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if sealed {
            out.extend_from_slice(br#","hash":"#);
            wire::hex32::serialize(&self.hash, &mut serde_json::Serializer::new(&mut *out))?;
        }
        out.extend_from_slice(br#","key_id":"#);
        serde_json::to_writer(&mut *out, &self.key_id)?;
        out.extend_from_slice(br#","kind":"#);
        serde_json::to_writer(&mut *out, &self.kind)?;
        out.extend_from_slice(br#","prev":"#);
        wire::hex32::serialize(&self.prev, &mut serde_json::Serializer::new(&mut *out))?;
        out.extend_from_slice(br#","seq":"#);
        serde_json::to_writer(&mut *out, &self.seq)?;
        if sealed {
            out.extend_from_slice(br#","sig":"#);
            wire::hex64::serialize(&self.sig, &mut serde_json::Serializer::new(&mut *out))?;
        }
        out.extend_from_slice(br#","time":"#);
        serde_json::to_writer(&mut *out, &self.time)?;
        out.extend_from_slice(br#","version":"#);
        serde_json::to_writer(&mut *out, &self.version)?;
        out.push(b'}');
        Ok(())
    }

    /// The record's Merkle leaf data: its 32-byte hash. The hash already
    /// commits to every envelope field and the body, is domain-separated,
    /// and keeps inclusion proofs independent of record size; the signature
    /// is left out because it only vouches for the hash.
    pub fn leaf_data(&self) -> &Hash {
        &self.hash
    }

    /// The record's RFC 6962 leaf hash, `SHA-256(0x00 || hash)`.
    pub fn merkle_leaf(&self) -> Hash {
        merkle::leaf_hash(&self.hash)
    }

    /// Checks what a record vouches for by itself: its version, a JSON
    /// object body, the stored hash against the contents, the key (known and
    /// valid at the record's time) and the signature (`verify_strict`).
    /// Returns the hash. Chain position (seq, prev, time order) is
    /// [`crate::verify`]'s business.
    pub fn check_seal(&self, keyring: &KeyRing) -> Result<Hash> {
        self.check_seal_but_signature(keyring, Record::compute_hash)?.verify_strict()?;
        Ok(self.hash)
    }

    /// [`Record::check_seal`] with the hash recomputed by the JCS crate
    /// alone: the definition.
    pub(crate) fn check_seal_by_crate(&self, keyring: &KeyRing) -> Result<Hash> {
        let by_crate = |r: &Record| Ok(domain_hash(&r.signable_bytes_by_crate()?));
        self.check_seal_but_signature(keyring, by_crate)?.verify_strict()?;
        Ok(self.hash)
    }

    /// [`Record::check_seal`] up to the signature, which it returns to be
    /// checked (alone or in a batch); `hash_of` recomputes the hash.
    pub(crate) fn check_seal_but_signature<'k>(
        &self,
        keyring: &'k KeyRing,
        hash_of: impl FnOnce(&Record) -> serde_json::Result<Hash>,
    ) -> Result<SignatureClaim<'k>> {
        let seq = self.seq;
        if self.version != RECORD_VERSION {
            return Err(Error::UnsupportedVersion { seq, version: self.version });
        }
        if !self.body.is_object() {
            return Err(Error::Decode { seq, offset: 0, reason: "body is not a JSON object".into() });
        }
        let expected =
            hash_of(self).map_err(|e| Error::Decode { seq, offset: 0, reason: format!("cannot canonicalize: {e}") })?;
        if expected != self.hash {
            return Err(Error::HashMismatch { seq, expected, actual: self.hash });
        }
        let key = keyring.key_at(&self.key_id, self.time).map_err(|refusal| match refusal {
            KeyRefusal::Unknown => Error::UnknownKey { seq, key_id: self.key_id.clone() },
            KeyRefusal::OutsideWindow => Error::KeyNotValid { seq, key_id: self.key_id.clone(), time: self.time },
        })?;
        Ok(SignatureClaim { seq, key, hash: self.hash, sig: self.sig })
    }

    /// What the chain checks need of the record.
    pub(crate) fn link(&self) -> Link {
        Link { version: self.version, seq: self.seq, prev: self.prev, time: self.time, hash: self.hash }
    }

    /// The body as `B`, if the record is of `B`'s kind.
    pub fn body_as<B: RecordBody>(&self) -> Result<B> {
        let wrong = |reason: String| Error::WrongBody { seq: self.seq, wanted: B::KIND.as_str(), reason };
        if self.kind != B::KIND {
            return Err(wrong(format!("it is a {} record", self.kind)));
        }
        B::deserialize(&self.body).map_err(|e| wrong(e.to_string()))
    }
}

/// A record on its way into the log, in the three steps that let a log sign
/// many at once: [`Draft::new`] does the work that needs only the record's
/// own fields (the body's JSON and canonical text, the signable bytes), and
/// can run for many records in parallel; [`Draft::link`] sets `prev` and the
/// hash, in log order, since each record's `prev` is the hash before it; and
/// [`Draft::seal`] signs and writes the canonical bytes, in parallel again
/// (the chain runs through the hashes only, never the signatures).
#[derive(Debug)]
pub(crate) struct Draft {
    /// `prev`, `hash` and `sig` zero until linked and sealed.
    record: Record,
    /// The frame in the making, when the record's bytes are canonical as
    /// written here; `None` leaves both hash and payload to the JCS crate.
    signable: Option<Unsealed>,
}

/// A draft's frame in the making: room for the frame header, then the
/// canonical signable bytes, with a zero `prev` until linked. Sealing
/// writes the short members after the body again with `hash` and `sig`
/// among them, and the header in front, so the body's text is written
/// once, here.
#[derive(Debug)]
struct Unsealed {
    frame: Vec<u8>,
    /// Where the body's text ends in `frame`: where `hash` goes.
    body_end: usize,
    /// Where `prev`'s 64 hex digits are in `frame`.
    prev_at: usize,
    /// The hash's state after the domain and every signable byte before
    /// `prev`'s digits, made in parallel so that linking in order hashes
    /// only the short rest.
    before_prev: Sha256,
}

/// How the signable bytes start, before the body's text.
const BODY_OPEN: &[u8] = br#"{"body":"#;

impl Unsealed {
    /// A frame with room for the header and `{"body":`, for the body's text
    /// to be written after.
    fn start(body_len: usize) -> Vec<u8> {
        let mut frame = Vec::with_capacity(frame::FRAME_HEADER_LEN + BODY_OPEN.len() + body_len + 512);
        frame.resize(frame::FRAME_HEADER_LEN, 0);
        frame.extend_from_slice(BODY_OPEN);
        frame
    }

    /// Completes `frame` (from [`Unsealed::start`], then a canonical body
    /// text) with `record`'s other members; `None` if they are not in
    /// canonical form as written here (the JCS crate must then decide).
    fn around(record: &Record, mut frame: Vec<u8>) -> Result<Option<Unsealed>> {
        let refuse = |e| refuse_body(record.kind, e);
        // The body's text is canonical, and so is the whole when the
        // envelope around an empty body is: a short check instead of
        // scanning the body again. Any `prev` spells 64 lower-case hex
        // digits, so the zero one's bytes are canonical exactly when the
        // linked ones are.
        let envelope = record.sorted_json_around(b"{}", false).map_err(refuse)?;
        if canonical::members(&envelope).is_none() {
            return Ok(None);
        }
        let body_end = frame.len();
        record.members_after_body_into(false, &mut frame).map_err(refuse)?;
        let prev_at = body_end + prev_digits_at(&frame[body_end..]);
        let mut before_prev = Sha256::new();
        before_prev.update(HASH_DOMAIN);
        before_prev.update(&frame[frame::FRAME_HEADER_LEN..prev_at]);
        Ok(Some(Unsealed { frame, body_end, prev_at, before_prev }))
    }
}

impl Draft {
    pub(crate) fn new<B: Serialize + ?Sized>(key_id: &str, seq: u64, time: Timestamp, kind: Kind, body: &B) -> Result<Draft> {
        Self::around(key_id, seq, time, kind, canonical_body(kind, body)?)
    }

    /// [`Draft::new`] and the body's index keys, with no JSON tree when the
    /// body serializes straight to canonical text (a JSON value, or a
    /// struct whose fields are declared in sorted order): the draft then
    /// holds the text alone and its record a `null` body, so it is only for
    /// [`crate::Log::append_entries`], which returns no records. Any other
    /// body takes [`Draft::new`]'s way.
    pub(crate) fn lean<B: Serialize + ?Sized>(key_id: &str, seq: u64, time: Timestamp, kind: Kind, body: &B) -> Result<(Draft, Keys)> {
        let mut frame = Unsealed::start(4096);
        let text_at = frame.len();
        let mut watch = IntegerWatch { too_big: false };
        if body.serialize(&mut serde_json::Serializer::with_formatter(&mut frame, &mut watch)).is_ok()
            && !watch.too_big
            && let Some(members) = canonical::members(&frame[text_at..])
        {
            let keys = Keys::of_members(kind, &frame[text_at..], &members);
            let record = Self::unsealed(key_id, seq, time, kind, Value::Null);
            if let Some(signable) = Unsealed::around(&record, frame)? {
                return Ok((Draft { record, signable: Some(signable) }, keys));
            }
        }
        let draft = Self::new(key_id, seq, time, kind, body)?;
        let keys = Keys::of_body(kind, &draft.record.body);
        Ok((draft, keys))
    }

    /// [`Draft::new`] with a body already in JSON, which it keeps.
    pub(crate) fn of_value(key_id: &str, seq: u64, time: Timestamp, kind: Kind, body: Value) -> Result<Draft> {
        Self::around(key_id, seq, time, kind, canonical_value(kind, body)?)
    }

    fn unsealed(key_id: &str, seq: u64, time: Timestamp, kind: Kind, body: Value) -> Record {
        Record { version: RECORD_VERSION, seq, prev: GENESIS_PREV, time, key_id: key_id.to_owned(), kind, body, hash: [0; 32], sig: [0; 64] }
    }

    /// A draft of `body`, with its text when that is canonical.
    fn around(key_id: &str, seq: u64, time: Timestamp, kind: Kind, (body, body_text): (Value, Option<Vec<u8>>)) -> Result<Draft> {
        let record = Self::unsealed(key_id, seq, time, kind, body);
        let signable = match body_text {
            Some(text) => {
                let mut frame = Unsealed::start(text.len());
                frame.extend_from_slice(&text);
                Unsealed::around(&record, frame)?
            }
            None => None,
        };
        Ok(Draft { record, signable })
    }

    /// Puts the draft after the record whose hash is `prev`; returns its hash.
    pub(crate) fn link(&mut self, prev: Hash) -> Result<Hash> {
        self.record.prev = prev;
        self.record.hash = match &mut self.signable {
            Some(s) => {
                hex::encode_to_slice(prev, &mut s.frame[s.prev_at..s.prev_at + 64]).expect("64 digits for 32 bytes");
                // `domain_hash` of the signable bytes, from the state it had
                // before `prev`.
                let mut h = s.before_prev.clone();
                h.update(&s.frame[s.prev_at..]);
                h.finalize().into()
            }
            None => self.record.compute_hash().map_err(|e| refuse_body(self.record.kind, e))?,
        };
        Ok(self.record.hash)
    }

    /// Where the log ends once the linked draft is in it.
    pub(crate) fn head(&self) -> ChainState {
        ChainState { next_seq: self.record.seq + 1, prev: self.record.hash, last_time: Some(self.record.time) }
    }

    /// Signs the linked draft: the record and its log frame (the canonical
    /// bytes behind their header).
    pub(crate) fn seal(mut self, signer: &Signer) -> Result<(Record, Vec<u8>)> {
        self.record.sig = signer.sign_hash(&self.record.hash);
        let frame = match self.signable {
            // The signable members are canonical, and so are `hash` and
            // `sig` (lower-case hex strings) in their sorted places among
            // them: the members after the body are written again, sealed.
            Some(Unsealed { mut frame, body_end, .. }) => {
                frame.truncate(body_end);
                self.record.members_after_body_into(true, &mut frame).map_err(|e| refuse_body(self.record.kind, e))?;
                let header = frame::header(&frame[frame::FRAME_HEADER_LEN..])?;
                frame[..frame::FRAME_HEADER_LEN].copy_from_slice(&header);
                frame
            }
            None => frame::encode(&self.record.canonical_bytes().map_err(|e| refuse_body(self.record.kind, e))?)?,
        };
        Ok((self.record, frame))
    }
}

fn refuse_body(kind: Kind, e: serde_json::Error) -> Error {
    Error::Body { kind: kind.as_str(), reason: e.to_string() }
}

/// Where the digits of `prev` start in the members after a body, as
/// [`Record::members_after_body_into`] writes them: after the first
/// `,"prev":"` (a string member before it, `key_id`, cannot hold that text
/// unescaped).
fn prev_digits_at(after_body: &[u8]) -> usize {
    const MARK: &[u8] = br#","prev":""#;
    after_body.windows(MARK.len()).position(|w| w == MARK).expect("the envelope has a prev") + MARK.len()
}

/// A record's position in the chain and its hash: what the chain checks
/// ([`crate::verify`]) need of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) version: u32,
    pub(crate) seq: u64,
    pub(crate) prev: Hash,
    pub(crate) time: Timestamp,
    /// The stored hash, which the seal found to match the contents.
    pub(crate) hash: Hash,
}

/// A record whose seal holds except, maybe, its signature: what is left to
/// check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignatureClaim<'k> {
    pub(crate) seq: u64,
    pub(crate) key: &'k VerifyingKey,
    pub(crate) hash: Hash,
    pub(crate) sig: [u8; 64],
}

impl SignatureClaim<'_> {
    /// The signature by `verify_strict`, the definition of a good one here.
    pub(crate) fn verify_strict(&self) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        self.key.verify_strict(&self.hash, &sig).map_err(|_| Error::BadSignature { seq: self.seq })
    }
}

/// A record's members, in canonical (sorted) order.
const FIELDS: [&[u8]; 9] = [b"body", b"hash", b"key_id", b"kind", b"prev", b"seq", b"sig", b"time", b"version"];

/// Decodes and seals a log frame's payload up to the signature without
/// building the body's JSON tree, when the payload is a record in the
/// canonical subset [`canonical`] recognises whose version, body, hash and
/// key all hold. `None` leaves the payload to the full path (decode, then
/// [`Record::check_seal_but_signature`]), which then finds the same record
/// or names what is wrong: this is only ever a faster way to the same answer.
///
/// Why it is the same answer: recognised text is the canonical form of the
/// JSON it spells. Its members here are exactly the record's fields, each
/// read as serde reads it for [`Record`] (strings without escapes, so their
/// text is their value: hex of the right length in lower case, the one
/// canonical spelling of the time, a kind's name; integers that fit), so
/// serde would read the same record, and re-serialized it spells the same
/// JSON: the full path's canonical-form check holds. And the canonical
/// object minus its `hash` and `sig` members is the canonical form of the
/// rest, which is what the hash covers.
pub(crate) fn seal_payload<'k>(payload: &[u8], keyring: &'k KeyRing) -> Option<(Link, SignatureClaim<'k>)> {
    let members = canonical::members(payload)?;
    if members.len() != FIELDS.len() || members.iter().zip(FIELDS).any(|((key, _), field)| *key != field) {
        return None;
    }
    // A member is `"key":value`.
    let values: [&[u8]; 9] = std::array::from_fn(|i| {
        let (key, member) = &members[i];
        &payload[member.start + key.len() + 3..member.end]
    });
    let [body, hash, key_id, kind, prev, seq, sig, time, version] = values;
    let version = u32::try_from(unsigned(version)?).ok()?;
    if version != RECORD_VERSION || !body.starts_with(b"{") {
        return None;
    }
    let hash: Hash = bare_hex(plain_string(hash)?)?;
    let key_id = std::str::from_utf8(plain_string(key_id)?).ok()?;
    let kind = plain_string(kind)?;
    Kind::ALL.iter().find(|k| k.as_str().as_bytes() == kind)?;
    let prev: Hash = bare_hex(plain_string(prev)?)?;
    let seq = unsigned(seq)?;
    let sig: [u8; 64] = bare_hex(plain_string(sig)?)?;
    let time = Timestamp::parse(std::str::from_utf8(plain_string(time)?).ok()?).ok()?;

    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(b"{");
    let signed = members.iter().filter(|(key, _)| !matches!(*key, b"hash" | b"sig"));
    for (i, (_, member)) in signed.enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        hasher.update(&payload[member.clone()]);
    }
    hasher.update(b"}");
    let computed: Hash = hasher.finalize().into();
    if computed != hash {
        return None;
    }
    let key = keyring.key_at(key_id, time).ok()?;
    Some((Link { version, seq, prev, time, hash }, SignatureClaim { seq, key, hash, sig }))
}

/// The text of a JSON string value without escapes.
fn plain_string(value: &[u8]) -> Option<&[u8]> {
    let text = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!text.contains(&b'\\')).then_some(text)
}

/// A JSON integer value without a sign.
fn unsigned(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// `N` bytes from exactly `2N` lower-case hex digits, as [`wire`] reads
/// hashes and signatures.
fn bare_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// `body` as a JSON object that reads back unchanged from its canonical
/// bytes, and those bytes if [`canonical`] recognised them on the way.
fn canonical_body<B: Serialize + ?Sized>(kind: Kind, body: &B) -> Result<(Value, Option<Vec<u8>>)> {
    let value = serde_json::to_value(body).map_err(|e| Error::Body { kind: kind.as_str(), reason: e.to_string() })?;
    canonical_value(kind, value)
}

/// [`canonical_body`] of a body already in JSON.
fn canonical_value(kind: Kind, value: Value) -> Result<(Value, Option<Vec<u8>>)> {
    let refuse = |reason: String| Error::Body { kind: kind.as_str(), reason };
    if !value.is_object() {
        return Err(refuse("the body must be a JSON object".into()));
    }
    // Room for a decision's text at once, rather than growing to it.
    let mut plain = Vec::with_capacity(4096);
    let mut watch = IntegerWatch { too_big: false };
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut plain, &mut watch)).map_err(|e| refuse(e.to_string()))?;
    if watch.too_big {
        check_integers(&value, &mut String::new()).map_err(refuse)?;
    }
    // serde_json's text of the value, when already canonical, reads back as
    // the value itself (it has no floats to round), so the crate's
    // canonicalize-and-parse round trip can be skipped.
    if canonical::members(&plain).is_some() {
        return Ok((value, Some(plain)));
    }
    let bytes = canonical_json(&value).map_err(|e| refuse(e.to_string()))?;
    Ok((serde_json::from_slice(&bytes).map_err(|e| refuse(e.to_string()))?, None))
}

/// serde_json's compact text, noting on the way whether an integer is one
/// a double cannot hold exactly (the common case, that none is, then needs
/// no second walk; [`check_integers`] names where one is).
struct IntegerWatch {
    too_big: bool,
}

impl serde_json::ser::Formatter for &mut IntegerWatch {
    fn write_i64<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: i64) -> std::io::Result<()> {
        self.too_big |= value.unsigned_abs() > MAX_SAFE_INTEGER;
        serde_json::ser::CompactFormatter.write_i64(writer, value)
    }

    fn write_u64<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: u64) -> std::io::Result<()> {
        self.too_big |= value > MAX_SAFE_INTEGER;
        serde_json::ser::CompactFormatter.write_u64(writer, value)
    }
}

/// Refuses integers a double cannot hold exactly, naming where they are.
fn check_integers(value: &Value, path: &mut String) -> Result<(), String> {
    match value {
        Value::Number(n) => {
            let too_big = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                (None, None) => false,
            };
            if too_big {
                let at = if path.is_empty() { "/" } else { path.as_str() };
                return Err(format!("{n} at {at} is beyond 2^53 - 1; write it as a decimal string"));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = path.len();
            let _ = write!(path, "/{i}");
            let r = check_integers(item, path);
            path.truncate(len);
            r
        }),
        Value::Object(map) => map.iter().try_for_each(|(k, item)| {
            let len = path.len();
            path.push('/');
            path.push_str(k);
            let r = check_integers(item, path);
            path.truncate(len);
            r
        }),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::SettlementSubmitted;
    use proptest::prelude::*;
    use serde_json::json;

    fn signer() -> Signer {
        Signer::from_seed(&[0x42; 32])
    }

    fn t0() -> Timestamp {
        Timestamp::parse("2025-01-02T03:04:05.678Z").unwrap()
    }

    /// The golden record: seq 0, a settlement submission, key seed 0x42 x 32.
    fn golden() -> Record {
        let body = SettlementSubmitted {
            batch_id: [0xba; 32],
            tx_hash: [0x7e; 32],
            nonce: 7,
            raw_tx: vec![0x02, 0xf8, 0x6c, 0x01],
            accounts: vec![1, 2, 3],
            decisions: vec![],
        };
        Record::sign_body(&signer(), 0, GENESIS_PREV, t0(), &body).unwrap()
    }

    // Cross-checked once with Python (`json.dumps(sort_keys=True, separators=(",", ":"))`,
    // which is JCS for this ASCII-only, integer-only record; hashlib; and the
    // `cryptography` package's Ed25519), then pinned.
    const GOLDEN_KEY_ID: &str = "3097e2dee2cb4a34";
    const GOLDEN_SIGNABLE: &str = concat!(
        r#"{"body":{"accounts":[1,2,3],"#,
        r#""batch_id":"0xbabababababababababababababababababababababababababababababababa","nonce":7,"#,
        r#""raw_tx":"0x02f86c01","#,
        r#""tx_hash":"0x7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"},"#,
        r#""key_id":"3097e2dee2cb4a34","kind":"settlement_submitted","#,
        r#""prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":0,"#,
        r#""time":"2025-01-02T03:04:05.678Z","version":1}"#,
    );
    const GOLDEN_HASH: &str = "9921420fc4f52cd4f772085cbb1be19dae48ce733dc4da3b3e6517087205840e";
    const GOLDEN_SIG: &str = concat!(
        "1530d39c83277e6469cee8fa30b835011d6c21962de9d67b72dc40c4e2fa0b72",
        "9be5d8300761c9f9fe6d197678fc52b379bc955b3d85e0dfee701651f6da200f",
    );
    const GOLDEN_PAYLOAD: &str = concat!(
        r#"{"body":{"accounts":[1,2,3],"#,
        r#""batch_id":"0xbabababababababababababababababababababababababababababababababa","nonce":7,"#,
        r#""raw_tx":"0x02f86c01","#,
        r#""tx_hash":"0x7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"},"#,
        r#""hash":"9921420fc4f52cd4f772085cbb1be19dae48ce733dc4da3b3e6517087205840e","#,
        r#""key_id":"3097e2dee2cb4a34","kind":"settlement_submitted","#,
        r#""prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":0,"#,
        r#""sig":"1530d39c83277e6469cee8fa30b835011d6c21962de9d67b72dc40c4e2fa0b72"#,
        r#"9be5d8300761c9f9fe6d197678fc52b379bc955b3d85e0dfee701651f6da200f","#,
        r#""time":"2025-01-02T03:04:05.678Z","version":1}"#,
    );

    #[test]
    fn golden_record_bytes_hash_and_signature() {
        let r = golden();
        assert_eq!(r.key_id, GOLDEN_KEY_ID);
        let signable = String::from_utf8(r.signable_bytes().unwrap()).unwrap();
        assert_eq!(signable, GOLDEN_SIGNABLE);
        // The hash by hand: domain prefix, then the canonical bytes.
        let mut by_hand = b"ballast-record-v1\0".to_vec();
        by_hand.extend_from_slice(signable.as_bytes());
        assert_eq!(hex::encode(Sha256::digest(&by_hand)), GOLDEN_HASH);
        assert_eq!(hex::encode(r.hash), GOLDEN_HASH);
        assert_eq!(hex::encode(r.sig), GOLDEN_SIG);
        // The payload is the whole record in canonical form.
        let payload = String::from_utf8(r.canonical_bytes().unwrap()).unwrap();
        assert_eq!(payload, GOLDEN_PAYLOAD);
        assert_eq!(r.check_seal(&KeyRing::single(signer().verifying_key()).unwrap()).unwrap(), r.hash);
    }

    #[test]
    fn common_records_take_the_fast_paths() {
        let ring = KeyRing::single(signer().verifying_key()).unwrap();
        let decision = crate::body::synthetic::decision(7);
        let (signed, payload) =
            Record::sign_with_payload(&signer(), 3, [9; 32], t0(), Kind::Decision, &decision).unwrap();
        assert_eq!(payload, signed.canonical_bytes_by_crate().unwrap());
        for r in [golden(), signed] {
            let sorted = r.sorted_json(true).unwrap();
            assert!(canonical::members(&sorted).is_some(), "{}", String::from_utf8_lossy(&sorted));
            assert_eq!(sorted, r.canonical_bytes_by_crate().unwrap());
            assert_eq!(r.sorted_json(false).unwrap(), r.signable_bytes_by_crate().unwrap());
            let (link, claim) = seal_payload(&sorted, &ring).expect("the fast path");
            assert_eq!(link, r.link());
            assert_eq!((claim.seq, claim.hash, claim.sig), (r.seq, r.hash, r.sig));
            claim.verify_strict().unwrap();
        }
        // A float in the body is left to the crate, with the same result.
        let r = Record::sign(&signer(), 0, GENESIS_PREV, t0(), Kind::Decision, &json!({"x": 1.5})).unwrap();
        let bytes = r.canonical_bytes().unwrap();
        assert!(seal_payload(&bytes, &ring).is_none());
        assert_eq!(bytes, r.canonical_bytes_by_crate().unwrap());
        assert_eq!(r.check_seal(&ring).unwrap(), r.check_seal_by_crate(&ring).unwrap());
    }

    #[test]
    fn record_serde_round_trip_is_canonical() {
        let r = golden();
        let bytes = r.canonical_bytes().unwrap();
        let back: Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.canonical_bytes().unwrap(), bytes);
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let mut v = serde_json::to_value(golden()).unwrap();
        v["extra"] = json!(1);
        assert!(serde_json::from_value::<Record>(v).is_err());
        let mut v = serde_json::to_value(golden()).unwrap();
        v["kind"] = json!("settlement_forged");
        assert!(serde_json::from_value::<Record>(v).is_err());
    }

    #[test]
    fn kinds_are_snake_case_on_the_wire() {
        for kind in Kind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&format!("\"{kind}\"")).unwrap(), kind);
        }
        assert_eq!(Kind::IpsRegistered.as_str(), "ips_registered");
        assert_eq!(Kind::KeyRotation.as_str(), "key_rotation");
    }

    #[test]
    fn bodies_that_would_not_survive_canonicalization_are_refused() {
        let s = signer();
        let sign = |body: &Value| Record::sign(&s, 0, GENESIS_PREV, t0(), Kind::Decision, body);
        assert!(matches!(sign(&json!([1, 2])), Err(Error::Body { .. })));
        assert!(matches!(sign(&json!("x")), Err(Error::Body { .. })));
        let err = sign(&json!({"a": {"b": [0, 9_007_199_254_740_992u64]}})).unwrap_err();
        assert!(err.to_string().contains("/a/b/1"), "{err}");
        assert!(sign(&json!({"n": -9_007_199_254_740_992i64})).is_err());
        assert!(sign(&json!({"n": 9_007_199_254_740_991u64})).is_ok());
        // A float that is an integer reads back as an integer, as from the log.
        let r = sign(&json!({"x": 1.0, "z": -0.0})).unwrap();
        assert_eq!(r.body, json!({"x": 1, "z": 0}));
    }

    #[test]
    fn check_seal_names_the_failure() {
        let ring = KeyRing::single(signer().verifying_key()).unwrap();
        let good = golden();

        let mut r = good.clone();
        r.body["nonce"] = json!(8);
        assert!(matches!(r.check_seal(&ring), Err(Error::HashMismatch { seq: 0, .. })));

        let mut r = good.clone();
        r.sig[0] ^= 1;
        assert!(matches!(r.check_seal(&ring), Err(Error::BadSignature { seq: 0 })));

        let mut r = good.clone();
        r.version = 2;
        assert!(matches!(r.check_seal(&ring), Err(Error::UnsupportedVersion { version: 2, .. })));

        let other = KeyRing::single(Signer::from_seed(&[1; 32]).verifying_key()).unwrap();
        assert!(matches!(good.check_seal(&other), Err(Error::UnknownKey { seq: 0, .. })));
    }

    #[test]
    fn body_as_checks_the_kind() {
        let r = golden();
        let body: SettlementSubmitted = r.body_as().unwrap();
        assert_eq!(body.nonce, 7);
        assert!(matches!(r.body_as::<crate::body::Halt>(), Err(Error::WrongBody { .. })));
    }

    #[test]
    fn merkle_leaf_is_the_rfc6962_leaf_of_the_record_hash() {
        let r = golden();
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(r.hash);
        let expected: Hash = h.finalize().into();
        assert_eq!(r.merkle_leaf(), expected);
        assert_eq!(r.leaf_data(), &r.hash);
    }

    fn arb_body() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64).prop_map(|n| json!(n)),
            any::<String>().prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        proptest::collection::btree_map(any::<String>(), value, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn signed_records_round_trip_and_verify(
            seed in any::<[u8; 32]>(),
            seq in 0..MAX_SAFE_INTEGER,
            prev in any::<[u8; 32]>(),
            nanos in 0i128..253_402_300_799_999_999_999i128,
            kind in proptest::sample::select(Kind::ALL.to_vec()),
            body in arb_body(),
        ) {
            let signer = Signer::from_seed(&seed);
            let time = Timestamp::from_unix_nanos(nanos).unwrap();
            let r = Record::sign(&signer, seq, prev, time, kind, &body).unwrap();
            let bytes = r.canonical_bytes().unwrap();
            let back: Record = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&back, &r);
            prop_assert_eq!(back.canonical_bytes().unwrap(), bytes);
            let ring = KeyRing::single(signer.verifying_key()).unwrap();
            prop_assert_eq!(back.check_seal(&ring).unwrap(), r.hash);
            // The fast paths give the crate's bytes, and the crate's seal.
            let bytes = r.canonical_bytes().unwrap();
            prop_assert_eq!(&bytes, &r.canonical_bytes_by_crate().unwrap());
            let (signed, payload) = Record::sign_with_payload(&signer, seq, prev, time, kind, &body).unwrap();
            prop_assert_eq!(&signed, &r);
            prop_assert_eq!(&payload, &bytes);
            prop_assert_eq!(r.signable_bytes().unwrap(), r.signable_bytes_by_crate().unwrap());
            prop_assert_eq!(back.check_seal_by_crate(&ring).unwrap(), r.hash);
            if let Some((link, claim)) = seal_payload(&bytes, &ring) {
                prop_assert_eq!(link, r.link());
                prop_assert_eq!((claim.hash, claim.sig), (r.hash, r.sig));
            }
        }

        /// A changed byte never gets a payload through the fast path unless
        /// the full path reads the same record from it and finds its seal
        /// holding but for the signature.
        #[test]
        fn the_fast_path_agrees_with_decoding(
            seed in any::<[u8; 32]>(),
            body in arb_body(),
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let signer = Signer::from_seed(&seed);
            let ring = KeyRing::single(signer.verifying_key()).unwrap();
            let r = Record::sign(&signer, 5, [1; 32], t0(), Kind::Halt, &body).unwrap();
            let mut bytes = r.canonical_bytes().unwrap();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Some((link, claim)) = seal_payload(&bytes, &ring) {
                let read: Record = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(read.canonical_bytes_by_crate().unwrap(), bytes);
                prop_assert_eq!(link, read.link());
                let by_crate = |r: &Record| Ok(domain_hash(&r.signable_bytes_by_crate()?));
                let full = read.check_seal_but_signature(&ring, by_crate).unwrap();
                prop_assert_eq!((full.seq, full.hash, full.sig), (claim.seq, claim.hash, claim.sig));
            }
        }
    }
}
