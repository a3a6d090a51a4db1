//! Quick throughput probe: `cargo run --release -p ballast-engine --example throughput -- 20000`.
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let inputs = ballast_engine::synthetic::book(n, time::macros::datetime!(2026-11-21 15:00 UTC));
    let start = std::time::Instant::now();
    let decisions = ballast_engine::decide(&inputs).expect("decides");
    let secs = start.elapsed().as_secs_f64();
    let trades: usize = decisions.iter().map(|d| d.trades.len()).sum();
    println!("{n} accounts in {secs:.3} s: {:.0} accounts/s, {trades} trades", n as f64 / secs);
}
