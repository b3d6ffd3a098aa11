#!/usr/bin/env bash
# The README's section "The MNIST example" lists mnist_rnn's options exactly as `mnist_rnn --help`
# does (the help text is the reference): no option missing, none stale.
# usage: example_readme_options.sh MNIST_RNN README
set -u
bin=$1 readme=$2
options() { sed -n '/^  --cell /,/^  --help /p'; }
if diff <("$bin" --help | options) <(sed -n '/^## The MNIST example/,/^## The seed program/p' "$readme" | options); then
  echo "the README lists every option of mnist_rnn --help"
else
  echo "FAIL: the README's option list (< --help, > README) differs; copy it from mnist_rnn --help"
  exit 1
fi
