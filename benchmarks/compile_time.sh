#!/usr/bin/env bash
# How long one translation unit that uses cellflow takes to compile (g++ -O2 -c, wall time),
# for translation units with the same training code and different includes, and two baselines:
#   umbrella   #include <cellflow/cellflow.hpp>, builds and trains a 3-layer LSTM (one Adam step)
#   single     the same code, including only the headers it needs (cells/lstm_cell.hpp,
#              rnn/multi_rnn_cell.hpp, rnn/dynamic_rnn.hpp, layers/dense.hpp,
#              losses/sparse_softmax_cross_entropy.hpp, optimizers/adam.hpp)
#   model      the same training step through the model layer: #include <cellflow/model/model.hpp>,
#              cf::Model (3 x BasicLSTM(150), dense head) and one Model::train_step with Adam
#   parse      #include <cellflow/cellflow.hpp> and an empty main: what parsing the headers costs
#   eigen      #include <Eigen/Core> and one small matrix product: the floor
# Each is compiled RUNS times (default 3), interleaved (umbrella, single, model, parse, eigen, ...)
# so that load changes hit all of them alike; the script prints the median and the range of the wall
# times, the median CPU time (user + system, less sensitive to other load on the machine), the
# load average before and after, and the compiler. The results are in docs/compile-time.md.
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
printf '#include <cellflow/cellflow.hpp>\nint main() { return 0; }\n' > "$work/parse.cpp"
cat > "$work/eigen.cpp" <<'EOF'
#include <Eigen/Core>
int main() {
  Eigen::MatrixXf a = Eigen::MatrixXf::Constant(8, 8, 0.5f), b = a * a;
  return b(0, 0) > 0 ? 0 : 1;
}
EOF

names=(umbrella single model parse eigen)
declare -A times cputimes
compile() {  # prints "wall cpu" seconds of one compile (cpu = user + system)
  local TIMEFORMAT='%R %U %S' t
  # shellcheck disable=SC2086
  t=$( { time "$cxx" -std=c++17 $flags -I"$root/include" -I"$eigen" -c "$work/$1.cpp" -o "$work/$1.o" 2>&3; } 3>&2 2>&1 )
  awk -v t="$t" 'BEGIN { split(t, f, " "); printf "%.2f %.2f", f[1], f[2] + f[3] }'
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for name in "${names[@]}"; do compile "$name" > /dev/null; done  # warm the file cache; checks it compiles
for ((r = 1; r <= runs; r++)); do
  for name in "${names[@]}"; do
    read -r wall cpu <<< "$(compile "$name")"
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
    parse) label='`#include <cellflow/cellflow.hpp>` and no code (parsing alone)' ;;
    eigen) label='`#include <Eigen/Core>` only (the floor)' ;;
  esac
  echo "| $label | $med s | $lo-$hi s | $cmed s |"
done
