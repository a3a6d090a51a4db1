#!/usr/bin/env bash
# Installs what Ballast needs, idempotently: the contracts' npm toolchain
# (Foundry's forge/anvil/cast, solc, OpenZeppelin, Uniswap V2) and the Rust
# build. Needs Rust (cargo) and Node.js with npm; nothing else by hand.
#   scripts/setup.sh            debug build (what the tests use)
#   scripts/setup.sh --release  release build (what the demo uses)
#   scripts/setup.sh --no-build the npm toolchain only (scripts/test.sh: cargo test builds)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' not found — $2" >&2; exit 1; }
}
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or newer"
need npm "install npm (comes with Node.js)"

# npm ci only when the lock file changed since the last install.
stamp=contracts/node_modules/.ballast-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s contracts/package-lock.json "$stamp"; then
  echo "setup: installing the contracts toolchain (npm ci in contracts/)"
  (cd contracts && npm ci --no-audit --no-fund --loglevel=error)
  cp contracts/package-lock.json "$stamp"
fi
contracts/node_modules/.bin/forge --version | head -n 1
contracts/node_modules/.bin/anvil --version | head -n 1

case "${1:-}" in
  --no-build) exit 0 ;;  # the tests build what they need themselves
  --release) profile=(--release) ;;
  *) profile=() ;;
esac
echo "setup: cargo build ${profile[*]:-(debug)}"
cargo build --locked --workspace "${profile[@]}"
