// bidirectional_dynamic_rnn and stack_bidirectional_dynamic_rnn (rnn/bidirectional.hpp,
// rnn/stack_bidirectional.hpp): the independent float64 reference
// (tests/fixtures/bidirectional_reference.txt, written by generate_bidirectional.py: outputs,
// final states and every gradient, in float and double), a central-difference gradient check in
// double, sequence_length semantics (padded outputs exactly 0, NaN in the padding changes
// nothing), concurrent directions bitwise equal to sequential ones, batch_threads, time_major,
// TF's variable names through a checkpoint round trip, and the errors of bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cellflow/io/checkpoint.hpp"
#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_bidirectional {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using Ten = cf::Tensor3<T>;
template <class T>
using Stack = std::vector<cf::AnyCell<T>>;

const std::map<std::string, FixtureCase>& cases() {
  static const auto c = load_fixture_file(fixture_path("bidirectional_reference.txt"));
  return c;
}

template <class T>
struct Tol;
template <>
struct Tol<double> {
  static constexpr double rtol = 1e-9, atol = 1e-10;
};
template <>
struct Tol<float> {
  static constexpr double rtol = 2e-4, atol = 2e-5;
};

/// A cell of the fixture's kind ("lstm": LSTMCell, forget_bias 1; "gru": GRUCell) for layer l.
template <class T>
cf::AnyCell<T> fixture_cell(const FixtureCase& c, int l, const std::string& dir, cf::Rng& rng) {
  const std::string k = "layer" + std::to_string(l) + "." + dir + ".";
  const auto d = static_cast<Index>(c.config_num(k + "input_depth"));
  const auto u = static_cast<Index>(c.config_num(k + "num_units"));
  if (c.config_str(k + "kind") == "lstm") return cf::LSTMCell<T>(d, u, rng);
  return cf::GRUCell<T>(d, u, rng);
}

/// A state of the fixture: "<prefix>c" and "<prefix>h" (LSTM) or "<prefix>h" (GRU).
template <class T>
cf::CellState<T> fixture_state(const FixtureCase& c, const std::string& prefix) {
  if (c.has(prefix + "c"))
    return cf::CellState<T>(
        cf::LSTMStateTuple<T>{to_matrix<T>(c.tensor(prefix + "c")), to_matrix<T>(c.tensor(prefix + "h"))});
  return cf::CellState<T>(to_matrix<T>(c.tensor(prefix + "h")));
}

/// Checks every part of `s` against the fixture's "<prefix>c|h".
template <class T>
void check_state(const std::string& what, const FixtureCase& c, const std::string& prefix, const cf::CellState<T>& s) {
  if (s.is_lstm()) check_close(what + " c", s.c(), c.tensor(prefix + "c").values, Tol<T>::rtol, Tol<T>::atol);
  check_close(what + " h", s.h(), c.tensor(prefix + "h").values, Tol<T>::rtol, Tol<T>::atol);
}

/// Assigns every variable of `vars` from the fixture (by its TF name) and checks that the list
/// holds exactly the fixture's variables, in the fixture's (TF's creation) order.
template <class T>
void assign_all(cf::VariableList<T>& vars, const FixtureCase& c, const std::vector<std::string>& expected_names) {
  std::vector<std::string> names;
  for (auto& v : vars) names.push_back(v.name);
  CHECK(names == expected_names);
  for (auto& v : vars) vars.assign(v.name, to_matrix<T>(c.tensor(v.name)));
}

/// The fixture's variable names in file order (the generator writes them in TF's creation order).
std::vector<std::string> variable_names(const std::string& case_name, const std::string& scope) {
  std::ifstream in(fixture_path("bidirectional_reference.txt"));
  std::vector<std::string> out;
  bool inside = false;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string kw, name;
    ss >> kw >> name;
    if (kw == "case") inside = name == case_name;
    if (inside && kw == "tensor" && starts_with(name, scope)) out.push_back(name);
  }
  return out;
}

TEMPLATE_TEST_CASE("bidirectional_dynamic_rnn matches the independent float64 reference", "[bidirectional][reference]",
                   float, double) {
  using T = TestType;
  for (const char* name : {"bidi_lstm_gru", "bidi_no_lengths"}) {
    INFO(name);
    const FixtureCase& c = cases().at(name);
    cf::Rng rng(5);
    cf::LSTMCell<T> fw(static_cast<Index>(c.config_num("layer0.fw.input_depth")),
                       static_cast<Index>(c.config_num("layer0.fw.num_units")), rng);
    cf::GRUCell<T> bw(static_cast<Index>(c.config_num("layer0.bw.input_depth")),
                      static_cast<Index>(c.config_num("layer0.bw.num_units")), rng);
    cf::VariableList<T> vars;
    cf::add_bidirectional(vars, fw, bw);
    assign_all(vars, c, variable_names(name, "bidirectional_rnn/"));

    const Ten<T> x = to_tensor3<T>(c.tensor("inputs"));
    cf::BidirectionalOptions o;
    if (c.has_ints("sequence_length")) o.sequence_length = c.int_list("sequence_length");
    const cf::LSTMStateTuple<T> s_fw{to_matrix<T>(c.tensor("initial_state_fw/c")),
                                     to_matrix<T>(c.tensor("initial_state_fw/h"))};
    const cf::Matrix<T> s_bw = to_matrix<T>(c.tensor("initial_state_bw/h"));
    auto r = cf::bidirectional_dynamic_rnn(fw, bw, x, s_fw, s_bw, o);
    check_close("output_fw", r.output_fw, c.tensor("output_fw").values, Tol<T>::rtol, Tol<T>::atol);
    check_close("output_bw", r.output_bw, c.tensor("output_bw").values, Tol<T>::rtol, Tol<T>::atol);
    check_close("final_state_fw c", r.final_state_fw.c, c.tensor("final_state_fw/c").values, Tol<T>::rtol,
                Tol<T>::atol);
    check_close("final_state_fw h", r.final_state_fw.h, c.tensor("final_state_fw/h").values, Tol<T>::rtol,
                Tol<T>::atol);
    check_close("final_state_bw", r.final_state_bw, c.tensor("final_state_bw/h").values, Tol<T>::rtol, Tol<T>::atol);

    const Ten<T> w_fw = to_tensor3<T>(c.tensor("w_output_fw")), w_bw = to_tensor3<T>(c.tensor("w_output_bw"));
    const cf::LSTMStateTuple<T> w_sfw{to_matrix<T>(c.tensor("w_final_state_fw/c")),
                                      to_matrix<T>(c.tensor("w_final_state_fw/h"))};
    const cf::Matrix<T> w_sbw = to_matrix<T>(c.tensor("w_final_state_bw/h"));
    vars.zero_grad();
    const auto g = cf::bidirectional_dynamic_rnn_backward(fw, bw, r, &w_fw, &w_bw, &w_sfw, &w_sbw);
    check_close("grad/inputs", g.d_inputs, c.tensor("grad/inputs").values, Tol<T>::rtol, Tol<T>::atol);
    check_close("grad/initial_state_fw/c", g.d_initial_state_fw.c, c.tensor("grad/initial_state_fw/c").values,
                Tol<T>::rtol, Tol<T>::atol);
    check_close("grad/initial_state_fw/h", g.d_initial_state_fw.h, c.tensor("grad/initial_state_fw/h").values,
                Tol<T>::rtol, Tol<T>::atol);
    check_close("grad/initial_state_bw/h", g.d_initial_state_bw, c.tensor("grad/initial_state_bw/h").values,
                Tol<T>::rtol, Tol<T>::atol);
    for (auto& v : vars)
      check_close("grad/" + v.name, *v.grad, c.tensor("grad/" + v.name).values, Tol<T>::rtol, Tol<T>::atol);
  }
}

TEMPLATE_TEST_CASE("stack_bidirectional_dynamic_rnn matches the independent float64 reference",
                   "[bidirectional][reference]", float, double) {
  using T = TestType;
  const FixtureCase& c = cases().at("stack_2_layers");
  const int L = static_cast<int>(c.config_num("layers"));
  REQUIRE(L == 2);
  cf::Rng rng(6);
  Stack<T> fw, bw;
  std::vector<cf::CellState<T>> s_fw, s_bw, w_fw, w_bw;
  for (int l = 0; l < L; ++l) {
    fw.push_back(fixture_cell<T>(c, l, "fw", rng));
    bw.push_back(fixture_cell<T>(c, l, "bw", rng));
    const std::string k = "/" + std::to_string(l) + "/";
    s_fw.push_back(fixture_state<T>(c, "initial_state_fw" + k));
    s_bw.push_back(fixture_state<T>(c, "initial_state_bw" + k));
    w_fw.push_back(fixture_state<T>(c, "w_final_state_fw" + k));
    w_bw.push_back(fixture_state<T>(c, "w_final_state_bw" + k));
  }
  cf::VariableList<T> vars;
  cf::add_stack_bidirectional(vars, fw, bw);
  assign_all(vars, c, variable_names("stack_2_layers", "stack_bidirectional_rnn/"));

  cf::BidirectionalOptions o;
  o.sequence_length = c.int_list("sequence_length");
  const Ten<T> x = to_tensor3<T>(c.tensor("inputs"));
  auto r = cf::stack_bidirectional_dynamic_rnn(fw, bw, x, o, &s_fw, &s_bw);
  check_close("outputs", r.outputs, c.tensor("outputs").values, Tol<T>::rtol, Tol<T>::atol);
  REQUIRE(r.final_states_fw.size() == 2);
  REQUIRE(r.final_states_bw.size() == 2);
  for (int l = 0; l < L; ++l) {
    const std::string k = "/" + std::to_string(l) + "/";
    check_state("final_state_fw" + k, c, "final_state_fw" + k, r.final_states_fw[static_cast<std::size_t>(l)]);
    check_state("final_state_bw" + k, c, "final_state_bw" + k, r.final_states_bw[static_cast<std::size_t>(l)]);
  }

  const Ten<T> w_out = to_tensor3<T>(c.tensor("w_outputs"));
  vars.zero_grad();
  const auto g = cf::stack_bidirectional_dynamic_rnn_backward(fw, bw, r, &w_out, &w_fw, &w_bw);
  check_close("grad/inputs", g.d_inputs, c.tensor("grad/inputs").values, Tol<T>::rtol, Tol<T>::atol);
  for (int l = 0; l < L; ++l) {
    const std::string k = "/" + std::to_string(l) + "/";
    check_state("grad/initial_state_fw" + k, c, "grad/initial_state_fw" + k,
                g.d_initial_states_fw[static_cast<std::size_t>(l)]);
    check_state("grad/initial_state_bw" + k, c, "grad/initial_state_bw" + k,
                g.d_initial_states_bw[static_cast<std::size_t>(l)]);
  }
  for (auto& v : vars)
    check_close("grad/" + v.name, *v.grad, c.tensor("grad/" + v.name).values, Tol<T>::rtol, Tol<T>::atol);
}

// ---- a small bidirectional model in double, for the gradient check and the invariants ----

struct Bidi {
  cf::Rng rng{11};
  cf::LSTMCell<double> fw{2, 3, rng};
  cf::GRUCell<double> bw{2, 2, rng};
  cf::VariableList<double> vars;
  Bidi() { cf::add_bidirectional(vars, fw, bw); }
};

/// L = sum(output_fw Wf) + sum(output_bw Wb) + sum(c_fw Sc) + sum(h_fw Sh) + sum(h_bw Sb).
struct Weights {
  Ten<double> wf, wb;
  cf::LSTMStateTuple<double> sfw;
  cf::Matrix<double> sbw;
};

double bidi_loss(const cf::BidirectionalResult<cf::LSTMCell<double>, cf::GRUCell<double>>& r, const Weights& w) {
  double L = 0;
  for (Index k = 0; k < r.output_fw.size(); ++k) L += r.output_fw.data()[k] * w.wf.data()[k];
  for (Index k = 0; k < r.output_bw.size(); ++k) L += r.output_bw.data()[k] * w.wb.data()[k];
  return L + r.final_state_fw.c.cwiseProduct(w.sfw.c).sum() + r.final_state_fw.h.cwiseProduct(w.sfw.h).sum() +
         r.final_state_bw.cwiseProduct(w.sbw).sum();
}

TEST_CASE("bidirectional_dynamic_rnn: central-difference gradient check in double", "[bidirectional][gradcheck]") {
  Bidi m;
  cf::Rng rng(12);
  const Index B = 3, T = 4;
  for (bool with_lengths : {false, true}) {
    INFO("sequence_length: " << with_lengths);
    cf::BidirectionalOptions o;
    if (with_lengths) o.sequence_length = {2, 0, T};
    Ten<double> x = random_tensor<double>(B, T, 2, rng, -1.5, 1.5);
    cf::LSTMStateTuple<double> s_fw{random_matrix<double>(B, 3, rng), random_matrix<double>(B, 3, rng)};
    cf::Matrix<double> s_bw = random_matrix<double>(B, 2, rng);
    auto r = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, s_fw, s_bw, o);
    Weights w{random_tensor<double>(B, T, 3, rng),
              random_tensor<double>(B, T, 2, rng),
              {random_matrix<double>(B, 3, rng), random_matrix<double>(B, 3, rng)},
              random_matrix<double>(B, 2, rng)};
    m.vars.zero_grad();
    const auto g = cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, r, &w.wf, &w.wb, &w.sfw, &w.sbw);
    std::vector<cf::Matrix<double>> grads;
    for (auto& v : m.vars) grads.push_back(*v.grad);

    auto loss = [&] { return bidi_loss(cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, s_fw, s_bw, o), w); };
    GradCheck gc(with_lengths ? "with lengths" : "without lengths");
    for (Index k = 0; k < x.size(); ++k)
      gc.compare(indexed("d inputs", k), g.d_inputs.data()[k], central_diff(x.data()[k], loss));
    for (Index k = 0; k < s_fw.c.size(); ++k)
      gc.compare(indexed("d s_fw.c", k), g.d_initial_state_fw.c.data()[k], central_diff(s_fw.c.data()[k], loss));
    for (Index k = 0; k < s_fw.h.size(); ++k)
      gc.compare(indexed("d s_fw.h", k), g.d_initial_state_fw.h.data()[k], central_diff(s_fw.h.data()[k], loss));
    for (Index k = 0; k < s_bw.size(); ++k)
      gc.compare(indexed("d s_bw", k), g.d_initial_state_bw.data()[k], central_diff(s_bw.data()[k], loss));
    for (std::size_t vi = 0; vi < m.vars.size(); ++vi) {
      auto& v = m.vars[vi];
      CHECK(grads[vi].cwiseAbs().maxCoeff() > 0.0);
      for (Index k = 0; k < v.size(); ++k)
        gc.compare(indexed("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
    }
    INFO(gc.summary());
    CHECK(gc.bad == 0);
    CHECK(gc.checked == static_cast<long>(x.size() + s_fw.c.size() + s_fw.h.size() + s_bw.size()) +
                            static_cast<long>(m.vars.num_scalars()));
  }
}

TEST_CASE("stack_bidirectional_dynamic_rnn: central-difference gradient check in double",
          "[bidirectional][gradcheck]") {
  cf::Rng rng(13);
  Stack<double> fw, bw;
  fw.push_back(cf::GRUCell<double>(2, 2, rng));
  bw.push_back(cf::LSTMCell<double>(2, 2, rng));
  fw.push_back(cf::LSTMCell<double>(4, 2, rng));
  bw.push_back(cf::GRUCell<double>(4, 1, rng));
  cf::VariableList<double> vars;
  cf::add_stack_bidirectional(vars, fw, bw);
  const Index B = 3, T = 3;
  cf::BidirectionalOptions o;
  o.sequence_length = {3, 1, 0};
  Ten<double> x = random_tensor<double>(B, T, 2, rng, -1.5, 1.5);
  auto r = cf::stack_bidirectional_dynamic_rnn(fw, bw, x, o);
  const Ten<double> w = random_tensor<double>(B, T, 3, rng);
  std::vector<cf::CellState<double>> ws_fw = r.final_states_fw, ws_bw = r.final_states_bw;
  randomize_state(ws_fw, rng);
  randomize_state(ws_bw, rng);
  auto loss = [&] {
    auto q = cf::stack_bidirectional_dynamic_rnn(fw, bw, x, o);
    double L = 0;
    for (Index k = 0; k < q.outputs.size(); ++k) L += q.outputs.data()[k] * w.data()[k];
    const auto a = state_parts(q.final_states_fw), b = state_parts(q.final_states_bw);
    const auto wa = state_parts(ws_fw), wb = state_parts(ws_bw);
    for (std::size_t i = 0; i < a.size(); ++i) L += a[i]->cwiseProduct(*wa[i]).sum();
    for (std::size_t i = 0; i < b.size(); ++i) L += b[i]->cwiseProduct(*wb[i]).sum();
    return L;
  };
  vars.zero_grad();
  const auto g = cf::stack_bidirectional_dynamic_rnn_backward(fw, bw, r, &w, &ws_fw, &ws_bw);
  std::vector<cf::Matrix<double>> grads;
  for (auto& v : vars) grads.push_back(*v.grad);
  GradCheck gc("stack");
  for (Index k = 0; k < x.size(); ++k)
    gc.compare(indexed("d inputs", k), g.d_inputs.data()[k], central_diff(x.data()[k], loss));
  for (std::size_t vi = 0; vi < vars.size(); ++vi) {
    auto& v = vars[vi];
    CHECK(grads[vi].cwiseAbs().maxCoeff() > 0.0);
    for (Index k = 0; k < v.size(); ++k)
      gc.compare(indexed("d " + v.name, k), grads[vi].data()[k], central_diff(v.value->data()[k], loss));
  }
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(gc.checked == static_cast<long>(x.size()) + static_cast<long>(vars.num_scalars()));
  // The initial states' gradients equal the final states' where an example has length 0.
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK((g.d_initial_states_fw[l].h().row(2).array() == ws_fw[l].h().row(2).array()).all());
    CHECK((g.d_initial_states_bw[l].h().row(2).array() == ws_bw[l].h().row(2).array()).all());
  }
}

TEST_CASE("bidirectional_dynamic_rnn: the backward direction reads each example reversed within its length",
          "[bidirectional][sequence_length]") {
  Bidi m;
  cf::Rng rng(14);
  const Index B = 3, T = 5;
  const std::vector<Index> lens{3, 0, 5};
  const Ten<double> x = random_tensor<double>(B, T, 2, rng);
  cf::BidirectionalOptions o;
  o.sequence_length = lens;
  const auto r = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o);
  for (Index b = 0; b < B; ++b) {
    // Example b alone, its first len steps reversed, run through dynamic_rnn of the bw cell.
    const Index n = lens[static_cast<std::size_t>(b)];
    if (n == 0) {
      CHECK(r.final_state_bw.row(b).isZero(0));
      continue;
    }
    Ten<double> xb(1, n, 2);
    for (Index t = 0; t < n; ++t)
      for (Index d = 0; d < 2; ++d) xb(0, t, d) = x(b, n - 1 - t, d);
    const auto rb = cf::dynamic_rnn(m.bw, xb);
    for (Index t = 0; t < n; ++t)
      for (Index u = 0; u < 2; ++u) CHECK(std::abs(r.output_bw(b, t, u) - rb.outputs(0, n - 1 - t, u)) <= 1e-12);
    CHECK(max_diff(cf::Matrix<double>(r.final_state_bw.row(b)), rb.final_state) <= 1e-12);
  }
  // reverse_sequence itself: twice is the identity; without lengths the whole axis.
  CHECK(bitwise_equal(cf::reverse_sequence(cf::reverse_sequence(x, lens), lens), x));
  const auto whole = cf::reverse_sequence(x);
  CHECK(whole(1, 0, 1) == x(1, T - 1, 1));
  const auto part = cf::reverse_sequence(x, lens);
  CHECK(part(0, 0, 0) == x(0, 2, 0));
  CHECK(part(0, 4, 0) == x(0, 4, 0));  // past the length: in place
}

TEST_CASE("bidirectional_dynamic_rnn: padded steps are exactly 0 and NaN in the padding changes nothing",
          "[bidirectional][sequence_length]") {
  Bidi m;
  cf::Rng rng(15);
  const Index B = 3, T = 4;
  const std::vector<Index> lens{2, 0, 4};
  cf::BidirectionalOptions o;
  o.sequence_length = lens;
  const Ten<double> x = random_tensor<double>(B, T, 2, rng);
  Ten<double> x_nan = x;
  const Ten<double> wf = random_tensor<double>(B, T, 3, rng), wb = random_tensor<double>(B, T, 2, rng);
  Ten<double> wf_nan = wf, wb_nan = wb;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Index b = 0; b < B; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t) {
      for (Index d = 0; d < 2; ++d) x_nan(b, t, d) = nan;
      for (Index d = 0; d < 3; ++d) wf_nan(b, t, d) = nan;
      for (Index d = 0; d < 2; ++d) wb_nan(b, t, d) = nan;
    }
  auto r = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o);
  auto rn = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x_nan, o);
  CHECK(bitwise_equal(r.output_fw, rn.output_fw));
  CHECK(bitwise_equal(r.output_bw, rn.output_bw));
  CHECK(same_state(r.final_state_fw, rn.final_state_fw));
  CHECK(bitwise_equal(r.final_state_bw, rn.final_state_bw));
  for (Index b = 0; b < B; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t) {
      for (Index u = 0; u < 3; ++u) CHECK(r.output_fw(b, t, u) == 0.0);
      for (Index u = 0; u < 2; ++u) CHECK(r.output_bw(b, t, u) == 0.0);
    }
  m.vars.zero_grad();
  const auto g = cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, r, &wf, &wb);
  std::vector<cf::Matrix<double>> grads;
  for (auto& v : m.vars) grads.push_back(*v.grad);
  m.vars.zero_grad();
  const auto gn = cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, rn, &wf_nan, &wb_nan);
  CHECK(bitwise_equal(g.d_inputs, gn.d_inputs));
  for (std::size_t vi = 0; vi < m.vars.size(); ++vi) CHECK(bitwise_equal(grads[vi], *m.vars[vi].grad));
  for (Index b = 0; b < B; ++b)
    for (Index t = lens[static_cast<std::size_t>(b)]; t < T; ++t)
      for (Index d = 0; d < 2; ++d) CHECK(g.d_inputs(b, t, d) == 0.0);
}

/// Everything a run yields (outputs, states, input/state gradients, variable gradients).
struct Run {
  Ten<double> fw, bw, dx;
  cf::LSTMStateTuple<double> sfw, dsfw;
  cf::Matrix<double> sbw, dsbw;
  std::vector<cf::Matrix<double>> grads;
};

Run run(Bidi& m, const Ten<double>& x, const cf::BidirectionalOptions& o, const Ten<double>& wf,
        const Ten<double>& wb) {
  auto r = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o);
  m.vars.zero_grad();
  const auto g = cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, r, &wf, &wb, &r.final_state_fw, &r.final_state_bw);
  Run out{r.output_fw,          r.output_bw,      g.d_inputs,           r.final_state_fw,
          g.d_initial_state_fw, r.final_state_bw, g.d_initial_state_bw, {}};
  for (auto& v : m.vars) out.grads.push_back(*v.grad);
  return out;
}

bool same(const Run& a, const Run& b) {
  bool ok = bitwise_equal(a.fw, b.fw) && bitwise_equal(a.bw, b.bw) && bitwise_equal(a.dx, b.dx) &&
            same_state(a.sfw, b.sfw) && same_state(a.dsfw, b.dsfw) && bitwise_equal(a.sbw, b.sbw) &&
            bitwise_equal(a.dsbw, b.dsbw) && a.grads.size() == b.grads.size();
  for (std::size_t k = 0; ok && k < a.grads.size(); ++k) ok = bitwise_equal(a.grads[k], b.grads[k]);
  return ok;
}

TEST_CASE("bidirectional_dynamic_rnn: concurrent directions equal sequential ones bitwise, for any batch_threads",
          "[bidirectional][threads]") {
  Bidi m;
  cf::Rng rng(16);
  const Index B = 5, T = 6;
  const Ten<double> x = random_tensor<double>(B, T, 2, rng);
  const Ten<double> wf = random_tensor<double>(B, T, 3, rng), wb = random_tensor<double>(B, T, 2, rng);
#ifdef _OPENMP
  const int levels = omp_get_max_active_levels();
#endif
  Run one;
  for (int threads : {1, 2, 3}) {
    for (bool nested : {false, true}) {
#ifdef _OPENMP
      omp_set_max_active_levels(nested ? 2 : 1);
#endif
      INFO("batch_threads " << threads << ", nested parallelism " << nested);
      cf::BidirectionalOptions o;
      o.sequence_length = {6, 2, 0, 5, 3};
      o.batch_threads = threads;
      o.concurrent_directions = false;
      CHECK_FALSE(cf::detail::directions_concurrent(o));
      const Run seq = run(m, x, o, wf, wb);
      o.concurrent_directions = true;
#ifdef _OPENMP
      // Concurrent whenever two threads exist and, with slices, a nested team can open.
      if (omp_get_max_threads() >= 2) CHECK(cf::detail::directions_concurrent(o) == (threads == 1 || nested));
#endif
      const Run con = run(m, x, o, wf, wb);
      CHECK(same(seq, con));
      if (threads == 1) {
        one = seq;
      } else {  // slices change only the summation order of the weight gradients
        CHECK(bitwise_equal(seq.fw, one.fw));
        CHECK(bitwise_equal(seq.bw, one.bw));
        CHECK(bitwise_equal(seq.dx, one.dx));
        for (std::size_t k = 0; k < one.grads.size(); ++k) CHECK(max_diff(seq.grads[k], one.grads[k]) <= 1e-13);
      }
    }
  }
#ifdef _OPENMP
  omp_set_max_active_levels(levels);
#endif
}

TEST_CASE("bidirectional_dynamic_rnn: time_major equals batch-major", "[bidirectional][time_major]") {
  Bidi m;
  cf::Rng rng(17);
  const Index B = 3, T = 4;
  const Ten<double> x = random_tensor<double>(B, T, 2, rng);
  const Ten<double> wf = random_tensor<double>(B, T, 3, rng), wb = random_tensor<double>(B, T, 2, rng);
  for (bool with_lengths : {false, true}) {
    INFO("sequence_length: " << with_lengths);
    cf::BidirectionalOptions o;
    if (with_lengths) o.sequence_length = {4, 1, 0};
    const Run a = run(m, x, o, wf, wb);
    o.time_major = true;
    Run b = run(m, swap01(x), o, swap01(wf), swap01(wb));
    b.fw = swap01(b.fw);
    b.bw = swap01(b.bw);
    b.dx = swap01(b.dx);
    CHECK(same(a, b));
  }
  // The stack too.
  Stack<double> fw, bw;
  fw.push_back(m.fw);
  bw.push_back(m.bw);
  fw.push_back(cf::GRUCell<double>(5, 2, rng));
  bw.push_back(cf::GRUCell<double>(5, 2, rng));
  cf::BidirectionalOptions o;
  o.sequence_length = {4, 1, 0};
  const auto s = cf::stack_bidirectional_dynamic_rnn(fw, bw, x, o);
  o.time_major = true;
  const auto st = cf::stack_bidirectional_dynamic_rnn(fw, bw, swap01(x), o);
  CHECK(bitwise_equal(s.outputs, swap01(st.outputs)));
  CHECK(same_state(s.final_states_fw, st.final_states_fw));
  CHECK(same_state(s.final_states_bw, st.final_states_bw));
}

TEST_CASE("bidirectional: TF's variable names, and a checkpoint round trip", "[bidirectional][checkpoint]") {
  Bidi a;
  std::vector<std::string> names;
  for (auto& v : a.vars) names.push_back(v.name);
  CHECK(names == std::vector<std::string>{
                     "bidirectional_rnn/fw/lstm_cell/kernel", "bidirectional_rnn/fw/lstm_cell/bias",
                     "bidirectional_rnn/bw/gru_cell/gates/kernel", "bidirectional_rnn/bw/gru_cell/gates/bias",
                     "bidirectional_rnn/bw/gru_cell/candidate/kernel", "bidirectional_rnn/bw/gru_cell/candidate/bias"});
  cf::VariableList<double> scoped;
  cf::add_bidirectional(scoped, a.fw, a.bw, "encoder/bidirectional_rnn");
  CHECK(scoped[0].name == "encoder/bidirectional_rnn/fw/lstm_cell/kernel");

  const auto bytes = cf::io::checkpoint_bytes(a.vars);
  cf::Rng rng(99);
  cf::LSTMCell<double> fw(2, 3, rng);
  cf::GRUCell<double> bw(2, 2, rng);
  cf::VariableList<double> b;
  cf::add_bidirectional(b, fw, bw);
  cf::io::load_checkpoint_bytes(bytes, b);
  const Ten<double> x = random_tensor<double>(2, 3, 2, rng);
  const auto ra = cf::bidirectional_dynamic_rnn(a.fw, a.bw, x), rb = cf::bidirectional_dynamic_rnn(fw, bw, x);
  CHECK(bitwise_equal(ra.output_fw, rb.output_fw));
  CHECK(bitwise_equal(ra.output_bw, rb.output_bw));
  // The names are what is matched: the same cells under another scope do not load.
  cf::VariableList<double> other;
  other.add(fw, "rnn");
  other.add(bw, "rnn2");
  CHECK_THROWS_AS(cf::io::load_checkpoint_bytes(bytes, other), cf::Error);

  // The stack: layer by layer, fw then bw.
  Stack<double> sfw, sbw;
  sfw.push_back(cf::GRUCell<double>(2, 2, rng));
  sbw.push_back(cf::LSTMCell<double>(2, 2, rng));
  sfw.push_back(cf::GRUCell<double>(4, 2, rng));
  sbw.push_back(cf::GRUCell<double>(4, 2, rng));
  cf::VariableList<double> sv;
  cf::add_stack_bidirectional(sv, sfw, sbw);
  CHECK(sv.size() == 14);
  CHECK(sv[0].name == "stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/gru_cell/gates/kernel");
  CHECK(sv[4].name == "stack_bidirectional_rnn/cell_0/bidirectional_rnn/bw/lstm_cell/kernel");
  CHECK(sv[6].name == "stack_bidirectional_rnn/cell_1/bidirectional_rnn/fw/gru_cell/gates/kernel");
  CHECK(sv[13].name == "stack_bidirectional_rnn/cell_1/bidirectional_rnn/bw/gru_cell/candidate/bias");
  const auto sbytes = cf::io::checkpoint_bytes(sv);
  Stack<double> tfw = sfw, tbw = sbw;
  for (auto* s : {&tfw, &tbw})
    for (auto& c : *s)
      c.for_each_variable("", [&](const std::string&, cf::Parameter<double>& p) { p.value.setZero(); });
  cf::VariableList<double> tv;
  cf::add_stack_bidirectional(tv, tfw, tbw);
  cf::io::load_checkpoint_bytes(sbytes, tv);
  const Ten<double> xs = random_tensor<double>(2, 3, 2, rng);
  CHECK(bitwise_equal(cf::stack_bidirectional_dynamic_rnn(sfw, sbw, xs).outputs,
                      cf::stack_bidirectional_dynamic_rnn(tfw, tbw, xs).outputs));
}

TEST_CASE("bidirectional: bad input is a clear error", "[bidirectional][errors]") {
  Bidi m;
  cf::Rng rng(18);
  const Ten<double> x = random_tensor<double>(2, 3, 2, rng);
  cf::GRUCell<double> wide(3, 2, rng);
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn(m.fw, wide, x); }),
             Contains("cell_bw (gru_cell") && Contains("expects input depth 3") && Contains("depth 2"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn(wide, m.bw, x); }),
             Contains("cell_fw (gru_cell") && Contains("expects input depth 3"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn(m.fw, m.bw, Ten<double>(0, 3, 2)); }),
             Contains("at least one example"));
  cf::BidirectionalOptions o;
  o.sequence_length = {1, 4};
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o); }),
             Contains("bidirectional_dynamic_rnn: sequence_length[1] = 4 is outside [0, 3]"));
  o.sequence_length = {1, 2, 3};
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o); }),
             Contains("sequence_length has 3 entries"));
  o.sequence_length.reset();
  o.batch_threads = 0;
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, o); }),
             Contains("batch_threads must be >= 1"));
  const cf::Matrix<double> bad_state = cf::Matrix<double>::Zero(2, 5);
  CHECK_THAT(
      message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, m.fw.zero_state(2), bad_state); }),
      Contains("initial_state_bw"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::reverse_sequence(x, {1, 9}); }), Contains("reverse_sequence"));

  // Backward: d_outputs of the wrong shape, other cells, no activations kept.
  auto r = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x);
  const Ten<double> d_bad(2, 3, 7);
  CHECK_THAT(
      message_of<cf::ShapeError>([&] { cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, r, nullptr, &d_bad); }),
      Contains("d_output_bw is [2, 3, 7], output_bw is [2, 3, 2]"));
  cf::LSTMCell<double> other_fw(2, 3, rng);
  CHECK_THAT(
      message_of<cf::Error>([&] { cf::bidirectional_dynamic_rnn_backward(other_fw, m.bw, r, nullptr, nullptr); }),
      Contains("not computed by these cells"));
  cf::BidirectionalOptions inference;
  inference.training = false;
  auto ri = cf::bidirectional_dynamic_rnn(m.fw, m.bw, x, inference);
  CHECK_THAT(message_of<cf::Error>([&] { cf::bidirectional_dynamic_rnn_backward(m.fw, m.bw, ri, nullptr, nullptr); }),
             Contains("training = false"));

  // The stack: layer counts, depths between layers, initial states per layer.
  Stack<double> fw, bw;
  fw.push_back(cf::GRUCell<double>(2, 2, rng));
  bw.push_back(cf::GRUCell<double>(2, 3, rng));
  fw.push_back(cf::GRUCell<double>(5, 2, rng));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::stack_bidirectional_dynamic_rnn(fw, bw, x); }),
             Contains("cells_fw has 2 layers, cells_bw has 1"));
  bw.push_back(cf::GRUCell<double>(4, 2, rng));  // layer 1 reads 2 + 3 = 5, not 4
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::stack_bidirectional_dynamic_rnn(fw, bw, x); }),
             Contains("cells_bw[1] (gru_cell") && Contains("has input depth 4, expected 5 = cells_fw[0] output 2 + "
                                                           "cells_bw[0] output 3"));
  bw[1] = cf::GRUCell<double>(5, 2, rng);
  const Ten<double> x3 = random_tensor<double>(2, 3, 3, rng);
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::stack_bidirectional_dynamic_rnn(fw, bw, x3); }),
             Contains("stack_bidirectional_dynamic_rnn (layer 0): inputs [batch, time, depth] have depth 3"));
  std::vector<cf::CellState<double>> one_state{fw[0].zero_state(2)};
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::stack_bidirectional_dynamic_rnn(fw, bw, x, {}, &one_state); }),
             Contains("initial_states_fw has 1 states, expected one per layer (2)"));
  Stack<double> bw0 = bw;
  bw0[0] = cf::GRUCell<double>(3, 3, rng);
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::stack_bidirectional_dynamic_rnn(fw, bw0, x); }),
             Contains("cells_bw[0] (gru_cell") && Contains("has 3 (both read the inputs)"));
  CHECK_THAT(
      message_of<cf::ValueError>([&] { cf::stack_bidirectional_dynamic_rnn(Stack<double>{}, Stack<double>{}, x); }),
      Contains("cells_fw is empty"));
  auto rs = cf::stack_bidirectional_dynamic_rnn(fw, bw, x);
  const Ten<double> d_bad_s(2, 3, 3);
  CHECK_THAT(message_of<cf::ShapeError>([&] { cf::stack_bidirectional_dynamic_rnn_backward(fw, bw, rs, &d_bad_s); }),
             Contains("d_outputs is [2, 3, 3], the outputs is [2, 3, 4]"));
}

}  // namespace test_bidirectional

namespace test_bidirectional {

// ---- the model layer: a bidirectional Model ----

cf::ModelConfig bidi_config() { return cf::bidirectional_classifier(3, {cf::GRU(4), cf::LSTM(3)}, 5); }

TEST_CASE("a bidirectional Model trains bitwise as the hand-written stack_bidirectional loop",
          "[bidirectional][model]") {
  cf::Rng rng(21);
  cf::Model<double> model(bidi_config(), rng);
  REQUIRE(model.bidirectional());
  // The same layers and head, by hand (deep copies of the model's initial weights).
  Stack<double> fw = model.cells_fw(), bw = model.cells_bw();
  cf::Dense<double> dense = model.head();
  cf::VariableList<double> vars;
  cf::add_stack_bidirectional(vars, fw, bw).add(dense);
  std::vector<std::string> names, model_names;
  for (auto& v : vars) names.push_back(v.name);
  for (auto& v : model.variables()) model_names.push_back(v.name);
  CHECK(names == model_names);
  CHECK(model_names.front() == "stack_bidirectional_rnn/cell_0/bidirectional_rnn/fw/gru_cell/gates/kernel");
  CHECK(model_names[4] == "stack_bidirectional_rnn/cell_0/bidirectional_rnn/bw/gru_cell/gates/kernel");
  CHECK(model_names[8] == "stack_bidirectional_rnn/cell_1/bidirectional_rnn/fw/lstm_cell/kernel");
  CHECK(model_names.back() == "dense/bias");
  CHECK(model.head().input_size() == 6);  // [h_fw, h_bw] of the top layer

  cf::AdamOptimizer<double> adam_model(0.01), adam_hand(0.01);
  const std::vector<Index> lens{4, 1, 0, 3};
  const std::vector<int> y{0, 4, 2, 1};
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const Ten<double> x = random_tensor<double>(4, 4, 3, rng);
    cf::TrainOptions to;
    to.sequence_length = lens;
    to.batch_threads = 1;
    const auto sr = model.train_step(x, y, adam_model, to);

    vars.zero_grad();
    cf::BidirectionalOptions o;
    o.sequence_length = lens;
    auto r = cf::stack_bidirectional_dynamic_rnn(fw, bw, x, o);
    const cf::Matrix<double>& hf = r.final_states_fw.back().h();
    const cf::Matrix<double>& hb = r.final_states_bw.back().h();
    cf::Matrix<double> h(4, hf.cols() + hb.cols());
    h << hf, hb;  // tf.concat([state_fw.h, state_bw.h], 1)
    const auto xent = cf::sparse_softmax_cross_entropy_with_logits(y, dense(h));
    const cf::Matrix<double> d_h = dense.backward(h, xent.mean_gradient());
    std::vector<cf::CellState<double>> d_fw, d_bw;
    for (std::size_t l = 0; l < 2; ++l) {
      d_fw.push_back(fw[l].zero_state(4));
      d_bw.push_back(bw[l].zero_state(4));
    }
    d_fw.back().h() = d_h.leftCols(hf.cols());
    d_bw.back().h() = d_h.rightCols(hb.cols());
    cf::stack_bidirectional_dynamic_rnn_backward(fw, bw, r, nullptr, &d_fw, &d_bw);
    adam_hand.apply_gradients(vars);
    CHECK(sr.loss == xent.mean());
    for (std::size_t k = 0; k < vars.size(); ++k) {
      INFO(vars[k].name);
      CHECK(bitwise_equal(*vars[k].value, *model.variables()[k].value));
      CHECK(vars[k].value->cwiseAbs().maxCoeff() > 0.0);
    }
  }
}

/// A data-parallel hook for one rank: the batch is the global batch; records what it hears.
struct OneRankHook final : cf::GradientHook {
  std::vector<std::pair<std::size_t, std::size_t>> ready;
  Index begin_backward(const cf::BatchStats& local) override { return local.examples; }
  void gradients_ready(std::size_t first, std::size_t last) override { ready.emplace_back(first, last); }
  void end_backward(cf::BatchStats&) override {}
};

TEST_CASE("a bidirectional Model under a gradient hook: the same step, every layer reported",
          "[bidirectional][model]") {
  cf::Rng rng(23);
  cf::Model<double> a(bidi_config(), rng);
  cf::Model<double> b = a;
  cf::AdamOptimizer<double> adam_a(0.01), adam_b(0.01);
  const Ten<double> x = random_tensor<double>(3, 4, 3, rng);
  const std::vector<int> y{1, 0, 3};
  cf::TrainOptions to;
  to.sequence_length = {4, 0, 2};
  to.batch_threads = 1;
  const auto ra = a.train_step(x, y, adam_a, to);
  OneRankHook hook;
  to.gradient_hook = &hook;
  const auto rb = b.train_step(x, y, adam_b, to);
  CHECK(ra.loss == Approx(rb.loss).epsilon(1e-14));
  for (std::size_t k = 0; k < a.variables().size(); ++k)
    CHECK(bitwise_equal(*a.variables()[k].value, *b.variables()[k].value));
  // The head first, then layer 1 (both directions), then layer 0: every variable once.
  const std::vector<std::pair<std::size_t, std::size_t>> expected{{12, 14}, {8, 12}, {0, 8}};
  CHECK(hook.ready == expected);
  CHECK(b.gradient_groups() == expected);
}

TEST_CASE("a bidirectional Model: architecture, save and load_model, inference, refusals", "[bidirectional][model]") {
  cf::Rng rng(22);
  cf::Model<float> model(bidi_config(), rng);
  const std::string text = cf::to_text(model.config());
  CHECK_THAT(text, Contains("rnn scope=stack_bidirectional_rnn multi_rnn_cell=1 bidirectional=1"));
  CHECK(cf::differences(cf::model_config_from_text(text), model.config()).empty());
  const cf::ModelConfig plain = cf::classifier(3, {cf::GRU(4), cf::LSTM(3)}, 5);
  CHECK_THAT(cf::to_text(plain), !Contains("bidirectional"));
  const auto d = cf::differences(plain, model.config());
  CHECK(std::find(d.begin(), d.end(), "bidirectional: no in a, yes in b") != d.end());
  CHECK(model.config().cells[1].input_depth == 8);  // layer 1 reads [fw, bw] of 4 + 4
  CHECK_THAT(model.summary(), Contains("bidirectional GRUCell(4)") && Contains("[batch, 6]"));

  const Ten<float> x = random_tensor<float>(5, 4, 3, rng);
  cf::InferenceOptions io;
  io.sequence_length = {4, 2, 0, 1, 3};
  const cf::Matrix<float> logits = model.logits(x, io);
  io.batch_size = 2;  // in chunks: the same bits
  CHECK(bitwise_equal(model.logits(x, io), logits));

  TempDir dir;
  model.save(dir.file("bidi.ckpt"));
  const cf::Model<float> back = cf::load_model<float>(dir.file("bidi.ckpt"));
  CHECK(back.bidirectional());
  CHECK(bitwise_equal(back.logits(x, io), logits));
  const cf::Model<float> copy = model;  // a deep copy
  CHECK(bitwise_equal(copy.logits(x, io), logits));
  cf::Model<float> other(plain, rng);
  CHECK_THAT(message_of<cf::ValueError>([&] { other.load_weights(dir.file("bidi.ckpt")); }),
             Contains("bidirectional: yes in the file, no in the model"));

  CHECK_THAT(message_of<cf::ValueError>([&] { cf::ModelStream<float> s(model); }),
             Contains("a bidirectional model cannot stream"));
  CHECK_THAT(message_of<cf::ValueError>([&] { (void)model.rnn(); }), Contains("cells_fw() and cells_bw()"));
  CHECK_THAT(message_of<cf::ValueError>([&] { (void)other.cells_fw(); }), Contains("not bidirectional"));
  cf::ModelConfig bad = bidi_config();
  bad.multi_rnn_cell = false;
  CHECK_THAT(message_of<cf::ValueError>([&] { bad.validate(); }), Contains("multi_rnn_cell = false does not apply"));
}

TEST_CASE("a bidirectional Model with dropout: the two directions draw different masks",
          "[bidirectional][model][dropout]") {
  cf::Rng rng(23);
  const cf::ModelConfig config =
      cf::bidirectional_classifier(3, {cf::with_dropout(cf::GRU(4), 0.7), cf::with_dropout(cf::LSTM(3), 0.6)}, 5);
  cf::Model<float> model(config, rng);
  for (std::size_t l = 0; l < 2; ++l) {
    const cf::CellConfig fw = model.cells_fw()[l].config(), bw = model.cells_bw()[l].config();
    REQUIRE(fw.kind == "DropoutWrapper");
    REQUIRE(bw.kind == "DropoutWrapper");
    CHECK(fw.get("seed") == static_cast<double>(l));  // the layer's index
    CHECK(bw.get("seed") != fw.get("seed"));
    CHECK(bw.get("seed") < 9007199254740992.0);  // exact in the architecture text
  }
  CHECK(model.cells_bw()[0].config().get("seed") != model.cells_bw()[1].config().get("seed"));
  // It trains, and the saved architecture rebuilds the same seeds.
  const Ten<float> x = random_tensor<float>(6, 4, 3, rng);
  const std::vector<cf::Index> y = {0, 1, 2, 3, 4, 0};
  cf::AdamOptimizer<float> adam(0.01f);
  const auto step = model.train_step(x, y, adam, {});
  CHECK(std::isfinite(step.loss));
  TempDir dir;
  model.save(dir.file("bidi_dropout.ckpt"));
  const cf::Model<float> back = cf::load_model<float>(dir.file("bidi_dropout.ckpt"));
  for (std::size_t l = 0; l < 2; ++l)
    CHECK(back.cells_bw()[l].config().get("seed") == model.cells_bw()[l].config().get("seed"));
  CHECK(bitwise_equal(back.logits(x, {}), model.logits(x, {})));  // inference never drops
}

}  // namespace test_bidirectional
