// The kernel table (lowbit/kernels.h): the instruction sets compiled in, the one chosen at
// the first call (the best the CPU runs, or LOWBIT_ISA), and per format its activation
// format, scalar unpacker and fused decode kernel, indexed by the format's table position.
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/kernel_impl.h"
#include "lowbit/error.h"

namespace lowbit {
namespace kernels {
namespace {

// Best first.
std::vector<const IsaEntry*> compiled_isas() { return {&avx512_isa(), &avx2_isa(), &ref_isa()}; }

const IsaEntry& choose_isa() {
  const char* forced = std::getenv("LOWBIT_ISA");
  for (const IsaEntry* e : compiled_isas()) {
    if (forced && *forced && e->isa->name != forced) continue;
    if (e->supported()) return *e;
  }
  if (forced && *forced) {
    throw Error(std::string("LOWBIT_ISA=") + forced + ": not an instruction set this CPU runs (ref, avx2, avx512)");
  }
  return ref_isa();
}

UnpackU8Fn find_unpack(std::string_view name) {
  for (const UnpackEntry& e : unpack_table()) {
    if (e.format == name) return e.fn;
  }
  return nullptr;
}

FusedDotFn find_fused(const IsaEntry& isa, std::string_view name) {
  for (const FusedEntry& e : isa.fused) {
    if (e.format == name) return e.fn;
  }
  return nullptr;
}

FusedF32Kernel find_fused_f32(const IsaEntry& isa, std::string_view name) {
  for (const FusedF32Entry& e : isa.fused_f32) {
    if (e.format == name) return {e.fn, e.arrange};
  }
  return {};
}

const RepackKernels* find_repack(const IsaEntry& isa, std::string_view name) {
  for (const RepackKernels& e : isa.repacks) {
    if (e.format == name) return &e;
  }
  return nullptr;
}

EncodeRowsFn find_encoder(const IsaEntry& isa, std::string_view name) {
  for (const EncodeEntry& e : isa.encoders) {
    if (e.format == name) return e.fn;
  }
  return nullptr;
}

struct Table {
  const IsaEntry* isa;
  std::vector<WeightKernels> rows;  // parallel to format_table()
};

const Table& table() {
  static const Table t = [] {
    Table tb{&choose_isa(), {}};
    for (const Format& f : format_table()) {
      const UnpackU8Fn unpack = find_unpack(f.name);
      tb.rows.push_back({&f, unpack ? ActFormat::kQ8 : ActFormat::kF32, unpack, unpack ? find_fused(*tb.isa, f.name) : nullptr,
                         unpack ? FusedF32Kernel{} : find_fused_f32(*tb.isa, f.name), find_repack(*tb.isa, f.name),
                         find_encoder(*tb.isa, f.name)});
    }
    return tb;
  }();
  return t;
}

}  // namespace

void dot_tail(const IsaKernels& isa, UnpackU8Fn unpack, const uint8_t* row_at_first, int64_t first_elem, int64_t cols,
              const Q8RowView* xs, int nt, float* y) {
  const int64_t n = cols - first_elem, padded = q8_padded(n);
  alignas(64) uint8_t u[kQ8Chunk * 4];
  float a[kQ8Chunk * 4 / kQ8Sub], b[kQ8Chunk * 4 / kQ8Sub];
  if (padded > static_cast<int64_t>(sizeof(u))) throw Error("dot_tail: a tail of " + std::to_string(n) + " elements");
  unpack(row_at_first, n, u, a, b);
  Q8RowView shifted[4];
  for (int k = 0; k < nt; ++k) {
    shifted[k] = {xs[k].q + first_elem, xs[k].d_lane + first_elem / 4, xs[k].sum + first_elem / kQ8Sub};
  }
  float part[4];
  isa.dot_u8_q8({u, a, b}, padded, shifted, nt, part);
  for (int k = 0; k < nt; ++k) y[k] += part[k];
}

}  // namespace kernels

std::vector<const IsaKernels*> usable_isas() {
  std::vector<const IsaKernels*> out;
  const auto all = kernels::compiled_isas();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if ((*it)->supported()) out.push_back((*it)->isa);
  }
  return out;
}

const IsaKernels& active_isa() { return *kernels::table().isa->isa; }

const WeightKernels& weight_kernels(const Format& f) {
  const auto& t = kernels::table();
  const auto index = static_cast<size_t>(&f - format_table().data());
  if (index >= t.rows.size()) throw Error("weight_kernels: format " + std::string(f.name) + " is not a row of the format table");
  return t.rows[index];
}

FusedDotFn fused_dot_for(const IsaKernels& isa, std::string_view name) {
  for (const kernels::IsaEntry* e : kernels::compiled_isas()) {
    if (e->isa == &isa) return kernels::find_fused(*e, name);
  }
  return nullptr;
}

void interleave_panel16(const U8RowView* rows, int n_rows, int64_t padded, uint8_t* u, float* a, float* b) {
  for (int64_t s = 0; s < padded / kQ8Sub; ++s) {
    for (int r = 0; r < kPanelRows; ++r) {
      for (int j = 0; j < 4; ++j) {
        uint8_t* dst = u + ((s * 4 + j) * kPanelRows + r) * 4;
        if (r < n_rows) {
          std::memcpy(dst, rows[r].u + 16 * s + 4 * j, 4);
        } else {
          std::memset(dst, 0, 4);
        }
      }
      a[s * kPanelRows + r] = r < n_rows ? rows[r].a[s] : 0.0f;
      b[s * kPanelRows + r] = r < n_rows ? rows[r].b[s] : 0.0f;
    }
  }
}

FusedF32Kernel fused_f32_for(const IsaKernels& isa, std::string_view name) {
  for (const kernels::IsaEntry* e : kernels::compiled_isas()) {
    if (e->isa == &isa) return kernels::find_fused_f32(*e, name);
  }
  return {};
}

const RepackKernels* repack_for(const IsaKernels& isa, std::string_view name) {
  for (const kernels::IsaEntry* e : kernels::compiled_isas()) {
    if (e->isa == &isa) return kernels::find_repack(*e, name);
  }
  return nullptr;
}

EncodeRowsFn encoder_for(const IsaKernels& isa, std::string_view name) {
  for (const kernels::IsaEntry* e : kernels::compiled_isas()) {
    if (e->isa == &isa) return kernels::find_encoder(*e, name);
  }
  return nullptr;
}

void quantize_q8_rows(const float* x, int64_t T, int64_t cols, Q8Rows& out) {
  out.rows = T;
  out.cols = cols;
  out.padded = q8_padded(cols);
  out.q.resize(static_cast<size_t>(T * out.padded));
  out.d_lane.resize(static_cast<size_t>(T * out.padded / 4));
  out.sum.resize(static_cast<size_t>(T * out.padded / kQ8Sub));
  const IsaKernels& isa = active_isa();
#pragma omp parallel for schedule(static) if (T >= 4)
  for (int64_t t = 0; t < T; ++t) {
    isa.quantize_q8(x + t * cols, cols, out.q.data() + t * out.padded, out.d_lane.data() + t * (out.padded / 4),
                    out.sum.data() + t * (out.padded / kQ8Sub));
  }
}

}  // namespace lowbit
