// The byte reader and writer every file format goes through (cellflow/detail/bytes.hpp): byte
// orders, bit-exact scalars, bounds and the messages that name the context, the field, its
// offset and what remains.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cellflow/detail/bytes.hpp"

namespace test_bytes {

namespace cf = cellflow;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using cf::detail::ByteReader;
using cf::detail::ByteWriter;
using Bytes = std::vector<std::uint8_t>;

template <class F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const cf::IOError& e) {
    return e.what();
  }
  FAIL("no IOError");
  return {};
}

template <class T>
std::uint64_t bits(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

TEST_CASE("ByteReader reads little- and big-endian integers byte by byte", "[bytes]") {
  const Bytes b{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
  ByteReader r(b.data(), 0, b.size(), "test");
  CHECK(r.u8("a") == 0x01);
  CHECK(r.u16le("b") == 0x0302);
  CHECK(r.pos() == 3);
  CHECK(r.u32le("c") == 0x07060504u);
  CHECK(r.u64le("d") == 0x0f0e0d0c0b0a0908ull);
  CHECK(r.at_end());
  ByteReader be(b.data(), 0, b.size(), "test");
  CHECK(be.u16be("a") == 0x0102);
  CHECK(be.u32be("b") == 0x03040506u);
  CHECK(be.u64be("c") == 0x0708090a0b0c0d0eull);
  CHECK(be.remaining() == 1);
  CHECK(be.peek_le<std::uint32_t>(1, "x") == 0x05040302u);
  CHECK(be.pos() == 14);  // peeking does not move
}

TEST_CASE("ByteWriter and ByteReader keep scalars bit for bit", "[bytes]") {
  const float f_nan = [] {
    const std::uint32_t u = 0x7fc01234u;  // a NaN with a payload
    float x;
    std::memcpy(&x, &u, 4);
    return x;
  }();
  const std::vector<double> doubles{-0.0, std::numeric_limits<double>::infinity(),
                                    std::numeric_limits<double>::denorm_min(), 1.0 / 3.0};
  ByteWriter w;
  w.le(f_nan);
  w.le(-0.0f);
  w.values_le(doubles.data(), doubles.size());
  w.u16le(0xbeef);
  REQUIRE(w.size() == 4 + 4 + 8 * doubles.size() + 2);
  CHECK(w.bytes()[0] == 0x34);  // little-endian: lowest byte first
  CHECK(w.bytes()[3] == 0x7f);
  CHECK(w.bytes()[7] == 0x80);  // the sign of -0.0f
  const Bytes b = w.take();
  CHECK(w.size() == 0);

  ByteReader r(b.data(), 0, b.size(), "test");
  CHECK(bits(r.le<float>("nan")) == 0x7fc01234u);
  CHECK(bits(r.le<float>("zero")) == 0x80000000u);
  std::vector<double> back(doubles.size());
  r.values_le(back.size(), back.data(), "doubles");
  for (std::size_t k = 0; k < doubles.size(); ++k) CHECK(bits(back[k]) == bits(doubles[k]));
  CHECK(r.u16le("tail") == 0xbeef);
}

TEST_CASE("ByteReader failures name the context, the field, its offset and what remains", "[bytes]") {
  const Bytes b{5, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 1, 2};
  CHECK_THAT(io_error([&] { ByteReader(b.data(), 0, 6, "op: 'f.bin'").u64le("the count"); }),
             Equals("op: 'f.bin': the count at byte offset 0 needs 8 bytes, only 6 remain"));
  ByteReader r(b.data(), 0, 8, "op: 'f.bin'", "section X", "in the section");
  CHECK_THAT(io_error([&] { r.str32("the name"); }),
             Equals("op: 'f.bin': section X: the name at byte offset 4 needs 5 bytes, only 4 remain in the section"));
  ByteReader e(b.data(), 0, 12, "op: 'f.bin'", "section X");
  e.seek(6, "x");
  CHECK_THAT(io_error([&] { e.str32("the key", false); }),
             Equals("op: 'f.bin': section X: the key at byte offset 6 is empty"));

  ByteReader c(b.data(), 0, 12, "ctx");
  c.skip(2, "x");
  CHECK_THAT(io_error([&] { c.counted(std::uint64_t(1) << 62, 8, "the values"); }),
             Equals("ctx: the values at byte offset 2 needs 4611686018427387904 values of 8 bytes, only 10 bytes "
                    "remain"));
  CHECK(c.pos() == 2);  // a failed read does not move
  CHECK(c.counted(5, 2, "the values") == 2);
  CHECK(c.at_end());
  CHECK_THAT(io_error([&] { c.u8("one more"); }),
             Equals("ctx: one more at byte offset 12 needs 1 bytes, only 0 remain"));
  CHECK_THAT(io_error([&] { c.peek_le<std::uint32_t>(10, "a signature"); }),
             Equals("ctx: a signature at byte offset 10 lies outside bytes 0 to 12"));
  CHECK_THAT(io_error([&] { c.seek(13, "the end"); }),
             Contains("the end at byte offset 13 lies outside bytes 0 to 12"));
  CHECK_THAT(io_error([] { ByteReader(nullptr, 0, 3, "nil"); }), Contains("nil: invalid byte range [0, 3)"));
  CHECK(ByteReader(nullptr, 0, 0, "empty").remaining() == 0);
}

TEST_CASE("a sub-reader is bounded by its region and keeps file offsets", "[bytes]") {
  const Bytes b{1, 2, 3, 4, 5, 6, 7, 8};
  ByteReader r(b.data(), 0, b.size(), "ctx");
  r.skip(2, "head");
  ByteReader s = r.sub(4, "the payload", "section P", "in the payload");
  CHECK(r.pos() == 6);
  CHECK(s.begin() == 2);
  CHECK(s.u16le("a") == 0x0403);
  CHECK_THAT(io_error([&] { s.u32le("b"); }),
             Equals("ctx: section P: b at byte offset 4 needs 4 bytes, only 2 remain in the payload"));
  CHECK_THAT(io_error([&] { r.sub(3, "the rest", "x", "y"); }),
             Equals("ctx: the rest at byte offset 6 needs 3 bytes, only 2 remain"));
}

TEST_CASE("ByteWriter patches lengths written before their content", "[bytes]") {
  ByteWriter w;
  w.raw(std::string("TAG!"));
  const std::size_t at = w.begin_length();
  w.str32("hello");
  w.u32le(7);
  w.end_length(at);
  w.patch_u32le(0, 0x04030201u);
  const Bytes expected{1, 2, 3, 4, 13, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 7, 0, 0, 0};
  CHECK(w.bytes() == expected);
  CHECK_THROWS_AS(w.patch_u64le(20, 1), cf::ValueError);
}

TEST_CASE("printable and hex32 make file bytes safe to quote", "[bytes]") {
  using cf::detail::printable;
  CHECK(cf::detail::hex32(0xcbf43926u) == "0xcbf43926");
  CHECK(cf::detail::hex32(0x1fu) == "0x0000001f");
  CHECK(printable(std::string("a\0b\\c'd\x89", 8)) == "a\\x00b\\\\c'd\\x89");
  CHECK(printable(std::string("it's"), 160, '\'') == "it\\x27s");
  CHECK(printable(std::string(10, 'x'), 4) == "xxxx... (10 bytes)");
}

}  // namespace test_bytes
