// The C API (include/lowbit/lowbit.h) over the C++ library. Each entry point runs its body
// through `guard`, which turns any exception into LOWBIT_ERROR and a thread-local message.
#include "lowbit/lowbit.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/perplexity.h"
#include "lowbit/quantize.h"
#include "lowbit/sampler.h"
#include "lowbit/threads.h"

struct lowbit_model {
  lowbit::Model model;
};

namespace {

thread_local std::string g_last_error;

template <typename Body>
lowbit_status guard(Body body) {
  try {
    g_last_error.clear();
    body();
    return LOWBIT_OK;
  } catch (const lowbit::Error& e) {
    g_last_error = e.what();
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
  } catch (...) {
    g_last_error = "internal error";
  }
  return LOWBIT_ERROR;
}

void require(const void* p, const char* what) {
  if (p == nullptr) throw lowbit::Error(std::string(what) + " is NULL");
}

}  // namespace

extern "C" {

const char* lowbit_version(void) { return "lowbit 0.1.0"; }

const char* lowbit_last_error(void) { return g_last_error.c_str(); }

lowbit_status lowbit_set_threads(int threads) {
  return guard([&] {
    if (threads < 0) throw lowbit::Error("thread count must be 0 (all cores) or positive", {.value = std::to_string(threads)});
    lowbit::set_thread_count(threads);
  });
}

lowbit_status lowbit_model_load(const char* path, const char* tokenizer, lowbit_model** out) {
  return guard([&] {
    require(path, "path");
    require(out, "out");
    *out = nullptr;
    auto m = std::make_unique<lowbit_model>();
    m->model = lowbit::load_model(path, {.tokenizer_path = tokenizer ? tokenizer : ""});
    *out = m.release();
  });
}

void lowbit_model_free(lowbit_model* model) { delete model; }

int64_t lowbit_model_parameters(const lowbit_model* model) { return model ? model->model.parameter_count() : 0; }
int64_t lowbit_model_vocab_size(const lowbit_model* model) { return model ? model->model.config.vocab_size : 0; }
uint64_t lowbit_model_bytes(const lowbit_model* model) { return model ? model->model.weight_bytes() : 0; }

lowbit_status lowbit_quantize(const char* input, const char* output, const lowbit_quantize_options* options) {
  return guard([&] {
    require(input, "input");
    require(output, "output");
    lowbit::QuantizeOptions o;
    o.input = input;
    o.output = output;
    if (options != nullptr) {
      if (options->recipe) o.recipe = options->recipe;
      if (options->method) o.method.name = options->method;
      if (options->calib) o.calib = options->calib;
      if (options->imatrix) o.imatrix = options->imatrix;
      if (options->export_layout) o.export_layout = options->export_layout;
    }
    lowbit::quantize_model(o);
  });
}

lowbit_status lowbit_perplexity(const lowbit_model* model, const char* text_file, int64_t n_ctx, int64_t max_chunks, double* ppl) {
  return guard([&] {
    require(model, "model");
    require(text_file, "text_file");
    require(ppl, "ppl");
    std::ifstream in(text_file, std::ios::binary);
    if (!in) throw lowbit::Error("cannot read the text file", {.file = text_file});
    std::stringstream text;
    text << in.rdbuf();
    const auto tokens = model->model.tokenizer->encode(text.str(), true);
    lowbit::PerplexityOptions p;
    p.n_ctx = n_ctx;
    p.max_chunks = max_chunks;
    *ppl = lowbit::compute_perplexity(model->model, tokens, p).ppl;
  });
}

lowbit_status lowbit_tokenize(const lowbit_model* model, const char* text, int add_bos, int32_t* ids, size_t capacity, size_t* count) {
  return guard([&] {
    require(model, "model");
    require(text, "text");
    require(count, "count");
    const auto tokens = model->model.tokenizer->encode(text, add_bos != 0);
    *count = tokens.size();
    if (capacity > 0) require(ids, "ids");
    std::copy_n(tokens.begin(), std::min(capacity, tokens.size()), ids);
  });
}

lowbit_status lowbit_generate(const lowbit_model* model, const char* prompt, int32_t n_tokens, float temperature, uint64_t seed, char* out,
                              size_t out_size, size_t* written) {
  return guard([&] {
    require(model, "model");
    require(prompt, "prompt");
    const lowbit::Model& m = model->model;
    std::vector<int32_t> tokens = m.tokenizer->encode(prompt, true);
    if (tokens.empty()) tokens.push_back(m.tokenizer->bos() >= 0 ? m.tokenizer->bos() : 0);
    const int64_t ctx = std::min<int64_t>(m.config.context_length, static_cast<int64_t>(tokens.size()) + std::max(n_tokens, 0));
    if (static_cast<int64_t>(tokens.size()) >= ctx) throw lowbit::Error("prompt fills the model's context", {.value = std::to_string(tokens.size()) + " tokens"});
    lowbit::Engine engine(m, ctx);
    lowbit::Sampler sampler({.temperature = temperature, .top_k = 40, .top_p = 0.95f, .seed = seed});
    std::vector<float> logits(static_cast<size_t>(m.config.vocab_size));
    engine.forward(tokens, 0, logits.data(), false);
    std::string text;
    for (int32_t i = 0; i < n_tokens && static_cast<int64_t>(tokens.size()) < ctx; ++i) {
      const int32_t next = sampler.sample(logits.data(), m.config.vocab_size);
      if (next == m.tokenizer->eos()) break;
      text += m.tokenizer->decode_token(tokens.back(), next);
      tokens.push_back(next);
      if (static_cast<int64_t>(tokens.size()) < ctx) engine.forward(std::span(&tokens.back(), 1), static_cast<int64_t>(tokens.size()) - 1, logits.data(), false);
    }
    if (written) *written = text.size();
    if (out != nullptr && out_size > 0) {
      const size_t n = std::min(out_size - 1, text.size());
      std::memcpy(out, text.data(), n);
      out[n] = '\0';
    }
  });
}

}  // extern "C"
