#!/usr/bin/env bash
# Sets up, then brings up a local Anvil devnet on 127.0.0.1 with every
# contract deployed and funded client accounts, prints the deployment
# manifest and keeps running until Ctrl-C. Arguments go to `ballast devnet up`
# (see `ballast devnet up --help`), e.g. --accounts 100 --exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh --release
exec target/release/ballast devnet up "$@"
