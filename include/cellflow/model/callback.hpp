// The pieces fit (model/fit.hpp) shares with its callbacks (model/callbacks.hpp): FitOptions,
// the logs of a batch and of an epoch, History, the Callback base class and FitContext, what a
// callback can see and do during a run. A callback of your own derives from Callback and
// overrides the hooks it needs:
//
//   struct PrintValidation : cf::Callback {
//     void on_epoch_end(cf::FitContext&, const cf::EpochLogs& e) override {
//       std::printf("epoch %d: val_accuracy %.4f\n", e.epoch, e.val_accuracy);
//     }
//   };
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/model/model.hpp"

namespace cellflow {

/// Options of fit.
struct FitOptions {
  int epochs = 10;         ///< epochs to run in this call
  Index batch_size = 32;   ///< examples per step (ShuffleBatches: batch_size to 2 * batch_size - 1)
  std::uint64_t seed = 0;  ///< the batch order comes from Rng(seed) ...
  /// ... or, when set, from this generator (e.g. the one that drew the weights, as a TF program
  /// seeds both from one seed); it must outlive the call and is advanced by it.
  Rng* rng = nullptr;
  bool shuffle = true;    ///< false: every epoch takes the examples in order
  int initial_epoch = 0;  ///< epochs trained before (a resumed run): numbering and batch order go on from there
  int batch_threads = 0;  ///< slices of each batch run in parallel (0: one per hardware thread)
  double clip_norm = 0;   ///< > 0: tf.clip_by_global_norm before each update
  NonFinitePolicy on_nonfinite = NonFinitePolicy::stop;  ///< a NaN/Inf loss or gradient: stop or skip the step
  bool verbose = true;        ///< a ProgressBar on stdout (a bar per batch on a terminal, a line per epoch)
  Index eval_batch_size = 0;  ///< examples per forward pass of the validation (0: 256)
};

/// What one epoch did; the argument of Callback::on_epoch_end and a row of History.
struct EpochLogs {
  int epoch = 0;                   ///< from 1 (continuing FitOptions::initial_epoch)
  int epochs = 0;                  ///< the last epoch this run will reach (initial_epoch + epochs)
  double loss = 0;                 ///< mean training cross-entropy over the epoch's applied steps
  double accuracy = 0;             ///< share of training examples classified right (each at its step)
  double last_batch_accuracy = 0;  ///< accuracy on the epoch's last batch after its update (the seed program's figure)
  double val_loss = std::numeric_limits<double>::quiet_NaN();      ///< NaN without validation data
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();  ///< NaN without validation data
  double learning_rate = 0;                                        ///< the optimizer's rate during the epoch
  double seconds = 0;                                              ///< wall time of the training steps
  double samples_per_second = 0;                                   ///< training examples per second
  Index examples = 0;                                              ///< training examples seen
  long long steps = 0, skipped_steps = 0;                          ///< steps run, and skipped (NonFinitePolicy::skip)
  bool has_validation = false;                                     ///< val_loss and val_accuracy are measured

  /// A metric by name: "loss", "accuracy", "last_batch_accuracy", "val_loss", "val_accuracy",
  /// "learning_rate", "seconds", "samples_per_second". ValueError for any other name.
  double get(const std::string& name) const {
    if (name == "loss") return loss;
    if (name == "accuracy") return accuracy;
    if (name == "last_batch_accuracy") return last_batch_accuracy;
    if (name == "val_loss") return val_loss;
    if (name == "val_accuracy") return val_accuracy;
    if (name == "learning_rate") return learning_rate;
    if (name == "seconds") return seconds;
    if (name == "samples_per_second") return samples_per_second;
    throw ValueError(detail::concat("EpochLogs: no metric '", name, "'; ", metric_names()));
  }
  /// The names get() knows, for messages.
  static std::string metric_names() {
    return "the metrics are loss, accuracy, last_batch_accuracy, val_loss, val_accuracy, learning_rate, seconds, "
           "samples_per_second";
  }
};

/// Where an epoch stands after one batch; the argument of Callback::on_batch_end.
struct BatchLogs {
  int epoch = 0;                           ///< from 1
  int epochs = 0;                          ///< the last epoch of the run
  Index batch = 0, batches = 0;            ///< batches done in this epoch (from 1), and per epoch
  Index examples = 0, epoch_examples = 0;  ///< training examples seen this epoch, and per epoch
  double loss = 0;                         ///< this batch's loss
  double accuracy = 0;                     ///< this batch's accuracy
  double mean_loss = 0;                    ///< mean loss of the epoch's applied steps so far
  double seconds = 0;                      ///< since the epoch started
  bool skipped = false;                    ///< this step was skipped (non-finite, NonFinitePolicy::skip)
  /// Examples per second so far this epoch.
  double samples_per_second() const { return seconds > 0 ? static_cast<double>(examples) / seconds : 0.0; }
  /// Seconds left in this epoch at the speed so far.
  double eta() const {
    const double sps = samples_per_second();
    return sps > 0 ? static_cast<double>(epoch_examples - examples) / sps : 0.0;
  }
};

/// What fit returns: every epoch's logs, and why it stopped early, if it did.
struct History {
  std::vector<EpochLogs> epochs;  ///< one per epoch run, in order
  bool stopped_early = false;     ///< a callback called stop_training()
  std::string stop_reason;        ///< what that callback said
  /// The last epoch's logs; ValueError when no epoch ran.
  const EpochLogs& last() const {
    if (epochs.empty()) throw ValueError("History::last: no epoch ran");
    return epochs.back();
  }
};

struct FitContext;

/// The base of every callback: override what you need. Each hook gets the FitContext of the run.
class Callback {
 public:
  /// Callbacks are deleted through this base.
  virtual ~Callback() = default;
  /// Before the first epoch (check settings here: an error stops fit before any step).
  virtual void on_train_begin(FitContext&) {}
  /// Before epoch `epoch` (from 1) draws its batches.
  virtual void on_epoch_begin(FitContext&, int /*epoch*/) {}
  /// After every training step.
  virtual void on_batch_end(FitContext&, const BatchLogs&) {}
  /// After the epoch's steps and validation.
  virtual void on_epoch_end(FitContext&, const EpochLogs&) {}
  /// After the last epoch (also after an early stop).
  virtual void on_train_end(FitContext&, const History&) {}
  /// When fit is about to throw (a diverged step, a failed callback): tidy up (e.g. end a line).
  virtual void on_train_abort(FitContext&) {}
};

/// What a callback can see and do during fit.
struct FitContext {
  /// fit owns the context; callbacks only use it during the call.
  virtual ~FitContext() = default;
  /// The options fit runs with.
  virtual const FitOptions& options() const = 0;
  /// Training examples.
  virtual Index train_size() const = 0;
  /// Batches per epoch (ShuffleBatches::num_batches).
  virtual Index batches_per_epoch() const = 0;
  /// Whether a validation set was given.
  virtual bool has_validation() const = 0;
  /// The optimizer's learning rate.
  virtual double learning_rate() const = 0;
  /// Sets the optimizer's learning rate (finite, >= 0; ValueError otherwise) from now on.
  virtual void set_learning_rate(double learning_rate) = 0;
  /// Saves the model (Model::save: architecture, weights) and, with `with_optimizer`, the
  /// optimizer's state, atomically.
  virtual void save(const std::string& path, bool with_optimizer, const io::CheckpointMetadata& metadata) const = 0;
  /// Every weight, widened to double (exact), in variables() order.
  virtual std::vector<double> weights() const = 0;
  /// Sets every weight from the values of weights() (ShapeError for another count).
  virtual void set_weights(const std::vector<double>& weights) = 0;
  /// The model's summary() (layers and parameters).
  virtual std::string model_summary() const = 0;
  /// This process's rank in a data-parallel run (mpi::fit), 0 otherwise. Every rank runs the
  /// callbacks with the same (global) logs; only rank 0 prints and writes files (save() does
  /// nothing on the others), so a callback of your own that prints checks is_root().
  virtual int rank() const { return 0; }
  /// The number of ranks of a data-parallel run, 1 otherwise.
  virtual int ranks() const { return 1; }
  /// Whether this process prints and writes files (rank 0).
  bool is_root() const { return rank() == 0; }

  /// Ends fit after the current epoch (after the current step, if called from on_batch_end).
  void stop_training(std::string reason = "") {
    stop_ = true;
    if (stop_reason_.empty()) stop_reason_ = std::move(reason);
  }
  /// Whether stop_training was called.
  bool stop_requested() const { return stop_; }
  /// The reason given to the first stop_training call.
  const std::string& stop_reason() const { return stop_reason_; }

 private:
  bool stop_ = false;
  std::string stop_reason_;
};

}  // namespace cellflow
