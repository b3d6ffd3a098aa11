#!/usr/bin/env bash
# Scaling sweeps of cellflow's training step (LSTM, 2 threads): batch 1..512 (cellflow and
# PyTorch side by side), units 64..1024 and sequence length 28..1000 (cellflow), as JSON lines
# in benchmarks/results/<date>-sweep/raw.jsonl (with machine.txt: CPU, ISA, versions); then the
# tables and the batch-size plot. The PyTorch peer is benchmarks/peers/torch_rnn.py (its Debian
# packages: benchmarks/peers/install.sh).
#   benchmarks/sweep.sh [--threads 2] [--iters 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=$root/benchmarks/peers
py=${PYTHON:-/usr/bin/python3}
threads=2 iters=8
cmdline="benchmarks/sweep.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
build=$root/build-bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target cellflow_bench -j"$(nproc)" > /dev/null
out=$root/benchmarks/results/$(date +%Y%m%d-%H%M%S)-sweep
mkdir -p "$out"
raw=$out/raw.jsonl
{
  echo "date: $(date -Is)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown)"
  echo "command: $cmdline"
  lscpu | grep -m1 'Model name' | sed 's/  */ /g'
  echo "ISA: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx512_fp16|amx_tile|amx_bf16|amx_int8' | tr '\n' ' ')"
  echo "torch: $("$py" -c 'import torch; print(torch.__version__)' 2> /dev/null)"
} > "$out/machine.txt"
bench() { OMP_NUM_THREADS=$threads "$build/benchmarks/cellflow_bench" --threads "$threads" --iters "$iters" --warmup 2 "$@" >> "$raw"; }
for b in 1 4 16 64 150 256 512; do
  echo "batch $b" >&2
  bench --cell lstm --batch "$b"
  "$py" "$peers/torch_rnn.py" --cell lstm --mode train --threads "$threads" --iters "$iters" --warmup 2 --batch "$b" >> "$raw"
done
for u in 64 150 256 512 1024; do
  echo "units $u" >&2
  bench --cell lstm --hidden "$u" --mode train
done
for s in 28 100 300 1000; do
  echo "steps $s" >&2
  bench --cell lstm --steps "$s" --mode train
done
{ sed 's/^/    /' "$out/machine.txt"; echo; python3 "$root/benchmarks/plot_sweep.py" "$raw" "$out"; } | tee "$out/summary.md"
