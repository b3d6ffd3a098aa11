// The seed program as a user writes it with cellflow: each MNIST digit is read as 28 time steps
// of 28 pixels by 3 stacked BasicLSTMCell(150) layers; a dense layer on the top layer's final h
// gives the logits; sparse softmax cross-entropy, Adam(0.001), batches of 150, 10 epochs, and
// the test accuracy after every epoch: the TensorFlow 1.x program of
// docs/porting-from-tensorflow.md, ported. mnist_rnn.cpp is the same model with options,
// checkpoints, a progress bar and a chart.
//
//   mnist_minimal [DATA_DIR] [--epochs N] [--limit N]
//
// DATA_DIR holds the four MNIST (or Fashion-MNIST) IDX files, raw or .gz: by default the 8,000
// training and 2,000 test digits shipped in data/mnist-subset. --epochs N and --limit N (train
// on the first N training digits only) make a quick run.
#include <cellflow/cellflow.hpp>
#include <cellflow/io.hpp>  // MNIST files and shuffled batches: link cellflow::io (zlib)

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef CELLFLOW_DEFAULT_DATA_DIR  // examples/CMakeLists.txt points it at the repository's digits
#define CELLFLOW_DEFAULT_DATA_DIR "data/mnist-subset"
#endif

namespace cf = cellflow;

int main(int argc, char** argv) {
  std::string data_dir = CELLFLOW_DEFAULT_DATA_DIR;
  long n_epochs = 10, limit = 0;
  auto usage = [] {
    std::fprintf(stderr, "usage: mnist_minimal [DATA_DIR] [--epochs N] [--limit N]\n");
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--epochs" || arg == "--limit") && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || n < 0) return usage();
      (arg == "--epochs" ? n_epochs : limit) = n;
    } else if (!arg.empty() && arg[0] != '-') {
      data_dir = arg;
    } else {
      return usage();
    }
  }

  try {
    auto mnist = cf::data::load_mnist_dir<float>(data_dir);  // images [n, 28, 28] in [0, 1], labels
    if (limit > 0 && limit < mnist.train.size()) mnist.train = cf::data::head(mnist.train, limit);

    const cf::Index n_inputs = 28, n_neurons = 150, n_outputs = 10, batch_size = 150;
    const int n_layers = 3;
    const float learning_rate = 0.001f;

    cf::Rng rng(42);  // every initial weight and the batch order come from this seed
    std::vector<cf::BasicLSTMCell<float>> lstm_cells;
    for (int layer = 0; layer < n_layers; ++layer)
      lstm_cells.emplace_back(layer == 0 ? n_inputs : n_neurons, n_neurons, rng);
    cf::MultiRNNCell<float> multi_cell(std::move(lstm_cells));
    cf::Dense<float> dense(n_neurons, n_outputs, rng);
    cf::VariableList<float> vars;  // what the optimizer updates, by TF name (rnn/multi_rnn_cell/...)
    vars.add(multi_cell, "rnn").add(dense);
    cf::AdamOptimizer<float> optimizer(learning_rate);

    cf::RNNOptions training;  // each core runs a slice of every batch (OpenMP), same numbers
    training.batch_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cf::RNNOptions inference = training;
    inference.training = false;  // forward only: keeps no activations for backward

    auto accuracy = [&](const cf::Tensor3<float>& X, const std::vector<int>& y) {
      const auto rnn = cf::dynamic_rnn(multi_cell, X, inference);
      const cf::Matrix<float> logits = dense(rnn.final_state.back().h());
      return cf::mean_of(cf::in_top_k(logits, y, 1));
    };

    cf::data::ShuffleBatches batches(mnist.train.size(), batch_size, rng);  // shuffle_batch()
    cf::Tensor3<float> X_batch;
    std::vector<int> y_batch;
    for (long epoch = 0; epoch < n_epochs; ++epoch) {
      for (const auto& indices : batches.epoch()) {
        cf::data::gather(mnist.train, indices, X_batch, y_batch);
        vars.zero_grad();  // backward calls add to the gradients
        auto rnn = cf::dynamic_rnn(multi_cell, X_batch, training);
        const cf::Matrix<float>& top_layer_h_state = rnn.final_state.back().h();  // states[-1][1]
        const cf::Matrix<float> logits = dense(top_layer_h_state);
        const auto xentropy = cf::sparse_softmax_cross_entropy_with_logits(y_batch, logits);
        // optimizer.minimize(reduce_mean(xentropy)): backward through the head, then through time
        auto d_states = multi_cell.zero_state(X_batch.dimension(0));
        d_states.back().h() = dense.backward(top_layer_h_state, xentropy.mean_gradient());
        cf::dynamic_rnn_backward(multi_cell, rnn, nullptr, &d_states);
        optimizer.apply_gradients(vars);
      }
      const double acc_batch = accuracy(X_batch, y_batch);
      const double acc_test = accuracy(mnist.test.images, mnist.test.labels);
      std::printf("%ld Last batch accuracy: %.4f Test accuracy: %.4f\n", epoch, acc_batch, acc_test);
      std::fflush(stdout);
    }
  } catch (const cf::Error& e) {  // a missing or malformed data file, named in the message
    std::fprintf(stderr, "mnist_minimal: error: %s\n", e.what());
    return 1;
  }
}
