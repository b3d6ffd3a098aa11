// Identities between cellflow's building blocks, with random weights: a one-layer stack is its
// cell, dynamic_rnn is a loop of single steps, sequence_length / time_major / training only
// select or re-layout, LSTMCell without options is BasicLSTMCell, clips bound what they clip,
// and initialisation, variable names and shapes are TensorFlow's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/test_util.hpp"

namespace {

namespace cf = cellflow;
using cellflow_test::random_matrix;
using cellflow_test::random_tensor;
using cf::Index;

template <class T>
using Mat = cf::Matrix<T>;
template <class T>
using Ten = cf::Tensor3<T>;
template <class T>
using StackState = std::vector<cf::CellState<T>>;

constexpr Index kD = 3;  // input depth of every model below

// ---- states: their parts in TF's nest.flatten order (c before h, layer 0 first) ----

template <class T>
std::vector<Mat<T>*> parts(cf::LSTMStateTuple<T>& s) {
  return {&s.c, &s.h};
}
template <class T>
std::vector<Mat<T>*> parts(Mat<T>& s) {
  return {&s};
}
template <class T>
std::vector<Mat<T>*> parts(StackState<T>& s) {
  std::vector<Mat<T>*> p;
  for (auto& layer : s) {
    if (layer.is_lstm()) p.push_back(&layer.c());
    p.push_back(&layer.h());
  }
  return p;
}
/// Read-only view of the parts of a const state.
template <class S>
auto cparts(const S& s) {
  return parts(const_cast<S&>(s));
}

template <class S>
void randomize_state(S& s, cf::Rng& rng) {
  for (auto* p : parts(s)) {
    using T = typename std::decay_t<decltype(*p)>::Scalar;
    *p = random_matrix<T>(p->rows(), p->cols(), rng, T(-0.8), T(0.8));
  }
}

/// Row b of every part of a state (a batch-1 state).
template <class S>
S state_row(const S& s, Index b) {
  S r = s;
  for (auto* p : parts(r)) *p = p->row(b).eval();
  return r;
}

// ---- comparisons ----

template <class T>
bool same(const Mat<T>& a, const Mat<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}
template <class T>
bool same(const Ten<T>& a, const Ten<T>& b) {
  if (a.dimensions() != b.dimensions()) return false;
  return std::equal(a.data(), a.data() + a.size(), b.data());
}
template <class S>
bool same_state(const S& a, const S& b) {
  const auto pa = cparts(a), pb = cparts(b);
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i)
    if (!same(*pa[i], *pb[i])) return false;
  return true;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class T>
double diff(const Mat<T>& a, const Mat<T>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return kInf;
  return cellflow_test::max_abs_diff(a, b);
}
template <class T>
double diff(const Ten<T>& a, const Ten<T>& b) {
  if (a.dimensions() != b.dimensions()) return kInf;
  return cellflow_test::max_abs_diff(a, b);
}
template <class S>
double state_diff(const S& a, const S& b) {
  const auto pa = cparts(a), pb = cparts(b);
  if (pa.size() != pb.size()) return kInf;
  double d = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) d = std::max(d, diff(*pa[i], *pb[i]));
  return d;
}

template <class T>
double max_abs(const Ten<T>& a) {
  double m = 0;
  for (Index k = 0; k < a.size(); ++k) m = std::max(m, double(std::abs(a.data()[k])));
  return m;
}

/// Tolerance for results computed in a different association order (float rounding).
template <class T>
constexpr double rounding_tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

// ---- models ----

template <class Module>
void randomize(Module& m, cf::Rng& rng, double scale = 0.8) {
  using T = typename Module::Scalar;
  cf::VariableList<T> vars;
  vars.add(m);
  for (auto& v : vars) *v.value = random_matrix<T>(v.value->rows(), v.value->cols(), rng, T(-scale), T(scale));
}

template <class T>
cf::LSTMOptions<T> peephole_options() {
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  return o;
}

template <class T>
cf::LSTMOptions<T> all_options() {
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  o.cell_clip = T(0.6);
  o.num_proj = 3;
  o.proj_clip = T(0.5);
  o.forget_bias = T(0.8);
  return o;
}

/// LSTMCell(peepholes, num_proj 3) -> GRUCell -> BasicLSTMCell, built in a fixed draw order.
template <class T>
cf::MultiRNNCell<T> mixed_stack(cf::Rng& rng) {
  cf::LSTMOptions<T> o = peephole_options<T>();
  o.num_proj = 3;
  cf::LSTMCell<T> l0(kD, 4, o, rng);
  cf::GRUCell<T> l1(3, 5, rng);
  cf::BasicLSTMCell<T> l2(5, 4, rng, T(0.7));
  return cf::MultiRNNCell<T>(std::move(l0), std::move(l1), std::move(l2));
}

/// Calls f(cell, name) for each single cell kind, random weights (biases and peepholes too).
template <class T, class F>
void for_each_single_cell(F&& f) {
  cf::Rng rng(2024);
  {
    cf::BasicLSTMCell<T> c(kD, 4, rng, T(0.7));
    randomize(c, rng);
    f(c, std::string("BasicLSTMCell"));
  }
  {
    cf::LSTMCell<T> c(kD, 4, peephole_options<T>(), rng);
    randomize(c, rng);
    f(c, std::string("LSTMCell(peepholes)"));
  }
  {
    cf::LSTMCell<T> c(kD, 4, all_options<T>(), rng);
    randomize(c, rng, 1.2);
    f(c, std::string("LSTMCell(peepholes, cell_clip, num_proj, proj_clip)"));
  }
  {
    cf::GRUCell<T> c(kD, 4, rng);
    randomize(c, rng);
    f(c, std::string("GRUCell"));
  }
}

/// Every single cell kind, then the mixed 3-layer stack.
template <class T, class F>
void for_each_kind(F&& f) {
  for_each_single_cell<T>(f);
  cf::Rng rng(77);
  auto multi = mixed_stack<T>(rng);
  randomize(multi, rng);
  f(multi, std::string("MultiRNNCell(LSTMCell(peep, proj), GRUCell, BasicLSTMCell)"));
}

template <class T>
Mat<T> step_input(const Ten<T>& X, Index t) {
  Mat<T> x(X.dimension(0), X.dimension(2));
  for (Index b = 0; b < x.rows(); ++b)
    for (Index d = 0; d < x.cols(); ++d) x(b, d) = X(b, t, d);
  return x;
}

/// TF's dynamic_rnn written out: out_t, new = cell(x_t, state); where(t >= len, 0 / old state).
/// Returns the outputs [B, T, O] and the state after every step (states[t] after step t).
template <class Cell>
std::pair<Ten<typename Cell::Scalar>, std::vector<typename Cell::State>> step_loop(const Cell& cell,
                                                                                   const Ten<typename Cell::Scalar>& X,
                                                                                   const typename Cell::State& s0,
                                                                                   const std::vector<Index>& lens) {
  using T = typename Cell::Scalar;
  const Index B = X.dimension(0), Tn = X.dimension(1);
  Ten<T> out(B, Tn, cell.output_size());
  out.setZero();
  std::vector<typename Cell::State> states;
  typename Cell::State s = s0;
  for (Index t = 0; t < Tn; ++t) {
    const auto step = cell(step_input(X, t), s);
    auto sp = parts(s);
    const auto np = cparts(step.state);
    for (Index b = 0; b < B; ++b) {
      if (t >= lens[static_cast<std::size_t>(b)]) continue;
      for (Index o = 0; o < cell.output_size(); ++o) out(b, t, o) = step.output(b, o);
      for (std::size_t i = 0; i < sp.size(); ++i) sp[i]->row(b) = np[i]->row(b);
    }
    states.push_back(s);
  }
  return {out, states};
}

template <class T>
Ten<T> transpose01(const Ten<T>& a) {
  Ten<T> r(a.dimension(1), a.dimension(0), a.dimension(2));
  for (Index i = 0; i < a.dimension(0); ++i)
    for (Index j = 0; j < a.dimension(1); ++j)
      for (Index k = 0; k < a.dimension(2); ++k) r(j, i, k) = a(i, j, k);
  return r;
}

template <class Cell>
std::vector<Mat<typename Cell::Scalar>> grads_of(Cell& cell) {
  cf::VariableList<typename Cell::Scalar> vars;
  vars.add(cell);
  std::vector<Mat<typename Cell::Scalar>> g;
  for (auto& v : vars) g.push_back(*v.grad);
  return g;
}

template <class Cell>
void zero_grads(Cell& cell) {
  cf::VariableList<typename Cell::Scalar> vars;
  vars.add(cell);
  vars.zero_grad();
}

template <class T>
bool same_all(const std::vector<Mat<T>>& a, const std::vector<Mat<T>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (!same(a[k], b[k])) return false;
  return true;
}

}  // namespace

TEMPLATE_TEST_CASE("a one-layer MultiRNNCell equals its cell", "[composition]", float, double) {
  using T = TestType;
  for_each_single_cell<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    using State = typename Cell::State;
    INFO(name);
    cf::MultiRNNCell<T> multi(cell);
    REQUIRE(multi.num_layers() == 1);
    REQUIRE(multi.output_size() == cell.output_size());

    cf::VariableList<T> v1, v2;
    v1.add(cell, "rnn");
    v2.add(multi, "rnn");
    REQUIRE(v1.size() == v2.size());
    for (std::size_t k = 0; k < v1.size(); ++k) {
      REQUIRE(v1[k].name.rfind("rnn/", 0) == 0);
      CHECK(v2[k].name == "rnn/multi_rnn_cell/cell_0/" + v1[k].name.substr(4));
      CHECK(v2[k].shape == v1[k].shape);
      CHECK(same(*v1[k].value, *v2[k].value));
    }

    cf::Rng rng(5);
    const Index B = 3, Tn = 5;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    const StackState<T> ms0{cf::CellState<T>(s0)};
    for (bool with_len : {false, true}) {
      INFO("with sequence_length: " << with_len);
      cf::RNNOptions o;
      if (with_len) o.sequence_length = std::vector<Index>{2, 0, 5};
      auto r1 = cf::dynamic_rnn(cell, X, s0, o);
      auto r2 = cf::dynamic_rnn(multi, X, ms0, o);
      CHECK(same(r1.outputs, r2.outputs));
      REQUIRE(r2.final_state.size() == 1);
      CHECK(same_state(r1.final_state, r2.final_state[0].template get<State>()));

      const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
      State dS = r1.final_state;
      randomize_state(dS, rng);
      const StackState<T> mdS{cf::CellState<T>(dS)};
      v1.zero_grad();
      v2.zero_grad();
      auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
      auto g2 = cf::dynamic_rnn_backward(multi, r2, &dY, &mdS);
      CHECK(same(g1.d_inputs, g2.d_inputs));
      REQUIRE(g2.d_initial_state.size() == 1);
      CHECK(same_state(g1.d_initial_state, g2.d_initial_state[0].template get<State>()));
      for (std::size_t k = 0; k < v1.size(); ++k) {
        INFO(v1[k].name << " vs " << v2[k].name);
        CHECK(same(*v1[k].grad, *v2[k].grad));
        CHECK(v1[k].grad->cwiseAbs().maxCoeff() > T(0));
      }
    }
  });
}

TEMPLATE_TEST_CASE("dynamic_rnn equals a loop of single steps cell(x_t, state)", "[composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(9);
    const Index B = 3, Tn = 6;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    for (bool with_len : {false, true}) {
      // A stack's single step runs every layer for step t before step t+1 (step-major);
      // dynamic_rnn runs layer 0 over all steps first (layer-major): same numbers up to rounding.
      const std::vector<Index> lens = with_len ? std::vector<Index>{4, 0, 6} : std::vector<Index>{6, 6, 6};
      cf::RNNOptions o;
      if (with_len) o.sequence_length = lens;
      const auto r = cf::dynamic_rnn(cell, X, s0, o);
      const auto loop = step_loop(cell, X, s0, lens);
      const double dout = diff(r.outputs, loop.first);
      const double dstate = state_diff(r.final_state, loop.second.back());
      INFO("with sequence_length: " << with_len << "; max |diff| outputs " << dout << ", final state " << dstate);
      CHECK(dout <= rounding_tol<T>());
      CHECK(dstate <= rounding_tol<T>());
      CHECK(r.outputs.dimension(2) == cell.output_size());
    }
  });
}

TEMPLATE_TEST_CASE("sequence_length all == T equals no sequence_length, bitwise", "[composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(10);
    const Index B = 3, Tn = 4;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions full;
    full.sequence_length = std::vector<Index>(B, Tn);
    auto r1 = cf::dynamic_rnn(cell, X, s0);
    auto r2 = cf::dynamic_rnn(cell, X, s0, full);
    CHECK(same(r1.outputs, r2.outputs));
    CHECK(same_state(r1.final_state, r2.final_state));

    const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
    typename Cell::State dS = r1.final_state;
    randomize_state(dS, rng);
    zero_grads(cell);
    auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
    const auto grads1 = grads_of(cell);
    zero_grads(cell);
    auto g2 = cf::dynamic_rnn_backward(cell, r2, &dY, &dS);
    CHECK(same(g1.d_inputs, g2.d_inputs));
    CHECK(same_state(g1.d_initial_state, g2.d_initial_state));
    CHECK(same_all(grads1, grads_of(cell)));
  });
}

TEMPLATE_TEST_CASE("sequence_length: zero outputs past the end, per-row final state", "[composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(11);
    const Index B = 4, Tn = 5, O = cell.output_size();
    const std::vector<Index> lens{3, 0, 5, 1};
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions o;
    o.sequence_length = lens;
    const auto r = cf::dynamic_rnn(cell, X, s0, o);
    for (Index b = 0; b < B; ++b) {
      const Index len = lens[static_cast<std::size_t>(b)];
      INFO("row " << b << ", length " << len);
      long nonzero_padded = 0;
      for (Index t = len; t < Tn; ++t)
        for (Index k = 0; k < O; ++k) nonzero_padded += r.outputs(b, t, k) != T(0);
      CHECK(nonzero_padded == 0);
      const auto fin = state_row(r.final_state, b);
      if (len == 0) {
        CHECK(same_state(fin, state_row(s0, b)));
        continue;
      }
      // The row alone, for exactly len steps.
      Ten<T> xb(1, len, kD);
      for (Index t = 0; t < len; ++t)
        for (Index d = 0; d < kD; ++d) xb(0, t, d) = X(b, t, d);
      const auto rb = cf::dynamic_rnn(cell, xb, state_row(s0, b));
      const double ds = state_diff(fin, rb.final_state);
      double dout = 0;
      for (Index t = 0; t < len; ++t)
        for (Index k = 0; k < O; ++k) dout = std::max(dout, std::abs(double(r.outputs(b, t, k)) - rb.outputs(0, t, k)));
      INFO("max |diff| final state " << ds << ", outputs " << dout);
      CHECK(ds <= rounding_tol<T>());
      CHECK(dout <= rounding_tol<T>());
      // The last valid output is final_state's h, not outputs[:, T-1] (0 for len < T).
      const auto hp = cparts(fin);
      for (Index k = 0; k < O; ++k) CHECK(hp.back()->operator()(0, k) == r.outputs(b, len - 1, k));
    }
  });
}

TEMPLATE_TEST_CASE("time_major equals batch-major on transposed data", "[composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(12);
    const Index B = 3, Tn = 4;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions bm, tm;
    bm.sequence_length = tm.sequence_length = std::vector<Index>{2, 4, 0};
    tm.time_major = true;
    auto r1 = cf::dynamic_rnn(cell, X, s0, bm);
    auto r2 = cf::dynamic_rnn(cell, transpose01(X), s0, tm);
    REQUIRE(r2.outputs.dimension(0) == Tn);
    REQUIRE(r2.outputs.dimension(1) == B);
    CHECK(same(transpose01(r2.outputs), r1.outputs));
    CHECK(same_state(r1.final_state, r2.final_state));

    const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
    typename Cell::State dS = r1.final_state;
    randomize_state(dS, rng);
    zero_grads(cell);
    auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
    const auto grads1 = grads_of(cell);
    zero_grads(cell);
    const auto dYt = transpose01(dY);
    auto g2 = cf::dynamic_rnn_backward(cell, r2, &dYt, &dS);
    REQUIRE(g2.d_inputs.dimension(0) == Tn);
    CHECK(same(transpose01(g2.d_inputs), g1.d_inputs));
    CHECK(same_state(g1.d_initial_state, g2.d_initial_state));
    CHECK(same_all(grads1, grads_of(cell)));
  });
}

TEMPLATE_TEST_CASE("LSTMCell without options equals BasicLSTMCell with the same weights", "[composition]", float,
                   double) {
  using T = TestType;
  for (T fb : {T(1), T(0.6)}) {
    INFO("forget_bias " << fb);
    cf::Rng rng(13);
    cf::BasicLSTMCell<T> basic(kD, 4, rng, fb);
    randomize(basic, rng);
    cf::LSTMOptions<T> o;
    o.forget_bias = fb;
    cf::LSTMCell<T> lstm(kD, 4, o, rng);
    cf::VariableList<T> vb, vl;
    vb.add(basic, "rnn");
    vl.add(lstm, "rnn");
    REQUIRE(vb.size() == 2);
    REQUIRE(vl.size() == 2);
    // Checkpoint-interchangeable: the same variables under the other scope name.
    CHECK(vb[0].name == "rnn/basic_lstm_cell/kernel");
    CHECK(vl[0].name == "rnn/lstm_cell/kernel");
    CHECK(vb[1].name == "rnn/basic_lstm_cell/bias");
    CHECK(vl[1].name == "rnn/lstm_cell/bias");
    for (std::size_t k = 0; k < 2; ++k) {
      CHECK(vb[k].shape == vl[k].shape);
      vl.assign(vl[k].name, *vb[k].value);
    }
    const Index B = 3, Tn = 5;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    auto s0 = basic.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions opt;
    opt.sequence_length = std::vector<Index>{5, 2, 0};
    auto rb = cf::dynamic_rnn(basic, X, s0, opt);
    auto rl = cf::dynamic_rnn(lstm, X, s0, opt);
    CHECK(same(rb.outputs, rl.outputs));
    CHECK(same_state(rb.final_state, rl.final_state));
    CHECK(max_abs(rb.outputs) > 0.01);

    const auto dY = random_tensor<T>(B, Tn, 4, rng);
    auto dS = rb.final_state;
    randomize_state(dS, rng);
    vb.zero_grad();
    vl.zero_grad();
    auto gb = cf::dynamic_rnn_backward(basic, rb, &dY, &dS);
    auto gl = cf::dynamic_rnn_backward(lstm, rl, &dY, &dS);
    CHECK(same(gb.d_inputs, gl.d_inputs));
    CHECK(same_state(gb.d_initial_state, gl.d_initial_state));
    for (std::size_t k = 0; k < 2; ++k) CHECK(same(*vb[k].grad, *vl[k].grad));
    // forget_bias is applied at run time, never stored in the bias.
    CHECK(same(basic.bias().value, lstm.bias().value));
  }
}

TEMPLATE_TEST_CASE("LSTMCell with num_proj == num_units applies the projection", "[composition]", float, double) {
  using T = TestType;
  const Index U = 4, B = 3;
  cf::Rng rng(14);
  cf::LSTMOptions<T> o;
  o.num_proj = U;
  cf::LSTMCell<T> proj(kD, U, o, rng);
  randomize(proj, rng);
  cf::LSTMCell<T> plain(kD, U, rng);
  REQUIRE(plain.kernel().value.rows() == proj.kernel().value.rows());
  plain.kernel().value = proj.kernel().value;
  plain.bias().value = proj.bias().value;
  REQUIRE(proj.projection().value.rows() == U);
  REQUIRE(proj.projection().value.cols() == U);

  const Mat<T> x = random_matrix<T>(B, kD, rng);
  const auto sp = proj(x, proj.zero_state(B));
  const auto sn = plain(x, plain.zero_state(B));
  // One step from the zero state: the same c, and the output is the plain output @ projection.
  CHECK(same(sp.state.c, sn.state.c));
  const Mat<T> expected = sn.output * proj.projection().value;
  CHECK(diff(sp.output, expected) <= rounding_tol<T>());
  CHECK(same(sp.state.h, sp.output));
  CHECK(diff(sp.output, sn.output) > 0.05);  // not the identity

  // With an identity projection kernel the projected cell is the plain cell.
  proj.projection().value.setIdentity();
  const auto X = random_tensor<T>(B, 5, kD, rng);
  const auto r1 = cf::dynamic_rnn(proj, X);
  const auto r2 = cf::dynamic_rnn(plain, X);
  CHECK(diff(r1.outputs, r2.outputs) <= rounding_tol<T>());
  CHECK(state_diff(r1.final_state, r2.final_state) <= rounding_tol<T>());
}

TEMPLATE_TEST_CASE("cell_clip bounds |c| in every state; proj_clip bounds every output", "[composition]", float,
                   double) {
  using T = TestType;
  const T cclip = T(0.3), pclip = T(0.2);
  cf::Rng rng(15);
  auto o0 = peephole_options<T>();
  o0.cell_clip = cclip;
  auto o1 = o0;
  o1.num_proj = 3;
  o1.proj_clip = pclip;
  cf::LSTMCell<T> l0(kD, 4, o0, rng);
  cf::LSTMCell<T> l1(4, 5, o1, rng);
  cf::MultiRNNCell<T> clipped(std::move(l0), std::move(l1));
  randomize(clipped, rng, 1.5);

  // The same weights without any clip.
  auto u0 = peephole_options<T>();
  auto u1 = u0;
  u1.num_proj = 3;
  cf::LSTMCell<T> m0(kD, 4, u0, rng);
  cf::LSTMCell<T> m1(4, 5, u1, rng);
  cf::MultiRNNCell<T> unclipped(std::move(m0), std::move(m1));
  cf::VariableList<T> vc, vu;
  vc.add(clipped);
  vu.add(unclipped);
  REQUIRE(vc.size() == vu.size());
  for (std::size_t k = 0; k < vc.size(); ++k) vu.assign(vu[k].name, *vc[k].value);

  const Index B = 4, Tn = 6;
  const std::vector<Index> lens{1, 3, 6, 4};
  const auto X = random_tensor<T>(B, Tn, kD, rng, T(-3), T(3));
  cf::RNNOptions opt;
  opt.sequence_length = lens;
  const auto r = cf::dynamic_rnn(clipped, X, opt);
  const auto ru = cf::dynamic_rnn(unclipped, X, opt);
  for (std::size_t l = 0; l < 2; ++l) {
    INFO("layer " << l);
    CHECK(r.final_state[l].c().cwiseAbs().maxCoeff() <= cclip);
  }
  T max_out = 0;
  for (Index k = 0; k < r.outputs.size(); ++k) max_out = std::max(max_out, std::abs(r.outputs.data()[k]));
  CHECK(max_out <= pclip);
  CHECK(r.final_state[1].h().cwiseAbs().maxCoeff() <= pclip);

  // Every intermediate state too, and the clips are active: the bound is reached exactly
  // and the unclipped twin exceeds it.
  const auto loop = step_loop(clipped, X, clipped.zero_state(B), std::vector<Index>(B, Tn));
  const auto loop_u = step_loop(unclipped, X, unclipped.zero_state(B), std::vector<Index>(B, Tn));
  T max_c[2] = {0, 0}, max_cu[2] = {0, 0};
  for (std::size_t t = 0; t < loop.second.size(); ++t)
    for (std::size_t l = 0; l < 2; ++l) {
      max_c[l] = std::max(max_c[l], loop.second[t][l].c().cwiseAbs().maxCoeff());
      max_cu[l] = std::max(max_cu[l], loop_u.second[t][l].c().cwiseAbs().maxCoeff());
    }
  T loop_out = 0, loop_out_u = 0;
  for (Index k = 0; k < loop.first.size(); ++k) {
    loop_out = std::max(loop_out, std::abs(loop.first.data()[k]));
    loop_out_u = std::max(loop_out_u, std::abs(loop_u.first.data()[k]));
  }
  for (std::size_t l = 0; l < 2; ++l) {
    INFO("layer " << l << ": max |c| clipped " << max_c[l] << ", unclipped " << max_cu[l]);
    CHECK(max_c[l] == cclip);
    CHECK(max_cu[l] > cclip);
  }
  INFO("max |output| clipped " << loop_out << ", unclipped " << loop_out_u);
  CHECK(loop_out == pclip);
  CHECK(loop_out_u > pclip);
}

TEMPLATE_TEST_CASE("training=false forward is bitwise training=true", "[composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(16);
    const Index B = 3, Tn = 5;
    const auto X = random_tensor<T>(B, Tn, kD, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    for (int cfg = 0; cfg < 4; ++cfg) {
      const bool with_len = cfg & 1, with_s0 = cfg & 2;
      INFO("sequence_length " << with_len << ", initial_state " << with_s0);
      cf::RNNOptions train, infer;
      if (with_len) train.sequence_length = infer.sequence_length = std::vector<Index>{3, 5, 0};
      infer.training = false;
      auto r1 = with_s0 ? cf::dynamic_rnn(cell, X, s0, train) : cf::dynamic_rnn(cell, X, train);
      auto r2 = with_s0 ? cf::dynamic_rnn(cell, X, s0, infer) : cf::dynamic_rnn(cell, X, infer);
      CHECK(same(r1.outputs, r2.outputs));
      CHECK(same_state(r1.final_state, r2.final_state));
      CHECK_THROWS_AS(cf::dynamic_rnn_backward(cell, r2, &r2.outputs), cf::Error);
    }
  });
}

namespace {

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
  cf::LSTMCell<T> l0(kD, 5, o, rng);
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

}  // namespace

TEMPLATE_TEST_CASE("the same Rng seed gives the same weights, another seed others", "[composition]", float, double) {
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
    CHECK(same(*va[k].value, *vb[k].value));
    const bool constant_init = va[k].name.find("bias") != std::string::npos;
    if (constant_init) {
      CHECK(same(*va[k].value, *vc[k].value));
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

namespace {

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

}  // namespace

TEMPLATE_TEST_CASE("default initialisation: glorot limits with TF's fans, constant biases", "[composition]", float,
                   double) {
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
    CHECK(!same(c.w_f_diag().value, c.w_i_diag().value));
    CHECK(!same(c.w_i_diag().value, c.w_o_diag().value));
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

TEMPLATE_TEST_CASE("variable names and TF shapes in creation order", "[composition]", float, double) {
  using T = TestType;
  cf::Rng rng(3);
  {
    cf::BasicLSTMCell<T> c(kD, 4, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/basic_lstm_cell/kernel", {7, 16}}, {"rnn/basic_lstm_cell/bias", {16}}});
  }
  {
    cf::LSTMCell<T> c(kD, 4, rng);
    cf::VariableList<T> v;
    v.add(c, "rnn");
    check_names(v, {{"rnn/lstm_cell/kernel", {7, 16}}, {"rnn/lstm_cell/bias", {16}}});
  }
  {
    cf::LSTMOptions<T> o = peephole_options<T>();
    o.num_proj = 2;
    o.cell_clip = T(1);
    o.proj_clip = T(1);
    cf::LSTMCell<T> c(kD, 4, o, rng);
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
    cf::LSTMCell<T> c(kD, 4, o, rng);
    cf::VariableList<T> v;
    v.add(c);  // no scope
    check_names(v, {{"lstm_cell/kernel", {5, 16}}, {"lstm_cell/bias", {16}}, {"lstm_cell/projection/kernel", {4, 2}}});
  }
  {
    cf::GRUCell<T> c(kD, 4, rng);
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
