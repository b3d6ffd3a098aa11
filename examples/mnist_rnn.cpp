// MNIST as row sequences: each 28x28 digit is 28 time steps of 28 pixels, read by a stack of
// recurrent layers; a dense softmax head classifies the top layer's final h. The C++ port of the
// classic TensorFlow 1.x program (see mnist_model.hpp for the TF lines side by side; the same
// program without options is mnist_minimal.cpp).
//
//   mnist_rnn                       shipped data (8,000 train / 2,000 test real digits), 10 epochs
//   mnist_rnn --data DIR            any directory with the four MNIST/Fashion-MNIST IDX files
//   mnist_rnn --help                all options
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"
#include "cellflow/io.hpp"
#include "mnist_model.hpp"
#include "support/args.hpp"
#include "support/output_file.hpp"
#include "support/progress.hpp"
#include "support/svg_chart.hpp"

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
  --on-nonfinite stop|skip    a NaN/Inf loss or gradient stops the run with an error naming
                              the step and the variable, or that step is skipped  [stop]
  --load FILE                 start from a model saved with --save: resume training (at its
                              learning rate unless --lr is given), or with --epochs 0 only
                              evaluate it; --cell/--layers/--units must match
  --save FILE                 save the model and Adam's state after every epoch
  --csv FILE                  write the metrics of every epoch as CSV (after every epoch)
  --plot FILE.svg             chart the training loss and test accuracy per epoch (at the end)
  --help                      this text

Values follow their option (--lr 0.01) or an '=' (--lr=0.01).

Output files: --save, --csv and --plot are checked before the data is loaded (the directory
must exist; a directory or a read-only file is refused), and each is written atomically (to a
temporary file renamed over it, so an old file is never left half written). After every epoch
the checkpoint is written first, then the CSV. If one cannot be written, the error is printed,
the other is still written, the chart is written with the epochs so far, and mnist_rnn stops
with exit status 1 (resume with --load). A resumed run numbers its epochs on from the loaded
ones; its CSV and chart hold its own epochs.

Exit status: 0 done; 1 an error (data, --load file, output file, diverged training); 2 a bad
command line.
)";

struct Options {
  mnist::CellKind cell = mnist::CellKind::basic;
  int layers = 3;
  Index units = 150;
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
  bool skip_nonfinite = false;
};

bool same_file(const std::string& a, const std::string& b) {
  std::error_code e1, e2;
  const auto ca = std::filesystem::weakly_canonical(a, e1), cb = std::filesystem::weakly_canonical(b, e2);
  return e1 || e2 ? a == b : ca == cb;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::string cell = "basic", on_nonfinite = "stop";
  support::ArgParser args("mnist_rnn", kUsage);
  args.choice("--cell", cell, {"basic", "peephole", "gru"})
      .integer("--layers", o.layers, 1, 64)
      .integer("--units", o.units, 1, 1 << 16)
      .integer("--epochs", o.epochs, 0, 100000)
      .integer("--batch", o.batch, 1, 1 << 20)
      .positive("--lr", o.lr)
      .integer("--seed", o.seed, 0, 1LL << 62)
      .integer("--threads", o.threads, 0, 1024)
      .path("--data", o.data, "a directory")
      .integer("--limit", o.limit, 1, 1LL << 40)
      .positive("--clip-norm", o.clip_norm)
      .choice("--on-nonfinite", on_nonfinite, {"stop", "skip"})
      .path("--load", o.load, "a checkpoint file")
      .path("--save", o.save, "a file")
      .path("--csv", o.csv, "a file")
      .path("--plot", o.plot, "a file");
  args.parse(argc, argv);
  o.cell = mnist::parse_cell_kind(cell);
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

struct EpochRow {
  long long epoch;
  double train_loss, last_batch_accuracy, test_loss, test_accuracy, seconds, samples_per_second;
};

std::string csv_text(const std::vector<EpochRow>& rows) {
  std::ostringstream f;
  f << "epoch,train_loss,last_batch_accuracy,test_loss,test_accuracy,epoch_seconds,samples_per_second\n";
  for (const auto& r : rows)
    f << r.epoch << "," << r.train_loss << "," << r.last_batch_accuracy << "," << r.test_loss << "," << r.test_accuracy
      << "," << r.seconds << "," << r.samples_per_second << "\n";
  return f.str();
}

std::string chart_text(const Options& o, const std::vector<EpochRow>& rows, Index train_size) {
  support::Series loss{"training loss (mean cross-entropy)", "#d62728", {}, false, rows.front().epoch};
  support::Series acc{"test accuracy", "#1f77b4", {}, true, rows.front().epoch};
  for (const auto& r : rows) {
    loss.values.push_back(r.train_loss);
    acc.values.push_back(r.test_accuracy);
  }
  std::ostringstream caption;
  caption << "mnist_rnn: " << o.layers << " x " << mnist::cell_kind_name(o.cell) << "(" << o.units << "), batch "
          << o.batch << ", Adam(" << o.lr << "), " << train_size << " training digits";
  return support::svg_chart(caption.str(), {loss, acc});
}

/// "1 epoch", "10 epochs".
std::string count(long long n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

/// Runs one output's write; an error is printed rather than thrown, so that the outputs are
/// written independently. False when it failed.
bool write_output(const std::function<void()>& write) {
  try {
    write();
    return true;
  } catch (const cf::Error& e) {
    std::fprintf(stderr, "mnist_rnn: error: %s\n", e.what());
    return false;
  }
}

/// Writes the model, Adam's state and the architecture to --save, recording `epochs` trained.
void save(const Options& o, const mnist::Classifier& model, long long epochs) {
  const std::vector<std::uint8_t> bytes = model.checkpoint_bytes({{"epochs", std::to_string(epochs)}});
  support::write_output_file(o.save, std::string(bytes.begin(), bytes.end()), "--save");
}

void refuse_other_model(const Options& o, const std::string& differences) {
  if (!differences.empty())
    throw cf::ValueError("--load '" + o.load + "' holds another model (" + differences +
                         "); pass the options it was trained with, or train a new model without --load");
}

int run(const Options& o) {
  // Everything that can fail without training fails first: the output targets, then --load.
  if (!o.save.empty()) support::check_output_file(o.save, "--save");
  if (!o.csv.empty()) support::check_output_file(o.csv, "--csv");
  if (!o.plot.empty()) support::check_output_file(o.plot, "--plot");
  mnist::ModelConfig config{o.cell, o.layers, o.units, 28, 10};
  if (!o.load.empty()) {
    const mnist::ModelConfig file = mnist::config_from_checkpoint(o.load);
    config.inputs = file.inputs;  // given by the data, checked once it is loaded
    config.classes = file.classes;
    refuse_other_model(o, mnist::config_differences(file, config));
  }

  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#ifdef _OPENMP
  Eigen::setNbThreads(threads);
#else
  if (threads > 1) std::fprintf(stderr, "mnist_rnn: built without OpenMP, running on 1 thread\n");
  threads = 1;
#endif
  auto data = cf::data::load_mnist_dir<float>(o.data);
  if (o.limit > 0 && o.limit < data.train.size()) data.train = cf::data::head(data.train, o.limit);
  const Index T = data.train.images.dimension(1), D = data.train.images.dimension(2);

  cf::Rng rng(o.seed);
  config.inputs = D;
  config.classes = 10;
  mnist::Classifier model(config, o.lr, rng);
  model.set_batch_threads(threads);  // each thread runs its slice of every batch
  model.set_guards(mnist::TrainGuards{o.clip_norm, o.skip_nonfinite});
  long long epochs_before = 0;
  if (!o.load.empty()) {
    refuse_other_model(o, mnist::config_differences(mnist::config_from_checkpoint(o.load), config));
    const cf::io::CheckpointInfo info = model.load(o.load, /*with_optimizer=*/o.epochs > 0);
    if (o.lr_given) model.optimizer().set_learning_rate(o.lr);  // else the saved run's rate goes on
    const auto it = info.metadata.find("epochs");
    if (it != info.metadata.end()) epochs_before = std::atoll(it->second.c_str());
    std::printf("loaded %s: trained for %s, %s\n", o.load.c_str(), count(epochs_before, "epoch").c_str(),
                count(info.optimizer_step, "Adam step").c_str());
  }
  std::printf(
      "mnist_rnn: %d x %s(%ld) + dense(10), %ld trainable parameters; %ld train / %ld test digits of %ldx%ld "
      "from %s; batch %ld, Adam(%g), %s, %d thread%s\n",
      o.layers, mnist::cell_kind_name(o.cell), static_cast<long>(o.units), static_cast<long>(model.num_parameters()),
      static_cast<long>(data.train.size()), static_cast<long>(data.test.size()), static_cast<long>(T),
      static_cast<long>(D), o.data.c_str(), static_cast<long>(o.batch),
      static_cast<double>(model.optimizer().learning_rate()), count(o.epochs, "epoch").c_str(), threads,
      threads == 1 ? "" : "s");
  std::fflush(stdout);

  cf::data::ShuffleBatches batches(data.train.size(), o.batch, rng);
  // A resumed run continues the batch order where the saved run stopped (same --seed), so
  // training 2 epochs equals training 1, saving, loading and training 1 more; and it continues
  // the epochs' numbering.
  for (long long e = 0; e < epochs_before; ++e) batches.epoch();
  std::vector<EpochRow> rows;
  cf::Tensor3<float> x;
  std::vector<int> y;
  double train_seconds = 0;
  long long trained = 0;
  bool saved = true, csv_written = true;  // every write of each output so far succeeded
  const auto t_start = std::chrono::steady_clock::now();
  for (int k = 0; k < o.epochs && saved && csv_written; ++k) {
    const long long epoch = epochs_before + k;  // printed from 0 as the seed program does
    const auto plan = batches.epoch();
    support::Progress progress(epoch, plan.size());
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    long long seen = 0, counted = 0;
    const long long skipped_before = model.skipped_steps();
    for (std::size_t b = 0; b < plan.size(); ++b) {
      cf::data::gather(data.train, plan[b], x, y);
      const auto m = model.train_step(x, y);
      if (!m.skipped) {
        loss_sum += m.loss * static_cast<double>(y.size());
        counted += static_cast<long long>(y.size());
      }
      seen += static_cast<long long>(y.size());
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double sps = static_cast<double>(seen) / el;
      progress.update(b + 1, loss_sum / static_cast<double>(std::max(counted, 1LL)), sps,
                      static_cast<double>(data.train.size() - seen) / sps);
    }
    progress.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // As the seed program: the accuracy on the epoch's last batch after training on it.
    const double last_acc = model.evaluate_batch(x, y).accuracy;
    train_seconds += secs;
    trained += seen;
    const auto test = model.evaluate(data.test);
    rows.push_back(EpochRow{epoch + 1, counted > 0 ? loss_sum / static_cast<double>(counted) : std::nan(""), last_acc,
                            test.loss, test.accuracy, secs, static_cast<double>(seen) / secs});
    // The seed program's line, then what else a user wants to see.
    std::printf(
        "%lld Last batch accuracy: %.4f Test accuracy: %.4f   (train loss %.4f, test loss %.4f, %.1f s, %.0f "
        "samples/s)\n",
        epoch, last_acc, test.accuracy, rows.back().train_loss, test.loss, secs, rows.back().samples_per_second);
    if (model.skipped_steps() > skipped_before)
      std::printf("  %lld of %zu steps skipped this epoch: non-finite loss or gradient (--on-nonfinite skip)\n",
                  model.skipped_steps() - skipped_before, plan.size());
    std::fflush(stdout);
    // The checkpoint first, then the CSV; each is written even when the other fails.
    if (!o.save.empty()) saved = write_output([&] { save(o, model, epoch + 1); });
    if (!o.csv.empty()) csv_written = write_output([&] { support::write_output_file(o.csv, csv_text(rows), "--csv"); });
  }
  if (o.epochs == 0 && !o.save.empty()) saved = write_output([&] { save(o, model, epochs_before); });
  if (!o.save.empty() && saved) std::printf("model saved to %s\n", o.save.c_str());
  const auto final_test = model.evaluate(data.test);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("done: test accuracy %.2f%% (%ld/%ld), test loss %.4f; %s in %.1f s, training %.0f samples/s\n",
              100 * final_test.accuracy, std::lround(final_test.accuracy * static_cast<double>(data.test.size())),
              static_cast<long>(data.test.size()), final_test.loss,
              count(static_cast<long long>(rows.size()), "epoch").c_str(), total,
              train_seconds > 0 ? static_cast<double>(trained) / train_seconds : 0.0);
  bool charted = true;
  if (!o.plot.empty() && !rows.empty()) {
    charted =
        write_output([&] { support::write_output_file(o.plot, chart_text(o, rows, data.train.size()), "--plot"); });
    if (charted) std::printf("chart written to %s\n", o.plot.c_str());
  }
  if (saved && csv_written && charted) return 0;
  if (static_cast<int>(rows.size()) < o.epochs)
    std::fprintf(stderr, "mnist_rnn: stopped after %s of %d: an output file could not be written\n",
                 count(static_cast<long long>(rows.size()), "epoch").c_str(), o.epochs);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  try {
    return run(o);
  } catch (const cf::Error& e) {
    std::fprintf(stderr, "mnist_rnn: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mnist_rnn: error: out of memory\n");
    return 1;
  }
}
