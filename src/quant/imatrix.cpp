// Importance matrix: collection through the engine's observer, llama.cpp's GGUF imatrix
// format (general.type = "imatrix"; tensors NAME.in_sum2 F32 [cols] and NAME.counts F32 [1])
// and its legacy .dat format (i32 entries; per entry i32 name length, name, i32 ncall,
// i32 nval, f32 mean(x^2) * ncall; then i32 chunks, i32 length + dataset name).
#include "lowbit/imatrix.h"

#include "lowbit/atomic_file.h"
#include "lowbit/cluster.h"

#include <cstring>
#include <cmath>

#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/gguf.h"
#include "lowbit/mapped_file.h"

namespace lowbit {

std::vector<float> ImportanceMatrix::weights_for(const std::string& name, int64_t cols) const {
  const auto it = entries.find(name);
  if (it == entries.end() || it->second.count == 0) return {};
  if (static_cast<int64_t>(it->second.sum2.size()) != cols) {
    throw Error("imatrix entry has " + std::to_string(it->second.sum2.size()) + " columns, the tensor " +
                    std::to_string(cols),
                {.file = source, .tensor = name});
  }
  std::vector<float> w(cols);
  for (int64_t j = 0; j < cols; ++j) w[j] = static_cast<float>(it->second.sum2[j] / it->second.count);
  return w;
}

void ImportanceMatrix::save(const std::string& path) const {
  std::vector<GgufKeyValue> kv{{"general.type", GgufValue::string("imatrix")},
                               {"imatrix.datasets", GgufValue::strings(datasets)},
                               {"imatrix.chunk_count", GgufValue::u32(static_cast<uint32_t>(chunk_count))},
                               {"imatrix.chunk_size", GgufValue::u32(static_cast<uint32_t>(chunk_size))}};
  std::vector<std::vector<float>> storage;
  storage.reserve(2 * entries.size());
  std::vector<GgufTensorToWrite> tensors;
  for (const auto& [name, e] : entries) {
    auto& sums = storage.emplace_back(e.sum2.begin(), e.sum2.end());
    auto& counts = storage.emplace_back(1, static_cast<float>(e.count));
    auto bytes = [](const std::vector<float>& v) {
      return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
    };
    tensors.push_back({name + ".in_sum2", {static_cast<int64_t>(sums.size()), 1}, 0, bytes(sums)});
    tensors.push_back({name + ".counts", {1, 1}, 0, bytes(counts)});
  }
  write_gguf(path, kv, tensors);
}

namespace {

ImportanceMatrix load_gguf_imatrix(const std::string& path) {
  const GgufFile f(path);
  ImportanceMatrix m;
  if (const GgufValue* d = f.find("imatrix.datasets")) {
    if (d->type != GgufType::kArray || d->elem_type != GgufType::kString) {
      throw Error("'imatrix.datasets' is not an array of strings", {.file = path, .value = d->describe()});
    }
    for (const auto& s : d->array) m.datasets.push_back(s.s);
  }
  for (auto [key, field] : {std::pair{"imatrix.chunk_count", &m.chunk_count}, std::pair{"imatrix.chunk_size", &m.chunk_size}}) {
    const GgufValue* c = f.find(key);
    if (c == nullptr) continue;
    if (!c->is_integer() || c->as_int() < 0) {
      throw Error(std::string("'") + key + "' is not a non-negative integer", {.file = path, .value = c->describe()});
    }
    *field = c->as_int();
  }
  auto floats = [&](const GgufTensor& t) {
    if (t.type != 0) throw Error("imatrix tensor is not F32", {.file = path, .tensor = t.name});
    if (t.dims.size() > 2 || (t.dims.size() == 2 && t.dims[1] != 1)) {
      throw Error("imatrix tensor is not a vector", {.file = path, .tensor = t.name});
    }
    std::vector<float> v(t.data.size() / 4);
    std::memcpy(v.data(), t.data.data(), v.size() * 4);
    return v;
  };
  for (const auto& t : f.tensors()) {
    for (const std::string suffix : {".in_sum2", ".counts"}) {
      if (!t.name.ends_with(suffix)) continue;
      auto& e = m.entries[t.name.substr(0, t.name.size() - suffix.size())];
      const auto v = floats(t);
      if (suffix == ".in_sum2") {
        e.sum2.assign(v.begin(), v.end());
      } else {
        if (v.size() != 1) throw Error("imatrix counts of several experts are not supported", {.file = path, .tensor = t.name});
        if (!(v[0] >= 1 && v[0] < 1e15f)) {
          throw Error("imatrix count is not a positive number", {.file = path, .tensor = t.name, .value = std::to_string(v[0])});
        }
        e.count = std::llround(v[0]);
      }
    }
  }
  for (const auto& [name, e] : m.entries) {
    if (e.sum2.empty() || e.count <= 0) throw Error("imatrix entry without sums or counts", {.file = path, .tensor = name});
  }
  if (m.entries.empty()) throw Error("imatrix has no entries", {.file = path});
  return m;
}

ImportanceMatrix load_legacy_imatrix(const std::string& path) {
  const MappedFile file(path);
  const auto b = file.bytes();
  size_t pos = 0;
  auto read_i32 = [&](const char* what) {
    if (b.size() - pos < 4) throw Error(std::string("truncated legacy imatrix: ") + what, {.file = path});
    int32_t v;
    std::memcpy(&v, b.data() + pos, 4);
    pos += 4;
    return v;
  };
  ImportanceMatrix m;
  const int32_t n = read_i32("entry count");
  if (n < 1 || n > 1 << 20) throw Error("legacy imatrix entry count out of range", {.file = path, .value = std::to_string(n)});
  for (int32_t i = 0; i < n; ++i) {
    const int32_t len = read_i32("name length");
    if (len < 0 || static_cast<size_t>(len) > b.size() - pos) throw Error("truncated legacy imatrix: name", {.file = path});
    std::string name(reinterpret_cast<const char*>(b.data() + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    const int32_t ncall = read_i32("ncall");
    const int32_t nval = read_i32("nval");
    if (nval < 1 || static_cast<size_t>(nval) > (b.size() - pos) / 4) {
      throw Error("truncated legacy imatrix: values", {.file = path, .tensor = name, .value = std::to_string(nval)});
    }
    auto& e = m.entries[name];
    e.sum2.resize(nval);
    for (int32_t j = 0; j < nval; ++j) {
      float v;
      std::memcpy(&v, b.data() + pos + 4 * j, 4);
      e.sum2[j] = v;  // mean(x^2) * ncall: a sum over ncall "tokens"
    }
    pos += 4 * static_cast<size_t>(nval);
    if (ncall < 0) throw Error("negative ncall in legacy imatrix", {.file = path, .tensor = name, .value = std::to_string(ncall)});
    e.count = std::max(1, ncall);
  }
  if (b.size() - pos >= 4) m.chunk_count = read_i32("chunk count");
  if (b.size() - pos >= 4) {
    const int32_t len = read_i32("dataset length");
    if (len > 0 && static_cast<size_t>(len) <= b.size() - pos) m.datasets.emplace_back(reinterpret_cast<const char*>(b.data() + pos), len);
  }
  return m;
}

}  // namespace

ImportanceMatrix ImportanceMatrix::load(const std::string& path) {
  const MappedFile probe(path);
  ImportanceMatrix m = probe.bytes().size() >= 4 && std::memcmp(probe.bytes().data(), "GGUF", 4) == 0
                           ? load_gguf_imatrix(path)
                           : load_legacy_imatrix(path);
  for (const auto& [name, e] : m.entries) {
    for (size_t j = 0; j < e.sum2.size(); ++j) {
      if (!std::isfinite(e.sum2[j]) || e.sum2[j] < 0) {
        throw Error("imatrix value at column " + std::to_string(j) + " is not a finite non-negative number",
                    {.file = path, .tensor = name, .value = std::to_string(e.sum2[j])});
      }
    }
  }
  m.source = path;
  return m;
}

ImportanceMatrix collect_imatrix(const Model& model, std::span<const int32_t> tokens, int64_t n_ctx, int64_t max_chunks,
                                 const std::string& dataset, const std::function<void(int64_t, int64_t)>& progress,
                                 const StatsCheckpoint& checkpoint, std::string* resume_note) {
  check_chunk_tokens(model, n_ctx);
  if (max_chunks < 0) throw Error("--chunks must be positive (0: all)", {.value = std::to_string(max_chunks)});
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (max_chunks > 0) n_chunks = std::min(n_chunks, max_chunks);
  if (n_chunks == 0) {
    throw Error("calibration text too short for one chunk of " + std::to_string(n_ctx) + " tokens",
                {.value = std::to_string(tokens.size()) + " tokens"});
  }
  ImportanceMatrix m;
  m.datasets = {dataset};
  m.chunk_size = n_ctx;
  m.chunk_count = n_chunks;
  Engine engine(model, n_ctx);
  // One chunk's sums: one input is shared by q, k and v (and by gate and up): its Σx² is
  // computed once and recorded for each of them, as llama.cpp records it per matrix.
  std::map<std::string, ImportanceMatrix::Entry> part;
  engine.set_observer([&](const ObservedInput& in) {
    std::vector<double> sum2(in.cols, 0.0);
    for (int64_t t = 0; t < in.T; ++t) {
      for (int64_t j = 0; j < in.cols; ++j) sum2[j] += static_cast<double>(in.x[t * in.cols + j]) * in.x[t * in.cols + j];
    }
    for (const Weight* w : in.weights) {
      auto& e = part[w->name];
      if (e.sum2.empty()) e.sum2.assign(in.cols, 0.0);
      for (int64_t j = 0; j < in.cols; ++j) e.sum2[j] += sum2[j];
      e.count += in.T;
    }
  });
  // Chunks are added to the totals one after another in their order, on one process or
  // many (under mpirun, round r runs chunk r·N + k on rank k and rank 0 adds them in
  // order): the sums are the same bits either way.
  auto add_part = [&](StatsReader in) {
    const auto n = in.get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) {
      auto& e = m.entries[in.get_string()];
      const auto count = in.get<int64_t>();
      const std::vector<double> sum2 = in.get_doubles();
      if (e.sum2.empty()) e.sum2.assign(sum2.size(), 0.0);
      for (size_t j = 0; j < sum2.size(); ++j) e.sum2[j] += sum2[j];
      e.count += count;
    }
  };
  auto write_entries = [](const std::map<std::string, ImportanceMatrix::Entry>& entries, StatsWriter& w) {
    w.put<uint64_t>(entries.size());
    for (const auto& [name, e] : entries) {
      w.put_string(name);
      w.put(e.count);
      w.put_doubles(e.sum2);
    }
  };
  // The checkpoint (rank 0's): the sums after `done` chunks, exact. What they depend on:
  // the model's files, the tokens, the chunking and the lowbit build.
  FingerprintPart what;
  for (const std::string& f : model.files) what.add_file(f);
  what.add(std::to_string(content_digest({reinterpret_cast<const uint8_t*>(tokens.data()), tokens.size_bytes()})));
  what.add(std::to_string(n_ctx) + " " + std::to_string(n_chunks) + " " + dataset + " " + std::to_string(running_build_fingerprint()));
  Cluster& ranks = cluster();
  StatsCheckpointer saver(ranks.is_root() ? checkpoint : StatsCheckpoint{}, "imatrix", what.value());
  int64_t first = 0;
  if (auto saved = saver.load()) {
    first = saved->done;
    add_part(std::move(saved->stats));
    if (first > n_chunks) throw Error("--resume: the checkpoint has more chunks than this run", {.file = checkpoint.path});
  }
  std::vector<uint8_t> first_bytes(sizeof(first));
  std::memcpy(first_bytes.data(), &first, sizeof(first));
  ranks.broadcast(first_bytes);
  std::memcpy(&first, first_bytes.data(), sizeof(first));
  if (resume_note != nullptr) *resume_note = saver.note();
  const int32_t bos = model.tokenizer ? model.tokenizer->bos() : -1;
  const int64_t N = ranks.size();
  for (int64_t round = first; round < n_chunks; round += N) {
    const int64_t c = round + ranks.rank();
    part.clear();
    if (c < n_chunks) {
      std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
      if (bos >= 0) chunk[0] = bos;
      engine.forward(chunk, 0, nullptr);
    }
    StatsWriter mine;
    write_entries(part, mine);
    const auto parts = ranks.gather(mine.bytes());
    for (const auto& p : parts) add_part(StatsReader(p, "imatrix chunk"));
    const int64_t done = std::min(round + N, n_chunks);
    if (progress) progress(done, n_chunks);
    if (saver.due() && done < n_chunks) {
      StatsWriter w;
      write_entries(m.entries, w);
      saver.save(done, w);
    }
  }
  saver.finish();
  return m;
}

}  // namespace lowbit
