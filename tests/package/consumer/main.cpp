// cellflow consumer: a 2-layer BasicLSTMCell stack run by dynamic_rnn with sequence_length,
// checked against an independent step-major loop of TF1's BasicLSTMCell equations written here
// with plain std::vector and <cmath>. Prints the version, the variables and the final state;
// exits 1 on any mismatch. Built by tests/package/run_consumer.cmake through find_package,
// add_subdirectory, FetchContent and pkg-config; all four must print exactly expected_lstm.txt.
#include <cellflow/cellflow.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace cf = cellflow;

static_assert(CELLFLOW_VERSION_AT_LEAST(0, 1, 0), "this consumer needs cellflow 0.1.0 or later");

namespace {

using Vec = std::vector<double>;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// TF1 BasicLSTMCell, one step for one example: z = [x, h] @ K + b, gates i | j | f | o,
// c' = sigmoid(f + 1) c + sigmoid(i) tanh(j), h' = sigmoid(o) tanh(c').
void lstm_step(const cf::Matrix<double>& kernel, const cf::Matrix<double>& bias, const Vec& x, Vec& c, Vec& h) {
  const std::size_t units = h.size();
  Vec z(4 * units);
  for (std::size_t k = 0; k < 4 * units; ++k) {
    double s = bias(0, static_cast<cf::Index>(k));
    for (std::size_t r = 0; r < x.size(); ++r) s += x[r] * kernel(static_cast<cf::Index>(r), static_cast<cf::Index>(k));
    for (std::size_t r = 0; r < units; ++r)
      s += h[r] * kernel(static_cast<cf::Index>(x.size() + r), static_cast<cf::Index>(k));
    z[k] = s;
  }
  for (std::size_t u = 0; u < units; ++u) {
    const double i = z[u], j = z[units + u], f = z[2 * units + u], o = z[3 * units + u];
    c[u] = sigmoid(f + 1.0) * c[u] + sigmoid(i) * std::tanh(j);
    h[u] = sigmoid(o) * std::tanh(c[u]);
  }
}

}  // namespace

int main() {
  constexpr cf::Index batch = 2, time = 5, depth = 3, units = 4;
  const std::vector<cf::Index> lengths{5, 3};

  std::printf("cellflow %s\n", CELLFLOW_VERSION_STRING);
#ifdef CONSUMER_EXPECTED_VERSION  // the version find_package(cellflow) reported
  if (std::strcmp(CONSUMER_EXPECTED_VERSION, CELLFLOW_VERSION_STRING) != 0) {
    std::printf("FAIL: the CMake package says version %s, cellflow/version.hpp says %s\n", CONSUMER_EXPECTED_VERSION,
                CELLFLOW_VERSION_STRING);
    return 1;
  }
#endif

  cf::Rng rng(7);
  std::vector<cf::BasicLSTMCell<double>> cells;
  cells.emplace_back(depth, units, rng);
  cells.emplace_back(units, units, rng);
  cf::MultiRNNCell<double> multi(std::move(cells));
  cf::VariableList<double> vars;
  vars.add(multi, "rnn");
  // The variables by TF name, as the reference below reads them.
  const char* names[2][2] = {
      {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"},
      {"rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel", "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias"}};
  // TF1 initialises biases to zero; give them values so that the check covers them.
  for (int l = 0; l < 2; ++l)
    for (cf::Index k = 0; k < 4 * units; ++k) (*vars[names[l][1]].value)(0, k) = 0.05 * double(k % 7) - 0.1 * double(l);
  std::printf("%zu variables, %ld scalars\n", vars.size(), static_cast<long>(vars.num_scalars()));
  for (const auto& v : vars) std::printf("  %s %s\n", v.name.c_str(), cf::shape_string(v.shape).c_str());

  cf::Tensor3<double> x(batch, time, depth);
  for (cf::Index b = 0; b < batch; ++b)
    for (cf::Index t = 0; t < time; ++t)
      for (cf::Index d = 0; d < depth; ++d) x(b, t, d) = std::sin(0.7 * double(b) + 0.3 * double(t) + 1.1 * double(d));

  cf::RNNOptions opts;
  opts.sequence_length = lengths;
  opts.training = false;
  const auto result = cf::dynamic_rnn(multi, x, opts);

  // The reference: TF's own order, step-major (at step t layer 0 then layer 1).
  double worst = 0;
  bool padded_zero = true;
  for (cf::Index b = 0; b < batch; ++b) {
    std::vector<Vec> c(2, Vec(units, 0.0)), h(2, Vec(units, 0.0));
    for (cf::Index t = 0; t < time; ++t) {
      if (t >= lengths[static_cast<std::size_t>(b)]) {  // past the end: output exactly 0
        for (cf::Index u = 0; u < units; ++u) padded_zero = padded_zero && result.outputs(b, t, u) == 0.0;
        continue;
      }
      Vec in(static_cast<std::size_t>(depth));
      for (cf::Index d = 0; d < depth; ++d) in[static_cast<std::size_t>(d)] = x(b, t, d);
      for (std::size_t l = 0; l < 2; ++l) {
        lstm_step(*vars[names[l][0]].value, *vars[names[l][1]].value, in, c[l], h[l]);
        in = h[l];
      }
      for (cf::Index u = 0; u < units; ++u)
        worst = std::max(worst, std::abs(result.outputs(b, t, u) - h[1][static_cast<std::size_t>(u)]));
    }
    for (std::size_t l = 0; l < 2; ++l)
      for (cf::Index u = 0; u < units; ++u) {
        const auto& s = result.final_state[l];
        worst = std::max(worst, std::abs(s.c()(b, u) - c[l][static_cast<std::size_t>(u)]));
        worst = std::max(worst, std::abs(s.h()(b, u) - h[l][static_cast<std::size_t>(u)]));
      }
  }

  std::printf("outputs [%ld, %ld, %ld], sequence_length {%ld, %ld}\n", static_cast<long>(result.outputs.dimension(0)),
              static_cast<long>(result.outputs.dimension(1)), static_cast<long>(result.outputs.dimension(2)),
              static_cast<long>(lengths[0]), static_cast<long>(lengths[1]));
  for (cf::Index b = 0; b < batch; ++b) {
    std::printf("final h of layer 1, example %ld:", static_cast<long>(b));
    for (cf::Index u = 0; u < units; ++u) std::printf(" %.6f", result.final_state.back().h()(b, u));
    std::printf("\n");
  }
  if (!padded_zero) {
    std::printf("FAIL: outputs past sequence_length are not exactly 0\n");
    return 1;
  }
  if (!(worst < 1e-12)) {
    std::printf("FAIL: cellflow differs from the reference loop by %g\n", worst);
    return 1;
  }
  std::printf("matches the reference loop (max abs difference < 1e-12); padded outputs are 0\n");
  return 0;
}
