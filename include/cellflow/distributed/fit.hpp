// mpi::fit: cellflow::fit (model/fit.hpp) on several processes at once, data-parallel.
//
//   cf::mpi::Environment mpi(argc, argv);
//   return mpi.run([&] {
//     ... every rank loads the same data and builds the same model ...
//     cf::FitOptions options;
//     options.batch_size = 150;                 // the global batch, shared by the ranks
//     cf::mpi::fit(mpi, model, adam, train, test, options, cf::ModelCheckpoint("ckpt.cf"));
//   });
//
// At the start the ranks compare their model, optimizer, options and data by a digest
// (check_same_everywhere: a difference stops every rank with a message naming the rank and the
// difference), then every rank takes rank 0's weights and optimizer state (broadcast_variables:
// a run resumed from a checkpoint continues exactly). Every epoch all ranks draw the same
// permutation (the same seed); each trains on its own contiguous part of every global batch
// (ShuffleBatches::epoch(rank, ranks)), and GradientAllreduce makes every step the global batch's
// step. Validation is shared out the same way. The logs are the global batch's on every rank; the
// callbacks run on every rank, and rank 0 alone prints and writes files. An exception on a rank
// aborts the job with its message (Environment::abort) rather than leaving the others blocked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "cellflow/data/dataset.hpp"
#include "cellflow/distributed/collectives.hpp"
#include "cellflow/distributed/consistency.hpp"
#include "cellflow/distributed/environment.hpp"
#include "cellflow/model/fit.hpp"

namespace cellflow::mpi {

namespace detail {

/// FNV-1a over the bytes of `n` values at `p`, continuing from `h`.
inline std::uint64_t fnv1a_bytes(const void* p, std::size_t n, std::uint64_t h = 1469598103934665603ull) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

/// A data set's shape, label and length counts and a digest of its contents.
template <class T>
std::string describe_data(const data::Dataset<T>& d, const char* what) {
  std::uint64_t h = fnv1a_bytes(d.labels.data(), d.labels.size() * sizeof(int));
  if (d.has_lengths()) h = fnv1a_bytes(d.lengths.data(), d.lengths.size() * sizeof(Index), h);
  // Every 8 bytes of the images at once (FNV over 64-bit words): a whole MNIST in a few ms.
  const auto* words = reinterpret_cast<const unsigned char*>(d.images.data());
  const std::size_t bytes = static_cast<std::size_t>(d.images.size()) * sizeof(T);
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, words + i, 8);
    h = (h ^ w) * 1099511628211ull;
  }
  h = fnv1a_bytes(words + i, bytes - i, h);
  std::ostringstream out;
  out << what << " " << d.size() << " examples [" << d.images.dimension(1) << ", " << d.images.dimension(2)
      << "], lengths " << (d.has_lengths() ? "yes" : "no") << ", digest " << std::hex << h << "\n";
  return out.str();
}

}  // namespace detail

/// What must be the same on every rank of mpi::fit, one item a line: the model (dtype, variable
/// names and shapes, each layer's kind and options), the optimizer (kind, hyper-parameters, step), the options that
/// shape the run (epochs, batch size, seed or the generator's next draw, shuffling, clipping) and the data (sizes and a
/// digest of the contents).
template <class T>
std::string describe_training(Model<T>& model, const Optimizer<T>& optimizer, const data::Dataset<T>& train,
                              const data::Dataset<T>* validation, const FitOptions& options) {
  std::ostringstream out;
  out.precision(17);
  out << describe(model, &optimizer);  // the variables, the optimizer, every layer's kind and options
  out << "fit epochs " << options.epochs << ", initial_epoch " << options.initial_epoch << ", batch_size "
      << options.batch_size << ", shuffle " << options.shuffle << ", clip_norm " << options.clip_norm
      << ", on_nonfinite " << static_cast<int>(options.on_nonfinite) << "\n";
  if (options.rng != nullptr) {
    Rng copy = *options.rng;  // its next draw, without moving the caller's generator
    out << "fit rng (next draw) " << copy.next_u64() << "\n";
  } else {
    out << "fit seed " << options.seed << "\n";
  }
  out << detail::describe_data(train, "training data");
  if (validation) out << detail::describe_data(*validation, "validation data");
  return out.str();
}

namespace detail {

template <class T>
class MpiFitGroup final : public cellflow::detail::FitGroup {
 public:
  MpiFitGroup(const Environment& env, Model<T>& model) : env_(env), reducer_(model, env, env.allreduce_options()) {}
  int rank() const override { return env_.rank(); }
  int size() const override { return env_.size(); }
  GradientHook& hook(Index global_batch) override {
    reducer_.set_global_batch(global_batch);
    return reducer_;
  }
  void sum(std::vector<double>& values) override { sum_everywhere(values, env_); }
  void broadcast(std::vector<double>& values) override { broadcast_values(values, env_); }

 private:
  const Environment& env_;
  GradientAllreduce<T> reducer_;
};

template <class T>
History fit_impl(const Environment& env, Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train,
                 const data::Dataset<T>* validation, const FitOptions& options, std::vector<Callback*> callbacks) {
  try {
    check_same_everywhere(env, describe_training(model, optimizer, train, validation, options));
    broadcast_variables(model.variables(), env, 0, &optimizer);
    MpiFitGroup<T> group(env, model);
    // batch_threads 0: this machine's cores shared by the ranks on it, not every core each.
    FitOptions shared = options;
    if (shared.batch_threads == 0)
      shared.batch_threads = std::max(
          1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / std::max(1, env.local_size()));
    return cellflow::detail::fit_impl<T>(model, optimizer, train, validation, shared, std::move(callbacks), &group);
  } catch (const ConsistencyError&) {
    throw;  // thrown by every rank alike
  } catch (const std::exception& e) {
    env.abort(e.what());
  }
}

}  // namespace detail

/// cellflow::fit, data-parallel over the ranks of `env` (see the top of this header): every rank
/// calls it with the same model, optimizer, options and data; options.batch_size is the global
/// batch, options.batch_threads the threads of each rank (0: the machine's cores divided by the
/// ranks on it, Environment::local_size()). Returns the same History on every rank. ConsistencyError (every rank) when
/// the ranks differ; any other error aborts the job with its message.
template <class T, class... Callbacks>
History fit(const Environment& env, Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train,
            const FitOptions& options, Callbacks&&... callbacks) {
  return detail::fit_impl<T>(env, model, optimizer, train, nullptr, options,
                             {cellflow::detail::as_callback(callbacks)...});
}

/// As above, evaluating `validation` after every epoch (each rank its part).
template <class T, class... Callbacks>
History fit(const Environment& env, Model<T>& model, Optimizer<T>& optimizer, const data::Dataset<T>& train,
            const data::Dataset<T>& validation, const FitOptions& options, Callbacks&&... callbacks) {
  return detail::fit_impl<T>(env, model, optimizer, train, &validation, options,
                             {cellflow::detail::as_callback(callbacks)...});
}

}  // namespace cellflow::mpi
