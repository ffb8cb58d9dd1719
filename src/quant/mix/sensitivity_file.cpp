// sens.json (lowbit/sensitivity.h): the report as JSON, written atomically, and read back
// only for the model it was measured on (its fingerprint).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "lowbit/atomic_file.h"
#include "lowbit/error.h"
#include "lowbit/sensitivity.h"

namespace lowbit {

std::string model_fingerprint(const Model& m) {
  const ModelConfig& c = m.config;
  std::string text = c.architecture + " " + std::to_string(c.n_layers) + " " + std::to_string(c.dim) + " " + std::to_string(c.hidden_dim) + " " +
                     std::to_string(c.n_heads) + " " + std::to_string(c.n_kv_heads) + " " + std::to_string(c.vocab_size);
  std::vector<float> row;
  for (const Weight* w : m.weights()) {
    row.resize(static_cast<size_t>(w->cols));
    w->row_to_f32(0, row.data());
    double sum = 0;
    for (float v : row) sum += v;
    char buf[64];
    std::snprintf(buf, sizeof(buf), ":%.6e", sum);
    text += " " + w->name + ":" + std::to_string(w->rows) + "x" + std::to_string(w->cols) + buf;
  }
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : text) hash = (hash ^ ch) * 1099511628211ull;
  char out[40];
  std::snprintf(out, sizeof(out), "fnv1a64:%016llx", static_cast<unsigned long long>(hash));
  return out;
}

void save_sensitivity(const SensitivityReport& r, const std::string& path) {
  nlohmann::ordered_json j{{"lowbit_sensitivity", 1}, {"model", r.model}, {"fingerprint", r.fingerprint}, {"calib", r.calib}, {"method", r.method},
                           {"samples", r.samples}, {"length", r.length}, {"measured", r.measured}, {"formats", r.formats}};
  nlohmann::ordered_json rc = nlohmann::ordered_json::object();
  for (const auto& [format, rho] : r.rank_correlation) rc[format] = rho;
  j["rank_correlation"] = rc;
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const TensorSensitivity& t : r.tensors) {
    nlohmann::ordered_json choices = nlohmann::ordered_json::array();
    for (const SensitivityChoice& ch : t.choices) choices.push_back({{"format", ch.format}, {"bytes", ch.bytes}, {"proxy", ch.proxy}, {"relative", ch.relative}, {"kld", ch.kld}});
    tensors.push_back({{"name", t.name}, {"layer", t.layer}, {"rows", t.rows}, {"cols", t.cols}, {"choices", choices}});
  }
  j["tensors"] = tensors;
  const std::string text = j.dump(1) + "\n";
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

SensitivityReport load_sensitivity(const std::string& path, const Model& m) {
  const Json root = read_json_file(path);
  const JsonObject j(root, path);
  if (j.get_int("lowbit_sensitivity", 0) != 1) j.fail("lowbit_sensitivity", "is not a lowbit sensitivity file (version 1)");
  SensitivityReport r;
  r.model = j.get_string("model", "");
  r.fingerprint = j.get_string("fingerprint");
  const std::string mine = model_fingerprint(m);
  if (r.fingerprint != mine) {
    throw Error("sensitivities were measured on another model (" + r.model + ", " + r.fingerprint + "), not this one (" + mine + ")",
                {.file = path, .value = m.source});
  }
  r.calib = j.get_string("calib", "");
  r.method = j.get_string("method", "rtn");
  r.samples = j.get_int("samples", 0);
  r.length = j.get_int("length", 0);
  r.measured = j.get_bool("measured", false);
  const Json& formats = j.get_array("formats");
  for (size_t i = 0; i < formats.size(); ++i) r.formats.push_back(j.string_element(formats, "formats", i));
  const Json& tensors = j.get_array("tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const JsonObject t = j.element(tensors, "tensors", i);
    TensorSensitivity ts{t.get_string("name"), t.get_int("layer"), t.get_int("rows", std::nullopt, 1), t.get_int("cols", std::nullopt, 1), {}};
    const Json& choices = t.get_array("choices");
    for (size_t k = 0; k < choices.size(); ++k) {
      const JsonObject ch = t.element(choices, "choices", k);
      ts.choices.push_back({ch.get_string("format"), static_cast<uint64_t>(ch.get_int("bytes", std::nullopt, 0)), ch.get_number("proxy"),
                            ch.get_number("relative", 0.0), ch.get_number("kld", -1.0)});
    }
    r.tensors.push_back(std::move(ts));
  }
  return r;
}

}  // namespace lowbit
