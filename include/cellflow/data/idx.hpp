// IDX files, the format of MNIST and Fashion-MNIST: reading images and labels, raw or gzip.
//
// An IDX file is a 4-byte big-endian magic number 0x0000TTNN (TT = element type, 0x08 for
// unsigned bytes; NN = number of dimensions), NN big-endian 32-bit dimension sizes, then the
// elements in row-major order. Images are 0x00000803 [count, rows, cols]; labels are 0x00000801
// [count]. A file may be gzip-compressed (as MNIST is distributed); that is detected from the
// gzip magic bytes 0x1f 0x8b, never from the file name, and decompressed with zlib.
//
// Every problem is an exception naming the function and the file: IOError for a file that cannot
// be read or whose content is malformed (truncated, trailing bytes, wrong magic, zero or absurd
// dimensions, corrupt gzip stream), ValueError for files that are each fine but do not go
// together (image and label counts differ, a label >= num_classes).
//
// Memory: a header never decides an allocation by itself. The payload a header promises is
// capped at `kMaxIdxPayloadBytes`; a raw file's promise is compared with its real size before
// anything is allocated; a gzip stream is read in chunks into a buffer that grows only as
// decompressed bytes actually arrive. So a 100-byte file claiming 2^31 images costs nothing.
//
// Needs zlib: link `cellflow::io` (not `cellflow::cellflow`) to use this header.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/data/dataset.hpp"
#include "cellflow/detail/bytes.hpp"

namespace cellflow::data {

/// The most payload bytes (everything after the header) an IDX file may promise: 2 GiB.
/// MNIST's training images are 47 MB; a larger promise is a corrupt or hostile header.
inline constexpr std::uint64_t kMaxIdxPayloadBytes = std::uint64_t(1) << 31;

/// The magic number of the IDX image files cellflow reads: unsigned bytes, 3 dimensions.
inline constexpr std::uint32_t kIdxImagesMagic = 0x00000803u;
/// The magic number of the IDX label files cellflow reads: unsigned bytes, 1 dimension.
inline constexpr std::uint32_t kIdxLabelsMagic = 0x00000801u;

/// The content of an IDX image file: `count` images of `rows` x `cols` bytes, row-major,
/// image after image (`pixels.size() == count * rows * cols`).
struct IdxImages {
  Index count = 0, rows = 0, cols = 0;  ///< the number of images and the size of each
  std::vector<std::uint8_t> pixels;     ///< count * rows * cols bytes (0..255), image after image
};

namespace detail {

using cellflow::detail::ByteReader;
using cellflow::detail::concat;
using cellflow::detail::hex32;

struct IdxFileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f != nullptr) std::fclose(f);
  }
};

/// The bytes of a file, decompressed if it is gzip. `read` returns fewer bytes than asked for
/// only at the end of the data; read and decompression errors throw IOError.
class IdxByteSource {
 public:
  IdxByteSource(const std::string& path, const std::string& op) : path_(path), op_(op) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail("is a directory, not an IDX file");
    errno = 0;
    file_.reset(std::fopen(path.c_str(), "rb"));
    if (!file_) {
      const int err = errno;
      fail(concat("cannot open: ", err != 0 ? std::strerror(err) : "unknown error"));
    }
    // Peek at the first two bytes to tell gzip from raw.
    peek_len_ = std::fread(peek_.data(), 1, peek_.size(), file_.get());
    check_read_error();
    gzip_ = peek_len_ == 2 && peek_[0] == 0x1f && peek_[1] == 0x8b;
    if (gzip_) {
      in_buf_.resize(std::size_t(1) << 16);
      in_buf_[0] = peek_[0];
      in_buf_[1] = peek_[1];
      peek_len_ = 0;
      zs_.next_in = in_buf_.data();
      zs_.avail_in = 2;
      // 16 + MAX_WBITS: expect a gzip header and trailer (CRC-32 and length are checked).
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail("cannot initialise zlib to decompress the gzip stream");
      z_ready_ = true;
    } else {
      std::error_code size_ec;
      if (std::filesystem::is_regular_file(path, size_ec)) {
        const auto size = std::filesystem::file_size(path, size_ec);
        if (!size_ec) file_size_ = static_cast<std::int64_t>(size);
      }
    }
  }

  ~IdxByteSource() {
    if (z_ready_) inflateEnd(&zs_);
  }

  IdxByteSource(const IdxByteSource&) = delete;
  IdxByteSource& operator=(const IdxByteSource&) = delete;

  bool gzip() const { return gzip_; }

  /// Size in bytes of an uncompressed regular file, -1 when unknown (gzip, pipe, ...).
  std::int64_t raw_file_size() const { return file_size_; }

  std::size_t read(std::uint8_t* out, std::size_t n) { return gzip_ ? read_gzip(out, n) : read_raw(out, n); }

  [[noreturn]] void fail(const std::string& problem) const { throw IOError(concat(op_, ": '", path_, "': ", problem)); }

 private:
  void check_read_error() const {
    if (std::ferror(file_.get())) {
      const int err = errno;
      fail(concat("read error: ", err != 0 ? std::strerror(err) : "unknown error"));
    }
  }

  std::size_t read_raw(std::uint8_t* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n && peek_pos_ < peek_len_) out[done++] = peek_[peek_pos_++];
    if (done < n) {
      errno = 0;
      done += std::fread(out + done, 1, n - done, file_.get());
      check_read_error();
    }
    return done;
  }

  void refill() {
    errno = 0;
    const std::size_t got = std::fread(in_buf_.data(), 1, in_buf_.size(), file_.get());
    check_read_error();
    if (got < in_buf_.size()) file_eof_ = true;
    zs_.next_in = in_buf_.data();
    zs_.avail_in = static_cast<uInt>(got);
  }

  std::size_t read_gzip(std::uint8_t* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      if (zs_.avail_in == 0 && !file_eof_) refill();
      if (zs_.avail_in == 0) {
        if (in_member_) fail("corrupt gzip stream: unexpected end of file (truncated download?)");
        break;  // the end of the last gzip member is the end of the data
      }
      const std::size_t want = std::min<std::size_t>(n - done, std::size_t(1) << 30);
      zs_.next_out = out + done;
      zs_.avail_out = static_cast<uInt>(want);
      in_member_ = true;
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      done += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        // A gzip file may hold several members, decompressed one after the other (gzip -c a b).
        in_member_ = false;
        if (inflateReset(&zs_) != Z_OK) fail("corrupt gzip stream: cannot reset zlib");
      } else if (rc == Z_OK || (rc == Z_BUF_ERROR && zs_.avail_in == 0)) {
        continue;
      } else {
        fail(concat("corrupt gzip stream (zlib error ", rc, ": ", zs_.msg != nullptr ? zs_.msg : zError(rc), ")"));
      }
    }
    return done;
  }

  std::string path_, op_;
  std::unique_ptr<std::FILE, IdxFileCloser> file_;
  std::array<std::uint8_t, 2> peek_{};
  std::size_t peek_len_ = 0, peek_pos_ = 0;
  bool gzip_ = false;
  std::int64_t file_size_ = -1;
  z_stream zs_{};
  bool z_ready_ = false, in_member_ = false, file_eof_ = false;
  std::vector<std::uint8_t> in_buf_;
};

/// A validated unsigned-byte IDX file: its dimensions and payload.
struct IdxContent {
  std::vector<Index> dims;
  std::vector<std::uint8_t> data;
};

inline const char* idx_kind_hint(std::uint32_t magic) {
  if (magic == kIdxImagesMagic) return " (that is the magic of an IDX image file)";
  if (magic == kIdxLabelsMagic) return " (that is the magic of an IDX label file)";
  if ((magic & 0xffff0000u) == 0 && ((magic >> 8) & 0xffu) != 0x08u)
    return " (an IDX file whose elements are not unsigned bytes)";
  if ((magic & 0xffffff00u) == 0x00000800u) return " (an unsigned-byte IDX file with another number of dimensions)";
  return "";
}

/// Reads an unsigned-byte IDX file with `dim_names.size()` dimensions and magic `magic`.
inline IdxContent read_idx_u8(const std::string& path, const char* op, std::uint32_t magic,
                              const std::vector<const char*>& dim_names) {
  IdxByteSource src(path, op);
  const char* const what_bytes = src.gzip() ? " decompressed bytes" : " bytes";

  const std::size_t ndims = dim_names.size();
  const std::size_t header_bytes = 4 + 4 * ndims;
  std::vector<std::uint8_t> header(header_bytes);
  const std::size_t got_magic = src.read(header.data(), 4);
  if (got_magic == 0) src.fail(src.gzip() ? "the gzip stream decompresses to nothing" : "the file is empty");
  if (got_magic < 4)
    src.fail(concat("truncated header: expected at least 4", what_bytes, " for the magic number, found ", got_magic));
  ByteReader hr(header.data(), 0, header_bytes, concat(op, ": '", path, "'"), "header");
  const std::uint32_t found_magic = hr.u32be("the magic number");
  if (found_magic != magic)
    src.fail(concat("wrong magic number: expected ", hex32(magic), ", found ", hex32(found_magic),
                    idx_kind_hint(found_magic), src.gzip() ? " after gzip decompression" : "",
                    "; is this an IDX file?"));

  const std::size_t got_dims = src.read(header.data() + 4, header_bytes - 4);
  if (got_dims < header_bytes - 4)
    src.fail(concat("truncated header: expected ", header_bytes, what_bytes, ", found ", 4 + got_dims));

  IdxContent content;
  const std::uint64_t limit =
      std::min<std::uint64_t>(kMaxIdxPayloadBytes, static_cast<std::uint64_t>(std::numeric_limits<Index>::max()));
  std::uint64_t payload = 1;
  std::string shape;
  for (std::size_t k = 0; k < ndims; ++k) {
    const std::uint32_t d = hr.u32be(concat("dimension ", k));
    shape += concat(k == 0 ? "" : " x ", d);
    if (d == 0) src.fail(concat("dimension ", k, " (", dim_names[k], ") at byte offset ", 4 + 4 * k, " is 0"));
    // payload <= 2^31 and d < 2^32, so the product cannot overflow 64 bits.
    payload *= d;
    if (payload > limit) {
      std::string rest;
      for (std::size_t j = k + 1; j < ndims; ++j) rest += concat(" x ", hr.u32be(concat("dimension ", j)));
      src.fail(concat("absurd dimensions ", shape, rest, " (header bytes 4 to ", header_bytes - 1,
                      "): more data than the ", limit, "-byte limit on an IDX payload (corrupt header?)"));
    }
    content.dims.push_back(static_cast<Index>(d));
  }

  const auto expected = static_cast<std::size_t>(payload);
  // "expected 76 bytes (16-byte header + 60 bytes of data for 3 x 4 x 5)"
  const auto expected_msg = [&](const char* unit) {
    return concat("expected ", header_bytes + expected, unit, " (", header_bytes, "-byte header + ", expected,
                  " bytes of data for ", shape, ")");
  };

  // A raw regular file: compare the promise with the real size before allocating anything.
  if (src.raw_file_size() >= 0) {
    const auto actual = static_cast<std::uint64_t>(src.raw_file_size());
    if (actual < header_bytes + payload) src.fail(concat("truncated: ", expected_msg(" bytes"), ", found ", actual));
    if (actual > header_bytes + payload)
      src.fail(concat("trailing garbage: ", expected_msg(" bytes"), ", found ", actual, " (",
                      actual - (header_bytes + payload), " extra)"));
  }

  // Read the payload, growing the buffer only as real bytes arrive.
  std::size_t have = 0;
  content.data.resize(src.raw_file_size() >= 0 ? expected : std::min<std::size_t>(expected, std::size_t(1) << 20));
  while (have < expected) {
    if (have == content.data.size()) content.data.resize(std::min(expected, 2 * content.data.size()));
    const std::size_t got = src.read(content.data.data() + have, content.data.size() - have);
    if (got == 0) break;
    have += got;
  }
  if (have < expected) src.fail(concat("truncated: ", expected_msg(what_bytes), ", found ", header_bytes + have));

  // Anything after the promised payload is an error too. Reading to the end also makes zlib
  // check the gzip trailer (CRC-32 and length). Counting stops at 64 MiB of extra bytes.
  std::array<std::uint8_t, 4096> scratch{};
  std::uint64_t extra = 0;
  const std::uint64_t extra_cap = std::uint64_t(1) << 26;
  while (extra <= extra_cap) {
    const std::size_t got = src.read(scratch.data(), scratch.size());
    if (got == 0) break;
    extra += got;
  }
  if (extra > 0)
    src.fail(concat("trailing garbage: ", expected_msg(what_bytes), ", found ", extra > extra_cap ? "more than " : "",
                    header_bytes + expected + extra, " (", extra > extra_cap ? "more than " : "", extra, " extra)"));
  return content;
}

}  // namespace detail

/// Reads an IDX image file (magic 0x00000803, dimensions [count, rows, cols]), raw or gzip.
inline IdxImages read_idx_images(const std::string& path) {
  detail::IdxContent c = detail::read_idx_u8(path, "read_idx_images", kIdxImagesMagic, {"images", "rows", "cols"});
  IdxImages out;
  out.count = c.dims[0];
  out.rows = c.dims[1];
  out.cols = c.dims[2];
  out.pixels = std::move(c.data);
  return out;
}

/// Reads an IDX label file (magic 0x00000801, dimension [count]), raw or gzip.
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  return std::move(detail::read_idx_u8(path, "read_idx_labels", kIdxLabelsMagic, {"labels"}).data);
}

/// Reads an image file and its label file into a Dataset: images scaled to [0, 1] as
/// `T(byte) / T(255)`, labels as ints. Throws ValueError when the counts differ, when
/// `num_classes <= 0`, or when a label is >= num_classes (naming the file, index and value).
template <class T>
Dataset<T> load_idx_dataset(const std::string& images_path, const std::string& labels_path, int num_classes = 10) {
  if (num_classes <= 0)
    throw ValueError(cellflow::detail::concat("load_idx_dataset: num_classes must be positive, got ", num_classes));
  const IdxImages img = read_idx_images(images_path);
  const std::vector<std::uint8_t> lab = read_idx_labels(labels_path);
  if (static_cast<Index>(lab.size()) != img.count)
    throw ValueError(cellflow::detail::concat("load_idx_dataset: '", images_path, "' holds ", img.count,
                                              " images but '", labels_path, "' holds ", lab.size(), " labels"));
  Dataset<T> ds;
  ds.labels.resize(lab.size());
  for (std::size_t i = 0; i < lab.size(); ++i) {
    if (int(lab[i]) >= num_classes)
      throw ValueError(cellflow::detail::concat(
          "load_idx_dataset: '", labels_path, "': label at index ", i, " (byte offset ", 8 + i, ") has value ",
          int(lab[i]), ", out of range [0, ", num_classes, ") for num_classes = ", num_classes));
    ds.labels[i] = int(lab[i]);
  }
  std::array<T, 256> scale{};
  for (int b = 0; b < 256; ++b) scale[static_cast<std::size_t>(b)] = static_cast<T>(b) / static_cast<T>(255);
  ds.images.resize(img.count, img.rows, img.cols);
  T* dst = ds.images.data();
  for (std::size_t k = 0; k < img.pixels.size(); ++k) dst[k] = scale[img.pixels[k]];
  return ds;
}

/// Finds the IDX file `stem` in `dir`, trying in this order `stem`, `stem.gz`, and the variant
/// with a dot before "idx" (`train-images.idx3-ubyte`, `train-images.idx3-ubyte.gz`; or the dash
/// variant if `stem` has the dot). Returns the path of the first regular file found; throws
/// IOError listing every name tried.
inline std::string find_idx_file(const std::string& dir, const std::string& stem) {
  std::vector<std::string> names{stem, stem + ".gz"};
  std::string variant = stem;
  if (const auto p = stem.rfind("-idx"); p != std::string::npos) {
    variant[p] = '.';
  } else if (const auto q = stem.rfind(".idx"); q != std::string::npos) {
    variant[q] = '-';
  }
  if (variant != stem) {
    names.push_back(variant);
    names.push_back(variant + ".gz");
  }
  const std::filesystem::path base(dir.empty() ? std::string(".") : dir);
  std::string tried;
  for (const auto& name : names) {
    const std::filesystem::path p = base / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p.string();
    tried += cellflow::detail::concat(tried.empty() ? "" : ", ", name);
  }
  std::error_code ec;
  const bool dir_exists = std::filesystem::is_directory(base, ec);
  throw IOError(cellflow::detail::concat("find_idx_file: no IDX file '", stem, "' in ", dir_exists ? "" : "missing ",
                                         "directory '", base.string(), "'; tried ", tried));
}

/// MNIST-layout data: a training and a test set.
template <class T>
struct MnistData {
  Dataset<T> train, test;  ///< from the train-* and the t10k-* files
};

/// Loads MNIST (or Fashion-MNIST, same file names) from `dir`: train-images-idx3-ubyte,
/// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each found with
/// `find_idx_file` (raw or .gz, dash or dot before "idx"). Labels must be in [0, 10).
template <class T>
MnistData<T> load_mnist_dir(const std::string& dir) {
  // Find all four first (in this order), so a missing file is reported before any loading.
  const std::string train_images = find_idx_file(dir, "train-images-idx3-ubyte");
  const std::string train_labels = find_idx_file(dir, "train-labels-idx1-ubyte");
  const std::string test_images = find_idx_file(dir, "t10k-images-idx3-ubyte");
  const std::string test_labels = find_idx_file(dir, "t10k-labels-idx1-ubyte");
  MnistData<T> m;
  m.train = load_idx_dataset<T>(train_images, train_labels, 10);
  m.test = load_idx_dataset<T>(test_images, test_labels, 10);
  return m;
}

}  // namespace cellflow::data
