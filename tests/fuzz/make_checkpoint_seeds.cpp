// Writes the format-version-2 seeds of the checkpoint fuzzer (tests/fuzz/corpus/checkpoint/v2_*):
//
//   g++ -std=c++17 -O1 -I include -I /usr/include/eigen3 tests/fuzz/make_checkpoint_seeds.cpp -o /tmp/seeds
//   /tmp/seeds tests/fuzz/corpus/checkpoint
//
// v2_gd_f32.ckpt             a GRU + dense model with GradientDescent state, as save_checkpoint writes it
// v2_adam_generic_f64.ckpt   an LSTM with Adam state in the generic version-2 layout (cellflow writes
//                            Adam as version 1; this is what a future writer may emit)
// v2_momentum_f32.ckpt       an optimizer this cellflow does not know: scalars, a counter, slots
// Deterministic; not part of the build.
#include <cstdio>
#include <string>
#include <vector>

#include "cellflow/cellflow.hpp"

namespace cf = cellflow;
using cf::detail::ByteWriter;

namespace {

void write(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::perror(path.c_str());
  if (f != nullptr) std::fclose(f);
}

/// A version-2 file of `vars` with `state` in the generic layout (slots in the list's order).
template <class T>
std::vector<std::uint8_t> generic(const cf::VariableList<T>& vars, const cf::OptimizerState<T>& state) {
  ByteWriter w;
  w.raw(cf::io::kCheckpointMagic, 8);
  w.u32le(2);
  w.u32le(sizeof(T) == 4 ? 1 : 2);
  w.u64le(0);
  w.raw(std::string("MODL"));
  std::size_t at = w.begin_length();
  w.u64le(vars.size());
  for (const auto& v : vars) {
    w.str32(v.name);
    w.u32le(static_cast<std::uint32_t>(v.shape.size()));
    for (cf::Index d : v.shape) w.u64le(static_cast<std::uint64_t>(d));
    w.values_le(v.value->data(), static_cast<std::size_t>(v.value->size()));
  }
  w.end_length(at);
  w.raw(std::string("OPTM"));
  at = w.begin_length();
  w.str32(state.kind);
  w.u64le(state.scalars.size());
  for (const auto& [name, value] : state.scalars) {
    w.str32(name);
    w.le(value);
  }
  w.u64le(state.counters.size());
  for (const auto& [name, value] : state.counters) {
    w.str32(name);
    w.u64le(static_cast<std::uint64_t>(value));
  }
  w.u64le(state.slots.size());
  for (const auto& v : vars)
    for (const auto& [key, slot] : state.slots) {
      if (key.first != v.name) continue;
      w.str32(key.first);
      w.str32(key.second);
      w.u32le(static_cast<std::uint32_t>(slot.shape.size()));
      for (cf::Index d : slot.shape) w.u64le(static_cast<std::uint64_t>(d));
      w.values_le(slot.value.data(), static_cast<std::size_t>(slot.value.size()));
    }
  w.end_length(at);
  w.patch_u64le(16, w.size() + 4);
  w.u32le(cf::detail::crc32(w.bytes().data(), w.size()));
  return w.take();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  {
    cf::Rng rng(3);
    cf::GRUCell<float> gru(2, 3, rng);
    cf::Dense<float> dense(3, 2, rng);
    cf::VariableList<float> vars;
    vars.add(gru, "rnn").add(dense);
    cf::GradientDescentOptimizer<float> gd(0.25);
    write(dir + "/v2_gd_f32.ckpt", cf::io::checkpoint_bytes(vars, &gd, {{"optimizer", "gd"}}));
  }
  {
    cf::Rng rng(4);
    cf::BasicLSTMCell<double> lstm(2, 2, rng);
    cf::VariableList<double> vars;
    vars.add(lstm, "rnn");
    cf::AdamOptimizer<double> adam(0.01);
    for (int step = 0; step < 2; ++step) {
      for (auto& v : vars) v.grad->setConstant(0.1 * (step + 1));
      adam.apply_gradients(vars);
    }
    write(dir + "/v2_adam_generic_f64.ckpt", generic(vars, adam.export_state(vars)));
  }
  {
    cf::Parameter<float> w(2, 2), b(2);
    w.value << 1, 2, 3, 4;
    b.value << -1, 0.5f;
    cf::VariableList<float> vars;
    vars.add_one("w", w).add_one("b", b);
    cf::OptimizerState<float> s;
    s.kind = "momentum";
    s.scalars = {{"learning_rate", 0.1f}, {"momentum", 0.9f}};
    s.counters = {{"step", 7}};
    s.slots[{"w", "momentum"}] = cf::OptimizerSlot<float>{{2, 2}, cf::Matrix<float>::Constant(2, 2, 0.25f)};
    s.slots[{"b", "momentum"}] = cf::OptimizerSlot<float>{{2}, cf::Matrix<float>::Constant(1, 2, -0.5f)};
    write(dir + "/v2_momentum_f32.ckpt", generic(vars, s));
  }
  return 0;
}
