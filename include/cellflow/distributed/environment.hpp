// mpi::Environment: MPI for the life of an object, the ranks of a communicator, and the way a
// rank that fails stops the whole job (MPI_Abort) instead of leaving the others waiting in a
// collective.
//
//   int main(int argc, char** argv) {
//     cf::mpi::Environment mpi(argc, argv);   // MPI_Init_thread ... MPI_Finalize
//     return mpi.run([&] {                    // an exception on any rank aborts every rank
//       ... if (mpi.is_root()) std::printf(...); ...
//     });
//   }
//
// Part of the optional target cellflow::mpi (CMake's FindMPI, MPI::MPI_CXX); the rest of cellflow
// needs no MPI. Any MPI-3 implementation; tested with Open MPI.
#pragma once

// The deprecated C++ bindings of Open MPI and MPICH are not used (and warn under -Wextra).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "cellflow/core/error.hpp"

namespace cellflow::mpi {

/// A problem found on every rank alike (e.g. the ranks' models differ, see
/// check_same_everywhere): every rank throws it with the same message, so no rank is left in a
/// collective and Environment::run ends every rank normally, rank 0 alone printing the message.
class ConsistencyError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// How gradients travel (GradientAllreduce, allreduce_gradients).
struct AllreduceOptions {
  /// A bucket closes once adding the next group of variables (a layer's, for a Model) would take
  /// it past this many bytes; a group larger than this travels alone. 0: one bucket per group.
  std::size_t bucket_bytes = std::size_t(4) << 20;
  /// Start each bucket during the backward pass as soon as its variables are final
  /// (MPI_Iallreduce); false: every bucket after the backward pass (blocking MPI_Allreduce).
  bool overlap = true;
};

namespace detail {

/// Throws cellflow::Error naming `what` and MPI's message unless `rc` is MPI_SUCCESS.
inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(cellflow::detail::concat("mpi: ", what, " failed: ", std::string(text, static_cast<std::size_t>(len))));
}

/// MPI's datatype of float or double.
template <class T>
MPI_Datatype datatype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cellflow::mpi: float or double values");
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

/// An element count as MPI's int; Error when it does not fit.
inline int count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(2147483647))
    throw Error(
        cellflow::detail::concat("mpi: ", what, ": ", n, " elements, more than one MPI call can send (2^31 - 1)"));
  return static_cast<int>(n);
}

}  // namespace detail

/// MPI for the life of this object, and the communicator cellflow's collectives use.
///
/// Built from (argc, argv) it calls MPI_Init_thread (MPI_THREAD_FUNNELED: only the thread that
/// built it calls MPI; the OpenMP threads inside a training step never do) unless MPI is already
/// initialised, and MPI_Finalize when it is destroyed if it initialised MPI. Built from a
/// communicator it wraps what an application already has and finalises nothing.
class Environment {
 public:
  /// Initialises MPI (unless the application already did) and uses MPI_COMM_WORLD. Error when the
  /// MPI library cannot give MPI_THREAD_FUNNELED.
  Environment(int& argc, char**& argv) {
    int initialized = 0;
    detail::check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (!initialized) {
      int provided = 0;
      detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
      if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        throw Error("mpi: the MPI library gives no thread support (cellflow needs MPI_THREAD_FUNNELED)");
      }
    }
    comm_ = MPI_COMM_WORLD;
    query();
  }

  /// Uses `comm`, a communicator of an initialised MPI that the application owns (it is neither
  /// freed nor finalised here). A collective: every rank of `comm` builds one. Error when MPI is
  /// not initialised.
  explicit Environment(MPI_Comm comm) : comm_(comm) {
    int initialized = 0;
    detail::check(MPI_Initialized(&initialized), "MPI_Initialized");
    if (!initialized) throw Error("mpi::Environment(comm): MPI is not initialised (call MPI_Init_thread first)");
    query();
  }

  /// Not copyable: one object owns MPI's lifetime.
  Environment(const Environment&) = delete;
  /// Not copyable.
  Environment& operator=(const Environment&) = delete;

  /// MPI_Finalize, if this object initialised MPI.
  ~Environment() {
    if (owns_) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    }
  }

  /// This process's rank in the communicator, from 0.
  int rank() const { return rank_; }
  /// The number of ranks.
  int size() const { return size_; }
  /// Whether this is rank 0: the rank that prints progress and writes files.
  bool is_root() const { return rank_ == 0; }
  /// The ranks on this machine (sharing its memory): how many processes share its cores.
  int local_size() const { return local_size_; }
  /// This process's rank among those on its machine, from 0.
  int local_rank() const { return local_rank_; }
  /// The communicator.
  MPI_Comm comm() const { return comm_; }

  /// How mpi::fit's gradients travel (buckets, overlap).
  const AllreduceOptions& allreduce_options() const { return allreduce_; }
  /// Sets how mpi::fit's gradients travel.
  void set_allreduce_options(const AllreduceOptions& options) { allreduce_ = options; }

  /// Prints "cellflow: rank R of N: <message>" on stderr and ends every rank of the job
  /// (MPI_Abort with `code`): what a rank does when it cannot go on, so that no other rank waits
  /// forever in a collective it will never join.
  [[noreturn]] void abort(const std::string& message, int code = 1) const {
    std::fprintf(stderr, "cellflow: rank %d of %d: %s; aborting every rank\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for a library that would
  }

  /// Runs `body` (returning void or an int exit code) and returns its exit code (0 for void).
  /// A ConsistencyError (thrown by every rank alike) is printed by rank 0 and returns 1 on every
  /// rank; any other exception aborts the job with its message and this rank's number (abort()).
  template <class F>
  int run(F&& body) const {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        body();
        return 0;
      } else {
        return static_cast<int>(body());
      }
    } catch (const ConsistencyError& e) {
      if (is_root()) std::fprintf(stderr, "cellflow: %s\n", e.what());
      return 1;
    } catch (const std::exception& e) {
      abort(e.what());
    } catch (...) {
      abort("an exception that is not a std::exception");
    }
  }

 private:
  void query() {
    detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm local = MPI_COMM_NULL;
    detail::check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
                  "MPI_Comm_split_type");
    detail::check(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank (machine)");
    detail::check(MPI_Comm_size(local, &local_size_), "MPI_Comm_size (machine)");
    MPI_Comm_free(&local);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  AllreduceOptions allreduce_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  bool owns_ = false;
};

}  // namespace cellflow::mpi
