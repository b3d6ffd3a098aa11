// The seed program's model, as examples/mnist_rnn.cpp trains it and examples/classify_digit.cpp
// reloads it:
//
//   cells  = [BasicLSTMCell(150) for _ in range(3)]     # or LSTMCell(peepholes), GRUCell
//   multi  = MultiRNNCell(cells)
//   outputs, states = dynamic_rnn(multi, X, dtype=float32)
//   logits = dense(states[-1][1], 10)
//   loss   = reduce_mean(sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
//   train  = AdamOptimizer(0.001).minimize(loss)
//   acc    = reduce_mean(cast(in_top_k(logits, y, 1), float32))
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"

namespace mnist {

namespace cf = cellflow;
using cf::Index;

enum class CellKind { basic, peephole, gru };

inline CellKind parse_cell_kind(const std::string& s) {
  if (s == "basic") return CellKind::basic;
  if (s == "peephole") return CellKind::peephole;
  if (s == "gru") return CellKind::gru;
  throw cf::ValueError("--cell must be basic, peephole or gru, given '" + s + "'");
}

inline const char* cell_kind_name(CellKind k) {
  switch (k) {
    case CellKind::basic:
      return "basic";
    case CellKind::peephole:
      return "peephole";
    case CellKind::gru:
      return "gru";
  }
  return "?";
}

/// The architecture of a Classifier: what a checkpoint records so that a program can rebuild
/// the model it was saved from (and refuse a different one with a clear message).
struct ModelConfig {
  CellKind cell = CellKind::basic;
  int layers = 3;
  Index units = 150;
  Index inputs = 28;  ///< pixels per time step (image row)
  Index classes = 10;

  cf::io::CheckpointMetadata to_metadata() const {
    return {{"model", "mnist_rnn"},           {"cell", cell_kind_name(cell)},     {"layers", std::to_string(layers)},
            {"units", std::to_string(units)}, {"inputs", std::to_string(inputs)}, {"classes", std::to_string(classes)}};
  }

  /// "--cell basic --layers 3 --units 150", the command-line options that build this model.
  std::string options() const {
    return std::string("--cell ") + cell_kind_name(cell) + " --layers " + std::to_string(layers) + " --units " +
           std::to_string(units);
  }
};

/// The architecture recorded in a checkpoint written by mnist_rnn --save (Classifier::checkpoint_bytes).
inline ModelConfig config_from_checkpoint(const std::string& path) {
  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
  auto get = [&](const char* key) -> std::string {
    const auto it = info.metadata.find(key);
    if (it == info.metadata.end())
      throw cf::ValueError("checkpoint '" + path + "' has no '" + key +
                           "' entry in its metadata: it was not written by mnist_rnn --save");
    return it->second;
  };
  auto get_int = [&](const char* key, long long lo, long long hi) {
    const std::string v = get(key);
    std::size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size() || x < lo || x > hi)
      throw cf::ValueError("checkpoint '" + path + "': metadata '" + key + "' is '" + v +
                           "', expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  };
  if (get("model") != "mnist_rnn")
    throw cf::ValueError("checkpoint '" + path + "' holds a '" + get("model") + "' model, not an mnist_rnn one");
  ModelConfig c;
  c.cell = parse_cell_kind(get("cell"));
  c.layers = static_cast<int>(get_int("layers", 1, 64));
  c.units = get_int("units", 1, 1 << 16);
  c.inputs = get_int("inputs", 1, 1 << 16);
  c.classes = get_int("classes", 2, 1 << 16);
  return c;
}

/// What differs between the model in a file and the one a run asks for, e.g.
/// "--cell: the file has gru, this run basic"; empty when they are the same.
inline std::string config_differences(const ModelConfig& file, const ModelConfig& run) {
  std::string d;
  auto add = [&](const std::string& what, const std::string& a, const std::string& b) {
    if (a != b) d += (d.empty() ? "" : "; ") + what + ": the file has " + a + ", this run " + b;
  };
  add("--cell", cell_kind_name(file.cell), cell_kind_name(run.cell));
  add("--layers", std::to_string(file.layers), std::to_string(run.layers));
  add("--units", std::to_string(file.units), std::to_string(run.units));
  add("pixels per row (the data)", std::to_string(file.inputs), std::to_string(run.inputs));
  add("classes", std::to_string(file.classes), std::to_string(run.classes));
  return d;
}

/// `layers` cells of one kind, the first reading `input_depth` features, the others `units`.
inline cf::MultiRNNCell<float> build_stack(CellKind kind, int layers, Index input_depth, Index units, cf::Rng& rng) {
  if (layers < 1) throw cf::ValueError("the stack needs at least one layer, given " + std::to_string(layers));
  auto depth = [&](int l) { return l == 0 ? input_depth : units; };
  switch (kind) {
    case CellKind::basic: {
      std::vector<cf::BasicLSTMCell<float>> cells;
      for (int l = 0; l < layers; ++l) cells.emplace_back(depth(l), units, rng);
      return cf::MultiRNNCell<float>(std::move(cells));
    }
    case CellKind::peephole: {
      cf::LSTMOptions<float> opt;
      opt.use_peepholes = true;
      std::vector<cf::LSTMCell<float>> cells;
      for (int l = 0; l < layers; ++l) cells.emplace_back(depth(l), units, opt, rng);
      return cf::MultiRNNCell<float>(std::move(cells));
    }
    case CellKind::gru: {
      std::vector<cf::GRUCell<float>> cells;
      for (int l = 0; l < layers; ++l) cells.emplace_back(depth(l), units, rng);
      return cf::MultiRNNCell<float>(std::move(cells));
    }
  }
  throw cf::ValueError("unknown cell kind");
}

struct StepMetrics {
  double loss = 0;       ///< mean cross-entropy of the batch
  double accuracy = 0;   ///< share of in_top_k(logits, y, 1)
  bool skipped = false;  ///< the step was not applied (non-finite loss or gradient, skip policy)
};

/// What a training step does about divergence.
struct TrainGuards {
  float clip_norm = 0;          ///< > 0: clip_by_global_norm(gradients, clip_norm) before Adam
  bool skip_nonfinite = false;  ///< skip a step whose loss or gradient is not finite (else throw)
};

/// Stack + dense head + Adam: one object that trains and evaluates.
class Classifier {
 public:
  Classifier(const ModelConfig& config, float learning_rate, cf::Rng& rng)
      : config_(config),
        stack_(build_stack(config.cell, config.layers, config.inputs, config.units, rng)),
        dense_(config.units, config.classes, rng),
        adam_(learning_rate) {
    vars_.add(stack_, "rnn").add(dense_);
  }
  Classifier(const Classifier&) = delete;  // vars_ points into the members
  Classifier& operator=(const Classifier&) = delete;

  /// One training step on a batch: forward, loss, backward, Adam. Returns the batch's loss and
  /// accuracy from the forward pass that trained (before the update).
  /// A non-finite loss or gradient throws NumericError naming the step (and the variable), or
  /// with guards.skip_nonfinite leaves the weights and Adam untouched and returns skipped = true.
  StepMetrics train_step(const cf::Tensor3<float>& x, const std::vector<int>& y) {
    ++steps_;
    vars_.zero_grad();
    cf::dynamic_rnn_into(fwd_, stack_, x, fwd_opts_);          // reuses last step's buffers
    const cf::Matrix<float>& h = fwd_.final_state.back().h();  // TF: states[-1][1]
    const cf::Matrix<float> logits = dense_(h);
    const auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, logits);
    StepMetrics m{xent.mean(), cf::mean_of(cf::in_top_k(logits, y, 1)), false};
    if (!std::isfinite(m.loss)) {
      if (!guards_.skip_nonfinite) cf::check_finite_loss(m.loss, steps_);
      ++skipped_;
      m.skipped = true;
      return m;
    }
    auto d_state = stack_.zero_state(h.rows());
    d_state.back().h() = dense_.backward(h, xent.mean_gradient());
    cf::dynamic_rnn_backward(stack_, fwd_, nullptr, &d_state);
    if (cf::first_non_finite_gradient(vars_)) {
      if (!guards_.skip_nonfinite) cf::check_finite_gradients(vars_, steps_);
      ++skipped_;
      m.skipped = true;
      return m;
    }
    if (guards_.clip_norm > 0) last_global_norm_ = cf::clip_by_global_norm(vars_, guards_.clip_norm);
    adam_.apply_gradients(vars_);
    return m;
  }

  void set_guards(const TrainGuards& g) { guards_ = g; }
  /// Training steps attempted, and how many of them were skipped.
  long long steps() const { return steps_; }
  long long skipped_steps() const { return skipped_; }
  /// The gradients' global norm before clipping, at the last clipped step.
  double last_global_norm() const { return last_global_norm_; }

  /// Loss and accuracy of one batch with the current weights, forward only (the seed program's
  /// `accuracy.eval(feed_dict={X: X_batch, y: y_batch})`).
  StepMetrics evaluate_batch(const cf::Tensor3<float>& x, const std::vector<int>& y) const {
    cf::RNNOptions inference = fwd_opts_;
    inference.training = false;
    const auto r = cf::dynamic_rnn(stack_, x, inference);
    const cf::Matrix<float> logits = dense_(r.final_state.back().h());
    return StepMetrics{cf::sparse_softmax_cross_entropy_with_logits(y, logits).mean(),
                       cf::mean_of(cf::in_top_k(logits, y, 1))};
  }

  /// Loss and accuracy over a whole data set, forward only, in chunks.
  template <class Dataset>
  StepMetrics evaluate(const Dataset& data, Index chunk = 250) const {
    cf::RNNOptions inference = fwd_opts_;
    inference.training = false;
    const Index n = data.images.dimension(0), T = data.images.dimension(1), D = data.images.dimension(2);
    double loss = 0, hits = 0;
    cf::RNNResult<cf::MultiRNNCell<float>> r;  // reused across chunks: no page faults per chunk
    cf::Tensor3<float> x;
    for (Index start = 0; start < n; start += chunk) {
      const Index m = std::min(chunk, n - start);
      x.resize(m, T, D);
      std::copy(data.images.data() + start * T * D, data.images.data() + (start + m) * T * D, x.data());
      std::vector<int> y(data.labels.begin() + start, data.labels.begin() + start + m);
      cf::dynamic_rnn_into(r, stack_, x, inference);
      const cf::Matrix<float> logits = dense_(r.final_state.back().h());
      loss += cf::sparse_softmax_cross_entropy_with_logits(y, logits).loss.template cast<double>().sum();
      hits += cf::mean_of(cf::in_top_k(logits, y, 1)) * static_cast<double>(m);
    }
    return StepMetrics{loss / static_cast<double>(n), hits / static_cast<double>(n)};
  }

  /// Runs each batch as `n` slices on n threads (RNNOptions::batch_threads; same numbers up to
  /// float rounding).
  void set_batch_threads(int n) { fwd_opts_.batch_threads = n; }

  /// The head: logits [batch, classes] of the top layer's final h.
  cf::Matrix<float> logits(const cf::Matrix<float>& h) const { return dense_(h); }

  /// The bytes of a checkpoint of every variable, Adam's state and the architecture (plus `extra`
  /// metadata): what mnist_rnn --save writes (cf::io::checkpoint_bytes; cf::io::save_checkpoint would
  /// write the same bytes itself).
  std::vector<std::uint8_t> checkpoint_bytes(const cf::io::CheckpointMetadata& extra = {}) const {
    cf::io::CheckpointMetadata meta = config_.to_metadata();
    for (const auto& kv : extra) meta[kv.first] = kv.second;
    return cf::io::checkpoint_bytes(vars_, &adam_, meta);
  }

  /// Loads the variables (and Adam's state, to resume training) from a checkpoint of the same
  /// architecture; on any error nothing changes.
  cf::io::CheckpointInfo load(const std::string& path, bool with_optimizer) {
    return cf::io::load_checkpoint(path, vars_, with_optimizer ? &adam_ : nullptr);
  }

  const ModelConfig& config() const { return config_; }
  cf::VariableList<float>& variables() { return vars_; }
  cf::AdamOptimizer<float>& optimizer() { return adam_; }
  const cf::MultiRNNCell<float>& stack() const { return stack_; }
  Index num_parameters() const { return vars_.num_scalars(); }

 private:
  ModelConfig config_;
  cf::MultiRNNCell<float> stack_;
  cf::Dense<float> dense_;
  cf::AdamOptimizer<float> adam_;
  cf::VariableList<float> vars_;
  cf::RNNOptions fwd_opts_;
  cf::RNNResult<cf::MultiRNNCell<float>> fwd_;
  TrainGuards guards_;
  long long steps_ = 0, skipped_ = 0;
  double last_global_norm_ = 0;
};

}  // namespace mnist
