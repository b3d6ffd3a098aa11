// MNIST as row sequences: each 28x28 digit is 28 time steps of 28 pixels, read by a stack of
// recurrent layers; a dense softmax head classifies the top layer's final h. The classic
// TensorFlow 1.x program as a complete tool on cellflow's model API: a cf::Model built from
// --cell/--layers/--units, trained by cf::fit with the test set as validation data, the
// library's ProgressBar, CSVLogger (--csv) and ModelCheckpoint (--save), and a chart of the
// History (--plot). The same program without options is mnist_minimal.cpp.
//
//   mnist_rnn                       shipped data (8,000 train / 2,000 test real digits), 10 epochs
//   mnist_rnn --data DIR            any directory with the four MNIST/Fashion-MNIST IDX files
//   mnist_rnn --help                all options
//   mpirun -np 2 mnist_rnn --distributed   data-parallel over MPI (built with cellflow::mpi)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"
#include "cellflow/io.hpp"
#include "support/args.hpp"
#include "support/mnist_config.hpp"
#include "support/output_file.hpp"
#include "support/svg_chart.hpp"

#ifdef CELLFLOW_EXAMPLE_MPI
#include "cellflow/distributed/mpi.hpp"
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cf = cellflow;
using cf::Index;

namespace {

const char* kUsage = R"(usage: mnist_rnn [options]

Trains a stack of recurrent layers on MNIST read as 28 time steps of 28 pixels, then a dense
softmax head on the top layer's final h (sparse softmax cross-entropy, Adam).

  --cell basic|peephole|gru   BasicLSTMCell, LSTMCell(use_peepholes), GRUCell   [basic]
  --layers N                  stacked layers, 1..64                             [3]
  --units N                   units per layer                                   [150]
  --bidirectional             a forward and a backward cell per layer, as TF's
                              stack_bidirectional_dynamic_rnn; the head reads both
                              directions' final h                               [off]
  --epochs N                  passes over the training set (0: only evaluate)   [10]
  --batch N                   batch size                                        [150]
  --lr X                      Adam learning rate, > 0                           [0.001]
  --seed N                    seed of the weights and the batch order           [42]
  --threads N                 threads, each running a slice of every batch      [0: all cores]
  --data DIR                  directory with train-images-idx3-ubyte, train-labels-idx1-ubyte,
                              t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or not)
                              [the 8,000/2,000 real digits shipped in data/mnist-subset]
  --limit N                   train on the first N training digits only (quick runs)
  --clip-norm X               clip the gradients to global norm X, > 0          [off]
                              (tf.clip_by_global_norm)
  --dropout KEEP              keep each layer's outputs with probability KEEP   [1: off]
                              in training, in (0, 1] (tf.nn.rnn_cell.DropoutWrapper)
  --on-nonfinite stop|skip    a NaN/Inf loss or gradient stops the run with an error naming
                              the step and the variable, or that step is skipped  [stop]
  --load FILE                 start from a model saved with --save: resume training (at its
                              learning rate unless --lr is given), or with --epochs 0 only
                              evaluate it; --cell/--layers/--units/--bidirectional/--dropout
                              must match
  --save FILE                 save the model and Adam's state after every epoch
  --csv FILE                  write the metrics of every epoch as CSV (after every epoch)
  --plot FILE.svg             chart the training loss and test accuracy per epoch (at the end)
  --bf16                      at the end, evaluate the test set again with the recurrent
                              layers in bf16 (bfloat16 weights, float sums; inference only) and
                              print both test accuracies and the bf16 kernel that ran
  --distributed               data-parallel training over MPI: run under mpirun/srun, every
                              rank trains on its part of each --batch (the global batch); rank
                              0 prints and writes the files; --threads is per rank [0: the
                              machine's cores shared by its ranks]
  --help                      this text

Values follow their option (--lr 0.01) or an '=' (--lr=0.01).

Output files: --save, --csv and --plot are checked before the data is loaded (the directory
must exist; a directory or a read-only file is refused), and each is written atomically (to a
temporary file renamed over it, so an old file is never left half written). After every epoch
the checkpoint is written first, then the CSV. If one cannot be written, the error is printed,
the other is still written, the chart is written with the epochs so far, and mnist_rnn stops
with exit status 1 (resume with --load). Epochs are numbered from 1; a resumed run numbers its
epochs on from the loaded ones and draws the batches the uninterrupted run would have; its CSV
and chart hold its own epochs.

Exit status: 0 done; 1 an error (data, --load file, output file, diverged training); 2 a bad
command line.
)";

struct Options {
  std::string cell = "basic";
  int layers = 3;
  Index units = 150;
  bool bidirectional = false;
  int epochs = 10;
  Index batch = 150;
  float lr = 0.001f;
  bool lr_given = false;  // --lr on the command line: it overrides the learning rate of --load
  std::uint64_t seed = 42;
  int threads = 0;  // 0: all cores
  std::string data = CELLFLOW_DEFAULT_DATA_DIR;
  Index limit = 0;
  std::string csv, plot, save, load;
  float clip_norm = 0;
  float dropout = 1;  // output keep probability of every layer (1: no dropout)
  bool skip_nonfinite = false;
  bool distributed = false;
  bool bf16 = false;  // --bf16: evaluate the test set in bf16 too
};

// The ranks of a --distributed run (rank 0 of 1 otherwise), and the MPI environment behind them.
struct Ranks {
  int rank = 0, size = 1, local_size = 1;
  bool root() const { return rank == 0; }
#ifdef CELLFLOW_EXAMPLE_MPI
  const cf::mpi::Environment* mpi = nullptr;
#endif
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code e1, e2;
  const auto ca = std::filesystem::weakly_canonical(a, e1), cb = std::filesystem::weakly_canonical(b, e2);
  return e1 || e2 ? a == b : ca == cb;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::string on_nonfinite = "stop";
  support::ArgParser args("mnist_rnn", kUsage);
  args.choice("--cell", o.cell, {"basic", "peephole", "gru"})
      .integer("--layers", o.layers, 1, 64)
      .integer("--units", o.units, 1, 1 << 16)
      .flag("--bidirectional", o.bidirectional)
      .integer("--epochs", o.epochs, 0, 100000)
      .integer("--batch", o.batch, 1, 1 << 20)
      .positive("--lr", o.lr)
      .integer("--seed", o.seed, 0, 1LL << 62)
      .integer("--threads", o.threads, 0, 1024)
      .path("--data", o.data, "a directory")
      .integer("--limit", o.limit, 1, 1LL << 40)
      .positive("--clip-norm", o.clip_norm)
      .positive("--dropout", o.dropout)
      .choice("--on-nonfinite", on_nonfinite, {"stop", "skip"})
      .path("--load", o.load, "a checkpoint file")
      .path("--save", o.save, "a file")
      .path("--csv", o.csv, "a file")
      .path("--plot", o.plot, "a file")
      .flag("--bf16", o.bf16)
      .flag("--distributed", o.distributed);
  args.parse(argc, argv);
#ifndef CELLFLOW_EXAMPLE_MPI
  if (o.distributed)
    args.fail(
        "--distributed: this mnist_rnn was built without MPI (install Open MPI, e.g. apt-get install "
        "openmpi-bin libopenmpi-dev, and build again)");
#endif
  if (!(o.dropout <= 1)) {
    char v[32];
    std::snprintf(v, sizeof v, "%g", static_cast<double>(o.dropout));
    args.fail(std::string("--dropout expects a keep probability in (0, 1], given ") + v);
  }
  o.skip_nonfinite = on_nonfinite == "skip";
  o.lr_given = args.given("--lr");
  if (o.epochs == 0 && (!o.csv.empty() || !o.plot.empty()))
    args.fail("--csv and --plot record epochs; with --epochs 0 there is none");
  // Two outputs on one file would overwrite each other; only --save may replace --load.
  const std::pair<std::string, std::string> files[] = {
      {"--save", o.save}, {"--csv", o.csv}, {"--plot", o.plot}, {"--load", o.load}};
  for (const auto& a : files)
    for (const auto& b : files)
      if (&a < &b && !a.second.empty() && !b.second.empty() && !(a.first == "--save" && b.first == "--load") &&
          same_file(a.second, b.second))
        args.fail(a.first + " and " + b.first + " name the same file '" + a.second + "'");
  return o;
}

std::string chart_text(const Options& o, const cf::ModelConfig& config, const cf::History& history, Index train_size) {
  const long long first = history.epochs.front().epoch;
  support::Series loss{"training loss (mean cross-entropy)", "#d62728", {}, false, first};
  support::Series acc{"test accuracy", "#1f77b4", {}, true, first};
  for (const auto& e : history.epochs) {
    loss.values.push_back(e.loss);
    acc.values.push_back(e.val_accuracy);
  }
  std::ostringstream caption;
  caption << "mnist_rnn: " << support::describe(config) << ", batch " << o.batch << ", Adam(" << o.lr << "), "
          << train_size << " training digits";
  return support::svg_chart(caption.str(), {loss, acc});
}

/// "1 epoch", "10 epochs".
std::string count(long long n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

/// Prints an error writing the output file `path` of `option`, named by the option:
/// "mnist_rnn: error: --csv: '<path>': <problem>" (the library names its own step instead of
/// the option: "CSVLogger: '<path>': ...").
void report(const std::string& option, const std::string& path, const std::exception& e) {
  std::string what = e.what();
  const auto at = what.find(": '" + path + "'");
  what = option + (at == std::string::npos ? ": " + what : what.substr(at));
  std::fprintf(stderr, "mnist_rnn: error: %s\n", what.c_str());
}

/// Runs one output's write; an error is printed rather than thrown. False when it failed.
bool write_output(const std::string& option, const std::string& path, const std::function<void()>& write) {
  try {
    write();
    return true;
  } catch (const cf::Error& e) {
    report(option, path, e);
    return false;
  }
}

/// The callback that writes an output file (ModelCheckpoint for --save, CSVLogger for --csv; none
/// when the option is not given), so that each output is written on its own: a failed write is
/// printed, the other outputs of the epoch are still written, and the run stops after the epoch.
class Output : public cf::Callback {
 public:
  Output(std::string option, std::string path, std::unique_ptr<cf::Callback> writer)
      : option_(std::move(option)), path_(std::move(path)), writer_(std::move(writer)) {}

  void on_train_begin(cf::FitContext& ctx) override {
    if (writer_) writer_->on_train_begin(ctx);
  }
  void on_epoch_end(cf::FitContext& ctx, const cf::EpochLogs& e) override {
    if (writer_ && !write_output(option_, path_, [&] { writer_->on_epoch_end(ctx, e); })) {
      failed_ = true;
      ctx.stop_training(option_ + ": '" + path_ + "' could not be written");
    }
  }
  /// Whether a write failed.
  bool failed() const { return failed_; }

 private:
  std::string option_, path_;
  std::unique_ptr<cf::Callback> writer_;
  bool failed_ = false;
};

/// Refuses --load when the file's model is not the one --cell/--layers/--units/--dropout (over rows of
/// `inputs` pixels) describe, listing every difference.
void refuse_other_model(const Options& o, const cf::ModelConfig& file, Index inputs) {
  const std::string d = support::differences(
      file, support::mnist_config(o.cell, o.layers, o.units, inputs, 10, o.bidirectional, o.dropout));
  if (!d.empty())
    throw cf::ValueError("--load '" + o.load + "' holds another model (" + d +
                         "); pass the options it was trained with, or train a new model without --load");
}

int run(const Options& o, const Ranks& ranks) {
  // Everything that can fail without training fails first: the output targets (rank 0 writes
  // them), then --load (every rank reads it).
  if (ranks.root()) {
    if (!o.save.empty()) support::check_output_file(o.save, "--save");
    if (!o.csv.empty()) support::check_output_file(o.csv, "--csv");
    if (!o.plot.empty()) support::check_output_file(o.plot, "--plot");
  }
  cf::io::CheckpointInfo loaded;
  cf::ModelConfig file_model;  // the architecture of --load: Model::save's, or an older mnist_rnn's metadata
  if (!o.load.empty()) {
    loaded = cf::io::read_checkpoint_info(o.load);
    file_model = support::checkpoint_config(loaded, o.load);
    refuse_other_model(o, file_model, file_model.input_depth);  // the rows' width: once the data is loaded
  }

  // --threads 0: the machine's cores, shared out among the ranks running on it.
  int threads =
      o.threads > 0
          ? o.threads
          : std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / ranks.local_size);
#ifdef _OPENMP
  Eigen::setNbThreads(threads);
#else
  if (threads > 1) std::fprintf(stderr, "mnist_rnn: built without OpenMP, running on 1 thread\n");
  threads = 1;
#endif
  auto data = cf::data::load_mnist_dir<float>(o.data);
  if (o.limit > 0 && o.limit < data.train.size()) data.train = cf::data::head(data.train, o.limit);
  const Index T = data.train.images.dimension(1), D = data.train.images.dimension(2);

  // The weights are drawn from Rng(--seed), then the batch orders, as the seed program does. A
  // resumed run draws the weights all the same (and replaces them with the file's), so that its
  // batch orders go on as the saved run's would have.
  cf::Rng rng(o.seed);
  cf::Model<float> model(support::mnist_config(o.cell, o.layers, o.units, D, 10, o.bidirectional, o.dropout), rng);
  cf::AdamOptimizer<float> adam(o.lr);
  int epochs_before = 0;
  if (!o.load.empty()) {
    refuse_other_model(o, file_model, D);
    // Adam's state too when the file has it: training goes on bitwise as if never stopped.
    cf::Optimizer<float>* state = loaded.optimizer == adam.kind() ? &adam : nullptr;
    if (support::has_architecture(loaded))  // a Model::save file: the architecture checked above
      model = cf::load_model<float>(o.load, state);
    else  // an older mnist_rnn's file: the same variables, by name
      model.load_weights(o.load, state);
    if (o.lr_given) adam.set_learning_rate(o.lr);  // else the saved run's rate goes on
    epochs_before = cf::epochs_trained(loaded);
    if (ranks.root())
      std::printf("loaded %s: trained for %s, %s\n", o.load.c_str(), count(epochs_before, "epoch").c_str(),
                  state ? count(loaded.optimizer_step, "Adam step").c_str() : "no Adam state (a new Adam)");
  }
  if (ranks.root()) {
    const std::string where = ranks.size > 1 ? std::to_string(ranks.size) + " ranks x " : std::string();
    std::printf(
        "mnist_rnn: %s + dense(10), %ld trainable parameters; %ld train / %ld test digits of %ldx%ld "
        "from %s; batch %ld, Adam(%g), %s, %s%d thread%s\n",
        support::describe(model.config()).c_str(), static_cast<long>(model.num_parameters()),
        static_cast<long>(data.train.size()), static_cast<long>(data.test.size()), static_cast<long>(T),
        static_cast<long>(D), o.data.c_str(), static_cast<long>(o.batch), static_cast<double>(adam.learning_rate()),
        count(o.epochs, "epoch").c_str(), where.c_str(), threads, threads == 1 ? "" : "s");
    std::fflush(stdout);
  }

  cf::FitOptions options;
  options.epochs = o.epochs;
  options.batch_size = o.batch;
  options.rng = &rng;
  options.initial_epoch = epochs_before;  // numbering and batch order go on from the loaded run
  options.batch_threads = threads;        // each thread runs its slice of every batch
  options.clip_norm = o.clip_norm;
  options.on_nonfinite = o.skip_nonfinite ? cf::NonFinitePolicy::skip : cf::NonFinitePolicy::stop;
  // The bar below, without its summary line (the seed program's line instead). Under mpirun,
  // lines: mpirun gives rank 0 a terminal even when the job's output goes to a file.
  options.verbose = false;
  const auto style = ranks.size > 1 ? cf::ProgressBar::Style::lines : cf::ProgressBar::Style::automatic;
  cf::ProgressBar progress(stdout, /*epoch_summary=*/false, style);
  const auto epoch_line = [&ranks](const cf::EpochLogs& e) {
    if (!ranks.root()) return;
    std::printf(
        "%d Last batch accuracy: %.4f Test accuracy: %.4f   (train loss %.4f, test loss %.4f, %.1f s, %.0f "
        "samples/s)\n",
        e.epoch, e.last_batch_accuracy, e.val_accuracy, e.loss, e.val_loss, e.seconds, e.samples_per_second);
    if (e.skipped_steps > 0)
      std::printf("  %lld of %lld steps skipped this epoch: non-finite loss or gradient (--on-nonfinite skip)\n",
                  e.skipped_steps, e.steps);
    std::fflush(stdout);
  };
  // After every epoch the checkpoint first, then the CSV; each is written even when the other fails.
  Output checkpoint("--save", o.save, o.save.empty() ? nullptr : std::make_unique<cf::ModelCheckpoint>(o.save));
  Output csv("--csv", o.csv, o.csv.empty() ? nullptr : std::make_unique<cf::CSVLogger>(o.csv));
  const auto t_start = std::chrono::steady_clock::now();
#ifdef CELLFLOW_EXAMPLE_MPI
  const cf::History history = ranks.mpi ? cf::mpi::fit(*ranks.mpi, model, adam, data.train, data.test, options,
                                                       progress, cf::on_epoch_end(epoch_line), checkpoint, csv)
                                        : cf::fit(model, adam, data.train, data.test, options, progress,
                                                  cf::on_epoch_end(epoch_line), checkpoint, csv);
#else
  const cf::History history =
      cf::fit(model, adam, data.train, data.test, options, progress, cf::on_epoch_end(epoch_line), checkpoint, csv);
#endif

  bool saved = !checkpoint.failed();
  if (!ranks.root()) return 0;  // rank 0 reports and writes what is left
  if (o.epochs == 0 && !o.save.empty())
    saved = write_output("--save", o.save, [&] {
      model.save(o.save, &adam, {{"epochs", std::to_string(epochs_before)}});
    });
  if (!o.save.empty() && saved) std::printf("model saved to %s\n", o.save.c_str());
  cf::InferenceOptions inference;
  inference.batch_threads = threads;
  const cf::Metrics final_test =
      history.epochs.empty()
          ? model.evaluate(data.test, inference)
          : cf::Metrics{history.last().val_loss, history.last().val_accuracy, data.test.size()};  // fit's evaluation
  double train_seconds = 0, trained = 0;
  for (const auto& e : history.epochs) {
    train_seconds += e.seconds;
    trained += static_cast<double>(e.examples);
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("done: test accuracy %.2f%% (%ld/%ld), test loss %.4f; %s in %.1f s, training %.0f samples/s\n",
              100 * final_test.accuracy, std::lround(final_test.accuracy * static_cast<double>(data.test.size())),
              static_cast<long>(data.test.size()), final_test.loss,
              count(static_cast<long long>(history.epochs.size()), "epoch").c_str(), total,
              train_seconds > 0 ? trained / train_seconds : 0.0);
  if (o.bf16) {
    // The same test set with the recurrent layers' kernels as bfloat16 (the head stays float).
    cf::InferenceOptions b16 = inference;
    b16.precision = cf::Precision::bf16;
    const cf::Metrics m = model.evaluate(data.test, b16);
    std::printf("bf16 inference (kernel %s): test accuracy %.2f%% (fp32 %.2f%%), test loss %.4f (fp32 %.4f)\n",
                cf::bf16_kernel_name(), 100 * m.accuracy, 100 * final_test.accuracy, m.loss, final_test.loss);
  }
  bool charted = true;
  if (!o.plot.empty() && !history.epochs.empty()) {
    charted = write_output("--plot", o.plot, [&] {
      support::write_output_file(o.plot, chart_text(o, model.config(), history, data.train.size()), "--plot");
    });
    if (charted) std::printf("chart written to %s\n", o.plot.c_str());
  }
  if (saved && !csv.failed() && charted) return 0;
  if (static_cast<int>(history.epochs.size()) < o.epochs)
    std::fprintf(stderr, "mnist_rnn: stopped after %s of %d: an output file could not be written\n",
                 count(static_cast<long long>(history.epochs.size()), "epoch").c_str(), o.epochs);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
#ifdef CELLFLOW_EXAMPLE_MPI
  if (o.distributed) {
    // Every rank runs the same program; an error on one rank stops them all with its message
    // (Environment::run aborts the job rather than leave the others waiting).
    cf::mpi::Environment mpi(argc, argv);
    Ranks ranks;
    ranks.rank = mpi.rank();
    ranks.size = mpi.size();
    ranks.local_size = mpi.local_size();
    ranks.mpi = &mpi;
    return mpi.run([&] { return run(o, ranks); });
  }
#endif
  try {
    return run(o, Ranks{});
  } catch (const cf::Error& e) {
    std::fprintf(stderr, "mnist_rnn: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mnist_rnn: error: out of memory\n");
    return 1;
  }
}
