//! Arbitrary bytes as a record: JSON parsing into `Record`, `check_seal`
//! against the fixed key ring, canonicalization, and the same bytes as the
//! only frame of a log. Errors only, never a panic; whatever verifies is
//! byte for byte what the key signed.

#![no_main]

use ballast_audit::{
    Error, Record,
    frame::{self, MAX_FRAME_LEN},
    verify::verify_records,
};
use ballast_audit_fuzz::{assert_genuine, ring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<Record>(data) {
        check_record(&record);
    }
    if !data.is_empty() && data.len() <= MAX_FRAME_LEN as usize {
        let log = frame::encode(data).expect("a payload within the limit");
        match verify_records(&log, ring()) {
            Ok(summary) => {
                assert_eq!(summary.records(), 1);
                let record: Record = serde_json::from_slice(data).expect("a verified record parses");
                assert_genuine(&record, data);
            }
            Err(e) => assert!(e.is_integrity(), "{e}"),
        }
    }
});

fn check_record(record: &Record) {
    // Canonical bytes, where they exist, are a fixed point: they read back
    // to a record with the same canonical bytes.
    if let Ok(canonical) = record.canonical_bytes() {
        let back: Record = serde_json::from_slice(&canonical).expect("canonical bytes parse");
        assert_eq!(back.canonical_bytes().expect("canonical again"), canonical);
        assert_eq!(back.compute_hash().ok(), record.compute_hash().ok(), "the hash moved under canonicalization");
    }
    match record.check_seal(ring()) {
        Ok(hash) => {
            assert_eq!(hash, record.hash);
            // A sealed record's contents are what the key signed, though
            // this spelling of them may not be the canonical one (verifying
            // a log refuses that; the seal alone does not).
            let canonical = record.canonical_bytes().expect("a sealed record canonicalizes");
            assert_genuine(record, &canonical);
        }
        Err(e) => assert!(
            matches!(
                e,
                Error::UnsupportedVersion { .. }
                    | Error::Decode { .. }
                    | Error::HashMismatch { .. }
                    | Error::UnknownKey { .. }
                    | Error::KeyNotValid { .. }
                    | Error::BadSignature { .. }
            ),
            "check_seal failed with {e:?}"
        ),
    }
}
