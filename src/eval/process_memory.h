// The process's resident memory, from /proc/self/status (Linux): now and at its peak, and
// a reset of the peak (clear_refs 5), so that one step's peak can be measured.
#pragma once

#include <cstdint>

namespace lowbit {

struct ResidentMemory {
  uint64_t now = 0, peak = 0;  // bytes; 0 where /proc cannot be read
};
ResidentMemory resident_memory();
// Restarts the peak at the current size; false where the kernel does not allow it.
bool reset_peak_resident_memory();

}  // namespace lowbit
