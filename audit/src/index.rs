//! The sled index over the log: derived, never the source of truth, and
//! rebuildable from the log at any time (`ballast audit reindex`).
//!
//! One sled tree holds every index under a one-byte prefix, so that a
//! record's entries and the count of indexed records (`indexed`) go in one
//! atomic sled batch: after a crash the index is either before or after a
//! record, never half of it, and catching up replays the log from
//! `indexed`. Applying a record twice writes the same keys again.
//!
//! The log stays the only copy of the records: the index holds where each
//! record's frame is in the log file ([`Span`]) and reads it from there
//! (checksum, then decoding) when asked for a record.
//!
//! Keys sort as the queries read them (big-endian integers, times as
//! nanoseconds since 1970 offset to be unsigned):
//!
//! | prefix | key after the prefix | value |
//! |---|---|---|
//! | `r` | page | per seq of the page, in order: time, kind, frame offset, frame length |
//! | `a` | account, time, seq | |
//! | `k` | kind, seq (all kinds but `decision`, the bulk of a log: its seqs are those of no other kind) | |
//! | `i` | IPS id (length-prefixed), version, page | the page's seqs made under that IPS version |
//! | `b` | batch id, seq | |
//! | `x` | tx hash, seq | |
//! | `c` | checkpoint size | the anchoring record's seq |
//! | `m` | `indexed` | number of records indexed |
//!
//! A page is [`PAGE`] consecutive seqs, keyed by its first. The entry every
//! record has (`r`) is packed by page, and so are IPS keys (decisions, registrations): a
//! batch of records costs sled one `r` write for them all, and one `i`
//! write per IPS version in a page (one per decision where each client has
//! an IPS of its own, far fewer where many share one). Pages are fixed by
//! seq, never by how records arrive, so an index kept one record at a time
//! and one rebuilt in any chunks hold the same entries. Adding to a page
//! indexed before reads its entry and writes it back longer: one writer at
//! a time (the agent's), as for every index here.
//!
//! There is no key by time: a log's times never go back (it refuses a
//! record older than the one before), so the records of a time range are a
//! range of seqs, found by binary search over the times in `r`.

use std::{
    borrow::Cow,
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    error::{Error, Result},
    frame::{self, Span},
    log::Entry,
    record::{Kind, Record},
    timestamp::Timestamp,
};

const RECORD: u8 = b'r';
const ACCOUNT: u8 = b'a';
const KIND: u8 = b'k';
const IPS: u8 = b'i';
const BATCH: u8 = b'b';
const TX: u8 = b'x';
const CHECKPOINT: u8 = b'c';
const META: u8 = b'm';
const INDEXED: &[u8] = b"mindexed";

/// Seqs per page of the packed entries (`r` and `i`).
pub const PAGE: u64 = 256;

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

/// The body members [`Keys`] are read from.
const KEY_MEMBERS: [&[u8]; 8] = [b"account", b"accounts", b"batch_id", b"ips", b"ips_id", b"size", b"tx_hash", b"version"];

impl Keys {
    /// Reads the keys of a record from its body: `account` and `accounts`
    /// (decisions, IPS registrations, approvals, settlements), `ips.id` and
    /// `ips.version` (decisions) or `ips_id` and `version` (registrations),
    /// `batch_id`, `tx_hash`, and `size` of an anchored checkpoint.
    pub fn of(record: &Record) -> Keys {
        Self::of_body(record.kind, &record.body)
    }

    /// [`Keys::of`] a body of `kind`.
    pub fn of_body(kind: Kind, body: &Value) -> Keys {
        let mut accounts: Vec<u64> = body.get("account").and_then(Value::as_u64).into_iter().collect();
        if let Some(list) = body.get("accounts").and_then(Value::as_array) {
            accounts.extend(list.iter().filter_map(Value::as_u64));
        }
        accounts.sort_unstable();
        accounts.dedup();
        let ips = match kind {
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
            checkpoint: (kind == Kind::CheckpointAnchored).then(|| body.get("size").and_then(Value::as_u64)).flatten(),
        }
    }

    /// [`Keys::of_body`] of a body in canonical text, from its top-level
    /// `members` (key, and the range of `"key":value`): only the members
    /// keys are read from are parsed.
    pub(crate) fn of_members(kind: Kind, text: &[u8], members: &[(&[u8], std::ops::Range<usize>)]) -> Keys {
        let mut read = serde_json::Map::new();
        for (key, range) in members {
            if KEY_MEMBERS.contains(key) {
                let value = &text[range.start + key.len() + 3..range.end];
                if let Ok(value) = serde_json::from_slice(value) {
                    read.insert(String::from_utf8_lossy(key).into_owned(), value);
                }
            }
        }
        Self::of_body(kind, &Value::Object(read))
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

/// One seq's part of an `r` value: time key, kind byte, frame offset,
/// frame length.
const RECORD_VALUE_LEN: usize = 16 + 1 + 8 + 4;

/// The frame span an `r` entry holds (after time and kind).
fn span_of(entry: &[u8; RECORD_VALUE_LEN]) -> Span {
    Span {
        offset: u64::from_be_bytes(entry[17..25].try_into().expect("8 bytes")),
        len: u32::from_be_bytes(entry[25..].try_into().expect("4 bytes")),
    }
}

/// The first seq of `seq`'s page, as a key part.
fn page_of(seq: u64) -> [u8; 8] {
    (seq - seq % PAGE).to_be_bytes()
}

/// The packed entries a batch adds to, by full key: each starts as what the
/// tree holds and grows by the batch's records.
struct Pages {
    entries: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// The first seq not indexed before the batch: a page starting at or
    /// after it has nothing in the tree yet.
    fresh_from: u64,
}

impl Pages {
    fn new(fresh_from: u64) -> Self {
        Self { entries: std::collections::BTreeMap::new(), fresh_from }
    }

    /// Appends `bytes` to the entry `key` of the page of `seq`.
    fn append(&mut self, tree: &sled::Tree, key: Vec<u8>, seq: u64, bytes: &[u8]) -> Result<()> {
        if let Some(value) = self.entries.get_mut(&key) {
            value.extend_from_slice(bytes);
            return Ok(());
        }
        let mut value = if seq - seq % PAGE >= self.fresh_from {
            Vec::new()
        } else {
            tree.get(&key).map_err(|e| index_error("reading a page".into(), e))?.map_or_else(Vec::new, |v| v.to_vec())
        };
        value.extend_from_slice(bytes);
        self.entries.insert(key, value);
        Ok(())
    }

    fn write(self, batch: &mut sled::Batch) {
        for (key, value) in self.entries {
            batch.insert(key, value);
        }
    }
}

/// Where a record is: what its `r` entry holds, and its seq.
#[derive(Debug, Clone, Copy)]
struct Place {
    seq: u64,
    time: Timestamp,
    kind: Kind,
    span: Span,
}

/// The sled index over one log file.
#[derive(Debug, Clone)]
pub struct Index {
    db: sled::Db,
    tree: sled::Tree,
    /// The log the spans point into.
    log: PathBuf,
}

/// Opens the sled database in `path`. sled locks the folder; the lock of a
/// handle just dropped (its flusher thread ends shortly after) or briefly
/// held by a child process being spawned is waited for, up to
/// [`LOCK_WAIT`].
fn open_db(path: &Path) -> std::result::Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(e)) if (e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn opening_error(path: &Path, e: sled::Error) -> Error {
    let locked = matches!(&e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"));
    index_error(format!("opening {}{}", path.display(), if locked { " (locked by another process?)" } else { "" }), e)
}

impl Index {
    /// Opens (or creates) the index in the directory `path`, over the log
    /// file `log`.
    ///
    /// sled locks the folder; the lock of a handle just dropped (its
    /// flusher thread ends shortly after) or briefly held by a child process
    /// being spawned is waited for, up to [`LOCK_WAIT`].
    pub fn open(path: impl AsRef<Path>, log: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let db = open_db(path).map_err(|e| opening_error(path, e))?;
        Self::with_db(db, log.as_ref())
    }

    /// [`Index::open`], except that an index sled finds corrupt is moved
    /// aside to `<path>.corrupt-<unix nanoseconds>` and a new, empty one is
    /// opened in its place, which its owner then fills from the log (the
    /// index is derived). sled 0.34 can leave a corrupt index after the
    /// process is killed (spacejam/sled#1509, #1533; the agent's
    /// random-kill test met one). Returns where the corrupt one went.
    pub fn open_or_replace(path: impl AsRef<Path>, log: impl AsRef<Path>) -> Result<(Self, Option<PathBuf>)> {
        let path = path.as_ref();
        let opening = |e| opening_error(path, e);
        match open_db(path) {
            Ok(db) => Ok((Self::with_db(db, log.as_ref())?, None)),
            Err(sled::Error::Corruption { .. }) => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                let aside = PathBuf::from(format!("{}.corrupt-{nanos}", path.display()));
                std::fs::rename(path, &aside).map_err(Error::io("moving aside", path))?;
                let db = open_db(path).map_err(opening)?;
                Ok((Self::with_db(db, log.as_ref())?, Some(aside)))
            }
            Err(e) => Err(opening(e)),
        }
    }

    /// An index in memory only, over the log file `log`, for tests and
    /// one-off checks.
    pub fn temporary(log: impl AsRef<Path>) -> Result<Self> {
        let db = sled::Config::new().temporary(true).open().map_err(|e| index_error("opening a temporary index".into(), e))?;
        Self::with_db(db, log.as_ref())
    }

    fn with_db(db: sled::Db, log: &Path) -> Result<Self> {
        // `-v4`: `r` and `i` packed by page. Older trees (`-v1` held copies
        // of the records, `-v2` one `r` and `i` entry per record, `-v3` `r`
        // packed and `i` per record) are dropped; the new one starts empty
        // and catches up from the log.
        for old in ["ballast-index-v1", "ballast-index-v2", "ballast-index-v3"] {
            db.drop_tree(old).map_err(|e| index_error("dropping an old index tree".into(), e))?;
        }
        let tree = db.open_tree("ballast-index-v4").map_err(|e| index_error("opening the index tree".into(), e))?;
        Ok(Self { db, tree, log: log.to_path_buf() })
    }

    /// How many records (seq 0 to `indexed() - 1`) the index holds.
    pub fn indexed(&self) -> Result<u64> {
        let v = self.tree.get(INDEXED).map_err(|e| index_error("reading `indexed`".into(), e))?;
        Ok(v.map(|b| u64::from_be_bytes(b.as_ref().try_into().unwrap_or([0; 8]))).unwrap_or(0))
    }

    /// Where the frame of the last indexed record ends in the log: the log's
    /// length when the index is up to date (0 for an empty index).
    pub fn covered_bytes(&self) -> Result<u64> {
        let indexed = self.indexed()?;
        let Some(last) = indexed.checked_sub(1) else {
            return Ok(0);
        };
        let entry = self.entry(last)?.ok_or(Error::IndexGap { indexed, seq: last })?;
        Ok(span_of(&entry).end())
    }

    /// Indexes `record`, whose frame is at `span` in the log, which must be
    /// the next one (`seq == indexed()`); a record already indexed is
    /// skipped (replays are idempotent).
    pub fn apply(&self, record: &Record, span: Span) -> Result<()> {
        self.apply_all([(record, span)]).map(drop)
    }

    /// Indexes every record of `records` (each with its frame's span) not
    /// yet indexed, in one sled batch.
    pub fn apply_all<'a>(&self, records: impl IntoIterator<Item = (&'a Record, Span)>) -> Result<u64> {
        self.apply_each(records.into_iter().map(|(r, span)| (Place { seq: r.seq, time: r.time, kind: r.kind, span }, Cow::Owned(Keys::of(r)))))
    }

    /// [`Index::apply_all`] for what [`crate::Log::append_entries`] returned.
    pub fn apply_entries<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) -> Result<u64> {
        self.apply_each(entries.into_iter().map(|e| (Place { seq: e.seq, time: e.time, kind: e.kind, span: e.span }, Cow::Borrowed(&e.keys))))
    }

    /// Indexes each record (where it is, and its keys) not yet indexed, in
    /// one sled batch.
    fn apply_each<'a>(&self, items: impl Iterator<Item = (Place, Cow<'a, Keys>)>) -> Result<u64> {
        let mut next = self.indexed()?;
        let start = next;
        let mut batch = sled::Batch::default();
        let mut pages = Pages::new(next);
        for (at, keys) in items {
            if at.seq < next {
                continue;
            }
            if at.seq > next {
                return Err(Error::IndexGap { indexed: next, seq: at.seq });
            }
            self.entries(at, &keys, &mut batch, &mut pages)?;
            next += 1;
        }
        if next == start {
            return Ok(0);
        }
        pages.write(&mut batch);
        batch.insert(INDEXED, &next.to_be_bytes());
        self.tree.apply_batch(batch).map_err(|e| index_error(format!("indexing records {start} to {}", next - 1), e))?;
        Ok(next - start)
    }

    fn entries(&self, at: Place, keys: &Keys, batch: &mut sled::Batch, pages: &mut Pages) -> Result<()> {
        let page = page_of(at.seq);
        let seq = at.seq.to_be_bytes();
        let time = time_key(at.time);
        let kind = kind_byte(at.kind);
        let mut value = [0u8; RECORD_VALUE_LEN];
        value[..16].copy_from_slice(&time);
        value[16] = kind;
        value[17..25].copy_from_slice(&at.span.offset.to_be_bytes());
        value[25..].copy_from_slice(&at.span.len.to_be_bytes());
        pages.append(&self.tree, key(RECORD, &[&page]), at.seq, &value)?;
        if at.kind != Kind::Decision {
            batch.insert(key(KIND, &[&[kind], &seq]), &[]);
        }
        for account in &keys.accounts {
            batch.insert(key(ACCOUNT, &[&account.to_be_bytes(), &time, &seq]), &[]);
        }
        if let Some((id, version)) = &keys.ips {
            let mut k = ips_prefix(id);
            k.extend_from_slice(&version.to_be_bytes());
            k.extend_from_slice(&page);
            pages.append(&self.tree, k, at.seq, &seq)?;
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

    /// `seq`'s part of its page's `r` value, if indexed.
    fn entry(&self, seq: u64) -> Result<Option<[u8; RECORD_VALUE_LEN]>> {
        let page = self.tree.get(key(RECORD, &[&page_of(seq)])).map_err(|e| index_error(format!("reading record {seq}"), e))?;
        let Some(page) = page else {
            return Ok(None);
        };
        if page.len() % RECORD_VALUE_LEN != 0 {
            return Err(malformed(format!("reading record {seq}")));
        }
        let at = (seq % PAGE) as usize * RECORD_VALUE_LEN;
        Ok(page.get(at..at + RECORD_VALUE_LEN).map(|e| e.try_into().expect("the length asked for")))
    }

    /// The record at `seq`, read from the log.
    pub fn get(&self, seq: u64) -> Result<Option<Record>> {
        let Some(entry) = self.entry(seq)? else {
            return Ok(None);
        };
        let log = File::open(&self.log).map_err(Error::io("open", &self.log))?;
        self.read(&log, seq, &entry).map(Some)
    }

    /// The records of `seqs`, in that order, read from the log.
    pub fn records(&self, seqs: &[u64]) -> Result<Vec<Record>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let log = File::open(&self.log).map_err(Error::io("open", &self.log))?;
        seqs.iter()
            .map(|&seq| {
                let entry = self.entry(seq)?.ok_or(Error::IndexGap { indexed: self.indexed()?, seq })?;
                self.read(&log, seq, &entry)
            })
            .collect()
    }

    /// Reads the frame an `r` entry points at and decodes its record,
    /// which must be record `seq`.
    fn read(&self, log: &File, seq: u64, entry: &[u8; RECORD_VALUE_LEN]) -> Result<Record> {
        let Span { offset, len } = span_of(entry);
        let stale = |reason: String| Error::Index {
            what: format!("reading record {seq} at offset {offset} of {}", self.log.display()),
            reason: format!("{reason}; the index does not match the log (rebuild it with `ballast audit reindex`)"),
        };
        let mut frame = vec![0; len as usize];
        log.read_exact_at(&mut frame, offset).map_err(|e| stale(e.to_string()))?;
        let (payload, end) = frame::read_frame(&frame, 0).map_err(|defect| stale(defect.to_string()))?;
        if end != frame.len() {
            return Err(stale(format!("a frame of {end} bytes where the index says {len}")));
        }
        let record: Record = serde_json::from_slice(payload).map_err(|e| stale(e.to_string()))?;
        if record.seq != seq {
            return Err(stale(format!("record {} is there", record.seq)));
        }
        Ok(record)
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
        if kind != Kind::Decision {
            return self.seqs_with_prefix(&[KIND, kind_byte(kind)]);
        }
        // Decisions, most of a log, have no `k` keys: they are the seqs of
        // no other kind.
        let mut others = Vec::new();
        for other in Kind::ALL.into_iter().filter(|k| *k != Kind::Decision) {
            others.extend(self.seqs_with_prefix(&[KIND, kind_byte(other)])?);
        }
        others.sort_unstable();
        let mut others = others.into_iter().peekable();
        Ok((0..self.indexed()?).filter(|seq| others.next_if_eq(seq).is_none()).collect())
    }

    /// Seqs of the records made under an IPS (any version, or one), by
    /// version, then seq.
    pub fn by_ips(&self, id: &str, version: Option<u32>) -> Result<Vec<u64>> {
        let mut prefix = ips_prefix(id);
        if let Some(v) = version {
            prefix.extend_from_slice(&v.to_be_bytes());
        }
        let what = || format!("reading the records of IPS {id}");
        let mut seqs = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (_, page) = kv.map_err(|e| index_error(what(), e))?;
            if page.len() % 8 != 0 {
                return Err(malformed(what()));
            }
            seqs.extend(page.chunks_exact(8).map(be_u64));
        }
        Ok(seqs)
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
        let indexed = self.indexed()?;
        let first = self.first_at_or_after(from, indexed)?;
        let end = self.first_at_or_after(until, indexed)?;
        Ok((first..end.max(first)).collect())
    }

    /// The first seq below `indexed` whose time is at or after `t`
    /// (`indexed` if none): a binary search, since times never go back.
    fn first_at_or_after(&self, t: Timestamp, indexed: u64) -> Result<u64> {
        let wanted = time_key(t);
        let (mut lo, mut hi) = (0, indexed);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.entry(mid)?.ok_or(Error::IndexGap { indexed, seq: mid })?;
            if entry[..16] < wanted[..] {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
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

/// An entry of the wrong length: not what this version writes.
fn malformed(what: String) -> Error {
    Error::Index { what, reason: "a malformed entry (rebuild the index)".into() }
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
            if r.kind == Kind::IpsRegistered {
                self.by_ips.entry((b["ips_id"].as_str().unwrap().into(), b["version"].as_u64().unwrap() as u32)).or_default().push(r.seq);
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

    /// A log of `n` records of every kind the index reads (IPS registrations
    /// and decisions both found by IPS version), over 7 accounts,
    /// 3 IPS and 5 batches, their times non-decreasing: the folder it is
    /// in, its path, and the records it holds with their frames' spans.
    fn records(n: u64) -> (tempfile::TempDir, PathBuf, Vec<Record>, Vec<Span>) {
        let signer = Signer::from_seed(&[5; 32]);
        let ring = crate::KeyRing::single(signer.verifying_key()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let (mut log, _) = crate::Log::open(&path, Signer::from_seed(&[5; 32]), crate::SyncPolicy::EveryN(100), ring.clone()).unwrap();
        let mut t = Timestamp::parse("2026-12-01T00:00:00Z").unwrap().unix_nanos();
        for seq in 0..n {
            let r = mix(seq);
            t += i128::from(r % 3) * 1_000_000_000;
            let batch = format!("{:064x}", r % 5);
            let (kind, body) = match r % 6 {
                5 => (Kind::IpsRegistered, serde_json::json!({"account": r % 7, "ips_id": format!("ips-{}", r % 3), "version": 1 + (r >> 8) % 2})),
                0 | 1 => (Kind::Decision, serde_json::json!({"account": r % 7, "ips": {"id": format!("ips-{}", r % 3), "version": 1 + (r >> 8) % 2}})),
                2 => (Kind::SettlementSubmitted, serde_json::json!({"batch_id": batch, "tx_hash": format!("{:064X}", r), "accounts": [r % 7, (r >> 4) % 7]})),
                3 => (Kind::SettlementConfirmed, serde_json::json!({"batch_id": batch, "tx_hash": format!("{:064x}", r >> 3)})),
                _ => (Kind::CheckpointAnchored, serde_json::json!({"size": seq, "root": "00", "tx_hash": format!("{:064x}", r)})),
            };
            log.append(kind, &body, Timestamp::from_unix_nanos(t).unwrap()).unwrap();
        }
        let written = log.spans().to_vec();
        drop(log);
        let read = crate::read::read_log(&path, &ring).unwrap();
        // The spans the writer kept are the ones a reader finds.
        assert_eq!(written, read.spans);
        (dir, path, read.records, read.spans)
    }

    fn with_spans<'a>(recs: &'a [Record], spans: &'a [Span]) -> impl Iterator<Item = (&'a Record, Span)> {
        recs.iter().zip(spans.iter().copied())
    }

    #[test]
    fn queries_equal_a_plain_model_and_a_rebuild_equals_the_incremental_index() {
        let (_dir, log, recs, spans) = records(400);
        let index = Index::temporary(&log).unwrap();
        let mut model = Model::default();
        for (r, span) in with_spans(&recs, &spans) {
            index.apply(r, span).unwrap();
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

        assert_eq!(index.records(&[7, 3, 399]).unwrap(), vec![recs[7].clone(), recs[3].clone(), recs[399].clone()]);
        let rebuilt = Index::temporary(&log).unwrap();
        assert_eq!(rebuilt.apply_all(with_spans(&recs, &spans)).unwrap(), 400);
        assert_eq!(rebuilt.dump().unwrap(), index.dump().unwrap());
        // Chunks that start and end inside pages pack the same entries.
        assert!(recs.len() as u64 > PAGE && !PAGE.is_multiple_of(97));
        let chunked = Index::temporary(&log).unwrap();
        for (r, s) in recs.chunks(97).zip(spans.chunks(97)) {
            chunked.apply_all(with_spans(r, s)).unwrap();
        }
        assert_eq!(chunked.dump().unwrap(), index.dump().unwrap());
    }

    #[test]
    fn a_corrupt_index_is_moved_aside_and_replaced_by_an_empty_one() {
        let (dir, log, recs, spans) = records(50);
        let path = dir.path().join("index");
        {
            let index = Index::open(&path, &log).unwrap();
            index.apply_all(with_spans(&recs, &spans)).unwrap();
            index.flush().unwrap();
        }
        // sled's flusher thread outlives the handle briefly.
        std::thread::sleep(LOCK_WAIT / 10);
        // Every byte of sled's files after their first eight garbled.
        for f in std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()) {
            let mut bytes = std::fs::read(&f).unwrap();
            for b in bytes.iter_mut().skip(8) {
                *b ^= 0x5a;
            }
            std::fs::write(&f, bytes).unwrap();
        }
        assert!(matches!(Index::open(&path, &log), Err(Error::Index { .. })), "sled finds the damage");
        let (index, aside) = Index::open_or_replace(&path, &log).unwrap();
        let aside = aside.expect("moved aside");
        assert!(aside.is_dir() && aside.to_string_lossy().contains("index.corrupt-"), "{}", aside.display());
        assert_eq!(index.indexed().unwrap(), 0, "a new, empty index");
        assert_eq!(index.apply_all(with_spans(&recs, &spans)).unwrap(), 50);
        let rebuilt = Index::temporary(&log).unwrap();
        rebuilt.apply_all(with_spans(&recs, &spans)).unwrap();
        assert_eq!(index.dump().unwrap(), rebuilt.dump().unwrap());
        drop(index);
        // A sound index opens as it is.
        let (index, aside) = Index::open_or_replace(&path, &log).unwrap();
        assert_eq!((aside, index.indexed().unwrap()), (None, 50));
    }

    #[test]
    fn an_index_of_appended_entries_equals_a_rebuild_from_the_records() {
        let (dir, _, recs, spans) = records(300);
        let path = dir.path().join("again.log");
        let signer = Signer::from_seed(&[5; 32]);
        let ring = crate::KeyRing::single(signer.verifying_key()).unwrap();
        let (mut log, _) = crate::Log::open(&path, signer, crate::SyncPolicy::EveryN(100), ring).unwrap();
        let index = Index::temporary(&path).unwrap();
        for chunk in recs.chunks(64) {
            let batch: Vec<_> = chunk.iter().map(|r| (r.kind, &r.body, r.time)).collect();
            index.apply_entries(&log.append_entries(&batch).unwrap()).unwrap();
        }
        assert_eq!(log.spans(), &spans[..]);
        let rebuilt = Index::temporary(&path).unwrap();
        rebuilt.apply_all(with_spans(&recs, &spans)).unwrap();
        assert_eq!(index.dump().unwrap(), rebuilt.dump().unwrap());
        assert_eq!(index.get(299).unwrap().as_ref(), Some(&recs[299]));
    }

    #[test]
    fn replays_are_idempotent_and_gaps_refused() {
        let (_dir, log, recs, spans) = records(50);
        let all = |from: usize, to: usize| with_spans(&recs[from..to], &spans[from..to]);
        let index = Index::temporary(&log).unwrap();
        assert_eq!(index.apply_all(all(0, 20)).unwrap(), 20);
        let before = index.dump().unwrap();
        // Replaying what is indexed changes nothing.
        assert_eq!(index.apply_all(all(0, 20)).unwrap(), 0);
        index.apply(&recs[5], spans[5]).unwrap();
        assert_eq!(index.dump().unwrap(), before);
        // Skipping a record is refused and leaves the index as it was.
        assert!(matches!(index.apply(&recs[21], spans[21]), Err(Error::IndexGap { indexed: 20, seq: 21 })));
        assert!(matches!(index.apply_all(all(21, 50)), Err(Error::IndexGap { indexed: 20, seq: 21 })));
        assert_eq!(index.dump().unwrap(), before);
        // Catching up from the middle (a replay from an older point) works.
        assert_eq!(index.apply_all(all(10, 50)).unwrap(), 30);
        let full = Index::temporary(&log).unwrap();
        full.apply_all(all(0, 50)).unwrap();
        assert_eq!(index.dump().unwrap(), full.dump().unwrap());
    }

    #[test]
    fn the_index_survives_a_reopen() {
        let (dir, log, recs, spans) = records(30);
        {
            let index = Index::open(dir.path().join("index"), &log).unwrap();
            index.apply_all(with_spans(&recs, &spans)).unwrap();
            index.flush().unwrap();
        }
        let index = Index::open(dir.path().join("index"), &log).unwrap();
        assert_eq!(index.indexed().unwrap(), 30);
        assert_eq!(index.covered_bytes().unwrap(), std::fs::metadata(&log).unwrap().len());
        assert_eq!(Index::temporary(&log).unwrap().covered_bytes().unwrap(), 0);
        assert_eq!(index.get(29).unwrap().as_ref(), Some(&recs[29]));
        // An index over a log that lost its tail says so instead of
        // answering from whatever bytes are there.
        let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        file.set_len(spans[29].offset + 10).unwrap();
        assert!(matches!(index.get(29), Err(Error::Index { .. })), "{:?}", index.get(29));
        file.set_len(spans[28].offset).unwrap();
        let err = index.get(28).unwrap_err().to_string();
        assert!(err.contains("reindex"), "{err}");
    }
}
