/* libFuzzer target: the checkpoint reader. Every input gets a valid CRC-32 patched into its
 * last four bytes, so that each mutation reaches the checks behind the checksum (sizes,
 * configuration, layer list, training position, values); a wrong CRC alone is trivial. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "clvae/checkpoint.h"

static void try_load(const char *path, const unsigned char *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, size, f);
  fclose(f);
  clvae_checkpoint ck;
  if (clvae_checkpoint_load(path, &ck) == CLVAE_OK) {
    volatile float s = 0;
    for (size_t i = 0; i < ck.n; i++) s += ck.params[i] + ck.adam_m[i] + ck.adam_v[i];
    (void)s;
    clvae_checkpoint_free(&ck);
  }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/clvae-fuzz-ck-%d", (int)getpid());
  if (size < 8) try_load(path, data, size);
  else {
    unsigned char *c = malloc(size);
    memcpy(c, data, size);
    uint32_t crc = (uint32_t)crc32(0L, c, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) c[size - 4 + i] = (unsigned char)(crc >> (8 * i));
    try_load(path, c, size);
    free(c);
  }
  remove(path);
  return 0;
}
