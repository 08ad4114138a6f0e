/* clvae checkpoints: everything needed to resume training bit-exactly, in a versioned,
 * checksummed, little-endian file that does not depend on the device that wrote it. */
#ifndef CLVAE_CHECKPOINT_H
#define CLVAE_CHECKPOINT_H

#include "clvae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLVAE_CHECKPOINT_VERSION 1

typedef struct clvae_checkpoint {
  clvae_config cfg;
  int64_t step;              /* Adam updates done */
  int32_t epoch;             /* epochs completed */
  int32_t epoch_step;        /* steps done in the unfinished epoch (0 at an epoch's end) */
  int32_t train_limit;       /* training images used (the first N), 0: all */
  double epoch_loss_sum;     /* sum of the unfinished epoch's batch losses so far */
  double epoch_seconds;      /* time spent in the unfinished epoch so far */
  size_t n;                  /* parameters; equals clvae_layout_of(cfg).total */
  float *params, *adam_m, *adam_v;
} clvae_checkpoint;

/* Allocates the three arrays for cfg's layout (zeroed). */
CLVAE_API clvae_status clvae_checkpoint_alloc(clvae_checkpoint *c, const clvae_config *cfg);
CLVAE_API void clvae_checkpoint_free(clvae_checkpoint *c);
/* Writes `path` atomically: a temporary file in the same directory, flushed and fsync'ed,
 * renamed over `path`, then the directory fsync'ed. On any failure `path` is untouched. */
CLVAE_API clvae_status clvae_checkpoint_save(const char *path, const clvae_checkpoint *c);
/* Reads and verifies magic, version, sizes and checksum. */
CLVAE_API clvae_status clvae_checkpoint_load(const char *path, clvae_checkpoint *c);

#ifdef __cplusplus
}
#endif

#endif
