// Validation of dynamic_rnn's per-example sequence_length.
#pragma once

#include <algorithm>
#include <optional>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {
namespace detail {

/// Checks sequence_length against the batch and time sizes; returns the number of steps that
/// must actually run (max length, or T without lengths).
inline Index checked_steps(const std::optional<std::vector<Index>>& lengths, Index batch, Index time, const char* op) {
  if (!lengths) return time;
  if (static_cast<Index>(lengths->size()) != batch)
    throw ShapeError(concat(op, ": sequence_length has ", lengths->size(), " entries, expected one per example (batch ",
                            batch, ")"));
  Index steps = 0;
  for (std::size_t b = 0; b < lengths->size(); ++b) {
    const Index len = (*lengths)[b];
    if (len < 0 || len > time)
      throw ValueError(concat(op, ": sequence_length[", b, "] = ", len, " is outside [0, ", time, "] (the inputs have ",
                              time, " time steps)"));
    steps = std::max(steps, len);
  }
  return steps;
}

}  // namespace detail
}  // namespace cellflow
