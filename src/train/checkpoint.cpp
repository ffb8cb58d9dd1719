// Training checkpoints (see checkpoint.h).
#include "train/checkpoint.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "lowbit/error.h"
#include "lowbit/safetensors.h"

namespace lowbit::train {

void save_checkpoint(const std::string& dir, TrainModel& model, AdamW& opt, const CheckpointState& state) {
  namespace fs = std::filesystem;
  const std::string temp = dir + ".tmp." + std::to_string(::getpid());
  fs::remove_all(temp);
  fs::create_directories(temp);
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TensorToWrite> tensors;
  auto& params = model.params();
  bytes.reserve(3 * params.size());
  auto add = [&](const std::string& name, const std::vector<float>& v, const TrainTensor& t) {
    bytes.emplace_back(v.size() * 4);
    std::memcpy(bytes.back().data(), v.data(), bytes.back().size());
    tensors.push_back({name, DType::F32, {t.rows, t.cols}, bytes.back()});
  };
  for (size_t k = 0; k < params.size(); ++k) {
    const TrainTensor& t = params[k];
    if (!t.trainable) continue;
    add("value." + t.name, t.value, t);
    std::vector<float>& m = opt.m(k);
    std::vector<float>& v = opt.v(k);
    if (m.empty()) {  // no step taken yet
      m.assign(t.value.size(), 0.0f);
      v.assign(t.value.size(), 0.0f);
    }
    add("m." + t.name, m, t);
    add("v." + t.name, v, t);
  }
  write_safetensors(temp + "/state.safetensors", tensors,
                    {{"step", std::to_string(state.step)}, {"adamw_steps", std::to_string(opt.steps())}, {"rng", state.rng}, {"options", state.options}});
  const std::string old = dir + ".old." + std::to_string(::getpid());
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(temp, dir);
  fs::remove_all(old);
}

CheckpointState load_checkpoint(const std::string& dir, TrainModel& model, AdamW& opt, const std::string& options) {
  const std::string file = dir + "/state.safetensors";
  const SafetensorsFile st(file);
  auto meta = [&](const char* key) {
    const auto it = st.metadata().find(key);
    if (it == st.metadata().end()) throw Error(std::string("checkpoint lacks its '") + key + "'", {.file = file});
    return it->second;
  };
  if (meta("options") != options) {
    throw Error("the checkpoint was made with other training options (" + meta("options") + ")", {.file = file, .value = options});
  }
  CheckpointState s;
  s.step = std::stoll(meta("step"));
  s.rng = meta("rng");
  s.options = options;
  opt.set_steps(std::stoll(meta("adamw_steps")));
  auto& params = model.params();
  for (size_t k = 0; k < params.size(); ++k) {
    TrainTensor& t = params[k];
    if (!t.trainable) continue;
    for (const char* what : {"value.", "m.", "v."}) {
      const TensorView* v = st.find(what + t.name);
      if (v == nullptr || v->dtype != DType::F32 || v->numel() != static_cast<int64_t>(t.value.size())) {
        throw Error("checkpoint tensor missing or of another shape", {.file = file, .tensor = what + t.name});
      }
      std::vector<float>& dst = what[0] == 'v' && what[1] == 'a' ? t.value : (what[0] == 'm' ? opt.m(k) : opt.v(k));
      dst.resize(t.value.size());
      std::memcpy(dst.data(), v->data.data(), dst.size() * 4);
    }
  }
  return s;
}

}  // namespace lowbit::train
