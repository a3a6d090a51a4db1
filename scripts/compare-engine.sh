#!/usr/bin/env bash
# Compares the decision engine's one-thread speed at another revision with
# the working tree's, taking turns, because this kind of machine's speed
# moves by a third within minutes and two runs minutes apart compare
# nothing. Each round runs the `profile` example of both builds (the same
# synthetic book, three runs each, the best kept) one after the other.
#
#   bash scripts/compare-engine.sh REVISION [ROUNDS] [ACCOUNTS]
#
# The other revision is checked out in a temporary worktree and built into
# target/compare/ (so the working tree's target/ is not rebuilt); both must
# have `agent/engine/examples/profile.rs`. `BOOK=day-after` reaches both
# builds; a revision before that book ignores it and decides the hard day.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rev="${1:?usage: compare-engine.sh REVISION [ROUNDS] [ACCOUNTS]}"
rounds="${2:-8}"
accounts="${3:-20000}"
tree="$(mktemp -d)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git worktree add --detach --quiet "$tree" "$rev"
echo "building the profile example at $rev and in the working tree" >&2
(cd "$tree" && CARGO_TARGET_DIR="$root/target/compare" cargo build --quiet --release -p ballast-engine --example profile)
cargo build --quiet --release -p ballast-engine --example profile
best() { "$1" "$accounts" 3 | grep -o '[0-9]* accounts/s' | sort -n | tail -1 | cut -d' ' -f1; }
old_sum=0 new_sum=0 wins=0
for round in $(seq 1 "$rounds"); do
  old="$(best target/compare/release/examples/profile)"
  new="$(best target/release/examples/profile)"
  echo "round $round/$rounds: $rev $old accounts/s, working tree $new accounts/s"
  old_sum=$((old_sum + old)) new_sum=$((new_sum + new))
  if [ "$new" -gt "$old" ]; then wins=$((wins + 1)); fi
done
echo "mean over $rounds rounds: $rev $((old_sum / rounds)), working tree $((new_sum / rounds)) accounts/s; the working tree was faster in $wins"
