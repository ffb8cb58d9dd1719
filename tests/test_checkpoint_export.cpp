// Quantized checkpoints written by lowbit (--export) and read back, plus hand-built packing
// cases that follow each library's own pack code (read through `search`):
//   GPTQ: AutoGPTQ/GPTQModel qlinear `pack` (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py;
//         GPTQModel nn_modules/qlinear/__init__.py): little-endian bit streams over int32
//         words, 3-bit values straddling words; v1 stores zero − 1.
//   AWQ:  AutoAWQ awq/modules/linear/gemm.py `from_linear`: order_map [0, 2, 4, 6, 1, 3, 5, 7].
//   compressed-tensors: compressors/quantized_compressors/pack_quantized.py `pack_to_int32`.
//   bitsandbytes: transformers' Params4bit state dict with QuantState.as_dict(packed=True).
// Every layout round-trips bit-exactly from lowbit's own formats, and the model read from
// the exported folder has the same weights, byte for byte, and so the same logits.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "formats/part_packing.h"
#include "io/checkpoints/checkpoint_layout.h"
#include "lowbit/float_convert.h"
#include "lowbit/engine.h"
#include "lowbit/error.h"
#include "lowbit/exact_gguf.h"
#include "lowbit/model_io.h"
#include "lowbit/quantize.h"
#include "test_support.h"

namespace lowbit {
namespace {

// Tensors by name, as a LinearTensors finder over ExportTensors written by a layout.
struct Written {
  std::vector<ExportTensor> tensors;
  std::vector<TensorView> views;
  LinearTensors linear() {
    views.clear();
    for (const ExportTensor& t : tensors) {
      TensorView v;
      v.name = "w." + t.suffix;
      v.dtype = t.dtype;
      v.shape = t.shape;
      v.data = std::span<const uint8_t>(t.bytes.data(), t.bytes.size());
      views.push_back(v);
    }
    return LinearTensors("w", "test", [this](const std::string& n) -> const TensorView* {
      for (const TensorView& v : views) {
        if (v.name == n) return &v;
      }
      return nullptr;
    });
  }
};

// One group of an intN format with a given zero (asym) and codes, through the format's
// own packer.
void formats_pack_group_for_test(const Format& f, int zero, const uint8_t* codes, uint8_t* out) {
  const auto s = *int_format_shape(f);
  formats::pack_affine_group(s.bits, s.sym, 0x3C00, zero, codes, s.group, out);
}

// A random lowbit weight in format f, quantized from N(0, 1) values.
std::vector<uint8_t> random_weight(const Format& f, int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(rows * cols));
  uint32_t s = seed;
  for (auto& v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(static_cast<int32_t>(s >> 8) % 2001 - 1000) / 700.0f;
  }
  return quantize_tensor(f, x, rows, cols);
}

// Writes w through the layout, reads it back, and expects the same format and bytes.
void expect_round_trip(const std::string& variant, const QuantConfig& q, const Format& f, int64_t rows, int64_t cols) {
  const std::vector<uint8_t> bytes = random_weight(f, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
  const CheckpointLayout& layout = checkpoint_layout_for_export(variant);
  Written w{layout.write(variant, f, bytes, rows, cols), {}};
  const auto plan = layout.write(variant, f, {}, rows, cols);
  ASSERT_EQ(plan.size(), w.tensors.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].shape, w.tensors[i].shape) << variant << " " << f.name << " " << plan[i].suffix;
    size_t elems = 1;
    for (int64_t d : plan[i].shape) elems *= static_cast<size_t>(d);
    EXPECT_EQ(elems * dtype_size(plan[i].dtype), w.tensors[i].bytes.size()) << variant << " " << f.name << " " << plan[i].suffix;
  }
  const ImportedWeight back = layout.read(q, w.linear(), rows, cols);
  EXPECT_EQ(back.format, &f) << variant << " " << f.name << " read back as " << (back.format ? back.format->name : "none");
  EXPECT_TRUE(back.bytes == bytes) << variant << " " << f.name;
}

TEST(CheckpointExport, EveryLayoutRoundTripsItsFormatsBitExactly) {
  // Odd group counts (cols / group = 3, 5, 7) and 8-row multiples the packings need.
  for (const char* f : {"int2_g32_asym", "int3_g64_sym", "int4_g32_sym", "int4_g128_asym", "int8_g64_asym", "int4_pc_sym"}) {
    QuantConfig q{.method = "gptq", .format = "gptq_v2"};
    const auto s = *int_format_shape(format_by_name(f));
    q.bits = s.bits;
    q.group_size = s.group == 0 ? -1 : s.group;
    expect_round_trip("gptq_v2", q, format_by_name(f), 32, s.group == 128 ? 384 : 96 + (s.group == 64 ? 96 : 0) + (s.group == 32 ? 128 : 0));
  }
  for (const char* f : {"int4_g32_sym", "int3_g32_sym", "int8_g128_sym"}) {  // v1 writes symmetric zeros
    const auto s = *int_format_shape(format_by_name(f));
    QuantConfig q{.method = "gptq", .bits = s.bits, .group_size = s.group, .format = "gptq"};
    expect_round_trip("gptq", q, format_by_name(f), 64, 5 * s.group);
  }
  for (const char* f : {"int4_g32_asym", "int4_g64_asym", "int4_g128_asym"}) {
    const auto s = *int_format_shape(format_by_name(f));
    QuantConfig q{.method = "awq", .bits = 4, .group_size = s.group, .format = "gemm"};
    expect_round_trip("awq", q, format_by_name(f), 24, 3 * s.group);
  }
  for (const char* f : {"int4_g32_asym", "int4_g128_sym", "int8_g64_sym", "int4_pc_asym", "fp8_e4m3"}) {
    QuantConfig q{.method = "compressed-tensors", .file = "config.json"};
    q.raw = checkpoint_layout_for_export("compressed-tensors").config("compressed-tensors", format_by_name(f));
    expect_round_trip("compressed-tensors", q, format_by_name(f), 40, 384);
  }
  for (const char* f : {"int8_g32_asym", "int8_g128_sym", "int8_pc_asym"}) {  // naive-quantized: int8 codes as they are
    QuantConfig q{.method = "compressed-tensors", .file = "config.json"};
    q.raw = checkpoint_layout_for_export("compressed-tensors-naive").config("compressed-tensors-naive", format_by_name(f));
    expect_round_trip("compressed-tensors-naive", q, format_by_name(f), 24, 256);
  }
  for (const char* f : {"nf4", "fp4", "nf4_dq", "fp4_dq", "bnb_int8"}) {
    QuantConfig q{.method = "bitsandbytes", .raw = {{"bnb_4bit_quant_type", std::string(f).substr(0, 3)}}};
    expect_round_trip("bnb", q, format_by_name(f), 48, 576);  // 432 blocks: two double-quant groups, the last partial
  }
}


// AutoGPTQ's 3-bit pack, written out as its loop does it: ten values per word, the 11th
// split across two words (2 bits, then 1), and so on, 32 values per 3 words.
std::vector<uint32_t> autogptq_pack3(const std::vector<uint32_t>& v) {  // one column, v.size() % 32 == 0
  std::vector<uint32_t> out(v.size() / 32 * 3, 0);
  size_t i = 0, row = 0;
  while (row < out.size()) {
    for (size_t j = i; j < i + 10; ++j) out[row] |= v[j] << (3 * (j - i));
    i += 10;
    out[row] |= v[i] << 30;
    ++row;
    out[row] |= (v[i] >> 2) & 1;
    ++i;
    for (size_t j = i; j < i + 10; ++j) out[row] |= v[j] << (3 * (j - i) + 1);
    i += 10;
    out[row] |= v[i] << 31;
    ++row;
    out[row] |= (v[i] >> 1) & 3;
    ++i;
    for (size_t j = i; j < i + 10; ++j) out[row] |= v[j] << (3 * (j - i) + 2);
    i += 10;
    ++row;
  }
  return out;
}

int32_t word_at(const ExportTensor& t, size_t i) {
  int32_t v;
  std::memcpy(&v, t.bytes.data() + 4 * i, 4);
  return v;
}

TEST(CheckpointExport, GptqPackingFollowsAutoGptq) {
  // One output column (rows = 32 for the word fill), 3-bit codes 0..7 repeating; v2 zeros
  // at 0 and at the maximum, which v1 cannot store (0 - 1 wraps).
  const Format& f = format_by_name("int3_g32_asym");
  const int64_t rows = 32, cols = 64;
  std::vector<uint8_t> bytes(f.tensor_bytes(rows, cols));
  const uint64_t rb = format_row_bytes(f, cols);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) codes[c] = static_cast<uint8_t>((c * 5 + 3) % 8);
  for (int64_t r = 0; r < rows; ++r) {
    for (int k = 0; k < 2; ++k) formats_pack_group_for_test(f, r % 2 == 0 ? 0 : 7, codes.data() + 32 * k, bytes.data() + r * rb + k * (rb / 2));
  }
  const auto t = checkpoint_layout_for_export("gptq_v2").write("gptq_v2", f, bytes, rows, cols);
  ASSERT_EQ(t[0].suffix, "qweight");
  std::vector<uint32_t> column(codes.begin(), codes.end());
  const std::vector<uint32_t> want = autogptq_pack3(column);
  for (size_t w = 0; w < want.size(); ++w) EXPECT_EQ(static_cast<uint32_t>(word_at(t[0], w * rows + 5)), want[w]) << "word " << w;
  // qzeros: group 0's zeros along the outputs, 0, 7, 0, 7, ... as one 3-bit stream.
  std::vector<uint32_t> zeros(rows);
  for (int64_t r = 0; r < rows; ++r) zeros[r] = r % 2 == 0 ? 0 : 7;
  const std::vector<uint32_t> zwant = autogptq_pack3(zeros);
  for (size_t w = 0; w < zwant.size(); ++w) EXPECT_EQ(static_cast<uint32_t>(word_at(t[1], w)), zwant[w]) << "zero word " << w;
  EXPECT_THROW(checkpoint_layout_for_export("gptq").write("gptq", f, bytes, rows, cols), Error);  // zero 0 in v1
}

TEST(CheckpointExport, AwqAndCompressedTensorsPackOrders) {
  const Format& f = format_by_name("int4_g32_asym");
  const int64_t rows = 8, cols = 32;
  std::vector<uint8_t> bytes(f.tensor_bytes(rows, cols));
  const uint64_t rb = format_row_bytes(f, cols);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<uint8_t> codes(static_cast<size_t>(cols), static_cast<uint8_t>(r));  // row r: every code r
    formats_pack_group_for_test(f, 15 - static_cast<int>(r), codes.data(), bytes.data() + r * rb);
  }
  // AutoAWQ: nibble i of a word holds output column order_map[i], order_map = [0, 2, 4, 6, 1, 3, 5, 7].
  const auto awq = checkpoint_layout_for_export("awq").write("awq", f, bytes, rows, cols);
  EXPECT_EQ(static_cast<uint32_t>(word_at(awq[0], 0)), 0x75316420u);
  EXPECT_EQ(static_cast<uint32_t>(word_at(awq[1], 0)), 0x8ACE9BDFu);  // zeros 15 - r in the same order
  // compressed-tensors: pack_to_int32 along in_features, value i at bits 4i; the zero points
  // along out_features the same way.
  const auto ct = checkpoint_layout_for_export("compressed-tensors").write("compressed-tensors", f, bytes, rows, cols);
  EXPECT_EQ(static_cast<uint32_t>(word_at(ct[0], 3 * 4)), 0x33333333u);  // row 3, first word
  EXPECT_EQ(static_cast<uint32_t>(word_at(ct[2], 0)), 0x89ABCDEFu);
}

TEST(CheckpointExport, ActOrderGroupsReadAsExactValues) {
  // A GPTQ v2 weight whose g_idx is a permutation (desc_act): no lowbit group format holds
  // it, so it reads as f32 with every value scale[g_idx[i]] · (q − zero).
  const int64_t rows = 8, cols = 64;
  const QuantConfig q{.method = "gptq", .bits = 4, .group_size = 32, .desc_act = true, .format = "gptq_v2"};
  Written w;
  std::vector<uint32_t> qweight(static_cast<size_t>(cols / 8 * rows), 0), qzeros(static_cast<size_t>(2 * rows / 8), 0), g_idx(cols);
  std::vector<uint16_t> scales(static_cast<size_t>(2 * rows));
  for (int64_t i = 0; i < cols; ++i) g_idx[i] = static_cast<uint32_t>((i * 7) % 2);
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < cols; ++i) qweight[(i / 8) * rows + o] |= static_cast<uint32_t>((i + o) % 16) << (4 * (i % 8));
    for (int k = 0; k < 2; ++k) {
      qzeros[k * (rows / 8) + o / 8] |= static_cast<uint32_t>(k == 0 ? 0 : 15) << (4 * (o % 8));
      scales[k * rows + o] = static_cast<uint16_t>(0x3C00 + 64 * o + k);  // about 1.0 .. 1.4
    }
  }
  auto bytes_of = [](const auto& v) {
    std::vector<uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  w.tensors = {{"qweight", DType::I32, {cols / 8, rows}, bytes_of(qweight)}, {"qzeros", DType::I32, {2, rows / 8}, bytes_of(qzeros)},
               {"scales", DType::F16, {2, rows}, bytes_of(scales)}, {"g_idx", DType::I32, {cols}, bytes_of(g_idx)}};
  const ImportedWeight back = checkpoint_layout_for(q).read(q, w.linear(), rows, cols);
  ASSERT_EQ(back.format->name, std::string_view("f32"));
  const float* v = reinterpret_cast<const float*>(back.bytes.data());
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < cols; ++i) {
      const int k = static_cast<int>(g_idx[i]);
      const float want = fp16_to_fp32(scales[k * rows + o]) * static_cast<float>(static_cast<int>((i + o) % 16) - (k == 0 ? 0 : 15));
      ASSERT_EQ(v[o * cols + i], want) << o << "," << i;
    }
  }
}

TEST(CheckpointExport, MalformedCheckpointsNameFileTensorAndField) {
  const Format& f = format_by_name("int4_g32_sym");
  const std::vector<uint8_t> bytes = random_weight(f, 8, 64, 1);
  QuantConfig q{.method = "gptq", .bits = 4, .group_size = 32, .format = "gptq", .file = "config.json"};
  auto read_without = [&](const std::string& drop, const std::function<void(std::vector<ExportTensor>&)>& edit = nullptr) {
    Written w{checkpoint_layout_for_export("gptq").write("gptq", f, bytes, 8, 64), {}};
    std::erase_if(w.tensors, [&](const ExportTensor& t) { return t.suffix == drop; });
    if (edit) edit(w.tensors);
    try {
      checkpoint_layout_for(q).read(q, w.linear(), 8, 64);
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error";
    return Error("none");
  };
  const Error missing = read_without("qzeros");
  EXPECT_EQ(missing.context().tensor, "w.qzeros");
  EXPECT_EQ(missing.context().file, "test");
  const Error gidx = read_without("", [](std::vector<ExportTensor>& t) {
    t[3].shape = {63};
    t[3].bytes.resize(4 * 63);
  });
  EXPECT_EQ(gidx.context().tensor, "w.g_idx");
  EXPECT_NE(std::string(gidx.what()).find("in_features"), std::string::npos);
  q.bits = 5;
  const Error bits = read_without("");
  EXPECT_EQ(bits.context().value, "5");
  q.bits = 4;
  const Error truncated = read_without("", [](std::vector<ExportTensor>& t) {
    t[0].shape = {7, 8};
    t[0].bytes.resize(4 * 56);
  });
  EXPECT_EQ(truncated.context().tensor, "w.qweight");
  EXPECT_THROW(checkpoint_layout_for(QuantConfig{.method = "hqq", .file = "config.json"}), Error);
  try {
    checkpoint_layout_for(QuantConfig{.method = "hqq", .file = "config.json"});
  } catch (const Error& e) {
    EXPECT_EQ(e.context().value, "hqq");
    EXPECT_EQ(e.context().file, "config.json");
  }
}

// A model quantized and exported, read back: the block linears are byte for byte lowbit's
// own quantized weights, embeddings 16-bit, and the logits equal those of the same weights
// assembled from lowbit's own folder.
TEST(CheckpointExport, ExportedModelsReadBackWithTheSameWeightsAndLogits) {
  const std::string source = test::shared_path("models/shakespeare-llama-4m");
  const std::pair<const char*, const char*> cases[] = {{"gptq", "int4_g64_sym"}, {"gptq_v2", "int4_g128_asym"}, {"awq", "int4_g64_asym"},
                                                       {"bnb", "nf4_dq"}, {"bnb", "bnb_int8"}, {"compressed-tensors", "int8_g64_sym"}, {"compressed-tensors", "fp8_e4m3"}};
  for (const auto& [layout, format] : cases) {
    const std::string dir = test::temp_dir() + "/export-" + layout + "-" + format, own = dir + "-own";
    QuantizeOptions o;
    o.input = source;
    o.output = dir;
    o.recipe = std::string("pure:") + format;
    o.export_layout = layout;
    quantize_model(o);
    o.output = own;
    o.export_layout.clear();
    quantize_model(o);
    const Model exported = load_model(dir), mine = load_model(own);
    Model assembled = load_model(own);
    assembled.token_embd = exported.token_embd;  // 16-bit in the export
    assembled.output = exported.output;
    for (size_t l = 0; l < mine.layers.size(); ++l) {
      const LayerWeights &a = exported.layers[l], &b = mine.layers[l];
      for (auto [x, y] : {std::pair{&a.attn_q, &b.attn_q}, {&a.attn_k, &b.attn_k}, {&a.attn_v, &b.attn_v}, {&a.attn_output, &b.attn_output},
                          {&a.ffn_gate, &b.ffn_gate}, {&a.ffn_up, &b.ffn_up}, {&a.ffn_down, &b.ffn_down}}) {
        ASSERT_EQ(x->format, y->format) << layout << " " << x->name;
        ASSERT_TRUE(std::equal(x->data.begin(), x->data.end(), y->data.begin(), y->data.end())) << layout << " " << x->name;
      }
    }
    EXPECT_EQ(exported.token_embd.format->name, std::string_view("f16"));
    const std::vector<int32_t> tokens = exported.tokenizer->encode("ROMEO: But soft, what light", true);
    std::vector<float> la(tokens.size() * exported.config.vocab_size), lb(la.size());
    Engine(exported, 64).forward(tokens, 0, la.data());
    Engine(assembled, 64).forward(tokens, 0, lb.data());
    EXPECT_TRUE(la == lb) << layout << " " << format;
  }
}

// GPTQ/AWQ -> GGUF without requantization: int4 symmetric groups are q4_0 blocks, int8
// symmetric q8_0, int4 asymmetric q4_1 when every min (-scale·zero) is exact in fp16.
TEST(CheckpointExport, IntGroupsBecomeGgufTypesWithIdenticalValues) {
  auto weight = [](const char* name, std::vector<uint8_t>& bytes) {
    return Weight{"w", &format_by_name(name), 16, 256, bytes, nullptr};
  };
  for (const auto& [from, to] : {std::pair{"int4_g32_sym", "q4_0"}, {"int4_g128_sym", "q4_0"}, {"int8_g64_sym", "q8_0"}}) {
    std::vector<uint8_t> bytes = random_weight(format_by_name(from), 16, 256, 7);
    const Weight w = weight(from, bytes);
    const auto g = exact_gguf_weight(w);
    ASSERT_TRUE(g.has_value()) << from;
    EXPECT_EQ(g->format->name, std::string_view(to));
    EXPECT_EQ(g->to_f32(), w.to_f32()) << from;
  }
  // Asymmetric with scale 1 (every min an integer): exactly q4_1.
  const Format& asym = format_by_name("int4_g64_asym");
  std::vector<uint8_t> exact(asym.tensor_bytes(16, 256));
  const uint64_t rb = format_row_bytes(asym, 256);
  std::vector<uint8_t> codes(64);
  for (int64_t r = 0; r < 16; ++r) {
    for (int k = 0; k < 4; ++k) {
      for (int i = 0; i < 64; ++i) codes[i] = static_cast<uint8_t>((i * 3 + r + k) % 16);
      formats::pack_affine_group(4, false, 0x3C00, static_cast<int>((r + k) % 16), codes.data(), 64, exact.data() + r * rb + k * (rb / 4));
    }
  }
  const Weight we = weight("int4_g64_asym", exact);
  const auto q41 = exact_gguf_weight(we);
  ASSERT_TRUE(q41.has_value());
  EXPECT_EQ(q41->format->name, std::string_view("q4_1"));
  EXPECT_EQ(q41->to_f32(), we.to_f32());
  // Scales whose mins need more than fp16's 11 bits: not exact, but q4_1 with rounded mins.
  std::vector<uint8_t> rounded = random_weight(asym, 16, 256, 9);
  const Weight wr = weight("int4_g64_asym", rounded);
  EXPECT_FALSE(exact_gguf_weight(wr).has_value());
  EXPECT_TRUE(exact_gguf_weight(wr, true).has_value());
  std::vector<uint8_t> two = random_weight(format_by_name("int3_g32_sym"), 16, 256, 3);
  EXPECT_FALSE(exact_gguf_weight(weight("int3_g32_sym", two)).has_value());
}

}  // namespace
}  // namespace lowbit
