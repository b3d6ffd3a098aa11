#!/usr/bin/env bash
# The float matrix kernel's register tile on the CPU at hand (issue 15, "fast on the CPU at
# hand"): builds cellflow_bench once per tile (-DCELLFLOW_GEMM_MR=<rows> -DCELLFLOW_GEMM_NP=<packets>,
# include/cellflow/detail/gemm.hpp) and runs the seed model's training step and inference with
# each, interleaved (repeat 1 of every tile, then repeat 2, ...), in one sitting. The first tile
# of the list is the default the header picks, and the ratios are against it.
#
#   benchmarks/tiles.sh                           tiles "6x4 8x3 12x2" with 32 vector registers
#                                                 (AVX-512), "6x2 4x3" with 16 (AVX2); cells lstm
#                                                 gru peephole; threads 2 1; 5 repeats (~15 min)
#   REPEATS=3 CELLS=gru THREADS=1 TILES="6x4 8x3" benchmarks/tiles.sh
#
# Writes benchmarks/results/tiles-<date>/: machine.txt (lscpu Model name and flags, nproc, load),
# raw.jsonl (one JSON line per run, with the bench's "gemm_tile") and summary.txt (medians over the
# repeats and each tile's ratio to the first). Needs cmake and a C++17 compiler; nothing else.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
repeats=${REPEATS:-5}
cells=${CELLS:-lstm gru peephole}
threads_list=${THREADS:-2 1}
iters=${ITERS:-10}
warmup=${WARMUP:-2}
if [ -z "${TILES:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then TILES="6x4 8x3 12x2"; else TILES="6x2 4x3"; fi
fi
out=$root/benchmarks/results/tiles-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
raw=$out/raw.jsonl
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command: benchmarks/tiles.sh (REPEATS=$repeats CELLS='$cells' THREADS='$threads_list' TILES='$TILES' ITERS=$iters WARMUP=$warmup)"
  echo "nproc: $(nproc)"
  echo "compiler: $(${CXX:-c++} --version | head -1)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  lscpu | grep -E "^(Model name|Flags)"
} > "$out/machine.txt"
cat "$out/machine.txt"

declare -A bench
for tile in $TILES; do
  mr=${tile%x*} np=${tile#*x}
  build=$root/build-tiles/$tile
  echo "building cellflow_bench with a $mr x $np tile in $build" >&2
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF \
    "-DCELLFLOW_BENCHMARK_OPTIONS=-DCELLFLOW_GEMM_MR=$mr;-DCELLFLOW_GEMM_NP=$np" > /dev/null
  cmake --build "$build" --target cellflow_bench -j"$(nproc)" > /dev/null
  bench[$tile]=$build/benchmarks/cellflow_bench
done

for r in $(seq 1 "$repeats"); do
  for t in $threads_list; do
    for c in $cells; do
      echo "repeat $r: $c, $t threads" >&2
      for tile in $TILES; do
        OMP_NUM_THREADS=$t "${bench[$tile]}" --cell "$c" --threads "$t" --mode train,infer --iters "$iters" \
          --warmup "$warmup" | sed "s/^{/{\"repeat\": $r, \"tile\": \"$tile\", /" >> "$raw"
      done
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"

python3 - "$raw" "$TILES" > "$out/summary.txt" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tiles = sys.argv[2].split()
groups = {}
for r in rows:
    groups.setdefault((r["cell"], r["threads"]), {}).setdefault(r["tile"], []).append(r)
print(f"medians over repeats, samples/s and achieved GFLOP/s; ratios to the {tiles[0]} tile")
for (cell, threads), g in sorted(groups.items()):
    print(f"\n{cell}, {threads} threads:")
    base = {}
    for tile in tiles:
        if tile not in g:
            continue
        med = {k: statistics.median(x[k] for x in g[tile])
               for k in ("train_samples_per_s", "train_gflops", "infer_samples_per_s", "infer_gflops")}
        if not base:
            base = med
        lo = min(x["train_samples_per_s"] for x in g[tile]); hi = max(x["train_samples_per_s"] for x in g[tile])
        print(f"  {tile:5s} ({g[tile][0]['gemm_tile']}): train {med['train_samples_per_s']:8.1f}/s"
              f" [{lo:.0f}-{hi:.0f}] {med['train_gflops']:6.1f} GFLOP/s ({med['train_samples_per_s'] / base['train_samples_per_s']:.3f}x)"
              f"   infer {med['infer_samples_per_s']:8.1f}/s {med['infer_gflops']:6.1f} GFLOP/s"
              f" ({med['infer_samples_per_s'] / base['infer_samples_per_s']:.3f}x)")
EOF
cat "$out/summary.txt"
echo "results in $out"
