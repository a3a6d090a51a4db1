//! Arbitrary text as a checkpoint: `checkpoint::parse_text` and
//! `Checkpoint::verify` (signed-note parsing and signature checks against
//! the fixed key ring) return a checkpoint or a checkpoint error, never
//! panic; what parses writes back to text that parses to the same
//! checkpoint, and what verifies is what the key signs.

#![no_main]

use ballast_audit::{Checkpoint, Error, checkpoint::parse_text};
use ballast_audit_fuzz::{ORIGIN, check_time, ring, signer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_text(&text) {
        Ok(checkpoint) => {
            let again = parse_text(&checkpoint.text()).expect("a parsed checkpoint's text parses");
            assert_eq!(again, checkpoint);
        }
        Err(e) => assert!(matches!(e, Error::MalformedCheckpoint { .. }), "{e:?}"),
    }
    match Checkpoint::verify(&text, ORIGIN, ring(), check_time()) {
        Ok(checkpoint) => {
            assert_eq!(checkpoint.origin, ORIGIN);
            // The note's text is the checkpoint's (extension lines aside),
            // and signing it again gives a note that verifies the same.
            let note = checkpoint.sign(signer()).expect("a verified checkpoint signs");
            let again = Checkpoint::verify(&note, ORIGIN, ring(), check_time()).expect("a fresh note verifies");
            assert_eq!(again, checkpoint);
        }
        Err(e) => assert!(matches!(e, Error::MalformedCheckpoint { .. } | Error::CheckpointSignature { .. }), "{e:?}"),
    }
});
