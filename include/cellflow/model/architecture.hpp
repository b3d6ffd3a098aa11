// A model's architecture as data: the cells of its recurrent part (each a CellConfig, the TF
// class and its options), the head and the loss. Model<T> is built from one, a checkpoint of a
// model stores one (as text, see docs/checkpoint-format.md), and load_model rebuilds the model
// from it with no code repeating the definition.
//
//   cf::ModelConfig c = cf::classifier(/*input_depth=*/28, {cf::GRU(64), cf::GRU(64)}, /*classes=*/10);
//   cf::AnyCell<float> cell = cf::make_cell<float>(cf::LSTM(150, peepholes), /*input_depth=*/28, rng);
//
// The layer helpers are named as TF's classes without "Cell": BasicLSTM(150) describes
// tf.nn.rnn_cell.BasicLSTMCell(150), GRU(64) tf.nn.rnn_cell.GRUCell(64), BasicRNN(64,
// ActivationKind::relu) tf.nn.rnn_cell.BasicRNNCell(64, activation=tf.nn.relu). Their input depth
// is left 0: the model fills it in (the first layer reads the inputs, every other one the layer
// below). An architecture holds built-in activations only (tanh, relu): a cell with a user's
// activation function is built in code, and Model::save refuses to write its architecture.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/cells/activations.hpp"
#include "cellflow/cells/basic_rnn_cell.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/gru_cell.hpp"
#include "cellflow/cells/layer_norm_basic_lstm_cell.hpp"
#include "cellflow/cells/lstm_cell.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/detail/bytes.hpp"
#include "cellflow/rnn/any_cell.hpp"
#include "cellflow/rnn/dropout_wrapper.hpp"
#include "cellflow/version.hpp"

namespace cellflow {

namespace detail {
/// Records a built-in activation in c.options["activation"] (nothing for tanh, the default).
inline void set_activation(CellConfig& c, ActivationKind activation) {
  if (activation != ActivationKind::tanh) c.options["activation"] = static_cast<double>(static_cast<int>(activation));
}
}  // namespace detail

/// tf.nn.rnn_cell.BasicLSTMCell(num_units, forget_bias, activation) as a layer of a model
/// (activation tanh or relu: an architecture holds no user function).
inline CellConfig BasicLSTM(Index num_units, double forget_bias = 1.0,
                            ActivationKind activation = ActivationKind::tanh) {
  CellConfig c;
  c.kind = "BasicLSTMCell";
  c.num_units = c.output_size = num_units;
  c.options["forget_bias"] = forget_bias;
  detail::set_activation(c, activation);
  return c;
}

/// tf.nn.rnn_cell.LSTMCell(num_units, use_peepholes, cell_clip, num_proj, proj_clip,
/// forget_bias) as a layer of a model.
inline CellConfig LSTM(Index num_units, const LSTMOptions<double>& options = {}) {
  CellConfig c;
  c.kind = "LSTMCell";
  c.num_units = num_units;
  c.output_size = options.num_proj ? *options.num_proj : num_units;
  c.options["forget_bias"] = options.forget_bias;
  if (options.use_peepholes) c.options["use_peepholes"] = 1;
  if (options.cell_clip) c.options["cell_clip"] = *options.cell_clip;
  if (options.num_proj) c.options["num_proj"] = static_cast<double>(*options.num_proj);
  if (options.proj_clip) c.options["proj_clip"] = *options.proj_clip;
  detail::set_activation(c, options.activation.kind());
  return c;
}

/// tf.nn.rnn_cell.GRUCell(num_units, activation) as a layer of a model.
inline CellConfig GRU(Index num_units, ActivationKind activation = ActivationKind::tanh) {
  CellConfig c;
  c.kind = "GRUCell";
  c.num_units = c.output_size = num_units;
  detail::set_activation(c, activation);
  return c;
}

/// tf.nn.rnn_cell.BasicRNNCell(num_units, activation) as a layer of a model.
inline CellConfig BasicRNN(Index num_units, ActivationKind activation = ActivationKind::tanh) {
  CellConfig c;
  c.kind = "BasicRNNCell";
  c.num_units = c.output_size = num_units;
  detail::set_activation(c, activation);
  return c;
}

/// tf.contrib.cudnn_rnn.CudnnCompatibleGRUCell(num_units) (reset after the matmul) as a layer.
inline CellConfig CudnnCompatibleGRU(Index num_units) {
  CellConfig c;
  c.kind = "CudnnCompatibleGRUCell";
  c.num_units = c.output_size = num_units;
  return c;
}

/// tf.contrib.rnn.LayerNormBasicLSTMCell(num_units, forget_bias, layer_norm, norm_gain,
/// norm_shift, dropout_keep_prob, dropout_prob_seed) as a layer of a model (activation tanh).
inline CellConfig LayerNormBasicLSTM(Index num_units, const LayerNormBasicLSTMOptions<double>& options = {}) {
  CellConfig c;
  c.kind = "LayerNormBasicLSTMCell";
  c.num_units = c.output_size = num_units;
  c.options["forget_bias"] = options.forget_bias;
  c.options["layer_norm"] = options.layer_norm ? 1 : 0;
  c.options["norm_gain"] = options.norm_gain;
  c.options["norm_shift"] = options.norm_shift;
  c.options["dropout_keep_prob"] = options.dropout_keep_prob;
  if (options.dropout_prob_seed) c.options["dropout_prob_seed"] = static_cast<double>(*options.dropout_prob_seed);
  return c;
}

/// `cell` wrapped in tf.nn.rnn_cell.DropoutWrapper(cell, input_keep_prob, output_keep_prob,
/// state_keep_prob, variational_recurrent) as a layer of a model: the layer's CellConfig gets
/// those options (the ones that are not the default), make_cell builds a DropoutWrapper around
/// the cell, and the architecture text records them, so load_model rebuilds it. The seed of the
/// masks is the option dropout_seed, which a ModelConfig sets to the layer's index when it is not
/// given. Keep probabilities must be in (0, 1].
inline CellConfig with_dropout(CellConfig cell, double output_keep_prob, double input_keep_prob = 1.0,
                               double state_keep_prob = 1.0, bool variational_recurrent = false) {
  if (input_keep_prob != 1.0) cell.options["input_keep_prob"] = input_keep_prob;
  if (output_keep_prob != 1.0) cell.options["output_keep_prob"] = output_keep_prob;
  if (state_keep_prob != 1.0) cell.options["state_keep_prob"] = state_keep_prob;
  if (variational_recurrent) cell.options["variational_recurrent"] = 1;
  return cell;
}

/// The cell kinds make_cell builds and load_model reads, by TF class name.
inline const std::vector<std::string>& known_cell_kinds() {
  static const std::vector<std::string> kinds = {
      "BasicLSTMCell", "LSTMCell", "GRUCell", "CudnnCompatibleGRUCell", "LayerNormBasicLSTMCell", "BasicRNNCell"};
  return kinds;
}

namespace detail {

inline std::string known_kinds_list() {
  std::string s;
  for (const auto& k : known_cell_kinds()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

/// The options of a layer's DropoutWrapper (with_dropout), which every kind takes.
inline const std::vector<std::string>& dropout_options() {
  static const std::vector<std::string> o = {"input_keep_prob", "output_keep_prob", "state_keep_prob",
                                             "variational_recurrent", "dropout_seed"};
  return o;
}

/// Whether a layer's config asks for a DropoutWrapper (a keep probability or variational_recurrent set).
inline bool has_dropout(const CellConfig& c) {
  return c.has("input_keep_prob") || c.has("output_keep_prob") || c.has("state_keep_prob") ||
         c.has("variational_recurrent");
}

/// The options each kind takes besides dropout_options(); any other is an error (a typo must not
/// be ignored).
inline std::vector<std::string> allowed_options(const std::string& kind) {
  if (kind == "BasicLSTMCell") return {"forget_bias", "activation"};
  if (kind == "LSTMCell") return {"forget_bias", "use_peepholes", "cell_clip", "num_proj", "proj_clip", "activation"};
  if (kind == "GRUCell" || kind == "BasicRNNCell") return {"activation"};
  if (kind == "LayerNormBasicLSTMCell")
    return {"forget_bias", "layer_norm", "norm_gain", "norm_shift", "dropout_keep_prob", "dropout_prob_seed"};
  return {};
}

/// ValueError unless `c` describes a cell make_cell can build: a known kind, positive sizes,
/// only the options of its kind, each in its range. `where` starts the message.
inline void check_cell_config(const CellConfig& c, const std::string& where) {
  bool known = false;
  for (const auto& k : known_cell_kinds()) known = known || k == c.kind;
  if (!known)
    throw ValueError(concat(where, ": unknown cell kind '", c.kind, "'; this cellflow (", "version ",
                            CELLFLOW_VERSION_STRING, ") builds ", known_kinds_list(),
                            " (a file written by a newer cellflow may need a newer one)"));
  if (c.num_units <= 0 || c.num_units > (Index(1) << 24))
    throw ValueError(concat(where, ": ", c.kind, " num_units must be in [1, 2^24], given ", c.num_units));
  if (c.input_depth < 0 || c.input_depth > (Index(1) << 24))
    throw ValueError(concat(where, ": ", c.kind, " input_depth must be in [1, 2^24], given ", c.input_depth));
  const std::vector<std::string> allowed = allowed_options(c.kind);
  for (const auto& [name, value] : c.options) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == name;
    for (const auto& a : dropout_options()) ok = ok || a == name;
    if (!ok)
      throw ValueError(concat(
          where, ": ", c.kind, " has no option '", name, "' (",
          allowed.empty() ? std::string("it takes none")
                          : "it takes " +
                                [&] {
                                  std::string s;
                                  for (const auto& a : allowed) s += (s.empty() ? "" : ", ") + a;
                                  return s;
                                }(),
          "); any layer also takes with_dropout's ",
          [] {
            std::string s;
            for (const auto& a : dropout_options()) s += (s.empty() ? "" : ", ") + a;
            return s;
          }()));
    if (!std::isfinite(value)) throw ValueError(concat(where, ": ", c.kind, " option ", name, " is ", value));
  }
  if (c.has("num_proj")) {
    const double p = c.get("num_proj");
    if (!(p >= 1 && p <= double(Index(1) << 24) && p == std::floor(p)))
      throw ValueError(concat(where, ": LSTMCell num_proj must be an integer in [1, 2^24], given ", p));
  }
  if (c.has("proj_clip") && !c.has("num_proj")) throw ValueError(concat(where, ": LSTMCell proj_clip needs num_proj"));
  for (const char* clip : {"cell_clip", "proj_clip"})
    if (c.has(clip) && !(c.get(clip) > 0))
      throw ValueError(concat(where, ": LSTMCell ", clip, " must be > 0, given ", c.get(clip)));
  if (c.has("use_peepholes") && c.get("use_peepholes") != 0 && c.get("use_peepholes") != 1)
    throw ValueError(concat(where, ": LSTMCell use_peepholes must be 0 or 1, given ", c.get("use_peepholes")));
  if (c.has("layer_norm") && c.get("layer_norm") != 0 && c.get("layer_norm") != 1)
    throw ValueError(concat(where, ": LayerNormBasicLSTMCell layer_norm must be 0 or 1, given ", c.get("layer_norm")));
  if (c.has("dropout_keep_prob") && !(c.get("dropout_keep_prob") > 0 && c.get("dropout_keep_prob") <= 1))
    throw ValueError(concat(where, ": LayerNormBasicLSTMCell dropout_keep_prob must be in (0, 1], given ",
                            c.get("dropout_keep_prob")));
  if (c.has("dropout_prob_seed")) {
    const double s = c.get("dropout_prob_seed");
    if (!(s >= 0 && s < 9007199254740992.0 && s == std::floor(s)))
      throw ValueError(
          concat(where, ": LayerNormBasicLSTMCell dropout_prob_seed must be an integer in [0, 2^53), given ", s));
  }
  for (const char* keep : {"input_keep_prob", "output_keep_prob", "state_keep_prob"})
    if (c.has(keep) && !(c.get(keep) > 0 && c.get(keep) <= 1))
      throw ValueError(concat(where, ": ", c.kind, " ", keep, " must be in (0, 1], given ", c.get(keep)));
  if (c.has("variational_recurrent") && c.get("variational_recurrent") != 0 && c.get("variational_recurrent") != 1)
    throw ValueError(
        concat(where, ": ", c.kind, " variational_recurrent must be 0 or 1, given ", c.get("variational_recurrent")));
  if (c.has("dropout_seed")) {
    const double seed = c.get("dropout_seed");
    if (!(seed >= 0 && seed < 9007199254740992.0 && seed == std::floor(seed)))
      throw ValueError(concat(where, ": ", c.kind, " dropout_seed must be an integer in [0, 2^53), given ", seed));
  }
  if (c.has("activation")) {
    const double a = c.get("activation");
    if (a == -1)
      throw ValueError(concat(where, ": ", c.kind, " has a user-supplied activation function, which an architecture ",
                              "cannot hold (only tanh and relu); build that cell in code"));
    if (a != 0 && a != 1)
      throw ValueError(concat(where, ": ", c.kind, " activation code ", a, " is unknown (0 = tanh, 1 = relu)"));
  }
}

/// Index of the first layer of `cells` whose activation is a user's function, or -1.
inline Index first_custom_activation(const std::vector<CellConfig>& cells) {
  for (std::size_t l = 0; l < cells.size(); ++l)
    if (cells[l].get("activation", 0) == -1) return static_cast<Index>(l);
  return -1;
}

/// The flat layer config of a cell: a DropoutWrapper around a known kind is its wrapped cell's
/// config with the dropout options (with_dropout's, and dropout_seed); any other config as it is.
inline CellConfig flat_cell_config(const CellConfig& c) {
  if (c.kind != "DropoutWrapper" || c.wrapped.size() != 1 || !c.wrapped.front().wrapped.empty()) return c;
  CellConfig r = c.wrapped.front();
  for (const char* keep : {"input_keep_prob", "output_keep_prob", "state_keep_prob"})
    if (c.get(keep, 1.0) != 1.0) r.options[keep] = c.get(keep);
  if (c.get("variational_recurrent") != 0) r.options["variational_recurrent"] = 1;
  if (has_dropout(r)) r.options["dropout_seed"] = c.get("seed");
  return r;
}

/// ValueError unless `name` (a variable scope) can be written into an architecture text and
/// read back: no whitespace or control characters (TF scopes have none either).
inline void check_scope_name(const std::string& name, const std::string& where, const char* what, bool may_be_empty) {
  if (name.empty() && !may_be_empty) throw ValueError(concat(where, ": ", what, " is empty"));
  for (const char ch : name)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
      throw ValueError(concat(where, ": ", what, " '", printable(name, 120, '\0'),
                              "' holds whitespace or a control character; a TF variable scope has none"));
}

/// The output size of a cell described by `c` (num_proj for an LSTMCell with a projection).
inline Index config_output_size(const CellConfig& c) {
  return c.has("num_proj") ? static_cast<Index>(c.get("num_proj")) : c.num_units;
}

}  // namespace detail

/// Builds the cell `c` describes with TF's initializers drawn from `rng`, reading `input_depth`
/// features (c.input_depth is ignored). ValueError for an unknown kind or an invalid option.
template <class T>
AnyCell<T> make_cell(const CellConfig& c, Index input_depth, Rng& rng) {
  CellConfig checked = c;
  checked.input_depth = input_depth;
  detail::check_cell_config(checked, "make_cell");
  if (input_depth <= 0)
    throw ValueError(detail::concat("make_cell: input_depth must be positive, given ", input_depth));
  const Activation<T> activation = Activation<T>::from_code(c.get("activation", 0), "make_cell");
  // The cell, wrapped in a DropoutWrapper when the config asks for one (with_dropout).
  const auto finish = [&c](auto cell) -> AnyCell<T> {
    if (!detail::has_dropout(c)) return AnyCell<T>(std::move(cell));
    std::optional<std::uint64_t> seed;
    if (c.has("dropout_seed")) seed = static_cast<std::uint64_t>(c.get("dropout_seed"));
    return AnyCell<T>(DropoutWrapper<decltype(cell)>(std::move(cell), c.get("input_keep_prob", 1.0),
                                                     c.get("output_keep_prob", 1.0), c.get("state_keep_prob", 1.0),
                                                     c.get("variational_recurrent") != 0, seed));
  };
  if (c.kind == "BasicLSTMCell")
    return finish(
        BasicLSTMCell<T>(input_depth, c.num_units, rng, static_cast<T>(c.get("forget_bias", 1.0)), activation));
  if (c.kind == "LSTMCell") {
    LSTMOptions<T> o;
    o.forget_bias = static_cast<T>(c.get("forget_bias", 1.0));
    o.use_peepholes = c.get("use_peepholes") != 0;
    if (c.has("cell_clip")) o.cell_clip = static_cast<T>(c.get("cell_clip"));
    if (c.has("num_proj")) o.num_proj = static_cast<Index>(c.get("num_proj"));
    if (c.has("proj_clip")) o.proj_clip = static_cast<T>(c.get("proj_clip"));
    o.activation = activation;
    return finish(LSTMCell<T>(input_depth, c.num_units, o, rng));
  }
  if (c.kind == "GRUCell") return finish(GRUCell<T>(input_depth, c.num_units, rng, activation));
  if (c.kind == "BasicRNNCell") return finish(BasicRNNCell<T>(input_depth, c.num_units, rng, activation));
  if (c.kind == "LayerNormBasicLSTMCell") {
    LayerNormBasicLSTMOptions<T> o;
    o.forget_bias = static_cast<T>(c.get("forget_bias", 1.0));
    o.layer_norm = c.get("layer_norm", 1) != 0;
    o.norm_gain = static_cast<T>(c.get("norm_gain", 1.0));
    o.norm_shift = static_cast<T>(c.get("norm_shift", 0.0));
    o.dropout_keep_prob = static_cast<T>(c.get("dropout_keep_prob", 1.0));
    if (c.has("dropout_prob_seed")) o.dropout_prob_seed = static_cast<std::uint64_t>(c.get("dropout_prob_seed"));
    return finish(LayerNormBasicLSTMCell<T>(input_depth, c.num_units, o, rng));
  }
  return finish(CudnnCompatibleGRUCell<T>(input_depth, c.num_units, rng));
}

/// A model's whole architecture: what Model<T> is built from and what its checkpoints record.
/// Today's models are classifiers: a stack of recurrent cells over inputs [batch, time,
/// input_depth], a dense layer on the top layer's final output (TF: states[-1][1] of an LSTM,
/// the state of a GRU) giving `classes` logits, and sparse softmax cross-entropy.
struct ModelConfig {
  Index input_depth = 0;          ///< features per time step
  std::vector<CellConfig> cells;  ///< the recurrent layers, bottom first (input_depth filled in by the model)
  Index classes = 0;              ///< outputs of the dense head
  /// Variable names: "<scope>/multi_rnn_cell/cell_<l>/<cell scope>/..." when `multi_rnn_cell`
  /// (TF's MultiRNNCell, also for one layer), "<scope>/<cell scope>/..." without it (a single
  /// cell given straight to dynamic_rnn; needs exactly one layer).
  std::string scope = "rnn";
  bool multi_rnn_cell = true;  ///< see `scope`
  /// A bidirectional stack (tf.contrib.rnn.stack_bidirectional_dynamic_rnn): every entry of
  /// `cells` is one layer of a forward and a backward cell of that kind; layer l > 0 reads layer
  /// l - 1's concatenated [fw, bw] outputs and the head reads the top layer's final [h_fw, h_bw]
  /// (TF: tf.concat([state_fw.h, state_bw.h], 1)). Variables
  /// "<scope>/cell_<l>/bidirectional_rnn/fw|bw/<cell scope>/..." (TF's default scope is
  /// "stack_bidirectional_rnn"; multi_rnn_cell must stay true). bidirectional_classifier sets both.
  bool bidirectional = false;
  std::string head_name = "dense";  ///< the dense head's scope: "<head_name>/kernel", "<head_name>/bias"
  std::string loss = "sparse_softmax_cross_entropy";  ///< the only loss today

  /// Checks everything (sizes, kinds, options, that each layer reads the one below) and fills
  /// in every cell's input_depth and output_size; ValueError naming the layer otherwise.
  void validate() {
    const auto where = [](std::size_t l) { return detail::concat("ModelConfig: layer ", l); };
    if (input_depth <= 0 || input_depth > (Index(1) << 24))
      throw ValueError(detail::concat("ModelConfig: input_depth must be in [1, 2^24], given ", input_depth));
    if (classes < 1 || classes > (Index(1) << 24))
      throw ValueError(detail::concat("ModelConfig: classes must be in [1, 2^24], given ", classes));
    if (cells.empty()) throw ValueError("ModelConfig: needs at least one recurrent layer (cells is empty)");
    if (bidirectional && !multi_rnn_cell)
      throw ValueError(
          "ModelConfig: a bidirectional model names its variables as stack_bidirectional_dynamic_rnn "
          "(\"<scope>/cell_<l>/bidirectional_rnn/...\"); multi_rnn_cell = false does not apply");
    if (!multi_rnn_cell && cells.size() != 1)
      throw ValueError(detail::concat("ModelConfig: multi_rnn_cell = false names the variables of a single cell; the ",
                                      "model has ", cells.size(), " layers"));
    if (loss != "sparse_softmax_cross_entropy")
      throw ValueError(
          detail::concat("ModelConfig: unknown loss '", loss, "'; this cellflow knows sparse_softmax_cross_entropy"));
    detail::check_scope_name(head_name, "ModelConfig", "head_name", false);
    detail::check_scope_name(scope, "ModelConfig", "scope", true);
    Index depth = input_depth;
    for (std::size_t l = 0; l < cells.size(); ++l) {
      cells[l].input_depth = depth;
      // A layer with dropout and no seed: its index (two layers never share masks).
      if (detail::has_dropout(cells[l]) && !cells[l].has("dropout_seed"))
        cells[l].options["dropout_seed"] = static_cast<double>(l);
      detail::check_cell_config(cells[l], where(l));
      cells[l].output_size = detail::config_output_size(cells[l]);
      depth = bidirectional ? 2 * cells[l].output_size : cells[l].output_size;
    }
  }

  /// The output size of the top recurrent layer (what the head reads): twice the top cell's for
  /// a bidirectional model (forward and backward h side by side).
  Index rnn_output_size() const {
    return cells.empty() ? 0 : (bidirectional ? 2 : 1) * detail::config_output_size(cells.back());
  }
};

/// A classifier: `cells` over inputs of `input_depth` features, a dense head with `classes`
/// outputs, sparse softmax cross-entropy; validated.
inline ModelConfig classifier(Index input_depth, std::vector<CellConfig> cells, Index classes) {
  ModelConfig c;
  c.input_depth = input_depth;
  c.cells = std::move(cells);
  c.classes = classes;
  c.validate();
  return c;
}

/// A bidirectional classifier: each entry of `cells` a layer of a forward and a backward cell of
/// that kind (stack_bidirectional_dynamic_rnn, scope "stack_bidirectional_rnn"), a dense head on
/// the top layer's [h_fw, h_bw] with `classes` outputs, sparse softmax cross-entropy; validated.
inline ModelConfig bidirectional_classifier(Index input_depth, std::vector<CellConfig> cells, Index classes) {
  ModelConfig c;
  c.input_depth = input_depth;
  c.cells = std::move(cells);
  c.classes = classes;
  c.bidirectional = true;
  c.scope = "stack_bidirectional_rnn";
  c.validate();
  return c;
}

namespace detail {

/// The version of the architecture text; a reader refuses a newer one.
inline constexpr int kModelTextVersion = 1;

/// A double as the shortest text that reads back exactly.
inline std::string exact_number(double v) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

/// An option as the architecture text writes it: "activation" by name (tanh, relu), every other
/// option as the shortest exact number.
inline std::string option_value_text(const std::string& name, double value) {
  if (name == "activation" && (value == 0 || value == 1)) return value == 0 ? "tanh" : "relu";
  return exact_number(value);
}

}  // namespace detail

/// The architecture as the text a checkpoint stores (metadata key "cellflow.model"), one line per
/// item; docs/checkpoint-format.md describes it:
///
///   cellflow-model 1
///   input_depth 28
///   rnn scope=rnn multi_rnn_cell=1
///   cell BasicLSTMCell num_units=150 forget_bias=1
///   head dense name=dense classes=10
///   loss sparse_softmax_cross_entropy
///
/// A built-in activation other than tanh is written by name ("cell BasicRNNCell num_units=64
/// activation=relu"). ValueError naming the layer when a cell has a user's activation function,
/// which no text can hold.
inline std::string to_text(const ModelConfig& c) {
  if (const Index l = detail::first_custom_activation(c.cells); l >= 0)
    throw ValueError(detail::concat("the architecture of layer ", l, " (", c.cells[static_cast<std::size_t>(l)].kind,
                                    ") cannot be written: its activation is a user-supplied function, which no ",
                                    "architecture text can hold (tanh and relu can)"));
  std::string s = detail::concat("cellflow-model ", detail::kModelTextVersion, "\n");
  s += detail::concat("input_depth ", c.input_depth, "\n");
  // "bidirectional=1" only when set: a unidirectional model's text is unchanged (older readers
  // read it), and an older reader refuses a bidirectional one ("unknown rnn setting").
  s += detail::concat("rnn scope=", c.scope, " multi_rnn_cell=", c.multi_rnn_cell ? 1 : 0,
                      c.bidirectional ? " bidirectional=1" : "", "\n");
  for (const auto& cell : c.cells) {
    // A user's cell may name its kind with spaces ("elman_cell(num_units=4)"): one word here,
    // which load_model then reports as an unknown kind.
    std::string kind = cell.kind.empty() ? "unnamed" : cell.kind;
    for (char& ch : kind)
      if (static_cast<unsigned char>(ch) <= ' ' || ch == '=') ch = '_';
    s += detail::concat("cell ", kind, " num_units=", cell.num_units);
    for (const auto& [name, value] : cell.options) s += " " + name + "=" + detail::option_value_text(name, value);
    s += "\n";
  }
  s += detail::concat("head dense name=", c.head_name, " classes=", c.classes, "\n");
  s += "loss " + c.loss + "\n";
  return s;
}

/// Reads the text of to_text back, validated. ValueError naming the line for anything
/// malformed, a newer version, an unknown cell kind or option.
inline ModelConfig model_config_from_text(const std::string& text, const std::string& source = "model") {
  using detail::concat;
  ModelConfig c;
  c.scope.clear();
  std::istringstream in(text);
  std::string line;
  int n = 0;
  bool has_version = false, has_head = false, has_loss = false, has_rnn = false, has_input = false;
  const auto fail = [&](const std::string& what) -> ValueError {
    return ValueError(
        concat(source, ": architecture line ", n, " ('", detail::printable(line, 120, '\''), "'): ", what));
  };
  const auto integer = [&](const std::string& v, const char* what) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || end != v.c_str() + v.size() || errno != 0 || x < 0 || x > (1LL << 40))
      throw fail(concat(what, " '", v, "' is not a non-negative integer"));
    return static_cast<Index>(x);
  };
  const auto number = [&](const std::string& v, const std::string& what) {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size()) throw fail(concat(what, " '", v, "' is not a number"));
    return x;
  };
  while (std::getline(in, line)) {
    ++n;
    std::istringstream words(line);
    std::string word;
    std::vector<std::string> w;
    while (words >> word) w.push_back(word);
    if (w.empty()) continue;
    // key=value pairs after the first `skip` words
    const auto pairs = [&](std::size_t skip) {
      std::map<std::string, std::string> kv;
      for (std::size_t k = skip; k < w.size(); ++k) {
        const auto eq = w[k].find('=');
        if (eq == std::string::npos || eq == 0) throw fail(concat("expected name=value, found '", w[k], "'"));
        if (!kv.emplace(w[k].substr(0, eq), w[k].substr(eq + 1)).second)
          throw fail(concat("'", w[k].substr(0, eq), "' is given twice"));
      }
      return kv;
    };
    if (!has_version) {
      if (w[0] != "cellflow-model" || w.size() != 2)
        throw fail("expected 'cellflow-model <version>' first: not a cellflow model architecture");
      const Index v = integer(w[1], "the version");
      if (v > detail::kModelTextVersion || v < 1)
        throw fail(concat("architecture version ", v, " is not one this cellflow (", CELLFLOW_VERSION_STRING,
                          ") reads (1 to ", detail::kModelTextVersion, "); a newer cellflow wrote it"));
      has_version = true;
    } else if (w[0] == "input_depth" && w.size() == 2) {
      c.input_depth = integer(w[1], "input_depth");
      has_input = true;
    } else if (w[0] == "rnn") {
      for (const auto& [k, v] : pairs(1)) {
        if (k == "scope")
          c.scope = v;
        else if (k == "multi_rnn_cell")
          c.multi_rnn_cell = integer(v, "multi_rnn_cell") != 0;
        else if (k == "bidirectional")
          c.bidirectional = integer(v, "bidirectional") != 0;
        else
          throw fail(concat("unknown rnn setting '", k, "'"));
      }
      has_rnn = true;
    } else if (w[0] == "cell" && w.size() >= 2) {
      CellConfig cell;
      cell.kind = w[1];
      bool known = false;
      for (const auto& k : known_cell_kinds()) known = known || k == cell.kind;
      if (!known)
        throw fail(concat("unknown cell kind '", cell.kind, "': this cellflow (", CELLFLOW_VERSION_STRING, ") knows ",
                          detail::known_kinds_list(), "; the file was written by a newer cellflow or another program"));
      for (const auto& [k, v] : pairs(2)) {
        if (k == "num_units")
          cell.num_units = integer(v, "num_units");
        else if (k == "activation" && (v == "tanh" || v == "relu"))
          cell.options[k] = v == "tanh" ? 0 : 1;
        else if (k == "activation")
          throw fail(concat("unknown activation '", v, "' (this cellflow knows tanh and relu)"));
        else
          cell.options[k] = number(v, k);
      }
      c.cells.push_back(std::move(cell));
    } else if (w[0] == "head" && w.size() >= 2) {
      if (w[1] != "dense") throw fail(concat("unknown head '", w[1], "'; this cellflow knows dense"));
      for (const auto& [k, v] : pairs(2)) {
        if (k == "name")
          c.head_name = v;
        else if (k == "classes")
          c.classes = integer(v, "classes");
        else
          throw fail(concat("unknown head setting '", k, "'"));
      }
      has_head = true;
    } else if (w[0] == "loss" && w.size() == 2) {
      c.loss = w[1];
      has_loss = true;
    } else {
      throw fail("unknown entry");
    }
  }
  if (!has_version) throw ValueError(concat(source, ": the architecture text is empty"));
  if (!has_input || !has_rnn || !has_head || !has_loss || c.cells.empty())
    throw ValueError(concat(source, ": the architecture lacks ",
                            !has_input  ? "input_depth"
                            : !has_rnn  ? "the rnn line"
                            : !has_head ? "the head"
                            : !has_loss ? "the loss"
                                        : "cells"));
  try {
    c.validate();
  } catch (const ValueError& e) {
    throw ValueError(concat(source, ": ", e.what()));
  }
  return c;
}

/// `c` with every option value rounded to T and back (what a model of T holds): a float model
/// built with cell_clip 0.1 and one built from LSTMOptions<float>{cell_clip = 0.1f} compare equal.
/// An integer seed (dropout_prob_seed) is kept as it is: a cell holds it as an integer.
template <class T>
ModelConfig rounded_to(ModelConfig c) {
  for (auto& cell : c.cells)
    for (auto& [name, value] : cell.options)
      if (name != "dropout_prob_seed") value = static_cast<double>(static_cast<T>(value));
  return c;
}

/// Every difference between two architectures, one line each ("layer 1: GRUCell(64) in the
/// file, LSTMCell(64) in the model"); empty when they are the same. `a_name` and `b_name` say
/// which is which.
inline std::vector<std::string> differences(const ModelConfig& a, const ModelConfig& b, const std::string& a_name = "a",
                                            const std::string& b_name = "b") {
  using detail::concat;
  std::vector<std::string> d;
  const auto cell_text = [](const CellConfig& c) {
    std::string s = concat(c.kind, "(", c.num_units);
    for (const auto& [k, v] : c.options) s += concat(", ", k, "=", detail::option_value_text(k, v));
    return s + ")";
  };
  const auto cmp = [&](const std::string& what, const std::string& x, const std::string& y) {
    if (x != y) d.push_back(concat(what, ": ", x, " in ", a_name, ", ", y, " in ", b_name));
  };
  cmp("input_depth", std::to_string(a.input_depth), std::to_string(b.input_depth));
  cmp("layers", std::to_string(a.cells.size()), std::to_string(b.cells.size()));
  for (std::size_t l = 0; l < std::min(a.cells.size(), b.cells.size()); ++l)
    cmp(concat("layer ", l), cell_text(a.cells[l]), cell_text(b.cells[l]));
  cmp("classes", std::to_string(a.classes), std::to_string(b.classes));
  cmp("scope", a.scope, b.scope);
  cmp("multi_rnn_cell", a.multi_rnn_cell ? "yes" : "no", b.multi_rnn_cell ? "yes" : "no");
  cmp("bidirectional", a.bidirectional ? "yes" : "no", b.bidirectional ? "yes" : "no");
  cmp("head name", a.head_name, b.head_name);
  cmp("loss", a.loss, b.loss);
  return d;
}

}  // namespace cellflow
