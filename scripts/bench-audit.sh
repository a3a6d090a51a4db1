#!/usr/bin/env bash
# Measures audit-log throughput on decision-sized records (append with
# signing, an fsync every 64 records and the sled index; full verification
# on 1 thread and on every core; the one-record-at-a-time reference once)
# and writes the table into docs/BENCHMARKS.md. Speed needs the release
# build. The log is written under the system's temporary directory; pass
# --dir DIR to measure another disk's fsync.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --release
exec target/release/ballast bench audit --reference --write docs/BENCHMARKS.md "$@"
