#!/usr/bin/env bash
# Fuzzes the audit crate's decoders of untrusted bytes (RELIABILITY.md,
# "Bad input") with cargo-fuzz: log frames, records, Merkle proofs and
# checkpoint notes, one target after another.
#   scripts/fuzz-audit.sh              every target for 60 seconds
#   scripts/fuzz-audit.sh 300          every target for 300 seconds
#   scripts/fuzz-audit.sh 60 frame_decode record_decode
# Installs cargo-fuzz (pinned) if it is missing. Runs on the stable
# toolchain: RUSTC_BOOTSTRAP=1 lets it take the nightly-only flags
# (sanitizer, coverage instrumentation) that cargo-fuzz passes.
# A crash stops the run and leaves its input in audit/fuzz/artifacts/<target>/;
# fix the bug and add it as a named regression test in audit/tests/it/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo_fuzz_version=0.13.2
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_decode record_decode proof_verify checkpoint_parse)
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz-audit: seconds must be a whole number, not '$seconds'" >&2; exit 2 ;;
esac

if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  echo "fuzz-audit: installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --version "=$cargo_fuzz_version" --locked
fi
export RUSTC_BOOTSTRAP=1

# Seed corpora: a real framed log, records and a checkpoint note, signed with
# the targets' fixed key. Regenerated each run; what the fuzzer adds stays.
cargo run --quiet --locked -p ballast-audit --example fuzz_seeds -- audit/fuzz/corpus

logs=audit/fuzz/target/fuzz-logs
mkdir -p "$logs"
summary=()
for target in "${targets[@]}"; do
  echo "fuzz-audit: $target for ${seconds}s"
  (cd audit && cargo fuzz run "$target" -- -max_total_time="$seconds") 2>&1 | tee "$logs/$target.log"
  summary+=("$target: $(grep -E '^Done [0-9]+ runs' "$logs/$target.log" | tail -n 1)")
done
echo "fuzz-audit: no crashes"
printf '  %s\n' "${summary[@]}"
