// fit: the training loop of a Model over epochs of shuffled minibatches, with validation and
// callbacks (Keras's model.fit):
//
//   cf::FitOptions options;
//   options.epochs = 20;
//   options.batch_size = 32;
//   cf::History h = cf::fit(model, adam, train, validation, options,
//                           cf::CSVLogger("log.csv"), cf::EarlyStopping("val_loss", /*patience=*/3));
//
// Every epoch draws a new order of the examples (data::ShuffleBatches: each example once, batches
// of batch_size to 2 * batch_size - 1 as numpy's array_split cuts them), runs Model::train_step
// on each batch (the batch's lengths from the dataset), then evaluates the validation set, if
// any. Epochs are numbered from 1, continuing from options.initial_epoch when a run resumes: the
// same number in the console, EpochLogs, the CSV log, checkpoints and a chart.
//
// Callbacks (model/callbacks.hpp: ProgressBar, CSVLogger, ModelCheckpoint, EarlyStopping,
// LearningRateScheduler, ReduceLROnPlateau, LambdaCallback, or a class of your own deriving from Callback) are
// passed after the options, as objects (kept by reference for the call) or temporaries. They see
// the run through FitContext: the epoch's numbers, the learning rate, stop_training(), saving
// the model. With options.verbose (the default) a ProgressBar on stdout comes first.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/data/batches.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/model/callback.hpp"
#include "cellflow/model/callbacks.hpp"
#include "cellflow/model/model.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow {

namespace detail {

/// What fit needs from the processes of a data-parallel run: their number, this one's rank, the
/// gradient hook of a step and sums over the ranks (mpi::fit implements it over MPI).
class FitGroup {
 public:
  virtual ~FitGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// The hook of a step whose global batch holds `global_batch` examples.
  virtual GradientHook& hook(Index global_batch) = 0;
  /// Sums `values` over the ranks, in place.
  virtual void sum(std::vector<double>& values) = 0;
  /// Replaces `values` by rank 0's.
  virtual void broadcast(std::vector<double>& values) = 0;
};

template <class T>
class FitContextImpl final : public FitContext {
 public:
  FitContextImpl(Model<T>& m, Optimizer<T>& o, const FitOptions& opts, Index n, Index batches, bool val,
                 const FitGroup* group)
      : model_(m), opt_(o), opts_(opts), n_(n), batches_(batches), val_(val), group_(group) {}
  const FitOptions& options() const override { return opts_; }
  Index train_size() const override { return n_; }
  Index batches_per_epoch() const override { return batches_; }
  bool has_validation() const override { return val_; }
  double learning_rate() const override { return static_cast<double>(opt_.learning_rate()); }
  void set_learning_rate(double lr) override { opt_.set_learning_rate(lr); }
  void save(const std::string& path, bool with_optimizer, const io::CheckpointMetadata& metadata) const override {
    if (rank() == 0) model_.save(path, with_optimizer ? &opt_ : nullptr, metadata);
  }
  std::vector<double> weights() const override {
    std::vector<double> w;
    for (const auto& v : model_.variables())
      for (Index i = 0; i < v.value->size(); ++i) w.push_back(static_cast<double>(v.value->data()[i]));
    return w;
  }
  void set_weights(const std::vector<double>& w) override {
    if (static_cast<Index>(w.size()) != model_.num_parameters())
      throw ShapeError(concat("FitContext::set_weights: ", w.size(), " values for a model of ", model_.num_parameters(),
                              " parameters"));
    std::size_t k = 0;
    for (auto& v : model_.variables())
      for (Index i = 0; i < v.value->size(); ++i) v.value->data()[i] = static_cast<T>(w[k++]);
  }
  std::string model_summary() const override { return model_.summary(); }
  int rank() const override { return group_ ? group_->rank() : 0; }
  int ranks() const override { return group_ ? group_->size() : 1; }

 private:
  Model<T>& model_;
  Optimizer<T>& opt_;
  const FitOptions& opts_;
  Index n_, batches_;
  bool val_;
  const FitGroup* group_;
};

/// Data-parallel: every rank stops when any rank's callbacks called stop_training (a collective).
inline void agree_on_stop(FitGroup& group, FitContext& ctx) {
  std::vector<double> stop{ctx.stop_requested() ? 1.0 : 0.0};
  group.sum(stop);
  if (stop[0] > 0 && !ctx.stop_requested()) ctx.stop_training("another rank stopped training");
}

template <class T>
History fit_impl(Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train,
                 const data::Dataset<T>* validation, const FitOptions& options, std::vector<Callback*> callbacks,
                 FitGroup* group = nullptr) {
  const char* op = "fit";
  if (options.epochs < 0) throw ValueError(concat(op, ": epochs must be >= 0, given ", options.epochs));
  if (options.initial_epoch < 0)
    throw ValueError(concat(op, ": initial_epoch must be >= 0, given ", options.initial_epoch));
  if (options.batch_size <= 0)
    throw ValueError(concat(op, ": batch_size must be positive, given ", options.batch_size));
  if (options.eval_batch_size < 0)
    throw ValueError(concat(op, ": eval_batch_size must be >= 0 (0: 256), given ", options.eval_batch_size));
  data::detail::check_dataset(train, "fit (training data)");
  if (train.size() == 0) throw ValueError("fit: the training data holds no example");
  const auto check_set = [&](const data::Dataset<T>& d, const char* what) {
    if (d.images.dimension(2) != model.input_depth())
      throw ShapeError(concat(op, ": the ", what, " are [", d.images.dimension(0), ", ", d.images.dimension(1), ", ",
                              d.images.dimension(2), "], the model reads depth ", model.input_depth()));
    for (std::size_t k = 0; k < d.labels.size(); ++k)
      if (d.labels[k] < 0 || d.labels[k] >= model.classes())
        throw ValueError(concat(op, ": the ", what, "' label ", k, " is ", d.labels[k], ", outside [0, ",
                                model.classes(), ") (the model has ", model.classes(), " classes)"));
  };
  check_set(train, "training examples");
  if (validation) {
    data::detail::check_dataset(*validation, "fit (validation data)");
    if (validation->size() == 0) throw ValueError("fit: the validation data holds no example");
    check_set(*validation, "validation examples");
  }

  Rng own(options.seed);
  data::ShuffleBatches batches(train.size(), options.batch_size, options.rng ? *options.rng : own);
  const int rank = group ? group->rank() : 0, ranks = group ? group->size() : 1;
  const std::vector<Index> global_sizes = batches.batch_sizes();
  if (ranks > 1 && *std::min_element(global_sizes.begin(), global_sizes.end()) < ranks)
    throw ValueError(
        concat(op, ": batches of ", *std::min_element(global_sizes.begin(), global_sizes.end()),
               " examples cannot give each of the ", ranks,
               " ranks an example (batch_size is the global batch: make it at least the number of ranks)"));
  FitContextImpl<T> ctx(model, optimizer, options, train.size(), batches.num_batches(), validation != nullptr, group);
  ProgressBar progress;
  if (options.verbose) callbacks.insert(callbacks.begin(), &progress);

  TrainOptions step_options;
  step_options.batch_threads = options.batch_threads;
  step_options.clip_norm = options.clip_norm;
  step_options.on_nonfinite = options.on_nonfinite;
  InferenceOptions eval_options;
  eval_options.batch_threads = options.batch_threads;
  eval_options.batch_size = options.eval_batch_size;

  History history;
  const int last = options.initial_epoch + options.epochs;
  try {
    for (Callback* c : callbacks) c->on_train_begin(ctx);
    // A resumed run draws the orders of the epochs trained before, so that it goes on with the
    // batches the uninterrupted run would have had.
    if (options.shuffle)
      for (int e = 0; e < options.initial_epoch; ++e) batches.permutation();
    Tensor3<T> x;
    std::vector<int> y;
    std::vector<Index> lengths;
    for (int epoch = options.initial_epoch + 1; epoch <= last && !ctx.stop_requested(); ++epoch) {
      for (Callback* c : callbacks) c->on_epoch_begin(ctx, epoch);
      EpochLogs logs;
      logs.epoch = epoch;
      logs.epochs = last;
      logs.learning_rate = ctx.learning_rate();
      logs.has_validation = validation != nullptr;
      std::vector<std::vector<Index>> plan;  // this rank's part of every batch
      if (options.shuffle) {
        plan = batches.epoch(rank, ranks);
      } else {
        Index start = 0;
        for (const Index len : global_sizes) {
          plan.emplace_back();
          for (Index i = 0; i < len; ++i) plan.back().push_back(start + i);
          plan.back() = data::shard(plan.back(), rank, ranks);
          start += len;
        }
      }
      BatchLogs b;
      b.epoch = epoch;
      b.epochs = last;
      b.batches = static_cast<Index>(plan.size());
      b.epoch_examples = train.size();
      double loss_sum = 0, hits = 0;
      Index counted = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t k = 0; k < plan.size(); ++k) {
        data::gather(train, plan[k], x, y, lengths);
        if (lengths.empty())
          step_options.sequence_length.reset();
        else
          step_options.sequence_length = lengths;
        if (group) step_options.gradient_hook = &group->hook(global_sizes[k]);
        // The dropout draw: the step's index in the whole run (resumable), one per rank.
        const auto global_step = static_cast<std::uint64_t>(epoch - 1) * plan.size() + k;
        step_options.draw = global_step * static_cast<std::uint64_t>(ranks) + static_cast<std::uint64_t>(rank) + 1;
        const StepResult r = model.train_step(x, y, optimizer, step_options);
        const Index m = global_sizes[k];  // the step's loss and accuracy are the global batch's
        ++logs.steps;
        if (r.skipped) {
          ++logs.skipped_steps;
        } else {
          loss_sum += r.loss * static_cast<double>(m);
          counted += m;
        }
        hits += r.accuracy * static_cast<double>(m);
        logs.examples += m;
        b.batch = static_cast<Index>(k + 1);
        b.examples = logs.examples;
        b.loss = r.loss;
        b.accuracy = r.accuracy;
        b.mean_loss = counted > 0 ? loss_sum / static_cast<double>(counted) : std::nan("");
        b.skipped = r.skipped;
        b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (Callback* c : callbacks) c->on_batch_end(ctx, b);
        if (group) agree_on_stop(*group, ctx);  // one rank's stop_training stops them all here
        if (ctx.stop_requested()) break;
      }
      logs.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      logs.samples_per_second = logs.seconds > 0 ? static_cast<double>(logs.examples) / logs.seconds : 0.0;
      logs.loss = counted > 0 ? loss_sum / static_cast<double>(counted) : std::nan("");
      logs.accuracy = logs.examples > 0 ? hits / static_cast<double>(logs.examples) : 0.0;
      InferenceOptions last_batch = eval_options;
      if (!lengths.empty()) last_batch.sequence_length = lengths;
      if (!group) {
        logs.last_batch_accuracy = model.evaluate(x, y, last_batch).accuracy;
        if (validation) {
          const Metrics v = model.evaluate(*validation, eval_options);
          logs.val_loss = v.loss;
          logs.val_accuracy = v.accuracy;
        }
      } else {
        // Each rank evaluates its part (of the last batch, of the validation set); the sums
        // over the ranks give the whole's.
        const Metrics last_part = model.evaluate(x, y, last_batch);
        std::vector<double> sums{last_part.accuracy * static_cast<double>(last_part.examples),
                                 static_cast<double>(last_part.examples), 0, 0, 0};
        if (validation) {
          const auto [start, count] = data::shard_range(validation->size(), rank, ranks);
          if (count > 0) {
            std::vector<Index> idx(static_cast<std::size_t>(count));
            for (Index i = 0; i < count; ++i) idx[static_cast<std::size_t>(i)] = start + i;
            Tensor3<T> vx;
            std::vector<int> vy;
            std::vector<Index> vl;
            data::gather(*validation, idx, vx, vy, vl);
            InferenceOptions vo = eval_options;
            if (!vl.empty()) vo.sequence_length = vl;
            const Metrics v = model.evaluate(vx, vy, vo);
            sums[2] = v.loss * static_cast<double>(v.examples);
            sums[3] = v.accuracy * static_cast<double>(v.examples);
            sums[4] = static_cast<double>(v.examples);
          }
        }
        group->sum(sums);
        logs.last_batch_accuracy = sums[0] / sums[1];
        if (validation) {
          logs.val_loss = sums[2] / sums[4];
          logs.val_accuracy = sums[3] / sums[4];
        }
      }
      history.epochs.push_back(logs);
      // Every callback sees the epoch's end (a checkpoint that cannot be written does not keep
      // the CSV from being written); the first error then stops fit.
      std::exception_ptr first_error;
      for (Callback* c : callbacks) {
        try {
          c->on_epoch_end(ctx, logs);
        } catch (...) {
          if (!first_error) first_error = std::current_exception();
        }
      }
      if (first_error) std::rethrow_exception(first_error);
      if (group) {
        // The ranks' callbacks saw the same logs and decide alike; should one rank's callback
        // decide otherwise, a stop on any rank stops every rank and rank 0's learning rate stands.
        agree_on_stop(*group, ctx);
        std::vector<double> rate{ctx.learning_rate()};
        group->broadcast(rate);
        if (rate[0] != ctx.learning_rate()) ctx.set_learning_rate(rate[0]);
      }
    }
    history.stopped_early = ctx.stop_requested();
    history.stop_reason = ctx.stop_reason();
    for (Callback* c : callbacks) c->on_train_end(ctx, history);
  } catch (...) {
    for (Callback* c : callbacks) {
      try {
        c->on_train_abort(ctx);
      } catch (...) {  // the first error is the one to report
      }
    }
    throw;
  }
  return history;
}

template <class C>
Callback* as_callback(C& c) {
  static_assert(std::is_base_of_v<Callback, std::decay_t<C>>,
                "fit: every argument after the options must be a callback (a class deriving from cellflow::Callback)");
  return &c;
}

}  // namespace detail

/// Trains `model` on `train` for options.epochs epochs with `optimizer` (any Optimizer<T>),
/// calling each callback (objects deriving from Callback, passed by reference or as
/// temporaries). Returns every epoch's logs. Throws what a step throws (NumericError for a
/// diverged step under NonFinitePolicy::stop, ShapeError/ValueError for data that does not fit
/// the model, checked before the first step) and what a callback throws (e.g. IOError for a
/// checkpoint that cannot be written, after every callback saw the epoch's end).
template <class T, class... Callbacks>
History fit(Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train, const FitOptions& options,
            Callbacks&&... callbacks) {
  return detail::fit_impl<T>(model, optimizer, train, nullptr, options, {detail::as_callback(callbacks)...});
}

/// As above, evaluating `validation` after every epoch (val_loss, val_accuracy).
template <class T, class... Callbacks>
History fit(Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train, const data::Dataset<T>& validation,
            const FitOptions& options, Callbacks&&... callbacks) {
  return detail::fit_impl<T>(model, optimizer, train, &validation, options, {detail::as_callback(callbacks)...});
}

}  // namespace cellflow
