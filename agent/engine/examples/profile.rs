//! Decides a synthetic book on one thread, for profilers and for checking
//! that a change leaves the decisions as they were:
//!
//! ```text
//! cargo build --release -p ballast-engine --example profile
//! valgrind --tool=callgrind target/release/examples/profile 2000 1
//! DECISIONS=out.jsonl target/release/examples/profile 3000 1   # the decisions, one JSON line each
//! ```
//!
//! Arguments: accounts (default 20,000) and runs (default 3). Each run
//! prints its time; `ballast bench engine` is the benchmark of record.
//! `BOOK=day-after` decides `synthetic::day_after` instead of the hard
//! day's `synthetic::book`. `FLOOR=1` also times, on the same thread, what
//! the output alone costs: copying the decisions just made (their
//! allocations and bytes, with no deciding), and writing them as JSON.

/// The `ballast` binary's allocator: instruction counts match its benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let accounts = args.next().unwrap_or(20_000);
    let runs = args.next().unwrap_or(3);
    let now = time::macros::datetime!(2026-11-21 15:00 UTC);
    let inputs = match std::env::var("BOOK").as_deref() {
        Ok("day-after") => ballast_engine::synthetic::day_after(accounts, now),
        Ok("hard-day") | Err(_) => ballast_engine::synthetic::book(accounts, now),
        Ok(other) => panic!("BOOK is hard-day (the default) or day-after, not {other}"),
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let decisions = pool.install(|| ballast_engine::decide(&inputs)).expect("the book decides");
        let secs = started.elapsed().as_secs_f64();
        let trades: usize = decisions.iter().map(|d| d.trades.len()).sum();
        println!("{accounts} accounts in {secs:.3} s on one thread: {:.0} accounts/s, {trades} trades", accounts as f64 / secs);
        if std::env::var_os("FLOOR").is_some() {
            let rate = |work: &(dyn Fn() -> usize + Sync)| {
                let started = std::time::Instant::now();
                let n = pool.install(work);
                (accounts as f64 / started.elapsed().as_secs_f64(), n)
            };
            let (copies, _) = rate(&|| decisions.to_vec().len());
            let (json, bytes) = rate(&|| decisions.iter().map(|d| serde_json::to_vec(d).expect("a decision serializes").len()).sum());
            println!(
                "  copying the decisions: {copies:.0} accounts/s ({:.0} % of deciding); their JSON: {json:.0} accounts/s, {} bytes each",
                100.0 * accounts as f64 / secs / copies,
                bytes / accounts
            );
        }
        if let Some(path) = std::env::var_os("DECISIONS") {
            let lines: String = decisions.iter().map(|d| serde_json::to_string(d).expect("a decision serializes") + "\n").collect();
            std::fs::write(path, lines).expect("writing the decisions");
        }
    }
}
