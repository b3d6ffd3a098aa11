// Checkpoints (io/checkpoint.hpp): the byte layout of both format versions against an independent
// writer built from docs/checkpoint-format.md, which version is written when, bitwise round trips
// of a mixed model with Adam or GradientDescent state, resumed training equal to uninterrupted
// training, real version-1 files of cellflow 0.1 (tests/fixtures/checkpoint/) that still load and
// continue bitwise, every malformed-file and wrong-model error (with the model and optimizer
// unchanged afterwards, and a hint when only a scope prefix differs), and saves that fail
// without touching the old file. Files go to a fresh temporary directory per test case.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#define CELLFLOW_TEST_POSIX 1
#endif

#include "cellflow/cellflow.hpp"
#include "cellflow/detail/crc32.hpp"
#include "cellflow/io/checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace test_checkpoint {

namespace cf = cellflow;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using cf::Index;
using Bytes = std::vector<std::uint8_t>;

using cellflow_test::read_bytes;
using cellflow_test::TempDir;
using cellflow_test::write_bytes;

/// Runs `f`, which must throw an E whose message satisfies `matcher` (Catch2 v2's
/// REQUIRE_THROWS_MATCHES matches the exception object, not its message).
template <class E, class F, class M>
void require_error(F&& f, const M& matcher) {
  try {
    f();
  } catch (const E& e) {
    REQUIRE_THAT(std::string(e.what()), matcher);
    return;
  } catch (const std::exception& e) {
    FAIL("threw another exception type: " << e.what());
  }
  FAIL("did not throw");
}
#define REQUIRE_ERROR(expr, Type, matcher)               \
  do {                                                   \
    INFO(#expr);                                         \
    require_error<Type>([&] { (void)(expr); }, matcher); \
  } while (false)

template <class A, class B>
bool bitwise_equal(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(*a.data())) == 0;
}

// ---- an independent writer of the documented layout (docs/checkpoint-format.md) ----

struct Builder {
  Bytes b;
  void u32(std::uint32_t v) {
    for (int k = 0; k < 4; ++k) b.push_back(static_cast<std::uint8_t>((v >> (8 * k)) & 0xff));
  }
  void u64(std::uint64_t v) {
    for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>((v >> (8 * k)) & 0xff));
  }
  void raw(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
  void str(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }
  void f32(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    u32(u);
  }
  void f64(double x) {
    std::uint64_t u;
    std::memcpy(&u, &x, 8);
    u64(u);
  }
  template <class T>
  void scalar(T x) {
    if constexpr (sizeof(T) == 4)
      f32(x);
    else
      f64(x);
  }
  /// Header with version, scalar code and a size patched by finish().
  void header(std::uint32_t version, std::uint32_t scalar_code) {
    const std::uint8_t magic[8] = {0x89, 0x43, 0x46, 0x43, 0x4B, 0x50, 0x54, 0x0A};
    b.insert(b.end(), magic, magic + 8);
    u32(version);
    u32(scalar_code);
    u64(0);
  }
  std::size_t section(const std::string& tag) {
    raw(tag);
    u64(0);
    return b.size();
  }
  void end_section(std::size_t payload_start) {
    const std::uint64_t len = b.size() - payload_start;
    for (std::size_t k = 0; k < 8; ++k) b[payload_start - 8 + k] = static_cast<std::uint8_t>((len >> (8 * k)) & 0xff);
  }
  /// Patches the file size and appends the CRC-32 of everything before it.
  Bytes finish() {
    const std::uint64_t size = b.size() + 4;
    for (std::size_t k = 0; k < 8; ++k) b[16 + k] = static_cast<std::uint8_t>((size >> (8 * k)) & 0xff);
    u32(cf::detail::crc32(b.data(), b.size()));
    return b;
  }
};

/// Recomputes the CRC of a modified file (so that a test reaches the check after the checksum).
void reseal(Bytes& f) {
  const std::uint32_t crc = cf::detail::crc32(f.data(), f.size() - 4);
  for (std::size_t k = 0; k < 4; ++k) f[f.size() - 4 + k] = static_cast<std::uint8_t>((crc >> (8 * k)) & 0xff);
}

// ---- the model: a 2-layer MultiRNNCell (peephole LSTM with projection, GRU) + Dense ----

constexpr Index kDepth = 3, kTime = 5, kBatch = 4, kClasses = 3;

template <class T>
cf::LSTMOptions<T> lstm_options() {
  cf::LSTMOptions<T> o;
  o.use_peepholes = true;
  o.num_proj = 4;
  o.cell_clip = T(3);
  return o;
}

template <class T>
struct Model {
  explicit Model(std::uint64_t seed, Index dense_out = kClasses, const std::string& dense_name = "dense")
      : rng(seed),
        stack(cf::LSTMCell<T>(kDepth, 5, lstm_options<T>(), rng), cf::GRUCell<T>(4, 6, rng)),
        dense(6, dense_out, rng, dense_name) {
    vars.add(stack, "rnn").add(dense);
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  cf::Rng rng;
  cf::MultiRNNCell<T> stack;
  cf::Dense<T> dense;
  cf::VariableList<T> vars;
};

template <class T>
struct Batch {
  cf::Tensor3<T> x;
  std::vector<int> y;
};

template <class T>
std::vector<Batch<T>> make_batches(int n, std::uint64_t seed) {
  cf::Rng rng(seed);
  std::vector<Batch<T>> out;
  for (int k = 0; k < n; ++k) {
    Batch<T> b{cf::Tensor3<T>(kBatch, kTime, kDepth), std::vector<int>(static_cast<std::size_t>(kBatch))};
    for (Index i = 0; i < b.x.size(); ++i) b.x.data()[i] = rng.uniform<T>(T(-1), T(1));
    for (auto& y : b.y) y = static_cast<int>(rng.below(kClasses));
    out.push_back(std::move(b));
  }
  return out;
}

/// One training step as the seed program does it: dynamic_rnn, Dense on the top layer's
/// final h, sparse softmax cross-entropy, backward, Adam.
template <class T>
void train_step(Model<T>& m, cf::AdamOptimizer<T>& adam, const Batch<T>& b) {
  m.vars.zero_grad();
  auto r = cf::dynamic_rnn(m.stack, b.x);
  const cf::Matrix<T> h = r.final_state.back().h();
  const cf::Matrix<T> logits = m.dense(h);
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(b.y, logits);
  auto d_state = m.stack.zero_state(h.rows());
  d_state.back().h() = m.dense.backward(h, xent.mean_gradient());
  cf::dynamic_rnn_backward(m.stack, r, nullptr, &d_state);
  adam.apply_gradients(m.vars);
}

/// Everything of an AdamOptimizer that a load could change, as it holds it (positional slots).
template <class T>
struct AdamSnapshot {
  std::vector<T> scalars;  // learning rate, beta1, beta2, epsilon, beta1_power, beta2_power
  long long step = 0;
  std::vector<cf::Matrix<T>> m, v;
};

template <class T>
AdamSnapshot<T> adam_snapshot(const cf::AdamOptimizer<T>& adam) {
  return AdamSnapshot<T>{
      {adam.learning_rate(), adam.beta1(), adam.beta2(), adam.epsilon(), adam.beta1_power(), adam.beta2_power()},
      adam.step(),
      adam.m_slots(),
      adam.v_slots()};
}

template <class T>
bool same_adam(const AdamSnapshot<T>& a, const AdamSnapshot<T>& b) {
  if (a.step != b.step || a.m.size() != b.m.size() || a.v.size() != b.v.size() ||
      std::memcmp(a.scalars.data(), b.scalars.data(), a.scalars.size() * sizeof(T)) != 0)
    return false;
  for (std::size_t k = 0; k < a.m.size(); ++k)
    if (!bitwise_equal(a.m[k], b.m[k]) || !bitwise_equal(a.v[k], b.v[k])) return false;
  return true;
}

/// Everything a load could change: every variable's value and the whole Adam state.
template <class T>
struct Snapshot {
  std::vector<cf::Matrix<T>> values;
  AdamSnapshot<T> adam;
};

template <class T>
Snapshot<T> snapshot(const cf::VariableList<T>& vars, const cf::AdamOptimizer<T>& adam) {
  Snapshot<T> s;
  for (const auto& v : vars) s.values.push_back(*v.value);
  s.adam = adam_snapshot(adam);
  return s;
}

template <class T>
bool same(const Snapshot<T>& s, const cf::VariableList<T>& vars, const cf::AdamOptimizer<T>& adam) {
  if (s.values.size() != vars.size()) return false;
  for (std::size_t k = 0; k < vars.size(); ++k)
    if (!bitwise_equal(s.values[k], *vars[k].value)) return false;
  return same_adam(s.adam, adam_snapshot(adam));
}

/// A model trained a few steps and its optimizer, for the error tests.
template <class T>
struct Trained {
  Model<T> model{11};
  cf::AdamOptimizer<T> adam{T(0.01)};
  Trained() {
    for (const auto& b : make_batches<T>(2, 5)) train_step(model, adam, b);
  }
};

std::string scalar_name(float) { return "f32"; }
std::string scalar_name(double) { return "f64"; }

// ---------------------------------------------------------------------------------------------

TEST_CASE("crc32 matches the standard check values", "[checkpoint]") {
  const auto crc = [](const std::string& s) {
    return cf::detail::crc32(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  CHECK(crc("") == 0x00000000u);
  CHECK(crc("123456789") == 0xCBF43926u);
  CHECK(crc("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
  CHECK(crc("a") == 0xE8B7BE43u);
  // Continuing from a previous CRC equals one pass over the concatenation.
  const std::string a = "The quick brown fox ", b = "jumps over the lazy dog";
  CHECK(cf::detail::crc32(reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), crc(a)) == 0x414FA339u);
}

TEST_CASE("the example of docs/checkpoint-format.md, byte for byte", "[checkpoint]") {
  // From the document; its CRC-32 was computed by Python's zlib.crc32 (an independent CRC).
  const Bytes expected{0x89, 0x43, 0x46, 0x43, 0x4b, 0x50, 0x54, 0x0a, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                       0x00, 0x49, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0x4f, 0x44, 0x4c, 0x21, 0x00,
                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                       0x00, 0x00, 0x00, 0x62, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                       0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0xef, 0x06, 0x50, 0x10};
  cf::Parameter<float> b(2);
  b.value << 1.0f, -2.0f;
  cf::VariableList<float> vars;
  vars.add_one("b", b);
  CHECK(cf::io::checkpoint_bytes(vars) == expected);
  const cf::io::CheckpointInfo info = cf::io::parse_checkpoint(expected.data(), expected.size(), "doc");
  CHECK(info.file_size == 73);
  CHECK(info.scalar_type == "f32");
  REQUIRE(info.variables.size() == 1);
  CHECK(info.variables[0].shape == std::vector<Index>{2});
}

TEST_CASE("the version-2 example of docs/checkpoint-format.md, byte for byte", "[checkpoint]") {
  // From the document; its CRC-32 was computed by Python's zlib.crc32.
  const Bytes expected{
      0x89, 0x43, 0x46, 0x43, 0x4b, 0x50, 0x54, 0x0a, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x96, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x4d, 0x4f, 0x44, 0x4c, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x62, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x4f, 0x50, 0x54, 0x4d, 0x41, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x67, 0x72, 0x61, 0x64, 0x69, 0x65, 0x6e, 0x74, 0x5f, 0x64,
      0x65, 0x73, 0x63, 0x65, 0x6e, 0x74, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x6c,
      0x65, 0x61, 0x72, 0x6e, 0x69, 0x6e, 0x67, 0x5f, 0x72, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8d, 0x1e, 0xa5, 0xcd};
  cf::Parameter<float> b(2);
  b.value << 1.0f, -2.0f;
  cf::VariableList<float> vars;
  vars.add_one("b", b);
  cf::GradientDescentOptimizer<float> gd(0.5);
  CHECK(cf::io::checkpoint_bytes(vars, &gd) == expected);
  const cf::io::CheckpointInfo info = cf::io::parse_checkpoint(expected.data(), expected.size(), "doc");
  CHECK(info.version == 2);
  CHECK(info.file_size == 150);
  CHECK(info.optimizer == "gradient_descent");
  CHECK(info.optimizer_scalars == std::map<std::string, double>{{"learning_rate", 0.5}});
}

TEMPLATE_TEST_CASE("checkpoint bytes follow the documented layout exactly", "[checkpoint]", float, double) {
  using T = TestType;
  cf::Parameter<T> kernel(2, 3), bias(3);
  for (Index i = 0; i < 6; ++i) kernel.value.data()[i] = T(0.25) * T(i) - T(1);
  bias.value << T(1.5), -T(0), std::numeric_limits<T>::infinity();
  cf::VariableList<T> vars;
  vars.add_one("layer/kernel", kernel).add_one("layer/bias", bias);
  const std::uint32_t code = sizeof(T) == 4 ? 1 : 2;

  SECTION("variables and metadata") {
    Builder e;
    e.header(1, code);
    std::size_t s = e.section("MODL");
    e.u64(2);
    e.str("layer/kernel");
    e.u32(2);
    e.u64(2);
    e.u64(3);
    for (Index i = 0; i < 6; ++i) e.scalar<T>(kernel.value.data()[i]);
    e.str("layer/bias");
    e.u32(1);
    e.u64(3);
    for (Index i = 0; i < 3; ++i) e.scalar<T>(bias.value.data()[i]);
    e.end_section(s);
    s = e.section("META");
    e.u64(2);
    e.str("cell");  // sorted by key
    e.str("gru");
    e.str("units");
    e.str("150");
    e.end_section(s);
    const Bytes expected = e.finish();
    const Bytes got = cf::io::checkpoint_bytes(vars, nullptr, {{"units", "150"}, {"cell", "gru"}});
    REQUIRE(got == expected);
    // The sizes the format document states: 24-byte header, 12-byte section headers, 4-byte CRC.
    CHECK(got.size() == 24 + (12 + 8 + (4 + 12 + 4 + 16 + 6 * sizeof(T)) + (4 + 10 + 4 + 8 + 3 * sizeof(T))) +
                            (12 + 8 + (4 + 4 + 4 + 3) + (4 + 5 + 4 + 3)) + 4);
  }

  SECTION("with Adam state after one step") {
    cf::AdamOptimizer<T> adam(T(0.125), T(0.5), T(0.75), T(0.0625));
    kernel.grad.setConstant(T(2));
    bias.grad.setConstant(T(-1));
    adam.apply_gradients(vars);
    Builder e;
    e.header(1, code);
    std::size_t s = e.section("MODL");
    e.u64(2);
    e.str("layer/kernel");
    e.u32(2);
    e.u64(2);
    e.u64(3);
    for (Index i = 0; i < 6; ++i) e.scalar<T>(kernel.value.data()[i]);
    e.str("layer/bias");
    e.u32(1);
    e.u64(3);
    for (Index i = 0; i < 3; ++i) e.scalar<T>(bias.value.data()[i]);
    e.end_section(s);
    s = e.section("OPTM");
    e.str("adam");
    e.scalar<T>(T(0.125));
    e.scalar<T>(T(0.5));
    e.scalar<T>(T(0.75));
    e.scalar<T>(T(0.0625));
    e.scalar<T>(T(0.25));    // beta1_power after one step: 0.5^2
    e.scalar<T>(T(0.5625));  // 0.75^2
    e.u64(1);
    e.u64(2);
    e.str("layer/kernel");
    for (int i = 0; i < 6; ++i) e.scalar<T>(T(1));  // m = (1 - 0.5) * 2
    for (int i = 0; i < 6; ++i) e.scalar<T>(T(1));  // v = (1 - 0.75) * 4
    e.str("layer/bias");
    for (int i = 0; i < 3; ++i) e.scalar<T>(T(-0.5));
    for (int i = 0; i < 3; ++i) e.scalar<T>(T(0.25));
    e.end_section(s);
    REQUIRE(cf::io::checkpoint_bytes(vars, &adam) == e.finish());
  }
}

TEMPLATE_TEST_CASE("a checkpoint round-trips a mixed model and its Adam state bitwise", "[checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  Model<T> a(1);
  cf::AdamOptimizer<T> adam_a(T(0.01), T(0.8), T(0.99), T(1e-6));
  for (const auto& b : make_batches<T>(3, 100)) train_step(a, adam_a, b);
  REQUIRE(adam_a.step() == 3);
  const cf::io::CheckpointMetadata meta{{"cell", "peephole+gru"},
                                        {"layers", "2"},
                                        {"units", "5,6"},
                                        {"bytes", std::string("a\0b\xff", 4)},
                                        {"empty", ""}};
  cf::io::save_checkpoint(path, a.vars, &adam_a, meta);
  CHECK(dir.entries() == std::vector<std::string>{"model.ckpt"});  // no temporary file left

  Model<T> b(2);  // another seed: every weight differs before the load
  cf::AdamOptimizer<T> adam_b(T(0.5));
  for (std::size_t k = 0; k < a.vars.size(); ++k) REQUIRE_FALSE(bitwise_equal(*a.vars[k].value, *b.vars[k].value));
  const cf::io::CheckpointInfo loaded = cf::io::load_checkpoint(path, b.vars, &adam_b);
  CHECK(same(snapshot(a.vars, adam_a), b.vars, adam_b));
  CHECK(adam_b.learning_rate() == T(0.01));
  CHECK(adam_b.beta1() == T(0.8));
  CHECK(adam_b.beta2() == T(0.99));
  CHECK(adam_b.epsilon() == T(1e-6));
  CHECK(loaded.metadata == meta);

  SECTION("read_checkpoint_info reports names, shapes, optimizer and metadata") {
    const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
    CHECK(info.version == 1);
    CHECK(info.scalar_type == scalar_name(T()));
    CHECK(info.file_size == fs::file_size(path));
    CHECK(info.has_optimizer);
    CHECK(info.optimizer == "adam");
    CHECK(info.optimizer_step == 3);
    CHECK(info.metadata == meta);
    const std::vector<std::pair<std::string, std::vector<Index>>> expected{
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/kernel", {3 + 4, 4 * 5}},
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/bias", {4 * 5}},
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/w_f_diag", {5}},
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/w_i_diag", {5}},
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/w_o_diag", {5}},
        {"rnn/multi_rnn_cell/cell_0/lstm_cell/projection/kernel", {5, 4}},
        {"rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel", {4 + 6, 2 * 6}},
        {"rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias", {2 * 6}},
        {"rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel", {4 + 6, 6}},
        {"rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias", {6}},
        {"dense/kernel", {6, 3}},
        {"dense/bias", {3}}};
    REQUIRE(info.variables.size() == expected.size());
    for (std::size_t k = 0; k < expected.size(); ++k) {
      CHECK(info.variables[k].name == expected[k].first);
      CHECK(info.variables[k].shape == expected[k].second);
      CHECK(info.variables[k].name == a.vars[k].name);
    }
    // parse_checkpoint on the bytes says the same.
    const Bytes bytes = read_bytes(path);
    const cf::io::CheckpointInfo parsed = cf::io::parse_checkpoint(bytes.data(), bytes.size(), "memory");
    CHECK(parsed.variables.size() == info.variables.size());
    CHECK(parsed.metadata == meta);
  }

  SECTION("saving is deterministic and equals checkpoint_bytes") {
    const std::string again = dir.file("again.ckpt");
    cf::io::save_checkpoint(again, b.vars, &adam_b, meta);
    CHECK(read_bytes(again) == read_bytes(path));
    CHECK(cf::io::checkpoint_bytes(a.vars, &adam_a, meta) == read_bytes(path));
  }

  SECTION("saving over an existing file replaces it") {
    cf::io::save_checkpoint(path, a.vars);  // now without optimizer and metadata
    const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
    CHECK_FALSE(info.has_optimizer);
    CHECK(info.optimizer.empty());
    CHECK(info.metadata.empty());
    CHECK(dir.entries() == std::vector<std::string>{"model.ckpt"});
  }

  SECTION("variables are matched by name, whatever the list order") {
    Model<T> c(3);
    cf::VariableList<T> reordered;
    reordered.add(c.dense).add(c.stack, "rnn");
    cf::AdamOptimizer<T> adam_c;
    cf::io::load_checkpoint(path, reordered, &adam_c);
    for (const auto& v : a.vars) CHECK(bitwise_equal(*v.value, *reordered.at(v.name).value));
    // Slots follow their variables into the new order.
    for (std::size_t k = 0; k < reordered.size(); ++k) {
      std::size_t j = 0;
      while (a.vars[j].name != reordered[k].name) ++j;
      CHECK(bitwise_equal(adam_c.m_slots()[k], adam_a.m_slots()[j]));
      CHECK(bitwise_equal(adam_c.v_slots()[k], adam_a.v_slots()[j]));
    }
    // ... and training continues with the reordered list exactly as with the original one.
    const auto batch = make_batches<T>(1, 77)[0];
    train_step(a, adam_a, batch);
    c.vars.zero_grad();
    {
      auto r = cf::dynamic_rnn(c.stack, batch.x);
      const cf::Matrix<T> h = r.final_state.back().h();
      const auto xent = cf::sparse_softmax_cross_entropy_with_logits(batch.y, c.dense(h));
      auto d_state = c.stack.zero_state(h.rows());
      d_state.back().h() = c.dense.backward(h, xent.mean_gradient());
      cf::dynamic_rnn_backward(c.stack, r, nullptr, &d_state);
    }
    adam_c.apply_gradients(reordered);
    for (const auto& v : a.vars) CHECK(bitwise_equal(*v.value, *reordered.at(v.name).value));
  }

  SECTION("loading without an optimizer takes the variables only") {
    Model<T> c(4);
    cf::io::load_checkpoint(path, c.vars);
    for (std::size_t k = 0; k < a.vars.size(); ++k) CHECK(bitwise_equal(*a.vars[k].value, *c.vars[k].value));
  }
}

TEMPLATE_TEST_CASE("the state of an Adam that has not stepped round-trips too", "[checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("fresh.ckpt");
  Model<T> a(1);
  cf::AdamOptimizer<T> fresh(T(0.02));
  cf::io::save_checkpoint(path, a.vars, &fresh);
  CHECK(cf::io::read_checkpoint_info(path).optimizer_step == 0);

  // Load into an optimizer that has stepped: it becomes a fresh one again.
  Model<T> b(2);
  cf::AdamOptimizer<T> used(T(0.3));
  train_step(b, used, make_batches<T>(1, 9)[0]);
  cf::io::load_checkpoint(path, b.vars, &used);
  CHECK(used.step() == 0);
  CHECK(used.m_slots().empty());
  CHECK(used.beta1_power() == T(0.9));
  // ... and then trains exactly like the fresh optimizer.
  const auto batch = make_batches<T>(1, 10)[0];
  train_step(a, fresh, batch);
  train_step(b, used, batch);
  CHECK(same(snapshot(a.vars, fresh), b.vars, used));
}

TEMPLATE_TEST_CASE("resumed training equals uninterrupted training bitwise", "[checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("resume.ckpt");
  const auto batches = make_batches<T>(7, 42);
  const std::size_t N = 4;  // steps before the checkpoint; the other 3 after it

  Model<T> a(1);
  cf::AdamOptimizer<T> adam_a(T(0.01));
  for (std::size_t k = 0; k < N; ++k) train_step(a, adam_a, batches[k]);
  cf::io::save_checkpoint(path, a.vars, &adam_a, {{"epoch", "4"}});
  for (std::size_t k = N; k < batches.size(); ++k) train_step(a, adam_a, batches[k]);

  Model<T> b(777);  // a different initialisation ...
  cf::AdamOptimizer<T> adam_b(T(0.01));
  cf::io::load_checkpoint(path, b.vars, &adam_b);  // ... replaced by the checkpoint
  for (std::size_t k = N; k < batches.size(); ++k) train_step(b, adam_b, batches[k]);

  REQUIRE(adam_b.step() == static_cast<long long>(batches.size()));
  for (std::size_t k = 0; k < a.vars.size(); ++k) {
    INFO(a.vars[k].name);
    CHECK(bitwise_equal(*a.vars[k].value, *b.vars[k].value));
  }
  CHECK(same(snapshot(a.vars, adam_a), b.vars, adam_b));

  // The test can fail: without the optimizer state the continuation differs.
  Model<T> c(777);
  cf::AdamOptimizer<T> adam_c(T(0.01));
  cf::io::load_checkpoint(path, c.vars);
  for (std::size_t k = N; k < batches.size(); ++k) train_step(c, adam_c, batches[k]);
  CHECK_FALSE(bitwise_equal(*a.vars[0].value, *c.vars[0].value));
}

TEMPLATE_TEST_CASE("a malformed checkpoint file is refused and changes nothing", "[checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  Trained<T> src;
  const std::string good = dir.file("good.ckpt");
  cf::io::save_checkpoint(good, src.model.vars, &src.adam, {{"cell", "mixed"}});
  const Bytes bytes = read_bytes(good);
  REQUIRE(bytes.size() > 1000);

  Model<T> m(99);
  cf::AdamOptimizer<T> adam(T(0.001));
  train_step(m, adam, make_batches<T>(1, 3)[0]);
  const Snapshot<T> before = snapshot(m.vars, adam);
  const std::string bad = dir.file("bad.ckpt");
  const auto refuse = [&](const Bytes& content, const std::string& what) {
    write_bytes(bad, content);
    REQUIRE_ERROR(cf::io::load_checkpoint(bad, m.vars, &adam), cf::IOError,
                  Contains("load_checkpoint: '" + bad + "': ") && Contains(what));
    REQUIRE(same(before, m.vars, adam));
  };

  SECTION("every truncation") {
    // Every prefix in memory, a dense sample through files.
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO("prefix of " << n << " bytes");
      const std::string what = n == 0   ? "the file is empty"
                               : n < 24 ? "truncated header: expected at least 24 bytes, found " + std::to_string(n)
                                        : "truncated: the header declares " + std::to_string(bytes.size()) +
                                              " bytes, found " + std::to_string(n);
      REQUIRE_ERROR(cf::io::parse_checkpoint(bytes.data(), n, "prefix"), cf::IOError,
                    Contains("parse_checkpoint: 'prefix': " + what));
    }
    for (std::size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 37)) {
      INFO("prefix of " << n << " bytes");
      const std::string what = n == 0   ? "the file is empty"
                               : n < 24 ? "truncated header"
                                        : "truncated: the header declares " + std::to_string(bytes.size()) +
                                              " bytes, the file has " + std::to_string(n);
      refuse(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)), what);
    }
  }

  SECTION("trailing bytes") {
    Bytes longer = bytes;
    longer.push_back(0);
    refuse(longer, "trailing bytes: the header declares " + std::to_string(bytes.size()) + " bytes, the file has " +
                       std::to_string(bytes.size() + 1) + " (1 extra)");
  }

  SECTION("a changed byte anywhere") {
    for (std::size_t pos = 0; pos < bytes.size(); ++pos) {
      for (const std::uint8_t mask : {std::uint8_t(0x01), std::uint8_t(0x80), std::uint8_t(0xff)}) {
        Bytes f = bytes;
        f[pos] ^= mask;
        INFO("byte " << pos << " ^ " << int(mask));
        // The header is checked field by field; everything after it by the CRC-32.
        const std::string what = pos < 8    ? "wrong magic bytes"
                                 : pos < 12 ? "format version"
                                 : pos < 16 ? "unknown scalar type code"
                                 : pos < 24 ? ""
                                            : "checksum mismatch";
        REQUIRE_ERROR(cf::io::parse_checkpoint(f.data(), f.size(), "flip"), cf::IOError,
                      Contains("parse_checkpoint: 'flip': ") && Contains(what));
        if (pos % 61 == 0 && mask == 0x80) refuse(f, what);
      }
    }
  }

  SECTION("wrong magic") {
    Bytes f = bytes;
    const std::uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::copy(png, png + 8, f.begin());
    refuse(
        f,
        "wrong magic bytes: expected \\x89CFCKPT\\x0a, found \\x89PNG\\x0d\\x0a\\x1a\\x0a; not a cellflow checkpoint");
    refuse(Bytes{'h', 'i', '\n'}, "wrong magic bytes");
  }

  SECTION("a future or invalid format version") {
    Bytes f = bytes;
    f[8] = 3;
    reseal(f);
    refuse(f, "format version 3 (header bytes 8 to 11) is newer than this cellflow reads (versions 1 to 2)");
    // A version-1 file relabelled as version 2: its Adam section is not the generic layout.
    f[8] = 2;
    reseal(f);
    refuse(f, "section OPTM: the scalar count ");
    f[8] = 0;
    reseal(f);
    refuse(f, "invalid format version 0");
  }

  SECTION("an unknown scalar type code") {
    Bytes f = bytes;
    f[12] = 3;
    reseal(f);
    refuse(f, "unknown scalar type code 3 (header bytes 12 to 15): expected 1 (f32) or 2 (f64)");
  }

  SECTION("a directory, a missing file, an empty path") {
    REQUIRE_ERROR(cf::io::load_checkpoint(dir.str(), m.vars, &adam), cf::IOError,
                  Contains("load_checkpoint: '" + dir.str() + "': is a directory, not a checkpoint file"));
    const std::string missing = dir.file("missing.ckpt");
    REQUIRE_ERROR(cf::io::load_checkpoint(missing, m.vars, &adam), cf::IOError,
                  Contains("load_checkpoint: '" + missing + "': cannot open for reading: No such file"));
    REQUIRE_ERROR(cf::io::read_checkpoint_info(missing), cf::IOError,
                  Contains("read_checkpoint_info: '" + missing + "': cannot open for reading"));
    REQUIRE_ERROR(cf::io::load_checkpoint("", m.vars), cf::IOError, Contains("the path is empty"));
    REQUIRE(same(before, m.vars, adam));
  }
}

TEMPLATE_TEST_CASE("crafted checkpoints with a valid checksum are refused without large allocations", "[checkpoint]",
                   float, double) {
  using T = TestType;
  const std::uint32_t code = sizeof(T) == 4 ? 1 : 2;
  // A valid file: one variable "v" of shape [2], optionally more sections.
  const auto model_section = [&](Builder& e) {
    const std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(1);
    e.u64(2);
    e.scalar<T>(T(1));
    e.scalar<T>(T(2));
    e.end_section(s);
  };
  const auto parse = [](const Bytes& f) { return cf::io::parse_checkpoint(f.data(), f.size(), "crafted"); };
  const auto refused = [&](const Bytes& f, const std::string& what) {
    REQUIRE_ERROR(parse(f), cf::IOError, Contains("parse_checkpoint: 'crafted': ") && Contains(what));
  };

  SECTION("the baseline parses") {
    Builder e;
    e.header(1, code);
    model_section(e);
    const cf::io::CheckpointInfo info = parse(e.finish());
    REQUIRE(info.variables.size() == 1);
    CHECK(info.variables[0].name == "v");
    CHECK(info.variables[0].shape == std::vector<Index>{2});
  }

  SECTION("2^40 variables") {
    Builder e;
    e.header(1, code);
    const std::size_t s = e.section("MODL");
    e.u64(std::uint64_t(1) << 40);
    e.str("v");
    e.end_section(s);
    refused(e.finish(), "section MODL: the variable count 1099511627776 at byte offset 36 cannot fit in the 5 bytes");
  }

  SECTION("a dimension of 2^62") {
    Builder e;
    e.header(1, code);
    const std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(2);
    e.u64(1);
    e.u64(std::uint64_t(1) << 62);
    e.scalar<T>(T(1));
    e.end_section(s);
    refused(e.finish(),
            "section MODL: variable 0 ('v') dimension 1 = 4611686018427387904 at byte offset 61 makes "
            "more values than the 1 that the remaining bytes can hold");
  }

  SECTION("dimensions whose product overflows 64 bits") {
    Builder e;
    e.header(1, code);
    const std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(4);
    for (int k = 0; k < 4; ++k) e.u64(std::uint64_t(1) << 16);  // 2^64 in all
    for (int k = 0; k < 70000; ++k) e.scalar<T>(T(0));
    e.end_section(s);
    refused(e.finish(), "variable 0 ('v') dimension 1 = 65536 at byte offset 61");
  }

  SECTION("values missing from the section") {
    Builder e;
    e.header(1, code);
    const std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(1);
    e.u64(3);
    e.scalar<T>(T(1));
    e.end_section(s);
    refused(e.finish(), "variable 0 ('v') dimension 0 = 3");
  }

  SECTION("a rank above 8, a huge or empty name, a repeated name") {
    Builder e;
    e.header(1, code);
    std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(9);
    for (int k = 0; k < 9; ++k) e.u64(1);
    e.scalar<T>(T(1));
    e.end_section(s);
    refused(e.finish(), "variable 0 ('v') has rank 9 at byte offset 49, more than the 8 a checkpoint allows");

    Builder h;
    h.header(1, code);
    s = h.section("MODL");
    h.u64(1);
    h.u32(0xffffffffu);
    h.raw("v12345678");
    h.end_section(s);
    refused(h.finish(),
            "section MODL: variable 0 name at byte offset 48 needs 4294967295 bytes, only 9 remain in the section");

    Builder z;
    z.header(1, code);
    s = z.section("MODL");
    z.u64(1);
    z.str("");
    z.u32(0);
    z.scalar<T>(T(1));
    z.end_section(s);
    refused(z.finish(), "section MODL: variable 0 name at byte offset 44 is empty");

    Builder d;
    d.header(1, code);
    s = d.section("MODL");
    d.u64(2);
    for (int k = 0; k < 2; ++k) {
      d.str("w");
      d.u32(0);  // a scalar: one value
      d.scalar<T>(T(k));
    }
    d.end_section(s);
    refused(d.finish(), "variable 1 ('w') at byte offset " + std::to_string(44 + 4 + 1 + 4 + sizeof(T)) +
                            " repeats the name of variable 0");
  }

  SECTION("section structure") {
    Builder big;
    big.header(1, code);
    big.raw("MODL");
    big.u64(std::uint64_t(1) << 60);
    big.u64(0);
    refused(big.finish(),
            "section 'MODL' at byte offset 24 declares 1152921504606846976 payload bytes, only 8 remain before the "
            "checksum");

    Builder first;
    first.header(1, code);
    std::size_t s = first.section("META");
    first.u64(0);
    first.end_section(s);
    model_section(first);
    refused(first.finish(), "the first section is 'META' at byte offset 24, expected 'MODL'");

    Builder twice;
    twice.header(1, code);
    model_section(twice);
    model_section(twice);
    refused(twice.finish(), "section 'MODL' at byte offset " + std::to_string(24 + 12 + 8 + 5 + 4 + 8 + 2 * sizeof(T)) +
                                " appears twice");

    Builder unread;
    unread.header(1, code);
    s = unread.section("MODL");
    unread.u64(0);
    unread.u32(7);
    unread.end_section(s);
    refused(unread.finish(), "section 'MODL' at byte offset 24 has 4 unread bytes at its end (from byte offset 44)");

    Builder critical;
    critical.header(1, code);
    model_section(critical);
    s = critical.section("ZZZZ");
    critical.u64(5);
    critical.end_section(s);
    refused(critical.finish(), "unknown critical section 'ZZZZ'");

    Builder partial;  // fewer than 12 bytes left for a section header
    partial.header(1, code);
    model_section(partial);
    partial.raw("ME");
    refused(partial.finish(), "section header: the section tag at byte offset " +
                                  std::to_string(24 + 12 + 8 + 5 + 4 + 8 + 2 * sizeof(T)) +
                                  " needs 4 bytes, only 2 remain before the checksum");

    Builder ancillary;  // a lowercase first letter: skipped by this reader
    ancillary.header(1, code);
    model_section(ancillary);
    s = ancillary.section("zzzz");
    ancillary.u64(5);
    ancillary.end_section(s);
    s = ancillary.section("META");
    ancillary.u64(1);
    ancillary.str("k");
    ancillary.str("v");
    ancillary.end_section(s);
    const cf::io::CheckpointInfo info = parse(ancillary.finish());
    CHECK(info.metadata == cf::io::CheckpointMetadata{{"k", "v"}});
  }

  SECTION("metadata") {
    Builder e;
    e.header(1, code);
    model_section(e);
    std::size_t s = e.section("META");
    e.u64(std::uint64_t(1) << 40);
    e.end_section(s);
    refused(e.finish(), "section META: the entry count 1099511627776");

    Builder d;
    d.header(1, code);
    model_section(d);
    s = d.section("META");
    d.u64(2);
    for (int k = 0; k < 2; ++k) {
      d.str("k");
      d.str(std::to_string(k));
    }
    d.end_section(s);
    refused(d.finish(), "repeats the key 'k'");
  }

  SECTION("optimizer section") {
    // kind, 6 hyper-parameters, step, slot count, slots
    const auto optimizer = [&](const std::string& kind, std::vector<T> hyper, std::uint64_t step, std::uint64_t slots,
                               const std::string& slot_name, T v0) {
      Builder e;
      e.header(1, code);
      model_section(e);
      const std::size_t s = e.section("OPTM");
      e.str(kind);
      for (T h : hyper) e.scalar<T>(h);
      e.u64(step);
      e.u64(slots);
      for (std::uint64_t k = 0; k < slots; ++k) {
        e.str(slot_name);
        e.scalar<T>(T(0));
        e.scalar<T>(T(0));
        e.scalar<T>(v0);
        e.scalar<T>(T(0));
      }
      e.end_section(s);
      return e.finish();
    };
    const std::vector<T> ok{T(0.001), T(0.9), T(0.999), T(1e-8), T(0.81), T(0.998001)};
    const cf::io::CheckpointInfo info = parse(optimizer("adam", ok, 1, 1, "v", T(0)));
    CHECK(info.has_optimizer);
    CHECK(info.optimizer_step == 1);

    refused(optimizer("sgd", ok, 1, 1, "v", T(0)), "optimizer kind 'sgd' at byte offset");
    refused(optimizer("adam", ok, 1, 2, "v", T(0)), "the slot count 2");
    refused(optimizer("adam", ok, 3, 0, "v", T(0)), "no slots");
    refused(optimizer("adam", ok, std::uint64_t(1) << 63, 1, "v", T(0)), "the step 9223372036854775808");
    refused(optimizer("adam", ok, 1, 1, "w", T(0)), "slot 0 at byte offset");
    refused(optimizer("adam", ok, 1, 1, "v", T(-1)), "slot 0 ('v') v[0] = -1");
    auto bad = ok;
    bad[1] = T(1);
    refused(optimizer("adam", bad, 1, 1, "v", T(0)), "beta1 = 1 and beta2 = 0.999");
    bad = ok;
    bad[3] = T(-1);
    refused(optimizer("adam", bad, 1, 1, "v", T(0)), "epsilon = -1");
    bad = ok;
    bad[5] = T(1);
    refused(optimizer("adam", bad, 1, 1, "v", T(0)), "beta2_power = 1 at byte offset");
  }

  SECTION("a null pointer") {
    REQUIRE_ERROR(cf::io::parse_checkpoint(nullptr, 10, "null"), cf::IOError, Contains("null data pointer"));
    REQUIRE_ERROR(cf::io::parse_checkpoint(nullptr, 0, "null"), cf::IOError, Contains("the file is empty"));
  }
}

TEMPLATE_TEST_CASE("randomly corrupted checkpoints with a resealed checksum parse or throw IOError", "[checkpoint]",
                   float, double) {
  using T = TestType;
  Trained<T> src;
  const Bytes good = cf::io::checkpoint_bytes(src.model.vars, &src.adam, {{"cell", "mixed"}, {"units", "5"}});
  std::mt19937_64 gen(12345);
  int parsed = 0, refused = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    Bytes f = good;
    const int changes = 1 + static_cast<int>(gen() % 4);
    for (int c = 0; c < changes; ++c) {
      // Mostly the structural bytes near the start of sections (counts, lengths, ranks, dims).
      const std::size_t pos = 24 + static_cast<std::size_t>(gen() % (iter % 2 ? 200 : f.size() - 28));
      f[pos] = static_cast<std::uint8_t>(gen());
    }
    reseal(f);
    try {
      const cf::io::CheckpointInfo info = cf::io::parse_checkpoint(f.data(), f.size(), "fuzz");
      CHECK(info.variables.size() <= f.size());
      ++parsed;
    } catch (const cf::IOError& e) {
      REQUIRE_THAT(std::string(e.what()), Contains("parse_checkpoint: 'fuzz': "));
      ++refused;
    }
  }
  CHECK(refused > 1000);  // most corruptions of structure are caught
  CHECK(parsed > 0);      // changed values are still a valid file
}

TEMPLATE_TEST_CASE("a checkpoint of another model is refused with every difference listed", "[checkpoint]", float,
                   double) {
  using T = TestType;
  TempDir dir;
  Trained<T> src;
  const std::string path = dir.file("src.ckpt");
  cf::io::save_checkpoint(path, src.model.vars, &src.adam);
  const std::string ctx = "load_checkpoint: '" + path + "': the file's variables do not match the model's (";

  Model<T> m(5);
  cf::AdamOptimizer<T> adam;
  train_step(m, adam, make_batches<T>(1, 2)[0]);

  SECTION("missing variables") {
    const std::string stack_only = dir.file("stack.ckpt");
    cf::VariableList<T> part;
    part.add(src.model.stack, "rnn");
    cf::io::save_checkpoint(stack_only, part);
    const Snapshot<T> before = snapshot(m.vars, adam);
    REQUIRE_ERROR(cf::io::load_checkpoint(stack_only, m.vars), cf::ValueError,
                  Contains("load_checkpoint: '" + stack_only +
                           "': the file's variables do not match the "
                           "model's (2 differences; the file has 10 variables, the model 12):") &&
                      Contains("\n  missing from the file: 'dense/kernel' [6, 3]") &&
                      Contains("\n  missing from the file: 'dense/bias' [3]"));
    REQUIRE(same(before, m.vars, adam));
  }

  SECTION("extra variables") {
    cf::VariableList<T> part;
    part.add(m.stack, "rnn");
    const Snapshot<T> before = snapshot(part, adam);
    REQUIRE_ERROR(cf::io::load_checkpoint(path, part), cf::ValueError,
                  Contains(ctx + "2 differences; the file has 12 variables, the model 10):") &&
                      Contains("\n  not in the model: 'dense/kernel' [6, 3]") &&
                      Contains("\n  not in the model: 'dense/bias' [3]"));
    REQUIRE(same(before, part, adam));
  }

  SECTION("different shapes and names") {
    Model<T> wide(6, 4);
    cf::AdamOptimizer<T> a2;
    const Snapshot<T> before = snapshot(wide.vars, a2);
    REQUIRE_ERROR(cf::io::load_checkpoint(path, wide.vars, &a2), cf::ValueError,
                  Contains(ctx + "2 differences") &&
                      Contains("\n  shape differs: 'dense/kernel' model expects [6, 4], file has [6, 3]") &&
                      Contains("\n  shape differs: 'dense/bias' model expects [4], file has [3]"));
    REQUIRE(same(before, wide.vars, a2));

    Model<T> renamed(6, 3, "head");
    const Snapshot<T> before2 = snapshot(renamed.vars, a2);
    REQUIRE_ERROR(cf::io::load_checkpoint(path, renamed.vars, &a2), cf::ValueError,
                  Contains(ctx + "4 differences") && Contains("missing from the file: 'head/kernel' [6, 3]") &&
                      Contains("missing from the file: 'head/bias' [3]") &&
                      Contains("not in the model: 'dense/kernel' [6, 3]") &&
                      Contains("not in the model: 'dense/bias' [3]"));
    REQUIRE(same(before2, renamed.vars, a2));
  }

  SECTION("another scalar type") {
    using Other = std::conditional_t<std::is_same_v<T, float>, double, float>;
    Model<Other> other(5);
    cf::AdamOptimizer<Other> other_adam;
    const Snapshot<Other> before = snapshot(other.vars, other_adam);
    const std::string ours = scalar_name(T()), theirs = scalar_name(Other());
    REQUIRE_ERROR(
        cf::io::load_checkpoint(path, other.vars, &other_adam), cf::ValueError,
        Contains("load_checkpoint: '" + path + "': the file holds " + ours + " values, the model is " + theirs));
    REQUIRE(same(before, other.vars, other_adam));
  }

  SECTION("optimizer state requested but absent") {
    const std::string plain = dir.file("plain.ckpt");
    cf::io::save_checkpoint(plain, src.model.vars);
    const Snapshot<T> before = snapshot(m.vars, adam);
    REQUIRE_ERROR(cf::io::load_checkpoint(plain, m.vars, &adam), cf::ValueError,
                  Contains("load_checkpoint: '" + plain +
                           "': optimizer state requested but the file holds "
                           "none"));
    REQUIRE(same(before, m.vars, adam));
  }
}

TEMPLATE_TEST_CASE("what cannot be saved is refused before anything is written", "[checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("x.ckpt");
  Trained<T> src;

  cf::VariableList<T> part;  // fewer variables than the optimizer has slots for
  part.add(src.model.dense);
  REQUIRE_ERROR(cf::io::save_checkpoint(path, part, &src.adam), cf::ValueError,
                Contains("save_checkpoint: '" + path +
                         "': cannot save the optimizer's state: AdamOptimizer::export_state: the optimizer holds "
                         "slots for 12 variables, the list has 2"));
  REQUIRE_ERROR(cf::io::save_checkpoint(path, src.model.vars, nullptr, {{"", "x"}}), cf::ValueError,
                Contains("save_checkpoint: '" + path + "': a metadata key is empty"));
  cf::Parameter<T> p(2, 2);
  cf::VariableList<T> odd;
  odd.add_one("odd", p);
  odd[0].shape = {5};  // a shape that disagrees with the values (add_one itself refuses one)
  REQUIRE_ERROR(cf::io::checkpoint_bytes(odd), cf::ValueError,
                Contains("checkpoint_bytes: variable 0 ('odd') has shape [5] but holds 4 values"));
  CHECK(dir.entries().empty());
}

TEMPLATE_TEST_CASE("a failed save leaves the previous file intact and no temporary file", "[checkpoint]", float,
                   double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("model.ckpt");
  Trained<T> src;
  cf::io::save_checkpoint(path, src.model.vars, &src.adam);
  const Bytes previous = read_bytes(path);
  Model<T> other(3);  // something else to save over it

  SECTION("a target in a directory that does not exist") {
    const std::string nowhere = dir.file("no/such/dir/model.ckpt");
    REQUIRE_ERROR(
        cf::io::save_checkpoint(nowhere, other.vars), cf::IOError,
        Contains("save_checkpoint: '" + nowhere + "': the directory '" + dir.file("no/such/dir") + "' does not exist"));
    CHECK_FALSE(fs::exists(dir.file("no")));
  }

  SECTION("a target that is a directory") {
    const std::string sub = dir.file("sub");
    fs::create_directory(sub);
    REQUIRE_ERROR(cf::io::save_checkpoint(sub, other.vars), cf::IOError,
                  Contains("save_checkpoint: '" + sub + "': is a directory; give the path of a file"));
    CHECK(fs::is_directory(sub));
    CHECK(fs::is_empty(sub));
  }

#ifdef CELLFLOW_TEST_POSIX
  SECTION("a directory that is not writable") {
    if (::geteuid() == 0) {
      WARN("running as root: permissions do not apply, not tested");
      return;
    }
    fs::permissions(dir.str(), fs::perms::owner_read | fs::perms::owner_exec, fs::perm_options::replace);
    REQUIRE_ERROR(
        cf::io::save_checkpoint(path, other.vars), cf::IOError,
        Contains("save_checkpoint: '" + path + "': cannot create the temporary file") && Contains("Permission denied"));
    fs::permissions(dir.str(), fs::perms::owner_all, fs::perm_options::replace);
  }

  SECTION("a write that fails midway (file size limit)") {
    // RLIMIT_FSIZE makes write() fail with EFBIG past the limit (SIGXFSZ ignored meanwhile): a
    // real failure in the middle of writing the temporary file.
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    struct sigaction ignore {
    }, old_action{};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    REQUIRE(::sigaction(SIGXFSZ, &ignore, &old_action) == 0);
    struct rlimit small = old_limit;
    small.rlim_cur = 100;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string message;
    try {
      cf::io::save_checkpoint(path, other.vars);
    } catch (const cf::IOError& e) {
      threw = true;
      message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::sigaction(SIGXFSZ, &old_action, nullptr);
    REQUIRE(threw);
    CHECK_THAT(message, Contains("save_checkpoint: '" + path + "': write error after 100 of ") &&
                            Contains(" on the temporary file '" + dir.file(".model.ckpt.tmp-")) &&
                            Contains("File too large") && Contains("(removed it)"));
  }
#endif

  SECTION("a read-only target") {
    fs::permissions(path, fs::perms::owner_read);
    REQUIRE_ERROR(cf::io::save_checkpoint(path, other.vars), cf::IOError,
                  Contains("save_checkpoint: '" + path + "': the existing file is read-only; not replacing it"));
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  }

  CHECK(read_bytes(path) == previous);
  const std::vector<std::string> left = dir.entries();
  CHECK((left == std::vector<std::string>{"model.ckpt"} || left == std::vector<std::string>{"model.ckpt", "sub"}));
}

TEST_CASE("saving a checkpoint follows the atomic-write policy of io/atomic_file.hpp", "[checkpoint]") {
  TempDir dir;
  Trained<float> src;
  const std::string real = dir.file("real.ckpt"), link = dir.file("link.ckpt");
  cf::io::save_checkpoint(real, src.model.vars);
  fs::permissions(real, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read,
                  fs::perm_options::replace);
  fs::create_symlink("real.ckpt", link);
  cf::io::save_checkpoint(link, src.model.vars, &src.adam);  // through the link: the file it names is replaced
  CHECK(fs::is_symlink(link));
  CHECK(read_bytes(real) == cf::io::checkpoint_bytes(src.model.vars, &src.adam));
  CHECK((fs::status(real).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  CHECK(dir.entries() == std::vector<std::string>{"link.ckpt", "real.ckpt"});
}

// ---- format version 2: any optimizer's state by name; what is written when ----

/// The bytes of a version-2 checkpoint of `vars` (values as they are) holding `state` in the
/// generic layout of docs/checkpoint-format.md, written independently of the library's writer:
/// scalars and counters in the map's (name) order, slots in the order given.
template <class T>
Bytes v2_bytes(const cf::VariableList<T>& vars, const cf::OptimizerState<T>& state,
               const std::vector<std::pair<std::string, std::string>>& slot_order) {
  Builder e;
  e.header(2, sizeof(T) == 4 ? 1 : 2);
  std::size_t s = e.section("MODL");
  e.u64(vars.size());
  for (const auto& v : vars) {
    e.str(v.name);
    e.u32(static_cast<std::uint32_t>(v.shape.size()));
    for (Index d : v.shape) e.u64(static_cast<std::uint64_t>(d));
    for (Index i = 0; i < v.value->size(); ++i) e.scalar<T>(v.value->data()[i]);
  }
  e.end_section(s);
  s = e.section("OPTM");
  e.str(state.kind);
  e.u64(state.scalars.size());
  for (const auto& [name, value] : state.scalars) {
    e.str(name);
    e.scalar<T>(value);
  }
  e.u64(state.counters.size());
  for (const auto& [name, value] : state.counters) {
    e.str(name);
    e.u64(static_cast<std::uint64_t>(value));
  }
  e.u64(slot_order.size());
  for (const auto& [var, name] : slot_order) {
    const cf::OptimizerSlot<T>& slot = state.slots.at({var, name});
    e.str(var);
    e.str(name);
    e.u32(static_cast<std::uint32_t>(slot.shape.size()));
    for (Index d : slot.shape) e.u64(static_cast<std::uint64_t>(d));
    for (Index i = 0; i < slot.value.size(); ++i) e.scalar<T>(slot.value.data()[i]);
  }
  e.end_section(s);
  return e.finish();
}

/// The (variable, slot) pairs of an Adam state in the list's order, as the library writes them.
template <class T>
std::vector<std::pair<std::string, std::string>> list_order(const cf::VariableList<T>& vars) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& v : vars) {
    out.emplace_back(v.name, "m");
    out.emplace_back(v.name, "v");
  }
  return out;
}

/// One training step with plain gradient descent (the model of the tests above).
template <class T>
void gd_step(Model<T>& m, cf::GradientDescentOptimizer<T>& gd, const Batch<T>& b) {
  m.vars.zero_grad();
  auto r = cf::dynamic_rnn(m.stack, b.x);
  const cf::Matrix<T> h = r.final_state.back().h();
  const auto xent = cf::sparse_softmax_cross_entropy_with_logits(b.y, m.dense(h));
  auto d_state = m.stack.zero_state(h.rows());
  d_state.back().h() = m.dense.backward(h, xent.mean_gradient());
  cf::dynamic_rnn_backward(m.stack, r, nullptr, &d_state);
  gd.apply_gradients(m.vars);
}

TEMPLATE_TEST_CASE("what is written when: version 1 without an optimizer or with Adam, version 2 otherwise",
                   "[checkpoint]", float, double) {
  using T = TestType;
  Trained<T> src;
  const auto version = [](const Bytes& b) { return cf::io::parse_checkpoint(b.data(), b.size(), "v").version; };
  CHECK(version(cf::io::checkpoint_bytes(src.model.vars)) == 1);
  CHECK(version(cf::io::checkpoint_bytes(src.model.vars, nullptr, {{"k", "v"}})) == 1);
  CHECK(version(cf::io::checkpoint_bytes(src.model.vars, &src.adam)) == 1);
  cf::AdamOptimizer<T> fresh;
  CHECK(version(cf::io::checkpoint_bytes(src.model.vars, &fresh)) == 1);
  cf::GradientDescentOptimizer<T> gd(0.125);
  const Bytes with_gd = cf::io::checkpoint_bytes(src.model.vars, &gd, {{"k", "v"}});
  CHECK(version(with_gd) == 2);

  // The version-2 bytes are exactly the documented layout (an independent writer).
  Bytes expected = [&] {
    cf::OptimizerState<T> st;
    st.kind = "gradient_descent";
    st.scalars["learning_rate"] = T(0.125);
    Bytes b = v2_bytes(src.model.vars, st, {});
    b.resize(b.size() - 4);  // append META, then reseal with the new size
    Builder e;
    e.b = b;
    const std::size_t s = e.section("META");
    e.u64(1);
    e.str("k");
    e.str("v");
    e.end_section(s);
    return e.finish();
  }();
  CHECK(with_gd == expected);

  // Through a pointer to the base class, the same bytes.
  const cf::Optimizer<T>* base = &gd;
  CHECK(cf::io::checkpoint_bytes(src.model.vars, base, {{"k", "v"}}) == with_gd);
}

TEMPLATE_TEST_CASE("a GradientDescent checkpoint (version 2) round-trips and resumes bitwise", "[checkpoint]", float,
                   double) {
  using T = TestType;
  TempDir dir;
  const std::string path = dir.file("gd.ckpt");
  const auto batches = make_batches<T>(5, 8);
  Model<T> a(1);
  cf::GradientDescentOptimizer<T> gd_a(0.05);
  for (std::size_t k = 0; k < 2; ++k) gd_step(a, gd_a, batches[k]);
  cf::io::save_checkpoint(path, a.vars, &gd_a, {{"optimizer", "sgd"}});
  for (std::size_t k = 2; k < 5; ++k) gd_step(a, gd_a, batches[k]);

  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
  CHECK(info.version == 2);
  CHECK(info.optimizer == "gradient_descent");
  CHECK(info.optimizer_scalars == std::map<std::string, double>{{"learning_rate", static_cast<double>(T(0.05))}});
  CHECK(info.optimizer_counters.empty());
  CHECK(info.optimizer_slots.empty());
  CHECK(info.optimizer_step == 0);

  Model<T> b(2);
  cf::GradientDescentOptimizer<T> gd_b(7);
  cf::io::load_checkpoint(path, b.vars, &gd_b);
  CHECK(gd_b.learning_rate() == T(0.05));
  for (std::size_t k = 2; k < 5; ++k) gd_step(b, gd_b, batches[k]);
  for (std::size_t k = 0; k < a.vars.size(); ++k) CHECK(bitwise_equal(*a.vars[k].value, *b.vars[k].value));

  SECTION("into an Adam: refused, naming both kinds; nothing changes") {
    Model<T> c(3);
    cf::AdamOptimizer<T> adam;
    train_step(c, adam, batches[0]);
    const Snapshot<T> before = snapshot(c.vars, adam);
    REQUIRE_ERROR(cf::io::load_checkpoint(path, c.vars, &adam), cf::ValueError,
                  Contains("load_checkpoint: '" + path +
                           "': the file holds the state of a 'gradient_descent' optimizer, the optimizer given is "
                           "'adam'; load the file into a 'gradient_descent' optimizer, or without one to restore the "
                           "variables only"));
    CHECK(same(before, c.vars, adam));
    cf::io::load_checkpoint(path, c.vars, nullptr);                     // the variables only
    CHECK(bitwise_equal(*c.vars[0].value, *b.vars[0].value) == false);  // b has trained on
    Model<T> d(4);
    cf::io::load_checkpoint(path, d.vars);
    Model<T> e(5);
    cf::GradientDescentOptimizer<T> gd_e(1);
    cf::Optimizer<T>* base = &gd_e;
    cf::io::load_checkpoint(path, e.vars, base);
    for (std::size_t k = 0; k < d.vars.size(); ++k) CHECK(bitwise_equal(*d.vars[k].value, *e.vars[k].value));
  }
}

TEMPLATE_TEST_CASE("an Adam state in the generic layout of version 2 loads like version 1", "[checkpoint]", float,
                   double) {
  using T = TestType;
  TempDir dir;
  Trained<T> src;
  const cf::OptimizerState<T> state = src.adam.export_state(src.model.vars);
  // Slots in another order than the library writes (the layout keys them by name).
  auto order = list_order(src.model.vars);
  std::reverse(order.begin(), order.end());
  const std::string path = dir.file("adam_v2.ckpt");
  write_bytes(path, v2_bytes(src.model.vars, state, order));
  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(path);
  CHECK(info.version == 2);
  CHECK(info.optimizer == "adam");
  CHECK(info.optimizer_step == 2);
  REQUIRE(info.optimizer_slots.size() == 24);
  CHECK(info.optimizer_slots[0].variable == "dense/bias");
  CHECK(info.optimizer_slots[0].slot == "v");
  CHECK(info.optimizer_slots[0].shape == std::vector<Index>{3});
  CHECK(info.optimizer_scalars.at("beta2_power") == static_cast<double>(src.adam.beta2_power()));

  Model<T> m(3);
  cf::AdamOptimizer<T> adam(0.5);
  cf::io::load_checkpoint(path, m.vars, &adam);
  CHECK(same(snapshot(src.model.vars, src.adam), m.vars, adam));
  // The library writes the same state as version 1, which loads to the same.
  const Bytes v1 = cf::io::checkpoint_bytes(m.vars, &adam);
  CHECK(cf::io::parse_checkpoint(v1.data(), v1.size(), "v1").version == 1);
  CHECK(v1 == cf::io::checkpoint_bytes(src.model.vars, &src.adam));

  SECTION("a value the optimizer refuses is a ValueError listing every problem; nothing changes") {
    auto bad = state;
    bad.scalars["beta1"] = T(1);
    bad.scalars["amsgrad"] = T(0);
    bad.slots.erase({"dense/bias", "v"});
    auto bad_order = list_order(src.model.vars);
    bad_order.pop_back();
    write_bytes(path, v2_bytes(src.model.vars, bad, bad_order));
    Model<T> c(4);
    cf::AdamOptimizer<T> a2;
    train_step(c, a2, make_batches<T>(1, 4)[0]);
    const Snapshot<T> before = snapshot(c.vars, a2);
    REQUIRE_ERROR(cf::io::load_checkpoint(path, c.vars, &a2), cf::ValueError,
                  Contains("load_checkpoint: '" + path +
                           "': the file's 'adam' state does not fit the optimizer (3 "
                           "problems):\n  unknown scalar 'amsgrad'\n  the scalar 'beta1' = 1 is not in [0, 1)\n  the "
                           "slot 'v' of 'dense/bias' is missing"));
    CHECK(same(before, c.vars, a2));
    cf::io::load_checkpoint(path, c.vars);  // the variables alone are fine
  }
}

TEMPLATE_TEST_CASE("crafted version-2 optimizer sections are refused naming the field", "[checkpoint]", float, double) {
  using T = TestType;
  const std::uint32_t code = sizeof(T) == 4 ? 1 : 2;
  // One variable "v" [2], then an OPTM section written by `body`.
  const auto file = [&](const std::function<void(Builder&)>& body) {
    Builder e;
    e.header(2, code);
    std::size_t s = e.section("MODL");
    e.u64(1);
    e.str("v");
    e.u32(1);
    e.u64(2);
    e.scalar<T>(T(1));
    e.scalar<T>(T(2));
    e.end_section(s);
    s = e.section("OPTM");
    body(e);
    e.end_section(s);
    return e.finish();
  };
  const auto refused = [&](const Bytes& f, const std::string& what) {
    REQUIRE_ERROR(cf::io::parse_checkpoint(f.data(), f.size(), "v2"), cf::IOError,
                  Contains("parse_checkpoint: 'v2': ") && Contains(what));
  };
  const std::size_t optm = 24 + 12 + 8 + 5 + 4 + 8 + 2 * sizeof(T) + 12;  // the OPTM payload's first byte
  const auto slot = [](Builder& e, const std::string& var, const std::string& name, std::vector<std::uint64_t> dims,
                       int values) {
    e.str(var);
    e.str(name);
    e.u32(static_cast<std::uint32_t>(dims.size()));
    for (auto d : dims) e.u64(d);
    for (int k = 0; k < values; ++k) e.scalar<T>(T(0.5));
  };

  // The baseline: an optimizer this cellflow does not know parses (its kind is checked at load).
  const Bytes ok = file([&](Builder& e) {
    e.str("momentum");
    e.u64(1);
    e.str("learning_rate");
    e.scalar<T>(T(0.1));
    e.u64(1);
    e.str("step");
    e.u64(4);
    e.u64(1);
    slot(e, "v", "momentum", {2}, 2);
  });
  const cf::io::CheckpointInfo info = cf::io::parse_checkpoint(ok.data(), ok.size(), "v2");
  CHECK(info.optimizer == "momentum");
  CHECK(info.optimizer_step == 4);
  REQUIRE(info.optimizer_slots.size() == 1);
  CHECK(info.optimizer_slots[0].slot == "momentum");

  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(std::uint64_t(1) << 50);
          }),
          "section OPTM: the scalar count 1125899906842624 at byte offset " + std::to_string(optm + 5) +
              " cannot fit in the 0 bytes that remain in the section");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(2);
            for (int k = 0; k < 2; ++k) {
              e.str("lr");
              e.scalar<T>(T(1));
            }
            e.u64(0);
            e.u64(0);
          }),
          "section OPTM: scalar 1 at byte offset " + std::to_string(optm + 5 + 8 + 6 + sizeof(T)) +
              " repeats the name 'lr'");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(1);
            e.str("step");
            e.u64(std::uint64_t(1) << 63);
            e.u64(0);
          }),
          "section OPTM: counter 0 ('step') = 9223372036854775808 at byte offset " +
              std::to_string(optm + 5 + 8 + 8 + 8) + " is out of range");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(2);
            e.str("t");
            e.u64(1);
            e.str("t");
            e.u64(2);
            e.u64(0);
          }),
          "counter 1 at byte offset " + std::to_string(optm + 5 + 8 + 8 + 13) + " repeats the name 't'");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(0);
            e.u64(1);
            slot(e, "w", "m", {2}, 2);
          }),
          "section OPTM: slot 0 at byte offset " + std::to_string(optm + 5 + 24) +
              " belongs to 'w', not a variable of section MODL");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(0);
            e.u64(1);
            slot(e, "v", "m", {1, 2}, 2);
          }),
          "section OPTM: slot 0 ('m' of 'v') has rank 2 at byte offset " + std::to_string(optm + 5 + 24 + 5 + 5) +
              ", its variable 1");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(0);
            e.u64(1);
            slot(e, "v", "m", {3}, 3);
          }),
          "slot 0 ('m' of 'v') dimension 0 = 3 at byte offset " + std::to_string(optm + 5 + 24 + 5 + 5 + 4) +
              " differs from its variable's shape [2]");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(0);
            e.u64(2);
            slot(e, "v", "m", {2}, 2);
            slot(e, "v", "m", {2}, 2);
          }),
          "slot 1 ('m' of 'v') at byte offset " + std::to_string(optm + 5 + 24 + 5 + 5 + 4 + 8 + 2 * sizeof(T)) +
              " appears twice");
  refused(file([&](Builder& e) {
            e.str("x");
            e.u64(0);
            e.u64(0);
            e.u64(1);
            slot(e, "v", "m", {2}, 1);
          }),
          "slot 0 ('m' of 'v') values at byte offset " + std::to_string(optm + 5 + 24 + 5 + 5 + 4 + 8) +
              " needs 2 values of " + std::to_string(sizeof(T)) + " bytes, only " + std::to_string(sizeof(T)) +
              " bytes remain in the section");
  refused(file([&](Builder& e) { e.str(""); }),
          "section OPTM: the optimizer kind at byte offset " + std::to_string(optm) + " is empty");
}

// ---- version-1 files written by cellflow 0.1 (tests/fixtures/checkpoint/, make_v1_fixtures.cpp) ----

std::string v1_fixture(const std::string& name) { return std::string(CELLFLOW_FIXTURE_DIR) + "/checkpoint/" + name; }

/// The model of the fixtures: MultiRNNCell of BasicLSTMCell(3 -> 4) and BasicLSTMCell(4 -> 4),
/// scope "rnn", and Dense(4, 3); its weights here are irrelevant (the file's replace them).
template <class T>
struct FixtureModel {
  explicit FixtureModel(std::uint64_t seed, const std::string& scope = "rnn")
      : rng(seed), multi(make(rng)), dense(4, 3, rng) {
    vars.add(multi, scope).add(dense);
  }
  static cf::MultiRNNCell<T> make(cf::Rng& rng) {
    std::vector<cf::BasicLSTMCell<T>> cells;
    cells.emplace_back(3, 4, rng);
    cells.emplace_back(4, 4, rng);
    return cf::MultiRNNCell<T>(std::move(cells));
  }
  cf::Rng rng;
  cf::MultiRNNCell<T> multi;
  cf::Dense<T> dense;
  cf::VariableList<T> vars;
};

/// The synthetic gradients of make_v1_fixtures.cpp: g = 0.5 w + 0.001 (((7 i + 3 k + step) mod 11) - 5).
template <class T>
void synthetic_gradients(cf::VariableList<T>& vars, int step) {
  for (std::size_t k = 0; k < vars.size(); ++k) {
    const T* w = vars[k].value->data();
    T* g = vars[k].grad->data();
    for (Index i = 0; i < vars[k].value->size(); ++i) {
      const int n = static_cast<int>((7 * i + 3 * static_cast<Index>(k) + step) % 11) - 5;
      g[i] = T(0.5) * w[i] + T(0.001) * T(n);
    }
  }
}

template <class T>
std::uint64_t bits_of(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

TEMPLATE_TEST_CASE("version-1 files of cellflow 0.1 load, Adam state included, and continue bitwise", "[checkpoint]",
                   float, double) {
  using T = TestType;
  const std::string t = sizeof(T) == 4 ? "f32" : "f64";
  const std::string step3 = v1_fixture("v1_lstm_adam_" + t + "_step3.ckpt"),
                    step5 = v1_fixture("v1_lstm_adam_" + t + "_step5.ckpt");

  const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(step3);
  CHECK(info.version == 1);
  CHECK(info.scalar_type == t);
  CHECK(info.optimizer == "adam");
  CHECK(info.optimizer_step == 3);
  CHECK(info.optimizer_counters == std::map<std::string, long long>{{"step", 3}});
  CHECK(info.optimizer_scalars.at("learning_rate") == static_cast<double>(T(0.01)));
  CHECK(info.optimizer_slots.size() == 12);
  CHECK(info.metadata.at("fixture") == "v1_lstm_adam_" + t);
  const std::vector<std::pair<std::string, std::vector<Index>>> names{
      {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", {7, 16}},
      {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias", {16}},
      {"rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel", {8, 16}},
      {"rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias", {16}},
      {"dense/kernel", {4, 3}},
      {"dense/bias", {3}}};
  REQUIRE(info.variables.size() == names.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    CHECK(info.variables[k].name == names[k].first);
    CHECK(info.variables[k].shape == names[k].second);
  }

  FixtureModel<T> a(1);
  cf::AdamOptimizer<T> adam_a(0.5);
  cf::io::load_checkpoint(step3, a.vars, &adam_a);
  // The values make_v1_fixtures printed when it wrote the file.
  const bool f32 = sizeof(T) == 4;
  CHECK(bits_of(a.vars[0].value->data()[0]) == (f32 ? 0x3e12f352u : 0x3fc25e6b9a7f4a5eull));
  CHECK(bits_of(a.vars[5].value->data()[2]) == (f32 ? 0x3cdccf28u : 0x3f9b99ea715ec14eull));
  CHECK(bits_of(adam_a.m_slots()[0].data()[0]) == (f32 ? 0xbaa8ef98u : 0xbf551df2b565c291ull));
  CHECK(bits_of(adam_a.v_slots()[0].data()[0]) == (f32 ? 0x33c6f81au : 0x3e78df17e434ae0cull));
  CHECK(bits_of(adam_a.beta1_power()) == (f32 ? 0x3f27f62au : 0x3fe4fec56d5cfaaeull));
  CHECK(bits_of(adam_a.beta2_power()) == (f32 ? 0x3f7efa41u : 0x3fefdf47f76e36e7ull));
  CHECK(adam_a.step() == 3);
  CHECK(adam_a.learning_rate() == T(0.01));
  CHECK(adam_a.beta1() == T(0.9));
  CHECK(adam_a.epsilon() == T(1e-8));

  // Saved again, it is the very same file: today's writer still writes version 1 for Adam.
  std::vector<std::uint8_t> again = cf::io::checkpoint_bytes(a.vars, &adam_a, info.metadata);
  CHECK(again == read_bytes(step3));

  // Two more steps as the run that wrote the files took them give its step-5 file, bitwise.
  for (int step = 3; step < 5; ++step) {
    synthetic_gradients(a.vars, step);
    adam_a.apply_gradients(a.vars);
  }
  FixtureModel<T> b(2);
  cf::AdamOptimizer<T> adam_b;
  cf::io::load_checkpoint(step5, b.vars, &adam_b);
  CHECK(bits_of(b.vars[0].value->data()[0]) == (f32 ? 0x3e072a14u : 0x3fc0e54391e70109ull));
  CHECK(same(snapshot(b.vars, adam_b), a.vars, adam_a));
  CHECK(cf::io::checkpoint_bytes(a.vars, &adam_a, info.metadata) == read_bytes(step5));

  // The test can fail: without the optimizer state the continuation differs.
  FixtureModel<T> c(3);
  cf::AdamOptimizer<T> adam_c(0.01);
  cf::io::load_checkpoint(step3, c.vars);
  for (int step = 3; step < 5; ++step) {
    synthetic_gradients(c.vars, step);
    adam_c.apply_gradients(c.vars);
  }
  CHECK_FALSE(bitwise_equal(*c.vars[0].value, *b.vars[0].value));

  // Into a list of another order, slots follow their variables by name.
  FixtureModel<T> d(4);
  cf::VariableList<T> reordered;
  reordered.add(d.dense).add(d.multi, "rnn");
  cf::AdamOptimizer<T> adam_d;
  cf::io::load_checkpoint(step3, reordered, &adam_d);
  for (int step = 3; step < 5; ++step) {  // the gradients of the original order
    synthetic_gradients(d.vars, step);
    adam_d.apply_gradients(reordered);
  }
  for (const auto& v : b.vars) CHECK(bitwise_equal(*v.value, *reordered.at(v.name).value));
}

TEST_CASE("a model whose names differ only by a scope prefix gets a hint", "[checkpoint]") {
  const std::string file = v1_fixture("v1_lstm_adam_f32_step3.ckpt");
  const std::string ctx = "load_checkpoint: '" + file + "': the file's variables do not match the model's (";
  FixtureModel<float> bare(1, "");  // "multi_rnn_cell/..." where the file has "rnn/multi_rnn_cell/..."
  REQUIRE_ERROR(cf::io::load_checkpoint(file, bare.vars), cf::ValueError,
                Contains(ctx + "8 differences; the file has 6 variables, the model 6):") &&
                    Contains("\n  missing from the file: 'multi_rnn_cell/cell_0/basic_lstm_cell/kernel' [7, 16]") &&
                    Contains("\n  not in the model: 'rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias' [16]") &&
                    Contains("\nhint: only a scope prefix differs: the file's names start with 'rnn/', the model's "
                             "do not (e.g. file 'rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel', model "
                             "'multi_rnn_cell/cell_0/basic_lstm_cell/kernel'); add the model's modules under that "
                             "scope, e.g. vars.add(module, \"rnn\")"));

  // The other way round, and a replaced prefix.
  FixtureModel<float> src(2, "");
  TempDir dir;
  cf::io::save_checkpoint(dir.file("bare.ckpt"), src.vars);
  FixtureModel<float> scoped(3, "rnn");
  REQUIRE_ERROR(cf::io::load_checkpoint(dir.file("bare.ckpt"), scoped.vars), cf::ValueError,
                Contains("\nhint: only a scope prefix differs: the model's names start with 'rnn/', the file's do "
                         "not") &&
                    Contains("add the model's modules without the scope 'rnn'"));
  FixtureModel<float> other(4, "encoder");
  REQUIRE_ERROR(cf::io::load_checkpoint(file, other.vars), cf::ValueError,
                Contains("\nhint: only a scope prefix differs: the file's names start with 'rnn/' where the model's "
                         "start with 'encoder/'") &&
                    Contains("under the scope 'rnn' instead of 'encoder'"));

  // Other differences: no hint.
  cf::Rng rng(5);
  cf::Dense<float> head(4, 3, rng, "head");
  cf::VariableList<float> mixed;
  mixed.add(bare.multi).add(head);  // no scope, and another dense name
  bool hinted = true;
  try {
    cf::io::load_checkpoint(file, mixed);
  } catch (const cf::ValueError& e) {
    hinted = std::string(e.what()).find("hint") != std::string::npos;
  }
  CHECK_FALSE(hinted);

  // With an optimizer of another kind, the variable list says so too.
  cf::GradientDescentOptimizer<float> gd(0.1);
  REQUIRE_ERROR(cf::io::load_checkpoint(file, bare.vars, &gd), cf::ValueError,
                Contains("\n  and the optimizer: the file holds the state of a 'adam' optimizer, the optimizer given "
                         "is 'gradient_descent'"));
}

TEST_CASE("the fuzzer's checkpoint seeds are valid files of both versions", "[checkpoint]") {
  const fs::path corpus = fs::path(CELLFLOW_FIXTURE_DIR) / ".." / "fuzz" / "corpus" / "checkpoint";
  std::map<int, int> versions;
  std::set<std::string> kinds;
  for (const auto& e : fs::directory_iterator(corpus)) {
    INFO(e.path());
    const cf::io::CheckpointInfo info = cf::io::read_checkpoint_info(e.path().string());
    ++versions[info.version];
    kinds.insert(info.optimizer);
    CHECK((info.version == 2) == (e.path().filename().string().rfind("v2_", 0) == 0));
  }
  CHECK(versions[1] >= 3);
  CHECK(versions[2] >= 3);
  CHECK(kinds.count("gradient_descent") == 1);
  CHECK(kinds.count("momentum") == 1);
  CHECK(kinds.count("adam") == 1);
}

}  // namespace test_checkpoint
