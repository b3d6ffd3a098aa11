// Classifies one digit with a model trained and saved by mnist_rnn (--save FILE): the file alone
// gives the model (cf::load_model; no architecture options), the image is streamed into it one
// row (time step) at a time with ModelStream, as a live input would be, and the model's class
// probabilities after the last row are printed.
//
//   classify_digit --model mnist.ckpt --idx data/mnist-subset/t10k-images-idx3-ubyte.gz --index 7
//   classify_digit --model mnist.ckpt --pgm digit.pgm
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cellflow/cellflow.hpp"
#include "cellflow/io.hpp"
#include "support/args.hpp"
#include "support/mnist_config.hpp"
#include "support/pgm.hpp"

namespace cf = cellflow;
using cf::Index;

namespace {

const char* kUsage = R"(usage: classify_digit --model FILE (--idx IMAGES [--labels LABELS] [--index N] | --pgm FILE)

Loads a model saved by `mnist_rnn --save FILE` (its architecture comes from the file) and
classifies one 28x28 digit, fed to the model one row per time step; prints the top-3 classes
with their probabilities.

  --model FILE      checkpoint written by mnist_rnn --save (or any Model::save)
  --idx FILE        an IDX image file (raw or .gz), e.g. t10k-images-idx3-ubyte.gz
  --labels FILE     its IDX label file, to print the true label too (optional)
  --index N         which image of the IDX file                           [0]
  --pgm FILE        a PGM image (P5 or P2, white digit on black as in MNIST)
  --help            this text

Exit status: 0 done; 1 an error (the model or the image); 2 a bad command line.
)";

struct Options {
  std::string model, idx, labels, pgm;
  long long index = 0;
};

Options parse_options(int argc, char** argv) {
  Options o;
  support::ArgParser args("classify_digit", kUsage);
  args.path("--model", o.model, "a checkpoint file")
      .path("--idx", o.idx, "an IDX image file")
      .path("--labels", o.labels, "an IDX label file")
      .integer("--index", o.index, 0, 1LL << 40)
      .path("--pgm", o.pgm, "a PGM file");
  args.parse(argc, argv);
  if (o.model.empty()) args.fail("--model FILE is required");
  if (o.idx.empty() == o.pgm.empty()) args.fail("give exactly one of --idx FILE and --pgm FILE");
  if (!o.labels.empty() && o.idx.empty()) args.fail("--labels goes with --idx");
  if (args.given("--index") && o.idx.empty()) args.fail("--index goes with --idx");
  return o;
}

/// The model of a checkpoint: a file of Model::save (mnist_rnn --save) holds its architecture;
/// one of an older mnist_rnn holds its --cell/--layers/--units in its metadata, and the same
/// variables.
cf::Model<float> load(const std::string& path) {
  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
  if (support::has_architecture(info)) return cf::load_model<float>(path);
  cf::Rng rng(0);  // initial weights, all replaced by the file's
  cf::Model<float> model(support::checkpoint_config(info, path), rng);
  model.load_weights(path);
  return model;
}

int run(const Options& o) {
  const cf::Model<float> model = load(o.model);

  std::vector<std::uint8_t> pixels;
  Index rows = 0, cols = 0;
  int label = -1;
  if (!o.idx.empty()) {
    const auto images = cf::data::read_idx_images(o.idx);
    if (o.index >= images.count)
      throw cf::ValueError("--index " + std::to_string(o.index) + " is out of range: '" + o.idx + "' holds " +
                           std::to_string(images.count) + " images (0.." + std::to_string(images.count - 1) + ")");
    rows = images.rows;
    cols = images.cols;
    const auto first = images.pixels.begin() + static_cast<std::ptrdiff_t>(o.index * rows * cols);
    pixels.assign(first, first + static_cast<std::ptrdiff_t>(rows * cols));
    if (!o.labels.empty()) {
      const auto labels = cf::data::read_idx_labels(o.labels);
      if (static_cast<Index>(labels.size()) != images.count)
        throw cf::ValueError("'" + o.labels + "' holds " + std::to_string(labels.size()) + " labels, '" + o.idx + "' " +
                             std::to_string(images.count) + " images");
      label = labels[static_cast<std::size_t>(o.index)];
    }
  } else {
    const auto img = support::read_pgm(o.pgm);
    rows = img.rows;
    cols = img.cols;
    pixels = img.pixels;
  }
  if (cols != model.input_depth())
    throw cf::ShapeError("the image is " + std::to_string(rows) + "x" + std::to_string(cols) + " pixels; the model '" +
                         o.model + "' reads rows of " + std::to_string(model.input_depth()) + " pixels");

  // One row per time step through the model, the state carried by the stream.
  cf::ModelStream<float> stream(model);
  cf::Matrix<float> row(1, cols);
  for (Index t = 0; t < rows; ++t) {
    for (Index c = 0; c < cols; ++c)
      row(0, c) = static_cast<float>(pixels[static_cast<std::size_t>(t * cols + c)]) / 255.0f;
    stream.step(row);
  }
  const cf::Matrix<float> p = stream.predict_proba();  // [1, classes]
  std::vector<int> order(static_cast<std::size_t>(p.cols()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p(0, a) > p(0, b); });

  std::printf("%s: %ldx%ld digit", o.idx.empty() ? o.pgm.c_str() : (o.idx + " #" + std::to_string(o.index)).c_str(),
              static_cast<long>(rows), static_cast<long>(cols));
  if (label >= 0) std::printf(", true label %d", label);
  std::printf("\nmodel %s: %s\n", o.model.c_str(), support::describe(model.config()).c_str());
  for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k)
    std::printf("  %zu. class %d  p = %.4f\n", k + 1, order[k], static_cast<double>(p(0, order[k])));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  try {
    return run(o);
  } catch (const cf::Error& e) {
    std::fprintf(stderr, "classify_digit: error: %s\n", e.what());
    return 1;
  }
}
