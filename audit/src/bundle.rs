//! The regulator's export bundle: a folder that proves, without the agent's
//! database, that its records are in the log whose checkpoint is anchored
//! on-chain.
//!
//! | file | what it holds |
//! |---|---|
//! | `manifest.json` | format, log origin, chain id and registry, the checkpoint (size, root) the proofs are against, the selection |
//! | `records.jsonl` | the selected records, one JSON object a line, as the log holds them |
//! | `proofs.jsonl` | per record: its seq and RFC 6962 inclusion path (hex), leaf side first |
//! | `keys.json` | the public keys with their validity windows |
//! | `checkpoint.note` | when the checkpoint was anchored: the agent's C2SP signed note of it (origin, size, root), as recorded in the log |
//!
//! A record's Merkle leaf is `SHA-256(0x00 || record hash)` and its leaf
//! index is its seq, so a bundle checks with any RFC 6962 verifier once the
//! record hash is recomputed from the record's canonical (RFC 8785) bytes.

use std::{
    fs,
    io::{BufRead, BufReader, BufWriter, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::{
    checkpoint::Checkpoint,
    error::{Error, Result},
    keys::KeyRing,
    merkle::{self, Hash, MerkleStore},
    record::Record,
    timestamp::Timestamp,
    wire,
};

/// The bundle format this code writes and reads.
pub const FORMAT: &str = "ballast-audit-bundle/1";

/// What was selected for export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub account: Option<u64>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Selection {
    /// Whether `record` is in the selection: within `[from, until)` and, when
    /// an account is named, about that account.
    pub fn contains(&self, record: &Record) -> bool {
        self.from.is_none_or(|f| record.time >= f)
            && self.until.is_none_or(|u| record.time < u)
            && self.account.is_none_or(|a| crate::index::Keys::of(record).accounts.contains(&a))
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: String,
    pub origin: String,
    pub chain_id: Option<u64>,
    /// The `AuditRegistry` address, `0x`-hex.
    pub registry: Option<String>,
    /// The tree size the inclusion proofs are against.
    pub checkpoint_size: u64,
    #[serde(with = "wire::hex32")]
    pub checkpoint_root: Hash,
    /// Whether that checkpoint was anchored on-chain when exported.
    pub checkpoint_anchored: bool,
    /// When the agent signed the checkpoint's note (`checkpoint.note`):
    /// the time of the record that recorded it, at which its key must be
    /// valid. Absent when the bundle has no note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_signed_at: Option<Timestamp>,
    /// Records in the log when exported.
    pub log_size: u64,
    pub selection: Selection,
    pub records: u64,
}

/// One line of `proofs.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub seq: u64,
    pub path: Vec<String>,
}

/// Where the bundle's checkpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleCheckpoint {
    pub size: u64,
    pub anchored: bool,
    /// The agent's signed note of it and when it was recorded, if any.
    pub note: Option<(String, Timestamp)>,
}

/// Writes a bundle of `records` (from the log whose Merkle tree is `tree`)
/// into the folder `dir`, with inclusion proofs against the tree of
/// `checkpoint.size` records, which must cover every selected record.
#[allow(clippy::too_many_arguments)]
pub fn write(
    dir: &Path,
    records: &[Record],
    tree: &MerkleStore,
    checkpoint: BundleCheckpoint,
    keyring: &KeyRing,
    origin: &str,
    chain: Option<(u64, String)>,
    selection: Selection,
) -> Result<BundleManifest> {
    let root = tree.root_at(checkpoint.size).ok_or(Error::Truncated { expected: checkpoint.size, found: tree.size() })?;
    fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let mut lines = BufWriter::new(fs::File::create(dir.join("records.jsonl")).map_err(Error::io("creating", dir.join("records.jsonl")))?);
    let mut proofs = BufWriter::new(fs::File::create(dir.join("proofs.jsonl")).map_err(Error::io("creating", dir.join("proofs.jsonl")))?);
    for r in records {
        let path = tree.inclusion_proof(r.seq, checkpoint.size).ok_or(Error::Truncated { expected: r.seq + 1, found: checkpoint.size })?;
        let json = serde_json::to_string(r).map_err(|e| Error::Body { kind: r.kind.as_str(), reason: e.to_string() })?;
        writeln!(lines, "{json}").map_err(Error::io("writing", dir.join("records.jsonl")))?;
        let proof = Proof { seq: r.seq, path: path.iter().map(hex::encode).collect() };
        let json = serde_json::to_string(&proof).map_err(|e| Error::Body { kind: "proof", reason: e.to_string() })?;
        writeln!(proofs, "{json}").map_err(Error::io("writing", dir.join("proofs.jsonl")))?;
    }
    lines.flush().map_err(Error::io("writing", dir.join("records.jsonl")))?;
    proofs.flush().map_err(Error::io("writing", dir.join("proofs.jsonl")))?;
    let keys = serde_json::to_string_pretty(keyring).map_err(|e| Error::Body { kind: "keys", reason: e.to_string() })?;
    fs::write(dir.join("keys.json"), keys + "\n").map_err(Error::io("writing", dir.join("keys.json")))?;
    let (chain_id, registry) = chain.map_or((None, None), |(id, r)| (Some(id), Some(r)));
    let manifest = BundleManifest {
        format: FORMAT.into(),
        origin: origin.into(),
        chain_id,
        registry,
        checkpoint_size: checkpoint.size,
        checkpoint_root: root,
        checkpoint_anchored: checkpoint.anchored,
        checkpoint_signed_at: checkpoint.note.as_ref().map(|(_, time)| *time),
        log_size: tree.size(),
        selection,
        records: records.len() as u64,
    };
    if let Some((note, _)) = &checkpoint.note {
        fs::write(dir.join("checkpoint.note"), note).map_err(Error::io("writing", dir.join("checkpoint.note")))?;
    }
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Body { kind: "manifest", reason: e.to_string() })?;
    fs::write(dir.join("manifest.json"), json + "\n").map_err(Error::io("writing", dir.join("manifest.json")))?;
    Ok(manifest)
}

/// A bundle read back and checked.
#[derive(Debug, Clone)]
pub struct CheckedBundle {
    pub manifest: BundleManifest,
    pub records: Vec<Record>,
    /// The checkpoint of `checkpoint.note`, its signature checked.
    pub note: Option<Checkpoint>,
}

/// Reads the bundle in `dir` and checks it: every record's hash and
/// signature, by a key valid at its time, every inclusion proof against the
/// manifest's checkpoint, the signed checkpoint note when there is one (by
/// a key valid when it was recorded, of the manifest's origin, size and
/// root), the counts, and that the records are distinct and within the
/// selection.
///
/// The keys and their windows are `trusted`'s when given (keys read from
/// the chain or handed over by the platform; the bundle's `keys.json` is
/// then not read for them); without `trusted` they are the bundle's own,
/// which only shows that the bundle agrees with itself. A note must be of
/// the origin of the chain and registry the manifest names. Whether the
/// checkpoint is the one anchored on-chain is the caller's to check (it
/// needs the chain): `manifest.checkpoint_size` and `checkpoint_root`;
/// without a chain, only a note authenticates it.
pub fn check(dir: &Path, trusted: Option<&KeyRing>) -> Result<CheckedBundle> {
    let read = |name: &str| fs::read_to_string(dir.join(name)).map_err(Error::io("reading", dir.join(name)));
    let bad = |name: &str, line: usize, reason: String| Error::Bundle { file: name.to_string(), line, reason };
    let manifest: BundleManifest = serde_json::from_str(&read("manifest.json")?).map_err(|e| bad("manifest.json", e.line(), e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad("manifest.json", 0, format!("format {:?}, expected {FORMAT:?}", manifest.format)));
    }
    let keyring: KeyRing = serde_json::from_str(&read("keys.json")?).map_err(|e| bad("keys.json", e.line(), e.to_string()))?;
    let ring = trusted.unwrap_or(&keyring);
    let open = |name: &str| fs::File::open(dir.join(name)).map(BufReader::new).map_err(Error::io("reading", dir.join(name)));
    let mut records = Vec::new();
    for (i, line) in open("records.jsonl")?.lines().enumerate() {
        let line = line.map_err(Error::io("reading", dir.join("records.jsonl")))?;
        let record: Record = serde_json::from_str(&line).map_err(|e| bad("records.jsonl", i + 1, e.to_string()))?;
        record.check_seal(ring)?;
        records.push(record);
    }
    let mut proofs = Vec::new();
    for (i, line) in open("proofs.jsonl")?.lines().enumerate() {
        let line = line.map_err(Error::io("reading", dir.join("proofs.jsonl")))?;
        let proof: Proof = serde_json::from_str(&line).map_err(|e| bad("proofs.jsonl", i + 1, e.to_string()))?;
        proofs.push(proof);
    }
    if records.len() as u64 != manifest.records || proofs.len() != records.len() {
        return Err(bad(
            "manifest.json",
            0,
            format!("{} records and {} proofs, the manifest says {}", records.len(), proofs.len(), manifest.records),
        ));
    }
    let mut last: Option<u64> = None;
    for (i, (record, proof)) in records.iter().zip(&proofs).enumerate() {
        if proof.seq != record.seq {
            return Err(bad("proofs.jsonl", i + 1, format!("proof of record {} next to record {}", proof.seq, record.seq)));
        }
        if last.is_some_and(|l| record.seq <= l) {
            return Err(bad("records.jsonl", i + 1, format!("record {} out of order or repeated", record.seq)));
        }
        last = Some(record.seq);
        let path: Vec<Hash> = proof
            .path
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("proofs.jsonl", i + 1, "a path entry is not 32 bytes of hex".into()))?;
        if !merkle::verify_inclusion(&record.merkle_leaf(), record.seq, manifest.checkpoint_size, &path, &manifest.checkpoint_root) {
            return Err(Error::NotIncluded { seq: record.seq, size: manifest.checkpoint_size });
        }
        if !manifest.selection.contains(record) {
            return Err(bad("records.jsonl", i + 1, format!("record {} is outside the bundle's selection", record.seq)));
        }
    }
    let note = match manifest.checkpoint_signed_at {
        Some(at) => {
            let origin = manifest.chain_id.zip(manifest.registry.as_deref()).map(|(id, registry)| crate::checkpoint::origin(id, registry));
            if origin.as_deref() != Some(manifest.origin.as_str()) {
                let named = origin.unwrap_or_else(|| "no chain".into());
                return Err(bad("manifest.json", 0, format!("origin {:?} is not that of the chain and registry it names ({named})", manifest.origin)));
            }
            let checkpoint = Checkpoint::verify(&read("checkpoint.note")?, &manifest.origin, ring, at)?;
            if (checkpoint.size, checkpoint.root) != (manifest.checkpoint_size, manifest.checkpoint_root) {
                let (size, root) = (checkpoint.size, hex::encode(checkpoint.root));
                return Err(bad("checkpoint.note", 0, format!("a checkpoint of size {size} root {root}, not the manifest's")));
            }
            Some(checkpoint)
        }
        None if dir.join("checkpoint.note").exists() => {
            return Err(bad("manifest.json", 0, "a checkpoint.note, but no checkpoint_signed_at to check it at".into()));
        }
        None => None,
    };
    Ok(CheckedBundle { manifest, records, note })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{keys::Signer, record::Kind};

    fn log(n: u64) -> (Vec<Record>, MerkleStore, KeyRing) {
        let signer = Signer::from_seed(&[3; 32]);
        let mut prev = crate::record::GENESIS_PREV;
        let t0 = Timestamp::parse("2026-12-01T09:00:00Z").unwrap().unix_nanos();
        let mut tree = MerkleStore::new();
        let records: Vec<Record> = (0..n)
            .map(|seq| {
                let time = Timestamp::from_unix_nanos(t0 + i128::from(seq) * 60_000_000_000).unwrap();
                let body = serde_json::json!({"account": seq % 4, "ips": {"id": "ips-a", "version": 1}});
                let r = Record::sign(&signer, seq, prev, time, Kind::Decision, &body).unwrap();
                prev = r.hash;
                tree.push(r.merkle_leaf());
                r
            })
            .collect();
        (records, tree, KeyRing::single(signer.verifying_key()).unwrap())
    }

    const ORIGIN: &str = "ballast/31337/0x00";

    /// A signed note of the first `size` records of `tree`, recorded at the time of record 49.
    fn note(tree: &MerkleStore, size: u64, root: Option<Hash>, seed: u8) -> (String, Timestamp) {
        let checkpoint = Checkpoint { origin: ORIGIN.into(), size, root: root.unwrap_or_else(|| tree.root_at(size).unwrap()) };
        let at = log(50).0[49].time;
        (checkpoint.sign(&Signer::from_seed(&[seed; 32])).unwrap(), at)
    }

    fn export_with(dir: &Path, account: u64, note: Option<(String, Timestamp)>) -> (Vec<Record>, BundleManifest) {
        let (records, tree, ring) = log(50);
        let picked: Vec<Record> = records.iter().filter(|r| r.seq % 4 == account && r.seq < 48).cloned().collect();
        let selection = Selection { account: Some(account), ..Selection::default() };
        let checkpoint = BundleCheckpoint { size: 48, anchored: true, note };
        let m = write(dir, &picked, &tree, checkpoint, &ring, ORIGIN, Some((31337, "0x00".into())), selection).unwrap();
        (picked, m)
    }

    fn export(dir: &Path, account: u64) -> (Vec<Record>, BundleManifest) {
        let tree = log(50).1;
        export_with(dir, account, Some(note(&tree, 48, None, 3)))
    }

    #[test]
    fn an_exported_bundle_checks_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (picked, manifest) = export(dir.path(), 1);
        let checked = check(dir.path(), None).unwrap();
        // Records 1, 5, ..., 45 (the checkpoint of 48 covers them; 49 is left out).
        assert_eq!(picked.len(), 12);
        assert_eq!(checked.records, picked);
        assert_eq!(checked.manifest, manifest);
        assert_eq!(manifest.log_size, 50);
        let note = checked.note.expect("the signed note is checked");
        assert_eq!((note.origin.as_str(), note.size, note.root), (ORIGIN, 48, manifest.checkpoint_root));
        // Without a note, the bundle still checks, and says it has none.
        let bare = tempfile::tempdir().unwrap();
        export_with(bare.path(), 1, None);
        assert!(!bare.path().join("checkpoint.note").exists());
        assert_eq!(check(bare.path(), None).unwrap().note, None);
    }

    #[test]
    fn trusted_keys_decide_and_their_windows_apply() {
        let dir = tempfile::tempdir().unwrap();
        export(dir.path(), 1);
        let own = log(1).2;
        let key = Signer::from_seed(&[3; 32]).verifying_key();
        assert!(check(dir.path(), Some(&own)).is_ok());
        // A trusted ring without the key that signed the records refuses them.
        let other = KeyRing::single(Signer::from_seed(&[4; 32]).verifying_key()).unwrap();
        assert!(matches!(check(dir.path(), Some(&other)), Err(Error::UnknownKey { .. })));
        // The trusted ring's window, not the bundle's: a key retired before
        // the records were made does not sign them, whatever keys.json says.
        let mut retired = KeyRing::new();
        let until = Timestamp::parse("2026-12-01T09:00:30Z").unwrap();
        retired.add(key, crate::keys::Validity::new(None, Some(until))).unwrap();
        assert!(matches!(check(dir.path(), Some(&retired)), Err(Error::KeyNotValid { .. })));
    }

    #[test]
    fn a_checkpoint_note_must_be_signed_and_name_the_manifests_checkpoint() {
        let tree = log(50).1;
        let refused = |note: (String, Timestamp)| {
            let dir = tempfile::tempdir().unwrap();
            export_with(dir.path(), 1, Some(note));
            check(dir.path(), None).err()
        };
        assert!(matches!(refused(note(&tree, 48, Some([7; 32]), 3)), Some(Error::Bundle { .. })));
        assert!(matches!(refused(note(&tree, 47, None, 3)), Some(Error::Bundle { .. })));
        assert!(matches!(refused(note(&tree, 48, None, 4)), Some(Error::CheckpointSignature { .. })));

        // A note stripped of its time, or of another deployment's origin.
        let dir = tempfile::tempdir().unwrap();
        export_with(dir.path(), 1, Some(note(&tree, 48, None, 3)));
        let manifest = fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let mut m: BundleManifest = serde_json::from_str(&manifest).unwrap();
        m.checkpoint_signed_at = None;
        fs::write(dir.path().join("manifest.json"), serde_json::to_string(&m).unwrap()).unwrap();
        assert!(matches!(check(dir.path(), None), Err(Error::Bundle { .. })));
        m = serde_json::from_str(&manifest).unwrap();
        m.registry = Some("0x01".into());
        fs::write(dir.path().join("manifest.json"), serde_json::to_string(&m).unwrap()).unwrap();
        assert!(matches!(check(dir.path(), None), Err(Error::Bundle { .. })));
    }

    #[test]
    fn a_time_range_bundle_holds_that_range_and_nothing_else() {
        let (records, tree, ring) = log(50);
        let (from, until) = (records[10].time, records[20].time);
        let selection = Selection { account: None, from: Some(from), until: Some(until) };
        let picked: Vec<Record> = records.iter().filter(|r| selection.contains(r)).cloned().collect();
        assert_eq!(picked.iter().map(|r| r.seq).collect::<Vec<_>>(), (10..20).collect::<Vec<_>>(), "from included, until not");
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = BundleCheckpoint { size: 48, anchored: true, note: None };
        write(dir.path(), &picked, &tree, checkpoint.clone(), &ring, ORIGIN, None, selection.clone()).unwrap();
        assert_eq!(check(dir.path(), Some(&ring)).unwrap().records, picked);
        // A record from outside the range, with its own good proof, is refused.
        let mut wider = picked.clone();
        wider.push(records[20].clone());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &wider, &tree, checkpoint, &ring, ORIGIN, None, selection).unwrap();
        assert!(matches!(check(dir.path(), Some(&ring)), Err(Error::Bundle { line: 11, .. })));
    }

    proptest::proptest! {
        #[test]
        fn manifest_and_proof_lines_round_trip(
            chain in proptest::option::of((proptest::prelude::any::<u64>(), "0x[0-9a-f]{40}")),
            size in 0u64..1 << 53,
            root in proptest::prelude::any::<[u8; 32]>(),
            anchored in proptest::prelude::any::<bool>(),
            signed_at in proptest::option::of(0i64..4_000_000_000),
            account in proptest::option::of(0u64..1 << 53),
            path in proptest::collection::vec(proptest::prelude::any::<[u8; 32]>(), 0..20),
        ) {
            let at = |s: i64| Timestamp::from_unix_nanos(i128::from(s) * 1_000_000_000).unwrap();
            let manifest = BundleManifest {
                format: FORMAT.into(),
                origin: ORIGIN.into(),
                chain_id: chain.as_ref().map(|c| c.0),
                registry: chain.map(|c| c.1),
                checkpoint_size: size,
                checkpoint_root: root,
                checkpoint_anchored: anchored,
                checkpoint_signed_at: signed_at.map(at),
                log_size: size,
                selection: Selection { account, from: signed_at.map(at), until: None },
                records: size / 2,
            };
            let text = serde_json::to_string_pretty(&manifest).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<BundleManifest>(&text).unwrap(), manifest);
            let proof = Proof { seq: size, path: path.iter().map(hex::encode).collect() };
            let line = serde_json::to_string(&proof).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Proof>(&line).unwrap(), proof);
        }
    }

    #[test]
    fn a_checkpoint_that_does_not_cover_the_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (records, tree, ring) = log(10);
        let err = write(dir.path(), &records, &tree, BundleCheckpoint { size: 5, anchored: true, note: None }, &ring, "o", None, Selection::default());
        assert!(matches!(err, Err(Error::Truncated { expected: 6, found: 5 })));
    }

    #[test]
    fn every_kind_of_tampering_with_a_bundle_is_caught() {
        let tamper = |edit: &dyn Fn(&Path)| {
            let dir = tempfile::tempdir().unwrap();
            export(dir.path(), 2);
            edit(dir.path());
            check(dir.path(), None).err()
        };
        let rewrite = |name: &'static str, f: &'static dyn Fn(String) -> String| {
            move |d: &Path| {
                let text = fs::read_to_string(d.join(name)).unwrap();
                fs::write(d.join(name), f(text)).unwrap();
            }
        };
        // A body changed: the hash no longer matches.
        assert!(matches!(tamper(&rewrite("records.jsonl", &|t| t.replacen("ips-a", "ips-b", 1))), Some(Error::HashMismatch { seq: 2, .. })));
        // A record dropped: the count is off.
        assert!(matches!(tamper(&rewrite("records.jsonl", &|t| t.lines().skip(1).map(|l| format!("{l}\n")).collect())), Some(Error::Bundle { .. })));
        // A proof from another leaf.
        assert!(matches!(
            tamper(&rewrite("proofs.jsonl", &|t| {
                let lines: Vec<&str> = t.lines().collect();
                let swapped = lines[1].replacen("\"seq\":6", "\"seq\":2", 1);
                format!("{}\n{}\n", swapped, lines[1..].join("\n"))
            })),
            Some(Error::NotIncluded { seq: 2, .. })
        ));
        // Another root in the manifest.
        assert!(matches!(
            tamper(&rewrite("manifest.json", &|t| {
                let mut m: BundleManifest = serde_json::from_str(&t).unwrap();
                m.checkpoint_root[0] ^= 1;
                serde_json::to_string(&m).unwrap()
            })),
            Some(Error::NotIncluded { .. })
        ));
        // Another key.
        assert!(matches!(
            tamper(&|d: &Path| {
                let other = KeyRing::single(Signer::from_seed(&[4; 32]).verifying_key()).unwrap();
                fs::write(d.join("keys.json"), serde_json::to_string(&other).unwrap()).unwrap();
            }),
            Some(Error::UnknownKey { .. })
        ));
        // A record of another account slipped in.
        assert!(matches!(
            tamper(&rewrite("manifest.json", &|t| t.replace("\"account\": 2", "\"account\": 3"))),
            Some(Error::Bundle { .. })
        ));
        assert!(matches!(tamper(&|d: &Path| fs::remove_file(d.join("proofs.jsonl")).unwrap()), Some(Error::Io { .. })));
    }
}
