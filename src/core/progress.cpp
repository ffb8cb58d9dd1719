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
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (done < total_ && printed_ && since_last < (tty_ ? 0.2 : 1.0)) return;
  last_ = now;
  printed_ = true;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  std::fprintf(stderr, "%s%s: %lld/%lld %s, %.1f %s/s, ETA %.0fs%s%s%s", tty_ ? "\r" : "", what_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(), eta,
               extra.empty() ? "" : ", ", extra.c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void Progress::finish(const std::string& extra) {
  if (!cluster().is_root()) return;
  update(total_, extra);
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace lowbit
