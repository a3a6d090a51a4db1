#!/usr/bin/env bash
# Measures settlement gas on a fresh Anvil devnet and writes the table into
# docs/BENCHMARKS.md. Gas does not depend on the Rust build profile.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec target/debug/ballast bench gas --write docs/BENCHMARKS.md "$@"
