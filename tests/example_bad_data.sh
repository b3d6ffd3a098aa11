#!/usr/bin/env bash
# Runs examples/mnist_rnn on broken data directories: each must fail with exit status 1 and a
# one-line error naming the file and the problem, without a crash or a giant allocation
# (the run is limited to 1 GiB of address space, except under AddressSanitizer).
# usage: example_bad_data.sh MNIST_RNN SHIPPED_DATA_DIR WORK_DIR
set -u
bin=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
failures=0
# AddressSanitizer reserves terabytes of address space up front, so under it the 1 GiB limit is
# left out (its allocator still refuses a giant allocation with an error, failing the case).
limit=1048576
if grep -qa "__asan_init" "$bin" || ldd "$bin" 2>/dev/null | grep -q libasan; then limit=unlimited; fi

# make_dir NAME: a copy of the shipped data in $work/NAME
make_dir() { mkdir -p "$work/$1" && cp "$data"/*.gz "$work/$1/"; }

# expect NAME PATTERN...: mnist_rnn --data $work/NAME fails with one line matching every PATTERN
expect() {
  local name=$1
  shift
  local err rc lines
  err=$( (ulimit -v "$limit"; "$bin" --data "$work/$name" --epochs 1 --limit 10) 2>&1 >/dev/null)
  rc=$?
  lines=$(printf '%s\n' "$err" | grep -c .)
  local ok=1
  [ "$rc" -eq 1 ] || ok=0
  [ "$lines" -eq 1 ] || ok=0
  for p in "$@"; do printf '%s' "$err" | grep -q -- "$p" || ok=0; done
  if [ $ok -eq 1 ]; then
    echo "ok   $name: $err"
  else
    echo "FAIL $name (exit $rc, $lines lines; wanted: $*): $err"
    failures=$((failures + 1))
  fi
}

# 1. a missing file
make_dir missing && rm "$work/missing/t10k-labels-idx1-ubyte.gz"
expect missing "t10k-labels-idx1-ubyte" "no IDX file"

# 2. a truncated file (raw, cut in the middle of the pixels)
make_dir truncated && gzip -dc "$data/train-images-idx3-ubyte.gz" | head -c 100000 > "$work/truncated/train-images-idx3-ubyte"
rm "$work/truncated/train-images-idx3-ubyte.gz"
expect truncated "train-images-idx3-ubyte" "truncated"

# 3. a truncated gzip stream
make_dir truncated_gz && head -c 20000 "$data/t10k-images-idx3-ubyte.gz" > "$work/truncated_gz/t10k-images-idx3-ubyte.gz"
expect truncated_gz "t10k-images-idx3-ubyte.gz" "gzip"

# 4. wrong magic: a label file where the images should be
make_dir magic && cp "$data/train-labels-idx1-ubyte.gz" "$work/magic/train-images-idx3-ubyte.gz"
expect magic "train-images-idx3-ubyte.gz" "wrong magic"

# 5. a label out of range (10 in a 10-class set)
make_dir label && { printf '\x00\x00\x08\x01\x00\x00\x07\xd0'; gzip -dc "$data/t10k-labels-idx1-ubyte.gz" | tail -c +9 | head -c 1999; printf '\x0a'; } > "$work/label/t10k-labels-idx1-ubyte"
rm "$work/label/t10k-labels-idx1-ubyte.gz"
expect label "t10k-labels-idx1-ubyte" "label" "10"

# 6. image and label counts disagree
make_dir count && cp "$data/t10k-labels-idx1-ubyte.gz" "$work/count/train-labels-idx1-ubyte.gz"
expect count "train-images-idx3-ubyte.gz" "train-labels-idx1-ubyte.gz" "8000" "2000"

# 7. a header claiming 2^31 - 1 images in a tiny file
make_dir huge && printf '\x00\x00\x08\x03\x7f\xff\xff\xff\x00\x00\x00\x1c\x00\x00\x00\x1c' > "$work/huge/train-images-idx3-ubyte"
rm "$work/huge/train-images-idx3-ubyte.gz"
expect huge "train-images-idx3-ubyte"

# 8. a directory that does not exist
expect does-not-exist "does-not-exist" "missing directory"

if [ $failures -ne 0 ]; then
  echo "$failures bad-data case(s) failed"
  exit 1
fi
echo "all bad-data cases give a clear one-line error"
