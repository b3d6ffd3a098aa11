// Central-difference gradient checks of backpropagation through time, in double precision.
//
// For every cell kind the loss is
//   L = sum(outputs * W_o) + sum over the final state's parts (S * W_s)      (random W_o, W_s)
// and the analytic gradients of dynamic_rnn_backward (inputs, every part of the initial state,
// every scalar of every variable) are compared with (L(x + h) - L(x - h)) / 2h, with and without
// sequence_length (which always holds a length 0 and a full length) and initial_state.
// Criterion: |analytic - numeric| <= 1e-6 * max(1, |analytic|, |numeric|).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/test_util.hpp"

namespace {

namespace cf = cellflow;
using cellflow_test::random_matrix;
using cellflow_test::random_tensor;
using cf::Index;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;
using VarList = cf::VariableList<double>;
using StackState = std::vector<cf::CellState<double>>;

constexpr double kStep = 1e-6;  // finite-difference step
constexpr double kTol = 1e-6;   // relative tolerance, floored at an absolute 1e-6

// ---- the parts of a state, in TF's nest.flatten order (c before h, layer 0 first) ----

std::vector<Mat*> parts(cf::LSTMStateTuple<double>& s) { return {&s.c, &s.h}; }
std::vector<Mat*> parts(Mat& s) { return {&s}; }
std::vector<Mat*> parts(StackState& s) {
  std::vector<Mat*> p;
  for (auto& layer : s) {
    if (layer.is_lstm()) p.push_back(&layer.c());
    p.push_back(&layer.h());
  }
  return p;
}

void fill_random(Mat& m, cf::Rng& rng, double lo, double hi) {
  m = random_matrix<double>(m.rows(), m.cols(), rng, lo, hi);
}

/// Every variable (kernels, biases, peephole diagonals, projections) drawn from U[-scale, scale):
/// non-zero biases and peepholes, unlike the default initialisation.
template <class Module>
void randomize(Module& m, cf::Rng& rng, double scale = 0.8) {
  VarList vars;
  vars.add(m);
  for (auto& v : vars) fill_random(*v.value, rng, -scale, scale);
}

/// Collects analytic/numeric pairs; reports the worst relative error and the first failures.
struct GradCheck {
  explicit GradCheck(std::string l) : label(std::move(l)) {}

  std::string label;
  double max_err = 0;
  long checked = 0;
  long bad = 0;
  std::string failures;

  void compare(const std::string& what, double analytic, double numeric) {
    const double err = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
    ++checked;
    if (err > max_err) max_err = err;
    if (!(err <= kTol)) {
      if (bad < 8) {
        std::ostringstream os;
        os.precision(12);
        os << "  " << what << ": analytic " << analytic << ", numeric " << numeric << "\n";
        failures += os.str();
      }
      ++bad;
    }
  }

  std::string summary() const {
    std::ostringstream os;
    os << label << ": " << checked << " derivatives, max relative error " << max_err << ", " << bad << " over " << kTol
       << "\n"
       << failures;
    return os.str();
  }
};

/// Central difference of `loss` with respect to the scalar `x`; restores x exactly.
template <class F>
double central_diff(double& x, F&& loss) {
  const double x0 = x, xp = x0 + kStep, xm = x0 - kStep;
  x = xp;
  const double lp = loss();
  x = xm;
  const double lm = loss();
  x = x0;
  return (lp - lm) / (xp - xm);
}

std::string idx(const std::string& what, Index k) { return what + "[" + std::to_string(k) + "]"; }

/// L = sum(outputs * Wo) + sum_i sum(final_state part i * Ws[i]).
template <class Cell>
double rnn_loss(const Cell& cell, const Ten& X, const typename Cell::State* s0, const cf::RNNOptions& opt,
                const Ten& Wo, const std::vector<Mat>& Ws) {
  auto r = s0 ? cf::dynamic_rnn(cell, X, *s0, opt) : cf::dynamic_rnn(cell, X, opt);
  double L = 0;
  for (Index k = 0; k < r.outputs.size(); ++k) L += r.outputs.data()[k] * Wo.data()[k];
  const auto fp = parts(r.final_state);
  for (std::size_t i = 0; i < fp.size(); ++i) L += fp[i]->cwiseProduct(Ws[i]).sum();
  return L;
}

/// Accepts or rejects a sampled (inputs, initial state): used to keep clip kinks away from the
/// finite differences. Gets the training forward result and the per-row lengths.
template <class Cell>
using Validator = std::function<bool(const cf::RNNResult<Cell>&, const std::vector<Index>&)>;

struct SeqConfig {
  const char* name;
  std::vector<Index> lengths;  // empty: no sequence_length
  bool init_state;
};

/// Sequence configurations for batch 3 and T steps: no lengths, lengths with a 0 and a full
/// length, lengths whose maximum is below T (the tail steps never run), each with and without
/// an initial state.
std::vector<SeqConfig> seq_configs(Index T) {
  std::vector<SeqConfig> c;
  for (bool s0 : {false, true}) {
    c.push_back({"no sequence_length", {}, s0});
    c.push_back({"sequence_length {2, 0, T}", {2, 0, T}, s0});
    c.push_back({"sequence_length {T-1, 1, 0}", {T - 1, 1, 0}, s0});
  }
  return c;
}

/// The full check of one cell: gradient of inputs, initial state and every variable against
/// central differences, plus the exact properties of padded steps and of accumulation.
template <class Cell>
void check_rnn_gradients(Cell& cell, const std::string& name, Index T, cf::Rng& rng,
                         const Validator<Cell>& valid = nullptr) {
  using State = typename Cell::State;
  const Index B = 3, D = cell.input_depth();
  VarList vars;
  vars.add(cell, "rnn");
  REQUIRE(vars.size() > 0);

  for (const SeqConfig& sc : seq_configs(T)) {
    const std::string label = name + ", " + sc.name + (sc.init_state ? ", initial_state" : ", zero state");
    INFO(label);
    cf::RNNOptions opt;
    if (!sc.lengths.empty()) opt.sequence_length = sc.lengths;
    const std::vector<Index> lens = sc.lengths.empty() ? std::vector<Index>(B, T) : sc.lengths;

    // Sample inputs and initial state; resample while the validator rejects them.
    Ten X;
    State s0 = cell.zero_state(B);
    bool accepted = false;
    for (int attempt = 0; attempt < 200 && !accepted; ++attempt) {
      X = random_tensor<double>(B, T, D, rng, -1.5, 1.5);
      s0 = cell.zero_state(B);
      if (sc.init_state)
        for (Mat* p : parts(s0)) fill_random(*p, rng, -0.8, 0.8);
      if (!valid) {
        accepted = true;
      } else {
        auto probe = sc.init_state ? cf::dynamic_rnn(cell, X, s0, opt) : cf::dynamic_rnn(cell, X, opt);
        accepted = valid(probe, lens);
      }
    }
    REQUIRE(accepted);
    const State* s0p = sc.init_state ? &s0 : nullptr;

    auto r = s0p ? cf::dynamic_rnn(cell, X, *s0p, opt) : cf::dynamic_rnn(cell, X, opt);
    const Ten Wo = random_tensor<double>(r.outputs.dimension(0), r.outputs.dimension(1), r.outputs.dimension(2), rng);
    State Ws_state = r.final_state;
    std::vector<Mat> Ws;
    for (Mat* p : parts(Ws_state)) {
      fill_random(*p, rng, -1, 1);
      Ws.push_back(*p);
    }

    vars.zero_grad();
    auto g = cf::dynamic_rnn_backward(cell, r, &Wo, &Ws_state);
    std::vector<Mat> grads;
    for (auto& v : vars) grads.push_back(*v.grad);

    GradCheck gc(label);
    auto loss = [&] { return rnn_loss(cell, X, s0p, opt, Wo, Ws); };

    REQUIRE(g.d_inputs.size() == X.size());
    for (Index k = 0; k < X.size(); ++k)
      gc.compare(idx("d inputs", k), g.d_inputs.data()[k], central_diff(X.data()[k], loss));

    // The initial state (the zero state when none was given: perturb it explicitly).
    auto loss_s0 = [&] { return rnn_loss(cell, X, &s0, opt, Wo, Ws); };
    const auto sp = parts(s0);
    const auto dsp = parts(g.d_initial_state);
    REQUIRE(dsp.size() == sp.size());
    for (std::size_t i = 0; i < sp.size(); ++i) {
      REQUIRE(dsp[i]->rows() == sp[i]->rows());
      REQUIRE(dsp[i]->cols() == sp[i]->cols());
      for (Index k = 0; k < sp[i]->size(); ++k)
        gc.compare(idx("d initial_state part " + std::to_string(i), k), dsp[i]->data()[k],
                   central_diff(sp[i]->data()[k], loss_s0));
    }

    for (std::size_t vi = 0; vi < vars.size(); ++vi) {
      auto& v = vars[vi];
      for (Index k = 0; k < v.size(); ++k)
        gc.compare(idx("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
    }
    INFO(gc.summary());
    CHECK(gc.bad == 0);
    CHECK(gc.checked > 0);

    // Exact properties of sequence_length.
    for (Index b = 0; b < B; ++b) {
      for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t)
        for (Index d = 0; d < D; ++d) {
          INFO("padded input gradient at b=" << b << " t=" << t << " d=" << d);
          CHECK(g.d_inputs(b, t, d) == 0.0);
        }
      if (lens[static_cast<std::size_t>(b)] == 0) {
        for (std::size_t i = 0; i < dsp.size(); ++i) {
          INFO("length-0 row " << b << ": d_initial_state part " << i << " must equal d_final_state part " << i);
          CHECK((dsp[i]->row(b).array() == Ws[i].row(b).array()).all());
        }
      }
    }

    // Gradients accumulate: two backward calls without zero_grad give exactly twice one call.
    vars.zero_grad();
    auto g1 = cf::dynamic_rnn_backward(cell, r, &Wo, &Ws_state);
    std::vector<Mat> once;
    for (auto& v : vars) once.push_back(*v.grad);
    auto g2 = cf::dynamic_rnn_backward(cell, r, &Wo, &Ws_state);
    for (std::size_t vi = 0; vi < vars.size(); ++vi) {
      INFO("accumulation of " << vars[vi].name);
      CHECK((once[vi].array() == grads[vi].array()).all());  // backward is repeatable
      CHECK((vars[vi].grad->array() == 2.0 * once[vi].array()).all());
      CHECK(once[vi].cwiseAbs().maxCoeff() > 0.0);  // every variable receives gradient
    }
    for (Index k = 0; k < X.size(); ++k) REQUIRE(g2.d_inputs.data()[k] == g1.d_inputs.data()[k]);
  }
}

/// Accepts a sample when no pre-clip value is within `margin` of +-clip, and the clip is active
/// on some valid entries and inactive on others. `raw` rows are (t, b) pairs, time-major.
bool clip_sample_ok(const Mat& raw, double clip, Index batch, const std::vector<Index>& lens, double margin = 1e-4) {
  long active = 0, inactive = 0;
  for (Index row = 0; row < raw.rows(); ++row) {
    const Index t = row / batch, b = row % batch;
    const bool valid = t < lens[static_cast<std::size_t>(b)];
    for (Index u = 0; u < raw.cols(); ++u) {
      const double v = std::abs(raw(row, u));
      if (std::abs(v - clip) < margin) return false;
      if (valid) (v > clip ? active : inactive) += 1;
    }
  }
  return active > 0 && inactive > 0;
}

cf::LSTMOptions<double> peephole_options() {
  cf::LSTMOptions<double> o;
  o.use_peepholes = true;
  return o;
}

}  // namespace

TEST_CASE("gradcheck: BasicLSTMCell, forget_bias 1 and 0.3", "[gradcheck]") {
  for (double fb : {1.0, 0.3}) {
    cf::Rng rng(101);
    cf::BasicLSTMCell<double> cell(3, 4, rng, fb);
    randomize(cell, rng);
    check_rnn_gradients(cell, "BasicLSTMCell(forget_bias=" + std::to_string(fb) + ")", 4, rng);
  }
}

TEST_CASE("gradcheck: LSTMCell with peepholes", "[gradcheck]") {
  cf::Rng rng(202);
  auto o = peephole_options();
  o.forget_bias = 0.5;
  cf::LSTMCell<double> cell(3, 3, o, rng);
  randomize(cell, rng);
  check_rnn_gradients(cell, "LSTMCell(peepholes)", 5, rng);
}

TEST_CASE("gradcheck: LSTMCell with peepholes and cell_clip", "[gradcheck]") {
  cf::Rng rng(303);
  auto o = peephole_options();
  o.cell_clip = 0.4;
  cf::LSTMCell<double> cell(3, 3, o, rng);
  randomize(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  long accepted = 0;
  Validator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    const bool ok = clip_sample_ok(r.tape.split.slice(0).tape.c_raw, 0.4, 3, lens);
    accepted += ok;
    return ok;
  };
  check_rnn_gradients(cell, "LSTMCell(peepholes, cell_clip=0.4)", 4, rng, valid);
  CHECK(accepted == 6);
}

TEST_CASE("gradcheck: LSTMCell with num_proj and proj_clip", "[gradcheck]") {
  cf::Rng rng(404);
  cf::LSTMOptions<double> o;
  o.num_proj = 2;
  o.proj_clip = 0.3;
  o.forget_bias = 0.8;
  cf::LSTMCell<double> cell(3, 4, o, rng);
  randomize(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  Validator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    return clip_sample_ok(r.tape.split.slice(0).tape.r_raw, 0.3, 3, lens);
  };
  check_rnn_gradients(cell, "LSTMCell(num_proj=2, proj_clip=0.3)", 4, rng, valid);
}

TEST_CASE("gradcheck: LSTMCell with every option", "[gradcheck]") {
  cf::Rng rng(505);
  auto o = peephole_options();
  o.cell_clip = 0.5;
  o.num_proj = 3;
  o.proj_clip = 0.1;
  cf::LSTMCell<double> cell(2, 3, o, rng);
  randomize(cell, rng, 1.0);
  using Cell = cf::LSTMCell<double>;
  Validator<Cell> valid = [&](const cf::RNNResult<Cell>& r, const std::vector<Index>& lens) {
    return clip_sample_ok(r.tape.split.slice(0).tape.c_raw, 0.5, 3, lens) &&
           clip_sample_ok(r.tape.split.slice(0).tape.r_raw, 0.1, 3, lens);
  };
  check_rnn_gradients(cell, "LSTMCell(peepholes, cell_clip, num_proj, proj_clip)", 4, rng, valid);
}

TEST_CASE("gradcheck: GRUCell", "[gradcheck]") {
  cf::Rng rng(606);
  cf::GRUCell<double> cell(3, 4, rng);
  randomize(cell, rng);
  check_rnn_gradients(cell, "GRUCell", 5, rng);
}

namespace {

/// Layer 0 LSTMCell(peepholes, num_proj), layer 1 GRUCell, layer 2 BasicLSTMCell(forget_bias 0.7).
cf::MultiRNNCell<double> mixed_stack(cf::Rng& rng) {
  cf::LSTMOptions<double> o;
  o.use_peepholes = true;
  o.num_proj = 2;
  cf::LSTMCell<double> l0(3, 3, o, rng);
  cf::GRUCell<double> l1(2, 3, rng);
  cf::BasicLSTMCell<double> l2(3, 2, rng, 0.7);
  return cf::MultiRNNCell<double>(std::move(l0), std::move(l1), std::move(l2));
}

}  // namespace

TEST_CASE("gradcheck: mixed 3-layer MultiRNNCell", "[gradcheck]") {
  cf::Rng rng(707);
  auto multi = mixed_stack(rng);
  randomize(multi, rng);
  check_rnn_gradients(multi, "MultiRNNCell(LSTMCell(peep, proj), GRUCell, BasicLSTMCell)", 4, rng);
}

TEST_CASE("gradcheck: one-layer MultiRNNCell of an LSTMCell", "[gradcheck]") {
  cf::Rng rng(808);
  cf::LSTMCell<double> cell(2, 3, peephole_options(), rng);
  cf::MultiRNNCell<double> multi(std::move(cell));
  randomize(multi, rng);
  check_rnn_gradients(multi, "MultiRNNCell(LSTMCell(peep))", 3, rng);
}

TEST_CASE("gradcheck: Dense head + mean sparse softmax cross-entropy", "[gradcheck]") {
  cf::Rng rng(909);
  cf::Dense<double> dense(4, 5, rng);
  randomize(dense, rng);
  const Mat x0 = random_matrix<double>(3, 4, rng, -2, 2);
  const std::vector<int> labels{1, 4, 0};
  VarList vars;
  vars.add(dense);
  REQUIRE(vars.size() == 2);

  Mat x = x0;
  auto loss = [&] { return cf::sparse_softmax_cross_entropy_with_logits(labels, dense(x)).mean(); };

  vars.zero_grad();
  const Mat logits = dense(x);
  const auto xe = cf::sparse_softmax_cross_entropy_with_logits(labels, logits);
  const Mat dx = dense.backward(x, xe.mean_gradient());
  std::vector<Mat> grads;
  for (auto& v : vars) grads.push_back(*v.grad);

  GradCheck gc("Dense + mean xent");
  // The loss gradient w.r.t. the logits on its own.
  Mat lg = logits;
  auto loss_logits = [&] { return cf::sparse_softmax_cross_entropy_with_logits(labels, lg).mean(); };
  const Mat dlogits = xe.mean_gradient();
  for (Index k = 0; k < lg.size(); ++k)
    gc.compare(idx("d logits", k), dlogits.data()[k], central_diff(lg.data()[k], loss_logits));
  for (Index k = 0; k < x.size(); ++k) gc.compare(idx("d x", k), dx.data()[k], central_diff(x.data()[k], loss));
  for (std::size_t vi = 0; vi < vars.size(); ++vi)
    for (Index k = 0; k < vars[vi].size(); ++k)
      gc.compare(idx("d " + vars[vi].name, k), grads[vi].data()[k], central_diff(vars[vi].value->data()[k], loss));
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(gc.checked == 15 + 12 + 20 + 5);
  // Each row of the per-example gradient sums to zero (softmax - onehot).
  for (Index b = 0; b < 3; ++b) CHECK(std::abs(xe.backprop.row(b).sum()) < 1e-15);
}

TEST_CASE("gradcheck: seed pipeline MultiRNNCell -> final_state.back().h() -> Dense -> mean xent", "[gradcheck]") {
  cf::Rng rng(1001);
  auto multi = mixed_stack(rng);
  cf::Dense<double> dense(multi.output_size(), 3, rng);
  randomize(multi, rng);
  randomize(dense, rng);
  VarList vars;
  vars.add(multi, "rnn").add(dense);

  const Index B = 3, T = 5;
  Ten X = random_tensor<double>(B, T, multi.input_depth(), rng, -1.5, 1.5);
  const std::vector<int> labels{2, 0, 1};
  cf::RNNOptions opt;
  opt.sequence_length = std::vector<Index>{3, 0, 5};

  auto loss = [&] {
    const auto r = cf::dynamic_rnn(multi, X, opt);
    return cf::sparse_softmax_cross_entropy_with_logits(labels, dense(r.final_state.back().h())).mean();
  };

  vars.zero_grad();
  auto r = cf::dynamic_rnn(multi, X, opt);
  const Mat h = r.final_state.back().h();
  const auto xe = cf::sparse_softmax_cross_entropy_with_logits(labels, dense(h));
  const Mat dh = dense.backward(h, xe.mean_gradient());
  StackState d_final = multi.zero_state(B);
  d_final.back().h() = dh;
  auto g = cf::dynamic_rnn_backward(multi, r, nullptr, &d_final);
  std::vector<Mat> grads;
  for (auto& v : vars) grads.push_back(*v.grad);

  GradCheck gc("pipeline");
  for (Index k = 0; k < X.size(); ++k)
    gc.compare(idx("d inputs", k), g.d_inputs.data()[k], central_diff(X.data()[k], loss));
  // A few scalars of every variable of every layer: first, last and two in between.
  int layers_seen[4] = {0, 0, 0, 0};
  for (std::size_t vi = 0; vi < vars.size(); ++vi) {
    auto& v = vars[vi];
    const Index n = v.size();
    for (Index k : {Index(0), n / 3, (2 * n) / 3, n - 1})
      gc.compare(idx("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
    for (int l = 0; l < 3; ++l)
      if (v.name.find("cell_" + std::to_string(l) + "/") != std::string::npos) ++layers_seen[l];
    if (v.name.rfind("dense/", 0) == 0) ++layers_seen[3];
    INFO(v.name);
    CHECK(grads[vi].cwiseAbs().maxCoeff() > 0.0);
  }
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(layers_seen[0] == 6);  // kernel, bias, 3 peepholes, projection
  CHECK(layers_seen[1] == 4);
  CHECK(layers_seen[2] == 2);
  CHECK(layers_seen[3] == 2);
  // The length-0 row has no path from the inputs: its input gradients are exactly 0.
  for (Index t = 0; t < T; ++t)
    for (Index d = 0; d < X.dimension(2); ++d) CHECK(g.d_inputs(1, t, d) == 0.0);
}
