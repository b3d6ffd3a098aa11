// A fresh temporary directory per test, removed with everything in it at scope exit: the one
// helper of every test that touches files (checkpoints, .npz, IDX, atomic writes).
//
//   cellflow_test::TempDir dir;                  // /tmp/cellflow-test-<random>/
//   const std::string path = dir.file("m.ckpt");
//   CHECK(dir.entries() == std::vector<std::string>{"m.ckpt"});   // nothing else left behind
//   write_bytes(path, read_bytes(path));          // a file's bytes, e.g. to cut or corrupt it
//
// Names are random (CTest runs test cases in parallel processes). Removal first gives the owner
// full permissions on every directory inside, so a test that made one read-only cannot leave
// it behind.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace cellflow_test {

class TempDir {
 public:
  TempDir() {
    namespace fs = std::filesystem;
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const fs::path p = fs::temp_directory_path() / ("cellflow-test-" + std::to_string(rd()) + std::to_string(rd()));
      std::error_code ec;
      if (fs::create_directory(p, ec)) {
        path_ = p;
        return;
      }
    }
    FAIL("cannot create a temporary directory under " << std::filesystem::temp_directory_path());
  }
  ~TempDir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    for (fs::recursive_directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ignored;
      if (it->is_directory(ignored) && !it->is_symlink(ignored))
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ignored);
    }
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// The directory's path.
  std::string str() const { return path_.string(); }
  const std::filesystem::path& path() const { return path_; }
  /// The names of the entries in the directory, sorted (to see that nothing else was left).
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path path_;
};

/// The bytes of the file at `path` (REQUIREs that it opens).
inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes `bytes` to the file at `path`, replacing it (REQUIREs that the write succeeds).
inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

}  // namespace cellflow_test
