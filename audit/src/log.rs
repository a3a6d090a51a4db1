//! The append-only log file: framed, signed, hash-chained records.
//!
//! Opening verifies the whole file ([`crate::verify`]); a torn tail is copied
//! aside and cut off, anything else wrong is an integrity error and the log
//! stays closed. Appends go through the OS page cache and are fsync'd by the
//! [`SyncPolicy`]; [`Log::barrier`] fsyncs whatever is pending and is what
//! the agent calls before anything goes on-chain. One writer at a time: the
//! file is locked while a [`Log`] holds it.

use std::{
    fmt,
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::{
    body::RecordBody,
    error::{Error, Result},
    frame::{self, Span},
    index::Keys,
    keys::{KeyRing, Signer},
    merkle::Hash,
    read::VerifiedLog,
    record::{Draft, Kind, Record},
    timestamp::Timestamp,
    verify::{self, ChainState, TornTail},
};

/// Batches of fewer records than this are made on the calling thread:
/// handing work to rayon's pool costs more than one record's signature.
const PARALLEL_FROM: usize = 4;

/// `f` of each item, in order: on rayon's threads for a batch, on the
/// calling thread below [`PARALLEL_FROM`] items.
fn per_record<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> Result<U> + Sync + Send) -> Result<Vec<U>> {
    if items.len() >= PARALLEL_FROM {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}

/// What [`Log::append_entries`] tells of a record it appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub hash: Hash,
    pub time: Timestamp,
    pub kind: Kind,
    /// Where its frame is in the file.
    pub span: Span,
    /// What the index finds it under.
    pub keys: Keys,
}

/// When appended records are fsync'd (besides [`Log::barrier`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// After every record.
    EveryRecord,
    /// Once `n` records are pending (0 and 1 mean every record).
    EveryN(u32),
    /// On an append at least this many milliseconds after the last fsync.
    /// Nothing fsyncs on a timer: an idle log keeps its last records
    /// pending until the next append or barrier.
    EveryMillis(u64),
}

/// The function that makes a file's written data durable. The default is
/// `File::sync_data` (fdatasync: data and the size, not the mtime); tests
/// replace it to count or fail fsyncs.
pub type FsyncFn = Box<dyn FnMut(&File) -> io::Result<()> + Send>;

/// What [`Log::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// The file did not exist and was created.
    pub created: bool,
    /// Records verified (and now in the log).
    pub records: u64,
    /// A torn final frame that was cut off.
    pub torn_tail: Option<TornTail>,
    /// Where the torn bytes were saved before the cut.
    pub torn_copy: Option<PathBuf>,
}

/// An open, verified log, appended to by one signer.
pub struct Log {
    path: PathBuf,
    file: File,
    signer: Signer,
    keyring: KeyRing,
    policy: SyncPolicy,
    fsync: FsyncFn,
    /// Where the last record ends.
    head: ChainState,
    /// Hashes of all records, in order (the Merkle tree's leaf data).
    hashes: Vec<Hash>,
    /// Where each record's frame is, in order.
    spans: Vec<Span>,
    /// File length in bytes: the end of the last whole frame.
    len_bytes: u64,
    /// Records written since the last fsync.
    unsynced: u64,
    last_sync: Instant,
    fsyncs: u64,
    /// Set when a write or fsync failed: what is on disk is unknown.
    poisoned: bool,
}

impl Log {
    /// Opens (or creates) the log at `path`, verifies every record against
    /// `keyring`, cuts a torn tail (saving its bytes beside the log) and
    /// fsyncs what it verified. `signer` signs the records appended from now
    /// on; `keyring` must trust it at the times it appends. On an integrity
    /// error the file is left untouched and no `Log` is returned; a file
    /// another writer holds is [`Error::Locked`] after [`LOCK_WAIT`].
    pub fn open(
        path: impl AsRef<Path>,
        signer: Signer,
        policy: SyncPolicy,
        keyring: KeyRing,
    ) -> Result<(Log, OpenReport)> {
        Self::open_inner(path.as_ref(), signer, policy, keyring, false).map(|(log, report, _)| (log, report))
    }

    /// [`Log::open`], and the records it verified, decoded (what a writer
    /// that rebuilds state from its log needs, without reading it twice).
    pub fn open_reading(
        path: impl AsRef<Path>,
        signer: Signer,
        policy: SyncPolicy,
        keyring: KeyRing,
    ) -> Result<(Log, OpenReport, VerifiedLog)> {
        Self::open_inner(path.as_ref(), signer, policy, keyring, true)
            .map(|(log, report, read)| (log, report, read.expect("asked to decode")))
    }

    fn open_inner(
        path: &Path,
        signer: Signer,
        policy: SyncPolicy,
        keyring: KeyRing,
        decode: bool,
    ) -> Result<(Log, OpenReport, Option<VerifiedLog>)> {
        let path = path.to_path_buf();
        let (mut file, created) = open_or_create(&path)?;
        lock(&file, &path)?;
        if created {
            sync_parent_dir(&path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(Error::io("read", &path))?;
        let summary = verify::verify_records(&bytes, &keyring)?;
        let mut torn_copy = None;
        if let Some(torn) = summary.torn_tail {
            // Keep the evidence: the cut bytes go to a side file first.
            torn_copy = Some(save_torn_bytes(&path, torn.offset, &bytes[torn.offset as usize..])?);
            file.set_len(torn.offset).map_err(Error::io("truncate", &path))?;
        }
        // What was read may be a dead writer's unsynced pages: make it
        // durable before anything is built on it (and the cut, if any).
        file.sync_all().map_err(Error::io("fsync", &path))?;
        let report = OpenReport { created, records: summary.records(), torn_tail: summary.torn_tail, torn_copy };
        let read = if decode { Some(crate::read::decode(&bytes, summary.clone())?) } else { None };
        let spans = match &read {
            Some(read) => read.spans.clone(),
            None => frame::spans(&bytes, summary.valid_len),
        };
        let log = Log {
            path,
            file,
            signer,
            keyring,
            policy,
            fsync: Box::new(|f: &File| f.sync_data()),
            head: summary.end,
            hashes: summary.hashes,
            spans,
            len_bytes: summary.valid_len,
            unsynced: 0,
            last_sync: Instant::now(),
            fsyncs: 0,
            poisoned: false,
        };
        Ok((log, report, read))
    }

    /// Replaces the function that fsyncs the file (see [`FsyncFn`]).
    pub fn with_fsync(mut self, fsync: impl FnMut(&File) -> io::Result<()> + Send + 'static) -> Self {
        self.fsync = Box::new(fsync);
        self
    }

    /// Signs and appends the next record, of `kind` with `body` (any
    /// `Serialize` that makes a JSON object), at `time`, then fsyncs if the
    /// policy says so. The record is written but only durable after an fsync:
    /// call [`Log::barrier`] before acting on it outside the process.
    pub fn append<B: Serialize + Sync + ?Sized>(&mut self, kind: Kind, body: &B, time: Timestamp) -> Result<Record> {
        let mut records = self.append_batch(&[(kind, body, time)])?;
        Ok(records.pop().expect("one record per entry"))
    }

    /// Appends `entries` (kind, body, time) in order, as many
    /// [`Log::append`]s would, in one write, with the fsync policy applied
    /// once at the end. What each record needs of itself alone (its body's
    /// JSON, its canonical bytes) and the signatures are made on rayon's
    /// threads; only the hashes, which chain the records, are made in order.
    /// All or nothing: if any entry is refused (a body that is not a JSON
    /// object, a time before the last, a key not valid at its time) nothing
    /// is written.
    pub fn append_batch<B: Serialize + Sync + ?Sized>(&mut self, entries: &[(Kind, &B, Timestamp)]) -> Result<Vec<Record>> {
        let drafts = self.drafts(entries.iter().collect(), |e| e.2, |key_id, seq, &(kind, body, time)| Draft::new(key_id, seq, time, kind, body))?;
        self.write_drafts(drafts, |record| record)
    }

    /// [`Log::append_batch`] with bodies already in JSON, which become the
    /// records' bodies without a copy.
    pub fn append_values(&mut self, entries: Vec<(Kind, Value, Timestamp)>) -> Result<Vec<Record>> {
        let drafts = self.drafts(entries, |e| e.2, |key_id, seq, (kind, body, time)| Draft::of_value(key_id, seq, time, kind, body))?;
        self.write_drafts(drafts, |record| record)
    }

    /// [`Log::append_batch`] for a caller that keeps its bodies: what the
    /// log tells of each record is its [`Entry`] (seq, hash, time, kind,
    /// where its frame is, its index keys), not a copy of the record. A
    /// body that serializes straight to canonical text (a JSON value, or a
    /// struct with its fields in sorted order) never becomes a JSON tree
    /// on the way. The bytes written are [`Log::append_batch`]'s.
    pub fn append_entries<B: Serialize + Sync + ?Sized>(&mut self, entries: &[(Kind, &B, Timestamp)]) -> Result<Vec<Entry>> {
        let first = self.head.next_seq;
        let drafts = self.drafts(entries.iter().collect(), |e| e.2, |key_id, seq, &(kind, body, time)| Draft::lean(key_id, seq, time, kind, body))?;
        let (drafts, keys): (Vec<Draft>, Vec<Keys>) = drafts.into_iter().unzip();
        self.write_drafts(drafts, drop)?;
        let entry = |(i, keys): (usize, Keys)| {
            let at = first as usize + i;
            Entry { seq: at as u64, hash: self.hashes[at], time: entries[i].2, kind: entries[i].0, span: self.spans[at], keys }
        };
        Ok(keys.into_iter().enumerate().map(entry).collect())
    }

    /// Admits a batch ([`Log::admit`]) and makes each item's draft with
    /// `make` (key id, seq, item): on rayon's threads for a batch.
    fn drafts<T: Send, D: Send>(
        &self,
        items: Vec<T>,
        time: impl Fn(&T) -> Timestamp,
        make: impl Fn(&str, u64, T) -> Result<D> + Sync + Send,
    ) -> Result<Vec<D>> {
        self.admit(items.iter().map(time))?;
        let (key_id, first) = (self.signer.key_id(), self.head.next_seq);
        per_record(items.into_iter().zip(first..).collect(), |(item, seq)| make(key_id, seq, item))
    }

    /// Refuses a batch when the log is poisoned, or one of its times goes
    /// back or falls outside the signer's key window.
    fn admit(&self, times: impl Iterator<Item = Timestamp>) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let mut last = self.head.last_time;
        for time in times {
            if let Some(previous) = last
                && time < previous
            {
                return Err(Error::ClockBehind { previous, requested: time });
            }
            if self.keyring.key_at(self.signer.key_id(), time).is_err() {
                return Err(Error::SignerNotValid { key_id: self.signer.key_id().to_owned(), time });
            }
            last = Some(time);
        }
        Ok(())
    }

    /// Links `drafts` after the head in order, seals them (in parallel for
    /// a batch), writes their frames at once and applies the fsync policy;
    /// returns what `keep` makes of each record, on the thread that sealed it.
    fn write_drafts<T: Send>(&mut self, mut drafts: Vec<Draft>, keep: impl Fn(Record) -> T + Sync + Send) -> Result<Vec<T>> {
        let mut prev = self.head.prev;
        let mut hashes = Vec::with_capacity(drafts.len());
        for d in &mut drafts {
            prev = d.link(prev)?;
            hashes.push(prev);
        }
        let Some(head) = drafts.last().map(Draft::head) else {
            return Ok(Vec::new());
        };
        let signer = &self.signer;
        let sealed = per_record(drafts, |d| {
            let (record, frame) = d.seal(signer)?;
            Ok((keep(record), frame))
        })?;
        let (kept, frames): (Vec<T>, Vec<Vec<u8>>) = sealed.into_iter().unzip();
        let mut spans = Vec::with_capacity(frames.len());
        let mut end = self.len_bytes;
        for frame in &frames {
            spans.push(Span { offset: end, len: frame.len() as u32 });
            end += frame.len() as u64;
        }
        self.write(&frames)?;
        self.len_bytes = end;
        self.head = head;
        self.unsynced += hashes.len() as u64;
        self.hashes.extend(hashes);
        self.spans.extend(spans);
        if self.sync_due() {
            self.sync()?;
        }
        Ok(kept)
    }

    /// [`Log::append`] with a typed body.
    pub fn append_body<B: RecordBody + Sync>(&mut self, body: &B, time: Timestamp) -> Result<Record> {
        self.append(B::KIND, body, time)
    }

    /// Makes every appended record durable (fsync, if any is pending).
    pub fn barrier(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.unsynced > 0 {
            self.sync()?;
        }
        Ok(())
    }

    /// Records in the log.
    pub fn len(&self) -> u64 {
        self.head.next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the log ends: next seq, last hash, last time.
    pub fn head(&self) -> ChainState {
        self.head
    }

    /// Every record's hash, in order: the Merkle leaves' data
    /// ([`Record::leaf_data`]).
    pub fn record_hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Where each record's frame is in the file, in order (what
    /// [`crate::Index`] keeps).
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Records appended but not yet fsync'd.
    pub fn unsynced(&self) -> u64 {
        self.unsynced
    }

    /// fsyncs of appended records since the log was opened, by the policy
    /// or [`Log::barrier`] (not the one `open` does).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// File length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `checkpoint` as a C2SP signed note, signed by the log's key.
    pub fn sign_checkpoint(&self, checkpoint: &crate::Checkpoint) -> Result<String> {
        checkpoint.sign(&self.signer)
    }

    pub fn key_id(&self) -> &str {
        self.signer.key_id()
    }

    fn sync_due(&self) -> bool {
        match self.policy {
            SyncPolicy::EveryRecord => true,
            SyncPolicy::EveryN(n) => self.unsynced >= u64::from(n.max(1)),
            SyncPolicy::EveryMillis(ms) => self.last_sync.elapsed() >= Duration::from_millis(ms),
        }
    }

    fn sync(&mut self) -> Result<()> {
        self.fsyncs += 1;
        if let Err(e) = (self.fsync)(&self.file) {
            // After a failed fsync the kernel may have dropped the dirty
            // pages and will not report it again: only reading the file back
            // tells what is durable.
            self.poisoned = true;
            return Err(Error::io("fsync", &self.path)(e));
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes `frames` at the end of the file, in as few `writev` calls as
    /// the system allows.
    fn write(&mut self, frames: &[Vec<u8>]) -> Result<()> {
        if let Err(e) = write_all_vectored(&mut self.file, frames) {
            // Take back a partial frame so the next append does not land
            // after garbage; if even that fails, stop writing.
            if self.file.set_len(self.len_bytes).is_err() {
                self.poisoned = true;
            }
            return Err(Error::io("append to", &self.path)(e));
        }
        Ok(())
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("path", &self.path)
            .field("key_id", &self.signer.key_id())
            .field("policy", &self.policy)
            .field("head", &self.head)
            .field("len_bytes", &self.len_bytes)
            .field("unsynced", &self.unsynced)
            .field("fsyncs", &self.fsyncs)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // A clean close is not a crash: make pending records durable. Errors
        // cannot be reported here; the next open verifies what is on disk.
        if !self.poisoned && self.unsynced > 0 {
            let _ = (self.fsync)(&self.file);
        }
    }
}

/// Writes every byte of `buffers` in order, with `writev` calls of at most
/// 1,024 buffers (Linux's `IOV_MAX`), going on after a short write.
fn write_all_vectored(file: &mut File, buffers: &[Vec<u8>]) -> io::Result<()> {
    const IOV_MAX: usize = 1024;
    for chunk in buffers.chunks(IOV_MAX) {
        let mut slices: Vec<io::IoSlice<'_>> = chunk.iter().map(|b| io::IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match file.write_vectored(rest) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the file took no bytes")),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// How long [`Log::open`] waits for the file lock before it reports
/// [`Error::Locked`]. A process that any thread spawns holds a copy of every
/// open file, a log's locked one included, from its fork until its exec
/// closes them; a log closed and reopened in that window finds its own old
/// lock. A second writer holds the lock for good and is still refused.
pub const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Takes the exclusive lock on the log file, waiting up to [`LOCK_WAIT`].
fn lock(file: &File, path: &Path) -> Result<()> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(25));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: path.to_path_buf() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path)(e)),
        }
    }
}

fn open_or_create(path: &Path) -> Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((options.open(path).map_err(Error::io("open", path))?, false))
        }
        Err(e) => Err(Error::io("create", path)(e)),
    }
}

/// Makes a new file's directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io("fsync directory", dir))
}

/// Saves the bytes of a torn tail at `offset` to a new side file
/// `<log>.torn-<offset>` (`.1`, `.2`, ... if that exists) and returns its path.
fn save_torn_bytes(path: &Path, offset: u64, bytes: &[u8]) -> Result<PathBuf> {
    const MAX_COPIES: u32 = 1000;
    let base = format!("{}.torn-{offset}", path.file_name().unwrap_or_default().to_string_lossy());
    for n in 0..MAX_COPIES {
        let name = if n == 0 { base.clone() } else { format!("{base}.{n}") };
        let copy = path.with_file_name(name);
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&copy) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", &copy)(e)),
        };
        f.write_all(bytes).map_err(Error::io("write", &copy))?;
        f.sync_all().map_err(Error::io("fsync", &copy))?;
        sync_parent_dir(&copy)?;
        return Ok(copy);
    }
    Err(Error::io("create", path.with_file_name(base))(io::Error::other("too many torn-tail copies")))
}
