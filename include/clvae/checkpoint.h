/* clvae checkpoints: everything needed to resume training bit-exactly, in a versioned,
 * checksummed, little-endian file that does not depend on the device that wrote it. */
#ifndef CLVAE_CHECKPOINT_H
#define CLVAE_CHECKPOINT_H

#include "clvae/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version 3 adds a tagged extension area (the layer items, the training data's path, β, a
 * conditional model's classes) to
 * version 2, which records the image shape and the layer list; versions 1 (square grey
 * images, one hidden layer) and 2 are still read. */
#define CLVAE_CHECKPOINT_VERSION 3

typedef struct clvae_checkpoint {
  clvae_config cfg;
  int64_t step;              /* Adam updates done */
  clvae_train_state train;   /* epochs done, and the position in the unfinished one */
  int32_t train_limit;       /* training images used (the first N), 0: all */
  int32_t train_count;       /* how many that was (0: not recorded, format 1) */
  char data[4096];           /* the training data as `--data` named it ("": not recorded) */
  char data_abs[4096];       /* and as an absolute path */
  size_t n;                  /* parameters: the net's total for cfg */
  float *params, *adam_m, *adam_v;
  char **class_names;        /* a conditional model's cfg.classes names ("": unnamed), or NULL */
} clvae_checkpoint;

/* Copies K class names (NULL or NULL entries: unnamed) into c->class_names. */
CLVAE_API clvae_status clvae_checkpoint_set_classes(clvae_checkpoint *c, int K, const char *const *names);

/* Validates cfg (clvae_net_build) and allocates the three arrays for its net (zeroed). */
CLVAE_API clvae_status clvae_checkpoint_alloc(clvae_checkpoint *c, const clvae_config *cfg);
CLVAE_API void clvae_checkpoint_free(clvae_checkpoint *c);
/* Writes `path` atomically: a temporary file in the same directory, flushed and fsync'ed,
 * renamed over `path`, then the directory fsync'ed. On any failure `path` is untouched. */
CLVAE_API clvae_status clvae_checkpoint_save(const char *path, const clvae_checkpoint *c);
/* Reads and verifies everything before trusting it: magic, version, sizes against the
 * file's length, the checksum, every configuration field (clvae_net_build's ranges), the
 * stored layer list against the one the configuration derives, the training position,
 * and finite parameters and Adam state. Failures say "damaged checkpoint" and what. */
CLVAE_API clvae_status clvae_checkpoint_load(const char *path, clvae_checkpoint *c);
/* Only the configuration, the position and the records of the header (no arrays, no
 * checksum: a hint, such as the run's data, before the full load verifies everything). */
CLVAE_API clvae_status clvae_checkpoint_peek(const char *path, clvae_checkpoint *c);

#ifdef __cplusplus
}
#endif

#endif
