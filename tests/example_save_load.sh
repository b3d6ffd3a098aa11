#!/usr/bin/env bash
# End to end: mnist_rnn --save / --load and classify_digit.
#   example_save_load.sh MNIST_RNN CLASSIFY_DIGIT DATA_DIR WORK_DIR OLD_CHECKPOINT
# 1. 2 epochs in one run == 1 epoch, save, load, 1 more epoch: the two checkpoints are
#    byte-identical (same seed, 1 thread), and the resumed run numbers its epoch on (epoch 2, in
#    the console and the CSV). A resumed run keeps the saved learning rate unless --lr is given.
# 2. --load FILE --epochs 0 reports exactly the test accuracy the saving run ended with.
# 3. A run whose --cell/--layers/--units differ from the file is refused, naming the difference.
# 4. classify_digit gives the same top-3 for an IDX image and the same image as a PGM file.
# 5. Corrupted checkpoints and bad images fail with exit 1 and a one-line error.
# 6. OLD_CHECKPOINT, written by mnist_rnn before the model API (its architecture as the metadata
#    model=mnist_rnn, cell, layers, units; tests/fixtures/README.md), still loads: mnist_rnn
#    evaluates and resumes it, refuses other options, and classify_digit reads it.
set -u
mnist=$1 classify=$2 data=$3 work=$4 old=$5
rm -rf "$work" && mkdir -p "$work"
fails=0
check() {  # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
common=(--limit 300 --units 24 --layers 2 --threads 1 --data "$data" --seed 5)

"$mnist" "${common[@]}" --epochs 2 --save "$work/two.ckpt" > "$work/two.log" 2>&1
check "two epochs in one run saved" test -s "$work/two.ckpt"
"$mnist" "${common[@]}" --epochs 1 --save "$work/one.ckpt" > "$work/one.log" 2>&1
"$mnist" "${common[@]}" --epochs 1 --load "$work/one.ckpt" --save "$work/resumed.ckpt" --csv "$work/resumed.csv" \
  > "$work/resumed.log" 2>&1
check "resume prints what it loaded" grep -q "loaded .*one.ckpt: trained for 1 epoch, " "$work/resumed.log"
check "the resumed epoch is numbered on (epochs count from 1)" grep -q "^2 Last batch accuracy" "$work/resumed.log"
check "and is epoch 2 in the CSV" test "$(tail -n 1 "$work/resumed.csv" | cut -d, -f1)" = 2
check "1 + 1 resumed epochs == 2 epochs, byte for byte" cmp -s "$work/two.ckpt" "$work/resumed.ckpt"
# The learning rate: the saved run's when resuming, unless --lr is given.
"$mnist" "${common[@]}" --epochs 1 --lr 0.01 --save "$work/lr.ckpt" > /dev/null 2>&1
"$mnist" "${common[@]}" --epochs 1 --load "$work/lr.ckpt" > "$work/lr-kept.log" 2>&1
check "a resumed run keeps the saved learning rate" grep -q "Adam(0.01)" "$work/lr-kept.log"
"$mnist" "${common[@]}" --epochs 1 --load "$work/one.ckpt" --lr 0.5 --save "$work/lr-new.ckpt" > "$work/lr-new.log" 2>&1
check "--lr overrides it" bash -c "grep -q 'Adam(0.5)' '$work/lr-new.log' && ! cmp -s '$work/lr-new.ckpt' '$work/resumed.ckpt'"

"$mnist" "${common[@]}" --epochs 0 --load "$work/two.ckpt" > "$work/eval.log" 2>&1
final_two=$(grep -o "done: test accuracy [0-9.]*% ([0-9/]*), test loss [0-9.]*" "$work/two.log")
final_eval=$(grep -o "done: test accuracy [0-9.]*% ([0-9/]*), test loss [0-9.]*" "$work/eval.log")
check "--epochs 0 --load evaluates the saved model exactly ($final_two)" test -n "$final_two" -a "$final_two" = "$final_eval"

"$mnist" "${common[@]}" --epochs 0 --units 32 --cell gru --load "$work/two.ckpt" > "$work/other.log" 2>&1
status=$?
check "another model is refused (exit 1)" test $status -eq 1
check "the refusal names --cell and --units" grep -q "\-\-cell: the file has basic, this run gru; --units: the file has 24, this run 32" "$work/other.log"

idx_images=$(ls "$data"/t10k-images-idx3-ubyte* | head -1)
idx_labels=$(ls "$data"/t10k-labels-idx1-ubyte* | head -1)
"$classify" --model "$work/two.ckpt" --idx "$idx_images" --labels "$idx_labels" --index 0 > "$work/idx.out" 2>&1
check "classify_digit on IDX image 0 prints 3 classes and the true label" \
  bash -c "grep -q 'true label 7' '$work/idx.out' && test \$(grep -c '  [123]\. class [0-9]  p = ' '$work/idx.out') -eq 3"
# The same digit as a binary PGM.
{ printf 'P5\n# image 0 of the MNIST test subset\n28 28\n255\n'; gzip -dc "$idx_images" 2>/dev/null | tail -c +17 | head -c 784; } > "$work/digit.pgm"
"$classify" --model "$work/two.ckpt" --pgm "$work/digit.pgm" > "$work/pgm.out" 2>&1
check "the PGM of the same digit gives the same top-3" \
  bash -c "diff <(grep ' class ' '$work/idx.out') <(grep ' class ' '$work/pgm.out')"
check "classify_digit takes the architecture from the file" grep -q "^model .*two.ckpt: 2 x basic(24)$" "$work/idx.out"

# The checkpoint of an older mnist_rnn: weights matched by name, the architecture from its metadata.
old_opts=(--cell gru --layers 2 --units 4 --limit 300 --threads 1 --seed 5 --data "$data")
"$mnist" "${old_opts[@]}" --epochs 0 --load "$old" > "$work/old-eval.log" 2>&1
status=$?
check "an older mnist_rnn's checkpoint loads and is evaluated (exit 0)" \
  bash -c "[ $status -eq 0 ] && grep -q '^done: test accuracy' '$work/old-eval.log'"
check "with its epochs and Adam's state" grep -q "loaded .*: trained for 1 epoch, 2 Adam steps" "$work/old-eval.log"
"$mnist" "${old_opts[@]}" --epochs 1 --load "$old" --save "$work/from-old.ckpt" > "$work/old-resumed.log" 2>&1
check "and resumes (epoch 2), saving its architecture now" \
  bash -c "grep -q '^2 Last batch accuracy' '$work/old-resumed.log' && grep -aq 'cellflow-model 1' '$work/from-old.ckpt'"
"$mnist" "${old_opts[@]}" --epochs 0 --load "$old" --cell basic > "$work/old-other.log" 2>&1
status=$?
check "another --cell is refused (exit 1), naming it" \
  bash -c "[ $status -eq 1 ] && grep -q -- '--cell: the file has gru, this run basic' '$work/old-other.log'"
"$classify" --model "$old" --pgm "$work/digit.pgm" > "$work/old-classify.out" 2>&1
check "classify_digit reads it" \
  bash -c "grep -q ': 2 x gru(4)$' '$work/old-classify.out' && test \$(grep -c '  [123]\. class [0-9]  p = ' '$work/old-classify.out') -eq 3"

# Bad inputs: exit 1 and a one-line error naming the file.
cp "$work/two.ckpt" "$work/flipped.ckpt"
printf '\x55' | dd of="$work/flipped.ckpt" bs=1 seek=200 conv=notrunc status=none
head -c 100 "$work/two.ckpt" > "$work/truncated.ckpt"
printf 'P5\n28 28\n255\n' > "$work/short.pgm"
printf 'P5\n20 28\n255\n' > "$work/narrow.pgm"; head -c 560 /dev/zero >> "$work/narrow.pgm"
bad() {  # bad NAME EXPECTED-TEXT COMMAND...
  local name=$1 text=$2; shift 2
  "$@" > "$work/bad.out" 2>&1
  local st=$?
  if [ $st -eq 1 ] && grep -q -- "$text" "$work/bad.out" && [ "$(wc -l < "$work/bad.out")" -eq 1 ]; then
    echo "ok   $name"
  else
    echo "FAIL $name (exit $st):"; cat "$work/bad.out"; fails=$((fails + 1))
  fi
}
bad "flipped byte in the checkpoint" "flipped.ckpt" "$classify" --model "$work/flipped.ckpt" --pgm "$work/digit.pgm"
bad "truncated checkpoint" "truncated.ckpt" "$classify" --model "$work/truncated.ckpt" --pgm "$work/digit.pgm"
bad "missing checkpoint" "nope.ckpt" "$mnist" "${common[@]}" --epochs 0 --load "$work/nope.ckpt"
bad "truncated PGM" "short.pgm" "$classify" --model "$work/two.ckpt" --pgm "$work/short.pgm"
bad "PGM of the wrong width" "reads rows of 28 pixels" "$classify" --model "$work/two.ckpt" --pgm "$work/narrow.pgm"
bad "IDX index out of range" "out of range" "$classify" --model "$work/two.ckpt" --idx "$idx_images" --index 5000
check "the failed runs left the checkpoint intact" cmp -s "$work/two.ckpt" "$work/resumed.ckpt"

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all save/load/classify checks passed"
