#!/usr/bin/env bash
# The README's example command: installs the dependencies, builds examples/mnist_rnn and
# trains it on the shipped digits (3 x LSTM(150), Adam 0.001, batch 150, 10 epochs).
# Arguments go to mnist_rnn, e.g. --cell gru, --epochs 2, --data /usr/share/datasets/fashion-mnist.
# Without --plot it charts the run to build/mnist.svg (the README's chart comes from such a run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target mnist_rnn
plot=(--plot build/mnist.svg)  # not with --plot of its own, --help, or --epochs 0 (nothing to chart)
prev=""
for arg in "$@"; do
  case $arg in --plot|--help|-h) plot=() ;; esac
  if [ "$prev" = "--epochs" ] && [ "$arg" = "0" ]; then plot=(); fi
  prev=$arg
done
exec build/examples/mnist_rnn "$@" "${plot[@]}"
