// Building the [batch, time, depth] tensors dynamic_rnn takes, and taking them apart, without
// element loops in user code:
//
//   auto x = cf::make_tensor<float>({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}});  // [2, 2, 2]
//   auto batch = cf::pad_sequences(sequences);   // one [steps_b, depth] matrix per example,
//   opts.sequence_length = batch.lengths;        // padded with zeros to the longest
//   auto y = cf::dynamic_rnn(cell, batch.inputs, opts);
//   cf::Matrix<float> x_t = cf::time_step(x, t);     // [batch, depth] at step t (for streams)
//   cf::Matrix<float> seq = cf::example_of(x, b);    // [time, depth] of example b
//
// Every tensor here is row-major and batch-major, like Tensor3. Shapes that do not fit are a
// ShapeError naming the first offending example or step and both sizes.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// A batch of sequences of different lengths: `inputs` is [batch, time, depth], zero past each
/// example's length, and `lengths[b]` is example b's number of steps (dynamic_rnn's
/// sequence_length).
template <class T>
struct PaddedBatch {
  Tensor3<T> inputs;           ///< [batch, time, depth], zero past each example's length
  std::vector<Index> lengths;  ///< lengths[b]: example b's number of steps (dynamic_rnn's sequence_length)
};

/// [batch, time, depth] from nested vectors, values[b][t][d], converted to T. Every example must
/// have the same number of steps and every step the same depth.
template <class T, class U>
Tensor3<T> make_tensor(const std::vector<std::vector<std::vector<U>>>& values) {
  static_assert(std::is_arithmetic_v<U>, "make_tensor: the values must be numbers");
  const Index batch = static_cast<Index>(values.size());
  const Index time = batch ? static_cast<Index>(values[0].size()) : 0;
  const Index depth = time ? static_cast<Index>(values[0][0].size()) : 0;
  Tensor3<T> x(batch, time, depth);
  for (Index b = 0; b < batch; ++b) {
    const auto& example = values[static_cast<std::size_t>(b)];
    if (static_cast<Index>(example.size()) != time)
      throw ShapeError(detail::concat("make_tensor: example ", b, " has ", example.size(), " steps, example 0 has ",
                                      time, "; pad_sequences takes sequences of different lengths"));
    for (Index t = 0; t < time; ++t) {
      const auto& step = example[static_cast<std::size_t>(t)];
      if (static_cast<Index>(step.size()) != depth)
        throw ShapeError(detail::concat("make_tensor: example ", b, ", step ", t, " has depth ", step.size(),
                                        ", expected ", depth, " (that of example 0, step 0)"));
      for (Index d = 0; d < depth; ++d) x(b, t, d) = static_cast<T>(step[static_cast<std::size_t>(d)]);
    }
  }
  return x;
}

/// Sequences of different lengths as one padded batch: sequences[b] is example b's [steps_b,
/// depth] matrix (any Eigen matrix expression type, any storage order). The batch has `time`
/// steps (default: the longest sequence; a larger value pads further, a smaller one is an error);
/// steps past an example's length are zero. Every sequence must have the same depth.
template <class Derived>
PaddedBatch<typename Derived::Scalar> pad_sequences(const std::vector<Derived>& sequences, Index time = -1) {
  using T = typename Derived::Scalar;
  static_assert(std::is_base_of_v<Eigen::DenseBase<Derived>, Derived>,
                "pad_sequences takes a std::vector of Eigen matrices, one [steps, depth] per example");
  const Index batch = static_cast<Index>(sequences.size());
  const Index depth = batch ? sequences[0].cols() : 0;
  Index longest = 0;
  for (Index b = 0; b < batch; ++b) {
    const auto& s = sequences[static_cast<std::size_t>(b)];
    if (s.cols() != depth)
      throw ShapeError(detail::concat("pad_sequences: sequence ", b, " is [", s.rows(), ", ", s.cols(),
                                      "], expected depth ", depth, " (that of sequence 0)"));
    longest = std::max(longest, static_cast<Index>(s.rows()));
  }
  if (time < 0) time = longest;
  if (time < longest)
    throw ShapeError(
        detail::concat("pad_sequences: time ", time, " is shorter than the longest sequence (", longest, " steps)"));
  PaddedBatch<T> out;
  out.inputs = Tensor3<T>(batch, time, depth);
  out.inputs.setZero();
  out.lengths.resize(static_cast<std::size_t>(batch));
  for (Index b = 0; b < batch; ++b) {
    const auto& s = sequences[static_cast<std::size_t>(b)];
    out.lengths[static_cast<std::size_t>(b)] = s.rows();
    for (Index t = 0; t < s.rows(); ++t)
      for (Index d = 0; d < depth; ++d) out.inputs(b, t, d) = s(t, d);
  }
  return out;
}

/// [batch, time, depth] from one [batch, depth] matrix per time step (the inputs a loop over
/// time produced, or a stream's steps). Every step must have the same shape.
template <class Derived>
Tensor3<typename Derived::Scalar> stack_steps(const std::vector<Derived>& steps) {
  using T = typename Derived::Scalar;
  static_assert(std::is_base_of_v<Eigen::DenseBase<Derived>, Derived>,
                "stack_steps takes a std::vector of Eigen matrices, one [batch, depth] per time step");
  const Index time = static_cast<Index>(steps.size());
  const Index batch = time ? steps[0].rows() : 0, depth = time ? steps[0].cols() : 0;
  Tensor3<T> x(batch, time, depth);
  for (Index t = 0; t < time; ++t) {
    const auto& s = steps[static_cast<std::size_t>(t)];
    if (s.rows() != batch || s.cols() != depth)
      throw ShapeError(detail::concat("stack_steps: step ", t, " is [", s.rows(), ", ", s.cols(), "], expected [",
                                      batch, ", ", depth, "] (that of step 0)"));
    for (Index b = 0; b < batch; ++b)
      for (Index d = 0; d < depth; ++d) x(b, t, d) = s(b, d);
  }
  return x;
}

/// Step t of a batch-major [batch, time, depth] tensor: a [batch, depth] matrix (what
/// RNNStream::step and cell(x, state) take).
template <class T>
Matrix<T> time_step(const Tensor3<T>& x, Index t) {
  if (t < 0 || t >= x.dimension(1))
    throw ValueError(detail::concat("time_step: step ", t, " is outside [0, ", x.dimension(1), ") of a [",
                                    x.dimension(0), ", ", x.dimension(1), ", ", x.dimension(2), "] tensor"));
  Matrix<T> out(x.dimension(0), x.dimension(2));
  for (Index b = 0; b < x.dimension(0); ++b)
    for (Index d = 0; d < x.dimension(2); ++d) out(b, d) = x(b, t, d);
  return out;
}

/// Example b of a batch-major [batch, time, depth] tensor: a [time, depth] matrix.
template <class T>
Matrix<T> example_of(const Tensor3<T>& x, Index b) {
  if (b < 0 || b >= x.dimension(0))
    throw ValueError(detail::concat("example_of: example ", b, " is outside [0, ", x.dimension(0), ") of a [",
                                    x.dimension(0), ", ", x.dimension(1), ", ", x.dimension(2), "] tensor"));
  // Row-major [batch, time, depth]: example b is time * depth contiguous values.
  return Eigen::Map<const Matrix<T>>(x.data() + b * x.dimension(1) * x.dimension(2), x.dimension(1), x.dimension(2));
}

}  // namespace cellflow
