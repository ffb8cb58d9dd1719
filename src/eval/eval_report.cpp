// eval's JSON, plots and HTML page (see eval_report.h). The plots are plain SVG text: axes,
// ticks, markers and labels placed here; a PNG is the same drawing rasterized by librsvg.
#include "lowbit/eval_report.h"

#include <fmt/format.h>
#include <librsvg/rsvg.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "lowbit/atomic_file.h"
#include "lowbit/error.h"

namespace lowbit {
namespace {

constexpr double kWidth = 760, kHeight = 460, kLeft = 78, kRight = 24, kTop = 40, kBottom = 56;
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A row's short name: the file or folder name, with its KV cache and activations when set.
std::string label_of(const EvalRow& r) {
  std::string s = std::filesystem::path(r.model).filename().string();
  if (s.empty()) s = std::filesystem::path(r.model).parent_path().filename().string();
  if (r.kv_cache != "f32") s += " KV " + r.kv_cache;
  if (r.act != "none") s += " act " + r.act;
  return s;
}

// Axes of a plot: x linear over [x0, x1], y log10 over [10^y0, 10^y1].
struct Axes {
  double x0, x1;
  int y0, y1;
  double px(double x) const { return kLeft + (x - x0) / (x1 - x0) * (kWidth - kLeft - kRight); }
  double py(double v) const {
    const double l = std::clamp(std::log10(v), static_cast<double>(y0), static_cast<double>(y1));
    return kTop + (y1 - l) / (y1 - y0) * (kHeight - kTop - kBottom);
  }
};

// A tick step of about a sixth of the span, from 1, 2, 5 × 10^k.
double tick_step(double span) {
  const double raw = span / 6, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

std::string frame(const Axes& a, const std::string& title, const std::string& xlabel, const std::string& ylabel) {
  std::string s = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">
<rect width="{0}" height="{1}" fill="white"/>
<text x="{2}" y="22" font-size="15" text-anchor="middle">{3}</text>
)", kWidth, kHeight, kWidth / 2, xml_escape(title));
  const double bottom = kHeight - kBottom, right = kWidth - kRight;
  for (int e = a.y0; e <= a.y1; ++e) {  // decades, with faint 2 and 5 lines
    const double y = a.py(std::pow(10.0, e));
    s += fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#ccc"/><text x="{}" y="{:.1f}" text-anchor="end" dominant-baseline="middle">1e{}</text>
)", kLeft, y, right, y, kLeft - 6, y, e);
    for (double m : {2.0, 5.0}) {
      if (e == a.y1) break;
      const double ym = a.py(m * std::pow(10.0, e));
      s += fmt::format(R"(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#eee"/>
)", kLeft, ym, right, ym);
    }
  }
  const double step = tick_step(a.x1 - a.x0);
  for (double x = std::ceil(a.x0 / step) * step; x <= a.x1 + 1e-9; x += step) {
    s += fmt::format(R"(<line x1="{0:.1f}" y1="{1}" x2="{0:.1f}" y2="{2}" stroke="#eee"/><text x="{0:.1f}" y="{3}" text-anchor="middle">{4:g}</text>
)", a.px(x), kTop, bottom, bottom + 16, x);
  }
  s += fmt::format(R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>
)svg", kLeft, kTop, right - kLeft, bottom - kTop, (kLeft + right) / 2, kHeight - 14, xml_escape(xlabel), (kTop + bottom) / 2, xml_escape(ylabel));
  return s;
}

// Decades covering the positive values (one decade when there are none).
std::pair<int, int> decades(const std::vector<double>& v) {
  double lo = INFINITY, hi = 0;
  for (double x : v) {
    if (x > 0 && std::isfinite(x)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
  }
  if (hi == 0) return {-3, -2};
  int y0 = static_cast<int>(std::floor(std::log10(lo))), y1 = static_cast<int>(std::ceil(std::log10(hi)));
  if (y1 == y0) ++y1;
  return {y0, y1};
}

std::vector<uint8_t> png_of_svg(const std::string& svg, const std::string& path) {
  GError* err = nullptr;
  RsvgHandle* h = rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err);
  if (h == nullptr) {
    const std::string why = err != nullptr ? err->message : "unknown";
    if (err != nullptr) g_error_free(err);
    throw Error("cannot read the plot's SVG: " + why, {.file = path});
  }
  const int scale = 2;  // a sharp PNG
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, static_cast<int>(kWidth) * scale, static_cast<int>(kHeight) * scale);
  cairo_t* cr = cairo_create(surface);
  const RsvgRectangle viewport{0, 0, kWidth * scale, kHeight * scale};
  const bool ok = rsvg_handle_render_document(h, cr, &viewport, &err);
  std::vector<uint8_t> png;
  if (ok) {
    cairo_surface_write_to_png_stream(surface, [](void* out, const unsigned char* data, unsigned int n) {
      auto* v = static_cast<std::vector<uint8_t>*>(out);
      v->insert(v->end(), data, data + n);
      return CAIRO_STATUS_SUCCESS;
    }, &png);
  }
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  g_object_unref(h);
  if (!ok) {
    const std::string why = err != nullptr ? err->message : "unknown";
    if (err != nullptr) g_error_free(err);
    throw Error("cannot render the plot: " + why, {.file = path});
  }
  return png;
}

std::string html_cell(const nlohmann::ordered_json& j, const char* key, const std::string& shown) {
  return fmt::format(R"(<td data-key="{}" data-value="{}">{}</td>)", key, xml_escape(j.dump()), xml_escape(shown));
}

}  // namespace

nlohmann::ordered_json eval_rows_json(const std::vector<EvalRow>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    out.push_back({{"model", r.model}, {"base", r.is_base}, {"file_bytes", r.file_bytes},
                   {"bits_per_weight", r.bits_per_weight}, {"ppl", r.ppl}, {"ppl_stderr", r.ppl_stderr},
                   {"delta_ppl", r.delta_ppl}, {"kld_mean", r.kld_mean}, {"kld_stderr", r.kld_stderr},
                   {"kld_p99", r.kld_p99}, {"top1_agreement", r.top1}, {"gen_tokens_per_second", r.gen_tokens_per_second},
                   {"act", r.act}, {"outlier_share", r.outlier_share}, {"kv_cache", r.kv_cache}, {"kv_bytes_per_token", r.kv_bytes_per_token},
                   {"eval_tokens_per_second", r.eval_tokens_per_second}, {"peak_rss_bytes", r.peak_rss_bytes}});
    if (r.task_items > 0) {
      out.back()["task"] = {{"items", r.task_items}, {"accuracy", r.task_accuracy}, {"accuracy_stderr", r.task_stderr},
                            {"agreement_with_base", r.task_agreement}};
    }
    if (!r.by_position.empty()) {
      auto& buckets = out.back()["by_position"] = nlohmann::ordered_json::array();
      for (const PositionBucket& b : r.by_position) {
        buckets.push_back({{"first", b.first}, {"last", b.last}, {"tokens", b.tokens}, {"kld_mean", b.kld_mean},
                           {"kld_stderr", b.kld_stderr}, {"top1_agreement", b.top1}});
      }
    }
  }
  return out;
}

std::string kld_size_plot_svg(const std::vector<EvalRow>& rows) {
  std::vector<const EvalRow*> q;
  std::vector<double> klds;
  double x0 = INFINITY, x1 = -INFINITY;
  for (const auto& r : rows) {
    if (r.is_base) continue;
    q.push_back(&r);
    klds.push_back(r.kld_mean);
    x0 = std::min(x0, r.bits_per_weight);
    x1 = std::max(x1, r.bits_per_weight);
  }
  if (q.empty()) throw Error("the plot needs at least one quantized model");
  const double pad = std::max(0.25, 0.08 * (x1 - x0));
  const auto [y0, y1] = decades(klds);
  const Axes a{std::max(0.0, x0 - pad), x1 + pad, y0, y1};
  std::string s = frame(a, "KLD against size", "bits per weight", "mean KLD vs base (log scale)");
  struct Box {
    double x0, x1, y0, y1;
  };
  std::vector<Box> placed;  // labels already drawn: a new one moves up or down until it clears them
  for (size_t i = 0; i < q.size(); ++i) {
    const EvalRow& r = *q[i];
    const char* color = kColors[i % std::size(kColors)];
    const bool on_axis = !(r.kld_mean > 0);
    const double x = a.px(r.bits_per_weight), y = on_axis ? kHeight - kBottom : a.py(r.kld_mean);
    s += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="5" fill="{}" stroke="{}" stroke-width="1.5"/>
)", x, y, on_axis ? "white" : color, color);
    const std::string text = label_of(r) + (on_axis ? " (KLD 0)" : "");
    const double width = 6.8 * static_cast<double>(text.size());  // about 12 px DejaVu Sans
    const bool left = x + 8 + width > kWidth - kRight;  // labels that would leave the frame go to the left
    const double lx = left ? x - 8 : x + 8;
    double ly = y - 8;
    for (int k = 0; k < 24; ++k) {  // offsets 0, +14, -14, +28, -28, ...
      const double cand = y - 8 + 14.0 * ((k + 1) / 2) * (k % 2 == 1 ? 1 : -1);
      const Box b{left ? lx - width : lx, left ? lx : lx + width, cand - 11, cand + 3};
      bool clear = cand - 11 >= kTop && cand + 3 <= kHeight - kBottom;
      for (const Box& o : placed) clear = clear && (b.x1 < o.x0 || b.x0 > o.x1 || b.y1 < o.y0 || b.y0 > o.y1);
      if (clear) {
        ly = cand;
        break;
      }
    }
    placed.push_back({left ? lx - width : lx, left ? lx : lx + width, ly - 11, ly + 3});
    s += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" fill="{}" text-anchor="{}">{}</text>
)", lx, ly, color, left ? "end" : "start", xml_escape(text));
  }
  return s + "</svg>\n";
}

std::string kld_position_plot_svg(const std::vector<EvalRow>& rows) {
  std::vector<const EvalRow*> q;
  std::vector<double> klds;
  double x1 = 0;
  for (const auto& r : rows) {
    if (r.is_base || r.by_position.empty()) continue;
    q.push_back(&r);
    for (const PositionBucket& b : r.by_position) {
      klds.push_back(b.kld_mean);
      x1 = std::max(x1, static_cast<double>(b.last));
    }
  }
  if (q.empty()) return "";
  const auto [y0, y1] = decades(klds);
  const Axes a{0, x1 + 1, y0, y1};
  std::string s = frame(a, "KLD by position in the context", "token position", "mean KLD vs base (log scale)");
  for (size_t i = 0; i < q.size(); ++i) {
    const char* color = kColors[i % std::size(kColors)];
    std::string points;
    for (const PositionBucket& b : q[i]->by_position) {
      const double x = a.px(0.5 * static_cast<double>(b.first + b.last));
      const double y = b.kld_mean > 0 ? a.py(b.kld_mean) : kHeight - kBottom;
      points += fmt::format("{:.1f},{:.1f} ", x, y);
      s += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>
)", x, y, color);
    }
    s += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>
<text x="{}" y="{:.1f}" fill="{}">{}</text>
)", points, color, kLeft + 10, kTop + 16 + 15.0 * static_cast<double>(i), color, xml_escape(label_of(*q[i])));
  }
  return s + "</svg>\n";
}

void write_kld_size_plot(const std::string& path, const std::vector<EvalRow>& rows) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext != ".svg" && ext != ".png") throw Error("--plot writes .svg or .png", {.file = path});
  const std::string svg = kld_size_plot_svg(rows);
  AtomicFile f(path);
  if (ext == ".svg") {
    f.write(svg.data(), svg.size());
  } else {
    f.write(png_of_svg(svg, path));
  }
  f.commit();
}

std::string eval_report_html(const std::vector<EvalRow>& rows, const std::string& base, const std::string& text) {
  const nlohmann::ordered_json json = eval_rows_json(rows);
  std::string s = fmt::format(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lowbit eval: {0}</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }}
td[data-key="model"], td[data-key="act"], td[data-key="kv_cache"] {{ text-align: left; }}
tr.base {{ background: #f7fbff; }}
figure {{ margin: 12px 0; }}
</style></head><body>
<h1>lowbit eval</h1>
<p>base model <code>{0}</code>, evaluated on <code>{1}</code>; KLD and top-1 agreement are against the base's logits.</p>
<h2>Quality against size</h2>
<figure>{2}</figure>
)", xml_escape(base), xml_escape(text), kld_size_plot_svg(rows));
  if (const std::string pos = kld_position_plot_svg(rows); !pos.empty()) s += "<h2>KLD by position</h2>\n<figure>" + pos + "</figure>\n";
  s += R"(<h2>Table</h2>
<table id="eval"><thead><tr><th>model</th><th>size MB</th><th>bpw</th><th>act</th><th>KV cache</th><th>KV B/token</th><th>ppl</th><th>&#916; ppl</th><th>mean KLD</th><th>KLD p99</th><th>top-1 %</th><th>eval tok/s</th><th>gen tok/s</th><th>peak MB</th><th>task acc %</th></tr></thead>
<tbody>
)";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& j = json[i];
    const EvalRow& r = rows[i];
    s += fmt::format(R"(<tr data-row="{}"{}>)", i, r.is_base ? R"( class="base")" : "");
    s += html_cell(j["model"], "model", label_of(r) + (r.is_base ? " (base)" : ""));
    s += html_cell(j["file_bytes"], "file_bytes", fmt::format("{:.3f}", r.file_bytes / 1e6));
    s += html_cell(j["bits_per_weight"], "bits_per_weight", fmt::format("{:.3f}", r.bits_per_weight));
    s += html_cell(j["act"], "act", r.act);
    s += html_cell(j["kv_cache"], "kv_cache", r.kv_cache);
    s += html_cell(j["kv_bytes_per_token"], "kv_bytes_per_token", fmt::format("{}", r.kv_bytes_per_token));
    s += html_cell(j["ppl"], "ppl", fmt::format("{:.4f}", r.ppl));
    s += html_cell(j["delta_ppl"], "delta_ppl", r.is_base ? "-" : fmt::format("{:+.4f}", r.delta_ppl));
    s += html_cell(j["kld_mean"], "kld_mean", r.is_base ? "-" : fmt::format("{:.5f}", r.kld_mean));
    s += html_cell(j["kld_p99"], "kld_p99", r.is_base ? "-" : fmt::format("{:.5f}", r.kld_p99));
    s += html_cell(j["top1_agreement"], "top1_agreement", r.is_base ? "-" : fmt::format("{:.2f}", 100 * r.top1));
    s += html_cell(j["eval_tokens_per_second"], "eval_tokens_per_second", fmt::format("{:.0f}", r.eval_tokens_per_second));
    s += html_cell(j["gen_tokens_per_second"], "gen_tokens_per_second", fmt::format("{:.0f}", r.gen_tokens_per_second));
    s += html_cell(j["peak_rss_bytes"], "peak_rss_bytes", fmt::format("{:.1f}", r.peak_rss_bytes / 1e6));
    s += r.task_items > 0 ? html_cell(j["task"]["accuracy"], "task_accuracy", fmt::format("{:.1f}", 100 * r.task_accuracy)) : "<td>-</td>";
    s += "</tr>\n";
  }
  std::string embedded = json.dump();
  for (size_t at = 0; (at = embedded.find("</", at)) != std::string::npos; at += 3) embedded.replace(at, 2, "<\\/");
  s += "</tbody></table>\n<script type=\"application/json\" id=\"lowbit-eval\">" + embedded + "</script>\n</body></html>\n";
  return s;
}

}  // namespace lowbit
