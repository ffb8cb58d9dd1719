// bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True,
// max_exponent_bits=7, total_bits=8)): for exponent i in 0..6, 2^i linearly spaced
// fractions in (0.1, 1] (midpoints of linspace(0.1, 1, 2^i + 1)) times 10^(i-6), both
// signs, plus 0 and 1.
#include <algorithm>
#include <array>
#include <cmath>

#include "formats/nf4_fp4_codes.h"

namespace lowbit::formats {

const float* bnb_dynamic_map() {
  static const std::array<float, 256> map = [] {
    std::array<float, 256> m{};
    int k = 0;
    for (int i = 0; i < 7; ++i) {
      const int items = (1 << i) + 1;
      const double scale = std::pow(10.0, i - 6);
      for (int j = 0; j + 1 < items; ++j) {
        const double lo = 0.1 + 0.9 * j / (items - 1);
        const double hi = 0.1 + 0.9 * (j + 1) / (items - 1);
        const auto v = static_cast<float>(scale * (lo + hi) / 2);
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
