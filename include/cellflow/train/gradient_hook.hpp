// GradientHook: what makes Model::train_step data-parallel. Several processes (ranks) each run
// the step on their own part of one global batch; the hook combines their gradients into the
// global batch's during the backward pass, so that every rank then applies the same update that
// one process would apply to the whole batch. cellflow/distributed/mpi.hpp implements it over
// MPI (mpi::GradientAllreduce); the core library knows only this interface and needs no MPI.
//
// What train_step does with a hook (TrainOptions::gradient_hook):
//   forward on the local batch; loss and correct predictions summed over it
//   N = hook.begin_backward(local examples, loss sum, correct)   // examples in the global batch
//   d logits = (softmax - one_hot) / N                             // the global mean's gradient
//   head backward                       -> hook.gradients_ready(head's variables)
//   layer L-1, ..., layer 0 backward    -> hook.gradients_ready(that layer's variables)
//   hook.end_backward(stats)            // every gradient is now the global batch's (on every rank)
//   the non-finite check, clipping and the optimizer's update, identical on every rank
//
// Each rank's gradients are then partial sums of the global mean's gradient, and their sum over
// the ranks is the single-process gradient up to the order of the summation.
#pragma once

#include <cstddef>

#include "cellflow/core/types.hpp"

namespace cellflow {

/// The statistics of a training step's batch: on entry to GradientHook::end_backward the local
/// batch's, on return the global batch's.
struct BatchStats {
  double loss_sum = 0;  ///< the sum of the per-example losses
  double correct = 0;   ///< examples whose largest logit is their label
  Index examples = 0;   ///< examples in the batch
};

/// Callbacks of Model::train_step that combine the gradients of several processes (see the top
/// of this header). Called from the thread that called train_step, in this order: begin_backward,
/// gradients_ready once per group of Model::gradient_groups() (head first, then the layers from
/// the top down), end_backward.
class GradientHook {
 public:
  /// Virtual: a hook may be destroyed through a GradientHook*.
  virtual ~GradientHook() = default;
  /// The forward pass is done: `local` holds this rank's batch (loss sum, correct, examples).
  /// Returns the number of examples of the global batch, the divisor of the loss whose gradient
  /// the step computes (local.examples for a hook that combines nothing).
  virtual Index begin_backward(const BatchStats& local) = 0;
  /// The gradients of the variables [first, last) of Model::variables() are final on this rank.
  virtual void gradients_ready(std::size_t first, std::size_t last) = 0;
  /// Called after every time step of every layer's backward pass when the batch runs as one
  /// slice (batch_threads 1): a chance to let communication in flight move on (most MPI
  /// libraries progress a nonblocking collective only inside MPI calls). Keep it cheap; does
  /// nothing by default.
  virtual void backward_progress() {}
  /// The backward pass is done. On return every gradient holds the global batch's and `stats`
  /// (this rank's on entry) the global batch's loss sum, correct predictions and examples.
  virtual void end_backward(BatchStats& stats) = 0;
};

}  // namespace cellflow
