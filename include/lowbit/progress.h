// A progress line on stderr for long work: done/total, rate and ETA, redrawn in place on a
// terminal and printed at most once a second otherwise (logs stay short).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit {

class Progress {
 public:
  Progress(std::string what, int64_t total, std::string unit);
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  std::string what_, unit_;
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
  int64_t first_done_ = -1;  // at the first update: the rate counts what was done after it
  int64_t last_done_ = -1;   // at the last line printed
};

}  // namespace lowbit
