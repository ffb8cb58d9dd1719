// The eval table (evaluate.h).
#include "lowbit/cluster.h"
#include "lowbit/evaluate.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/weight_check.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/task.h"
#include "eval/eval_checkpoint.h"
#include "eval/process_memory.h"

namespace lowbit {
namespace {

uint64_t size_on_disk(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(path)) return fs::file_size(path);
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

// Greedy decoding of n tokens after BOS; tokens per second of the decode steps.
double generation_speed(const Model& m, int64_t n, const KvCacheOptions& kv, const ActQuantOptions& act = {}) {
  n = std::min<int64_t>(n, m.config.context_length - 1);
  if (n <= 1) return 0;
  Engine engine(m, n + 1, kv);
  engine.set_activation_quant(act);
  std::vector<float> logits(m.config.vocab_size);
  std::vector<int32_t> tokens{m.tokenizer->bos() >= 0 ? m.tokenizer->bos() : 0};
  engine.forward(tokens, 0, logits.data(), false);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    tokens.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    engine.forward(std::span(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, logits.data(), false);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s > 0 ? n / s : 0;
}

// Columns padded to their widest cell; the first left-aligned, the others right-aligned.
std::string render_table(const std::vector<std::vector<std::string>>& table, bool markdown) {
  std::string out;
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (size_t i = 0; i < table.size(); ++i) {
    for (size_t c = 0; c < table[i].size(); ++c) {
      const std::string& v = table[i][c];
      const std::string pad(width[c] - v.size(), ' ');
      if (markdown) out += "| " + (c == 0 ? v + pad : pad + v) + " ";
      else out += (c == 0 ? v + pad : pad + v) + (c + 1 < table[i].size() ? "  " : "");
    }
    out += markdown ? "|\n" : "\n";
    if (markdown && i == 0) {
      for (size_t c = 0; c < width.size(); ++c) out += "|" + std::string(width[c] + 1, '-') + (c == 0 ? "-" : ":");
      out += "|\n";
    }
  }
  return out;
}

// The size, perplexity and (against the base) KLD columns of a model's row.
EvalRow row_of(const std::string& path, const Model& m, const PerplexityResult& r) {
  EvalRow row;
  row.model = path;
  row.file_bytes = size_on_disk(path);
  row.bits_per_weight = 8.0 * static_cast<double>(m.weight_bytes()) / static_cast<double>(m.parameter_count());
  row.ppl = r.ppl;
  row.ppl_stderr = r.ppl_stderr;
  row.eval_tokens_per_second = r.tokens_per_second;
  if (r.kld) {
    row.delta_ppl = r.kld->delta_ppl;
    row.kld_mean = r.kld->mean;
    row.kld_stderr = r.kld->stderr_mean;
    row.kld_p99 = r.kld->p99;
    row.top1 = r.kld->top1_agreement;
  }
  return row;
}

}  // namespace

std::vector<EvalKvCache> parse_eval_kv_caches(const std::string& list) {
  std::vector<EvalKvCache> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    const bool rotate = item.ends_with(":rot");
    if (rotate) item.resize(item.size() - 4);
    out.push_back({item + (rotate ? "+rot" : ""), kv_cache_options(item, rotate)});
    start = comma + 1;
  }
  return out;
}

std::vector<EvalRow> evaluate_models(const std::string& base_path, const std::vector<std::string>& quantized,
                                     const EvalOptions& o) {
  auto say = [&](const std::string& s) {
    if (o.status) o.status(s);
  };
  std::ifstream in(o.text_path, std::ios::binary);
  if (!in) throw Error("cannot open text file", {.file = o.text_path});
  std::stringstream text;
  text << in.rdbuf();

  // Each model's peak memory: the peak restarted before it loads, less the size then.
  auto start_memory = [] { return reset_peak_resident_memory() ? resident_memory().now : 0; };
  auto added_memory = [](uint64_t before) {
    const ResidentMemory m = resident_memory();
    return before > 0 && m.peak > before ? m.peak - before : 0;
  };
  // --checkpoint FILE: the finished rows in FILE (saved after each), the base's logits in
  // FILE.logits, the running pass's sums in FILE.pass; a rerun with resume skips the rows
  // done and continues the pass. All three go when the table is complete.
  const StatsCheckpoint& ck = o.checkpoint;
  const bool keep = !ck.path.empty();
  if (keep && cluster().size() > 1) throw Error("an eval checkpoint is kept by one process; run without mpirun to use --checkpoint", {.file = ck.path});
  StatsCheckpointer saver(ck, "eval", eval_fingerprint(base_path, quantized, o));
  const std::string logits = keep ? eval_logits_path(ck.path)
                                  : (std::filesystem::temp_directory_path() / ("lowbit-eval-" + std::to_string(::getpid()) + ".logits")).string();
  struct Cleanup {  // (under mpirun each rank's logits are LOGITS.rankK: compute_perplexity)
    std::string path;
    ~Cleanup() {
      if (path.empty()) return;
      std::filesystem::remove(path);
      std::filesystem::remove(path + ".rank" + std::to_string(cluster().rank()));
    }
  } cleanup{keep ? "" : logits};
  EvalProgress done;  // the rows so far, and the base's --task choices for the agreement column
  std::vector<EvalRow>& rows = done.rows;
  std::vector<int64_t>& base_choices = done.base_choices;
  if (auto saved = saver.load()) {
    done = read_eval_progress(saved->stats, saved->done);
    if (!rows.empty() && !std::filesystem::exists(logits)) {
      rows.clear();
      say(saver.note() + "; but the base logits " + logits + " are gone, so the table starts again");
    } else {
      say(saver.note() + " (" + std::to_string(rows.size()) + " rows done)");
    }
  } else if (!saver.note().empty()) {
    say(saver.note());
  }
  auto save_rows = [&] {
    if (!keep) return;
    StatsWriter w;
    write_eval_progress(done, w);
    saver.save(static_cast<int64_t>(rows.size()), w);
  };

  const uint64_t base_before = start_memory();
  const Model base = load_model(base_path, {.tokenizer_path = o.tokenizer});
  require_finite_weights(base);
  const auto tokens = base.tokenizer->encode(text.str(), true);
  PerplexityOptions p;
  p.n_ctx = o.n_ctx;
  p.max_chunks = o.max_chunks;
  p.progress = o.progress;
  if (keep) p.checkpoint = {.path = eval_pass_path(ck.path), .resume = ck.resume, .every_seconds = ck.every_seconds};
  auto run_pass = [&](const Model& m) {
    const PerplexityResult r = compute_perplexity(m, tokens, p);
    if (!r.resume_note.empty()) say(r.resume_note);
    return r;
  };
  std::vector<TaskItem> task;
  if (!o.task_path.empty()) task = load_task(o.task_path);
  if (rows.empty()) {
    p.save_logits_path = logits;
    say("base " + base_path + ": perplexity");
    const auto rb = run_pass(base);
    EvalRow b = row_of(base_path, base, rb);
    b.is_base = true;
    say("base: generation speed");
    b.gen_tokens_per_second = generation_speed(base, o.gen_tokens, {});
    b.kv_bytes_per_token = Engine(base, 1).kv_bytes_per_token();
    if (!task.empty()) {
      say("base: task (" + std::to_string(task.size()) + " items)");
      const TaskResult base_task = score_task(base, task);
      b.task_items = base_task.items;
      b.task_accuracy = base_task.accuracy;
      b.task_stderr = base_task.accuracy_stderr;
      base_choices = base_task.choices;
    }
    b.peak_rss_bytes = added_memory(base_before);
    rows.push_back(b);
    save_rows();
  }

  p.save_logits_path.clear();
  p.kld_base_path = logits;
  if (!o.act.empty()) act_quant_options(o.act, o.threshold);  // an unknown name fails before any model runs
  size_t row_index = 1;  // the row each (model, KV cache) fills, after the base's
  for (const auto& path : quantized) {
    if (row_index + o.kv_caches.size() <= rows.size()) {  // all its rows came from the checkpoint
      row_index += o.kv_caches.size();
      continue;
    }
    const uint64_t before = start_memory();
    const Model q = load_model(path, {.tokenizer_path = o.tokenizer});
    require_finite_weights(q);
    if (q.config.vocab_size != base.config.vocab_size) {
      throw Error("model has another vocabulary size than the base", {.file = path, .value = std::to_string(q.config.vocab_size)});
    }
    p.act = act_quant_for(q, o.act, o.threshold);
    for (const EvalKvCache& kv : o.kv_caches) {
      if (row_index++ < rows.size()) continue;
      const std::string what = path + (o.kv_caches.size() > 1 || kv.label != "f32" ? " (KV " + kv.label + ")" : "");
      say(what + ": perplexity and KLD");
      p.kv = kv.options;
      const auto r = run_pass(q);
      EvalRow row = row_of(path, q, r);
      row.kv_cache = kv.label;
      row.act = p.act.name;
      if (p.act.outlier_threshold > 0) {
        int64_t outlier = 0, all = 0;
        for (const auto& [name, st] : r.outliers) {
          outlier += st.outlier_columns;
          all += st.columns;
        }
        row.outlier_share = all > 0 ? static_cast<double>(outlier) / static_cast<double>(all) : 0;
        row.act += fmt::format(" ({:.2f}% float)", 100 * row.outlier_share);
      }
      row.kv_bytes_per_token = Engine(q, 1, kv.options).kv_bytes_per_token();
      if (o.by_position > 0) {
        say(what + ": KLD by position");
        row.by_position = kld_by_position(base, q, tokens, {.n_ctx = o.n_ctx, .max_chunks = o.max_chunks, .buckets = o.by_position, .kv = kv.options, .act = p.act});
      }
      if (!task.empty()) {
        say(what + ": task");
        const TaskResult t = score_task(q, task, kv.options, {}, p.act);
        row.task_items = t.items;
        row.task_accuracy = t.accuracy;
        row.task_stderr = t.accuracy_stderr;
        int64_t same = 0;
        for (size_t i = 0; i < t.choices.size() && i < base_choices.size(); ++i) same += t.choices[i] == base_choices[i];
        row.task_agreement = static_cast<double>(same) / static_cast<double>(t.items);
      }
      say(what + ": generation speed");
      row.gen_tokens_per_second = generation_speed(q, o.gen_tokens, kv.options, p.act);
      row.peak_rss_bytes = added_memory(before);
      rows.push_back(row);
      save_rows();
    }
  }
  if (keep) {  // the table is complete: nothing is left to resume
    saver.finish();
    std::filesystem::remove(logits);
  }
  return std::move(done.rows);
}

std::string format_eval_table(const std::vector<EvalRow>& rows, bool markdown) {
  const char* header[] = {"model", "size MB", "bpw", "act", "KV cache", "KV B/token", "ppl", "delta ppl", "mean KLD", "KLD p99", "top-1 %",
                          "eval tok/s", "gen tok/s", "peak MB"};
  auto cell = [](const EvalRow& r) {
    return std::vector<std::string>{
        std::filesystem::path(r.model).filename().string(),
        fmt::format("{:.3f}", r.file_bytes / 1e6),
        fmt::format("{:.3f}", r.bits_per_weight),
        r.act,
        r.kv_cache,
        fmt::format("{}", r.kv_bytes_per_token),
        fmt::format("{:.4f} +/- {:.4f}", r.ppl, r.ppl_stderr),
        r.is_base ? "-" : fmt::format("{:+.4f}", r.delta_ppl),
        r.is_base ? "-" : fmt::format("{:.5f}", r.kld_mean),
        r.is_base ? "-" : fmt::format("{:.5f}", r.kld_p99),
        r.is_base ? "-" : fmt::format("{:.2f}", 100 * r.top1),
        fmt::format("{:.0f}", r.eval_tokens_per_second),
        r.gen_tokens_per_second > 0 ? fmt::format("{:.0f}", r.gen_tokens_per_second) : "-",
        r.peak_rss_bytes > 0 ? fmt::format("{:.1f}", r.peak_rss_bytes / 1e6) : "-"};
  };
  std::vector<std::vector<std::string>> table{std::vector<std::string>(std::begin(header), std::end(header))};
  for (const auto& r : rows) table.push_back(cell(r));
  if (!rows.empty() && rows.front().task_items > 0) {  // --task: accuracy (95% interval) and agreement with the base
    table[0].insert(table[0].end(), {"task acc %", "agree %"});
    for (size_t i = 0; i < rows.size(); ++i) {
      table[i + 1].push_back(fmt::format("{:.1f} +/- {:.1f}", 100 * rows[i].task_accuracy, 196 * rows[i].task_stderr));
      table[i + 1].push_back(rows[i].is_base ? "-" : fmt::format("{:.1f}", 100 * rows[i].task_agreement));
    }
  }
  return render_table(table, markdown);
}

std::string format_position_table(const std::vector<EvalRow>& rows, bool markdown) {
  std::vector<std::vector<std::string>> table;
  for (const EvalRow& r : rows) {
    if (r.by_position.empty()) continue;
    if (table.empty()) {
      table.push_back({"KLD (top-1 %) at positions"});
      for (const PositionBucket& b : r.by_position) table[0].push_back(fmt::format("{}-{}", b.first, b.last));
    }
    std::vector<std::string> line{std::filesystem::path(r.model).filename().string() + (r.kv_cache != "f32" ? " KV " + r.kv_cache : "")};
    for (const PositionBucket& b : r.by_position) line.push_back(fmt::format("{:.5f} ({:.1f})", b.kld_mean, 100 * b.top1));
    table.push_back(line);
  }
  return table.empty() ? "" : render_table(table, markdown);
}


}  // namespace lowbit
