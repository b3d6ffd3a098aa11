// Determinism: the same seed and the same batch_threads give bitwise-identical weights after
// training, run after run; the number of OpenMP threads behind the matrix products does not
// change the result; only batch_threads does (the slices' gradients are summed in another order),
// and then only by float rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "support/seed_model.hpp"
#include "support/test_util.hpp"

namespace test_determinism {

using namespace cellflow_test;

// A few Adam steps of a 2-layer LSTM classifier (the seed program's model) on fixed random data;
// returns every weight.
std::vector<cf::Matrix<float>> train(std::uint64_t seed, int batch_threads, int eigen_threads, int steps = 6) {
  const int saved = Eigen::nbThreads();
  Eigen::setNbThreads(eigen_threads);
  cf::Rng rng(seed);
  SeedModel model(/*layers=*/2, /*inputs=*/28, /*units=*/24, /*classes=*/10, 0.01f, rng);
  model.set_batch_threads(batch_threads);
  cf::Rng data_rng(99);
  const auto x = random_tensor<float>(40, 28, 28, data_rng, 0.0f, 1.0f);
  std::vector<int> y(40);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int>(i % 10);
  for (int s = 0; s < steps; ++s) model.train_step(x, y);
  std::vector<cf::Matrix<float>> w;
  for (const auto& v : model.variables()) w.push_back(*v.value);
  Eigen::setNbThreads(saved);
  return w;
}

TEST_CASE("same seed, same batch_threads: bitwise-identical weights after training", "[determinism]") {
  const auto a = train(42, 1, 1);
  const auto b = train(42, 1, 1);
  CHECK(bitwise_equal(a, b));
  const auto c = train(43, 1, 1);
  CHECK_FALSE(bitwise_equal(a, c));  // the seed matters (the test can fail)

  SECTION("two batch slices on two threads: identical run after run") {
    const auto s1 = train(42, 2, 1);
    const auto s2 = train(42, 2, 1);
    CHECK(bitwise_equal(s1, s2));
    // Against one slice: the same up to float rounding, not bitwise.
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, max_abs_diff(a[k], s1[k]));
    CHECK(worst < 1e-4);
  }
  SECTION("the threads behind one product do not change the result") {
    const auto t2 = train(42, 1, 2);
    CHECK(bitwise_equal(a, t2));
  }
}

TEST_CASE("keyed_uniform01 is a pure function of its key, uniform on the unit interval", "[determinism][random]") {
  // Same key, same number (in double and float); any key component changed, another number.
  CHECK(cf::keyed_uniform01<double>(7, 3, 11, 5) == cf::keyed_uniform01<double>(7, 3, 11, 5));
  CHECK(cf::keyed_uniform01<double>(7, 3, 11, 5) != cf::keyed_uniform01<double>(8, 3, 11, 5));
  CHECK(cf::keyed_uniform01<double>(7, 3, 11, 5) != cf::keyed_uniform01<double>(7, 4, 11, 5));
  CHECK(cf::keyed_uniform01<double>(7, 3, 11, 5) != cf::keyed_uniform01<double>(7, 3, 12, 5));
  CHECK(cf::keyed_uniform01<double>(7, 3, 11, 5) != cf::keyed_uniform01<double>(7, 3, 11, 6));
  // Moments of 200,000 draws over consecutive keys (where a weak mix would show): mean 1/2 and
  // variance 1/12 within 5 standard errors; every draw in [0, 1); 10 equal bins within 3%.
  const int n = 200000;
  double sum = 0, sum2 = 0;
  std::vector<int> bins(10, 0);
  for (int k = 0; k < n; ++k) {
    const double u =
        cf::keyed_uniform01<double>(1, 0, static_cast<std::uint64_t>(k / 100), static_cast<std::uint64_t>(k % 100));
    const float f =
        cf::keyed_uniform01<float>(1, 0, static_cast<std::uint64_t>(k / 100), static_cast<std::uint64_t>(k % 100));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    REQUIRE(f >= 0.0f);
    REQUIRE(f < 1.0f);
    sum += u;
    sum2 += u * u;
    ++bins[static_cast<std::size_t>(u * 10)];
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK(std::abs(mean - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  CHECK(std::abs(var - 1.0 / 12) < 0.002);
  for (int c : bins) CHECK(std::abs(c - n / 10) < n / 10 * 0.03);
}

TEST_CASE("next_random_draw counts up, dynamic_rnn keeps the draw it made for backward", "[determinism][random]") {
  const std::uint64_t a = cf::next_random_draw(), b = cf::next_random_draw();
  CHECK(b == a + 1);
  cf::Rng rng(3);
  cf::GRUCell<double> cell(2, 3, rng);
  cf::Tensor3<double> x(2, 4, 2);
  x.setConstant(0.5);
  auto r1 = cf::dynamic_rnn(cell, x);  // draws the counter's next value
  CHECK(r1.tape.draw == b + 1);
  cf::RNNOptions o;
  o.draw = 42;
  auto r2 = cf::dynamic_rnn(cell, x, o);
  CHECK(r2.tape.draw == 42);
  CHECK(cf::next_random_draw() == b + 2);  // a set draw does not advance the counter
}

}  // namespace test_determinism
