// No heap allocation per time step: with a reused RNNResult, a training step (forward and
// backward) of a 3-layer stack makes exactly as many allocations for 40 time steps as for 10
// (with equal lengths, and with ragged ones: row skipping), and
// a stream makes none at all per call once sized (RNNStream::step, feed). Counted by replacing
// malloc (below), which is why this is an executable of its own (ctest alloc_per_time_step).
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "cellflow/cellflow.hpp"

namespace {
std::atomic<long long> g_allocations{0};
}

// Every heap allocation is counted, whoever makes it: Eigen's matrices (std::malloc), the
// standard library's containers (operator new, which calls malloc) and OpenMP's runtime. With
// glibc the program defines malloc and its relatives and forwards them to glibc's own entry
// points; under AddressSanitizer (which owns malloc) the sanitizer's allocation hook counts.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CELLFLOW_ALLOC_COUNT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CELLFLOW_ALLOC_COUNT_ASAN 1
#endif

#if defined(CELLFLOW_ALLOC_COUNT_ASAN)
#include <sanitizer/allocator_interface.h>
namespace {
void count_malloc(const volatile void*, std::size_t) { g_allocations.fetch_add(1, std::memory_order_relaxed); }
void ignore_free(const volatile void*) {}
const int g_hooks = __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
}  // namespace
#elif defined(__GLIBC__)
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}
#else
#error "alloc_count.cpp counts allocations with glibc or AddressSanitizer; CMake builds it only there"
#endif

namespace cf = cellflow;
using cf::Index;

namespace {

int failures = 0;

void expect(bool ok, const char* what, long long a, long long b) {
  std::printf("%s %s: %lld vs %lld\n", ok ? "ok  " : "FAIL", what, a, b);
  if (!ok) ++failures;
}

template <class Cell>
long long training_step_allocations(Cell& cell, cf::RNNResult<Cell>& r, Index time, int batch_threads, bool ragged) {
  cf::Rng rng(1);
  cf::Tensor3<float> x(6, time, cell.input_depth());
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = rng.uniform<float>(-1, 1);
  cf::RNNOptions opts;
  opts.batch_threads = batch_threads;
  // Ragged lengths: the steps run only the examples still running (row skipping), and the
  // weight gradients are summed over their rows packed, group by group.
  if (ragged) opts.sequence_length = cf::SequenceLengths{time, time - 3, 2, time, 1, time / 2};
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
  for (bool ragged : {false, true}) {
    for (int threads : {1, 2}) {
      cf::RNNResult<Cell> r;
      const long long short_run = training_step_allocations(cell, r, 10, threads, ragged);
      const long long long_run = training_step_allocations(cell, r, 40, threads, ragged);
      char what[200];
      std::snprintf(what, sizeof what, "%s, batch_threads %d%s: allocations of a training step, 40 vs 10 time steps",
                    name, threads, ragged ? ", ragged lengths" : "");
      expect(long_run == short_run, what, long_run, short_run);
    }
  }
  // A stream allocates nothing per call once its buffers are sized: plain steps and steps with
  // some streams sitting out; then chunks of one length (a new chunk length re-sizes the buffers
  // once).
  cf::RNNStream<Cell> stream(cell, 2);
  cf::Matrix<float> x = cf::Matrix<float>::Constant(2, cell.input_depth(), 0.5f);
  const std::vector<bool> active{true, false};
  cf::Tensor3<float> chunk(2, 3, cell.input_depth());
  chunk.setConstant(0.25f);
  const cf::SequenceLengths lengths{3, 1};
  // Runs `call` once to size the buffers, then `times` more, and checks those made no allocation.
  auto expect_none = [&](const char* calls, int times, auto&& call) {
    call();
    const long long before = g_allocations.load();
    for (int t = 0; t < times; ++t) call();
    const long long made = g_allocations.load() - before;
    char what[160];
    std::snprintf(what, sizeof what, "%s: allocations of %s once sized vs none", name, calls);
    expect(made == 0, what, made, 0);
  };
  expect_none("20 streamed steps", 10, [&] {
    stream.step(x);
    stream.step(x, active);
  });
  expect_none("6 chunks of 3 steps", 3, [&] {
    stream.feed(chunk);
    stream.feed(chunk, lengths);
  });
  // A bf16 stream packs its weights once, then allocates nothing either.
  cf::RNNStream<Cell> bf16(cell, 2, cf::Precision::bf16);
  expect_none("20 bf16 streamed steps", 10, [&] {
    bf16.step(x);
    bf16.step(x, active);
  });
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
