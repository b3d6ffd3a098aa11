// dynamic_rnn and dynamic_rnn_backward (rnn/dynamic_rnn.hpp): identities with random weights for
// every cell kind, in float and double (a loop of single steps, sequence_length, time_major,
// training = false, the initial-state overloads), and every error of the entry points. What each
// cell kind must satisfy under dynamic_rnn (gradients, padding, threads, ...) is in
// test_cell_contract.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/cell_kinds.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_dynamic_rnn {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class T>
using Ten = cf::Tensor3<T>;

cf::MultiRNNCell<float> small_stack(cf::Rng& rng) {
  std::vector<cf::BasicLSTMCell<float>> cells;
  cells.emplace_back(4, 3, rng);
  cells.emplace_back(3, 3, rng);
  return cf::MultiRNNCell<float>(std::move(cells));
}

TEMPLATE_TEST_CASE("dynamic_rnn equals a loop of single steps cell(x_t, state)", "[dynamic_rnn][composition]", float,
                   double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(9);
    const Index B = 3, Tn = 6;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    for (bool with_len : {false, true}) {
      // A stack's single step runs every layer for step t before step t+1 (step-major);
      // dynamic_rnn runs layer 0 over all steps first (layer-major): same numbers up to rounding.
      const std::vector<Index> lens = with_len ? std::vector<Index>{4, 0, 6} : std::vector<Index>{6, 6, 6};
      cf::RNNOptions o;
      if (with_len) o.sequence_length = lens;
      const auto r = cf::dynamic_rnn(cell, X, s0, o);
      const auto loop = step_loop(cell, X, s0, lens);
      const double dout = max_diff(r.outputs, loop.first);
      const double dstate = state_diff(r.final_state, loop.second.back());
      INFO("with sequence_length: " << with_len << "; max |diff| outputs " << dout << ", final state " << dstate);
      CHECK(dout <= rounding_tol<T>());
      CHECK(dstate <= rounding_tol<T>());
      CHECK(r.outputs.dimension(2) == cell.output_size());
    }
  });
}

TEMPLATE_TEST_CASE("sequence_length all == T equals no sequence_length, bitwise", "[dynamic_rnn][composition]", float,
                   double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(10);
    const Index B = 3, Tn = 4;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions full;
    full.sequence_length = std::vector<Index>(B, Tn);
    auto r1 = cf::dynamic_rnn(cell, X, s0);
    auto r2 = cf::dynamic_rnn(cell, X, s0, full);
    CHECK(bitwise_equal(r1.outputs, r2.outputs));
    CHECK(same_state(r1.final_state, r2.final_state));

    const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
    typename Cell::State dS = r1.final_state;
    randomize_state(dS, rng);
    cf::zero_grad(cell);
    auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
    const auto grads1 = variable_grads(cell);
    cf::zero_grad(cell);
    auto g2 = cf::dynamic_rnn_backward(cell, r2, &dY, &dS);
    CHECK(bitwise_equal(g1.d_inputs, g2.d_inputs));
    CHECK(same_state(g1.d_initial_state, g2.d_initial_state));
    CHECK(bitwise_equal(grads1, variable_grads(cell)));
  });
}

TEMPLATE_TEST_CASE("sequence_length: zero outputs past the end, per-row final state", "[dynamic_rnn][composition]",
                   float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(11);
    const Index B = 4, Tn = 5, O = cell.output_size();
    const std::vector<Index> lens{3, 0, 5, 1};
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions o;
    o.sequence_length = lens;
    const auto r = cf::dynamic_rnn(cell, X, s0, o);
    for (Index b = 0; b < B; ++b) {
      const Index len = lens[static_cast<std::size_t>(b)];
      INFO("row " << b << ", length " << len);
      long nonzero_padded = 0;
      for (Index t = len; t < Tn; ++t)
        for (Index k = 0; k < O; ++k) nonzero_padded += r.outputs(b, t, k) != T(0);
      CHECK(nonzero_padded == 0);
      const auto fin = state_row(r.final_state, b);
      if (len == 0) {
        CHECK(same_state(fin, state_row(s0, b)));
        continue;
      }
      // The row alone, for exactly len steps.
      Ten<T> xb(1, len, kKindsDepth);
      for (Index t = 0; t < len; ++t)
        for (Index d = 0; d < kKindsDepth; ++d) xb(0, t, d) = X(b, t, d);
      const auto rb = cf::dynamic_rnn(cell, xb, state_row(s0, b));
      const double ds = state_diff(fin, rb.final_state);
      double dout = 0;
      for (Index t = 0; t < len; ++t)
        for (Index k = 0; k < O; ++k) dout = std::max(dout, std::abs(double(r.outputs(b, t, k)) - rb.outputs(0, t, k)));
      INFO("max |diff| final state " << ds << ", outputs " << dout);
      CHECK(ds <= rounding_tol<T>());
      CHECK(dout <= rounding_tol<T>());
      // The last valid output is final_state's h, not outputs[:, T-1] (0 for len < T).
      const auto hp = const_state_parts(fin);
      for (Index k = 0; k < O; ++k) CHECK(hp.back()->operator()(0, k) == r.outputs(b, len - 1, k));
    }
  });
}

TEMPLATE_TEST_CASE("time_major equals batch-major on transposed data", "[dynamic_rnn][composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(12);
    const Index B = 3, Tn = 4;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions bm, tm;
    bm.sequence_length = tm.sequence_length = std::vector<Index>{2, 4, 0};
    tm.time_major = true;
    auto r1 = cf::dynamic_rnn(cell, X, s0, bm);
    auto r2 = cf::dynamic_rnn(cell, swap01(X), s0, tm);
    REQUIRE(r2.outputs.dimension(0) == Tn);
    REQUIRE(r2.outputs.dimension(1) == B);
    CHECK(bitwise_equal(swap01(r2.outputs), r1.outputs));
    CHECK(same_state(r1.final_state, r2.final_state));

    const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
    typename Cell::State dS = r1.final_state;
    randomize_state(dS, rng);
    cf::zero_grad(cell);
    auto g1 = cf::dynamic_rnn_backward(cell, r1, &dY, &dS);
    const auto grads1 = variable_grads(cell);
    cf::zero_grad(cell);
    const auto dYt = swap01(dY);
    auto g2 = cf::dynamic_rnn_backward(cell, r2, &dYt, &dS);
    REQUIRE(g2.d_inputs.dimension(0) == Tn);
    CHECK(bitwise_equal(swap01(g2.d_inputs), g1.d_inputs));
    CHECK(same_state(g1.d_initial_state, g2.d_initial_state));
    CHECK(bitwise_equal(grads1, variable_grads(cell)));
  });
}

TEMPLATE_TEST_CASE("training=false forward is bitwise training=true", "[dynamic_rnn][composition]", float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(16);
    const Index B = 3, Tn = 5;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    for (int cfg = 0; cfg < 4; ++cfg) {
      const bool with_len = cfg & 1, with_s0 = cfg & 2;
      INFO("sequence_length " << with_len << ", initial_state " << with_s0);
      cf::RNNOptions train, infer;
      if (with_len) train.sequence_length = infer.sequence_length = std::vector<Index>{3, 5, 0};
      infer.training = false;
      auto r1 = with_s0 ? cf::dynamic_rnn(cell, X, s0, train) : cf::dynamic_rnn(cell, X, train);
      auto r2 = with_s0 ? cf::dynamic_rnn(cell, X, s0, infer) : cf::dynamic_rnn(cell, X, infer);
      CHECK(bitwise_equal(r1.outputs, r2.outputs));
      CHECK(same_state(r1.final_state, r2.final_state));
      CHECK_THROWS_AS(cf::dynamic_rnn_backward(cell, r2, &r2.outputs), cf::Error);
    }
  });
}

TEMPLATE_TEST_CASE("dynamic_rnn(cell, x, options, &initial_state) equals the by-reference overload", "[dynamic_rnn]",
                   float, double) {
  using T = TestType;
  for_each_kind<T>([](auto& cell, const std::string& name) {
    using Cell = std::decay_t<decltype(cell)>;
    INFO(name);
    cf::Rng rng(17);
    const Index B = 3, Tn = 4;
    const auto X = random_tensor<T>(B, Tn, kKindsDepth, rng);
    typename Cell::State s0 = cell.zero_state(B);
    randomize_state(s0, rng);
    cf::RNNOptions opt;
    opt.sequence_length = std::vector<Index>{4, 0, 2};
    auto by_ref = cf::dynamic_rnn(cell, X, s0, opt);
    auto by_ptr = cf::dynamic_rnn(cell, X, opt, &s0);
    CHECK(bitwise_equal(by_ref.outputs, by_ptr.outputs));
    CHECK(same_state(by_ref.final_state, by_ptr.final_state));
    CHECK_FALSE(same_state(by_ptr.final_state, cf::dynamic_rnn(cell, X, opt).final_state));  // s0 was used
    // A null initial state is the zero state.
    const typename Cell::State zero = cell.zero_state(B);
    auto from_null = cf::dynamic_rnn(cell, X, opt, nullptr);
    auto from_zero = cf::dynamic_rnn(cell, X, zero, opt);
    CHECK(bitwise_equal(from_null.outputs, from_zero.outputs));
    CHECK(same_state(from_null.final_state, from_zero.final_state));
    // dynamic_rnn_into takes the same pointer, and backward gives the same gradients.
    cf::RNNResult<Cell> into;
    cf::dynamic_rnn_into(into, cell, X, opt, &s0);
    CHECK(bitwise_equal(into.outputs, by_ref.outputs));
    CHECK(same_state(into.final_state, by_ref.final_state));
    const auto dY = random_tensor<T>(B, Tn, cell.output_size(), rng);
    cf::zero_grad(cell);
    const auto g_ref = cf::dynamic_rnn_backward(cell, by_ref, &dY);
    const auto grads_ref = variable_grads(cell);
    cf::zero_grad(cell);
    const auto g_ptr = cf::dynamic_rnn_backward(cell, by_ptr, &dY);
    CHECK(bitwise_equal(g_ref.d_inputs, g_ptr.d_inputs));
    CHECK(same_state(g_ref.d_initial_state, g_ptr.d_initial_state));
    CHECK(bitwise_equal(grads_ref, variable_grads(cell)));
  });
}

TEST_CASE("dynamic_rnn rejects inputs of the wrong depth, naming both depths", "[dynamic_rnn][errors]") {
  cf::Rng rng(1);
  cf::BasicLSTMCell<float> cell(28, 5, rng);
  cf::Tensor3<float> x(2, 3, 27);
  x.setZero();
  REQUIRE_THROWS_MATCHES(
      cf::dynamic_rnn(cell, x), cf::ShapeError, Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
        const std::string m = e.what();
        return m.find("dynamic_rnn") != std::string::npos && m.find("depth 27") != std::string::npos &&
               m.find("input depth 28") != std::string::npos;
      }));
  auto stack = small_stack(rng);
  REQUIRE_THROWS_AS(cf::dynamic_rnn(stack, x), cf::ShapeError);
}

TEST_CASE("dynamic_rnn rejects empty batches and sequences", "[dynamic_rnn][errors]") {
  cf::Rng rng(1);
  cf::GRUCell<float> cell(3, 2, rng);
  cf::Tensor3<float> no_time(2, 0, 3), no_batch(0, 4, 3);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, no_time), Contains("at least one example and one time step"));
  REQUIRE_THROWS_AS(cf::dynamic_rnn(cell, no_batch), cf::ShapeError);
}

TEST_CASE("dynamic_rnn rejects an initial state of the wrong batch or width", "[dynamic_rnn][errors]") {
  cf::Rng rng(2);
  cf::BasicLSTMCell<float> cell(3, 4, rng);
  cf::Tensor3<float> x(2, 5, 3);
  x.setZero();
  auto s = cell.zero_state(3);  // batch 3 for inputs of batch 2
  REQUIRE_THROWS_MATCHES(cf::dynamic_rnn(cell, x, s), cf::ShapeError,
                         Catch::Matchers::Predicate<cf::ShapeError>([](const cf::ShapeError& e) {
                           const std::string m = e.what();
                           return m.find("initial_state") != std::string::npos &&
                                  m.find("c [2, 4]") != std::string::npos && m.find("c [3, 4]") != std::string::npos;
                         }));
  cf::GRUCell<float> gru(3, 4, rng);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(gru, x, cf::Matrix<float>::Zero(2, 5)), Contains("given [2, 5]"));

  auto stack = small_stack(rng);
  cf::Tensor3<float> x4(2, 5, 4);
  x4.setZero();
  auto ms = stack.zero_state(2);
  ms.pop_back();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(stack, x4, ms), Contains("expected 2 layer states, given 1"));
  auto wrong_kind = stack.zero_state(2);
  wrong_kind[1] = cf::CellState<float>(cf::Matrix<float>::Zero(2, 3));  // a GRU state for an LSTM layer
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(stack, x4, wrong_kind), Contains("layer 1") && Contains("GRU state"));
}

TEST_CASE("dynamic_rnn validates sequence_length", "[dynamic_rnn][errors]") {
  cf::Rng rng(3);
  cf::GRUCell<double> cell(2, 3, rng);
  cf::Tensor3<double> x(3, 4, 2);
  x.setZero();
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<cf::Index>{1, 2};
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, x, opts), Contains("sequence_length has 2 entries") && Contains("batch 3"));
  opts.sequence_length = std::vector<cf::Index>{1, -1, 2};
  REQUIRE_THROWS_MATCHES(cf::dynamic_rnn(cell, x, opts), cf::ValueError,
                         Catch::Matchers::Predicate<cf::ValueError>([](const cf::ValueError& e) {
                           return std::string(e.what()).find("sequence_length[1] = -1") != std::string::npos;
                         }));
  opts.sequence_length = std::vector<cf::Index>{1, 5, 2};
  REQUIRE_THROWS_WITH(cf::dynamic_rnn(cell, x, opts), Contains("sequence_length[1] = 5") && Contains("4 time steps"));
  opts.sequence_length = std::vector<cf::Index>{0, 4, 2};  // 0 and T are valid
  REQUIRE_NOTHROW(cf::dynamic_rnn(cell, x, opts));
}

TEST_CASE("sequence_length takes any integer vector, an Eigen vector or a braced list", "[dynamic_rnn]") {
  cf::Rng rng(21);
  cf::BasicLSTMCell<double> cell(2, 3, rng);
  const cf::Tensor3<double> x = random_tensor<double>(4, 5, 2, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<Index>{5, 2, 0, 3};
  const auto reference = cf::dynamic_rnn(cell, x, opts);
  auto same = [&](const cf::RNNOptions& o) {
    const auto r = cf::dynamic_rnn(cell, x, o);
    return bitwise_equal(r.outputs, reference.outputs) && bitwise_equal(r.final_state.h, reference.final_state.h);
  };
  cf::RNNOptions o;
  o.sequence_length = std::vector<int>{5, 2, 0, 3};
  CHECK(same(o));
  o.sequence_length = std::vector<std::uint8_t>{5, 2, 0, 3};
  CHECK(same(o));
  o.sequence_length = std::vector<std::size_t>{5, 2, 0, 3};
  CHECK(same(o));
  Eigen::VectorXi column(4);
  column << 5, 2, 0, 3;
  o.sequence_length = column;
  CHECK(same(o));
  o.sequence_length = Eigen::RowVectorXi(column.transpose());
  CHECK(same(o));
  o.sequence_length = {5, 2, 0, 3};
  CHECK(same(o));
  REQUIRE(o.sequence_length.has_value());
  CHECK(o.sequence_length->size() == 4);
  CHECK((*o.sequence_length)[1] == 2);
  // Absent again: every example runs all steps.
  o.sequence_length = std::nullopt;
  CHECK_FALSE(o.sequence_length);
  CHECK_THROWS_AS(o.sequence_length.value(), cf::ValueError);
  cf::RNNOptions all_steps;
  all_steps.sequence_length = std::vector<long>(4, 5);
  CHECK(bitwise_equal(cf::dynamic_rnn(cell, x, o).outputs, cf::dynamic_rnn(cell, x, all_steps).outputs));
  o.sequence_length = std::vector<int>{1, 2, 3, 4};
  o.sequence_length.reset();
  CHECK_FALSE(o.sequence_length.has_value());
}

TEST_CASE("sequence_length refuses values that do not fit and matrices", "[dynamic_rnn][errors]") {
  cf::RNNOptions o;
  const std::uint64_t huge = std::uint64_t(1) << 63;
  const std::vector<std::uint64_t> too_long{3, huge};
  CHECK_THROWS_MATCHES(o.sequence_length = too_long, cf::ValueError,
                       what_contains<cf::ValueError>("sequence_length[1] = 9223372036854775808 does not fit"));
  CHECK_FALSE(o.sequence_length);  // nothing assigned
  const Eigen::MatrixXi matrix = Eigen::MatrixXi::Zero(2, 3);
  CHECK_THROWS_MATCHES(o.sequence_length = matrix, cf::ShapeError,
                       what_contains<cf::ShapeError>("sequence_length: a [2, 3] matrix given; expected a vector"));
  // A negative length of a signed type converts and is refused by dynamic_rnn, naming it.
  o.sequence_length = std::vector<short>{2, -3};
  cf::Rng rng(2);
  cf::GRUCell<float> cell(2, 3, rng);
  cf::Tensor3<float> x(2, 4, 2);
  x.setZero();
  CHECK_THROWS_MATCHES(cf::dynamic_rnn(cell, x, o), cf::ValueError,
                       what_contains<cf::ValueError>("sequence_length[1] = -3"));
}

TEST_CASE("dynamic_rnn_backward rejects a result without activations and wrong gradient shapes",
          "[dynamic_rnn][errors]") {
  cf::Rng rng(4);
  cf::BasicLSTMCell<float> cell(3, 2, rng);
  cf::Tensor3<float> x(2, 3, 3);
  x.setConstant(0.5f);
  cf::RNNOptions inference;
  inference.training = false;
  auto r = cf::dynamic_rnn(cell, x, inference);
  cf::Tensor3<float> dy(2, 3, 2);
  dy.setZero();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(cell, r, &dy), Contains("training = false"));

  auto t = cf::dynamic_rnn(cell, x);
  cf::Tensor3<float> bad(2, 4, 2);
  bad.setZero();
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(cell, t, &bad),
                      Contains("d_outputs is [2, 4, 2]") && Contains("outputs are [2, 3, 2]"));
  auto ds = cell.zero_state(5);
  REQUIRE_THROWS_AS(cf::dynamic_rnn_backward(cell, t, nullptr, &ds), cf::ShapeError);
}

TEST_CASE("dynamic_rnn_backward refuses a result computed by another cell", "[dynamic_rnn][errors]") {
  cf::Rng rng(11);
  cf::GRUCell<float> a(3, 2, rng), b(3, 2, rng);
  cf::Tensor3<float> x(2, 3, 3);
  x.setConstant(0.1f);
  auto r = cf::dynamic_rnn(a, x);
  auto ds = b.zero_state(2);
  REQUIRE_THROWS_WITH(cf::dynamic_rnn_backward(b, r, nullptr, &ds), Contains("was not computed by this gru_cell"));
  REQUIRE_NOTHROW(cf::dynamic_rnn_backward(a, r, nullptr, &ds));
}

}  // namespace test_dynamic_rnn
