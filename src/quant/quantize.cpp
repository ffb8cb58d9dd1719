// The streaming quantize pipeline (quantize.h).
#include "lowbit/quantize.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>

#include "eval/process_memory.h"
#include "io/gguf_llama.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "io/hf_names.h"
#include "model/tokenizer_json_writer.h"
#include "lowbit/atomic_file.h"
#include "lowbit/safetensors.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/imatrix.h"
#include "lowbit/output_guard.h"
#include "lowbit/weight_check.h"
#include "lowbit/mapped_file.h"
#include "lowbit/model_io.h"
#include "quant/encode_weight.h"
#include "lowbit/cluster.h"
#include "quant/calib/block_pipeline.h"
#include "quant/mix/mix_output.h"
#include "quant/resume/quantize_journal.h"

namespace lowbit {
namespace {

// The largest code of a scheme's activation format: a static scale maps the calibration
// max |x| onto it.
float act_range(const ActivationScheme& a) {
  static const std::pair<std::string_view, float> kRanges[] = {{"int8", 127.0f}, {"fp8_e4m3", 448.0f}, {"fp8_e5m2", 57344.0f}};
  for (const auto& [act, range] : kRanges) {
    if (a.act == act) return range;
  }
  throw Error("no static scales for " + a.act + " activations (int8, fp8_e4m3, fp8_e5m2 have them)");
}

int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoll(name.substr(4, name.find('.', 4) - 4));
}

// llama_ftype of a recipe (llama.cpp's enum), for general.file_type.
int32_t file_type_of_recipe(const Recipe& recipe, const Format* dominant) {
  return recipe.file_type >= 0 ? recipe.file_type : llama_file_type(*dominant);
}

struct Planned {
  const Weight* weight;
  const Format* format;
  int64_t layer;
  MethodConfig method;
};

// Where a sink continues a killed run's temporary output (--resume): after `planned`
// planned tensors, which end at byte `bytes` of the data file.
struct SinkResume {
  std::string temp, data_path;
  size_t planned = 0;
  uint64_t bytes = 0;
};

// Where quantized tensors go: a GGUF file, or a Hugging Face-style folder.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  // input_scale: a block linear's static activation scale (0: none).
  virtual void write_next(std::span<const uint8_t> bytes, float input_scale) = 0;
  virtual void commit() = 0;
  // For the journal: the data file's size, the XXH3 of its bytes since the last call, the
  // temporary output and the data file's name within it ("." for the temporary itself).
  virtual uint64_t position() const = 0;
  virtual uint64_t take_region_digest() = 0;
  virtual std::string temp() const = 0;
  virtual std::string data_name() const = 0;
};

class GgufSink : public TensorSink {
 public:
  GgufSink(const std::string& path, const Model& model, const std::vector<Planned>& plan, int32_t file_type,
           const std::string& name, const SinkResume* resume)
      : extras_(gguf_extra_tensors(model)),
        partial_(resume ? PartialOutput{resume->data_path, extras_.size() + resume->planned, resume->bytes} : PartialOutput{}),
        writer_(path, llama_gguf_metadata(model, name, file_type), infos(extras_, plan), 32, resume ? &partial_ : nullptr) {
    if (resume == nullptr) {
      for (const GgufExtraTensor& e : extras_) writer_.write_next(e.bytes);
    }
  }
  void write_next(std::span<const uint8_t> bytes, float) override { writer_.write_next(bytes); }
  void commit() override { writer_.commit(); }
  uint64_t position() const override { return writer_.position(); }
  uint64_t take_region_digest() override { return writer_.take_region_digest(); }
  std::string temp() const override { return writer_.temp_path(); }
  std::string data_name() const override { return "."; }

 private:
  static std::vector<GgufTensorInfo> infos(const std::vector<GgufExtraTensor>& extras, const std::vector<Planned>& plan) {
    std::vector<GgufTensorInfo> out;
    for (const auto& e : extras) out.push_back(e.info);
    for (const auto& p : plan) out.push_back({p.weight->name, gguf_dims(*p.weight), p.format->gguf_type});
    return out;
  }
  std::vector<GgufExtraTensor> extras_;
  PartialOutput partial_;
  GgufStreamWriter writer_;
};

// A folder transformers-style tools recognise: config.json, model.safetensors (HF names,
// rotate-half q/k) and the tokenizer. f32/f16/bf16 tensors are stored natively; other
// formats as their exact bytes (U8) with "lowbit.format.NAME" and "lowbit.shape.NAME" in
// the metadata. Built in a temporary folder renamed into place at commit.
class FolderSink : public TensorSink {
 public:
  FolderSink(const std::string& out, const Model& model, const std::vector<Planned>& plan, const std::string& recipe,
             const std::string& export_layout, const ActivationScheme& acts, const SinkResume* resume)
      : out_(out), model_(model), recipe_(recipe), acts_(acts), variant_(export_layout) {
    hf_config_json(model.config);  // refuses what config.json cannot describe before any tensor is written
    if (!export_layout.empty()) layout_ = &checkpoint_layout_for_export(export_layout);
    const bool bnb8 = layout_ != nullptr && variant_ == "bnb" && (acts.act == "llm_int8" || acts.act == "int8") && !acts.per_tensor;
    if (acts.act != "none" && layout_ != nullptr && !bnb8) {
      if (std::string(layout_->name) != "compressed-tensors") {
        throw Error("--export " + variant_ + " does not record these activations (write compressed-tensors, lowbit's own folder, or bnb "
                    "for llm_int8)", {.value = acts.act});
      }
      compressed_tensors_input_activations(acts);  // refuses what compressed-tensors cannot record
      if (acts.act == "int8") variant_ = "compressed-tensors-naive";  // W8A8: int8 weights as they are (int-quantized)
    }
    namespace fs = std::filesystem;
    if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out))) {
      throw Error("output folder exists and is not empty (lowbit does not overwrite folders)", {.file = out});
    }
    if (resume != nullptr) {
      temp_ = resume->temp;
    } else {
      remove_stale_temporaries(out);
      std::string templ = temporary_template(fs::path(out).lexically_normal().string());
      std::vector<char> buf(templ.begin(), templ.end());
      buf.push_back('\0');
      if (::mkdtemp(buf.data()) == nullptr) throw Error(std::string("cannot create a temporary folder: ") + std::strerror(errno), {.file = out});
      temp_ = buf.data();
    }
    std::vector<SafetensorsTensorInfo> infos;
    std::vector<size_t> first_info;  // per planned tensor: its first safetensors tensor
    std::map<std::string, std::string> metadata{{"format", "pt"}};
    for (const auto& p : plan) {
      first_info.push_back(infos.size());
      const std::string name = hf_tensor_name(p.weight->name);
      const std::vector<int64_t> shape = p.weight->rows == 1 ? std::vector<int64_t>{p.weight->cols}
                                                             : std::vector<int64_t>{p.weight->rows, p.weight->cols};
      const std::string_view f = p.format->name;
      const bool exported = layout_ != nullptr && p.layer >= 0 && p.weight->rows > 1;
      exported_.push_back(exported);
      if (exported) {  // a block linear in the foreign layout: its tensors under the linear's prefix
        if (export_format_ != nullptr && export_format_ != p.format) {
          throw Error("--export " + variant_ + " needs one format for every block linear (" + std::string(export_format_->name) + " and " +
                          std::string(f) + " were planned)", {.tensor = p.weight->name});
        }
        export_format_ = p.format;
        const std::string prefix = name.substr(0, name.size() - std::string(".weight").size());
        try {
          for (const ExportTensor& t : layout_->write(variant_, *p.format, {}, p.weight->rows, p.weight->cols)) infos.push_back({prefix + "." + t.suffix, t.dtype, t.shape});
        } catch (const Error& e) {
          throw e.with_tensor(p.weight->name);
        }
        if (acts_.per_tensor) infos.push_back({prefix + ".input_scale", DType::F32, {1}});
        continue;
      }
      if (f == "f32" || f == "f16" || f == "bf16") {
        infos.push_back({name, f == "f32" ? DType::F32 : f == "f16" ? DType::F16 : DType::BF16, shape});
      } else if (layout_ != nullptr) {
        throw Error("with --export " + variant_ + ", tensors outside the block linears stay 16-bit", {.tensor = p.weight->name, .value = std::string(f)});
      } else {
        infos.push_back({name, DType::U8, {static_cast<int64_t>(p.format->tensor_bytes(p.weight->rows, p.weight->cols))}});
        metadata["lowbit.format." + name] = std::string(f);
        metadata["lowbit.shape." + name] = std::to_string(p.weight->rows) + "," + std::to_string(p.weight->cols);
        quantized_ = true;
      }
      if (acts_.per_tensor && p.layer >= 0 && p.weight->rows > 1) infos.push_back({name.substr(0, name.size() - 7) + ".input_scale", DType::F32, {1}});
    }
    first_info.push_back(infos.size());
    if (resume != nullptr) {
      const PartialOutput partial{resume->data_path, first_info.at(resume->planned), resume->bytes};
      writer_ = std::make_unique<SafetensorsStreamWriter>(temp_ + "/model.safetensors", infos, metadata, &partial);
      next_ = resume->planned;
    } else {
      writer_ = std::make_unique<SafetensorsStreamWriter>(temp_ + "/model.safetensors", infos, metadata);
    }
    plan_ = &plan;
    // torch_dtype: the 16-bit type of the matrices when there is one, else float32.
    for (const auto& p : plan) {
      if (p.weight->rows > 1 && p.format->name == std::string_view("bf16")) dtype_ = "bfloat16";
      if (p.weight->rows > 1 && p.format->name == std::string_view("f16")) dtype_ = "float16";
    }
  }
  ~FolderSink() override {
    if (!temp_.empty()) std::filesystem::remove_all(temp_);
  }
  void write_next(std::span<const uint8_t> bytes, float input_scale) override {
    const size_t i = next_++;
    const Planned& p = (*plan_)[i];
    if (!exported_[i]) {
      writer_->write_next(bytes);
    } else {
      for (const ExportTensor& t : layout_->write(variant_, *p.format, bytes, p.weight->rows, p.weight->cols)) writer_->write_next(t.bytes);
    }
    if (acts_.per_tensor && p.layer >= 0 && p.weight->rows > 1) {
      if (!(input_scale > 0) || !std::isfinite(input_scale)) {
        throw Error("no static activation scale was measured (every calibration input was zero)", {.tensor = p.weight->name, .value = std::to_string(input_scale)});
      }
      uint8_t b[4];
      std::memcpy(b, &input_scale, 4);
      writer_->write_next(std::span<const uint8_t>(b, 4));
    }
  }
  uint64_t position() const override { return writer_->position(); }
  uint64_t take_region_digest() override { return writer_->take_region_digest(); }
  std::string temp() const override { return temp_; }
  std::string data_name() const override { return std::filesystem::path(writer_->temp_path()).filename().string(); }
  void commit() override {
    namespace fs = std::filesystem;
    writer_->commit();
    auto config = hf_config_json(model_.config);
    config["torch_dtype"] = dtype_;
    if (quantized_ || (acts_.act != "none" && layout_ == nullptr)) config["quantization_config"] = {{"quant_method", "lowbit"}, {"recipe", recipe_}};
    if (acts_.act != "none" && layout_ == nullptr) config["quantization_config"]["activations"] = lowbit_activation_config(acts_);
    if (export_format_ != nullptr) {
      config["quantization_config"] = layout_->config(variant_, *export_format_);
      if (acts_.act != "none" && variant_ == "bnb") {  // LLM.int8(): the threshold; 0 for plain int8
        config["quantization_config"]["llm_int8_threshold"] = acts_.act == "int8" ? 0.0f : acts_.threshold;
      } else if (acts_.act != "none") {  // W8A8 / FP8: the activations beside the weights
        auto& q = config["quantization_config"];
        q["config_groups"]["group_0"]["input_activations"] = compressed_tensors_input_activations(acts_);
        if (q["format"] == "naive-quantized") q["format"] = "int-quantized";
      }
      // AutoGPTQ reads its own file; transformers and vLLM read config.json.
      if (config["quantization_config"]["quant_method"] == "gptq") write_text(temp_ + "/quantize_config.json", config["quantization_config"].dump(2) + "\n");
    }
    write_text(temp_ + "/config.json", config.dump(2) + "\n");
    const bool hf_source = fs::is_directory(model_.source);
    bool copied = false;
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}) {
      if (hf_source && fs::exists(model_.source + "/" + f)) {
        fs::copy_file(model_.source + "/" + f, temp_ + "/" + f);
        copied = copied || std::string(f).rfind("tokenizer.", 0) == 0;
      }
    }
    if (!copied) {  // no tokenizer files to copy: tokenizer.json (and configs) from the vocabulary
      const GgufVocab vocab = model_.tokenizer->gguf_vocab();
      write_text(temp_ + "/tokenizer.json", tokenizer_json_of(vocab, model_.source).dump() + "\n");
      write_text(temp_ + "/tokenizer_config.json", tokenizer_config_of(vocab).dump(2) + "\n");
      if (!fs::exists(temp_ + "/generation_config.json")) write_text(temp_ + "/generation_config.json", generation_config_of(vocab).dump(2) + "\n");
    }
    if (fs::exists(out_)) fs::remove(out_);  // an empty folder
    fs::rename(temp_, out_);
    temp_.clear();
  }

 private:
  static void write_text(const std::string& path, const std::string& text) {
    AtomicFile f(path);
    f.write(text.data(), text.size());
    f.commit();
  }
  std::string out_, temp_;
  const Model& model_;
  std::string recipe_;
  ActivationScheme acts_;
  bool quantized_ = false;
  std::unique_ptr<SafetensorsStreamWriter> writer_;
  // --export: the layout, its variant name, the one format of the block linears, and
  // which planned tensors it writes.
  const CheckpointLayout* layout_ = nullptr;
  std::string variant_;
  const Format* export_format_ = nullptr;
  std::string dtype_ = "float32";
  std::vector<bool> exported_;
  const std::vector<Planned>* plan_ = nullptr;
  size_t next_ = 0;
};

// What this run's bytes depend on (the journal's fingerprint): the plan and settings, the
// input files, the lowbit build.
RunFingerprint fingerprint_of(const QuantizeOptions& o, const Model& model, const std::vector<Planned>& plan, const std::string& recipe) {
  FingerprintPart options;
  options.add(o.output.ends_with(".gguf") ? "gguf" : "folder").add(recipe).add(o.name).add(o.export_layout).add(o.transform ? "transformed" : "");
  options.add(o.activations.act + " " + std::to_string(o.activations.per_tensor) + " " + std::to_string(o.activations.threshold));
  options.add(std::to_string(o.calib_options.samples) + " " + std::to_string(o.calib_options.length) + " " + std::to_string(o.calib_options.seed));
  for (const Planned& p : plan) {
    options.add(p.weight->name).add(std::string(p.format->name)).add(p.method.name);
    for (const auto& [k, v] : p.method.options) options.add(k + "=" + v);
  }
  FingerprintPart inputs;
  for (const std::string& f : model.files) inputs.add_file(f);
  for (const std::string* f : {&o.calib, &o.imatrix, &o.tokenizer, &o.sensitivity}) inputs.add_file(*f);
  if (std::filesystem::is_regular_file(o.recipe)) inputs.add_file(o.recipe);
  return {options.value(), inputs.value(), running_build_fingerprint()};
}

// Where a --resume continues: the partial run checked, and how much of it is kept.
struct ResumePlan {
  SinkResume sink;
  std::vector<JournalRegion> kept;  // the header's region, then one per kept tensor
  int64_t block = -1;               // the calibrated pass continues at this block
};

// Checks a killed run's partial output against this run and picks where to continue:
// after the tensors whose bytes still hash as journaled, at a block whose inputs were
// saved (else the calibrated pass starts again at block 0). nullopt: start afresh.
std::optional<ResumePlan> plan_resume(PartialRun& partial, const RunFingerprint& fingerprint, const std::vector<Planned>& plan,
                                      LayerwiseQuantizer* layerwise, std::string& note) {
  std::vector<std::string> changed;
  if (partial.fingerprint.options != fingerprint.options) changed.push_back("options (recipe, method, formats or settings)");
  if (partial.fingerprint.inputs != fingerprint.inputs) changed.push_back("input files");
  if (partial.fingerprint.build != fingerprint.build) changed.push_back("lowbit build");
  if (!changed.empty()) {
    std::string what;
    for (const auto& c : changed) what += (what.empty() ? "" : ", ") + c;
    throw Error("--resume: the partial output was made with other " + what + "; rerun without --resume to start again (it is then removed)",
                {.file = partial.temp});
  }
  claim_and_verify(partial);
  const size_t journaled = partial.journaled.empty() ? 0 : partial.journaled.size() - 1;
  if (partial.verified.empty()) {
    discard_partial_run(partial);
    note = "--resume: the partial output's header did not match its journal; started from the beginning";
    return std::nullopt;
  }
  size_t k = std::min(partial.verified.size() - 1, plan.size());
  int64_t block = -1;
  if (layerwise != nullptr) {
    size_t first_layered = plan.size();
    for (size_t i = 0; i < plan.size() && first_layered == plan.size(); ++i) {
      if (plan[i].layer >= 0) first_layered = i;
    }
    for (size_t i = k; i < plan.size() && block < 0; ++i) block = plan[i].layer;
    if (block == 0) block = -1;  // the pass starts at its beginning anyway
    if (block > 0) {
      auto snapshot = load_activation_snapshot(partial.temp, fingerprint);
      if (snapshot && snapshot->block == block) {
        layerwise->resume_at(block, std::move(snapshot->x));
      } else {
        k = std::min(k, first_layered);
        block = -1;
      }
    }
  }
  note = "--resume: " + std::to_string(k) + " of " + std::to_string(plan.size()) + " tensors kept from " + partial.temp + " (" +
         std::to_string(journaled) + " journaled, " + std::to_string(partial.verified.size() - 1) + " checked by XXH3)" +
         (block > 0 ? ", calibrated pass continued at block " + std::to_string(block) : "");
  return ResumePlan{{partial.temp, partial.data_path, k, partial.verified[k].end},
                    std::vector<JournalRegion>(partial.verified.begin(), partial.verified.begin() + static_cast<long>(k) + 1), block};
}

}  // namespace

QuantizeReport quantize_model(const QuantizeOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool to_gguf = o.output.ends_with(".gguf");
  if (to_gguf && !o.export_layout.empty()) throw Error("--export writes a folder, not a .gguf file", {.file = o.output});
  Model model = load_model(o.input, {.tokenizer_path = o.tokenizer});
  if (o.transform) o.transform(model);
  std::vector<std::string> inputs = model.files;
  inputs.insert(inputs.end(), {o.input, o.imatrix, o.recipe});
  refuse_overwriting_inputs(o.output, inputs);
  require_finite_weights(model);
  QuantizeReport report;
  if (!o.sensitivity.empty() || o.sensitivity_data) report.mix = plan_for_output(model, o, to_gguf);
  const Recipe recipe = report.mix ? report.mix->recipe : o.recipe_data ? *o.recipe_data : load_recipe(o.recipe);
  ImportanceMatrix imatrix;
  if (!o.imatrix.empty()) imatrix = ImportanceMatrix::load(o.imatrix);
  report.recipe = recipe.name;

  // Plan every tensor's format first: the GGUF header needs all sizes up front.
  std::vector<Planned> plan;
  std::map<const Format*, int64_t> params_by_format;
  const ModelTraits traits{.n_layers = model.config.n_layers, .n_heads = model.config.n_heads,
                           .n_kv_heads = model.config.n_kv_heads, .has_imatrix = !o.imatrix.empty()};
  const Format& f32 = format_by_name("f32");
  std::map<std::string, int> no_fit_round;  // format -> tensors a calibrated method cannot reach
  for (const Weight* w : model.weights()) {
    Planned p{w, &f32, layer_of(w->name), {"rtn", {}}};
    if (w->rows > 1) {
      // A tied embedding is also the output matrix: it follows the output's rules (as in
      // llama.cpp, where token_embd then gets output's type).
      const bool tied_embedding = model.config.tied_output && w->name == "token_embd.weight";
      const TensorChoice c = choose_format(recipe, tied_embedding ? "output.weight" : w->name, p.layer,
                                           traits, w->cols);
      p.format = c.format ? c.format : w->format;
      // --export: token_embd and output stay 16-bit (GPTQ/AWQ/bnb/compressed-tensors keep them so).
      if (!o.export_layout.empty() && p.layer < 0 && p.format->kind != FormatKind::kFloat) {
        p.format = w->format->kind == FormatKind::kFloat && w->format->name != std::string_view("f32") ? w->format : &format_by_name("f16");
      }
      if (to_gguf && p.format->gguf_type == kNotGguf) {
        throw Error("format has no GGUF type (write a safetensors folder instead)", {.tensor = w->name, .value = std::string(p.format->name)});
      }
      if (c.fell_back) report.fallbacks.push_back(w->name + ": " + c.reason);
      params_by_format[p.format] += w->numel();
      // Calibrated methods work on the block linears; token_embd and output are rounded.
      if (p.layer >= 0) {
        p.method = o.method;
        if (!c.method.empty()) p.method = {c.method, c.options};
        else if (!c.options.empty()) p.method.options = c.options;
        check_method_config(p.method);
        const Method& row = method_by_name(p.method.name);
        if (row.needs_calibration && row.needs_fit_round && p.format->fit_round == nullptr && p.format->kind != FormatKind::kFloat) {
          ++no_fit_round[std::string(p.format->name)];
          p.method = {"rtn", {}};
        }
        // Float targets: nothing to round with error feedback; a method that only rescales
        // the float block (SmoothQuant) still runs and writes the rescaled weights.
        if (p.format->kind == FormatKind::kFloat && row.needs_fit_round) p.method = {"rtn", {}};
      }
    }
    plan.push_back(p);
  }
  for (const auto& [format, n] : no_fit_round) {
    warn(o.method.name + " cannot round into " + format + " (the format has no fit/round steps): " + std::to_string(n) +
         " tensors rounded to nearest");
  }
  bool calibrated = o.activations.per_tensor;  // static activation scales come from the calibration pass
  for (const Planned& p : plan) calibrated = calibrated || method_by_name(p.method.name).needs_calibration;
  if (o.activations.act != "none" && to_gguf) {
    throw Error("GGUF has no place for quantized activations (" + o.activations.act + "): write a safetensors folder", {.file = o.output});
  }
  act_quant_options(o.activations);  // refuses an unknown scheme before any work
  check_method_config(o.method);
  std::unique_ptr<LayerwiseQuantizer> layerwise;
  std::map<std::string, const Planned*> plan_by_name;
  for (const Planned& p : plan) plan_by_name[p.weight->name] = &p;
  if (calibrated) {
    if (o.calib.empty()) {
      throw Error(o.activations.per_tensor && !method_by_name(o.method.name).needs_calibration
                      ? "static per-tensor activation scales need calibration text: give --calib FILE"
                      : "method " + o.method.name + " needs calibration text: give --calib FILE");
    }
    CalibrationSet calib = load_calibration(model, o.calib, o.calib_options);
    auto target = [&](const Weight& w, int64_t) {
      const Planned& p = *plan_by_name.at(w.name);
      LinearTarget t{p.format, p.method, {}};
      if (p.format->uses_importance && !o.imatrix.empty()) t.importance = imatrix.weights_for(w.name, w.cols);
      return t;
    };
    layerwise = std::make_unique<LayerwiseQuantizer>(model, std::move(calib), target, o.calib_progress);
    layerwise->record_input_absmax(o.activations.per_tensor);
  } else if (!o.calib.empty() && !(report.mix && o.mix_branch.matrices > 0)) {  // (the branching measured on it)
    warn("calibration text given but no calibrated method is used (--method gptq): ignored", {.file = o.calib});
  }
  // Under mpirun the calibrated pass runs across the ranks (block_pipeline.h); rank 0 writes.
  Cluster& ranks = cluster();
  std::unique_ptr<BlockPipeline> pipeline;
  if (layerwise && ranks.size() > 1) pipeline = std::make_unique<BlockPipeline>(*layerwise, model.config.n_layers, ranks);
  if (!ranks.is_root()) {
    if (pipeline) pipeline->serve();
    return report;  // the other ranks write nothing (an uncalibrated run is rank 0's alone)
  }
  if (o.resume && ranks.size() > 1) throw Error("--resume runs in one process (not under mpirun)", {.file = o.output});
  if (o.resume && o.transform) throw Error("--resume is not available for a transformed model", {.file = o.output});
  const RunFingerprint fingerprint = fingerprint_of(o, model, plan, recipe.name);
  std::optional<ResumePlan> resume;
  if (std::optional<PartialRun> partial = find_partial_run(o.output); partial && o.resume) {
    resume = plan_resume(*partial, fingerprint, plan, layerwise.get(), report.resume_note);
  } else if (partial) {  // the sink's clean-up removes it
    warn("removing the partial output of a killed run (" + std::to_string(partial->journaled.empty() ? 0 : partial->journaled.size() - 1) +
         " of " + std::to_string(plan.size()) + " tensors written): --resume would continue it", {.file = partial->temp});
  } else if (o.resume) {
    report.resume_note = "--resume: no partial output of " + o.output + " to continue; started from the beginning";
  }
  if (resume) {
    report.resumed_tensors = static_cast<int64_t>(resume->sink.planned);
    report.resumed_block = resume->block;
  }
  std::map<std::string, QuantizedTensor> block;  // the calibrated block being written
  const Format* dominant = params_by_format.empty() ? &f32
      : std::max_element(params_by_format.begin(), params_by_format.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  std::unique_ptr<TensorSink> out;
  if (to_gguf) {
    out = std::make_unique<GgufSink>(o.output, model, plan, file_type_of_recipe(recipe, dominant), o.name, resume ? &resume->sink : nullptr);
  } else {
    out = std::make_unique<FolderSink>(o.output, model, plan, recipe.name, o.export_layout, o.activations, resume ? &resume->sink : nullptr);
  }
  // The journal --resume reads: the header's region, then one per tensor as it is written.
  std::unique_ptr<QuantizeJournal> journal;
  if (resume) {
    journal = std::make_unique<QuantizeJournal>(out->temp(), out->data_name(), fingerprint, resume->kept);
  } else {
    journal = std::make_unique<QuantizeJournal>(out->temp(), out->data_name(), fingerprint);
    journal->record({out->position(), out->take_region_digest()});
  }
  // q/k rows: GGUF wants its architecture's order (adjacent pairs for llama, rotate-half
  // for the NeoX-RoPE ones), a Hugging Face folder rotate-half.
  const RopeStyle target_style = to_gguf ? gguf_rope_style(model.config) : RopeStyle::kRotateHalf;

  uint64_t f32_bytes_done = 0;
  // Tensor i is written while tensor i + 1 is encoded (declared after `out`, so a pending
  // write finishes before the sink goes).
  std::vector<uint8_t> writing_bytes;
  std::future<void> writing;
  const size_t first = resume ? resume->sink.planned : 0;
  int64_t current_block = -1;  // the calibrated block `block` holds
  // The block whose inputs TEMP.acts holds: a resumed pass's first block's are there already.
  int64_t snapshot_block = resume ? resume->block : -1;
  for (size_t i = 0; i < first; ++i) {  // kept from the partial output: counted, not redone
    const Weight& w = *plan[i].weight;
    const uint64_t bytes = plan[i].format->tensor_bytes(w.rows, w.cols);
    auto& total = report.formats[std::string(plan[i].format->name)];
    total.tensors += 1;
    total.parameters += w.numel();
    total.bytes += bytes;
    report.parameters += w.numel();
    report.bytes += bytes;
    f32_bytes_done += static_cast<uint64_t>(w.numel()) * 4;
  }
  for (size_t i = first; i < plan.size(); ++i) {
    const Planned& p = plan[i];
    const Weight& w = *p.weight;
    if (o.progress) o.progress(static_cast<int64_t>(i), static_cast<int64_t>(plan.size()), f32_bytes_done, w.name);
    std::vector<uint8_t> bytes;
    float input_scale = 0;
    const auto order = qk_reorder(model.config, w, target_style);
    if (layerwise && p.layer >= 0) {
      if (p.layer != current_block) {
        if (pipeline) {
          block = pipeline->block(p.layer);
        } else {
          if (layerwise->blocks_done() > 0 && layerwise->blocks_done() != snapshot_block) {
            // this block's inputs, once every earlier tensor is journaled
            if (writing.valid()) writing.get();
            snapshot_block = layerwise->blocks_done();
            save_activation_snapshot(out->temp(), fingerprint, snapshot_block, layerwise->inputs());
          }
          block = layerwise->next_block();
        }
        current_block = p.layer;
      }
      QuantizedTensor& t = block.at(w.name);
      bytes = std::move(t.bytes);
      if (o.activations.per_tensor) input_scale = t.input_absmax / act_range(o.activations);
      if (!order.empty()) bytes = reordered_bytes(bytes, order);  // row-local rows, or a bias's f32 elements
    } else if (p.format == w.format && order.empty()) {
      bytes.assign(w.data.begin(), w.data.end());  // already in the target format
    } else if (p.format == w.format && w.format->row_local) {
      bytes = reordered_bytes(w.data, order);  // already in the target format, q/k rows reordered
    } else if (w.rows == 1) {  // norms and biases: f32, a q/k bias with its elements reordered
      bytes = quantize_tensor(*p.format, w.to_f32(), 1, w.cols);
      if (!order.empty()) bytes = reordered_bytes(bytes, order);
    } else {
      std::vector<float> importance;
      if (p.format->uses_importance && !o.imatrix.empty()) {
        importance = imatrix.weights_for(w.name, w.cols);
        if (importance.empty()) report.imatrix_missing.push_back(w.name);
      }
      try {
        bytes = encode_weight(w, *p.format, order, importance.empty() ? nullptr : importance.data());
      } catch (const Error& e) {
        throw e.with_tensor(w.name).with_file(o.input);
      }
    }
    if (!w.owned) release_pages(w.data);
    f32_bytes_done += static_cast<uint64_t>(w.numel()) * 4;
    auto& total = report.formats[std::string(p.format->name)];
    total.tensors += 1;
    total.parameters += w.numel();
    total.bytes += bytes.size();
    report.parameters += w.numel();
    report.bytes += bytes.size();
    if (writing.valid()) writing.get();  // rethrows a failed write
    writing_bytes = std::move(bytes);
    writing = std::async(std::launch::async, [&, input_scale] {
      out->write_next(writing_bytes, input_scale);
      journal->record({out->position(), out->take_region_digest()});
    });
  }
  if (writing.valid()) writing.get();
  out->commit();
  journal->remove();
  if (o.progress) o.progress(static_cast<int64_t>(plan.size()), static_cast<int64_t>(plan.size()), f32_bytes_done, "");
  if (to_gguf) {
    report.file_bytes = std::filesystem::file_size(o.output);
    if (o.mix_target.file_bytes > 0 && report.file_bytes > o.mix_target.file_bytes) {  // the plan counts every byte: never
      std::filesystem::remove(o.output);
      throw Error("internal: the written file exceeds --target-size (removed)", {.file = o.output, .value = std::to_string(report.file_bytes)});
    }
  } else {
    for (const auto& e : std::filesystem::directory_iterator(o.output)) report.file_bytes += e.file_size();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.peak_rss_bytes = resident_memory().peak;
  return report;
}

}  // namespace lowbit
