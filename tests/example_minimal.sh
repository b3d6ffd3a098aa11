#!/usr/bin/env bash
# examples/mnist_minimal on a few hundred digits for one epoch: it prints the seed program's line
# ("0 Last batch accuracy: A Test accuracy: B") and nothing else, and A and B are exactly what
# mnist_rnn prints for the same model, data, seed and threads (the two programs are one model).
# A bad command line is exit status 2, a bad data directory exit status 1.
# usage: example_minimal.sh MNIST_MINIMAL MNIST_RNN DATA_DIR
set -u
minimal=$1 mnist=$2 data=$3
fails=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

out=$("$minimal" "$data" --limit 300 --epochs 1)
status=$?
echo "$out"
check "exit status 0" test $status -eq 0
check "one line: the seed program's" \
  bash -c '[[ "$1" =~ ^"0 Last batch accuracy: "[01]\.[0-9]{4}" Test accuracy: "[01]\.[0-9]{4}$ ]]' _ "$out"
rnn=$("$mnist" --data "$data" --limit 300 --epochs 1 | grep "^0 Last batch accuracy" | sed 's/   (.*//')
check "the same accuracies as mnist_rnn ($rnn)" test "$out" = "$rnn"

"$minimal" --epochs 1x > /dev/null 2>&1
check "a bad --epochs is exit status 2" test $? -eq 2
err=$("$minimal" /nonexistent-dir --epochs 1 2>&1 > /dev/null)
status=$?
check "a missing data directory is exit status 1 and one line naming it" \
  bash -c '[ "$1" -eq 1 ] && [ "$(printf "%s\n" "$2" | grep -c .)" -eq 1 ] && [[ "$2" == *nonexistent-dir* ]]' _ $status "$err"

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "mnist_minimal trains and reports as the seed program does"
