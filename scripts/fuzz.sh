#!/usr/bin/env bash
# Builds cellflow's libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs each for a bounded time, starting from the seed corpus in tests/fuzz/corpus/<target>.
# The targets are built, then run, as many at a time as there are cores (FUZZ_JOBS overrides).
#
#   scripts/fuzz.sh              every target, 60 s each
#   scripts/fuzz.sh 300 idx      one target, 5 minutes
#
# New interesting inputs go to build-fuzz/corpus/<target> (not the repository). A crash, a leak,
# an uncaught exception other than the parser's documented error, or an input that makes the
# parser allocate more than the limits below is a finding: the input is saved as
# build-fuzz/crashes/<target>/crash-*, the script prints it and exits 1. Copy a fixed finding
# into tests/fuzz/regressions/<target>/ so that ctest replays it forever (fuzz_regression_*).
# Needs: clang and libclang-rt-14-dev, zlib1g-dev, libeigen3-dev (scripts/test.sh installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=${*:-"idx checkpoint npz"}
out=${FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${CLANGXX:-clang++}
jobs=${FUZZ_JOBS:-$(nproc)}
mkdir -p "$out"

# Runs "$@" for every target, at most $jobs at a time; fails if any failed.
each_target() {
  local pids=() names=() failed=0
  for t in $targets; do
    "$@" "$t" &
    pids+=($!)
    names+=("$t")
    if [ ${#pids[@]} -ge "$jobs" ]; then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  return $failed
}

build() {
  local t=$1 src=$root/tests/fuzz/fuzz_$1.cpp
  [ -f "$src" ] || { echo "fuzz.sh: no target $t ($src)" >&2; return 2; }
  "$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/include" -isystem /usr/include/eigen3 "$src" -o "$out/fuzz_$t" -lz
  echo "== built fuzz_$t"
}

run() {
  local t=$1 log=$out/fuzz_$1.log
  mkdir -p "$out/corpus/$t" "$out/crashes/$t"
  if ! "$out/fuzz_$t" "$out/corpus/$t" "$root/tests/fuzz/corpus/$t" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -artifact_prefix="$out/crashes/$t/" -print_final_stats=1 > "$log" 2>&1; then
    echo "fuzz_$t: FINDING (see $log and $out/crashes/$t/)" >&2
    tail -40 "$log" >&2
    return 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb" "$log" | sed "s/^/fuzz_$t /" || true
  echo "fuzz_$t: corpus $(ls "$out/corpus/$t" | wc -l) inputs, crashes $(ls "$out/crashes/$t" | wc -l)"
}

echo "== building: $targets ($jobs at a time)"
each_target build
echo "== running each for ${seconds}s ($jobs at a time)"
each_target run
