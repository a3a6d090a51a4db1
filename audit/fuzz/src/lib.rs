//! What the audit fuzz targets share: the fixed signing key and key ring
//! they verify against, the checkpoint origin, and the check that whatever
//! passes verification is byte for byte what the key signed.
//!
//! The seed corpora (`audit/examples/fuzz_seeds.rs`) are signed with the
//! same key, so fuzzing starts from inputs that pass every check.

use std::sync::OnceLock;

use ballast_audit::{KeyRing, Record, Signer, Timestamp};

/// The fixed Ed25519 key seed; `audit/examples/fuzz_seeds.rs` signs with it.
pub const KEY_SEED: [u8; 32] = [0x5e; 32];

/// The checkpoint origin the targets verify against (and the seeds use).
pub const ORIGIN: &str = "ballast.fuzz/audit-log";

/// The fixed signer.
pub fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| Signer::from_seed(&KEY_SEED))
}

/// A ring of the fixed signer's key, valid at every time.
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::single(signer().verifying_key()).expect("a strong key"))
}

/// When checkpoints are checked (the key is valid at every time anyway).
pub fn check_time() -> Timestamp {
    Timestamp::parse("2025-06-01T00:00:00Z").expect("a canonical time")
}

/// Asserts that a record whose seal held is what the fixed key signs for
/// its contents, and `canonical` exactly those canonical bytes: Ed25519
/// signatures are deterministic and `verify_strict` admits one signature
/// per message, so no mutation of signed bytes may pass.
pub fn assert_genuine(record: &Record, canonical: &[u8]) {
    let resigned = Record::sign(signer(), record.seq, record.prev, record.time, record.kind, &record.body)
        .expect("a sealed record's contents sign again");
    assert_eq!((resigned.hash, resigned.sig), (record.hash, record.sig), "a sealed record is not what the key signs");
    let resigned_bytes = resigned.canonical_bytes().expect("canonical bytes");
    assert_eq!(resigned_bytes, canonical, "a sealed record has a second canonical spelling");
}
