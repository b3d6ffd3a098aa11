#!/usr/bin/env bash
# Data-parallel training over MPI on this machine, in one sitting: one process against two ranks
# sharing the global batch, interleaved (repeat 1 of every configuration, then repeat 2, ...; the
# order is reversed on every other repeat), then the compute of one rank at several batch sizes
# and a raw MPI_Allreduce micro-benchmark. Prints the tables (medians, min-max over the repeats,
# ratios to configuration (a) taken within each repeat) and writes them, the machine, the command
# lines and the raw JSON lines to benchmarks/results/distributed-<date>.txt.
# docs/distributed.md explains the figures; benchmarks/distributed_model.py reads that file.
#
#   benchmarks/distributed.sh [BINARY]      default build/benchmarks/cellflow_distributed_bench
#       --repeats N (5)  --iters N (30)  --warmup N (5)    the seed model's runs
#       --big-iters N (8)                                  the 10x model's runs (3 x LSTM(480))
#       --no-big  --no-compute  --no-allreduce             leave a part out
#       --out FILE                                         instead of results/distributed-<date>.txt
#       --max-wait S (900)        before each run, wait until the machine is idle (other processes
#                                 < 0.15 core), at most S seconds in all; every run records the
#                                 share of CPU other processes took while it ran ("foreign_cpu")
#       --note TEXT                                        a line for the header (e.g. how the binary was built)
#
# Builds nothing: configure with MPI found (cellflow::mpi) and
#   cmake --build build --target cellflow_distributed_bench
# Runs `mpirun` (Open MPI's options: --bind-to, --oversubscribe); as root it sets
# OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 for its own runs.
# The matrix (seed model: 3 x BasicLSTM(150), 28 x 28 inputs, 10 classes, float, Adam, global
# batch 150):
#   a  1 process, 2 threads (batch_threads 2)           the single-process baseline
#   b  1 process, 1 thread
#   c  2 ranks x 1 thread, overlap, a bucket per layer  (--bucket-bytes 0)
#   d  2 ranks x 1 thread, overlap, default buckets     (4 MB: one bucket for 1.9 MB)
#   e  2 ranks x 1 thread, no overlap                   (blocking MPI_Allreduce after backward)
#   f  2 ranks x 1 thread, no allreduce                 (control: each rank steps alone on its 75)
# and A, C, E, F: the same as a, c, e, f for 3 x BasicLSTM(480) (4.67 M parameters, 18.7 MB).
# Then, per repeat: one rank's step at batches 150, 75, ..., 3 (1 thread, both models), the
# MPI_Allreduce micro-benchmark (8 B to 32 MB, 2 ranks), how much of an MPI_Iallreduce 20 ms of
# busy work hides with k MPI_Test calls during it, and the cost of a fresh 32 MB buffer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/benchmarks/cellflow_distributed_bench
repeats=5 iters=30 warmup=5 big_iters=8 big=1 compute=1 allreduce=1 out="" max_wait=900 note=""
while [ $# -gt 0 ]; do
  case $1 in
    --repeats) repeats=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --big-iters) big_iters=$2; shift 2 ;;
    --no-big) big=0; shift ;;
    --no-compute) compute=0; shift ;;
    --no-allreduce) allreduce=0; shift ;;
    --out) out=$2; shift 2 ;;
    --max-wait) max_wait=$2; shift 2 ;;
    --note) note=$2; shift 2 ;;
    -*) echo "distributed.sh: unknown option $1" >&2; exit 2 ;;
    *) bin=$1; shift ;;
  esac
done
if [ ! -x "$bin" ]; then
  echo "distributed.sh: no benchmark at $bin (build the target cellflow_distributed_bench, or pass its path)" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
command -v mpirun > /dev/null || { echo "distributed.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$root/benchmarks/results/distributed-$stamp.txt
mkdir -p "$(dirname "$out")"
raw=$(mktemp) cmds=$(mktemp) one_out=$(mktemp) timing=$(mktemp)
trap 'rm -f "$raw" "$cmds" "$one_out" "$timing"' EXIT

one="mpirun --oversubscribe --bind-to none -np 1"   # one process: its threads may use both cores
two="mpirun --oversubscribe --bind-to core -np 2"   # two ranks: one core each
seed_opts="--iters $iters --warmup $warmup"
big_opts="--hidden 480 --iters $big_iters --warmup 2"
configs=(
  "a|$one|--threads 2 $seed_opts"
  "b|$one|--threads 1 $seed_opts"
  "c|$two|--threads 1 --bucket-bytes 0 $seed_opts"
  "d|$two|--threads 1 $seed_opts"
  "e|$two|--threads 1 --overlap 0 $seed_opts"
  "f|$two|--threads 1 --allreduce 0 $seed_opts"
)
if [ "$big" = 1 ]; then
  configs+=(
    "A|$one|--threads 2 $big_opts"
    "C|$two|--threads 1 --bucket-bytes 0 $big_opts"
    "E|$two|--threads 1 --overlap 0 $big_opts"
    "F|$two|--threads 1 --allreduce 0 $big_opts"
  )
fi

# CPU seconds the whole machine spent busy (user, nice, system, irq, softirq, steal) so far.
tck=$(getconf CLK_TCK)
busy() { awk -v t="$tck" '/^cpu /{printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t}' /proc/stat; }

# Waits (up to --max-wait seconds in all) until other processes use less than 0.15 of a core,
# sampled over a second: a compile running next to a 2-rank measurement slows one rank and so both.
waited=0
wait_idle() {
  while :; do
    local a b
    a=$(busy); sleep 1; b=$(busy)
    if awk -v a="$a" -v b="$b" 'BEGIN { exit !(b - a < 0.15) }'; then return; fi
    if [ "$waited" -ge "$max_wait" ]; then echo "  (machine still busy; measuring anyway)" >&2; return; fi
    sleep 4; waited=$((waited + 5))
  done
}

# Runs one measurement: label, threads (OMP_NUM_THREADS), launcher, options, repeat. Tags its
# JSON lines with the repeat and "foreign_cpu": the share of the machine's CPU time that other
# processes used during the run (its busy time minus the run's own user + system time).
run() {
  local label=$1 threads=$2 launcher=$3 opts=$4 repeat=$5
  local cmd="OMP_NUM_THREADS=$threads $launcher $bin --label $label $opts"
  grep -qxF "$label: $cmd" "$cmds" || echo "$label: $cmd" >> "$cmds"
  wait_idle
  echo "repeat $repeat: $label" >&2
  local b0 b1
  b0=$(busy)
  OMP_NUM_THREADS=$threads /usr/bin/time -f "%e %U %S" -o "$timing" $launcher "$bin" --label "$label" $opts > "$one_out"
  b1=$(busy)
  local foreign
  foreign=$(awk -v b0="$b0" -v b1="$b1" -v n="$(nproc)" '{ f = (b1 - b0 - $2 - $3) / ($1 * n); if (f < 0) f = 0; printf "%.3f", f }' "$timing")
  sed "s/^{/{\"repeat\": $repeat, \"foreign_cpu\": $foreign, /" "$one_out" >> "$raw"
}

start_load=$(cat /proc/loadavg)
for r in $(seq 1 "$repeats"); do
  order=("${configs[@]}")
  if [ $((r % 2)) = 0 ]; then  # every other repeat runs the matrix backwards
    order=()
    for ((k = ${#configs[@]} - 1; k >= 0; k--)); do order+=("${configs[k]}"); done
  fi
  for c in "${order[@]}"; do
    IFS='|' read -r label launcher opts <<< "$c"
    threads=$(sed -E 's/.*--threads ([0-9]+).*/\1/' <<< "$opts")
    run "$label" "$threads" "$launcher" "--mode train $opts" "$r"
  done
  if [ "$compute" = 1 ]; then  # one rank's step at the per-rank batches of 1..64 ranks, 1 thread
    run compute 1 "$one" "--mode compute --threads 1 --batches 150,75,38,19,10,5,3 --iters 20 --warmup 3" "$r"
    if [ "$big" = 1 ]; then
      run compute-big 1 "$one" "--mode compute --threads 1 --hidden 480 --batches 150,75,38,19,10,5,3 --iters 4 --warmup 1" "$r"
    fi
  fi
  if [ "$allreduce" = 1 ]; then
    run allreduce 1 "$two" "--mode allreduce --min-bytes 8 --max-bytes 33554432" "$r"
    run overlap 1 "$two" "--mode overlap --bytes-list 1880440,7380480 --work-ms 20 --tests 0,1,2,3,5,10,100" "$r"
    run pagefault 1 "$one" "--mode pagefault" "$r"
  fi
done
end_load=$(cat /proc/loadavg)

{
  echo "# cellflow distributed benchmark, $(date -Is)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "binary: $bin"
  [ -z "$note" ] || echo "note: $note"
  echo "host: $(uname -srm), nproc $(nproc), $(mpirun --version 2>/dev/null | head -1)"
  lscpu | grep -E "^Model name|^Flags" | sed 's/  */ /g'
  echo "load average at start: $start_load; at end: $end_load; waited for an idle machine: ${waited} s"
  echo "repeats: $repeats, seed model: --iters $iters --warmup $warmup, 10x model: --iters $big_iters --warmup 2"
  echo
  echo "## Command lines"
  echo
  sed 's/^/    /' "$cmds"
  echo
  python3 - "$raw" <<'EOF'
import json, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
med = statistics.median

foreign = [r["foreign_cpu"] for r in rows if "foreign_cpu" in r]
if foreign:
    worst = max(rows, key=lambda r: r.get("foreign_cpu", 0))
    print(f"Other processes' share of the machine's CPU during the runs: median {med(foreign):.1%}, "
          f"largest {worst['foreign_cpu']:.1%} (run {worst['label']}, repeat {worst['repeat']})")
    print()

def rng(v, fmt="{:,.0f}"):
    return f"{fmt.format(min(v))}-{fmt.format(max(v))}"

names = {
    "a": "1 process, 2 threads", "b": "1 process, 1 thread",
    "c": "2 ranks x 1 thread, overlap, bucket per layer", "d": "2 ranks x 1 thread, overlap, default buckets (4 MB)",
    "e": "2 ranks x 1 thread, no overlap (blocking, after backward)", "f": "2 ranks x 1 thread, no allreduce (control)",
    "A": "1 process, 2 threads", "C": "2 ranks x 1 thread, overlap, bucket per layer",
    "E": "2 ranks x 1 thread, no overlap (blocking, after backward)", "F": "2 ranks x 1 thread, no allreduce (control)",
}

def train_table(labels, base, title):
    train = [r for r in rows if r["mode"] == "train" and r["label"] in labels]
    if not train:
        return
    first = train[0]
    print(f"## {title}: {first['layers']} x BasicLSTM({first['hidden']}), {first['params']:,} parameters "
          f"({first['grad_bytes'] / 1e6:.2f} MB of gradients), global batch {first['batch']}")
    print()
    print(f"Samples/s of the global batch: median over the repeats (min-max); ratio to ({base}) within each repeat.")
    print("step ms: median step (the slowest rank's); fwd/bwd: rank 0's forward and backward passes; exposed: mean")
    print("seconds per step in MPI after backward (GradientAllreduce::last_wait_seconds, mean over steps and ranks);")
    print("skew: median gap between the first and the last rank's end of backward (the first waits that long);")
    print("unhidden: median over steps of the last rank's wait (it waits for no compute: the communication overlap left);")
    print("copy: one copy of every gradient into a buffer and back (what packing and unpacking the buckets costs).")
    print()
    print("| | configuration | buckets (bytes) | samples/s (range) | GFLOP/s | vs (" + base + ") (range) | step ms | fwd ms | bwd ms | exposed ms (range) | exposed / step | skew ms | unhidden ms (range) | copy ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    by_repeat = {}
    for r in train:
        by_repeat.setdefault(r["repeat"], {})[r["label"]] = r
    for label in labels:
        runs = [r for r in train if r["label"] == label]
        if not runs:
            continue
        sps = [r["samples_per_s"] for r in runs]
        ratios = [rep[label]["samples_per_s"] / rep[base]["samples_per_s"]
                  for rep in by_repeat.values() if label in rep and base in rep]
        step = med([r["step_ms_median"] for r in runs])
        wait = [r["wait_ms_mean"] for r in runs]
        buckets = ", ".join(f"{b:,}" for b in runs[0]["buckets"]) or "-"
        exposed = f"{med(wait):.1f} ({rng(wait, '{:.1f}')})" if runs[0]["allreduce"] else "-"
        share = f"{med(wait) / step:.0%}" if runs[0]["allreduce"] else "-"
        skew = f"{med([r['skew_ms_median'] for r in runs]):.2f}" if runs[0]["allreduce"] else "-"
        unhidden = [r.get("unhidden_ms_median") for r in runs]
        unhidden = (f"{med(unhidden):.2f} ({rng(unhidden, '{:.2f}')})"
                    if runs[0]["allreduce"] and None not in unhidden else "-")
        print(f"| {label} | {names.get(label, label)} | {buckets} | {med(sps):,.0f} ({rng(sps)}) | "
              f"{med([r['gflops'] for r in runs]):.1f} | {med(ratios):.2f}x ({rng(ratios, '{:.2f}')}) | {step:.1f} | "
              f"{med([r['forward_ms'] for r in runs]):.1f} | {med([r['backward_ms'] for r in runs]):.1f} | "
              f"{exposed} | {share} | {skew} | {unhidden} | {med([r['copy_ms'] for r in runs]):.2f} |")
    print()

train_table(["a", "b", "c", "d", "e", "f"], "a", "Seed model")
train_table(["A", "C", "E", "F"], "A", "10x model")

for label, title in (("compute", "seed model"), ("compute-big", "10x model")):
    comp = [r for r in rows if r["mode"] == "compute" and r["label"] == label]
    if not comp:
        continue
    print(f"## One rank's training step by batch size, 1 thread, {title} ({comp[0]['params']:,} parameters)")
    print()
    print("Median over the repeats of each run's median step; ready: ms after the forward pass at which the")
    print("head's and then each layer's (top down) gradients were final.")
    print()
    print("| batch | step ms (range) | samples/s | GFLOP/s | ms per example | fwd ms | bwd ms | update ms | ready ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in sorted({r["batch"] for r in comp}, reverse=True):
        runs = [r for r in comp if r["batch"] == b]
        step = [r["step_ms_median"] for r in runs]
        ready = [med([r["group_ready_ms"][g] for r in runs]) for g in range(len(runs[0]["group_ready_ms"]))]
        print(f"| {b} | {med(step):.2f} ({rng(step, '{:.2f}')}) | {med([r['samples_per_s'] for r in runs]):,.0f} | "
              f"{med([r['gflops'] for r in runs]):.1f} | {med(step) / b:.3f} | {med([r['forward_ms'] for r in runs]):.2f} | "
              f"{med([r['backward_ms'] for r in runs]):.2f} | {med([r['update_ms'] for r in runs]):.2f} | "
              f"{', '.join(f'{x:.2f}' for x in ready)} |")
    print()

ar = [r for r in rows if r["mode"] == "allreduce"]
if ar:
    print(f"## MPI_Allreduce (float, sum, in place), {ar[0]['ranks']} ranks on this machine")
    print()
    print("Each repeat: median of many calls (each after a barrier, the slowest rank's time); here the median")
    print("over the repeats (min-max of the repeats' medians).")
    print()
    print("| bytes | calls per repeat | us median (range) | GB/s |")
    print("|---|---|---|---|")
    for b in sorted({r["bytes"] for r in ar}):
        runs = [r for r in ar if r["bytes"] == b]
        us = [r["us_median"] for r in runs]
        print(f"| {b:,} | {runs[0]['reps']} | {med(us):,.1f} ({rng(us, '{:,.1f}')}) | {b / med(us) / 1e3:.2f} |")
    fits = [r for r in rows if r["mode"] == "allreduce_fit"]
    if fits:
        a = [r["alpha_us"] for r in fits]
        bw = [r["bandwidth_gbytes_per_s"] for r in fits]
        print()
        print(f"Ring-model fit, t = 2(N-1) alpha + 2(N-1)/N bytes / bandwidth (alpha from the sizes up to 1 KB, "
              f"the bandwidth from 1 to 16 MB): alpha {med(a):.2f} us ({rng(a, '{:.2f}')}), "
              f"bandwidth {med(bw):.2f} GB/s ({rng(bw, '{:.2f}')})")
    ov = [r for r in rows if r["mode"] == "overlap"]
    if ov:
        print()
        print(f"## How much of an MPI_Iallreduce {ov[0]['work_ms']:.0f} ms of busy work hides, {ov[0]['ranks']} ranks")
        print()
        print("MPI_Iallreduce, busy work with k MPI_Test calls evenly spaced in it, MPI_Wait: the wait left after the")
        print("work (median of 20, the slowest rank's; median over the repeats) against the blocking MPI_Allreduce.")
        print()
        sizes = sorted({r["bytes"] for r in ov})
        tests = sorted({r["tests"] for r in ov})
        print("| bytes | blocking us | " + " | ".join(f"wait us, k = {k}" for k in tests) + " |")
        print("|---|---|" + "---|" * len(tests))
        for b in sizes:
            cells = []
            for k in tests:
                w = [r["wait_us"] for r in ov if r["bytes"] == b and r["tests"] == k]
                cells.append(f"{med(w):,.1f}")
            bl = [r["blocking_us"] for r in ov if r["bytes"] == b]
            print(f"| {b:,} | {med(bl):,.1f} | " + " | ".join(cells) + " |")
    pf = [r["us_per_page"] for r in rows if r["mode"] == "pagefault"]
    if pf:
        print()
        print(f"A fresh 32 MB buffer (mmap, first touch of every 4 KB page, munmap): {med(pf):.2f} us per page "
              f"({rng(pf, '{:.2f}')}), {med(pf) * 8192 / 1e3:.0f} ms for 32 MB")
    print()
EOF
  echo "## Raw JSON lines"
  echo
  cat "$raw"
} | tee "$out"
echo "written: $out" >&2
