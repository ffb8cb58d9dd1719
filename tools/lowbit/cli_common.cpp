// Helpers the subcommands share: opening a model for use, listing a command's inputs, and
// checking that the requested worker threads can exist.
#include <pthread.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "lowbit/error.h"
#include "lowbit/model_io.h"
#include "lowbit/weight_check.h"

namespace lowbit::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lowbit::Error("cannot open text file", {.file = path});
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Model open_model(const std::string& path, const std::string& tokenizer) {
  Model m = load_model(path, {.tokenizer_path = tokenizer});
  require_finite_weights(m);
  return m;
}

std::vector<std::string> inputs_of(const Model& model, std::vector<std::string> others) {
  others.insert(others.end(), model.files.begin(), model.files.end());
  others.push_back(model.source);
  return others;
}

namespace {

constexpr int kMaxThreads = 4096;

struct ThreadGate {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  bool open = false;
};

void* wait_at_gate(void* arg) {
  auto* g = static_cast<ThreadGate*>(arg);
  pthread_mutex_lock(&g->mutex);
  while (!g->open) pthread_cond_wait(&g->cond, &g->mutex);
  pthread_mutex_unlock(&g->mutex);
  return nullptr;
}

}  // namespace

void check_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw lowbit::Error("--threads must be between 1 and " + std::to_string(kMaxThreads), {.value = std::to_string(threads)});
  }
  // Start threads - 1 helpers (the main thread is the first worker), all alive at once as
  // OpenMP's team would be, then release them.
  ThreadGate gate;
  std::vector<pthread_t> started;
  int err = 0;
  for (int i = 1; i < threads && err == 0; ++i) {
    pthread_t t;
    err = pthread_create(&t, nullptr, wait_at_gate, &gate);
    if (err == 0) started.push_back(t);
  }
  pthread_mutex_lock(&gate.mutex);
  gate.open = true;
  pthread_cond_broadcast(&gate.cond);
  pthread_mutex_unlock(&gate.mutex);
  for (pthread_t t : started) pthread_join(t, nullptr);
  if (err != 0) {
    throw lowbit::Error("cannot create " + std::to_string(threads) + " threads (" + std::to_string(started.size() + 1) +
                            " could be started): " + std::strerror(err),
                        {.value = "--threads " + std::to_string(threads)});
  }
}

}  // namespace lowbit::cli
