// train_steps (lowbit/train.h): seeded windows, gradient accumulation, global-norm
// clipping, warmup + cosine schedule, AdamW.
#include <chrono>
#include <cmath>
#include <random>

#include <filesystem>
#include <sstream>

#include "lowbit/error.h"
#include "lowbit/train.h"
#include "train/checkpoint.h"

namespace lowbit {

float scheduled_lr(const TrainOptions& o, int64_t step) {
  const float lr = o.adamw.lr;
  if (step < o.warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup);
  const int64_t decay = std::max<int64_t>(1, o.steps - o.warmup);
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup) / static_cast<double>(decay));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return static_cast<float>(lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosine));
}

TrainReport train_steps(TrainModel& model, std::span<const int32_t> tokens, const TrainOptions& o) {
  const int64_t window = o.seq_len + 1;
  if (o.seq_len < 1 || o.batch < 1 || o.grad_accum < 1 || o.steps < 0) {
    throw Error("training needs positive --seq-len, --batch and --grad-accum", {.file = o.source});
  }
  if (static_cast<int64_t>(tokens.size()) < window) {
    throw Error("the data holds fewer tokens than one training window", {.file = o.source,
                .value = std::to_string(tokens.size()) + " tokens < seq-len + 1 = " + std::to_string(window)});
  }
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int64_t> offset(0, static_cast<int64_t>(tokens.size()) - window);
  AdamWOptions adamw = o.adamw;
  AdamW opt(adamw);
  TrainReport report;
  // What a resumed run must share with the one that wrote the checkpoint.
  const std::string options = "steps " + std::to_string(o.steps) + " batch " + std::to_string(o.batch) + " seq_len " + std::to_string(o.seq_len) +
                              " grad_accum " + std::to_string(o.grad_accum) + " seed " + std::to_string(o.seed) + " tokens " + std::to_string(tokens.size());
  int64_t first = 0;
  if (o.resume && !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint + "/state.safetensors")) {
    const train::CheckpointState s = train::load_checkpoint(o.checkpoint, model, opt, options);
    std::istringstream(s.rng) >> rng;
    first = s.step;
    report.resumed_from = first;
  }
  auto save = [&](int64_t steps_done) {
    std::ostringstream r;
    r << rng;
    train::save_checkpoint(o.checkpoint, model, opt, {steps_done, r.str(), options});
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> batch(static_cast<size_t>(o.batch * window)), inputs;
  std::vector<float> teacher;  // (batch · seq_len, V) when distilling
  if (o.teacher) {
    inputs.resize(static_cast<size_t>(o.batch * o.seq_len));
    teacher.resize(static_cast<size_t>(o.batch * o.seq_len * model.config().vocab_size));
  }
  for (int64_t step = first; step < o.steps; ++step) {
    model.zero_grad();
    double loss = 0;
    for (int64_t a = 0; a < o.grad_accum; ++a) {
      for (int64_t b = 0; b < o.batch; ++b) {
        const int64_t at = offset(rng);
        std::copy_n(tokens.begin() + at, window, batch.begin() + b * window);
        if (o.teacher) std::copy_n(tokens.begin() + at, o.seq_len, inputs.begin() + b * o.seq_len);
      }
      if (o.teacher) o.teacher(inputs, o.batch, o.seq_len, teacher.data());
      loss += model.forward_backward(batch, o.batch, o.seq_len, teacher);
    }
    loss /= static_cast<double>(o.grad_accum);
    if (!std::isfinite(loss)) {
      throw Error("training loss is not finite at step " + std::to_string(step + 1) + " (the parameters are those before it)",
                  {.file = o.source, .value = std::to_string(loss)});
    }
    double norm2 = 0;
    for (TrainTensor& t : model.params()) {
      if (!t.trainable) continue;
      for (float& g : t.grad) {
        g /= static_cast<float>(o.grad_accum);
        norm2 += static_cast<double>(g) * g;
      }
    }
    if (o.clip > 0 && std::sqrt(norm2) > o.clip) {
      const float k = static_cast<float>(o.clip / std::sqrt(norm2));
      for (TrainTensor& t : model.params()) {
        if (t.trainable) for (float& g : t.grad) g *= k;
      }
    }
    const float lr = scheduled_lr(o, step);
    adamw.lr = lr;
    opt.set_options(adamw);
    opt.step(model.params());
    report.losses.push_back(static_cast<float>(loss));
    if (!o.checkpoint.empty() && o.save_every > 0 && ((step + 1) % o.save_every == 0 || step + 1 == o.steps)) save(step + 1);
    if (o.progress) o.progress(step + 1, o.steps, static_cast<float>(loss), lr);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.tokens_per_second = report.seconds > 0 ? static_cast<double>((o.steps - first) * o.grad_accum * o.batch * o.seq_len) / report.seconds : 0;
  return report;
}

}  // namespace lowbit
