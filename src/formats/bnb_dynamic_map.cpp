// bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8)): for exponent i in 0..6, the 2^i midpoints of
// torch.linspace(0.1, 1, 2^i + 1) times 10^(i-6), both signs, plus 0 and 1, sorted.
// Computed in float32 as torch does it, so every value is bit-identical to the map real
// checkpoints store (weight.nested_quant_map; tests/test_checkpoint_oracles.cpp):
// linspace steps by a float32 step, the first half from the start and the second half back
// from the end (each position's offset rounded once); midpoints and the power-of-ten
// product are float32 operations.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "formats/nf4_fp4_codes.h"

namespace lowbit::formats {

const float* bnb_dynamic_map() {
  static const std::array<float, 256> map = [] {
    std::array<float, 256> m{};
    int k = 0;
    for (int i = 0; i < 7; ++i) {
      const int n = (1 << i) + 1;
      const float start = 0.1f, end = 1.0f, step = (end - start) / static_cast<float>(n - 1);
      std::vector<float> b(static_cast<size_t>(n));
      for (int j = 0; j < n; ++j) {
        b[j] = j < n / 2 ? static_cast<float>(start + static_cast<double>(step) * j)
                         : static_cast<float>(end - static_cast<double>(step) * (n - 1 - j));
      }
      const auto scale = static_cast<float>(std::pow(10.0, i - 6));
      for (int j = 0; j + 1 < n; ++j) {
        const float v = scale * ((b[j] + b[j + 1]) / 2.0f);
        m[k++] = v;
        m[k++] = -v;
      }
    }
    m[k++] = 0.0f;
    m[k++] = 1.0f;
    std::sort(m.begin(), m.end());
    return m;
  }();
  return map.data();
}

int nearest_dynamic_code(const float* map, float v) {
  const float* it = std::lower_bound(map, map + 256, v);
  if (it == map) return 0;
  if (it == map + 256) return 255;
  const int hi = static_cast<int>(it - map);
  return (v - map[hi - 1] <= map[hi] - v) ? hi - 1 : hi;
}

}  // namespace lowbit::formats
