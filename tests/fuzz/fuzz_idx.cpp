// libFuzzer target: the IDX reader (read_idx_images, read_idx_labels; raw and gzip) on arbitrary
// bytes. The contract under test: any input either loads or throws cellflow::IOError; nothing
// else escapes (no crash, no other exception, no allocation beyond what the bytes justify; run
// with -rss_limit_mb / -malloc_limit_mb).
//
// The reader takes a path, so each input is written to a private temporary file first.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cellflow/data/idx.hpp"

namespace {

const std::string& scratch_path() {
  static const std::string path = [] {
    std::string p = "/tmp/cellflow-fuzz-idx-XXXXXX";
    const int fd = mkstemp(p.data());
    if (fd < 0) std::abort();
    close(fd);
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  try {
    const auto images = cellflow::data::read_idx_images(path);
    if (images.pixels.size() != static_cast<std::size_t>(images.count * images.rows * images.cols)) std::abort();
  } catch (const cellflow::IOError&) {
  }
  try {
    (void)cellflow::data::read_idx_labels(path);
  } catch (const cellflow::IOError&) {
  }
  return 0;
}
