// Atomic file replacement, the part io/checkpoint.hpp and io/npz.hpp share: a temporary file
// created exclusively next to its target, written in full, synced, closed and renamed over the
// target, and removed on every failure. Each caller keeps its own checks of the target, its
// own temporary names and its own messages; this header only reports what failed and errno.
//
//   detail::StagedFile f;
//   if (!f.create(next_name)) ...         // f.error(): errno; f.path(): the last name tried
//   if (!f.write_all(bytes.data(), bytes.size()) || !f.sync() || !f.close()) ...
//   if (std::error_code ec = f.rename_over(target)) ...
//   // any early return or exception: the destructor closes and removes the temporary
//
// POSIX: open(O_CREAT | O_EXCL | O_CLOEXEC, 0666) (mode as the umask allows), write() retried
// on EINTR and short writes, fsync(), close(). Elsewhere: fopen("wbx") (C11/C++17 exclusive
// mode), fwrite() and fflush(), no sync. rename() replaces the target in one step on POSIX
// file systems, so a reader sees the old file or the new one, never a mix.
//
// Internal (namespace cellflow::detail). Needs nothing but the standard library and POSIX.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define CELLFLOW_ATOMIC_FILE_POSIX 1
#endif

namespace cellflow::detail {

/// A temporary file that replaces its target on rename_over and is removed otherwise.
class StagedFile {
 public:
  StagedFile() = default;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  /// Closes the file if it is open and removes it unless rename_over succeeded.
  ~StagedFile() {
    close_quietly();
    if (created_ && !renamed_) {
      std::error_code ignored;
      std::filesystem::remove(path_, ignored);
    }
  }

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

}  // namespace cellflow::detail
