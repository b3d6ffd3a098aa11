// A reader of PGM images (Netpbm grey maps), binary "P5" and plain "P2", 8-bit (maxval <= 255),
// for the classify_digit example. Every malformed file is a cellflow::IOError naming the file and
// what is wrong; the size a header claims is checked against the bytes present before anything
// is allocated from it.
#pragma once

#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cellflow/core/error.hpp"

namespace support {

struct GreyImage {
  long rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // row-major, scaled to 0..255
};

namespace pgm_detail {

struct Cursor {
  const std::string& bytes;
  std::size_t pos = 0;
  const std::string& path;

  [[noreturn]] void fail(const std::string& what) const {
    throw cellflow::IOError("PGM file '" + path + "': " + what + " (at byte " + std::to_string(pos) + ")");
  }
  void skip_space_and_comments() {
    while (pos < bytes.size()) {
      const unsigned char ch = static_cast<unsigned char>(bytes[pos]);
      if (ch == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
      } else if (std::isspace(ch)) {
        ++pos;
      } else {
        break;
      }
    }
  }
  long number(const char* field, long lo, long hi) {
    skip_space_and_comments();
    if (pos >= bytes.size()) fail(std::string("file ends before the ") + field);
    long v = 0;
    std::size_t digits = 0;
    while (pos < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[pos]))) {
      v = v * 10 + (bytes[pos] - '0');
      ++pos;
      if (++digits > 9) fail(std::string(field) + " has too many digits");
    }
    if (digits == 0) fail(std::string("expected the ") + field + " (a decimal number)");
    if (v < lo || v > hi)
      fail(std::string(field) + " is " + std::to_string(v) + ", expected " + std::to_string(lo) + ".." +
           std::to_string(hi));
    return v;
  }
};

}  // namespace pgm_detail

/// Reads a P5 or P2 PGM file with maxval <= 255 and at most 4096 x 4096 pixels.
inline GreyImage read_pgm(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw cellflow::IOError("cannot open PGM file '" + path + "'");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '2'))
    throw cellflow::IOError("PGM file '" + path + "': expected the magic 'P5' (binary) or 'P2' (plain)");
  const bool binary = bytes[1] == '5';
  pgm_detail::Cursor c{bytes, 2, path};
  GreyImage img;
  img.cols = c.number("width", 1, 4096);
  img.rows = c.number("height", 1, 4096);
  const long maxval = c.number("maxval", 1, 255);
  const std::size_t n = static_cast<std::size_t>(img.rows * img.cols);
  if (binary) {
    if (c.pos >= bytes.size() || !std::isspace(static_cast<unsigned char>(bytes[c.pos])))
      c.fail("expected one whitespace byte after maxval");
    ++c.pos;
    if (bytes.size() - c.pos < n)
      c.fail("truncated: " + std::to_string(img.cols) + " x " + std::to_string(img.rows) + " needs " +
             std::to_string(n) + " pixel bytes, " + std::to_string(bytes.size() - c.pos) + " present");
  } else if (bytes.size() - c.pos < 2 * n - 1) {
    c.fail("truncated: " + std::to_string(n) + " pixel values cannot fit in the " +
           std::to_string(bytes.size() - c.pos) + " bytes left");
  }
  img.pixels.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    long v = 0;
    if (binary) {
      v = static_cast<unsigned char>(bytes[c.pos++]);
      if (v > maxval)
        c.fail("pixel " + std::to_string(k) + " is " + std::to_string(v) + " > maxval " + std::to_string(maxval));
    } else {
      v = c.number("pixel value", 0, maxval);
    }
    img.pixels[k] = static_cast<std::uint8_t>((v * 255 + maxval / 2) / maxval);
  }
  return img;
}

}  // namespace support
