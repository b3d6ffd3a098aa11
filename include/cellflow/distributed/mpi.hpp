// Data-parallel training over MPI (any MPI-3 implementation; tested with Open MPI): every rank
// holds the whole model, trains on its own part of each global batch, and the ranks sum their
// shares of the gradient before every update, so that N ranks with B/N examples each take the
// step one process takes with B. docs/distributed.md has the guide and the cost model.
//
//   cf::mpi::Environment mpi(argc, argv);                  // environment.hpp
//   return mpi.run([&] {                                   // a failing rank aborts them all
//     cf::mpi::fit(mpi, model, adam, train, test, options,  // fit.hpp
//                  cf::ModelCheckpoint("ckpt.cf"));        // rank 0 writes
//   });
//
// The parts: environment.hpp (MPI's lifetime, ranks, abort), collectives.hpp
// (broadcast_variables, GradientAllreduce, allreduce_gradients), consistency.hpp (the start-up
// digest check), fit.hpp (mpi::fit); data/batches.hpp shards the batches and
// train/gradient_hook.hpp is the core's side of the gradient exchange.
//
// Target cellflow::mpi (CMake's FindMPI, MPI::MPI_CXX); the rest of cellflow needs no MPI.
#pragma once

#include "cellflow/distributed/collectives.hpp"
#include "cellflow/distributed/consistency.hpp"
#include "cellflow/distributed/environment.hpp"
#include "cellflow/distributed/fit.hpp"
