//! Verification of log bytes, with no I/O: every frame's checksum, every
//! record's canonical form, sequence number, previous-hash link, time order,
//! hash, key and signature, stopping at the first bad record. Records are
//! checked in parallel and signatures in Ed25519 batches; the answer is the
//! one-record-at-a-time reference's ([`verify_records_sequential_from`]).
//!
//! A bad frame with nothing valid after it is a *torn tail* (a write the
//! crash interrupted) and is reported, not an error; a bad frame followed by
//! a valid one is damage in the middle of the log, an integrity error.
//! A log that verifies can still be a truncated or rewritten copy: check it
//! against an anchored checkpoint with [`Summary::check_checkpoint`].

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

use crate::{
    error::{Error, Result},
    frame::{self, FrameDefect},
    keys::KeyRing,
    merkle::{self, Hash, MerkleTree},
    record::{self, GENESIS_PREV, Link, RECORD_VERSION, Record, SignatureClaim},
    timestamp::Timestamp,
};

/// The most frames read ahead and checked together: a window's records are
/// decoded and sealed in parallel, then chained in order. Windows start at
/// one record and double up to this, so damage near the start is found
/// without checking thousands of records past it, and the memory held is
/// bounded.
const MAX_WINDOW_RECORDS: usize = 4096;

/// Records per parallel task, and so per Ed25519 batch. Past about 95
/// signatures dalek's multiscalar multiplication switches to Pippenger's
/// method; per signature 256 costs a fifth less than 128 and about what
/// 512 or 1024 cost. A failed batch is checked again one signature at a
/// time, which only damaged logs pay for.
const BATCH_RECORDS: usize = 256;

/// Whether signatures are checked in batches ([`verify_signatures`]); with
/// `false` each is checked alone by `verify_strict`.
const BATCH_SIGNATURES: bool = true;

/// Where a verified log ends: what the next record must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    /// The next record's sequence number (= records so far).
    pub next_seq: u64,
    /// The last record's hash ([`GENESIS_PREV`] before the first).
    pub prev: Hash,
    /// The last record's time; the next may not be earlier.
    pub last_time: Option<Timestamp>,
}

impl ChainState {
    /// Before the first record.
    pub const GENESIS: ChainState = ChainState { next_seq: 0, prev: GENESIS_PREV, last_time: None };

    /// Checks that `record` comes next after this state and that its seal
    /// holds under `keyring`; returns the state after it. Errors name the
    /// record's position (`self.next_seq`), whatever seq it claims.
    pub fn check_next(&self, record: &Record, keyring: &KeyRing) -> Result<ChainState> {
        self.check_link(&record.link())?;
        let hash = record.check_seal(keyring)?;
        Ok(self.after(hash, record.time))
    }

    /// [`ChainState::check_next`] with the record's seal checked by the JCS
    /// crate alone, for [`verify_records_sequential_from`].
    fn check_next_by_crate(&self, record: &Record, keyring: &KeyRing) -> Result<ChainState> {
        self.check_link(&record.link())?;
        let hash = record.check_seal_by_crate(keyring)?;
        Ok(self.after(hash, record.time))
    }

    /// Whether a record with `link` may come next: its version, sequence
    /// number, previous hash and time.
    fn check_link(&self, link: &Link) -> Result<()> {
        let seq = self.next_seq;
        if link.version != RECORD_VERSION {
            return Err(Error::UnsupportedVersion { seq, version: link.version });
        }
        if link.seq != seq {
            return Err(Error::SeqGap { expected: seq, found: link.seq });
        }
        if link.prev != self.prev {
            return Err(Error::BrokenChain { seq, expected: self.prev, found: link.prev });
        }
        if let Some(previous) = self.last_time
            && link.time < previous
        {
            return Err(Error::TimeRegressed { seq, previous, time: link.time });
        }
        Ok(())
    }

    /// The state after a record with `hash` and `time`.
    fn after(&self, hash: Hash, time: Timestamp) -> ChainState {
        ChainState { next_seq: self.next_seq + 1, prev: hash, last_time: Some(time) }
    }
}

/// A final frame dropped as a torn write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn frame starts (the log's valid length).
    pub offset: u64,
    /// Bytes from there to the end.
    pub dropped_bytes: u64,
    pub defect: FrameDefect,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Hashes of the verified records, in order.
    pub hashes: Vec<Hash>,
    /// Offset just past the last valid frame.
    pub valid_len: u64,
    pub torn_tail: Option<TornTail>,
    /// Where the verified records end.
    pub end: ChainState,
}

impl Summary {
    /// Records verified (this call's; the whole log's from [`verify_records`]).
    pub fn records(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Checks that the verified records start with the checkpoint's: at
    /// least `size` of them, whose RFC 6962 root is `root`. Catches what the
    /// log alone cannot: an older prefix replayed, the tail cut at a frame
    /// boundary, or records rewritten and re-chained by a holder of the key.
    pub fn check_checkpoint(&self, size: u64, root: &Hash) -> Result<()> {
        check_checkpoint(&self.hashes, size, root)
    }
}

/// [`Summary::check_checkpoint`] over record hashes from the start of a log.
pub fn check_checkpoint(hashes: &[Hash], size: u64, root: &Hash) -> Result<()> {
    let mut tree = MerkleTree::new();
    for hash in hashes.iter().take(usize::try_from(size).unwrap_or(usize::MAX)) {
        tree.push(merkle::leaf_hash(hash));
    }
    crate::anchor::check_root(tree.size(), tree.root(), size, root)
}

/// Verifies a whole log file's bytes.
pub fn verify_records(bytes: &[u8], keyring: &KeyRing) -> Result<Summary> {
    verify_records_from(bytes, 0, ChainState::GENESIS, keyring)
}

/// Verifies log bytes that start at file offset `base_offset`, after records
/// that ended in `start`, up to the end of the file. Verification is a pure
/// left-to-right function of the bytes, so verifying a file's prefix and
/// then the rest from the prefix's end state gives what verifying the whole
/// file gives; this is how new records are checked without re-reading the log.
///
/// The work is spread over rayon's threads: frames are read in order (a
/// checksum each), then each record is decoded, re-hashed and its key and
/// signature checked in parallel, then the chain (sequence numbers, previous
/// hashes, times) is checked in order. The answer, the first bad record
/// included, is exactly [`verify_records_sequential_from`]'s.
pub fn verify_records_from(bytes: &[u8], base_offset: u64, start: ChainState, keyring: &KeyRing) -> Result<Summary> {
    let mut state = start;
    let mut hashes = Vec::new();
    let mut at = 0;
    let mut window = 1;
    let mut frames: Vec<Frame<'_>> = Vec::new();
    loop {
        // Frame boundaries in order; checksums are checked with the records.
        frames.clear();
        let mut defect = None;
        while frames.len() < window && at < bytes.len() {
            match frame::split_frame(bytes, at) {
                Ok((payload, stored, end)) => {
                    frames.push(Frame { at, offset: base_offset + at as u64, payload, stored });
                    at = end;
                }
                Err(d) => {
                    defect = Some(d);
                    break;
                }
            }
        }
        let first_seq = state.next_seq;
        let checked: Vec<Vec<Checked>> = if frames.len() <= BATCH_RECORDS {
            // One task: not worth handing to another thread.
            vec![check_records(&frames, first_seq, keyring)]
        } else {
            frames
                .par_chunks(BATCH_RECORDS)
                .enumerate()
                .map(|(i, chunk)| check_records(chunk, first_seq + (i * BATCH_RECORDS) as u64, keyring))
                .collect()
        };
        for (frame, checked) in frames.iter().zip(checked.into_iter().flatten()) {
            let (link, seal) = match checked {
                Checked::BadChecksum(defect) => return frame_stop(bytes, frame.at, base_offset, defect, hashes, state),
                Checked::Undecodable(e) => return Err(e),
                Checked::Record(link, seal) => (link, seal),
            };
            state.check_link(&link)?;
            seal.map_err(|e| with_offset(e, frame.offset))?;
            state = state.after(link.hash, link.time);
            hashes.push(link.hash);
        }
        if let Some(defect) = defect {
            return frame_stop(bytes, at, base_offset, defect, hashes, state);
        }
        if at >= bytes.len() {
            return Ok(Summary { hashes, valid_len: base_offset + at as u64, torn_tail: None, end: state });
        }
        window = (window * 2).min(MAX_WINDOW_RECORDS);
    }
}

/// A frame whose boundaries hold, its checksum not yet checked.
struct Frame<'a> {
    /// Where it starts in the bytes being verified, and in the file.
    at: usize,
    offset: u64,
    payload: &'a [u8],
    /// The checksum in its header.
    stored: u32,
}

/// A frame checked by itself, before the chain.
enum Checked {
    /// The payload does not match the checksum: reading stops here.
    BadChecksum(FrameDefect),
    /// The payload is not a record in canonical form.
    Undecodable(Error),
    /// The record's link, and whether its seal holds.
    Record(Link, Result<()>),
}

/// Checks the frames' checksums, decodes and seals their records (the
/// first at position `first_seq`) and checks their signatures together.
fn check_records(frames: &[Frame<'_>], first_seq: u64, keyring: &KeyRing) -> Vec<Checked> {
    let mut checked = Vec::with_capacity(frames.len());
    let mut claims = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        if let Err(defect) = frame::check_payload(frame.payload, frame.stored) {
            checked.push(Checked::BadChecksum(defect));
            continue;
        }
        if let Some((link, claim)) = record::seal_payload(frame.payload, keyring) {
            claims.push((i, claim));
            checked.push(Checked::Record(link, Ok(())));
            continue;
        }
        let record = match decode(frame.payload, first_seq + i as u64, frame.offset) {
            Ok(record) => record,
            Err(e) => {
                checked.push(Checked::Undecodable(e));
                continue;
            }
        };
        match record.check_seal_but_signature(keyring, Record::compute_hash) {
            Ok(claim) => {
                claims.push((i, claim));
                checked.push(Checked::Record(record.link(), Ok(())));
            }
            Err(e) => checked.push(Checked::Record(record.link(), Err(e))),
        }
    }
    let signatures: Vec<SignatureClaim<'_>> = claims.iter().map(|(_, claim)| *claim).collect();
    for ((i, _), verdict) in claims.iter().zip(verify_signatures(&signatures)) {
        if let (Err(e), Checked::Record(_, seal)) = (verdict, &mut checked[*i]) {
            *seal = Err(e);
        }
    }
    checked
}

/// Checks signatures with the verdict of `verify_strict` on each.
///
/// A batch (ed25519-dalek's `verify_batch`: one random linear combination
/// of all the verification equations) of 256 costs about 18 µs a signature
/// on the benchmark machine, against 55 µs for `verify_strict` alone
/// (criterion, `signature` group). It passes whenever every signature
/// passes `verify_strict`. The other way round it is made to refuse what
/// `verify_strict` refuses:
///
/// - a failed batch proves nothing about any one signature: each is then
///   checked by `verify_strict`, which also names the first bad record;
/// - a non-canonical S fails the batch itself (`verify_batch` reads S with
///   `Scalar::from_canonical_bytes`, as `verify_strict` does);
/// - a public key of small order, or with a small-order component, is
///   refused by the key ring on the way in ([`KeyRing::add`]), so every
///   key here is in the prime-order subgroup;
/// - an R that `verify_strict` refuses outright (a non-canonical encoding,
///   or a point of small order) keeps its signature out of the batch
///   ([`batchable`]) and it is checked alone.
///
/// One difference remains: an R with a small-order component (`R = rB + T`
/// with T of order 2, 4 or 8). `verify_strict` refuses it (its equation is
/// exact); the batch equation does not multiply by the cofactor, and T
/// drops out of it when T's random coefficient is a multiple of T's order.
/// The coefficients are derived from the batch's signatures, so whoever
/// makes such a signature can retry until the batch accepts it. But making
/// one takes the secret key (the equation must hold up to T), so this is a
/// way for a trusted key's holder to write a record this verifier accepts
/// and a strict one refuses, never a forgery; telling such an R apart costs
/// a scalar multiplication per signature (37 µs here), more than the batch
/// saves. Set [`BATCH_SIGNATURES`] to `false` for exactly `verify_strict`.
fn verify_signatures(claims: &[SignatureClaim<'_>]) -> Vec<Result<()>> {
    let batch: Vec<&SignatureClaim<'_>> = claims.iter().filter(|c| BATCH_SIGNATURES && batchable(c)).collect();
    if batch.len() > 1 {
        let messages: Vec<&[u8]> = batch.iter().map(|c| &c.hash[..]).collect();
        let signatures: Vec<Signature> = batch.iter().map(|c| Signature::from_bytes(&c.sig)).collect();
        let keys: Vec<VerifyingKey> = batch.iter().map(|c| *c.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return claims.iter().map(|c| if batchable(c) { Ok(()) } else { c.verify_strict() }).collect();
        }
    }
    claims.iter().map(SignatureClaim::verify_strict).collect()
}

/// Whether a signature may be checked in a batch: its R is the canonical
/// encoding of a point not of small order (`verify_strict` refuses the
/// others outright, a batch might not).
fn batchable(claim: &SignatureClaim<'_>) -> bool {
    let r: [u8; 32] = claim.sig[..32].try_into().expect("64-byte signatures");
    let mut y = r;
    y[31] &= 0x7f;
    // The encoding is canonical when y < p = 2^255 - 19; the sign bit is
    // free, as x = 0 only on points of small order.
    let y_below_p = y[31] != 0x7f || y[1..31].iter().any(|&b| b != 0xff) || y[0] < 0xed;
    y_below_p && !small_order_ys().contains(&y)
}

/// The y-coordinates (encoded, sign bit clear) of the eight points of small
/// order.
fn small_order_ys() -> &'static [[u8; 32]] {
    static YS: std::sync::OnceLock<Vec<[u8; 32]>> = std::sync::OnceLock::new();
    YS.get_or_init(|| {
        let mut ys: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|point| {
                let mut y = point.compress().to_bytes();
                y[31] &= 0x7f;
                y
            })
            .collect();
        ys.sort_unstable();
        ys.dedup();
        ys
    })
}

/// A decode error of the seal gets the frame's offset, as from [`decode`].
fn with_offset(e: Error, offset: u64) -> Error {
    match e {
        Error::Decode { seq, reason, .. } => Error::Decode { seq, offset, reason },
        e => e,
    }
}

/// The answer at a bad frame at `at`, after the records before it verified:
/// damage if a valid frame follows, else a torn tail.
fn frame_stop(
    bytes: &[u8],
    at: usize,
    base_offset: u64,
    defect: FrameDefect,
    hashes: Vec<Hash>,
    end: ChainState,
) -> Result<Summary> {
    let (seq, offset) = (end.next_seq, base_offset + at as u64);
    if frame::valid_frame_after(bytes, at) {
        return Err(match defect {
            FrameDefect::Checksum { stored, computed } => Error::BadChecksum { seq, offset, stored, computed },
            defect => Error::BadFrame { seq, offset, defect },
        });
    }
    let torn_tail = Some(TornTail { offset, dropped_bytes: (bytes.len() - at) as u64, defect });
    Ok(Summary { hashes, valid_len: offset, torn_tail, end })
}

/// [`verify_records_sequential_from`] over a whole file.
pub fn verify_records_sequential(bytes: &[u8], keyring: &KeyRing) -> Result<Summary> {
    verify_records_sequential_from(bytes, 0, ChainState::GENESIS, keyring)
}

/// The reference verifier: one record after another on the calling thread,
/// each through the JCS crate and `verify_strict`, stopping at the first bad
/// one. [`verify_records_from`] must give exactly what this gives, for any
/// bytes; it is kept for the tests that hold it to that.
pub fn verify_records_sequential_from(
    bytes: &[u8],
    base_offset: u64,
    start: ChainState,
    keyring: &KeyRing,
) -> Result<Summary> {
    let mut state = start;
    let mut hashes = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let offset = base_offset + at as u64;
        let (payload, end) = match frame::read_frame(bytes, at) {
            Ok(frame) => frame,
            Err(defect) => return frame_stop(bytes, at, base_offset, defect, hashes, state),
        };
        let record = decode_by_crate(payload, state.next_seq, offset)?;
        state = state.check_next_by_crate(&record, keyring).map_err(|e| with_offset(e, offset))?;
        hashes.push(record.hash);
        at = end;
    }
    Ok(Summary { hashes, valid_len: base_offset + at as u64, torn_tail: None, end: state })
}

/// A frame payload as a record, which must be in canonical form: one record
/// has exactly one byte string, so no edit of the bytes goes unnoticed.
fn decode(payload: &[u8], seq: u64, offset: u64) -> Result<Record> {
    decode_with(payload, seq, offset, Record::canonical_bytes)
}

/// [`decode`] with the canonical form by the JCS crate alone.
fn decode_by_crate(payload: &[u8], seq: u64, offset: u64) -> Result<Record> {
    decode_with(payload, seq, offset, Record::canonical_bytes_by_crate)
}

fn decode_with(
    payload: &[u8],
    seq: u64,
    offset: u64,
    canonical_bytes: impl FnOnce(&Record) -> serde_json::Result<Vec<u8>>,
) -> Result<Record> {
    let bad = |reason: String| Error::Decode { seq, offset, reason };
    let record: Record = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let canonical = canonical_bytes(&record).map_err(|e| bad(format!("cannot canonicalize: {e}")))?;
    if canonical != payload {
        return Err(bad("not in canonical (RFC 8785) form".into()));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Signer;

    fn claims<'k>(key: &'k VerifyingKey, signer: &Signer, n: u8) -> Vec<SignatureClaim<'k>> {
        (0..n)
            .map(|i| {
                let hash = [i; 32];
                SignatureClaim { seq: u64::from(i), key, hash, sig: signer.sign_hash(&hash) }
            })
            .collect()
    }

    #[test]
    fn batches_give_verify_strict_verdicts() {
        let signer = Signer::from_seed(&[3; 32]);
        let key = signer.verifying_key();
        let good = claims(&key, &signer, 10);
        assert!(good.iter().all(batchable));
        assert!(verify_signatures(&good).iter().all(Result::is_ok));
        for bad in [0, 4, 9] {
            for byte in [3, 40] {
                let mut some_bad = good.clone();
                some_bad[bad].sig[byte] ^= 0x08;
                let verdicts = verify_signatures(&some_bad);
                for (i, verdict) in verdicts.iter().enumerate() {
                    let strict = some_bad[i].verify_strict();
                    assert_eq!(verdict.is_ok(), strict.is_ok(), "claim {i}, bad {bad}, byte {byte}");
                    assert_eq!(verdict.is_ok(), i != bad, "claim {i}, bad {bad}, byte {byte}");
                }
            }
        }
    }

    #[test]
    fn signatures_verify_strict_refuses_outright_stay_out_of_batches() {
        let signer = Signer::from_seed(&[3; 32]);
        let key = signer.verifying_key();
        let claim = claims(&key, &signer, 1)[0];
        let with_r = |r: [u8; 32]| {
            let mut c = claim;
            c.sig[..32].copy_from_slice(&r);
            c
        };
        // Every point of small order, with either sign bit.
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let r = point.compress().to_bytes();
            let mut flipped = r;
            flipped[31] ^= 0x80;
            assert!(!batchable(&with_r(r)) && !batchable(&with_r(flipped)), "{}", hex::encode(r));
        }
        // y at or above p = 2^255 - 19: p itself (y = 0, of small order
        // too), p + 1 and 2^255 - 1, either sign.
        for low in [0xed, 0xee, 0xff] {
            let mut r = [0xff; 32];
            r[0] = low;
            r[31] = 0x7f;
            let mut flipped = r;
            flipped[31] ^= 0x80;
            assert!(!batchable(&with_r(r)) && !batchable(&with_r(flipped)), "{}", hex::encode(r));
        }
        // p - 2: canonical (p - 1 is y = -1, of small order).
        let mut r = [0xff; 32];
        r[0] = 0xeb;
        r[31] = 0x7f;
        assert!(batchable(&with_r(r)));
        assert_eq!(small_order_ys().len(), 5, "y = 1, -1, 0 and two more of order 8");
    }
}
