// Matrix-vector (decode) and matrix-matrix (prefill) speed of every format through the
// engine's matmul, with the kernel set the CPU picks (LOWBIT_ISA=ref|avx2|avx512 to force
// one). Two sizes: "hot", 512 x 4096 (in L2 for the 4-bit formats), which shows the
// kernels' compute rate, and "stream", 4096 columns and as many rows as make 768 MB of
// weights (more than any L3 here: the Xeon's is 260 MB), which shows how close they come
// to the read bandwidth measured at start-up ("of_bw").
// Counters: weight GB/s read and GOP/s (2 per multiply-accumulate). Threads: OMP_NUM_THREADS.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "lowbit/engine.h"
#include "lowbit/kernels.h"
#include "lowbit/speed.h"

namespace {

using namespace lowbit;

double g_bandwidth_gbs = 0;

struct Matrix {
  std::shared_ptr<std::vector<uint8_t>> bytes;
  Weight w;
};

// 64 rows of N(0, 0.02) quantized by the format's reference quantizer, tiled to `rows`
// (random bytes would put denormal floats in the float formats, which measure the CPU's
// microcode assists instead of the kernels).
Matrix random_matrix(const Format& f, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 64;
  std::mt19937_64 rng(rows);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(kTile * cols);
  for (auto& v : x) v = dist(rng);
  const std::vector<uint8_t> tile = quantize_tensor(f, x, kTile, cols);
  Matrix m;
  m.bytes = std::make_shared<std::vector<uint8_t>>(f.tensor_bytes(rows, cols));
  for (size_t off = 0; off < m.bytes->size(); off += tile.size()) {
    std::copy_n(tile.begin(), std::min(tile.size(), m.bytes->size() - off), m.bytes->begin() + static_cast<int64_t>(off));
  }
  m.w = Weight{"w", &f, rows, cols, *m.bytes, m.bytes};
  return m;
}

// repacked: through the kernel set's interleaved layout (as the engine runs the model's
// own weights) instead of the file's bytes.
void run(benchmark::State& state, const Format* f, int64_t rows, int64_t T, bool repacked = false) {
  constexpr int64_t kCols = 4096;
  const Matrix m = random_matrix(*f, rows, kCols);
  const RepackedWeight packed = repacked ? repack_weight(m.w) : RepackedWeight{};
  std::vector<float> x(static_cast<size_t>(T * kCols), 0.5f), y(static_cast<size_t>(T * rows));
  for (auto _ : state) {
    if (repacked) {
      matmul_repacked(m.w, packed, x.data(), T, y.data());
    } else {
      matmul(m.w, x.data(), T, y.data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(iters * static_cast<double>(m.bytes->size()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["GOP/s"] = benchmark::Counter(iters * 2.0 * rows * kCols * T / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(active_isa().name));
}

// One decode step's linears of the TinyLlama-1.1B shape (22 layers of q 2048x2048, k and v
// 256x2048, o 2048x2048, gate and up 5632x2048, down 2048x5632, then the 32000x2048
// output), each its own repacked matrix, in the engine's order: what `lowbit bench`
// decode reads, without the norms and attention between the products.
void run_decode_shape(benchmark::State& state, const Format* f) {
  struct Shape { int64_t rows, cols; };
  std::vector<Shape> shapes;
  for (int l = 0; l < 22; ++l) {
    for (Shape s : {Shape{2048, 2048}, Shape{256, 2048}, Shape{256, 2048}, Shape{2048, 2048}, Shape{5632, 2048}, Shape{5632, 2048},
                    Shape{2048, 5632}}) {
      shapes.push_back(s);
    }
  }
  shapes.push_back({32000, 2048});
  std::vector<Matrix> ms;
  std::vector<RepackedWeight> packed;
  uint64_t bytes = 0;
  for (const Shape& s : shapes) {
    ms.push_back(random_matrix(*f, s.rows, s.cols));
    packed.push_back(repack_weight(ms.back().w));
    ms.back().bytes->clear();  // the engine releases the file's pages after repacking
    ms.back().bytes->shrink_to_fit();
    bytes += packed.back().bytes.size();
  }
  std::vector<float> x(5632, 0.5f), y(32000);
  for (auto _ : state) {
    for (size_t i = 0; i < ms.size(); ++i) matmul_repacked(ms[i].w, packed[i], x.data(), 1, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(bytes) / 1e9, benchmark::Counter::kIsRate);
  state.counters["of_bw"] = state.counters["GB/s"];
  state.counters["of_bw"].value /= g_bandwidth_gbs;
  state.SetLabel(std::string(active_isa().name));
}

// W8A8: T int8 activation rows (one absmax per token) against a 2048 x 4096 int8 weight in
// panels, through the set's w8a8_tile, as the engine's int8 GEMM runs (rows of panels in
// parallel). "of_peak": GOP/s over the int8 peak measured at start-up.
double g_int8_peak = 0;
void run_w8a8(benchmark::State& state, int64_t rows, int64_t T) {
  constexpr int64_t kCols = 4096;
  const Format& int8 = format_by_name("bnb_int8");
  const Matrix m = random_matrix(int8, rows, kCols);
  const std::vector<uint8_t> panels = w8a8_pack_panels(m.bytes->data(), rows, kCols);
  std::vector<float> x(static_cast<size_t>(T * kCols)), y(static_cast<size_t>(T * rows));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  for (float& v : x) v = dist(rng);
  const std::vector<uint8_t> xq = quantize_tensor(int8, x, T, kCols);
  const auto tile = active_isa().w8a8_tile != nullptr ? active_isa().w8a8_tile : &w8a8_tile_ref;
  const int64_t pb = w8a8_panel_bytes(kCols);
  for (auto _ : state) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r += 4) {
      for (int64_t t = 0; t < T; t += 4) {
        tile(xq.data() + t * (4 + kCols), static_cast<int>(std::min<int64_t>(4, T - t)), panels.data() + (r / 4) * pb,
             static_cast<int>(std::min<int64_t>(4, rows - r)), kCols, y.data() + t * rows + r, rows);
      }
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * rows * kCols * T / 1e9, benchmark::Counter::kIsRate);
  state.counters["of_peak"] = state.counters["GOP/s"];
  state.counters["of_peak"].value /= g_int8_peak;
  state.SetLabel(std::string(active_isa().name));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  g_bandwidth_gbs = measure_read_bandwidth();
  g_int8_peak = measure_int8_peak_gops();
  std::printf("read bandwidth %.1f GB/s, int8 peak %.0f GOP/s, %d threads, kernels %s\n", g_bandwidth_gbs,
              g_int8_peak, omp_get_max_threads(), std::string(active_isa().name).c_str());
  benchmark::RegisterBenchmark("w8a8_gemm_128tok/int8", [](benchmark::State& s) { run_w8a8(s, 2048, 128); });
  benchmark::RegisterBenchmark("w8a8_matvec_stream/int8", [](benchmark::State& s) { run_w8a8(s, (768ll << 20) / 4100, 1); });
  for (const Format& f : format_table()) {
    if (!format_fits(f, 4096) || f.block_size == kPerRow) continue;
    const Format* fp = &f;
    benchmark::RegisterBenchmark(("matvec_hot/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) { run(s, fp, 512, 1); });
    benchmark::RegisterBenchmark(("matvec_stream/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) {
      run(s, fp, static_cast<int64_t>((768ull << 20) / format_row_bytes(*fp, 4096)), 1);
      s.counters["of_bw"] = s.counters["GB/s"];
      s.counters["of_bw"].value /= g_bandwidth_gbs;
    });
    benchmark::RegisterBenchmark(("matmul_128tok/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) { run(s, fp, 2048, 128); });
    if (!weight_kernels(f).repack) continue;
    benchmark::RegisterBenchmark(("repacked_matvec_hot/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) { run(s, fp, 512, 1, true); });
    benchmark::RegisterBenchmark(("repacked_matvec_stream/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) {
      run(s, fp, static_cast<int64_t>((768ull << 20) / format_row_bytes(*fp, 4096)), 1, true);
      s.counters["of_bw"] = s.counters["GB/s"];
      s.counters["of_bw"].value /= g_bandwidth_gbs;
    });
    benchmark::RegisterBenchmark(("repacked_matmul_128tok/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) { run(s, fp, 2048, 128, true); });
    benchmark::RegisterBenchmark(("repacked_decode_1.1b/" + std::string(f.name)).c_str(), [fp](benchmark::State& s) { run_decode_shape(s, fp); });
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
