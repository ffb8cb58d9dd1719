// Progress line on stderr (progress.h).
#include "lowbit/progress.h"

#include <unistd.h>

#include <cstdio>

#include "lowbit/cluster.h"

namespace lowbit {

Progress::Progress(std::string what, int64_t total, std::string unit)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), tty_(isatty(2) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(int64_t done, const std::string& extra) {
  if (!cluster().is_root()) return;  // under mpirun, rank 0 speaks for the run
  const auto now = std::chrono::steady_clock::now();
  if (first_done_ < 0) {  // work resumed, or created late: the rate starts here
    first_done_ = done;
    start_ = now;
  }
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (done < total_ && printed_ && since_last < (tty_ ? 0.2 : 1.0)) return;
  last_ = now;
  printed_ = true;
  last_done_ = done;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done - first_done_) / elapsed : 0;
  std::string speed;
  if (rate > 0) {
    char b[96];
    std::snprintf(b, sizeof(b), ", %.1f %s/s, ETA %.0fs", rate, unit_.c_str(), static_cast<double>(total_ - done) / rate);
    speed = b;
  }
  std::fprintf(stderr, "%s%s: %lld/%lld %s%s%s%s%s", tty_ ? "\r" : "", what_.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), unit_.c_str(), speed.c_str(), extra.empty() ? "" : ", ", extra.c_str(),
               tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void Progress::finish(const std::string& extra) {
  if (!cluster().is_root()) return;
  if (last_done_ != total_ || !extra.empty()) update(total_, extra);
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace lowbit
