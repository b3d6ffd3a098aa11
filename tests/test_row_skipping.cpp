// Row skipping (RNNOptions::skip_ended_rows, on by default): with sequence_length, dynamic_rnn
// orders the examples by length and each step runs only on the examples still running. What it
// guarantees, checked here against skip_ended_rows = false (every row of every step, as TF):
//   - outputs, final state, input gradients and initial-state gradients: bitwise equal;
//   - weight gradients: equal up to the order of the sum (1e-13 relative in double);
//   - dropout masks: the same units dropped (the forward results are bitwise equal with every
//     keep probability below 1);
// for every built-in cell kind (LayerNormBasicLSTMCell with its dropout too), a 2-layer MultiRNNCell, an AnyCell,
// wrappers and a bidirectional run; lengths with 0, 1 and time, ties, sorted and reverse-sorted batches; batch_threads
// 1 and 2; initial_state and d_final_state given; batches long enough that the weight gradients are summed in several
// groups of steps inside the backward loop. And a central-difference gradient check of the row-skipping path of a
// stack with ragged lengths.
#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "support/elman_cell.hpp"
#include "support/gradcheck.hpp"
#include "support/states.hpp"
#include "support/test_util.hpp"

namespace test_row_skipping {

using namespace cellflow_test;

struct Run {
  cf::Tensor3<double> outputs, d_inputs;
  std::vector<cf::Matrix<double>> state, d_state, grads;
};

template <class S>
void flatten(const S& s, std::vector<cf::Matrix<double>>& out) {
  for (const auto* p : const_state_parts(s)) out.push_back(*p);
}

template <class Cell>
Run run(Cell& cell, const cf::Tensor3<double>& x, const typename Cell::State& s0, const cf::Tensor3<double>& dy,
        const typename Cell::State& ds, const cf::RNNOptions& opts) {
  cf::VariableList<double> vars;
  vars.add(cell);
  vars.zero_grad();
  auto r = cf::dynamic_rnn(cell, x, opts, &s0);
  auto g = cf::dynamic_rnn_backward(cell, r, &dy, &ds);
  Run out;
  out.outputs = r.outputs;
  out.d_inputs = g.d_inputs;
  flatten(r.final_state, out.state);
  flatten(g.d_initial_state, out.d_state);
  for (auto& v : vars) out.grads.push_back(*v.grad);
  return out;
}

template <class A>
void require_bitwise(const A& a, const A& b, const char* what) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  for (cf::Index k = 0; k < a.size(); ++k) {
    INFO("element " << k << ": " << a.data()[k] << " vs " << b.data()[k]);
    REQUIRE(a.data()[k] == b.data()[k]);
  }
}

template <class A>
void require_close(const A& a, const A& b, const char* what) {
  REQUIRE(a.size() == b.size());
  double worst = 0, scale = 0;
  for (cf::Index k = 0; k < a.size(); ++k) scale = std::max(scale, std::abs(b.data()[k]));
  for (cf::Index k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a.data()[k] - b.data()[k]));
  INFO(what << ": worst difference " << worst << " of a largest value " << scale);
  REQUIRE(scale > 0);  // the gradient is not trivially zero
  REQUIRE(worst <= 1e-13 * scale);
}

const std::vector<std::vector<cf::Index>>& length_sets() {
  static const std::vector<std::vector<cf::Index>> sets = {
      {5, 0, 3, 5, 1, 0, 4},  // ragged: 0, 1 and time, ties
      {5, 5, 4, 3, 1, 1, 0},  // already sorted
      {0, 1, 1, 2, 3, 4, 5},  // reverse-sorted
      {2, 2, 2, 2, 2, 2, 2},  // all equal, shorter than time
  };
  return sets;
}

/// Longer sequences of a larger batch, ragged: 192 to 576 (step, example) pairs, so that the
/// cells' backward_weights sums the weight gradients in several groups of at least
/// kWeightGradientRows (128) rows, packed, inside the backward loop.
const std::vector<std::vector<cf::Index>>& long_length_sets() {
  static const std::vector<std::vector<cf::Index>> sets = [] {
    std::vector<cf::Index> ragged, halves;
    for (cf::Index b = 0; b < 48; ++b) {
      ragged.push_back((b * 7) % 13);  // 0 .. 12, every length several times
      halves.push_back(b % 2 ? 12 : 4);
    }
    return std::vector<std::vector<cf::Index>>{ragged, halves};
  }();
  return sets;
}

/// Skip on vs skip off, for every length set (B examples of T steps) and batch_threads 1 and 2.
template <class Cell>
void check(Cell cell, cf::Rng& rng, bool forward_only_bitwise = false, cf::Index B = 7, cf::Index T = 5,
           const std::vector<std::vector<cf::Index>>& sets = length_sets()) {
  REQUIRE(cf::skips_ended_rows_of(cell));
  const cf::Index D = cell.input_depth();
  const auto x = random_tensor<double>(B, T, D, rng);
  const auto dy = random_tensor<double>(B, T, cell.output_size(), rng);
  auto s0 = cell.zero_state(B), ds = cell.zero_state(B);
  randomize_state(s0, rng, -1.0, 1.0);
  randomize_state(ds, rng, -1.0, 1.0);
  for (const auto& lengths : sets) {
    for (int threads : {1, 2}) {
      INFO("lengths " << ::Catch::Detail::stringify(lengths) << ", batch_threads " << threads);
      cf::RNNOptions opts;
      opts.sequence_length = lengths;
      opts.batch_threads = threads;
      opts.draw = 11;
      opts.skip_ended_rows = false;
      const Run ref = run(cell, x, s0, dy, ds, opts);
      opts.skip_ended_rows = true;
      const Run got = run(cell, x, s0, dy, ds, opts);
      require_bitwise(got.outputs, ref.outputs, "outputs");
      for (std::size_t k = 0; k < ref.state.size(); ++k) require_bitwise(got.state[k], ref.state[k], "final state");
      if (forward_only_bitwise) {
        require_close(got.d_inputs, ref.d_inputs, "d_inputs");
      } else {
        require_bitwise(got.d_inputs, ref.d_inputs, "d_inputs");
        for (std::size_t k = 0; k < ref.d_state.size(); ++k)
          require_bitwise(got.d_state[k], ref.d_state[k], "d_initial_state");
      }
      for (std::size_t k = 0; k < ref.grads.size(); ++k) require_close(got.grads[k], ref.grads[k], "variable gradient");
    }
  }
}

TEST_CASE("row skipping: every built-in step cell equals the every-row run", "[row_skipping]") {
  cf::Rng rng(515);
  SECTION("BasicRNNCell") { check(cf::BasicRNNCell<double>(3, 4, rng), rng); }
  SECTION("BasicLSTMCell") { check(cf::BasicLSTMCell<double>(3, 4, rng, 0.5), rng); }
  SECTION("LSTMCell: peepholes, cell_clip, num_proj, proj_clip") {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.cell_clip = 0.8;
    o.num_proj = 3;
    o.proj_clip = 0.5;
    check(cf::LSTMCell<double>(3, 4, o, rng), rng);
  }
  SECTION("GRUCell") { check(cf::GRUCell<double>(3, 4, rng), rng); }
  SECTION("CudnnCompatibleGRUCell") { check(cf::CudnnCompatibleGRUCell<double>(3, 4, rng), rng); }
  SECTION("LayerNormBasicLSTMCell with recurrent dropout: the same masks") {
    cf::LayerNormBasicLSTMOptions<double> o;
    o.dropout_keep_prob = 0.6;
    o.dropout_prob_seed = 4;
    check(cf::LayerNormBasicLSTMCell<double>(3, 4, o, rng), rng);
    o.layer_norm = false;
    check(cf::LayerNormBasicLSTMCell<double>(3, 4, o, rng), rng);
  }
}

TEST_CASE("row skipping: weight gradients summed in groups of steps inside the backward loop", "[row_skipping]") {
  cf::Rng rng(517);
  const auto& sets = long_length_sets();
  SECTION("BasicLSTMCell") { check(cf::BasicLSTMCell<double>(3, 4, rng), rng, false, 48, 12, sets); }
  SECTION("LSTMCell: peepholes, num_proj") {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    o.num_proj = 3;
    check(cf::LSTMCell<double>(3, 4, o, rng), rng, false, 48, 12, sets);
  }
  SECTION("GRUCell") { check(cf::GRUCell<double>(3, 4, rng), rng, false, 48, 12, sets); }
  SECTION("CudnnCompatibleGRUCell") { check(cf::CudnnCompatibleGRUCell<double>(3, 4, rng), rng, false, 48, 12, sets); }
}

TEST_CASE("row skipping: stacks, erased cells and wrappers", "[row_skipping]") {
  cf::Rng rng(516);
  SECTION("2-layer MultiRNNCell") {
    cf::LSTMOptions<double> o;
    o.use_peepholes = true;
    check(cf::MultiRNNCell<double>(cf::LSTMCell<double>(3, 4, o, rng), cf::GRUCell<double>(4, 3, rng)), rng);
  }
  SECTION("AnyCell") { check(cf::AnyCell<double>(cf::BasicLSTMCell<double>(3, 4, rng)), rng); }
  SECTION("ResidualWrapper") { check(cf::ResidualWrapper<cf::GRUCell<double>>(cf::GRUCell<double>(3, 3, rng)), rng); }
  SECTION("DropoutWrapper with input, state and output dropout: the same masks") {
    // The masks are keyed by each row's example, not its row: any other mask would change the
    // outputs (the probabilities are far below 1).
    check(cf::DropoutWrapper<cf::BasicLSTMCell<double>>(cf::BasicLSTMCell<double>(3, 4, rng), 0.6, 0.7, 0.5, false, 9),
          rng);
    check(cf::DropoutWrapper<cf::GRUCell<double>>(cf::GRUCell<double>(3, 4, rng), 0.6, 0.7, 0.5, false, 10), rng);
  }
}

/// A BasicRNNCell that records what dynamic_rnn tells each slice: its rows' examples and the
/// active counts per step.
struct RecordingCell : cf::BasicRNNCell<double> {
  using cf::BasicRNNCell<double>::BasicRNNCell;
  using Record = std::pair<std::vector<cf::Index>, std::vector<cf::Index>>;  // examples, active
  std::vector<Record>* log = nullptr;
  std::mutex* mutex = nullptr;
  void forward_begin(Tape& tp, const cf::Matrix<double>& X, const cf::SequenceArgs& a, const State& s0) const {
    Record r;
    for (cf::Index b = 0; b < a.batch; ++b) r.first.push_back(a.example(b));
    if (a.active) r.second.assign(a.active, a.active + a.steps);
    {
      std::lock_guard<std::mutex> lock(*mutex);
      log->push_back(r);
    }
    cf::BasicRNNCell<double>::forward_begin(tp, X, a, s0);
  }
};

TEST_CASE("row skipping: the rows are sorted by length and only the running ones are active", "[row_skipping]") {
  cf::Rng rng(520);
  std::vector<RecordingCell::Record> log;
  std::mutex mutex;
  RecordingCell cell(2, 3, rng);
  cell.log = &log;
  cell.mutex = &mutex;
  const auto x = random_tensor<double>(5, 4, 2, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<cf::Index>{1, 3, 0, 3, 2};
  using V = std::vector<cf::Index>;
  cf::dynamic_rnn(cell, x, opts);
  REQUIRE(log.size() == 1);
  CHECK(log[0].first == V{1, 3, 4, 0, 2});  // longest first, ties in the caller's order
  CHECK(log[0].second == V{4, 3, 2});       // steps 0, 1, 2 (the longest length is 3)
  log.clear();
  opts.skip_ended_rows = false;
  cf::dynamic_rnn(cell, x, opts);
  REQUIRE(log.size() == 1);
  CHECK(log[0].first == V{0, 1, 2, 3, 4});
  CHECK(log[0].second.empty());
  log.clear();
  opts.skip_ended_rows = true;
  opts.batch_threads = 2;  // dealt: slice 0 takes sorted positions 0, 2, 4, slice 1 positions 1, 3
  cf::dynamic_rnn(cell, x, opts);
  REQUIRE(log.size() == 2);
  std::sort(log.begin(), log.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  CHECK(log[0].first == V{1, 4, 2});
  CHECK(log[0].second == V{2, 2, 1});
  CHECK(log[1].first == V{3, 0});
  CHECK(log[1].second == V{2, 1, 1});
}

TEST_CASE("row skipping: a cell that does not opt in keeps the rows in order", "[row_skipping]") {
  cf::Rng rng(517);
  // A user's cell without skips_ended_rows() computes every row, and so does a stack holding
  // one: dynamic_rnn then runs the every-row path, bitwise.
  cf::MultiRNNCell<double> stack(cf::BasicLSTMCell<double>(3, 4, rng), mycells::ElmanCell<double>(4, 3, rng));
  REQUIRE_FALSE(cf::skips_ended_rows_of(stack));
  REQUIRE_FALSE(cf::skips_ended_rows_of(mycells::ElmanCell<double>(4, 3, rng)));
  const auto x = random_tensor<double>(4, 3, 3, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<cf::Index>{1, 3, 0, 2};
  const auto a = cf::dynamic_rnn(stack, x, opts);
  opts.skip_ended_rows = false;
  const auto b = cf::dynamic_rnn(stack, x, opts);
  require_bitwise(a.outputs, b.outputs, "outputs");
}

TEST_CASE("row skipping: float, forward bitwise and gradients close", "[row_skipping]") {
  cf::Rng rng(521);
  cf::GRUCell<float> cell(3, 5, rng);
  const auto x = random_tensor<float>(6, 4, 3, rng);
  const auto dy = random_tensor<float>(6, 4, 5, rng);
  cf::RNNOptions opts;
  opts.sequence_length = std::vector<int>{4, 1, 0, 3, 4, 2};
  auto run_float = [&](bool skip) {
    opts.skip_ended_rows = skip;
    cf::VariableList<float> vars;
    vars.add(cell);
    vars.zero_grad();
    auto r = cf::dynamic_rnn(cell, x, opts);
    auto g = cf::dynamic_rnn_backward(cell, r, &dy);
    return std::make_tuple(r.outputs, g.d_inputs, cf::Matrix<float>(*vars[0].grad));
  };
  const auto [y0, dx0, g0] = run_float(false);
  const auto [y1, dx1, g1] = run_float(true);
  require_bitwise(y1, y0, "outputs");
  require_bitwise(dx1, dx0, "d_inputs");
  REQUIRE((g1 - g0).cwiseAbs().maxCoeff() <= 1e-5f * g0.cwiseAbs().maxCoeff());
  REQUIRE(g0.cwiseAbs().maxCoeff() > 0.0f);
}

TEST_CASE("row skipping: bidirectional_dynamic_rnn", "[row_skipping]") {
  cf::Rng rng(518);
  cf::BasicLSTMCell<double> fw(3, 4, rng);
  cf::GRUCell<double> bw(3, 2, rng);
  const cf::Index B = 5, T = 4;
  const auto x = random_tensor<double>(B, T, 3, rng);
  const auto dfw = random_tensor<double>(B, T, 4, rng), dbw = random_tensor<double>(B, T, 2, rng);
  cf::BidirectionalOptions opts;
  opts.sequence_length = std::vector<cf::Index>{2, 4, 0, 1, 4};
  auto both = [&](bool skip) {
    opts.skip_ended_rows = skip;
    cf::VariableList<double> vars;
    vars.add(fw, "fw").add(bw, "bw");
    vars.zero_grad();
    auto r = cf::bidirectional_dynamic_rnn(fw, bw, x, opts);
    auto g = cf::bidirectional_dynamic_rnn_backward(fw, bw, r, &dfw, &dbw);
    std::vector<cf::Matrix<double>> grads;
    for (auto& v : vars) grads.push_back(*v.grad);
    return std::make_tuple(r.output_fw, r.output_bw, g.d_inputs, grads);
  };
  const auto [ofw0, obw0, dx0, g0] = both(false);
  const auto [ofw1, obw1, dx1, g1] = both(true);
  require_bitwise(ofw1, ofw0, "output_fw");
  require_bitwise(obw1, obw0, "output_bw");
  require_bitwise(dx1, dx0, "d_inputs");
  for (std::size_t k = 0; k < g0.size(); ++k) require_close(g1[k], g0[k], "variable gradient");
}

TEST_CASE("row skipping: central-difference gradient check with ragged lengths", "[row_skipping][gradcheck]") {
  cf::Rng rng(519);
  // check_rnn_gradients runs with the default options (skip_ended_rows on) over lengths
  // {2, 0, T} and {T-1, 1, 0}: unsorted batches, so the rows are reordered and skipped.
  cf::LSTMOptions<double> o;
  o.use_peepholes = true;
  o.num_proj = 2;
  cf::MultiRNNCell<double> stack(cf::LSTMCell<double>(2, 3, o, rng), cf::CudnnCompatibleGRUCell<double>(2, 2, rng));
  REQUIRE(cf::skips_ended_rows_of(stack));
  check_rnn_gradients(stack, "MultiRNNCell(LSTMCell peephole proj, CudnnCompatibleGRUCell), row skipping", 3, rng);
}

}  // namespace test_row_skipping
