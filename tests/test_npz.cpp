// NumPy .npz import/export by TensorFlow variable name (cellflow/io/npz.hpp).
//
// numpy-written fixtures (tests/fixtures/npz/, made by tests/fixtures/make_npz_fixtures.py,
// whose docstring gives every expected value) load with exact values; cellflow's own files round
// trip bitwise; every malformed or unsupported input is an IOError (or, for a file that does not
// fit the model, one ValueError/ShapeError) naming the file and the member or variable, and
// leaves the model untouched; truncations and byte flips never crash; saves are atomic.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

// Sanitizers reserve terabytes of address space: no address-space cap under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CELLFLOW_NPZ_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define CELLFLOW_NPZ_TEST_SANITIZED 1
#endif
#endif

#include "cellflow/cellflow.hpp"
#include "cellflow/io/npz.hpp"
#include "support/temp_dir.hpp"

namespace test_npz {

namespace cf = cellflow;
namespace cio = cellflow::io;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Bytes = std::vector<std::uint8_t>;

std::string fixture(const std::string& name) { return std::string(CELLFLOW_FIXTURE_DIR) + "/npz/" + name; }

using cellflow_test::TempDir;

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

/// The message of the E thrown by f (fails the test if f does not throw; another type propagates).
template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception thrown");
  return {};
}

std::string parse_error(const Bytes& b) {
  return error_of<cf::IOError>([&] { cio::parse_npz(b.data(), b.size(), "mem.npz"); });
}

std::uint16_t le16(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(b.at(at) | (b.at(at + 1) << 8));
}
std::uint32_t le32(const Bytes& b, std::size_t at) {
  return std::uint32_t(le16(b, at)) | (std::uint32_t(le16(b, at + 2)) << 16);
}
void set16(Bytes& b, std::size_t at, std::uint32_t v) {
  b.at(at) = static_cast<std::uint8_t>(v);
  b.at(at + 1) = static_cast<std::uint8_t>(v >> 8);
}
void set32(Bytes& b, std::size_t at, std::uint32_t v) {
  set16(b, at, v & 0xffffu);
  set16(b, at + 2, v >> 16);
}
void put16(Bytes& b, std::uint32_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
  put16(b, v & 0xffffu);
  put16(b, v >> 16);
}
void put64(Bytes& b, std::uint64_t v) {
  put32(b, static_cast<std::uint32_t>(v));
  put32(b, static_cast<std::uint32_t>(v >> 32));
}
void append(Bytes& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
void append(Bytes& b, const Bytes& s) { b.insert(b.end(), s.begin(), s.end()); }

std::uint32_t crc_of(const Bytes& b) {
  return static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), b.data(), static_cast<uInt>(b.size())));
}

/// Raw deflate (no zlib header), as a ZIP member holds it.
Bytes raw_deflate(const Bytes& in, int level = 6) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&zs, static_cast<uLong>(in.size())) + 16);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

/// Positions in a well-formed archive: the end record, each central entry and local header.
struct Layout {
  std::size_t eocd = 0, cd = 0;
  std::vector<std::size_t> central, local;
};
Layout layout(const Bytes& b) {
  Layout l;
  l.eocd = b.size() - 22;
  l.cd = le32(b, l.eocd + 16);
  std::size_t pos = l.cd;
  for (unsigned k = 0; k < le16(b, l.eocd + 10); ++k) {
    l.central.push_back(pos);
    l.local.push_back(le32(b, pos + 42));
    pos += 46u + le16(b, pos + 28) + le16(b, pos + 30) + le16(b, pos + 32);
  }
  return l;
}
/// Offset of a member's data (after its local header, name and extra field).
std::size_t data_offset(const Bytes& b, std::size_t local) {
  return local + 30 + le16(b, local + 26) + le16(b, local + 28);
}

/// A member for the test's own ZIP writer: any bytes, any method, sizes and CRC as given.
struct RawMember {
  std::string name;
  Bytes payload;  // what the archive holds: stored bytes or a raw deflate stream
  std::uint16_t method = 0, flags = 0;
  std::uint32_t crc = 0, usize = 0;
  bool zip64_local = false;  // a zip64 extra field in the local header, sizes 0xffffffff (numpy's way)
  bool descriptor = false;   // flag bit 3: zero sizes in the local header, a data descriptor after the data
};
RawMember stored(const std::string& name, const Bytes& content) {
  return RawMember{name, content, 0, 0, crc_of(content), static_cast<std::uint32_t>(content.size())};
}
RawMember deflated(const std::string& name, const Bytes& content) {
  return RawMember{name, raw_deflate(content), 8, 0, crc_of(content), static_cast<std::uint32_t>(content.size())};
}

Bytes build_zip(const std::vector<RawMember>& members) {
  Bytes out, cd;
  for (const RawMember& m : members) {
    const auto offset = static_cast<std::uint32_t>(out.size());
    const auto csize = static_cast<std::uint32_t>(m.payload.size());
    const std::uint16_t flags = static_cast<std::uint16_t>(m.flags | (m.descriptor ? 8 : 0));
    put32(out, 0x04034b50);
    put16(out, m.zip64_local ? 45 : 20);
    put16(out, flags);
    put16(out, m.method);
    put16(out, 0);
    put16(out, 0x21);
    put32(out, m.descriptor ? 0 : m.crc);
    put32(out, m.descriptor ? 0 : (m.zip64_local ? 0xffffffffu : csize));
    put32(out, m.descriptor ? 0 : (m.zip64_local ? 0xffffffffu : m.usize));
    put16(out, static_cast<std::uint32_t>(m.name.size()));
    put16(out, m.zip64_local ? 20 : 0);
    append(out, m.name);
    if (m.zip64_local) {
      put16(out, 1);
      put16(out, 16);
      put64(out, m.descriptor ? 0 : m.usize);
      put64(out, m.descriptor ? 0 : csize);
    }
    append(out, m.payload);
    if (m.descriptor) {
      put32(out, 0x08074b50);
      put32(out, m.crc);
      if (m.zip64_local) {
        put64(out, csize);
        put64(out, m.usize);
      } else {
        put32(out, csize);
        put32(out, m.usize);
      }
    }
    put32(cd, 0x02014b50);
    put16(cd, 0x0314);
    put16(cd, 20);
    put16(cd, flags);
    put16(cd, m.method);
    put16(cd, 0);
    put16(cd, 0x21);
    put32(cd, m.crc);
    put32(cd, csize);
    put32(cd, m.usize);
    put16(cd, static_cast<std::uint32_t>(m.name.size()));
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put32(cd, 0);
    put32(cd, offset);
    append(cd, m.name);
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  append(out, cd);
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(members.size()));
  put16(out, static_cast<std::uint32_t>(members.size()));
  put32(out, static_cast<std::uint32_t>(cd.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

/// A .npy member: magic, version, the header dict padded like numpy's, then `data`.
Bytes npy(const std::string& dict, const Bytes& data, int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  Bytes out{0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  if (major == 1)
    put16(out, static_cast<std::uint32_t>(header.size()));
  else
    put32(out, static_cast<std::uint32_t>(header.size()));
  append(out, header);
  append(out, data);
  return out;
}

template <class E>
Bytes le_bytes(const std::vector<E>& values) {
  Bytes out;
  for (const E v : values) {
    std::uint8_t b[sizeof(E)];
    std::memcpy(b, &v, sizeof(E));
    if (!cf::detail::host_little_endian()) std::reverse(b, b + sizeof(E));
    out.insert(out.end(), b, b + sizeof(E));
  }
  return out;
}

std::string f4_dict(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

/// One stored member "x.npy" holding `content`.
Bytes one_member(const Bytes& content) { return build_zip({stored("x.npy", content)}); }

std::uint32_t bits_of(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}
std::uint64_t bits_of(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}

template <class T>
bool same_bits(const cf::Matrix<T>& a, const cf::Matrix<T>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0);
}

bool same_archive(const cio::NpzArchive& a, const cio::NpzArchive& b) {
  if (a.names() != b.names()) return false;
  for (const auto& e : a)
    if (!e.array.bitwise_equal(b.at(e.name))) return false;
  return true;
}

/// The small model of the fixtures: BasicLSTMCell(3, 4) under "rnn" and Dense(4, 2).
template <class T>
struct Model {
  cf::Rng rng;
  cf::BasicLSTMCell<T> cell;
  cf::Dense<T> dense;
  cf::VariableList<T> vars;

  explicit Model(std::uint64_t seed = 1) : rng(seed), cell(3, 4, rng), dense(4, 2, rng) {
    vars.add(cell, "rnn").add(dense);
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// Distinct values everywhere (biases start at zero), so any partial assignment shows.
  void mark() {
    for (std::size_t v = 0; v < vars.size(); ++v)
      for (cf::Index k = 0; k < vars[v].value->size(); ++k) vars[v].value->data()[k] = T(1000 * (v + 1)) + T(k);
  }
  std::vector<cf::Matrix<T>> snapshot() const {
    std::vector<cf::Matrix<T>> out;
    for (const auto& v : vars) out.push_back(*v.value);
    return out;
  }
  bool unchanged(const std::vector<cf::Matrix<T>>& before) const {
    for (std::size_t v = 0; v < vars.size(); ++v)
      if (!same_bits(*vars[v].value, before[v])) return false;
    return true;
  }
};

/// Element k of fixture variable v: (k - 60 + 100 v) / 7 in the file's precision, then as T.
template <class T>
T fixture_value(std::size_t v, cf::Index k, bool f8) {
  const long num = static_cast<long>(k) - 60 + 100 * static_cast<long>(v);
  return f8 ? static_cast<T>(static_cast<double>(num) / 7.0) : static_cast<T>(static_cast<float>(num) / 7.0f);
}

template <class T>
void check_fixture_values(const Model<T>& m, bool f8) {
  REQUIRE(m.vars.size() == 4);
  for (std::size_t v = 0; v < 4; ++v) {
    const cf::Matrix<T>& value = *m.vars[v].value;
    cf::Matrix<T> expected(value.rows(), value.cols());
    for (cf::Index k = 0; k < expected.size(); ++k) expected.data()[k] = fixture_value<T>(v, k, f8);
    INFO("variable " << m.vars[v].name);
    CHECK(same_bits(value, expected));
  }
}

/// Lowers this process's address-space limit to its current size + 512 MiB for its lifetime
/// (Linux, not under sanitizers): an allocation of what a lying header claims would then throw
/// std::bad_alloc, which error_of<IOError> does not catch, failing the test.
class AddressSpaceCap {
 public:
  AddressSpaceCap() {
#if defined(__linux__) && !defined(CELLFLOW_NPZ_TEST_SANITIZED)
    std::ifstream statm("/proc/self/statm");
    unsigned long long pages = 0;
    if (!(statm >> pages) || getrlimit(RLIMIT_AS, &old_) != 0) return;
    const rlim_t want =
        static_cast<rlim_t>(pages * static_cast<unsigned long long>(sysconf(_SC_PAGESIZE)) + (512ull << 20));
    rlimit lowered = old_;
    if (old_.rlim_cur != RLIM_INFINITY && old_.rlim_cur < want) return;
    lowered.rlim_cur = want;
    active_ = setrlimit(RLIMIT_AS, &lowered) == 0;
#endif
  }
  ~AddressSpaceCap() {
#if defined(__linux__)
    if (active_) setrlimit(RLIMIT_AS, &old_);
#endif
  }
  AddressSpaceCap(const AddressSpaceCap&) = delete;
  AddressSpaceCap& operator=(const AddressSpaceCap&) = delete;

 private:
#if defined(__linux__)
  rlimit old_{};
#endif
  bool active_ = false;
};

const char* const kKernel = "rnn/basic_lstm_cell/kernel";

TEST_CASE("the fixture model has TF's variable names and shapes", "[npz]") {
  Model<float> m;
  REQUIRE(m.vars.size() == 4);
  CHECK(m.vars[0].name == "rnn/basic_lstm_cell/kernel");
  CHECK(m.vars[0].shape == std::vector<cf::Index>{7, 16});
  CHECK(m.vars[1].name == "rnn/basic_lstm_cell/bias");
  CHECK(m.vars[1].shape == std::vector<cf::Index>{16});
  CHECK(m.vars[2].name == "dense/kernel");
  CHECK(m.vars[2].shape == std::vector<cf::Index>{4, 2});
  CHECK(m.vars[3].name == "dense/bias");
  CHECK(m.vars[3].shape == std::vector<cf::Index>{2});
}

TEST_CASE("the numpy fixtures have the ZIP features the reader must handle", "[npz]") {
  // np.savez: stored, zip64 extra field (id 1, 16 bytes) in every local header.
  const Bytes plain = read_bytes(fixture("model_f4.npz"));
  const Layout lp = layout(plain);
  REQUIRE(lp.local.size() == 4);
  for (const std::size_t lo : lp.local) {
    CHECK(le16(plain, lo + 8) == 0);
    REQUIRE(le16(plain, lo + 28) == 20);
    CHECK(le16(plain, lo + 30 + le16(plain, lo + 26)) == 1);
    CHECK(le16(plain, lo + 32 + le16(plain, lo + 26)) == 16);
  }
  // np.savez_compressed: deflated.
  const Bytes comp = read_bytes(fixture("model_f8_compressed.npz"));
  for (const std::size_t lo : layout(comp).local) CHECK(le16(comp, lo + 8) == 8);
  // Written to an unseekable stream: data descriptors (flag bit 3), zero sizes in the local header.
  for (const char* name : {"model_f4_stream.npz", "model_f8_stream_compressed.npz"}) {
    const Bytes s = read_bytes(fixture(name));
    for (const std::size_t lo : layout(s).local) {
      CHECK((le16(s, lo + 6) & 8) == 8);
      CHECK(le32(s, lo + 14) == 0);
    }
  }
}

TEMPLATE_TEST_CASE("np.savez and np.savez_compressed files load into a model with exact values", "[npz]", float,
                   double) {
  using T = TestType;
  for (const auto& [file, f8] : std::vector<std::pair<std::string, bool>>{{"model_f4.npz", false},
                                                                          {"model_f4_compressed.npz", false},
                                                                          {"model_f4_stream.npz", false},
                                                                          {"model_f8.npz", true},
                                                                          {"model_f8_compressed.npz", true},
                                                                          {"model_f8_stream_compressed.npz", true}}) {
    INFO(file);
    Model<T> m;
    m.mark();
    cio::load_npz(m.vars, fixture(file));
    check_fixture_values(m, f8);
  }
}

TEST_CASE("read_npz returns numpy's arrays with their names, dtypes, shapes and bits", "[npz]") {
  const std::vector<std::uint32_t> special_f4{0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u,
                                              0x7FA00001u, 0x00000001u, 0x7F7FFFFFu, 0x3F800000u};
  const std::vector<std::uint64_t> special_f8{0x0000000000000000u, 0x8000000000000000u, 0x7FF0000000000000u,
                                              0xFFF0000000000000u, 0x7FF8000000000000u, 0x7FF4000000000001u,
                                              0x0000000000000001u, 0x7FEFFFFFFFFFFFFFu, 0x3FF0000000000000u};
  for (const char* file : {"misc.npz", "misc_compressed.npz"}) {
    INFO(file);
    const cio::NpzArchive a = cio::read_npz(fixture(file));
    CHECK(a.names() == std::vector<std::string>{"scalar", "scalar_f4", "special_f4", "special_f8", "rank3", "empty",
                                                "nested/deep/name"});
    const cio::NpyArray& s = a.at("scalar");
    CHECK(s.dtype() == cio::NpyDType::float64);
    CHECK(s.descr() == "<f8");
    CHECK(s.shape().empty());
    REQUIRE(s.size() == 1);
    CHECK(bits_of(s.float64_data()[0]) == bits_of(1.0 / 3.0));
    CHECK(s.float32_data() == nullptr);
    CHECK(bits_of(s.value<float>(0)) == bits_of(static_cast<float>(1.0 / 3.0)));

    const cio::NpyArray& s4 = a.at("scalar_f4");
    CHECK(s4.dtype() == cio::NpyDType::float32);
    CHECK(s4.shape().empty());
    CHECK(s4.value<double>(0) == -2.5);

    const cio::NpyArray& f4 = a.at("special_f4");
    REQUIRE(f4.shape() == std::vector<cf::Index>{9});
    for (std::size_t k = 0; k < 9; ++k) CHECK(bits_of(f4.float32_data()[k]) == special_f4[k]);
    const cio::NpyArray& f8 = a.at("special_f8");
    REQUIRE(f8.shape() == std::vector<cf::Index>{9});
    for (std::size_t k = 0; k < 9; ++k) CHECK(bits_of(f8.float64_data()[k]) == special_f8[k]);

    const cio::NpyArray& r3 = a.at("rank3");
    REQUIRE(r3.shape() == std::vector<cf::Index>{2, 3, 4});
    for (std::size_t k = 0; k < 24; ++k)
      CHECK(bits_of(r3.float32_data()[k]) == bits_of((static_cast<float>(k) - 5.0f) / 7.0f));

    const cio::NpyArray& e = a.at("empty");
    CHECK(e.shape() == std::vector<cf::Index>{0, 3});
    CHECK(e.size() == 0);
    CHECK(e.dtype() == cio::NpyDType::float64);

    CHECK(a.at("nested/deep/name").values<double>() == std::vector<double>{1.5, -2.25});
    CHECK(a.contains("nested/deep/name"));
    CHECK_FALSE(a.contains("nested/deep"));
  }
}

TEMPLATE_TEST_CASE("save_npz then load_npz is bitwise identical, stored and deflated", "[npz]", float, double) {
  using T = TestType;
  TempDir dir;
  for (const bool compress : {false, true}) {
    INFO("compress " << compress);
    Model<T> a(7);
    // Values that must survive bit for bit: signed zero, infinities, a NaN with a payload, the
    // smallest subnormal, the largest finite value.
    T* k = a.vars[0].value->data();
    k[0] = -T(0);
    k[1] = std::numeric_limits<T>::infinity();
    k[2] = -std::numeric_limits<T>::infinity();
    k[3] = std::numeric_limits<T>::denorm_min();
    k[4] = std::numeric_limits<T>::max();
    if constexpr (sizeof(T) == 4) {
      const std::uint32_t nan = 0x7fa12345u;
      std::memcpy(k + 5, &nan, 4);
    } else {
      const std::uint64_t nan = 0x7ff4000012345678u;
      std::memcpy(k + 5, &nan, 8);
    }
    a.vars[1].value->setConstant(T(0.1));
    const std::string path = dir.file(compress ? "w_compressed.npz" : "w.npz");
    cio::save_npz(a.vars, path, compress);
    for (const std::string& name : dir.entries()) CHECK_THAT(name, !Contains(".tmp-"));  // no temporary left behind

    Model<T> b(8);
    cio::load_npz(b.vars, path);
    for (std::size_t v = 0; v < a.vars.size(); ++v) {
      INFO(a.vars[v].name);
      CHECK(same_bits(*b.vars[v].value, *a.vars[v].value));
    }

    // The file: '<f4' for float, '<f8' for double, TF shapes, stored or deflated as asked, and
    // the same bytes as encode_npz (deterministic: no timestamps).
    const cio::NpzArchive r = cio::read_npz(path);
    CHECK(r.names() == std::vector<std::string>{"rnn/basic_lstm_cell/kernel", "rnn/basic_lstm_cell/bias",
                                                "dense/kernel", "dense/bias"});
    CHECK(r.at(kKernel).descr() == (sizeof(T) == 4 ? "<f4" : "<f8"));
    CHECK(r.at(kKernel).shape() == std::vector<cf::Index>{7, 16});
    CHECK(r.at("rnn/basic_lstm_cell/bias").shape() == std::vector<cf::Index>{16});
    const Bytes file = read_bytes(path);
    for (const std::size_t lo : layout(file).local) CHECK(le16(file, lo + 8) == (compress ? 8 : 0));
    CHECK(file == cio::encode_npz(cio::to_npz_archive(a.vars), compress));
    CHECK(cio::encode_npz(cio::to_npz_archive(a.vars), compress) == file);
  }
}

TEST_CASE("write_npz and read_npz keep arrays of any rank bitwise, and the .npy header is numpy's", "[npz]") {
  cio::NpzArchive a;
  a.add("scalar", cio::NpyArray({}, std::vector<double>{-0.0}));
  a.add("rank3/t", cio::NpyArray({2, 1, 3}, std::vector<float>{1, 2, 3, 4, 5, -6.5f}));
  a.add("empty", cio::NpyArray({0, 4}, std::vector<float>{}));
  a.add("w\xc3\xa9ight", cio::NpyArray({2}, std::vector<double>{1e300, -1e-300}));  // UTF-8 name
  a.add("m", cio::NpyArray({7, 16}, std::vector<float>(112, 0.5f)));
  TempDir dir;
  for (const bool compress : {false, true}) {
    const std::string path = dir.file("a.npz");
    cio::write_npz(path, a, compress);
    CHECK(same_archive(cio::read_npz(path), a));
    const Bytes enc = cio::encode_npz(a, compress);
    CHECK(read_bytes(path) == enc);
    CHECK(same_archive(cio::parse_npz(enc.data(), enc.size()), a));
  }
  // The stored member of "m": numpy's header, padded so the data starts at a multiple of 64.
  const Bytes enc = cio::encode_npz(a, false);
  const Layout l = layout(enc);
  const std::size_t d = data_offset(enc, l.local[4]);
  const std::string magic(enc.begin() + static_cast<std::ptrdiff_t>(d),
                          enc.begin() + static_cast<std::ptrdiff_t>(d + 8));
  CHECK(magic == std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t hlen = le16(enc, d + 8);
  CHECK((10 + hlen) % 64 == 0);
  const std::string header(enc.begin() + static_cast<std::ptrdiff_t>(d + 10),
                           enc.begin() + static_cast<std::ptrdiff_t>(d + 10 + hlen));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 16), }";
  CHECK(header == dict + std::string(hlen - dict.size() - 1, ' ') + "\n");
  // The 1-D and 0-D shapes are written as Python writes them: (2,) and ().
  const Bytes one = cio::encode_npz(cio::NpzArchive().add("v", cio::NpyArray({2}, std::vector<float>{1, 2})), false);
  CHECK_THAT(std::string(one.begin(), one.end()), Contains("'shape': (2,), }"));
  const Bytes zero = cio::encode_npz(cio::NpzArchive().add("s", cio::NpyArray({}, std::vector<float>{1})), false);
  CHECK_THAT(std::string(zero.begin(), zero.end()), Contains("'shape': (), }"));
  // The member name is flagged UTF-8 (bit 11) when it is not ASCII.
  CHECK(le16(enc, l.local[3] + 6) == 0x0800);
  CHECK(le16(enc, l.local[0] + 6) == 0);
}

TEMPLATE_TEST_CASE("unsupported arrays are IOErrors naming the file, the member and what was found", "[npz]", float,
                   double) {
  using T = TestType;
  const std::vector<std::pair<std::string, std::string>> cases{
      {"bad_big_endian.npz",
       "member 'dense/bias.npy': unsupported dtype '>f4' (big-endian float32); cellflow reads "
       "'<f4' (float32) and '<f8' (float64)"},
      {"bad_int64.npz", "member 'dense/bias.npy': unsupported dtype '<i8' (int64)"},
      {"bad_uint8.npz", "member 'dense/bias.npy': unsupported dtype '|u1' (uint8)"},
      {"bad_float16.npz", "member 'dense/bias.npy': unsupported dtype '<f2' (float16)"},
      {"bad_object.npz", "member 'dense/bias.npy': unsupported dtype '|O' (Python objects, pickled)"},
      {"bad_structured.npz", "member 'dense/bias.npy': unsupported dtype: a structured dtype (a list of fields)"},
      {"bad_fortran.npz",
       "member 'dense/kernel.npy': Fortran (column-major) order, shape [4, 2]; cellflow reads C "
       "order (save np.ascontiguousarray(a))"},
  };
  for (const auto& [file, what] : cases) {
    INFO(file);
    const std::string path = fixture(file);
    Model<T> m;
    m.mark();
    const auto before = m.snapshot();
    CHECK_THAT(error_of<cf::IOError>([&] { cio::load_npz(m.vars, path); }),
               Contains("load_npz: '" + path + "': " + what));
    CHECK(m.unchanged(before));
    // allow_extra does not excuse a variable's own array.
    CHECK_THAT(error_of<cf::IOError>([&] { cio::load_npz(m.vars, path, cio::NpzLoadOptions{true}); }), Contains(what));
    CHECK(m.unchanged(before));
    CHECK_THAT(error_of<cf::IOError>([&] { cio::read_npz(path); }), Contains("read_npz: '" + path + "': " + what));
  }
}

TEMPLATE_TEST_CASE("an archive that does not fit the model: one error listing every problem, the model untouched",
                   "[npz]", float, double) {
  using T = TestType;
  Model<T> m;
  m.mark();
  const auto before = m.snapshot();

  SECTION("missing variables") {
    const std::string path = fixture("bad_missing.npz");
    const std::string msg = error_of<cf::ValueError>([&] { cio::load_npz(m.vars, path); });
    CHECK(msg == "load_npz: '" + path +
                     "': the archive does not match the model's 4 variables (2 problems):\n"
                     "  missing: rnn/basic_lstm_cell/bias [16]\n"
                     "  missing: dense/bias [2]");
  }
  SECTION("wrong shapes: a ShapeError with expected and given shapes") {
    const std::string path = fixture("bad_shape.npz");
    const std::string msg = error_of<cf::ShapeError>([&] { cio::load_npz(m.vars, path); });
    CHECK(msg == "load_npz: '" + path +
                     "': the archive does not match the model's 4 variables (3 problems):\n"
                     "  wrong shape: rnn/basic_lstm_cell/kernel: expected [7, 16], given [16, 7] (<f4)\n"
                     "  wrong shape: rnn/basic_lstm_cell/bias: expected [16], given [1, 16] (<f4)\n"
                     "  wrong shape: dense/bias: expected [2], given [3] (<f4)");
  }
  SECTION("extra arrays, unless allow_extra") {
    const std::string path = fixture("bad_extra.npz");
    const std::string msg = error_of<cf::ValueError>([&] { cio::load_npz(m.vars, path); });
    CHECK(msg == "load_npz: '" + path +
                     "': the archive does not match the model's 4 variables (2 problems):\n"
                     "  extra: rnn/basic_lstm_cell/kernel/Adam [7, 16] (<f4) is not a variable of the model\n"
                     "  extra: beta1_power [] (<f4) is not a variable of the model\n"
                     "(NpzLoadOptions::allow_extra = true ignores extra arrays)");
    REQUIRE(m.unchanged(before));
    cio::NpzLoadOptions opt;
    opt.allow_extra = true;
    cio::load_npz(m.vars, path, opt);
    check_fixture_values(m, false);
    return;
  }
  SECTION("missing, misshapen and extra at once") {
    const std::string path = fixture("bad_mixed.npz");
    const std::string msg = error_of<cf::ValueError>([&] { cio::load_npz(m.vars, path); });
    CHECK_THAT(msg,
               Contains("load_npz: '" + path + "': the archive does not match the model's 4 variables (3 problems):") &&
                   Contains("\n  missing: dense/bias [2]") &&
                   Contains("\n  wrong shape: dense/kernel: expected [4, 2], given [2, 4] (<f4)") &&
                   Contains("\n  extra: dense/kernel/Adam [4, 2] (<f4) is not a variable of the model"));
    const std::string lenient =
        error_of<cf::ValueError>([&] { cio::load_npz(m.vars, path, cio::NpzLoadOptions{true}); });
    CHECK_THAT(lenient, Contains("(2 problems)") && Contains("missing: dense/bias [2]") &&
                            Contains("wrong shape: dense/kernel"));
    CHECK_THAT(lenient, !Contains("extra"));
  }
  CHECK(m.unchanged(before));
}

TEMPLATE_TEST_CASE("a TF1 dump of tf.global_variables() loads with allow_extra, int64 global_step and all", "[npz]",
                   float, double) {
  using T = TestType;
  const std::string path = fixture("tf_global_variables.npz");
  Model<T> m;
  m.mark();
  const auto before = m.snapshot();
  // Strict: every member is decoded, and global_step is '<i8'.
  CHECK_THAT(error_of<cf::IOError>([&] { cio::load_npz(m.vars, path); }),
             Contains("load_npz: '" + path + "': member 'global_step.npy': unsupported dtype '<i8' (int64)"));
  CHECK(m.unchanged(before));
  cio::NpzLoadOptions opt;
  opt.allow_extra = true;
  cio::load_npz(m.vars, path, opt);
  check_fixture_values(m, false);
}

TEMPLATE_TEST_CASE("assign_npz converts float64 to float by rounding and is all or nothing", "[npz]", float, double) {
  using T = TestType;
  Model<T> m;
  m.mark();
  const auto before = m.snapshot();
  cio::NpzArchive a;
  for (const auto& v : m.vars) {
    std::vector<double> values(static_cast<std::size_t>(v.size()));
    for (std::size_t k = 0; k < values.size(); ++k) values[k] = (static_cast<double>(k) + 1.0) / 3.0;
    a.add(v.name, cio::NpyArray(v.shape, values));
  }
  cio::NpzArchive partial = a;
  partial.add("extra", cio::NpyArray({1}, std::vector<float>{1}));
  CHECK_THAT(error_of<cf::ValueError>([&] { cio::assign_npz(m.vars, partial, "partial.npz"); }),
             Contains("assign_npz: 'partial.npz': the archive does not match") && Contains("extra: extra [1] (<f4)"));
  CHECK(m.unchanged(before));
  cio::assign_npz(m.vars, a);
  for (const auto& v : m.vars)
    for (cf::Index k = 0; k < v.size(); ++k)
      REQUIRE(bits_of(v.value->data()[k]) == bits_of(static_cast<T>((static_cast<double>(k) + 1.0) / 3.0)));
}

TEST_CASE("corrupt or unsupported ZIP structure is an IOError naming the problem", "[npz]") {
  const Bytes content = npy(f4_dict("(2,)"), le_bytes(std::vector<float>{1.5f, -2.5f}));
  REQUIRE(content.size() == 136);  // 128-byte header (numpy's padding) + 8 bytes of data
  const Bytes content_b = npy(f4_dict("(1,)"), le_bytes(std::vector<float>{3.0f}));
  const Bytes good = build_zip({stored("a.npy", content), stored("b.npy", content_b)});
  {
    const cio::NpzArchive a = cio::parse_npz(good.data(), good.size(), "mem.npz");  // the builder itself is right
    CHECK(a.at("a").values<float>() == std::vector<float>{1.5f, -2.5f});
    CHECK(a.at("b").values<float>() == std::vector<float>{3.0f});
  }
  const Layout l = layout(good);

  SECTION("empty, too short, a .npy file, not a ZIP") {
    CHECK_THAT(parse_error({}), Contains("parse_npz: 'mem.npz': empty (0 bytes), not an .npz archive"));
    CHECK_THAT(parse_error(Bytes(10, 'P')),
               Contains("10 bytes, too short for the 22-byte end-of-central-directory record"));
    CHECK_THAT(parse_error(content), Contains("this is a single .npy array, not an .npz archive"));
    CHECK_THAT(parse_error(Bytes(100, 0x42)), Contains("no end-of-central-directory record"));
    CHECK_THAT(error_of<cf::IOError>([] { cio::parse_npz(nullptr, 5, "nil"); }), Contains("null data pointer"));
  }
  SECTION("an archive with no member is an empty archive") {
    const Bytes none = build_zip({});
    CHECK(cio::parse_npz(none.data(), none.size()).empty());
  }
  SECTION("CRC-32 mismatch in the data") {
    Bytes b = good;
    b[data_offset(b, l.local[0]) + content.size() - 1] ^= 0x40;
    CHECK_THAT(parse_error(b), Contains("parse_npz: 'mem.npz': member 'a.npy': CRC-32 mismatch: the archive says 0x"));
  }
  SECTION("CRC-32 field wrong in both headers") {
    Bytes b = good;
    set32(b, l.local[1] + 14, le32(b, l.local[1] + 14) ^ 1u);
    set32(b, l.central[1] + 16, le32(b, l.central[1] + 16) ^ 1u);
    CHECK_THAT(parse_error(b), Contains("member 'b.npy': CRC-32 mismatch"));
  }
  SECTION("local header disagrees with the central directory") {
    Bytes b = good;
    set32(b, l.local[0] + 14, le32(b, l.local[0] + 14) ^ 1u);
    CHECK_THAT(parse_error(b), Contains("member 'a.npy': local header at offset 0: CRC-32 0x") &&
                                   Contains("the central directory says"));
    Bytes n = good;
    n[l.local[1] + 30] = 'c';
    CHECK_THAT(parse_error(n), Contains("member 'b.npy': local header at offset ") &&
                                   Contains("names the member 'c.npy' (the central directory disagrees)"));
    Bytes s = good;
    set32(s, l.local[0], 0x04034b51);
    CHECK_THAT(parse_error(s),
               Contains("member 'a.npy': local header at offset 0: signature 0x04034b51, expected 0x04034b50"));
  }
  SECTION("duplicate names") {
    const Bytes b = build_zip({stored("a.npy", content), stored("a.npy", content_b)});
    CHECK_THAT(parse_error(b), Contains("member 'a.npy': duplicate member name (central directory entries 0 and 1)"));
  }
  SECTION("a member that is not .npy") {
    CHECK_THAT(
        parse_error(build_zip({stored("a.txt", content)})),
        Contains("member 'a.txt': not a .npy array: every member of an .npz archive is named \"<array name>.npy\""));
    CHECK_THAT(parse_error(build_zip({stored(".npy", content)})), Contains("member '.npy': an empty array name"));
    CHECK_THAT(parse_error(build_zip({stored(std::string("a\0b.npy", 7), content)})),
               Contains("member 'a\\x00b.npy': the name contains a NUL byte"));
  }
  SECTION("unsupported compression, encryption and flags") {
    RawMember m = stored("a.npy", content);
    m.method = 12;
    CHECK_THAT(parse_error(build_zip({m})), Contains("member 'a.npy': compression method 12 (bzip2) is not supported; "
                                                     "cellflow reads stored (0) and deflated (8) members"));
    RawMember e = stored("a.npy", content);
    e.flags = 1;
    CHECK_THAT(parse_error(build_zip({e})), Contains("member 'a.npy': encrypted"));
    RawMember f = stored("a.npy", content);
    f.flags = 0x0020;
    CHECK_THAT(parse_error(build_zip({f})), Contains("unsupported ZIP flags 0x00000020"));
  }
  SECTION("sizes: stored mismatch, total over the cap, more than deflate can produce") {
    Bytes b = good;
    set32(b, l.central[0] + 24, le32(b, l.central[0] + 24) + 1);
    CHECK_THAT(parse_error(b), Contains("member 'a.npy': stored (uncompressed) member with a compressed size of"));
    Bytes cap = good;
    for (const std::size_t c : l.central) {
      set32(cap, c + 20, 0xC0000000u);
      set32(cap, c + 24, 0xC0000000u);
    }
    CHECK_THAT(parse_error(cap),
               Contains("member 'b.npy': the members' total uncompressed size reaches 6442450944 bytes, "
                        "over the 4294967296-byte limit"));
    RawMember d = deflated("a.npy", content);
    d.usize = static_cast<std::uint32_t>(d.payload.size() * 1032 + 1);
    CHECK_THAT(parse_error(build_zip({d})),
               Contains("member 'a.npy': claims ") && Contains("deflate expands at most 1032 times"));
  }
  SECTION("deflate streams: corrupt, truncated, too long, too short, trailing bytes") {
    RawMember bad = deflated("a.npy", content);
    bad.payload[0] = 0xff;  // BFINAL 1, BTYPE 11: a reserved block type
    CHECK_THAT(parse_error(build_zip({bad})),
               Contains("member 'a.npy': corrupt deflate stream (zlib error -3: invalid block type)"));
    RawMember cut = deflated("a.npy", content);
    cut.payload.resize(cut.payload.size() / 2);
    CHECK_THAT(parse_error(build_zip({cut})), Contains("member 'a.npy': corrupt deflate stream: the ") &&
                                                  Contains("compressed bytes end before the stream does"));
    RawMember longer = deflated("a.npy", content);
    longer.usize -= 1;
    CHECK_THAT(parse_error(build_zip({longer})),
               Contains("member 'a.npy': the deflate stream decompresses to more than the " +
                        std::to_string(content.size() - 1) + " bytes the archive promises"));
    RawMember shorter = deflated("a.npy", content);
    shorter.usize += 1;
    CHECK_THAT(parse_error(build_zip({shorter})),
               Contains("member 'a.npy': the deflate stream decompresses to " + std::to_string(content.size()) +
                        " bytes, the archive promises " + std::to_string(content.size() + 1)));
    RawMember trailing = deflated("a.npy", content);
    trailing.payload.insert(trailing.payload.end(), {1, 2, 3});
    CHECK_THAT(parse_error(build_zip({trailing})), Contains("member 'a.npy': corrupt deflate stream: 3 of its ") &&
                                                       Contains("follow the end of the stream"));
  }
  SECTION("zip64 local headers and data descriptors, as Python's zipfile writes them") {
    for (const bool zip64 : {false, true})
      for (const bool descriptor : {false, true})
        for (const bool compress : {false, true}) {
          RawMember m = compress ? deflated("a.npy", content) : stored("a.npy", content);
          m.zip64_local = zip64;
          m.descriptor = descriptor;
          RawMember n = stored("b.npy", content_b);
          n.descriptor = descriptor;
          const Bytes b = build_zip({m, n});
          const cio::NpzArchive a = cio::parse_npz(b.data(), b.size());
          CHECK(a.at("a").values<float>() == std::vector<float>{1.5f, -2.5f});
          CHECK(a.at("b").values<float>() == std::vector<float>{3.0f});
        }
    RawMember m = stored("a.npy", content);
    m.descriptor = true;
    Bytes b = build_zip({m});
    const std::size_t desc = data_offset(b, 0) + content.size();
    set32(b, desc + 4, le32(b, desc + 4) ^ 1u);  // the descriptor's CRC
    CHECK_THAT(parse_error(b),
               Contains("member 'a.npy': local header at offset 0: the data descriptor after its data") &&
                   Contains("is missing or disagrees with the central directory"));
  }
  SECTION("zip64 sizes without a zip64 field, malformed extra fields") {
    Bytes b = good;
    set32(b, l.central[0] + 24, 0xffffffffu);
    CHECK_THAT(parse_error(b), Contains("member 'a.npy': sizes or offset of 0xffffffff without a zip64 extra field"));
    RawMember z = stored("a.npy", content);
    z.zip64_local = true;
    Bytes e = build_zip({z});
    set16(e, 30 + 5 + 2, 100);  // the zip64 record claims 100 bytes in a 20-byte extra field
    CHECK_THAT(parse_error(e), Contains("member 'a.npy': local header at offset 0: malformed extra field"));
  }
  SECTION("end-of-central-directory problems: zip64, multi-disk, bytes prepended, wrong counts") {
    Bytes z = good;
    Bytes locator;
    put32(locator, 0x07064b50);
    locator.resize(20, 0);
    z.insert(z.begin() + static_cast<std::ptrdiff_t>(l.eocd), locator.begin(), locator.end());
    CHECK_THAT(parse_error(z), Contains("zip64 end-of-central-directory record") && Contains("not supported"));
    Bytes disk = good;
    set16(disk, l.eocd + 4, 1);
    CHECK_THAT(parse_error(disk), Contains("multi-disk (split) ZIP archive"));
    Bytes pre = good;
    pre.insert(pre.begin(), 7, 0);
    CHECK_THAT(parse_error(pre), Contains("does not end where that record starts"));
    Bytes count = good;
    set16(count, l.eocd + 8, 1);
    set16(count, l.eocd + 10, 1);
    CHECK_THAT(parse_error(count), Contains("bytes after its 1 entries"));
    Bytes many = good;
    set16(many, l.eocd + 8, 60000);
    set16(many, l.eocd + 10, 60000);
    CHECK_THAT(parse_error(many), Contains("declares 60000 members"));
    Bytes sig = good;
    set32(sig, l.central[1], 0x02014b51);
    CHECK_THAT(parse_error(sig), Contains("central directory entry 1 at offset ") && Contains("signature 0x02014b51"));
    Bytes comment = good;  // a ZIP comment after the end record is allowed
    set16(comment, l.eocd + 20, 5);
    append(comment, std::string("hello"));
    CHECK(cio::parse_npz(comment.data(), comment.size()).size() == 2);
  }
  SECTION("overlapping members") {
    // Member a's data is a whole local header + data of member b; the directory points into it.
    Bytes inner;
    put32(inner, 0x04034b50);
    put16(inner, 20);
    put16(inner, 0);
    put16(inner, 0);
    put16(inner, 0);
    put16(inner, 0x21);
    put32(inner, crc_of(content_b));
    put32(inner, static_cast<std::uint32_t>(content_b.size()));
    put32(inner, static_cast<std::uint32_t>(content_b.size()));
    put16(inner, 5);
    put16(inner, 0);
    append(inner, std::string("b.npy"));
    append(inner, content_b);
    Bytes b = build_zip({stored("a.npy", inner), stored("b.npy", content_b)});
    const Layout lb = layout(b);
    set32(b, lb.central[1] + 42, static_cast<std::uint32_t>(data_offset(b, 0)));
    CHECK_THAT(parse_error(b), Contains("member 'b.npy': its local header at offset 35 lies inside member 'a.npy'"));
  }
}

TEST_CASE("malformed .npy members are IOErrors naming the member and the problem", "[npz]") {
  const Bytes two = le_bytes(std::vector<float>{1.5f, -2.5f});
  const auto err = [](const Bytes& member) { return parse_error(one_member(member)); };
  SECTION("magic, version, header length") {
    Bytes m = npy(f4_dict("(2,)"), two);
    m[1] = 'X';
    CHECK_THAT(err(m), Contains("member 'x.npy': not a .npy array: the data starts with \"\\x93XUMPY\""));
    Bytes v = npy(f4_dict("(2,)"), two);
    v[6] = 4;
    CHECK_THAT(err(v),
               Contains("member 'x.npy': unsupported .npy format version 4.0 (cellflow reads 1.0, 2.0 and 3.0)"));
    CHECK_THAT(err(Bytes(m.begin(), m.begin() + 9)), Contains("truncated .npy data: 9 bytes"));
    Bytes h = npy(f4_dict("(2,)"), {});
    set16(h, 8, 200);
    CHECK_THAT(
        err(h),
        Contains(
            "member 'x.npy': truncated .npy header: it claims 200 bytes, the member has 118 after the 10-byte prefix"));
    Bytes big = npy(f4_dict("(2,)"), two, 2);
    set32(big, 8, 70000);
    CHECK_THAT(err(big), Contains(".npy header length 70000 (bytes 8..11) exceeds the 65536-byte limit"));
  }
  SECTION("versions 2.0 and 3.0 read like 1.0") {
    for (const int major : {2, 3}) {
      const Bytes z = one_member(npy(f4_dict("(2,)"), two, major));
      CHECK(cio::parse_npz(z.data(), z.size()).at("x").values<float>() == std::vector<float>{1.5f, -2.5f});
    }
  }
  SECTION("header dicts") {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"[1, 2]", "the header is not a Python dict literal"},
        {"{'descr': '<f4', 'fortran_order': False}", "no 'shape' key"},
        {"{'descr': '<f4', 'shape': (2,)}", "no 'fortran_order' key"},
        {"{'fortran_order': False, 'shape': (2,)}", "no 'descr' key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "key 'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "'shape' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "'shape' is not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative dimension -2 in 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ('2',)}", "'shape' holds something other than integers"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}", "expected ',' or ')' at header byte"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "is too large"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "'fortran_order' is not True or False"},
        {"{'descr': 4, 'fortran_order': False, 'shape': (2,)}", "'descr' is not a string"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", "expected ':' after a dict key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "unexpected characters after the dict"},
        {"{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,)}", "unexpected character 'N'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'"},
        {"{'descr': '<f4", "unterminated string"},
        {"{'descr': " + std::string(40, '(') + "1" + std::string(40, ')') + "}", "nested more than 16 levels deep"},
        {"{1: 2}", "a key is not a string"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string("(") +
             [] {
               std::string s;
               for (int k = 0; k < 65; ++k) s += "1,";
               return s;
             }() +
             ")}",
         "'shape' has 65 dimensions, at most 64"},
    };
    for (const auto& [dict, what] : cases) {
      INFO(dict);
      CHECK_THAT(err(npy(dict, two)),
                 Contains("parse_npz: 'mem.npz': member 'x.npy': malformed .npy header: ") && Contains(what));
    }
  }
  SECTION("data size: truncated, trailing bytes") {
    CHECK_THAT(err(npy(f4_dict("(3,)"), two)),
               Contains("member 'x.npy': truncated array data: shape [3] of '<f4' needs more than 8 bytes"));
    Bytes more = two;
    more.push_back(0);
    CHECK_THAT(err(npy(f4_dict("(2,)"), more)),
               Contains("member 'x.npy': 1 bytes after the array data (shape [2] of '<f4' takes 8 bytes"));
  }
  SECTION("accepted variants: Python 2 longs, extra spaces, 0-D, Fortran order where it is the same layout") {
    const auto parse1 = [](const std::string& dict, const Bytes& data) {
      const Bytes z = one_member(npy(dict, data));
      return cio::parse_npz(z.data(), z.size()).at("x");
    };
    CHECK(parse1("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", two).shape() ==
          std::vector<cf::Index>{2});
    CHECK(parse1("{ \"shape\" : ( 1 , 2 ) ,\n 'fortran_order':False,'descr':'<f4'}", two).shape() ==
          std::vector<cf::Index>{1, 2});
    CHECK(parse1("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", le_bytes(std::vector<float>{7}))
              .value<float>(0) == 7.0f);
    CHECK(parse1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1)}", two).values<float>() ==
          std::vector<float>{1.5f, -2.5f});
    CHECK(parse1("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 5)}", {}).size() == 0);
    CHECK_THAT(err(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}", two)),
               Contains("Fortran (column-major) order, shape [2, 2]"));
  }
}

TEST_CASE("a header claiming a huge array is rejected without allocating for it", "[npz]") {
  const AddressSpaceCap cap;  // over 512 MiB more would now throw std::bad_alloc, failing the test
  const Bytes eight = le_bytes(std::vector<float>{1, 2});
  CHECK_THAT(
      parse_error(one_member(npy(f4_dict("(1000000, 1000000)"), eight))),
      Contains("member 'x.npy': truncated array data: shape [1000000, 1000000] of '<f4' needs more than 8 bytes"));
  // A product beyond 64 bits must not wrap around to something small.
  CHECK_THAT(parse_error(one_member(npy(f4_dict("(1099511627776, 1099511627776, 1099511627776, 16)"), eight))),
             Contains("truncated array data"));
  {  // a zero dimension makes the product 0 whatever the others are: a valid empty array
    const Bytes z = one_member(npy(f4_dict("(4611686018427387904, 0)"), {}));
    CHECK(cio::parse_npz(z.data(), z.size()).at("x").size() == 0);
  }
  // A deflated member promising 600 MB from 600 KB of incompressible data (under deflate's
  // 1032:1 bound): the buffer grows with the real output only, and the lie is reported.
  std::mt19937 gen(3);
  Bytes noise(600 * 1024);
  for (auto& b : noise) b = static_cast<std::uint8_t>(gen());
  RawMember m = deflated("x.npy", noise);
  m.usize = 600u * 1024u * 1024u;
  CHECK_THAT(
      parse_error(build_zip({m})),
      Contains("member 'x.npy': the deflate stream decompresses to 614400 bytes, the archive promises 629145600"));
  // The same through a file and load_npz.
  TempDir dir;
  write_bytes(dir.file("lie.npz"), build_zip({m}));
  Model<float> model;
  CHECK_THAT(
      error_of<cf::IOError>([&] { cio::load_npz(model.vars, dir.file("lie.npz")); }),
      Contains("load_npz: '" + dir.file("lie.npz") + "': member 'x.npy': the deflate stream decompresses to 614400"));
}

TEST_CASE("truncating an archive anywhere or flipping its bytes never crashes: IOError or the same arrays", "[npz]") {
  Model<float> m(5);
  cio::NpzArchive a = cio::to_npz_archive(m.vars);
  a.add("scalar", cio::NpyArray({}, std::vector<double>{0.25}));
  a.add("cube", cio::NpyArray({2, 2, 2}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}));
  std::vector<std::pair<std::string, Bytes>> archives{
      {"stored", cio::encode_npz(a, false)},
      {"deflated", cio::encode_npz(a, true)},
      {"numpy savez", read_bytes(fixture("model_f4.npz"))},
      {"numpy compressed", read_bytes(fixture("model_f8_compressed.npz"))},
      {"descriptors", read_bytes(fixture("model_f8_stream_compressed.npz"))}};
  for (const auto& [what, bytes] : archives) {
    INFO(what);
    const cio::NpzArchive original = cio::parse_npz(bytes.data(), bytes.size());
    std::size_t truncation_errors = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      try {
        cio::parse_npz(bytes.data(), n, "cut");
      } catch (const cf::IOError&) {
        ++truncation_errors;
      }
    }
    CHECK(truncation_errors == bytes.size());

    std::size_t errors = 0, same = 0, different = 0;
    const auto attempt = [&](const Bytes& b) {
      try {
        const cio::NpzArchive r = cio::parse_npz(b.data(), b.size(), "flipped");
        if (same_archive(r, original))
          ++same;
        else
          ++different;
      } catch (const cf::IOError&) {
        ++errors;
      }
    };
    for (std::size_t k = 0; k < bytes.size(); ++k)
      for (const std::uint8_t mask : {0x01, 0x80, 0xff}) {
        Bytes b = bytes;
        b[k] ^= mask;
        attempt(b);
      }
    std::mt19937 gen(11);
    for (int trial = 0; trial < 2000; ++trial) {
      Bytes b = bytes;
      const int flips = 1 + static_cast<int>(gen() % 8);
      for (int f = 0; f < flips; ++f) b[gen() % b.size()] = static_cast<std::uint8_t>(gen());
      attempt(b);
    }
    CHECK(different == 0);
    CHECK(errors > 3 * bytes.size() / 2);  // most flips are caught ...
    CHECK(same > 0);                       // ... some hit ignorable bytes (dates, versions, attributes)
  }
}

TEST_CASE("a failed load changes nothing, through files too", "[npz]") {
  TempDir dir;
  Model<double> src(3);
  cio::save_npz(src.vars, dir.file("good.npz"));
  const Bytes good = read_bytes(dir.file("good.npz"));
  Model<double> m;
  m.mark();
  const auto before = m.snapshot();
  std::mt19937 gen(5);
  int failures = 0;
  for (int trial = 0; trial < 200; ++trial) {
    Bytes b = good;
    if (trial % 2 == 0)
      b.resize(gen() % b.size());
    else
      b[gen() % b.size()] ^= static_cast<std::uint8_t>(1 + gen() % 255);
    write_bytes(dir.file("bad.npz"), b);
    try {
      cio::load_npz(m.vars, dir.file("bad.npz"));
      m.mark();  // an ignorable byte: it loaded; start again from the marked values
    } catch (const cf::IOError& e) {
      ++failures;
      CHECK_THAT(std::string(e.what()), Contains("load_npz: '" + dir.file("bad.npz") + "': "));
      REQUIRE(m.unchanged(before));
    }
  }
  CHECK(failures > 150);
}

TEST_CASE("read errors name the file", "[npz]") {
  TempDir dir;
  Model<float> m;
  const std::string missing = dir.file("absent.npz");
  CHECK_THAT(error_of<cf::IOError>([&] { cio::read_npz(missing); }),
             Contains("read_npz: '" + missing + "': cannot open: No such file or directory"));
  CHECK_THAT(error_of<cf::IOError>([&] { cio::load_npz(m.vars, missing); }), Contains("load_npz: '" + missing + "'"));
  CHECK_THAT(error_of<cf::IOError>([&] { cio::read_npz(dir.str()); }), Contains("is a directory, not an .npz file"));
  write_bytes(dir.file("empty.npz"), {});
  CHECK_THAT(error_of<cf::IOError>([&] { cio::read_npz(dir.file("empty.npz")); }),
             Contains("read_npz: '" + dir.file("empty.npz") + "': empty (0 bytes)"));
}

TEST_CASE("saving is atomic: failures throw IOError and leave the previous file byte-identical", "[npz]") {
  TempDir dir;
  Model<float> a(1), b(2);
  const std::string path = dir.file("w.npz");
  cio::save_npz(a.vars, path);
  const Bytes old = read_bytes(path);

  SECTION("a directory that does not exist") {
    const std::string nowhere = dir.file("nope/w.npz");
    CHECK_THAT(error_of<cf::IOError>([&] { cio::save_npz(b.vars, nowhere); }),
               Contains("save_npz: '" + nowhere + "': the directory '" + dir.file("nope") + "' does not exist"));
    CHECK_FALSE(fs::exists(dir.file("nope")));
  }
  SECTION("a read-only target") {
    fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    CHECK_THAT(error_of<cf::IOError>([&] { cio::save_npz(b.vars, path, false); }),
               Contains("save_npz: '" + path + "': the existing file is read-only; not replacing it"));
    CHECK_THAT(error_of<cf::IOError>([&] { cio::write_npz(path, cio::NpzArchive()); }),
               Contains("write_npz: '" + path + "': the existing file is read-only"));
    CHECK(read_bytes(path) == old);
  }
  SECTION("a directory as target") {
    CHECK_THAT(error_of<cf::IOError>([&] { cio::save_npz(b.vars, dir.str()); }), Contains("is a directory"));
  }
#if defined(__linux__)
  SECTION("a FIFO as target is not replaced") {
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0644) == 0);
    CHECK_THAT(error_of<cf::IOError>([&] { cio::save_npz(b.vars, dir.file("fifo")); }),
               Contains("exists and is not a regular file"));
    CHECK(fs::is_fifo(dir.file("fifo")));
    fs::remove(dir.file("fifo"));
  }
  SECTION("a directory without write permission (when not root)") {
    if (::geteuid() != 0) {
      const std::string sub = dir.file("ro");
      fs::create_directory(sub);
      cio::save_npz(a.vars, sub + "/w.npz");
      fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
      CHECK_THAT(error_of<cf::IOError>([&] { cio::save_npz(b.vars, sub + "/w.npz"); }),
                 Contains("cannot create the temporary file"));
      fs::permissions(sub, fs::perms::owner_all);
      CHECK(read_bytes(sub + "/w.npz") == old);
      fs::remove_all(sub);
    }
  }
#endif
  SECTION("a successful save replaces the file, keeps its permissions and leaves no temporary") {
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    cio::save_npz(b.vars, path);
    CHECK(read_bytes(path) == cio::encode_npz(cio::to_npz_archive(b.vars)));
    CHECK((fs::status(path).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  }
  SECTION("saving through a symbolic link replaces the file it points to") {
    fs::create_symlink(path, dir.file("link.npz"));
    cio::save_npz(b.vars, dir.file("link.npz"));
    CHECK(fs::is_symlink(dir.file("link.npz")));
    CHECK(read_bytes(path) == cio::encode_npz(cio::to_npz_archive(b.vars)));
    fs::remove(dir.file("link.npz"));
  }
  if (fs::exists(path)) fs::permissions(path, fs::perms::owner_all);
  CHECK(dir.entries() == std::vector<std::string>{"w.npz"});
}

TEST_CASE("NpyArray and NpzArchive check their arguments", "[npz]") {
  CHECK_THAT(error_of<cf::ShapeError>([] {
               cio::NpyArray({2, 3}, std::vector<float>(5));
             }),
             Contains("NpyArray: shape [2, 3] needs 6 values, given 5"));
  CHECK_THAT(error_of<cf::ShapeError>([] { cio::NpyArray({-1}, std::vector<double>{}); }),
             Contains("negative dimension in shape [-1]"));
  CHECK_THAT(error_of<cf::ShapeError>([] {
               cio::NpyArray({cf::Index(1) << 40, cf::Index(1) << 40}, std::vector<float>{});
             }),
             Contains("needs more than"));
  const cio::NpyArray a({2, 2}, std::vector<double>{1.0 / 3.0, 2, 3, 4});
  CHECK(bits_of(a.values<float>()[0]) == bits_of(static_cast<float>(1.0 / 3.0)));
  CHECK_THAT(error_of<cf::ValueError>([&] { a.value<double>(4); }), Contains("index 4 out of range for 4 elements"));
  const cf::Matrix<float> mat = a.to_matrix<float>();
  CHECK(mat.rows() == 2);
  CHECK(mat(1, 0) == 3.0f);
  CHECK(cio::NpyArray({3}, std::vector<float>{1, 2, 3}).to_matrix<double>().rows() == 1);
  CHECK(cio::NpyArray({}, std::vector<float>{1}).to_matrix<double>().size() == 1);
  CHECK_THAT(error_of<cf::ShapeError>([] {
               cio::NpyArray({1, 1, 1}, std::vector<float>{1}).to_matrix<float>();
             }),
             Contains("rank 3"));
  const cio::NpyArray nan1({1}, std::vector<float>{std::numeric_limits<float>::quiet_NaN()});
  CHECK(nan1.bitwise_equal(nan1));
  CHECK_FALSE(nan1.bitwise_equal(cio::NpyArray({1}, std::vector<double>{std::numeric_limits<double>::quiet_NaN()})));
  CHECK_FALSE(
      cio::NpyArray({1}, std::vector<float>{0.0f}).bitwise_equal(cio::NpyArray({1}, std::vector<float>{-0.0f})));
  CHECK(cio::NpyArray().size() == 0);

  cio::NpzArchive z;
  z.add("a", a);
  CHECK_THAT(error_of<cf::ValueError>([&] { z.add("a", a); }), Contains("duplicate array name 'a'"));
  CHECK_THAT(error_of<cf::ValueError>([&] { z.add("", a); }), Contains("empty array name"));
  CHECK_THAT(error_of<cf::ValueError>([&] { z.add(std::string("a\0b", 3), a); }), Contains("contains a NUL byte"));
  CHECK_THAT(error_of<cf::ValueError>([&] { z.add(std::string(65532, 'n'), a); }), Contains("65532 bytes"));
  CHECK_THAT(error_of<cf::ValueError>([&] { z.at("b"); }),
             Contains("no array named 'b'; the archive has 1 arrays:\n  a"));
  CHECK(z.find("b") == nullptr);
  CHECK(z.find("a") != nullptr);
}

}  // namespace test_npz
