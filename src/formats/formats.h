// Constructors of the format table's rows, one per format file. Internal: the public
// view is format_table() in lowbit/format.h.
#pragma once

#include <vector>

#include "lowbit/format.h"

namespace lowbit::formats {

std::vector<Format> float_formats();  // f32, f16, bf16
Format q4_0_format();
Format q4_1_format();
Format q5_0_format();
Format q5_1_format();
Format q8_0_format();
Format q2_k_format();
Format q3_k_format();
Format q4_k_format();
Format q5_k_format();
Format q6_k_format();
Format iq4_nl_format();
Format iq4_xs_format();
Format tq1_0_format();
Format tq2_0_format();
std::vector<Format> normal_float_formats();  // nf4, nf4_dq, fp4, fp4_dq
std::vector<Format> affine_int_formats();    // int{2,3,4,8}_{g32,g64,g128,pc}_{sym,asym}
std::vector<Format> fp8_formats();           // fp8_e4m3, fp8_e5m2
Format mxfp4_format();
Format bnb_int8_format();

}  // namespace lowbit::formats
