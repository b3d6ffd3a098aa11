#!/usr/bin/env bash
# Runs a Catch2 test executable as N processes side by side, each on its share of the tests:
#
#   scripts/run_shards.sh N <tests executable> [<test spec>]
#
# The test names the spec selects (all when none is given) are dealt out in turn to N shards,
# each run by one process (`<executable> -f <names>`). Before running, every shard's list is
# checked to select exactly its names (a name Catch2 would parse as something else fails here, not
# as a test silently left out); after all have finished, each shard's summary is printed (its
# whole output when it failed), and the script fails when any shard fails. scripts/test.sh runs
# the instrumented suite this way, one shard per core.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ] || ! [ "$1" -ge 1 ] 2>/dev/null; then
  echo "usage: $0 <shards, >= 1> <Catch2 test executable> [<test spec>]" >&2
  exit 2
fi
shards=$1 exe=$2 spec=${3:-}
[ -x "$exe" ] || { echo "$0: '$exe' is not an executable" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
list() { if [ -n "$spec" ]; then "$exe" --list-test-names-only "$spec"; else "$exe" --list-test-names-only; fi; }
# (Catch2 v2 exits with the number of tests it listed, hence the || true.)
{ list || true; } | sed '/^$/d' > "$work/all"
total=$(wc -l < "$work/all")
[ "$total" -gt 0 ] || { echo "$0: no test of '$exe' matches '${spec:-everything}'" >&2; exit 1; }
# Catch2 reads each line of -f as a quoted test name, in which ',' '[' and ']' still need a
# backslash (as catch_discover_tests writes them).
sed -e 's/[][,]/\\&/g' "$work/all" | awk -v dir="$work" -v n="$shards" '{ print > (dir "/names." ((NR - 1) % n)) }'
for f in "$work"/names.*; do
  want=$(wc -l < "$f")
  got=$({ "$exe" -f "$f" --list-test-names-only || true; } | sed '/^$/d' | wc -l)
  if [ "$want" != "$got" ]; then
    echo "$0: shard $(basename "$f") lists $want names but selects $got tests" >&2
    exit 1
  fi
done
count=$(find "$work" -name 'names.*' | wc -l)
echo "== $total tests in $count shards of $exe"
start=$(date +%s)
for f in "$work"/names.*; do
  (
    rc=0
    "$exe" -f "$f" > "$f.log" 2>&1 || rc=$?
    echo "$rc $(($(date +%s) - start))" > "$f.end"
  ) &
done
wait
status=0
for f in "$work"/names.*[0-9]; do
  read -r rc seconds < "$f.end"
  echo "== shard ${f##*.} ($(wc -l < "$f") tests, $seconds s): exit code $rc"
  # (Catch2 first prints the whole filter, one long line: left out.) A passing shard's summary
  # is its last line; a failing shard's whole output follows.
  if [ "$rc" = 0 ]; then
    grep -v '^Filters: ' "$f.log" | sed '/^$/d' | tail -n 1
  else
    grep -v '^Filters: ' "$f.log"
    status=1
  fi
done
exit $status
