// The ZIP container (cellflow/io/zip.hpp) on its own, and how io/npz.hpp builds on it.
//
// Archives written by Python's zipfile (tests/fixtures/zip/, made by
// tests/fixtures/make_zip_npy_fixtures.py) and by numpy (tests/fixtures/npz/) read with their
// exact names and bytes; encode_zip reproduces zipfile's bytes exactly, stored and deflated; an
// .npz archive is exactly the ZIP archive of its .npy members; bad input is an IOError
// "parse_zip: '<source>': ..." (never a crash), bad arguments to encode_zip a ValueError.
#include <catch2/catch.hpp>

// zlib-free builds (no cellflow::io target) have nothing to test here.
#if __has_include(<zlib.h>)
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "cellflow/io/npy.hpp"
#include "cellflow/io/npz.hpp"
#include "cellflow/io/zip.hpp"

namespace test_zip {

namespace cf = cellflow;
namespace cio = cellflow::io;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Bytes = std::vector<std::uint8_t>;

std::string fixture(const std::string& name) { return std::string(CELLFLOW_FIXTURE_DIR) + "/" + name; }

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

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

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int k = 0; k < n; ++k) out += s;
  return out;
}

/// The members of tests/fixtures/zip/writer_*.zip, in order.
std::vector<cio::ZipMember> writer_members() {
  Bytes all(256);
  for (std::size_t k = 0; k < 256; ++k) all[k] = static_cast<std::uint8_t>(k);
  return {{"stored.bin", all},
          {"deflated.txt", bytes_of(repeat("cellflow ", 100))},
          {"empty", {}},
          {"na\xc3\xafve/\xc3\xbc.txt", bytes_of("utf8")}};
}

std::uint32_t le32(const Bytes& b, std::size_t at) {
  return std::uint32_t(b.at(at)) | (std::uint32_t(b.at(at + 1)) << 8) | (std::uint32_t(b.at(at + 2)) << 16) |
         (std::uint32_t(b.at(at + 3)) << 24);
}

TEST_CASE("parse_zip reads zipfile's archive: names, bytes, directory entry, UTF-8 name, comment", "[zip]") {
  const Bytes file = read_bytes(fixture("zip/members.zip"));
  const std::vector<cio::ZipMember> m = cio::parse_zip(file.data(), file.size(), "members.zip");
  REQUIRE(m.size() == 5);
  CHECK(m[0].name == "stored.bin");
  CHECK(m[0].bytes == writer_members()[0].bytes);
  CHECK(m[1].name == "deflated.txt");
  CHECK(m[1].bytes == bytes_of(repeat("cellflow ", 100)));
  CHECK(m[2].name == "dir/");
  CHECK(m[2].bytes.empty());
  CHECK(m[3].name == "empty");
  CHECK(m[3].bytes.empty());
  CHECK(m[4].name == "na\xc3\xafve/\xc3\xbc.txt");
  CHECK(m[4].bytes == bytes_of("utf8"));
}

TEST_CASE("parse_zip reads numpy's .npz archives, zip64 extra fields and data descriptors included", "[zip]") {
  for (const char* name : {"model_f4.npz", "model_f8_compressed.npz", "model_f4_stream.npz",
                           "model_f8_stream_compressed.npz", "misc_compressed.npz"}) {
    INFO(name);
    const Bytes file = read_bytes(fixture(std::string("npz/") + name));
    const std::vector<cio::ZipMember> members = cio::parse_zip(file.data(), file.size(), name);
    const cio::NpzArchive archive = cio::parse_npz(file.data(), file.size(), name);
    REQUIRE(members.size() == archive.size());
    std::size_t k = 0;
    for (const cio::NpzEntry& e : archive) {
      CHECK(members[k].name == e.name + ".npy");
      CHECK(cio::parse_npy(members[k].bytes.data(), members[k].bytes.size()).bitwise_equal(e.array));
      ++k;
    }
  }
}

TEST_CASE("encode_zip writes what Python's zipfile writes, byte for byte, stored and deflated", "[zip]") {
  CHECK(cio::encode_zip(writer_members(), false) == read_bytes(fixture("zip/writer_stored.zip")));
  CHECK(cio::encode_zip(writer_members(), true) == read_bytes(fixture("zip/writer_deflated.zip")));
  CHECK(cio::encode_zip(writer_members()) == read_bytes(fixture("zip/writer_deflated.zip")));  // deflated by default
  const Bytes empty = cio::encode_zip({});
  CHECK(empty.size() == 22);  // the end record alone
  CHECK(le32(empty, 0) == 0x06054b50u);
  CHECK(cio::parse_zip(empty.data(), empty.size()).empty());
}

TEST_CASE("encode_zip and parse_zip round trip any names and bytes", "[zip]") {
  Bytes big(200000);
  std::uint32_t x = 1;
  for (auto& b : big) b = static_cast<std::uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  const std::vector<cio::ZipMember> in = {{"readme.txt", bytes_of("not an array")},
                                          {"a/b/c.bin", big},
                                          {std::string(65535, 'n'), bytes_of("long name")},
                                          {"nothing", {}}};
  for (const bool compress : {false, true}) {
    const Bytes zip = cio::encode_zip(in, compress);
    const std::vector<cio::ZipMember> out = cio::parse_zip(zip.data(), zip.size());
    REQUIRE(out.size() == in.size());
    for (std::size_t k = 0; k < in.size(); ++k) {
      CHECK(out[k].name == in[k].name);
      CHECK(out[k].bytes == in[k].bytes);
    }
    // The CRC-32 in the first local header is zlib's of the member's bytes.
    CHECK(le32(zip, 14) ==
          static_cast<std::uint32_t>(crc32(0L, in[0].bytes.data(), static_cast<uInt>(in[0].bytes.size()))));
    CHECK(cio::encode_zip(in, compress) == zip);  // deterministic
    // A ZIP archive is not an .npz archive unless every member is "<name>.npy".
    CHECK_THAT(
        error_of<cf::IOError>([&] { cio::parse_npz(zip.data(), zip.size(), "z"); }),
        Contains("parse_npz: 'z': member 'readme.txt': not a .npy array: every member of an .npz archive is named "
                 "\"<array name>.npy\""));
  }
}

TEST_CASE("an .npz archive is the ZIP archive of its .npy members", "[zip]") {
  cio::NpzArchive archive;
  archive.add("rnn/kernel", cio::NpyArray({2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6}));
  archive.add("scalar", cio::NpyArray({}, std::vector<double>{-0.0}));
  archive.add("empty", cio::NpyArray({0}, std::vector<float>{}));
  std::vector<cio::ZipMember> members;
  for (const cio::NpzEntry& e : archive) members.push_back({e.name + ".npy", cio::encode_npy(e.array)});
  for (const bool compress : {false, true})
    CHECK(cio::encode_npz(archive, compress) == cio::encode_zip(members, compress));
}

TEST_CASE("malformed ZIP input is an IOError naming the source, at every truncation", "[zip]") {
  const Bytes file = read_bytes(fixture("zip/members.zip"));
  const auto err = [](const Bytes& b) {
    return error_of<cf::IOError>([&] { cio::parse_zip(b.data(), b.size(), "a.zip"); });
  };
  CHECK(err({}) == "parse_zip: 'a.zip': empty (0 bytes), not a ZIP archive");
  CHECK(err(bytes_of("PK\x05\x06x")) ==
        "parse_zip: 'a.zip': not a ZIP archive: 5 bytes, too short for the 22-byte end-of-central-directory record");
  CHECK(err(Bytes(30, 'x')) ==
        "parse_zip: 'a.zip': not a ZIP archive: no end-of-central-directory record (\"PK\\5\\6\") "
        "at its end (truncated, or not a ZIP file)");
  CHECK_THAT(error_of<cf::IOError>([] { cio::parse_zip(nullptr, 3, "nil"); }),
             Contains("parse_zip: 'nil': null data pointer with size 3"));
  // The .npz reader names the same problems after its own format.
  CHECK_THAT(error_of<cf::IOError>([] { cio::parse_npz(nullptr, 0, "e.npz"); }),
             Contains("parse_npz: 'e.npz': empty (0 bytes), not an .npz archive"));

  Bytes flipped = file;
  flipped[30 + 10 + 7] ^= 0x40;  // byte 7 of stored.bin (after a 30-byte local header and its 10-byte name)
  Bytes data = writer_members()[0].bytes;
  data[7] ^= 0x40;
  char crc[11];
  std::snprintf(crc, sizeof crc, "0x%08lx", static_cast<unsigned long>(crc32(0L, data.data(), 256)));
  CHECK(err(flipped) ==
        "parse_zip: 'a.zip': member 'stored.bin': CRC-32 mismatch: the archive says 0x29058c73, the "
        "data gives " +
            std::string(crc) + " (corrupt file)");
  for (std::size_t n = 0; n < file.size(); ++n) {
    const Bytes cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_THAT(err(cut), StartsWith("parse_zip: 'a.zip': "));
  }
}

TEST_CASE("encode_zip refuses names and member counts a ZIP archive cannot hold", "[zip]") {
  const auto err = [](const std::vector<cio::ZipMember>& m) {
    return error_of<cf::ValueError>([&] { cio::encode_zip(m, false); });
  };
  CHECK(err({{"a", {}}, {"", {}}}) == "encode_zip: member 1: empty name");
  CHECK(err({{"a", {}}, {"b", {}}, {"a", {}}}) == "encode_zip: duplicate member name 'a'");
  CHECK(err({{std::string("a\0b", 3), {}}}) == "encode_zip: member name 'a\\x00b' contains a NUL byte");
  CHECK(err({{std::string(65536, 'n'), {}}}) ==
        "encode_zip: member name of 65536 bytes; a ZIP name holds at most 65535");

  std::vector<cio::ZipMember> many;
  for (int k = 0; k < 65535; ++k) many.push_back({std::to_string(k), {}});
  const Bytes full = cio::encode_zip(many, false);  // the most members a ZIP archive holds
  const std::vector<cio::ZipMember> back = cio::parse_zip(full.data(), full.size());
  REQUIRE(back.size() == 65535);
  CHECK(back.back().name == "65534");
  many.push_back({"65535", {}});
  CHECK(err(many) == "encode_zip: more than 65535 members; a ZIP archive without zip64 holds at most 65535");
}

#endif  // __has_include(<zlib.h>)

}  // namespace test_zip
