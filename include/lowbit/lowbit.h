/* lowbit's C API: load a model, quantize with a recipe or method, evaluate and generate,
 * from C or any language with a C FFI. Opaque handles; every call returns LOWBIT_OK or
 * LOWBIT_ERROR, and lowbit_last_error() then names what failed (file, tensor, value), as the
 * command line does. No C++ exception crosses this interface. */
#ifndef LOWBIT_LOWBIT_H
#define LOWBIT_LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LOWBIT_OK = 0, LOWBIT_ERROR = 1 } lowbit_status;

typedef struct lowbit_model lowbit_model;

/* "lowbit 0.1.0" */
const char* lowbit_version(void);
/* The message of this thread's last failed call ("" if none). Valid until the next call. */
const char* lowbit_last_error(void);
/* Worker threads for every later call (0: all cores). */
lowbit_status lowbit_set_threads(int threads);

/* A Hugging Face folder (plain or GPTQ/AWQ/bitsandbytes/compressed-tensors), a .gguf file or
 * a llama2.c checkpoint (tokenizer: NULL to find tok*.bin beside it). */
lowbit_status lowbit_model_load(const char* path, const char* tokenizer, lowbit_model** out);
void lowbit_model_free(lowbit_model* model);
int64_t lowbit_model_parameters(const lowbit_model* model);
int64_t lowbit_model_vocab_size(const lowbit_model* model);
/* Bytes of all weights as stored. */
uint64_t lowbit_model_bytes(const lowbit_model* model);

/* Quantization options; zero-initialize, then set what you need. */
typedef struct {
  const char* recipe;         /* built-in recipe ("q4_k_m", ...), "pure:FORMAT", or a JSON file; NULL: q4_k_m */
  const char* method;         /* "rtn" (NULL), "gptq", "awq", ... for the block linears */
  const char* calib;          /* calibration text file for calibrated methods */
  const char* imatrix;        /* importance matrix file, optional */
  const char* export_layout;  /* folder output in gptq, gptq_v2, awq, bnb or compressed-tensors layout; NULL: lowbit's */
} lowbit_quantize_options;

/* Quantizes `input` into `output` (a .gguf file, or else a new folder). */
lowbit_status lowbit_quantize(const char* input, const char* output, const lowbit_quantize_options* options);

/* Perplexity of the text file the way llama.cpp measures it: chunks of n_ctx tokens, the
 * second half of each scored; max_chunks 0 for all. */
lowbit_status lowbit_perplexity(const lowbit_model* model, const char* text_file, int64_t n_ctx, int64_t max_chunks, double* ppl);

/* Token ids of `text` (with BOS first when add_bos and the tokenizer has one). Writes at
 * most `capacity` ids and sets *count to how many there are (call with capacity 0 to ask). */
lowbit_status lowbit_tokenize(const lowbit_model* model, const char* text, int add_bos, int32_t* ids, size_t capacity, size_t* count);

/* Generates up to n_tokens after `prompt` (temperature 0: greedy) and writes the generated
 * text, NUL-terminated, into out (at most out_size bytes; *written gets the full length). */
lowbit_status lowbit_generate(const lowbit_model* model, const char* prompt, int32_t n_tokens, float temperature, uint64_t seed,
                              char* out, size_t out_size, size_t* written);

#ifdef __cplusplus
}
#endif

#endif /* LOWBIT_LOWBIT_H */
