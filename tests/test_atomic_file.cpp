// The atomic file replacement io/checkpoint.hpp and io/npz.hpp share
// (cellflow/io/atomic_file.hpp): a staged temporary becomes the target only through rename_over,
// and is removed on every other path; each failure reports errno and where it happened. (The
// messages built from these reports are tested with save_checkpoint and save_npz.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#if defined(__linux__)
#include <signal.h>
#include <sys/resource.h>
#endif

#include "cellflow/io/atomic_file.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using cellflow::detail::StagedFile;

using cellflow_test::TempDir;

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t k = 0; k < n; ++k) b[k] = static_cast<std::uint8_t>(k * 7 + 3);
  return b;
}

}  // namespace

TEST_CASE("a staged file replaces its target on rename_over, and only then", "[atomic_file]") {
  TempDir dir;
  const std::string target = dir.file("target.bin");
  write_bytes(target, {1, 2, 3});
  const Bytes data = pattern(100000);

  SECTION("written, synced, closed, renamed: the target has the new bytes, no temporary is left") {
    StagedFile f;
    REQUIRE(f.create([&] { return dir.file("target.bin.tmp"); }));
    CHECK(f.path() == dir.file("target.bin.tmp"));
    REQUIRE(f.write_all(data.data(), data.size()));
    CHECK(f.written() == data.size());
    REQUIRE(f.sync());
    REQUIRE(f.close());
    CHECK(read_bytes(target) == Bytes{1, 2, 3});  // nothing changes before the rename
    CHECK_FALSE(f.rename_over(target));
    CHECK(read_bytes(target) == data);
    CHECK(dir.entries() == std::vector<std::string>{"target.bin"});
  }
  SECTION("abandoned after writing (an exception, an early return): removed, the target untouched") {
    {
      StagedFile f;
      REQUIRE(f.create([&] { return dir.file("t1"); }));
      REQUIRE(f.write_all(data.data(), data.size()));
      CHECK(dir.entries() == std::vector<std::string>{"t1", "target.bin"});
    }
    {
      StagedFile f;
      REQUIRE(f.create([&] { return dir.file("t2"); }));
      REQUIRE(f.write_all(data.data(), data.size()));
      REQUIRE(f.close());
    }
    CHECK(dir.entries() == std::vector<std::string>{"target.bin"});
    CHECK(read_bytes(target) == Bytes{1, 2, 3});
  }
  SECTION("a rename that fails (over a non-empty directory) leaves both as they were, then removes the temporary") {
    fs::create_directory(dir.file("sub"));
    write_bytes(dir.file("sub/keep"), {9});
    {
      StagedFile f;
      REQUIRE(f.create([&] { return dir.file("t"); }));
      REQUIRE(f.write_all(data.data(), data.size()));
      REQUIRE(f.close());
      CHECK(f.rename_over(dir.file("sub")));
      CHECK(read_bytes(dir.file("t")) == data);
    }
    CHECK(dir.entries() == std::vector<std::string>{"sub", "target.bin"});
    CHECK(read_bytes(dir.file("sub/keep")) == Bytes{9});
  }
}

TEST_CASE("creating a staged file never opens an existing file and reports errno", "[atomic_file]") {
  TempDir dir;
  write_bytes(dir.file("taken"), {7, 7});
  int calls = 0;
  SECTION("every name taken: EEXIST after 100 names") {
    StagedFile f;
    CHECK_FALSE(f.create([&] {
      ++calls;
      return dir.file("taken");
    }));
    CHECK(f.error() == EEXIST);
    CHECK(calls == 100);
    CHECK(f.path() == dir.file("taken"));
  }
  SECTION("the first free name is used") {
    StagedFile f;
    REQUIRE(f.create([&] { return dir.file(++calls < 3 ? "taken" : "free"); }));
    CHECK(calls == 3);
    CHECK(f.path() == dir.file("free"));
  }
  SECTION("another error ends the attempts at once") {
    StagedFile f;
    CHECK_FALSE(f.create([&] {
      ++calls;
      return dir.file("missing/x");
    }));
    CHECK(f.error() == ENOENT);
    CHECK(calls == 1);
  }
  CHECK(read_bytes(dir.file("taken")) == Bytes{7, 7});
}

#if defined(__linux__) && defined(CELLFLOW_ATOMIC_FILE_POSIX)  // stdio would buffer what write() reports
TEST_CASE("a write that fails midway reports errno and the bytes written, and the temporary goes", "[atomic_file]") {
  // RLIMIT_FSIZE makes write() fail with EFBIG past 100 bytes (SIGXFSZ ignored meanwhile).
  TempDir dir;
  struct rlimit old_limit {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  REQUIRE(::sigaction(SIGXFSZ, &ignore, &old_action) == 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 100;
  const Bytes data = pattern(1000);
  bool wrote = true;
  int err = 0;
  std::size_t written = 0;
  {
    StagedFile f;
    REQUIRE(f.create([&] { return dir.file("t"); }));
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    wrote = f.write_all(data.data(), data.size());
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    err = f.error();
    written = f.written();
    CHECK_FALSE(f.stalled());
  }
  ::sigaction(SIGXFSZ, &old_action, nullptr);
  CHECK_FALSE(wrote);
  CHECK(err == EFBIG);
  CHECK(written == 100);
  CHECK(dir.entries().empty());
}
#endif
