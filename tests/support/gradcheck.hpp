// The central-difference gradient check of backpropagation through time, in double precision,
// for any cell (every test that checks a recurrent gradient uses this one harness).
//
// The loss is
//   L = sum(outputs * W_o) + sum over the final state's parts (S * W_s)      (random W_o, W_s)
// and the analytic gradients of dynamic_rnn_backward (inputs, every part of the initial state,
// every scalar of every variable) are compared with (L(x + h) - L(x - h)) / 2h, for batch 3 and
// T steps: no sequence_length, lengths {2, 0, T} and {T-1, 1, 0} (a length 0, a full length, and
// a longest length below T), each from the zero state and from a random initial state.
// Criterion: |analytic - numeric| <= 1e-6 * max(1, |analytic|, |numeric|).
//
// Also exact properties: padded steps get exactly zero input gradient, a length-0 example passes
// its final-state gradient through to its initial state unchanged, backward is repeatable and
// accumulates (two calls give exactly twice one call), and every variable receives gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/states.hpp"
#include "support/test_util.hpp"

namespace cellflow_test {

constexpr double kGradcheckStep = 1e-6;  // finite-difference step
constexpr double kGradcheckTol = 1e-6;   // relative tolerance, floored at an absolute 1e-6

/// Collects analytic/numeric pairs; reports the worst relative error and the first failures.
struct GradCheck {
  explicit GradCheck(std::string l = "") : label(std::move(l)) {}

  std::string label;
  double max_err = 0;
  long checked = 0;
  long bad = 0;
  std::string failures;

  void compare(const std::string& what, double analytic, double numeric) {
    const double err = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
    ++checked;
    if (err > max_err) max_err = err;
    if (!(err <= kGradcheckTol)) {
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
    os << label << ": " << checked << " derivatives, max relative error " << max_err << ", " << bad << " over "
       << kGradcheckTol << "\n"
       << failures;
    return os.str();
  }
};

/// Central difference of `loss` with respect to the scalar `x`; restores x exactly.
template <class F>
double central_diff(double& x, F&& loss) {
  const double x0 = x, xp = x0 + kGradcheckStep, xm = x0 - kGradcheckStep;
  x = xp;
  const double lp = loss();
  x = xm;
  const double lm = loss();
  x = x0;
  return (lp - lm) / (xp - xm);
}

/// "what[k]", for messages.
inline std::string indexed(const std::string& what, Index k) { return what + "[" + std::to_string(k) + "]"; }

/// L = sum(outputs * Wo) + sum_i sum(final_state part i * Ws[i]).
template <class Cell>
double rnn_loss(const Cell& cell, const cf::Tensor3<double>& X, const typename Cell::State* s0,
                const cf::RNNOptions& opt, const cf::Tensor3<double>& Wo, const std::vector<cf::Matrix<double>>& Ws) {
  auto r = s0 ? cf::dynamic_rnn(cell, X, *s0, opt) : cf::dynamic_rnn(cell, X, opt);
  double L = 0;
  for (Index k = 0; k < r.outputs.size(); ++k) L += r.outputs.data()[k] * Wo.data()[k];
  const auto fp = state_parts(r.final_state);
  for (std::size_t i = 0; i < fp.size(); ++i) L += fp[i]->cwiseProduct(Ws[i]).sum();
  return L;
}

/// Accepts or rejects a sampled (inputs, initial state): used to keep clip kinks away from the
/// finite differences. Gets the training forward result and the per-row lengths.
template <class Cell>
using GradcheckValidator = std::function<bool(const cf::RNNResult<Cell>&, const std::vector<Index>&)>;

struct GradcheckConfig {
  const char* name;
  std::vector<Index> lengths;  // empty: no sequence_length
  bool init_state;
};

/// The sequence configurations for batch 3 and T steps (see the top of this header).
inline std::vector<GradcheckConfig> gradcheck_configs(Index T) {
  std::vector<GradcheckConfig> c;
  for (bool s0 : {false, true}) {
    c.push_back({"no sequence_length", {}, s0});
    c.push_back({"sequence_length {2, 0, T}", {2, 0, T}, s0});
    c.push_back({"sequence_length {T-1, 1, 0}", {T - 1, 1, 0}, s0});
  }
  return c;
}

/// The full check of one cell (see the top of this header). `valid`, when given, may reject a
/// sample of inputs and initial state (it is then drawn again, up to 200 times).
/// `draw`, when set, is every run's RNNOptions::draw (a DropoutWrapper's masks are then fixed).
template <class Cell>
void check_rnn_gradients(Cell& cell, const std::string& name, Index T, cf::Rng& rng,
                         const GradcheckValidator<Cell>& valid = nullptr,
                         std::optional<std::uint64_t> draw = std::nullopt) {
  using State = typename Cell::State;
  using Mat = cf::Matrix<double>;
  using Ten = cf::Tensor3<double>;
  const Index B = 3, D = cell.input_depth();
  cf::VariableList<double> vars;
  vars.add(cell, "rnn");
  REQUIRE(vars.size() > 0);

  for (const GradcheckConfig& sc : gradcheck_configs(T)) {
    const std::string label = name + ", " + sc.name + (sc.init_state ? ", initial_state" : ", zero state");
    INFO(label);
    cf::RNNOptions opt;
    opt.draw = draw;
    if (!sc.lengths.empty()) opt.sequence_length = sc.lengths;
    const std::vector<Index> lens = sc.lengths.empty() ? std::vector<Index>(B, T) : sc.lengths;

    // Sample inputs and initial state; resample while the validator rejects them.
    Ten X;
    State s0 = cell.zero_state(B);
    bool accepted = false;
    for (int attempt = 0; attempt < 200 && !accepted; ++attempt) {
      X = random_tensor<double>(B, T, D, rng, -1.5, 1.5);
      s0 = cell.zero_state(B);
      if (sc.init_state) randomize_state(s0, rng, -0.8, 0.8);
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
    for (Mat* p : state_parts(Ws_state)) {
      *p = random_matrix<double>(p->rows(), p->cols(), rng, -1.0, 1.0);
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
      gc.compare(indexed("d inputs", k), g.d_inputs.data()[k], central_diff(X.data()[k], loss));

    // The initial state (the zero state when none was given: perturb it explicitly).
    auto loss_s0 = [&] { return rnn_loss(cell, X, &s0, opt, Wo, Ws); };
    const auto sp = state_parts(s0);
    const auto dsp = state_parts(g.d_initial_state);
    REQUIRE(dsp.size() == sp.size());
    for (std::size_t i = 0; i < sp.size(); ++i) {
      REQUIRE(dsp[i]->rows() == sp[i]->rows());
      REQUIRE(dsp[i]->cols() == sp[i]->cols());
      for (Index k = 0; k < sp[i]->size(); ++k)
        gc.compare(indexed("d initial_state part " + std::to_string(i), k), dsp[i]->data()[k],
                   central_diff(sp[i]->data()[k], loss_s0));
    }

    for (std::size_t vi = 0; vi < vars.size(); ++vi) {
      auto& v = vars[vi];
      for (Index k = 0; k < v.size(); ++k)
        gc.compare(indexed("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
    }
    INFO(gc.summary());
    CHECK(gc.bad == 0);
    long expected = static_cast<long>(X.size() + vars.num_scalars());
    for (Mat* p : sp) expected += static_cast<long>(p->size());
    CHECK(gc.checked == expected);  // every input, initial-state and variable scalar

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
inline bool clip_sample_ok(const cf::Matrix<double>& raw, double clip, Index batch, const std::vector<Index>& lens,
                           double margin = 1e-4) {
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

}  // namespace cellflow_test
