#!/usr/bin/env bash
# examples/char_rnn end to end on tiny models (a few seconds in all):
# 1. a few steps on the shipped text write the checkpoint, CSV and chart, report the validation
#    bits per character next to the bigram model's, and stream a sample;
# 2. --load FILE --epochs 0 evaluates the saved model exactly as the saving run ended, and
#    samples from it; the same --seed gives the same sample;
# 3. on a small text, 2 epochs == 1 epoch, save, load, 1 more epoch, byte for byte;
# 4. bad input, each exit status 1 and one line: an empty file, a binary file, invalid UTF-8, a
#    --prime character outside the vocabulary, a vocabulary that is not the model's on --load,
#    another model's sizes, a checkpoint that is not char_rnn's, a text too short; a bad option
#    value is exit status 2.
# usage: example_char_rnn.sh CHAR_RNN SHIPPED_TEXT WORK_DIR
set -u
bin=$1 shipped=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fails=0
check() {  # check NAME COMMAND...
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
tiny=(--layers 1 --units 16 --embedding 8 --batch 4 --steps 10 --threads 1 --seed 3)

# 1. A short run on the shipped text.
"$bin" --text "$shipped" "${tiny[@]}" --epochs 1 --max-steps 6 --save "$work/m.ckpt" --csv "$work/m.csv" \
  --plot "$work/m.svg" --sample 40 --prime "1:1 " > "$work/run.log" 2>&1
status=$?
cat "$work/run.log"
check "a short run exits 0" test $status -eq 0
check "it reports loss and bits per character, and the bigram model's" \
  grep -q "^epoch 1/1: loss [0-9.]* ([0-9.]* bpc), val_loss [0-9.]* ([0-9.]* bpc; bigram [0-9.]* bpc)  6 steps" "$work/run.log"
check "checkpoint, CSV and chart are written" test -s "$work/m.ckpt" -a -s "$work/m.svg"
check "the CSV has its header and one row" \
  bash -c "head -1 '$work/m.csv' | grep -q '^epoch,loss,bpc,val_loss,val_bpc,bigram_val_bpc,' && test \$(wc -l < '$work/m.csv') -eq 2"
check "the sample follows the prime" grep -q "^1:1 " "$work/run.log"

# 2. Evaluate and sample from the saved model.
trained=$(grep -o "^done: validation [0-9.]* bpc (loss [0-9.]*)" "$work/run.log" | sed 's/^done: //')
"$bin" --text "$shipped" --threads 1 --seed 3 --load "$work/m.ckpt" --epochs 0 --sample 30 > "$work/eval.log" 2>&1
check "--load --epochs 0 exits 0" test $? -eq 0
evaluated=$(grep -o "^validation [0-9.]* bpc (loss [0-9.]*)" "$work/eval.log")
check "--load --epochs 0 evaluates the model as the run ended ($trained)" test -n "$trained" -a "$trained" = "$evaluated"
check "it says what it loaded" grep -q "^loaded .*m.ckpt: trained for 1 epoch, 6 Adam steps" "$work/eval.log"
"$bin" --text "$shipped" --threads 1 --seed 3 --load "$work/m.ckpt" --epochs 0 --sample 30 > "$work/eval2.log" 2>&1
check "the same --seed gives the same sample" cmp -s "$work/eval.log" "$work/eval2.log"
"$bin" --text "$shipped" --threads 1 --seed 4 --load "$work/m.ckpt" --epochs 0 --sample 30 > "$work/eval3.log" 2>&1
check "another --seed another sample" bash -c "! cmp -s '$work/eval.log' '$work/eval3.log'"

# 3. Resume == uninterrupted, on a small text.
head -c 4000 "$shipped" > "$work/small.txt"
"$bin" --text "$work/small.txt" "${tiny[@]}" --epochs 2 --save "$work/two.ckpt" > /dev/null 2>&1
"$bin" --text "$work/small.txt" "${tiny[@]}" --epochs 1 --save "$work/one.ckpt" > /dev/null 2>&1
"$bin" --text "$work/small.txt" "${tiny[@]}" --epochs 1 --load "$work/one.ckpt" --save "$work/resumed.ckpt" \
  > "$work/resumed.log" 2>&1
check "the resumed run numbers its epoch on" grep -q "^epoch 2/2: " "$work/resumed.log"
check "1 + 1 resumed epochs == 2 epochs, byte for byte" cmp -s "$work/two.ckpt" "$work/resumed.ckpt"
# With --dropout the masks are keyed by the global step: resuming drops what the uninterrupted
# run dropped (byte for byte again), and the weights differ from the run without dropout.
"$bin" --text "$work/small.txt" "${tiny[@]}" --dropout 0.7 --epochs 2 --save "$work/two_d.ckpt" > "$work/two_d.log" 2>&1
"$bin" --text "$work/small.txt" "${tiny[@]}" --dropout 0.7 --epochs 1 --save "$work/one_d.ckpt" > /dev/null 2>&1
"$bin" --text "$work/small.txt" "${tiny[@]}" --dropout 0.7 --epochs 1 --load "$work/one_d.ckpt" \
  --save "$work/resumed_d.ckpt" > /dev/null 2>&1
check "--dropout is reported" grep -q "clip_norm 5, dropout 0.7, 1 thread" "$work/two_d.log"
check "--dropout: 1 + 1 resumed epochs == 2 epochs, byte for byte" cmp -s "$work/two_d.ckpt" "$work/resumed_d.ckpt"
check "--dropout changes the training" bash -c "! cmp -s '$work/two.ckpt' '$work/two_d.ckpt'"

# 4. Bad input: exit 1 and one line naming the problem.
one_line_error() {  # one_line_error PATTERN ARGS...: exit status 1 and one line on stderr matching PATTERN
  local pattern=$1
  shift
  local err status
  err=$("$bin" "$@" 2>&1 > /dev/null)
  status=$?
  [ $status -eq 1 ] && [ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] && printf '%s\n' "$err" | grep -q -- "$pattern" ||
    { echo "  got status $status: $err"; return 1; }
}
: > "$work/empty.txt"
check "an empty file" one_line_error "error: --text '.*empty.txt': the file is empty" --text "$work/empty.txt"
printf 'abc\000\001\002' > "$work/binary.bin"
check "a binary file" one_line_error "not a UTF-8 text file: a NUL byte (a binary file?) at byte offset 3" \
  --text "$work/binary.bin"
printf 'abc\377def' > "$work/latin.txt"
check "invalid UTF-8" one_line_error "not a UTF-8 text file: the byte 0xFF, which starts no UTF-8 sequence at byte offset 3" \
  --text "$work/latin.txt"
check "a --prime character outside the vocabulary" \
  one_line_error "error: --prime: the character '@' is not in the vocabulary" \
  --text "$work/small.txt" "${tiny[@]}" --load "$work/one.ckpt" --epochs 0 --sample 5 --prime "In@"
printf 'In the beginning was the Word, and the Word was with God. %.0s' $(seq 1 40) > "$work/other.txt"
check "--load with another vocabulary" \
  one_line_error "the model's vocabulary (.* characters) is not that of --text" \
  --text "$work/other.txt" --load "$work/one.ckpt" --epochs 0 --threads 1
check "--load with other sizes" one_line_error "holds another model (--units: the file has 16, this run 32)" \
  --text "$work/small.txt" --load "$work/one.ckpt" --units 32 --epochs 0
check "--load of a file that is not a checkpoint" one_line_error "error: --load: read_checkpoint_info: .*not a cellflow checkpoint" --text "$work/small.txt" --load "$work/small.txt"
check "a text too short for --batch x --steps" one_line_error "has 3600 characters; --batch 64 x --steps 60 needs at least 3841" \
  --text "$work/small.txt" --batch 64 --steps 60 --epochs 1
"$bin" --dropout 1.5 > /dev/null 2>&1
check "--dropout 1.5 is a bad command line (exit 2)" test $? -eq 2
"$bin" --temperature 0 > /dev/null 2>&1
check "--temperature 0 is a bad command line (exit 2)" test $? -eq 2
"$bin" --epochs 0 --sample 5 > /dev/null 2>&1
check "--sample without a model is a bad command line (exit 2)" test $? -eq 2

if [ $fails -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "char_rnn trains, reports, samples, saves, resumes and refuses bad input"
