// The per-step heads of a sequence model: embedding_lookup and Embedding (layers/embedding.hpp),
// Dense on [batch, time, depth] (layers/dense.hpp) and sequence_loss (losses/sequence_loss.hpp).
// Each against the independent float64 reference of tests/fixtures/generate_sequence_heads.py
// (PyTorch autograd), central-difference gradient checks in double (each alone, and the chain
// embedding -> dynamic_rnn -> dense -> sequence_loss of a character model), the exact properties
// (repeated ids accumulate, padded steps contribute exactly nothing, the per-step dense equals a
// dense per step, div_no_nan at zero weights), variable names with a checkpoint round trip, and
// every input refused with its message.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_sequence_heads {

using namespace cellflow_test;
using Catch::Matchers::Contains;
using Mat = cf::Matrix<double>;
using Ten = cf::Tensor3<double>;
using IdMatrix = Eigen::Matrix<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

const std::map<std::string, FixtureCase>& cases() {
  static const auto c = load_fixture_file(fixture_path("sequence_heads_reference.txt"));
  return c;
}

const FixtureCase& get(const std::string& name) {
  const auto it = cases().find(name);
  if (it == cases().end()) FAIL("no fixture case " << name);
  return it->second;
}

std::vector<double> values(const FixtureTensor& t) { return t.values; }

IdMatrix id_matrix(const std::vector<long long>& flat, Index rows, Index cols) {
  IdMatrix m(rows, cols);
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<int>(flat[static_cast<std::size_t>(k)]);
  return m;
}

/// sum(a * b) over all elements.
template <class A, class B>
double dot(const A& a, const B& b) {
  double s = 0;
  for (Index k = 0; k < a.size(); ++k) s += double(a.data()[k]) * double(b.data()[k]);
  return s;
}

// ---- embedding_lookup ----

template <class T>
void check_embedding_reference(double rtol, double atol) {
  // A lookup copies: exact in double, the value rounded once in float.
  const double copy_rtol = std::is_same_v<T, double> ? 0.0 : 6e-8, copy_atol = 1e-300;
  const FixtureCase& c2 = get("embedding_bt");
  const cf::Matrix<T> params = to_matrix<T>(c2.tensor("params"));
  const IdMatrix ids = id_matrix(c2.int_list("ids"), 3, 5);
  cf::Embedding<T> emb(params);
  const cf::Tensor3<T> out = emb(ids);
  REQUIRE(out.dimension(0) == 3);
  REQUIRE(out.dimension(1) == 5);
  REQUIRE(out.dimension(2) == 4);
  check_close("embedding [B, T] outputs", out, values(c2.tensor("outputs")), copy_rtol, copy_atol);
  emb.zero_grad();
  emb.backward(ids, to_tensor3<T>(c2.tensor("w_out")));
  check_close("embedding d params", emb.params().grad, values(c2.tensor("grad/params")), rtol, atol);

  const FixtureCase& c1 = get("embedding_n");
  const auto& flat = c1.int_list("ids");
  const std::vector<long long> ids1(flat.begin(), flat.end());
  cf::Embedding<T> e1(to_matrix<T>(c1.tensor("params")));
  const cf::Matrix<T> out1 = e1(ids1);
  REQUIRE(out1.rows() == 9);
  check_close("embedding [N] outputs", out1, values(c1.tensor("outputs")), copy_rtol, copy_atol);
  e1.zero_grad();
  e1.backward(ids1, to_matrix<T>(c1.tensor("w_out")));
  check_close("embedding [N] d params", e1.params().grad, values(c1.tensor("grad/params")), rtol, atol);
}

TEST_CASE("embedding_lookup: outputs and the accumulated gradient match the PyTorch reference",
          "[sequence_heads][embedding]") {
  check_embedding_reference<double>(1e-14, 1e-14);
  check_embedding_reference<float>(1e-6, 1e-6);
}

TEST_CASE("embedding_lookup: repeated ids accumulate, backward adds, free functions equal the layer",
          "[sequence_heads][embedding]") {
  cf::Rng rng(7);
  cf::Embedding<double> emb(5, 3, rng);
  IdMatrix ids(2, 3);
  ids << 4, 4, 0, 4, 1, 1;
  const Ten d = random_tensor<double>(2, 3, 3, rng);
  emb.zero_grad();
  emb.backward(ids, d);
  // Row 4 gets three rows of d, row 1 two, row 0 one; rows 2 and 3 nothing.
  const auto step = [&](Index b, Index t) {
    Mat r(1, 3);
    for (Index k = 0; k < 3; ++k) r(0, k) = d(b, t, k);
    return r;
  };
  CHECK(max_diff(Mat(emb.params().grad.row(4)), Mat(step(0, 0) + step(0, 1) + step(1, 0))) <= 1e-15);
  CHECK(max_diff(Mat(emb.params().grad.row(1)), Mat(step(1, 1) + step(1, 2))) <= 1e-15);
  CHECK(bitwise_equal(Mat(emb.params().grad.row(0)), step(0, 2)));
  CHECK(emb.params().grad.row(2).isZero(0));
  CHECK(emb.params().grad.row(3).isZero(0));
  const Mat once = emb.params().grad;
  emb.backward(ids, d);
  CHECK(bitwise_equal(emb.params().grad, Mat(2.0 * once)));

  const Ten out = emb(ids);
  const Ten free = cf::embedding_lookup(emb.params().value, ids);
  CHECK(max_diff(out, free) == 0.0);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 3; ++t)
      for (Index k = 0; k < 3; ++k) CHECK(out(b, t, k) == emb.params().value(ids(b, t), k));
  // Any Eigen integer matrix, any storage order; std::vector ids of any integer type.
  const Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic> col_major = ids.cast<std::int64_t>();
  CHECK(max_diff(cf::embedding_lookup(emb.params().value, col_major), out) == 0.0);
  const std::vector<unsigned> flat{4, 4, 0};
  const Mat rows = emb(flat);
  for (Index n = 0; n < 3; ++n) CHECK(bitwise_equal(Mat(rows.row(n)), Mat(emb.params().value.row(flat[n]))));
}

TEST_CASE("Embedding: the variable 'embedding' [V, D], glorot_uniform, in a VariableList and a checkpoint",
          "[sequence_heads][embedding]") {
  cf::Rng rng(11);
  cf::Embedding<float> emb(50, 8, rng);
  CHECK(emb.vocab_size() == 50);
  CHECK(emb.dim() == 8);
  const double limit = std::sqrt(6.0 / (50 + 8));
  CHECK(emb.params().value.cwiseAbs().maxCoeff() <= limit);
  CHECK(emb.params().value.cwiseAbs().maxCoeff() > 0.9 * limit);  // uniform over the whole range
  cf::Dense<float> dense(8, 50, rng);
  cf::VariableList<float> vars;
  vars.add(emb).add(dense);
  REQUIRE(vars.size() == 3);
  CHECK(vars[0].name == "embedding");
  CHECK(vars[0].shape == std::vector<Index>{50, 8});
  CHECK(vars[1].name == "dense/kernel");
  cf::VariableList<float> scoped;
  cf::Embedding<float> named(4, 2, rng, "char_embedding");
  scoped.add(named, "model");
  CHECK(scoped[0].name == "model/char_embedding");

  TempDir dir;
  const std::string path = dir.file("emb.ckpt");
  cf::io::save_checkpoint(path, vars);
  cf::Rng other(12);
  cf::Embedding<float> emb2(50, 8, other);
  cf::Dense<float> dense2(8, 50, other);
  cf::VariableList<float> vars2;
  vars2.add(emb2).add(dense2);
  cf::io::load_checkpoint(path, vars2);
  CHECK(bitwise_equal(emb2.params().value, emb.params().value));
  CHECK(bitwise_equal(dense2.kernel().value, dense.kernel().value));
}

TEST_CASE("embedding_lookup: an id outside 0..V-1 names the id, its position and V",
          "[sequence_heads][embedding][errors]") {
  cf::Rng rng(13);
  cf::Embedding<double> emb(5, 2, rng);
  IdMatrix ids(2, 3);
  ids << 0, 1, 2, 3, 5, 0;
  CHECK_THROWS_MATCHES(emb(ids), cf::ValueError,
                       what_contains<cf::ValueError>("embedding_lookup: ids[1, 1] = 5 is outside [0, 5)"));
  ids(1, 1) = -1;
  CHECK_THROWS_MATCHES(emb(ids), cf::ValueError, what_contains<cf::ValueError>("ids[1, 1] = -1 is outside [0, 5)"));
  CHECK_THROWS_MATCHES(emb.backward(ids, Ten(2, 3, 2).setZero()), cf::ValueError,
                       what_contains<cf::ValueError>("embedding_lookup_backward: ids[1, 1] = -1"));
  CHECK(emb.params().grad.isZero(0));  // nothing added before the check
  const std::vector<std::uint8_t> small{1, 200};
  CHECK_THROWS_MATCHES(emb(small), cf::ValueError, what_contains<cf::ValueError>("ids[1] = 200 is outside [0, 5)"));
  const std::vector<std::uint64_t> huge{std::numeric_limits<std::uint64_t>::max()};
  CHECK_THROWS_AS(emb(huge), cf::ValueError);
  ids(1, 1) = 0;
  CHECK_THROWS_MATCHES(emb.backward(ids, Ten(2, 3, 3).setZero()), cf::ShapeError,
                       what_contains<cf::ShapeError>("d_outputs is [2, 3, 3], expected [2, 3, 2]"));
  CHECK_THROWS_MATCHES(emb.backward(std::vector<int>{0, 1}, Mat::Zero(3, 2)), cf::ShapeError,
                       what_contains<cf::ShapeError>("d_outputs is [3, 2], expected [2, 2]"));
  CHECK_THROWS_AS(cf::Embedding<double>(0, 3, rng), cf::ValueError);
  emb.params().value = Mat::Zero(4, 2);
  CHECK_THROWS_MATCHES(emb(ids), cf::ShapeError,
                       what_contains<cf::ShapeError>("variable 'embedding' holds a value of [4, 2]"));
}

// ---- Dense on [batch, time, depth] ----

template <class T>
void check_dense_reference(double rtol, double atol) {
  const FixtureCase& c = get("dense_time");
  cf::Dense<T> dense(to_matrix<T>(c.tensor("dense/kernel")), to_matrix<T>(c.tensor("dense/bias")));
  const cf::Tensor3<T> x = to_tensor3<T>(c.tensor("x"));
  const cf::Tensor3<T> y = dense(x);
  check_close("dense [B, T, D] y", y, values(c.tensor("y")), rtol, atol);
  dense.zero_grad();
  const cf::Tensor3<T> dx = dense.backward(x, to_tensor3<T>(c.tensor("w_out")));
  check_close("dense d x", dx, values(c.tensor("grad/x")), rtol, atol);
  check_close("dense d kernel", dense.kernel().grad, values(c.tensor("grad/dense/kernel")), rtol, atol);
  check_close("dense d bias", dense.bias().grad, values(c.tensor("grad/dense/bias")), rtol, atol);
}

TEST_CASE("Dense on [batch, time, depth]: y, dx, d kernel, d bias match the PyTorch reference",
          "[sequence_heads][dense]") {
  check_dense_reference<double>(1e-13, 1e-13);
  check_dense_reference<float>(1e-5, 1e-5);
}

TEST_CASE("Dense on [batch, time, depth] equals the 2-D dense on every step", "[sequence_heads][dense]") {
  cf::Rng rng(21);
  cf::Dense<float> dense(7, 5, rng);
  dense.bias().value = random_matrix<float>(1, 5, rng);
  const cf::Tensor3<float> x = random_tensor<float>(3, 4, 7, rng);
  const cf::Tensor3<float> y = dense(x);
  REQUIRE(y.dimension(2) == 5);
  for (Index t = 0; t < 4; ++t) {
    const cf::Matrix<float> yt = dense(cf::time_step(x, t));  // the same product per row: bitwise
    CHECK(bitwise_equal(cf::time_step(y, t), yt));
  }
  cf::Tensor3<float> into;
  dense.forward_into(x, into);
  CHECK(max_diff(into, y) == 0.0);
  // Backward: the sums over all steps equal the per-step backward calls (to rounding).
  const cf::Tensor3<float> dy = random_tensor<float>(3, 4, 5, rng);
  dense.zero_grad();
  const cf::Tensor3<float> dx = dense.backward(x, dy);
  const cf::Matrix<float> kgrad = dense.kernel().grad, bgrad = dense.bias().grad;
  dense.zero_grad();
  for (Index t = 0; t < 4; ++t) {
    const cf::Matrix<float> dxt = dense.backward(cf::time_step(x, t), cf::time_step(dy, t));
    CHECK(max_diff(dxt, cf::time_step(dx, t)) <= 1e-6);
  }
  CHECK(max_diff(kgrad, dense.kernel().grad) <= 1e-5);
  CHECK(max_diff(bgrad, dense.bias().grad) <= 1e-5);

  CHECK_THROWS_MATCHES(dense(random_tensor<float>(2, 2, 6, rng)), cf::ShapeError,
                       what_contains<cf::ShapeError>("dense forward: input depth 6, kernel expects 7"));
  CHECK_THROWS_MATCHES(dense.backward(x, random_tensor<float>(3, 4, 4, rng)), cf::ShapeError,
                       what_contains<cf::ShapeError>("dense backward: dy expected [3, 4, 5], given [3, 4, 4]"));
  cf::Tensor3<float> same = x;
  CHECK_THROWS_MATCHES(dense.forward_into(same, same), cf::ValueError,
                       what_contains<cf::ValueError>("y must be another tensor than x"));
}

// ---- sequence_loss ----

cf::SequenceLossOptions options_of(const FixtureCase& c) {
  cf::SequenceLossOptions o;
  o.average_across_timesteps = c.config_num("average_across_timesteps") != 0;
  o.average_across_batch = c.config_num("average_across_batch") != 0;
  o.sum_over_timesteps = c.config_num("sum_over_timesteps") != 0;
  o.sum_over_batch = c.config_num("sum_over_batch") != 0;
  return o;
}

template <class T>
void check_sequence_loss_case(const std::string& name, double rtol, double atol) {
  INFO("case " << name);
  const FixtureCase& c = get(name);
  const Index B = static_cast<Index>(c.config_num("batch")), time = static_cast<Index>(c.config_num("time"));
  const cf::Tensor3<T> logits = to_tensor3<T>(c.tensor("logits"));
  const IdMatrix targets = id_matrix(c.int_list("targets"), B, time);
  const cf::Matrix<T> weights = to_matrix<T>(c.tensor("weights"));
  const auto r = cf::sequence_loss(logits, targets, weights, options_of(c));
  const auto& expected = c.tensor("loss");
  std::vector<Index> shape(expected.shape.begin(), expected.shape.end());
  CHECK(r.shape == shape);
  check_close("loss", r.loss, expected.values, rtol, atol);
  // The upstream gradient w_out in the loss's storage (a [batch] loss is a column).
  cf::Matrix<T> w_out(r.loss.rows(), r.loss.cols());
  const auto& w = c.tensor("w_out").values;
  REQUIRE(static_cast<std::size_t>(w_out.size()) == w.size());
  for (Index k = 0; k < w_out.size(); ++k) w_out.data()[k] = static_cast<T>(w[static_cast<std::size_t>(k)]);
  check_close("d logits", r.gradient(w_out), values(c.tensor("grad/logits")), rtol, atol);
  if (shape.empty()) {
    CHECK(r.value() == r.loss(0, 0));
    const cf::Tensor3<T> g1 = r.gradient();
    const cf::Tensor3<T> gw = r.gradient(w_out);
    for (Index k = 0; k < g1.size(); ++k)
      CHECK(std::abs(double(gw.data()[k]) - double(g1.data()[k]) * double(w_out(0, 0))) <=
            4 * std::numeric_limits<T>::epsilon() * std::abs(double(gw.data()[k])) + 4 * std::numeric_limits<T>::min());
  }
}

TEST_CASE("sequence_loss: every reduction of TF 1.15 matches the PyTorch reference, loss and gradient",
          "[sequence_heads][sequence_loss]") {
  for (const char* name :
       {"seqloss_avg_avg", "seqloss_avg_t", "seqloss_avg_b", "seqloss_none", "seqloss_sum_sum", "seqloss_sum_t",
        "seqloss_sum_b", "seqloss_avg_t_sum_b", "seqloss_sum_t_avg_b", "seqloss_zero_weights", "seqloss_large_logits"})
    check_sequence_loss_case<double>(name, 1e-13, 1e-14);
  for (const char* name : {"seqloss_avg_avg", "seqloss_avg_t", "seqloss_none", "seqloss_large_logits"})
    check_sequence_loss_case<float>(name, 2e-5, 2e-6);
}

TEST_CASE("sequence_loss: padded steps contribute nothing, all-zero weights give 0 (div_no_nan)",
          "[sequence_heads][sequence_loss]") {
  cf::Rng rng(31);
  Ten logits = random_tensor<double>(2, 4, 3, rng, -2.0, 2.0);
  IdMatrix targets(2, 4);
  targets << 0, 1, 2, 1, 2, 2, 0, 0;
  Mat weights(2, 4);
  weights << 1, 1, 1, 0, 1, 1, 0, 0;
  const auto a = cf::sequence_loss(logits, targets, weights);
  // Whatever the padded steps' logits hold (NaN and infinity included), nothing changes.
  Ten poisoned = logits;
  for (Index k = 0; k < 3; ++k) {
    poisoned(0, 3, k) = std::numeric_limits<double>::quiet_NaN();
    poisoned(1, 2, k) = std::numeric_limits<double>::infinity();
    poisoned(1, 3, k) = 1e300;
  }
  const auto b = cf::sequence_loss(poisoned, targets, weights);
  CHECK(b.value() == a.value());
  const Ten ga = a.gradient(), gb = b.gradient();
  CHECK(max_diff(ga, gb) == 0.0);
  for (Index k = 0; k < 3; ++k) {
    CHECK(gb(0, 3, k) == 0.0);
    CHECK(gb(1, 2, k) == 0.0);
  }
  CHECK(b.crossent(0, 3) == 0.0);
  // The mean over the 5 real steps, by hand.
  double sum = 0;
  for (Index i = 0; i < 2; ++i)
    for (Index t = 0; t < 4; ++t)
      if (weights(i, t) != 0) {
        double mx = -1e300, z = 0;
        for (Index k = 0; k < 3; ++k) mx = std::max(mx, logits(i, t, k));
        for (Index k = 0; k < 3; ++k) z += std::exp(logits(i, t, k) - mx);
        sum += std::log(z) + mx - logits(i, t, targets(i, t));
      }
  CHECK(std::abs(a.value() - sum / 5) <= 1e-14);
  // All weights zero: the loss is 0 and so is the gradient, for every reduction.
  const Mat zero = Mat::Zero(2, 4);
  for (int mode = 0; mode < 6; ++mode) {
    cf::SequenceLossOptions o;
    o.average_across_timesteps = mode == 0 || mode == 1;
    o.average_across_batch = mode == 0 || mode == 2;
    o.sum_over_timesteps = mode == 3 || mode == 5;
    o.sum_over_batch = mode == 3 || mode == 4;
    const auto z = cf::sequence_loss(logits, targets, zero, o);
    CHECK(z.loss.isZero(0));
    CHECK(max_abs(z.gradient(cf::Matrix<double>::Ones(z.loss.rows(), z.loss.cols()))) == 0.0);
  }
}

TEST_CASE("sequence_loss: shapes, targets and options it refuses", "[sequence_heads][sequence_loss][errors]") {
  cf::Rng rng(32);
  const Ten logits = random_tensor<double>(2, 3, 4, rng);
  IdMatrix targets(2, 3);
  targets << 0, 1, 2, 3, 0, 1;
  const Mat w = Mat::Ones(2, 3);
  CHECK_NOTHROW(cf::sequence_loss(logits, targets, w));
  IdMatrix bad = targets;
  bad(1, 2) = 4;
  CHECK_THROWS_MATCHES(
      cf::sequence_loss(logits, bad, w), cf::ValueError,
      what_contains<cf::ValueError>("sequence_loss: targets[1, 2] = 4 is outside the valid range [0, 4)"));
  bad(1, 2) = -3;
  Mat padded = w;
  padded(1, 2) = 0;  // a padded step's target is checked too (as TF's kernel does)
  CHECK_THROWS_MATCHES(cf::sequence_loss(logits, bad, padded), cf::ValueError,
                       what_contains<cf::ValueError>("targets[1, 2] = -3"));
  CHECK_THROWS_MATCHES(cf::sequence_loss(logits, IdMatrix(IdMatrix::Zero(3, 2)), w), cf::ShapeError,
                       what_contains<cf::ShapeError>("targets are [3, 2], logits [2, 3, 4] need [2, 3]"));
  CHECK_THROWS_MATCHES(cf::sequence_loss(logits, targets, Mat(Mat::Ones(2, 2))), cf::ShapeError,
                       what_contains<cf::ShapeError>("weights are [2, 2], logits [2, 3, 4] need [2, 3]"));
  cf::SequenceLossOptions o;
  o.sum_over_timesteps = true;
  CHECK_THROWS_MATCHES(
      cf::sequence_loss(logits, targets, w, o), cf::ValueError,
      what_contains<cf::ValueError>("average_across_timesteps and sum_over_timesteps cannot both be set"));
  o = {};
  o.sum_over_batch = true;
  CHECK_THROWS_MATCHES(cf::sequence_loss(logits, targets, w, o), cf::ValueError,
                       what_contains<cf::ValueError>("average_across_batch and sum_over_batch"));
  o = {};
  o.average_across_batch = false;
  const auto per_example = cf::sequence_loss(logits, targets, w, o);
  CHECK(per_example.shape == std::vector<Index>{2});
  CHECK_THROWS_MATCHES(per_example.value(), cf::ValueError,
                       what_contains<cf::ValueError>("the loss has shape [2], not a scalar"));
  CHECK_THROWS_AS(per_example.gradient(), cf::ValueError);
  CHECK_THROWS_MATCHES(per_example.gradient(Mat::Ones(1, 2)), cf::ShapeError,
                       what_contains<cf::ShapeError>("d_loss is 1x2"));
}

// ---- central differences ----

TEST_CASE("sequence_heads gradcheck: sequence_loss (every reduction), per-step dense, embedding",
          "[sequence_heads][gradcheck]") {
  cf::Rng rng(41);
  const Index B = 3, time = 4, C = 5;
  Ten logits = random_tensor<double>(B, time, C, rng, -2.0, 2.0);
  IdMatrix targets(B, time);
  for (Index k = 0; k < targets.size(); ++k) targets.data()[k] = static_cast<int>(rng.below(C));
  Mat weights = random_matrix<double>(B, time, rng, 0.3, 1.5);
  weights(1, 3) = weights(1, 2) = 0;  // padded steps
  for (int mode = 0; mode < 9; ++mode) {
    cf::SequenceLossOptions o;
    o.average_across_timesteps = mode == 0 || mode == 1 || mode == 7;
    o.average_across_batch = mode == 0 || mode == 2 || mode == 8;
    o.sum_over_timesteps = mode == 4 || mode == 5 || mode == 8;
    o.sum_over_batch = mode == 4 || mode == 6 || mode == 7;
    const auto r = cf::sequence_loss(logits, targets, weights, o);
    const Mat w_out = random_matrix<double>(r.loss.rows(), r.loss.cols(), rng);
    const Ten g = r.gradient(w_out);
    GradCheck gc("sequence_loss mode " + std::to_string(mode));
    auto loss = [&] { return dot(cf::sequence_loss(logits, targets, weights, o).loss, w_out); };
    for (Index k = 0; k < logits.size(); ++k)
      gc.compare(indexed("d logits", k), g.data()[k], central_diff(logits.data()[k], loss));
    INFO(gc.summary());
    CHECK(gc.bad == 0);
  }

  cf::Dense<double> dense(3, 4, rng);
  dense.bias().value = random_matrix<double>(1, 4, rng);
  Ten x = random_tensor<double>(2, 3, 3, rng);
  const Ten wy = random_tensor<double>(2, 3, 4, rng);
  dense.zero_grad();
  const Ten dx = dense.backward(x, wy);
  GradCheck gd("dense on [batch, time, depth]");
  auto dense_loss = [&] { return dot(dense(x), wy); };
  for (Index k = 0; k < x.size(); ++k)
    gd.compare(indexed("d x", k), dx.data()[k], central_diff(x.data()[k], dense_loss));
  cf::VariableList<double> vars;
  vars.add(dense);
  for (auto& v : vars)
    for (Index k = 0; k < v.size(); ++k)
      gd.compare(indexed("d " + v.name, k), v.grad->data()[k], central_diff(v.value->data()[k], dense_loss));
  INFO(gd.summary());
  CHECK(gd.bad == 0);
  CHECK(gd.checked == x.size() + 3 * 4 + 4);
}

TEST_CASE("sequence_heads gradcheck: embedding -> stacked LSTM -> per-step dense -> sequence_loss",
          "[sequence_heads][gradcheck]") {
  // The graph of a character language model, with an initial state carried in (truncated BPTT).
  cf::Rng rng(42);
  const Index V = 5, D = 3, U = 4, B = 2, time = 3;
  cf::Embedding<double> emb(V, D, rng);
  std::vector<cf::BasicLSTMCell<double>> layers;
  layers.emplace_back(D, U, rng);
  layers.emplace_back(U, U, rng);
  cf::MultiRNNCell<double> multi(std::move(layers));
  cf::Dense<double> dense(U, V, rng);
  dense.bias().value = random_matrix<double>(1, V, rng);
  cf::VariableList<double> vars;
  vars.add(emb).add(multi, "rnn").add(dense);
  REQUIRE(vars[0].name == "embedding");
  REQUIRE(vars[1].name == "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel");
  IdMatrix inputs(B, time), targets(B, time);
  inputs << 0, 4, 4, 2, 1, 0;
  targets << 4, 4, 2, 1, 0, 3;
  Mat weights = Mat::Ones(B, time);
  weights(1, 2) = 0;
  auto s0 = multi.zero_state(B);
  for (auto& s : s0) {
    s.c() = random_matrix<double>(B, U, rng, -0.5, 0.5);
    s.h() = random_matrix<double>(B, U, rng, -0.5, 0.5);
  }
  const auto loss = [&] {
    const auto rnn = cf::dynamic_rnn(multi, emb(inputs), s0);
    return cf::sequence_loss(dense(rnn.outputs), targets, weights).value();
  };
  vars.zero_grad();
  const Ten x = emb(inputs);
  auto rnn = cf::dynamic_rnn(multi, x, s0);
  const auto xent = cf::sequence_loss(dense(rnn.outputs), targets, weights);
  const Ten d_outputs = dense.backward(rnn.outputs, xent.gradient());
  const auto g = cf::dynamic_rnn_backward(multi, rnn, &d_outputs);
  emb.backward(inputs, g.d_inputs);
  GradCheck gc("char model");
  for (auto& v : vars)
    for (Index k = 0; k < v.size(); ++k)
      gc.compare(indexed("d " + v.name, k), v.grad->data()[k], central_diff(v.value->data()[k], loss));
  for (std::size_t l = 0; l < s0.size(); ++l)
    for (Index k = 0; k < B * U; ++k) {
      gc.compare("d initial c", g.d_initial_state[l].c().data()[k], central_diff(s0[l].c().data()[k], loss));
      gc.compare("d initial h", g.d_initial_state[l].h().data()[k], central_diff(s0[l].h().data()[k], loss));
    }
  INFO(gc.summary());
  CHECK(gc.bad == 0);
  CHECK(gc.checked == vars.num_scalars() + 2 * 2 * B * U);
  // Rows of the table no input selects (id 3) get no gradient.
  CHECK(emb.params().grad.row(3).isZero(0));
  CHECK(!emb.params().grad.row(4).isZero(0));
}

}  // namespace test_sequence_heads
