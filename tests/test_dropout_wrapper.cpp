// DropoutWrapper (rnn/dropout_wrapper.hpp): TF 1.15's tf.nn.rnn_cell.DropoutWrapper.
//
//   * against tests/fixtures/dropout_reference.txt (generate_dropout.py: TF's equations in torch
//     float64, the masks from cellflow's documented rule re-implemented in Python): outputs,
//     final state, every gradient, and the masks the wrapper drew;
//   * central-difference gradients in double with every dropout on and a fixed draw (BasicLSTMCell
//     and GRUCell, variational and per step, with and without sequence_length);
//   * keep probability 1 and inference (training = false, RNNStream, cell(x, state)) are bitwise
//     the unwrapped cell;
//   * statistics and invariants: the dropped share, variational masks constant over steps and
//     examples, batch_threads 1/2/3, draws, an LSTM's c never dropped, composition;
//   * bad keep probabilities, seeds and a cell without droppable_state.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/elman_cell.hpp"
#include "support/fixture.hpp"
#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_dropout_wrapper {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;

/// Largest |a - b| / max(1, |b|) (infinity for other sizes).
template <class A>
double rel_diff(const A& a, const A& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (Index k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::abs(a.data()[k] - b.data()[k]) / std::max(1.0, std::abs(b.data()[k])));
  return worst;
}

template <class A>
bool bitwise(const A& a, const A& b) {
  if (a.size() != b.size()) return false;
  for (Index k = 0; k < a.size(); ++k)
    if (!(a.data()[k] == b.data()[k])) return false;
  return true;
}

/// Training forward and backward with a fixed draw; outputs, final state, gradients.
struct Run {
  Ten outputs, d_inputs;
  std::vector<Mat> state, d_state, grads;
};

template <class Cell>
Run train(Cell& cell, const Ten& X, const typename Cell::State& s0, const Ten& dY, const typename Cell::State& dF,
          cf::RNNOptions o) {
  cf::zero_grad(cell);
  auto r = cf::dynamic_rnn(cell, X, o, &s0);
  auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
  Run out;
  out.outputs = r.outputs;
  out.d_inputs = g.d_inputs;
  for (const auto* p : const_state_parts(r.final_state)) out.state.push_back(*p);
  for (const auto* p : const_state_parts(g.d_initial_state)) out.d_state.push_back(*p);
  out.grads = variable_grads(cell);
  return out;
}

bool bitwise(const Run& a, const Run& b) {
  bool ok = bitwise(a.outputs, b.outputs) && bitwise(a.d_inputs, b.d_inputs);
  for (std::size_t i = 0; i < a.state.size(); ++i) ok = ok && bitwise(a.state[i], b.state[i]);
  for (std::size_t i = 0; i < a.d_state.size(); ++i) ok = ok && bitwise(a.d_state[i], b.d_state[i]);
  for (std::size_t i = 0; i < a.grads.size(); ++i) ok = ok && bitwise(a.grads[i], b.grads[i]);
  return ok;
}

double rel_diff(const Run& a, const Run& b) {
  double d = std::max(rel_diff(a.outputs, b.outputs), rel_diff(a.d_inputs, b.d_inputs));
  for (std::size_t i = 0; i < a.state.size(); ++i) d = std::max(d, rel_diff(a.state[i], b.state[i]));
  for (std::size_t i = 0; i < a.d_state.size(); ++i) d = std::max(d, rel_diff(a.d_state[i], b.d_state[i]));
  for (std::size_t i = 0; i < a.grads.size(); ++i) d = std::max(d, rel_diff(a.grads[i], b.grads[i]));
  return d;
}

/// The mask rule of rnn/dropout_wrapper.hpp, written out again: 1 when unit j of stream k is kept.
double expected_mask(std::uint64_t seed, int k, std::uint64_t draw, double keep, bool variational, Index example,
                     Index t, Index W, Index j) {
  const std::uint64_t s = 3 * seed + static_cast<std::uint64_t>(k);
  const double u = variational ? cf::keyed_uniform01<double>(s, draw, 0, static_cast<std::uint64_t>(j))
                               : cf::keyed_uniform01<double>(s, draw, static_cast<std::uint64_t>(example),
                                                             static_cast<std::uint64_t>(t * W + j));
  return u < keep ? 1.0 : 0.0;
}

// =============================================================================================

TEST_CASE("DropoutWrapper matches TF's equations on the reference fixture, masks included", "[dropout][reference]") {
  const auto cases = load_fixture_file(fixture_path("dropout_reference.txt"));
  {
    const FixtureCase& fc = cases.at("keyed_uniform01");
    const auto& v = fc.tensor("keyed_uniform01_samples").values;
    const std::uint64_t keys[4][4] = {
        {0, 0, 0, 0}, {7, 3, 11, 5}, {(std::uint64_t(1) << 53) - 1, ~std::uint64_t(0), 12345, 678}, {1, 2, 3, 4}};
    for (int i = 0; i < 4; ++i)
      CHECK(cf::keyed_uniform01<double>(keys[i][0], keys[i][1], keys[i][2], keys[i][3]) == v[std::size_t(i)]);
  }
  for (const char* name : {"basic_lstm_variational", "basic_lstm_per_step", "gru_per_step", "gru_variational"}) {
    INFO(name);
    const FixtureCase& fc = cases.at(name);
    const bool lstm = fc.config_str("kind") == "basic_lstm";
    const double p_in = fc.config_num("input_keep_prob"), p_out = fc.config_num("output_keep_prob"),
                 p_state = fc.config_num("state_keep_prob");
    const bool variational = fc.config_num("variational_recurrent") != 0;
    const auto seed = static_cast<std::uint64_t>(fc.config_num("seed"));
    const auto draw = static_cast<std::uint64_t>(fc.config_num("draw"));
    cf::Rng rng(1);
    const Ten X = to_tensor3<double>(fc.tensor("inputs"));
    const Ten Wo = to_tensor3<double>(fc.tensor("w_outputs"));
    cf::RNNOptions o;
    o.draw = draw;
    o.sequence_length = std::vector<long long>(fc.int_list("sequence_length"));
    auto check = [&](auto& wrapper, const auto& s0, const auto& wF, const std::vector<std::string>& parts) {
      cf::VariableList<double> vars;
      vars.add(wrapper, "rnn");
      for (auto& v : vars) *v.value = to_matrix<double>(fc.tensor(v.name));
      vars.zero_grad();
      auto r = cf::dynamic_rnn(wrapper, X, o, &s0);
      auto g = cf::dynamic_rnn_backward(wrapper, r, &Wo, &wF);
      CHECK(allclose(r.outputs, fc.tensor("outputs").values, 1e-12, 1e-12));
      const auto fs = const_state_parts(r.final_state);
      const auto ds = const_state_parts(g.d_initial_state);
      for (std::size_t i = 0; i < parts.size(); ++i) {
        INFO(parts[i]);
        CHECK(allclose(*fs[i], fc.tensor("final_state/" + parts[i]).values, 1e-12, 1e-12));
        CHECK(allclose(*ds[i], fc.tensor("grad/initial_state/" + parts[i]).values, 1e-12, 1e-12));
      }
      CHECK(allclose(g.d_inputs, fc.tensor("grad/inputs").values, 1e-12, 1e-12));
      for (auto& v : vars) {
        INFO(v.name);
        CHECK(allclose(*v.grad, fc.tensor("grad/" + v.name).values, 1e-12, 1e-12));
      }
      // The masks the wrapper drew: the fixture's are [time, batch, width] (per step, per example).
      // With row skipping (the default) the slice's rows are its examples in length order:
      // row k holds example slice.rows[k].
      const auto& slice = r.tape.split.slice(0);
      const auto& tape = slice.tape;
      const Index B = 3, T = 5;
      auto row_of = [&](Index b) {
        if (!r.tape.split.sorted()) return b;
        return Index(std::find(slice.rows.begin(), slice.rows.end(), b) - slice.rows.begin());
      };
      const std::pair<const Mat*, const char*> masks[] = {
          {&tape.input_mask, "mask/input"}, {&tape.state_mask, "mask/state"}, {&tape.output_mask, "mask/output"}};
      for (const auto& [m, key] : masks) {
        INFO(key);
        const FixtureTensor& ft = fc.tensor(key);
        const Index W = ft.shape[2];
        REQUIRE(m->cols() == W);
        REQUIRE(m->rows() == (variational ? 1 : T * B));
        bool same = true;
        for (Index t = 0; t < T; ++t)
          for (Index b = 0; b < B; ++b)
            for (Index j = 0; j < W; ++j)
              same =
                  same && (*m)(variational ? 0 : t * B + row_of(b), j) == ft.values[std::size_t((t * B + b) * W + j)];
        CHECK(same);
      }
    };
    if (lstm) {
      cf::DropoutWrapper<cf::BasicLSTMCell<double>> w(cf::BasicLSTMCell<double>(3, 4, rng), p_in, p_out, p_state,
                                                      variational, seed);
      const cf::LSTMStateTuple<double> s0{to_matrix<double>(fc.tensor("initial_state/c")),
                                          to_matrix<double>(fc.tensor("initial_state/h"))};
      const cf::LSTMStateTuple<double> wF{to_matrix<double>(fc.tensor("w_final_state/c")),
                                          to_matrix<double>(fc.tensor("w_final_state/h"))};
      check(w, s0, wF, {"c", "h"});
    } else {
      cf::DropoutWrapper<cf::GRUCell<double>> w(cf::GRUCell<double>(3, 4, rng), p_in, p_out, p_state, variational,
                                                seed);
      const Mat s0 = to_matrix<double>(fc.tensor("initial_state/h"));
      const Mat wF = to_matrix<double>(fc.tensor("w_final_state/h"));
      check(w, s0, wF, {"h"});
    }
  }
}

TEST_CASE("DropoutWrapper: central-difference gradients with every dropout and a fixed draw", "[dropout][gradcheck]") {
  cf::Rng rng(11);
  {
    cf::DropoutWrapper<cf::BasicLSTMCell<double>> w(cf::BasicLSTMCell<double>(3, 4, rng), 0.7, 0.6, 0.5, true, 5);
    randomize_variables(w, rng);
    check_rnn_gradients(w, "DropoutWrapper(BasicLSTMCell), variational", 4, rng, {}, 21);
  }
  {
    cf::DropoutWrapper<cf::GRUCell<double>> w(cf::GRUCell<double>(3, 4, rng), 0.6, 0.7, 0.5, true, 6);
    randomize_variables(w, rng);
    check_rnn_gradients(w, "DropoutWrapper(GRUCell), variational", 4, rng, {}, 22);
  }
  {
    cf::LSTMOptions<double> lo;
    lo.use_peepholes = true;
    lo.num_proj = 3;
    cf::DropoutWrapper<cf::LSTMCell<double>> w(cf::LSTMCell<double>(3, 4, lo, rng), 0.7, 0.6, 0.5, false, 7);
    randomize_variables(w, rng);
    check_rnn_gradients(w, "DropoutWrapper(LSTMCell(peepholes, num_proj)), per step", 4, rng, {}, 23);
  }
  {
    cf::DropoutWrapper<cf::GRUCell<double>> w(cf::GRUCell<double>(3, 4, rng), 0.6, 0.7, 0.5, false, 8);
    randomize_variables(w, rng);
    check_rnn_gradients(w, "DropoutWrapper(GRUCell), per step", 4, rng, {}, 24);
  }
}

TEST_CASE("DropoutWrapper: keep probability 1 and inference are bitwise the unwrapped cell", "[dropout]") {
  cf::Rng rng(12);
  cf::LSTMCell<double> lstm(3, 4, cf::LSTMOptions<double>{}, rng);
  randomize_variables(lstm, rng);
  const Ten X = random_tensor<double>(3, 5, 3, rng);
  const Ten dY = random_tensor<double>(3, 5, 4, rng);
  cf::LSTMStateTuple<double> s0 = lstm.zero_state(3), dF = lstm.zero_state(3);
  randomize_state(s0, rng);
  randomize_state(dF, rng);
  cf::RNNOptions o;
  o.training = true;
  o.sequence_length = {5, 2, 0};
  o.draw = 3;
  cf::LSTMCell<double> plain = lstm;
  const Run base = train(plain, X, s0, dY, dF, o);
  for (bool variational : {false, true}) {
    cf::DropoutWrapper<cf::LSTMCell<double>> one(lstm, 1.0, 1.0, 1.0, variational, 4);
    CHECK(bitwise(train(one, X, s0, dY, dF, o), base));
  }
  // Inference: nothing is dropped, whatever the keep probabilities.
  cf::DropoutWrapper<cf::LSTMCell<double>> half(lstm, 0.5, 0.5, 0.5, false, 4);
  cf::RNNOptions inf = o;
  inf.training = false;
  const auto r0 = cf::dynamic_rnn(plain, X, inf, &s0);
  const auto r1 = cf::dynamic_rnn(half, X, inf, &s0);
  CHECK(bitwise(r1.outputs, r0.outputs));
  CHECK(same_state(r1.final_state, r0.final_state));
  cf::RNNStream<cf::DropoutWrapper<cf::LSTMCell<double>>> stream(half, s0);
  cf::RNNStream<cf::LSTMCell<double>> plain_stream(plain, s0);
  CHECK(bitwise(stream.feed(X), plain_stream.feed(X)));
  const auto step = half(step_input(X, 0), s0);
  const auto plain_step = plain(step_input(X, 0), s0);
  CHECK(bitwise(step.output, plain_step.output));
  // ... while training with the same keep probabilities does drop.
  CHECK_FALSE(bitwise(train(half, X, s0, dY, dF, o).outputs, base.outputs));
}

TEST_CASE("DropoutWrapper: dropped share, masks applied as drawn, draws and reproducibility", "[dropout][statistics]") {
  cf::Rng rng(13);
  cf::GRUCell<double> gru(3, 16, rng);
  randomize_variables(gru, rng);
  const Index B = 40, T = 6;
  const Ten X = random_tensor<double>(B, T, 3, rng);
  const double keep = 0.7;
  cf::DropoutWrapper<cf::GRUCell<double>> w(gru, 1.0, keep, 1.0, false, 99);
  cf::RNNOptions o;
  o.training = true;
  o.draw = 5;
  const auto r = cf::dynamic_rnn(w, X, o);
  const auto plain = cf::dynamic_rnn(gru, X, o);  // only the output is dropped: y' = y * m / keep
  const Mat& m = r.tape.split.slice(0).tape.output_mask;
  REQUIRE(m.rows() == T * B);
  REQUIRE(m.cols() == 16);
  bool applied = true, rule = true;
  for (Index t = 0; t < T; ++t)
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < 16; ++j) {
        const double mk = m(t * B + b, j);
        applied = applied && r.outputs(b, t, j) == plain.outputs(b, t, j) * (1.0 / keep) * mk;
        rule = rule && mk == expected_mask(99, 2, 5, keep, false, b, t, 16, j);
      }
  CHECK(applied);
  CHECK(rule);
  // The share dropped is 1 - keep within 4 standard errors (n = 3840).
  const double n = double(m.size()), kept = m.sum() / n;
  CHECK(std::abs(kept - keep) < 4 * std::sqrt(keep * (1 - keep) / n));
  // Masks differ between steps and between examples.
  CHECK(m.row(0) != m.row(B));
  CHECK(m.row(0) != m.row(1));
  // The same draw reproduces the masks and outputs bitwise; another draw changes them.
  const auto again = cf::dynamic_rnn(w, X, o);
  CHECK(bitwise(again.outputs, r.outputs));
  cf::RNNOptions o2 = o;
  o2.draw = 6;
  const auto other = cf::dynamic_rnn(w, X, o2);
  CHECK(other.tape.split.slice(0).tape.output_mask != m);
  // Unset draws: every run draws anew.
  cf::RNNOptions o3 = o;
  o3.draw.reset();
  CHECK(cf::dynamic_rnn(w, X, o3).tape.split.slice(0).tape.output_mask !=
        cf::dynamic_rnn(w, X, o3).tape.split.slice(0).tape.output_mask);
  // Another seed, other masks.
  cf::DropoutWrapper<cf::GRUCell<double>> w2(gru, 1.0, keep, 1.0, false, 100);
  CHECK(cf::dynamic_rnn(w2, X, o).tape.split.slice(0).tape.output_mask != m);
}

TEST_CASE("DropoutWrapper: variational masks are one per stream for all steps and examples (TF)", "[dropout]") {
  cf::Rng rng(14);
  cf::BasicLSTMCell<double> lstm(8, 32, rng);
  randomize_variables(lstm, rng);
  const Index B = 5, T = 4;
  const Ten X = random_tensor<double>(B, T, 8, rng);
  cf::DropoutWrapper<cf::BasicLSTMCell<double>> w(lstm, 0.6, 0.5, 0.8, true, 3);
  cf::RNNOptions o;
  o.training = true;
  o.draw = 9;
  const auto r = cf::dynamic_rnn(w, X, o);
  const auto& tape = r.tape.split.slice(0).tape;
  REQUIRE(tape.input_mask.rows() == 1);
  REQUIRE(tape.output_mask.rows() == 1);
  REQUIRE(tape.state_mask.rows() == 1);
  REQUIRE(tape.state_mask.cols() == 32);  // h only
  bool rule = true;
  for (Index j = 0; j < 32; ++j) {
    rule = rule && tape.output_mask(0, j) == expected_mask(3, 2, 9, 0.5, true, 0, 0, 32, j);
    rule = rule && tape.state_mask(0, j) == expected_mask(3, 1, 9, 0.8, true, 0, 0, 32, j);
  }
  for (Index j = 0; j < 8; ++j) rule = rule && tape.input_mask(0, j) == expected_mask(3, 0, 9, 0.6, true, 0, 0, 8, j);
  CHECK(rule);
  // Every step and every example has its outputs dropped in the same units.
  bool same_units = true;
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index j = 0; j < 32; ++j)
        same_units = same_units && ((r.outputs(b, t, j) == 0) == (tape.output_mask(0, j) == 0));
  CHECK(same_units);
  CHECK(tape.output_mask.sum() > 0);
  CHECK(tape.output_mask.sum() < 32);
  o.draw = 10;  // another draw, another mask
  CHECK(cf::dynamic_rnn(w, X, o).tape.split.slice(0).tape.output_mask != tape.output_mask);
}

TEST_CASE("DropoutWrapper: batch_threads 1, 2 and 3 give the same numbers", "[dropout][batch_threads]") {
  cf::Rng rng(15);
  for (bool variational : {false, true}) {
    INFO("variational " << variational);
    cf::DropoutWrapper<cf::BasicLSTMCell<double>> w(cf::BasicLSTMCell<double>(3, 5, rng), 0.7, 0.6, 0.5, variational,
                                                    31);
    randomize_variables(w, rng);
    const Index B = 7;
    const Ten X = random_tensor<double>(B, 5, 3, rng);
    const Ten dY = random_tensor<double>(B, 5, 5, rng);
    auto s0 = w.zero_state(B), dF = w.zero_state(B);
    randomize_state(s0, rng);
    randomize_state(dF, rng);
    cf::RNNOptions o;
    o.training = true;
    o.draw = 77;
    o.sequence_length = {5, 3, 0, 4, 5, 1, 2};
    const Run one = train(w, X, s0, dY, dF, o);
    for (int threads : {2, 3}) {
      o.batch_threads = threads;
      const Run split = train(w, X, s0, dY, dF, o);
      CHECK(rel_diff(split, one) <= 1e-12);
    }
    // A slice's masks are keyed by the examples' positions in the whole batch (with row skipping,
    // the default, the slice's row b holds example s1.rows[b]).
    o.batch_threads = 2;
    const auto r = cf::dynamic_rnn(w, X, o, &s0);
    const auto& s1 = r.tape.split.slice(1);
    auto example_of = [&](Index b) { return r.tape.split.sorted() ? s1.rows[std::size_t(b)] : s1.b0 + b; };
    if (!variational) {
      const Mat& m = s1.tape.output_mask;
      bool rule = true;
      for (Index t = 0; t < s1.steps; ++t)
        for (Index b = 0; b < s1.n; ++b)
          for (Index j = 0; j < 5; ++j)
            rule = rule && m(t * s1.n + b, j) == expected_mask(31, 2, 77, 0.6, false, example_of(b), t, 5, j);
      CHECK(rule);
    }
  }
}

TEST_CASE("DropoutWrapper: state dropout never touches an LSTM's c", "[dropout]") {
  cf::Rng rng(16);
  cf::BasicLSTMCell<double> lstm(3, 6, rng);
  randomize_variables(lstm, rng);
  const Ten X = random_tensor<double>(4, 1, 3, rng);
  auto s0 = lstm.zero_state(4);
  randomize_state(s0, rng);
  cf::DropoutWrapper<cf::BasicLSTMCell<double>> w(lstm, 1.0, 1.0, 0.5, false, 12);
  cf::RNNOptions o;
  o.training = true;
  o.draw = 1;
  const auto r = cf::dynamic_rnn(w, X, o, &s0);
  const auto p = cf::dynamic_rnn(lstm, X, o, &s0);
  CHECK(bitwise(r.final_state.c, p.final_state.c));  // c as the cell made it
  CHECK(bitwise(r.outputs, p.outputs));              // the output is not the state
  const Mat& m = r.tape.split.slice(0).tape.state_mask;
  REQUIRE(m.rows() == 4);
  REQUIRE(m.cols() == 6);
  CHECK(bitwise(Mat(r.final_state.h), Mat(p.final_state.h.array() * 2.0 * m.array())));
  CHECK(m.sum() > 0);
  CHECK(m.sum() < 24);
}

TEST_CASE("DropoutWrapper composes: in a MultiRNNCell, around another wrapper, cell_forward", "[dropout]") {
  cf::Rng rng(17);
  cf::BasicLSTMCell<double> l0(3, 4, rng);
  cf::GRUCell<double> l1(4, 5, rng);
  cf::MultiRNNCell<double> stack(cf::DropoutWrapper<cf::BasicLSTMCell<double>>(l0, 0.8, 0.7, 0.6, false, 1),
                                 cf::DropoutWrapper<cf::GRUCell<double>>(l1, 0.9, 0.5, 0.7, true, 2));
  cf::VariableList<double> vars;
  vars.add(stack, "rnn");
  REQUIRE(vars.size() == 6);  // no variables of its own; the wrapped cells' names
  CHECK(vars[0].name == "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel");
  CHECK(vars[2].name == "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel");
  randomize_variables(stack, rng);
  check_rnn_gradients(stack, "MultiRNNCell(DropoutWrapper(BasicLSTMCell), DropoutWrapper(GRUCell))", 3, rng, {}, 41);
  const cf::CellConfig c = stack.layer(1).config();
  CHECK(c.kind == "DropoutWrapper");
  CHECK(c.input_depth == 4);
  CHECK(c.num_units == 5);
  CHECK(c.output_size == 5);
  CHECK(c.get("input_keep_prob") == 0.9);
  CHECK(c.get("output_keep_prob") == 0.5);
  CHECK(c.get("state_keep_prob") == 0.7);
  CHECK(c.get("variational_recurrent") == 1);
  CHECK(c.get("seed") == 2);
  REQUIRE(c.wrapped.size() == 1);
  CHECK(c.wrapped[0].kind == "GRUCell");
  CHECK(stack.layer(0).scope_name() == "basic_lstm_cell");
  // Converters see the wrapped cell (the variables are its own).
  CHECK(cf::convert::detail::layer_info(stack.layer(1)).kind == cf::convert::detail::LayerKind::gru);
  CHECK(cf::convert::detail::layer_info(stack.layer(0)).kind == cf::convert::detail::LayerKind::lstm);
  CHECK(cf::convert::lstm_weights(stack.layer(0)).kernel == *vars[0].value);

  // A wrapper of a wrapper: both masks apply (output dropout only: y'' = y * m1 / p1 * m2 / p2).
  cf::GRUCell<double> g(3, 6, rng);
  randomize_variables(g, rng);
  using Inner = cf::DropoutWrapper<cf::GRUCell<double>>;
  cf::DropoutWrapper<Inner> twice(Inner(g, 1.0, 0.5, 1.0, false, 3), 1.0, 0.8, 0.5, false, 4);
  randomize_variables(twice, rng);
  const Ten X = random_tensor<double>(3, 4, 3, rng);
  cf::RNNOptions o;
  o.training = true;
  o.draw = 8;
  const auto r = cf::dynamic_rnn(twice, X, o);
  CHECK(max_abs(r.outputs) > 0);
  check_rnn_gradients(twice, "DropoutWrapper(DropoutWrapper(GRUCell))", 3, rng, {}, 42);

  // cell_forward / cell_backward: a training step with a draw, equal to dynamic_rnn's one step.
  cf::DropoutWrapper<cf::GRUCell<double>> w(g, 0.7, 0.6, 0.5, false, 5);
  const Ten X1 = random_tensor<double>(3, 1, 3, rng);
  const Mat h0 = random_matrix<double>(3, 6, rng);
  const auto s = cf::cell_forward(w, step_input(X1, 0), h0, std::uint64_t(12));
  o.draw = 12;
  const auto whole = cf::dynamic_rnn(w, X1, o, &h0);
  CHECK(bitwise(s.output, step_input(whole.outputs, 0)));
  CHECK(bitwise(s.state, whole.final_state));
  CHECK_FALSE(bitwise(s.output, w.cell()(step_input(X1, 0), h0).output));
}

TEST_CASE("DropoutWrapper: bad keep probabilities, seeds and cells are ValueErrors", "[dropout][errors]") {
  cf::Rng rng(18);
  const cf::GRUCell<double> g(3, 4, rng);
  using W = cf::DropoutWrapper<cf::GRUCell<double>>;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {0.0, -0.5, 1.5, nan}) {
    INFO(bad);
    CHECK_THROWS_WITH(W(g, bad), Catch::Contains("input_keep_prob must be in (0, 1]"));
    CHECK_THROWS_WITH(W(g, 1.0, bad), Catch::Contains("output_keep_prob must be in (0, 1]"));
    CHECK_THROWS_AS(W(g, 1.0, 1.0, bad), cf::ValueError);
    CHECK_THROWS_WITH(W(g, 1.0, 1.0, bad), Catch::Contains("state_keep_prob must be in (0, 1]"));
  }
  CHECK_THROWS_AS(cf::DropoutWrapper<cf::GRUCell<float>>(cf::GRUCell<float>(3, 4, rng), 1e-50), cf::ValueError);
  CHECK_THROWS_WITH(W(g, 1.0, 1.0, 1.0, false, std::uint64_t(1) << 53), Catch::Contains("seed must be below 2^53"));
  CHECK_NOTHROW(W(g, 1.0, 1.0, 1.0, false, (std::uint64_t(1) << 53) - 1));
  // A cell without droppable_state takes input and output dropout, not state dropout.
  const mycells::ElmanCell<double> elman(3, 4, rng);
  CHECK_NOTHROW(cf::DropoutWrapper<mycells::ElmanCell<double>>(elman, 0.5, 0.5));
  CHECK_THROWS_WITH(cf::DropoutWrapper<mycells::ElmanCell<double>>(elman, 1.0, 1.0, 0.5),
                    Catch::Contains("droppable_state"));
  // Seeds left unset differ.
  CHECK(W(g, 0.5).seed() != W(g, 0.5).seed());
}

TEST_CASE("DropoutWrapper in float", "[dropout][float]") {
  cf::Rng rng(19);
  cf::DropoutWrapper<cf::BasicLSTMCell<float>> w(cf::BasicLSTMCell<float>(3, 4, rng), 0.5f, 0.5f, 0.5f, true, 2);
  cf::Tensor3<float> X = random_tensor<float>(2, 3, 3, rng);
  cf::RNNOptions o;
  o.training = true;
  o.draw = 3;
  auto r = cf::dynamic_rnn(w, X, o);
  const auto& m = r.tape.split.slice(0).tape.output_mask;
  bool rule = true;
  for (Index j = 0; j < 4; ++j)
    rule = rule && m(0, j) == (cf::keyed_uniform01<float>(3 * 2 + 2, 3, 0, std::uint64_t(j)) < 0.5f ? 1.0f : 0.0f);
  CHECK(rule);
  cf::Tensor3<float> dY = random_tensor<float>(2, 3, 4, rng);
  auto g = cf::dynamic_rnn_backward(w, r, &dY);
  CHECK(max_abs(g.d_inputs) > 0);
}

TEST_CASE("Model layers with dropout: training drops, inference does not, the architecture keeps it",
          "[dropout][model]") {
  cf::Rng rng(20);
  const std::vector<cf::CellConfig> layers{cf::with_dropout(cf::GRU(6), 0.5),
                                           cf::with_dropout(cf::BasicLSTM(5), 0.7, 0.9, 0.8, true)};
  cf::Model<double> model(3, layers, 4, rng);
  const cf::ModelConfig& c = model.config();
  CHECK(c.cells[0].kind == "GRUCell");
  CHECK(c.cells[0].get("output_keep_prob") == 0.5);
  CHECK(c.cells[0].get("dropout_seed") == 0);  // the layer's index
  CHECK(c.cells[1].get("dropout_seed") == 1);
  CHECK(c.cells[1].get("variational_recurrent") == 1);
  REQUIRE(model.rnn().layer(0).as<cf::DropoutWrapper<cf::GRUCell<double>>>() != nullptr);
  REQUIRE(model.rnn().layer(1).as<cf::DropoutWrapper<cf::BasicLSTMCell<double>>>() != nullptr);
  const std::string text = cf::to_text(c);
  CHECK(text.find("cell GRUCell num_units=6 dropout_seed=0 output_keep_prob=0.5") != std::string::npos);
  CHECK(cf::differences(cf::model_config_from_text(text), c).empty());

  // The same weights without dropout: inference is bitwise the same, training is not.
  cf::Rng rng2(20);
  cf::Model<double> plain(3, {cf::GRU(6), cf::BasicLSTM(5)}, 4, rng2);
  REQUIRE(plain.variables().size() == model.variables().size());
  for (std::size_t k = 0; k < plain.variables().size(); ++k)
    CHECK(*plain.variables()[k].value == *model.variables()[k].value);  // the same draws
  const Ten X = random_tensor<double>(6, 4, 3, rng);
  const std::vector<int> y{0, 1, 2, 3, 0, 1};
  CHECK(bitwise(model.logits(X), plain.logits(X)));
  cf::Model<double> a = model, b = model, p = plain;
  cf::GradientDescentOptimizer<double> sgd(0.1);
  cf::TrainOptions o;
  o.batch_threads = 1;
  o.draw = 5;
  const double la = a.train_step(X, y, sgd, o).loss;
  const double lb = b.train_step(X, y, sgd, o).loss;  // the same draw: the same units, bitwise
  CHECK(la == lb);
  CHECK(bitwise(a.logits(X), b.logits(X)));
  CHECK(la != p.train_step(X, y, sgd, o).loss);
  o.draw = 6;
  cf::Model<double> d = model;
  CHECK(d.train_step(X, y, sgd, o).loss != la);
  // Unset draw: the model's step count, so a copy stepping in the same order drops the same units.
  o.draw.reset();
  cf::Model<double> e = model, f = model;
  CHECK(e.train_step(X, y, sgd, o).loss == f.train_step(X, y, sgd, o).loss);
  o.batch_threads = 3;  // and whatever batch_threads is
  cf::Model<double> g = model;
  g.train_step(X, y, sgd, o);
  CHECK(rel_diff(g.logits(X), e.logits(X)) <= 1e-12);

  // load_model rebuilds the wrappers from the file.
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  model.save(path);
  const cf::Model<double> loaded = cf::load_model<double>(path);
  CHECK(cf::differences(loaded.config(), model.config()).empty());
  CHECK(loaded.rnn().layer(1).as<cf::DropoutWrapper<cf::BasicLSTMCell<double>>>() != nullptr);
  CHECK(bitwise(loaded.logits(X), model.logits(X)));
  cf::Model<double> h = loaded, i = model;
  o.draw = 9;
  CHECK(h.train_step(X, y, sgd, o).loss == i.train_step(X, y, sgd, o).loss);

  // A model built from wrapped cells records the same flat layers.
  cf::Rng rng3(21);
  cf::Model<double> by_hand(cf::MultiRNNCell<double>(cf::DropoutWrapper<cf::GRUCell<double>>(
                                cf::GRUCell<double>(3, 6, rng3), 1.0, 0.5, 1.0, false, 0)),
                            cf::Dense<double>(6, 4, rng3));
  CHECK(by_hand.config().cells[0].kind == "GRUCell");
  CHECK(by_hand.config().cells[0].get("output_keep_prob") == 0.5);
  CHECK(cf::model_config_from_text(cf::to_text(by_hand.config())).cells[0].get("dropout_seed") == 0);

  // Bad keep probabilities in a layer.
  for (double bad : {0.0, -1.0, 2.0, std::numeric_limits<double>::quiet_NaN()})
    CHECK_THROWS_WITH(cf::Model<double>(3, {cf::with_dropout(cf::GRU(4), bad)}, 2, rng),
                      Catch::Contains("output_keep_prob") && Catch::Contains("GRUCell"));
}

TEST_CASE("fit with dropout layers: a resumed run drops the units the uninterrupted one does", "[dropout][model]") {
  cf::Rng data_rng(22);
  cf::data::Dataset<double> train;
  train.images = random_tensor<double>(24, 5, 3, data_rng);
  for (int i = 0; i < 24; ++i) train.labels.push_back(i % 3);
  cf::FitOptions fo;
  fo.batch_size = 8;
  fo.seed = 3;
  fo.batch_threads = 1;
  fo.verbose = false;
  const auto make = [] {
    cf::Rng rng(23);
    return cf::Model<double>(3, {cf::with_dropout(cf::GRU(5), 0.6, 0.8)}, 3, rng);
  };
  cf::Model<double> whole = make();
  cf::AdamOptimizer<double> adam_whole(0.05);
  fo.epochs = 2;
  cf::fit(whole, adam_whole, train, fo);

  cf::Model<double> first = make();
  cf::AdamOptimizer<double> adam_first(0.05);
  fo.epochs = 1;
  cf::fit(first, adam_first, train, fo);
  TempDir dir;
  first.save(dir.file("epoch1.ckpt"), &adam_first);
  cf::AdamOptimizer<double> adam_resumed(0.05);
  cf::Model<double> resumed = cf::load_model<double>(dir.file("epoch1.ckpt"), &adam_resumed);
  fo.initial_epoch = 1;
  cf::fit(resumed, adam_resumed, train, fo);
  bool same = true;
  for (std::size_t k = 0; k < whole.variables().size(); ++k)
    same = same && *whole.variables()[k].value == *resumed.variables()[k].value;
  CHECK(same);
}

TEST_CASE("a dropout-wrapped layer-norm LSTM in a mixed stack with a residual BasicRNNCell", "[dropout][gradcheck]") {
  // The composition: DropoutWrapper(LayerNormBasicLSTMCell with its own recurrent
  // dropout), a GRUCell, and ResidualWrapper(BasicRNNCell(relu)) in one MultiRNNCell; gradients
  // by central differences at a fixed draw, and inference dropping nothing.
  cf::Rng rng(19);
  cf::LayerNormBasicLSTMOptions<double> ln;
  ln.dropout_keep_prob = 0.75;
  ln.dropout_prob_seed = 12;
  using LN = cf::LayerNormBasicLSTMCell<double>;
  cf::MultiRNNCell<double> stack(cf::DropoutWrapper<LN>(LN(3, 4, ln, rng), 0.8, 0.7, 1.0, false, 9),
                                 cf::GRUCell<double>(4, 5, rng),
                                 cf::ResidualWrapper<cf::BasicRNNCell<double>>(
                                     cf::BasicRNNCell<double>(5, 5, rng, cf::Activation<double>::tanh())));
  randomize_variables(stack, rng);
  check_rnn_gradients(stack, "MultiRNNCell(DropoutWrapper(LayerNormBasicLSTMCell), GRUCell, ResidualWrapper)", 3, rng,
                      {}, 43);
  const Ten X = random_tensor<double>(3, 4, 3, rng);
  cf::RNNOptions train, infer;
  train.training = true;
  train.draw = 2;
  infer.training = false;
  const auto dropped = cf::dynamic_rnn(stack, X, train);
  const auto kept = cf::dynamic_rnn(stack, X, infer);
  CHECK(max_abs_diff(dropped.outputs, kept.outputs) > 1e-3);  // training drops
  cf::RNNStream<cf::MultiRNNCell<double>> stream(stack, 3);
  CHECK(bitwise_equal(stream.feed(X), kept.outputs));  // inference drops nothing, streamed or not
}

}  // namespace test_dropout_wrapper
