// Weight converters PyTorch <-> cellflow and Keras -> cellflow (include/cellflow/convert/).
//
// * Layout: tiny hand-made tensors whose every element is distinct pin each gate-block move,
//   transpose and bias rule of docs/converters.md.
// * Real framework: tests/fixtures/framework_reference.txt (generate_framework_fixtures.py) holds
//   2-layer PyTorch nn.LSTM / nn.GRU modules run in float64, their state_dicts, inputs, outputs,
//   final states and autograd gradients. After load_pytorch_state_dict, cellflow's variables equal
//   the TF-layout weights the script mapped independently (tf/...), dynamic_rnn reproduces the
//   outputs and final states (float and double), and the gradients, converted back with
//   pytorch_gradients, equal torch's. The Keras-layout weights in that file are DERIVED from the
//   torch weights by the documented Keras layout (Keras is not installable here); the
//   keras_gru_reset_before case is computed from Keras's documented equations in torch.
// * Round trips cellflow -> PyTorch layout -> cellflow (and Keras for the GRUs) are bitwise.
// * Every bad input: wrong shapes, missing/extra/bidirectional keys, wrong cell kinds; a failed
//   load changes nothing.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/convert/keras.hpp"
#include "cellflow/convert/pytorch.hpp"
#include "support/test_util.hpp"

namespace test_convert {

using namespace cellflow_test;
namespace cv = cellflow::convert;
using Catch::Matchers::Contains;

template <class T>
using Tol = FrameworkTol<T>;

const FixtureCase& fixture_case(const std::string& name) {
  const auto it = framework_cases().find(name);
  if (it == framework_cases().end()) throw std::runtime_error("framework_reference.txt has no case '" + name + "'");
  return it->second;
}

/// The PyTorch state_dict of a case: every tensor named weight_* or bias_* (1-D as 1 x n).
template <class T>
cv::StateDict<T> state_dict_of(const FixtureCase& c) {
  cv::StateDict<T> sd;
  for (const auto& kv : c.tensors)
    if (starts_with(kv.first, "weight_") || starts_with(kv.first, "bias_")) sd[kv.first] = to_matrix<T>(kv.second);
  return sd;
}

template <class T, class A>
void check_close(const std::string& what, const A& actual, const FixtureTensor& expected) {
  cellflow_test::check_close(what, actual, expected.values, Tol<T>::rtol, Tol<T>::atol);
}

template <class T, class A>
void check_close(const std::string& what, const A& actual, const cf::Matrix<T>& expected) {
  std::vector<double> e(expected.data(), expected.data() + expected.size());
  REQUIRE(actual.rows() == expected.rows());
  REQUIRE(actual.cols() == expected.cols());
  cellflow_test::check_close(what, actual, e, Tol<T>::rtol, Tol<T>::atol);
}

template <class T>
void randomize(cf::VariableList<T>& vars, cf::Rng& rng) {
  for (auto& v : vars) *v.value = random_matrix<T>(v.value->rows(), v.value->cols(), rng);
}

/// Snapshot of every variable value, to prove a failed load changed nothing.
template <class T>
std::vector<cf::Matrix<T>> snapshot(cf::VariableList<T>& vars) {
  std::vector<cf::Matrix<T>> out;
  for (auto& v : vars) out.push_back(*v.value);
  return out;
}
template <class T>
bool unchanged(cf::VariableList<T>& vars, const std::vector<cf::Matrix<T>>& before) {
  for (std::size_t k = 0; k < vars.size(); ++k)
    if (!bitwise_equal(*vars[k].value, before[k])) return false;
  return true;
}

// ---- the cellflow models of the fixture cases ----

template <class T>
cf::MultiRNNCell<T> make_stack(const FixtureCase& c, cf::Rng& rng, T forget_bias = T(1)) {
  const std::string kind = c.config_str("kind");
  const Index D = static_cast<Index>(c.config_num("input_size")), H = static_cast<Index>(c.config_num("hidden_size"));
  if (kind == "lstm" && c.config_num("proj_size") > 0) {
    cf::LSTMOptions<T> o;
    o.num_proj = static_cast<Index>(c.config_num("proj_size"));
    o.forget_bias = forget_bias;
    return cf::MultiRNNCell<T>(cf::LSTMCell<T>(D, H, o, rng), cf::LSTMCell<T>(*o.num_proj, H, o, rng));
  }
  if (kind == "lstm")
    return cf::MultiRNNCell<T>(cf::BasicLSTMCell<T>(D, H, rng, forget_bias),
                               cf::BasicLSTMCell<T>(H, H, rng, forget_bias));
  if (kind == "gru")
    return cf::MultiRNNCell<T>(cf::CudnnCompatibleGRUCell<T>(D, H, rng), cf::CudnnCompatibleGRUCell<T>(H, H, rng));
  REQUIRE(kind == "keras_gru_reset_before");
  return cf::MultiRNNCell<T>(cf::GRUCell<T>(D, H, rng), cf::GRUCell<T>(H, H, rng));
}

/// Runs the case through `multi` (whose weights are already loaded) and compares outputs, final
/// states and the gradients of inputs and initial state with the fixture.
template <class T>
void check_forward_backward(const FixtureCase& c, cf::MultiRNNCell<T>& multi) {
  const Index L = multi.num_layers();
  const bool lstm = c.has("c0");
  cf::RNNOptions opt;
  if (c.has_ints("sequence_length")) {
    std::vector<Index> lens;
    for (long long v : c.int_list("sequence_length")) lens.push_back(static_cast<Index>(v));
    opt.sequence_length = lens;
  }
  auto s0 = multi.zero_state(0);
  s0.clear();
  for (Index l = 0; l < L; ++l) {
    if (lstm)
      s0.emplace_back(cf::LSTMStateTuple<T>{layer_of<T>(c.tensor("c0"), l), layer_of<T>(c.tensor("h0"), l)});
    else
      s0.emplace_back(layer_of<T>(c.tensor("h0"), l));
  }
  const auto X = to_tensor3<T>(c.tensor("inputs"));
  auto r = cf::dynamic_rnn(multi, X, s0, opt);
  check_close<T>("outputs", r.outputs, c.tensor("outputs"));
  for (Index l = 0; l < L; ++l) {
    check_close<T>("h_n layer " + std::to_string(l), r.final_state[static_cast<std::size_t>(l)].h(),
                   layer_of<T>(c.tensor("h_n"), l));
    if (lstm)
      check_close<T>("c_n layer " + std::to_string(l), r.final_state[static_cast<std::size_t>(l)].c(),
                     layer_of<T>(c.tensor("c_n"), l));
  }
  // Backward of L = sum(outputs * w_outputs) + sum(h_n * w_h_n) [+ sum(c_n * w_c_n)].
  cf::VariableList<T> vars;
  vars.add(multi);
  vars.zero_grad();
  const auto Wo = to_tensor3<T>(c.tensor("w_outputs"));
  auto d_final = r.final_state;
  for (Index l = 0; l < L; ++l) {
    d_final[static_cast<std::size_t>(l)].h() = layer_of<T>(c.tensor("w_h_n"), l);
    if (lstm) d_final[static_cast<std::size_t>(l)].c() = layer_of<T>(c.tensor("w_c_n"), l);
  }
  const auto g = cf::dynamic_rnn_backward(multi, r, &Wo, &d_final);
  check_close<T>("grad/inputs", g.d_inputs, c.tensor("grad/inputs"));
  for (Index l = 0; l < L; ++l) {
    check_close<T>("grad/h0 layer " + std::to_string(l), g.d_initial_state[static_cast<std::size_t>(l)].h(),
                   layer_of<T>(c.tensor("grad/h0"), l));
    if (lstm)
      check_close<T>("grad/c0 layer " + std::to_string(l), g.d_initial_state[static_cast<std::size_t>(l)].c(),
                     layer_of<T>(c.tensor("grad/c0"), l));
  }
}

/// After a load, the variables equal the TF-layout weights the generator mapped in Python.
template <class T>
void check_tf_layout(const FixtureCase& c, cf::MultiRNNCell<T>& multi) {
  cf::VariableList<T> vars;
  vars.add(multi, "rnn");
  int seen = 0;
  for (const auto& kv : c.tensors) {
    if (!starts_with(kv.first, "tf/")) continue;
    const std::string name = kv.first.substr(3);
    INFO("variable " << name);
    REQUIRE(vars.find(name) != nullptr);
    const auto& v = vars.at(name);
    const auto expected = to_matrix<T>(kv.second);
    REQUIRE(v.value->rows() == expected.rows());
    REQUIRE(v.value->cols() == expected.cols());
    // Sums of two or three rounded numbers in either order: within one rounding of each other.
    cellflow_test::check_close(name, *v.value, kv.second.values, std::is_same_v<T, float> ? 1e-6 : 1e-15,
                               std::is_same_v<T, float> ? 1e-6 : 1e-15);
    ++seen;
  }
  CHECK(seen == static_cast<int>(vars.size()));
}

// =============================================================================================
// Layout, element by element
// =============================================================================================

TEMPLATE_TEST_CASE("convert: PyTorch LSTM layout -> TF i|j|f|o, transposes, forget_bias subtracted", "[convert]", float,
                   double) {
  using T = TestType;
  // D = 2, H = 1: weight_ih rows are the gates i, f, g, o.
  cv::PyTorchLSTMLayer<T> p;
  p.weight_ih = mat<T>(4, 2, {1, 2, 3, 4, 5, 6, 7, 8});  // i: 1 2, f: 3 4, g: 5 6, o: 7 8
  p.weight_hh = mat<T>(4, 1, {11, 12, 13, 14});          // i, f, g, o
  p.bias_ih = mat<T>(1, 4, {0.5, 1.5, 2.5, 3.5});
  p.bias_hh = mat<T>(1, 4, {0.25, 0.75, 0.125, 0.0625});
  const auto w = cv::lstm_from_pytorch(p, T(1));
  // kernel [D + H, 4H]: row d is x_d, row D is h; columns i, j (= g), f, o.
  CHECK(bitwise_equal(w.kernel, mat<T>(3, 4, {1, 5, 3, 7, 2, 6, 4, 8, 11, 13, 12, 14})));
  CHECK(bitwise_equal(w.bias, mat<T>(1, 4, {0.75, 2.625, 1.5 + 0.75 - 1.0, 3.5625})));
  CHECK(w.projection.size() == 0);

  // forget_bias of the target cell: only the f block moves.
  const auto w0 = cv::lstm_from_pytorch(p, T(0.25));
  CHECK(bitwise_equal(w0.kernel, w.kernel));
  CHECK(w0.bias(0, 2) == T(1.5) + (T(0.75) - T(0.25)));
  CHECK(w0.bias(0, 0) == w.bias(0, 0));

  // Back to PyTorch: bias_ih is TF's bias, bias_hh holds forget_bias on f.
  const auto q = cv::lstm_to_pytorch(w, T(1));
  CHECK(bitwise_equal(q.weight_ih, p.weight_ih));
  CHECK(bitwise_equal(q.weight_hh, p.weight_hh));
  CHECK(bitwise_equal(q.bias_ih, mat<T>(1, 4, {0.75, 1.25, 2.625, 3.5625})));
  CHECK(bitwise_equal(q.bias_hh, mat<T>(1, 4, {0, 1, 0, 0})));
  CHECK(q.weight_hr.size() == 0);

  // Gradients: both torch biases receive the summed bias's gradient, no forget_bias.
  const auto gq = cv::lstm_gradients_to_pytorch(w);
  CHECK(bitwise_equal(gq.bias_ih, q.bias_ih));
  CHECK(bitwise_equal(gq.bias_hh, q.bias_ih));

  // bias=False (empty biases): zeros, f = -forget_bias.
  cv::PyTorchLSTMLayer<T> nb = p;
  nb.bias_ih.resize(0, 0);
  nb.bias_hh.resize(0, 0);
  CHECK(bitwise_equal(cv::lstm_from_pytorch(nb, T(1)).bias, mat<T>(1, 4, {0, 0, -1, 0})));

  // proj_size: weight_hr [P, H] is TF's projection/kernel [H, P] transposed; weight_hh has P columns.
  cv::PyTorchLSTMLayer<T> pr = p;
  pr.weight_hr = mat<T>(2, 1, {21, 22});
  pr.weight_hh = mat<T>(4, 2, {11, 31, 12, 32, 13, 33, 14, 34});
  const auto wp = cv::lstm_from_pytorch(pr, T(1));
  CHECK(bitwise_equal(wp.projection, mat<T>(1, 2, {21, 22})));
  CHECK(bitwise_equal(wp.kernel, mat<T>(4, 4, {1, 5, 3, 7, 2, 6, 4, 8, 11, 13, 12, 14, 31, 33, 32, 34})));
  CHECK(bitwise_equal(cv::lstm_to_pytorch(wp, T(1)).weight_hr, pr.weight_hr));
}

TEMPLATE_TEST_CASE("convert: PyTorch GRU layout -> reset-after GRUCell", "[convert]", float, double) {
  using T = TestType;
  cv::PyTorchGRULayer<T> p;  // D = 1, H = 1: rows r, z, n
  p.weight_ih = mat<T>(3, 1, {1, 2, 3});
  p.weight_hh = mat<T>(3, 1, {4, 5, 6});
  p.bias_ih = mat<T>(1, 3, {0.5, 0.25, 0.125});
  p.bias_hh = mat<T>(1, 3, {2, 4, 8});
  const auto w = cv::gru_from_pytorch(p);
  CHECK(bitwise_equal(w.gates_kernel, mat<T>(2, 2, {1, 2, 4, 5})));  // columns r | u(z), rows x | h
  CHECK(bitwise_equal(w.gates_bias, mat<T>(1, 2, {2.5, 4.25})));
  CHECK(bitwise_equal(w.candidate_input_kernel, mat<T>(1, 1, {3})));
  CHECK(bitwise_equal(w.candidate_hidden_kernel, mat<T>(1, 1, {6})));
  CHECK(bitwise_equal(w.candidate_input_bias, mat<T>(1, 1, {0.125})));
  CHECK(bitwise_equal(w.candidate_hidden_bias, mat<T>(1, 1, {8})));

  const auto q = cv::gru_to_pytorch(w);
  CHECK(bitwise_equal(q.weight_ih, p.weight_ih));
  CHECK(bitwise_equal(q.weight_hh, p.weight_hh));
  CHECK(bitwise_equal(q.bias_ih, mat<T>(1, 3, {2.5, 4.25, 0.125})));
  CHECK(bitwise_equal(q.bias_hh, mat<T>(1, 3, {0, 0, 8})));
  const auto g = cv::gru_gradients_to_pytorch(w);
  CHECK(bitwise_equal(g.bias_hh, mat<T>(1, 3, {2.5, 4.25, 8})));

  // D = 2, H = 2, every element distinct: block moves and transposes.
  cv::PyTorchGRULayer<T> b;
  b.weight_ih = mat<T>(6, 2, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  b.weight_hh = mat<T>(6, 2, {21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32});
  const auto wb = cv::gru_from_pytorch(b);
  CHECK(bitwise_equal(wb.gates_kernel, mat<T>(4, 4, {1, 3, 5, 7, 2, 4, 6, 8, 21, 23, 25, 27, 22, 24, 26, 28})));
  CHECK(bitwise_equal(wb.candidate_input_kernel, mat<T>(2, 2, {9, 11, 10, 12})));
  CHECK(bitwise_equal(wb.candidate_hidden_kernel, mat<T>(2, 2, {29, 31, 30, 32})));
  CHECK(bitwise_equal(wb.gates_bias, mat<T>(1, 4, {0, 0, 0, 0})));
}

TEMPLATE_TEST_CASE("convert: Keras layouts (LSTM i|f|c|o, GRU z|r|h, both GRU variants)", "[convert]", float, double) {
  using T = TestType;
  cv::KerasLSTMWeights<T> kl;              // D = 1, U = 1
  kl.kernel = mat<T>(1, 4, {1, 2, 3, 4});  // i, f, c, o
  kl.recurrent_kernel = mat<T>(1, 4, {5, 6, 7, 8});
  kl.bias = mat<T>(1, 4, {0.5, 2, 0.25, 0.125});
  const auto wl = cv::lstm_from_keras(kl, T(1));
  CHECK(bitwise_equal(wl.kernel, mat<T>(2, 4, {1, 3, 2, 4, 5, 7, 6, 8})));
  CHECK(bitwise_equal(wl.bias, mat<T>(1, 4, {0.5, 0.25, 1, 0.125})));
  const auto kb = cv::lstm_to_keras(wl, T(1));
  CHECK(bitwise_equal(kb.kernel, kl.kernel));
  CHECK(bitwise_equal(kb.recurrent_kernel, kl.recurrent_kernel));
  CHECK(bitwise_equal(kb.bias, kl.bias));

  cv::KerasGRUWeights<T> kg;            // reset_after=True, D = 1, U = 1
  kg.kernel = mat<T>(1, 3, {1, 2, 3});  // z, r, h
  kg.recurrent_kernel = mat<T>(1, 3, {4, 5, 6});
  kg.bias = mat<T>(2, 3, {0.5, 0.25, 0.125, 2, 4, 8});
  const auto wa = cv::gru_reset_after_from_keras(kg);
  CHECK(bitwise_equal(wa.gates_kernel, mat<T>(2, 2, {2, 1, 5, 4})));  // r | u
  CHECK(bitwise_equal(wa.gates_bias, mat<T>(1, 2, {4.25, 2.5})));
  CHECK(bitwise_equal(wa.candidate_input_kernel, mat<T>(1, 1, {3})));
  CHECK(bitwise_equal(wa.candidate_hidden_kernel, mat<T>(1, 1, {6})));
  CHECK(bitwise_equal(wa.candidate_input_bias, mat<T>(1, 1, {0.125})));
  CHECK(bitwise_equal(wa.candidate_hidden_bias, mat<T>(1, 1, {8})));
  const auto ka = cv::gru_to_keras(wa);
  CHECK(bitwise_equal(ka.bias, mat<T>(2, 3, {2.5, 4.25, 0.125, 0, 0, 8})));
  CHECK(bitwise_equal(cv::gru_gradients_to_keras(wa).bias, mat<T>(2, 3, {2.5, 4.25, 0.125, 2.5, 4.25, 8})));

  cv::KerasGRUWeights<T> kr = kg;  // reset_after=False: bias [3U], candidate kernel = [W_h; U_h]
  kr.bias = mat<T>(1, 3, {0.5, 0.25, 0.125});
  const auto wr = cv::gru_from_keras(kr);
  CHECK(bitwise_equal(wr.gates_kernel, mat<T>(2, 2, {2, 1, 5, 4})));
  CHECK(bitwise_equal(wr.gates_bias, mat<T>(1, 2, {0.25, 0.5})));
  CHECK(bitwise_equal(wr.candidate_kernel, mat<T>(2, 1, {3, 6})));
  CHECK(bitwise_equal(wr.candidate_bias, mat<T>(1, 1, {0.125})));
  const auto kr2 = cv::gru_to_keras(wr);
  CHECK(bitwise_equal(kr2.kernel, kr.kernel));
  CHECK(bitwise_equal(kr2.recurrent_kernel, kr.recurrent_kernel));
  CHECK(bitwise_equal(kr2.bias, kr.bias));
}

// =============================================================================================
// Against the real PyTorch modules
// =============================================================================================

TEMPLATE_TEST_CASE("convert: PyTorch nn.LSTM / nn.GRU state_dicts reproduce torch's outputs, states and gradients",
                   "[convert]", float, double) {
  using T = TestType;
  for (const char* name : {"torch_lstm", "torch_lstm_seq_len", "torch_lstm_proj", "torch_gru", "torch_gru_seq_len"}) {
    INFO("case " << name);
    const auto& c = fixture_case(name);
    cf::Rng rng(99);
    auto multi = make_stack<T>(c, rng);
    const auto sd = state_dict_of<T>(c);
    REQUIRE(sd.size() == (c.config_num("proj_size") > 0 ? 10u : 8u));
    cv::load_pytorch_state_dict(multi, sd);
    check_tf_layout(c, multi);
    check_forward_backward(c, multi);

    // Gradients back in PyTorch's layout, against autograd.
    const auto grads = cv::pytorch_gradients(multi);
    REQUIRE(grads.size() == sd.size());
    for (const auto& kv : grads) {
      INFO("gradient of " << kv.first);
      REQUIRE(sd.count(kv.first) == 1);
      check_close<T>("grad/" + kv.first, kv.second, c.tensor("grad/" + kv.first));
    }

    // Exported weights: the same tensors as torch's, up to how bias_ih + bias_hh is split.
    const auto back = cv::pytorch_state_dict(multi);
    REQUIRE(back.size() == sd.size());
    for (const auto& kv : sd) {
      INFO("exported " << kv.first);
      REQUIRE(back.count(kv.first) == 1);
      if (starts_with(kv.first, "weight_")) CHECK(bitwise_equal(back.at(kv.first), kv.second));
    }
    for (Index l = 0; l < 2; ++l) {
      const std::string ih = "bias_ih_l" + std::to_string(l), hh = "bias_hh_l" + std::to_string(l);
      const cf::Matrix<T> sum_torch = sd.at(ih) + sd.at(hh), sum_back = back.at(ih) + back.at(hh);
      check_close<T>("bias_ih + bias_hh of layer " + std::to_string(l), sum_back, sum_torch);
    }
  }
}

TEMPLATE_TEST_CASE(
    "convert: the cell's own forget_bias is subtracted (LSTMCell with forget_bias 0.3 gives torch's numbers)",
    "[convert]", float, double) {
  using T = TestType;
  const auto& c = fixture_case("torch_lstm");
  cf::Rng rng(5);
  cf::LSTMOptions<T> o;
  o.forget_bias = T(0.3);
  cf::MultiRNNCell<T> multi(cf::LSTMCell<T>(3, 4, o, rng), cf::LSTMCell<T>(4, 4, o, rng));
  cv::load_pytorch_state_dict(multi, state_dict_of<T>(c));
  check_forward_backward(c, multi);
  // The stored f bias is torch's summed f bias minus 0.3 (the fixture's tf/ tensors assume 1.0).
  cf::VariableList<T> vars;
  vars.add(multi, "rnn");
  const auto tf_bias = to_matrix<T>(c.tensor("tf/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"));
  const auto& b = *vars.at("rnn/multi_rnn_cell/cell_0/lstm_cell/bias").value;
  for (Index j = 0; j < 16; ++j) {
    const double expected = double(tf_bias(0, j)) + (j >= 8 && j < 12 ? 0.7 : 0.0);
    CHECK(std::abs(double(b(0, j)) - expected) <= (std::is_same_v<T, float> ? 1e-6 : 1e-14));
  }
  // And the export puts it back: bias_hh's f block (rows H..2H-1 in torch's order) is 0.3.
  const auto sd = cv::pytorch_state_dict(multi);
  CHECK(bitwise_equal(sd.at("bias_hh_l1"), mat<T>(1, 16, {0, 0, 0, 0, 0.3, 0.3, 0.3, 0.3, 0, 0, 0, 0, 0, 0, 0, 0})));
}

TEMPLATE_TEST_CASE("convert: a single cell takes a one-layer module's state_dict", "[convert]", float, double) {
  using T = TestType;
  const auto& c = fixture_case("torch_gru");
  cv::StateDict<T> sd;
  for (const auto& kv : state_dict_of<T>(c))
    if (kv.first.size() > 3 && kv.first.compare(kv.first.size() - 3, 3, "_l0") == 0) sd[kv.first] = kv.second;
  REQUIRE(sd.size() == 4);
  cf::Rng rng(3);
  cf::CudnnCompatibleGRUCell<T> cell(3, 4, rng);
  cv::load_pytorch_state_dict(cell, sd);
  cf::VariableList<T> vars;
  vars.add(cell, "rnn/multi_rnn_cell/cell_0");
  for (auto& v : vars) check_close<T>(v.name, *v.value, to_matrix<T>(c.tensor("tf/" + v.name)));
  // And back.
  const auto back = cv::pytorch_state_dict(cell);
  REQUIRE(back.size() == 4);
  CHECK(bitwise_equal(back.at("weight_ih_l0"), sd.at("weight_ih_l0")));
  CHECK(bitwise_equal(back.at("weight_hh_l0"), sd.at("weight_hh_l0")));
  // A second layer's keys are unexpected for a single cell.
  REQUIRE_THROWS_WITH(
      cv::load_pytorch_state_dict(cell, state_dict_of<T>(c)),
      Contains("load_pytorch_state_dict: the state_dict has 'bias_hh_l1' (layer 1), but the model has 1 layer"));
}

TEMPLATE_TEST_CASE("convert: Keras-layout weights (derived from the torch modules) give the same numbers", "[convert]",
                   float, double) {
  using T = TestType;
  for (const char* name : {"torch_lstm", "torch_lstm_seq_len", "torch_gru", "torch_gru_seq_len"}) {
    INFO("case " << name);
    const auto& c = fixture_case(name);
    const bool lstm = c.config_str("kind") == "lstm";
    cf::Rng rng(17);
    auto multi = make_stack<T>(c, rng);
    auto keras = [&](const std::string& prefix, Index l, const char* what) {
      return to_matrix<T>(c.tensor(prefix + std::to_string(l) + "/" + what));
    };
    if (lstm) {
      std::vector<cv::KerasLSTMWeights<T>> layers;
      for (Index l = 0; l < 2; ++l)
        layers.push_back(
            {keras("keras/", l, "kernel"), keras("keras/", l, "recurrent_kernel"), keras("keras/", l, "bias")});
      cv::load_keras(multi, layers);
    } else {
      std::vector<cv::KerasGRUWeights<T>> layers;
      for (Index l = 0; l < 2; ++l)
        layers.push_back(
            {keras("keras/", l, "kernel"), keras("keras/", l, "recurrent_kernel"), keras("keras/", l, "bias")});
      REQUIRE(layers[0].bias.rows() == 2);
      cv::load_keras(multi, layers);
    }
    check_tf_layout(c, multi);
    check_forward_backward(c, multi);
    // Gradients in Keras's layout.
    for (Index l = 0; l < 2; ++l) {
      const std::string p = "keras/grad/" + std::to_string(l) + "/";
      if (lstm) {
        const auto k = cv::lstm_to_keras(cv::lstm_weights(multi.layer(l), cv::Field::grad), T(0));
        check_close<T>(p + "kernel", k.kernel, c.tensor(p + "kernel"));
        check_close<T>(p + "recurrent_kernel", k.recurrent_kernel, c.tensor(p + "recurrent_kernel"));
        check_close<T>(p + "bias", k.bias, c.tensor(p + "bias"));
      } else {
        const auto k = cv::gru_gradients_to_keras(cv::gru_reset_after_weights(multi.layer(l), cv::Field::grad));
        check_close<T>(p + "kernel", k.kernel, c.tensor(p + "kernel"));
        check_close<T>(p + "recurrent_kernel", k.recurrent_kernel, c.tensor(p + "recurrent_kernel"));
        check_close<T>(p + "bias", k.bias, c.tensor(p + "bias"));
      }
    }
  }
}

TEMPLATE_TEST_CASE("convert: Keras GRU(reset_after=False) loads into TF1's GRUCell (Keras equations in torch)",
                   "[convert]", float, double) {
  using T = TestType;
  const auto& c = fixture_case("keras_gru_reset_before");
  cf::Rng rng(23);
  auto multi = make_stack<T>(c, rng);
  std::vector<cv::KerasGRUWeights<T>> layers;
  for (Index l = 0; l < 2; ++l) {
    const std::string p = "keras/" + std::to_string(l) + "/";
    layers.push_back({to_matrix<T>(c.tensor(p + "kernel")), to_matrix<T>(c.tensor(p + "recurrent_kernel")),
                      to_matrix<T>(c.tensor(p + "bias"))});
  }
  cv::load_keras(multi, layers);
  check_tf_layout(c, multi);
  check_forward_backward(c, multi);
  for (Index l = 0; l < 2; ++l) {
    const std::string p = "keras/grad/" + std::to_string(l) + "/";
    const auto k = cv::gru_to_keras(cv::gru_weights(multi.layer(l), cv::Field::grad));
    check_close<T>(p + "kernel", k.kernel, c.tensor(p + "kernel"));
    check_close<T>(p + "recurrent_kernel", k.recurrent_kernel, c.tensor(p + "recurrent_kernel"));
    check_close<T>(p + "bias", k.bias, c.tensor(p + "bias"));
  }
  // One layer at a time into a single cell works the same.
  cf::GRUCell<T> cell(3, 4, rng);
  cv::load_keras(cell, layers[0]);
  CHECK(bitwise_equal(cell.gates_kernel().value, multi.layer(0).template as<cf::GRUCell<T>>()->gates_kernel().value));
  CHECK(bitwise_equal(cell.candidate_kernel().value,
                      multi.layer(0).template as<cf::GRUCell<T>>()->candidate_kernel().value));
}

// =============================================================================================
// Round trips
// =============================================================================================

TEMPLATE_TEST_CASE("convert: cellflow -> PyTorch layout -> cellflow is bitwise", "[convert]", float, double) {
  using T = TestType;
  cf::Rng rng(31);
  SECTION("BasicLSTMCell stack, forget_bias 0.7") {
    auto make = [&] {
      return cf::MultiRNNCell<T>(cf::BasicLSTMCell<T>(5, 3, rng, T(0.7)), cf::BasicLSTMCell<T>(3, 3, rng, T(0.7)),
                                 cf::BasicLSTMCell<T>(3, 3, rng, T(0.7)));
    };
    auto a = make(), b = make();
    cf::VariableList<T> va, vb;
    va.add(a);
    vb.add(b);
    randomize(va, rng);
    cv::load_pytorch_state_dict(b, cv::pytorch_state_dict(a));
    for (std::size_t k = 0; k < va.size(); ++k) {
      INFO(va[k].name);
      CHECK(bitwise_equal(*va[k].value, *vb[k].value));
    }
  }
  SECTION("LSTMCell with num_proj") {
    cf::LSTMOptions<T> o;
    o.num_proj = 2;
    o.forget_bias = T(0.1);
    auto make = [&] { return cf::MultiRNNCell<T>(cf::LSTMCell<T>(3, 4, o, rng), cf::LSTMCell<T>(2, 4, o, rng)); };
    auto a = make(), b = make();
    cf::VariableList<T> va, vb;
    va.add(a);
    vb.add(b);
    randomize(va, rng);
    const auto sd = cv::pytorch_state_dict(a);
    CHECK(sd.size() == 10);
    CHECK(sd.at("weight_hr_l1").rows() == 2);
    CHECK(sd.at("weight_hr_l1").cols() == 4);
    cv::load_pytorch_state_dict(b, sd);
    for (std::size_t k = 0; k < va.size(); ++k) {
      INFO(va[k].name);
      CHECK(bitwise_equal(*va[k].value, *vb[k].value));
    }
  }
  SECTION("reset-after GRUCell stack, and through Keras") {
    auto make = [&] {
      return cf::MultiRNNCell<T>(cf::CudnnCompatibleGRUCell<T>(4, 3, rng), cf::CudnnCompatibleGRUCell<T>(3, 3, rng));
    };
    auto a = make(), b = make(), k = make();
    cf::VariableList<T> va, vb, vk;
    va.add(a);
    vb.add(b);
    vk.add(k);
    randomize(va, rng);
    cv::load_pytorch_state_dict(b, cv::pytorch_state_dict(a));
    std::vector<cv::KerasGRUWeights<T>> layers;
    for (Index l = 0; l < 2; ++l) layers.push_back(cv::gru_to_keras(cv::gru_reset_after_weights(a.layer(l))));
    cv::load_keras(k, layers);
    for (std::size_t j = 0; j < va.size(); ++j) {
      INFO(va[j].name);
      CHECK(bitwise_equal(*va[j].value, *vb[j].value));
      CHECK(bitwise_equal(*va[j].value, *vk[j].value));
    }
  }
  SECTION("TF1 GRUCell through Keras GRU(reset_after=False), and LSTM through Keras with forget_bias 0") {
    cf::GRUCell<T> a(3, 5, rng), b(3, 5, rng);
    cf::VariableList<T> va, vb;
    va.add(a);
    vb.add(b);
    randomize(va, rng);
    cv::load_keras(b, cv::gru_to_keras(cv::gru_weights(a)));
    for (std::size_t j = 0; j < va.size(); ++j) CHECK(bitwise_equal(*va[j].value, *vb[j].value));
    cf::BasicLSTMCell<T> la(2, 3, rng, T(0)), lb(2, 3, rng, T(0));
    cf::VariableList<T> wa, wb;
    wa.add(la);
    wb.add(lb);
    randomize(wa, rng);
    cv::load_keras(lb, cv::lstm_to_keras(cv::lstm_weights(la), T(0)));
    for (std::size_t j = 0; j < wa.size(); ++j) CHECK(bitwise_equal(*wa[j].value, *wb[j].value));
  }
  SECTION("weight sets into cells and back: assign_weights") {
    cf::CudnnCompatibleGRUCell<T> a(2, 3, rng), b(2, 3, rng);
    cf::VariableList<T> va;
    va.add(a);
    randomize(va, rng);
    cv::assign_weights(b, cv::gru_reset_after_weights(a));
    const auto wa = cv::gru_reset_after_weights(a), wb = cv::gru_reset_after_weights(b);
    CHECK(bitwise_equal(wa.candidate_hidden_bias, wb.candidate_hidden_bias));
    CHECK(bitwise_equal(wa.gates_kernel, wb.gates_kernel));
  }
}

// =============================================================================================
// Bad input
// =============================================================================================

TEST_CASE("convert: state_dict errors name the tensor, expected and given shapes, a failed load changes nothing",
          "[convert]") {
  using T = double;
  const auto& c = fixture_case("torch_lstm");
  const auto good = state_dict_of<T>(c);
  cf::Rng rng(41);
  auto multi = make_stack<T>(c, rng);
  cf::VariableList<T> vars;
  vars.add(multi);
  const auto before = snapshot(vars);
  auto expect_unchanged = [&] { CHECK(unchanged(vars, before)); };
  const std::string op = "load_pytorch_state_dict: ";

  SECTION("missing tensor") {
    auto sd = good;
    sd.erase("weight_hh_l1");
    REQUIRE_THROWS_MATCHES(
        cv::load_pytorch_state_dict(multi, sd), cf::ValueError,
        Catch::Matchers::Message(op + "the state_dict has no 'weight_hh_l1' (layer 1, basic_lstm_cell(num_units=4))"));
    expect_unchanged();
  }
  SECTION("one bias of a pair missing") {
    auto sd = good;
    sd.erase("bias_hh_l1");
    REQUIRE_THROWS_AS(cv::load_pytorch_state_dict(multi, sd), cf::ValueError);
    REQUIRE_THROWS_WITH(cv::load_pytorch_state_dict(multi, sd), Contains("no 'bias_hh_l1'"));
    expect_unchanged();
  }
  SECTION("wrong 2-D shape in the last layer") {
    auto sd = good;
    sd["weight_ih_l1"] = cf::Matrix<T>::Zero(16, 3);
    REQUIRE_THROWS_MATCHES(
        cv::load_pytorch_state_dict(multi, sd), cf::ShapeError,
        Catch::Matchers::Message(
            op + "weight_ih_l1 (layer 1, basic_lstm_cell(num_units=4)) expected [16, 4], given [16, 3]"));
    expect_unchanged();
  }
  SECTION("a 1-D bias given as a column") {
    auto sd = good;
    sd["bias_ih_l0"] = cf::Matrix<T>::Zero(16, 1);
    REQUIRE_THROWS_MATCHES(
        cv::load_pytorch_state_dict(multi, sd), cf::ShapeError,
        Catch::Matchers::Message(op + "bias_ih_l0 (layer 0, basic_lstm_cell(num_units=4)) expected [16] "
                                      "(a 1 x 16 matrix), given [16, 1] (16 x 1)"));
    expect_unchanged();
  }
  SECTION("an nn.GRU state_dict into LSTM layers") {
    REQUIRE_THROWS_MATCHES(
        cv::load_pytorch_state_dict(multi, state_dict_of<T>(fixture_case("torch_gru"))), cf::ShapeError,
        Catch::Matchers::Message(
            op + "weight_ih_l0 (layer 0, basic_lstm_cell(num_units=4)) expected [16, 3], given [12, 3]"));
    expect_unchanged();
  }
  SECTION("unexpected, extra-layer and bidirectional keys") {
    auto sd = good;
    sd["running_mean"] = cf::Matrix<T>::Zero(1, 4);
    REQUIRE_THROWS_MATCHES(cv::load_pytorch_state_dict(multi, sd), cf::ValueError,
                           Catch::Matchers::Message(op + "unexpected state_dict entry 'running_mean'"));
    sd = good;
    sd["weight_ih_l2"] = cf::Matrix<T>::Zero(16, 4);
    REQUIRE_THROWS_MATCHES(
        cv::load_pytorch_state_dict(multi, sd), cf::ValueError,
        Catch::Matchers::Message(op + "the state_dict has 'weight_ih_l2' (layer 2), but the model has 2 layers"));
    sd = good;
    sd["weight_ih_l0_reverse"] = cf::Matrix<T>::Zero(16, 3);
    REQUIRE_THROWS_WITH(cv::load_pytorch_state_dict(multi, sd),
                        Contains("'weight_ih_l0_reverse' belongs to a bidirectional module"));
    expect_unchanged();
  }
  SECTION("bias=False modules load with zero biases") {
    cv::StateDict<T> sd;
    for (const auto& kv : good)
      if (starts_with(kv.first, "weight_")) sd[kv.first] = kv.second;
    cv::load_pytorch_state_dict(multi, sd);
    const auto w = cv::lstm_weights(multi.layer(1));
    CHECK(bitwise_equal(w.bias, mat<T>(1, 16, {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0})));
    CHECK(bitwise_equal(cf::Matrix<T>(w.kernel.topRows(4).leftCols(4)),
                        cf::Matrix<T>(good.at("weight_ih_l1").topRows(4).transpose())));
  }
}

TEST_CASE("convert: cells PyTorch cannot express are refused with the reason", "[convert]") {
  using T = float;
  cf::Rng rng(43);
  const auto gru_sd = state_dict_of<T>(fixture_case("torch_gru"));
  SECTION("reset-before GRUCell") {
    cf::MultiRNNCell<T> m(cf::GRUCell<T>(3, 4, rng), cf::GRUCell<T>(4, 4, rng));
    REQUIRE_THROWS_AS(cv::load_pytorch_state_dict(m, gru_sd), cf::ValueError);
    REQUIRE_THROWS_WITH(cv::load_pytorch_state_dict(m, gru_sd),
                        Contains("layer 0 is gru_cell(num_units=4), TF1's reset-before GRUCell") &&
                            Contains("build the layer as CudnnCompatibleGRUCell(depth, units, rng)"));
    REQUIRE_THROWS_WITH(cv::pytorch_state_dict(m), Contains("pytorch_state_dict: layer 0 is gru_cell(num_units=4)"));
  }
  SECTION("peepholes") {
    cf::LSTMOptions<T> o;
    o.use_peepholes = true;
    cf::LSTMCell<T> cell(3, 4, o, rng);
    REQUIRE_THROWS_WITH(cv::pytorch_gradients(cell),
                        Contains("pytorch_gradients: layer 0 is lstm_cell(num_units=4) with peepholes"));
  }
  SECTION("mixed kinds, sizes or projections cannot be one PyTorch module") {
    cf::MultiRNNCell<T> mixed(cf::BasicLSTMCell<T>(3, 4, rng), cf::CudnnCompatibleGRUCell<T>(4, 4, rng));
    REQUIRE_THROWS_MATCHES(
        cv::pytorch_state_dict(mixed), cf::ValueError,
        Catch::Matchers::Message("pytorch_state_dict: one PyTorch module is all nn.LSTM, all nn.GRU or all "
                                 "nn.RNN layers; layer 0 is basic_lstm_cell(num_units=4), layer 1 is "
                                 "cudnn_compatible_gru_cell(num_units=4)"));
    cf::MultiRNNCell<T> sizes(cf::BasicLSTMCell<T>(3, 4, rng), cf::BasicLSTMCell<T>(4, 5, rng));
    REQUIRE_THROWS_WITH(cv::pytorch_state_dict(sizes),
                        Contains("one hidden_size; layer 0 has num_units 4, layer 1 has 5"));
  }
}

TEST_CASE("convert: layer converters validate their tensors", "[convert]") {
  using T = double;
  cv::PyTorchLSTMLayer<T> p;
  p.weight_ih = cf::Matrix<T>::Zero(7, 3);
  REQUIRE_THROWS_MATCHES(
      cv::lstm_from_pytorch(p, 1.0, "_l0"), cf::ShapeError,
      Catch::Matchers::Message("lstm_from_pytorch: weight_ih_l0 expected [4*hidden_size, input_size] "
                               "(4 gate blocks of hidden_size rows), given [7, 3]"));
  p.weight_ih = cf::Matrix<T>::Zero(8, 3);
  p.weight_hh = cf::Matrix<T>::Zero(8, 3);
  REQUIRE_THROWS_MATCHES(cv::lstm_from_pytorch(p, 1.0), cf::ShapeError,
                         Catch::Matchers::Message("lstm_from_pytorch: weight_hh expected [8, 2], given [8, 3]"));
  p.weight_hh = cf::Matrix<T>::Zero(8, 2);
  p.bias_hh = cf::Matrix<T>::Zero(1, 8);
  REQUIRE_THROWS_WITH(cv::lstm_from_pytorch(p, 1.0), Contains("lstm_from_pytorch: bias_ih expected [8]"));
  p.weight_hr = cf::Matrix<T>::Zero(3, 3);
  REQUIRE_THROWS_MATCHES(cv::lstm_from_pytorch(p, 1.0), cf::ShapeError,
                         Catch::Matchers::Message("lstm_from_pytorch: weight_hr expected [3, 2], given [3, 3]"));

  cv::PyTorchGRULayer<T> g;
  g.weight_ih = cf::Matrix<T>::Zero(6, 3);
  g.weight_hh = cf::Matrix<T>::Zero(6, 3);
  REQUIRE_THROWS_MATCHES(cv::gru_from_pytorch(g), cf::ShapeError,
                         Catch::Matchers::Message("gru_from_pytorch: weight_hh expected [6, 2], given [6, 3]"));

  cv::LSTMWeights<T> w;
  w.kernel = cf::Matrix<T>::Zero(5, 6);
  REQUIRE_THROWS_WITH(cv::lstm_to_pytorch(w, 1.0),
                      Contains("lstm_to_pytorch: kernel expected [input_depth + h, 4*num_units], given [5, 6]"));
  w.kernel = cf::Matrix<T>::Zero(5, 8);
  w.bias = cf::Matrix<T>::Zero(1, 6);
  REQUIRE_THROWS_MATCHES(cv::lstm_to_pytorch(w, 1.0), cf::ShapeError,
                         Catch::Matchers::Message("lstm_to_pytorch: bias expected [8] (a 1 x 8 matrix), given [6]"));
  w.bias = cf::Matrix<T>::Zero(1, 8);
  w.projection = cf::Matrix<T>::Zero(2, 1);
  REQUIRE_THROWS_WITH(cv::lstm_to_keras(w, 1.0), Contains("lstm_to_keras: the weights have a projection/kernel"));

  cv::GRUResetAfterWeights<T> ga;
  ga.candidate_hidden_kernel = cf::Matrix<T>::Zero(2, 3);
  REQUIRE_THROWS_WITH(
      cv::gru_to_pytorch(ga),
      Contains("gru_to_pytorch: candidate/hidden_projection/kernel expected [num_units, num_units], given [2, 3]"));

  cv::KerasGRUWeights<T> k;
  k.kernel = cf::Matrix<T>::Zero(3, 6);
  k.recurrent_kernel = cf::Matrix<T>::Zero(2, 6);
  k.bias = cf::Matrix<T>::Zero(2, 6);
  REQUIRE_THROWS_WITH(cv::gru_from_keras(k),
                      Contains("gru_from_keras: bias expected [6] (Keras GRU reset_after=False), given [2, 6]") &&
                          Contains("use gru_reset_after_from_keras"));
  k.bias = cf::Matrix<T>::Zero(1, 6);
  REQUIRE_THROWS_WITH(cv::gru_reset_after_from_keras(k),
                      Contains("gru_reset_after_from_keras: bias expected [2, 6]") && Contains("given [6]"));
  k.recurrent_kernel = cf::Matrix<T>::Zero(2, 5);
  REQUIRE_THROWS_MATCHES(
      cv::gru_from_keras(k), cf::ShapeError,
      Catch::Matchers::Message("gru_from_keras: recurrent_kernel expected [units, 3*units], given [2, 5]"));
  cv::KerasLSTMWeights<T> kl;
  kl.recurrent_kernel = cf::Matrix<T>::Zero(2, 8);
  kl.kernel = cf::Matrix<T>::Zero(3, 6);
  REQUIRE_THROWS_MATCHES(cv::lstm_from_keras(kl, 1.0), cf::ShapeError,
                         Catch::Matchers::Message("lstm_from_keras: kernel expected [input_dim, 8], given [3, 6]"));
}

TEST_CASE("convert: Keras loads check the cell kind, the GRU variant and every shape, failures change nothing",
          "[convert]") {
  using T = float;
  cf::Rng rng(47);
  cf::GRUCell<T> before(3, 4, rng);
  cf::CudnnCompatibleGRUCell<T> after(3, 4, rng);
  cf::BasicLSTMCell<T> lstm(3, 4, rng);
  cf::VariableList<T> vars;
  vars.add(before).add(after).add(lstm, "x");
  const auto values_before = snapshot(vars);
  cv::KerasGRUWeights<T> k{cf::Matrix<T>::Zero(3, 12), cf::Matrix<T>::Zero(4, 12), cf::Matrix<T>::Zero(2, 12)};
  REQUIRE_THROWS_MATCHES(
      cv::load_keras(before, k), cf::ValueError,
      Catch::Matchers::Message("load_keras: a bias [2, 12] is Keras GRU(reset_after=True), but "
                               "gru_cell(num_units=4) is the reset-before TF1 GRUCell: build it as a "
                               "CudnnCompatibleGRUCell"));
  k.bias = cf::Matrix<T>::Zero(1, 12);
  REQUIRE_THROWS_WITH(cv::load_keras(after, k),
                      Contains("is Keras GRU(reset_after=False), but cudnn_compatible_gru_cell"));
  REQUIRE_THROWS_WITH(cv::load_keras(lstm, k), Contains("basic_lstm_cell(num_units=4) cannot take Keras GRU weights"));
  k.kernel = cf::Matrix<T>::Zero(4, 12);
  REQUIRE_THROWS_MATCHES(
      cv::load_keras(before, k), cf::ShapeError,
      Catch::Matchers::Message("load_keras: kernel (gru_cell(num_units=4)) expected [3, 12], given [4, 12]"));
  cv::KerasLSTMWeights<T> kl{cf::Matrix<T>::Zero(3, 16), cf::Matrix<T>::Zero(4, 16), cf::Matrix<T>::Zero(1, 15)};
  REQUIRE_THROWS_WITH(
      cv::load_keras(lstm, kl),
      Contains("load_keras: bias (basic_lstm_cell(num_units=4)) expected [16] (a 1 x 16 matrix), given [15]"));
  REQUIRE_THROWS_WITH(cv::load_keras(before, kl), Contains("gru_cell(num_units=4) cannot take Keras LSTM weights"));
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  cf::LSTMCell<T> peep(3, 4, o, rng);
  kl.bias = cf::Matrix<T>::Zero(1, 16);
  REQUIRE_THROWS_WITH(cv::load_keras(peep, kl), Contains("Keras LSTM has no peepholes"));
  o.use_peepholes = false;
  o.num_proj = 2;
  cf::LSTMCell<T> proj(3, 4, o, rng);
  REQUIRE_THROWS_WITH(cv::load_keras(proj, kl), Contains("Keras LSTM has no projection (num_proj)"));

  // A stack: the wrong number of layers, and a bad last layer leave every layer unchanged.
  cf::MultiRNNCell<T> stack(cf::BasicLSTMCell<T>(3, 4, rng), cf::BasicLSTMCell<T>(4, 4, rng));
  cf::VariableList<T> sv;
  sv.add(stack);
  const auto stack_before = snapshot(sv);
  REQUIRE_THROWS_MATCHES(cv::load_keras(stack, std::vector<cv::KerasLSTMWeights<T>>{kl}), cf::ValueError,
                         Catch::Matchers::Message("load_keras: 1 Keras layers given, the MultiRNNCell has 2"));
  cv::KerasLSTMWeights<T> bad{cf::Matrix<T>::Ones(3, 16), cf::Matrix<T>::Ones(4, 16), cf::Matrix<T>::Ones(1, 16)};
  REQUIRE_THROWS_WITH(
      cv::load_keras(stack, std::vector<cv::KerasLSTMWeights<T>>{bad, bad}),
      Contains("load_keras: kernel (layer 1, basic_lstm_cell(num_units=4)) expected [4, 16], given [3, 16]"));
  CHECK(unchanged(sv, stack_before));
  CHECK(unchanged(vars, values_before));
}

TEST_CASE("convert: assign_weights and the cell readers check variable sets", "[convert]") {
  using T = double;
  cf::Rng rng(53);
  cf::BasicLSTMCell<T> cell(3, 4, rng);
  cf::VariableList<T> vars;
  vars.add(cell);
  const auto values_before = snapshot(vars);
  cv::LSTMWeights<T> w;
  w.kernel = cf::Matrix<T>::Zero(7, 16);
  w.bias = cf::Matrix<T>::Zero(1, 16);
  w.projection = cf::Matrix<T>::Zero(4, 2);
  REQUIRE_THROWS_MATCHES(
      cv::assign_weights(cell, w), cf::ValueError,
      Catch::Matchers::Message("assign_weights: the converted weights have 'projection/kernel', which "
                               "basic_lstm_cell(num_units=4) does not"));
  w.projection.resize(0, 0);
  w.kernel = cf::Matrix<T>::Zero(8, 16);
  REQUIRE_THROWS_MATCHES(
      cv::assign_weights(cell, w), cf::ShapeError,
      Catch::Matchers::Message("assign_weights: 'kernel' gives basic_lstm_cell(num_units=4) variable "
                               "'kernel' the shape [8, 16], the cell expects [7, 16]"));
  CHECK(unchanged(vars, values_before));
  REQUIRE_THROWS_MATCHES(cv::gru_weights(cell), cf::ValueError,
                         Catch::Matchers::Message("gru_weights: the cell has no variable 'gates/kernel'"));
  cf::GRUCell<T> gru(3, 4, rng);
  REQUIRE_THROWS_WITH(cv::gru_reset_after_weights(gru),
                      Contains("the cell has no variable 'candidate/input_projection/kernel'"));
  cf::CudnnCompatibleGRUCell<T> after(3, 4, rng);
  const auto ga = cv::gru_reset_after_weights(after);
  REQUIRE_THROWS_WITH(cv::assign_weights(gru, ga),
                      Contains("assign_weights: gru_cell(num_units=4) has a variable 'candidate/kernel' that the "
                               "converted weights do not provide"));
}

}  // namespace test_convert
