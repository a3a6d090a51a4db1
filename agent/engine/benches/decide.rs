//! Criterion benchmark of the decision engine on the two synthetic books of
//! 10,000 accounts (8 assets, 5 lots per asset): a hard day and the day
//! after, on one core and on every core. `cargo bench -p ballast-engine`;
//! `ballast bench engine` prints accounts/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn decide(c: &mut Criterion) {
    let accounts = 10_000;
    let now = time::macros::datetime!(2026-11-21 15:00 UTC);
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(accounts as u64));
    group.sample_size(10);
    for (book, inputs) in [("hard_day", ballast_engine::synthetic::book(accounts, now)), ("day_after", ballast_engine::synthetic::day_after(accounts, now))] {
        for threads in [1, std::thread::available_parallelism().map_or(1, |n| n.get())] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            group.bench_function(format!("{book}_{accounts}_accounts_{threads}_threads"), |b| {
                b.iter(|| pool.install(|| ballast_engine::decide(&inputs).expect("decides")))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
