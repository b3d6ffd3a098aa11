// MNIST as row sequences: each 28x28 digit is 28 time steps of 28 pixels, read by a stack of
// recurrent layers; a dense softmax head classifies the top layer's final h. The C++ port of the
// classic TensorFlow 1.x program (see mnist_model.hpp for the TF lines side by side).
//
//   mnist_rnn                       shipped data (8,000 train / 2,000 test real digits), 10 epochs
//   mnist_rnn --data DIR            any directory with the four MNIST/Fashion-MNIST IDX files
//   mnist_rnn --help                all options
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cellflow/cellflow.hpp"
#include "cellflow/io.hpp"
#include "mnist_model.hpp"
#include "support/svg_chart.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cf = cellflow;
using cf::Index;

namespace {

struct Options {
  mnist::CellKind cell = mnist::CellKind::basic;
  int layers = 3;
  Index units = 150;
  int epochs = 10;
  Index batch = 150;
  float lr = 0.001f;
  std::uint64_t seed = 42;
  int threads = 0;  // 0: all cores
  std::string data = CELLFLOW_DEFAULT_DATA_DIR;
  Index limit = 0;
  std::string csv, plot, save, load;
  float clip_norm = 0;
  bool skip_nonfinite = false;
};

const char* kUsage = R"(usage: mnist_rnn [options]

Trains a stack of recurrent layers on MNIST read as 28 time steps of 28 pixels, then a dense
softmax head on the top layer's final h (sparse softmax cross-entropy, Adam).

  --cell basic|peephole|gru   BasicLSTMCell, LSTMCell(use_peepholes), GRUCell   [basic]
  --layers N                  stacked layers                                    [3]
  --units N                   units per layer                                   [150]
  --epochs N                  passes over the training set (0: only evaluate)   [10]
  --batch N                   batch size                                        [150]
  --lr X                      Adam learning rate                                [0.001]
  --seed N                    seed of the weights and the batch order           [42]
  --threads N                 threads; each runs a slice of every batch (0: all cores) [0]
  --data DIR                  directory with train-images-idx3-ubyte, train-labels-idx1-ubyte,
                              t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (.gz or not)
                              [the 8,000/2,000 real digits shipped in data/mnist-subset]
  --limit N                   train on the first N training digits only (quick runs)
  --csv FILE                  write per-epoch metrics as CSV
  --plot FILE.svg             write a chart of training loss and test accuracy per epoch
  --clip-norm X               clip the gradients to global norm X (tf.clip_by_global_norm)  [off]
  --on-nonfinite stop|skip    a NaN/Inf loss or gradient stops with an error naming the step
                              and variable, or skips that step                    [stop]
  --save FILE                 save the model and Adam's state after every epoch (atomically)
  --load FILE                 start from a model saved with --save: resume training, or with
                              --epochs 0 only evaluate it; --cell/--layers/--units must match
  --help                      this text
)";

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "mnist_rnn: " << msg << "\n(see mnist_rnn --help)\n";
  std::exit(2);
}

long long parse_int(const std::string& flag, const std::string& v, long long lo, long long hi) {
  try {
    std::size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used != v.size() || x < lo || x > hi) throw std::out_of_range("range");
    return x;
  } catch (const std::exception&) {
    usage_error(flag + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], given '" + v +
                "'");
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    static const char* const known[] = {"--cell", "--layers",  "--units",     "--epochs",      "--batch", "--lr",
                                        "--seed", "--threads", "--data",      "--limit",       "--csv",   "--plot",
                                        "--save", "--load",    "--clip-norm", "--on-nonfinite"};
    if (std::find(std::begin(known), std::end(known), a) == std::end(known)) usage_error("unknown option '" + a + "'");
    if (eq == std::string::npos) {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      v = argv[++i];
    }
    if (a == "--cell") {
      try {
        o.cell = mnist::parse_cell_kind(v);
      } catch (const cf::Error& e) {
        usage_error(e.what());
      }
    } else if (a == "--layers")
      o.layers = static_cast<int>(parse_int(a, v, 1, 64));
    else if (a == "--units")
      o.units = parse_int(a, v, 1, 1 << 16);
    else if (a == "--epochs")
      o.epochs = static_cast<int>(parse_int(a, v, 0, 100000));
    else if (a == "--batch")
      o.batch = parse_int(a, v, 1, 1 << 20);
    else if (a == "--seed")
      o.seed = static_cast<std::uint64_t>(parse_int(a, v, 0, (1LL << 62)));
    else if (a == "--threads")
      o.threads = static_cast<int>(parse_int(a, v, 0, 1024));
    else if (a == "--limit")
      o.limit = parse_int(a, v, 1, 1LL << 40);
    else if (a == "--data")
      o.data = v;
    else if (a == "--csv")
      o.csv = v;
    else if (a == "--plot")
      o.plot = v;
    else if (a == "--save")
      o.save = v;
    else if (a == "--load")
      o.load = v;
    else if (a == "--on-nonfinite") {
      if (v != "stop" && v != "skip") usage_error("--on-nonfinite must be stop or skip, given '" + v + "'");
      o.skip_nonfinite = v == "skip";
    } else if (a == "--clip-norm") {
      char* end = nullptr;
      o.clip_norm = std::strtof(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.clip_norm > 0) || !std::isfinite(o.clip_norm))
        usage_error("--clip-norm expects a positive number, given '" + v + "'");
    } else if (a == "--lr") {
      char* end = nullptr;
      o.lr = std::strtof(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.lr > 0)) usage_error("--lr expects a positive number, given '" + v + "'");
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  return o;
}

struct EpochRow {
  int epoch;
  double train_loss, last_batch_accuracy, test_loss, test_accuracy, seconds, samples_per_second;
};

void write_csv(const std::string& path, const std::vector<EpochRow>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) throw cf::IOError("cannot write '" + tmp + "'");
    f << "epoch,train_loss,last_batch_accuracy,test_loss,test_accuracy,epoch_seconds,samples_per_second\n";
    for (const auto& r : rows)
      f << r.epoch << "," << r.train_loss << "," << r.last_batch_accuracy << "," << r.test_loss << ","
        << r.test_accuracy << "," << r.seconds << "," << r.samples_per_second << "\n";
    f.close();
    if (!f) throw cf::IOError("writing '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw cf::IOError("cannot rename '" + tmp + "' to '" + path + "'");
}

std::string fmt_seconds(double s) {
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

/// A progress line per batch on a terminal, four plain lines per epoch otherwise.
class Progress {
 public:
  Progress(int epoch, std::size_t batches) : epoch_(epoch), batches_(batches), tty_(isatty(STDOUT_FILENO) == 1) {}

  void update(std::size_t done, double loss, double samples_per_second, double eta) {
    if (tty_) {
      const int width = 24, filled = static_cast<int>(width * done / batches_);
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
      std::printf("\r\033[K  epoch %d [%s] %zu/%zu  loss %.4f  %.0f samples/s  ETA %s", epoch_, bar.c_str(), done,
                  batches_, loss, samples_per_second, fmt_seconds(eta).c_str());
      std::fflush(stdout);
    } else {
      const std::size_t every = std::max<std::size_t>(1, batches_ / 4);
      if (done % every == 0 && done != batches_)
        std::printf("  epoch %d: %zu/%zu batches, loss %.4f, %.0f samples/s, ETA %s\n", epoch_, done, batches_, loss,
                    samples_per_second, fmt_seconds(eta).c_str());
    }
  }
  void finish() {
    if (tty_) std::printf("\r\033[K");
  }

 private:
  int epoch_;
  std::size_t batches_;
  bool tty_;
};

int run(const Options& o) {
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
  const mnist::ModelConfig config{o.cell, o.layers, o.units, D, 10};
  mnist::Classifier model(config, o.lr, rng);
  model.set_batch_threads(threads);  // each thread runs its slice of every batch
  model.set_guards(mnist::TrainGuards{o.clip_norm, o.skip_nonfinite});
  long long epochs_before = 0;
  if (!o.load.empty()) {
    const std::string diff = mnist::config_differences(mnist::config_from_checkpoint(o.load), config);
    if (!diff.empty())
      throw cf::ValueError("--load '" + o.load + "' holds another model (" + diff +
                           "); pass the options it was trained with, or train a new model without --load");
    const cf::io::CheckpointInfo info = model.load(o.load, /*with_optimizer=*/o.epochs > 0);
    const auto it = info.metadata.find("epochs");
    if (it != info.metadata.end()) epochs_before = std::atoll(it->second.c_str());
    std::printf("loaded %s: trained for %lld epochs, %lld Adam steps\n", o.load.c_str(), epochs_before,
                info.optimizer_step);
  }
  std::printf(
      "mnist_rnn: %d x %s(%ld) + dense(10), %ld trainable parameters; %ld train / %ld test digits of %ldx%ld "
      "from %s; batch %ld, Adam(%g), %d epochs, %d thread%s\n",
      o.layers, mnist::cell_kind_name(o.cell), static_cast<long>(o.units), static_cast<long>(model.num_parameters()),
      static_cast<long>(data.train.size()), static_cast<long>(data.test.size()), static_cast<long>(T),
      static_cast<long>(D), o.data.c_str(), static_cast<long>(o.batch), static_cast<double>(o.lr), o.epochs, threads,
      threads == 1 ? "" : "s");
  std::fflush(stdout);

  cf::data::ShuffleBatches batches(data.train.size(), o.batch, rng);
  // A resumed run continues the batch order where the saved run stopped (same --seed), so
  // training 2 epochs equals training 1, saving, loading and training 1 more.
  for (long long e = 0; e < epochs_before; ++e) batches.epoch();
  std::vector<EpochRow> rows;
  cf::Tensor3<float> x;
  std::vector<int> y;
  double train_seconds = 0;
  long long trained = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    const auto plan = batches.epoch();
    Progress progress(epoch, plan.size());
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    long long seen = 0, counted = 0;
    const long long skipped_before = model.skipped_steps();
    for (std::size_t k = 0; k < plan.size(); ++k) {
      cf::data::gather(data.train, plan[k], x, y);
      const auto m = model.train_step(x, y);
      if (!m.skipped) {
        loss_sum += m.loss * static_cast<double>(y.size());
        counted += static_cast<long long>(y.size());
      }
      seen += static_cast<long long>(y.size());
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double sps = static_cast<double>(seen) / el;
      progress.update(k + 1, loss_sum / static_cast<double>(std::max(counted, 1LL)), sps,
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
        "%d Last batch accuracy: %.4f Test accuracy: %.4f   (train loss %.4f, test loss %.4f, %.1f s, %.0f "
        "samples/s)\n",
        epoch, last_acc, test.accuracy, rows.back().train_loss, test.loss, secs, rows.back().samples_per_second);
    if (model.skipped_steps() > skipped_before)
      std::printf("  %lld of %zu steps skipped this epoch: non-finite loss or gradient (--on-nonfinite skip)\n",
                  model.skipped_steps() - skipped_before, plan.size());
    std::fflush(stdout);
    if (!o.csv.empty()) write_csv(o.csv, rows);
    if (!o.save.empty()) model.save(o.save, {{"epochs", std::to_string(epochs_before + epoch + 1)}});
  }
  if (!o.save.empty() && o.epochs == 0) model.save(o.save, {{"epochs", std::to_string(epochs_before)}});
  if (!o.save.empty()) std::printf("model saved to %s\n", o.save.c_str());
  const auto final_test = model.evaluate(data.test);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("done: test accuracy %.2f%% (%ld/%ld), test loss %.4f; %d epochs in %.1f s, training %.0f samples/s\n",
              100 * final_test.accuracy, std::lround(final_test.accuracy * static_cast<double>(data.test.size())),
              static_cast<long>(data.test.size()), final_test.loss, o.epochs, total,
              train_seconds > 0 ? static_cast<double>(trained) / train_seconds : 0.0);
  if (!o.plot.empty() && !rows.empty()) {
    mnist::Series loss{"training loss (mean cross-entropy)", "#d62728", {}, false};
    mnist::Series acc{"test accuracy", "#1f77b4", {}, true};
    for (const auto& r : rows) {
      loss.values.push_back(r.train_loss);
      acc.values.push_back(r.test_accuracy);
    }
    std::ostringstream caption;
    caption << "mnist_rnn: " << o.layers << " x " << mnist::cell_kind_name(o.cell) << "(" << o.units << "), batch "
            << o.batch << ", Adam(" << o.lr << "), " << data.train.size() << " training digits";
    mnist::write_svg_chart(o.plot, caption.str(), {loss, acc});
    std::printf("chart written to %s\n", o.plot.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
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
