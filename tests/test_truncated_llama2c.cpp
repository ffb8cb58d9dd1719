// Every truncated prefix of the stories260K llama2.c checkpoint (1,056,540 of them) is
// refused with an error naming the file. Labelled slow: about 30 s on the CI machine.
#include <gtest/gtest.h>

#include "lowbit/model_io.h"
#include "test_support.h"
#include "truncation.h"

namespace lowbit {
namespace {

TEST(TruncatedFiles, Llama2cCheckpointEveryPrefix) {
  const auto dir = test::temp_dir();
  const auto tok = test::shared_path("models/stories260K/tok512.bin");
  const std::string path = dir + "/stories260K.bin";
  test::expect_prefixes_rejected(test::shared_path("models/stories260K/stories260K.bin"), path, SIZE_MAX,
                           [&] { load_llama2c(path, tok); });
}

}  // namespace
}  // namespace lowbit
