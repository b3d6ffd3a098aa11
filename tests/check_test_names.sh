#!/usr/bin/env bash
# ctest catch_test_names: every Catch2 test name must reach ctest whole. catch_discover_tests
# hands the names to CMake as a list, so a ';' splits a name into two ctests that match no test
# case (and would pass, running nothing, without --warn NoTests), and an unbalanced '[' or ']'
# makes CMake swallow every name after it: those test cases would silently leave the release
# stage's ctest run. usage: check_test_names.sh CELLFLOW_TESTS
set -eu
# Catch2 exits with the number of names listed, so only awk's status counts (no pipefail).
"$1" --list-test-names-only | awk '
  /;/ { print "a test name holds a ;: " $0; bad = 1 }
  { o = gsub(/\[/, "["); c = gsub(/\]/, "]"); if (o != c) { print "a test name has unbalanced brackets: " $0; bad = 1 } }
  END { if (NR == 0) { print "no test names listed"; exit 1 } if (bad) exit 1; print NR " test names, each one ctest" }'
