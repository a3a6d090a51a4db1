#!/usr/bin/env bash
# The README's main command. Sets up (npm ci in contracts/, release build),
# then runs `ballast demo`: an embedded Anvil devnet on 127.0.0.1, the
# contracts and the Uniswap V2 venue deployed, 1,000 client accounts
# onboarded, the agent run through a scripted market (calm days, a 20 %
# equity drop, a recovery), a report, and the whole log verified against
# the chain. Arguments go to `ballast demo` (see `ballast demo --help`),
# e.g. --accounts 200 --json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh --release
exec target/release/ballast demo "$@"
