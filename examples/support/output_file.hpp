// The one way the example programs write files: mnist_rnn's checkpoint (--save), CSV (--csv) and
// chart (--plot) all go through write_output_file, and check_output_file tests a target at
// start-up, before any data is loaded or any training is done.
//
// The policy (that of cellflow::io::write_file_atomically, below):
// * `path` names a file. A symbolic link is followed and the file it points to is replaced. An
//   existing directory, a non-regular file (device, pipe, socket) or a read-only file is refused;
//   the directory must exist.
// * The bytes go to a new temporary file ".<file>.tmp-<random>" in the same directory, which is
//   written in full, synced, closed and renamed over the target: a reader sees the old file or
//   the new one, never a mix, and on any failure the temporary file is removed and the old file
//   is left as it was.
// * Errors are cellflow::IOError "<op>: '<path>': <what failed>", `op` being the option that
//   named the file, e.g. "--csv: '/tmp/runs/a.csv': the directory '/tmp/runs' does not exist".
//
// The public cellflow::io::write_file_atomically(path, bytes, op) (io/atomic_file.hpp, coming on
// another branch) follows this policy, with messages of the same form. Until it is there,
// output_detail::write_file_atomically implements it with the standard library (and fsync on
// POSIX), so that nothing here depends on cellflow's internals. Switching is one line, the one
// after SWITCH in write_output_file; output_detail::write_file_atomically and sync_directory can
// then go (check_output_file stays: the library has no check without a write).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

#include "cellflow/core/error.hpp"
#include "cellflow/io/atomic_file.hpp"  // cellflow::io::write_file_atomically, once it is there (SWITCH)

namespace support {

namespace output_detail {

namespace fs = std::filesystem;

inline cellflow::IOError error(const std::string& op, const std::string& path, const std::string& what) {
  return cellflow::IOError(op + ": '" + path + "': " + what);
}

inline std::string errno_text(int e) { return e != 0 ? std::strerror(e) : "unknown error"; }

/// A file about to be written: `file` is the path with every symbolic link followed.
struct Target {
  fs::path file, dir;
  fs::perms perms = fs::perms::none;
  bool exists = false;
};

/// The checks of the policy that need no writing; throws IOError naming `op` and `path`.
inline Target check_target(const std::string& path, const std::string& op) {
  if (path.empty()) throw error(op, path, "the path is empty");
  Target t;
  t.file = path;
  for (int hops = 0;; ++hops) {  // follow symbolic links, a chain of them too
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(t.file, ec)) || ec) break;
    if (hops == 40) throw error(op, path, "more than 40 levels of symbolic links");
    const fs::path next = fs::read_symlink(t.file, ec);
    if (ec) throw error(op, path, "cannot read the symbolic link '" + t.file.string() + "': " + ec.message());
    t.file = next.is_absolute() ? next : t.file.parent_path() / next;
  }
  std::error_code ec;
  const fs::file_status st = fs::status(t.file, ec);
  t.exists = fs::exists(st);
  if (t.exists) {
    if (fs::is_directory(st)) throw error(op, path, "is a directory; give the path of a file");
    if (!fs::is_regular_file(st))
      throw error(op, path, "exists and is not a regular file (a device, pipe or socket); not replacing it");
    t.perms = st.permissions() & fs::perms::all;
    const fs::perms write = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
    if ((t.perms & write) == fs::perms::none) throw error(op, path, "the existing file is read-only; not replacing it");
  }
  const std::string name = t.file.filename().string();
  if (name.empty() || name == "." || name == "..") throw error(op, path, "the path names no file");
  t.dir = t.file.has_parent_path() ? t.file.parent_path() : fs::path(".");
  const fs::file_status dst = fs::status(t.dir, ec);
  if (!fs::exists(dst)) throw error(op, path, "the directory '" + t.dir.string() + "' does not exist");
  if (!fs::is_directory(dst)) throw error(op, path, "'" + t.dir.string() + "' is not a directory");
  return t;
}

/// Fresh names ".<file>.<tag>-<12 hex digits>" in the target's directory.
class TempNames {
 public:
  TempNames(const Target& t, const char* tag) : stem_(t.dir / ("." + t.file.filename().string() + "." + tag + "-")) {
    std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    try {
      std::random_device rd;
      seed ^= (std::uint64_t(rd()) << 32) ^ rd();
    } catch (...) {  // no entropy source: the clock will do, names are created exclusively
    }
    gen_.seed(seed);
  }
  std::string operator()() {
    static const char digits[] = "0123456789abcdef";
    std::string name = stem_.string();
    std::uint64_t r = gen_();
    for (int k = 0; k < 12; ++k, r >>= 4) name += digits[r & 0xf];
    return name;
  }

 private:
  fs::path stem_;
  std::mt19937_64 gen_;
};

/// A file created exclusively under a fresh name, removed when it goes out of scope unless it was
/// renamed over its target. Standard C and C++ only, plus fsync on POSIX.
class TempFile {
 public:
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (file_ != nullptr) std::fclose(file_);
    std::error_code ignored;
    if (created_ && !renamed_) fs::remove(path_, ignored);
  }

  /// Creates the file under the first free name of up to 100; false (with error()) on failure.
  bool create(TempNames names) {
    for (int k = 0; k < 100; ++k) {
      path_ = names();
      errno = 0;
      file_ = std::fopen(path_.c_str(), "wbx");  // "x": exclusive, fails if the name exists
      if (file_ != nullptr) {
        created_ = true;
        std::setvbuf(file_, nullptr, _IONBF, 0);  // a failed write is reported by fwrite itself
        return true;
      }
      error_ = errno;
      if (error_ != EEXIST) return false;
    }
    return false;
  }
  /// Writes everything; false on failure (error() and written() say how far it got).
  bool write(const std::string& bytes) {
    errno = 0;
    written_ = std::fwrite(bytes.data(), 1, bytes.size(), file_);
    error_ = errno;
    return written_ == bytes.size();
  }
  /// Makes the bytes durable (fsync on POSIX), then closes the file; false on failure.
  bool sync_and_close() {
    errno = 0;
    bool ok = std::fflush(file_) == 0;
#if defined(__unix__) || defined(__APPLE__)
    ok = ok && ::fsync(fileno(file_)) == 0;
#endif
    error_ = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (ok && !closed) error_ = errno;
    return ok && closed;
  }
  std::error_code rename_over(const fs::path& target) {
    std::error_code ec;
    fs::rename(path_, target, ec);
    renamed_ = !ec;
    return ec;
  }
  const std::string& path() const { return path_; }
  int error() const { return error_; }
  std::size_t written() const { return written_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool created_ = false, renamed_ = false;
  int error_ = 0;
  std::size_t written_ = 0;
};

/// Syncs a directory so that a rename in it is durable; best effort, nothing to do without POSIX.
inline void sync_directory(const fs::path& dir) {
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(dir.c_str(), O_RDONLY);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
#else
  (void)dir;
#endif
}

/// Writes `bytes` to `path` by the policy above.
inline void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& op) {
  const Target t = check_target(path, op);
  const std::string unchanged = "; the previous file, if any, is unchanged";
  TempFile tmp;  // removed on every failure below
  if (!tmp.create(TempNames(t, "tmp")))
    throw error(op, path,
                "cannot create the temporary file '" + tmp.path() + "': " + errno_text(tmp.error()) + unchanged);
  const auto fail = [&](const std::string& what) {
    return error(
        op, path,
        what + " on the temporary file '" + tmp.path() + "': " + errno_text(tmp.error()) + " (removed it)" + unchanged);
  };
  if (!tmp.write(bytes))
    throw fail("write error after " + std::to_string(tmp.written()) + " of " + std::to_string(bytes.size()) + " bytes");
  if (!tmp.sync_and_close()) throw fail("fsync or close failed");
  std::error_code ec;
  if (t.exists) fs::permissions(tmp.path(), t.perms, ec);  // keep the old file's mode; best effort
  ec = tmp.rename_over(t.file);
  if (ec)
    throw error(
        op, path,
        "cannot rename the temporary file '" + tmp.path() + "' over it: " + ec.message() + " (removed it)" + unchanged);
  sync_directory(t.dir);
}

}  // namespace output_detail

/// Checks that `path` can be written by write_output_file, without touching it: the checks of the
/// policy, then an empty file created (and removed at once) in its directory, which is what the
/// write will do. Throws IOError "<op>: '<path>': <problem>".
inline void check_output_file(const std::string& path, const std::string& op) {
  const output_detail::Target t = output_detail::check_target(path, op);
  output_detail::TempFile probe;  // removed when it goes out of scope
  if (!probe.create(output_detail::TempNames(t, "check")))
    throw output_detail::error(
        op, path, "cannot create a file in '" + t.dir.string() + "': " + output_detail::errno_text(probe.error()));
}

/// Writes `bytes` to `path` atomically (see the policy above). Throws IOError "<op>: '<path>': ...";
/// on failure a previous file at `path` is unchanged and no temporary file is left.
inline void write_output_file(const std::string& path, const std::string& bytes, const std::string& op) {
  // SWITCH: the next line becomes cellflow::io::write_file_atomically(path, bytes, op);
  output_detail::write_file_atomically(path, bytes, op);
}

}  // namespace support
