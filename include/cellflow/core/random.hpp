// Explicit, seedable random numbers. cellflow has no global RNG: every initializer takes an
// Rng&, so two models built from the same seed are identical on every platform.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"

namespace cellflow {

/// A seedable random engine. std::mt19937_64's output sequence is fixed by the C++ standard;
/// cellflow turns it into floating-point numbers itself (the standard distributions are
/// implementation-defined), so a seed means the same weights with every compiler.
class Rng {
 public:
  /// An engine started from `seed` (5489 by default, std::mt19937_64's default seed).
  explicit Rng(std::uint64_t seed = 5489u) : engine_(seed) {}

  /// Restarts the engine from `s`: the numbers that follow are those of a new Rng(s).
  void seed(std::uint64_t s) { engine_.seed(s); }

  /// Next raw 64-bit value.
  std::uint64_t next_u64() { return engine_(); }

  /// Uniform in [0, 1) with the full precision of T.
  template <class T>
  T uniform01() {
    detail::check_scalar<T>();
    if constexpr (sizeof(T) <= 4) {
      return static_cast<T>(next_u64() >> 40) * T(1.0 / 16777216.0);  // 24 bits
    } else {
      return static_cast<T>(next_u64() >> 11) * T(1.0 / 9007199254740992.0);  // 53 bits
    }
  }

  /// Uniform in [lo, hi).
  template <class T>
  T uniform(T lo, T hi) {
    return lo + (hi - lo) * uniform01<T>();
  }

  /// Uniform integer in [0, n), without modulo bias. n must be positive (ValueError for 0).
  std::uint64_t below(std::uint64_t n) {
    if (n == 0) throw ValueError("Rng::below: n must be positive, given 0 (an empty range has no integer to draw)");
    const std::uint64_t limit = ~std::uint64_t(0) - (~std::uint64_t(0) % n);
    std::uint64_t x;
    do {
      x = next_u64();
    } while (x >= limit);
    return x % n;
  }

  /// Standard normal via Box-Muller (deterministic, platform independent).
  template <class T>
  T normal() {
    const double u1 = 1.0 - uniform01<double>();  // (0, 1]
    const double u2 = uniform01<double>();
    return static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  std::mt19937_64 engine_;
};

/// TensorFlow's glorot_uniform_initializer: U[-limit, limit) with
/// limit = sqrt(6 / (fan_in + fan_out)). For a 2-D [a, b] variable fan_in = a and fan_out = b;
/// for a 1-D [n] variable fan_in = fan_out = n (TF's _compute_fans).
template <class T>
void glorot_uniform(Matrix<T>& m, Index fan_in, Index fan_out, Rng& rng) {
  const T limit = static_cast<T>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = rng.uniform<T>(-limit, limit);
}

}  // namespace cellflow
