//! Audit-log throughput and proof costs (docs/BENCHMARKS.md, "Audit log").
//!
//! `cargo bench -p ballast-audit --bench audit`; one group with
//! `cargo bench -p ballast-audit --bench audit -- verify`.
//!
//! - `append`: sign, frame and write decision-sized records
//!   ([`ballast_audit::body::synthetic::decision`]) with an fsync every 64
//!   records, and index each group of 64 in the sled index, on a fresh log
//!   and index in a temporary directory; and the same without the index.
//! - `verify`: full verification of a 10,000-record log held in memory, on
//!   every core, on one thread, and by the one-record-at-a-time reference.
//! - `merkle`: inclusion and consistency proofs, made and checked, in trees
//!   of 1e3, 1e5 and 1e6 leaves.
//! - `signature`: an Ed25519 signature checked alone, in a batch, and what
//!   a point's torsion check costs.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use ballast_audit::{
    Index, KeyRing, Kind, Log, MerkleStore, Signer, SyncPolicy, Timestamp, body::synthetic, leaf_hash,
    verify::verify_records_sequential, verify_consistency, verify_inclusion, verify_records,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

/// Records fsync'd together and indexed in one sled batch.
const GROUP_RECORDS: u32 = 64;
/// Records appended per measured iteration.
const APPEND_RECORDS: u64 = 1024;
/// Records in the log that is verified.
const VERIFY_RECORDS: u64 = 10_000;

fn signer() -> Signer {
    Signer::from_seed(&[0x5e; 32])
}

fn ring() -> KeyRing {
    KeyRing::single(signer().verifying_key()).expect("a sound key")
}

/// Record `seq`'s time: a millisecond apart.
fn time_of(seq: u64) -> Timestamp {
    let start = Timestamp::parse("2026-11-21T15:00:00Z").expect("canonical").unix_nanos();
    Timestamp::from_unix_nanos(start + i128::from(seq) * 1_000_000).expect("in range")
}

/// Appends `bodies` to `log` and, if given an index, indexes them, fsyncing
/// (by the log's policy) and indexing every [`GROUP_RECORDS`] records, and
/// makes the rest durable at the end.
fn append_and_index(log: &mut Log, index: Option<&Index>, bodies: &[Value]) {
    for (g, group) in bodies.chunks(GROUP_RECORDS as usize).enumerate() {
        let first = (g * GROUP_RECORDS as usize) as u64;
        let entries: Vec<_> = group.iter().zip(first..).map(|(body, seq)| (Kind::Decision, body, time_of(seq))).collect();
        let records = log.append_batch(&entries).expect("appended");
        if let Some(index) = index {
            let spans = &log.spans()[first as usize..];
            index.apply_all(records.iter().zip(spans.iter().copied())).expect("indexed");
        }
    }
    log.barrier().expect("durable");
}

fn append(c: &mut Criterion) {
    let bodies: Vec<Value> = (0..APPEND_RECORDS).map(synthetic::decision).collect();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(APPEND_RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, indexed) in [("sign_fsync64_index", true), ("sign_fsync64", false)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A new log and index each time, opened outside the measurement.
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let policy = SyncPolicy::EveryN(GROUP_RECORDS);
                    let (mut log, _) =
                        Log::open(dir.path().join("audit.log"), signer(), policy, ring()).expect("a log");
                    let index = Index::open(dir.path().join("index"), dir.path().join("audit.log")).expect("an index");
                    let start = Instant::now();
                    append_and_index(&mut log, indexed.then_some(&index), &bodies);
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

/// The bytes of a log of `n` decision records.
fn log_bytes(n: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("audit.log");
    let (mut log, _) = Log::open(&path, signer(), SyncPolicy::EveryN(u32::MAX), ring()).expect("a new log");
    for seq in 0..n {
        log.append(Kind::Decision, &synthetic::decision(seq), time_of(seq)).expect("appended");
    }
    drop(log);
    std::fs::read(&path).expect("the log")
}

fn verify(c: &mut Criterion) {
    let bytes = log_bytes(VERIFY_RECORDS);
    let ring = ring();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(VERIFY_RECORDS));
    group.sample_size(10);
    group.bench_function("all_cores", |b| {
        b.iter(|| verify_records(black_box(&bytes), &ring).expect("a sound log"));
    });
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
    group.bench_function("one_thread", |b| {
        b.iter(|| one_thread.install(|| verify_records(black_box(&bytes), &ring).expect("a sound log")));
    });
    group.bench_function("sequential_reference", |b| {
        b.iter(|| verify_records_sequential(black_box(&bytes), &ring).expect("a sound log"));
    });
    group.finish();
}

fn merkle(c: &mut Criterion) {
    const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
    let mut store = MerkleStore::new();
    for i in 0..SIZES[2] {
        store.push(leaf_hash(&i.to_be_bytes()));
    }
    let mut group = c.benchmark_group("merkle");
    for n in SIZES {
        let root = store.root_at(n).expect("in range");
        // Leaves and old sizes spread over the tree, so no one path is measured alone.
        let picks: Vec<u64> = (1..=64u64).map(|i| i * n / 65).collect();
        let inclusion: Vec<(u64, Vec<_>)> =
            picks.iter().map(|&m| (m, store.inclusion_proof(m, n).expect("in range"))).collect();
        let consistency: Vec<(u64, _, Vec<_>)> = picks
            .iter()
            .map(|&m| (m, store.root_at(m).expect("in range"), store.consistency_proof(m, n).expect("in range")))
            .collect();
        let mut next = 0;
        let mut pick = move || {
            next = (next + 1) % picks.len();
            next
        };
        group.bench_with_input(BenchmarkId::new("inclusion_proof", n), &n, |b, &n| {
            b.iter(|| store.inclusion_proof(inclusion[pick()].0, n));
        });
        group.bench_with_input(BenchmarkId::new("verify_inclusion", n), &n, |b, &n| {
            b.iter(|| {
                let (m, proof) = &inclusion[pick()];
                assert!(verify_inclusion(&store.leaf(*m).expect("a leaf"), *m, n, proof, &root));
            });
        });
        group.bench_with_input(BenchmarkId::new("consistency_proof", n), &n, |b, &n| {
            b.iter(|| store.consistency_proof(consistency[pick()].0, n));
        });
        group.bench_with_input(BenchmarkId::new("verify_consistency", n), &n, |b, &n| {
            b.iter(|| {
                let (m, old_root, proof) = &consistency[pick()];
                assert!(verify_consistency(*m, n, old_root, &root, proof));
            });
        });
    }
    group.finish();
}


/// What a signature costs: alone by `verify_strict`, in a batch of 256 (as
/// verification makes them), and the check that would tell a batch from
/// `verify_strict` apart in every case (a scalar multiplication: see
/// `verify::verify_signatures`).
fn signature(c: &mut Criterion) {
    use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
    const N: usize = 256;
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = key.verifying_key();
    let messages: Vec<[u8; 32]> = (0..N as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let signatures: Vec<Signature> = messages.iter().map(|m| key.sign(m)).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    let keys: Vec<VerifyingKey> = vec![public; N];
    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("verify_strict_256", |b| {
        b.iter(|| {
            for (m, s) in messages.iter().zip(&signatures) {
                public.verify_strict(m, s).expect("a good signature");
            }
        });
    });
    group.bench_function("verify_batch_256", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).expect("good signatures"));
    });
    group.throughput(Throughput::Elements(1));
    let r = curve25519_dalek::edwards::CompressedEdwardsY(signatures[0].r_bytes().to_owned())
        .decompress()
        .expect("a point");
    group.bench_function("r_is_torsion_free", |b| b.iter(|| black_box(r).is_torsion_free()));
    group.finish();
}

criterion_group!(benches, append, verify, merkle, signature);
criterion_main!(benches);
