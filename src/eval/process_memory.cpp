// ResidentMemory from /proc (process_memory.h).
#include "eval/process_memory.h"

#include <fstream>
#include <string>

namespace lowbit {

ResidentMemory resident_memory() {
  ResidentMemory m;
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    auto kib = [&](const char* key, uint64_t& out) {
      if (line.rfind(key, 0) == 0) out = std::stoull(line.substr(std::string(key).size())) * 1024;
    };
    kib("VmRSS:", m.now);
    kib("VmHWM:", m.peak);
  }
  return m;
}

bool reset_peak_resident_memory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace lowbit
