// The preamble of the documentation's C++ fragments (see tests/docs/extract_samples.py).
//
// A fragment in README.md or docs/*.md (a ```cpp block without `int main(`) is compiled as the
// body of a member function of a class derived from cellflow_docs::Preamble, so it may use, as
// the prose around it does, the names below without declaring them. A fragment that declares one
// of these names itself simply shadows it. Everything of cellflow.hpp and io.hpp is included,
// and `cf` names the namespace cellflow.
//
//   rng     cf::Rng, seeded with 42
//   multi   cf::MultiRNNCell<float>: 3 x BasicLSTMCell, 28 inputs, 150 units (the seed model)
//   dense   cf::Dense<float>(150, 10): the head on the top layer's h
//   vars    cf::VariableList<float> (empty: `vars.add(multi, "rnn").add(dense)` fills it)
//   adam    cf::AdamOptimizer<float>(0.001)
//   X       cf::Tensor3<float> [150, 28, 28]: a batch, [batch, time, depth]
//   y       std::vector<int> of 150 labels
//   lengths std::vector<cf::Index> of 150 sequence lengths
//   frames  std::vector<cf::Matrix<float>>: time steps [1, 28] arriving one by one
//   read_my_tensors()  a cf::convert::StateDict<float> (the user's own tensor source)
//   mpi     cf::mpi::Environment on MPI_COMM_WORLD, in the fragments of a Markdown file where a
//           fragment needs MPI (extract_samples.py then defines CELLFLOW_DOC_MPI, so that this
//           header includes cellflow/distributed/mpi.hpp; CMake links cellflow::mpi)
//
// Fragments are compiled, never run: these members only need the right types.
#pragma once

#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <cellflow/cellflow.hpp>
#include <cellflow/io.hpp>
#ifdef CELLFLOW_DOC_MPI
#include <cellflow/distributed/mpi.hpp>
#endif

namespace cf = cellflow;

namespace cellflow_docs {

inline cf::MultiRNNCell<float> seed_stack(cf::Rng& rng) {
  std::vector<cf::BasicLSTMCell<float>> cells;
  for (int l = 0; l < 3; ++l) cells.emplace_back(l == 0 ? 28 : 150, 150, rng);
  return cf::MultiRNNCell<float>(std::move(cells));
}

struct Preamble {
  cf::Rng rng{42};
  cf::MultiRNNCell<float> multi = seed_stack(rng);
  cf::Dense<float> dense{150, 10, rng};
  cf::VariableList<float> vars;
  cf::AdamOptimizer<float> adam{0.001f};
  cf::Tensor3<float> X = cf::Tensor3<float>(150, 28, 28);
  std::vector<int> y = std::vector<int>(150, 0);
  std::vector<cf::Index> lengths = std::vector<cf::Index>(150, 28);
  std::vector<cf::Matrix<float>> frames;
  cf::Model<float> model{28, {cf::BasicLSTM(150), cf::BasicLSTM(150), cf::BasicLSTM(150)}, 10, rng};
  cf::data::Dataset<float> train, test;
#ifdef CELLFLOW_DOC_MPI
  cf::mpi::Environment mpi{MPI_COMM_WORLD};
#endif

  cf::convert::StateDict<float> read_my_tensors() const { return {}; }
};

}  // namespace cellflow_docs
