// `lowbit probe FILE --tensor NAME [--formats a,b] [--json]`: quantizes one 2-D tensor of a
// safetensors file into each format and reports size and reconstruction error.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/format.h"
#include "lowbit/safetensors.h"

namespace lowbit::cli {
namespace {

struct ProbeOptions {
  std::string file;
  std::string tensor;
  std::vector<std::string> formats;
  bool json = false;
};

struct ProbeRow {
  std::string format;
  double bpw = 0;
  uint64_t bytes = 0;
  double rmse = 0, rel_rmse = 0, max_abs = 0;
  double quantize_mb_s = 0;
  std::string skipped;  // why the format was not applied, if it was not
};

ProbeRow probe(const Format& f, const std::vector<float>& x, int64_t rows, int64_t cols) {
  ProbeRow r;
  r.format = std::string(f.name);
  if (!format_fits(f, cols)) {
    r.skipped = fmt::format("{} columns not a multiple of {}", cols, f.block_size);
    return r;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto q = quantize_tensor(f, x, rows, cols);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto y = dequantize_tensor(f, q, rows, cols);
  double se = 0, sx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    se += d * d;
    sx += static_cast<double>(x[i]) * x[i];
    r.max_abs = std::max(r.max_abs, std::fabs(d));
  }
  r.bytes = q.size();
  r.bpw = 8.0 * q.size() / x.size();
  r.rmse = std::sqrt(se / x.size());
  r.rel_rmse = sx > 0 ? std::sqrt(se / sx) : 0;
  r.quantize_mb_s = secs > 0 ? 4.0 * x.size() / secs / 1e6 : 0;
  return r;
}

}  // namespace

Runner register_probe(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "probe", "quantize one tensor of a safetensors file into each format and report the error");
  auto o = std::make_shared<ProbeOptions>();
  sub->add_option("file", o->file, "a .safetensors file")->required();
  sub->add_option("--tensor", o->tensor, "name of a 2-D float tensor in it")->required();
  sub->add_option("--formats", o->formats, "formats to try (default: all that fit)")->delimiter(',');
  sub->add_flag("--json", o->json, "machine-readable output");
  return [o]() {
    const SafetensorsFile file(o->file);
    const TensorView& t = file.tensor(o->tensor);
    if (t.shape.size() != 2) {
      throw lowbit::Error("probe needs a 2-D tensor", {.file = o->file, .tensor = t.name,
                                              .value = std::to_string(t.shape.size()) + " dims"});
    }
    const auto x = file.to_f32(t);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    std::vector<const Format*> formats;
    if (o->formats.empty()) {
      for (const auto& f : format_table()) formats.push_back(&f);
    } else {
      for (const auto& name : o->formats) formats.push_back(&format_by_name(name));
    }
    std::vector<ProbeRow> rows_out;
    for (const Format* f : formats) {
      try {
        rows_out.push_back(probe(*f, x, rows, cols));
      } catch (const Error& e) {
        throw e.with_tensor(t.name).with_file(o->file);
      }
    }
    if (o->json) {
      nlohmann::ordered_json out;
      out["file"] = o->file;
      out["tensor"] = t.name;
      out["shape"] = t.shape;
      for (const auto& r : rows_out) {
        nlohmann::ordered_json j{{"format", r.format}};
        if (!r.skipped.empty()) {
          j["skipped"] = r.skipped;
        } else {
          j.update({{"bytes", r.bytes}, {"bits_per_weight", r.bpw}, {"rmse", r.rmse},
                    {"relative_rmse", r.rel_rmse}, {"max_abs_error", r.max_abs},
                    {"quantize_mb_per_s", r.quantize_mb_s}});
        }
        out["results"].push_back(j);
      }
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    fmt::print("{} [{} x {}] from {}\n\n", t.name, rows, cols, o->file);
    fmt::print("{:<16} {:>8} {:>10} {:>11} {:>9} {:>10} {:>10}\n", "format", "bpw", "bytes", "rmse",
               "rel.rmse", "max|err|", "quant MB/s");
    for (const auto& r : rows_out) {
      if (!r.skipped.empty()) {
        fmt::print("{:<16} skipped: {}\n", r.format, r.skipped);
        continue;
      }
      fmt::print("{:<16} {:>8.4f} {:>10} {:>11.3e} {:>8.3f}% {:>10.3e} {:>10.1f}\n", r.format, r.bpw,
                 r.bytes, r.rmse, 100 * r.rel_rmse, r.max_abs, r.quantize_mb_s);
    }
    return 0;
  };
}

}  // namespace lowbit::cli
