// BasicLSTMCell and LSTMCell (cells/lstm_cell.hpp): LSTMCell without options is BasicLSTMCell,
// the projection and the clips do what TF's do, cells built from given weights without an Rng,
// weights() / set_weights() (all or nothing, errors naming the variable), config(), zero_grad(),
// and every invalid option. The equations are checked against TF's goldens
// (test_tf_goldens.cpp) and the float64 reference (test_reference.cpp); everything every cell
// must do is in test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_lstm_cell {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using Mat = cf::Matrix<T>;

template <class T>
double max_abs(const cf::Tensor3<T>& a) {
  double m = 0;
  for (Index k = 0; k < a.size(); ++k) m = std::max(m, double(std::abs(a.data()[k])));
  return m;
}

TEMPLATE_TEST_CASE("LSTMCell without options equals BasicLSTMCell with the same weights", "[lstm_cell][composition]",
                   float, double) {
  using T = TestType;
  for (T fb : {T(1), T(0.6)}) {
    INFO("forget_bias " << fb);
    cf::Rng rng(13);
    cf::BasicLSTMCell<T> basic(kKindsDepth, 4, rng, fb);
    randomize_variables(basic, rng);
    cf::LSTMOptions<T> o;
    o.forget_bias = fb;
    cf::LSTMCell<T> lstm(kKindsDepth, 4, o, rng);
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
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    auto s0 = basic.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions opt;
    opt.sequence_length = std::vector<Index>{5, 2, 0};
    auto rb = cf::dynamic_rnn(basic, X, s0, opt);
    auto rl = cf::dynamic_rnn(lstm, X, s0, opt);
    CHECK(bitwise_equal(rb.outputs, rl.outputs));
    CHECK(same_state(rb.final_state, rl.final_state));
    CHECK(max_abs(rb.outputs) > 0.01);

    const auto dY = random_tensor<T>(B, Tn, 4, rng);
    auto dS = rb.final_state;
    randomize_state(dS, rng);
    vb.zero_grad();
    vl.zero_grad();
    auto gb = cf::dynamic_rnn_backward(basic, rb, &dY, &dS);
    auto gl = cf::dynamic_rnn_backward(lstm, rl, &dY, &dS);
    CHECK(bitwise_equal(gb.d_inputs, gl.d_inputs));
    CHECK(same_state(gb.d_initial_state, gl.d_initial_state));
    for (std::size_t k = 0; k < 2; ++k) CHECK(bitwise_equal(*vb[k].grad, *vl[k].grad));
    // forget_bias is applied at run time, never stored in the bias.
    CHECK(bitwise_equal(basic.bias().value, lstm.bias().value));
  }
}

TEMPLATE_TEST_CASE("LSTMCell with num_proj == num_units applies the projection", "[lstm_cell][composition]", float,
                   double) {
  using T = TestType;
  const Index U = 4, B = 3;
  cf::Rng rng(14);
  cf::LSTMOptions<T> o;
  o.num_proj = U;
  cf::LSTMCell<T> proj(kKindsDepth, U, o, rng);
  randomize_variables(proj, rng);
  cf::LSTMCell<T> plain(kKindsDepth, U, rng);
  REQUIRE(plain.kernel().value.rows() == proj.kernel().value.rows());
  plain.kernel().value = proj.kernel().value;
  plain.bias().value = proj.bias().value;
  REQUIRE(proj.projection().value.rows() == U);
  REQUIRE(proj.projection().value.cols() == U);

  const Mat<T> x = random_matrix<T>(B, kKindsDepth, rng);
  const auto sp = proj(x, proj.zero_state(B));
  const auto sn = plain(x, plain.zero_state(B));
  // One step from the zero state: the same c, and the output is the plain output @ projection.
  CHECK(bitwise_equal(sp.state.c, sn.state.c));
  const Mat<T> expected = sn.output * proj.projection().value;
  CHECK(max_diff(sp.output, expected) <= rounding_tol<T>());
  CHECK(bitwise_equal(sp.state.h, sp.output));
  CHECK(max_diff(sp.output, sn.output) > 0.05);  // not the identity

  // With an identity projection kernel the projected cell is the plain cell.
  proj.projection().value.setIdentity();
  const auto X = random_tensor<T>(B, 5, kKindsDepth, rng);
  const auto r1 = cf::dynamic_rnn(proj, X);
  const auto r2 = cf::dynamic_rnn(plain, X);
  CHECK(max_diff(r1.outputs, r2.outputs) <= rounding_tol<T>());
  CHECK(state_diff(r1.final_state, r2.final_state) <= rounding_tol<T>());
}

TEMPLATE_TEST_CASE("cell_clip bounds |c| in every state; proj_clip bounds every output", "[lstm_cell][composition]",
                   float, double) {
  using T = TestType;
  const T cclip = T(0.3), pclip = T(0.2);
  cf::Rng rng(15);
  auto o0 = peephole_options<T>();
  o0.cell_clip = cclip;
  auto o1 = o0;
  o1.num_proj = 3;
  o1.proj_clip = pclip;
  cf::LSTMCell<T> l0(kKindsDepth, 4, o0, rng);
  cf::LSTMCell<T> l1(4, 5, o1, rng);
  cf::MultiRNNCell<T> clipped(std::move(l0), std::move(l1));
  randomize_variables(clipped, rng, 1.5);

  // The same weights without any clip.
  auto u0 = peephole_options<T>();
  auto u1 = u0;
  u1.num_proj = 3;
  cf::LSTMCell<T> m0(kKindsDepth, 4, u0, rng);
  cf::LSTMCell<T> m1(4, 5, u1, rng);
  cf::MultiRNNCell<T> unclipped(std::move(m0), std::move(m1));
  cf::VariableList<T> vc, vu;
  vc.add(clipped);
  vu.add(unclipped);
  REQUIRE(vc.size() == vu.size());
  for (std::size_t k = 0; k < vc.size(); ++k) vu.assign(vu[k].name, *vc[k].value);

  const Index B = 4, Tn = 6;
  const std::vector<Index> lens{1, 3, 6, 4};
  const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng, T(-3), T(3));
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

TEST_CASE("LSTM cells reject invalid sizes and options", "[lstm_cell][errors]") {
  cf::Rng rng(6);
  REQUIRE_THROWS_AS(cf::BasicLSTMCell<float>(0, 4, rng), cf::ValueError);
  cf::LSTMOptions<float> o;
  o.proj_clip = 1.0f;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("proj_clip needs num_proj"));
  o = {};
  o.cell_clip = -1.0f;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("cell_clip must be >= 0"));
  o = {};
  o.num_proj = 0;
  REQUIRE_THROWS_WITH(cf::LSTMCell<float>(3, 4, o, rng), Contains("num_proj must be positive"));
}

}  // namespace test_lstm_cell
