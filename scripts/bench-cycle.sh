#!/usr/bin/env bash
# Times one full agent cycle (ingest, decide, record, settle, anchor,
# index) for 10,000 accounts on an Anvil devnet and writes the table into
# docs/BENCHMARKS.md. Speed needs the release build. Extra arguments go to
# `ballast bench cycle` (e.g. --accounts 2000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --release
exec target/release/ballast bench cycle --write docs/BENCHMARKS.md "$@"
