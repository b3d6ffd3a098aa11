// TensorFlow's own published expectations: the hard-coded numbers of TF 1.x's unit tests for the
// recurrent stack, xent, in_top_k and Adam (rnn_cell_test.py, rnn_test.py, sparse_xent_op_test.py,
// in_topk_op_test.py, adam_test.py and their neighbours), each reproduced here with the test's
// own tolerance. The numbers are transcribed as literals; every TEST_CASE names the golden id and
// the TF test.
//
// Setup of the cell goldens ("scope_constant" 0.5): TF built them under
// variable_scope(initializer=constant_initializer(0.5)), which sets every variable created with
// initializer=None (kernels, peephole diagonals, projection kernels, wrapper kernels, embeddings)
// to 0.5, while biases keep their explicit initializers (LSTM bias 0, GRU gates/bias 1.0, GRU
// candidate/bias 0, _Linear bias 0). Those bias defaults are cellflow's own constructor values,
// which the tests check before use.
//
// TF ran these in float32 (one case float16), so each runs in float and double.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_tf_goldens {

using namespace cellflow_test;

struct Tolerance {
  double rtol, atol;
};
constexpr Tolerance kTol1e6{1e-6, 1e-6};  // the assertAllClose tolerance of most cell goldens

/// numpy.allclose against a flat list of expectations; the worst element goes to the report.
template <class A>
void check_values(const std::string& what, const A& actual, const std::vector<double>& expected, Tolerance tol) {
  INFO(what << ": " << actual.size() << " values, " << expected.size() << " expected");
  REQUIRE(static_cast<std::size_t>(actual.size()) == expected.size());
  std::size_t worst = 0;
  double worst_ratio = -1;
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const double d = std::abs(static_cast<double>(actual.data()[k]) - expected[k]);
    const double ratio = std::isnan(d) ? 1e300 : d / (tol.atol + tol.rtol * std::abs(expected[k]));
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = k;
    }
  }
  if (!expected.empty())
    INFO("worst element #" << worst << ": got " << static_cast<double>(actual.data()[worst]) << ", expected "
                           << expected[worst] << " (|diff| / allowed = " << worst_ratio << ")");
  CHECK(allclose(actual, expected, tol.rtol, tol.atol));
}

template <class T>
cf::Matrix<T> filled(Index rows, Index cols, double value) {
  return cf::Matrix<T>::Constant(rows, cols, static_cast<T>(value));
}

/// The TF golden setup: every non-bias variable (kernels, peephole diagonals, projection
/// kernel) = value; biases untouched. Returns how many variables were set.
template <class T>
int set_scope_constant(cf::VariableList<T>& vars, double value) {
  int n = 0;
  for (auto& v : vars) {
    if (ends_with(v.name, "/bias")) continue;
    v.value->setConstant(static_cast<T>(value));
    ++n;
  }
  return n;
}

/// Checks the biases hold TF's explicit initial values (LSTM 0, GRU gates 1.0, candidate 0),
/// which the goldens depend on.
template <class T>
void check_default_biases(const cf::VariableList<T>& vars) {
  int seen = 0;
  for (const auto& v : vars) {
    if (!ends_with(v.name, "/bias")) continue;
    ++seen;
    const double expected = ends_with(v.name, "/gates/bias") ? 1.0 : 0.0;
    INFO("initial value of " << v.name);
    CHECK(v.value->isConstant(static_cast<T>(expected), 0));
  }
  CHECK(seen > 0);
}

/// The state_is_tuple=False tensor: the state's leaves (state_parts: c, h or h, layer after layer, in
/// nest.flatten order) concatenated along columns.
template <class T, class State>
cf::Matrix<T> concat_state(State s) {
  auto ls = state_parts(s);
  Index cols = 0;
  for (auto* m : ls) cols += m->cols();
  cf::Matrix<T> out(ls.front()->rows(), cols);
  Index at = 0;
  for (auto* m : ls) {
    out.middleCols(at, m->cols()) = *m;
    at += m->cols();
  }
  return out;
}

/// Splits a state_is_tuple=False tensor into the leaves of `proto` (a zero state of the cell).
template <class T, class State>
State split_state(State proto, const cf::Matrix<T>& concat) {
  auto ls = state_parts(proto);
  Index at = 0;
  for (auto* m : ls) {
    REQUIRE(at + m->cols() <= concat.cols());
    *m = concat.middleCols(at, m->cols());
    at += m->cols();
  }
  REQUIRE(at == concat.cols());
  return proto;
}

// ---- the 2-layer BasicLSTMCell stack shared by four goldens ----

template <class T>
cf::MultiRNNCell<T> basic_lstm_stack_2x2(cf::Rng& rng) {
  return cf::MultiRNNCell<T>(cf::BasicLSTMCell<T>(2, 2, rng, T(1)), cf::BasicLSTMCell<T>(2, 2, rng, T(1)));
}

template <class T>
cf::MultiRNNCell<T> gru_stack_2x2(cf::Rng& rng) {
  return cf::MultiRNNCell<T>(std::vector<cf::GRUCell<T>>{cf::GRUCell<T>(2, 2, rng), cf::GRUCell<T>(2, 2, rng)});
}

/// One step of the constant-0.5 2x BasicLSTMCell(2) stack from the all-0.1 state, x = [1, 1].
template <class T>
cf::StepOutput<T, std::vector<cf::CellState<T>>> basic_lstm_stack_step() {
  cf::Rng rng(7);
  auto cell = basic_lstm_stack_2x2<T>(rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  CHECK(vars.size() == 4);
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 2);
  const auto state = split_state<T>(cell.zero_state(1), filled<T>(1, 8, 0.1));
  return cell(mat<T>(1, 2, {1, 1}), state);
}

const std::vector<double> kBasicLstmStackState = {0.68967271, 0.68967271, 0.44848421, 0.44848421,
                                                  0.39897051, 0.39897051, 0.24024698, 0.24024698};

/// One GRU step with constant-0.5 kernels from h = 0.1.
template <class T>
cf::Matrix<T> gru_step_const(Index depth, Index units, const cf::Matrix<T>& x) {
  cf::Rng rng(3);
  cf::GRUCell<T> cell(depth, units, rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 2);
  const auto r = cell(x, filled<T>(x.rows(), units, 0.1));
  CHECK((r.state.array() == r.output.array()).all());  // a GRU's state is its output
  return r.output;
}

/// The constant-0.5 LSTMCell(3) of the DropoutWrapper goldens.
template <class T>
cf::LSTMCell<T> lstm3_const(cf::Rng& rng) {
  cf::LSTMCell<T> cell(3, 3, rng);
  cf::VariableList<T> vars;
  vars.add(cell, "rnn");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 1);
  return cell;
}

// =============================================================================================
// Single cells and stacks, one step (kind "cell_step")
// =============================================================================================

TEMPLATE_TEST_CASE("tf_golden gru_in2_u2: RNNCellTest.testGRUCell (scope 'root') output 0.175991", "[tf_golden]", float,
                   double) {
  const auto out = gru_step_const<TestType>(2, 2, mat<TestType>(1, 2, {1, 1}));
  check_values("output", out, {0.175991, 0.175991}, kTol1e6);
}

TEMPLATE_TEST_CASE("tf_golden gru_in3_u2: RNNCellTest.testGRUCell (scope 'other', input 3 != units 2) output 0.156736",
                   "[tf_golden]", float, double) {
  const auto out = gru_step_const<TestType>(3, 2, mat<TestType>(1, 3, {1, 1, 1}));
  check_values("output", out, {0.156736, 0.156736}, kTol1e6);
}

TEMPLATE_TEST_CASE("tf_golden multi_gru2_concat_state: RNNCellTest.testMultiRNNCell (state_is_tuple=False)",
                   "[tf_golden]", float, double) {
  using T = TestType;
  cf::Rng rng(11);
  auto cell = gru_stack_2x2<T>(rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 4);
  const auto s0 = split_state<T>(cell.zero_state(1), filled<T>(1, 4, 0.1));
  const auto r = cell(mat<T>(1, 2, {1, 1}), s0);
  // TF compares the concatenated state [h0, h1]; here: the parts of the tuple state.
  check_values("state_concat", concat_state<T>(r.state), {0.175991, 0.175991, 0.13248, 0.13248}, kTol1e6);
  check_values("output (top layer h)", r.output, {0.13248, 0.13248}, kTol1e6);
}

TEMPLATE_TEST_CASE("tf_golden multi_gru2_tuple_state: RNNCellTest.testMultiRNNCellWithStateTuple", "[tf_golden]", float,
                   double) {
  using T = TestType;
  cf::Rng rng(12);
  auto cell = gru_stack_2x2<T>(rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  CHECK(set_scope_constant(vars, 0.5) == 4);
  std::vector<cf::CellState<T>> s0{cf::CellState<T>(filled<T>(1, 2, 0.1)), cf::CellState<T>(filled<T>(1, 2, 0.1))};
  const auto r = cell(mat<T>(1, 2, {1, 1}), s0);
  REQUIRE(r.state.size() == 2);
  CHECK_FALSE(r.state[0].is_lstm());
  check_values("state[0].h", r.state[0].h(), {0.175991, 0.175991}, kTol1e6);
  check_values("state[1].h", r.state[1].h(), {0.13248, 0.13248}, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden multi_basic_lstm2_concat_state: RNNCellTest.testBasicLSTMCell (TF 1.0-1.12, 8 digits, "
    "state_is_tuple=False)",
    "[tf_golden]", float, double) {
  using T = TestType;
  const auto r = basic_lstm_stack_step<T>();
  check_values("output", r.output, {0.24024698, 0.24024698}, kTol1e6);
  check_values("state_concat [c0, h0, c1, h1]", concat_state<T>(r.state), kBasicLstmStackState, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden multi_basic_lstm2_concat_state_f16: RNNCellTest.testBasicLSTMCell (TF 1.13-1.15 float16/float32 "
    "loop, rtol 1e-2)",
    "[tf_golden]", float, double) {
  // TF ran this in float16 and float32; cellflow has no half type (float and double only), so the
  // 3-digit expectations are checked in float and double with the test's rtol 1e-2, atol 1e-6.
  using T = TestType;
  const Tolerance tol{1e-2, 1e-6};
  const auto r = basic_lstm_stack_step<T>();
  check_values("output", r.output, {0.24, 0.24}, tol);
  check_values("state_concat", concat_state<T>(r.state), {0.689, 0.689, 0.448, 0.448, 0.398, 0.398, 0.24, 0.24}, tol);
}

TEMPLATE_TEST_CASE(
    "tf_golden multi_basic_lstm2_tuple_of_concat: RNNCellTest.testBasicLSTMCellWithStateTuple (per-layer [c, h])",
    "[tf_golden]", float, double) {
  using T = TestType;
  const auto r = basic_lstm_stack_step<T>();
  check_values("output", r.output, {0.24024698, 0.24024698}, kTol1e6);
  REQUIRE(r.state.size() == 2);
  // MultiRNNCell state_is_tuple=True of cells with state_is_tuple=False: one [c, h] per layer.
  for (std::size_t l = 0; l < 2; ++l) {
    INFO("layer " << l);
    REQUIRE(r.state[l].is_lstm());
    cf::Matrix<T> layer_concat(1, 4);
    layer_concat << r.state[l].c(), r.state[l].h();
    const std::vector<double> expected(kBasicLstmStackState.begin() + static_cast<long>(4 * l),
                                       kBasicLstmStackState.begin() + static_cast<long>(4 * l + 4));
    check_values("layer [c, h]", layer_concat, expected, kTol1e6);
  }
}

TEMPLATE_TEST_CASE(
    "tf_golden multi_lstm_block_cell2: LSTMBlockCellTest.testLSTMBlockCell (same math as BasicLSTMCell, tuple state)",
    "[tf_golden]", float, double) {
  using T = TestType;
  cf::Rng rng(13);
  auto cell = basic_lstm_stack_2x2<T>(rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  CHECK(set_scope_constant(vars, 0.5) == 2);
  std::vector<cf::CellState<T>> s0;
  for (int l = 0; l < 2; ++l) s0.emplace_back(cf::LSTMStateTuple<T>{filled<T>(1, 2, 0.1), filled<T>(1, 2, 0.1)});
  const auto r = cell(mat<T>(1, 2, {1, 1}), s0);
  check_values("output", r.output, {0.24024698, 0.24024698}, kTol1e6);
  REQUIRE(r.state.size() == 2);
  check_values("state[0].c", r.state[0].c(), {0.68967271, 0.68967271}, kTol1e6);
  check_values("state[0].h", r.state[0].h(), {0.44848421, 0.44848421}, kTol1e6);
  check_values("state[1].c", r.state[1].c(), {0.39897051, 0.39897051}, kTol1e6);
  check_values("state[1].h", r.state[1].h(), {0.24024698, 0.24024698}, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden gru3_output_projection2: RNNCellTest.testOutputProjectionWrapper (OutputProjectionWrapper(GRUCell(3), "
    "2))",
    "[tf_golden]", float, double) {
  // OutputProjectionWrapper = the cell followed by a _Linear layer (kernel 0.5 from the scope,
  // bias 0): a cf::Dense composed with the GRU step.
  using T = TestType;
  cf::Rng rng(21);
  cf::GRUCell<T> cell(3, 3, rng);
  cf::Dense<T> proj(3, 2, rng, "output_projection_wrapper");
  cf::VariableList<T> vars;
  vars.add(cell, "root").add(proj, "root");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 3);
  const auto step = cell(mat<T>(1, 3, {1, 1, 1}), filled<T>(1, 3, 0.1));
  const cf::Matrix<T> out = proj(step.output);
  check_values("output", out, {0.231907, 0.231907}, kTol1e6);
  // The wrapper's state is the GRU's: the projection touches only the output.
  CHECK((step.state.array() == step.output.array()).all());
}

TEMPLATE_TEST_CASE(
    "tf_golden gru3_input_projection3: RNNCellTest.testInputProjectionWrapper (InputProjectionWrapper(GRUCell(3), "
    "num_proj=3))",
    "[tf_golden]", float, double) {
  // InputProjectionWrapper = a _Linear layer [2 -> 3] (kernel 0.5, bias 0) before the cell.
  using T = TestType;
  cf::Rng rng(22);
  cf::Dense<T> proj(2, 3, rng, "input_projection_wrapper");
  cf::GRUCell<T> cell(3, 3, rng);
  cf::VariableList<T> vars;
  vars.add(proj, "root").add(cell, "root");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 3);
  const cf::Matrix<T> cell_input = proj(mat<T>(1, 2, {1, 1}));
  check_values("cell input", cell_input, {1, 1, 1}, kTol1e6);
  const auto step = cell(cell_input, filled<T>(1, 3, 0.1));
  check_values("output", step.output, {0.154605, 0.154605, 0.154605}, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden gru2_embedding2: RNNCellTest.testEmbeddingWrapper (EmbeddingWrapper(GRUCell(2), classes 3, size 2))",
    "[tf_golden]", float, double) {
  // EmbeddingWrapper: the embedding [3, 2] takes the scope initializer (0.5); id 1 is looked up
  // by hand and fed to the GRU.
  using T = TestType;
  const cf::Matrix<T> embedding = filled<T>(3, 2, 0.5);
  const std::vector<int> ids = {1};
  cf::Matrix<T> x(1, 2);
  x.row(0) = embedding.row(ids[0]);
  const auto out = gru_step_const<T>(2, 2, x);
  check_values("output", out, {0.17139, 0.17139}, kTol1e6);
}

// =============================================================================================
// dynamic_rnn goldens (kind "dynamic_rnn")
// =============================================================================================

TEMPLATE_TEST_CASE(
    "tf_golden lstm3_dynamic_rnn_time_major: DropoutWrapperTest.testDropoutWrapperKeepAll (keep_prob=1, time_major)",
    "[tf_golden]", float, double) {
  // keep_prob = 1 makes the DropoutWrapper the identity: plain time-major dynamic_rnn.
  using T = TestType;
  cf::Rng rng(31);
  const auto cell = lstm3_const<T>(rng);
  cf::Tensor3<T> x(2, 1, 3);  // [time, batch, depth]
  for (Index d = 0; d < 3; ++d) {
    x(0, 0, d) = T(2);
    x(1, 0, d) = T(1);
  }
  const cf::LSTMStateTuple<T> s0{filled<T>(1, 3, 0.1), filled<T>(1, 3, 0.1)};
  cf::RNNOptions opt;
  opt.time_major = true;
  const auto r = cf::dynamic_rnn(cell, x, s0, opt);
  REQUIRE(r.outputs.dimension(0) == 2);
  REQUIRE(r.outputs.dimension(1) == 1);
  check_values("outputs", r.outputs, {0.751109, 0.751109, 0.751109, 0.895509, 0.895509, 0.895509}, kTol1e6);
  check_values("final_state.c", r.final_state.c, {1.949385, 1.949385, 1.949385}, kTol1e6);
  check_values("final_state.h", r.final_state.h, {0.895509, 0.895509, 0.895509}, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden lstm3_dynamic_rnn_h_state_dropped: DropoutWrapperTest.testDropoutWrapperKeepNoStateExceptLSTMCellMemory",
    "[tf_golden]", float, double) {
  // state_keep_prob ~ 0 zeroes the h of the carried state after every step, never c: run step by
  // step with cell(x, state) and zero h in between.
  using T = TestType;
  cf::Rng rng(32);
  const auto cell = lstm3_const<T>(rng);
  cf::LSTMStateTuple<T> state{filled<T>(1, 3, 0.1), filled<T>(1, 3, 0.1)};
  std::vector<cf::Matrix<T>> outputs;
  for (const double v : {2.0, 1.0}) {
    auto step = cell(filled<T>(1, 3, v), state);
    outputs.push_back(step.output);
    state = step.state;
    state.h.setZero();
  }
  check_values("outputs[0]", outputs[0], {0.751109, 0.751109, 0.751109}, kTol1e6);
  check_values("final_state.c", state.c, {1.713925, 1.713925, 1.713925}, kTol1e6);
  CHECK(state.h.isZero(0));
  // Step 1 ran from h = 0, so it differs from the keep-all output 0.895509.
  const double diff = (outputs[1].template cast<double>() - filled<double>(1, 3, 0.895509)).norm();
  INFO("|outputs[1] - keep-all output| = " << diff);
  CHECK(diff >= 1e-4);
}

// =============================================================================================
// Properties (kind "property")
// =============================================================================================

TEMPLATE_TEST_CASE(
    "tf_golden lstm_peephole_cell_clip_zero: LSTMTest.testCellClipping (cell_clip=0 => outputs exactly 0)",
    "[tf_golden]", float, double) {
  using T = TestType;
  const Index depth = 5, units = 3, batch = 2, steps = 8;
  cf::Rng rng(41);
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  o.cell_clip = T(0);
  cf::LSTMCell<T> cell(depth, units, o, rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  REQUIRE(vars.size() == 5);  // kernel, bias, 3 peephole diagonals
  // TF's initializer random_uniform(-0.01, 0.01) on every initializer=None variable; TF's draws are
  // not reproducible, the property holds for any weights.
  for (auto& v : vars)
    if (!ends_with(v.name, "/bias"))
      *v.value = random_matrix<T>(v.value->rows(), v.value->cols(), rng, T(-0.01), T(0.01));
  const cf::Matrix<T> x = random_matrix<T>(batch, depth, rng);
  cf::Tensor3<T> inputs(batch, steps, depth);  // the same input at every step
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < steps; ++t)
      for (Index d = 0; d < depth; ++d) inputs(b, t, d) = x(b, d);
  const auto r = cf::dynamic_rnn(cell, inputs);
  REQUIRE(r.outputs.size() == batch * steps * units);
  for (Index k = 0; k < r.outputs.size(); ++k) {
    INFO("output element " << k);
    CHECK(r.outputs.data()[k] == T(0));  // tolerance 0: exactly zero
  }
  CHECK(r.final_state.c.isZero(0));
  CHECK(r.final_state.h.isZero(0));
  // The same with the static (step by step) loop, as TF's static_rnn test ran.
  auto state = cell.zero_state(batch);
  for (Index t = 0; t < steps; ++t) {
    auto step = cell(x, state);
    INFO("step " << t);
    CHECK(step.output.isZero(0));
    state = step.state;
  }
}

TEMPLATE_TEST_CASE("tf_golden lstm_proj_shapes: RNNCellTest.testLSTMCell (num_units=8, num_proj=6, concat state)",
                   "[tf_golden]", float, double) {
  using T = TestType;
  cf::Rng rng(51);
  cf::LSTMOptions<T> o;
  o.num_proj = 6;
  cf::LSTMCell<T> cell(2, 8, o, rng);
  cf::VariableList<T> vars;
  vars.add(cell, "root");
  check_default_biases(vars);
  CHECK(set_scope_constant(vars, 0.5) == 2);  // kernel and projection/kernel
  const cf::Matrix<T> x = mat<T>(3, 2, {1, 1, 2, 2, 3, 3});
  const auto s0 = split_state<T>(cell.zero_state(3), filled<T>(3, 14, 0.1));
  CHECK(s0.c.cols() == 8);
  CHECK(s0.h.cols() == 6);
  const auto r = cell(x, s0);
  CHECK(r.output.rows() == 3);
  CHECK(r.output.cols() == 6);
  const cf::Matrix<T> state = concat_state<T>(r.state);
  CHECK(state.rows() == 3);
  CHECK(state.cols() == 14);
  // Different inputs give different outputs and states (every pair of rows).
  for (Index i = 0; i < 3; ++i)
    for (Index j = i + 1; j < 3; ++j) {
      INFO("rows " << i << " and " << j);
      CHECK(static_cast<double>((r.output.row(i) - r.output.row(j)).norm()) > 1e-6);
      CHECK(static_cast<double>((state.row(i) - state.row(j)).norm()) > 1e-6);
    }
}

TEMPLATE_TEST_CASE("tf_golden dynamic_calculation_plus1: RNNTest.testDynamicCalculation selection semantics (on a GRU)",
                   "[tf_golden]", float, double) {
  // TF's test uses a Plus1RNNCell with sequence_length [2, 3] over 8 steps of one repeated input:
  // outputs past each length are 0 and the final state is the state after step len-1. cellflow
  // cannot build a Plus1 cell, so the same selection rules are asserted on a GRUCell: outputs
  // before the length and the final state equal those of running that example's first len steps
  // alone (batch of one, no sequence_length). The json's tolerance is atol 1e-12 (rtol 0); that
  // is used for double, float gets atol 1e-6 (a batch of one may round GEMMs differently).
  using T = TestType;
  const double atol = sizeof(T) == 8 ? 1e-12 : 1e-6;
  const Index units = 5, batch = 2, steps = 8;
  const std::vector<Index> lengths = {2, 3};
  cf::Rng rng(23489);
  cf::GRUCell<T> cell(units, units, rng);
  const cf::Matrix<T> x = random_matrix<T>(batch, units, rng);
  cf::Tensor3<T> inputs(batch, steps, units);
  for (Index b = 0; b < batch; ++b)
    for (Index t = 0; t < steps; ++t)
      for (Index d = 0; d < units; ++d) inputs(b, t, d) = x(b, d);
  cf::RNNOptions opt;
  opt.sequence_length = lengths;
  const auto r = cf::dynamic_rnn(cell, inputs, opt);

  for (Index b = 0; b < batch; ++b) {
    const Index len = lengths[static_cast<std::size_t>(b)];
    INFO("example " << b << ", length " << len);
    cf::Tensor3<T> alone(1, len, units);
    for (Index t = 0; t < len; ++t)
      for (Index d = 0; d < units; ++d) alone(0, t, d) = x(b, d);
    const auto ra = cf::dynamic_rnn(cell, alone);
    for (Index t = 0; t < steps; ++t)
      for (Index d = 0; d < units; ++d) {
        INFO("step " << t << ", unit " << d);
        if (t < len)
          CHECK(std::abs(static_cast<double>(r.outputs(b, t, d) - ra.outputs(0, t, d))) <= atol);
        else
          CHECK(r.outputs(b, t, d) == T(0));  // exactly zero past the length
      }
    for (Index d = 0; d < units; ++d) {
      INFO("final state unit " << d);
      CHECK(std::abs(static_cast<double>(r.final_state(b, d) - ra.final_state(0, d))) <= atol);
      // ... which is also the last valid output (not outputs[:, -1], which is 0).
      CHECK(r.final_state(b, d) == r.outputs(b, len - 1, d));
    }
  }
  // The two rows really differ after step 2 (row 1 ran one step more).
  CHECK(static_cast<double>((r.final_state.row(0) - r.final_state.row(1)).norm()) > 1e-6);
}

// =============================================================================================
// sparse_softmax_cross_entropy_with_logits (kind "sparse_xent")
// =============================================================================================

TEMPLATE_TEST_CASE("tf_golden sparse_xent_np: SparseXentTest.testNpXent / testFloat / testDouble", "[tf_golden]", float,
                   double) {
  using T = TestType;
  const Tolerance tol{1e-3, 1e-3};
  const auto r =
      cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{3, 0}, mat<T>(2, 4, {1, 1, 1, 1, 1, 2, 3, 4}));
  check_values("loss", r.loss, {1.3862, 3.442}, tol);
  check_values("backprop", r.backprop, {0.25, 0.25, 0.25, -0.75, -0.968, 0.087, 0.237, 0.6439}, tol);
}

TEMPLATE_TEST_CASE("tf_golden sparse_xent_single_class: SparseXentTest.testSingleClass", "[tf_golden]", float, double) {
  using T = TestType;
  const auto r =
      cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{0, 0, 0}, mat<T>(3, 1, {1.0, -1.0, 0.0}));
  check_values("loss", r.loss, {0, 0, 0}, kTol1e6);
  check_values("backprop", r.backprop, {0, 0, 0}, kTol1e6);
}

TEMPLATE_TEST_CASE(
    "tf_golden sparse_xent_invalid_label_gpu: SparseXentTest.testInvalidLabelCPU semantics (ValueError naming the "
    "label)",
    "[tf_golden]", float, double) {
  // The golden is the GPU kernel's (NaN rows for labels 4 and -1). cellflow follows the CPU kernel,
  // whose test expects InvalidArgumentError "Received a label value of ...": a cf::ValueError
  // naming the offending label. The valid rows keep the golden's numbers.
  using T = TestType;
  const cf::Matrix<T> logits = mat<T>(4, 4, {1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 1, 2, 3, 4});
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{4, 3, 0, -1}, logits), cf::ValueError);
  CHECK_THROWS_WITH(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{4, 3, 0, -1}, logits),
                    Contains("label") && Contains("= 4"));
  // Only the -1 label invalid: the message names -1.
  CHECK_THROWS_AS(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{0, 3, 0, -1}, logits), cf::ValueError);
  CHECK_THROWS_WITH(cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{0, 3, 0, -1}, logits),
                    Contains("label") && Contains("-1"));
  // The golden's valid rows (labels 3 and 0 on rows 1 and 2), rtol/atol 1e-3.
  const Tolerance tol{1e-3, 1e-3};
  const auto r = cf::sparse_softmax_cross_entropy_with_logits(std::vector<int>{3, 0}, logits.middleRows(1, 2).eval());
  check_values("valid rows: loss", r.loss, {1.3862, 3.442}, tol);
  check_values("valid rows: backprop", r.backprop, {0.25, 0.25, 0.25, -0.75, -0.968, 0.087, 0.237, 0.6439}, tol);
}

// =============================================================================================
// in_top_k (kind "in_top_k"): exact booleans
// =============================================================================================

template <class T>
void check_in_top_k(const cf::Matrix<T>& predictions, const std::vector<int>& targets, Index k,
                    const std::vector<bool>& expected) {
  const std::vector<bool> got = cf::in_top_k(predictions, targets, k);
  CHECK(got == expected);
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEMPLATE_TEST_CASE("tf_golden in_top_k_top1: InTopKTest.testInTop1", "[tf_golden]", float, double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, 0.3, 0.2, 0.4, 0.1, 0.2, 0.3, 0.4}), {3, 1}, 1, {true, false});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_top2: InTopKTest.testInTop2 / testInTop2_int64Target", "[tf_golden]", float,
                   double) {
  const auto p = mat<TestType>(2, 4, {0.1, 0.3, 0.2, 0.4, 0.1, 0.2, 0.3, 0.4});
  check_in_top_k(p, {0, 2}, 2, {false, true});
  // int64 targets
  CHECK(cf::in_top_k(p, std::vector<long long>{0, 2}, 2) == std::vector<bool>{false, true});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_top2_tie: InTopKTest.testInTop2Tie (ties favour the target)", "[tf_golden]",
                   float, double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, 0.3, 0.2, 0.2, 0.1, 0.3, 0.2, 0.2}), {2, 3}, 2, {true, true});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_nan_old: InTopKTest.testInTopNan (old targets [0, 2])", "[tf_golden]", float,
                   double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, kNaN, 0.2, 0.4, 0.1, 0.2, 0.3, kInf}), {0, 2}, 2, {false, false});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_nan_new: InTopKTest.testInTopNan (new targets [1, 3])", "[tf_golden]", float,
                   double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, kNaN, 0.2, 0.4, 0.1, 0.2, 0.3, kInf}), {1, 3}, 2, {false, false});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_bad_target: InTopKTest.testBadTarget (out-of-range target => false)",
                   "[tf_golden]", float, double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, 0.3, 0.2, 0.2, 0.1, 0.3, 0.2, 0.2}), {2, 4}, 2, {true, false});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_tensor_k3: InTopKTest.testTensorK (k = 3)", "[tf_golden]", float, double) {
  check_in_top_k(mat<TestType>(2, 4, {0.1, 0.3, 0.2, 0.4, 0.1, 0.2, 0.3, 0.4}), {0, 2}, 3, {false, true});
}

TEMPLATE_TEST_CASE("tf_golden in_top_k_empty: InTopKTest.testEmpty", "[tf_golden]", float, double) {
  const cf::Matrix<TestType> empty(0, 5);  // TF: np.empty([0, 5])
  const std::vector<bool> got = cf::in_top_k(empty, std::vector<int>{}, 2);
  CHECK(got.empty());
}

// =============================================================================================
// AdamOptimizer (kind "adam")
// =============================================================================================

TEMPLATE_TEST_CASE("tf_golden adam_basic_3_steps: AdamOptimizerTest.doTestBasic (3 steps, beta powers)", "[tf_golden]",
                   float, double) {
  using T = TestType;
  cf::Parameter<T> var0(2), var1(2);
  var0.value << T(1), T(2);
  var1.value << T(3), T(4);
  cf::VariableList<T> vars;
  vars.add_one("var0", var0).add_one("var1", var1);
  cf::AdamOptimizer<T> adam(T(0.001), T(0.9), T(0.999), T(1e-8));
  // Before step t the test asserts beta1_power == 0.9**t, beta2_power == 0.999**t.
  CHECK(static_cast<double>(adam.beta1_power()) == Approx(0.9).epsilon(1e-7));
  CHECK(static_cast<double>(adam.beta2_power()) == Approx(0.999).epsilon(1e-7));

  struct Step {
    std::vector<double> var0, var1;
    double beta1_power_after, beta2_power_after;
  };
  const std::vector<Step> expected = {
      {{0.9990000031622677, 1.9990000031622677}, {2.9990000316217764, 3.9990000316217764}, 0.81, 0.998001},
      {{0.9980000053988899, 1.9980000053988898},
       {2.9980000539875484, 3.9980000539875484},
       0.7290000000000001,
       0.997002999},
      {{0.9970000072255417, 1.9970000072255416}, {2.997000072253766, 3.997000072253766}, 0.6561, 0.996005996001},
  };
  for (std::size_t t = 0; t < expected.size(); ++t) {
    INFO("step t = " << t + 1);
    var0.grad << T(0.1), T(0.1);  // the test's constant gradients
    var1.grad << T(0.01), T(0.01);
    adam.apply_gradients(vars);
    check_values("var0", var0.value, expected[t].var0, kTol1e6);
    check_values("var1", var1.value, expected[t].var1, kTol1e6);
    const double b1 = static_cast<double>(adam.beta1_power()), b2 = static_cast<double>(adam.beta2_power());
    CHECK(std::abs(b1 - expected[t].beta1_power_after) <= 1e-6 + 1e-6 * expected[t].beta1_power_after);
    CHECK(std::abs(b2 - expected[t].beta2_power_after) <= 1e-6 + 1e-6 * expected[t].beta2_power_after);
    CHECK(adam.step() == static_cast<long long>(t + 1));
  }
}

}  // namespace test_tf_goldens
