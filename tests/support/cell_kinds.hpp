// Every kind of cell with random weights, for the identity tests that run one check over all of
// them (float and double): the single cells, a mixed 3-layer stack, and TF's dynamic_rnn written
// out as a loop of single steps.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace cellflow_test {

constexpr Index kKindsDepth = 3;  // input depth of every cell below

/// Tolerance for results computed in a different association order (float rounding).
template <class T>
constexpr double rounding_tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
cf::LSTMOptions<T> peephole_options() {
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  return o;
}

/// peepholes, cell_clip 0.6, num_proj 3, proj_clip 0.5, forget_bias 0.8.
template <class T>
cf::LSTMOptions<T> all_lstm_options() {
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
cf::MultiRNNCell<T> mixed_kinds_stack(cf::Rng& rng) {
  cf::LSTMOptions<T> o = peephole_options<T>();
  o.num_proj = 3;
  cf::LSTMCell<T> l0(kKindsDepth, 4, o, rng);
  cf::GRUCell<T> l1(3, 5, rng);
  cf::BasicLSTMCell<T> l2(5, 4, rng, T(0.7));
  return cf::MultiRNNCell<T>(std::move(l0), std::move(l1), std::move(l2));
}

/// Calls f(cell, name) for each single cell kind, random weights (biases and peepholes too).
template <class T, class F>
void for_each_single_cell(F&& f) {
  cf::Rng rng(2024);
  {
    cf::BasicLSTMCell<T> c(kKindsDepth, 4, rng, T(0.7));
    randomize_variables(c, rng);
    f(c, std::string("BasicLSTMCell"));
  }
  {
    cf::LSTMCell<T> c(kKindsDepth, 4, peephole_options<T>(), rng);
    randomize_variables(c, rng);
    f(c, std::string("LSTMCell(peepholes)"));
  }
  {
    cf::LSTMCell<T> c(kKindsDepth, 4, all_lstm_options<T>(), rng);
    randomize_variables(c, rng, 1.2);
    f(c, std::string("LSTMCell(peepholes, cell_clip, num_proj, proj_clip)"));
  }
  {
    cf::GRUCell<T> c(kKindsDepth, 4, rng);
    randomize_variables(c, rng);
    f(c, std::string("GRUCell"));
  }
  {
    cf::CudnnCompatibleGRUCell<T> c(kKindsDepth, 4, rng);
    randomize_variables(c, rng);
    f(c, std::string("CudnnCompatibleGRUCell"));
  }
}

/// Every single cell kind, then the mixed 3-layer stack.
template <class T, class F>
void for_each_kind(F&& f) {
  for_each_single_cell<T>(f);
  cf::Rng rng(77);
  auto multi = mixed_kinds_stack<T>(rng);
  randomize_variables(multi, rng);
  f(multi, std::string("MultiRNNCell(LSTMCell(peep, proj), GRUCell, BasicLSTMCell)"));
}

/// TF's dynamic_rnn written out: out_t, new = cell(x_t, state); where(t >= len, 0 / old state).
/// Returns the outputs [B, T, O] and the state after every step (states[t] after step t).
template <class Cell>
std::pair<cf::Tensor3<typename Cell::Scalar>, std::vector<typename Cell::State>> step_loop(
    const Cell& cell, const cf::Tensor3<typename Cell::Scalar>& X, const typename Cell::State& s0,
    const std::vector<Index>& lens) {
  using T = typename Cell::Scalar;
  const Index B = X.dimension(0), Tn = X.dimension(1);
  cf::Tensor3<T> out(B, Tn, cell.output_size());
  out.setZero();
  std::vector<typename Cell::State> states;
  typename Cell::State s = s0;
  for (Index t = 0; t < Tn; ++t) {
    const auto step = cell(step_input(X, t), s);
    auto sp = state_parts(s);
    const auto np = const_state_parts(step.state);
    for (Index b = 0; b < B; ++b) {
      if (t >= lens[static_cast<std::size_t>(b)]) continue;
      for (Index o = 0; o < cell.output_size(); ++o) out(b, t, o) = step.output(b, o);
      for (std::size_t i = 0; i < sp.size(); ++i) sp[i]->row(b) = np[i]->row(b);
    }
    states.push_back(s);
  }
  return {out, states};
}

}  // namespace cellflow_test
