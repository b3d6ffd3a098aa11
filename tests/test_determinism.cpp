// Determinism: the same seed and the same batch_threads give bitwise-identical weights after
// training, run after run; the number of OpenMP threads behind the matrix products does not
// change the result; only batch_threads does (the slices' gradients are summed in another order),
// and then only by float rounding.
#include <catch2/catch.hpp>

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

}  // namespace test_determinism
