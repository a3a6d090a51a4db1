#!/usr/bin/env bash
# Measures decision-engine throughput (accounts per second, 1 thread and every
# core) on a synthetic book and writes the table into docs/BENCHMARKS.md.
# Speed needs the release build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --release
exec target/release/ballast bench engine --write docs/BENCHMARKS.md "$@"
