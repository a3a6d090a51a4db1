#!/usr/bin/env bash
# Sets up and runs every test: the forge unit, fuzz and invariant tests of the
# contracts, then the cargo workspace tests (unit tests, the artifact check and
# the end-to-end tests against a real Anvil node on 127.0.0.1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The npm toolchain; `cargo test` builds the Rust side itself (a separate
# `cargo build` first would compile much of it twice: tests unify features
# differently).
bash scripts/setup.sh --no-build

echo "test: forge test (contracts)"
(cd contracts && node_modules/.bin/forge test)

# One build from scratch gains nothing from incremental caches, which were a
# quarter of the test build's disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
echo "test: cargo test (workspace)"
cargo test --locked --workspace
