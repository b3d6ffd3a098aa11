// The README's seed program as a small class, built from the library alone (the tests do not
// depend on examples/):
//
//   cells  = [BasicLSTMCell(units) for _ in range(layers)]
//   multi  = MultiRNNCell(cells)
//   outputs, states = dynamic_rnn(multi, X)
//   logits = dense(states[-1][1], classes)
//   loss   = reduce_mean(sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
//   train  = AdamOptimizer(learning_rate).minimize(loss)
#pragma once

#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"

namespace cellflow_test {

class SeedModel {
 public:
  SeedModel(int layers, cellflow::Index inputs, cellflow::Index units, cellflow::Index classes, float learning_rate,
            cellflow::Rng& rng)
      : stack_(build_stack(layers, inputs, units, rng)), dense_(units, classes, rng), adam_(learning_rate) {
    vars_.add(stack_, "rnn").add(dense_);
  }
  SeedModel(const SeedModel&) = delete;  // vars_ points into the members
  SeedModel& operator=(const SeedModel&) = delete;

  /// Splits every batch into n slices on n threads (RNNOptions::batch_threads).
  void set_batch_threads(int n) { opts_.batch_threads = n; }

  /// One training step (forward, loss, backward, Adam); returns the batch's mean loss.
  double train_step(const cellflow::Tensor3<float>& x, const std::vector<int>& y) {
    vars_.zero_grad();
    cellflow::dynamic_rnn_into(fwd_, stack_, x, opts_);
    const cellflow::Matrix<float>& h = fwd_.final_state.back().h();  // TF: states[-1][1]
    const auto xent = cellflow::sparse_softmax_cross_entropy_with_logits(y, dense_(h));
    auto d_state = stack_.zero_state(h.rows());
    d_state.back().h() = dense_.backward(h, xent.mean_gradient());
    cellflow::dynamic_rnn_backward(stack_, fwd_, nullptr, &d_state);
    adam_.apply_gradients(vars_);
    return xent.mean();
  }

  /// The share of examples whose top-1 class is their label, forward only.
  double accuracy(const cellflow::Tensor3<float>& x, const std::vector<int>& y) const {
    cellflow::RNNOptions inference = opts_;
    inference.training = false;
    const auto r = cellflow::dynamic_rnn(stack_, x, inference);
    return cellflow::mean_of(cellflow::in_top_k(dense_(r.final_state.back().h()), y, 1));
  }

  cellflow::VariableList<float>& variables() { return vars_; }

 private:
  static cellflow::MultiRNNCell<float> build_stack(int layers, cellflow::Index inputs, cellflow::Index units,
                                                   cellflow::Rng& rng) {
    std::vector<cellflow::BasicLSTMCell<float>> cells;
    for (int l = 0; l < layers; ++l) cells.emplace_back(l == 0 ? inputs : units, units, rng);
    return cellflow::MultiRNNCell<float>(std::move(cells));
  }

  cellflow::MultiRNNCell<float> stack_;
  cellflow::Dense<float> dense_;
  cellflow::AdamOptimizer<float> adam_;
  cellflow::VariableList<float> vars_;
  cellflow::RNNOptions opts_;
  cellflow::RNNResult<cellflow::MultiRNNCell<float>> fwd_;
};

}  // namespace cellflow_test
