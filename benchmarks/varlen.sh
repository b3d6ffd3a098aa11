#!/usr/bin/env bash
# Variable-length batches at their true cost (issue 15, "finished rows cost nothing"): the seed
# model on a batch whose sequence_length is drawn uniformly from [T/4, T] and from a long-tailed
# law (benchmarks/cellflow_bench.cpp defines both draws; torch_varlen.py makes the same one),
# four programs interleaved, `repeats` times each, in one sitting:
#   cellflow, skip_ended_rows on      cellflow_bench --lengths K --skip-ended-rows 1
#   cellflow, skip_ended_rows off     cellflow_bench --lengths K --skip-ended-rows 0 (every row, as before)
#   PyTorch, pack_padded_sequence     peers/torch_varlen.py --lengths K --packed 1
#   PyTorch, padded                   peers/torch_varlen.py --lengths K --packed 0
# Writes benchmarks/results/varlen-<date>/: machine.txt (lscpu Model name and flags, nproc,
# load), raw.jsonl (one JSON line per run) and summary.txt (medians over the repeats, and the
# skip-on / skip-off and cellflow / PyTorch-packed ratios).
#
#   benchmarks/varlen.sh [build-dir]            (default build; must hold benchmarks/cellflow_bench)
#   REPEATS=3 CELLS="lstm gru" THREADS="1 2" LENGTHS="uniform longtail" STEPS=100 benchmarks/varlen.sh build
#
# Needs Debian's python3-torch under /usr/bin/python3 (PYTHON=... to change) and, for PyTorch's
# speed, libopenblas0-openmp.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bench=$build/benchmarks/cellflow_bench
py=${PYTHON:-/usr/bin/python3}
repeats=${REPEATS:-3}
cells=${CELLS:-lstm gru}
threads_list=${THREADS:-2 1}
lengths_list=${LENGTHS:-uniform longtail}
steps=${STEPS:-100}
batch=${BATCH:-64}
hidden=${HIDDEN:-256}
layers=${LAYERS:-2}
iters=${ITERS:-10}
warmup=${WARMUP:-3}
[ -x "$bench" ] || { echo "varlen.sh: $bench not found (build the target cellflow_bench first)" >&2; exit 1; }
out=$root/benchmarks/results/varlen-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
raw=$out/raw.jsonl
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command: benchmarks/varlen.sh $* (REPEATS=$repeats CELLS='$cells' THREADS='$threads_list' LENGTHS='$lengths_list' STEPS=$steps BATCH=$batch HIDDEN=$hidden LAYERS=$layers ITERS=$iters WARMUP=$warmup)"
  echo "nproc: $(nproc)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  lscpu | grep -E "^(Model name|Flags)"
} > "$out/machine.txt"
cat "$out/machine.txt"
common=(--layers "$layers" --hidden "$hidden" --steps "$steps" --batch "$batch" --iters "$iters" --warmup "$warmup")
for r in $(seq 1 "$repeats"); do
  for lengths in $lengths_list; do
    for t in $threads_list; do
      for c in $cells; do
        echo "repeat $r: $c, $t threads, lengths $lengths" >&2
        for skip in 1 0; do
          OMP_NUM_THREADS=$t "$bench" --cell "$c" --threads "$t" --lengths "$lengths" --skip-ended-rows "$skip" \
            "${common[@]}" | sed "s/^{/{\"repeat\": $r, /" >> "$raw"
        done
        for packed in 1 0; do
          "$py" "$root/benchmarks/peers/torch_varlen.py" --cell "$c" --threads "$t" --lengths "$lengths" \
            --packed "$packed" "${common[@]}" | sed "s/^{/{\"repeat\": $r, /" >> "$raw"
        done
      done
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"

python3 - "$raw" > "$out/summary.txt" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def who(r):
    if r["impl"] == "cellflow":
        return "cellflow skip" if r.get("skip_ended_rows") else "cellflow all rows"
    return "torch packed" if r.get("packed") else "torch padded"
groups = {}
for r in rows:
    groups.setdefault((r["lengths"], r["cell"], r["threads"]), {}).setdefault(who(r), []).append(r)
names = ["cellflow skip", "cellflow all rows", "torch packed", "torch padded"]
print("medians over repeats of each run's median, samples/s (train | infer)")
for (lengths, cell, threads), g in sorted(groups.items()):
    med = {n: (statistics.median(x["train_samples_per_s"] for x in g[n]),
               statistics.median(x["infer_samples_per_s"] for x in g[n])) for n in names if n in g}
    mean_len = g[names[0]][0]["mean_length"] if names[0] in g else "?"
    print(f"\n{lengths}, {cell}, {threads} threads (mean length {mean_len}):")
    for n in names:
        if n in med:
            print(f"  {n:18s} train {med[n][0]:10.1f}   infer {med[n][1]:10.1f}")
    def ratio(a, b, k):
        return f"{med[a][k] / med[b][k]:.2f}x" if a in med and b in med else "n/a"
    print(f"  skip / all rows:   train {ratio('cellflow skip', 'cellflow all rows', 0)}   infer {ratio('cellflow skip', 'cellflow all rows', 1)}")
    print(f"  skip / torch packed: train {ratio('cellflow skip', 'torch packed', 0)}   infer {ratio('cellflow skip', 'torch packed', 1)}")
EOF
cat "$out/summary.txt"
echo "results in $out"
