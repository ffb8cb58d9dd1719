// load_model: picks the reader from what the path is (folder, GGUF magic, llama2.c).
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lowbit/error.h"
#include "lowbit/model_io.h"

namespace lowbit {

Model load_model(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) throw Error("no such file or folder", {.file = path});
  if (fs::is_directory(path)) return load_hf_folder(path);
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, 4);
  if (std::memcmp(magic, "GGUF", 4) == 0) return load_gguf_model(path);
  if (path.ends_with(".safetensors")) return load_hf_folder(fs::path(path).parent_path().string());
  return load_llama2c(path, options.tokenizer_path);
}

}  // namespace lowbit
