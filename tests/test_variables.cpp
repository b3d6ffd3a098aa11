// Variables and where they come from (core/variable.hpp, core/random.hpp, core/gradients.hpp):
// Parameter and VariableList (names, lookup, assign, add_one, zero_grad, zero_grad(module)), every
// cell's and Dense's variable names and TF shapes in creation order, TF's initializers, the Rng,
// and the Gradients a backward pass writes into.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_variables {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using Mat = cf::Matrix<T>;

template <class T>
struct Model {
  cf::MultiRNNCell<T> multi;
  cf::Dense<T> dense;
};

/// The 3-layer stack + Dense head: LSTMCell(D 3, U 5, peepholes, num_proj 3), GRUCell(3 -> 4),
/// BasicLSTMCell(4 -> 6), Dense(6 -> 7). Distinct sizes so that a swapped dimension shows.
template <class T>
Model<T> build_model(cf::Rng& rng) {
  cf::LSTMOptions<T> o = peephole_options<T>();
  o.num_proj = 3;
  cf::LSTMCell<T> l0(kKindsDepth, 5, o, rng);
  cf::GRUCell<T> l1(3, 4, rng);
  cf::BasicLSTMCell<T> l2(4, 6, rng);
  cf::Dense<T> dense(6, 7, rng);
  return Model<T>{cf::MultiRNNCell<T>(std::move(l0), std::move(l1), std::move(l2)), std::move(dense)};
}

struct Expected {
  std::string name;
  std::vector<Index> shape;
};

template <class T>
void check_names(const cf::VariableList<T>& vars, const std::vector<Expected>& expected) {
  REQUIRE(vars.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("variable " << k << ": " << vars[k].name << " " << cf::shape_string(vars[k].shape));
    CHECK(vars[k].name == expected[k].name);
    CHECK(vars[k].shape == expected[k].shape);
    // Storage: [r, c] as r x c, [n] as 1 x n.
    const auto& s = expected[k].shape;
    CHECK(vars[k].value->rows() == (s.size() == 2 ? s[0] : 1));
    CHECK(vars[k].value->cols() == s.back());
    CHECK(vars[k].grad->rows() == vars[k].value->rows());
    CHECK(vars[k].grad->cols() == vars[k].value->cols());
  }
}

/// Every entry within the glorot limit sqrt(6 / (fan_in + fan_out)), spread over the whole
/// interval (the largest entries come close to the limit, the variance is limit^2 / 3).
template <class T>
void check_glorot(const std::string& what, const Mat<T>& w, Index fan_in, Index fan_out) {
  const double limit = std::sqrt(6.0 / double(fan_in + fan_out));
  const T limit_t = static_cast<T>(limit);
  const double n = double(w.size());
  const double max_abs = double(w.cwiseAbs().maxCoeff());
  const double mean = double(w.sum()) / n;
  const double var = double(w.array().square().sum()) / n - mean * mean;
  INFO(what << ": " << w.rows() << " x " << w.cols() << ", limit " << limit << ", max |w| " << max_abs << ", mean "
            << mean << ", variance " << var << " (uniform: " << limit * limit / 3 << ")");
  CHECK(w.cwiseAbs().maxCoeff() <= limit_t);
  CHECK(max_abs >= (n >= 400 ? 0.98 : 0.9) * limit);
  CHECK(std::abs(mean) <= 0.1 * limit);
  CHECK(std::abs(var / (limit * limit / 3) - 1) <= 0.25);
}

TEMPLATE_TEST_CASE("the same Rng seed gives the same weights, another seed others", "[variables][composition]", float,
                   double) {
  using T = TestType;
  cf::Rng ra(42), rb(42), rc(43);
  auto a = build_model<T>(ra);
  auto b = build_model<T>(rb);
  auto c = build_model<T>(rc);
  cf::VariableList<T> va, vb, vc;
  va.add(a.multi, "rnn").add(a.dense);
  vb.add(b.multi, "rnn").add(b.dense);
  vc.add(c.multi, "rnn").add(c.dense);
  REQUIRE(va.size() == 14);
  REQUIRE(vb.size() == va.size());
  REQUIRE(vc.size() == va.size());
  for (std::size_t k = 0; k < va.size(); ++k) {
    INFO(va[k].name);
    CHECK(bitwise_equal(*va[k].value, *vb[k].value));
    const bool constant_init = va[k].name.find("bias") != std::string::npos;
    if (constant_init) {
      CHECK(bitwise_equal(*va[k].value, *vc[k].value));
    } else {
      // Every randomly initialised entry differs with another seed.
      CHECK((va[k].value->array() != vc[k].value->array()).all());
    }
  }
  // The generator itself: same seed same stream, reseeding restarts it.
  cf::Rng g1(7), g2(7);
  const auto first = g1.next_u64();
  CHECK(first == g2.next_u64());
  CHECK(g1.next_u64() == g2.next_u64());
  g1.seed(7);
  CHECK(g1.next_u64() == first);
}

TEMPLATE_TEST_CASE("default initialisation: glorot limits with TF's fans, constant biases", "[variables][composition]",
                   float, double) {
  using T = TestType;
  cf::Rng rng(99);
  const Index D = 10;
  {
    const Index U = 32, P = 16;
    cf::LSTMOptions<T> o = peephole_options<T>();
    o.num_proj = P;
    cf::LSTMCell<T> c(D, U, o, rng);
    check_glorot("lstm_cell/kernel", c.kernel().value, D + P, 4 * U);  // fan_in D + H (H = P), fan_out 4U
    CHECK(c.bias().value.isZero(0));
    // Peephole diagonals are 1-D [U]: fan_in = fan_out = U, limit sqrt(3/U).
    Mat<T> diags(3, U);
    diags << c.w_f_diag().value, c.w_i_diag().value, c.w_o_diag().value;
    check_glorot("lstm_cell/w_{f,i,o}_diag", diags, U, U);
    CHECK(!bitwise_equal(c.w_f_diag().value, c.w_i_diag().value));
    CHECK(!bitwise_equal(c.w_i_diag().value, c.w_o_diag().value));
    check_glorot("lstm_cell/projection/kernel", c.projection().value, U, P);
  }
  {
    const Index U = 20;
    cf::BasicLSTMCell<T> c(D, U, rng);
    check_glorot("basic_lstm_cell/kernel", c.kernel().value, D + U, 4 * U);
    CHECK(c.bias().value.isZero(0));
  }
  {
    const Index U = 24;
    cf::GRUCell<T> c(D, U, rng);
    check_glorot("gru_cell/gates/kernel", c.gates_kernel().value, D + U, 2 * U);
    check_glorot("gru_cell/candidate/kernel", c.candidate_kernel().value, D + U, U);
    CHECK((c.gates_bias().value.array() == T(1)).all());
    CHECK(c.gates_bias().value.size() == 2 * U);
    CHECK(c.candidate_bias().value.isZero(0));
  }
  {
    cf::Dense<T> d(20, 30, rng);
    check_glorot("dense/kernel", d.kernel().value, 20, 30);
    CHECK(d.bias().value.isZero(0));
  }
}

TEMPLATE_TEST_CASE("variable names and TF shapes in creation order", "[variables][composition]", float, double) {
  using T = TestType;
  cf::Rng rng(3);
  {
    cf::BasicLSTMCell<T> c(kKindsDepth, 4, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/basic_lstm_cell/kernel", {7, 16}}, {"rnn/basic_lstm_cell/bias", {16}}});
  }
  {
    cf::LSTMCell<T> c(kKindsDepth, 4, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/lstm_cell/kernel", {7, 16}}, {"rnn/lstm_cell/bias", {16}}});
  }
  {
    cf::LSTMOptions<T> o = peephole_options<T>();
    o.num_proj = 2;
    o.cell_clip = T(1);
    o.proj_clip = T(1);
    cf::LSTMCell<T> c(kKindsDepth, 4, o, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/lstm_cell/kernel", {5, 16}},
                    {"rnn/lstm_cell/bias", {16}},
                    {"rnn/lstm_cell/w_f_diag", {4}},
                    {"rnn/lstm_cell/w_i_diag", {4}},
                    {"rnn/lstm_cell/w_o_diag", {4}},
                    {"rnn/lstm_cell/projection/kernel", {4, 2}}});
  }
  {
    cf::LSTMOptions<T> o;
    o.num_proj = 2;
    cf::LSTMCell<T> c(kKindsDepth, 4, o, rng);
    cf::VariableList<T> v;
    v.add(c);  // no scope
    check_names(v, {{"lstm_cell/kernel", {5, 16}}, {"lstm_cell/bias", {16}}, {"lstm_cell/projection/kernel", {4, 2}}});
  }
  {
    cf::GRUCell<T> c(kKindsDepth, 4, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/gru_cell/gates/kernel", {7, 8}},
                    {"rnn/gru_cell/gates/bias", {8}},
                    {"rnn/gru_cell/candidate/kernel", {7, 4}},
                    {"rnn/gru_cell/candidate/bias", {4}}});
  }
  {
    auto m = build_model<T>(rng);
    cf::VariableList<T> v;
    v.add(m.multi, "rnn").add(m.dense);
    const std::string c0 = "rnn/multi_rnn_cell/cell_0/lstm_cell/";
    const std::string c1 = "rnn/multi_rnn_cell/cell_1/gru_cell/";
    const std::string c2 = "rnn/multi_rnn_cell/cell_2/basic_lstm_cell/";
    check_names(v, {{c0 + "kernel", {6, 20}},
                    {c0 + "bias", {20}},
                    {c0 + "w_f_diag", {5}},
                    {c0 + "w_i_diag", {5}},
                    {c0 + "w_o_diag", {5}},
                    {c0 + "projection/kernel", {5, 3}},
                    {c1 + "gates/kernel", {7, 8}},
                    {c1 + "gates/bias", {8}},
                    {c1 + "candidate/kernel", {7, 4}},
                    {c1 + "candidate/bias", {4}},
                    {c2 + "kernel", {10, 24}},
                    {c2 + "bias", {24}},
                    {"dense/kernel", {6, 7}},
                    {"dense/bias", {7}}});
    CHECK(v.num_scalars() == 6 * 20 + 20 + 15 + 15 + 56 + 8 + 28 + 4 + 240 + 24 + 42 + 7);
    CHECK(m.multi.output_size() == 6);
    // Lookup by TF name reaches the same storage.
    CHECK(v["rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias"].value ==
          &m.multi.layer(1).template as<cf::GRUCell<T>>()->gates_bias().value);
    CHECK(v["dense/kernel"].value == &m.dense.kernel().value);
  }
}

TEST_CASE("VariableList::assign into a 1-D variable takes a row, a column or a std::vector", "[variables]") {
  cf::Rng rng(61);
  cf::GRUCell<double> cell(2, 3, rng);
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  const std::string bias = "rnn/gru_cell/gates/bias";  // [6], stored 1 x 6
  REQUIRE(vars[bias].shape == std::vector<Index>{6});
  Mat<double> row(1, 6);
  row << 1, 2, 3, 4, 5, 6;
  vars.assign(bias, row);
  CHECK(bitwise_equal(cell.gates_bias().value, row));
  const Mat<double> column = -row.transpose();
  vars.assign(bias, column);
  CHECK(bitwise_equal(cell.gates_bias().value, Mat<double>(-row)));
  vars.assign(bias, cf::Vector<double>::Constant(6, 0.5));  // an Eigen column vector
  CHECK((cell.gates_bias().value.array() == 0.5).all());
  vars.assign(bias, std::vector<double>{6, 5, 4, 3, 2, 1});
  CHECK(cell.gates_bias().value(0, 0) == 6);
  CHECK(cell.gates_bias().value(0, 5) == 1);
  CHECK(cell.gates_bias().value.rows() == 1);
  // A 2-D variable from a std::vector: row-major.
  const std::string kernel = "rnn/gru_cell/candidate/kernel";  // [5, 3]
  std::vector<double> values(15);
  for (std::size_t k = 0; k < values.size(); ++k) values[k] = static_cast<double>(k);
  vars.assign(kernel, values);
  CHECK(cell.candidate_kernel().value(1, 0) == 3);
  CHECK(cell.candidate_kernel().value(4, 2) == 14);

  // Wrong sizes: ShapeError naming the variable, and nothing changes.
  const Mat<double> before = cell.gates_bias().value;
  CHECK_THROWS_MATCHES(vars.assign(bias, Mat<double>::Zero(1, 7)), cf::ShapeError,
                       what_contains<cf::ShapeError>("VariableList::assign('rnn/gru_cell/gates/bias'): expected [6]"));
  CHECK_THROWS_AS(vars.assign(bias, Mat<double>::Zero(5, 1)), cf::ShapeError);
  CHECK_THROWS_AS(vars.assign(bias, Mat<double>::Zero(2, 3)), cf::ShapeError);  // 6 values, but not a vector
  CHECK_THROWS_MATCHES(vars.assign(bias, std::vector<double>(5, 1.0)), cf::ShapeError,
                       what_contains<cf::ShapeError>("expected 6 values for shape [6], given 5"));
  CHECK_THROWS_AS(vars.assign(kernel, std::vector<double>(16, 1.0)), cf::ShapeError);
  CHECK_THROWS_AS(vars.assign(kernel, Mat<double>::Zero(3, 5)), cf::ShapeError);  // transposed
  CHECK(bitwise_equal(cell.gates_bias().value, before));
  CHECK_THROWS_AS(vars.assign("rnn/gru_cell/nothing", row), cf::ValueError);
}

TEST_CASE("VariableList::add_one gives an empty gradient a zero one and checks the shape", "[variables]") {
  cf::Parameter<float> p;
  p.value = Mat<float>::Ones(2, 3);
  p.shape = {2, 3};
  REQUIRE(p.grad.size() == 0);
  cf::VariableList<float> vars;
  vars.add_one("p", p);
  CHECK(p.grad.rows() == 2);
  CHECK(p.grad.cols() == 3);
  CHECK(p.grad.isZero(0));
  CHECK(vars["p"].grad == &p.grad);
  CHECK(vars["p"].value == &p.value);
  CHECK(vars.num_scalars() == 6);
  // A gradient that is already there is kept.
  cf::Parameter<float> q(4);
  q.grad.setConstant(2.0f);
  vars.add_one("q", q);
  CHECK((q.grad.array() == 2.0f).all());
  CHECK(vars.size() == 2);

  cf::Parameter<float> bad;
  bad.value = Mat<float>::Ones(2, 2);
  bad.shape = {3};
  CHECK_THROWS_MATCHES(
      vars.add_one("bad", bad), cf::ShapeError,
      what_contains<cf::ShapeError>("VariableList::add_one('bad'): shape [3] does not describe its 2x2 "
                                    "value"));
  bad.shape = {};
  CHECK_THROWS_AS(vars.add_one("bad", bad), cf::ShapeError);
  bad.shape = {1, 2, 2};
  CHECK_THROWS_AS(vars.add_one("bad", bad), cf::ShapeError);
  CHECK_THROWS_MATCHES(vars.add_one("p", q), cf::ValueError,
                       what_contains<cf::ValueError>("VariableList: duplicate variable name 'p'"));
  CHECK(vars.size() == 2);
}

// [r, c] is stored r x c and [n] as 1 x n: a shape of the right size but another layout would let
// assign() index out of range, and a checkpoint or .npz load fill the value silently reshaped.
TEST_CASE("VariableList::add_one refuses a shape with the right size but another layout", "[variables][errors]") {
  cf::VariableList<float> vars;
  cf::Parameter<float> transposed;
  transposed.value = Mat<float>::Ones(3, 2);
  transposed.shape = {2, 3};
  CHECK_THROWS_AS(vars.add_one("transposed", transposed), cf::ShapeError);
  cf::Parameter<float> square;
  square.value = Mat<float>::Ones(2, 2);
  square.shape = {4};
  CHECK_THROWS_AS(vars.add_one("square", square), cf::ShapeError);
  CHECK(vars.empty());
}

TEST_CASE("zero_grad: VariableList, cf::zero_grad(module), cells, stacks and Dense", "[variables]") {
  cf::Rng rng(62);
  auto stack = mixed_kinds_stack<double>(rng);
  cf::Dense<double> dense(4, 2, rng);
  cf::BasicLSTMCell<double> lstm(2, 2, rng);
  cf::VariableList<double> vars;
  vars.add(stack, "rnn").add(dense).add(lstm, "other");
  auto fill = [&] {
    for (auto& v : vars) v.grad->setConstant(1.5);
  };
  auto zero_count = [&] {
    int n = 0;
    for (auto& v : vars) n += v.grad->isZero(0) ? 1 : 0;
    return n;
  };
  const int all = static_cast<int>(vars.size());
  REQUIRE(all == 12 + 2 + 2);
  fill();
  vars.zero_grad();
  CHECK(zero_count() == all);
  fill();
  cf::zero_grad(stack);
  CHECK(zero_count() == 12);
  fill();
  cf::zero_grad(dense);
  CHECK(zero_count() == 2);
  fill();
  dense.zero_grad();
  CHECK(zero_count() == 2);
  fill();
  cf::zero_grad(lstm);
  CHECK(zero_count() == 2);
  fill();
  lstm.zero_grad();
  CHECK(zero_count() == 2);
  CHECK(lstm.kernel().grad.isZero(0));
  // zero_grad keeps each gradient's shape, even one that was resized meanwhile.
  dense.kernel().grad.resize(1, 1);
  dense.zero_grad();
  CHECK(dense.kernel().grad.rows() == 4);
  CHECK(dense.kernel().grad.cols() == 2);
}

TEST_CASE("Rng::below(n) draws below n and refuses n = 0", "[variables][rng]") {
  cf::Rng rng(63);
  CHECK_THROWS_MATCHES(rng.below(0), cf::ValueError,
                       what_contains<cf::ValueError>("Rng::below: n must be positive, given 0"));
  for (int k = 0; k < 20; ++k) CHECK(rng.below(1) == 0);
  std::vector<int> seen(7, 0);
  for (int k = 0; k < 700; ++k) {
    const std::uint64_t v = rng.below(7);
    REQUIRE(v < 7);
    ++seen[v];
  }
  for (int s : seen) CHECK(s > 50);  // about 100 each
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
  CHECK(rng.below(huge) < huge);
  // below(0) throws before drawing: the stream is unchanged.
  cf::Rng a(5), b(5);
  CHECK_THROWS_AS(a.below(0), cf::ValueError);
  CHECK(a.next_u64() == b.next_u64());
}

TEST_CASE("Gradients: direct into each variable's grad, or buffered and added once", "[variables][gradients]") {
  cf::Parameter<double> p(2, 2), q(3);
  p.grad.setConstant(1.0);
  cf::Gradients<double> direct;
  CHECK_FALSE(direct.is_buffered());
  direct[p] += Mat<double>::Constant(2, 2, 2.0);
  CHECK((p.grad.array() == 3.0).all());

  auto buffered = cf::Gradients<double>::buffered();
  CHECK(buffered.is_buffered());
  buffered.begin();
  buffered[p].setConstant(5.0);
  buffered[q](0, 1) = 4.0;
  CHECK((p.grad.array() == 3.0).all());  // nothing reaches the variable yet
  buffered.add_to_variables();
  CHECK((p.grad.array() == 8.0).all());
  CHECK(q.grad(0, 1) == 4.0);
  // A new pass starts its buffers from zero; a variable not used in it is not added again.
  buffered.begin();
  buffered[q](0, 0) = 1.0;
  buffered.add_to_variables();
  CHECK((p.grad.array() == 8.0).all());
  CHECK(q.grad(0, 0) == 1.0);
  CHECK(q.grad(0, 1) == 4.0);
  // A gradient of the wrong shape is a ShapeError, never a write out of bounds.
  p.grad.resize(1, 1);
  CHECK_THROWS_MATCHES(direct[p], cf::ShapeError,
                       what_contains<cf::ShapeError>("backward: a variable's gradient is 1x1, its value 2x2"));
  buffered.begin();
  buffered[p].setOnes();
  CHECK_THROWS_AS(buffered.add_to_variables(), cf::ShapeError);
}

TEST_CASE("VariableList names what it has and checks shapes", "[variables][errors]") {
  cf::Rng rng(9);
  cf::GRUCell<float> cell(3, 2, rng);
  cf::VariableList<float> vars;
  vars.add(cell, "rnn");
  REQUIRE_THROWS_WITH(vars.at("rnn/gru_cell/kernel"),
                      Contains("no variable named 'rnn/gru_cell/kernel'") && Contains("rnn/gru_cell/gates/kernel"));
  REQUIRE_THROWS_WITH(vars.add(cell, "rnn"), Contains("duplicate variable name 'rnn/gru_cell/gates/kernel'"));
  REQUIRE_THROWS_WITH(vars.assign("rnn/gru_cell/gates/bias", cf::Matrix<float>::Zero(1, 3)),
                      Contains("expected [4]") && Contains("given 1x3"));
}

}  // namespace test_variables
