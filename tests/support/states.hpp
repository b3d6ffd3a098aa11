// States as lists of matrices, for tests that treat every cell kind alike: the parts of a state in
// TF's nest.flatten order (c before h, layer 0 first), random states, bitwise and approximate
// comparison, one example's row; and a module's variables randomised or read out in TF order.
#pragma once

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/test_util.hpp"

namespace cellflow_test {

template <class T>
std::vector<cf::Matrix<T>*> state_parts(cf::Matrix<T>& s) {
  return {&s};
}
template <class T>
std::vector<cf::Matrix<T>*> state_parts(cf::LSTMStateTuple<T>& s) {
  return {&s.c, &s.h};
}
template <class T>
std::vector<cf::Matrix<T>*> state_parts(cf::CellState<T>& s) {
  if (s.is_lstm()) return {&s.c(), &s.h()};
  return {&s.h()};
}
template <class T>
std::vector<cf::Matrix<T>*> state_parts(std::vector<cf::CellState<T>>& s) {
  std::vector<cf::Matrix<T>*> p;
  for (auto& layer : s)
    for (auto* m : state_parts(layer)) p.push_back(m);
  return p;
}

/// The parts of a const state (read only).
template <class S>
auto const_state_parts(const S& s) {
  const auto p = state_parts(const_cast<S&>(s));
  using M = std::remove_pointer_t<typename decltype(p)::value_type>;
  return std::vector<const M*>(p.begin(), p.end());
}

/// Every part of `s` drawn from U[lo, hi), part after part.
template <class S, class T = double>
void randomize_state(S& s, cf::Rng& rng, T lo = T(-0.8), T hi = T(0.8)) {
  for (auto* p : state_parts(s)) {
    using Scalar = typename std::decay_t<decltype(*p)>::Scalar;
    *p = random_matrix<Scalar>(p->rows(), p->cols(), rng, static_cast<Scalar>(lo), static_cast<Scalar>(hi));
  }
}

/// Same structure and every part bitwise equal.
template <class S>
bool same_state(const S& a, const S& b) {
  const auto pa = const_state_parts(a), pb = const_state_parts(b);
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i)
    if (!bitwise_equal(*pa[i], *pb[i])) return false;
  return true;
}

/// The largest |a - b| over all parts (infinity when the structures or shapes differ).
template <class S>
double state_diff(const S& a, const S& b) {
  const auto pa = const_state_parts(a), pb = const_state_parts(b);
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (pa.size() != pb.size()) return inf;
  double d = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) d = std::max(d, max_diff(*pa[i], *pb[i]));
  return d;
}

/// Row b of every part of a state: the state of example b alone (a batch of one).
template <class S>
S state_row(const S& s, Index b) {
  S r = s;
  for (auto* p : state_parts(r)) *p = p->row(b).eval();
  return r;
}

/// Every variable of `module` (kernels, biases, peephole diagonals, projections) drawn from
/// U[-scale, scale), in TF's creation order: non-zero biases and peepholes, unlike the default
/// initialisation.
template <class Module>
void randomize_variables(Module& module, cf::Rng& rng, double scale = 0.8) {
  using T = typename Module::Scalar;
  cf::VariableList<T> vars;
  vars.add(module);
  for (auto& v : vars)
    *v.value = random_matrix<T>(v.value->rows(), v.value->cols(), rng, static_cast<T>(-scale), static_cast<T>(scale));
}

/// Copies of the gradients (or values) of every variable of `module`, in TF's creation order.
template <class Module>
std::vector<cf::Matrix<typename Module::Scalar>> variable_grads(Module& module) {
  cf::VariableList<typename Module::Scalar> vars;
  vars.add(module);
  std::vector<cf::Matrix<typename Module::Scalar>> g;
  for (auto& v : vars) g.push_back(*v.grad);
  return g;
}
template <class Module>
std::vector<cf::Matrix<typename Module::Scalar>> variable_values(Module& module) {
  cf::VariableList<typename Module::Scalar> vars;
  vars.add(module);
  std::vector<cf::Matrix<typename Module::Scalar>> g;
  for (auto& v : vars) g.push_back(*v.value);
  return g;
}

}  // namespace cellflow_test
