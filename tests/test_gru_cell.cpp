// GRUCell (TF1's GRUCell, reset before the candidate matmul) and CudnnCompatibleGRUCell (TF1's
// CudnnCompatibleGRUCell: the cuDNN / PyTorch nn.GRU / Keras GRU(reset_after=True) equations).
//
// * Variables: TF's names, creation order, shapes and initializers (gates/bias 1.0, candidate
//   biases 0, glorot kernels drawn in creation order); the default GRUCell is unchanged.
// * Closed form of one step with hand-picked weights (the hidden-projection bias sits inside r).
// * Central-difference gradient checks in double (tests/support/gradcheck.hpp) of the reset-after
//   cell alone and inside 2-layer MultiRNNCells.
// * Equality with PyTorch's nn.GRU (tests/fixtures/framework_reference.txt): the weights are
//   assigned by TF name from the TF-layout tensors the generator mapped in Python (not through
//   cellflow's converters), then outputs, final states and every gradient are compared.
// * Step-by-step cell(x, h) and batch_threads = 2 agree with dynamic_rnn.
// * Both classes: built from given weights without an Rng, weights() / set_weights() (all or
//   nothing, errors naming the variable), config(), zero_grad(), constructor errors.
// Everything every cell must do (streams, checkpoints, padding, ...) is in test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"
#include "support/weights_check.hpp"

namespace test_gru_cell {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;
using StackState = std::vector<cf::CellState<double>>;

template <class C, class = void>
struct has_candidate_kernel : std::false_type {};
template <class C>
struct has_candidate_kernel<C, std::void_t<decltype(std::declval<C&>().candidate_kernel())>> : std::true_type {};
template <class C, class = void>
struct has_candidate_input_kernel : std::false_type {};
template <class C>
struct has_candidate_input_kernel<C, std::void_t<decltype(std::declval<C&>().candidate_input_kernel())>>
    : std::true_type {};

template <class T, class A>
void check_close_t(const std::string& what, const A& actual, const std::vector<double>& expected) {
  check_close(what, actual, expected, FrameworkTol<T>::rtol, FrameworkTol<T>::atol);
}

/// The PyTorch-layout gradient of one torch parameter, assembled from cellflow's TF-layout
/// gradients by hand (weight_ih rows r | z | n are the transposed x-rows of gates/kernel's r | u
/// columns and of the input projection; biases: r | z get the gate-bias gradient on both).
template <class T>
cf::Matrix<T> torch_grad(cf::VariableList<T>& vars, const std::string& scope, const std::string& what) {
  const auto& gk = *vars.at(scope + "gates/kernel").grad;
  const Index U = gk.cols() / 2, D = gk.rows() - U;
  cf::Matrix<T> out;
  if (what == "weight_ih") {
    out.resize(3 * U, D);
    out.topRows(2 * U) = gk.topRows(D).transpose();
    out.bottomRows(U) = vars.at(scope + "candidate/input_projection/kernel").grad->transpose();
  } else if (what == "weight_hh") {
    out.resize(3 * U, U);
    out.topRows(2 * U) = gk.bottomRows(U).transpose();
    out.bottomRows(U) = vars.at(scope + "candidate/hidden_projection/kernel").grad->transpose();
  } else {
    out.resize(1, 3 * U);
    out.leftCols(2 * U) = *vars.at(scope + "gates/bias").grad;
    out.rightCols(U) =
        *vars.at(scope + (what == "bias_ih" ? "candidate/input_projection/bias" : "candidate/hidden_projection/bias"))
             .grad;
  }
  return out;
}

TEST_CASE("gru reset_after: TF's CudnnCompatibleGRUCell variables, order, shapes and initializers",
          "[gru_cell][gru_reset_after]") {
  cf::Rng rng(11);
  cf::CudnnCompatibleGRUCell<double> cell(3, 4, rng);
  CHECK(cell.config().kind == "CudnnCompatibleGRUCell");
  CHECK(cell.cell_name() == "cudnn_compatible_gru_cell(num_units=4)");
  CHECK(cell.scope_name() == "cudnn_compatible_gru_cell");
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  const std::vector<std::string> names{"gates/kernel",
                                       "gates/bias",
                                       "candidate/input_projection/kernel",
                                       "candidate/hidden_projection/kernel",
                                       "candidate/input_projection/bias",
                                       "candidate/hidden_projection/bias"};
  const std::vector<std::vector<Index>> shapes{{7, 8}, {8}, {3, 4}, {4, 4}, {4}, {4}};
  REQUIRE(vars.size() == names.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    CHECK(vars[k].name == "rnn/cudnn_compatible_gru_cell/" + names[k]);
    CHECK(vars[k].shape == shapes[k]);
  }
  CHECK((vars[1].value->array() == 1.0).all());
  CHECK((vars[4].value->array() == 0.0).all());
  CHECK((vars[5].value->array() == 0.0).all());
  // glorot_uniform with each kernel's own fans, drawn in creation order.
  cf::Rng replay(11);
  Mat g(7, 8), in(3, 4), hid(4, 4);
  cf::glorot_uniform(g, 7, 8, replay);
  cf::glorot_uniform(in, 3, 4, replay);
  cf::glorot_uniform(hid, 4, 4, replay);
  CHECK((*vars[0].value).cwiseEqual(g).all());
  CHECK((*vars[2].value).cwiseEqual(in).all());
  CHECK((*vars[3].value).cwiseEqual(hid).all());
  // Neither GRU class holds the other's candidate variables.
  static_assert(has_candidate_kernel<cf::GRUCell<double>>::value);
  static_assert(!has_candidate_kernel<cf::CudnnCompatibleGRUCell<double>>::value);
  static_assert(!has_candidate_input_kernel<cf::GRUCell<double>>::value);
  CHECK(cell.candidate_input_kernel().value.cwiseEqual(in).all());

  REQUIRE_THROWS_MATCHES(cf::CudnnCompatibleGRUCell<float>(3, 0, rng), cf::ValueError,
                         Catch::Matchers::Message("cudnn_compatible_gru_cell: input_depth and num_units must be "
                                                  "positive, given input_depth=3, num_units=0"));
}

TEST_CASE("gru reset_after: the default GRUCell is TF1's GRUCell, unchanged", "[gru_cell][gru_reset_after]") {
  cf::Rng a(5), b(5);
  cf::GRUCell<float> old_ctor(3, 4, a);
  cf::GRUCell<float> with_options(3, 4, b);
  CHECK(with_options.config().kind == "GRUCell");
  cf::VariableList<float> va, vb;
  va.add(old_ctor);
  vb.add(with_options);
  REQUIRE(va.size() == 4);
  REQUIRE(vb.size() == 4);
  const char* names[] = {"gru_cell/gates/kernel", "gru_cell/gates/bias", "gru_cell/candidate/kernel",
                         "gru_cell/candidate/bias"};
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(va[k].name == names[k]);
    CHECK(vb[k].name == names[k]);
    CHECK((va[k].value->array() == vb[k].value->array()).all());
  }
  cf::Rng rng(6);
  const auto X = random_tensor<float>(2, 3, 3, rng);
  const auto r1 = cf::dynamic_rnn(old_ctor, X), r2 = cf::dynamic_rnn(with_options, X);
  for (Index k = 0; k < r1.outputs.size(); ++k) REQUIRE(r1.outputs.data()[k] == r2.outputs.data()[k]);
}

TEST_CASE("gru reset_after: one step against the closed form", "[gru_cell][gru_reset_after]") {
  // D = 1, U = 1; every variable set by hand.
  cf::Rng rng(1);
  cf::CudnnCompatibleGRUCell<double> cell(1, 1, rng);
  cell.gates_kernel().value << 0.5, -0.25,  // x row: r, u
      0.75, 0.125;                          // h row: r, u
  cell.gates_bias().value << 0.1, -0.2;
  cell.candidate_input_kernel().value << 0.3;
  cell.candidate_hidden_kernel().value << -0.6;
  cell.candidate_input_bias().value << 0.05;
  cell.candidate_hidden_bias().value << 0.4;
  const double x = 0.9, h = -0.7;
  const auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double r = sig(0.5 * x + 0.75 * h + 0.1), u = sig(-0.25 * x + 0.125 * h - 0.2);
  const double c = std::tanh(0.3 * x + 0.05 + r * (-0.6 * h + 0.4));
  const double expected = u * h + (1 - u) * c;
  const auto out = cell(Mat::Constant(1, 1, x), Mat::Constant(1, 1, h));
  CHECK(out.output(0, 0) == Approx(expected).epsilon(1e-15));
  CHECK(out.state(0, 0) == out.output(0, 0));
  // The reset-before formula gives a different number with the same weights: the variant matters.
  const double c_before = std::tanh(0.3 * x + (r * h) * -0.6 + 0.05);
  CHECK(std::abs(expected - (u * h + (1 - u) * c_before)) > 0.05);
}

TEST_CASE("gru reset_after: gradcheck of a single cell", "[gru_cell][gru_reset_after][gradcheck]") {
  cf::Rng rng(606);
  cf::CudnnCompatibleGRUCell<double> cell(3, 4, rng);
  randomize_variables(cell, rng);
  check_rnn_gradients(cell, cell.cell_name(), 5, rng);
}

TEST_CASE("gru reset_after: gradcheck inside 2-layer MultiRNNCells", "[gru_cell][gru_reset_after][gradcheck]") {
  SECTION("two reset-after GRUs") {
    cf::Rng rng(707);
    cf::MultiRNNCell<double> multi(cf::CudnnCompatibleGRUCell<double>(3, 4, rng),
                                   cf::CudnnCompatibleGRUCell<double>(4, 2, rng));
    randomize_variables(multi, rng);
    check_rnn_gradients(multi, multi.cell_name(), 4, rng);
  }
  SECTION("BasicLSTMCell below a reset-after GRU, and a reset-before GRU above") {
    cf::Rng rng(808);
    cf::MultiRNNCell<double> multi(cf::BasicLSTMCell<double>(2, 3, rng, 0.5),
                                   cf::CudnnCompatibleGRUCell<double>(3, 3, rng), cf::GRUCell<double>(3, 2, rng));
    randomize_variables(multi, rng);
    check_rnn_gradients(multi, multi.cell_name(), 4, rng);
  }
}

TEMPLATE_TEST_CASE("gru reset_after: equals PyTorch nn.GRU (outputs, states, every gradient)",
                   "[gru_cell][gru_reset_after]", float, double) {
  using T = TestType;
  for (const char* name : {"torch_gru", "torch_gru_seq_len"}) {
    INFO("case " << name);
    const auto& c = framework_cases().at(name);
    const Index D = static_cast<Index>(c.config_num("input_size")), H = static_cast<Index>(c.config_num("hidden_size"));
    cf::Rng rng(2);
    cf::MultiRNNCell<T> multi(cf::CudnnCompatibleGRUCell<T>(D, H, rng), cf::CudnnCompatibleGRUCell<T>(H, H, rng));
    cf::VariableList<T> vars;
    vars.add(multi, "rnn");
    REQUIRE(vars.size() == 12);
    for (auto& v : vars) vars.assign(v.name, to_matrix<T>(c.tensor("tf/" + v.name)));

    cf::RNNOptions opt;
    if (c.has_ints("sequence_length")) {
      std::vector<Index> lens;
      for (long long v : c.int_list("sequence_length")) lens.push_back(static_cast<Index>(v));
      opt.sequence_length = lens;
    }
    std::vector<cf::CellState<T>> s0{layer_of<T>(c.tensor("h0"), 0), layer_of<T>(c.tensor("h0"), 1)};
    auto r = cf::dynamic_rnn(multi, to_tensor3<T>(c.tensor("inputs")), s0, opt);
    check_close_t<T>("outputs", r.outputs, c.tensor("outputs").values);
    for (Index l = 0; l < 2; ++l)
      check_close_t<T>("h_n", r.final_state[static_cast<std::size_t>(l)].h(),
                       values_of(layer_of<T>(c.tensor("h_n"), l)));

    vars.zero_grad();
    auto d_final = r.final_state;
    for (Index l = 0; l < 2; ++l) d_final[static_cast<std::size_t>(l)].h() = layer_of<T>(c.tensor("w_h_n"), l);
    const auto Wo = to_tensor3<T>(c.tensor("w_outputs"));
    const auto g = cf::dynamic_rnn_backward(multi, r, &Wo, &d_final);
    check_close_t<T>("grad/inputs", g.d_inputs, c.tensor("grad/inputs").values);
    for (Index l = 0; l < 2; ++l) {
      check_close_t<T>("grad/h0", g.d_initial_state[static_cast<std::size_t>(l)].h(),
                       values_of(layer_of<T>(c.tensor("grad/h0"), l)));
      const std::string scope = "rnn/multi_rnn_cell/cell_" + std::to_string(l) + "/cudnn_compatible_gru_cell/";
      for (const char* p : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
        const std::string key = std::string(p) + "_l" + std::to_string(l);
        check_close_t<T>("grad/" + key, torch_grad(vars, scope, p), c.tensor("grad/" + key).values);
      }
    }
  }
}

TEST_CASE("gru reset_after: cell(x, h) step by step and batch_threads agree with dynamic_rnn",
          "[gru_cell][gru_reset_after]") {
  cf::Rng rng(9);
  cf::CudnnCompatibleGRUCell<double> cell(3, 4, rng);
  randomize_variables(cell, rng);
  const Index B = 5, T = 6;
  const Ten X = random_tensor<double>(B, T, 3, rng);
  const Mat h0 = random_matrix<double>(B, 4, rng);
  const auto r = cf::dynamic_rnn(cell, X, h0);
  Mat h = h0;
  for (Index t = 0; t < T; ++t) {
    Mat x(B, 3);
    for (Index b = 0; b < B; ++b)
      for (Index d = 0; d < 3; ++d) x(b, d) = X(b, t, d);
    const auto s = cell(x, h);
    h = s.state;
    for (Index b = 0; b < B; ++b)
      for (Index u = 0; u < 4; ++u) CHECK(std::abs(r.outputs(b, t, u) - s.output(b, u)) <= 1e-14);
  }
  CHECK((r.final_state - h).cwiseAbs().maxCoeff() <= 1e-14);

  cf::RNNOptions two;
  two.batch_threads = 2;
  two.sequence_length = std::vector<Index>{6, 0, 3, 6, 1};
  cf::RNNOptions one = two;
  one.batch_threads = 1;
  auto r1 = cf::dynamic_rnn(cell, X, h0, one);
  auto r2 = cf::dynamic_rnn(cell, X, h0, two);
  CHECK((r1.final_state - r2.final_state).cwiseAbs().maxCoeff() <= 1e-14);
  cf::VariableList<double> vars;
  vars.add(cell);
  const Ten Wo = random_tensor<double>(B, T, 4, rng);
  vars.zero_grad();
  const auto g1 = cf::dynamic_rnn_backward(cell, r1, &Wo);
  std::vector<Mat> grads1;
  for (auto& v : vars) grads1.push_back(*v.grad);
  vars.zero_grad();
  const auto g2 = cf::dynamic_rnn_backward(cell, r2, &Wo);
  for (std::size_t k = 0; k < vars.size(); ++k) CHECK((*vars[k].grad - grads1[k]).cwiseAbs().maxCoeff() <= 1e-13);
  CHECK((g1.d_initial_state - g2.d_initial_state).cwiseAbs().maxCoeff() <= 1e-14);
  for (Index k = 0; k < X.size(); ++k) CHECK(std::abs(g1.d_inputs.data()[k] - g2.d_inputs.data()[k]) <= 1e-14);
}

TEST_CASE("GRUCell and CudnnCompatibleGRUCell from given weights, weights() and set_weights()", "[gru_cell]") {
  cf::Rng rng(31);
  SECTION("GRUCell") {
    using W = cf::GRUWeights<double>;
    cf::GRUCell<double> cell(3, 4, rng);
    check_weights_api<cf::GRUCell<double>, W>(
        cell, [](const W& w) { return cf::GRUCell<double>(w); },
        {{&W::gates_kernel, "gates/kernel"},
         {&W::gates_bias, "gates/bias"},
         {&W::candidate_kernel, "candidate/kernel"},
         {&W::candidate_bias, "candidate/bias"}},
        rng);
  }
  SECTION("CudnnCompatibleGRUCell") {
    using W = cf::CudnnCompatibleGRUWeights<double>;
    cf::CudnnCompatibleGRUCell<double> cell(3, 4, rng);
    check_weights_api<cf::CudnnCompatibleGRUCell<double>, W>(
        cell, [](const W& w) { return cf::CudnnCompatibleGRUCell<double>(w); },
        {{&W::gates_kernel, "gates/kernel"},
         {&W::gates_bias, "gates/bias"},
         {&W::candidate_input_kernel, "candidate/input_projection/kernel"},
         {&W::candidate_hidden_kernel, "candidate/hidden_projection/kernel"},
         {&W::candidate_input_bias, "candidate/input_projection/bias"},
         {&W::candidate_hidden_bias, "candidate/hidden_projection/bias"}},
        rng);
  }
  SECTION("the sizes follow from gates/kernel [D + U, 2U]") {
    cf::GRUWeights<float> w;
    w.gates_kernel = cf::Matrix<float>::Zero(7, 8);  // D = 3, U = 4
    w.gates_bias = cf::Matrix<float>::Ones(1, 8);
    w.candidate_kernel = cf::Matrix<float>::Zero(7, 4);
    w.candidate_bias = cf::Matrix<float>::Zero(1, 4);
    const cf::GRUCell<float> cell(w);
    CHECK(cell.input_depth() == 3);
    CHECK(cell.num_units() == 4);
    w.gates_kernel = cf::Matrix<float>::Zero(4, 8);  // no row left for x
    CHECK_THROWS_MATCHES(cf::GRUCell<float>(w), cf::ShapeError,
                         what_contains<cf::ShapeError>(
                             "gru_cell: gates/kernel [4, 8] must be [input_depth + num_units, 2 * num_units] with "
                             "input_depth >= 1"));
    cf::CudnnCompatibleGRUWeights<float> c;
    CHECK_THROWS_MATCHES(cf::CudnnCompatibleGRUCell<float>(c), cf::ShapeError,
                         what_contains<cf::ShapeError>("cudnn_compatible_gru_cell: gates/kernel [0, 0]"));
  }
}

TEMPLATE_TEST_CASE("GRU cells: config(), names, zero_grad()", "[gru_cell]", cf::GRUCell<float>,
                   cf::CudnnCompatibleGRUCell<double>) {
  using Cell = TestType;
  using T = typename Cell::Scalar;
  const bool reset_after = std::is_same_v<Cell, cf::CudnnCompatibleGRUCell<double>>;
  cf::Rng rng(32);
  Cell cell(5, 3, rng);
  const cf::CellConfig c = cell.config();
  CHECK(c.kind == (reset_after ? "CudnnCompatibleGRUCell" : "GRUCell"));
  CHECK(c.input_depth == 5);
  CHECK(c.num_units == 3);
  CHECK(c.output_size == 3);
  CHECK(c.options.empty());  // TF's GRU classes take no options cellflow models
  CHECK_FALSE(c.has("forget_bias"));
  CHECK(c.get("forget_bias", -1) == -1);
  const cf::CellConfig via = cf::config_of(cell);
  CHECK(via.kind == c.kind);
  CHECK(cell.scope_name() == (reset_after ? "cudnn_compatible_gru_cell" : "gru_cell"));
  CHECK(cf::scope_name_of(cell) == cell.scope_name());
  CHECK(cell.cell_name() == cell.scope_name() + "(num_units=3)");
  CHECK(cell.output_size() == 3);

  cf::VariableList<T> vars;
  vars.add(cell);
  for (auto& v : vars) v.grad->setConstant(T(2));
  cell.zero_grad();
  for (auto& v : vars) {
    INFO(v.name);
    CHECK(v.grad->isZero(0));
    CHECK(v.grad->rows() == v.value->rows());
    CHECK(v.grad->cols() == v.value->cols());
  }
}

TEST_CASE("GRU cells reject sizes that are not positive", "[gru_cell][errors]") {
  cf::Rng rng(6);
  REQUIRE_THROWS_AS(cf::GRUCell<float>(3, 0, rng), cf::ValueError);
  REQUIRE_THROWS_MATCHES(cf::GRUCell<double>(0, 2, rng), cf::ValueError,
                         what_contains<cf::ValueError>(
                             "gru_cell: input_depth and num_units must be positive, given input_depth=0, num_units=2"));
}

// With an odd num_units the rows of the [rows, 3U] gate matrix alternate between two alignments,
// so Eigen would take its vectorised and scalar exp for different elements in a whole-sequence
// tape and in a stream; cells/activations.hpp computes double sigmoids one way for every element.
TEST_CASE("GRU cells with an odd num_units stream bitwise like dynamic_rnn in double", "[gru_cell][stream]") {
  auto mismatches = [](auto cell, cf::Rng& rng) {
    using Cell = decltype(cell);
    randomize_variables(cell, rng);
    const Index B = 5, T = 20, U = cell.output_size();
    const Ten X = random_tensor<double>(B, T, cell.input_depth(), rng);
    const auto whole = cf::dynamic_rnn(cell, X);
    cf::RNNStream<Cell> stream(cell, B);
    long differ = 0;
    for (Index t = 0; t < T; ++t) {
      const Mat& y = stream.step(step_input(X, t));
      for (Index b = 0; b < B; ++b)
        for (Index j = 0; j < U; ++j) differ += y(b, j) != whole.outputs(b, t, j);
    }
    return differ;
  };
  cf::Rng rng(33);
  for (Index units : {3, 5, 7}) {
    INFO("num_units " << units);
    CHECK(mismatches(cf::GRUCell<double>(2, units, rng), rng) == 0);
    CHECK(mismatches(cf::CudnnCompatibleGRUCell<double>(2, units, rng), rng) == 0);
  }
}

// The float cells with the tanh candidate run each step's elementwise work as one SIMD pass per
// row (detail/gru_gates.hpp); double runs the Eigen expressions. The float run of a cell agrees
// with the double run of the same (float-rounded) weights to float precision: both GRU cells, a
// num_units that fills no whole SIMD packet (37) and one that does (32), non-zero biases, ragged
// sequence lengths (row skipping), an initial state, output and final-state gradients.
template <class FloatCell, class DoubleCell, class Weights>
void check_fused(cf::Index units) {
  const cf::Index B = 5, T = 6, D = 7;
  cf::Rng rng(91);
  DoubleCell cd(D, units, rng);
  auto wd = cd.weights();
  auto round = [](auto& m) { m = m.template cast<float>().template cast<double>(); };
  wd.gates_bias = random_matrix<double>(1, 2 * units, rng);
  if constexpr (std::is_same_v<Weights, cf::GRUWeights<double>>) {
    wd.candidate_bias = random_matrix<double>(1, units, rng);
    for (auto* m : {&wd.gates_kernel, &wd.gates_bias, &wd.candidate_kernel, &wd.candidate_bias}) round(*m);
  } else {
    wd.candidate_input_bias = random_matrix<double>(1, units, rng);
    wd.candidate_hidden_bias = random_matrix<double>(1, units, rng);
    for (auto* m : {&wd.gates_kernel, &wd.gates_bias, &wd.candidate_input_kernel, &wd.candidate_hidden_kernel,
                    &wd.candidate_input_bias, &wd.candidate_hidden_bias})
      round(*m);
  }
  cd.set_weights(wd);
  FloatCell cfl(D, units, rng);
  cf::VariableList<double> vd;
  vd.add(cd);
  cf::VariableList<float> vf;
  vf.add(cfl);
  REQUIRE(vf.size() == vd.size());
  for (std::size_t k = 0; k < vd.size(); ++k) *vf[k].value = vd[k].value->cast<float>();
  vd.zero_grad();
  vf.zero_grad();

  const Ten x = random_tensor<double>(B, T, D, rng, -2, 2).cast<float>().cast<double>();
  const Ten dy = random_tensor<double>(B, T, units, rng).cast<float>().cast<double>();
  const Mat h0 = random_matrix<double>(B, units, rng).cast<float>().cast<double>();
  const Mat dh = random_matrix<double>(B, units, rng).cast<float>().cast<double>();
  const cf::Tensor3<float> xf = x.cast<float>(), dyf = dy.cast<float>();
  const cf::Matrix<float> h0f = h0.cast<float>(), dhf = dh.cast<float>();
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<cf::Index>{6, 0, 3, 6, 1};
  auto rd = cf::dynamic_rnn(cd, x, opts, &h0);
  auto gd = cf::dynamic_rnn_backward(cd, rd, &dy, &dh);
  auto rf = cf::dynamic_rnn(cfl, xf, opts, &h0f);
  auto gf = cf::dynamic_rnn_backward(cfl, rf, &dyf, &dhf);

  // float vs double within 1e-5 of each result's largest magnitude (support/test_util.hpp)
  check_float_matches_double(rf.outputs, rd.outputs, "outputs");
  check_float_matches_double(rf.final_state, rd.final_state, "final h");
  check_float_matches_double(gf.d_inputs, gd.d_inputs, "d_inputs");
  check_float_matches_double(gf.d_initial_state, gd.d_initial_state, "d_initial h");
  for (std::size_t k = 0; k < vd.size(); ++k) check_float_matches_double(*vf[k].grad, *vd[k].grad, vd[k].name);
}

TEST_CASE("the float GRUs' one-pass gate arithmetic equals the double path's, forward and backward",
          "[gru_cell][fused]") {
  for (const cf::Index units : {37, 32}) {
    INFO("num_units " << units);
    {
      INFO("GRUCell");
      check_fused<cf::GRUCell<float>, cf::GRUCell<double>, cf::GRUWeights<double>>(units);
    }
    {
      INFO("CudnnCompatibleGRUCell");
      check_fused<cf::CudnnCompatibleGRUCell<float>, cf::CudnnCompatibleGRUCell<double>,
                  cf::CudnnCompatibleGRUWeights<double>>(units);
    }
  }
}

}  // namespace test_gru_cell
