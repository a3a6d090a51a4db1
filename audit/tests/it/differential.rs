//! The parallel verifier ([`verify_records`]: frames in order, records
//! decoded, re-hashed and signature-checked in parallel and in Ed25519
//! batches, the chain in order) against the reference
//! ([`verify_records_sequential`]: one record after another, the JCS crate
//! and `verify_strict`): on tampered logs they give the same summary or the
//! same error, to the last field. Damage is placed at and around the
//! boundaries of the parallel verifier's windows (1, 2, 4, ... records) and
//! signature batches (64 records).

use ballast_audit::{
    Error, Kind, Log, Record, Summary, SyncPolicy, Validity,
    frame::{self, FRAME_HEADER_LEN},
    verify::{verify_records, verify_records_from, verify_records_sequential, verify_records_sequential_from},
};
use serde_json::json;

use crate::{Fixture, RECORDS, fixture, ring_a, signer_a, signer_b, splitmix64, time_of};

/// Where damage goes: at and around the boundaries of windows (after 1, 3,
/// 7, ..., 127, 255 records) and of batches within them, and at the end.
const POSITIONS: [usize; 14] = [0, 1, 2, 3, 7, 63, 64, 126, 127, 128, 191, 255, 998, 999];

/// Past this position verification resumes [`RESUME_BEFORE`] records
/// before the damage (from the fixture's clean state there) rather than
/// from the start, to keep the test quick.
const VERIFY_WHOLE_UP_TO: usize = 256;
const RESUME_BEFORE: usize = 70;

/// The same answer from both verifiers on `bytes` (the fixture changed at
/// or after record `k`), or a panic naming `what`.
fn assert_same(f: &Fixture, bytes: &[u8], k: usize, what: &str) {
    let ring = ring_a();
    if k <= VERIFY_WHOLE_UP_TO {
        same(verify_records(bytes, &ring), verify_records_sequential(bytes, &ring), what);
    } else {
        let from = k - RESUME_BEFORE;
        let (tail, offset, state) = (&bytes[f.starts[from]..], f.starts[from] as u64, f.states[from]);
        same(
            verify_records_from(tail, offset, state, &ring),
            verify_records_sequential_from(tail, offset, state, &ring),
            what,
        );
    }
}

fn same(parallel: Result<Summary, Error>, reference: Result<Summary, Error>, what: &str) {
    match (&parallel, &reference) {
        (Ok(p), Ok(r)) => assert_eq!(p, r, "{what}"),
        (Err(p), Err(r)) => assert_eq!(format!("{p:?}"), format!("{r:?}"), "{what}"),
        _ => panic!("{what}: parallel {parallel:?}, reference {reference:?}"),
    }
}

/// The fixture with frame `k`'s payload replaced by `payload` (checksum
/// recomputed).
fn with_payload(f: &Fixture, k: usize, payload: &[u8]) -> Vec<u8> {
    let replacement = frame::encode(payload).unwrap();
    let mut frames = f.frames();
    frames[k] = &replacement;
    frames.concat()
}

fn payload(f: &Fixture, k: usize) -> Vec<u8> {
    f.frame(k)[FRAME_HEADER_LEN..].to_vec()
}

#[test]
fn the_clean_fixture_and_its_prefixes() {
    let f = fixture();
    assert_same(f, &f.bytes, 0, "whole");
    for k in POSITIONS {
        assert_same(f, &f.bytes[..f.starts[k]], k, &format!("first {k} records"));
        assert_same(f, &f.bytes[..f.starts[k] + 11], k, &format!("cut inside frame {k}"));
    }
}

#[test]
fn flipped_bits_with_and_without_the_checksum_recomputed() {
    let f = fixture();
    for k in POSITIONS {
        let frame_len = f.starts[k + 1] - f.starts[k];
        for i in 0..3u64 {
            let at = (splitmix64(k as u64 * 16 + i) % frame_len as u64) as usize;
            let bit = 1 << (splitmix64(at as u64) % 8);
            let mut raw = f.bytes.clone();
            raw[f.starts[k] + at] ^= bit;
            assert_same(f, &raw, k, &format!("frame {k}, byte {at}, checksum stale"));
            if at >= FRAME_HEADER_LEN {
                let mut p = payload(f, k);
                p[at - FRAME_HEADER_LEN] ^= bit;
                assert_same(f, &with_payload(f, k, &p), k, &format!("frame {k}, byte {at}, checksum recomputed"));
            }
        }
    }
}

/// Signature bytes changed under a good checksum: the batch holding the
/// record fails and every signature of it is checked alone.
#[test]
fn bad_signatures_inside_batches() {
    let f = fixture();
    let order: [u8; 32] = {
        // The group order l, little-endian: S + l is the same scalar, not canonical.
        let mut l = [0u8; 32];
        l[..16].copy_from_slice(&0x14de_f9de_a2f7_9cd6_5812_631a_5cf5_d3edu128.to_le_bytes());
        l[31] = 0x10;
        l
    };
    for k in POSITIONS {
        let original = f.record(k);
        let mut changed = Vec::new();
        for byte in [17, 50] {
            let mut r = original.clone();
            r.sig[byte] ^= 0x01;
            changed.push(r);
        }
        // R of small order (the identity), and R's y not reduced mod p.
        let mut r = original.clone();
        r.sig[..32].copy_from_slice(&{
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        });
        changed.push(r);
        let mut r = original.clone();
        r.sig[..32].copy_from_slice(&[0xff; 32]);
        r.sig[31] = 0x7f;
        changed.push(r);
        // S + l.
        let mut r = original.clone();
        let mut carry = 0u16;
        for (s, l) in r.sig[32..].iter_mut().zip(order) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        changed.push(r);
        for (i, r) in changed.iter().enumerate() {
            let bytes = with_payload(f, k, &r.canonical_bytes().unwrap());
            assert_same(f, &bytes, k, &format!("record {k}, signature change {i}"));
            if k <= VERIFY_WHOLE_UP_TO {
                assert!(
                    matches!(verify_records(&bytes, &ring_a()), Err(Error::BadSignature { seq }) if seq == k as u64),
                    "record {k}, change {i}"
                );
            }
        }
    }
}

#[test]
fn deleted_swapped_duplicated_and_spliced_records() {
    let f = fixture();
    let b = signer_b();
    for k in POSITIONS {
        let mut frames = f.frames();
        frames.remove(k);
        assert_same(f, &frames.concat(), k, &format!("record {k} deleted"));
        if k + 1 < RECORDS {
            let mut frames = f.frames();
            frames.swap(k, k + 1);
            assert_same(f, &frames.concat(), k, &format!("records {k} and {} swapped", k + 1));
        }
        let mut frames = f.frames();
        frames.insert(k, f.frame(k));
        assert_same(f, &frames.concat(), k, &format!("record {k} duplicated"));

        let original = f.record(k);
        let (seq, prev, kind, body) = (original.seq, original.prev, original.kind, &original.body);
        let forged = Record::sign(&b, seq, prev, original.time, kind, body).unwrap();
        assert_same(f, &with_payload(f, k, &forged.canonical_bytes().unwrap()), k, &format!("record {k} by B"));
        let early = k.saturating_sub(2) as u64;
        let regressed = Record::sign(&signer_a(), seq, prev, time_of(early), kind, body).unwrap();
        let bytes = with_payload(f, k, &regressed.canonical_bytes().unwrap());
        assert_same(f, &bytes, k, &format!("record {k} back in time"));
        // Garbage with a good checksum, and garbage that is not a frame.
        assert_same(f, &with_payload(f, k, b"{\"not\":\"a record\"}"), k, &format!("record {k} not a record"));
        let mut bytes = f.bytes[..f.starts[k]].to_vec();
        bytes.extend_from_slice(b"\x00\x00\x01\x00garbage");
        bytes.extend_from_slice(&f.bytes[f.starts[k]..]);
        assert_same(f, &bytes, k, &format!("garbage before record {k}"));
    }
}

#[test]
fn key_windows_and_resumed_verification() {
    let f = fixture();
    let key = signer_a().verifying_key();
    for k in POSITIONS.into_iter().filter(|&k| k <= VERIFY_WHOLE_UP_TO) {
        let mut retired = ballast_audit::KeyRing::new();
        retired.add(key, Validity::new(None, Some(time_of(k as u64)))).unwrap();
        same(
            verify_records(&f.bytes, &retired),
            verify_records_sequential(&f.bytes, &retired),
            &format!("key retired at record {k}"),
        );
        let tail = &f.bytes[f.starts[k]..];
        let (offset, state) = (f.starts[k] as u64, f.states[k]);
        same(
            verify_records_from(tail, offset, state, &ring_a()),
            verify_records_sequential_from(tail, offset, state, &ring_a()),
            &format!("resumed at record {k}"),
        );
    }
}

/// Records outside the canonical subset the fast path recognises (floats,
/// non-ASCII keys, escaped keys) go the JCS crate's way, in the same
/// windows and batches as the others.
#[test]
fn records_the_fast_path_leaves_to_the_jcs_crate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (mut log, _) = Log::open(&path, signer_a(), SyncPolicy::EveryN(1000), ring_a()).unwrap();
    for i in 0..300u64 {
        let body = match i % 4 {
            0 => json!({"price": 1.5 + i as f64, "account": i}),
            1 => json!({"Zürich": i, "tab\tkey": "x"}),
            2 => json!({"big": 1e300, "small": -2.5e-7}),
            _ => json!({"account": i, "plain": true}),
        };
        log.append(Kind::Decision, &body, time_of(i)).unwrap();
    }
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    let ring = ring_a();
    let assert_same = |bytes: &[u8], what: &str| {
        same(verify_records(bytes, &ring), verify_records_sequential(bytes, &ring), what);
    };
    assert_same(&bytes, "mixed log");
    assert_eq!(verify_records(&bytes, &ring_a()).unwrap().records(), 300);
    let starts = {
        let mut starts = vec![0];
        while *starts.last().unwrap() < bytes.len() {
            starts.push(frame::read_frame(&bytes, *starts.last().unwrap()).unwrap().1);
        }
        starts
    };
    for k in [0, 1, 5, 64, 129, 255, 299] {
        let mut record: Record = serde_json::from_slice(&bytes[starts[k] + FRAME_HEADER_LEN..starts[k + 1]]).unwrap();
        record.sig[40] ^= 0x40;
        let mut changed = bytes[..starts[k]].to_vec();
        changed.extend(frame::encode(&record.canonical_bytes().unwrap()).unwrap());
        changed.extend_from_slice(&bytes[starts[k + 1]..]);
        assert_same(&changed, &format!("mixed log, record {k} signature"));
        let mut p = bytes[starts[k] + FRAME_HEADER_LEN..starts[k + 1]].to_vec();
        let at = (splitmix64(k as u64) % p.len() as u64) as usize;
        p[at] ^= 0x02;
        let mut changed = bytes[..starts[k]].to_vec();
        changed.extend(frame::encode(&p).unwrap());
        changed.extend_from_slice(&bytes[starts[k + 1]..]);
        assert_same(&changed, &format!("mixed log, record {k} byte {at}"));
    }
}
