#!/usr/bin/env bash
# How long one translation unit that uses cellflow takes to compile (g++ -O2 -c, wall time),
# for translation units with the same training code and different includes, the getting-started
# program, the same TUs against the compiled companion library, and two baselines:
#   umbrella   #include <cellflow/cellflow.hpp>, builds and trains a 3-layer LSTM (one Adam step)
#   single     the same code, including only the headers it needs (cells/lstm_cell.hpp,
#              rnn/multi_rnn_cell.hpp, rnn/dynamic_rnn.hpp, layers/dense.hpp,
#              losses/sparse_softmax_cross_entropy.hpp, optimizers/adam.hpp)
#   model      the same training step through the model layer: #include <cellflow/model/model.hpp>,
#              cf::Model (3 x BasicLSTM(150), dense head) and one Model::train_step with Adam
#   started    the first program of docs/getting-started.md (Model of two GRUs, fit, save),
#              extracted from the Markdown file
#   umbrella+c, model+c, started+c
#              the same three TUs as a program linking cellflow::compiled compiles them: with
#              -DCELLFLOW_EXTERN_TEMPLATES (model+c includes <cellflow/cellflow.hpp>, which
#              brings the declarations; model/model.hpp alone does not)
#   parse      #include <cellflow/cellflow.hpp> and an empty main: what parsing the headers costs
#   eigen      #include <Eigen/Core> and one small matrix product: the floor
# Each is compiled RUNS times (default 3), interleaved (umbrella, single, model, ...) so that load
# changes hit all of them alike; the script prints the median and the range of the wall times, the
# median CPU time (user + system, less sensitive to other load on the machine), the load average
# before and after, the compiler and the CPU. The companion library's own two files
# (src/instantiate_float.cpp, src/instantiate_double.cpp: the one-time cost of cellflow::compiled)
# are compiled once, with the same flags, and the +c TUs linked against them and run (umbrella+c
# and model+c: one training step each), which checks that the declarations match the library.
# The results are in docs/compile-time.md.
#
#   benchmarks/compile_time.sh                   3 runs, g++
#   RUNS=5 CXX=clang++ benchmarks/compile_time.sh
#   CXXFLAGS="-O0" benchmarks/compile_time.sh    other flags (default -O2)
# Needs: a C++17 compiler, Eigen 3.4 (libeigen3-dev; EIGEN_INCLUDE, default /usr/include/eigen3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cxx=${CXX:-g++}
runs=${RUNS:-3}
flags=${CXXFLAGS:--O2}
eigen=${EIGEN_INCLUDE:-/usr/include/eigen3}
case $runs in '' | *[!0-9]* | 0) echo "compile_time.sh: RUNS must be a positive integer, given '$runs'" >&2; exit 2 ;; esac
[ -f "$eigen/Eigen/Core" ] || { echo "compile_time.sh: no Eigen in $eigen (set EIGEN_INCLUDE)" >&2; exit 2; }
command -v "$cxx" > /dev/null || { echo "compile_time.sh: compiler '$cxx' not found" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cellflow-compile-time.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The training code shared by the two cellflow TUs: 3 x BasicLSTMCell(150) on 28 inputs, a dense
# head, sparse softmax cross-entropy, backward through time and one Adam step.
body='
namespace cf = cellflow;
int main() {
  cf::Rng rng(42);
  std::vector<cf::BasicLSTMCell<float>> cells;
  for (int l = 0; l < 3; ++l) cells.emplace_back(l == 0 ? 28 : 150, 150, rng);
  cf::MultiRNNCell<float> multi(std::move(cells));
  cf::Dense<float> dense(150, 10, rng);
  cf::VariableList<float> vars;
  vars.add(multi, "rnn").add(dense);
  cf::AdamOptimizer<float> adam(0.001f);
  cf::Tensor3<float> x(8, 28, 28);
  x.setConstant(0.5f);
  std::vector<int> y(8, 3);
  vars.zero_grad();
  auto rnn = cf::dynamic_rnn(multi, x);
  const cf::Matrix<float>& h = rnn.final_state.back().h();
  auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, dense(h));
  auto d_state = multi.zero_state(8);
  d_state.back().h() = dense.backward(h, xent.mean_gradient());
  cf::dynamic_rnn_backward(multi, rnn, nullptr, &d_state);
  adam.apply_gradients(vars);
  return xent.mean() > 0 ? 0 : 1;
}'
printf '#include <cellflow/cellflow.hpp>\n#include <vector>\n%s\n' "$body" > "$work/umbrella.cpp"
printf '%s\n' '#include <cellflow/cells/lstm_cell.hpp>' '#include <cellflow/rnn/multi_rnn_cell.hpp>' \
  '#include <cellflow/rnn/dynamic_rnn.hpp>' '#include <cellflow/layers/dense.hpp>' \
  '#include <cellflow/losses/sparse_softmax_cross_entropy.hpp>' '#include <cellflow/optimizers/adam.hpp>' \
  '#include <vector>' "$body" > "$work/single.cpp"
cat > "$work/model.cpp" <<'EOF'
#include <cellflow/model/model.hpp>
#include <cellflow/optimizers/adam.hpp>
#include <vector>
namespace cf = cellflow;
int main() {
  cf::Rng rng(42);
  cf::Model<float> model(28, {cf::BasicLSTM(150), cf::BasicLSTM(150), cf::BasicLSTM(150)}, 10, rng);
  cf::AdamOptimizer<float> adam(0.001f);
  cf::Tensor3<float> x(8, 28, 28);
  x.setConstant(0.5f);
  const std::vector<int> y(8, 3);
  return model.train_step(x, y, adam).loss > 0 ? 0 : 1;
}
EOF
# The getting-started program: the first ```cpp block after "## A first program" in
# docs/getting-started.md (it trains for 4 epochs; only compiled here).
awk '/^## A first program/ { found = 1 } found && /^```cpp/ { inside = 1; next }
     inside && /^```/ { exit } inside { print }' "$root/docs/getting-started.md" > "$work/started.cpp"
grep -q 'int main(' "$work/started.cpp" ||
  { echo "compile_time.sh: no program found under '## A first program' in docs/getting-started.md" >&2; exit 1; }
# The companion variants: the same sources; model+c through the umbrella header (see the top).
cp "$work/umbrella.cpp" "$work/umbrella+c.cpp"
sed 's|#include <cellflow/model/model.hpp>|#include <cellflow/cellflow.hpp>|' "$work/model.cpp" > "$work/model+c.cpp"
cp "$work/started.cpp" "$work/started+c.cpp"
printf '#include <cellflow/cellflow.hpp>\nint main() { return 0; }\n' > "$work/parse.cpp"
cat > "$work/eigen.cpp" <<'EOF'
#include <Eigen/Core>
int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Constant(8, 8, 0.5f), b = a * a;
  return b(0, 0) > 0 ? 0 : 1;
}
EOF

names=(umbrella single model started umbrella+c model+c started+c parse eigen)
declare -A times cputimes
compile() {  # compile <source> [<flag>...]: prints "wall cpu" seconds of one compile (cpu = user + system)
  local TIMEFORMAT='%R %U %S' t src=$1 extra=()
  shift
  extra=("$@")
  case $src in *+c.cpp) extra+=(-DCELLFLOW_EXTERN_TEMPLATES) ;; esac
  # shellcheck disable=SC2086
  t=$( { time "$cxx" -std=c++17 $flags "${extra[@]}" -I"$root/include" -I"$eigen" -c "$src" -o "$work/$(basename "${src%.cpp}").o" 2>&3; } 3>&2 2>&1 )
  awk -v t="$t" 'BEGIN { split(t, f, " "); printf "%.2f %.2f", f[1], f[2] + f[3] }'
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The companion library's two files, once (also warms the file cache).
declare -A companion
for type in float double; do
  read -r wall cpu <<< "$(compile "$root/src/instantiate_$type.cpp")"
  companion[$type]="$wall $cpu"
  echo "companion: src/instantiate_$type.cpp ${wall} s wall, ${cpu} s cpu" >&2
done
for name in "${names[@]}"; do compile "$work/$name.cpp" > /dev/null; done  # warm the file cache; checks it compiles
for name in umbrella+c model+c; do  # the declarations match the library's definitions: links and runs
  "$cxx" "$work/$name.o" "$work/instantiate_float.o" "$work/instantiate_double.o" -o "$work/$name" ||
    { echo "compile_time.sh: $name does not link against the companion's objects" >&2; exit 1; }
  "$work/$name" || { echo "compile_time.sh: $name linked against the companion failed" >&2; exit 1; }
done
for ((r = 1; r <= runs; r++)); do
  for name in "${names[@]}"; do
    read -r wall cpu <<< "$(compile "$work/$name.cpp")"
    times[$name]="${times[$name]:-} $wall"
    cputimes[$name]="${cputimes[$name]:-} $cpu"
    echo "run $r: $name ${wall} s wall, ${cpu} s cpu" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

stats() {  # median min max of the numbers given
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f %.2f", m, v[1], v[NR] }'
}
echo "compiler: $("$cxx" --version | head -1); flags: -std=c++17 $flags -c; $runs runs each, interleaved"
echo "machine: $(nproc) cores; load average (1, 5, 15 min) before: $load_before, after: $load_after"
echo "cpu: $(lscpu 2> /dev/null | sed -n 's/^Model name: *//p' | head -1)"
echo "isa flags: $(grep -m1 '^flags' /proc/cpuinfo 2> /dev/null | tr ' ' '\n' |
  grep -E '^(sse4_2|avx|avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16|avx512_vnni|amx_tile|asimd|sve)$' | tr '\n' ' ')"
echo "companion library (once; cellflow::compiled): src/instantiate_float.cpp ${companion[float]% *} s wall," \
  "${companion[float]#* } s cpu; src/instantiate_double.cpp ${companion[double]% *} s wall, ${companion[double]#* } s cpu"
echo
echo "| translation unit | median wall time | range | median CPU time (user + sys) |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  read -r med lo hi <<< "$(stats ${times[$name]})"
  # shellcheck disable=SC2086
  read -r cmed _ _ <<< "$(stats ${cputimes[$name]})"
  case $name in
    umbrella) label='`#include <cellflow/cellflow.hpp>`, trains a 3-layer LSTM' ;;
    single) label='the same code, only the 6 headers it needs' ;;
    model) label='the same step through `cf::Model` (`model/model.hpp`, `optimizers/adam.hpp`)' ;;
    started) label='the getting-started program (`Model` of 2 GRUs, `fit`, `save`)' ;;
    umbrella+c) label='umbrella, linking `cellflow::compiled` (`-DCELLFLOW_EXTERN_TEMPLATES`)' ;;
    model+c) label='model through `cellflow/cellflow.hpp`, linking `cellflow::compiled`' ;;
    started+c) label='getting-started program, linking `cellflow::compiled`' ;;
    parse) label='`#include <cellflow/cellflow.hpp>` and no code (parsing alone)' ;;
    eigen) label='`#include <Eigen/Core>` only (the floor)' ;;
  esac
  echo "| $label | $med s | $lo-$hi s | $cmed s |"
done
