//! The sled index over the log: derived, never the source of truth, and
//! rebuildable from the log at any time (`ballast audit reindex`).
//!
//! One sled tree holds every index under a one-byte prefix, so that a
//! record's entries and the count of indexed records (`indexed`) go in one
//! atomic sled batch: after a crash the index is either before or after a
//! record, never half of it, and catching up replays the log from
//! `indexed`. Applying a record twice writes the same keys again.
//!
//! Keys sort as the queries read them (big-endian integers, times as
//! nanoseconds since 1970 offset to be unsigned):
//!
//! | prefix | key after the prefix | value |
//! |---|---|---|
//! | `r` | seq | the record's JSON |
//! | `a` | account, time, seq | |
//! | `k` | kind, seq | |
//! | `i` | IPS id (length-prefixed), version, seq | |
//! | `b` | batch id, seq | |
//! | `x` | tx hash, seq | |
//! | `t` | time, seq | |
//! | `c` | checkpoint size | the anchoring record's seq |
//! | `m` | `indexed` | number of records indexed |

use std::path::Path;

use serde_json::Value;

use crate::{
    error::{Error, Result},
    record::{Kind, Record},
    timestamp::Timestamp,
};

const RECORD: u8 = b'r';
const ACCOUNT: u8 = b'a';
const KIND: u8 = b'k';
const IPS: u8 = b'i';
const BATCH: u8 = b'b';
const TX: u8 = b'x';
const TIME: u8 = b't';
const CHECKPOINT: u8 = b'c';
const META: u8 = b'm';
const INDEXED: &[u8] = b"mindexed";

/// How long [`Index::open`] waits for sled's folder lock.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the index can say about a record without reading it: the keys a
/// record is found under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    pub accounts: Vec<u64>,
    /// (IPS id, version).
    pub ips: Option<(String, u32)>,
    /// Lower-case hex, no `0x`.
    pub batch: Option<String>,
    pub tx: Option<String>,
    /// For checkpoint records: the anchored tree size.
    pub checkpoint: Option<u64>,
}

impl Keys {
    /// Reads the keys of a record from its body: `account` and `accounts`
    /// (decisions, IPS registrations, approvals, settlements), `ips.id` and
    /// `ips.version` (decisions) or `ips_id` and `version` (registrations),
    /// `batch_id`, `tx_hash`, and `size` of an anchored checkpoint.
    pub fn of(record: &Record) -> Keys {
        let body = &record.body;
        let mut accounts: Vec<u64> = body.get("account").and_then(Value::as_u64).into_iter().collect();
        if let Some(list) = body.get("accounts").and_then(Value::as_array) {
            accounts.extend(list.iter().filter_map(Value::as_u64));
        }
        accounts.sort_unstable();
        accounts.dedup();
        let ips = match record.kind {
            Kind::Decision => body.get("ips").and_then(|i| Some((i.get("id")?.as_str()?.to_string(), u32::try_from(i.get("version")?.as_u64()?).ok()?))),
            Kind::IpsRegistered => (|| Some((body.get("ips_id")?.as_str()?.to_string(), u32::try_from(body.get("version")?.as_u64()?).ok()?)))(),
            _ => None,
        };
        let hex_field = |name: &str| body.get(name).and_then(Value::as_str).map(normalize_hex);
        Keys {
            accounts,
            ips,
            batch: hex_field("batch_id"),
            tx: hex_field("tx_hash"),
            checkpoint: (record.kind == Kind::CheckpointAnchored).then(|| body.get("size").and_then(Value::as_u64)).flatten(),
        }
    }
}

/// Lower case, without a `0x` prefix: how hashes are keyed and looked up.
pub fn normalize_hex(s: &str) -> String {
    s.strip_prefix("0x").unwrap_or(s).to_ascii_lowercase()
}

fn time_key(t: Timestamp) -> [u8; 16] {
    // i128 nanoseconds, offset by 2^127 so that byte order is time order.
    ((t.unix_nanos() as u128) ^ (1u128 << 127)).to_be_bytes()
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    k.push(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

fn ips_prefix(id: &str) -> Vec<u8> {
    let mut k = vec![IPS];
    k.extend_from_slice(&(id.len() as u32).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn kind_byte(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL") as u8
}

/// The sled index.
#[derive(Debug, Clone)]
pub struct Index {
    db: sled::Db,
    tree: sled::Tree,
}

impl Index {
    /// Opens (or creates) the index in the directory `path`.
    ///
    /// sled locks the folder; the lock of a handle just dropped (its
    /// flusher thread ends shortly after) or briefly held by a child process
    /// being spawned is waited for, up to [`LOCK_WAIT`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let started = std::time::Instant::now();
        let db = loop {
            match sled::open(path) {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") => {
                    if started.elapsed() >= LOCK_WAIT {
                        return Err(index_error(format!("opening {} (locked by another process?)", path.display()), sled::Error::Io(e)));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(index_error(format!("opening {}", path.display()), e)),
            }
        };
        let tree = db.open_tree("ballast-index-v1").map_err(|e| index_error("opening the index tree".into(), e))?;
        Ok(Self { db, tree })
    }

    /// An index in memory only, for tests and one-off verification.
    pub fn temporary() -> Result<Self> {
        let db = sled::Config::new().temporary(true).open().map_err(|e| index_error("opening a temporary index".into(), e))?;
        let tree = db.open_tree("ballast-index-v1").map_err(|e| index_error("opening the index tree".into(), e))?;
        Ok(Self { db, tree })
    }

    /// How many records (seq 0 to `indexed() - 1`) the index holds.
    pub fn indexed(&self) -> Result<u64> {
        let v = self.tree.get(INDEXED).map_err(|e| index_error("reading `indexed`".into(), e))?;
        Ok(v.map(|b| u64::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 8]))).unwrap_or(0))
    }

    /// Indexes `record`, which must be the next one (`seq == indexed()`);
    /// a record already indexed is skipped (replays are idempotent).
    pub fn apply(&self, record: &Record) -> Result<()> {
        let indexed = self.indexed()?;
        if record.seq < indexed {
            return Ok(());
        }
        if record.seq > indexed {
            return Err(Error::IndexGap { indexed, seq: record.seq });
        }
        let mut batch = sled::Batch::default();
        self.entries(record, &mut batch)?;
        batch.insert(INDEXED, &(record.seq + 1).to_be_bytes());
        self.tree.apply_batch(batch).map_err(|e| index_error(format!("indexing record {}", record.seq), e))
    }

    /// Indexes every record of `records` not yet indexed, in one sled batch.
    pub fn apply_all<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Result<u64> {
        let mut next = self.indexed()?;
        let start = next;
        let mut batch = sled::Batch::default();
        for record in records {
            if record.seq < next {
                continue;
            }
            if record.seq > next {
                return Err(Error::IndexGap { indexed: next, seq: record.seq });
            }
            self.entries(record, &mut batch)?;
            next += 1;
        }
        batch.insert(INDEXED, &next.to_be_bytes());
        self.tree.apply_batch(batch).map_err(|e| index_error("indexing records".into(), e))?;
        Ok(next - start)
    }

    fn entries(&self, record: &Record, batch: &mut sled::Batch) -> Result<()> {
        let seq = record.seq.to_be_bytes();
        let time = time_key(record.time);
        let json = serde_json::to_vec(record).map_err(|e| Error::Decode { seq: record.seq, offset: 0, reason: e.to_string() })?;
        batch.insert(key(RECORD, &[&seq]), json);
        batch.insert(key(KIND, &[&[kind_byte(record.kind)], &seq]), &[]);
        batch.insert(key(TIME, &[&time, &seq]), &[]);
        let keys = Keys::of(record);
        for account in &keys.accounts {
            batch.insert(key(ACCOUNT, &[&account.to_be_bytes(), &time, &seq]), &[]);
        }
        if let Some((id, version)) = &keys.ips {
            let mut k = ips_prefix(id);
            k.extend_from_slice(&version.to_be_bytes());
            k.extend_from_slice(&seq);
            batch.insert(k, &[]);
        }
        if let Some(b) = &keys.batch {
            batch.insert(key(BATCH, &[b.as_bytes(), &[0], &seq]), &[]);
        }
        if let Some(x) = &keys.tx {
            batch.insert(key(TX, &[x.as_bytes(), &[0], &seq]), &[]);
        }
        if let Some(size) = keys.checkpoint {
            batch.insert(key(CHECKPOINT, &[&size.to_be_bytes()]), &seq);
        }
        Ok(())
    }

    /// Makes everything indexed so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(|e| index_error("flushing".into(), e))
    }

    /// Drops every entry (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.tree.clear().map_err(|e| index_error("clearing".into(), e))
    }

    /// The record at `seq`.
    pub fn get(&self, seq: u64) -> Result<Option<Record>> {
        let Some(bytes) = self.tree.get(key(RECORD, &[&seq.to_be_bytes()])).map_err(|e| index_error(format!("reading record {seq}"), e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Decode { seq, offset: 0, reason: format!("index entry: {e}") })
    }

    /// The records of `seqs`, in that order.
    pub fn records(&self, seqs: &[u64]) -> Result<Vec<Record>> {
        seqs.iter().map(|s| self.get(*s)?.ok_or(Error::IndexGap { indexed: self.indexed()?, seq: *s })).collect()
    }

    /// Seqs of an account's records, oldest first, optionally within `[from, until)`.
    pub fn by_account(&self, account: u64, from: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<u64>> {
        let prefix = key(ACCOUNT, &[&account.to_be_bytes()]);
        let lo = [prefix.as_slice(), &from.map_or([0; 16], time_key)].concat();
        let hi = match until {
            Some(t) => [prefix.as_slice(), &time_key(t)].concat(),
            // Past every key of the prefix (time and seq are 24 bytes).
            None => [prefix.as_slice(), &[0xff; 25]].concat(),
        };
        self.seqs_in(lo, hi)
    }

    /// Seqs of the records of one kind.
    pub fn by_kind(&self, kind: Kind) -> Result<Vec<u64>> {
        self.seqs_with_prefix(&[KIND, kind_byte(kind)])
    }

    /// Seqs of the records made under an IPS (any version, or one).
    pub fn by_ips(&self, id: &str, version: Option<u32>) -> Result<Vec<u64>> {
        let mut prefix = ips_prefix(id);
        if let Some(v) = version {
            prefix.extend_from_slice(&v.to_be_bytes());
        }
        self.seqs_with_prefix(&prefix)
    }

    /// Seqs of the records of a settlement batch (hex id).
    pub fn by_batch(&self, batch_id: &str) -> Result<Vec<u64>> {
        self.seqs_with_prefix(&key(BATCH, &[normalize_hex(batch_id).as_bytes(), &[0]]))
    }

    /// Seqs of the records of a transaction (hex hash).
    pub fn by_tx(&self, tx_hash: &str) -> Result<Vec<u64>> {
        self.seqs_with_prefix(&key(TX, &[normalize_hex(tx_hash).as_bytes(), &[0]]))
    }

    /// Seqs of the records timed within `[from, until)`.
    pub fn by_time(&self, from: Timestamp, until: Timestamp) -> Result<Vec<u64>> {
        self.seqs_in(key(TIME, &[&time_key(from)]), key(TIME, &[&time_key(until)]))
    }

    /// Anchored checkpoints: (tree size, seq of the record that anchored it), by size.
    pub fn checkpoints(&self) -> Result<Vec<(u64, u64)>> {
        self.tree
            .scan_prefix([CHECKPOINT])
            .map(|kv| {
                let (k, v) = kv.map_err(|e| index_error("reading checkpoints".into(), e))?;
                Ok((be_u64(&k[1..]), be_u64(&v)))
            })
            .collect()
    }

    /// Every entry, for comparing an index with a rebuild.
    pub fn dump(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree
            .iter()
            .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| index_error("reading".into(), e)))
            .collect()
    }

    fn seqs_with_prefix(&self, prefix: &[u8]) -> Result<Vec<u64>> {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| kv.map(|(k, _)| be_u64(&k[k.len() - 8..])).map_err(|e| index_error("scanning".into(), e)))
            .collect()
    }

    fn seqs_in(&self, lo: Vec<u8>, hi: Vec<u8>) -> Result<Vec<u64>> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        self.tree
            .range(lo..hi)
            .map(|kv| kv.map(|(k, _)| be_u64(&k[k.len() - 8..])).map_err(|e| index_error("scanning".into(), e)))
            .collect()
    }
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().unwrap_or([0; 8]))
}

fn index_error(what: String, e: sled::Error) -> Error {
    Error::Index { what, reason: e.to_string() }
}

// `META` names the prefix of `INDEXED`; keep them together.
const _: () = assert!(INDEXED[0] == META);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::keys::Signer;

    /// A plain model of what the index answers, built the obvious way.
    #[derive(Default)]
    struct Model {
        by_account: BTreeMap<u64, Vec<(Timestamp, u64)>>,
        by_kind: BTreeMap<Kind, Vec<u64>>,
        by_ips: BTreeMap<(String, u32), Vec<u64>>,
        by_batch: BTreeMap<String, Vec<u64>>,
        by_tx: BTreeMap<String, Vec<u64>>,
        times: Vec<(Timestamp, u64)>,
        checkpoints: BTreeMap<u64, u64>,
    }

    impl Model {
        fn add(&mut self, r: &Record) {
            let b = &r.body;
            for a in b.get("account").and_then(Value::as_u64).into_iter().chain(b.get("accounts").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_u64)) {
                let list = self.by_account.entry(a).or_default();
                if !list.contains(&(r.time, r.seq)) {
                    list.push((r.time, r.seq));
                }
            }
            self.by_kind.entry(r.kind).or_default().push(r.seq);
            if r.kind == Kind::Decision {
                let ips = &b["ips"];
                self.by_ips.entry((ips["id"].as_str().unwrap().into(), ips["version"].as_u64().unwrap() as u32)).or_default().push(r.seq);
            }
            if let Some(x) = b.get("batch_id").and_then(Value::as_str) {
                self.by_batch.entry(x.to_lowercase()).or_default().push(r.seq);
            }
            if let Some(x) = b.get("tx_hash").and_then(Value::as_str) {
                self.by_tx.entry(x.to_lowercase()).or_default().push(r.seq);
            }
            if r.kind == Kind::CheckpointAnchored {
                self.checkpoints.insert(b["size"].as_u64().unwrap(), r.seq);
            }
            self.times.push((r.time, r.seq));
        }
    }

    fn mix(a: u64) -> u64 {
        let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    }

    /// `n` chained records of every kind the index reads, over 7 accounts,
    /// 3 IPS and 5 batches, their times non-decreasing.
    fn records(n: u64) -> Vec<Record> {
        let signer = Signer::from_seed(&[5; 32]);
        let mut prev = crate::record::GENESIS_PREV;
        let mut t = Timestamp::parse("2026-12-01T00:00:00Z").unwrap().unix_nanos();
        (0..n)
            .map(|seq| {
                let r = mix(seq);
                t += i128::from(r % 3) * 1_000_000_000;
                let batch = format!("{:064x}", r % 5);
                let (kind, body) = match r % 5 {
                    0 | 1 => (Kind::Decision, serde_json::json!({"account": r % 7, "ips": {"id": format!("ips-{}", r % 3), "version": 1 + (r >> 8) % 2}})),
                    2 => (Kind::SettlementSubmitted, serde_json::json!({"batch_id": batch, "tx_hash": format!("{:064X}", r), "accounts": [r % 7, (r >> 4) % 7]})),
                    3 => (Kind::SettlementConfirmed, serde_json::json!({"batch_id": batch, "tx_hash": format!("{:064x}", r >> 3)})),
                    _ => (Kind::CheckpointAnchored, serde_json::json!({"size": seq, "root": "00", "tx_hash": format!("{:064x}", r)})),
                };
                let rec = Record::sign(&signer, seq, prev, Timestamp::from_unix_nanos(t).unwrap(), kind, &body).unwrap();
                prev = rec.hash;
                rec
            })
            .collect()
    }

    #[test]
    fn queries_equal_a_plain_model_and_a_rebuild_equals_the_incremental_index() {
        let recs = records(400);
        let index = Index::temporary().unwrap();
        let mut model = Model::default();
        for r in &recs {
            index.apply(r).unwrap();
            model.add(r);
        }
        assert_eq!(index.indexed().unwrap(), 400);
        for (a, list) in &model.by_account {
            let seqs: Vec<u64> = list.iter().map(|(_, s)| *s).collect();
            assert_eq!(index.by_account(*a, None, None).unwrap(), seqs, "account {a}");
            // A time window: the middle third of the account's records.
            let (from, until) = (list[list.len() / 3].0, list[2 * list.len() / 3].0);
            let want: Vec<u64> = list.iter().filter(|(t, _)| *t >= from && *t < until).map(|(_, s)| *s).collect();
            assert_eq!(index.by_account(*a, Some(from), Some(until)).unwrap(), want, "account {a} window");
        }
        assert!(index.by_account(99, None, None).unwrap().is_empty());
        for (k, seqs) in &model.by_kind {
            assert_eq!(&index.by_kind(*k).unwrap(), seqs, "kind {k}");
        }
        for ((id, v), seqs) in &model.by_ips {
            assert_eq!(&index.by_ips(id, Some(*v)).unwrap(), seqs, "ips {id} v{v}");
        }
        let all_v: Vec<u64> = {
            let mut s: Vec<u64> = model.by_ips.iter().filter(|((id, _), _)| id == "ips-1").flat_map(|(_, s)| s.clone()).collect();
            s.sort_unstable();
            s
        };
        let mut got = index.by_ips("ips-1", None).unwrap();
        got.sort_unstable();
        assert_eq!(got, all_v);
        for (b, seqs) in &model.by_batch {
            assert_eq!(&index.by_batch(&format!("0x{}", b.to_uppercase())).unwrap(), seqs, "batch {b}");
        }
        for (x, seqs) in &model.by_tx {
            assert_eq!(&index.by_tx(x).unwrap(), seqs, "tx {x}");
        }
        let (from, until) = (model.times[100].0, model.times[300].0);
        let want: Vec<u64> = model.times.iter().filter(|(t, _)| *t >= from && *t < until).map(|(_, s)| *s).collect();
        assert_eq!(index.by_time(from, until).unwrap(), want);
        assert_eq!(index.checkpoints().unwrap(), model.checkpoints.into_iter().collect::<Vec<_>>());
        assert_eq!(index.get(123).unwrap().as_ref(), Some(&recs[123]));
        assert_eq!(index.get(400).unwrap(), None);

        let rebuilt = Index::temporary().unwrap();
        assert_eq!(rebuilt.apply_all(&recs).unwrap(), 400);
        assert_eq!(rebuilt.dump().unwrap(), index.dump().unwrap());
    }

    #[test]
    fn replays_are_idempotent_and_gaps_refused() {
        let recs = records(50);
        let index = Index::temporary().unwrap();
        assert_eq!(index.apply_all(&recs[..20]).unwrap(), 20);
        let before = index.dump().unwrap();
        // Replaying what is indexed changes nothing.
        assert_eq!(index.apply_all(&recs[..20]).unwrap(), 0);
        index.apply(&recs[5]).unwrap();
        assert_eq!(index.dump().unwrap(), before);
        // Skipping a record is refused and leaves the index as it was.
        assert!(matches!(index.apply(&recs[21]), Err(Error::IndexGap { indexed: 20, seq: 21 })));
        assert!(matches!(index.apply_all(&recs[21..]), Err(Error::IndexGap { indexed: 20, seq: 21 })));
        assert_eq!(index.dump().unwrap(), before);
        // Catching up from the middle (a replay from an older point) works.
        assert_eq!(index.apply_all(&recs[10..]).unwrap(), 30);
        let full = Index::temporary().unwrap();
        full.apply_all(&recs).unwrap();
        assert_eq!(index.dump().unwrap(), full.dump().unwrap());
    }

    #[test]
    fn the_index_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(30);
        {
            let index = Index::open(dir.path().join("index")).unwrap();
            index.apply_all(&recs).unwrap();
            index.flush().unwrap();
        }
        let index = Index::open(dir.path().join("index")).unwrap();
        assert_eq!(index.indexed().unwrap(), 30);
        assert_eq!(index.get(29).unwrap().as_ref(), Some(&recs[29]));
    }
}
