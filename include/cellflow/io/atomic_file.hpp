// Atomic file replacement: the one way cellflow writes a file (checkpoints, .npz archives, and
// programs' outputs such as CSV or SVG files), so that a reader sees the old file or the new one,
// never a mix, and a failed, interrupted or killed save never loses the previous file.
//
//   cellflow::io::write_file_atomically("model.ckpt", bytes, "save_checkpoint");
//   cellflow::io::write_file_atomically("run.csv", csv_text, "mnist_rnn --csv");
//
// The policy, the same for every caller:
//
// 1. The target. `path` names a file. A symbolic link is followed (a chain of them too): the
//    file it points to is replaced and the link is kept (a dangling link's target is created).
//    An existing target that is a directory, or not a regular file (a device, FIFO or socket),
//    is refused; so is a read-only one ("the existing file is read-only; not replacing it": no
//    write permission bit, or, on POSIX, not writable by this process). The directory must exist.
// 2. Stale temporary files. A save killed in the middle (SIGKILL, power loss) leaves its
//    temporary file behind. Before writing, the temporary files of the same target whose name
//    carries this host and the pid of a process that no longer exists (kill(pid, 0) fails with
//    ESRCH) are removed. The temporary file of a live process, or of another host, is never
//    touched; nor is any other file. (This costs one listing of the directory per save. A
//    process is known by host name and pid: containers that share a directory and a host name
//    but not a pid namespace cannot see each other's processes, and should not share targets.)
// 3. The write. The bytes go to a new temporary file ".<file>.tmp-<host>-<pid>-<random>" in the
//    target's directory (the same file system, so the rename is atomic; <file> is cut to 120
//    bytes, <host> is gethostname() with characters other than letters, digits, '.', '_' and
//    '-' replaced by '_'), created exclusively (O_EXCL), written in full (write() retried on
//    EINTR and short writes), given the old file's permission bits (rwx for user, group and
//    others; a new file gets 0666 minus the umask), fsync'ed, closed and renamed over the target; then the directory is
//    fsync'ed (best effort: some file systems refuse to sync a directory).
// 4. Failure. On any failure the temporary file is removed, the previous file is left
//    byte-identical and IOError "<op>: '<path>': <what failed> ...; the previous file, if any,
//    is unchanged" is thrown, with errno's text.
//
// Not done: the new file belongs to the writing process (the old owner and group are not kept),
// hard links to the old file keep the old content (the name gets a new file), and concurrent
// writers are not serialised (each writes its own temporary file; the last rename wins).
// Without POSIX (no fsync, fchmod or kill), the write uses stdio, nothing is synced and no stale
// temporary file is removed.
//
// Public: write_file_atomically, check_writable. Internal (cellflow::io::detail): StagedFile, the temporary file
// itself, and the helpers of the policy. Needs nothing but the standard library and POSIX.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#define CELLFLOW_ATOMIC_FILE_POSIX 1
#endif

#include "cellflow/core/error.hpp"

namespace cellflow::io {
namespace detail {

using cellflow::detail::concat;

/// A temporary file that replaces its target on rename_over and is removed otherwise.
///
///   detail::StagedFile f;
///   if (!f.create(next_name)) ...         // f.error(): errno; f.path(): the last name tried
///   if (!f.write_all(bytes.data(), bytes.size()) || !f.sync() || !f.close()) ...
///   if (std::error_code ec = f.rename_over(target)) ...
///   // any early return or exception: the destructor closes and removes the temporary
class StagedFile {
 public:
  StagedFile() = default;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  /// Closes the file if it is open and removes it unless rename_over succeeded.
  ~StagedFile() { discard(); }

  /// Creates the file under the first of up to `attempts` names from `next_name` that does not
  /// exist yet. False on failure: error() is the errno of the last attempt (EEXIST when every
  /// name existed) and path() the last name tried.
  bool create(const std::function<std::string()>& next_name, int attempts = 100) {
    for (int k = 0; k < attempts; ++k) {
      path_ = next_name();
      errno = 0;
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      const bool ok = fd_ >= 0;
#else
      file_ = std::fopen(path_.c_str(), "wbx");  // "x": fail if it exists
      const bool ok = file_ != nullptr;
#endif
      if (ok) {
        created_ = true;
        return true;
      }
      error_ = errno;
      if (error_ != EEXIST) return false;
    }
    return false;
  }

  /// Writes `size` bytes. False on failure: error() is errno (0 when unknown), written() the
  /// bytes written before it and stalled() whether a write made no progress without an error.
  bool write_all(const std::uint8_t* data, std::size_t size) {
    written_ = 0;
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    while (written_ < size) {
      const std::size_t n = std::min<std::size_t>(size - written_, std::size_t(1) << 30);
      errno = 0;
      const ssize_t wrote = ::write(fd_, data + written_, n);
      if (wrote < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return false;
      }
      if (wrote == 0) {
        stalled_ = true;
        error_ = EIO;
        return false;
      }
      written_ += static_cast<std::size_t>(wrote);
    }
    return true;
#else
    while (written_ < size) {
      const std::size_t n = std::min<std::size_t>(size - written_, std::size_t(1) << 24);
      errno = 0;
      const std::size_t wrote = std::fwrite(data + written_, 1, n, file_);
      written_ += wrote;
      if (wrote != n) {
        error_ = errno;
        return false;
      }
    }
    errno = 0;
    if (std::fflush(file_) != 0) {
      error_ = errno;
      return false;
    }
    return true;
#endif
  }

  /// Sets the permission bits of the (open) file. False on failure.
  bool set_permissions(std::filesystem::perms perms) {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    errno = 0;
    if (::fchmod(fd_, static_cast<mode_t>(perms & std::filesystem::perms::all)) != 0) {
      error_ = errno;
      return false;
    }
    return true;
#else
    std::error_code ec;
    std::filesystem::permissions(path_, perms, ec);
    error_ = ec.value();
    return !ec;
#endif
  }

  /// Makes the written bytes durable (fsync; nothing to do without POSIX). False on failure.
  bool sync() {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    errno = 0;
    if (::fsync(fd_) != 0) {
      error_ = errno;
      return false;
    }
#endif
    return true;
  }

  /// Closes the file. False on failure (the file is closed all the same).
  bool close() {
    errno = 0;
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    const bool ok = ::close(fd_) == 0;
    fd_ = -1;
#else
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
#endif
    if (!ok) error_ = errno;
    return ok;
  }

  /// Renames the (closed) file over `target`; from then on it is the target and is no longer
  /// removed. Returns the rename's error, if any.
  std::error_code rename_over(const std::filesystem::path& target) {
    std::error_code ec;
    std::filesystem::rename(path_, target, ec);
    if (!ec) renamed_ = true;
    return ec;
  }

  /// Closes and removes the file unless it was renamed (what the destructor does); true when no
  /// temporary file is left.
  bool discard() {
    close_quietly();
    if (created_ && !renamed_) {
      std::error_code ec;
      std::filesystem::remove(path_, ec);
      if (ec) return false;
      created_ = false;
    }
    return true;
  }

  const std::string& path() const { return path_; }
  int error() const { return error_; }
  std::size_t written() const { return written_; }
  bool stalled() const { return stalled_; }

 private:
  void close_quietly() {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
#else
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
#endif
  }

  std::string path_;
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
  int fd_ = -1;
#else
  std::FILE* file_ = nullptr;
#endif
  bool created_ = false, renamed_ = false, stalled_ = false;
  int error_ = 0;
  std::size_t written_ = 0;
};

/// Syncs the directory `dir` so that a rename in it is durable; best effort (some file systems
/// refuse to sync a directory), nothing to do without POSIX.
inline void sync_directory(const std::string& dir) {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
  const int fd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
#else
  (void)dir;
#endif
}

inline std::string errno_text(int err) { return err != 0 ? std::strerror(err) : "unknown error"; }

/// This host's name as temporary file names carry it (see the top of this header), or "" when
/// it cannot be known (then no stale temporary file is ever removed).
inline std::string temp_host() {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  std::string host(buf);
  for (char& c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      c = '_';
  return host.substr(0, 64);
#else
  return "";
#endif
}

inline long long current_pid() {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
  return static_cast<long long>(::getpid());
#else
  return 0;
#endif
}

/// ".<file>.tmp-": how the names of the temporary files of a target with this file name start.
inline std::string temp_prefix(const std::string& file_name) { return "." + file_name.substr(0, 120) + ".tmp-"; }

/// The host and pid of a temporary file name "<prefix><host>-<pid>-<random>" (random: hex
/// digits); false when `name` is not one.
inline bool parse_temp_name(const std::string& name, const std::string& prefix, std::string& host, long long& pid) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = name.substr(prefix.size());
  const std::size_t r = rest.rfind('-');
  if (r == std::string::npos || r + 1 == rest.size()) return false;
  for (std::size_t k = r + 1; k < rest.size(); ++k)
    if (!std::isxdigit(static_cast<unsigned char>(rest[k]))) return false;
  const std::size_t p = r == 0 ? std::string::npos : rest.rfind('-', r - 1);
  if (p == std::string::npos || p == 0 || r - p - 1 == 0 || r - p - 1 > 10) return false;
  long long value = 0;
  for (std::size_t k = p + 1; k < r; ++k) {
    if (rest[k] < '0' || rest[k] > '9') return false;
    value = value * 10 + (rest[k] - '0');
  }
  host = rest.substr(0, p);
  pid = value;
  return true;
}

/// Whether a process `pid` exists (on this host); true when that cannot be known.
inline bool process_exists(long long pid) {
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
  if (pid <= 0 || pid > INT_MAX) return true;  // never kill(0) or a process group: treat as live
  errno = 0;
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno != ESRCH;  // EPERM: it exists, owned by someone else
#else
  (void)pid;
  return true;
#endif
}

/// Removes the stale temporary files of the target `dir/file_name` (rule 2 at the top of this
/// header) and returns how many it removed. Best effort: errors are ignored.
inline std::size_t remove_stale_temp_files(const std::filesystem::path& dir, const std::string& file_name) {
  namespace fs = std::filesystem;
  const std::string host = temp_host();
  if (host.empty()) return 0;
  const std::string prefix = temp_prefix(file_name);
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string entry_host;
    long long pid = 0;
    const std::string name = it->path().filename().string();
    if (parse_temp_name(name, prefix, entry_host, pid) && entry_host == host && !process_exists(pid))
      stale.push_back(it->path());
  }
  std::size_t removed = 0;
  for (const fs::path& p : stale) {
    std::error_code ignored;
    if (fs::is_regular_file(fs::symlink_status(p, ignored)) && fs::remove(p, ignored)) ++removed;
  }
  return removed;
}

/// `path` with every symbolic link followed (rule 1): the file a save really replaces.
inline std::filesystem::path resolve_links(const std::filesystem::path& path, const std::string& ctx) {
  namespace fs = std::filesystem;
  fs::path p = path;
  for (int hops = 0;; ++hops) {
    std::error_code ec;
    const fs::file_status ls = fs::symlink_status(p, ec);
    if (ec || !fs::is_symlink(ls)) return p;
    if (hops == 40) throw IOError(concat(ctx, ": more than 40 levels of symbolic links"));
    const fs::path next = fs::read_symlink(p, ec);
    if (ec) throw IOError(concat(ctx, ": cannot read the symbolic link '", p.string(), "': ", ec.message()));
    p = next.is_absolute() ? next : p.parent_path() / next;
  }
}

/// The file a save of `path` replaces, after the checks of rule 1 (ctx starts every message).
struct CheckedTarget {
  std::filesystem::path file, dir;  // every symbolic link followed; the file's directory
  std::filesystem::file_status status;
  bool exists = false;
};

inline CheckedTarget check_target(const std::string& path, const std::string& ctx) {
  namespace fs = std::filesystem;
  const auto fail = [&](const std::string& what) { throw IOError(concat(ctx, ": ", what)); };
  if (path.empty()) fail("the path is empty");
  CheckedTarget t;
  t.file = resolve_links(path, ctx);
  std::error_code ec;
  t.status = fs::status(t.file, ec);
  t.exists = fs::exists(t.status);
  if (t.exists) {
    if (fs::is_directory(t.status)) fail("is a directory; give the path of a file");
    if (!fs::is_regular_file(t.status))
      fail("exists and is not a regular file (a device, pipe or socket); not replacing it");
    const fs::perms write = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
    if ((t.status.permissions() & write) == fs::perms::none) fail("the existing file is read-only; not replacing it");
#if defined(CELLFLOW_ATOMIC_FILE_POSIX)
    errno = 0;
    if (::access(t.file.c_str(), W_OK) != 0)
      fail(concat("the existing file is read-only for this process (", errno_text(errno), "); not replacing it"));
#endif
  }
  const std::string file_name = t.file.filename().string();
  if (file_name.empty() || file_name == "." || file_name == "..") fail("the path names no file");
  t.dir = t.file.has_parent_path() ? t.file.parent_path() : fs::path(".");
  const fs::file_status dir_status = fs::status(t.dir, ec);
  if (!fs::exists(dir_status)) fail(concat("the directory '", t.dir.string(), "' does not exist"));
  if (!fs::is_directory(dir_status)) fail(concat("'", t.dir.string(), "' is not a directory"));
  return t;
}

/// Fresh temporary names ".<file>.tmp-<host>-<pid>-<12 hex digits>" in the target's directory.
class TempNames {
 public:
  TempNames(const std::filesystem::path& dir, const std::string& file_name)
      : dir_(dir),
        stem_(concat(temp_prefix(file_name), temp_host().empty() ? "unknown" : temp_host(), "-", current_pid(), "-")) {
    std::uint64_t seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    try {
      std::random_device rd;
      seed ^= (std::uint64_t(rd()) << 32) ^ rd();
    } catch (...) {  // no entropy source: the clock alone will do, names are tried exclusively
    }
    gen_.seed(seed ^ reinterpret_cast<std::uintptr_t>(this));
  }
  std::string operator()() {
    static const char digits[] = "0123456789abcdef";
    std::string suffix;
    std::uint64_t r = gen_();
    for (int k = 0; k < 12; ++k, r >>= 4) suffix += digits[r & 0xf];
    return (dir_ / (stem_ + suffix)).string();
  }

 private:
  std::filesystem::path dir_;
  std::string stem_;
  std::mt19937_64 gen_;
};

}  // namespace detail

/// Checks, without touching an existing file, that write_file_atomically(path, ...) could write
/// `path` now: the checks of rule 1, then a temporary file created (and removed at once) in the
/// target's directory, which is what a save does first. Throws the IOError the save would throw
/// ("<op>: '<path>': ..."). For programs that write files late (after an epoch of training):
/// check every output at start-up.
inline void check_writable(const std::string& path, const std::string& op = "check_writable") {
  const std::string ctx = detail::concat(op, ": '", path, "'");
  const detail::CheckedTarget t = detail::check_target(path, ctx);
  detail::StagedFile probe;  // removed when it goes out of scope
  if (!probe.create(detail::TempNames(t.dir, t.file.filename().string())))
    throw IOError(
        detail::concat(ctx, ": cannot create a file in '", t.dir.string(), "': ", detail::errno_text(probe.error())));
}

/// Writes `size` bytes to `path` atomically, by the policy at the top of this header (symbolic
/// links followed, directories, non-regular and read-only files refused, permissions kept,
/// stale temporary files of the same target removed, temporary file + fsync + rename). `op`
/// starts every message: "<op>: '<path>': ...". Throws IOError; on failure the previous file,
/// if any, is byte-identical and no temporary file is left.
inline void write_file_atomically(const std::string& path, const std::uint8_t* data, std::size_t size,
                                  const std::string& op = "write_file_atomically") {
  namespace fs = std::filesystem;
  using detail::concat;
  using detail::errno_text;
  const std::string ctx = concat(op, ": '", path, "'");
  const auto fail = [&](const std::string& what) { throw IOError(concat(ctx, ": ", what)); };
  if (path.empty()) fail("the path is empty");
  if (data == nullptr && size != 0) fail(concat("null data pointer with size ", size));
  const detail::CheckedTarget t = detail::check_target(path, ctx);
  const fs::path& target = t.file;
  const fs::path& dir = t.dir;
  const fs::file_status& st = t.status;
  const bool exists = t.exists;
  const std::string file_name = target.filename().string();
  std::error_code ec;

  detail::remove_stale_temp_files(dir, file_name);

  detail::TempNames next_name(dir, file_name);  // ".<file>.tmp-<host>-<pid>-<12 hex digits>", tried exclusively
  const std::string unchanged = "; the previous file, if any, is unchanged";
  detail::StagedFile tmp;  // removed on every failure below
  if (!tmp.create(next_name)) {
    if (tmp.error() == EEXIST)
      fail(concat("cannot create a temporary file in '", dir.string(), "': 100 names were taken", unchanged));
    fail(concat("cannot create the temporary file '", tmp.path(), "': ", errno_text(tmp.error()), unchanged));
  }
  const auto fail_tmp = [&](const std::string& what) {
    const int err = tmp.error();
    const bool removed = tmp.discard();
    fail(concat(what, " on the temporary file '", tmp.path(), "': ", errno_text(err),
                removed ? " (removed it)" : " (could not remove it)", unchanged));
  };
  if (!tmp.write_all(data, size))
    fail_tmp(concat(tmp.stalled() ? "write made no progress after " : "write error after ", tmp.written(), " of ", size,
                    " bytes"));
  if (exists && !tmp.set_permissions(st.permissions() & fs::perms::all)) fail_tmp("cannot set the permissions");
  if (!tmp.sync()) fail_tmp("fsync failed");
  if (!tmp.close()) fail_tmp("close failed");
  ec = tmp.rename_over(target);
  if (ec) {
    const bool removed = tmp.discard();
    fail(concat("cannot rename the temporary file '", tmp.path(), "' over it: ", ec.message(),
                removed ? " (removed it)" : " (could not remove it)", unchanged));
  }
  detail::sync_directory(dir.string());
}

/// Writes `bytes` to `path` atomically (see above).
inline void write_file_atomically(const std::string& path, const std::vector<std::uint8_t>& bytes,
                                  const std::string& op = "write_file_atomically") {
  write_file_atomically(path, bytes.data(), bytes.size(), op);
}

/// Writes `text` to `path` atomically (see above), byte for byte (no newline translation).
inline void write_file_atomically(const std::string& path, const std::string& text,
                                  const std::string& op = "write_file_atomically") {
  write_file_atomically(path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), op);
}

}  // namespace cellflow::io
