//! Named regression tests: one per bug that fuzzing or the crash test found,
//! each with the input or the situation that showed it.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
};

use ballast_audit::{Log, SyncPolicy};

use crate::{append_fixture_records, ring_a, signer_a};

/// Found by `crash::a_killed_appender_keeps_every_durable_record`, which
/// made `log::every_cut_inside_the_last_frame_recovers_the_records_before_it`
/// fail with `Locked` when both ran at once: a process spawned by another
/// thread holds a copy of every open file, the log's locked one included,
/// from its fork until its exec closes them, so a log closed and reopened
/// meanwhile found itself locked by nobody that writes.
#[test]
fn regression_crash_reopen_is_not_locked_out_by_a_process_spawned_meanwhile() {
    const REOPENS: usize = 300;
    const MAX_SPAWNS: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let (mut log, _) = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a()).unwrap();
    append_fixture_records(&mut log, 0, 1);
    drop(log);
    let done = AtomicBool::new(false);
    let spawns = thread::scope(|s| {
        let spawner = s.spawn(|| {
            let mut spawns = 0;
            while !done.load(Ordering::Relaxed) && spawns < MAX_SPAWNS {
                Command::new("true").stdout(Stdio::null()).status().unwrap();
                spawns += 1;
            }
            spawns
        });
        for i in 0..REOPENS {
            let opened = Log::open(&path, signer_a(), SyncPolicy::EveryRecord, ring_a());
            assert!(opened.is_ok(), "reopen {i}: {:?}", opened.err());
        }
        done.store(true, Ordering::Relaxed);
        spawner.join().unwrap()
    });
    assert!(spawns > 0);
}
