// NumPy .npz archives: float arrays by name, read and written, and a VariableList loaded from or
// saved to one by TensorFlow variable name.
//
// A TF1 program exports its weights with
//     np.savez("w.npz", **{v.name[:-2]: sess.run(v) for v in tf.global_variables()})
// (or np.savez_compressed). An .npz file is a ZIP archive (io/zip.hpp) with one member
// "<name>.npy" per array, each a .npy array (io/npy.hpp); this header joins the two and adds the
// archive of named arrays, the files and the variables:
//
//   NpzArchive                  arrays by name, in archive order
//   parse_npz / read_npz        bytes / file -> NpzArchive
//   encode_npz / write_npz      NpzArchive -> bytes / file
//   to_npz_archive, assign_npz  VariableList <-> NpzArchive (all or nothing)
//   load_npz / save_npz         file <-> VariableList
//
// Supported: what io/zip.hpp reads (stored or deflated members, zip64 extra fields, data
// descriptors) holding what io/npy.hpp reads ('<f4' or '<f8', C order, any rank). Everything
// else is an IOError naming the operation, the file, the member and what was found; besides
// the ZIP and .npy errors: a member not named "<name>.npy", a single .npy file given as an
// archive. A model that does not fit is one ValueError or ShapeError listing every problem.
//
// Memory: no size field is trusted before it is checked against the real data. The archive
// (file) and the members' total uncompressed size are capped at `kMaxNpzBytes` (4 GiB); see
// io/zip.hpp and io/npy.hpp for the members and the arrays. Members are decompressed and
// decoded one at a time, and members of arrays load_npz ignores are checked but not decoded.
//
// Writing: '<f4' for float, '<f8' for double, numpy's .npy layout; members stored or deflated,
// without timestamps, so the same arrays always give the same bytes. Files are written by
// write_file_atomically (io/atomic_file.hpp), the policy every file cellflow writes follows: a
// temporary file in the target's directory, fsync'ed and renamed over the target; a failed save
// leaves the previous file as it was and removes the temporary; a read-only existing target, a
// directory or a non-regular file is refused; a symbolic link is followed; permission bits are
// kept; the temporary files of killed saves are removed.
//
// Needs zlib: link `cellflow::io` (not `cellflow::cellflow`) to use this header.
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/bytes.hpp"
#include "cellflow/io/atomic_file.hpp"
#include "cellflow/io/npy.hpp"
#include "cellflow/io/zip.hpp"

namespace cellflow::io {

/// The largest .npz archive (file or buffer) read, and the largest total uncompressed size of
/// its members: 4 GiB (io/zip.hpp's limit). Larger archives would need zip64 directories.
inline constexpr std::uint64_t kMaxNpzBytes = kMaxZipBytes;

/// One named array of an archive. The name is numpy's key: the member name without ".npy".
struct NpzEntry {
  std::string name;  ///< numpy's key, e.g. "rnn/lstm_cell/kernel" (the member is "<name>.npy")
  NpyArray array;    ///< the array
};

/// The arrays of an .npz archive by name, in archive order.
class NpzArchive {
 public:
  /// Adds an array. Throws ValueError for an empty name, a name with a NUL byte, a name longer
  /// than 65531 bytes (a ZIP name holds 65535 bytes with ".npy"), or a name already present.
  NpzArchive& add(const std::string& name, NpyArray array) {
    if (name.empty()) throw ValueError("NpzArchive::add: empty array name");
    if (name.find('\0') != std::string::npos)
      throw ValueError(
          detail::concat("NpzArchive::add: array name '", detail::printable(name), "' contains a NUL byte"));
    if (name.size() > 65531)
      throw ValueError(detail::concat("NpzArchive::add: array name of ", name.size(),
                                      " bytes; a ZIP member name (with \".npy\") holds at most 65535"));
    if (index_.count(name) != 0)
      throw ValueError(detail::concat("NpzArchive::add: duplicate array name '", detail::printable(name), "'"));
    index_.emplace(name, entries_.size());
    entries_.push_back(NpzEntry{name, std::move(array)});
    return *this;
  }

  /// Whether the archive holds an array of this name.
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  /// The array with this name, or nullptr.
  const NpyArray* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second].array;
  }

  /// The array with this name; throws ValueError listing the archive's names if absent.
  const NpyArray& at(const std::string& name) const {
    if (const NpyArray* a = find(name)) return *a;
    std::string known;
    for (const auto& e : entries_) known += "\n  " + detail::printable(e.name);
    throw ValueError(detail::concat("NpzArchive::at: no array named '", detail::printable(name), "'; the archive has ",
                                    entries_.size(), " arrays", entries_.empty() ? "" : ":", known));
  }

  /// The names in archive order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }

  /// Number of arrays.
  std::size_t size() const { return entries_.size(); }
  /// Whether the archive holds no array.
  bool empty() const { return entries_.empty(); }
  /// The entries (NpzEntry: name and array) in archive order.
  auto begin() const { return entries_.begin(); }
  /// Past the last entry.
  auto end() const { return entries_.end(); }

 private:
  std::vector<NpzEntry> entries_;
  std::map<std::string, std::size_t> index_;
};

/// What load_npz accepts besides an exact match.
struct NpzLoadOptions {
  /// Ignore arrays that are not variables of the model (a TF1 dump of tf.global_variables()
  /// holds Adam slots, beta powers and an int64 global_step). Such members are still checked as
  /// ZIP members (sizes, CRC-32) but not decoded, so their dtype does not matter.
  bool allow_extra = false;
};

namespace detail {

/// The operation and the file (or buffer name) every message starts with.
using NpzContext = ZipContext;

/// An .npz archive as the ZIP reader sees it: named so in messages, every member "<name>.npy".
inline ZipFormat npz_zip_format() {
  ZipFormat f;
  f.archive = "an .npz archive";
  f.not_archive = "not an .npz (ZIP) archive";
  f.check_name = [](const std::string& name) -> std::string {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) return {};
    return name == ".npy" ? "an empty array name"
                          : "not a .npy array: every member of an .npz archive is named \"<array name>.npy\"";
  };
  return f;
}

/// Parses a whole archive. Members whose array name `wanted` rejects are checked as ZIP members
/// (sizes, CRC-32) but not decoded and not returned.
inline NpzArchive parse_npz_impl(const std::uint8_t* data, std::size_t size, const NpzContext& ctx,
                                 const std::function<bool(const std::string&)>& wanted = {}) {
  if (data == nullptr && size != 0) ctx.fail(concat("null data pointer with size ", size));
  if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0)
    ctx.fail("this is a single .npy array, not an .npz archive (numpy: np.savez / np.load)");
  const std::vector<ZipEntry> members = read_zip_directory(data, size, ctx, npz_zip_format());
  NpzArchive archive;
  std::vector<std::uint8_t> inflated;
  for (const ZipEntry& m : members) {
    const std::uint8_t* bytes = zip_member_data(data, m, ctx, inflated);
    std::string name = m.name.substr(0, m.name.size() - 4);
    if (wanted && !wanted(name)) continue;
    archive.add(name, parse_npy_impl(bytes, static_cast<std::size_t>(m.usize), ctx.member_where(m.name)));
  }
  return archive;
}

struct FileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f != nullptr) std::fclose(f);
  }
};

/// The bytes of a file, at most kMaxNpzBytes of them.
inline std::vector<std::uint8_t> read_file_bytes(const NpzContext& ctx) {
  std::error_code ec;
  if (std::filesystem::is_directory(ctx.source, ec)) ctx.fail("is a directory, not an .npz file");
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(ctx.source.c_str(), "rb"));
  if (!f) ctx.fail(concat("cannot open: ", errno_text(errno)));
  std::vector<std::uint8_t> bytes;
  const auto known = std::filesystem::file_size(ctx.source, ec);
  if (!ec) {
    if (known > kMaxNpzBytes)
      ctx.fail(concat(known, " bytes, larger than the ", kMaxNpzBytes, "-byte limit on an .npz archive"));
    bytes.reserve(static_cast<std::size_t>(known));  // the real size of the file, not a claim
  }
  std::array<std::uint8_t, 65536> chunk{};
  for (;;) {
    errno = 0;
    const std::size_t got = std::fread(chunk.data(), 1, chunk.size(), f.get());
    if (std::ferror(f.get())) ctx.fail(concat("read error: ", errno_text(errno)));
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
    if (bytes.size() > kMaxNpzBytes)
      ctx.fail(concat("more than ", kMaxNpzBytes, " bytes, the limit on an .npz archive"));
    if (got < chunk.size()) break;
  }
  return bytes;
}

inline std::vector<std::uint8_t> encode_npz_impl(const NpzArchive& archive, bool compress, const NpzContext& ctx) {
  if (archive.size() > kZipMaxMembers)
    ctx.fail(concat(archive.size(), " arrays; an .npz archive without zip64 holds at most 65535"));
  ZipWriter zip(ctx, compress);
  ByteWriter npy;
  for (const NpzEntry& e : archive) {
    npy.bytes().clear();
    append_npy(e.array, npy);
    zip.add(e.name + ".npy", npy.bytes().data(), npy.size());
  }
  return zip.finish();
}

template <class T>
void assign_npz_impl(VariableList<T>& vars, const NpzArchive& archive, const NpzLoadOptions& opt,
                     const NpzContext& ctx) {
  check_scalar<T>();
  std::vector<std::string> missing, wrong, extra;
  for (const VariableRef<T>& v : vars) {
    const NpyArray* a = archive.find(v.name);
    if (a == nullptr)
      missing.push_back(concat("missing: ", v.name, " ", shape_string(v.shape)));
    else if (a->shape() != v.shape)
      wrong.push_back(concat("wrong shape: ", v.name, ": expected ", shape_string(v.shape), ", given ",
                             shape_string(a->shape()), " (", a->descr(), ")"));
    else if (static_cast<std::size_t>(v.value->size()) != a->size())
      wrong.push_back(concat("wrong shape: ", v.name, ": the model stores ", shape_string(v.shape), " as ",
                             v.value->rows(), "x", v.value->cols(), ", given ", a->size(), " values"));
  }
  if (!opt.allow_extra)
    for (const NpzEntry& e : archive)
      if (vars.find(e.name) == nullptr)
        extra.push_back(concat("extra: ", printable(e.name), " ", shape_string(e.array.shape()), " (", e.array.descr(),
                               ") is not a variable of the model"));
  const std::size_t problems = missing.size() + wrong.size() + extra.size();
  if (problems != 0) {
    std::string msg = concat(ctx.op, ": '", ctx.source, "': the archive does not match the model's ", vars.size(),
                             " variables (", problems, problems == 1 ? " problem" : " problems", "):");
    for (const auto* list : {&missing, &wrong, &extra})
      for (const std::string& line : *list) msg += "\n  " + line;
    if (!extra.empty()) msg += "\n(NpzLoadOptions::allow_extra = true ignores extra arrays)";
    if (missing.empty() && extra.empty()) throw ShapeError(msg);
    throw ValueError(msg);
  }
  for (VariableRef<T>& v : vars) archive.find(v.name)->copy_to(v.value->data());
}

}  // namespace detail

/// Parses an .npz archive held in memory. `source` names it in error messages (a file name, or
/// e.g. "<buffer>"). Throws IOError for anything malformed or unsupported.
inline NpzArchive parse_npz(const std::uint8_t* data, std::size_t size, const std::string& source = "<buffer>") {
  return detail::parse_npz_impl(data, size, detail::NpzContext{"parse_npz", source});
}

/// Reads an .npz file (np.savez or np.savez_compressed). Throws IOError naming the file.
inline NpzArchive read_npz(const std::string& path) {
  const detail::NpzContext ctx{"read_npz", path};
  const std::vector<std::uint8_t> bytes = detail::read_file_bytes(ctx);
  return detail::parse_npz_impl(bytes.data(), bytes.size(), ctx);
}

/// The bytes of an .npz archive of `archive`: members "<name>.npy", deflated when `compress`
/// (np.savez_compressed) or stored (np.savez). Deterministic.
inline std::vector<std::uint8_t> encode_npz(const NpzArchive& archive, bool compress = true) {
  return detail::encode_npz_impl(archive, compress, detail::NpzContext{"encode_npz", "<buffer>"});
}

/// Writes `archive` to `path` atomically (temporary file + rename). Throws IOError naming the
/// file: missing directory, read-only or non-regular existing target, write errors.
inline void write_npz(const std::string& path, const NpzArchive& archive, bool compress = true) {
  const detail::NpzContext ctx{"write_npz", path};
  write_file_atomically(path, detail::encode_npz_impl(archive, compress, ctx), ctx.op);
}

/// The variables as an archive: name -> value in TF's shape ({n} or {rows, cols}), '<f4' for
/// float and '<f8' for double.
template <class T>
NpzArchive to_npz_archive(const VariableList<T>& vars) {
  detail::check_scalar<T>();
  NpzArchive archive;
  for (const VariableRef<T>& v : vars) {
    const auto n = static_cast<std::size_t>(v.value->size());
    archive.add(v.name, NpyArray(v.shape, std::vector<T>(v.value->data(), v.value->data() + n)));
  }
  return archive;
}

/// Copies the arrays of `archive` into the variables of the same name. All or nothing: every
/// variable must be present with exactly its TF shape, and (unless opt.allow_extra) every array
/// must be a variable; otherwise nothing is assigned and one exception lists every problem,
/// naming `source`: ShapeError when only shapes differ, ValueError when names are missing or extra.
/// float64 arrays are rounded to nearest when T is float.
template <class T>
void assign_npz(VariableList<T>& vars, const NpzArchive& archive, const std::string& source = "<archive>",
                const NpzLoadOptions& opt = {}) {
  detail::assign_npz_impl(vars, archive, opt, detail::NpzContext{"assign_npz", source});
}

/// Loads a TF1 weight export (np.savez / np.savez_compressed of {variable name: value}) into
/// `vars`, as assign_npz does (all or nothing). Read errors are IOErrors naming the file and member.
template <class T>
void load_npz(VariableList<T>& vars, const std::string& path, const NpzLoadOptions& opt = {}) {
  const detail::NpzContext ctx{"load_npz", path};
  const std::vector<std::uint8_t> bytes = detail::read_file_bytes(ctx);
  std::function<bool(const std::string&)> wanted;
  if (opt.allow_extra) wanted = [&vars](const std::string& name) { return vars.find(name) != nullptr; };
  const NpzArchive archive = detail::parse_npz_impl(bytes.data(), bytes.size(), ctx, wanted);
  detail::assign_npz_impl(vars, archive, opt, ctx);
}

/// Saves `vars` as an .npz archive numpy reads with np.load: one array per variable under its
/// TF name, '<f4' for float and '<f8' for double, deflated when `compress`. Atomic (temporary
/// file + rename): on failure the previous file is unchanged.
template <class T>
void save_npz(const VariableList<T>& vars, const std::string& path, bool compress = true) {
  const detail::NpzContext ctx{"save_npz", path};
  write_file_atomically(path, detail::encode_npz_impl(to_npz_archive(vars), compress, ctx), ctx.op);
}

}  // namespace cellflow::io
