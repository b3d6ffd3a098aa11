// No heap allocation per time step: with a reused RNNResult, a training step (forward and
// backward) of a 3-layer stack makes exactly as many allocations for 40 time steps as for 10,
// and so does a streamed step. Counted by replacing the global operator new, which is why this
// is an executable of its own (ctest alloc_per_time_step).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "cellflow/cellflow.hpp"

namespace {
std::atomic<long long> g_allocations{0};
}

// GCC sees malloc'd memory released by a replaced operator delete and warns; that pairing is what
// a replacement allocator is.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace cf = cellflow;
using cf::Index;

namespace {

int failures = 0;

void expect(bool ok, const char* what, long long a, long long b) {
  std::printf("%s %s: %lld vs %lld\n", ok ? "ok  " : "FAIL", what, a, b);
  if (!ok) ++failures;
}

template <class Cell>
long long training_step_allocations(Cell& cell, cf::RNNResult<Cell>& r, Index time, int batch_threads) {
  cf::Rng rng(1);
  cf::Tensor3<float> x(6, time, cell.input_depth());
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform<float>(-1, 1);
  cf::RNNOptions opts;
  opts.batch_threads = batch_threads;
  const auto d_final = cell.zero_state(6);
  auto step = [&] {
    cf::dynamic_rnn_into(r, cell, x, opts);
    cf::dynamic_rnn_backward(cell, r, nullptr, &d_final);
  };
  long long before = g_allocations.load();
  step();  // sizes the buffers for this length
  if (r.tape.split.time() != time || g_allocations.load() == before) {
    std::printf("FAIL the sizing step made no allocation: the counter does not count\n");
    ++failures;
  }
  before = g_allocations.load();
  step();
  return g_allocations.load() - before;
}

template <class Cell>
void check_cell(const char* name, Cell cell) {
  for (int threads : {1, 2}) {
    cf::RNNResult<Cell> r;
    const long long short_run = training_step_allocations(cell, r, 10, threads);
    const long long long_run = training_step_allocations(cell, r, 40, threads);
    char what[160];
    std::snprintf(what, sizeof what, "%s, batch_threads %d: allocations of a training step, 40 vs 10 time steps", name,
                  threads);
    expect(long_run == short_run, what, long_run, short_run);
  }
  cf::RNNStream<Cell> stream(cell, 2);
  cf::Matrix<float> x = cf::Matrix<float>::Constant(2, cell.input_depth(), 0.5f);
  stream.step(x);
  long long before = g_allocations.load();
  stream.step(x);
  const long long one = g_allocations.load() - before;
  before = g_allocations.load();
  for (int t = 0; t < 10; ++t) stream.step(x);
  const long long ten = g_allocations.load() - before;
  char what[160];
  std::snprintf(what, sizeof what, "%s: allocations of 10 streamed steps vs 10 x one step (the new state only)", name);
  expect(ten == 10 * one, what, ten, 10 * one);
}

}  // namespace

int main() {
  cf::Rng rng(3);
  std::vector<cf::BasicLSTMCell<float>> lstm;
  for (int l = 0; l < 3; ++l) lstm.emplace_back(l == 0 ? 5 : 16, 16, rng);
  check_cell("3 x BasicLSTMCell", cf::MultiRNNCell<float>(std::move(lstm)));
  std::vector<cf::GRUCell<float>> gru;
  for (int l = 0; l < 3; ++l) gru.emplace_back(l == 0 ? 5 : 16, 16, rng);
  check_cell("3 x GRUCell", cf::MultiRNNCell<float>(std::move(gru)));
  cf::LSTMOptions<float> o;
  o.use_peepholes = true;
  o.cell_clip = 1.0f;
  o.num_proj = 8;
  check_cell("LSTMCell with peepholes, clip, projection", cf::LSTMCell<float>(5, 16, o, rng));
  std::printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
