// Quantization-aware training methods (lowbit/qat.h): EfficientQAT's Block-AP and E2E-QP,
// and plain end-to-end STE training, as rows of one table.
#include "lowbit/qat.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "lowbit/error.h"
#include "train/train_layers.h"

namespace lowbit {
namespace {

// Calibration windows for Block-AP: n windows of T tokens at seeded offsets, embedded.
struct BlockStream {
  int64_t n = 0, T = 0, C = 0;
  std::vector<float> x;  // (n, T, C)
  float* sample(int64_t i) { return x.data() + i * T * C; }
};

BlockStream embedded_windows(TrainModel& m, std::span<const int32_t> tokens, const QatOptions& o) {
  const ModelConfig& c = m.config();
  BlockStream s{o.block_ap.samples, std::min(o.block_ap.seq_len, c.context_length), c.dim, {}};
  if (s.n < 1 || s.T < 1 || o.block_ap.epochs < 1 || o.block_ap.batch < 1) {
    throw Error("Block-AP needs positive samples, seq-len, epochs and batch", {.file = o.train.source});
  }
  if (static_cast<int64_t>(tokens.size()) < s.T) {
    throw Error("the data holds fewer tokens than one Block-AP window", {.file = o.train.source,
                .value = std::to_string(tokens.size()) + " tokens < " + std::to_string(s.T)});
  }
  std::mt19937_64 rng(o.block_ap.seed);
  std::uniform_int_distribution<int64_t> offset(0, static_cast<int64_t>(tokens.size()) - s.T);
  std::vector<int32_t> ids(static_cast<size_t>(s.n * s.T));
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t at = offset(rng);
    for (int64_t t = 0; t < s.T; ++t) {
      ids[i * s.T + t] = tokens[at + t];
      if (ids[i * s.T + t] < 0 || ids[i * s.T + t] >= c.vocab_size) {
        throw Error("token id outside the vocabulary", {.file = o.train.source, .value = std::to_string(ids[i * s.T + t])});
      }
    }
  }
  s.x.resize(static_cast<size_t>(s.n * s.T * s.C));
  train::embedding_forward(s.x.data(), ids.data(), m.params()[0].value.data(), s.n * s.T, s.C);
  return s;
}

// out = block l of every window of `in`, `batch` windows at a time.
void run_block(TrainModel& m, int64_t l, BlockStream& in, int64_t batch, BlockStream& out) {
  out = BlockStream{in.n, in.T, in.C, std::vector<float>(in.x.size())};
  for (int64_t i = 0; i < in.n; i += batch) {
    const int64_t b = std::min(batch, in.n - i);
    m.block_output(l, {in.sample(i), static_cast<size_t>(b * in.T * in.C)}, b, in.T, out.sample(i));
  }
}

float mse(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += static_cast<double>(a[i] - b[i]) * (a[i] - b[i]);
  return static_cast<float>(sum / static_cast<double>(a.size()));
}

bool in_block(const TrainTensor& t, int64_t l) {
  const std::string prefix = "model.layers." + std::to_string(l) + ".";
  return (t.rows > 1 && t.name.starts_with(prefix)) || t.name.starts_with("scale." + prefix) || t.name.starts_with("zero." + prefix);
}

// Block-AP: block by block, weights + scales (+ zero points) to the float block's output.
void block_ap(TrainModel& m, std::span<const int32_t> tokens, FakeQuantOptions fq, const QatOptions& o, QatReport& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const BlockApOptions& b = o.block_ap;
  BlockStream fp = embedded_windows(m, tokens, o), q = fp, target, next;
  const int64_t L = m.config().n_layers, per_epoch = (fp.n + b.batch - 1) / b.batch, steps = per_epoch * b.epochs;
  std::mt19937_64 rng(b.seed + 1);
  std::vector<int64_t> order(static_cast<size_t>(fp.n));
  std::vector<float> xb, yb;
  for (int64_t l = 0; l < L; ++l) {
    run_block(m, l, fp, b.batch, target);  // the float block on the float stream
    fq.layer = l;
    m.add_fake_quant(fq);
    m.set_trainable([&](const TrainTensor& t) { return in_block(t, l) && (fq.train_zero || !t.name.starts_with("zero.")); });
    for (TrainTensor& t : m.params()) t.lr_mult = t.name.starts_with("scale.") || t.name.starts_with("zero.") ? b.scale_lr / b.weight_lr : 1.0f;
    run_block(m, l, q, b.batch, next);
    r.block_mse_rtn.push_back(mse(next.x, target.x));
    TrainOptions schedule;
    schedule.steps = steps;
    schedule.warmup = 0;
    schedule.min_lr_ratio = 0.05f;
    schedule.adamw = {.lr = b.weight_lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    AdamW opt(schedule.adamw);
    int64_t step = 0;
    for (int64_t epoch = 0; epoch < b.epochs; ++epoch) {
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      for (int64_t i = 0; i < fp.n; i += b.batch, ++step) {
        const int64_t n = std::min(b.batch, fp.n - i), w = fp.T * fp.C;
        xb.resize(static_cast<size_t>(n * w));
        yb.resize(xb.size());
        for (int64_t k = 0; k < n; ++k) {
          std::copy_n(q.sample(order[i + k]), w, xb.data() + k * w);
          std::copy_n(target.sample(order[i + k]), w, yb.data() + k * w);
        }
        m.zero_grad();
        const float loss = m.block_mse(l, xb, yb, n, fp.T);
        if (!std::isfinite(loss)) {
          throw Error("Block-AP loss is not finite in block " + std::to_string(l) + " at step " + std::to_string(step + 1), {.file = o.train.source});
        }
        AdamWOptions a = schedule.adamw;
        a.lr = scheduled_lr(schedule, step);
        opt.set_options(a);
        opt.step(m.params());
        if (o.progress) o.progress("block " + std::to_string(l + 1) + "/" + std::to_string(L), step + 1, steps, loss);
      }
    }
    run_block(m, l, q, b.batch, next);
    r.block_mse_trained.push_back(mse(next.x, target.x));
    std::swap(q, next);  // the quantized stream through the trained block
    std::swap(fp, target);
    m.set_trainable([](const TrainTensor&) { return false; });
  }
  for (TrainTensor& t : m.params()) t.lr_mult = 1.0f;
  r.block_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TrainReport end_to_end(TrainModel& m, std::span<const int32_t> tokens, const QatOptions& o) {
  TrainOptions t = o.train;
  if (o.progress) t.progress = [&](int64_t done, int64_t total, float loss, float) { o.progress("end to end", done, total, loss); };
  return train_steps(m, tokens, t);
}

QatReport efficientqat(TrainModel& m, std::span<const int32_t> tokens, const QatOptions& o) {
  FakeQuantOptions fq = fake_quant_for(*o.format);
  if (fq.format != nullptr) {
    throw Error("efficientqat trains an affine grid's scales: give an intN format (int2_g64_asym, ...), or train this one with --method ste",
                {.value = std::string(o.format->name)});
  }
  fq.train_zero = !fq.sym;
  QatReport r;
  block_ap(m, tokens, fq, o, r);
  m.freeze_codes();  // E2E-QP: integer codes fixed, the scales train
  m.set_trainable([](const TrainTensor& t) { return t.name.starts_with("scale."); });
  r.train = end_to_end(m, tokens, o);
  return r;
}

QatReport ste(TrainModel& m, std::span<const int32_t> tokens, const QatOptions& o) {
  m.add_fake_quant(fake_quant_for(*o.format));
  m.set_trainable([](const TrainTensor& t) { return !t.name.starts_with("zero."); });
  QatReport r;
  r.train = end_to_end(m, tokens, o);
  return r;
}

}  // namespace

const std::vector<QatMethod>& qat_methods() {
  static const std::vector<QatMethod> table{
      {"efficientqat", "EfficientQAT: Block-AP (each block's weights, scales and zeros to its float output), then E2E-QP (scales only, end to end)",
       efficientqat},
      {"ste", "end-to-end QAT: every parameter and the scales through straight-through rounding, on the next-token loss", ste},
  };
  return table;
}

const QatMethod& qat_method_by_name(const std::string& name) {
  std::string known;
  for (const QatMethod& m : qat_methods()) {
    if (name == m.name) return m;
    known += (known.empty() ? "" : ", ") + std::string(m.name);
  }
  throw Error("unknown QAT method (" + known + ")", {.value = name});
}

QatReport quantization_aware_training(TrainModel& model, std::span<const int32_t> tokens, const QatOptions& o) {
  if (o.format == nullptr) throw Error("QAT needs a format");
  return qat_method_by_name(o.method).run(model, tokens, o);
}

}  // namespace lowbit
