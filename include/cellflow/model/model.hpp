// Model: a recurrent classifier that owns its layers. A stack of cells (MultiRNNCell) reads
// [batch, time, depth] sequences, a dense head turns the top layer's final output into class
// logits, and sparse softmax cross-entropy is the loss: the TF1 program
//
//   cells   = [tf.nn.rnn_cell.GRUCell(64) for _ in range(2)]
//   _, states = tf.nn.dynamic_rnn(tf.nn.rnn_cell.MultiRNNCell(cells), X, sequence_length=lengths)
//   logits  = tf.layers.dense(states[-1], 4)
//   loss    = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
//   train   = tf.train.AdamOptimizer(0.01).minimize(loss)
//
// is, with cellflow,
//
//   cf::Model<float> model(/*input_depth=*/3, {cf::GRU(64), cf::GRU(64)}, /*classes=*/4, rng);
//   cf::AdamOptimizer<float> adam(0.01);
//   auto step = model.train_step(X, y, adam, {lengths});   // forward, loss, backward, Adam
//
// The model is built on the low-level API and computes exactly what a hand-written loop over
// dynamic_rnn, Dense, the loss, dynamic_rnn_backward and the optimizer computes, bitwise
// (tests/test_model.cpp checks it). Its variables have TF's names
// ("rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel", ..., "dense/kernel", "dense/bias"), so
// TF weights load 1:1. Copying a model copies its weights (the copy trains on its own); moving is
// cheap (no weight is copied).
//
// save() writes a checkpoint (io/checkpoint.hpp) whose metadata also holds the architecture
// (model/architecture.hpp); load_model<T>(path) rebuilds the model from the file alone.
//
// A bidirectional model (ModelConfig::bidirectional, bidirectional_classifier) runs its layers
// as tf.contrib.rnn.stack_bidirectional_dynamic_rnn (rnn/stack_bidirectional.hpp), one forward
// and one backward cell per layer, and its head reads the top layer's final h of both
// directions side by side, as the TF1 program
//
//   outputs, states_fw, states_bw = tf.contrib.rnn.stack_bidirectional_dynamic_rnn(
//       cells_fw, cells_bw, X, sequence_length=lengths, dtype=tf.float32)
//   logits = tf.layers.dense(tf.concat([states_fw[-1].h, states_bw[-1].h], 1), 10)
//
// (`states[-1]` itself for GRU cells). It cannot stream (ModelStream): its backward direction
// reads every sequence from its end.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cellflow/cells/cell_state.hpp"
#include "cellflow/core/build_check.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/layers/dense.hpp"
#include "cellflow/layers/softmax.hpp"
#include "cellflow/losses/sparse_softmax_cross_entropy.hpp"
#include "cellflow/metrics/argmax.hpp"
#include "cellflow/metrics/in_top_k.hpp"
#include "cellflow/model/architecture.hpp"
#include "cellflow/optimizers/clip_by_global_norm.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/rnn/dynamic_rnn.hpp"
#include "cellflow/rnn/multi_rnn_cell.hpp"
#include "cellflow/rnn/stack_bidirectional.hpp"
#include "cellflow/train/gradient_hook.hpp"
#include "cellflow/train/numeric_guard.hpp"

namespace cellflow {

/// What a training step does when the loss or a gradient is NaN or infinite.
enum class NonFinitePolicy {
  stop,  ///< throw NumericError naming the step (and the variable and entry of a gradient)
  skip   ///< leave the weights and the optimizer untouched; the step reports skipped = true
};

/// Options of Model::train_step (and of every step of fit).
struct TrainOptions {
  /// Per-example lengths of this batch (dynamic_rnn's sequence_length); none: all steps count.
  SequenceLengths sequence_length;
  /// Slices of the batch run in parallel (RNNOptions::batch_threads); 0: one per hardware thread.
  int batch_threads = 0;
  /// > 0: tf.clip_by_global_norm(gradients, clip_norm) before the optimizer's step.
  double clip_norm = 0;
  /// What a non-finite loss or gradient does.
  NonFinitePolicy on_nonfinite = NonFinitePolicy::stop;
  /// Data-parallel training (train/gradient_hook.hpp; mpi::GradientAllreduce implements it over
  /// MPI): the step's gradients and statistics become the global batch's before the non-finite
  /// check, clipping and the update. Null: this batch alone.
  GradientHook* gradient_hook = nullptr;
  /// The random draw of the layers' dropout masks (RNNOptions::draw; with_dropout layers). Unset:
  /// the model's training step count (steps()). fit sets it to the step's index in the whole
  /// run, so a run resumed with initial_epoch drops the units the uninterrupted run would have.
  std::optional<std::uint64_t> draw;
};

/// Options of Model::evaluate, predict, predict_proba and logits (forward only).
struct InferenceOptions {
  /// Per-example lengths (dynamic_rnn's sequence_length); none: all steps count.
  SequenceLengths sequence_length;
  /// Slices of a batch run in parallel; 0: one per hardware thread.
  int batch_threads = 0;
  /// Examples run at once (bounds the memory of a large set); 0: 256.
  Index batch_size = 0;
  /// The recurrent layers' arithmetic (RNNOptions::precision): fp32 (exact, the default) or, for a
  /// float model, bf16 (kernels stored as bfloat16, float sums; core/precision.hpp). The dense
  /// head stays in the model's type either way.
  Precision precision = Precision::fp32;
  /// bf16 on a CPU without AVX512-BF16: the portable kernel (default) or UnsupportedCpuError.
  Bf16Fallback bf16_fallback = Bf16Fallback::portable;
};

/// What one training step reports.
struct StepResult {
  double loss = 0;         ///< mean cross-entropy of the batch (before the update)
  double accuracy = 0;     ///< share of examples whose largest logit is their label (before the update)
  bool skipped = false;    ///< the update was not applied (NonFinitePolicy::skip)
  double global_norm = 0;  ///< the gradients' global norm before clipping (computed only with clip_norm)
};

/// Loss and accuracy over a set of examples.
struct Metrics {
  double loss = 0;      ///< mean cross-entropy per example
  double accuracy = 0;  ///< share of examples classified right (in_top_k with k = 1)
  Index examples = 0;   ///< examples evaluated
};

namespace detail {

/// `requested` slices, or one per hardware thread for 0; ValueError for a negative count.
inline int resolve_threads(int requested, const char* op) {
  if (requested < 0) throw ValueError(concat(op, ": batch_threads must be >= 0 (0: all cores), given ", requested));
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace detail

/// A recurrent classifier that owns its layers: a MultiRNNCell, a dense head on the top layer's
/// final output, sparse softmax cross-entropy (see the top of this header).
template <class T>
class Model {
 public:
  using Scalar = T;  ///< float or double

  /// The model `config` describes, its weights drawn from `rng` with TF's initializers (layer 0
  /// first, then the head: the order a hand-written program creates them in).
  /// A bidirectional config draws layer 0's forward cell, its backward cell, then layer 1's, ...
  /// (TF's creation order).
  Model(ModelConfig config, Rng& rng) : config_(std::move(config)) {
    detail::check_scalar<T>();
    config_.validate();
    if (config_.bidirectional) {
      fw_ = std::make_unique<std::vector<AnyCell<T>>>();
      bw_ = std::make_unique<std::vector<AnyCell<T>>>();
      for (const auto& c : config_.cells) {
        fw_->push_back(make_cell<T>(c, c.input_depth, rng));
        // The backward cell's dropout masks must not repeat the forward cell's: its seed is the
        // layer's dropout_seed with bit 52 flipped (still below 2^53, and no layer's own seed).
        CellConfig bw = c;
        if (detail::has_dropout(bw))
          bw.options["dropout_seed"] =
              static_cast<double>(static_cast<std::uint64_t>(c.get("dropout_seed")) ^ (std::uint64_t(1) << 52));
        bw_->push_back(make_cell<T>(bw, c.input_depth, rng));
      }
    } else {
      std::vector<AnyCell<T>> cells;
      for (const auto& c : config_.cells) cells.push_back(make_cell<T>(c, c.input_depth, rng));
      rnn_ = std::make_unique<MultiRNNCell<T>>(std::move(cells));
    }
    head_ = std::make_unique<Dense<T>>(config_.rnn_output_size(), config_.classes, rng, config_.head_name);
    bind();
  }

  /// A classifier: `cells` (BasicLSTM(150), LSTM(...), GRU(64), ...) stacked over inputs of
  /// `input_depth` features, a dense head with `classes` outputs.
  Model(Index input_depth, std::vector<CellConfig> cells, Index classes, Rng& rng)
      : Model(classifier(input_depth, std::move(cells), classes), rng) {}

  /// From layers built by hand (any cells, e.g. with weights loaded from elsewhere) and a head
  /// reading the stack's output. Variables are named under `scope` as dynamic_rnn(stack) names
  /// them in TF ("rnn/multi_rnn_cell/cell_<l>/...").
  Model(MultiRNNCell<T> rnn, Dense<T> head, std::string scope = "rnn")
      : rnn_(std::make_unique<MultiRNNCell<T>>(std::move(rnn))), head_(std::make_unique<Dense<T>>(std::move(head))) {
    if (head_->input_size() != rnn_->output_size())
      throw ShapeError(detail::concat("Model: the head reads ", head_->input_size(), " features, the stack outputs ",
                                      rnn_->output_size()));
    config_.input_depth = rnn_->input_depth();
    for (Index l = 0; l < rnn_->num_layers(); ++l)
      config_.cells.push_back(detail::flat_cell_config(rnn_->layer(l).config()));
    config_.classes = head_->output_size();
    config_.scope = std::move(scope);
    config_.head_name = head_->name();
    detail::check_scope_name(config_.head_name, "Model", "the head's name", false);
    detail::check_scope_name(config_.scope, "Model", "scope", true);
    bind();
  }

  /// From one cell built by hand (any cell kind TF's dynamic_rnn takes on its own, e.g.
  /// `GRUCell<float>(3, 64, rng)`) and a head reading its output. Variables are named as
  /// dynamic_rnn(cell) names them in TF: "<scope>/<cell scope>/..." (ModelConfig::multi_rnn_cell
  /// is false).
  Model(AnyCell<T> cell, Dense<T> head, std::string scope = "rnn")
      : Model(MultiRNNCell<T>(std::vector<AnyCell<T>>{std::move(cell)}), std::move(head), std::move(scope)) {
    config_.multi_rnn_cell = false;
    bind();
  }

  /// A deep copy: the copy owns its own weights (and no training buffers).
  Model(const Model& o)
      : config_(o.config_),
        rnn_(o.rnn_ ? std::make_unique<MultiRNNCell<T>>(*o.rnn_) : nullptr),
        fw_(o.fw_ ? std::make_unique<std::vector<AnyCell<T>>>(*o.fw_) : nullptr),
        bw_(o.bw_ ? std::make_unique<std::vector<AnyCell<T>>>(*o.bw_) : nullptr),
        head_(std::make_unique<Dense<T>>(*o.head_)),
        steps_(o.steps_),
        skipped_(o.skipped_) {
    bind();
  }
  /// A deep copy, as the copy constructor.
  Model& operator=(const Model& o) {
    if (this != &o) *this = Model(o);
    return *this;
  }
  /// Moves the layers (no weight is copied); the moved-from model may only be destroyed or
  /// assigned to.
  Model(Model&&) noexcept = default;
  /// Takes `o`'s layers (no weight is copied).
  Model& operator=(Model&&) noexcept = default;

  // ---- training ----

  /// One training step on a batch: forward, loss, backward through time, clipping (with
  /// options.clip_norm), `optimizer`'s update. Gradients are set to zero first, so they hold this
  /// step's after it. Returns the batch's loss and accuracy from the forward pass that trained.
  /// inputs [batch, time, input_depth]; labels: one class in [0, classes) per example.
  /// With options.gradient_hook the batch is this rank's part of a global batch: the gradients,
  /// loss and accuracy are the global batch's, and a non-finite loss on any rank is seen by all.
  template <class Label>
  StepResult train_step(const Tensor3<T>& inputs, const std::vector<Label>& labels, Optimizer<T>& optimizer,
                        const TrainOptions& options = {}) {
    static const char* op = "Model::train_step";
    check_batch(inputs, labels, options.sequence_length, op);
    if (!(options.clip_norm >= 0) || !std::isfinite(options.clip_norm))
      throw ValueError(
          detail::concat(op, ": clip_norm must be finite and >= 0 (0: no clipping), given ", options.clip_norm));
    RNNOptions ro;
    ro.sequence_length = options.sequence_length;
    ro.batch_threads = detail::resolve_threads(options.batch_threads, op);
    ro.training = true;
    ++steps_;
    ro.draw = options.draw ? *options.draw : static_cast<std::uint64_t>(steps_);
    vars_.zero_grad();
    const Matrix<T>& h = forward_for_training(inputs, ro);  // TF: states[-1][1] (LSTM), states[-1] (GRU)
    const Matrix<T> logits = (*head_)(h);
    const auto xent = sparse_softmax_cross_entropy_with_logits(labels, logits);
    StepResult r;
    r.loss = xent.mean();
    r.accuracy = mean_of(in_top_k(logits, labels, 1));
    GradientHook* hook = options.gradient_hook;
    if (hook == nullptr) {
      if (!std::isfinite(r.loss)) {
        if (options.on_nonfinite == NonFinitePolicy::stop) check_finite_loss(r.loss, steps_);
        return skip(r);
      }
      backward_rnn(head_->backward(h, xent.mean_gradient()), nullptr);
    } else {
      // Every rank goes through the whole backward pass, even with a non-finite loss: the others
      // wait for its gradients, and the NaN they carry makes every rank see the same step.
      BatchStats stats;
      stats.examples = h.rows();
      stats.loss_sum = xent.loss.template cast<double>().sum();
      stats.correct = r.accuracy * static_cast<double>(stats.examples);
      const Index global = hook->begin_backward(stats);
      if (global < stats.examples)
        throw ValueError(detail::concat(op, ": the gradient hook says the global batch has ", global,
                                        " examples, fewer than this rank's ", stats.examples));
      const Matrix<T> d_h = head_->backward(h, xent.backprop / static_cast<T>(global));
      hook->gradients_ready(groups_.front().first, groups_.front().second);
      struct LayerDone final : BackwardObserver {
        GradientHook* hook;
        const std::vector<std::pair<std::size_t, std::size_t>>* groups;
        void layer_done(Index l) override {
          const auto& g = (*groups)[groups->size() - 1 - static_cast<std::size_t>(l)];
          hook->gradients_ready(g.first, g.second);
        }
        void step_done() override { hook->backward_progress(); }
      } observer;
      observer.hook = hook;
      observer.groups = &groups_;
      backward_rnn(d_h, &observer);
      hook->end_backward(stats);
      r.loss = stats.examples > 0 ? stats.loss_sum / static_cast<double>(stats.examples) : 0.0;
      r.accuracy = stats.examples > 0 ? stats.correct / static_cast<double>(stats.examples) : 0.0;
      if (!std::isfinite(r.loss)) {
        if (options.on_nonfinite == NonFinitePolicy::stop) check_finite_loss(r.loss, steps_);
        return skip(r);
      }
    }
    if (first_non_finite_gradient(vars_)) {
      if (options.on_nonfinite == NonFinitePolicy::stop) check_finite_gradients(vars_, steps_);
      return skip(r);
    }
    if (options.clip_norm > 0) r.global_norm = clip_by_global_norm(vars_, options.clip_norm);
    optimizer.apply_gradients(vars_);
    return r;
  }

  /// Training steps attempted (train_step calls that got past the argument checks).
  long long steps() const { return steps_; }
  /// Of those, the steps skipped under NonFinitePolicy::skip.
  long long skipped_steps() const { return skipped_; }

  // ---- inference (forward only: no training buffers, safe from many threads at once) ----

  /// Logits [batch, classes] of inputs [batch, time, input_depth].
  Matrix<T> logits(const Tensor3<T>& inputs, const InferenceOptions& options = {}) const {
    check_inputs(inputs, options.sequence_length, "Model::logits");
    Matrix<T> out(inputs.dimension(0), classes());
    for_chunks(inputs, options, "Model::logits",
               [&](Index start, const Matrix<T>& l) { out.middleRows(start, l.rows()) = l; });
    return out;
  }

  /// Class probabilities [batch, classes] (the softmax of the logits; each row sums to 1).
  Matrix<T> predict_proba(const Tensor3<T>& inputs, const InferenceOptions& options = {}) const {
    return softmax(logits(inputs, options));
  }

  /// The predicted class of every example (the index of its largest logit, the first on a tie).
  std::vector<Index> predict(const Tensor3<T>& inputs, const InferenceOptions& options = {}) const {
    return argmax(logits(inputs, options));
  }

  /// Loss and accuracy of the model on labelled examples, forward only.
  template <class Label>
  Metrics evaluate(const Tensor3<T>& inputs, const std::vector<Label>& labels,
                   const InferenceOptions& options = {}) const {
    check_batch(inputs, labels, options.sequence_length, "Model::evaluate");
    double loss = 0, hits = 0;
    for_chunks(inputs, options, "Model::evaluate", [&](Index start, const Matrix<T>& l) {
      const std::vector<Label> y(labels.begin() + start, labels.begin() + start + l.rows());
      const auto xent = sparse_softmax_cross_entropy_with_logits(y, l);
      loss += xent.loss.template cast<double>().sum();
      hits += mean_of(in_top_k(l, y, 1)) * static_cast<double>(l.rows());
    });
    const auto n = static_cast<double>(labels.size());
    return Metrics{loss / n, hits / n, static_cast<Index>(labels.size())};
  }

  /// Loss and accuracy over a whole data set (its lengths, if it has any, are used).
  Metrics evaluate(const data::Dataset<T>& data, InferenceOptions options = {}) const {
    if (data.has_lengths()) options.sequence_length = data.lengths;
    if (data.images.dimension(0) != data.size())
      throw ShapeError(detail::concat("Model::evaluate: the dataset has ", data.images.dimension(0), " examples but ",
                                      data.size(), " labels"));
    return evaluate(data.images, data.labels, options);
  }

  // ---- the parts ----

  /// The architecture (what save() records and load_model rebuilds).
  const ModelConfig& config() const { return config_; }
  /// Features per time step the model reads.
  Index input_depth() const { return config_.input_depth; }
  /// Number of classes (outputs of the head).
  Index classes() const { return head_->output_size(); }
  /// The recurrent stack (layer(l) gives each cell; TF: the MultiRNNCell). ValueError for a
  /// bidirectional model (it has cells_fw() and cells_bw() instead).
  MultiRNNCell<T>& rnn() { return *checked_rnn("Model::rnn()"); }
  /// The recurrent stack, read-only; ValueError for a bidirectional model.
  const MultiRNNCell<T>& rnn() const { return *checked_rnn("Model::rnn()"); }
  /// Whether the recurrent part is a bidirectional stack (ModelConfig::bidirectional).
  bool bidirectional() const { return config_.bidirectional; }
  /// A bidirectional model's forward cells, layer 0 first (TF's cells_fw); ValueError otherwise.
  const std::vector<AnyCell<T>>& cells_fw() const { return *checked_cells(fw_, "Model::cells_fw()"); }
  /// A bidirectional model's forward cells, to change their weights; ValueError otherwise.
  std::vector<AnyCell<T>>& cells_fw() { return *checked_cells(fw_, "Model::cells_fw()"); }
  /// A bidirectional model's backward cells, layer 0 first (TF's cells_bw); ValueError otherwise.
  const std::vector<AnyCell<T>>& cells_bw() const { return *checked_cells(bw_, "Model::cells_bw()"); }
  /// A bidirectional model's backward cells, to change their weights; ValueError otherwise.
  std::vector<AnyCell<T>>& cells_bw() { return *checked_cells(bw_, "Model::cells_bw()"); }
  /// The dense head on the top layer's final output.
  Dense<T>& head() { return *head_; }
  /// The dense head, read-only.
  const Dense<T>& head() const { return *head_; }
  /// Every variable, by TF name, in creation order: what an optimizer steps and a checkpoint holds.
  VariableList<T>& variables() { return vars_; }
  /// Every variable, read-only.
  const VariableList<T>& variables() const { return vars_; }
  /// Trainable scalars in all variables.
  Index num_parameters() const { return vars_.num_scalars(); }

  /// Visits every variable as (TF name, Parameter&), as cells do.
  template <class F>
  void for_each_variable(const std::string& scope, F&& f) {
    if (config_.bidirectional) {
      for (std::size_t l = 0; l < fw_->size(); ++l) for_each_layer_variable(static_cast<Index>(l), scope, f);
    } else if (config_.multi_rnn_cell)
      rnn_->for_each_variable(detail::join_scope(scope, config_.scope), f);
    else
      rnn_->layer(0).for_each_variable(detail::join_scope(scope, config_.scope), std::ref(f));
    head_->for_each_variable(scope, f);
  }

  /// The variables in the order backward finishes their gradients, as ranges [first, last) of
  /// variables(): the head's first, then each layer's from the top down (GradientHook's groups).
  const std::vector<std::pair<std::size_t, std::size_t>>& gradient_groups() const { return groups_; }

  /// Sets every gradient to zero (train_step does it itself).
  void zero_grad() { vars_.zero_grad(); }

  /// A table of the layers, their outputs and parameter counts (Keras's model.summary()).
  std::string summary() const {
    std::ostringstream s;
    s << "layer                          output          parameters\n";
    Index total = 0;
    const auto row = [&](const std::string& name, const std::string& shape, Index params) {
      s << name << std::string(name.size() < 31 ? 31 - name.size() : 1, ' ') << shape
        << std::string(shape.size() < 16 ? 16 - shape.size() : 1, ' ') << params << "\n";
      total += params;
    };
    auto& self = const_cast<Model&>(*this);  // for_each_variable only reads here
    for (Index l = 0; l < num_layers(); ++l) {
      Index params = 0;
      self.for_each_layer_variable(l, "", [&](const std::string&, Parameter<T>& p) { params += p.size(); });
      const CellConfig c = detail::flat_cell_config(config_.bidirectional ? (*fw_)[static_cast<std::size_t>(l)].config()
                                                                          : rnn_->layer(l).config());
      if (config_.bidirectional)
        row(detail::concat("bidirectional ", c.kind, "(", c.num_units, ")"),
            detail::concat("[batch, ", 2 * c.output_size, "]"), params);
      else
        row(detail::concat(c.kind, "(", c.num_units, ")"), detail::concat("[batch, ", c.output_size, "]"), params);
    }
    row(detail::concat("Dense(", classes(), ") '", head_->name(), "'"), detail::concat("[batch, ", classes(), "]"),
        head_->kernel().size() + head_->bias().size());
    s << "total parameters: " << total << "\n";
    return s.str();
  }

  // ---- files ----

  /// The metadata key under which a checkpoint holds the architecture text.
  static constexpr const char* kArchitectureKey = "cellflow.model";

  /// The bytes save() writes: every variable, `optimizer`'s state when given, the architecture
  /// and `metadata` (keys other than "cellflow.model").
  std::vector<std::uint8_t> checkpoint_bytes(const Optimizer<T>* optimizer = nullptr,
                                             io::CheckpointMetadata metadata = {}) const {
    metadata[kArchitectureKey] = architecture_text("Model::checkpoint_bytes");
    return io::checkpoint_bytes(vars_, optimizer, metadata);
  }

  /// Saves the model (architecture, weights), `optimizer`'s whole state when given (to resume
  /// training) and `metadata`, atomically: a failed save leaves a previous file intact
  /// (io::save_checkpoint's policy). ValueError naming the layer, and no file written, when a cell
  /// has a user-supplied activation function (cells/activations.hpp): no architecture can hold
  /// one, so load_model could not rebuild the model. Save such a model's weights with
  /// io::save_checkpoint(path, model.variables()), and load them into a model built in code with
  /// load_weights.
  void save(const std::string& path, const Optimizer<T>* optimizer = nullptr,
            io::CheckpointMetadata metadata = {}) const {
    metadata[kArchitectureKey] = architecture_text("Model::save");
    io::save_checkpoint(path, vars_, optimizer, metadata);
  }

  /// Loads the weights (and `optimizer`'s state, when given) of a checkpoint into this model:
  /// a file of Model::save (whose architecture must equal this model's: every difference is
  /// listed; an architecture this cellflow cannot read, e.g. of a user's cell kind, is not
  /// compared) or of io::save_checkpoint (matched by variable name, e.g. older mnist_rnn files).
  /// On any error nothing changes. Returns the file's description (its metadata included).
  io::CheckpointInfo load_weights(const std::string& path, Optimizer<T>* optimizer = nullptr) {
    const io::CheckpointInfo info = io::read_checkpoint_info(path);
    const auto it = info.metadata.find(kArchitectureKey);
    // A file whose architecture this cellflow cannot read (a user's cell kind, a newer version)
    // still loads by variable name, which lists any mismatch itself.
    // A model with a user's activation function has no architecture text: it loads by name.
    if (it != info.metadata.end() && detail::first_custom_activation(config_.cells) < 0 &&
        it->second != to_text(config_) && readable_architecture(it->second)) {
      const ModelConfig file = model_config_from_text(it->second, detail::concat("load_weights: '", path, "'"));
      const std::vector<std::string> d =
          differences(rounded_to<T>(file), rounded_to<T>(config_), "the file", "the model");
      if (!d.empty()) {
        std::string list;
        for (const auto& line : d) list += "\n  " + line;
        throw ValueError(detail::concat("load_weights: '", path, "' holds another architecture (", d.size(),
                                        d.size() == 1 ? " difference" : " differences", "):", list,
                                        "\nload it with load_model<", scalar_name(), ">(path) to get its own model"));
      }
    }
    return io::load_checkpoint(path, vars_, optimizer);
  }

 private:
  template <class>
  friend class ModelStream;

  static const char* scalar_name() { return std::is_same_v<T, float> ? "float" : "double"; }

  /// to_text(config_), or ValueError starting with `op` when a layer's activation is a user's
  /// function (no text can hold it).
  std::string architecture_text(const char* op) const {
    if (const Index l = detail::first_custom_activation(config_.cells); l >= 0)
      throw ValueError(detail::concat(op, ": layer ", l, " (", rnn_->layer(l).cell_name(),
                                      ") has a user-supplied activation function, which a checkpoint's architecture ",
                                      "cannot hold (load_model could not rebuild it); save the weights with ",
                                      "io::save_checkpoint(path, model.variables()) and load them into a model built ",
                                      "in code with load_weights"));
    return to_text(config_);
  }

  static bool readable_architecture(const std::string& text) {
    try {
      model_config_from_text(text);
      return true;
    } catch (const ValueError&) {
      return false;
    }
  }

  StepResult skip(StepResult r) {
    ++skipped_;
    r.skipped = true;
    return r;
  }

  void bind() {
    vars_ = VariableList<T>();
    for_each_variable("", [this](const std::string& name, Parameter<T>& p) { vars_.add_one(name, p); });
    // Layer by layer, in variables() order (the layers, then the head), then reversed.
    groups_.clear();
    std::size_t first = 0;
    for (Index l = 0; l < num_layers(); ++l) {
      std::size_t n = 0;
      for_each_layer_variable(l, "", [&n](const std::string&, Parameter<T>&) { ++n; });
      groups_.emplace_back(first, first + n);
      first += n;
    }
    groups_.emplace_back(first, vars_.size());
    std::reverse(groups_.begin(), groups_.end());
  }

  Index num_layers() const { return config_.bidirectional ? static_cast<Index>(fw_->size()) : rnn_->num_layers(); }

  /// Layer l's variables under their full names (both cells of a bidirectional layer, fw first).
  template <class F>
  void for_each_layer_variable(Index l, const std::string& scope, F&& f) {
    if (!config_.bidirectional) {
      rnn_->layer(l).for_each_variable("", std::ref(f));
      return;
    }
    const auto k = static_cast<std::size_t>(l);
    const std::string s =
        detail::join_scope(detail::join_scope(scope, config_.scope), detail::concat("cell_", l, "/bidirectional_rnn"));
    (*fw_)[k].for_each_variable(s + "/fw", std::ref(f));
    (*bw_)[k].for_each_variable(s + "/bw", std::ref(f));
  }

  const MultiRNNCell<T>* checked_rnn(const char* op) const {
    if (!rnn_)
      throw ValueError(detail::concat(op, ": this model is bidirectional: it has no MultiRNNCell; its layers are ",
                                      "cells_fw() and cells_bw()"));
    return rnn_.get();
  }
  MultiRNNCell<T>* checked_rnn(const char* op) {
    return const_cast<MultiRNNCell<T>*>(static_cast<const Model&>(*this).checked_rnn(op));
  }
  static std::vector<AnyCell<T>>* checked_cells(const std::unique_ptr<std::vector<AnyCell<T>>>& cells, const char* op) {
    if (!cells) throw ValueError(detail::concat(op, ": this model is not bidirectional (its layers are rnn())"));
    return cells.get();
  }

  /// [h_fw, h_bw] of a bidirectional stack's top layer (what the head reads).
  static Matrix<T> top_h(const StackBidirectionalResult<T>& r) {
    const Matrix<T>& f = r.final_states_fw.back().h();
    const Matrix<T>& b = r.final_states_bw.back().h();
    Matrix<T> h(f.rows(), f.cols() + b.cols());
    h.leftCols(f.cols()) = f;
    h.rightCols(b.cols()) = b;
    return h;
  }

  /// train_step's forward pass of the recurrent part; returns the top h the head reads.
  const Matrix<T>& forward_for_training(const Tensor3<T>& inputs, const RNNOptions& ro) {
    if (!config_.bidirectional) {
      if (!cache_) cache_ = std::make_unique<RNNResult<MultiRNNCell<T>>>();
      dynamic_rnn_into(*cache_, *rnn_, inputs, ro);
      return cache_->final_state.back().h();
    }
    if (!bcache_) bcache_ = std::make_unique<StackBidirectionalResult<T>>();
    *bcache_ = stack_bidirectional_dynamic_rnn(*fw_, *bw_, inputs, BidirectionalOptions(ro));
    top_h_ = top_h(*bcache_);
    return top_h_;
  }

  /// Backward through the recurrent part from the gradient of the top h; `observer`, if given,
  /// hears of every layer (the top one first).
  void backward_rnn(const Matrix<T>& d_h, BackwardObserver* observer) {
    if (!config_.bidirectional) {
      auto d_state = rnn_->zero_state(d_h.rows());
      d_state.back().h() = d_h;
      dynamic_rnn_backward(*rnn_, *cache_, nullptr, &d_state, observer);
      return;
    }
    std::vector<CellState<T>> d_fw, d_bw;
    for (std::size_t l = 0; l < fw_->size(); ++l) {
      d_fw.push_back((*fw_)[l].zero_state(d_h.rows()));
      d_bw.push_back((*bw_)[l].zero_state(d_h.rows()));
    }
    const Index split = d_fw.back().h().cols();
    d_fw.back().h() = d_h.leftCols(split);
    d_bw.back().h() = d_h.rightCols(d_h.cols() - split);
    stack_bidirectional_dynamic_rnn_backward(*fw_, *bw_, *bcache_, nullptr, &d_fw, &d_bw);
    if (observer)
      for (Index l = num_layers(); l-- > 0;) observer->layer_done(l);
  }

  /// The top h of an inference pass (training = false) over x.
  Matrix<T> inference_h(const Tensor3<T>& x, const RNNOptions& ro, RNNResult<MultiRNNCell<T>>& r) const {
    if (config_.bidirectional) return top_h(stack_bidirectional_dynamic_rnn(*fw_, *bw_, x, BidirectionalOptions(ro)));
    dynamic_rnn_into(r, *rnn_, x, ro);
    return r.final_state.back().h();
  }

  void check_inputs(const Tensor3<T>& x, const SequenceLengths& lengths, const char* op) const {
    if (x.dimension(2) != input_depth() || x.dimension(0) <= 0 || x.dimension(1) <= 0)
      throw ShapeError(detail::concat(op, ": inputs are [", x.dimension(0), ", ", x.dimension(1), ", ", x.dimension(2),
                                      "], the model reads [batch >= 1, time >= 1, ", input_depth(), "]"));
    if (lengths) detail::check_lengths(*lengths, x.dimension(0), x.dimension(1), op);
  }

  template <class Label>
  void check_batch(const Tensor3<T>& x, const std::vector<Label>& labels, const SequenceLengths& lengths,
                   const char* op) const {
    static_assert(std::is_integral_v<Label>, "cellflow: labels must be integers");
    check_inputs(x, lengths, op);
    if (static_cast<Index>(labels.size()) != x.dimension(0))
      throw ShapeError(detail::concat(op, ": ", labels.size(), " labels for ", x.dimension(0),
                                      " examples; expected one per example"));
    for (std::size_t b = 0; b < labels.size(); ++b)
      if (!detail::label_in_range(labels[b], classes()))
        throw ValueError(detail::concat(op, ": labels[", b, "] = ", +labels[b], " is outside [0, ", classes(),
                                        ") (the model has ", classes(), " classes)"));
  }

  /// Runs the stack and the head over `x` in chunks of options.batch_size examples, calling
  /// f(first example, logits of the chunk).
  template <class F>
  void for_chunks(const Tensor3<T>& x, const InferenceOptions& options, const char* op, F&& f) const {
    if (options.batch_size < 0)
      throw ValueError(detail::concat(op, ": batch_size must be >= 0 (0: 256), given ", options.batch_size));
    const Index n = x.dimension(0), time = x.dimension(1), depth = x.dimension(2);
    const Index chunk = options.batch_size > 0 ? options.batch_size : 256;
    RNNOptions ro;
    ro.batch_threads = detail::resolve_threads(options.batch_threads, op);
    ro.training = false;
    ro.precision = options.precision;
    ro.bf16_fallback = options.bf16_fallback;
    RNNResult<MultiRNNCell<T>> r;
    if (n <= chunk) {
      ro.sequence_length = options.sequence_length;
      f(Index(0), (*head_)(inference_h(x, ro, r)));
      return;
    }
    Tensor3<T> part;
    for (Index start = 0; start < n; start += chunk) {
      const Index m = std::min(chunk, n - start);
      part.resize(m, time, depth);
      std::copy(x.data() + start * time * depth, x.data() + (start + m) * time * depth, part.data());
      if (options.sequence_length)
        ro.sequence_length =
            std::vector<Index>(options.sequence_length->begin() + start, options.sequence_length->begin() + start + m);
      f(start, (*head_)(inference_h(part, ro, r)));
    }
  }

  ModelConfig config_;
  std::unique_ptr<MultiRNNCell<T>> rnn_;              // on the heap: a move keeps every Parameter's address
  std::unique_ptr<std::vector<AnyCell<T>>> fw_, bw_;  // a bidirectional model's layers (rnn_ is null)
  std::unique_ptr<Dense<T>> head_;
  VariableList<T> vars_;
  std::vector<std::pair<std::size_t, std::size_t>> groups_;  // gradient_groups()
  std::unique_ptr<RNNResult<MultiRNNCell<T>>> cache_;        // train_step's buffers, reused
  std::unique_ptr<StackBidirectionalResult<T>> bcache_;      // the same, bidirectional
  Matrix<T> top_h_;                                          // train_step's [h_fw, h_bw] (bidirectional)
  long long steps_ = 0, skipped_ = 0;
};

/// Rebuilds the model a Model::save file holds, from the file alone: its architecture, then its
/// weights (no Rng; nothing to repeat in code), and `optimizer`'s state when given (to resume
/// training; the optimizer must be of the file's kind). Errors name the file and what was
/// expected: another scalar type than T, a checkpoint without an architecture (written by
/// io::save_checkpoint: build the model in code and call load_weights), a truncated or foreign
/// file, an unknown cell kind (from a newer cellflow).
template <class T>
Model<T> load_model(const std::string& path, Optimizer<T>* optimizer = nullptr) {
  const std::string ctx = detail::concat("load_model: '", path, "'");
  io::CheckpointInfo info;
  try {
    info = io::read_checkpoint_info(path);
  } catch (const IOError& e) {  // "read_checkpoint_info: 'path': ..." -> "load_model: 'path': ..."
    const std::string m = e.what(), prefix = "read_checkpoint_info: ";
    throw IOError("load_model: " + (m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m));
  }
  const char* want = std::is_same_v<T, float> ? "f32" : "f64";
  if (info.scalar_type != want)
    throw ValueError(detail::concat(ctx, ": the file holds a ", info.scalar_type == "f32" ? "float" : "double", " (",
                                    info.scalar_type, ") model; load it with load_model<",
                                    info.scalar_type == "f32" ? "float" : "double", ">"));
  const auto it = info.metadata.find(Model<T>::kArchitectureKey);
  if (it == info.metadata.end())
    throw ValueError(detail::concat(ctx, ": the checkpoint holds weights but no architecture (it was written by ",
                                    "io::save_checkpoint or an older cellflow, not Model::save); build the model in ",
                                    "code and call model.load_weights(path)"));
  const ModelConfig config = model_config_from_text(it->second, ctx);
  Rng rng(0);  // the initial weights are all replaced by the file's
  Model<T> model(config, rng);
  model.load_weights(path, optimizer);
  return model;
}

}  // namespace cellflow
