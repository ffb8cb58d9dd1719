// What `lowbit eval` writes besides its table: the rows as JSON (--json), a plot of KLD
// against bits per weight (--plot FILE.svg|.png), and one self-contained HTML page with
// the plots and the table (--html FILE) whose numbers are the JSON's.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/evaluate.h"

namespace lowbit {

// One object per row, the keys `eval --json` prints.
nlohmann::ordered_json eval_rows_json(const std::vector<EvalRow>& rows);

// KLD (log scale) against bits per weight, one labelled point per quantized row (the base
// is the reference, KLD 0, and is left out; a row with KLD 0 sits on the bottom edge with
// an open marker). An SVG document.
std::string kld_size_plot_svg(const std::vector<EvalRow>& rows);
// Mean KLD (log scale) by context position, one line per row with --by-position; "" when
// no row has buckets.
std::string kld_position_plot_svg(const std::vector<EvalRow>& rows);
// The size plot into `path`, by extension: .svg as written above, .png rasterized from it
// (librsvg). Atomic; an Error naming the path for any other extension.
void write_kld_size_plot(const std::string& path, const std::vector<EvalRow>& rows);

// The page: a heading naming `base` and `text`, the plots inline, and the table; each number
// a cell <td data-key="KEY" data-value="JSON number"> with eval_rows_json's key and value,
// shown rounded; the JSON itself in <script type="application/json" id="lowbit-eval">.
std::string eval_report_html(const std::vector<EvalRow>& rows, const std::string& base, const std::string& text);

}  // namespace lowbit
