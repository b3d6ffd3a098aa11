// Trainable variables: a value and its gradient, both in TensorFlow's layout, reachable by
// TensorFlow's name. Optimizers, checkpoints, weight import and gradient checks all go through
// VariableList and never learn about cell types.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// A variable owned by a cell or layer. `value` and `grad` are row-major; a TF 1-D variable of
/// length n is stored as a 1 x n matrix (a row, so that it broadcasts over the rows of a batch)
/// and reported with shape {n}. The owner checks `value` and `grad` against the shape it expects
/// every time it uses them, so a matrix of the wrong shape written into them is a ShapeError at
/// the next use, never a write out of bounds.
template <class T>
struct Parameter {
  Matrix<T> value;           ///< [rows, cols], or 1 x n for a 1-D [n] variable
  Matrix<T> grad;            ///< the gradient, the value's shape: backward passes add (+=) into it
  std::vector<Index> shape;  ///< TensorFlow's shape: {rows, cols} or {n}

  /// An empty variable: no shape, 0 x 0 value and gradient.
  Parameter() = default;
  /// A 2-D [rows, cols] variable, zero-filled.
  Parameter(Index rows, Index cols)
      : value(Matrix<T>::Zero(rows, cols)), grad(Matrix<T>::Zero(rows, cols)), shape{rows, cols} {}
  /// A 1-D [n] variable, zero-filled.
  explicit Parameter(Index n) : value(Matrix<T>::Zero(1, n)), grad(Matrix<T>::Zero(1, n)), shape{n} {}

  /// Number of scalars of the value (rows * cols, or n).
  Index size() const { return value.size(); }
  /// Row view of a 1-D variable.
  auto vec() const { return value.row(0); }

  /// Sets the gradient to zero (keeping its shape).
  void zero_grad() { grad.setZero(value.rows(), value.cols()); }

  /// TF's default (glorot_uniform) initializer with TF's fans for this shape.
  void init_glorot(Rng& rng) {
    if (shape.size() == 1)
      glorot_uniform(value, shape[0], shape[0], rng);
    else
      glorot_uniform(value, shape[0], shape[1], rng);
  }
};

namespace detail {

/// Throws ShapeError unless `p`'s value (and its gradient, when `with_grad`) is rows x cols:
/// "<owner>: variable '<name>' is [r, c], expected [rows, cols]".
template <class T>
void check_parameter(const Parameter<T>& p, Index rows, Index cols, const std::string& owner, const char* name,
                     bool with_grad) {
  const auto shape_of = [](const Matrix<T>& m) { return concat("[", m.rows(), ", ", m.cols(), "]"); };
  if (p.value.rows() != rows || p.value.cols() != cols)
    throw ShapeError(concat(owner, ": variable '", name, "' holds a value of ", shape_of(p.value), ", expected [", rows,
                            ", ", cols, "] (was a matrix of another shape written into it?)"));
  if (with_grad && (p.grad.rows() != rows || p.grad.cols() != cols))
    throw ShapeError(concat(owner, ": the gradient of variable '", name, "' is ", shape_of(p.grad), ", expected [",
                            rows, ", ", cols, "]"));
}

/// A 1-D variable [n] from a row or column vector of n values (or a 1 x n / n x 1 matrix).
template <class T, class Derived>
Parameter<T> vector_parameter(const Eigen::MatrixBase<Derived>& v, const std::string& owner, const char* name) {
  if (v.rows() != 1 && v.cols() != 1)
    throw ShapeError(concat(owner, ": '", name, "' must be a vector, given a ", v.rows(), "x", v.cols(), " matrix"));
  Parameter<T> p(v.size());
  for (Index k = 0; k < v.size(); ++k) p.value(0, k) = static_cast<T>(v(v.rows() == 1 ? 0 : k, v.rows() == 1 ? k : 0));
  return p;
}

/// A 2-D variable [rows, cols] holding `m`.
template <class T, class Derived>
Parameter<T> matrix_parameter(const Eigen::MatrixBase<Derived>& m) {
  Parameter<T> p(m.rows(), m.cols());
  p.value = m.template cast<T>();
  return p;
}

}  // namespace detail

/// A non-owning handle to one variable: its full TensorFlow name, shape, value and gradient.
template <class T>
struct VariableRef {
  std::string name;            ///< the full TF name, e.g. "rnn/multi_rnn_cell/cell_0/lstm_cell/kernel"
  std::vector<Index> shape;    ///< TensorFlow's shape: {rows, cols} or {n}
  Matrix<T>* value = nullptr;  ///< the owner's value (a [n] variable is stored 1 x n)
  Matrix<T>* grad = nullptr;   ///< the owner's gradient, the value's shape

  /// Number of scalars of the value.
  Index size() const { return value->size(); }
};

/// "[4, 600]" for error messages.
inline std::string shape_string(const std::vector<Index>& shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

/// The ordered list of a model's variables. The order is the order in which modules were added
/// and, inside a module, TensorFlow's creation order; optimizer state is keyed by this order.
/// The list points into the modules: they must outlive it and must not be moved while it is used.
template <class T>
class VariableList {
 public:
  /// An empty list.
  VariableList() = default;

  /// Adds every variable of `module` (a cell, a MultiRNNCell or a layer). `scope` is prepended
  /// like a TF variable_scope: add(multi, "rnn") gives "rnn/multi_rnn_cell/cell_0/...".
  template <class Module>
  VariableList& add(Module& module, const std::string& scope = "") {
    module.for_each_variable(scope, [this](const std::string& name, Parameter<T>& p) { add_one(name, p); });
    return *this;
  }

  /// Adds one variable under an explicit name. Its shape must describe its value; a variable
  /// given without a gradient (an empty `grad`) gets a zero gradient of the value's shape.
  VariableList& add_one(const std::string& name, Parameter<T>& p) {
    if (find(name) != nullptr) throw ValueError("VariableList: duplicate variable name '" + name + "'");
    // The storage of a TF shape: [rows, cols] is rows x cols, [n] is 1 x n.
    const bool fits = (p.shape.size() == 2 && p.value.rows() == p.shape[0] && p.value.cols() == p.shape[1]) ||
                      (p.shape.size() == 1 && p.value.rows() == 1 && p.value.cols() == p.shape[0]);
    if (!fits)
      throw ShapeError(detail::concat("VariableList::add_one('", name, "'): shape ", shape_string(p.shape),
                                      " does not describe its ", p.value.rows(), "x", p.value.cols(),
                                      " value ([rows, cols] is stored rows x cols, [n] as 1 x n)"));
    if (p.grad.size() == 0 && p.value.size() != 0) p.grad.setZero(p.value.rows(), p.value.cols());
    vars_.push_back(VariableRef<T>{name, p.shape, &p.value, &p.grad});
    return *this;
  }

  /// Sets every gradient to zero. Backward passes accumulate (+=) into gradients; this is the one
  /// place where they are cleared, once per training step.
  void zero_grad() {
    for (auto& v : vars_) v.grad->setZero();
  }

  /// The variable with this exact TF name, or nullptr.
  VariableRef<T>* find(const std::string& name) {
    auto it = std::find_if(vars_.begin(), vars_.end(), [&](const VariableRef<T>& v) { return v.name == name; });
    return it == vars_.end() ? nullptr : &*it;
  }
  /// The variable with this exact TF name, or nullptr (const list).
  const VariableRef<T>* find(const std::string& name) const { return const_cast<VariableList*>(this)->find(name); }

  /// The variable with this exact TF name; throws ValueError listing the known names if absent.
  VariableRef<T>& at(const std::string& name) {
    if (auto* v = find(name)) return *v;
    std::string known;
    for (const auto& v : vars_) known += "\n  " + v.name;
    throw ValueError("VariableList: no variable named '" + name + "'; the model has:" + known);
  }
  /// The variable with this exact TF name; ValueError listing the known names if absent (const list).
  const VariableRef<T>& at(const std::string& name) const { return const_cast<VariableList*>(this)->at(name); }
  /// Same as at(name): ValueError when there is no such variable.
  VariableRef<T>& operator[](const std::string& name) { return at(name); }
  /// Same as at(name) (const list).
  const VariableRef<T>& operator[](const std::string& name) const { return at(name); }

  /// Copies `value` (row-major, TF layout) into the named variable after checking its shape. A
  /// 1-D variable [n] also takes a row or a column vector of n values.
  template <class Derived>
  void assign(const std::string& name, const Eigen::MatrixBase<Derived>& value) {
    auto& v = at(name);
    if (v.shape.size() == 1 && (value.rows() == 1 || value.cols() == 1) && value.size() == v.value->size()) {
      for (Index k = 0; k < value.size(); ++k)
        (*v.value)(0, k) = static_cast<T>(value(value.rows() == 1 ? 0 : k, value.rows() == 1 ? k : 0));
      return;
    }
    if (value.rows() != v.value->rows() || value.cols() != v.value->cols())
      throw ShapeError(detail::concat("VariableList::assign('", name, "'): expected ", shape_string(v.shape),
                                      " stored as ", v.value->rows(), "x", v.value->cols(), ", given ", value.rows(),
                                      "x", value.cols()));
    *v.value = value.template cast<T>();
  }

  /// Copies the values of a std::vector into a 1-D variable [n] (n values), or into a 2-D
  /// variable in row-major order (rows * cols values).
  void assign(const std::string& name, const std::vector<T>& values) {
    auto& v = at(name);
    if (static_cast<Index>(values.size()) != v.value->size())
      throw ShapeError(detail::concat("VariableList::assign('", name, "'): expected ", v.value->size(),
                                      " values for shape ", shape_string(v.shape), ", given ", values.size()));
    std::copy(values.begin(), values.end(), v.value->data());
  }

  /// Number of variables.
  std::size_t size() const { return vars_.size(); }
  /// Whether the list holds no variable.
  bool empty() const { return vars_.empty(); }
  /// Variable k in list order; unchecked, as std::vector's operator[].
  VariableRef<T>& operator[](std::size_t k) { return vars_[k]; }
  /// Variable k in list order (const list); unchecked.
  const VariableRef<T>& operator[](std::size_t k) const { return vars_[k]; }
  /// The variables (VariableRef) in list order: `for (auto& v : vars)`.
  auto begin() { return vars_.begin(); }
  /// Past the last variable.
  auto end() { return vars_.end(); }
  /// The variables in list order (const list).
  auto begin() const { return vars_.begin(); }
  /// Past the last variable (const list).
  auto end() const { return vars_.end(); }

  /// Total number of scalars over all variables.
  Index num_scalars() const {
    Index n = 0;
    for (const auto& v : vars_) n += v.size();
    return n;
  }

 private:
  std::vector<VariableRef<T>> vars_;
};

namespace detail {
inline std::string join_scope(const std::string& scope, const std::string& name) {
  return scope.empty() ? name : scope + "/" + name;
}
}  // namespace detail

}  // namespace cellflow
