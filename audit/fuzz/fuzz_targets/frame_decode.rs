//! Arbitrary bytes as a log file: the frame decoder and `verify_records`
//! with the fixed key ring return a summary or an integrity error, never
//! panic, and what they accept is self-consistent and genuine.

#![no_main]

use ballast_audit::{
    frame::{self, MAX_FRAME_LEN},
    record::Record,
    verify::{verify_records, verify_records_from},
};
use ballast_audit_fuzz::{assert_genuine, ring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_frame_functions(data);
    check_verification(data);
});

/// The frame functions at an offset the input picks (anywhere from the
/// start to the end, as their contract allows).
fn check_frame_functions(data: &[u8]) {
    let at = usize::from(data.first().copied().unwrap_or(0)) % (data.len() + 1);
    if let Ok((payload, end)) = frame::read_frame(data, at) {
        assert!(!payload.is_empty() && payload.len() <= MAX_FRAME_LEN as usize);
        assert_eq!(end, at + frame::FRAME_HEADER_LEN + payload.len());
        assert!(end <= data.len());
        assert_eq!(frame::encode(payload).expect("a decoded payload encodes"), data[at..end]);
    }
    let next = frame::next_valid_frame(data, at);
    if let Some(next) = next {
        assert!(next >= at);
        assert!(frame::read_frame(data, next).is_ok(), "next_valid_frame found a bad frame at {next}");
    }
    if frame::read_frame(data, at).is_ok() {
        assert_eq!(next, Some(at));
    }
    assert_eq!(
        frame::valid_frame_after(data, at),
        frame::next_valid_frame(data, at + 1).is_some(),
        "valid_frame_after disagrees with a scan from {}",
        at + 1
    );
}

fn check_verification(data: &[u8]) {
    let summary = match verify_records(data, ring()) {
        Ok(summary) => summary,
        Err(e) => {
            assert!(e.is_integrity(), "verifying bytes failed with a non-integrity error: {e}");
            assert!(e.first_bad_seq().is_some(), "{e} names no record");
            return;
        }
    };
    let valid_len = usize::try_from(summary.valid_len).expect("within the input");
    assert!(valid_len <= data.len());
    assert_eq!(summary.records(), summary.end.next_seq);
    match summary.torn_tail {
        Some(torn) => {
            assert_eq!(torn.offset, summary.valid_len);
            assert!(torn.dropped_bytes > 0);
            assert_eq!(torn.offset + torn.dropped_bytes, data.len() as u64);
        }
        None => assert_eq!(valid_len, data.len()),
    }

    // The valid prefix verifies whole on its own, to the same end.
    let prefix = verify_records(&data[..valid_len], ring()).expect("the valid prefix verifies");
    assert_eq!(prefix.hashes, summary.hashes);
    assert_eq!((prefix.end, prefix.torn_tail), (summary.end, None));

    // Every accepted record is the one the key signed, and resuming after
    // the first record gives what verifying the whole file gave.
    let mut at = 0;
    let mut after_first = None;
    while at < valid_len {
        let (payload, end) = frame::read_frame(data, at).expect("a verified frame");
        let record: Record = serde_json::from_slice(payload).expect("a verified record");
        assert_genuine(&record, payload);
        if at == 0 {
            after_first = Some((end, record));
        }
        at = end;
    }
    if let Some((end, first)) = after_first {
        let start = ballast_audit::ChainState { next_seq: 1, prev: first.hash, last_time: Some(first.time) };
        let rest = verify_records_from(&data[end..], end as u64, start, ring()).expect("the rest verifies");
        assert_eq!(rest.hashes, summary.hashes[1..]);
        assert_eq!((rest.end, rest.valid_len, rest.torn_tail), (summary.end, summary.valid_len, summary.torn_tail));
    }
}
