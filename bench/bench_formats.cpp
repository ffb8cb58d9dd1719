// Quantize and dequantize throughput of every format's reference code, in GB/s of f32
// (in for quantize, out for dequantize), single-threaded, on a 1024 x 4096 tensor (16 MiB
// of f32). Each figure is also reported as a fraction of this core's DRAM bandwidth
// ("of_membw"), measured first with a 512 MiB memcpy (bytes read + written per second;
// larger than any L3), the limit a dequantizing kernel works against on model-sized data.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/format.h"

namespace {

constexpr int64_t kRows = 1024, kCols = 4096;
double g_membw_bytes_per_s = 0;

const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::mt19937_64 rng(42);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> v(kRows * kCols);
    for (auto& x : v) x = dist(rng);
    return v;
  }();
  return w;
}

double measure_memcpy_bandwidth() {
  const size_t n = 512u << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(b.data());
    best = std::max(best, 2.0 * n / s);
  }
  return best;
}

void report(benchmark::State& state, double f32_bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f32_bytes));
  state.counters["of_membw"] = benchmark::Counter(
      state.iterations() * f32_bytes / g_membw_bytes_per_s, benchmark::Counter::kIsRate);
}

void bm_quantize(benchmark::State& state, const lowbit::Format* f) {
  const auto& x = weights();
  std::vector<uint8_t> out(f->tensor_bytes(kRows, kCols));
  for (auto _ : state) {
    f->quantize(x.data(), kRows, kCols, nullptr, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  report(state, 4.0 * kRows * kCols);
}

void bm_dequantize(benchmark::State& state, const lowbit::Format* f) {
  const auto q = lowbit::quantize_tensor(*f, weights(), kRows, kCols);
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    f->dequantize(q.data(), kRows, kCols, 0, kRows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  report(state, 4.0 * kRows * kCols);
}

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  g_membw_bytes_per_s = measure_memcpy_bandwidth();
  std::printf("single-core memcpy bandwidth (512 MiB): %.2f GB/s (read + write)\n", g_membw_bytes_per_s / 1e9);
  for (const auto& f : lowbit::format_table()) {
    benchmark::RegisterBenchmark(("quantize/" + std::string(f.name)).c_str(), bm_quantize, &f)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("dequantize/" + std::string(f.name)).c_str(), bm_dequantize, &f)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
