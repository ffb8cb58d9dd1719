// Helpers shared by the tests: the shared-data path (tests fail, not skip, without it)
// and random rows.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/perplexity.h"

namespace lowbit::test {

// Path under ../shared; fails the calling test (ADD_FAILURE) if the file is missing.
std::string shared_path(const std::string& relative);

std::vector<float> gaussian(size_t n, uint64_t seed, float sigma = 1.0f);
std::vector<float> student_t3(size_t n, uint64_t seed, float scale = 1.0f);

// Relative RMSE: rms(a - b) / rms(a), 0 when a is all zero and b equals it.
double relative_rmse(const std::vector<float>& a, const std::vector<float>& b);

// The bytes of a file, as a string (text is read raw: no newline translation).
std::string read_file(const std::string& path);

// Every file of a .gguf output or folder, by name: its size and XXH3 (a failure then prints
// which file differs, not the bytes).
std::map<std::string, std::string> output_files(const std::string& path);

// A fresh empty directory for the calling test (calling it again empties it: call once).
std::string temp_dir();
// The same for a test with death tests: the child (a re-executed copy of this binary,
// started by the test process) gets the test process's directory, which only the test
// process empties.
std::string death_test_dir();
// The "*.tmp.*" entries of dir (AtomicFile temporaries and their journals), by name.
std::vector<std::string> temporaries_in(const std::string& dir);

// Perplexity options that score against `base`'s logits on `tokens` (chunks of n_ctx),
// saved under dir: compute_perplexity(model, tokens, options).kld is then the KLD.
PerplexityOptions kld_against(const Model& base, std::span<const int32_t> tokens, int64_t n_ctx, const std::string& dir);

}  // namespace lowbit::test
