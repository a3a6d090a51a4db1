//! Crash points (RELIABILITY.md): a name after every durable write and
//! every external call of the cycle, where a test can make the agent die.
//!
//! `BALLAST_CRASH_AT=<point>` kills the agent the first time it passes
//! `<point>`; `<point>@<n>` the n-th time. `BALLAST_CRASH_MODE=kill` (the
//! default) sends SIGKILL to the agent's own process, as `kill -9` or the
//! out-of-memory killer would: nothing is flushed, no destructor runs.
//! `BALLAST_CRASH_MODE=panic` panics instead. Without the variable a crash
//! point costs one atomic load.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

/// Every crash point, in the order a cycle passes them.
pub const POINTS: &[&str] = &[
    "recovery",
    "decisions_appended",
    "decisions_synced",
    "transaction_signed",
    "submission_recorded",
    "broadcast_sent",
    "receipt_seen",
    "confirmation_recorded",
    "checkpoint_computed",
    "anchor_sent",
    "anchor_recorded",
    "index_applied",
    "index_flushed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kill,
    Panic,
}

#[derive(Debug)]
struct Plan {
    point: String,
    nth: u64,
    mode: Mode,
}

fn plan() -> &'static Option<Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let at = std::env::var("BALLAST_CRASH_AT").ok()?;
        let (point, nth) = match at.split_once('@') {
            Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
            None => (at, 1),
        };
        let mode = match std::env::var("BALLAST_CRASH_MODE").as_deref() {
            Ok("panic") => Mode::Panic,
            _ => Mode::Kill,
        };
        Some(Plan { point, nth, mode })
    })
}

/// Refuses a `BALLAST_CRASH_AT` that names no crash point, so that a test
/// with a typo fails instead of passing without ever crashing.
pub fn check_env() -> Result<(), String> {
    match plan() {
        Some(p) if !POINTS.contains(&p.point.as_str()) => {
            Err(format!("BALLAST_CRASH_AT names `{}`, which is not a crash point: {}", p.point, POINTS.join(", ")))
        }
        _ => Ok(()),
    }
}

/// Passes the crash point `name`: dies here if a test asked for it.
pub fn point(name: &'static str) {
    static HITS: AtomicU64 = AtomicU64::new(0);
    debug_assert!(POINTS.contains(&name), "unlisted crash point {name}");
    let Some(plan) = plan() else { return };
    if plan.point != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != plan.nth {
        return;
    }
    eprintln!("crash point {name}: dying ({:?})", plan.mode);
    match plan.mode {
        Mode::Panic => panic!("injected crash at {name}"),
        Mode::Kill => {
            let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
            // SIGKILL is not instantaneous; never go on past the point.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}
