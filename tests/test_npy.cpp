// One NumPy .npy array (cellflow/io/npy.hpp), without the .npz archive around it.
//
// numpy-written files (tests/fixtures/npy/, made by tests/fixtures/make_zip_npy_fixtures.py,
// whose docstring gives every value) parse with exact values, versions 1.0, 2.0 and 3.0;
// encode_npy reproduces np.save byte for byte; unsupported and malformed inputs are IOErrors
// "parse_npy: '<source>': ..." and never crash or allocate for a size they merely claim.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "cellflow/io/npy.hpp"

namespace test_npy {

namespace cf = cellflow;
namespace cio = cellflow::io;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Bytes = std::vector<std::uint8_t>;

std::string fixture(const std::string& name) { return std::string(CELLFLOW_FIXTURE_DIR) + "/npy/" + name; }

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

cio::NpyArray parse_file(const std::string& name) {
  const Bytes b = read_bytes(fixture(name));
  return cio::parse_npy(b.data(), b.size(), name);
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

std::uint32_t bits_of(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
std::uint64_t bits_of(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, 8);
  return b;
}

/// A version 1.0 .npy with this header text (padded like numpy's) and `data_bytes` zero bytes.
Bytes npy_with_header(const std::string& dict, std::size_t data_bytes) {
  std::string header = dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  Bytes b = {0x93,
             'N',
             'U',
             'M',
             'P',
             'Y',
             1,
             0,
             static_cast<std::uint8_t>(header.size()),
             static_cast<std::uint8_t>(header.size() >> 8)};
  b.resize(10 + header.size() + data_bytes, 0);
  std::copy(header.begin(), header.end(),
            b.begin() + 10);  // (vector::insert here trips GCC 12's -Warray-bounds at -O3)
  return b;
}

TEST_CASE("numpy's .npy files parse with their exact dtype, shape and bits", "[npy]") {
  const cio::NpyArray a = parse_file("f4_2x3.npy");
  CHECK(a.dtype() == cio::NpyDType::float32);
  CHECK(a.shape() == std::vector<cf::Index>{2, 3});
  REQUIRE(a.size() == 6);
  for (std::size_t k = 0; k < 6; ++k) CHECK(bits_of(a.float32_data()[k]) == bits_of(static_cast<float>(k) / 7.0f));

  const cio::NpyArray s = parse_file("f8_scalar.npy");
  CHECK(s.dtype() == cio::NpyDType::float64);
  CHECK(s.shape().empty());
  REQUIRE(s.size() == 1);
  CHECK(bits_of(s.value<double>(0)) == bits_of(1.0 / 3.0));

  const cio::NpyArray sp = parse_file("f4_special.npy");
  const std::vector<std::uint32_t> special = {0x80000000u, 0x7f800000u, 0xff800000u,
                                              0x7fc01234u, 0x00000001u, 0x7f7fffffu};
  REQUIRE(sp.size() == special.size());
  for (std::size_t k = 0; k < special.size(); ++k) CHECK(bits_of(sp.float32_data()[k]) == special[k]);

  const cio::NpyArray e = parse_file("f8_empty.npy");
  CHECK(e.dtype() == cio::NpyDType::float64);
  CHECK(e.shape() == std::vector<cf::Index>{0, 4});
  CHECK(e.size() == 0);

  const cio::NpyArray r = parse_file("f4_rank3.npy");
  CHECK(r.shape() == std::vector<cf::Index>{2, 3, 4});
  REQUIRE(r.size() == 24);
  for (std::size_t k = 0; k < 24; ++k)
    CHECK(bits_of(r.float32_data()[k]) == bits_of(static_cast<float>(static_cast<int>(k) - 5) / 7.0f));

  for (const char* name : {"f8_v2.npy", "f8_v3.npy"}) {
    const cio::NpyArray v = parse_file(name);
    CHECK(v.dtype() == cio::NpyDType::float64);
    CHECK(v.shape() == std::vector<cf::Index>{3});
    CHECK(v.values<double>() == std::vector<double>{0.5, -1.5, 2.5});
  }
}

TEST_CASE("encode_npy writes what np.save writes, byte for byte", "[npy]") {
  for (const char* name : {"f4_2x3.npy", "f8_scalar.npy", "f4_special.npy", "f8_empty.npy", "f4_rank3.npy"}) {
    INFO(name);
    const Bytes file = read_bytes(fixture(name));
    CHECK(cio::encode_npy(cio::parse_npy(file.data(), file.size())) == file);
  }
  // Built arrays too: numpy's bytes for np.save(f, np.array([1.5, -2], '<f8')).
  const Bytes mine = cio::encode_npy(cio::NpyArray({2}, std::vector<double>{1.5, -2}));
  const Bytes v2 = read_bytes(fixture("f8_v2.npy"));
  const cio::NpyArray from_v2 = cio::parse_npy(v2.data(), v2.size());
  const Bytes again = cio::encode_npy(from_v2);  // versions 2.0 and 3.0 are rewritten as 1.0
  CHECK(again[6] == 1);
  CHECK(again.size() == 128 + 3 * 8);
  CHECK(cio::parse_npy(again.data(), again.size()).bitwise_equal(from_v2));
  REQUIRE(mine.size() == 128 + 2 * 8);
  CHECK(std::string(mine.begin() + 10, mine.begin() + 128) ==
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }" + std::string(60, ' ') + "\n");
}

TEST_CASE("unsupported numpy files are IOErrors naming the source and what was found", "[npy]") {
  const auto err = [](const std::string& name) {
    const Bytes b = read_bytes(fixture(name));
    return error_of<cf::IOError>([&] { cio::parse_npy(b.data(), b.size(), name); });
  };
  CHECK(err("bad_fortran.npy") ==
        "parse_npy: 'bad_fortran.npy': Fortran (column-major) order, shape [2, 3]; cellflow "
        "reads C order (save np.ascontiguousarray(a))");
  CHECK(err("bad_big_endian.npy") ==
        "parse_npy: 'bad_big_endian.npy': unsupported dtype '>f4' (big-endian float32); "
        "cellflow reads '<f4' (float32) and '<f8' (float64)");
  CHECK(err("bad_int64.npy") ==
        "parse_npy: 'bad_int64.npy': unsupported dtype '<i8' (int64); cellflow reads '<f4' (float32) and '<f8' "
        "(float64)");
}

TEST_CASE("malformed .npy bytes are IOErrors, at every truncation, without allocating for claims", "[npy]") {
  const Bytes good = read_bytes(fixture("f4_2x3.npy"));
  const auto err = [](const Bytes& b) { return error_of<cf::IOError>([&] { cio::parse_npy(b.data(), b.size()); }); };

  CHECK(err({}) == "parse_npy: '<buffer>': truncated .npy data: 0 bytes, the smallest .npy header takes 10");
  CHECK_THAT(error_of<cf::IOError>([] { cio::parse_npy(nullptr, 5, "nil"); }),
             Contains("parse_npy: 'nil': null data pointer with size 5"));
  for (std::size_t n = 0; n < good.size(); ++n) {
    const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_THAT(err(cut), StartsWith("parse_npy: '<buffer>': "));
  }
  Bytes longer = good;
  longer.push_back(0);
  CHECK(err(longer) ==
        "parse_npy: '<buffer>': 1 bytes after the array data (shape [2, 3] of '<f4' takes 24 bytes, "
        "the member holds 25 after its header)");
  Bytes magic = good;
  magic[1] = 'X';
  CHECK_THAT(err(magic), Contains("not a .npy array: the data starts with \"\\x93XUMPY\""));
  Bytes version = good;
  version[6] = 4;
  CHECK_THAT(err(version), Contains("unsupported .npy format version 4.0"));

  // 10^18 elements claimed by a 128-byte file: refused from the sizes alone.
  const Bytes huge =
      npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", 8);
  CHECK_THAT(err(huge),
             Contains("truncated array data: shape [1000000000, 1000000000] of '<f8' needs more than 8 bytes"));
  const Bytes syntax = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", 8);
  CHECK_THAT(err(syntax), Contains("malformed .npy header: expected ',' or '}'"));
  const Bytes ok = npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }", 8);
  CHECK(cio::parse_npy(ok.data(), ok.size()).shape() == std::vector<cf::Index>{2, 1});
}

}  // namespace test_npy
