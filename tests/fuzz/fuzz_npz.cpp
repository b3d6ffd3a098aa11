// libFuzzer target: the .npz reader (ZIP container, stored and deflated members, .npy headers)
// on arbitrary bytes. Contract: parse_npz either returns an archive or throws cellflow::IOError;
// and what it returns survives a round trip: encoded again (stored and deflated) and parsed, every
// array comes back bitwise identical.
#include <cstdint>
#include <cstdlib>

#include "cellflow/io/npz.hpp"

namespace {

void round_trip(const cellflow::io::NpzArchive& a, bool compress) {
  const std::vector<std::uint8_t> bytes = cellflow::io::encode_npz(a, compress);
  const cellflow::io::NpzArchive b = cellflow::io::parse_npz(bytes.data(), bytes.size(), "round trip");
  if (b.size() != a.size()) std::abort();
  for (const auto& name : a.names())
    if (!b.contains(name) || !b.at(name).bitwise_equal(a.at(name))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const cellflow::io::NpzArchive a = cellflow::io::parse_npz(data, size, "fuzz input");
    round_trip(a, false);
    round_trip(a, true);
  } catch (const cellflow::IOError&) {
  }
  return 0;
}
