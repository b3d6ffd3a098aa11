// The core's side of data-parallel training, without MPI (tests/mpi/ runs the MPI side):
// sharding (shard_range, shard, ShuffleBatches::epoch(rank, ranks)), the GradientHook protocol of
// Model::train_step (the calls, their order, the groups covering every variable once; a hook
// that combines nothing changes nothing, bitwise), BackwardObserver through dynamic_rnn_backward,
// two "ranks" as two threads in one process summing their gradients (the step of one process on
// the whole batch, within 1e-12 in double), and a non-finite loss seen through the hook.
#include <catch2/catch.hpp>

#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/test_util.hpp"

namespace test_data_parallel {

using namespace cellflow_test;
using Catch::Matchers::Contains;
using Groups = std::vector<std::pair<std::size_t, std::size_t>>;

template <class T>
cf::data::Dataset<T> random_data(Index n, Index time, Index depth, int classes, bool lengths, std::uint64_t seed) {
  cf::Rng rng(seed);
  cf::data::Dataset<T> d;
  d.images.resize(n, time, depth);
  for (Index i = 0; i < d.images.size(); ++i) d.images.data()[i] = static_cast<T>(rng.uniform(-1.0, 1.0));
  for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(classes))));
  if (lengths)
    for (Index i = 0; i < n; ++i)
      d.lengths.push_back(1 + static_cast<Index>(rng.below(static_cast<std::uint64_t>(time))));
  return d;
}

/// A hook that combines nothing and records what train_step tells it.
struct RecordingHook final : cf::GradientHook {
  std::vector<std::string> calls;
  Groups ready;
  Index begin_backward(const cf::BatchStats& local) override {
    calls.push_back("begin " + std::to_string(local.examples));
    return local.examples;
  }
  void gradients_ready(std::size_t first, std::size_t last) override {
    calls.push_back("ready");
    ready.emplace_back(first, last);
  }
  void end_backward(cf::BatchStats&) override { calls.push_back("end"); }
};

TEST_CASE("shard_range and shard cut a batch as array_split does", "[data_parallel][batches]") {
  using cf::data::shard_range;
  CHECK(shard_range(10, 0, 3) == std::pair<Index, Index>(0, 4));
  CHECK(shard_range(10, 1, 3) == std::pair<Index, Index>(4, 3));
  CHECK(shard_range(10, 2, 3) == std::pair<Index, Index>(7, 3));
  CHECK(shard_range(2, 2, 3) == std::pair<Index, Index>(2, 0));  // fewer examples than ranks
  CHECK(shard_range(7, 0, 1) == std::pair<Index, Index>(0, 7));
  CHECK(cf::data::shard({5, 9, 1, 4, 8}, 1, 2) == std::vector<Index>{4, 8});
  CHECK_THROWS_WITH(shard_range(10, 3, 3), Contains("rank 3 is outside [0, 3)"));
  CHECK_THROWS_WITH(shard_range(10, -1, 2), Contains("rank -1 is outside [0, 2)"));
  CHECK_THROWS_WITH(shard_range(10, 0, 0), Contains("outside [0, 0)"));
}

TEST_CASE("ShuffleBatches::epoch(rank, ranks): the ranks' parts of every batch make the batch",
          "[data_parallel][batches]") {
  for (const int ranks : {1, 2, 3}) {
    std::vector<cf::data::ShuffleBatches> per_rank;
    for (int r = 0; r < ranks; ++r) per_rank.emplace_back(103, 10, std::uint64_t(8));
    cf::data::ShuffleBatches whole(103, 10, std::uint64_t(8));
    for (int e = 0; e < 3; ++e) {
      const auto batches = whole.epoch();
      std::vector<std::vector<std::vector<Index>>> parts;
      for (int r = 0; r < ranks; ++r) parts.push_back(per_rank[static_cast<std::size_t>(r)].epoch(r, ranks));
      std::vector<int> seen(103, 0);
      for (std::size_t b = 0; b < batches.size(); ++b) {
        std::vector<Index> joined;
        for (int r = 0; r < ranks; ++r) {
          const auto& p = parts[static_cast<std::size_t>(r)][b];
          joined.insert(joined.end(), p.begin(), p.end());
          CHECK(static_cast<Index>(p.size()) ==
                cf::data::shard_range(static_cast<Index>(batches[b].size()), r, ranks).second);
        }
        CHECK(joined == batches[b]);
        for (const Index i : joined) ++seen[static_cast<std::size_t>(i)];
      }
      CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    }
  }
  cf::data::ShuffleBatches a(20, 5, std::uint64_t(1)), b(20, 5, std::uint64_t(1));
  CHECK_THROWS_WITH(a.epoch(2, 2), Contains("rank 2 is outside [0, 2)"));
  CHECK(a.epoch() == b.epoch());  // the failed call drew nothing
}

TEST_CASE("train_step with a hook: begin, every group once (head first, layers top down), end, nothing changes",
          "[data_parallel][model]") {
  for (const int threads : {1, 2}) {
    CAPTURE(threads);
    const auto data = random_data<double>(6, 5, 3, 4, true, 3);
    cf::Rng r1(2), r2(2);
    cf::Model<double> plain(3, {cf::GRU(4), cf::BasicLSTM(5), cf::GRU(3)}, 4, r1);
    cf::Model<double> hooked(3, {cf::GRU(4), cf::BasicLSTM(5), cf::GRU(3)}, 4, r2);
    cf::AdamOptimizer<double> a1(0.01), a2(0.01);
    cf::TrainOptions o;
    o.batch_threads = threads;
    o.sequence_length = data.lengths;
    RecordingHook hook;
    cf::TrainOptions oh = o;
    oh.gradient_hook = &hook;
    for (int s = 0; s < 2; ++s) {
      const auto p = plain.train_step(data.images, data.labels, a1, o);
      const auto h = hooked.train_step(data.images, data.labels, a2, oh);
      CHECK(h.loss == Approx(p.loss).epsilon(1e-14));
      CHECK(h.accuracy == p.accuracy);
    }
    for (std::size_t k = 0; k < plain.variables().size(); ++k)
      CHECK(*plain.variables()[k].value == *hooked.variables()[k].value);  // bitwise
    // The groups: head, layer 2, layer 1, layer 0, each step.
    const Groups& groups = hooked.gradient_groups();
    REQUIRE(groups.size() == 4);
    CHECK(groups.front().second == hooked.variables().size());
    CHECK(hooked.variables()[groups.front().first].name == "dense/kernel");
    CHECK(hooked.variables()[groups.back().first].name == "rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel");
    std::vector<int> covered(hooked.variables().size(), 0);
    for (const auto& g : groups)
      for (std::size_t j = g.first; j < g.second; ++j) ++covered[j];
    CHECK(std::all_of(covered.begin(), covered.end(), [](int c) { return c == 1; }));
    const std::vector<std::string> one_step{"begin 6", "ready", "ready", "ready", "ready", "end"};
    std::vector<std::string> expected = one_step;
    expected.insert(expected.end(), one_step.begin(), one_step.end());
    CHECK(hook.calls == expected);
    Groups twice = groups;
    twice.insert(twice.end(), groups.begin(), groups.end());
    CHECK(hook.ready == twice);
  }
}

TEST_CASE("dynamic_rnn_backward tells a BackwardObserver of every layer, top first", "[data_parallel][rnn]") {
  struct Order final : cf::BackwardObserver {
    std::vector<Index> layers;
    int steps = 0;
    void layer_done(Index l) override { layers.push_back(l); }
    void step_done() override { ++steps; }
  };
  cf::Rng rng(1);
  cf::Tensor3<float> x(4, 3, 2);
  x.setConstant(0.5f);
  for (const int threads : {1, 2}) {
    cf::MultiRNNCell<float> stack(cf::GRUCell<float>(2, 3, rng), cf::BasicLSTMCell<float>(3, 3, rng),
                                  cf::GRUCell<float>(3, 2, rng));
    cf::RNNOptions ro;
    ro.batch_threads = threads;
    auto r = cf::dynamic_rnn(stack, x, ro);
    cf::Tensor3<float> dy(4, 3, 2);
    dy.setConstant(1.0f);
    Order order;
    cf::dynamic_rnn_backward(stack, r, &dy, nullptr, &order);
    CHECK(order.layers == std::vector<Index>{2, 1, 0});
    CHECK(order.steps == (threads == 1 ? 3 * 3 : 0));  // every step of every layer, in one slice
    cf::GRUCell<float> one(2, 3, rng);                 // a single cell: layer 0
    auto r1 = cf::dynamic_rnn(one, x, ro);
    cf::Tensor3<float> dy1(4, 3, 3);
    dy1.setConstant(1.0f);
    Order single;
    cf::dynamic_rnn_backward(one, r1, &dy1, nullptr, &single);
    CHECK(single.layers == std::vector<Index>{0});
    CHECK(single.steps == (threads == 1 ? 3 : 0));
  }
}

/// Two "ranks" as two threads: each rank's hook waits for the other at end_backward, and both
/// sum the two gradients (rank 0's share first, as MPI's sum of two would).
struct Pair {
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0, generation = 0;
  cf::VariableList<double>* vars[2] = {nullptr, nullptr};
  cf::BatchStats stats[2];
  std::vector<cf::Matrix<double>> sums;
};

struct PairHook final : cf::GradientHook {
  Pair* pair = nullptr;
  int rank = 0;
  Index global = 0;
  Index begin_backward(const cf::BatchStats&) override { return global; }
  void gradients_ready(std::size_t, std::size_t) override {}
  void end_backward(cf::BatchStats& stats) override {
    std::unique_lock<std::mutex> lock(pair->m);
    pair->stats[rank] = stats;
    const int gen = pair->generation;
    if (++pair->arrived == 2) {
      pair->sums.clear();
      for (std::size_t k = 0; k < pair->vars[0]->size(); ++k)
        pair->sums.push_back(*(*pair->vars[0])[k].grad + *(*pair->vars[1])[k].grad);
      pair->arrived = 0;
      ++pair->generation;
      pair->cv.notify_all();
    } else {
      pair->cv.wait(lock, [&] { return pair->generation != gen; });
    }
    for (std::size_t k = 0; k < pair->vars[rank]->size(); ++k) *(*pair->vars[rank])[k].grad = pair->sums[k];
    stats.loss_sum = pair->stats[0].loss_sum + pair->stats[1].loss_sum;
    stats.correct = pair->stats[0].correct + pair->stats[1].correct;
    stats.examples = pair->stats[0].examples + pair->stats[1].examples;
    // Wait until both have copied the sums before the next step may replace them.
    const int gen2 = pair->generation;
    if (++pair->arrived == 2) {
      pair->arrived = 0;
      ++pair->generation;
      pair->cv.notify_all();
    } else {
      pair->cv.wait(lock, [&] { return pair->generation != gen2; });
    }
  }
};

TEST_CASE("two ranks summing their gradients through the hook take one process's step", "[data_parallel][model]") {
  const Index batch = 7;
  const auto data = random_data<double>(batch, 6, 3, 4, true, 17);
  cf::Rng r0(5);
  cf::Model<double> reference(3, {cf::BasicLSTM(5), cf::GRU(4)}, 4, r0);
  cf::Model<double> ranks[2] = {reference, reference};
  cf::AdamOptimizer<double> adam_ref(0.01);
  cf::AdamOptimizer<double> adam[2] = {cf::AdamOptimizer<double>(0.01), cf::AdamOptimizer<double>(0.01)};
  Pair pair;
  PairHook hooks[2];
  std::vector<cf::StepResult> results[2];
  for (int r = 0; r < 2; ++r) {
    pair.vars[r] = &ranks[r].variables();
    hooks[r].pair = &pair;
    hooks[r].rank = r;
    hooks[r].global = batch;
  }
  cf::TrainOptions one;
  one.batch_threads = 1;
  one.sequence_length = data.lengths;
  std::vector<cf::StepResult> expected;
  for (int s = 0; s < 3; ++s) expected.push_back(reference.train_step(data.images, data.labels, adam_ref, one));
  std::thread workers[2];
  for (int r = 0; r < 2; ++r)
    workers[r] = std::thread([&, r] {
      const auto [start, count] = cf::data::shard_range(batch, r, 2);
      std::vector<Index> idx;
      for (Index i = 0; i < count; ++i) idx.push_back(start + i);
      cf::Tensor3<double> x;
      std::vector<int> y;
      std::vector<Index> len;
      cf::data::gather(data, idx, x, y, len);
      cf::TrainOptions o = one;
      o.sequence_length = len;
      o.gradient_hook = &hooks[r];
      for (int s = 0; s < 3; ++s) results[r].push_back(ranks[r].train_step(x, y, adam[r], o));
    });
  for (auto& w : workers) w.join();
  for (int r = 0; r < 2; ++r) {
    for (std::size_t k = 0; k < reference.variables().size(); ++k) {
      const auto& a = *ranks[r].variables()[k].value;
      const auto& b = *reference.variables()[k].value;
      CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-12 * b.cwiseAbs().maxCoeff());
    }
    for (int s = 0; s < 3; ++s) {
      CHECK(results[r][static_cast<std::size_t>(s)].loss ==
            Approx(expected[static_cast<std::size_t>(s)].loss).epsilon(1e-13));
      CHECK(results[r][static_cast<std::size_t>(s)].accuracy == expected[static_cast<std::size_t>(s)].accuracy);
    }
  }
}

/// Reports a global loss of NaN (another rank's batch diverged) and otherwise combines nothing.
struct NanElsewhereHook final : cf::GradientHook {
  Index begin_backward(const cf::BatchStats& local) override { return local.examples; }
  void gradients_ready(std::size_t, std::size_t) override {}
  void end_backward(cf::BatchStats& stats) override { stats.loss_sum = std::numeric_limits<double>::quiet_NaN(); }
};

TEST_CASE("a non-finite loss on another rank stops or skips this rank's step too", "[data_parallel][model]") {
  const auto data = random_data<float>(4, 3, 2, 3, false, 1);
  cf::Rng rng(1);
  cf::Model<float> model(2, {cf::GRU(3)}, 3, rng);
  const cf::Model<float> before = model;
  cf::AdamOptimizer<float> adam(0.01f);
  NanElsewhereHook hook;
  cf::TrainOptions o;
  o.gradient_hook = &hook;
  o.on_nonfinite = cf::NonFinitePolicy::skip;
  const auto r = model.train_step(data.images, data.labels, adam, o);
  CHECK(r.skipped);
  CHECK(model.skipped_steps() == 1);
  o.on_nonfinite = cf::NonFinitePolicy::stop;
  CHECK_THROWS_AS(model.train_step(data.images, data.labels, adam, o), cf::NumericError);
  for (std::size_t k = 0; k < model.variables().size(); ++k)
    CHECK(*model.variables()[k].value == *before.variables()[k].value);
}

TEST_CASE("a hook that says the global batch is smaller than this rank's is refused", "[data_parallel][model]") {
  struct Short final : cf::GradientHook {
    Index begin_backward(const cf::BatchStats& local) override { return local.examples - 1; }
    void gradients_ready(std::size_t, std::size_t) override {}
    void end_backward(cf::BatchStats&) override {}
  } hook;
  const auto data = random_data<float>(4, 3, 2, 3, false, 1);
  cf::Rng rng(1);
  cf::Model<float> model(2, {cf::GRU(3)}, 3, rng);
  cf::AdamOptimizer<float> adam(0.01f);
  cf::TrainOptions o;
  o.gradient_hook = &hook;
  CHECK_THROWS_WITH(model.train_step(data.images, data.labels, adam, o),
                    Contains("the global batch has 3 examples, fewer than this rank's 4"));
}

}  // namespace test_data_parallel
