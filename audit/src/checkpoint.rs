//! Log checkpoints in the C2SP formats (c2sp.org/tlog-checkpoint inside a
//! c2sp.org/signed-note), so that existing transparency-log tools can read
//! them: the note text is the log's origin, its size in decimal and its
//! RFC 6962 root in base64, one per line; the signature line is
//! `— <key name> <base64(4-byte key hash || Ed25519 signature)>`.
//!
//! The key name is the origin. Signatures are made with the agent's record
//! key and checked with `verify_strict` against the key ring, so a
//! checkpoint signed by a key outside its validity window is refused like
//! a record would be.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use ed25519_dalek::VerifyingKey;
use signed_note::{Note, VerificationError, Verifier, Verifiers};

use crate::{
    error::{Error, Result},
    keys::{KeyRing, Signer},
    merkle::Hash,
    timestamp::Timestamp,
};

/// Ed25519's algorithm byte in a signed-note key hash.
const ALG_ED25519: u8 = 1;

/// The size and root of the log at one point: what goes on-chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name, unique to it (e.g. `ballast/31337/0x5fbd…/agent-1`).
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, each ending in a newline.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// The signed note, signed by `signer` under the origin as key name.
    pub fn sign(&self, signer: &Signer) -> Result<String> {
        check_origin(&self.origin)?;
        let mut note = Note::new(self.text().as_bytes(), &[]).map_err(|e| malformed(e.to_string()))?;
        let note_signer = NoteSigner { name: &self.origin, signer, id: note_key_id(&self.origin, &signer.verifying_key()) };
        note.add_sigs(&[&note_signer]).map_err(|e| malformed(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| malformed(e.to_string()))
    }

    /// Parses a signed checkpoint note and checks it: well formed, of
    /// `origin`, signed by a key of `keyring` (valid at `at`) under the
    /// origin's name. Signatures by unknown keys are ignored (a witness may
    /// cosign), but at least one known signature is required.
    pub fn verify(note: &str, origin: &str, keyring: &KeyRing, at: Timestamp) -> Result<Checkpoint> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| malformed(e.to_string()))?;
        let text = std::str::from_utf8(parsed.text()).map_err(|e| malformed(e.to_string()))?;
        let checkpoint = parse_text(text)?;
        if checkpoint.origin != origin {
            return Err(malformed(format!("origin is {:?}, expected {origin:?}", checkpoint.origin)));
        }
        let verifiers = KnownKeys::new(origin, keyring, at);
        parsed.verify(&verifiers).map_err(|e| Error::CheckpointSignature { size: checkpoint.size, reason: e.to_string() })?;
        Ok(checkpoint)
    }
}

/// The origin (log name) of the agent's log on chain `chain_id` with the
/// `AuditRegistry` at `registry` (`0x`-hex, any case): the name its
/// checkpoint notes carry and are signed under.
pub fn origin(chain_id: u64, registry: &str) -> String {
    format!("ballast/{chain_id}/{}", registry.to_lowercase())
}

/// The origin a signed note claims (its first line), unchecked.
pub fn note_origin(note: &str) -> Option<&str> {
    note.split('\n').next().filter(|o| !o.is_empty())
}

/// Parses the note text of a checkpoint (origin, size, root, then any
/// extension lines, which are allowed and ignored).
pub fn parse_text(text: &str) -> Result<Checkpoint> {
    let body = text.strip_suffix('\n').ok_or_else(|| malformed("the text does not end in a newline".into()))?;
    let mut lines = body.split('\n');
    let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| malformed("no origin line".into()))?;
    let size_line = lines.next().ok_or_else(|| malformed("no size line".into()))?;
    // Decimal, no sign, no leading zeros (but "0").
    if size_line.is_empty() || !size_line.bytes().all(|b| b.is_ascii_digit()) || (size_line.len() > 1 && size_line.starts_with('0')) {
        return Err(malformed(format!("size line {size_line:?} is not a decimal number")));
    }
    let size: u64 = size_line.parse().map_err(|_| malformed(format!("size {size_line:?} out of range")))?;
    let root_line = lines.next().ok_or_else(|| malformed("no root line".into()))?;
    let root: Hash = BASE64
        .decode(root_line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(format!("root line {root_line:?} is not 32 bytes of base64")))?;
    if lines.any(str::is_empty) {
        return Err(malformed("empty extension line".into()));
    }
    Ok(Checkpoint { origin: origin.to_string(), size, root })
}

fn check_origin(origin: &str) -> Result<()> {
    if signed_note::is_key_name_valid(origin) {
        Ok(())
    } else {
        Err(malformed(format!("origin {origin:?} is empty or holds a space or '+'")))
    }
}

fn malformed(reason: String) -> Error {
    Error::MalformedCheckpoint { reason }
}

/// The signed-note key hash: the first four bytes of
/// SHA-256(name || "\n" || 0x01 || public key).
pub fn note_key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut encoded = Vec::with_capacity(33);
    encoded.push(ALG_ED25519);
    encoded.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &encoded)
}

/// The verifier key line other tools take (`name+hash+base64(0x01||key)`).
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    signed_note::new_ed25519_verifier_key(name, key)
}

struct NoteSigner<'a> {
    name: &'a str,
    signer: &'a Signer,
    id: u32,
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.signer.sign_message(msg).to_vec())
    }
}

/// The ring's keys that were valid at one time, as signed-note verifiers.
struct KnownKeys {
    keys: Vec<StrictVerifier>,
}

impl KnownKeys {
    fn new(name: &str, keyring: &KeyRing, at: Timestamp) -> Self {
        let keys = keyring
            .iter()
            .filter(|(_, trusted)| trusted.validity.contains(at))
            .map(|(_, trusted)| StrictVerifier { name: name.to_string(), id: note_key_id(name, &trusted.key), key: trusted.key })
            .collect();
        Self { keys }
    }
}

impl Verifiers for KnownKeys {
    fn verifier(&self, name: &str, id: u32) -> std::result::Result<&dyn Verifier, VerificationError> {
        let mut found = self.keys.iter().filter(|k| k.name == name && k.id == id);
        match (found.next(), found.next()) {
            (Some(k), None) => Ok(k),
            (Some(_), Some(_)) => Err(VerificationError::AmbiguousKey { name: name.to_string(), id }),
            (None, _) => Err(VerificationError::UnknownKey { name: name.to_string(), id }),
        }
    }
}

struct StrictVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl Verifier for StrictVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(sig) else { return false };
        self.key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Validity;
    use proptest::prelude::*;

    const ORIGIN: &str = "ballast.test/log";

    fn signer(seed: u8) -> Signer {
        Signer::from_seed(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint { origin: ORIGIN.into(), size: 1000, root: crate::merkle::leaf_hash(b"root") }
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-12-01T12:00:00Z").expect("a time")
    }

    #[test]
    fn a_signed_checkpoint_reads_back_and_has_the_c2sp_shape() {
        let s = signer(7);
        let note = checkpoint().sign(&s).expect("signs");
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], ORIGIN);
        assert_eq!(lines[1], "1000");
        assert_eq!(lines[2], BASE64.encode(checkpoint().root));
        assert_eq!(lines[3], "", "a blank line before the signatures");
        let sig_line = lines[4];
        assert!(sig_line.starts_with(&format!("\u{2014} {ORIGIN} ")), "{sig_line}");
        let blob = BASE64.decode(sig_line.rsplit(' ').next().expect("blob")).expect("base64");
        assert_eq!(blob.len(), 4 + 64);
        assert_eq!(u32::from_be_bytes(blob[..4].try_into().expect("4 bytes")), note_key_id(ORIGIN, &s.verifying_key()));
        assert!(note.ends_with('\n'));

        let ring = KeyRing::single(s.verifying_key()).expect("a ring");
        assert_eq!(Checkpoint::verify(&note, ORIGIN, &ring, now()).expect("verifies"), checkpoint());
    }

    #[test]
    fn the_signature_verifies_with_the_stock_signed_note_verifier() {
        let s = signer(9);
        let note = checkpoint().sign(&s).expect("signs");
        let stock = signed_note::StandardVerifier::new(&verifier_key(ORIGIN, &s.verifying_key())).expect("a verifier key");
        let list = signed_note::VerifierList::new(vec![Box::new(stock)]);
        let parsed = Note::from_bytes(note.as_bytes()).expect("parses");
        assert_eq!(parsed.verify(&list).expect("verifies").0.len(), 1);
    }

    #[test]
    fn tampered_wrong_key_expired_key_and_wrong_origin_are_refused() {
        let s = signer(7);
        let note = checkpoint().sign(&s).expect("signs");
        let ring = KeyRing::single(s.verifying_key()).expect("a ring");

        let bigger = note.replacen("\n1000\n", "\n1001\n", 1);
        assert!(matches!(Checkpoint::verify(&bigger, ORIGIN, &ring, now()), Err(Error::CheckpointSignature { size: 1001, .. })));

        let other = KeyRing::single(signer(8).verifying_key()).expect("a ring");
        assert!(matches!(Checkpoint::verify(&note, ORIGIN, &other, now()), Err(Error::CheckpointSignature { .. })));

        let mut expired = KeyRing::new();
        expired
            .add(s.verifying_key(), Validity::new(None, Some(Timestamp::parse("2026-01-01T00:00:00Z").expect("a time"))))
            .expect("adds");
        assert!(matches!(Checkpoint::verify(&note, ORIGIN, &expired, now()), Err(Error::CheckpointSignature { .. })));

        assert!(matches!(Checkpoint::verify(&note, "another/log", &ring, now()), Err(Error::MalformedCheckpoint { .. })));
        for bad in ["", "no blank line\n", &note.replace('\u{2014}', "-"), &note[..note.len() - 1]] {
            assert!(Checkpoint::verify(bad, ORIGIN, &ring, now()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn text_parsing_refuses_what_the_format_forbids() {
        let root = BASE64.encode([3u8; 32]);
        assert_eq!(parse_text(&format!("o\n0\n{root}\n")).expect("parses").size, 0);
        assert!(parse_text(&format!("o\n12\n{root}\nextension line\n")).is_ok());
        for bad in [
            format!("o\n012\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{}\n", BASE64.encode([3u8; 31])),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{root}"),
            "o\n1\n".to_string(),
        ] {
            assert!(matches!(parse_text(&bad), Err(Error::MalformedCheckpoint { .. })), "{bad:?}");
        }
        assert!(checkpoint_with_origin("has space").sign(&signer(1)).is_err());
        assert!(checkpoint_with_origin("has+plus").sign(&signer(1)).is_err());
    }

    fn checkpoint_with_origin(origin: &str) -> Checkpoint {
        Checkpoint { origin: origin.into(), ..checkpoint() }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Sign, then verify and parse: the same checkpoint, for any valid
        /// origin (printable, no space, no '+'), size, root and key.
        #[test]
        fn signed_checkpoints_round_trip(
            origin in "[!-*,-~\u{e9}\u{20ac}\u{4e2d}]{1,40}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            seed in any::<[u8; 32]>(),
        ) {
            let s = Signer::from_seed(&seed);
            let ring = KeyRing::single(s.verifying_key()).expect("a ring");
            let checkpoint = Checkpoint { origin: origin.clone(), size, root };
            let note = checkpoint.sign(&s).expect("signs");
            let verified = Checkpoint::verify(&note, &origin, &ring, now()).expect("verifies");
            prop_assert_eq!(verified, checkpoint.clone());
            prop_assert_eq!(parse_text(&checkpoint.text()).expect("parses"), checkpoint.clone());
            let other_origin = format!("{origin}/other");
            prop_assert!(Checkpoint::verify(&note, &other_origin, &ring, now()).is_err());
        }
    }
}
