#!/usr/bin/env bash
# mnist_rnn --distributed under `mpirun -np 2` (a small model, 600 digits, 2 epochs):
#   - rank 0 alone prints: one header line naming "2 ranks x 1 thread", one line per epoch, the
#     "done" line; the CSV and the checkpoint are written (by rank 0);
#   - the test accuracy of every epoch equals the single-process run's at the same global batch
#     (--threads 1) within 0.2 percentage points (4 of the 2,000 test digits): the two runs take
#     the same steps up to float summation order;
#   - a distributed run resumed from the checkpoint goes on with epoch 3;
#   - --distributed without mpirun (one rank) trains as the single-process program does.
# usage: example_distributed.sh MPIEXEC MNIST_RNN WORK_DIR
set -u
mpiexec=$1 mnist=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
oversubscribe=()
if "$mpiexec" --version 2>&1 | grep -q "Open MPI"; then oversubscribe=(--oversubscribe); fi
small=(--limit 600 --units 32 --layers 2 --batch 100)
fails=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
accuracies() { grep -a "Last batch accuracy" "$1" | sed 's/.*Test accuracy: \([0-9.]*\).*/\1/'; }

"$mpiexec" -np 2 "${oversubscribe[@]}" "$mnist" --distributed "${small[@]}" --epochs 2 --threads 1 \
  --csv "$work/log.csv" --save "$work/model.ckpt" > "$work/dist.out" 2> "$work/dist.err"
check "the distributed run succeeds" test $? -eq 0
"$mnist" "${small[@]}" --epochs 2 --threads 1 > "$work/single.out" 2>&1
check "the single-process run succeeds" test $? -eq 0
check "one header, naming the ranks" test "$(grep -ac '^mnist_rnn: .*2 ranks x 1 thread$' "$work/dist.out")" -eq 1
check "one line per epoch (rank 0 alone prints)" test "$(grep -ac 'Last batch accuracy' "$work/dist.out")" -eq 2
check "one done line" test "$(grep -ac '^done: test accuracy' "$work/dist.out")" -eq 1
check "rank 0 wrote the CSV" test "$(wc -l < "$work/log.csv")" -eq 3
check "rank 0 wrote the checkpoint" test -s "$work/model.ckpt"
paste <(accuracies "$work/dist.out") <(accuracies "$work/single.out") > "$work/acc.txt"
check "two epochs to compare" test "$(wc -l < "$work/acc.txt")" -eq 2
check "test accuracy as one process's within 0.002" \
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 0.002) bad = 1 } END { exit bad }' "$work/acc.txt"
"$mpiexec" -np 2 "${oversubscribe[@]}" "$mnist" --distributed "${small[@]}" --epochs 1 --threads 1 \
  --load "$work/model.ckpt" > "$work/resume.out" 2>&1
check "the resumed distributed run succeeds" test $? -eq 0
check "the resumed run numbers its epoch 3" grep -aq '^3 Last batch accuracy' "$work/resume.out"
"$mnist" --distributed "${small[@]}" --epochs 1 --threads 1 > "$work/one.out" 2>&1
check "--distributed as a single process (no mpirun)" grep -aq '^done: test accuracy' "$work/one.out"
if [ $fails -ne 0 ]; then
  for f in dist.out dist.err single.out resume.out one.out acc.txt; do echo "--- $f"; tr '\r' '\n' < "$work/$f" | grep -av '^  epoch' | head -20; done
  exit 1
fi
