//! Approvals: an advisor's verdict on the trades a decision queued for
//! review (above the IPS approval limit, illiquid, or paused by a circuit
//! breaker).
//!
//! `ballast approvals approve|reject` does not touch the log (the running
//! agent holds it): it drops a verdict file into the data folder's
//! `approvals/` inbox. At the start of its next cycle, before deciding
//! again, the agent takes each verdict that still names the account's
//! latest waiting decision, records it (`approval_granted` or
//! `approval_rejected`), settles approved trades in a batch of their own,
//! and removes the file. A verdict on a decision that a newer one replaced
//! is moved to `approvals/refused/` with the reason beside it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{
    book::{Awaiting, Book, OpeningBook},
    config::Config,
    error::{Error, Result},
};

/// One verdict, as the inbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub account: u64,
    pub decision_seq: u64,
    /// Hex SHA-256 of the decision record the advisor saw.
    pub decision_hash: String,
    pub approve: bool,
    pub approver: String,
    /// Why, for a rejection.
    #[serde(default)]
    pub reason: String,
}

pub fn inbox(data_dir: &Path) -> PathBuf {
    data_dir.join("approvals")
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.into(), source }
}

/// Drops `verdict` into the inbox (written whole, then renamed into place).
pub fn submit(data_dir: &Path, verdict: &Verdict) -> Result<PathBuf> {
    let dir = inbox(data_dir);
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let path = dir.join(format!("{}.json", verdict.decision_seq));
    if path.exists() {
        return Err(Error::NotReady(format!("a verdict on decision {} is already waiting for the agent ({})", verdict.decision_seq, path.display())));
    }
    let tmp = dir.join(format!(".{}.json.tmp", verdict.decision_seq));
    std::fs::write(&tmp, serde_json::to_vec_pretty(verdict).expect("a verdict serializes")).map_err(io("writing", &tmp))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io("syncing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("renaming", &path))?;
    Ok(path)
}

/// The verdicts waiting in the inbox, oldest decision first. A file that
/// does not parse is moved to `refused/` and reported, not taken.
pub fn waiting(data_dir: &Path) -> Result<Vec<(PathBuf, Verdict)>> {
    let dir = inbox(data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io("listing", &dir))?.path();
        if path.extension().is_none_or(|e| e != "json") || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        let parsed = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice::<Verdict>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => out.push((path, v)),
            Err(e) => refuse(&path, &format!("not a verdict: {e}"))?,
        }
    }
    out.sort_by_key(|(_, v)| v.decision_seq);
    Ok(out)
}

/// Moves a verdict file to `refused/`, with the reason in a `.reason` file beside it.
pub fn refuse(path: &Path, reason: &str) -> Result<()> {
    tracing::warn!(target: "ballast::approvals", file = %path.display(), reason, "verdict refused");
    let dir = path.parent().unwrap_or(Path::new(".")).join("refused");
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let name = path.file_name().unwrap_or_default();
    let target = dir.join(name);
    std::fs::write(target.with_extension("reason"), reason).map_err(io("writing", &target))?;
    std::fs::rename(path, &target).map_err(io("moving", path))
}

/// Whether `verdict` names the account's decision that waits now.
pub fn check(book: &Book, verdict: &Verdict) -> std::result::Result<(), String> {
    match book.awaiting().get(&verdict.account) {
        Some(w) if w.seq == verdict.decision_seq && hex::encode(w.hash) == verdict.decision_hash.to_ascii_lowercase() => Ok(()),
        Some(w) => Err(format!(
            "decision {} of account {} no longer waits: decision {} replaced it",
            verdict.decision_seq, verdict.account, w.seq
        )),
        None => Err(format!("account {} has no decision waiting for approval", verdict.account)),
    }
}

/// The book as the log says it is now, read without the agent (for the CLI).
pub fn read_book(config: &Config) -> Result<Book> {
    let data_dir = &config.agent.data_dir;
    let keys_path = crate::agent::keys_path(data_dir);
    let text = std::fs::read_to_string(&keys_path).map_err(io("reading", &keys_path))?;
    let ring: ballast_audit::KeyRing =
        serde_json::from_str(&text).map_err(|e| Error::Log(format!("{}: {e}", keys_path.display())))?;
    let log = ballast_audit::read::read_log(&crate::agent::log_path(data_dir), &ring)?;
    let mut book = Book::new(OpeningBook::load(&config.agent.book)?);
    for r in &log.records {
        book.apply(r)?;
    }
    Ok(book)
}

/// The decision `seq`, if it waits for approval.
pub fn find(book: &Book, seq: u64) -> Option<&Awaiting> {
    book.awaiting().values().find(|w| w.seq == seq)
}
