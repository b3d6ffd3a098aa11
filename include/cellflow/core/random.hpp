// Explicit, seedable random numbers. cellflow has no global RNG: every initializer takes an
// Rng&, so two models built from the same seed are identical on every platform.
#pragma once

#include <atomic>
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

namespace detail {

/// SplitMix64's finaliser: a bijection of 64-bit values that mixes every input bit into every
/// output bit.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace detail

/// A random number that is a pure function of its key: uniform in [0, 1) with the precision of T
/// (24 bits for float, 53 for double), the same on every platform, in any order and on any thread.
/// Dropout draws its masks this way, keyed by (seed, draw, example, step * width + unit), so that
/// a mask does not depend on how a batch is split over threads or how many steps run at once.
template <class T>
T keyed_uniform01(std::uint64_t seed, std::uint64_t draw, std::uint64_t example, std::uint64_t position) {
  detail::check_scalar<T>();
  std::uint64_t h = detail::mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = detail::mix64(h ^ (draw + 0x632be59bd9b4e019ULL));
  h = detail::mix64(h ^ (example + 0x85157af5d0a9c1b3ULL));
  h = detail::mix64(h ^ (position + 0xd6e8feb86659fd93ULL));
  if constexpr (sizeof(T) <= 4) {
    return static_cast<T>(h >> 40) * T(1.0 / 16777216.0);
  } else {
    return static_cast<T>(h >> 11) * T(1.0 / 9007199254740992.0);
  }
}

/// The next value of a process-wide counter (1, 2, 3, ...; thread-safe): the random draw a
/// training run makes when RNNOptions::draw is not set.
inline std::uint64_t next_random_draw() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace cellflow
