// cellflow::io consumer: saves a GRU + LSTM stack's weights to a deflated .npz (zlib), reads the
// archive back, loads it into a model with other weights and checks that both models now give
// bitwise the same outputs; then checks that a model of another shape is refused with a
// cellflow::Error and left unchanged. Files go to a fresh temporary directory that is removed.
// Exits 1 on any mismatch; run_consumer.cmake compares its output with expected_npz.txt.
#include <cellflow/cellflow.hpp>
#include <cellflow/io.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace cf = cellflow;
namespace fs = std::filesystem;

namespace {

cf::MultiRNNCell<float> make_model(std::uint64_t seed, cf::Index units) {
  cf::Rng rng(seed);
  return cf::MultiRNNCell<float>(cf::GRUCell<float>(3, units, rng), cf::BasicLSTMCell<float>(units, 4, rng));
}

cf::Tensor3<float> make_inputs() {
  cf::Tensor3<float> x(2, 6, 3);
  for (cf::Index b = 0; b < 2; ++b)
    for (cf::Index t = 0; t < 6; ++t)
      for (cf::Index d = 0; d < 3; ++d) x(b, t, d) = 0.1f * float(t) - 0.2f * float(d) + 0.3f * float(b);
  return x;
}

bool same_bits(const cf::Tensor3<float>& a, const cf::Tensor3<float>& b) {
  if (a.dimensions() != b.dimensions()) return false;
  return std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

struct TempDir {
  fs::path path;
  TempDir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = fs::temp_directory_path() / ("cellflow-consumer-" + std::to_string(stamp));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int run() {
  TempDir dir;
  const std::string file = (dir.path / "weights.npz").string();

  auto saved = make_model(11, 5);
  cf::VariableList<float> saved_vars;
  saved_vars.add(saved, "rnn");
  cf::io::save_npz(saved_vars, file);  // deflated: goes through zlib

  const cf::io::NpzArchive archive = cf::io::read_npz(file);
  std::printf("weights.npz holds %zu arrays:\n", archive.size());
  for (const auto& entry : archive)
    std::printf("  %s %s %s\n", entry.name.c_str(), entry.array.descr().c_str(),
                cf::shape_string(entry.array.shape()).c_str());

  auto loaded = make_model(12, 5);
  cf::VariableList<float> loaded_vars;
  loaded_vars.add(loaded, "rnn");
  const cf::Tensor3<float> x = make_inputs();
  if (same_bits(cf::dynamic_rnn(saved, x).outputs, cf::dynamic_rnn(loaded, x).outputs)) {
    std::printf("FAIL: models made from seeds 11 and 12 give the same outputs\n");
    return 1;
  }
  cf::io::load_npz(loaded_vars, file);
  if (!same_bits(cf::dynamic_rnn(saved, x).outputs, cf::dynamic_rnn(loaded, x).outputs)) {
    std::printf("FAIL: the loaded model's outputs differ from the saved model's\n");
    return 1;
  }
  std::printf("loaded into a model made from another seed: outputs bitwise equal\n");

  auto other = make_model(13, 6);  // 6 GRU units: every array but the LSTM bias has another shape
  cf::VariableList<float> other_vars;
  other_vars.add(other, "rnn");
  const cf::Tensor3<float> before = cf::dynamic_rnn(other, x).outputs;
  try {
    cf::io::load_npz(other_vars, file);
    std::printf("FAIL: a model with 6 GRU units loaded weights saved from 5 units\n");
    return 1;
  } catch (const cf::ShapeError& e) {
    const std::string what = e.what();
    const bool names_it = what.find("weights.npz") != std::string::npos &&
                          what.find("rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel") != std::string::npos;
    std::printf("a model of another shape: cellflow::ShapeError naming the file and the variable: %s\n",
                names_it ? "yes" : "no");
    if (!names_it) {
      std::printf("FAIL: the message was: %s\n", e.what());
      return 1;
    }
  }
  if (!same_bits(before, cf::dynamic_rnn(other, x).outputs)) {
    std::printf("FAIL: the failed load changed the model\n");
    return 1;
  }
  std::printf("the failed load left the model unchanged\n");
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const cf::Error& e) {
    std::printf("FAIL: unexpected cellflow::Error: %s\n", e.what());
    return 1;
  }
}
