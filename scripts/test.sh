#!/usr/bin/env bash
# The README's test command (and CI's, through .ci/run). Installs the dependencies, then:
#   1. builds everything (Release, -Wall -Wextra -Wpedantic -Werror) with MPI (cellflow::mpi) and
#      runs every test, the MPI ones (ctest -L mpi, several ranks under mpiexec) included;
#   2. builds the library, the suite, the allocation counter and the fuzz replays again with
#      clang, AddressSanitizer + UndefinedBehaviorSanitizer (-O0, own targets only, in
#      build-asan/; no examples or benchmarks) and without MPI
#      (-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON), and runs them: so CI also proves that cellflow
#      builds and passes its tests where MPI is missing;
#   3. runs each libFuzzer target (IDX, checkpoint, .npz readers) for FUZZ_SECONDS (default 20)
#      from its seed corpus (scripts/fuzz.sh).
#
#   scripts/test.sh              all three (about 11 to 17 minutes on 2 cores; CONTRIBUTING.md has figures)
#   scripts/test.sh --quick      step 1 only
#   scripts/test.sh -R gradcheck extra arguments go to ctest in steps 1 and 2
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
if [ $quick = 1 ]; then
  scripts/install-deps.sh
else
  scripts/install-deps.sh clang libclang-rt-14-dev libomp-14-dev clang-format
fi
jobs=$(nproc)
start=$(date +%s)

echo "== 1/3 release build, warnings as errors"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_WERROR=ON -DCELLFLOW_UNITY_TESTS=ON -DCELLFLOW_COMPILED_OPTIONS=-O1 \
  -DCELLFLOW_BENCHMARK_OPTIONS=-O0 "-DCELLFLOW_EXAMPLE_OPTIONS=-O1;-Wno-uninitialized"
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
[ $quick = 1 ] && exit 0

echo "== 2/3 AddressSanitizer + UndefinedBehaviorSanitizer ($(($(date +%s) - start)) s so far)"
# Clang (the release build is GCC's, so both compilers build everything warning-free): its
# instrumented build takes 0.6x GCC's time here and its suite runs in half the time. -O0 without
# debug info: clang compiles the instrumented suite 3x faster at -O0 than at -O1 (37 s against
# 109 s of CPU for tests/test_bidirectional.cpp) and runs it 1.5x slower (0.81 s against 0.55 s),
# and the sanitizers see at least as much unoptimised; -g makes this build 2.4x slower (-g1 1.2x)
# on 2 cores; reports still name the functions, and a finding is reproduced locally with
# CMAKE_CXX_FLAGS=-g. CELLFLOW_ALLOW_UNOPTIMIZED silences the unoptimised-build notice. Baseline ISA: the
# -march=native kernel path is covered by the release build. The package tests build their own
# uninstrumented consumers, and the docs tests compile samples of their own: both run in the
# release build only. Without MPI (as if it were not installed): everything that does not need
# cellflow::mpi must build and pass without it, and this stage is where CI checks that (the
# package tests' package_no_optional_deps checks the installed package without MPI). Open MPI's
# runtime would also need LeakSanitizer suppressions: a singleton run of
# tests/package/consumer/mpi_allreduce.cpp leaks 122 KB in 3357 allocations inside Open MPI 4.1.
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0" -DCELLFLOW_SANITIZE=ON -DCELLFLOW_WERROR=ON \
  -DCELLFLOW_UNITY_TESTS=ON -DCELLFLOW_BUILD_BENCHMARKS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF \
  -DCELLFLOW_NATIVE_ARCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON
cmake --build build-asan -j"$jobs"
# The Catch2 suite runs as one process per core (not one per test: ASan's start-up per process
# would then dominate), its test names dealt out in turn (scripts/run_shards.sh), then the fuzz
# corpora and the allocation count. Tests tagged [long] (a training run that checks learning: 100 s
# instrumented against 3 s in the release stage) run in the release stage only, and so do the
# examples: the suite covers the library code they call (Model, fit, save and load, the data readers)
# under the sanitizers, and building them instrumented cost about 80 s of CI's 20 minutes.
# LLVM's OpenMP runtime keeps a few per-thread buffers to the end of the process
# (tests/lsan-suppressions.txt); every other leak fails.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan-suppressions.txt CELLFLOW_ALLOW_UNOPTIMIZED=1
if [ $# -eq 0 ]; then
  scripts/run_shards.sh "$jobs" build-asan/tests/cellflow_tests "~[long]"
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -R "^(fuzz_regression_.*|alloc_per_time_step)$"
else
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -E "^(headers_self_contained|package_.*|docs_.*|format_check)$" "$@"
fi

echo "== 3/3 fuzzing, ${FUZZ_SECONDS:-20} s per target ($(($(date +%s) - start)) s so far)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "== all passed in $(($(date +%s) - start)) s"
