/* libFuzzer target: the IDX reader (raw and gzip) on arbitrary bytes, as images and as
 * labels. It must return an error or data, never crash or allocate what the bytes do
 * not hold. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clvae/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/clvae-fuzz-idx-%d", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  for (int images = 0; images < 2; images++) {
    int dims[4], rank;
    uint8_t *d = NULL;
    if (clvae_idx_read(path, images, dims, &rank, &d) == CLVAE_OK) {
      size_t n = 1;
      for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
      volatile unsigned sum = 0;
      for (size_t i = 0; i < n; i++) sum += d[i]; /* every promised byte is really there */
      (void)sum;
      free(d);
    }
  }
  remove(path);
  return 0;
}
