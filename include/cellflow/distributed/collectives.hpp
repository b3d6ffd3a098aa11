// The collectives of data-parallel training: every rank starts from rank 0's weights
// (broadcast_variables), and the ranks' gradients become the global batch's before every update
// (GradientAllreduce during Model::train_step, or allreduce_gradients after a hand-written
// backward pass).
//
//   cf::mpi::broadcast_variables(model.variables(), mpi);          // rank 0's weights everywhere
//   cf::mpi::GradientAllreduce<float> allreduce(model, mpi);       // fused buckets, overlapped
//   cf::TrainOptions step;
//   step.gradient_hook = &allreduce;
//   model.train_step(x_local, y_local, adam, step);                 // the global batch's step
//
// Gradients travel in fused buckets: the variables in the order backward finishes them
// (Model::gradient_groups(): the head, then the layers from the top down) are packed into
// buckets of about AllreduceOptions::bucket_bytes, one MPI_Allreduce per bucket rather than one
// per variable. With overlap (the default) a bucket starts (MPI_Iallreduce) as soon as its last
// layer's gradients are final, while the layers below are still in their backward pass, and
// every later time step of the backward pass lets MPI move it on (MPI_Test), when the rank runs
// its batch as one slice (batch_threads 1; with several slices the buckets start once the slices'
// gradients are summed).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/distributed/environment.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/train/gradient_hook.hpp"

namespace cellflow::mpi {

/// Copies every variable's value from rank `root` to every rank, in fused buckets (every rank
/// must pass the same list: same names, shapes and order; check_same_everywhere checks it). With
/// `optimizer`, its whole state too (Adam's moments and step on resume): rank root's checkpoint
/// bytes are sent and loaded on the others with every check of load_checkpoint (ValueError
/// when the state does not fit, on that rank).
template <class T>
void broadcast_variables(VariableList<T>& vars, const Environment& env, int root = 0,
                         io::detail::identity_t<Optimizer<T>>* optimizer = nullptr) {
  if (root < 0 || root >= env.size())
    throw ValueError(
        cellflow::detail::concat("mpi::broadcast_variables: root ", root, " is outside [0, ", env.size(), ")"));
  if (optimizer != nullptr) {
    std::vector<std::uint8_t> bytes;
    if (env.rank() == root) bytes = io::checkpoint_bytes(vars, optimizer);
    unsigned long long n = bytes.size();
    detail::check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, env.comm()), "MPI_Bcast (state size)");
    bytes.resize(static_cast<std::size_t>(n));
    detail::check(
        MPI_Bcast(bytes.data(), detail::count(bytes.size(), "broadcast_variables"), MPI_BYTE, root, env.comm()),
        "MPI_Bcast (model and optimizer state)");
    if (env.rank() != root)
      io::load_checkpoint_bytes(bytes, vars, optimizer, cellflow::detail::concat("the state of rank ", root));
    return;
  }
  std::vector<T> buffer;
  std::size_t k = 0;
  const std::size_t cap = std::size_t(4) << 20;
  while (k < vars.size()) {
    std::size_t end = k, n = 0;
    while (end < vars.size() &&
           (end == k || (n + static_cast<std::size_t>(vars[end].value->size())) * sizeof(T) <= cap))
      n += static_cast<std::size_t>(vars[end++].value->size());
    buffer.resize(n);
    if (env.rank() == root) {
      std::size_t at = 0;
      for (std::size_t j = k; j < end; ++j) {
        std::copy(vars[j].value->data(), vars[j].value->data() + vars[j].value->size(), buffer.data() + at);
        at += static_cast<std::size_t>(vars[j].value->size());
      }
    }
    detail::check(
        MPI_Bcast(buffer.data(), detail::count(n, "broadcast_variables"), detail::datatype<T>(), root, env.comm()),
        "MPI_Bcast (broadcast_variables)");
    std::size_t at = 0;
    for (std::size_t j = k; j < end; ++j) {
      std::copy(buffer.data() + at, buffer.data() + at + vars[j].value->size(), vars[j].value->data());
      at += static_cast<std::size_t>(vars[j].value->size());
    }
    k = end;
  }
}

/// Sums `values` over every rank, in place (the same result on every rank).
inline void sum_everywhere(std::vector<double>& values, const Environment& env) {
  if (values.empty()) return;
  detail::check(MPI_Allreduce(MPI_IN_PLACE, values.data(), detail::count(values.size(), "sum_everywhere"), MPI_DOUBLE,
                              MPI_SUM, env.comm()),
                "MPI_Allreduce (sum_everywhere)");
}

/// Replaces `values` by rank `root`'s (every rank must pass as many).
inline void broadcast_values(std::vector<double>& values, const Environment& env, int root = 0) {
  if (values.empty()) return;
  detail::check(
      MPI_Bcast(values.data(), detail::count(values.size(), "broadcast_values"), MPI_DOUBLE, root, env.comm()),
      "MPI_Bcast (broadcast_values)");
}

/// The GradientHook of data-parallel training over MPI (train/gradient_hook.hpp): during
/// Model::train_step it sums the ranks' shares of the global batch's gradient in fused buckets,
/// started as the layers finish (see the top of this header), and sums the batch statistics.
/// Every rank must build it for the same model and call train_step as often.
template <class T>
class GradientAllreduce final : public GradientHook {
 public:
  /// For `vars`, whose gradients backward finishes in `groups` ([first, last) ranges of `vars`
  /// in that order, together covering every variable once).
  GradientAllreduce(VariableList<T>& vars, std::vector<std::pair<std::size_t, std::size_t>> groups,
                    const Environment& env, AllreduceOptions options)
      : vars_(vars), groups_(std::move(groups)), env_(env), options_(options) {
    plan();
  }

  /// For a Model (its variables() and gradient_groups()), as `options` say; the model and `env`
  /// must outlive this object.
  template <class Model, class = decltype(std::declval<Model&>().gradient_groups())>
  GradientAllreduce(Model& model, const Environment& env, AllreduceOptions options)
      : GradientAllreduce(model.variables(), model.gradient_groups(), env, options) {}

  /// For a Model, as env.allreduce_options() say.
  template <class Model, class = decltype(std::declval<Model&>().gradient_groups())>
  GradientAllreduce(Model& model, const Environment& env)
      : GradientAllreduce(model.variables(), model.gradient_groups(), env, env.allreduce_options()) {}

  /// Not copyable: it refers to the model's variables and holds MPI requests.
  GradientAllreduce(const GradientAllreduce&) = delete;
  /// Not copyable.
  GradientAllreduce& operator=(const GradientAllreduce&) = delete;

  /// The next steps' global batch size, when every rank knows it (fit does: the batch plan is
  /// the same everywhere); the batch statistics then travel during the backward pass instead of
  /// an extra allreduce before it. 0 (the default): counted by an allreduce every step.
  void set_global_batch(Index examples) {
    if (examples < 0)
      throw ValueError(cellflow::detail::concat("mpi::GradientAllreduce: global batch ", examples, " < 0"));
    global_ = examples;
  }

  /// The buckets: the bytes each one carries, in the order they are sent.
  std::vector<std::size_t> bucket_bytes() const {
    std::vector<std::size_t> b;
    for (const auto& k : buckets_) b.push_back(k.buffer.size() * sizeof(T));
    return b;
  }

  /// Seconds the last step spent in MPI after its backward pass (waiting for buckets, or sending
  /// them all without overlap) and unpacking: the communication that overlap did not hide.
  double last_wait_seconds() const { return wait_seconds_; }

  // ---- GradientHook ----

  /// Starts summing the statistics; returns the global batch size (set_global_batch's, or counted).
  Index begin_backward(const BatchStats& local) override {
    if (in_step_) throw Error("mpi::GradientAllreduce: begin_backward twice without end_backward");
    in_step_ = true;
    stats_[0] = local.loss_sum;
    stats_[1] = local.correct;
    stats_[2] = static_cast<double>(local.examples);
    for (auto& k : buckets_) {
      k.ready = 0;
      k.started = false;
    }
    if (env_.size() == 1) return local.examples;
    if (global_ > 0) {
      detail::check(MPI_Iallreduce(MPI_IN_PLACE, stats_, 3, MPI_DOUBLE, MPI_SUM, env_.comm(), &stats_request_),
                    "MPI_Iallreduce (batch statistics)");
      return global_;
    }
    detail::check(MPI_Allreduce(MPI_IN_PLACE, stats_, 3, MPI_DOUBLE, MPI_SUM, env_.comm()),
                  "MPI_Allreduce (batch statistics)");
    return static_cast<Index>(stats_[2]);
  }

  /// Marks a group final; starts its bucket once all of the bucket's groups are.
  void gradients_ready(std::size_t first, std::size_t last) override {
    const auto it = std::find_if(groups_.begin(), groups_.end(),
                                 [&](const auto& g) { return g.first == first && g.second == last; });
    if (it == groups_.end())
      throw Error(cellflow::detail::concat("mpi::GradientAllreduce: variables [", first, ", ", last,
                                           ") are not one of the groups it was built for"));
    if (env_.size() == 1 || !options_.overlap) return;
    Bucket& k = buckets_[bucket_of_[static_cast<std::size_t>(it - groups_.begin())]];
    if (++k.ready == k.groups.size()) start(k);
    progress();
  }

  /// Lets the buckets in flight move on (MPI_Test), every time step of the backward pass.
  void backward_progress() override {
    if (in_flight_ > 0) progress();
  }

  /// Waits for every bucket, unpacks the sums into the gradients and the statistics into `stats`.
  void end_backward(BatchStats& stats) override {
    in_step_ = false;
    in_flight_ = 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (env_.size() > 1) {
      if (options_.overlap) {
        for (auto& k : buckets_)
          if (!k.started) start(k);  // a group that was never reported (a hook used by hand)
        std::vector<MPI_Request> requests;
        for (auto& k : buckets_) requests.push_back(k.request);
        detail::check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE),
                      "MPI_Waitall (gradient buckets)");
      } else {
        for (auto& k : buckets_) {
          pack(k);
          detail::check(MPI_Allreduce(MPI_IN_PLACE, k.buffer.data(), detail::count(k.buffer.size(), "bucket"),
                                      detail::datatype<T>(), MPI_SUM, env_.comm()),
                        "MPI_Allreduce (gradient bucket)");
        }
      }
      for (auto& k : buckets_) unpack(k);
      if (global_ > 0) {
        detail::check(MPI_Wait(&stats_request_, MPI_STATUS_IGNORE), "MPI_Wait (batch statistics)");
        if (static_cast<Index>(stats_[2]) != global_)
          throw Error(cellflow::detail::concat("mpi::GradientAllreduce: the ranks' batches hold ", stats_[2],
                                               " examples together, the global batch was said to hold ", global_));
      }
    }
    wait_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats.loss_sum = stats_[0];
    stats.correct = stats_[1];
    stats.examples = static_cast<Index>(stats_[2]);
  }

 private:
  struct Bucket {
    std::vector<std::size_t> groups;  // indices into groups_
    std::vector<T> buffer;
    MPI_Request request = MPI_REQUEST_NULL;
    std::size_t ready = 0;
    bool started = false;
  };

  void plan() {
    std::vector<int> seen(vars_.size(), 0);
    for (const auto& g : groups_) {
      if (g.first > g.second || g.second > vars_.size())
        throw ValueError(cellflow::detail::concat("mpi::GradientAllreduce: group [", g.first, ", ", g.second,
                                                  ") is outside the ", vars_.size(), " variables"));
      for (std::size_t j = g.first; j < g.second; ++j) ++seen[j];
    }
    for (std::size_t j = 0; j < seen.size(); ++j)
      if (seen[j] != 1)
        throw ValueError(cellflow::detail::concat("mpi::GradientAllreduce: variable ", j, " ('", vars_[j].name,
                                                  "') is in ", seen[j], " groups, expected exactly 1"));
    const std::size_t cap = options_.bucket_bytes / sizeof(T);
    bucket_of_.assign(groups_.size(), 0);
    std::size_t filled = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      std::size_t n = 0;
      for (std::size_t j = groups_[g].first; j < groups_[g].second; ++j)
        n += static_cast<std::size_t>(vars_[j].grad->size());
      if (buckets_.empty() || filled + n > cap) {
        buckets_.emplace_back();
        filled = 0;
      }
      buckets_.back().groups.push_back(g);
      filled += n;
      bucket_of_[g] = buckets_.size() - 1;
    }
    for (auto& k : buckets_) {
      std::size_t n = 0;
      for (const std::size_t g : k.groups)
        for (std::size_t j = groups_[g].first; j < groups_[g].second; ++j)
          n += static_cast<std::size_t>(vars_[j].grad->size());
      k.buffer.resize(n);
    }
  }

  void pack(Bucket& k) {
    T* at = k.buffer.data();
    for (const std::size_t g : k.groups)
      for (std::size_t j = groups_[g].first; j < groups_[g].second; ++j) {
        const Matrix<T>& grad = *vars_[j].grad;
        at = std::copy(grad.data(), grad.data() + grad.size(), at);
      }
  }

  void unpack(Bucket& k) {
    const T* at = k.buffer.data();
    for (const std::size_t g : k.groups)
      for (std::size_t j = groups_[g].first; j < groups_[g].second; ++j) {
        Matrix<T>& grad = *vars_[j].grad;
        std::copy(at, at + grad.size(), grad.data());
        at += grad.size();
      }
  }

  void start(Bucket& k) {
    pack(k);
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, k.buffer.data(), detail::count(k.buffer.size(), "bucket"),
                                 detail::datatype<T>(), MPI_SUM, env_.comm(), &k.request),
                  "MPI_Iallreduce (gradient bucket)");
    k.started = true;
    ++in_flight_;
  }

  // Lets MPI move the buckets in flight along (most MPI libraries progress a nonblocking
  // collective only inside MPI calls).
  void progress() {
    for (auto& k : buckets_)
      if (k.started && k.request != MPI_REQUEST_NULL) {
        int done = 0;
        detail::check(MPI_Test(&k.request, &done, MPI_STATUS_IGNORE), "MPI_Test (gradient bucket)");
        if (done) --in_flight_;  // MPI_Test set the request to MPI_REQUEST_NULL
      }
  }

  VariableList<T>& vars_;
  std::vector<std::pair<std::size_t, std::size_t>> groups_;
  const Environment& env_;
  AllreduceOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;
  Index global_ = 0;
  double stats_[3] = {0, 0, 0};
  MPI_Request stats_request_ = MPI_REQUEST_NULL;
  bool in_step_ = false;
  int in_flight_ = 0;  // buckets started and not yet seen complete
  double wait_seconds_ = 0;
};

/// Makes every rank's gradients those of the global batch, in place and identical on every rank,
/// after a backward pass written by hand. Each rank's gradients are those of the mean loss over
/// its own `local_examples` examples; they are weighted by local_examples / (their sum over the
/// ranks) and summed, so that N ranks with B/N examples each get the gradient one process gets
/// with B, however unevenly the batch was split (a rank with 0 examples contributes nothing).
/// The variables travel in fused buckets (options.bucket_bytes), last variable first. Every rank
/// must pass the same list. ValueError when no rank has an example.
template <class T>
void allreduce_gradients(VariableList<T>& vars, Index local_examples, const Environment& env) {
  AllreduceOptions options = env.allreduce_options();
  if (local_examples < 0)
    throw ValueError(cellflow::detail::concat("mpi::allreduce_gradients: local_examples ", local_examples, " < 0"));
  double count[1] = {static_cast<double>(local_examples)};
  detail::check(MPI_Allreduce(MPI_IN_PLACE, count, 1, MPI_DOUBLE, MPI_SUM, env.comm()),
                "MPI_Allreduce (example count)");
  if (count[0] <= 0) throw ValueError("mpi::allreduce_gradients: no rank has an example");
  const T weight = static_cast<T>(static_cast<double>(local_examples) / count[0]);
  for (auto& v : vars) *v.grad *= weight;
  if (env.size() == 1) return;
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  for (std::size_t j = vars.size(); j-- > 0;) groups.emplace_back(j, j + 1);
  options.overlap = false;
  GradientAllreduce<T> reducer(vars, std::move(groups), env, options);
  reducer.set_global_batch(0);
  BatchStats stats;
  stats.examples = local_examples;
  reducer.begin_backward(stats);
  reducer.end_backward(stats);
}

}  // namespace cellflow::mpi
