// Umbrella header: everything of cellflow that needs only Eigen (target cellflow::cellflow).
//
//   namespace cellflow           the model layer (Model, fit and its callbacks, ModelStream,
//                                load_model) and the math under it: cells, MultiRNNCell, dynamic_rnn and
//                                RNNStream, Dense, Embedding, the losses (sparse softmax
//                                cross-entropy, sequence_loss), argmax, in_top_k, the optimizers
//                                (Optimizer, AdamOptimizer, GradientDescentOptimizer, clip_by_global_norm),
//                                numeric guards, variables, tensor helpers (core/tensors.hpp),
//                                errors, Rng, the version, the bf16 precision choice and CPU
//                                detection (core/precision.hpp)
//   namespace cellflow::io       checkpoints (io/checkpoint.hpp), .npy arrays (io/npy.hpp),
//                                atomic file writes (io/atomic_file.hpp)
//   namespace cellflow::data     in-memory datasets and shuffled minibatches
//   namespace cellflow::convert  PyTorch and Keras weight layouts
//
// The file formats that need zlib (IDX files, .npz and ZIP archives) are not here but in
// cellflow/io.hpp (target cellflow::io), so that a program that never reads them needs no zlib.
// Including single headers instead compiles less.
#pragma once

#include "cellflow/cells/basic_rnn_cell.hpp"
#include "cellflow/cells/cell_state.hpp"
#include "cellflow/cells/cell_traits.hpp"
#include "cellflow/cells/gru_cell.hpp"
#include "cellflow/cells/layer_norm_basic_lstm_cell.hpp"
#include "cellflow/cells/lstm_cell.hpp"
#include "cellflow/cells/lstm_state.hpp"
#include "cellflow/cells/state.hpp"
#include "cellflow/cells/step_output.hpp"
#include "cellflow/convert/keras.hpp"
#include "cellflow/convert/pytorch.hpp"
#include "cellflow/core/build_check.hpp"
#include "cellflow/core/error.hpp"
#include "cellflow/core/gradients.hpp"
#include "cellflow/core/precision.hpp"
#include "cellflow/core/random.hpp"
#include "cellflow/core/sequence.hpp"
#include "cellflow/core/tensors.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/data/batches.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/io/atomic_file.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "cellflow/io/npy.hpp"
#include "cellflow/layers/dense.hpp"
#include "cellflow/layers/embedding.hpp"
#include "cellflow/layers/softmax.hpp"
#include "cellflow/losses/sequence_loss.hpp"
#include "cellflow/losses/sparse_softmax_cross_entropy.hpp"
#include "cellflow/metrics/argmax.hpp"
#include "cellflow/metrics/in_top_k.hpp"
#include "cellflow/model/architecture.hpp"
#include "cellflow/model/callback.hpp"
#include "cellflow/model/callbacks.hpp"
#include "cellflow/model/fit.hpp"
#include "cellflow/model/model.hpp"
#include "cellflow/model/model_stream.hpp"
#include "cellflow/optimizers/adagrad.hpp"
#include "cellflow/optimizers/adam.hpp"
#include "cellflow/optimizers/clip_by_global_norm.hpp"
#include "cellflow/optimizers/gradient_descent.hpp"
#include "cellflow/optimizers/learning_rate_schedules.hpp"
#include "cellflow/optimizers/momentum.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "cellflow/optimizers/rmsprop.hpp"
#include "cellflow/optimizers/slot_optimizer.hpp"
#include "cellflow/rnn/any_cell.hpp"
#include "cellflow/rnn/batch_split.hpp"
#include "cellflow/rnn/bidirectional.hpp"
#include "cellflow/rnn/dropout_wrapper.hpp"
#include "cellflow/rnn/dynamic_rnn.hpp"
#include "cellflow/rnn/multi_rnn_cell.hpp"
#include "cellflow/rnn/residual_wrapper.hpp"
#include "cellflow/rnn/scan.hpp"
#include "cellflow/rnn/sequence.hpp"
#include "cellflow/rnn/stack_bidirectional.hpp"
#include "cellflow/rnn/step.hpp"
#include "cellflow/rnn/stream.hpp"
#include "cellflow/train/gradient_hook.hpp"
#include "cellflow/train/numeric_guard.hpp"
#include "cellflow/version.hpp"
