#!/usr/bin/env bash
# mnist_rnn's output files (--save, --csv, --plot):
# 1. A target that cannot be written (missing directory, a directory given as the file, a file
#    where the directory should be, an unwritable directory, a read-only file) is refused at
#    start-up, before the data is loaded: exit status 1, one line on stderr naming the option and
#    the path, nothing on stdout, and nothing created.
# 2. A write that fails during training (here: the file size limit, ulimit -f) is reported and
#    the other outputs are still written: the checkpoint when the CSV fails (written first, so the
#    checkpoint holds the epoch whose CSV row was lost), the CSV and the chart when the checkpoint
#    fails; then mnist_rnn stops with exit status 1. A failed write leaves the previous file
#    intact and no temporary file behind.
# usage: example_outputs.sh MNIST_RNN DATA_DIR WORK_DIR
set -u
bin=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
failures=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
tiny=(--data "$data" --limit 150 --units 1 --layers 1 --threads 1)

# refused_at_start NAME FLAG PATH TEXT: mnist_rnn FLAG PATH stops before the data is read
refused_at_start() {
  local name=$1 flag=$2 path=$3 text=$4
  "$bin" "${tiny[@]}" --epochs 1 "$flag" "$path" > "$work/out" 2> "$work/err"
  local rc=$? lines
  lines=$(grep -c . "$work/err")
  if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -qF -- "$flag: '$path': " "$work/err" &&
    grep -qF -- "$text" "$work/err" && [ ! -s "$work/out" ]; then
    ok "$name: $(cat "$work/err")"
  else
    fail "$name (exit $rc, $lines lines on stderr, stdout $(wc -c < "$work/out") bytes; wanted '$flag: '$path': ...$text'):"
    cat "$work/err"
  fi
}

mkdir -p "$work/start" && touch "$work/start/file"
echo "old" > "$work/start/readonly.csv" && chmod 444 "$work/start/readonly.csv"
before=$(ls -A "$work/start")
refused_at_start "missing directory" --csv "$work/start/no/such/dir/run.csv" "the directory '$work/start/no/such/dir' does not exist"
refused_at_start "directory given as the file" --plot "$work/start" "is a directory"
refused_at_start "a file where the directory should be" --save "$work/start/file/model.ckpt" "is not a directory"
refused_at_start "read-only file" --csv "$work/start/readonly.csv" "read-only"
if [ "$(cat "$work/start/readonly.csv")" = old ]; then ok "the read-only file is unchanged"; else fail "the read-only file was changed"; fi
# An unwritable directory: mode 555 for a normal user; root writes anywhere, except in /sys.
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$work/locked" && chmod 555 "$work/locked"
  refused_at_start "unwritable directory" --save "$work/locked/model.ckpt" "cannot create a file in '$work/locked'"
  chmod 755 "$work/locked"
elif [ -d /sys/kernel ]; then
  refused_at_start "unwritable directory" --save /sys/kernel/cellflow-example.ckpt "cannot create a file in '/sys/kernel'"
fi
if [ "$(ls -A "$work/start")" = "$before" ]; then ok "the start-up checks created nothing"; else fail "the start-up checks left: $(ls -A "$work/start")"; fi

# A run under a file size limit: a write beyond it fails with EFBIG (SIGXFSZ ignored).
limited() {  # limited KBYTES ARGS...
  local kb=$1
  shift
  (trap '' XFSZ; ulimit -f "$kb"; exec "$bin" "$@")
}
no_temp_files() { [ -z "$(find "$1" -name '.*.tmp-*' -o -name '.*.check-*')" ]; }

# 2a. The CSV outgrows the limit (3 KiB; the checkpoint of this model is about 2.3 KiB). The
#     checkpoint of that epoch must be written all the same, and the CSV keep its previous rows.
d=$work/csv-fails && mkdir -p "$d"
limited 3 "${tiny[@]}" --epochs 200 --save "$d/model.ckpt" --csv "$d/run.csv" > "$d/out" 2> "$d/err"
rc=$?
rows=$(($(grep -c . "$d/run.csv" 2>/dev/null || echo 1) - 1))
if [ $rc -eq 1 ]; then ok "a CSV failure ends the run with exit status 1"; else fail "a CSV failure: exit $rc"; fi
if grep -q "^mnist_rnn: error: --csv: '$d/run.csv': write error" "$d/err"; then ok "the error names --csv and the file"; else fail "no --csv error:"; cat "$d/err"; fi
if grep -q "stopped after $((rows + 1)) epochs of 200" "$d/err"; then ok "it says where it stopped"; else fail "no stop line:"; cat "$d/err"; fi
"$bin" --data "$data" --units 1 --layers 1 --threads 1 --epochs 0 --load "$d/model.ckpt" > "$d/load.out" 2>&1
if grep -q "trained for $((rows + 1)) epochs" "$d/load.out"; then
  ok "the checkpoint holds the epoch whose CSV write failed ($((rows + 1)); the CSV kept its $rows rows)"
else
  fail "the checkpoint does not hold epoch $((rows + 1)) (CSV rows: $rows):"; cat "$d/load.out"
fi
if [ "$(tail -n 1 "$d/run.csv" | cut -d, -f1)" = "$rows" ] && [ "$rows" -gt 1 ]; then ok "the CSV is intact"; else fail "the CSV is not intact"; fi
if no_temp_files "$d"; then ok "no temporary file left"; else fail "temporary files left: $(ls -a "$d")"; fi

# 2b. The checkpoint (about 37 KiB for 16 units) cannot be written under 16 KiB: the CSV and the
#     chart of the epoch are written all the same.
d=$work/save-fails && mkdir -p "$d"
echo "previous checkpoint" > "$d/model.ckpt"
limited 16 --data "$data" --limit 150 --units 16 --layers 1 --threads 1 --epochs 3 --save "$d/model.ckpt" \
  --csv "$d/run.csv" --plot "$d/chart.svg" > "$d/out" 2> "$d/err"
rc=$?
if [ $rc -eq 1 ]; then ok "a checkpoint failure ends the run with exit status 1"; else fail "a checkpoint failure: exit $rc"; fi
if grep -q "^mnist_rnn: error: --save: '$d/model.ckpt': write error" "$d/err"; then ok "the error names --save and the file"; else fail "no --save error:"; cat "$d/err"; fi
if [ "$(grep -c . "$d/run.csv" 2>/dev/null)" = 2 ]; then ok "the CSV of the epoch is written"; else fail "no CSV row"; fi
if grep -q "</svg>" "$d/chart.svg" 2>/dev/null && grep -q "chart written to" "$d/out"; then ok "the chart is written"; else fail "no chart"; fi
if [ "$(cat "$d/model.ckpt")" = "previous checkpoint" ]; then ok "the previous checkpoint is intact"; else fail "the previous checkpoint was changed"; fi
if no_temp_files "$d"; then ok "no temporary file left"; else fail "temporary files left: $(ls -a "$d")"; fi

if [ $failures -ne 0 ]; then
  echo "$failures output check(s) failed"
  exit 1
fi
echo "output files are checked at start-up and written independently, checkpoint first"
