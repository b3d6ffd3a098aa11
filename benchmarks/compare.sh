#!/usr/bin/env bash
# Runs cellflow's benchmark and its peers (benchmarks/peers/: PyTorch, oneDNN's RNN primitives,
# the SGEMM peak) interleaved in one sitting (repeat 1 of everything, then repeat 2, ...),
# collects the JSON lines and prints the median/range tables with cellflow/peer ratios.
#
#   benchmarks/compare.sh                 3 repeats x threads {2,1} x cells {lstm,gru,peephole},
#                                         bf16 inference and 1-thread streaming (~15 min on 2 cores)
#   benchmarks/compare.sh --quick         1 repeat, few iterations, same coverage (a few minutes;
#                                         7 min on the 2-core VM at load average 7, 2026-12-07)
#   benchmarks/compare.sh --repeats 5 --threads 2 --cells lstm --iters 30
#   benchmarks/compare.sh --baseline OLD/cellflow_bench   also runs another build of cellflow_bench
#                         (e.g. of the commit before a change), interleaved, as "cellflow-baseline"
#   options: --no-stream, --no-bf16, --warmup N
#
# Needs the peers' Debian 12 packages (benchmarks/peers/install.sh): python3-torch for
# /usr/bin/python3 (or PYTHON=...), libopenblas0-openmp, libdnnl-dev, libeigen3-dev, g++.
# Writes benchmarks/results/<date>/: machine.txt (CPU, ISA, versions), raw.jsonl, run.log,
# summary.md. cellflow's own bf16 rows are added when `cellflow_bench $CELLFLOW_BF16_ARGS`
# (default "--dtype bf16") runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peers=$root/benchmarks/peers
py=${PYTHON:-/usr/bin/python3}
bf16_args=${CELLFLOW_BF16_ARGS:---dtype bf16}
repeats=3 threads="2 1" cells="lstm gru peephole" iters=30 warmup=5 stream=1 bf16=1 baseline=""
gemm_opts="--samples 7 --min-ms 25" stream_iters=100 stream_warmup=10 stream_steps=2000
cmdline="benchmarks/compare.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --quick)
      repeats=1 iters=5 warmup=2 gemm_opts="--samples 3 --min-ms 10"
      stream_iters=20 stream_warmup=5 stream_steps=500
      shift ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cells) cells=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --no-stream) stream=0; shift ;;
    --no-bf16) bf16=0; shift ;;
    --baseline) baseline=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
if ! "$py" -c "import torch" 2> /dev/null; then
  echo "compare.sh: $py cannot import torch; install the peers' packages: benchmarks/peers/install.sh" >&2
  exit 1
fi

# cellflow's benchmark, and the C++ peers built the same way (-O3 -march=native, OpenMP).
build=$root/build-bench
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCELLFLOW_BUILD_TESTS=OFF -DCELLFLOW_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" --target cellflow_bench -j"$(nproc)" > /dev/null
bench=$build/benchmarks/cellflow_bench
mkdir -p "$build/peers"
cxx=${CXX:-g++}
have_dnnl=0
if [ -f /usr/include/oneapi/dnnl/dnnl.hpp ]; then
  have_dnnl=1
  for prog in onednn_rnn gemm_peak; do
    if [ ! -x "$build/peers/$prog" ] || [ "$peers/$prog.cpp" -nt "$build/peers/$prog" ]; then
      echo "building $build/peers/$prog" >&2
      "$cxx" -std=c++17 -O3 -march=native -DNDEBUG -fopenmp -isystem /usr/include/eigen3 \
        "$peers/$prog.cpp" -o "$build/peers/$prog" -ldnnl
    fi
  done
else
  echo "compare.sh: libdnnl-dev is not installed: no oneDNN rows and no SGEMM peak (benchmarks/peers/install.sh)" >&2
fi
cellflow_bf16=0
if [ "$bf16" = 1 ] && OMP_NUM_THREADS=1 "$bench" --cell lstm --mode infer --threads 1 --iters 1 --warmup 0 \
  --batch 2 $bf16_args > /dev/null 2>&1; then
  cellflow_bf16=1
fi

out=$root/benchmarks/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
raw=$out/raw.jsonl log=$out/run.log
: > "$raw"
: > "$log"
{
  echo "date: $(date -Is)"
  commit=$(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown)
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2> /dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
  echo "commit: $commit"
  echo "command: $cmdline"
  if [ -n "$baseline" ]; then echo "baseline: $baseline"; fi
  lscpu | grep -m1 'Model name' | sed 's/  */ /g'
  echo "nproc: $(nproc); threads measured: $threads"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  have="" missing=""
  for f in avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_bf16 amx_int8; do
    case "$flags" in *" $f "*) have="$have $f" ;; *) missing="$missing $f" ;; esac
  done
  echo "ISA:$have (absent:${missing:- none})"
  lscpu | grep -E '^(L1d|L2|L3) cache' | sed 's/  */ /g'
  echo "versions:"
  echo "  torch $("$py" -c 'import torch; print(torch.__version__)' 2> /dev/null) ($(dpkg-query -W -f='python3-torch ${Version}' python3-torch 2> /dev/null))"
  echo "  oneDNN $(dpkg-query -W -f='${Version}' libdnnl-dev 2> /dev/null || echo 'not installed') (libdnnl-dev)"
  echo "  Eigen $(dpkg-query -W -f='${Version}' libeigen3-dev 2> /dev/null || echo '?') (libeigen3-dev)"
  echo "  OpenBLAS (OpenMP) $(dpkg-query -W -f='${Version}' libopenblas0-openmp 2> /dev/null || echo 'not installed')"
  echo "  $("$cxx" --version | head -1)"
  echo "  cellflow bf16 rows: $([ "$cellflow_bf16" = 1 ] && echo "yes ($bf16_args)" || echo no)"
} > "$out/machine.txt"
cat "$out/machine.txt" >&2
echo "writing $raw" >&2

# run LABEL CMD...: the command's JSON lines go to raw.jsonl, everything else to run.log.
run() {
  local label=$1
  shift
  echo "[$(date +%T)] load $(cut -d' ' -f1-3 /proc/loadavg) :: $label" | tee -a "$log" >&2
  local tmp
  tmp=$(mktemp)
  if ! "$@" > "$tmp" 2>> "$log"; then echo "  FAILED: $*" | tee -a "$log" >&2; fi
  cat "$tmp" >> "$log"
  grep '^{' "$tmp" >> "$raw" || true
  rm -f "$tmp"
}
# the same, through sed (the baseline's rows renamed; cellflow's bf16 rows marked when unmarked)
run_renamed() { run "$1" bash -c 'set -o pipefail; "${@:2}" | sed "$1"' _ "$2" "${@:3}"; }
baseline_sed='s/"impl": "cellflow"/"impl": "cellflow-baseline"/'
bf16_sed='/"dtype"/!s/^{/{"dtype": "bf16", /'

for r in $(seq 1 "$repeats"); do
  for t in $threads; do
    export OMP_NUM_THREADS=$t
    if [ "$have_dnnl" = 1 ]; then  # this sitting's SGEMM peak (and, once, the RNN's shapes)
      set_=square
      if [ "$r" = 1 ]; then set_=all; fi
      run "gemm_peak ${t}T" "$build/peers/gemm_peak" --threads "$t" --set $set_ $gemm_opts
    fi
    for c in $cells; do
      common=(--cell "$c" --threads "$t" --iters "$iters" --warmup "$warmup")
      run "repeat $r, ${t}T, $c: cellflow" "$bench" "${common[@]}"
      if [ -n "$baseline" ]; then
        run_renamed "repeat $r, ${t}T, $c: cellflow baseline" "$baseline_sed" "$baseline" "${common[@]}"
      fi
      if [ "$cellflow_bf16" = 1 ]; then
        run_renamed "repeat $r, ${t}T, $c: cellflow bf16" "$bf16_sed" "$bench" "${common[@]}" --mode infer $bf16_args
      fi
      run "repeat $r, ${t}T, $c: torch" "$py" "$peers/torch_rnn.py" "${common[@]}"
      if [ "$have_dnnl" = 1 ]; then
        run "repeat $r, ${t}T, $c: onednn" "$build/peers/onednn_rnn" "${common[@]}" --mode train,infer
        if [ "$bf16" = 1 ]; then
          run "repeat $r, ${t}T, $c: onednn bf16" "$build/peers/onednn_rnn" "${common[@]}" --mode infer --dtype bf16
        fi
      fi
    done
  done
  if [ "$stream" = 1 ]; then
    export OMP_NUM_THREADS=1
    s=(--cell lstm --threads 1 --mode stream --iters "$stream_iters" --warmup "$stream_warmup")
    run "repeat $r, stream: cellflow" "$bench" "${s[@]}"
    if [ -n "$baseline" ]; then
      run_renamed "repeat $r, stream: cellflow baseline" "$baseline_sed" "$baseline" "${s[@]}"
    fi
    if [ "$cellflow_bf16" = 1 ]; then
      run_renamed "repeat $r, stream: cellflow bf16" "$bf16_sed" "$bench" "${s[@]}" $bf16_args
    fi
    run "repeat $r, stream: torch" "$py" "$peers/torch_stream.py" --cell lstm --threads 1 --steps "$stream_steps"
    if [ "$have_dnnl" = 1 ]; then
      run "repeat $r, stream: onednn" "$build/peers/onednn_rnn" --cell lstm --threads 1 --mode stream --stream-steps "$stream_steps"
      if [ "$bf16" = 1 ]; then
        run "repeat $r, stream: onednn bf16" "$build/peers/onednn_rnn" --cell lstm --threads 1 --mode stream \
          --dtype bf16 --stream-steps "$stream_steps"
      fi
    fi
  fi
done
elapsed=$(($(date +%s) - start))
echo "elapsed: ${elapsed} s" >> "$out/machine.txt"
python3 "$root/benchmarks/summarize.py" "$raw" | tee "$out/summary.md"
echo "results in $out (${elapsed} s)" >&2
