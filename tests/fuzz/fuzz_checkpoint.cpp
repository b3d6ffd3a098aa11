// libFuzzer target: the checkpoint reader on arbitrary bytes, format versions 1 and 2. Contract:
// parse_checkpoint either describes a checkpoint consistent with the bytes or throws
// cellflow::IOError; nothing else escapes and nothing is read outside the input or allocated
// beyond what it justifies.
//
// Random mutations almost never keep the trailing CRC-32 right, which would keep the fuzzer at
// the checksum check; so every input is also parsed with its last 4 bytes replaced by the CRC-32
// of the bytes before them, which takes the mutation into the section parsers.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <vector>

#include "cellflow/io/checkpoint.hpp"

namespace {

void parse(const std::uint8_t* data, std::size_t size) {
  try {
    const cellflow::io::CheckpointInfo info = cellflow::io::parse_checkpoint(data, size, "fuzz input");
    if (info.file_size != size) std::abort();
    if (info.version != 1 && info.version != 2) std::abort();
    if (info.scalar_type != "f32" && info.scalar_type != "f64") std::abort();
    std::map<std::string, std::vector<cellflow::Index>> shapes;
    for (const auto& v : info.variables) {
      for (cellflow::Index d : v.shape)
        if (d < 0) std::abort();
      if (!shapes.emplace(v.name, v.shape).second) std::abort();  // names are unique
    }
    // An optimizer's slots belong to variables of the file and have their shapes.
    for (const auto& s : info.optimizer_slots) {
      const auto it = shapes.find(s.variable);
      if (it == shapes.end() || it->second != s.shape || s.slot.empty()) std::abort();
    }
    for (const auto& c : info.optimizer_counters)
      if (c.second < 0) std::abort();
    if (info.optimizer_step < 0 || (!info.has_optimizer && !info.optimizer_slots.empty())) std::abort();
  } catch (const cellflow::IOError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  parse(data, size);
  if (size >= 4) {
    std::vector<std::uint8_t> fixed(data, data + size);
    const std::uint32_t crc = cellflow::detail::crc32(fixed.data(), size - 4);
    for (int k = 0; k < 4; ++k)
      fixed[size - 4 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(crc >> (8 * k));
    parse(fixed.data(), size);
  }
  return 0;
}
