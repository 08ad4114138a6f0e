/* clvae data: Fashion-MNIST (IDX format, raw or gzip) read and validated on the host. */
#ifndef CLVAE_DATA_H
#define CLVAE_DATA_H

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLVAE_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

typedef struct clvae_images {
  int count, rows, cols;     /* count images of rows × cols pixels */
  uint8_t *pixels;           /* (count, rows·cols), row-major, 0..255 */
  uint8_t *labels;           /* (count), 0..9; NULL if read without labels */
} clvae_images;

/* Reads one IDX file (raw, or gzip by its content) with magic 2051 (images, rank 3) or
 * 2049 (labels, rank 1). Validates magic, rank, dimensions (overflow, absurd sizes) and
 * the count against the file's length before allocating. *data is malloc'ed. */
CLVAE_API clvae_status clvae_idx_read(const char *path, int want_magic, int *dims, int *rank,
                                      uint8_t **data);

/* Loads `<dir>/<set>-images-idx3-ubyte[.gz]` and the matching labels ("train" or
 * "t10k"), checks labels in 0..9 and equal counts. */
CLVAE_API clvae_status clvae_images_load(clvae_images *out, const char *dir, const char *set);
CLVAE_API void clvae_images_free(clvae_images *im);

#ifdef __cplusplus
}
#endif

#endif
