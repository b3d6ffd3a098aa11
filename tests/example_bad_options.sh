#!/usr/bin/env bash
# Runs examples/mnist_rnn and classify_digit on bad command lines: each must be refused at once
# with exit status 2 and one line on stderr naming the option (and echoing the value), before
# any data is read (nothing on stdout).
# usage: example_bad_options.sh MNIST_RNN CLASSIFY_DIGIT WORK_DIR
set -u
mnist=$1 classify=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
failures=0
# A run that would be quick if an option were wrongly accepted.
quick=(--epochs 0 --limit 10 --units 4 --layers 1 --threads 1)

# refused TEXT COMMAND...: exit 2, one line on stderr containing TEXT, nothing on stdout
refused() {
  local text=$1
  shift
  "$@" > "$work/out" 2> "$work/err"
  local rc=$? lines
  lines=$(grep -c . "$work/err")
  if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && grep -qF -- "$text" "$work/err" && [ ! -s "$work/out" ]; then
    echo "ok   ${*:2}: $(cat "$work/err")"
  else
    echo "FAIL ${*:2} (exit $rc, $lines lines on stderr, stdout $(wc -c < "$work/out") bytes; wanted '$text'):"
    cat "$work/err"
    failures=$((failures + 1))
  fi
}

# Numbers: the learning rate and the clipping norm must be finite and > 0 (as a float).
for v in inf -inf nan 0 -0.001 1e39 1e-50 0.001x "" " 0.1"; do
  refused "--lr expects a positive finite number, given '$v'" "$mnist" "${quick[@]}" --lr "$v"
done
for v in inf nan 0 -1 abc; do
  refused "--clip-norm expects a positive finite number, given '$v'" "$mnist" "${quick[@]}" --clip-norm "$v"
done
refused "--lr expects a positive finite number, given 'inf'" "$mnist" "${quick[@]}" --lr=inf

# Integers: digits only, within range.
refused "--epochs expects an integer in [0, 100000], given '-1'" "$mnist" --limit 10 --units 4 --layers 1 --epochs -1
refused "--batch expects an integer in [1, 1048576], given '0'" "$mnist" "${quick[@]}" --batch 0
refused "--units expects an integer in [1, 65536], given 'abc'" "$mnist" "${quick[@]}" --units abc
refused "--layers expects an integer in [1, 64], given '3x'" "$mnist" "${quick[@]}" --layers 3x
refused "--layers expects an integer in [1, 64], given '65'" "$mnist" "${quick[@]}" --layers 65
refused "--units expects an integer in [1, 65536], given '1e3'" "$mnist" "${quick[@]}" --units 1e3
refused "--units expects an integer in [1, 65536], given '+4'" "$mnist" "${quick[@]}" --units +4
refused "--threads expects an integer in [0, 1024], given ' 1'" "$mnist" "${quick[@]}" --threads " 1"
refused "--seed expects an integer in [0, 4611686018427387904], given '99999999999999999999'" \
  "$mnist" "${quick[@]}" --seed 99999999999999999999
refused "--limit expects an integer in [1, 1099511627776], given '0'" "$mnist" "${quick[@]}" --limit 0

# Empty paths are errors, not "no file".
for flag in --save --load --csv --plot --data; do
  refused "$flag expects" "$mnist" "${quick[@]}" "$flag" ""
done
refused "--csv expects a file, given an empty string" "$mnist" "${quick[@]}" --csv=

# Choices, unknown options, missing values, and options that cannot go together.
refused "--cell must be basic, peephole or gru, given 'lstm2'" "$mnist" "${quick[@]}" --cell lstm2
refused "--on-nonfinite must be stop or skip, given 'ignore'" "$mnist" "${quick[@]}" --on-nonfinite ignore
refused "unknown option '--learning-rate'" "$mnist" "${quick[@]}" --learning-rate 0.1
refused "unexpected argument 'extra'" "$mnist" "${quick[@]}" extra
refused "--save needs a value" "$mnist" "${quick[@]}" --save
refused "with --epochs 0 there is none" "$mnist" "${quick[@]}" --csv "$work/run.csv"
refused "--csv and --plot name the same file" "$mnist" --epochs 1 --csv "$work/same" --plot "$work/./same"
refused "--save and --csv name the same file" "$mnist" --epochs 1 --save "$work/same" --csv "$work/same"
refused "--csv and --load name the same file" "$mnist" --epochs 1 --csv "$work/same" --load "$work/same"

# classify_digit shares the parser.
refused "--model expects a checkpoint file, given an empty string" "$classify" --model "" --pgm x.pgm
refused "--index expects an integer in [0, 1099511627776], given '-1'" "$classify" --model m --idx i --index -1
refused "--index goes with --idx" "$classify" --model m --pgm x.pgm --index 3
refused "give exactly one of --idx FILE and --pgm FILE" "$classify" --model m

if [ $failures -ne 0 ]; then
  echo "$failures bad command line(s) not refused as they should be"
  exit 1
fi
echo "every bad command line is refused with a one-line error and exit status 2"
