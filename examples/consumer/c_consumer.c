/* The C API from an outside project: load a model and generate greedily.
 *   c_consumer MODEL PROMPT */
#include <stdio.h>

#include "lowbit/lowbit.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL PROMPT\n", argv[0]);
    return 2;
  }
  lowbit_model* m = NULL;
  if (lowbit_model_load(argv[1], NULL, &m) != LOWBIT_OK) {
    fprintf(stderr, "error: %s\n", lowbit_last_error());
    return 1;
  }
  char text[1024];
  size_t written = 0;
  if (lowbit_generate(m, argv[2], 24, 0.0f, 0, text, sizeof text, &written) != LOWBIT_OK) {
    fprintf(stderr, "error: %s\n", lowbit_last_error());
    lowbit_model_free(m);
    return 1;
  }
  printf("%s%s\n", argv[2], text);
  lowbit_model_free(m);
  return 0;
}
