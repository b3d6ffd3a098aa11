// The callbacks fit (model/fit.hpp) comes with, Keras's set:
//
//   ProgressBar             batches, loss, samples/s and ETA: a bar redrawn on a terminal, plain
//                           lines (four per epoch) when piped; a summary line per epoch
//   CSVLogger               a row per epoch (epoch,loss,accuracy,...), the file rewritten
//                           atomically after every epoch
//   ModelCheckpoint         Model::save after every epoch (or only when a metric improved);
//                           "{epoch}" in the path becomes the epoch's number
//   EarlyStopping           stops when a metric (val_loss, ...) has not improved for `patience`
//                           epochs; can restore the best epoch's weights
//   LearningRateScheduler   sets the learning rate before every epoch from f(epoch, lr)
//   ReduceLROnPlateau       lowers the learning rate when a metric stops improving
//   LambdaCallback          any hook as a lambda
//
// Epochs are numbered from 1 everywhere (the console, the CSV, checkpoints' "epochs" entry).
// Output files follow io/atomic_file.hpp's policy: checked before the first step, written
// atomically, a failed write leaves the previous file intact (and stops fit with IOError after
// the other callbacks saw the epoch). In a data-parallel run (mpi::fit) every rank runs the
// callbacks with the same global logs, and rank 0 alone prints and writes files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#define CELLFLOW_ISATTY(f) (_isatty(_fileno(f)) != 0)
#else
#include <unistd.h>
#define CELLFLOW_ISATTY(f) (isatty(fileno(f)) == 1)
#endif

#include "cellflow/core/error.hpp"
#include "cellflow/io/atomic_file.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/model/callback.hpp"

namespace cellflow {

namespace detail {

/// "42s", "3m05s", "1h02m".
inline std::string format_seconds(double s) {
  char buf[32];
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

}  // namespace detail

/// The progress of training on a stream (stdout by default). On a terminal, a bar redrawn after
/// every batch ("epoch 3/10 [=====>    ] 12/53  loss 0.4321  1234 samples/s  ETA 12s") and
/// erased at the epoch's end; piped or redirected, a plain line at each quarter of the epoch, so
/// that a log stays readable. Then, with `epoch_summary`, one line per epoch:
/// "epoch 3/10: loss 0.4321, accuracy 0.8812, val_loss 0.3012, val_accuracy 0.9120 (12.3 s,
/// 1234 samples/s)". FitOptions::verbose adds one on stdout.
class ProgressBar : public Callback {
 public:
  /// How the progress within an epoch is shown.
  enum class Style {
    automatic,  ///< the bar on a terminal, lines otherwise
    bar,        ///< the bar, redrawn after every batch
    lines       ///< a line at each quarter of the epoch (e.g. under mpirun, which gives every rank a
                ///< terminal even when the job's output goes to a file)
  };

  /// Writes to `out` (stdout, stderr or a file); `epoch_summary`: the line per epoch.
  explicit ProgressBar(std::FILE* out = stdout, bool epoch_summary = true, Style style = Style::automatic)
      : out_(out),
        summary_(epoch_summary),
        tty_(style == Style::bar || (style == Style::automatic && CELLFLOW_ISATTY(out))) {}

  /// Redraws the bar (terminal) or prints a line at each quarter of the epoch (pipe).
  void on_batch_end(FitContext& ctx, const BatchLogs& b) override {
    if (!ctx.is_root()) return;
    if (tty_) {
      const int width = 24;
      const int filled = static_cast<int>(width * b.batch / std::max<Index>(1, b.batches));
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
      std::fprintf(out_, "\r\033[K  epoch %d/%d [%s] %ld/%ld  loss %.4f  %.0f samples/s  ETA %s", b.epoch, b.epochs,
                   bar.c_str(), static_cast<long>(b.batch), static_cast<long>(b.batches), b.mean_loss,
                   b.samples_per_second(), detail::format_seconds(b.eta()).c_str());
      std::fflush(out_);
      drawn_ = true;
    } else {
      const Index every = std::max<Index>(1, b.batches / 4);
      if (b.batch % every == 0 && b.batch != b.batches) {
        std::fprintf(out_, "  epoch %d/%d: %ld/%ld batches, loss %.4f, %.0f samples/s, ETA %s\n", b.epoch, b.epochs,
                     static_cast<long>(b.batch), static_cast<long>(b.batches), b.mean_loss, b.samples_per_second(),
                     detail::format_seconds(b.eta()).c_str());
        std::fflush(out_);
      }
    }
  }

  /// Erases the bar and prints the epoch's summary line.
  void on_epoch_end(FitContext& ctx, const EpochLogs& e) override {
    erase();
    if (!summary_ || !ctx.is_root()) return;
    std::fprintf(out_, "epoch %d/%d: loss %.4f, accuracy %.4f", e.epoch, e.epochs, e.loss, e.accuracy);
    if (e.has_validation) std::fprintf(out_, ", val_loss %.4f, val_accuracy %.4f", e.val_loss, e.val_accuracy);
    std::fprintf(out_, " (%.1f s, %.0f samples/s)\n", e.seconds, e.samples_per_second);
    if (e.skipped_steps > 0)
      std::fprintf(out_, "  %lld of %lld steps skipped: non-finite loss or gradient\n", e.skipped_steps, e.steps);
    std::fflush(out_);
  }

  /// Erases the bar, so that the error message starts a clean line.
  void on_train_abort(FitContext&) override { erase(); }

 private:
  void erase() {
    if (!drawn_) return;
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    drawn_ = false;
  }

  std::FILE* out_;
  bool summary_, tty_, drawn_ = false;
};

/// A CSV file with a row per epoch, rewritten atomically after every epoch:
///
///   epoch,loss,accuracy,last_batch_accuracy,val_loss,val_accuracy,learning_rate,seconds,samples_per_second,skipped_steps
///
/// (val_loss and val_accuracy are empty without validation data). With `append`, a resumed run
/// (FitOptions::initial_epoch) keeps the file's rows up to its initial epoch and goes on after
/// them; without, the file holds this run's epochs only.
class CSVLogger : public Callback {
 public:
  /// The header line (without the newline).
  static constexpr const char* kHeader =
      "epoch,loss,accuracy,last_batch_accuracy,val_loss,val_accuracy,learning_rate,seconds,samples_per_second,"
      "skipped_steps";

  /// Logs to `path`; `append`: keep the rows of earlier runs (see above).
  explicit CSVLogger(std::string path, bool append = false) : path_(std::move(path)), append_(append) {}

  /// Checks that the file can be written (IOError before any step otherwise); with `append`,
  /// reads the rows to keep.
  void on_train_begin(FitContext& ctx) override {
    if (!ctx.is_root()) return;
    io::check_writable(path_, "CSVLogger");
    text_ = std::string(kHeader) + "\n";
    if (!append_) return;
    std::ifstream in(path_);
    if (!in) return;  // no file yet
    std::string line;
    if (!std::getline(in, line)) return;
    if (line != kHeader)
      throw ValueError(detail::concat("CSVLogger: '", path_, "' has another header ('",
                                      detail::printable(line, 120, '\0'), "'); expected '", kHeader, "'"));
    while (std::getline(in, line)) {
      const int epoch = std::atoi(line.c_str());
      if (epoch >= 1 && epoch <= ctx.options().initial_epoch) text_ += line + "\n";
    }
  }

  /// Adds the epoch's row and rewrites the file atomically.
  void on_epoch_end(FitContext& ctx, const EpochLogs& e) override {
    if (!ctx.is_root()) return;
    const auto num = [](double v) {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.9g", v);
      return std::string(buf);
    };
    text_ += detail::concat(e.epoch, ",", num(e.loss), ",", num(e.accuracy), ",", num(e.last_batch_accuracy), ",",
                            e.has_validation ? num(e.val_loss) : "", ",", e.has_validation ? num(e.val_accuracy) : "",
                            ",", num(e.learning_rate), ",", num(e.seconds), ",", num(e.samples_per_second), ",",
                            e.skipped_steps, "\n");
    io::write_file_atomically(path_, std::vector<std::uint8_t>(text_.begin(), text_.end()), "CSVLogger");
  }

  /// The file's path.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool append_;
  std::string text_;
};

/// Whether a smaller or a larger value of a monitored metric is better; `automatic`: larger for
/// names containing "accuracy", smaller otherwise.
enum class MonitorMode { automatic, min, max };

namespace detail {

inline bool larger_is_better(const std::string& monitor, MonitorMode mode) {
  return mode == MonitorMode::max || (mode == MonitorMode::automatic && monitor.find("accuracy") != std::string::npos);
}

/// ValueError unless `monitor` is a metric EpochLogs has and, for a "val_" one, fit has
/// validation data.
inline void check_monitor(const std::string& monitor, const FitContext& ctx, const char* who) {
  EpochLogs probe;
  try {
    probe.get(monitor);
  } catch (const ValueError&) {
    throw ValueError(concat(who, ": cannot monitor '", monitor, "': ", EpochLogs::metric_names()));
  }
  if (monitor.rfind("val_", 0) == 0 && !ctx.has_validation())
    throw ValueError(concat(who, ": monitors '", monitor, "', but fit was given no validation data"));
}

}  // namespace detail

/// What ModelCheckpoint saves, and when.
struct ModelCheckpointOptions {
  bool with_optimizer = true;  ///< the optimizer's state too (to resume training exactly)
  /// Save only when `monitor` improved on the best value so far (e.g. "val_accuracy").
  bool save_best_only = false;
  std::string monitor = "val_loss";           ///< the metric of save_best_only
  MonitorMode mode = MonitorMode::automatic;  ///< which direction of `monitor` is better
};

/// Saves the model after every epoch (Model::save: architecture, weights, the optimizer's state)
/// with metadata {"epochs": N}, N the epochs trained so far: what FitOptions::initial_epoch
/// takes to resume (see epochs_trained). "{epoch}" in the path becomes N ("ckpt-{epoch}.cf").
/// In a data-parallel run (mpi::fit) rank 0 alone writes the file.
class ModelCheckpoint : public Callback {
 public:
  /// Saves to `path` ("{epoch}" replaced by the epoch's number) as `options` say.
  explicit ModelCheckpoint(std::string path, ModelCheckpointOptions options = {})
      : path_(std::move(path)), opt_(std::move(options)) {}

  /// Checks the monitored metric and that the path can be written, before any step.
  void on_train_begin(FitContext& ctx) override {
    if (opt_.save_best_only) detail::check_monitor(opt_.monitor, ctx, "ModelCheckpoint");
    if (path_.find("{epoch}") == std::string::npos && ctx.is_root()) io::check_writable(path_, "ModelCheckpoint");
    best_ = std::numeric_limits<double>::quiet_NaN();
  }

  /// Saves the model (when the metric improved, with save_best_only).
  void on_epoch_end(FitContext& ctx, const EpochLogs& e) override {
    if (opt_.save_best_only) {
      const double v = e.get(opt_.monitor);
      const bool larger = detail::larger_is_better(opt_.monitor, opt_.mode);
      if (std::isnan(v) || (!std::isnan(best_) && !(larger ? v > best_ : v < best_))) return;
      best_ = v;
    }
    std::string path = path_;
    for (auto at = path.find("{epoch}"); at != std::string::npos; at = path.find("{epoch}"))
      path.replace(at, 7, std::to_string(e.epoch));
    ctx.save(path, opt_.with_optimizer, {{"epochs", std::to_string(e.epoch)}});
    last_saved_ = path;
  }

  /// The path of the last checkpoint written (empty before the first).
  const std::string& last_saved() const { return last_saved_; }

 private:
  std::string path_;
  ModelCheckpointOptions opt_;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  std::string last_saved_;
};

/// The epochs a checkpoint's model was trained for (its "epochs" metadata, written by
/// ModelCheckpoint), for FitOptions::initial_epoch; 0 when the file does not say.
inline int epochs_trained(const io::CheckpointInfo& info) {
  const auto it = info.metadata.find("epochs");
  if (it == info.metadata.end()) return 0;
  const long v = std::strtol(it->second.c_str(), nullptr, 10);
  return v > 0 && v < (1L << 30) ? static_cast<int>(v) : 0;
}

/// Stops fit when `monitor` has not improved (by more than min_delta) for `patience` epochs in a
/// row (patience 0: at the first epoch without improvement). With restore_best_weights the model
/// ends with the weights of its best epoch.
class EarlyStopping : public Callback {
 public:
  /// Watches `monitor` ("val_loss", "val_accuracy", "loss", ...; `mode` says which way is better).
  explicit EarlyStopping(std::string monitor = "val_loss", int patience = 0, double min_delta = 0,
                         bool restore_best_weights = false, MonitorMode mode = MonitorMode::automatic)
      : monitor_(std::move(monitor)),
        patience_(patience),
        min_delta_(min_delta),
        restore_(restore_best_weights),
        mode_(mode) {
    if (patience < 0) throw ValueError(detail::concat("EarlyStopping: patience must be >= 0, given ", patience));
    if (!(min_delta >= 0)) throw ValueError(detail::concat("EarlyStopping: min_delta must be >= 0, given ", min_delta));
  }

  /// Checks the metric's name (and that validation data exists for a val_ metric); starts afresh.
  void on_train_begin(FitContext& ctx) override {
    detail::check_monitor(monitor_, ctx, "EarlyStopping");
    best_ = std::numeric_limits<double>::quiet_NaN();
    best_epoch_ = stopped_epoch_ = 0;
    wait_ = 0;
    best_weights_.clear();
  }

  /// Records an improvement, or counts an epoch without one and stops fit after `patience`.
  void on_epoch_end(FitContext& ctx, const EpochLogs& e) override {
    const double v = e.get(monitor_);
    const bool larger = detail::larger_is_better(monitor_, mode_);
    const bool improved =
        !std::isnan(v) && (std::isnan(best_) || (larger ? v > best_ + min_delta_ : v < best_ - min_delta_));
    if (improved) {
      best_ = v;
      best_epoch_ = e.epoch;
      wait_ = 0;
      if (restore_) best_weights_ = ctx.weights();
      return;
    }
    if (++wait_ >= std::max(1, patience_)) {
      stopped_epoch_ = e.epoch;
      ctx.stop_training(detail::concat("EarlyStopping: ", monitor_, " has not improved for ", wait_,
                                       wait_ == 1 ? " epoch" : " epochs", " (best ", best_, " at epoch ", best_epoch_,
                                       ")"));
    }
  }

  /// With restore_best_weights: puts the best epoch's weights back.
  void on_train_end(FitContext& ctx, const History&) override {
    if (restore_ && !best_weights_.empty()) ctx.set_weights(best_weights_);
  }

  /// The best value of the monitored metric (NaN before any).
  double best() const { return best_; }
  /// The epoch of best() (0 before any).
  int best_epoch() const { return best_epoch_; }
  /// The epoch after which it stopped fit (0 if it did not).
  int stopped_epoch() const { return stopped_epoch_; }

 private:
  std::string monitor_;
  int patience_;
  double min_delta_;
  bool restore_;
  MonitorMode mode_;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  int best_epoch_ = 0, stopped_epoch_ = 0, wait_ = 0;
  std::vector<double> best_weights_;
};

/// Sets the learning rate before every epoch: lr = schedule(epoch, current lr), epoch from 1.
///
///   cf::LearningRateScheduler decay([](int epoch, double lr) { return epoch > 5 ? lr * 0.5 : lr; });
class LearningRateScheduler : public Callback {
 public:
  /// `schedule(epoch, lr)` returns the rate of epoch `epoch` (from 1) given the current one.
  explicit LearningRateScheduler(std::function<double(int epoch, double learning_rate)> schedule)
      : schedule_(std::move(schedule)) {
    if (!schedule_) throw ValueError("LearningRateScheduler: the schedule is empty");
  }
  /// Sets the epoch's learning rate.
  void on_epoch_begin(FitContext& ctx, int epoch) override {
    ctx.set_learning_rate(schedule_(epoch, ctx.learning_rate()));
  }

 private:
  std::function<double(int, double)> schedule_;
};

/// Sets the learning rate before every training step from the global step, as a TF1 program that
/// passes global_step to minimize() and a decayed rate to its optimizer: lr = schedule(step).
/// The global step counts the steps (batches) fit has run, from initial_epoch *
/// batches_per_epoch() for a resumed run (so it goes on where the uninterrupted run would be); a
/// skipped step (NonFinitePolicy::skip) counts too. Step k (from 0) runs with schedule(k).
///
///   cf::PerStepLearningRateScheduler decay(cf::ExponentialDecay<float>(0.1, 1000, 0.96, true));
///
/// It overrides any other rate change (LearningRateScheduler, ReduceLROnPlateau) at the next step.
class PerStepLearningRateScheduler : public Callback {
 public:
  /// `schedule(global_step)` returns the rate of that step (any callable taking a long long and
  /// returning a number: ExponentialDecay, PiecewiseConstant, a lambda).
  explicit PerStepLearningRateScheduler(std::function<double(long long global_step)> schedule)
      : schedule_(std::move(schedule)) {
    if (!schedule_) throw ValueError("PerStepLearningRateScheduler: the schedule is empty");
  }
  /// Starts the count at initial_epoch * batches_per_epoch() and sets the first step's rate.
  void on_train_begin(FitContext& ctx) override {
    step_ = static_cast<long long>(ctx.options().initial_epoch) * static_cast<long long>(ctx.batches_per_epoch());
    ctx.set_learning_rate(schedule_(step_));
  }
  /// Counts the step and sets the next one's rate.
  void on_batch_end(FitContext& ctx, const BatchLogs&) override { ctx.set_learning_rate(schedule_(++step_)); }
  /// The global step of the next training step.
  long long global_step() const { return step_; }

 private:
  std::function<double(long long)> schedule_;
  long long step_ = 0;
};

/// Multiplies the learning rate by `factor` when `monitor` has not improved (by more than
/// min_delta) for `patience` epochs, never below min_lr; after a reduction it waits `cooldown`
/// epochs before counting again (Keras's ReduceLROnPlateau).
class ReduceLROnPlateau : public Callback {
 public:
  /// Watches `monitor`; factor in (0, 1), patience >= 1, min_delta and cooldown >= 0.
  explicit ReduceLROnPlateau(std::string monitor = "val_loss", double factor = 0.1, int patience = 10,
                             double min_delta = 1e-4, double min_lr = 0, int cooldown = 0,
                             MonitorMode mode = MonitorMode::automatic)
      : monitor_(std::move(monitor)),
        factor_(factor),
        patience_(patience),
        min_delta_(min_delta),
        min_lr_(min_lr),
        cooldown_(cooldown),
        mode_(mode) {
    if (!(factor > 0 && factor < 1))
      throw ValueError(detail::concat("ReduceLROnPlateau: factor must be in (0, 1), given ", factor));
    if (patience < 1) throw ValueError(detail::concat("ReduceLROnPlateau: patience must be >= 1, given ", patience));
    if (!(min_delta >= 0) || !(min_lr >= 0) || cooldown < 0)
      throw ValueError("ReduceLROnPlateau: min_delta, min_lr and cooldown must be >= 0");
  }

  /// Checks the metric's name (and that validation data exists for a val_ metric); starts afresh.
  void on_train_begin(FitContext& ctx) override {
    detail::check_monitor(monitor_, ctx, "ReduceLROnPlateau");
    best_ = std::numeric_limits<double>::quiet_NaN();
    wait_ = cooling_ = 0;
    reductions_ = 0;
  }

  /// Counts an epoch without improvement; after `patience` of them, lowers the rate.
  void on_epoch_end(FitContext& ctx, const EpochLogs& e) override {
    const double v = e.get(monitor_);
    const bool larger = detail::larger_is_better(monitor_, mode_);
    if (cooling_ > 0) --cooling_;
    if (!std::isnan(v) && (std::isnan(best_) || (larger ? v > best_ + min_delta_ : v < best_ - min_delta_))) {
      best_ = v;
      wait_ = 0;
      return;
    }
    if (cooling_ > 0) return;
    if (++wait_ >= patience_) {
      const double lr = ctx.learning_rate();
      const double lowered = std::max(lr * factor_, min_lr_);
      if (lowered < lr) {
        ctx.set_learning_rate(lowered);
        ++reductions_;
      }
      cooling_ = cooldown_;
      wait_ = 0;
    }
  }

  /// How many times it lowered the rate in the last fit.
  int reductions() const { return reductions_; }

 private:
  std::string monitor_;
  double factor_;
  int patience_;
  double min_delta_, min_lr_;
  int cooldown_;
  MonitorMode mode_;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  int wait_ = 0, cooling_ = 0, reductions_ = 0;
};

/// A callback from lambdas: set the hooks you need.
///
///   cf::LambdaCallback log;
///   log.epoch_end = [](cf::FitContext&, const cf::EpochLogs& e) { std::printf("%d %f\n", e.epoch, e.loss); };
struct LambdaCallback : Callback {
  std::function<void(FitContext&)> train_begin;                  ///< on_train_begin
  std::function<void(FitContext&, int)> epoch_begin;             ///< on_epoch_begin
  std::function<void(FitContext&, const BatchLogs&)> batch_end;  ///< on_batch_end
  std::function<void(FitContext&, const EpochLogs&)> epoch_end;  ///< on_epoch_end
  std::function<void(FitContext&, const History&)> train_end;    ///< on_train_end

  /// Calls `train_begin` when it is set.
  void on_train_begin(FitContext& c) override {
    if (train_begin) train_begin(c);
  }
  /// Calls `epoch_begin` when it is set.
  void on_epoch_begin(FitContext& c, int e) override {
    if (epoch_begin) epoch_begin(c, e);
  }
  /// Calls `batch_end` when it is set.
  void on_batch_end(FitContext& c, const BatchLogs& b) override {
    if (batch_end) batch_end(c, b);
  }
  /// Calls `epoch_end` when it is set.
  void on_epoch_end(FitContext& c, const EpochLogs& e) override {
    if (epoch_end) epoch_end(c, e);
  }
  /// Calls `train_end` when it is set.
  void on_train_end(FitContext& c, const History& h) override {
    if (train_end) train_end(c, h);
  }
};

/// A callback that calls f(logs) after every epoch: `cf::fit(..., cf::on_epoch_end([](const cf::EpochLogs& e) {...}))`.
template <class F>
LambdaCallback on_epoch_end(F f) {
  LambdaCallback c;
  c.epoch_end = [f = std::move(f)](FitContext&, const EpochLogs& e) { f(e); };
  return c;
}

}  // namespace cellflow
