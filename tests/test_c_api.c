/* The C API from C: load, tokenize, perplexity, generate, quantize, and errors as status
 * codes with messages (no exception crosses). Arguments: the shared folder, a temp folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/lowbit.h"

static int failures = 0;
#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) {                           \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);          \
      fprintf(stderr, " (%s)\n", lowbit_last_error()); \
      ++failures;                            \
    }                                        \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_c_api SHARED_DIR TEMP_DIR\n");
    return 2;
  }
  char path[4096], tok[4096], text[4096], out[4096];
  snprintf(path, sizeof path, "%s/models/stories260K/stories260K.bin", argv[1]);
  snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", argv[1]);
  snprintf(text, sizeof text, "%s/data/tinystories-valid-30k.txt", argv[1]);
  CHECK(strncmp(lowbit_version(), "lowbit ", 7) == 0, "version");
  CHECK(lowbit_set_threads(1) == LOWBIT_OK, "threads");

  lowbit_model* m = NULL;
  CHECK(lowbit_model_load(path, tok, &m) == LOWBIT_OK && m != NULL, "load");
  if (m == NULL) return 1;
  CHECK(lowbit_model_parameters(m) > 200000, "parameters %lld", (long long)lowbit_model_parameters(m));
  CHECK(lowbit_model_vocab_size(m) == 512, "vocab");

  size_t count = 0;
  int32_t ids[16];
  CHECK(lowbit_tokenize(m, "Once upon a time", 1, NULL, 0, &count) == LOWBIT_OK && count == 5, "token count %zu", count);
  CHECK(lowbit_tokenize(m, "Once upon a time", 1, ids, 16, &count) == LOWBIT_OK && ids[0] == 1, "BOS first");

  double ppl = 0;
  CHECK(lowbit_perplexity(m, text, 128, 8, &ppl) == LOWBIT_OK, "perplexity");
  CHECK(ppl > 2 && ppl < 20 && isfinite(ppl), "perplexity value %f", ppl);

  size_t written = 0;
  CHECK(lowbit_generate(m, "Once upon a time", 12, 0.0f, 1, out, sizeof out, &written) == LOWBIT_OK, "generate");
  CHECK(strncmp(out, ", there was a little girl named Lily", 36) == 0, "greedy text '%s'", out);
  CHECK(written == strlen(out), "written");

  /* Quantize to q8_0 GGUF (pure recipe with fallbacks) and load the result. */
  snprintf(out, sizeof out, "%s/s-q8.gguf", argv[2]);
  lowbit_quantize_options q;
  memset(&q, 0, sizeof q);
  q.recipe = "q8_0";
  CHECK(lowbit_quantize(path, out, &q) == LOWBIT_OK, "quantize");
  lowbit_model* mq = NULL;
  CHECK(lowbit_model_load(out, NULL, &mq) == LOWBIT_OK, "load quantized");
  CHECK(mq != NULL && lowbit_model_bytes(mq) < lowbit_model_bytes(m), "smaller");
  double ppl_q = 0;
  CHECK(lowbit_perplexity(mq, text, 128, 8, &ppl_q) == LOWBIT_OK && fabs(ppl_q - ppl) / ppl < 0.02, "q8_0 ppl %f vs %f", ppl_q, ppl);
  lowbit_model_free(mq);

  /* Errors: a status and a message naming the file; nothing thrown. */
  lowbit_model* bad = NULL;
  CHECK(lowbit_model_load("/no/such/model.gguf", NULL, &bad) == LOWBIT_ERROR && bad == NULL, "missing file refused");
  CHECK(strstr(lowbit_last_error(), "/no/such/model.gguf") != NULL, "message names the file: %s", lowbit_last_error());
  CHECK(lowbit_tokenize(m, NULL, 1, NULL, 0, &count) == LOWBIT_ERROR, "NULL text refused");
  q.recipe = "no-such-recipe";
  CHECK(lowbit_quantize(path, out, &q) == LOWBIT_ERROR && strstr(lowbit_last_error(), "no-such-recipe") != NULL, "bad recipe");
  lowbit_model_free(m);
  lowbit_model_free(NULL);
  if (failures == 0) printf("C API: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
