#!/usr/bin/env bash
# examples/mnist_minimal on a few hundred digits for one epoch: it prints the seed program's line
# ("1 Last batch accuracy: A Test accuracy: B", epochs numbered from 1) and nothing else, and A
# and B are exactly what mnist_rnn prints for the same model, data, seed and threads (the two
# programs are one model).
# A bad command line is exit status 2, a bad data directory exit status 1.
# The data: the first 300 training and 150 test digits of DATA_DIR, and --limit 150: one batch,
# so that the run stays short under the sanitizers (each program takes about 20 s there, for
# the seed model's 3 x 150 units).
# usage: example_minimal.sh MNIST_MINIMAL MNIST_RNN DATA_DIR WORK_DIR
set -u
minimal=$1 mnist=$2 shipped=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
data=$work/small
mkdir -p "$data"
be32() { printf "\\x%02x\\x%02x\\x%02x\\x%02x" $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
first() {  # first SET N: the first N digits of SET (train or t10k) as raw IDX files
  local set=$1 n=$2
  { printf '\x00\x00\x08\x03'; printf "$(be32 "$n")"; printf '\x00\x00\x00\x1c\x00\x00\x00\x1c'
    gzip -dc "$shipped/$set-images-idx3-ubyte.gz" 2>/dev/null | tail -c +17 | head -c $((n * 784)); } > "$data/$set-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; printf "$(be32 "$n")"
    gzip -dc "$shipped/$set-labels-idx1-ubyte.gz" 2>/dev/null | tail -c +9 | head -c "$n"; } > "$data/$set-labels-idx1-ubyte"
}
first train 300
first t10k 150
fails=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

out=$("$minimal" "$data" --limit 150 --epochs 1)
status=$?
echo "$out"
check "exit status 0" test $status -eq 0
check "one line: the seed program's" \
  bash -c '[[ "$1" =~ ^"1 Last batch accuracy: "[01]\.[0-9]{4}" Test accuracy: "[01]\.[0-9]{4}$ ]]' _ "$out"
rnn=$("$mnist" --data "$data" --limit 150 --epochs 1 | grep "^1 Last batch accuracy" | sed 's/   (.*//')
check "the same accuracies as mnist_rnn ($rnn)" test "$out" = "$rnn"

"$minimal" --epochs 1x > /dev/null 2>&1
check "a bad --epochs is exit status 2" test $? -eq 2
err=$("$minimal" /nonexistent-dir --epochs 1 2>&1 > /dev/null)
status=$?
check "a missing data directory is exit status 1 and one line naming it" \
  bash -c '[ "$1" -eq 1 ] && [ "$(printf "%s\n" "$2" | grep -c .)" -eq 1 ] && [[ "$2" == *nonexistent-dir* ]]' _ $status "$err"

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "mnist_minimal trains and reports as the seed program does"
