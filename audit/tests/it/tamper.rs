//! Tamper evidence on the 1,000-record fixture log (RELIABILITY.md, "Tamper
//! evidence"): every change is detected with a typed error naming the first
//! bad record, or, where the change is indistinguishable from a crash (a
//! damaged or cut final frame, a cut at a frame boundary), reported as a
//! torn tail or caught by the anchored checkpoint.
//!
//! Verification is a pure left-to-right function of the bytes, so where a
//! test changes frame `k` it verifies from the clean state before frame `k`
//! (`verify_records_from`) instead of re-verifying records `0..k` each
//! time; `resuming_equals_verifying_the_whole_file` and the sampled full
//! verifications below check that shortcut.

use std::collections::BTreeMap;

use ballast_audit::{
    Error, KeyRing, Record, Summary, Validity,
    frame::{self, FRAME_HEADER_LEN},
    merkle::{MerkleTree, leaf_hash},
    verify::{check_checkpoint, verify_records, verify_records_from},
};
use ed25519_dalek::{Signer as _, SigningKey};

use crate::{Fixture, RECORDS, fixture, ring_a, signer_a, signer_b, splitmix64, time_of};

/// Verifies `bytes` (a whole file) from the fixture's clean state before
/// frame `k`.
fn resume(f: &Fixture, bytes: &[u8], k: usize) -> Result<Summary, Error> {
    verify_records_from(&bytes[f.starts[k]..], f.starts[k] as u64, f.states[k], &f.ring)
}

/// The error's variant name, for tallies.
fn variant(e: &Error) -> String {
    format!("{e:?}").chars().take_while(|c| c.is_alphanumeric()).collect()
}

fn frame_of_record(r: &Record) -> Vec<u8> {
    frame::encode(&r.canonical_bytes().unwrap()).unwrap()
}

#[test]
fn the_fixture_verifies_whole() {
    let f = fixture();
    let summary = verify_records(&f.bytes, &ring_a()).unwrap();
    assert_eq!(summary.records(), RECORDS as u64);
    assert_eq!(summary.torn_tail, None);
    assert_eq!(summary.hashes, f.hashes);
    assert_eq!(summary.end, f.states[RECORDS]);
    summary.check_checkpoint(RECORDS as u64, &f.root).unwrap();
}

#[test]
fn resuming_equals_verifying_the_whole_file() {
    let f = fixture();
    for k in [0, 1, 2, 333, 998, 999, 1000] {
        let tail = resume(f, &f.bytes, k).unwrap();
        assert_eq!(tail.records(), (RECORDS - k) as u64);
        assert_eq!(tail.hashes, f.hashes[k..]);
        assert_eq!(tail.end, f.states[RECORDS]);
        assert_eq!(tail.valid_len, f.bytes.len() as u64);
    }
}

/// One bit of every byte of the file (which bit: SplitMix64 of the offset).
/// A flip in frames 0..999 is an integrity error naming that frame's record.
/// A flip in the last frame cannot be told from a torn write (the final
/// frame fails its checksum and nothing follows), so it is reported as a
/// torn tail that drops record 999: the test asserts that report, and the
/// dropped record is what a checkpoint over 1,000 records catches.
#[test]
fn every_bit_flip_is_detected_with_the_first_bad_seq() {
    let f = fixture();
    let ring = ring_a();
    let last = RECORDS - 1;
    let mut bytes = f.bytes.clone();
    let sample_every = bytes.len() / 12;
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for offset in 0..bytes.len() {
        let bit = splitmix64(offset as u64) % 8;
        let k = f.frame_of(offset);
        bytes[offset] ^= 1 << bit;
        let result = resume(f, &bytes, k);
        if k < last {
            let err = result.as_ref().expect_err("a flip before the last frame is an error");
            assert!(err.is_integrity(), "offset {offset}: {err}");
            assert_eq!(err.first_bad_seq(), Some(k as u64), "offset {offset}: {err}");
            *tally.entry(variant(err)).or_default() += 1;
        } else {
            let summary = result.as_ref().expect("a flip in the last frame is a torn tail");
            let torn = summary.torn_tail.expect("and it is reported");
            assert_eq!((torn.offset, torn.dropped_bytes), (f.starts[k] as u64, (bytes.len() - f.starts[k]) as u64));
            assert_eq!((summary.valid_len, summary.end), (f.starts[k] as u64, f.states[k]));
            *tally.entry("TornTail".into()).or_default() += 1;
        }
        if offset % sample_every == 0 || offset == bytes.len() - 1 {
            let full = verify_records(&bytes, &ring);
            match (&full, &result) {
                (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "offset {offset}"),
                (Ok(a), Ok(b)) => {
                    assert_eq!((a.torn_tail, a.valid_len, a.end), (b.torn_tail, b.valid_len, b.end));
                    assert_eq!(a.hashes, f.hashes[..k], "offset {offset}");
                }
                _ => panic!("offset {offset}: full {full:?} vs resumed {result:?}"),
            }
        }
        bytes[offset] ^= 1 << bit;
    }
    assert_eq!(bytes, f.bytes);
    let detected: usize = tally.values().sum();
    eprintln!("{} flips: {tally:?}", bytes.len());
    assert_eq!(detected, bytes.len(), "100 % detected: {tally:?}");
    assert_eq!(tally["TornTail"], f.frame(last).len());
    // A single flip always breaks the CRC-32C (it detects every 1-bit error),
    // or the header it flipped: the frame layer catches all of these.
    assert!(tally.keys().all(|v| v == "BadChecksum" || v == "BadFrame" || v == "TornTail"), "{tally:?}");
}

/// A flip with the checksum recomputed (someone who knows the frame format)
/// gets past the frame layer; the records catch it: canonical form, chain,
/// hash, signature. Every payload byte of a spread of frames, the last too.
#[test]
fn bit_flips_under_a_recomputed_checksum_are_caught_by_the_records() {
    let f = fixture();
    let mut bytes = f.bytes.clone();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for k in [0, 1, 2, 3, 4, 250, 499, 500, 501, 997, 998, 999] {
        let (start, end) = (f.starts[k], f.starts[k + 1]);
        for offset in start + FRAME_HEADER_LEN..end {
            let bit = splitmix64(offset as u64) % 8;
            bytes[offset] ^= 1 << bit;
            let crc = frame::checksum(&bytes[start + FRAME_HEADER_LEN..end]);
            bytes[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
            let err = resume(f, &bytes, k).expect_err("a re-checksummed flip is still an error");
            assert!(err.is_integrity(), "record {k}, offset {offset}: {err}");
            assert_eq!(err.first_bad_seq(), Some(k as u64), "offset {offset}: {err}");
            *tally.entry(variant(&err)).or_default() += 1;
            bytes[offset] ^= 1 << bit;
            bytes[start..end].copy_from_slice(f.frame(k));
        }
    }
    assert_eq!(bytes, f.bytes);
    eprintln!("re-checksummed flips: {tally:?}");
    for expected in ["Decode", "SeqGap", "BrokenChain", "HashMismatch", "BadSignature"] {
        assert!(tally.contains_key(expected), "no {expected} among {tally:?}");
    }
}

#[test]
fn a_deleted_record_is_a_sequence_gap() {
    let f = fixture();
    for k in [0, 1, 500, 998] {
        let mut frames = f.frames();
        frames.remove(k);
        let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
        assert!(
            matches!(err, Error::SeqGap { expected, found } if expected == k as u64 && found == k as u64 + 1),
            "{err}"
        );
    }
    // Deleting the last record leaves a valid, shorter log: the checkpoint
    // over 1,000 records catches it.
    let mut frames = f.frames();
    frames.pop();
    let summary = verify_records(&frames.concat(), &ring_a()).unwrap();
    assert_eq!(summary.records(), 999);
    let err = summary.check_checkpoint(RECORDS as u64, &f.root).unwrap_err();
    assert!(matches!(err, Error::Truncated { expected: 1000, found: 999 }), "{err}");
}

#[test]
fn swapped_records_are_a_sequence_gap() {
    let f = fixture();
    for k in [0, 500, 998] {
        let mut frames = f.frames();
        frames.swap(k, k + 1);
        let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
        assert!(
            matches!(err, Error::SeqGap { expected, found } if expected == k as u64 && found == k as u64 + 1),
            "{err}"
        );
    }
    // Two records far apart.
    let mut frames = f.frames();
    frames.swap(10, 900);
    let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
    assert!(matches!(err, Error::SeqGap { expected: 10, found: 900 }), "{err}");
}

#[test]
fn a_duplicated_record_is_a_sequence_gap() {
    let f = fixture();
    for k in [0, 500, 999] {
        let mut frames = f.frames();
        frames.insert(k + 1, f.frame(k));
        let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
        assert!(
            matches!(err, Error::SeqGap { expected, found } if expected == k as u64 + 1 && found == k as u64),
            "{err}"
        );
    }
}

/// A cut at a frame boundary (or an older prefix replayed) is a valid log:
/// only the anchored checkpoint can tell, and it does, at every boundary.
#[test]
fn a_cut_at_any_frame_boundary_fails_the_checkpoint() {
    let f = fixture();
    let ring = ring_a();
    for k in 0..=RECORDS {
        let j = k.saturating_sub(1);
        let tail =
            verify_records_from(&f.bytes[f.starts[j]..f.starts[k]], f.starts[j] as u64, f.states[j], &ring).unwrap();
        assert_eq!(
            (tail.torn_tail, tail.end, tail.valid_len),
            (None, f.states[k], f.starts[k] as u64),
            "cut at frame {k}"
        );
        let checked = check_checkpoint(&f.hashes[..k], RECORDS as u64, &f.root);
        if k < RECORDS {
            assert!(
                matches!(checked, Err(Error::Truncated { expected: 1000, found }) if found == k as u64),
                "{checked:?}"
            );
        } else {
            checked.unwrap();
        }
    }
    for k in [0, 1, 2, 500, 999] {
        let summary = verify_records(&f.bytes[..f.starts[k]], &ring).unwrap();
        assert_eq!((summary.records(), summary.torn_tail), (k as u64, None));
        assert_eq!(summary.hashes, f.hashes[..k]);
        let err = summary.check_checkpoint(RECORDS as u64, &f.root).unwrap_err();
        assert!(err.is_integrity() && err.first_bad_seq() == Some(k as u64), "{err}");
    }
}

/// A cut inside one of the last frames is a torn tail, reported with the
/// bytes it drops; the records before it stand.
#[test]
fn a_cut_at_any_byte_of_the_last_frames_is_a_reported_torn_tail() {
    let f = fixture();
    let ring = ring_a();
    let from = RECORDS - 4;
    for cut in f.starts[from] + 1..f.bytes.len() {
        let k = f.frame_of(cut);
        let summary =
            verify_records_from(&f.bytes[f.starts[from]..cut], f.starts[from] as u64, f.states[from], &ring).unwrap();
        assert_eq!(summary.end, f.states[k], "cut at {cut}");
        assert_eq!(summary.valid_len, f.starts[k] as u64);
        if cut == f.starts[k] {
            assert_eq!(summary.torn_tail, None);
        } else {
            let torn = summary.torn_tail.expect("a torn tail");
            assert_eq!((torn.offset, torn.dropped_bytes), (f.starts[k] as u64, (cut - f.starts[k]) as u64));
        }
        assert!(matches!(check_checkpoint(&f.hashes[..k], RECORDS as u64, &f.root), Err(Error::Truncated { .. })));
    }
}

#[test]
fn damage_followed_by_valid_frames_is_not_a_torn_tail() {
    let f = fixture();
    // Damage in record 500 and a cut in the middle of the last frame: the
    // damage is reported, not a torn tail.
    let mut bytes = f.bytes[..f.starts[RECORDS - 1] + 30].to_vec();
    bytes[f.starts[500] + 100] ^= 0x04;
    let err = resume(f, &bytes, 500).unwrap_err();
    assert!(matches!(err, Error::BadChecksum { seq: 500, .. }), "{err}");
    // Garbage after the last record, then a valid frame: the garbage is a
    // bad frame at record 1000, not a tail to cut.
    let mut bytes = f.bytes.clone();
    bytes.extend_from_slice(b"\x00\x00\x01\x00garbage that is not a frame");
    bytes.extend_from_slice(f.frame(5));
    let err = resume(f, &bytes, RECORDS - 1).unwrap_err();
    assert!(err.is_integrity() && err.first_bad_seq() == Some(1000), "{err}");
}

#[test]
fn a_record_spliced_in_from_another_key_is_refused() {
    let f = fixture();
    let k = 500;
    let original = f.record(k);
    let b = signer_b();

    // Signed by B under B's id, B not trusted.
    let forged = Record::sign(&b, original.seq, original.prev, original.time, original.kind, &original.body).unwrap();
    let forged_frame = frame_of_record(&forged);
    let mut frames = f.frames();
    frames[k] = &forged_frame;
    let bytes = frames.concat();
    let err = verify_records(&bytes, &ring_a()).unwrap_err();
    assert!(matches!(&err, Error::UnknownKey { seq: 500, key_id } if key_id == b.key_id()), "{err}");

    // Signed by B but labelled as A's record.
    let mut relabelled = forged.clone();
    relabelled.key_id = signer_a().key_id().to_owned();
    relabelled.hash = relabelled.compute_hash().unwrap();
    relabelled.sig = SigningKey::from_bytes(&[0xb2; 32]).sign(&relabelled.hash).to_bytes();
    let relabelled_frame = frame_of_record(&relabelled);
    let mut frames = f.frames();
    frames[k] = &relabelled_frame;
    let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
    assert!(matches!(err, Error::BadSignature { seq: 500 }), "{err}");

    // If B is a trusted key too, the spliced record's own seal holds, and
    // the chain breaks at the record after it: its `prev` is the original's
    // hash. (A chain cannot say which side of a broken link was forged.)
    let mut both = ring_a();
    both.add(b.verifying_key(), Validity::ALWAYS).unwrap();
    let err = verify_records(&bytes, &both).unwrap_err();
    assert!(matches!(err, Error::BrokenChain { seq: 501, .. }), "{err}");
}

#[test]
fn a_key_outside_its_validity_window_is_refused() {
    let f = fixture();
    let key = signer_a().verifying_key();

    let mut retired = KeyRing::new();
    retired.add(key, Validity::new(None, Some(time_of(600)))).unwrap();
    let err = verify_records(&f.bytes, &retired).unwrap_err();
    assert!(matches!(&err, Error::KeyNotValid { seq: 600, time, .. } if *time == time_of(600)), "{err}");

    let mut not_yet = KeyRing::new();
    not_yet.add(key, Validity::new(Some(time_of(1)), None)).unwrap();
    let err = verify_records(&f.bytes, &not_yet).unwrap_err();
    assert!(matches!(err, Error::KeyNotValid { seq: 0, .. }), "{err}");
}

#[test]
fn a_record_dated_before_its_predecessor_is_refused() {
    let f = fixture();
    let k = 300;
    let original = f.record(k);
    let early =
        Record::sign(&signer_a(), original.seq, original.prev, time_of(298), original.kind, &original.body).unwrap();
    let early_frame = frame_of_record(&early);
    let mut frames = f.frames();
    frames[k] = &early_frame;
    let err = verify_records(&frames.concat(), &ring_a()).unwrap_err();
    assert!(matches!(err, Error::TimeRegressed { seq: 300, .. }), "{err}");
}

/// Someone holding the log and the signing key rewrites record 700 and
/// re-chains everything after it: the log verifies, the checkpoint anchored
/// over 1,000 records does not, and one anchored at 700 still does.
#[test]
fn a_rewritten_and_rechained_log_fails_the_anchored_checkpoint() {
    let f = fixture();
    let a = signer_a();
    let k = 700;
    let mut frames: Vec<Vec<u8>> = (0..k).map(|i| f.frame(i).to_vec()).collect();
    let mut prev = f.states[k].prev;
    for i in k..RECORDS {
        let mut r = f.record(i);
        if i == k {
            r.body["drift_bps"] = serde_json::json!(1);
        }
        let r = Record::sign(&a, r.seq, prev, r.time, r.kind, &r.body).unwrap();
        prev = r.hash;
        frames.push(frame_of_record(&r));
    }
    let summary = verify_records(&frames.concat(), &ring_a()).unwrap();
    assert_eq!((summary.records(), summary.torn_tail), (RECORDS as u64, None));
    let err = summary.check_checkpoint(RECORDS as u64, &f.root).unwrap_err();
    assert!(matches!(err, Error::RootMismatch { size: 1000, .. }), "{err}");
    assert!(err.is_integrity());

    let mut tree = MerkleTree::new();
    for h in &f.hashes[..k] {
        tree.push(leaf_hash(h));
    }
    summary.check_checkpoint(k as u64, &tree.root()).unwrap();
}
