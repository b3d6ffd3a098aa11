// Atomic file replacement (cellflow/io/atomic_file.hpp), the one way checkpoints and .npz
// archives are written: every rule of the documented policy of write_file_atomically (symbolic
// links followed, refused targets, permissions kept, the temporary file's name, removal of the
// temporary files of killed saves, and of no other file), a save really killed with SIGKILL in
// the middle, and the StagedFile underneath (a temporary becomes the target only through
// rename_over and is removed on every other path; each failure reports errno).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "cellflow/io/atomic_file.hpp"
#include "support/temp_dir.hpp"

namespace test_atomic_file {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
namespace cio = cellflow::io;
using Catch::Matchers::Contains;
using cio::detail::StagedFile;

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

/// The message of the IOError thrown by f (fails the test if f does not throw one).
template <class F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const cellflow::IOError& e) {
    return e.what();
  }
  FAIL("no IOError thrown");
  return {};
}

/// The temporary files in `dir` (names holding ".tmp-").
std::vector<std::string> temp_files(const TempDir& dir) {
  std::vector<std::string> out;
  for (const std::string& n : dir.entries())
    if (n.find(".tmp-") != std::string::npos) out.push_back(n);
  return out;
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t k = 0; k < n; ++k) b[k] = static_cast<std::uint8_t>(k * 7 + 3);
  return b;
}

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

TEST_CASE("write_file_atomically writes bytes and text, replacing a file with no temporary left", "[atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  const Bytes data = pattern(70000);
  cio::write_file_atomically(path, data, "test");
  CHECK(read_bytes(path) == data);
  cio::write_file_atomically(path, std::string("a,b\r\n1,2\n"), "test");  // text: byte for byte
  CHECK(read_bytes(path) == Bytes{'a', ',', 'b', '\r', '\n', '1', ',', '2', '\n'});
  cio::write_file_atomically(path, nullptr, 0, "test");
  CHECK(read_bytes(path).empty());
  CHECK(dir.entries() == std::vector<std::string>{"out.bin"});
  CHECK_THAT(io_error([&] { cio::write_file_atomically("", data, "op"); }), Contains("op: '': the path is empty"));
}

TEST_CASE("write_file_atomically: the documented policy for links, refused targets and permissions", "[atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("w.bin");
  write_bytes(path, {1, 2, 3});
  const Bytes data = pattern(1000);

  SECTION("a symbolic link is followed: the file it points to is replaced, the link kept") {
    fs::create_directory(dir.file("real"));
    write_bytes(dir.file("real/target.bin"), {9});
    fs::create_symlink("real/target.bin", dir.file("link1"));  // relative to the link's directory
    fs::create_symlink(dir.file("link1"), dir.file("link2"));  // a chain
    cio::write_file_atomically(dir.file("link2"), data, "op");
    CHECK(fs::is_symlink(dir.file("link1")));
    CHECK(fs::is_symlink(dir.file("link2")));
    CHECK(read_bytes(dir.file("real/target.bin")) == data);
    CHECK(fs::read_symlink(dir.file("link1")) == fs::path("real/target.bin"));
    // The temporary file lived next to the real file: nothing else in either directory.
    CHECK(dir.entries() == std::vector<std::string>{"link1", "link2", "real", "w.bin"});
    CHECK(std::distance(fs::directory_iterator(dir.file("real")), fs::directory_iterator()) == 1);
    // A dangling link: the file it names is created.
    fs::create_symlink("real/new.bin", dir.file("dangling"));
    cio::write_file_atomically(dir.file("dangling"), data, "op");
    CHECK(fs::is_symlink(dir.file("dangling")));
    CHECK(read_bytes(dir.file("real/new.bin")) == data);
    // A loop of links is refused.
    fs::create_symlink(dir.file("loop_b"), dir.file("loop_a"));
    fs::create_symlink(dir.file("loop_a"), dir.file("loop_b"));
    CHECK_THAT(io_error([&] { cio::write_file_atomically(dir.file("loop_a"), data, "op"); }),
               Contains("op: '" + dir.file("loop_a") + "': more than 40 levels of symbolic links"));
  }
  SECTION("a read-only target is refused, byte-identical afterwards") {
    fs::permissions(path, fs::perms::owner_read | fs::perms::group_read);
    CHECK_THAT(io_error([&] { cio::write_file_atomically(path, data, "save_x"); }),
               Contains("save_x: '" + path + "': the existing file is read-only; not replacing it"));
    CHECK(read_bytes(path) == Bytes{1, 2, 3});
    fs::permissions(path, fs::perms::owner_all);
  }
  SECTION("a directory, a FIFO, a path naming no file, a missing directory are refused") {
    CHECK_THAT(io_error([&] { cio::write_file_atomically(dir.str(), data, "op"); }),
               Contains("op: '" + dir.str() + "': is a directory; give the path of a file"));
#if defined(__linux__)
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0644) == 0);
    CHECK_THAT(io_error([&] { cio::write_file_atomically(dir.file("fifo"), data, "op"); }),
               Contains("exists and is not a regular file (a device, pipe or socket); not replacing it"));
    CHECK(fs::is_fifo(dir.file("fifo")));
    fs::remove(dir.file("fifo"));
#endif
    CHECK_THAT(
        io_error([&] { cio::write_file_atomically(dir.file("none/x.bin"), data, "op"); }),
        Contains("op: '" + dir.file("none/x.bin") + "': the directory '" + dir.file("none") + "' does not exist"));
    CHECK_THAT(io_error([&] { cio::write_file_atomically(dir.file("x/.."), data, "op"); }),
               Contains("the path names no file"));
    CHECK_FALSE(fs::exists(dir.file("none")));
  }
  SECTION("the old file's permission bits are kept; a new file gets 0666 minus the umask") {
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read,
                    fs::perm_options::replace);
    cio::write_file_atomically(path, data, "op");
    CHECK(read_bytes(path) == data);
    CHECK((fs::status(path).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read));
#if defined(__linux__)
    const mode_t mask = ::umask(022);
    ::umask(mask);
    cio::write_file_atomically(dir.file("new.bin"), data, "op");
    CHECK(static_cast<mode_t>(fs::status(dir.file("new.bin")).permissions() & fs::perms::all) == (0666 & ~mask));
    fs::remove(dir.file("new.bin"));
#endif
  }
  CHECK(temp_files(dir).empty());
}

#if defined(__linux__) && defined(CELLFLOW_ATOMIC_FILE_POSIX)

/// The pid of a process that has just exited (forked, exited, reaped).
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return pid;
}

TEST_CASE("a save removes the temporary files of dead saves of the same target, and no other file", "[atomic_file]") {
  TempDir dir;
  const std::string host = cio::detail::temp_host();
  REQUIRE_FALSE(host.empty());
  const std::string dead = std::to_string(dead_pid()), live = std::to_string(::getpid()),
                    parent = std::to_string(::getppid());
  const std::vector<std::string> stale{".m.ckpt.tmp-" + host + "-" + dead + "-0123456789ab",
                                       ".m.ckpt.tmp-" + host + "-" + dead + "-f"};
  const std::vector<std::string> kept{".m.ckpt.tmp-" + host + "-" + live + "-0123456789ab",    // this (live) process
                                      ".m.ckpt.tmp-" + host + "-" + parent + "-0123456789ab",  // another live process
                                      ".m.ckpt.tmp-other-host.example-" + dead + "-0123456789ab",  // another host
                                      ".n.ckpt.tmp-" + host + "-" + dead + "-0123456789ab",        // another target
                                      ".m.ckpt.tmp-" + host + "-" + dead,                          // not the pattern
                                      ".m.ckpt.tmp-" + host + "-" + dead + "-xyz",                 // not hex
                                      ".m.ckpt.tmp-" + host + "-0-0123456789ab",   // pid 0: never kill(0)
                                      ".m.ckpt.tmp-" + host + "--1-0123456789ab",  // not a pid
                                      "m.ckpt.tmp-" + dead + "-1-12345",           // the names of cellflow 0.1
                                      ".m.ckpt.tmp-0123456789ab"};
  for (const auto& n : stale) write_bytes(dir.file(n), {1});
  for (const auto& n : kept) write_bytes(dir.file(n), {2});
  fs::create_directory(dir.file(".m.ckpt.tmp-" + host + "-" + dead + "-abcdef"));  // a directory: kept

  cio::write_file_atomically(dir.file("m.ckpt"), pattern(10), "op");
  std::vector<std::string> expected = kept;
  expected.push_back(".m.ckpt.tmp-" + host + "-" + dead + "-abcdef");
  expected.push_back("m.ckpt");
  std::sort(expected.begin(), expected.end());
  CHECK(dir.entries() == expected);
  for (const auto& n : kept) CHECK(read_bytes(dir.file(n)) == Bytes{2});
}

TEST_CASE("a save killed with SIGKILL leaves its temporary file, which the next save removes", "[atomic_file]") {
  TempDir dir;
  const std::string target = dir.file("big.bin");
  const Bytes before = pattern(100);
  write_bytes(target, before);
  const std::regex temp_name("\\.big\\.bin\\.tmp-" +
                             std::regex_replace(cio::detail::temp_host(), std::regex("\\."), "\\.") +
                             "-([0-9]+)-[0-9a-f]{12}");
  std::vector<std::string> left;
  pid_t killed = 0;
  for (int attempt = 0; attempt < 20 && left.empty(); ++attempt) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // saves 32 MB again and again until it is killed
      try {
        const Bytes big(std::size_t(32) << 20, 0x5a);
        for (int k = 0; k < 1000; ++k) cio::write_file_atomically(target, big, "child");
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(1);
    }
    // Kill it as soon as its temporary file exists (it exists for most of every save).
    for (int k = 0; k < 20000 && temp_files(dir).empty(); ++k)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);  // reaped: its pid no longer exists
    REQUIRE(WIFSIGNALED(status));
    left = temp_files(dir);
    killed = child;
  }
  REQUIRE(left.size() == 1);  // the killed save's temporary file stayed behind
  std::smatch m;
  REQUIRE(std::regex_match(left[0], m, temp_name));
  CHECK(m[1] == std::to_string(killed));
  // The target is one complete version: the old bytes or a whole 32 MB save, never a mix.
  const Bytes now = read_bytes(target);
  CHECK((now == before || now == Bytes(std::size_t(32) << 20, 0x5a)));

  cio::write_file_atomically(target, pattern(10), "next");  // the next save cleans up
  CHECK(temp_files(dir).empty());
  CHECK(dir.entries() == std::vector<std::string>{"big.bin"});
  CHECK(read_bytes(target) == pattern(10));
}
#endif

}  // namespace test_atomic_file
