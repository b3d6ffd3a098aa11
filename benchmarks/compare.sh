#!/usr/bin/env bash
# Runs cellflow's benchmark and the peers (PyTorch, and oneDNN when libdnnl-dev is installed)
# interleaved in one sitting (repeat 1 of everything, then repeat 2, ...), collects the JSON
# lines and prints the median/range table with cellflow/peer ratios.
#
#   benchmarks/compare.sh                         3 repeats x threads {2,1} x cells {lstm,gru,peephole}
#   benchmarks/compare.sh --repeats 5 --threads 2 --cells lstm --iters 30
#   benchmarks/compare.sh --baseline OLD/cellflow_bench   also runs another build of cellflow_bench
#                         (e.g. of the commit before a change), interleaved, as "cellflow-baseline"
# Needs: the peers in ../shared/peers (or PEERS=DIR), Debian's python3-torch under
# /usr/bin/python3 and libopenblas0-openmp (see ../shared/peers/README.md), libdnnl-dev for oneDNN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$root/../shared/peers}
py=${PYTHON:-/usr/bin/python3}
repeats=3 threads="2 1" cells="lstm gru peephole" iters=30 warmup=5 stream=1 baseline=""
while [ $# -gt 0 ]; do
  case $1 in
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cells) cells=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --no-stream) stream=0; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
build=$root/build-bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target cellflow_bench -j"$(nproc)" > /dev/null
onednn=""
if [ -f /usr/include/oneapi/dnnl/dnnl.hpp ] || [ -f /usr/include/dnnl.hpp ]; then
  mkdir -p "$build/peers"
  if [ ! -x "$build/peers/onednn_rnn" ]; then
    g++ -std=c++17 -O3 -march=native -DNDEBUG -fopenmp "$peers/onednn_rnn.cpp" -o "$build/peers/onednn_rnn" -ldnnl
  fi
  onednn=$build/peers/onednn_rnn
  if [ ! -x "$build/peers/gemm_peak_onednn" ]; then
    g++ -std=c++17 -O3 -march=native -DNDEBUG -fopenmp -DGEMM_ONEDNN "$peers/gemm_peak.cpp" \
      -o "$build/peers/gemm_peak_onednn" -ldnnl
  fi
fi
out=$root/benchmarks/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
raw=$out/raw.jsonl
{ echo "date: $(date -Is)"; echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)";
  [ -n "$baseline" ] && echo "baseline: $baseline"; nproc; lscpu | grep -E "Model name|Flags"; } > "$out/machine.txt"
echo "writing $raw"
for r in $(seq 1 "$repeats"); do
  for t in $threads; do
    if [ -n "$onednn" ]; then  # the SGEMM peak of this sitting, for "% of peak"
      OMP_NUM_THREADS=$t "$build/peers/gemm_peak_onednn" --backend onednn --threads "$t" --set square >> "$raw" || true
    fi
    for c in $cells; do
      echo "repeat $r, $t thread(s), $c" >&2
      OMP_NUM_THREADS=$t "$build/benchmarks/cellflow_bench" --cell "$c" --threads "$t" --iters "$iters" --warmup "$warmup" >> "$raw"
      if [ -n "$baseline" ]; then
        OMP_NUM_THREADS=$t "$baseline" --cell "$c" --threads "$t" --iters "$iters" --warmup "$warmup" |
          sed 's/"impl": "cellflow"/"impl": "cellflow-baseline"/' >> "$raw"
      fi
      "$py" "$peers/torch_rnn.py" --cell "$c" --threads "$t" --iters "$iters" --warmup "$warmup" >> "$raw"
      if [ -n "$onednn" ]; then
        OMP_NUM_THREADS=$t "$onednn" --cell "$c" --threads "$t" --iters "$iters" --warmup "$warmup" >> "$raw" || true
      fi
    done
  done
  if [ "$stream" = 1 ]; then
    OMP_NUM_THREADS=1 "$build/benchmarks/cellflow_bench" --cell lstm --threads 1 --mode stream --iters 100 --warmup 10 >> "$raw"
    if [ -n "$baseline" ]; then
      OMP_NUM_THREADS=1 "$baseline" --cell lstm --threads 1 --mode stream --iters 100 --warmup 10 |
        sed 's/"impl": "cellflow"/"impl": "cellflow-baseline"/' >> "$raw"
    fi
    "$py" "$root/benchmarks/torch_stream.py" --cell lstm --threads 1 >> "$raw"
  fi
done
python3 "$root/benchmarks/summarize.py" "$raw" | tee "$out/summary.md"
