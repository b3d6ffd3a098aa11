// Checkpoints (io/checkpoint.hpp): the byte layout against an independent writer built from
// docs/checkpoint-format.md, bitwise round trips of a mixed model with Adam state, resumed
// training equal to uninterrupted training, every malformed-file and wrong-model error (with the
// model and optimizer unchanged afterwards), and saves that fail without touching the old file.
// Files go to a fresh temporary directory per test case, removed at the end.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
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

namespace {

namespace cf = cellflow;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using cf::Index;
using Bytes = std::vector<std::uint8_t>;

using cellflow_test::TempDir;

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

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

/// One training step as examples/mnist_model.hpp does it: dynamic_rnn, Dense on the top layer's
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

/// Everything a load could change: every variable's value and the whole Adam state.
template <class T>
struct Snapshot {
  std::vector<cf::Matrix<T>> values;
  cf::AdamState<T> adam;
};

template <class T>
Snapshot<T> snapshot(const cf::VariableList<T>& vars, const cf::AdamOptimizer<T>& adam) {
  Snapshot<T> s;
  for (const auto& v : vars) s.values.push_back(*v.value);
  s.adam = adam.state();
  return s;
}

template <class T>
bool same_adam(const cf::AdamState<T>& a, const cf::AdamState<T>& b) {
  const auto bits = [](T x) {
    std::uint64_t u = 0;
    std::memcpy(&u, &x, sizeof x);
    return u;
  };
  if (bits(a.learning_rate) != bits(b.learning_rate) || bits(a.beta1) != bits(b.beta1) ||
      bits(a.beta2) != bits(b.beta2) || bits(a.epsilon) != bits(b.epsilon) ||
      bits(a.beta1_power) != bits(b.beta1_power) || bits(a.beta2_power) != bits(b.beta2_power) || a.step != b.step ||
      a.m.size() != b.m.size() || a.v.size() != b.v.size())
    return false;
  for (std::size_t k = 0; k < a.m.size(); ++k)
    if (!bitwise_equal(a.m[k], b.m[k]) || !bitwise_equal(a.v[k], b.v[k])) return false;
  return true;
}

template <class T>
bool same(const Snapshot<T>& s, const cf::VariableList<T>& vars, const cf::AdamOptimizer<T>& adam) {
  if (s.values.size() != vars.size()) return false;
  for (std::size_t k = 0; k < vars.size(); ++k)
    if (!bitwise_equal(s.values[k], *vars[k].value)) return false;
  return same_adam(s.adam, adam.state());
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

}  // namespace

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
    const auto st = adam_c.state();
    for (std::size_t k = 0; k < reordered.size(); ++k) {
      std::size_t j = 0;
      while (a.vars[j].name != reordered[k].name) ++j;
      CHECK(bitwise_equal(st.m[k], adam_a.m_slots()[j]));
      CHECK(bitwise_equal(st.v[k], adam_a.v_slots()[j]));
    }
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
    f[8] = 2;
    reseal(f);
    refuse(f, "format version 2 (header bytes 8 to 11) is newer than this cellflow reads (versions 1 to 1)");
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
                         "': the optimizer holds slots for 12 variables, the "
                         "list has 2"));
  REQUIRE_ERROR(cf::io::save_checkpoint(path, src.model.vars, nullptr, {{"", "x"}}), cf::ValueError,
                Contains("save_checkpoint: '" + path + "': a metadata key is empty"));
  cf::Parameter<T> p(2, 2);
  p.shape = {5};  // a shape that disagrees with the values
  cf::VariableList<T> odd;
  odd.add_one("odd", p);
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

TEMPLATE_TEST_CASE("AdamOptimizer state export and restore", "[checkpoint][adam]", float, double) {
  using T = TestType;
  Trained<T> src;
  const cf::AdamState<T> s = src.adam.state();
  CHECK(s.step == 2);
  CHECK(s.m.size() == src.model.vars.size());

  cf::AdamOptimizer<T> other(T(0.5));
  other.restore_state(s);
  CHECK(same_adam(other.state(), s));

  const auto refused = [&](cf::AdamState<T> bad, const std::string& what) {
    const cf::AdamState<T> before = other.state();
    REQUIRE_ERROR(other.restore_state(std::move(bad)), cf::ValueError,
                  Contains("AdamOptimizer::restore_state: " + what));
    REQUIRE(same_adam(before, other.state()));
  };
  auto bad = s;
  bad.beta1 = T(1);
  refused(bad, "beta1 and beta2 must be in [0, 1), given 1, 0.999");
  bad = s;
  bad.epsilon = T(-1);
  refused(bad, "epsilon must be >= 0, given -1");
  bad = s;
  bad.beta2_power = T(1);
  refused(bad, "beta1_power and beta2_power must be in [0, 1)");
  bad = s;
  bad.step = -1;
  refused(bad, "step must be >= 0, given -1");
  bad = s;
  bad.v.pop_back();
  refused(bad, "12 m slots but 11 v slots");
  bad = s;
  bad.v[1] = cf::Matrix<T>::Zero(1, 1);
  refused(bad, "slot 1: m is 1x20 but v is 1x1");
  bad = s;
  bad.v[2](0, 0) = T(-0.5);
  refused(bad, "slot 2: v[0] = -0.5 is negative");
}
