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
#include "support/weights_check.hpp"

namespace test_lstm_cell {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using Mat = cf::Matrix<T>;

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

TEMPLATE_TEST_CASE("cell_clip bounds |c| in every state, proj_clip bounds every output", "[lstm_cell][composition]",
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

TEST_CASE("LSTM cells from given weights, weights() and set_weights()", "[lstm_cell]") {
  using W = cf::LSTMWeights<double>;
  // Every member of the weight set; the unused ones must be empty ("peephole weights given, but
  // the cell has no peepholes", "a projection given, but the cell has no num_proj").
  auto fields = [](bool peepholes) {
    return std::vector<WeightField<W, double>>{{&W::kernel, "kernel"},
                                               {&W::bias, "bias"},
                                               {&W::projection, "projection"},
                                               {&W::w_f_diag, peepholes ? "w_f_diag" : "peephole"},
                                               {&W::w_i_diag, peepholes ? "w_i_diag" : "peephole"},
                                               {&W::w_o_diag, peepholes ? "w_o_diag" : "peephole"}};
  };
  cf::Rng rng(51);
  SECTION("BasicLSTMCell") {
    cf::BasicLSTMCell<double> cell(3, 4, rng, 0.4);
    check_weights_api<cf::BasicLSTMCell<double>, W>(
        cell, [](const W& w) { return cf::BasicLSTMCell<double>(w, 0.4); }, fields(false), rng);
  }
  SECTION("LSTMCell with peepholes") {
    cf::LSTMCell<double> cell(3, 4, peephole_options<double>(), rng);
    check_weights_api<cf::LSTMCell<double>, W>(
        cell, [](const W& w) { return cf::LSTMCell<double>(w, peephole_options<double>()); }, fields(true), rng);
  }
  SECTION("LSTMCell with every option") {
    cf::LSTMCell<double> cell(3, 4, all_lstm_options<double>(), rng);
    check_weights_api<cf::LSTMCell<double>, W>(
        cell, [](const W& w) { return cf::LSTMCell<double>(w, all_lstm_options<double>()); }, fields(true), rng);
  }
}

TEST_CASE("LSTM cells take their sizes from the given kernel", "[lstm_cell]") {
  cf::LSTMWeights<float> w;
  w.kernel = Mat<float>::Zero(28 + 150, 4 * 150);
  w.bias = Mat<float>::Zero(1, 4 * 150);
  const cf::BasicLSTMCell<float> basic(w);
  CHECK(basic.input_depth() == 28);
  CHECK(basic.num_units() == 150);
  CHECK(basic.output_size() == 150);
  CHECK(basic.forget_bias() == 1.0f);
  CHECK(basic.cell_name() == "basic_lstm_cell(num_units=150)");
  // With num_proj the h rows of the kernel are num_proj wide: [D + P, 4U].
  cf::LSTMOptions<float> o;
  o.num_proj = 6;
  cf::LSTMWeights<float> p;
  p.kernel = Mat<float>::Zero(5 + 6, 4 * 8);
  p.bias = Mat<float>::Zero(1, 32);
  p.projection = Mat<float>::Zero(8, 6);
  const cf::LSTMCell<float> projected(p, o);
  CHECK(projected.input_depth() == 5);
  CHECK(projected.num_units() == 8);
  CHECK(projected.output_size() == 6);
  // A kernel that cannot be [D + H, 4U].
  w.kernel = Mat<float>::Zero(150, 4 * 150);  // no row left for x
  CHECK_THROWS_MATCHES(cf::BasicLSTMCell<float>(w), cf::ShapeError,
                       what_contains<cf::ShapeError>("basic_lstm_cell: kernel [150, 600] has 150 rows, fewer than the "
                                                     "150 of h plus at least one input feature"));
  w.kernel = Mat<float>::Zero(10, 6);
  CHECK_THROWS_MATCHES(
      cf::LSTMCell<float>(w), cf::ShapeError,
      what_contains<cf::ShapeError>("lstm_cell: kernel [10, 6] must have 4 * num_units columns (gates i | j | f | o)"));
  CHECK_THROWS_AS(cf::LSTMCell<float>(cf::LSTMWeights<float>{}), cf::ShapeError);
  p.projection.resize(0, 0);  // num_proj needs its projection
  CHECK_THROWS_MATCHES(cf::LSTMCell<float>(p, o), cf::ShapeError, what_contains<cf::ShapeError>("projection"));
}

TEMPLATE_TEST_CASE("LSTM cells: config(), names, zero_grad()", "[lstm_cell]", float, double) {
  using T = TestType;
  cf::Rng rng(52);
  {
    cf::BasicLSTMCell<T> cell(5, 3, rng, T(0.25));
    const cf::CellConfig c = cell.config();
    CHECK(c.kind == "BasicLSTMCell");
    CHECK(c.input_depth == 5);
    CHECK(c.num_units == 3);
    CHECK(c.output_size == 3);
    CHECK(c.options == std::map<std::string, double>{{"forget_bias", 0.25}});
    CHECK(cell.forget_bias() == T(0.25));
    CHECK(cell.scope_name() == "basic_lstm_cell");
    CHECK(cf::scope_name_of(cell) == "basic_lstm_cell");
    CHECK(cf::config_of(cell).kind == "BasicLSTMCell");
  }
  {
    cf::LSTMCell<T> plain(5, 3, rng);
    const cf::CellConfig c = plain.config();
    CHECK(c.kind == "LSTMCell");
    CHECK(c.options == std::map<std::string, double>{{"forget_bias", 1.0}});
    CHECK(plain.scope_name() == "lstm_cell");
    CHECK(plain.cell_name() == "lstm_cell(num_units=3)");
  }
  {
    const auto o = all_lstm_options<T>();
    cf::LSTMCell<T> cell(5, 4, o, rng);
    const cf::CellConfig c = cell.config();
    CHECK(c.kind == "LSTMCell");
    CHECK(c.input_depth == 5);
    CHECK(c.num_units == 4);
    CHECK(c.output_size == 3);
    CHECK(c.options == std::map<std::string, double>{{"cell_clip", static_cast<double>(T(0.6))},
                                                     {"forget_bias", static_cast<double>(T(0.8))},
                                                     {"num_proj", 3.0},
                                                     {"proj_clip", static_cast<double>(T(0.5))},
                                                     {"use_peepholes", 1.0}});
    CHECK(c.has("proj_clip"));
    CHECK(c.get("num_proj") == 3.0);
    CHECK(cell.options().num_proj == 3);

    cf::VariableList<T> vars;
    vars.add(cell);
    REQUIRE(vars.size() == 6);
    for (auto& v : vars) v.grad->setConstant(T(1));
    cell.zero_grad();
    for (auto& v : vars) {
      INFO(v.name);
      CHECK(v.grad->isZero(0));
      CHECK(v.grad->size() == v.value->size());
    }
  }
}

TEST_CASE("LSTM cells refuse a NaN or infinite forget_bias", "[lstm_cell][errors]") {
  cf::Rng rng(53);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (double fb : {nan, inf, -inf}) {
    INFO("forget_bias " << fb);
    cf::LSTMOptions<double> o;
    o.forget_bias = fb;
    CHECK_THROWS_MATCHES(cf::LSTMCell<double>(3, 4, o, rng), cf::ValueError,
                         what_contains<cf::ValueError>("lstm_cell: forget_bias must be finite, given"));
    CHECK_THROWS_MATCHES(cf::BasicLSTMCell<double>(3, 4, rng, fb), cf::ValueError,
                         what_contains<cf::ValueError>("basic_lstm_cell: forget_bias must be finite, given"));
    cf::LSTMWeights<double> w;
    w.kernel = Mat<double>::Zero(7, 16);
    w.bias = Mat<double>::Zero(1, 16);
    CHECK_THROWS_AS(cf::BasicLSTMCell<double>(w, fb), cf::ValueError);
    CHECK_THROWS_AS(cf::LSTMCell<double>(w, o), cf::ValueError);
  }
  CHECK_THROWS_AS(cf::BasicLSTMCell<float>(3, 4, rng, std::numeric_limits<float>::quiet_NaN()), cf::ValueError);
  cf::LSTMOptions<float> big;
  big.forget_bias = std::numeric_limits<float>::max();  // finite: allowed
  CHECK_NOTHROW(cf::LSTMCell<float>(3, 4, big, rng));
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

// The float cell with the default tanh runs each step's elementwise work as one SIMD pass per row
// (detail/lstm_gates.hpp); double runs the Eigen expressions. Both must compute TF's equations:
// the float run of a cell agrees with the double run of the same weights to float precision, for
// every option (peepholes, an active cell_clip, a projection with an active proj_clip), a
// num_units that fills no whole SIMD packet (37) and one that does (32), ragged sequence lengths
// (row skipping), an initial state and output and final-state gradients.
TEST_CASE("the float LSTM's one-pass gate arithmetic equals the double path's, forward and backward, every option",
          "[lstm_cell][fused]") {
  struct Config {
    const char* name;
    cf::Index units;
    bool peepholes;
    double cell_clip;  // 0: none
    cf::Index proj;    // 0: none
    double proj_clip;  // 0: none
  };
  const Config configs[] = {{"plain, 37 units", 37, false, 0, 0, 0},
                            {"plain, 32 units", 32, false, 0, 0, 0},
                            {"peepholes and cell_clip, 37 units", 37, true, 0.3, 0, 0},
                            {"peepholes, cell_clip, num_proj and proj_clip, 37 units", 37, true, 0.3, 5, 0.2},
                            {"num_proj, 19 units", 19, false, 0, 6, 0}};
  const cf::Index B = 5, T = 6, D = 7;
  for (const Config& c : configs) {
    INFO(c.name);
    cf::Rng rng(77);
    cf::LSTMOptions<double> od;
    od.use_peepholes = c.peepholes;
    if (c.cell_clip > 0) od.cell_clip = c.cell_clip;
    if (c.proj > 0) od.num_proj = c.proj;
    if (c.proj_clip > 0) od.proj_clip = c.proj_clip;
    od.forget_bias = 0.7;
    cf::LSTMCell<double> cd(D, c.units, od, rng);
    cf::LSTMWeights<double> wd = cd.weights();
    wd.bias = random_matrix<double>(1, 4 * c.units, rng);  // a non-zero bias
    if (c.peepholes) {
      wd.w_f_diag = random_matrix<double>(1, c.units, rng);
      wd.w_i_diag = random_matrix<double>(1, c.units, rng);
      wd.w_o_diag = random_matrix<double>(1, c.units, rng);
    }
    cd.set_weights(wd);
    // The double weights, rounded to float, are the float cell's; the double cell gets the rounded
    // values too, so that both compute the same function.
    cf::LSTMWeights<float> wf;
    wf.kernel = wd.kernel.cast<float>();
    wf.bias = wd.bias.cast<float>();
    wf.projection = wd.projection.cast<float>();
    wf.w_f_diag = wd.w_f_diag.cast<float>();
    wf.w_i_diag = wd.w_i_diag.cast<float>();
    wf.w_o_diag = wd.w_o_diag.cast<float>();
    cf::LSTMOptions<float> of;
    of.use_peepholes = c.peepholes;
    if (c.cell_clip > 0) of.cell_clip = static_cast<float>(c.cell_clip);
    if (c.proj > 0) of.num_proj = c.proj;
    if (c.proj_clip > 0) of.proj_clip = static_cast<float>(c.proj_clip);
    of.forget_bias = 0.7f;
    cf::LSTMCell<float> cfl(wf, of);
    wd.kernel = wf.kernel.cast<double>();
    wd.bias = wf.bias.cast<double>();
    wd.projection = wf.projection.cast<double>();
    wd.w_f_diag = wf.w_f_diag.cast<double>();
    wd.w_i_diag = wf.w_i_diag.cast<double>();
    wd.w_o_diag = wf.w_o_diag.cast<double>();
    cd.set_weights(wd);

    const cf::Tensor3<double> x = random_tensor<double>(B, T, D, rng, -2, 2);
    const cf::Index H = c.proj > 0 ? c.proj : c.units;
    const cf::Tensor3<double> dy = random_tensor<double>(B, T, H, rng);
    cf::LSTMStateTuple<double> s0{random_matrix<double>(B, c.units, rng), random_matrix<double>(B, H, rng)};
    cf::LSTMStateTuple<double> ds{random_matrix<double>(B, c.units, rng), random_matrix<double>(B, H, rng)};
    const cf::Tensor3<float> xf = x.cast<float>(), dyf = dy.cast<float>();
    const cf::LSTMStateTuple<float> s0f{s0.c.cast<float>(), s0.h.cast<float>()};
    const cf::LSTMStateTuple<float> dsf{ds.c.cast<float>(), ds.h.cast<float>()};
    const cf::Tensor3<double> xr = xf.cast<double>(), dyr = dyf.cast<double>();
    s0 = {s0f.c.cast<double>(), s0f.h.cast<double>()};
    ds = {dsf.c.cast<double>(), dsf.h.cast<double>()};

    cf::RNNOptions opts;
    opts.sequence_length = std::vector<cf::Index>{6, 0, 3, 6, 1};
    cf::VariableList<double> vd;
    vd.add(cd);
    vd.zero_grad();
    cf::VariableList<float> vf;
    vf.add(cfl);
    vf.zero_grad();
    auto rd = cf::dynamic_rnn(cd, xr, opts, &s0);
    auto gd = cf::dynamic_rnn_backward(cd, rd, &dyr, &ds);
    auto rf = cf::dynamic_rnn(cfl, xf, opts, &s0f);
    auto gf = cf::dynamic_rnn_backward(cfl, rf, &dyf, &dsf);

    // float vs double within 1e-5 of each result's largest magnitude (support/test_util.hpp)
    check_float_matches_double(rf.outputs, rd.outputs, "outputs");
    check_float_matches_double(rf.final_state.c, rd.final_state.c, "final c");
    check_float_matches_double(rf.final_state.h, rd.final_state.h, "final h");
    check_float_matches_double(gf.d_inputs, gd.d_inputs, "d_inputs");
    check_float_matches_double(gf.d_initial_state.c, gd.d_initial_state.c, "d_initial c");
    check_float_matches_double(gf.d_initial_state.h, gd.d_initial_state.h, "d_initial h");
    REQUIRE(vf.size() == vd.size());
    for (std::size_t k = 0; k < vd.size(); ++k)
      check_float_matches_double(*vf[k].grad, *vd[k].grad, vd[k].name.c_str());
    if (c.cell_clip > 0) {  // the clip is active: the largest |c| of the examples that ran 6 steps reached it
      const double reached =
          std::max(rd.final_state.c.row(0).cwiseAbs().maxCoeff(), rd.final_state.c.row(3).cwiseAbs().maxCoeff());
      CHECK(reached == Approx(c.cell_clip));
    }
  }
}

}  // namespace test_lstm_cell
