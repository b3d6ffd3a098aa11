// The cell contract (cells/cell_traits.hpp), checked the same way for every kind of cell: the
// built-in cells with their options, stacks mixing kinds (built from cells and from a
// std::vector<AnyCell<T>>), a bare AnyCell, and a cell written by a user against the public
// contract only (mycells::ElmanCell, tests/support/elman_cell.hpp, the cell docs/concepts.md
// walks through). Every kind gets, in double precision:
//
//   * is_cell_v, its TF variable names and shapes in creation order, config_of, check_state,
//     zero_grad(module);
//   * the central-difference gradient check of inputs, initial state and every variable, with and
//     without sequence_length (tests/support/gradcheck.hpp);
//   * RNNStream, step by step and in chunks, equal to dynamic_rnn bitwise;
//   * cell_forward / cell_backward looped over the steps equal to dynamic_rnn /
//     dynamic_rnn_backward (outputs, states, d_inputs, d_initial_state bitwise; weight gradients,
//     summed in another order, to 1e-12);
//     (bitwise where the cell's arithmetic does not depend on how many rows it computes at once:
//     every built-in cell; the user's cell computes with Eigen's products and is held to 1e-12)
//   * a checkpoint round trip giving bitwise-equal outputs;
//   * batch_threads 2 and 3 equal to batch_threads 1 (1e-12 relative);
//   * sequence_length semantics: outputs past each length exactly 0, the final state the state
//     after the last valid step (the initial state for length 0), no gradient from padded steps;
//   * NaN and infinity in the padded part of the inputs and of d_outputs changing nothing:
//     every output, state and gradient is bitwise what zeros there give;
//   * a variable value or gradient of the wrong shape written through a VariableList: a ShapeError
//     at the next forward or backward pass naming the variable (built-in cells), never a write out
//     of bounds, and the cell works again once the shape is restored.
//
// A NEW CELL gets all of this by adding one Kind below (a factory and its expected variables) to
// CELLFLOW_CELL_CONTRACT_KINDS.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/elman_cell.hpp"
#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_cell_contract {

using namespace cellflow_test;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;

constexpr Index kDepth = 3;  // input depth of every kind

struct Var {
  std::string name;  // full TF name under the scope "rnn"
  std::vector<Index> shape;
};

// ---- the kinds: a factory, the expected variables, and what differs from the defaults ----

struct KindDefaults {
  /// Accepts a sample of the gradient check (cells with clips reject samples near a kink).
  template <class Result>
  static bool sample_ok(const Result&, const std::vector<Index>&) {
    return true;
  }
  /// Scale of the random weights.
  static constexpr double scale = 0.8;
  /// Whether a shape error about this variable names it (the built-in cells' messages do).
  static bool names_in_errors(const std::string&) { return true; }
  /// Whether a run gives bitwise the same rows whatever the number of rows and steps it computes
  /// at once (streams, single steps). The library's matrix product guarantees it; a user's cell
  /// written with Eigen's own products does not (Eigen picks another kernel for another size), so
  /// there such comparisons hold to 1e-12 relative instead.
  static constexpr bool bitwise_across_row_counts = true;
  /// Whether a real output may be exactly 0 (relu's are, often).
  static constexpr bool outputs_can_be_zero = false;
  /// Whether the state's last part (h) is the output (not for a residual wrapper: x + h).
  static constexpr bool output_is_h = true;
};

struct BasicLSTM : KindDefaults {
  static constexpr const char* name = "BasicLSTMCell(forget_bias 0.7)";
  using Cell = cf::BasicLSTMCell<double>;
  static Cell make(cf::Rng& rng) { return Cell(kDepth, 4, rng, 0.7); }
  static std::vector<Var> variables() {
    return {{"rnn/basic_lstm_cell/kernel", {7, 16}}, {"rnn/basic_lstm_cell/bias", {16}}};
  }
};

struct PeepholeLSTM : KindDefaults {
  static constexpr const char* name = "LSTMCell(peepholes, forget_bias 0.5)";
  using Cell = cf::LSTMCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.forget_bias = 0.5;
    return Cell(kDepth, 4, o, rng);
  }
  static std::vector<Var> variables() {
    return {{"rnn/lstm_cell/kernel", {7, 16}},
            {"rnn/lstm_cell/bias", {16}},
            {"rnn/lstm_cell/w_f_diag", {4}},
            {"rnn/lstm_cell/w_i_diag", {4}},
            {"rnn/lstm_cell/w_o_diag", {4}}};
  }
};

struct FullLSTM : KindDefaults {
  static constexpr const char* name = "LSTMCell(peepholes, cell_clip 0.5, num_proj 3, proj_clip 0.4)";
  using Cell = cf::LSTMCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.cell_clip = 0.5;
    o.num_proj = 3;
    o.proj_clip = 0.4;
    o.forget_bias = 0.8;
    return Cell(kDepth, 4, o, rng);
  }
  static std::vector<Var> variables() {
    return {{"rnn/lstm_cell/kernel", {6, 16}}, {"rnn/lstm_cell/bias", {16}},
            {"rnn/lstm_cell/w_f_diag", {4}},   {"rnn/lstm_cell/w_i_diag", {4}},
            {"rnn/lstm_cell/w_o_diag", {4}},   {"rnn/lstm_cell/projection/kernel", {4, 3}}};
  }
  static constexpr double scale = 1.0;  // both clips active on some entries
  static bool sample_ok(const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    const auto& tape = r.tape.split.slice(0).tape;
    return clip_sample_ok(tape.c_raw, 0.5, 3, lens) && clip_sample_ok(tape.r_raw, 0.4, 3, lens);
  }
};

struct GRU : KindDefaults {
  static constexpr const char* name = "GRUCell";
  using Cell = cf::GRUCell<double>;
  static Cell make(cf::Rng& rng) { return Cell(kDepth, 4, rng); }
  static std::vector<Var> variables() {
    return {{"rnn/gru_cell/gates/kernel", {7, 8}},
            {"rnn/gru_cell/gates/bias", {8}},
            {"rnn/gru_cell/candidate/kernel", {7, 4}},
            {"rnn/gru_cell/candidate/bias", {4}}};
  }
};

struct CudnnGRU : KindDefaults {
  static constexpr const char* name = "CudnnCompatibleGRUCell";
  using Cell = cf::CudnnCompatibleGRUCell<double>;
  static Cell make(cf::Rng& rng) { return Cell(kDepth, 4, rng); }
  static std::vector<Var> variables() {
    const std::string s = "rnn/cudnn_compatible_gru_cell/";
    return {{s + "gates/kernel", {7, 8}},
            {s + "gates/bias", {8}},
            {s + "candidate/input_projection/kernel", {3, 4}},
            {s + "candidate/hidden_projection/kernel", {4, 4}},
            {s + "candidate/input_projection/bias", {4}},
            {s + "candidate/hidden_projection/bias", {4}}};
  }
};

struct MixedStack : KindDefaults {
  static constexpr const char* name =
      "MultiRNNCell(LSTMCell(peepholes, num_proj 2), GRUCell, CudnnCompatibleGRUCell, BasicLSTMCell)";
  using Cell = cf::MultiRNNCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.num_proj = 2;
    cf::LSTMCell<double> l0(kDepth, 4, o, rng);  // built one by one: a fixed draw order
    cf::GRUCell<double> l1(2, 4, rng);
    cf::CudnnCompatibleGRUCell<double> l2(4, 2, rng);
    cf::BasicLSTMCell<double> l3(2, 3, rng, 0.6);
    return Cell(std::move(l0), std::move(l1), std::move(l2), std::move(l3));
  }
  static std::vector<Var> variables() {
    const std::string c0 = "rnn/multi_rnn_cell/cell_0/lstm_cell/", c1 = "rnn/multi_rnn_cell/cell_1/gru_cell/",
                      c2 = "rnn/multi_rnn_cell/cell_2/cudnn_compatible_gru_cell/",
                      c3 = "rnn/multi_rnn_cell/cell_3/basic_lstm_cell/";
    return {{c0 + "kernel", {5, 16}},
            {c0 + "bias", {16}},
            {c0 + "w_f_diag", {4}},
            {c0 + "w_i_diag", {4}},
            {c0 + "w_o_diag", {4}},
            {c0 + "projection/kernel", {4, 2}},
            {c1 + "gates/kernel", {6, 8}},
            {c1 + "gates/bias", {8}},
            {c1 + "candidate/kernel", {6, 4}},
            {c1 + "candidate/bias", {4}},
            {c2 + "gates/kernel", {6, 4}},
            {c2 + "gates/bias", {4}},
            {c2 + "candidate/input_projection/kernel", {4, 2}},
            {c2 + "candidate/hidden_projection/kernel", {2, 2}},
            {c2 + "candidate/input_projection/bias", {2}},
            {c2 + "candidate/hidden_projection/bias", {2}},
            {c3 + "kernel", {5, 12}},
            {c3 + "bias", {12}}};
  }
};

struct VectorStack : KindDefaults {
  static constexpr const char* name =
      "MultiRNNCell(std::vector<AnyCell>{CudnnCompatibleGRUCell, LSTMCell(peepholes), ElmanCell})";
  using Cell = cf::MultiRNNCell<double>;
  static Cell make(cf::Rng& rng) {
    std::vector<cf::AnyCell<double>> layers;  // kinds and depth as a program would choose at run time
    layers.emplace_back(cf::CudnnCompatibleGRUCell<double>(kDepth, 4, rng));
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    layers.emplace_back(cf::LSTMCell<double>(4, 3, o, rng));
    layers.emplace_back(mycells::ElmanCell<double>(3, 2, rng));
    return Cell(std::move(layers));
  }
  static std::vector<Var> variables() {
    const std::string c0 = "rnn/multi_rnn_cell/cell_0/cudnn_compatible_gru_cell/",
                      c1 = "rnn/multi_rnn_cell/cell_1/lstm_cell/", c2 = "rnn/multi_rnn_cell/cell_2/elman_cell/";
    return {{c0 + "gates/kernel", {7, 8}},
            {c0 + "gates/bias", {8}},
            {c0 + "candidate/input_projection/kernel", {3, 4}},
            {c0 + "candidate/hidden_projection/kernel", {4, 4}},
            {c0 + "candidate/input_projection/bias", {4}},
            {c0 + "candidate/hidden_projection/bias", {4}},
            {c1 + "kernel", {7, 12}},
            {c1 + "bias", {12}},
            {c1 + "w_f_diag", {3}},
            {c1 + "w_i_diag", {3}},
            {c1 + "w_o_diag", {3}},
            {c2 + "kernel", {5, 2}},
            {c2 + "bias", {2}}};
  }
  // The user's cell words its own shape errors and computes with Eigen's products.
  static bool names_in_errors(const std::string& variable) { return variable.find("elman_cell") == std::string::npos; }
  static constexpr bool bitwise_across_row_counts = false;
};

struct BareAnyCell : KindDefaults {
  static constexpr const char* name = "AnyCell(LSTMCell(num_proj 2))";
  using Cell = cf::AnyCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::LSTMOptions<double> o;
    o.num_proj = 2;
    return Cell(cf::LSTMCell<double>(kDepth, 4, o, rng));
  }
  static std::vector<Var> variables() {
    return {
        {"rnn/lstm_cell/kernel", {5, 16}}, {"rnn/lstm_cell/bias", {16}}, {"rnn/lstm_cell/projection/kernel", {4, 2}}};
  }
};

struct Elman : KindDefaults {
  static constexpr const char* name = "mycells::ElmanCell (a user's cell)";
  using Cell = mycells::ElmanCell<double>;
  static Cell make(cf::Rng& rng) { return Cell(kDepth, 4, rng); }
  static std::vector<Var> variables() { return {{"rnn/elman_cell/kernel", {7, 4}}, {"rnn/elman_cell/bias", {4}}}; }
  static bool names_in_errors(const std::string&) { return false; }  // its messages are its own
  static constexpr bool bitwise_across_row_counts = false;           // Eigen's products
};

struct LayerNormLSTM : KindDefaults {
  static constexpr const char* name = "LayerNormBasicLSTMCell(norm_gain 1.3, norm_shift -0.2, forget_bias 0.6)";
  using Cell = cf::LayerNormBasicLSTMCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::LayerNormBasicLSTMOptions<double> o;
    o.norm_gain = 1.3;
    o.norm_shift = -0.2;
    o.forget_bias = 0.6;
    return Cell(kDepth, 4, o, rng);
  }
  static std::vector<Var> variables() {
    const std::string s = "rnn/layer_norm_basic_lstm_cell/";
    std::vector<Var> v = {{s + "kernel", {7, 16}}};
    for (const char* n : {"input", "transform", "forget", "output", "state"}) {
      v.push_back({s + n + "/gamma", {4}});
      v.push_back({s + n + "/beta", {4}});
    }
    return v;
  }
};

struct Dropout : KindDefaults {
  // Keep probabilities 1: the contract must hold exactly (dropout itself: test_dropout_wrapper.cpp).
  static constexpr const char* name = "DropoutWrapper(LSTMCell(peepholes, num_proj 3)), keep 1";
  using Cell = cf::DropoutWrapper<cf::LSTMCell<double>>;
  static Cell make(cf::Rng& rng) {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.num_proj = 3;
    return Cell(cf::LSTMCell<double>(kDepth, 4, o, rng), 1.0, 1.0, 1.0, true, 7);
  }
  static std::vector<Var> variables() {
    return {{"rnn/lstm_cell/kernel", {6, 16}}, {"rnn/lstm_cell/bias", {16}},
            {"rnn/lstm_cell/w_f_diag", {4}},   {"rnn/lstm_cell/w_i_diag", {4}},
            {"rnn/lstm_cell/w_o_diag", {4}},   {"rnn/lstm_cell/projection/kernel", {4, 3}}};
  }
};

struct BasicRNN : KindDefaults {
  static constexpr const char* name = "BasicRNNCell";
  using Cell = cf::BasicRNNCell<double>;
  static Cell make(cf::Rng& rng) { return Cell(kDepth, 4, rng); }
  static std::vector<Var> variables() {
    return {{"rnn/basic_rnn_cell/kernel", {7, 4}}, {"rnn/basic_rnn_cell/bias", {4}}};
  }
};

struct ResidualGRU : KindDefaults {
  static constexpr const char* name = "ResidualWrapper(GRUCell)";
  using Cell = cf::ResidualWrapper<cf::GRUCell<double>>;
  static Cell make(cf::Rng& rng) { return Cell(cf::GRUCell<double>(kDepth, kDepth, rng)); }
  static constexpr bool output_is_h = false;  // the output is x + h
  static std::vector<Var> variables() {
    return {{"rnn/gru_cell/gates/kernel", {6, 6}},
            {"rnn/gru_cell/gates/bias", {6}},
            {"rnn/gru_cell/candidate/kernel", {6, 3}},
            {"rnn/gru_cell/candidate/bias", {3}}};
  }
};

/// softsign(x) = x / (1 + |x|), a user's activation (value and derivative).
inline cf::Activation<double> softsign() {
  return cf::Activation<double>([](double x) { return x / (1 + std::abs(x)); },
                                [](double x) { return 1 / ((1 + std::abs(x)) * (1 + std::abs(x))); }, "softsign");
}

struct ResidualStack : KindDefaults {
  static constexpr const char* name =
      "MultiRNNCell(BasicRNNCell, ResidualWrapper(ResidualWrapper(BasicLSTMCell(softsign))), "
      "ResidualWrapper(GRUCell(softsign)))";
  using Cell = cf::MultiRNNCell<double>;
  static Cell make(cf::Rng& rng) {
    cf::BasicRNNCell<double> l0(kDepth, 4, rng);
    cf::BasicLSTMCell<double> l1(4, 4, rng, 0.5, softsign());
    cf::GRUCell<double> l2(4, 4, rng, softsign());
    using Res = cf::ResidualWrapper<cf::BasicLSTMCell<double>>;
    return Cell(std::move(l0), cf::ResidualWrapper<Res>(Res(std::move(l1))),
                cf::ResidualWrapper<cf::GRUCell<double>>(std::move(l2)));
  }
  static constexpr bool output_is_h = false;  // the top layer outputs x + h
  static std::vector<Var> variables() {
    const std::string c0 = "rnn/multi_rnn_cell/cell_0/basic_rnn_cell/",
                      c1 = "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/", c2 = "rnn/multi_rnn_cell/cell_2/gru_cell/";
    return {{c0 + "kernel", {7, 4}},           {c0 + "bias", {4}},
            {c1 + "kernel", {8, 16}},          {c1 + "bias", {16}},
            {c2 + "gates/kernel", {8, 8}},     {c2 + "gates/bias", {8}},
            {c2 + "candidate/kernel", {8, 4}}, {c2 + "candidate/bias", {4}}};
  }
};

// Every kind, in one list: a new cell is one more entry.
// Options that change a kind's arithmetic but not its structure (relu for BasicRNNCell, layer_norm
// off for LayerNormBasicLSTMCell) are checked against their references and gradients in their own
// files (test_basic_rnn_cell.cpp, test_layer_norm_lstm_cell.cpp), not as kinds here: every kind
// instantiates the whole suite, which is most of the test build's time.
#define CELLFLOW_CELL_CONTRACT_KINDS                                                                            \
  BasicLSTM, PeepholeLSTM, FullLSTM, GRU, CudnnGRU, MixedStack, VectorStack, BareAnyCell, Elman, LayerNormLSTM, \
      Dropout, BasicRNN, ResidualGRU, ResidualStack
using AllKinds = std::tuple<CELLFLOW_CELL_CONTRACT_KINDS>;

/// A cell of the kind with random weights (biases and peepholes too).
template <class Kind>
typename Kind::Cell make_random(cf::Rng& rng) {
  auto cell = Kind::make(rng);
  randomize_variables(cell, rng, Kind::scale);
  return cell;
}

/// The variable's name without its scopes: what the cell's messages call it ("kernel",
/// "candidate/input_projection/kernel").
inline std::string short_name(const std::string& full) {
  const auto at = full.rfind("_cell/");
  return at == std::string::npos ? full : full.substr(at + 6);
}

/// Everything one forward and backward pass produces.
struct Results {
  Ten outputs, d_inputs;
  std::vector<Mat> state, d_state, grads;
};

template <class Cell>
Results forward_backward(Cell& cell, const Ten& X, const typename Cell::State& s0, const Ten& dY,
                         const typename Cell::State& dF, const cf::RNNOptions& opts) {
  cf::zero_grad(cell);
  auto r = cf::dynamic_rnn(cell, X, opts, &s0);
  auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
  Results out;
  out.outputs = r.outputs;
  out.d_inputs = g.d_inputs;
  for (const auto* p : const_state_parts(r.final_state)) out.state.push_back(*p);
  for (const auto* p : const_state_parts(g.d_initial_state)) out.d_state.push_back(*p);
  out.grads = variable_grads(cell);
  return out;
}

bool all_finite(const Results& r) {
  auto finite = [](const auto& m) {
    for (Index k = 0; k < m.size(); ++k)
      if (!std::isfinite(m.data()[k])) return false;
    return true;
  };
  bool ok = finite(r.outputs) && finite(r.d_inputs);
  for (const auto* list : {&r.state, &r.d_state, &r.grads})
    for (const auto& m : *list) ok = ok && finite(m);
  return ok;
}

/// max |a - b| / max(1, |b|) over all elements (infinity when the sizes differ).
template <class A>
double worst_relative(const A& a, const A& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (Index k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::abs(a.data()[k] - b.data()[k]) / std::max(1.0, std::abs(b.data()[k])));
  return worst;
}

/// Equal bitwise, or to 1e-12 for a kind that does not promise bitwise equality across row counts.
template <class Kind>
bool same_value(double a, double b) {
  if constexpr (Kind::bitwise_across_row_counts)
    return a == b;
  else
    return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b));
}
template <class Kind, class S>
bool same_state_as(const S& a, const S& b) {
  if constexpr (Kind::bitwise_across_row_counts)
    return same_state(a, b);
  else
    return state_diff(a, b) <= 1e-12;
}
template <class Kind>
bool same_matrices(const std::vector<Mat>& a, const std::vector<Mat>& b) {
  if constexpr (Kind::bitwise_across_row_counts) {
    return bitwise_equal(a, b);
  } else {
    if (a.size() != b.size()) return false;
    for (std::size_t k = 0; k < a.size(); ++k)
      if (!(max_diff(a[k], b[k]) <= 1e-12)) return false;
    return true;
  }
}

/// A file path under the temporary directory, removed when this goes out of scope.
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& stem) {
    static int counter = 0;
    const auto tick = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = (std::filesystem::temp_directory_path() /
             ("cellflow-test-" + stem + "-" + std::to_string(tick) + "-" + std::to_string(++counter)))
                .string();
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  ~ScratchFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// =============================================================================================

TEMPLATE_TEST_CASE("cell contract: is_cell_v, TF variable names and shapes, config_of, check_state, zero_grad",
                   "[cell_contract][variables]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  STATIC_REQUIRE(cf::is_cell_v<Cell>);
  STATIC_REQUIRE(std::is_same_v<typename Cell::Scalar, double>);
  cf::Rng rng(1);
  Cell cell = Kind::make(rng);
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  const auto expected = Kind::variables();
  REQUIRE(vars.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("variable " << k << ": " << vars[k].name);
    CHECK(vars[k].name == expected[k].name);
    CHECK(vars[k].shape == expected[k].shape);
    const auto& s = expected[k].shape;  // storage: [r, c] as r x c, [n] as 1 x n
    CHECK(vars[k].value->rows() == (s.size() == 2 ? s[0] : 1));
    CHECK(vars[k].value->cols() == s.back());
    CHECK(vars[k].grad->rows() == vars[k].value->rows());
    CHECK(vars[k].grad->cols() == vars[k].value->cols());
  }

  const cf::CellConfig config = cf::config_of(cell);
  CHECK_FALSE(config.kind.empty());
  CHECK(config.input_depth == kDepth);
  CHECK(config.input_depth == cell.input_depth());
  CHECK(config.output_size == cell.output_size());
  CHECK_FALSE(cell.cell_name().empty());

  CHECK_NOTHROW(cell.check_state(cell.zero_state(5), 5, "contract"));
  CHECK_THROWS_AS(cell.check_state(cell.zero_state(4), 5, "contract"), cf::ShapeError);
  const auto zero = cell.zero_state(5);
  for (const auto* p : const_state_parts(zero)) {
    CHECK(p->rows() == 5);
    CHECK(p->isZero(0));
  }

  for (auto& v : vars) v.grad->setConstant(1.0);
  cf::zero_grad(cell);
  for (auto& v : vars) CHECK(v.grad->isZero(0));
}

TEMPLATE_TEST_CASE("cell contract: central-difference gradients in double, with and without sequence_length",
                   "[cell_contract][gradcheck]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  cf::Rng rng(2);
  Cell cell = make_random<Kind>(rng);
  GradcheckValidator<Cell> valid = [](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    return Kind::sample_ok(r, lens);
  };
  check_rnn_gradients(cell, Kind::name, 4, rng, valid);
}

TEMPLATE_TEST_CASE("cell contract: RNNStream step by step and in chunks equals dynamic_rnn bitwise",
                   "[cell_contract][stream]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(3);
  const Cell cell = make_random<Kind>(rng);
  const Index B = 3, T = 7, O = cell.output_size();
  const Ten X = random_tensor<double>(B, T, kDepth, rng);
  auto s0 = cell.zero_state(B);
  randomize_state(s0, rng);
  const auto whole = cf::dynamic_rnn(cell, X, s0);

  cf::RNNStream<Cell> steps(cell, s0);
  CHECK(steps.batch() == B);
  bool same_outputs = true;
  for (Index t = 0; t < T; ++t) {
    const Mat& y = steps.step(step_input(X, t));
    REQUIRE(y.rows() == B);
    REQUIRE(y.cols() == O);
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < O; ++j) same_outputs = same_outputs && same_value<Kind>(y(b, j), whole.outputs(b, t, j));
  }
  CHECK(same_outputs);
  CHECK(steps.steps() == T);
  CHECK(same_state_as<Kind>(steps.state(), whole.final_state));

  cf::RNNStream<Cell> chunks(cell, s0);
  Index t0 = 0;
  same_outputs = true;
  for (Index len : {3, 1, 2, 1}) {
    const bool time_major = len == 2;
    Ten chunk = time_major ? Ten(len, B, kDepth) : Ten(B, len, kDepth);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < len; ++t)
        for (Index d = 0; d < kDepth; ++d) (time_major ? chunk(t, b, d) : chunk(b, t, d)) = X(b, t0 + t, d);
    const Ten& y = chunks.feed(chunk, time_major);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < len; ++t)
        for (Index j = 0; j < O; ++j)
          same_outputs =
              same_outputs && same_value<Kind>(time_major ? y(t, b, j) : y(b, t, j), whole.outputs(b, t0 + t, j));
    t0 += len;
  }
  REQUIRE(t0 == T);
  CHECK(same_outputs);
  CHECK(same_state_as<Kind>(chunks.state(), whole.final_state));
}

TEMPLATE_TEST_CASE("cell contract: cell_forward / cell_backward over the steps equal dynamic_rnn and its backward",
                   "[cell_contract][cell_step]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(4);
  Cell cell = make_random<Kind>(rng);
  const Index B = 3, T = 5, D = kDepth, O = cell.output_size();
  const Ten X = random_tensor<double>(B, T, D, rng);
  const Ten dY = random_tensor<double>(B, T, O, rng);
  auto s0 = cell.zero_state(B), dF = cell.zero_state(B);
  randomize_state(s0, rng);
  randomize_state(dF, rng);
  const Results whole = forward_backward(cell, X, s0, dY, dF, cf::RNNOptions{});

  std::vector<cf::CellStep<Cell>> steps;
  auto state = s0;
  bool same_outputs = true;
  for (Index t = 0; t < T; ++t) {
    steps.push_back(cf::cell_forward(cell, step_input(X, t), state));
    state = steps.back().state;
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < O; ++j)
        same_outputs = same_outputs && same_value<Kind>(steps.back().output(b, j), whole.outputs(b, t, j));
  }
  CHECK(same_outputs);
  std::vector<Mat> final_parts;
  for (const auto* p : const_state_parts(state)) final_parts.push_back(*p);
  CHECK(same_matrices<Kind>(final_parts, whole.state));

  cf::zero_grad(cell);
  auto d_state = dF;
  bool same_d_inputs = true;
  for (Index t = T - 1; t >= 0; --t) {
    Mat dy(B, O);
    for (Index b = 0; b < B; ++b)
      for (Index j = 0; j < O; ++j) dy(b, j) = dY(b, t, j);
    const auto g = cf::cell_backward(cell, steps[static_cast<std::size_t>(t)], &dy, &d_state);
    d_state = g.d_state;
    for (Index b = 0; b < B; ++b)
      for (Index d = 0; d < D; ++d)
        same_d_inputs = same_d_inputs && same_value<Kind>(g.d_input(b, d), whole.d_inputs(b, t, d));
  }
  CHECK(same_d_inputs);
  std::vector<Mat> d_initial;
  for (const auto* p : const_state_parts(d_state)) d_initial.push_back(*p);
  CHECK(same_matrices<Kind>(d_initial, whole.d_state));
  // The weight gradients are the same sums added in another order (step by step instead of one
  // product over all steps): equal to rounding, as rnn/step.hpp says.
  const auto grads = variable_grads(cell);
  REQUIRE(grads.size() == whole.grads.size());
  for (std::size_t k = 0; k < grads.size(); ++k) {
    INFO("variable " << k << ": worst relative difference " << worst_relative(grads[k], whole.grads[k]));
    CHECK(worst_relative(grads[k], whole.grads[k]) <= 1e-12);
    CHECK(whole.grads[k].cwiseAbs().maxCoeff() > 0.0);
  }
}

TEMPLATE_TEST_CASE("cell contract: a checkpoint round trip gives bitwise-equal outputs", "[cell_contract]",
                   CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(5), other_rng(55);
  Cell saved = make_random<Kind>(rng);
  Cell loaded = make_random<Kind>(other_rng);  // other weights until the load
  cf::VariableList<double> saved_vars, loaded_vars;
  saved_vars.add(saved, "rnn");
  loaded_vars.add(loaded, "rnn");
  const Index B = 4, T = 5;
  const Ten X = random_tensor<double>(B, T, kDepth, rng);
  auto s0 = saved.zero_state(B);
  randomize_state(s0, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<Index>{5, 2, 0, 4};
  const auto before = cf::dynamic_rnn(loaded, X, opts, &s0);
  const auto expected = cf::dynamic_rnn(saved, X, opts, &s0);
  REQUIRE_FALSE(bitwise_equal(before.outputs, expected.outputs));

  ScratchFile file("cell-contract.ckpt");
  cf::io::save_checkpoint(file.path(), saved_vars);
  const auto info = cf::io::load_checkpoint(file.path(), loaded_vars);
  CHECK(info.variables.size() == saved_vars.size());
  for (std::size_t k = 0; k < saved_vars.size(); ++k) {
    INFO(saved_vars[k].name);
    CHECK(bitwise_equal(*loaded_vars[k].value, *saved_vars[k].value));
  }
  const auto after = cf::dynamic_rnn(loaded, X, opts, &s0);
  CHECK(bitwise_equal(after.outputs, expected.outputs));
  CHECK(same_state(after.final_state, expected.final_state));
}

TEMPLATE_TEST_CASE("cell contract: batch_threads 2 and 3 equal batch_threads 1", "[cell_contract][batch_threads]",
                   CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(6);
  Cell cell = make_random<Kind>(rng);
  const Index B = 7, T = 5;
  const Ten X = random_tensor<double>(B, T, kDepth, rng);
  const Ten dY = random_tensor<double>(B, T, cell.output_size(), rng);
  auto s0 = cell.zero_state(B), dF = cell.zero_state(B);
  randomize_state(s0, rng);
  randomize_state(dF, rng);
  for (bool with_lengths : {false, true}) {
    cf::RNNOptions opts;
    if (with_lengths) opts.sequence_length = std::vector<Index>{5, 0, 3, 5, 1, 0, 4};
    const Results one = forward_backward(cell, X, s0, dY, dF, opts);
    for (int threads : {2, 3}) {
      INFO("batch_threads " << threads << (with_lengths ? ", with sequence_length" : ""));
      opts.batch_threads = threads;
      const Results split = forward_backward(cell, X, s0, dY, dF, opts);
      CHECK(worst_relative(split.outputs, one.outputs) <= 1e-12);
      CHECK(worst_relative(split.d_inputs, one.d_inputs) <= 1e-12);
      REQUIRE(split.state.size() == one.state.size());
      for (std::size_t k = 0; k < one.state.size(); ++k) CHECK(worst_relative(split.state[k], one.state[k]) <= 1e-12);
      REQUIRE(split.d_state.size() == one.d_state.size());
      for (std::size_t k = 0; k < one.d_state.size(); ++k)
        CHECK(worst_relative(split.d_state[k], one.d_state[k]) <= 1e-12);
      REQUIRE(split.grads.size() == one.grads.size());
      for (std::size_t k = 0; k < one.grads.size(); ++k) {
        INFO("gradient " << k);
        CHECK(worst_relative(split.grads[k], one.grads[k]) <= 1e-12);
      }
    }
  }
}

TEMPLATE_TEST_CASE("cell contract: sequence_length semantics", "[cell_contract][dynamic_rnn]",
                   CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(7);
  Cell cell = make_random<Kind>(rng);
  const Index B = 4, T = 5, O = cell.output_size();
  const std::vector<Index> lens{3, 0, 4, 1};  // the longest is 4 < T: the loop stops there
  const Ten X = random_tensor<double>(B, T, kDepth, rng);
  auto s0 = cell.zero_state(B);
  randomize_state(s0, rng);
  cf::RNNOptions opts;
  opts.sequence_length = lens;
  auto r = cf::dynamic_rnn(cell, X, opts, &s0);
  for (Index b = 0; b < B; ++b) {
    const Index len = lens[static_cast<std::size_t>(b)];
    INFO("example " << b << ", length " << len);
    long nonzero_padded = 0, zero_valid = 0;
    for (Index t = 0; t < T; ++t)
      for (Index j = 0; j < O; ++j) {
        if (t >= len) nonzero_padded += r.outputs(b, t, j) != 0.0;
        if (t < len) zero_valid += r.outputs(b, t, j) == 0.0;
      }
    CHECK(nonzero_padded == 0);                              // exactly zero past the length
    if (!Kind::outputs_can_be_zero) CHECK(zero_valid == 0);  // and real outputs before it
    const auto final_b = state_row(r.final_state, b);
    if (len == 0) {
      CHECK(same_state(final_b, state_row(s0, b)));  // the initial state, bitwise
      continue;
    }
    // The state after the last valid step: its h is that step's output, bitwise ...
    const auto parts = const_state_parts(final_b);
    bool h_is_last_output = true;
    for (Index j = 0; j < O; ++j)
      h_is_last_output = h_is_last_output && (*parts.back())(0, j) == r.outputs(b, len - 1, j);
    if (Kind::output_is_h) CHECK(h_is_last_output);
    // ... and the whole state is that of the example run alone for exactly len steps.
    Ten alone(1, len, kDepth);
    for (Index t = 0; t < len; ++t)
      for (Index d = 0; d < kDepth; ++d) alone(0, t, d) = X(b, t, d);
    const auto ra = cf::dynamic_rnn(cell, alone, state_row(s0, b));
    CHECK(state_diff(final_b, ra.final_state) <= 1e-12);
  }

  // Backward: padded steps receive and give no gradient; a length-0 example passes its
  // final-state gradient through to its initial state.
  const Ten dY = random_tensor<double>(B, T, O, rng);
  auto dF = cell.zero_state(B);
  randomize_state(dF, rng);
  cf::zero_grad(cell);
  const auto g = cf::dynamic_rnn_backward(cell, r, &dY, &dF);
  long nonzero_padded = 0;
  for (Index b = 0; b < B; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t)
      for (Index d = 0; d < kDepth; ++d) nonzero_padded += g.d_inputs(b, t, d) != 0.0;
  CHECK(nonzero_padded == 0);
  CHECK(same_state(state_row(g.d_initial_state, 1), state_row(dF, 1)));
  CHECK_FALSE(same_state(state_row(g.d_initial_state, 0), state_row(dF, 0)));  // a real gradient elsewhere
}

TEMPLATE_TEST_CASE("cell contract: NaN and infinity in the padding change no output, state or gradient",
                   "[cell_contract][dynamic_rnn]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(8);
  Cell cell = make_random<Kind>(rng);
  const Index B = 5, T = 6, O = cell.output_size();
  const std::vector<Index> lens{6, 2, 0, 4, 1};
  // Inputs and output gradients with zeros past each length ...
  Ten X = random_tensor<double>(B, T, kDepth, rng), dY = random_tensor<double>(B, T, O, rng);
  for (Index b = 0; b < B; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t) {
      for (Index d = 0; d < kDepth; ++d) X(b, t, d) = 0;
      for (Index j = 0; j < O; ++j) dY(b, t, j) = 0;
    }
  auto s0 = cell.zero_state(B), dF = cell.zero_state(B);
  randomize_state(s0, rng);
  randomize_state(dF, rng);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (int threads : {1, 2}) {
    cf::RNNOptions opts;
    opts.sequence_length = lens;
    opts.batch_threads = threads;
    const Results clean = forward_backward(cell, X, s0, dY, dF, opts);
    REQUIRE(all_finite(clean));
    // ... and the same with NaN, +-infinity, or ordinary numbers there.
    for (int fill = 0; fill < 3; ++fill) {
      INFO("batch_threads " << threads << ", padding " << (fill == 0 ? "NaN" : fill == 1 ? "+-inf" : "random"));
      Ten Xd = X, dYd = dY;
      for (Index b = 0; b < B; ++b)
        for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t) {
          for (Index d = 0; d < kDepth; ++d)
            Xd(b, t, d) = fill == 0 ? nan : fill == 1 ? ((t + d) % 2 ? inf : -inf) : rng.uniform(-9.0, 9.0);
          for (Index j = 0; j < O; ++j)
            dYd(b, t, j) = fill == 0 ? nan : fill == 1 ? ((t + j) % 2 ? -inf : inf) : rng.uniform(-9.0, 9.0);
        }
      const Results dirty = forward_backward(cell, Xd, s0, dYd, dF, opts);
      CHECK(bitwise_equal(dirty.outputs, clean.outputs));
      CHECK(bitwise_equal(dirty.state, clean.state));
      CHECK(bitwise_equal(dirty.d_inputs, clean.d_inputs));
      CHECK(bitwise_equal(dirty.d_state, clean.d_state));
      REQUIRE(dirty.grads.size() == clean.grads.size());
      for (std::size_t k = 0; k < clean.grads.size(); ++k) {
        INFO("gradient " << k);
        CHECK(bitwise_equal(dirty.grads[k], clean.grads[k]));
      }
    }
    // Time-major inputs, the same.
    cf::RNNOptions tm = opts;
    tm.time_major = true;
    Ten Xd = X, dYd = dY;
    for (Index b = 0; b < B; ++b)
      for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t) {
        for (Index d = 0; d < kDepth; ++d) Xd(b, t, d) = nan;
        for (Index j = 0; j < O; ++j) dYd(b, t, j) = inf;
      }
    const Results clean_tm = forward_backward(cell, swap01(X), s0, swap01(dY), dF, tm);
    const Results dirty_tm = forward_backward(cell, swap01(Xd), s0, swap01(dYd), dF, tm);
    INFO("time_major, batch_threads " << threads);
    CHECK(bitwise_equal(swap01(dirty_tm.outputs), clean.outputs));
    CHECK(bitwise_equal(dirty_tm.d_inputs, clean_tm.d_inputs));
    CHECK(bitwise_equal(dirty_tm.state, clean.state));
    CHECK(bitwise_equal(dirty_tm.d_state, clean.d_state));
    CHECK(bitwise_equal(dirty_tm.grads, clean_tm.grads));
  }
}

TEMPLATE_TEST_CASE("cell contract: a variable of the wrong shape is a ShapeError at the next pass",
                   "[cell_contract][errors]", CELLFLOW_CELL_CONTRACT_KINDS) {
  using Kind = TestType;
  using Cell = typename Kind::Cell;
  INFO(Kind::name);
  cf::Rng rng(9);
  Cell cell = make_random<Kind>(rng);
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  const Index B = 3, T = 4;
  const Ten X = random_tensor<double>(B, T, kDepth, rng);
  const Ten dY = random_tensor<double>(B, T, cell.output_size(), rng);
  const auto s0 = cell.zero_state(B), dF = cell.zero_state(B);
  cf::RNNOptions opts;
  const Results reference = forward_backward(cell, X, s0, dY, dF, opts);

  for (std::size_t k = 0; k < vars.size(); ++k) {
    const std::string name = vars[k].name, shortname = short_name(name);
    INFO("variable " << name);
    Mat& value = *vars[k].value;
    Mat& grad = *vars[k].grad;
    const Mat good = value;
    const auto wrong = [](const Mat& m) { return Mat::Zero(m.rows(), m.cols() + 1); };
    const auto named = [&](const std::string& text) {
      return what_contains<cf::ShapeError>(Kind::names_in_errors(name) ? text : std::string());
    };

    // A value of another shape: the next forward pass (dynamic_rnn, a stream, one step) refuses it.
    value = wrong(good);
    CHECK_THROWS_MATCHES(cf::dynamic_rnn(cell, X), cf::ShapeError, named("variable '" + shortname + "'"));
    opts.batch_threads = 2;
    CHECK_THROWS_MATCHES(cf::dynamic_rnn(cell, X, opts), cf::ShapeError, named("variable '" + shortname + "'"));
    opts.batch_threads = 1;
    cf::RNNStream<Cell> stream(cell, B);
    CHECK_THROWS_AS(stream.step(step_input(X, 0)), cf::ShapeError);
    CHECK_THROWS_AS(cf::cell_forward(cell, step_input(X, 0), s0), cf::ShapeError);

    // ... and so does the backward pass of a forward pass made before it changed.
    value = good;
    auto r = cf::dynamic_rnn(cell, X);
    value = wrong(good);
    CHECK_THROWS_MATCHES(cf::dynamic_rnn_backward(cell, r, &dY), cf::ShapeError, named("variable '" + shortname + "'"));
    value = good;

    // A gradient of another shape: the forward pass runs, the backward pass refuses it.
    for (int threads : {1, 2}) {
      INFO("a gradient of the wrong shape, batch_threads " << threads);
      opts.batch_threads = threads;
      grad = wrong(good);
      auto rg = cf::dynamic_rnn(cell, X, opts);
      CHECK(bitwise_equal(rg.outputs, reference.outputs));
      CHECK_THROWS_MATCHES(cf::dynamic_rnn_backward(cell, rg, &dY), cf::ShapeError,
                           named("gradient of variable '" + shortname + "'"));
      grad.setZero(good.rows(), good.cols());
    }
    opts.batch_threads = 1;
  }
  // The shapes restored, the cell computes exactly what it did before.
  const Results again = forward_backward(cell, X, s0, dY, dF, opts);
  CHECK(bitwise_equal(again.outputs, reference.outputs));
  CHECK(bitwise_equal(again.d_inputs, reference.d_inputs));
  CHECK(bitwise_equal(again.grads, reference.grads));
}

// is_cell_v is false for what is not a cell.
struct NotACell {
  using Scalar = double;
  using State = cf::Matrix<double>;
};
struct CellWithoutForwardStep {
  using Scalar = double;
  using State = cf::Matrix<double>;
  struct Tape {};
  Index input_depth() const { return 1; }
  Index output_size() const { return 1; }
  std::string cell_name() const { return "broken"; }
  State zero_state(Index batch) const { return State::Zero(batch, 1); }
  void check_state(const State&, Index, const std::string&) const {}
  template <class F>
  void for_each_variable(const std::string&, F&&) {}
  State final_state(const Tape&) const { return State(); }
};

TEST_CASE("cell contract: is_cell_v is false for what is not a cell", "[cell_contract]") {
  STATIC_REQUIRE_FALSE(cf::is_cell_v<int>);
  STATIC_REQUIRE_FALSE(cf::is_cell_v<double>);
  STATIC_REQUIRE_FALSE(cf::is_cell_v<NotACell>);
  STATIC_REQUIRE_FALSE(cf::is_cell_v<CellWithoutForwardStep>);
  STATIC_REQUIRE_FALSE(cf::is_cell_v<cf::Dense<double>>);
  STATIC_REQUIRE_FALSE(cf::is_cell_v<cf::LSTMStateTuple<double>>);
  STATIC_REQUIRE(cf::is_cell_v<cf::GRUCell<float>>);
  STATIC_REQUIRE(cf::is_cell_v<cf::MultiRNNCell<float>>);
  STATIC_REQUIRE(cf::is_cell_v<mycells::ElmanCell<float>>);
  STATIC_REQUIRE(cf::is_cell_v<cf::BasicRNNCell<float>>);
  STATIC_REQUIRE(cf::is_cell_v<cf::ResidualWrapper<cf::MultiRNNCell<float>>>);
}

#undef CELLFLOW_CELL_CONTRACT_KINDS

}  // namespace test_cell_contract
