// The kernel table against its scalar references: every instruction set compiled in that
// this CPU runs (not only the one the engine picks), on random data of odd lengths and
// misaligned pointers. Integer results exact; float results within a tolerance scaled to
// Σ|terms| (float summation order is all that differs). The fast matmul against matmul_ref
// within the bound that activation rounding allows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <bit>

#include "formats/scale_search.h"
#include "kernels/kernel_impl.h"
#include "lowbit/cpu_features.h"
#include "lowbit/engine.h"
#include "lowbit/kernels.h"
#include "model/layers.h"
#include "test_support.h"

namespace lowbit {
namespace {

constexpr double kFloatSlop = 1e-5;  // float accumulation over <= 10^4 terms, relative to Σ|terms|

const IsaKernels& ref() { return *usable_isas().front(); }

std::vector<const IsaKernels*> fast_isas() {
  auto all = usable_isas();
  all.erase(all.begin());
  return all;
}

// A Q8 row with its own storage; misalign shifts every pointer by one element.
struct OwnedQ8 {
  std::vector<int8_t> q;
  std::vector<float> d_lane, sum;
  int misalign;
  OwnedQ8(int64_t cols, int mis) : q(q8_padded(cols) + mis), d_lane(q8_padded(cols) / 4 + mis), sum(q8_padded(cols) / 16 + mis), misalign(mis) {}
  int8_t* qp() { return q.data() + misalign; }
  float* dp() { return d_lane.data() + misalign; }
  float* sp() { return sum.data() + misalign; }
  Q8RowView view() { return {qp(), dp(), sp()}; }
};

// Four activation rows of `cols` (heavy-tailed, seeded), quantized by the reference, every
// other one misaligned by an element.
struct Acts {
  std::vector<OwnedQ8> rows;
  std::vector<Q8RowView> views;
};
Acts quantized_acts(int64_t cols, uint64_t seed) {
  Acts a;
  for (int n = 0; n < 4; ++n) {
    a.rows.emplace_back(cols, n % 2);
    const auto x = test::student_t3(cols, seed + n);
    ref().quantize_q8(x.data(), cols, a.rows.back().qp(), a.rows.back().dp(), a.rows.back().sp());
  }
  for (auto& r : a.rows) a.views.push_back(r.view());
  return a;
}

TEST(Kernels, RefIsFirstAndTheEngineUsesAUsableSet) {
  ASSERT_FALSE(usable_isas().empty());
  EXPECT_EQ(usable_isas().front()->name, "ref");
  bool found = false;
  for (const IsaKernels* isa : usable_isas()) found |= isa == &active_isa();
  EXPECT_TRUE(found);
}

TEST(Kernels, QuantizeActivationsMatchesRefExactly) {
  for (const IsaKernels* isa : fast_isas()) {
    for (int64_t cols : {1, 3, 7, 16, 17, 31, 63, 64, 65, 100, 256, 300, 1000}) {
      for (int mis : {0, 1}) {
        auto x = test::student_t3(cols + mis, 7 * cols + mis);
        if (cols >= 32) std::fill(x.begin() + mis + 16, x.begin() + mis + 32, 0.0f);  // an all-zero sub-block
        OwnedQ8 a(cols, mis), b(cols, mis);
        ref().quantize_q8(x.data() + mis, cols, a.qp(), a.dp(), a.sp());
        isa->quantize_q8(x.data() + mis, cols, b.qp(), b.dp(), b.sp());
        EXPECT_EQ(a.q, b.q) << isa->name << " cols " << cols;
        EXPECT_EQ(a.d_lane, b.d_lane) << isa->name << " cols " << cols;
        EXPECT_EQ(a.sum, b.sum) << isa->name << " cols " << cols;
      }
    }
  }
}

TEST(Kernels, QuantizedActivationsAreWithinHalfAStep) {
  const int64_t cols = 200;
  const auto x = test::gaussian(cols, 3);
  OwnedQ8 a(cols, 0);
  ref().quantize_q8(x.data(), cols, a.qp(), a.dp(), a.sp());
  for (int64_t i = 0; i < cols; ++i) {
    const float d = a.d_lane[i / 4];
    EXPECT_LE(std::fabs(d * a.q[i] - x[i]), 0.5f * d * (1 + 1e-6f)) << i;
  }
  for (int64_t i = cols; i < q8_padded(cols); ++i) EXPECT_EQ(a.q[i], 0) << "padding " << i;
}

TEST(Kernels, DotU8Q8MatchesRef) {
  std::mt19937 rng(11);
  for (const IsaKernels* isa : fast_isas()) {
    for (int64_t padded : {64, 128, 192, 1024, 4096 + 64}) {
      std::vector<uint8_t> u(padded + 1);
      std::vector<float> a(padded / 16), b(padded / 16);
      for (auto& v : u) v = static_cast<uint8_t>(rng());
      const auto ga = test::gaussian(a.size(), padded), gb = test::gaussian(b.size(), padded + 1);
      for (size_t s = 0; s < a.size(); ++s) {
        a[s] = ga[s] * 0.01f;
        b[s] = gb[s] * 0.5f;
      }
      const Acts acts = quantized_acts(padded, 100);
      const auto& views = acts.views;
      for (int nt = 1; nt <= 4; ++nt) {
        const U8RowView w{u.data() + 1, a.data(), b.data()};  // codes misaligned by one byte
        float want[4], got[4];
        ref().dot_u8_q8(w, padded, views.data(), nt, want);
        isa->dot_u8_q8(w, padded, views.data(), nt, got);
        for (int n = 0; n < nt; ++n) {
          double mag = 0;
          for (int64_t s = 0; s < padded / 16; ++s) {
            for (int64_t i = 16 * s; i < 16 * s + 16; ++i) mag += std::fabs(a[s] * views[n].d_lane[i / 4] * w.u[i] * views[n].q[i]);
            mag += std::fabs(b[s] * views[n].sum[s]);
          }
          EXPECT_NEAR(got[n], want[n], kFloatSlop * mag) << isa->name << " padded " << padded << " nt " << nt;
        }
      }
    }
  }
}

TEST(Kernels, DotF32MatchesRef) {
  for (const IsaKernels* isa : fast_isas()) {
    for (int64_t n : {1, 3, 7, 15, 16, 17, 63, 64, 65, 1000, 4099}) {
      const auto a = test::gaussian(n + 1, n), b = test::gaussian(n + 1, n + 5);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(a[i + 1] * b[i + 1]);
      EXPECT_NEAR(isa->dot_f32(a.data() + 1, b.data() + 1, n), ref().dot_f32(a.data() + 1, b.data() + 1, n), kFloatSlop * mag)
          << isa->name << " n " << n;
    }
  }
}

// Elementwise: every set's swiglu against std::exp's, on odd lengths, misaligned, with
// values past exp's float range (where silu is 0 or the identity).
TEST(Kernels, SwigluMatchesRef) {
  for (const IsaKernels* isa : usable_isas()) {
    for (int64_t n : {1, 5, 16, 17, 31, 100, 5632 + 3}) {
      auto g = test::gaussian(n + 1, n + 11), u = test::gaussian(n + 1, n + 12);
      for (int64_t i = 0; i < n + 1; ++i) g[i] *= 6.0f;
      const float extremes[] = {-200.0f, -88.0f, -87.0f, -20.0f, 0.0f, 1e-30f, 20.0f, 88.0f, 200.0f};
      for (int64_t i = 0; i < n && i < 9; ++i) g[1 + i * n / 9] = extremes[i];
      auto want = g, got = g;
      swiglu_ref(want.data() + 1, u.data() + 1, n);
      isa->swiglu(got.data() + 1, u.data() + 1, n);
      for (int64_t i = 1; i <= n; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-30) << isa->name << " n " << n << " gate " << g[i];
      }
    }
  }
}

// softmax within float rounding of std::exp's (relative 1e-6 per element: the exp's error
// plus the sum's), and it sums to 1; dot_rows and weighted_sum within kFloatSlop of Σ|terms|
// on strided rows, writing nothing outside their outputs.
TEST(Kernels, SoftmaxAndAttentionSumsMatchRef) {
  for (const IsaKernels* isa : usable_isas()) {
    for (int64_t n : {1, 2, 15, 16, 17, 129, 1000 + 7}) {
      auto x = test::gaussian(n + 1, n + 21);
      for (int64_t i = 0; i < n + 1; ++i) x[i] *= 8.0f;
      auto want = x, got = x;
      softmax_ref(want.data() + 1, n);
      isa->softmax(got.data() + 1, n);
      double total = 0;
      for (int64_t i = 1; i <= n; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6 * want[i] + 1e-37) << isa->name << " softmax n " << n << " x " << x[i];
        total += got[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5) << isa->name << " n " << n;
    }
    for (int nq : {1, 3, 4, 5}) {
      for (int64_t n_rows : {1, 3, 4, 5, 16, 33, 47}) {
        for (int64_t n : {1, 17, 64, 80, 129}) {
          // queries (nq, n) with row stride n + 3, weights (nq, n_rows) with stride n_rows + 2,
          // outputs with strides n_rows + 5 and n + 4; everything off by one float.
          const int64_t stride = n + 7, xs = n + 3, ws = n_rows + 2, dos = n_rows + 5, sos = n + 4;
          const auto rows = test::gaussian(n_rows * stride + 1, n_rows + n), x = test::gaussian(nq * xs + 1, n + 3 + nq),
                     w = test::gaussian(nq * ws + 1, n_rows + nq);
          std::vector<float> dwant(nq * dos + 2, -1.0f), dgot = dwant, swant(nq * sos + 2, -1.0f), sgot = swant;
          dot_rows_ref(x.data() + 1, xs, nq, rows.data() + 1, stride, n_rows, n, dwant.data() + 1, dos);
          isa->dot_rows(x.data() + 1, xs, nq, rows.data() + 1, stride, n_rows, n, dgot.data() + 1, dos);
          weighted_sum_ref(w.data() + 1, ws, nq, rows.data() + 1, stride, n_rows, n, swant.data() + 1, sos);
          isa->weighted_sum(w.data() + 1, ws, nq, rows.data() + 1, stride, n_rows, n, sgot.data() + 1, sos);
          for (int q = 0; q < nq; ++q) {
            for (int64_t r = 0; r < n_rows; ++r) {
              double mag = 0;
              for (int64_t i = 0; i < n; ++i) mag += std::fabs(x[1 + q * xs + i] * rows[1 + r * stride + i]);
              ASSERT_NEAR(dgot[1 + q * dos + r], dwant[1 + q * dos + r], kFloatSlop * mag)
                  << isa->name << " dot_rows " << nq << "x" << n_rows << "x" << n << " query " << q << " row " << r;
            }
            for (int64_t i = 0; i < n; ++i) {
              double mag = 0;
              for (int64_t r = 0; r < n_rows; ++r) mag += std::fabs(w[1 + q * ws + r] * rows[1 + r * stride + i]);
              ASSERT_NEAR(sgot[1 + q * sos + i], swant[1 + q * sos + i], kFloatSlop * mag)
                  << isa->name << " weighted_sum " << nq << "x" << n_rows << "x" << n << " query " << q << " col " << i;
            }
          }
          // nothing written between the outputs' rows or around them
          for (size_t i = 0; i < dgot.size(); ++i) {
            if (i == 0 || i == dgot.size() - 1 || (i - 1) % dos >= static_cast<size_t>(n_rows)) {
              ASSERT_EQ(dgot[i], -1.0f) << i;
            }
          }
          for (size_t i = 0; i < sgot.size(); ++i) {
            if (i == 0 || i == sgot.size() - 1 || (i - 1) % sos >= static_cast<size_t>(n)) {
              ASSERT_EQ(sgot[i], -1.0f) << i;
            }
          }
        }
      }
    }
  }
}

// RoPE: every set gives rope_ref's bits (products rounded before the sum, no FMA), for
// both pair layouts, head sizes that leave partial vectors, several heads, and nothing
// written past the heads.
TEST(Kernels, RopeMatchesRefBitForBit) {
  for (const IsaKernels* isa : usable_isas()) {
    for (bool adjacent : {false, true}) {
      for (int64_t head_dim : {2, 6, 16, 18, 34, 64, 96, 128}) {
        for (int64_t n_heads : {1, 3}) {
          const int64_t n = n_heads * head_dim, half = head_dim / 2;
          const auto x = test::gaussian(n + 2, head_dim + n_heads), angles = test::gaussian(half, head_dim);
          std::vector<float> c(half), s(half);
          for (int64_t i = 0; i < half; ++i) c[i] = std::cos(8 * angles[i]), s[i] = std::sin(8 * angles[i]);
          auto want = x, got = x;
          rope_ref(want.data() + 1, n_heads, head_dim, adjacent, c.data(), s.data());
          isa->rope(got.data() + 1, n_heads, head_dim, adjacent, c.data(), s.data());
          for (int64_t i = 0; i < n + 2; ++i) {
            ASSERT_EQ(got[i], want[i]) << isa->name << (adjacent ? " adjacent" : " halves") << " head_dim " << head_dim << " i " << i;
          }
          EXPECT_EQ(got[0], x[0]);
          EXPECT_EQ(got[n + 1], x[n + 1]);
          EXPECT_NE(got[1], x[1]);
        }
      }
    }
  }
}

// The formats with an int8 path, each with a row length the format stores.
std::vector<const Format*> q8_formats() {
  std::vector<const Format*> out;
  for (const kernels::UnpackEntry& e : kernels::unpack_table()) out.push_back(&format_by_name(e.format));
  return out;
}

std::vector<int64_t> lengths_for(const Format& f) {
  if (f.block_size == 256) return {256, 512, 768, 2816};
  if (f.block_size == kPerRow) return {5, 64, 160, 200, 1000};
  if (f.block_size == 128) return {128, 384, 2048 + 128};
  if (f.block_size == 64) return {64, 192, 2048 + 64};
  return {32, 64, 96, 160, 2048 + 32};
}

TEST(Kernels, EveryFloatFormatOrQ8FormatHasAKernelRow) {
  for (const Format& f : format_table()) {
    const WeightKernels& k = weight_kernels(f);
    EXPECT_EQ(k.format, &f);
    if (k.act == ActFormat::kQ8) {
      EXPECT_NE(k.unpack_u8, nullptr) << f.name;
    }
  }
  EXPECT_EQ(q8_formats().size(), 12u + 3u + 32u + 1u);  // ggml's integer formats, mxfp4, tq1_0, tq2_0, the intN family and bnb_int8
}

// Unpacked codes and maps give the values the format's own dequantize gives.
TEST(Kernels, UnpackReproducesDequantize) {
  for (const Format* f : q8_formats()) {
    for (int64_t cols : lengths_for(*f)) {
      const auto x = test::student_t3(cols, cols + 13, 0.02f);
      const auto bytes = quantize_tensor(*f, x, 1, cols);
      const auto deq = dequantize_tensor(*f, bytes, 1, cols);
      const int64_t padded = q8_padded(cols);
      std::vector<uint8_t> u(padded, 0xAA);
      std::vector<float> a(padded / 16, 9), b(padded / 16, 9);
      weight_kernels(*f).unpack_u8(bytes.data(), cols, u.data(), a.data(), b.data());
      for (int64_t i = 0; i < cols; ++i) {
        const float v = a[i / 16] * u[i] + b[i / 16];
        ASSERT_NEAR(v, deq[i], 2e-6f * (std::fabs(a[i / 16]) * 255 + std::fabs(b[i / 16]))) << f->name << " elem " << i;
      }
      for (int64_t i = cols; i < padded; ++i) ASSERT_EQ(u[i], 0) << f->name << " padding " << i;
      for (int64_t s = (cols + 15) / 16; s < padded / 16; ++s) ASSERT_EQ(a[s], 0.0f) << f->name;
    }
  }
}

// Fused kernels (row bytes straight to the dot) against unpack_u8 + the reference dot.
TEST(Kernels, FusedKernelsMatchUnpackThenRefDot) {
  int checked = 0;
  for (const IsaKernels* isa : fast_isas()) {
    for (const Format* f : q8_formats()) {
      const FusedDotFn fused = fused_dot_for(*isa, f->name);
      if (!fused) continue;
      for (int64_t cols : lengths_for(*f)) {
        const auto x = test::student_t3(cols, cols + 29, 0.02f);
        const auto bytes = quantize_tensor(*f, x, 1, cols);
        std::vector<uint8_t> shifted(bytes.size() + 1);
        std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);  // the row at an odd address
        const int64_t padded = q8_padded(cols);
        std::vector<uint8_t> u(padded);
        std::vector<float> a(padded / 16), b(padded / 16);
        weight_kernels(*f).unpack_u8(bytes.data(), cols, u.data(), a.data(), b.data());
        const Acts acts = quantized_acts(cols, 500);
        const auto& views = acts.views;
        for (int nt = 1; nt <= 4; ++nt) {
          float want[4], got[4];
          ref().dot_u8_q8({u.data(), a.data(), b.data()}, padded, views.data(), nt, want);
          fused(shifted.data() + 1, cols, views.data(), nt, got);
          for (int n = 0; n < nt; ++n) {
            double mag = 0;
            for (int64_t i = 0; i < padded; ++i) mag += std::fabs((a[i / 16] * u[i] + b[i / 16]) * views[n].d_lane[i / 4] * views[n].q[i]);
            EXPECT_NEAR(got[n], want[n], kFloatSlop * mag + 1e-30) << isa->name << " " << f->name << " cols " << cols << " nt " << nt;
          }
        }
        ++checked;
      }
    }
  }
  if (!fast_isas().empty() && fast_isas().back()->name == "avx512") {
    EXPECT_GE(checked, 6 * 4);  // six fused formats, four lengths each
  }
}

// y: (T, rows) against y_ref from matmul_ref. The int8 path rounds each activation to
// within d/2 (d = its sub-block's absmax / 127), so |y - y_ref| <= Σ_i |w_i| d_i / 2 plus
// float slop; the float path (q8 false) gets the slop alone.
void expect_within_rounding(const std::vector<float>& deq, const std::vector<float>& x, const std::vector<float>& y,
                            const std::vector<float>& y_ref, int64_t T, int64_t rows, int64_t cols, bool q8, std::string_view what) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double mag = 0, bound = 0;
      for (int64_t s = 0; s < cols / 16; ++s) {
        float amax = 0;
        for (int64_t i = 16 * s; i < 16 * s + 16; ++i) amax = std::max(amax, std::fabs(x[t * cols + i]));
        for (int64_t i = 16 * s; i < 16 * s + 16; ++i) {
          mag += std::fabs(deq[r * cols + i] * x[t * cols + i]);
          if (q8) bound += std::fabs(deq[r * cols + i]) * amax / 254.0;
        }
      }
      ASSERT_NEAR(y[t * rows + r], y_ref[t * rows + r], bound * (1 + 1e-4) + kFloatSlop * mag) << what << " T " << T << " row " << r;
    }
  }
}

// matmul (the engine's) against matmul_ref on every format, decode and prefill token
// counts. The int8 path rounds each activation to within d/2 (d = its sub-block's absmax /
// 127), so |y - y_ref| <= Σ_i |w_i| d_i / 2 plus float slop.
TEST(Kernels, MatmulMatchesReferenceWithinActivationRounding) {
  for (const Format& f : format_table()) {
    const int64_t cols = f.block_size == kPerRow ? 96 : std::max<int64_t>(256, f.block_size), rows = 19;
    if (!format_fits(f, cols)) continue;
    const auto w32 = test::gaussian(rows * cols, 41, 0.05f);
    const auto bytes = quantize_tensor(f, w32, rows, cols);
    const auto shared = std::make_shared<const std::vector<uint8_t>>(bytes);
    Weight w{"w", &f, rows, cols, *shared, shared};
    const auto deq = dequantize_tensor(f, bytes, rows, cols);
    for (int64_t T : {1, 3, 9, 37}) {
      const auto x = test::student_t3(T * cols, 77 + T);
      std::vector<float> y(T * rows), y_ref(T * rows);
      matmul(w, x.data(), T, y.data());
      matmul_ref(w, x.data(), T, y_ref.data());
      const bool q8 = weight_kernels(f).act == ActFormat::kQ8;
      ASSERT_NO_FATAL_FAILURE(expect_within_rounding(deq, x, y, y_ref, T, rows, cols, q8, f.name));
    }
  }
}

// The prefill panel kernel against the reference panel kernel, and the panel against the
// rows it came from (interleave_panel16 keeps every code and map).
TEST(Kernels, PanelKernelsMatchRef) {
  const Format& f = format_by_name("q4_k");
  const int64_t kcols = 512;  // q4_k rows, 13 of them: a partial panel
  const auto w32 = test::gaussian(13 * kcols, 5, 0.02f);
  const auto bytes = quantize_tensor(f, w32, 13, kcols);
  std::vector<std::vector<uint8_t>> us(13, std::vector<uint8_t>(q8_padded(kcols)));
  std::vector<std::vector<float>> as(13, std::vector<float>(q8_padded(kcols) / 16)), bs = as;
  std::vector<U8RowView> rows;
  for (int r = 0; r < 13; ++r) {
    weight_kernels(f).unpack_u8(bytes.data() + r * format_row_bytes(f, kcols), kcols, us[r].data(), as[r].data(), bs[r].data());
    rows.push_back({us[r].data(), as[r].data(), bs[r].data()});
  }
  const int64_t kp = q8_padded(kcols);
  std::vector<uint8_t> pu(16 * kp);
  std::vector<float> pa(16 * kp / 16), pb(pa.size());
  interleave_panel16(rows.data(), 13, kp, pu.data(), pa.data(), pb.data());
  const Acts acts = quantized_acts(kcols, 900);
  const auto& views = acts.views;
  for (int nt = 1; nt <= 4; ++nt) {
    float want_rows[4];
    float ref_panel[4 * 16], got[4 * 16];
    ref().gemm_panel16({pu.data(), pa.data(), pb.data()}, kp, views.data(), nt, ref_panel);
    for (int r = 0; r < 16; ++r) {
      if (r < 13) {
        ref().dot_u8_q8(rows[r], kp, views.data(), nt, want_rows);
        for (int n = 0; n < nt; ++n) EXPECT_FLOAT_EQ(ref_panel[n * 16 + r], want_rows[n]) << "row " << r;
      } else {
        for (int n = 0; n < nt; ++n) EXPECT_EQ(ref_panel[n * 16 + r], 0.0f) << "padding row " << r;
      }
    }
    for (const IsaKernels* isa : fast_isas()) {
      if (!isa->gemm_panel16) continue;
      isa->gemm_panel16({pu.data(), pa.data(), pb.data()}, kp, views.data(), nt, got);
      for (int i = 0; i < nt * 16; ++i) {
        double mag = 0;
        const int r = i % 16, n = i / 16;
        if (r < 13) {
          for (int64_t e = 0; e < kcols; ++e) mag += std::fabs((as[r][e / 16] * us[r][e] + bs[r][e / 16]) * views[n].d_lane[e / 4] * views[n].q[e]);
        }
        EXPECT_NEAR(got[i], ref_panel[i], kFloatSlop * mag + 1e-30) << isa->name << " nt " << nt << " i " << i;
      }
    }
  }
}

// Fused float-path kernels (f32, f16, bf16, fp8, nf4, fp4 read in place) against
// dequantize + dot_f32. The weights' magnitudes spread over 2^0..2^-23, so the small
// formats' subnormal codes are read too.
TEST(Kernels, FusedFloatKernelsMatchDecodeThenRefDot) {
  int checked = 0;
  for (const IsaKernels* isa : fast_isas()) {
    for (const char* name : {"f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2", "nf4", "fp4"}) {
      const FusedF32Kernel fused = fused_f32_for(*isa, name);
      if (!fused.fn) continue;
      const Format& f = format_by_name(name);
      for (int64_t cols : {1, 7, 16, 33, 64, 100, 192, 4096, 4096 + 5}) {
        if (!format_fits(f, cols)) continue;  // nf4/fp4: multiples of 64
        auto w32 = test::gaussian(cols, cols + 1);
        for (int64_t i = 0; i < cols; ++i) w32[i] = std::ldexp(w32[i], -static_cast<int>(i % 24));
        const auto bytes = quantize_tensor(f, w32, 1, cols);
        std::vector<uint8_t> shifted(bytes.size() + 1);
        std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
        const auto deq = dequantize_tensor(f, bytes, 1, cols);
        const auto x = test::student_t3(4 * cols, cols + 2);
        auto xk = x;  // in the kernel's order
        if (fused.arrange) {
          for (int n = 0; n < 4; ++n) fused.arrange(x.data() + n * cols, cols, xk.data() + n * cols);
        }
        for (int nt = 1; nt <= 4; ++nt) {
          float got[4];
          fused.fn(shifted.data() + 1, cols, xk.data(), nt, got);
          for (int n = 0; n < nt; ++n) {
            double mag = 0;
            for (int64_t i = 0; i < cols; ++i) mag += std::fabs(deq[i] * x[n * cols + i]);
            EXPECT_NEAR(got[n], ref().dot_f32(deq.data(), x.data() + n * cols, cols), kFloatSlop * mag) << isa->name << " " << name << " cols " << cols;
          }
        }
        ++checked;
      }
    }
  }
  if (!fast_isas().empty() && fast_isas().back()->name == "avx512") {
    EXPECT_EQ(checked, 5 * 9 + 2 * 3);
  }
}

// Repacked layouts (made at load time) against the file's rows through unpack + the
// reference dot, on row counts that leave a partial group and misaligned tensors.
TEST(Kernels, RepackedKernelsMatchRef) {
  int checked = 0;
  for (const IsaKernels* isa : fast_isas()) {
    for (const Format* f : q8_formats()) {
      const RepackKernels* rk = repack_for(*isa, f->name);
      if (!rk) continue;
      for (int64_t cols : lengths_for(*f)) {
        if (cols % rk->cols_multiple != 0) continue;  // left unpacked by repack_weight
        for (int64_t rows : {1, 16, 21}) {
          const auto w32 = test::student_t3(rows * cols, rows * cols + 3, 0.02f);
          const auto bytes = quantize_tensor(*f, w32, rows, cols);
          std::vector<uint8_t> shifted(bytes.size() + 1);
          std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
          std::vector<uint8_t> packed(rk->bytes(rows, cols));
          rk->repack(shifted.data() + 1, rows, cols, packed.data());
          const Acts acts = quantized_acts(cols, 700);
          const auto& views = acts.views;
          const int64_t padded = q8_padded(cols);
          std::vector<uint8_t> u(padded);
          std::vector<float> a(padded / 16), b(padded / 16);
          for (int nt = 1; nt <= 4; ++nt) {
            for (int64_t g = 0; g < (rows + 15) / 16; ++g) {
              float got[4 * 16];
              rk->dot(packed.data(), g, cols, views.data(), nt, got);
              for (int r = 0; r < 16; ++r) {
                const int64_t row = g * 16 + r;
                if (row >= rows) {
                  for (int n = 0; n < nt; ++n) EXPECT_EQ(got[n * 16 + r], 0.0f) << "padding row";
                  continue;
                }
                weight_kernels(*f).unpack_u8(bytes.data() + row * format_row_bytes(*f, cols), cols, u.data(), a.data(), b.data());
                float want[4];
                ref().dot_u8_q8({u.data(), a.data(), b.data()}, padded, views.data(), nt, want);
                for (int n = 0; n < nt; ++n) {
                  double mag = 0;
                  // the terms both sides sum: a·u·x and b·x (the offset is applied to Σx, not per weight)
                  for (int64_t e = 0; e < padded; ++e) {
                    mag += (std::fabs(a[e / 16] * u[e]) + std::fabs(b[e / 16])) * std::fabs(views[n].d_lane[e / 4] * views[n].q[e]);
                  }
                  EXPECT_NEAR(got[n * 16 + r], want[n], kFloatSlop * mag + 1e-30) << isa->name << " " << f->name << " rows " << rows << " cols " << cols << " row " << row;
                }
              }
            }
          }
          ++checked;
        }
      }
    }
  }
  if (!fast_isas().empty() && fast_isas().back()->name == "avx512") {
    EXPECT_GE(checked, 2 * 5 * 3);  // q4_0 and iq4_nl, five lengths, three row counts
  }
}

// Rows of `cols` meant to catch an encoder that drifts from the scalar one: heavy-tailed
// values, then blocks of zeros and of -0, a block whose largest magnitude appears with both
// signs (the first one sets the scale's sign), tiny (subnormal-scale) and huge values, and
// exact halves after scaling.
std::vector<float> encoder_stress_rows(int64_t rows, int64_t cols, uint64_t seed) {
  auto x = test::student_t3(rows * cols, seed, 0.02f);
  const int64_t n = rows * cols;
  for (int64_t i = 0; i < std::min<int64_t>(32, n); ++i) x[i] = 0.0f;
  for (int64_t i = 32; i < std::min<int64_t>(64, n); ++i) x[i] = -0.0f;
  if (n >= 96) {
    x[64 + 3] = -0.5f;
    x[64 + 20] = 0.5f;
  }
  for (int64_t i = 96; i < std::min<int64_t>(128, n); ++i) x[i] *= 1e-38f;
  for (int64_t i = 128; i < std::min<int64_t>(160, n); ++i) x[i] = static_cast<float>((i % 9) - 4) * 0.5f;  // ±2 with halves
  if (n >= 192) {
    for (int64_t i = 160; i < 192; ++i) x[i] *= 3e4f;
  }
  return x;
}

// Every encoder of every usable set writes the bytes Format::quantize writes, on random rows
// and on the edge cases above, for odd row counts and misaligned input.
TEST(Kernels, EncodersMatchFormatQuantizeByteForByte) {
  int checked = 0;
  for (const IsaKernels* isa : fast_isas()) {
    for (const Format& f : format_table()) {
      const EncodeRowsFn encode = encoder_for(*isa, f.name);
      if (!encode) continue;
      for (int64_t cols : lengths_for(f)) {
        for (int64_t rows : {1, 3, 17}) {
          const auto x = encoder_stress_rows(rows, cols, 31 * rows + cols);
          const auto want = quantize_tensor(f, x, rows, cols);
          std::vector<float> shifted(x.size() + 1);
          std::copy(x.begin(), x.end(), shifted.begin() + 1);
          std::vector<uint8_t> got(want.size() + 1, 0xAB);
          encode(shifted.data() + 1, rows, cols, got.data() + 1);
          EXPECT_EQ(got[0], 0xAB) << "wrote before its output";
          const bool same = std::equal(want.begin(), want.end(), got.begin() + 1);
          EXPECT_TRUE(same) << isa->name << " " << f.name << " rows " << rows << " cols " << cols;
          ++checked;
        }
      }
    }
  }
  if (!fast_isas().empty() && fast_isas().back()->name == "avx512") {
    EXPECT_GE(checked, 2 * 5 * 3);  // q4_0 and q8_0, five lengths, three row counts
  }
}

// The sixteen-lane affine search against the scalar one, bit for bit: every lane count,
// group lengths 16 and 32, with and without weights, both error measures and the k-quant
// settings; groups include constant ones, all-positive ones and heavy tails.
TEST(Kernels, AffineScaleSearchLanesMatchScalar) {
  if (!cpu_features().avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  struct Setting {
    int n, nmax;
    float rmin, rdelta;
    int nstep;
    bool use_mad;
  };
  const Setting settings[] = {{32, 15, -1.0f, 0.1f, 20, false}, {32, 31, -0.5f, 0.1f, 15, false},
                              {32, 15, -0.9f, 0.05f, 36, false}, {16, 3, -0.5f, 0.1f, 15, true},
                              {16, 3, -0.9f, 0.05f, 36, false}};
  int compared = 0;
  for (const Setting& st : settings) {
    for (int lanes = 1; lanes <= 16; ++lanes) {
      for (bool weighted : {false, true}) {
        auto x = test::student_t3(16 * st.n, 1000 * lanes + st.nstep, 0.02f);
        for (int i = 0; i < st.n; ++i) x[i] = 0.25f;                                 // group 0: constant
        if (lanes > 1) {  // group 1: all positive
          for (int i = st.n; i < 2 * st.n; ++i) x[i] = std::fabs(x[i]) + 0.01f;
        }
        std::vector<float> w(16 * st.n);
        for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f + std::fabs(x[i]) * static_cast<float>(i % 5);
        std::vector<uint8_t> got_l(16 * st.n, 0xEE), want_l(16 * st.n);
        float got_s[16], got_m[16];
        formats::affine_scale_search_x16(lanes, st.n, st.nmax, x.data(), weighted ? w.data() : nullptr, got_l.data(), got_s,
                                         got_m, st.rmin, st.rdelta, st.nstep, st.use_mad);
        for (int g = 0; g < lanes; ++g) {
          float want_m;
          const float want_s = formats::affine_scale_search(st.n, st.nmax, x.data() + g * st.n, weighted ? w.data() + g * st.n : nullptr,
                                                            want_l.data() + g * st.n, &want_m, st.rmin, st.rdelta, st.nstep, st.use_mad);
          EXPECT_EQ(std::bit_cast<uint32_t>(got_s[g]), std::bit_cast<uint32_t>(want_s)) << "scale, lanes " << lanes << " group " << g;
          EXPECT_EQ(std::bit_cast<uint32_t>(got_m[g]), std::bit_cast<uint32_t>(want_m)) << "min, lanes " << lanes << " group " << g;
          EXPECT_TRUE(std::equal(want_l.begin() + g * st.n, want_l.begin() + (g + 1) * st.n, got_l.begin() + g * st.n))
              << "levels, lanes " << lanes << " group " << g << " n " << st.n;
          ++compared;
        }
        if (lanes < 16) {
          EXPECT_EQ(got_l[lanes * st.n], 0xEE) << "wrote past its lanes";
        }
      }
    }
  }
  EXPECT_EQ(compared, 5 * 2 * (16 * 17 / 2));
}

// The sixteen-lane symmetric search against the scalar one, bit for bit (q6_k's and q3_k's
// group shapes, with and without weights, all-zero and tied-magnitude groups included).
TEST(Kernels, SymmetricScaleSearchLanesMatchScalar) {
  if (!cpu_features().avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  int compared = 0;
  for (const auto& [n, nmax] : {std::pair{16, 32}, std::pair{16, 4}, std::pair{32, 8}}) {
    for (int lanes = 1; lanes <= 16; ++lanes) {
      for (bool weighted : {false, true}) {
        auto x = test::student_t3(16 * n, 77 * lanes + n + nmax, 0.02f);
        for (int i = 0; i < n; ++i) x[i] = 0.0f;  // group 0: all zero
        if (lanes > 1) {                          // group 1: its largest magnitude with both signs
          x[n + 2] = -0.5f;
          x[n + 9] = 0.5f;
        }
        std::vector<float> w(16 * n);
        for (size_t i = 0; i < w.size(); ++i) w[i] = 0.05f + std::fabs(x[i]) * static_cast<float>(i % 3);
        std::vector<int8_t> got_l(16 * n, 99), want_l(16 * n);
        float got_s[16];
        formats::symmetric_scale_search_x16(lanes, n, nmax, x.data(), weighted ? w.data() : nullptr, got_l.data(), got_s);
        for (int g = 0; g < lanes; ++g) {
          const float want_s = formats::symmetric_scale_search(n, nmax, x.data() + g * n, want_l.data() + g * n,
                                                               weighted ? w.data() + g * n : nullptr);
          EXPECT_EQ(std::bit_cast<uint32_t>(got_s[g]), std::bit_cast<uint32_t>(want_s)) << "scale, lanes " << lanes << " group " << g;
          EXPECT_TRUE(std::equal(want_l.begin() + g * n, want_l.begin() + (g + 1) * n, got_l.begin() + g * n))
              << "levels, lanes " << lanes << " group " << g << " n " << n;
          ++compared;
        }
        if (lanes < 16) {
          EXPECT_EQ(got_l[lanes * n], 99) << "wrote past its lanes";
        }
      }
    }
  }
  EXPECT_EQ(compared, 3 * 2 * (16 * 17 / 2));
}

// The engine's matmul on repacked weights against matmul_ref (same bound as above).
TEST(Kernels, MatmulRepackedMatchesReference) {
  for (const Format& f : format_table()) {
    const int64_t cols = 256, rows = 35;
    if (!weight_kernels(f).repack) continue;
    const auto w32 = test::gaussian(rows * cols, 43, 0.05f);
    const auto shared = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(f, w32, rows, cols));
    Weight w{"w", &f, rows, cols, *shared, shared};
    const RepackedWeight packed = repack_weight(w);
    ASSERT_NE(packed.kernels, nullptr) << f.name;
    const auto deq = dequantize_tensor(f, *shared, rows, cols);
    for (int64_t T : {1, 5, 13}) {
      const auto x = test::student_t3(T * cols, 99 + T);
      std::vector<float> y(T * rows), y_ref(T * rows);
      matmul_repacked(w, packed, x.data(), T, y.data());
      matmul_ref(w, x.data(), T, y_ref.data());
      ASSERT_NO_FATAL_FAILURE(expect_within_rounding(deq, x, y, y_ref, T, rows, cols, true, f.name));
    }
  }
}

// Formats with a row-local twin (nf4_dq, fp4_dq): the twin made at load holds exactly the
// same values (tensors of more than one double-quantization group of 256 blocks), and the
// engine's product on it matches matmul_ref on the original.
TEST(Kernels, RowLocalTwinHoldsTheSameValues) {
  int checked = 0;
  for (const Format& f : format_table()) {
    if (!f.to_row_local_twin) continue;
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{3, 192}, {37, 1024}}) {
      const auto w32 = test::student_t3(rows * cols, rows + cols, 0.05f);
      const auto shared = std::make_shared<const std::vector<uint8_t>>(quantize_tensor(f, w32, rows, cols));
      Weight w{"w", &f, rows, cols, *shared, shared};
      const RepackedWeight packed = repack_weight(w);
      ASSERT_NE(packed.twin, nullptr) << f.name;
      EXPECT_EQ(packed.twin->format->name, f.row_local_twin);
      const auto deq = dequantize_tensor(f, *shared, rows, cols);
      const auto twin_deq = packed.twin->to_f32();
      ASSERT_EQ(twin_deq.size(), deq.size());
      for (size_t i = 0; i < deq.size(); ++i) ASSERT_EQ(twin_deq[i], deq[i]) << f.name << " element " << i;
      for (int64_t T : {1, 13}) {
        const auto x = test::student_t3(T * cols, 7 + T);
        std::vector<float> y(T * rows), y_ref(T * rows);
        matmul(*packed.twin, x.data(), T, y.data());
        matmul_ref(w, x.data(), T, y_ref.data());
        ASSERT_NO_FATAL_FAILURE(expect_within_rounding(deq, x, y, y_ref, T, rows, cols, false, f.name));
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * 2);  // nf4_dq, fp4_dq
}

}  // namespace
}  // namespace lowbit
