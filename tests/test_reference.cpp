// cellflow against the independent float64 torch reference (tests/fixtures/*_reference.txt,
// written by tests/fixtures/generate_reference.py from the TF1 equations, gradients by autograd).
//
// Every recurrent case is run in float and double: the cells are built from the case's `config`
// lines, every variable is assigned from the fixture under its TensorFlow name, and dynamic_rnn
// (batch-major, then time-major) is compared with the fixture's outputs, final state and the
// gradients of L = sum(outputs * w_outputs) + sum_S sum(S * w_final_state/<S>). The head cases
// check Dense + sparse softmax cross-entropy forward and backward.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/test_util.hpp"

namespace test_reference {

using namespace cellflow_test;

// ---------------------------------------------------------------------------------------------
// Tolerances. The reference is float64.
//  double: rtol 1e-9, atol 1e-10. The fixture values are printed with %.17g, so the only
//          differences are rounding-order differences of the two implementations over a few
//          dozen flops per value (observed: ~1e-15); 1e-9 leaves ample room and still catches
//          any real formula error.
//  float:  rtol 2e-4, atol 2e-5: weights and inputs are rounded to float (rel. 6e-8) and every
//          operation rounds to 24 bits; errors grow over <= 6 steps and the backward sums.
// ---------------------------------------------------------------------------------------------
template <class T>
struct Tol;
template <>
struct Tol<double> {
  static constexpr double rtol = 1e-9;
  static constexpr double atol = 1e-10;
};
template <>
struct Tol<float> {
  static constexpr double rtol = 2e-4;
  static constexpr double atol = 2e-5;
};

const std::map<std::string, FixtureCase>& rnn_cases() {
  static const auto cases = cellflow_test::load_fixture_file(fixture_path("rnn_reference.txt"));
  return cases;
}

const std::map<std::string, FixtureCase>& head_cases() {
  static const auto cases = cellflow_test::load_fixture_file(fixture_path("head_reference.txt"));
  return cases;
}

const FixtureCase& get_case(const std::map<std::string, FixtureCase>& cases, const std::string& name) {
  const auto it = cases.find(name);
  if (it == cases.end()) throw std::runtime_error("fixture has no case '" + name + "'");
  return it->second;
}

/// The tensor names of one case in file order (FixtureCase keeps them in a std::map, which loses
/// the order; the generator writes variables in TensorFlow's creation order).
std::vector<std::string> tensor_names_in_file_order(const std::string& path, const std::string& case_name) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> out;
  bool inside = false, found = false;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string kw, name;
    ss >> kw;
    if (!inside) {
      if (kw == "case" && (ss >> name) && name == case_name) inside = found = true;
      continue;
    }
    if (kw == "end") break;
    if (kw == "tensor" && (ss >> name)) out.push_back(name);
  }
  if (!found) throw std::runtime_error("no case '" + case_name + "' in " + path);
  return out;
}

/// The fixture's variable names, in TF order: every tensor that is not data, a result, a loss
/// weight or a gradient.
std::vector<std::string> variable_names(const std::string& case_name) {
  std::vector<std::string> vars;
  for (const auto& n : tensor_names_in_file_order(fixture_path("rnn_reference.txt"), case_name)) {
    if (starts_with(n, "inputs") || starts_with(n, "outputs") || starts_with(n, "initial_state") ||
        starts_with(n, "final_state") || starts_with(n, "w_") || starts_with(n, "grad/") || n == "loss")
      continue;
    vars.push_back(n);
  }
  return vars;
}

// ---- shapes and comparisons ----

template <class T>
std::vector<long> shape_of(const cf::Matrix<T>& m) {
  return {static_cast<long>(m.rows()), static_cast<long>(m.cols())};
}
template <class T>
std::vector<long> shape_of(const cf::Tensor3<T>& t) {
  return {static_cast<long>(t.dimension(0)), static_cast<long>(t.dimension(1)), static_cast<long>(t.dimension(2))};
}
/// A fixture shape as cellflow stores it: rank 1 [n] -> 1 x n, rank 0 -> 1 x 1.
std::vector<long> stored_shape(const FixtureTensor& e) {
  if (e.shape.empty()) return {1, 1};
  if (e.shape.size() == 1) return {1, e.shape[0]};
  return e.shape;
}

std::string shape_str(const std::vector<long>& s) {
  std::string r = "[";
  for (std::size_t k = 0; k < s.size(); ++k) r += (k ? ", " : "") + std::to_string(s[k]);
  return r + "]";
}

/// CHECKs numpy.allclose(actual, expected, rtol, atol); on failure reports the worst element.
template <class A>
void check_close(const std::string& what, const A& actual, const FixtureTensor& expected, double rtol, double atol) {
  INFO(what << ": shape " << shape_str(shape_of(actual)) << ", expected " << shape_str(stored_shape(expected)));
  CHECK(shape_of(actual) == stored_shape(expected));
  if (static_cast<std::size_t>(actual.size()) != expected.values.size()) return;
  double worst_ratio = -1;
  std::size_t worst = 0;
  for (std::size_t k = 0; k < expected.values.size(); ++k) {
    const double a = static_cast<double>(actual.data()[k]), e = expected.values[k];
    const double d = std::abs(a - e);
    const double ratio = std::isnan(d) ? 1e300 : d / (atol + rtol * std::abs(e));
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = k;
    }
  }
  INFO("worst element #" << worst << ": got " << static_cast<double>(actual.data()[worst]) << ", expected "
                         << expected.values[worst] << " (|diff| / allowed = " << worst_ratio << ", rtol " << rtol
                         << ", atol " << atol << ")");
  CHECK(allclose(actual, expected.values, rtol, atol));
}

// ---- states as named leaves ("c", "h", "<layer>/c", "<layer>/h"), named as in the fixture ----

template <class T>
std::vector<std::pair<std::string, cf::Matrix<T>*>> state_leaves(cf::LSTMStateTuple<T>& s) {
  return {{"c", &s.c}, {"h", &s.h}};
}
template <class T>
std::vector<std::pair<std::string, cf::Matrix<T>*>> state_leaves(cf::Matrix<T>& h) {
  return {{"h", &h}};
}
template <class T>
std::vector<std::pair<std::string, cf::Matrix<T>*>> state_leaves(std::vector<cf::CellState<T>>& s) {
  std::vector<std::pair<std::string, cf::Matrix<T>*>> out;
  for (std::size_t l = 0; l < s.size(); ++l) {
    const std::string p = std::to_string(l) + "/";
    if (s[l].is_lstm()) out.emplace_back(p + "c", &s[l].c());
    out.emplace_back(p + "h", &s[l].h());
  }
  return out;
}

/// Number of tensors of the case whose name starts with `prefix`.
std::size_t count_tensors(const FixtureCase& fc, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& kv : fc.tensors) n += starts_with(kv.first, prefix) ? 1 : 0;
  return n;
}

/// Fills every leaf of `s` from "<prefix>/<leaf>"; requires the fixture to hold exactly those.
template <class T, class State>
void fill_state(State& s, const FixtureCase& fc, const std::string& prefix) {
  auto leaves = state_leaves<T>(s);
  REQUIRE(count_tensors(fc, prefix + "/") == leaves.size());
  for (auto& [name, m] : leaves) {
    const auto v = to_matrix<T>(fc.tensor(prefix + "/" + name));
    REQUIRE(v.rows() == m->rows());
    REQUIRE(v.cols() == m->cols());
    *m = v;
  }
}

template <class T, class State>
void check_state(const std::string& what, State s, const FixtureCase& fc, const std::string& prefix) {
  auto leaves = state_leaves<T>(s);
  CHECK(count_tensors(fc, prefix + "/") == leaves.size());
  for (auto& [name, m] : leaves)
    check_close(what + " " + prefix + "/" + name, *m, fc.tensor(prefix + "/" + name), Tol<T>::rtol, Tol<T>::atol);
}

template <class T, class State>
bool states_bitwise_equal(State a, State b) {
  auto la = state_leaves<T>(a), lb = state_leaves<T>(b);
  if (la.size() != lb.size()) return false;
  for (std::size_t k = 0; k < la.size(); ++k)
    if (la[k].first != lb[k].first || !bitwise_equal(*la[k].second, *lb[k].second)) return false;
  return true;
}

// ---- building the model from the config lines ----

template <class T>
cf::LSTMOptions<T> lstm_options(const FixtureCase& fc, const std::string& p) {
  cf::LSTMOptions<T> o;
  o.use_peepholes = fc.config_num(p + "use_peepholes") != 0;
  if (fc.config_str(p + "cell_clip") != "none") o.cell_clip = static_cast<T>(fc.config_num(p + "cell_clip"));
  if (fc.config_str(p + "num_proj") != "none") o.num_proj = static_cast<Index>(fc.config_num(p + "num_proj"));
  if (fc.config_str(p + "proj_clip") != "none") o.proj_clip = static_cast<T>(fc.config_num(p + "proj_clip"));
  o.forget_bias = static_cast<T>(fc.config_num(p + "forget_bias"));
  return o;
}

Index config_index(const FixtureCase& fc, const std::string& key) { return static_cast<Index>(fc.config_num(key)); }

/// One layer of a stack ("layer<l>." keys) as an AnyCell.
template <class T>
cf::AnyCell<T> make_layer(const FixtureCase& fc, const std::string& p, cf::Rng& rng) {
  const std::string kind = fc.config_str(p + "kind");
  const Index depth = config_index(fc, p + "input_depth"), units = config_index(fc, p + "num_units");
  if (kind == "basic_lstm")
    return cf::BasicLSTMCell<T>(depth, units, rng, static_cast<T>(fc.config_num(p + "forget_bias")));
  if (kind == "lstm") return cf::LSTMCell<T>(depth, units, lstm_options<T>(fc, p), rng);
  if (kind == "gru") return cf::GRUCell<T>(depth, units, rng);
  throw std::runtime_error("unknown layer kind '" + kind + "'");
}

/// Builds the case's cell with its concrete type and calls f(cell).
template <class T, class F>
void with_cell(const FixtureCase& fc, F&& f) {
  cf::Rng rng(static_cast<std::uint64_t>(fc.config_num("seed")));
  const std::string kind = fc.config_str("kind");
  if (kind == "multi") {
    std::vector<cf::AnyCell<T>> layers;
    for (Index l = 0; l < config_index(fc, "layers"); ++l)
      layers.push_back(make_layer<T>(fc, "layer" + std::to_string(l) + ".", rng));
    cf::MultiRNNCell<T> cell(std::move(layers));
    f(cell);
    return;
  }
  const Index depth = config_index(fc, "input_depth"), units = config_index(fc, "num_units");
  if (kind == "basic_lstm") {
    cf::BasicLSTMCell<T> cell(depth, units, rng, static_cast<T>(fc.config_num("forget_bias")));
    f(cell);
  } else if (kind == "lstm") {
    cf::LSTMCell<T> cell(depth, units, lstm_options<T>(fc, ""), rng);
    f(cell);
  } else if (kind == "gru") {
    cf::GRUCell<T> cell(depth, units, rng);
    f(cell);
  } else {
    FAIL("unknown cell kind '" << kind << "' in case " << fc.name);
  }
}

// ---- the recurrent case ----

template <class T>
void check_all_grads(const std::string& what, const cf::VariableList<T>& vars, const FixtureCase& fc) {
  for (const auto& v : vars)
    check_close(what + " grad/" + v.name, *v.grad, fc.tensor("grad/" + v.name), Tol<T>::rtol, Tol<T>::atol);
}

template <class T, class Cell>
void run_rnn_case(const FixtureCase& fc, Cell& cell) {
  using State = typename Cell::State;
  const double rtol = Tol<T>::rtol, atol = Tol<T>::atol;

  // Variables: TF names in TF order, then the fixture's values.
  cf::VariableList<T> vars;
  vars.add(cell, "rnn");
  std::vector<std::string> names;
  for (const auto& v : vars) names.push_back(v.name);
  const std::vector<std::string> expected_names = variable_names(fc.name);
  REQUIRE(!expected_names.empty());
  REQUIRE(names == expected_names);
  for (const auto& n : expected_names) vars.assign(n, to_matrix<T>(fc.tensor(n)));
  CHECK(cell.output_size() == config_index(fc, "output_size"));
  CHECK(cell.input_depth() == config_index(fc, "input_depth"));

  const cf::Tensor3<T> X = to_tensor3<T>(fc.tensor("inputs"));
  const Index batch = X.dimension(0), time = X.dimension(1);
  CHECK(batch == config_index(fc, "batch"));
  CHECK(time == config_index(fc, "time"));

  cf::RNNOptions opt;
  const bool has_lengths = fc.config_num("sequence_length") != 0;
  REQUIRE(fc.has_ints("sequence_length") == has_lengths);
  if (has_lengths) {
    const auto& ints = fc.int_list("sequence_length");
    opt.sequence_length = std::vector<Index>(ints.begin(), ints.end());
  }
  const bool has_init = fc.config_str("initial_state") == "random";
  REQUIRE((count_tensors(fc, "initial_state/") > 0) == has_init);
  State s0 = cell.zero_state(batch);
  if (has_init) fill_state<T>(s0, fc, "initial_state");

  auto run = [&](const cf::Tensor3<T>& inputs, const cf::RNNOptions& o) {
    return has_init ? cf::dynamic_rnn(cell, inputs, s0, o) : cf::dynamic_rnn(cell, inputs, o);
  };

  // Upstream gradients of L.
  const cf::Tensor3<T> dY = to_tensor3<T>(fc.tensor("w_outputs"));
  State dF = cell.zero_state(batch);
  fill_state<T>(dF, fc, "w_final_state");

  // ---- batch-major forward ----
  auto r = run(X, opt);
  check_close("outputs", r.outputs, fc.tensor("outputs"), rtol, atol);
  check_state<T>("final state", r.final_state, fc, "final_state");
  if (has_lengths) {  // padded outputs are exactly zero (select, not an approximation)
    const auto& len = *opt.sequence_length;
    for (Index b = 0; b < batch; ++b)
      for (Index t = len[static_cast<std::size_t>(b)]; t < time; ++t)
        for (Index k = 0; k < r.outputs.dimension(2); ++k) {
          INFO("example " << b << " (length " << len[static_cast<std::size_t>(b)] << "), step " << t);
          CHECK(r.outputs(b, t, k) == T(0));
        }
  }

  // ---- backward ----
  vars.zero_grad();
  auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
  check_close("grad/inputs", g.d_inputs, fc.tensor("grad/inputs"), rtol, atol);
  if (has_init) check_state<T>("d initial state", g.d_initial_state, fc, "grad/initial_state");
  check_all_grads<T>("batch-major", vars, fc);

  // ---- the same case time-major (inputs and upstream gradients transposed here) ----
  {
    cf::RNNOptions tm = opt;
    tm.time_major = true;
    const cf::Tensor3<T> Xt = swap01(X);
    auto rt = run(Xt, tm);
    REQUIRE(rt.outputs.dimension(0) == time);
    REQUIRE(rt.outputs.dimension(1) == batch);
    check_close("time-major outputs (transposed back)", swap01(rt.outputs), fc.tensor("outputs"), rtol, atol);
    check_state<T>("time-major final state", rt.final_state, fc, "final_state");
    vars.zero_grad();
    const cf::Tensor3<T> dYt = swap01(dY);
    auto gt = cf::dynamic_rnn_backward(cell, rt, &dYt, &dF);
    REQUIRE(gt.d_inputs.dimension(0) == time);
    check_close("time-major grad/inputs (transposed back)", swap01(gt.d_inputs), fc.tensor("grad/inputs"), rtol, atol);
    if (has_init) check_state<T>("time-major d initial state", gt.d_initial_state, fc, "grad/initial_state");
    check_all_grads<T>("time-major", vars, fc);
  }

  // ---- inference (training = false): identical forward results, no backward ----
  {
    cf::RNNOptions inf = opt;
    inf.training = false;
    auto ri = run(X, inf);
    CHECK(bitwise_equal(ri.outputs, r.outputs));
    CHECK(states_bitwise_equal<T, State>(ri.final_state, r.final_state));
    vars.zero_grad();
    CHECK_THROWS_AS(cf::dynamic_rnn_backward(cell, ri, &dY, &dF), cf::Error);
    for (const auto& v : vars) {
      INFO("gradient of " << v.name << " after the refused backward");
      CHECK(v.grad->isZero(0));
    }
  }
}

template <class T>
void run_rnn_fixture(const std::string& case_name) {
  const FixtureCase& fc = get_case(rnn_cases(), case_name);
  INFO("fixture case " << case_name << ", scalar " << (sizeof(T) == 4 ? "float" : "double"));
  with_cell<T>(fc, [&](auto& cell) { run_rnn_case<T>(fc, cell); });
}

// ---------------------------------------------------------------------------------------------
// Recurrent cases: one test per fixture case, each in float and double.
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("reference: basic_lstm (BasicLSTMCell, random initial state) matches torch", "[reference]", float,
                   double) {
  run_rnn_fixture<TestType>("basic_lstm");
}

TEMPLATE_TEST_CASE("reference: basic_lstm_forget_bias (BasicLSTMCell, forget_bias 0.3, zero state) matches torch",
                   "[reference]", float, double) {
  run_rnn_fixture<TestType>("basic_lstm_forget_bias");
}

TEMPLATE_TEST_CASE("reference: lstm_peephole (LSTMCell with peepholes) matches torch", "[reference]", float, double) {
  run_rnn_fixture<TestType>("lstm_peephole");
}

TEMPLATE_TEST_CASE("reference: lstm_clip_proj (LSTMCell peepholes, cell_clip, num_proj, proj_clip) matches torch",
                   "[reference]", float, double) {
  run_rnn_fixture<TestType>("lstm_clip_proj");
}

TEMPLATE_TEST_CASE("reference: lstm_proj_only (LSTMCell with num_proj) matches torch", "[reference]", float, double) {
  run_rnn_fixture<TestType>("lstm_proj_only");
}

TEMPLATE_TEST_CASE("reference: gru (GRUCell, random initial state) matches torch", "[reference]", float, double) {
  run_rnn_fixture<TestType>("gru");
}

TEMPLATE_TEST_CASE("reference: gru_seq_len (GRUCell with sequence_length incl. 0) matches torch", "[reference]", float,
                   double) {
  run_rnn_fixture<TestType>("gru_seq_len");
}

TEMPLATE_TEST_CASE("reference: multi_mixed (MultiRNNCell LSTM+GRU+BasicLSTM, sequence_length) matches torch",
                   "[reference]", float, double) {
  run_rnn_fixture<TestType>("multi_mixed");
}

TEMPLATE_TEST_CASE("reference: multi_basic_lstm (3-layer BasicLSTMCell stack) matches torch", "[reference]", float,
                   double) {
  run_rnn_fixture<TestType>("multi_basic_lstm");
}

TEST_CASE("reference: the fixture holds the nine documented recurrent cases", "[reference]") {
  const std::vector<std::string> expected = {"basic_lstm",     "basic_lstm_forget_bias", "gru",
                                             "gru_seq_len",    "lstm_clip_proj",         "lstm_peephole",
                                             "lstm_proj_only", "multi_basic_lstm",       "multi_mixed"};
  std::vector<std::string> names;
  for (const auto& kv : rnn_cases()) names.push_back(kv.first);
  CHECK(names == expected);  // std::map: sorted
}

// ---------------------------------------------------------------------------------------------
// Head: dense + sparse softmax cross-entropy.
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("reference: dense_xent (Dense forward/backward + sparse xent mean) matches torch", "[reference]",
                   float, double) {
  using T = TestType;
  const double rtol = Tol<T>::rtol, atol = Tol<T>::atol;
  const FixtureCase& fc = get_case(head_cases(), "dense_xent");
  const Index in = config_index(fc, "input_depth"), classes = config_index(fc, "classes");
  cf::Rng rng(static_cast<std::uint64_t>(fc.config_num("seed")));
  cf::Dense<T> dense(in, classes, rng);
  cf::VariableList<T> vars;
  vars.add(dense);
  REQUIRE(vars.size() == 2);
  CHECK(vars[0].name == "dense/kernel");
  CHECK(vars[1].name == "dense/bias");
  vars.assign("dense/kernel", to_matrix<T>(fc.tensor("dense/kernel")));
  vars.assign("dense/bias", to_matrix<T>(fc.tensor("dense/bias")));

  const cf::Matrix<T> x = to_matrix<T>(fc.tensor("x"));
  const cf::Matrix<T> logits = dense(x);
  check_close("logits", logits, fc.tensor("logits"), rtol, atol);

  const auto& ints = fc.int_list("labels");
  const std::vector<long long> labels(ints.begin(), ints.end());
  REQUIRE(static_cast<Index>(labels.size()) == config_index(fc, "batch"));
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(labels, logits);
  const cf::Matrix<T> loss_row = xent.loss.transpose();
  check_close("loss", loss_row, fc.tensor("loss"), rtol, atol);
  check_close("backprop", xent.backprop, fc.tensor("backprop"), rtol, atol);
  const double mean_expected = fc.tensor("mean_loss").values.at(0);
  CHECK(std::abs(static_cast<double>(xent.mean()) - mean_expected) <= atol + rtol * std::abs(mean_expected));
  const cf::Matrix<T> dlogits = xent.mean_gradient();
  check_close("grad/logits", dlogits, fc.tensor("grad/logits"), rtol, atol);

  vars.zero_grad();
  const cf::Matrix<T> dx = dense.backward(x, dlogits);
  check_close("grad/x", dx, fc.tensor("grad/x"), rtol, atol);
  check_close("grad/dense/kernel", *vars["dense/kernel"].grad, fc.tensor("grad/dense/kernel"), rtol, atol);
  check_close("grad/dense/bias", *vars["dense/bias"].grad, fc.tensor("grad/dense/bias"), rtol, atol);

  // backward accumulates: a second call doubles the variable gradients.
  dense.backward(x, dlogits);
  FixtureTensor twice = fc.tensor("grad/dense/kernel");
  for (auto& v : twice.values) v *= 2;
  check_close("grad/dense/kernel after two backward calls", *vars["dense/kernel"].grad, twice, rtol, atol);
}

TEMPLATE_TEST_CASE("reference: xent_extreme (logits +-1000, ties) matches torch", "[reference]", float, double) {
  using T = TestType;
  const double rtol = Tol<T>::rtol, atol = Tol<T>::atol;
  const FixtureCase& fc = get_case(head_cases(), "xent_extreme");
  const cf::Matrix<T> logits = to_matrix<T>(fc.tensor("logits"));
  const auto& ints = fc.int_list("labels");
  const std::vector<int> labels(ints.begin(), ints.end());
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(labels, logits);
  const cf::Matrix<T> loss_row = xent.loss.transpose();
  REQUIRE(loss_row.allFinite());
  REQUIRE(xent.backprop.allFinite());
  check_close("loss", loss_row, fc.tensor("loss"), rtol, atol);
  check_close("backprop", xent.backprop, fc.tensor("backprop"), rtol, atol);
  const double mean_expected = fc.tensor("mean_loss").values.at(0);
  CHECK(std::abs(static_cast<double>(xent.mean()) - mean_expected) <= atol + rtol * std::abs(mean_expected));
  check_close("grad/logits", xent.mean_gradient(), fc.tensor("grad/logits"), rtol, atol);
}

}  // namespace test_reference
