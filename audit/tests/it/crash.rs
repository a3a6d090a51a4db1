//! A writer killed at random moments (RELIABILITY.md, "Crash points": a
//! process kill, SIGKILL of a child process). The child is this test binary
//! run again with [`CHILD_ENV`] set: it opens the log and appends records
//! until it is killed, reporting on stdout each time a barrier made records
//! durable. After every kill the log must open (a torn tail cut, if any),
//! verify, hold contiguous records, keep every record reported durable and
//! every record of earlier rounds, and take new appends.
//!
//! A kill loses nothing the child wrote (the kernel keeps its page cache),
//! and one frame is one `write`, which a signal does not split; so some
//! rounds also tear the tail as a power cut would, by cutting the file
//! somewhere after the last record reported durable.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use ballast_audit::{Hash, Log, SyncPolicy, frame, record::GENESIS_PREV, verify_records};

use crate::{body_of, ring_a, signer_a, splitmix64, time_of};

/// Set (to the log's path) in the child process: append until killed.
const CHILD_ENV: &str = "BALLAST_AUDIT_CRASH_CHILD";

/// This test's name in the integration-test binary, to run it alone.
const TEST_NAME: &str = "crash::a_killed_appender_keeps_every_durable_record";

/// Children killed.
const KILLS: u64 = 20;

/// Every this many rounds the child is killed at once, without waiting for
/// it to append: a kill during start-up recovery (opening, verifying,
/// cutting a torn tail).
const EARLY_KILL_EVERY: u64 = 4;

/// The longest wait after a child's first report before it is killed.
const MAX_KILL_DELAY_MS: u64 = 30;

/// A child stops by itself after this many appends (it is killed long
/// before), or as soon as nobody reads its reports.
const MAX_CHILD_APPENDS: u64 = 100_000;

/// Every this many rounds (from round 1) the unsynced tail is torn after
/// the kill.
const TEAR_EVERY: u64 = 4;

/// The child calls a barrier every this many appends.
const BARRIER_EVERY: u64 = 5;

/// How long the parent waits for a child's first report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_killed_appender_keeps_every_durable_record() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        append_until_killed(Path::new(&path));
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    // This very binary, even if a rebuild replaced the file at its path
    // meanwhile (`/proc/self/exe` names the running inode on Linux).
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() { proc_exe.to_path_buf() } else { std::env::current_exe().unwrap() };
    // The records as of the last reopen: fsync'd by that open, so durable.
    let mut kept: Vec<Hash> = Vec::new();
    // The most records a child reported durable, and the last one's hash.
    let mut durable: (u64, Hash) = (0, GENESIS_PREV);
    let (mut torn_tails, mut child_records) = (0, 0);

    for round in 0..KILLS {
        let mut child = Killed(
            Command::new(&exe)
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("round {round}: cannot run {exe:?}: {e}")),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (reports, received) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(report) = parse_report(&line)
                    && reports.send(report).is_err()
                {
                    break;
                }
            }
        });

        let delay = Duration::from_millis(splitmix64(round) % MAX_KILL_DELAY_MS);
        if round % EARLY_KILL_EVERY == EARLY_KILL_EVERY - 1 {
            thread::sleep(delay);
        } else {
            // Let it grow the log past what the last round left, then kill
            // it somewhere in the middle of its appends.
            let first = received.recv_timeout(REPORT_TIMEOUT).expect("the child reports durable records");
            assert!(first.0 > kept.len() as u64, "round {round}: {first:?} after {} records", kept.len());
            durable = durable.max(first);
            thread::sleep(delay);
        }
        let status = child.kill_and_wait();
        assert_eq!(status.signal(), Some(9), "round {round}: the child ended by itself: {status}");
        reader.join().unwrap();
        for report in received.try_iter() {
            durable = durable.max(report);
        }
        if round % TEAR_EVERY == 1 {
            tear_after(&path, durable.0.max(kept.len() as u64), round);
        }

        let (mut log, open) = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a())
            .unwrap_or_else(|e| panic!("round {round}: the log does not open after a kill: {e}"));
        torn_tails += u64::from(open.torn_tail.is_some());
        child_records += log.len() - kept.len() as u64;
        let hashes = log.record_hashes().to_vec();
        assert!(hashes.starts_with(&kept), "round {round}: records of earlier rounds changed");
        let (n, last) = durable;
        assert!(log.len() >= n, "round {round}: {} records, {n} were reported durable", log.len());
        if n > 0 {
            assert_eq!(hashes[n as usize - 1], last, "round {round}: durable record {} changed", n - 1);
        }
        let summary = verify_records(&fs::read(&path).unwrap(), &ring_a()).unwrap();
        assert_eq!((summary.records(), summary.torn_tail), (log.len(), None), "round {round}");
        assert_eq!(summary.hashes, hashes, "round {round}");

        // The recovered log takes new appends, chained to its last record.
        let seq = log.len();
        let (kind, body) = body_of(seq);
        let record = log.append(kind, &body, time_of(seq)).unwrap();
        assert_eq!((record.seq, record.prev), (seq, hashes.last().copied().unwrap_or(GENESIS_PREV)));
        log.barrier().unwrap();
        kept = log.record_hashes().to_vec();
    }

    let (log, open) = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).unwrap();
    assert_eq!((open.records, open.torn_tail), (kept.len() as u64, None));
    assert_eq!(log.record_hashes(), &kept[..]);
    assert!(child_records > KILLS, "the children appended only {child_records} records");
    assert!(torn_tails > 0, "no round tore the tail");
    eprintln!(
        "{KILLS} kills, {child_records} records appended by children, {} in all, {torn_tails} torn tails cut, {:.1?}",
        kept.len(),
        started.elapsed()
    );
}

/// The child: appends the fixture's records from where the log ends, a
/// barrier every [`BARRIER_EVERY`], each followed by a `durable <records>
/// <last hash>` line on stdout.
fn append_until_killed(path: &Path) {
    let (mut log, _) = Log::open(path, signer_a(), SyncPolicy::EveryN(4), ring_a()).expect("the child opens the log");
    let mut out = std::io::stdout().lock();
    for i in 1..=MAX_CHILD_APPENDS {
        let seq = log.len();
        let (kind, body) = body_of(seq);
        log.append(kind, &body, time_of(seq)).expect("the child appends");
        if i % BARRIER_EVERY == 0 {
            log.barrier().expect("the child's barrier");
            let head = log.head();
            // Nobody listening any more: stop.
            if writeln!(out, "durable {} {}", head.next_seq, hex::encode(head.prev)).and_then(|()| out.flush()).is_err()
            {
                return;
            }
        }
    }
}

/// Cuts the log file at a point after its first `durable` records (whole
/// frames), short of its end, if it has any more bytes than those: what a
/// power cut can do to writes no fsync covered.
fn tear_after(path: &Path, durable: u64, salt: u64) {
    let bytes = fs::read(path).unwrap();
    let mut end = 0;
    for _ in 0..durable {
        end = frame::read_frame(&bytes, end).unwrap().1;
    }
    let unsynced = bytes.len() - end;
    if unsynced >= 2 {
        let cut = end + 1 + (splitmix64(salt ^ 0x7ea2) % (unsynced as u64 - 1)) as usize;
        fs::OpenOptions::new().write(true).open(path).unwrap().set_len(cut as u64).unwrap();
    }
}

/// A `durable <records> <hex hash>` line.
fn parse_report(line: &str) -> Option<(u64, Hash)> {
    let (records, hash) = line.strip_prefix("durable ")?.split_once(' ')?;
    Some((records.parse().ok()?, hex::decode(hash).ok()?.try_into().ok()?))
}

/// A child process that is killed if the test fails before killing it.
struct Killed(Child);

impl Killed {
    fn kill_and_wait(&mut self) -> std::process::ExitStatus {
        // `Child::kill` sends SIGKILL on Unix.
        self.0.kill().unwrap();
        self.0.wait().unwrap()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
