#!/usr/bin/env bash
# The README's test command: installs the dependencies, builds everything with warnings as
# errors, and runs every test with CTest. Extra arguments go to ctest (e.g. -R gradcheck).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
