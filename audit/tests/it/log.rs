//! The log file: create, reopen, append, torn-tail recovery, fsync policy,
//! locking, and refusals.

use std::{
    fs,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use ballast_audit::{
    Entry, Error, KeyRing, Kind, Log, MerkleTree, Signer, SyncPolicy, Validity,
    body::{KeyRotation, SettlementSubmitted},
    frame,
    index::Keys,
    root_of, verify_records,
};
use serde_json::json;

use crate::{append_fixture_records, body_of, ring_a, signer_a, signer_b, time_of};

fn open(path: &Path, policy: SyncPolicy) -> (Log, ballast_audit::OpenReport) {
    Log::open(path, signer_a(), policy, ring_a()).unwrap()
}

/// Frame start offsets of a log file, and its length last.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    while *starts.last().unwrap() < bytes.len() {
        let (_, end) = frame::read_frame(bytes, *starts.last().unwrap()).unwrap();
        starts.push(end);
    }
    starts
}

/// Writes fixture records `0..n` to a new log at `path`; returns their
/// hashes, the file's bytes and its frame starts.
fn written(path: &Path, n: u64) -> (Vec<ballast_audit::Hash>, Vec<u8>, Vec<usize>) {
    let (mut log, _) = open(path, SyncPolicy::EveryRecord);
    append_fixture_records(&mut log, 0, n);
    let hashes = log.record_hashes().to_vec();
    drop(log);
    let bytes = fs::read(path).unwrap();
    let starts = frame_starts(&bytes);
    (hashes, bytes, starts)
}

/// A counting fsync for [`Log::with_fsync`] that still syncs.
fn counting_fsync(counter: &Arc<AtomicU64>) -> impl FnMut(&fs::File) -> std::io::Result<()> + Send + 'static {
    let counter = Arc::clone(counter);
    move |f| {
        counter.fetch_add(1, Ordering::SeqCst);
        f.sync_data()
    }
}

#[test]
fn a_new_log_is_created_and_reopened_with_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (mut log, report) = open(&path, SyncPolicy::EveryRecord);
    assert!(report.created);
    assert_eq!((report.records, report.torn_tail), (0, None));
    append_fixture_records(&mut log, 0, 10);
    let head = log.head();
    let hashes = log.record_hashes().to_vec();
    drop(log);

    let (mut log, report) = open(&path, SyncPolicy::EveryRecord);
    assert!(!report.created);
    assert_eq!(report.records, 10);
    assert_eq!(log.head(), head);
    assert_eq!(log.record_hashes(), &hashes[..]);
    let next = log.append(Kind::Decision, &json!({"account": 1}), time_of(10)).unwrap();
    assert_eq!(next.seq, 10);
    assert_eq!(next.prev, hashes[9]);
    drop(log);
    let summary = verify_records(&fs::read(&path).unwrap(), &ring_a()).unwrap();
    assert_eq!(summary.records(), 11);
    assert_eq!(summary.valid_len, fs::metadata(&path).unwrap().len());
}

#[test]
fn appended_records_read_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (mut log, _) = open(&path, SyncPolicy::EveryRecord);
    let body =
        SettlementSubmitted { batch_id: [1; 32], tx_hash: [2; 32], nonce: 3, raw_tx: vec![4, 5], accounts: vec![6], decisions: vec![] };
    let written = log.append_body(&body, time_of(0)).unwrap();
    drop(log);
    let bytes = fs::read(&path).unwrap();
    let (payload, _) = frame::read_frame(&bytes, 0).unwrap();
    let read: ballast_audit::Record = serde_json::from_slice(payload).unwrap();
    assert_eq!(read, written);
    assert_eq!(read.body_as::<SettlementSubmitted>().unwrap(), body);
}

#[test]
fn a_torn_tail_is_cut_to_the_last_whole_record_and_appending_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (hashes, bytes, starts) = written(&path, 5);
    let cut = starts[4] + 20; // inside the last frame's payload
    fs::write(&path, &bytes[..cut]).unwrap();

    let (mut log, report) = open(&path, SyncPolicy::EveryRecord);
    assert_eq!(report.records, 4);
    let torn = report.torn_tail.expect("a torn tail is reported");
    assert_eq!((torn.offset, torn.dropped_bytes), (starts[4] as u64, 20));
    assert_eq!(fs::metadata(&path).unwrap().len(), starts[4] as u64);
    let copy = report.torn_copy.expect("the torn bytes are kept");
    assert_eq!(fs::read(&copy).unwrap(), &bytes[starts[4]..cut]);
    assert_eq!(log.record_hashes(), &hashes[..4]);

    let (kind, body) = body_of(4);
    let again = log.append(kind, &body, time_of(4)).unwrap();
    assert_eq!(again.seq, 4);
    assert_eq!(again.hash, hashes[4], "the same record, signed again, has the same hash");
    drop(log);
    assert_eq!(fs::read(&path).unwrap(), bytes, "the file is whole again");
    let (_, report) = open(&path, SyncPolicy::EveryRecord);
    assert_eq!((report.records, report.torn_tail), (5, None));
}

#[test]
fn open_reading_returns_the_records_it_verified_after_cutting_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (_, bytes, starts) = written(&path, 5);
    fs::write(&path, &bytes[..starts[4] + 20]).unwrap();

    let (log, report, read) = Log::open_reading(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(read.records.len(), 4);
    assert_eq!(read.records.iter().map(|r| r.hash).collect::<Vec<_>>(), log.record_hashes());
    assert_eq!(read.tree.size(), 4);
    drop(log);
    let again = ballast_audit::read::read_log(&path, &ring_a()).unwrap();
    assert_eq!(again.records, read.records, "the same records read_log finds");
    assert_eq!(again.tree.root(), read.tree.root());
}

#[test]
fn every_cut_inside_the_last_frame_recovers_the_records_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (_, bytes, starts) = written(&path, 3);
    for cut in starts[2] + 1..starts[3] {
        fs::write(&path, &bytes[..cut]).unwrap();
        let (log, report) = open(&path, SyncPolicy::EveryN(100));
        assert_eq!(report.records, 2, "cut at {cut}");
        assert_eq!(report.torn_tail.unwrap().dropped_bytes, (cut - starts[2]) as u64);
        assert_eq!(log.len_bytes(), starts[2] as u64);
        drop(log);
        assert_eq!(fs::metadata(&path).unwrap().len(), starts[2] as u64);
    }
    // Every torn copy was kept, each under its own name.
    let copies = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("audit.log.torn-"));
    assert_eq!(copies.count(), starts[3] - starts[2] - 1);
}

#[test]
fn a_zero_filled_tail_is_torn_but_a_valid_frame_after_damage_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (_, bytes, starts) = written(&path, 3);

    // A crash after the size grew but before the data landed leaves zeros.
    let mut zeros = bytes.clone();
    zeros.extend(std::iter::repeat_n(0u8, 4096));
    fs::write(&path, &zeros).unwrap();
    let (_, report) = open(&path, SyncPolicy::EveryRecord);
    assert_eq!(report.records, 3);
    assert_eq!(report.torn_tail.unwrap().dropped_bytes, 4096);

    // Damage to record 1's checksum with record 2 intact after it: refused,
    // and the file is left exactly as it was.
    let mut damaged = bytes.clone();
    damaged[starts[1] + 5] ^= 0x10;
    fs::write(&path, &damaged).unwrap();
    let err = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).unwrap_err();
    assert!(matches!(err, Error::BadChecksum { seq: 1, .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), damaged, "an integrity failure changes nothing on disk");
}

#[test]
fn every_n_fsyncs_once_per_n_records_and_barrier_flushes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let (log, _) = open(&dir.path().join("audit.log"), SyncPolicy::EveryN(3));
    let mut log = log.with_fsync(counting_fsync(&counter));
    append_fixture_records(&mut log, 0, 10);
    assert_eq!(counter.load(Ordering::SeqCst), 3, "after records 3, 6 and 9");
    assert_eq!(log.fsyncs(), 3);
    assert_eq!(log.unsynced(), 1);
    log.barrier().unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 4);
    assert_eq!(log.unsynced(), 0);
    log.barrier().unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 4, "nothing pending, no fsync");
    append_fixture_records(&mut log, 10, 12);
    drop(log);
    assert_eq!(counter.load(Ordering::SeqCst), 5, "a clean close syncs what is pending");
}

#[test]
fn every_record_and_every_millis_policies() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (SyncPolicy::EveryRecord, 5, 5),
        (SyncPolicy::EveryN(0), 5, 5),
        (SyncPolicy::EveryMillis(0), 5, 5),
        (SyncPolicy::EveryMillis(3_600_000), 5, 0),
    ];
    for (i, (policy, appends, expected)) in cases.into_iter().enumerate() {
        let counter = Arc::new(AtomicU64::new(0));
        let (log, _) = open(&dir.path().join(format!("audit-{i}.log")), policy);
        let mut log = log.with_fsync(counting_fsync(&counter));
        append_fixture_records(&mut log, 0, appends);
        assert_eq!(counter.load(Ordering::SeqCst), expected, "{policy:?}");
        log.barrier().unwrap();
        assert_eq!(log.unsynced(), 0);
        let after_barrier = if expected < appends { expected + 1 } else { expected };
        assert_eq!(counter.load(Ordering::SeqCst), after_barrier, "{policy:?}");
    }
}

#[test]
fn a_failed_fsync_poisons_the_log_until_it_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (log, _) = open(&path, SyncPolicy::EveryRecord);
    let mut log = log.with_fsync(|_| Err(std::io::Error::other("EIO")));
    let err = log.append(Kind::Decision, &json!({"a": 1}), time_of(0)).unwrap_err();
    assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
    assert!(matches!(log.append(Kind::Decision, &json!({"a": 2}), time_of(1)), Err(Error::Poisoned)));
    assert!(matches!(log.barrier(), Err(Error::Poisoned)));
    drop(log);
    // Reopening reads back what is really there and verifies it.
    let (log, report) = open(&path, SyncPolicy::EveryRecord);
    assert_eq!(report.records, 1);
    assert_eq!(log.len(), 1);
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (first, _) = open(&path, SyncPolicy::EveryRecord);
    let err = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(first);
    assert!(Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).is_ok());
}

#[test]
fn appends_that_would_not_verify_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let window = Validity::new(Some(time_of(0)), Some(time_of(5)));
    let mut ring = KeyRing::new();
    ring.add(signer_a().verifying_key(), window).unwrap();
    let (mut log, _) = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring).unwrap();
    append_fixture_records(&mut log, 0, 3);
    let len = log.len_bytes();

    let err = log.append(Kind::Decision, &json!({}), time_of(1)).unwrap_err();
    assert!(matches!(err, Error::ClockBehind { .. }), "{err}");
    let err = log.append(Kind::Decision, &json!({}), time_of(5)).unwrap_err();
    assert!(matches!(err, Error::SignerNotValid { .. }), "{err}");
    let err = log.append(Kind::Decision, &json!([1]), time_of(3)).unwrap_err();
    assert!(matches!(err, Error::Body { .. }), "{err}");
    assert_eq!((log.len(), log.len_bytes()), (3, len));
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    // The same time as the last record is fine.
    log.append(Kind::Decision, &json!({}), time_of(2)).unwrap();
}

#[test]
fn a_key_rotation_hands_over_at_valid_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let rotate_at = time_of(3);
    let mut ring = KeyRing::new();
    ring.add(signer_a().verifying_key(), Validity::new(None, Some(rotate_at))).unwrap();
    ring.add(signer_b().verifying_key(), Validity::new(Some(rotate_at), None)).unwrap();

    let (mut log, _) = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring.clone()).unwrap();
    append_fixture_records(&mut log, 0, 2);
    let b = signer_b();
    let rotation = KeyRotation {
        old_key_id: signer_a().key_id().to_owned(),
        new_key_id: b.key_id().to_owned(),
        new_public_key: b.verifying_key().to_bytes(),
        valid_from: rotate_at,
    };
    log.append_body(&rotation, time_of(2)).unwrap();
    assert!(matches!(log.append(Kind::Halt, &json!({}), rotate_at), Err(Error::SignerNotValid { .. })));
    drop(log);

    let (mut log, report) = Log::open(&path, signer_b(), SyncPolicy::EveryRecord, ring.clone()).unwrap();
    assert_eq!(report.records, 3);
    append_fixture_records(&mut log, 3, 6);
    drop(log);
    let summary = verify_records(&fs::read(&path).unwrap(), &ring).unwrap();
    assert_eq!(summary.records(), 6);
    // The old key alone does not verify the records after the rotation.
    let mut old_only = KeyRing::new();
    old_only.add(signer_a().verifying_key(), Validity::new(None, Some(rotate_at))).unwrap();
    let err = verify_records(&fs::read(&path).unwrap(), &old_only).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { seq: 3, .. }), "{err}");
    let records = ballast_audit::read::read_log(&path, &ring).unwrap().records;
    assert_eq!(ballast_audit::keys::check_rotations(&records).unwrap(), 1);

    // The old key left valid in the ring (its window never ended): the log
    // verifies by the ring, but a record it signs after the hand-over goes
    // against the log's own rotation.
    let forged = dir.path().join("forged.log");
    let mut open_ring = KeyRing::new();
    open_ring.add(signer_a().verifying_key(), Validity::ALWAYS).unwrap();
    open_ring.add(signer_b().verifying_key(), Validity::new(Some(rotate_at), None)).unwrap();
    let (mut log, _) = Log::open(&forged, signer_a(), SyncPolicy::EveryRecord, open_ring.clone()).unwrap();
    append_fixture_records(&mut log, 0, 2);
    log.append_body(&rotation, time_of(2)).unwrap();
    append_fixture_records(&mut log, 3, 4);
    drop(log);
    let records = ballast_audit::read::read_log(&forged, &open_ring).unwrap().records;
    let err = ballast_audit::keys::check_rotations(&records).unwrap_err();
    assert!(matches!(err, Error::KeyRotated { seq: 3, rotation: 2, .. }), "{err}");
}

#[test]
fn record_hashes_are_the_merkle_leaf_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(&dir.path().join("audit.log"), SyncPolicy::EveryN(64));
    let mut tree = MerkleTree::new();
    for i in 0..20 {
        let (kind, body) = body_of(i);
        let record = log.append(kind, &body, time_of(i)).unwrap();
        tree.push(record.merkle_leaf());
    }
    let leaves: Vec<_> = log.record_hashes().iter().map(|h| ballast_audit::leaf_hash(h)).collect();
    assert_eq!(root_of(&leaves), tree.root());
}

#[test]
fn opening_with_an_untrusted_key_ring_refuses_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (mut log, _) = open(&path, SyncPolicy::EveryRecord);
    append_fixture_records(&mut log, 0, 2);
    drop(log);
    let other = KeyRing::single(Signer::from_seed(&[3; 32]).verifying_key()).unwrap();
    let err = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, other).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { seq: 0, .. }), "{err}");
    assert!(err.is_integrity());
}

#[test]
fn batches_write_the_bytes_one_append_at_a_time_writes() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1_500u64;
    let (mut single, _) = open(&dir.path().join("single.log"), SyncPolicy::EveryN(64));
    append_fixture_records(&mut single, 0, n);
    let want = single.record_hashes().to_vec();
    drop(single);
    let want_bytes = fs::read(dir.path().join("single.log")).unwrap();

    // Batches of every size around the parallel threshold, by reference
    // and by value, and one beyond the 1,024 buffers of one `writev`.
    let sizes = [1usize, 2, 3, 4, 5, 7, 64, 1, 100, 1_200];
    let mut batches: Vec<Vec<((Kind, serde_json::Value), ballast_audit::Timestamp)>> = Vec::new();
    let mut next = 0u64;
    for size in sizes.iter().cycle() {
        if next == n {
            break;
        }
        let end = (next + *size as u64).min(n);
        batches.push((next..end).map(|i| (body_of(i), time_of(i))).collect());
        next = end;
    }
    for by_value in [false, true] {
        let path = dir.path().join(format!("batches-{by_value}.log"));
        let (mut log, _) = open(&path, SyncPolicy::EveryN(64));
        for bodies in batches.clone() {
            let first = log.len();
            let count = bodies.len() as u64;
            let records = if by_value {
                log.append_values(bodies.into_iter().map(|((kind, body), time)| (kind, body, time)).collect()).unwrap()
            } else {
                let entries: Vec<_> = bodies.iter().map(|((kind, body), time)| (*kind, body, *time)).collect();
                log.append_batch(&entries).unwrap()
            };
            assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), (first..first + count).collect::<Vec<_>>());
            assert_eq!(log.len(), first + count);
        }
        assert_eq!(log.record_hashes(), &want[..]);
        let spans = log.spans().to_vec();
        drop(log);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes, want_bytes, "by value: {by_value}");
        let starts = frame_starts(&bytes);
        let from_spans: Vec<usize> = spans.iter().map(|s| s.offset as usize).chain([bytes.len()]).collect();
        assert_eq!(from_spans, starts);
    }

    // And as entries: the same bytes, and each entry tells what the record
    // read back says (seq, hash, time, kind, frame, index keys).
    let path = dir.path().join("entries.log");
    let (mut log, _) = open(&path, SyncPolicy::EveryN(64));
    let mut entries = Vec::new();
    for bodies in &batches {
        let batch: Vec<_> = bodies.iter().map(|((kind, body), time)| (*kind, body, *time)).collect();
        entries.extend(log.append_entries(&batch).unwrap());
    }
    drop(log);
    assert_eq!(fs::read(&path).unwrap(), want_bytes, "as entries");
    let read = ballast_audit::read::read_log(&path, &ring_a()).unwrap();
    let want: Vec<Entry> = read
        .records
        .iter()
        .zip(&read.spans)
        .map(|(r, &span)| Entry { seq: r.seq, hash: r.hash, time: r.time, kind: r.kind, span, keys: Keys::of(r) })
        .collect();
    assert_eq!(entries, want);
}

/// Field order decides whether a struct's text is canonical as it comes;
/// either way an entry's record is the one `append_batch` writes.
#[test]
fn entries_of_structs_in_any_field_order_write_what_append_batch_writes() {
    #[derive(serde::Serialize)]
    struct Sorted {
        account: u64,
        ips: serde_json::Value,
        note: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Unsorted {
        note: &'static str,
        account: u64,
        ips: serde_json::Value,
    }
    /// The log's bytes and the second record's keys, appended as entries
    /// or as records.
    fn appended<B: serde::Serialize + Sync>(path: &Path, body: &B, as_entries: bool) -> (Vec<u8>, Keys) {
        let (mut log, _) = open(path, SyncPolicy::EveryRecord);
        let batch = [(Kind::Decision, body, time_of(0)), (Kind::Decision, body, time_of(1))];
        let keys = if as_entries { log.append_entries(&batch).unwrap()[1].keys.clone() } else { Keys::of(&log.append_batch(&batch).unwrap()[1]) };
        drop(log);
        (fs::read(path).unwrap(), keys)
    }
    let ips = || json!({"id": "ips-7", "version": 2});
    let want_keys = Keys { accounts: vec![9], ips: Some(("ips-7".into(), 2)), ..Keys::default() };
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let sorted = Sorted { account: 9, ips: ips(), note: "x" };
    let unsorted = Unsorted { note: "x", account: 9, ips: ips() };
    let by_records = appended(&at("sorted-records.log"), &sorted, false);
    assert_eq!(by_records.1, want_keys);
    assert_eq!(appended(&at("sorted-entries.log"), &sorted, true), by_records);
    assert_eq!(appended(&at("unsorted-records.log"), &unsorted, false), by_records);
    assert_eq!(appended(&at("unsorted-entries.log"), &unsorted, true), by_records);
}

#[test]
fn a_batch_with_one_refused_entry_writes_nothing_and_fsyncs_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let counter = Arc::new(AtomicU64::new(0));
    let (log, _) = open(&path, SyncPolicy::EveryN(3));
    let mut log = log.with_fsync(counting_fsync(&counter));
    append_fixture_records(&mut log, 0, 2);
    let len = log.len_bytes();
    let good = json!({"account": 1});
    let bad = json!([1]);
    let mut entries: Vec<(Kind, &serde_json::Value, _)> = (2..12).map(|i| (Kind::Decision, &good, time_of(i))).collect();
    entries[7].1 = &bad;
    assert!(matches!(log.append_batch(&entries), Err(Error::Body { .. })));
    entries[7].1 = &good;
    entries[8].2 = time_of(1);
    assert!(matches!(log.append_batch(&entries), Err(Error::ClockBehind { .. })));
    assert_eq!((log.len(), log.len_bytes(), fs::metadata(&path).unwrap().len()), (2, len, len));
    assert_eq!(counter.load(Ordering::SeqCst), 0);

    entries[8].2 = time_of(10);
    let records = log.append_batch(&entries).unwrap();
    assert_eq!(records.len(), 10);
    assert_eq!(counter.load(Ordering::SeqCst), 1, "the policy is applied once, after the batch");
    assert_eq!(log.unsynced(), 0);
    drop(log);
    let (_, report) = open(&path, SyncPolicy::EveryRecord);
    assert_eq!(report.records, 12);
}

/// The 1,000-record fixture log, pinned: the hash of its first record of
/// each kind, its Merkle root and the SHA-256 of the whole file. Any change
/// to the canonical bytes, the hashing, the signatures (Ed25519 is
/// deterministic) or the framing changes one of them; such a change must be
/// a new record version, never an edit of these values.
#[test]
fn the_fixture_log_is_pinned() {
    use sha2::{Digest, Sha256};
    let f = crate::fixture();
    let kinds: Vec<(String, String)> = (0..5).map(|k| (f.record(k).kind.as_str().to_owned(), hex::encode(f.hashes[k]))).collect();
    let file = hex::encode(Sha256::digest(&f.bytes));
    let root = hex::encode(f.root);
    assert_eq!(kinds, GOLDEN_KINDS.iter().map(|(k, h)| (k.to_string(), h.to_string())).collect::<Vec<_>>());
    assert_eq!(root, GOLDEN_ROOT);
    assert_eq!(file, GOLDEN_FILE);
}

const GOLDEN_KINDS: [(&str, &str); 5] = [
    ("decision", "cc50d358b67bfc1e4f8e109e8b74a8b4a5b7af592c2c11e82257d40b21233f9e"),
    ("settlement_submitted", "4193f2e31b489b7fc094b391a70be341d4cd32f581f5729b09b5a0255e6f839a"),
    ("settlement_confirmed", "99000006a0a76154e2c88b64d82417327c1f074a404cdd4d747a7f051914dd22"),
    ("checkpoint_anchored", "425c80b8aa482427f2915a224ed93a7a74aefcece3627c1fc914add8218ab704"),
    ("halt", "c0928e6c04e9762363dee2c94f516b6a0dfb57f6b3cadb0e97eda978fd6df436"),
];
const GOLDEN_ROOT: &str = "87587c65add4e254fcfec79b600d673e3da38448eef52281b12cc78fbf2bbf50";
const GOLDEN_FILE: &str = "15d3266868260e06b61dcdc003c96bc3b7c848d14547fe1f3270da92805b080b";
