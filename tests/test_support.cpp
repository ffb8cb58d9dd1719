// Test helpers: shared-data lookup, deterministic random rows, error metrics, temp dirs.
#include "test_support.h"

#include "lowbit/atomic_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

namespace lowbit::test {

std::string shared_path(const std::string& relative) {
  const std::string path = std::string(LOWBIT_SHARED_DIR) + "/" + relative;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "shared test data missing: " << path
                  << " (the ../shared folder must sit beside the checkout)";
  }
  return path;
}

std::vector<float> gaussian(size_t n, uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> student_t3(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<float> dist(3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * dist(rng);
  return v;
}

double relative_rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double se = 0, sa = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    se += d * d;
    sa += static_cast<double>(a[i]) * a[i];
  }
  if (sa == 0) return se == 0 ? 0 : INFINITY;
  return std::sqrt(se / sa);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ADD_FAILURE() << "cannot read " << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::map<std::string, std::string> output_files(const std::string& path) {
  auto digest = [](const std::string& file) {
    const std::string bytes = test::read_file(file);
    return std::to_string(bytes.size()) + " bytes, xxh3 " +
           std::to_string(content_digest({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
  };
  std::map<std::string, std::string> out;
  if (std::filesystem::is_regular_file(path)) {
    out["."] = digest(path);
  } else {
    for (const auto& e : std::filesystem::directory_iterator(path)) out[e.path().filename().string()] = digest(e.path().string());
  }
  return out;
}

std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto dir = std::filesystem::temp_directory_path() /
             (std::string("lowbit-") + info->test_suite_name() + "-" + info->name() + "-" +
              std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string death_test_dir() {
  const bool child = !GTEST_FLAG_GET(internal_run_death_test).empty();
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("lowbit-") + info->test_suite_name() + "-" + info->name() + "-" +
                     std::to_string(child ? ::getppid() : ::getpid());
  for (char& ch : name) ch = ch == '/' ? '_' : ch;
  const auto dir = std::filesystem::temp_directory_path() / name;
  if (!child) std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().filename().string());
  }
  return out;
}

PerplexityOptions kld_against(const Model& base, std::span<const int32_t> tokens, int64_t n_ctx, const std::string& dir) {
  PerplexityOptions p;
  p.n_ctx = n_ctx;
  p.save_logits_path = dir + "/base.logits";
  compute_perplexity(base, tokens, p);
  p.save_logits_path.clear();
  p.kld_base_path = dir + "/base.logits";
  return p;
}

}  // namespace lowbit::test
