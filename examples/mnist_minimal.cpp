// The seed program on the model API: MNIST as 28 steps of 28 pixels, 3 x BasicLSTMCell(150), dense(10), Adam(0.001),
// batch 150, 10 epochs, seed 42; the seed's line per epoch (from 1). Usage: [DATA_DIR] [--epochs N] [--limit N]
#include <cellflow/cellflow.hpp>
#include <cellflow/io.hpp>  // MNIST files: link cellflow::io (zlib)
#include <cstdio>
#include <cstdlib>
#include <string>
namespace cf = cellflow;

int main(int argc, char** argv) try {                // a function-try-block: the catch below ends main
  std::string data_dir = CELLFLOW_DEFAULT_DATA_DIR;  // the four MNIST IDX files (CMake: data/mnist-subset)
  long epochs = 10, limit = 0;                       // --limit N: train on the first N digits only
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];  // an option, its value, or the data directory
    long* n = arg == "--epochs" ? &epochs : arg == "--limit" ? &limit : nullptr;
    char* end = nullptr;
    if (n && i + 1 < argc) *n = std::strtol(argv[++i], &end, 10);
    if (!n && arg[0] != '-')
      data_dir = arg;
    else if (!end || end == argv[i] || *end != '\0' || *n < 0 || *n > (1L << 30))
      return std::fprintf(stderr, "usage: mnist_minimal [DATA_DIR] [--epochs N] [--limit N]\n"), 2;
  }
  auto mnist = cf::data::load_mnist_dir<float>(data_dir);  // images [n, 28, 28] in [0, 1], labels
  if (limit > 0 && limit < mnist.train.size()) mnist.train = cf::data::head(mnist.train, limit);
  cf::Rng rng(42);
  cf::Model<float> model(/*input_depth=*/28, {cf::BasicLSTM(150), cf::BasicLSTM(150), cf::BasicLSTM(150)}, 10, rng);
  cf::AdamOptimizer<float> adam(0.001f);
  cf::FitOptions options;
  options.epochs = static_cast<int>(epochs);
  options.batch_size = 150;
  options.rng = &rng;       // the batch order from the generator that drew the weights
  options.verbose = false;  // no progress bar: the seed program's line only
  cf::fit(model, adam, mnist.train, mnist.test, options, cf::on_epoch_end([](const cf::EpochLogs& e) {
            std::printf("%d Last batch accuracy: %.4f Test accuracy: %.4f\n", e.epoch, e.last_batch_accuracy,
                        e.val_accuracy);
            std::fflush(stdout);
          }));                  // the test set is the validation data
} catch (const cf::Error& e) {  // a missing or malformed data file, named in the message
  return std::fprintf(stderr, "mnist_minimal: error: %s\n", e.what()), 1;
}
