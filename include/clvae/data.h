/* clvae data: image sets read and validated on the host, from IDX files (raw or gzip;
 * Fashion-MNIST's format) or from a folder of PNG files. The shape comes from the data. */
#ifndef CLVAE_DATA_H
#define CLVAE_DATA_H

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLVAE_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define CLVAE_MAX_IMAGE_BYTES ((uint64_t)1 << 31) /* a set's pixels, all images together */
#define CLVAE_MAX_IMAGE_SIDE 16384                 /* image height or width */

typedef struct clvae_images {
  int count, height, width, channels; /* count images of height × width × channels bytes */
  uint8_t *pixels;           /* (count, height, width, channels), row-major, 0..255 */
  int *labels;               /* (count) class of each image, 0..classes-1; NULL: unlabelled */
  int classes;               /* 1 + the largest label (0 without labels) */
  char **class_names;        /* (classes) folder names of a PNG set; NULL for IDX ("class N") */
  char source[4096];         /* the images' file or folder, for messages */
} clvae_images;

/* Reads one IDX file (raw, or gzip by its content) of unsigned bytes: images of rank 3
 * (magic 2051: count, rows, cols) or rank 4 (magic 2052: count, rows, cols, channels)
 * when want_images, else labels (magic 2049, rank 1). Validates the magic, the rank, every
 * dimension (overflow, CLVAE_MAX_IMAGE_BYTES) and the count against the data actually
 * present, before allocating more than the data holds. dims gets `rank` values; *data
 * is malloc'ed; with data NULL only the header is read and checked. A gzip file must hold
 * one intact member (CRC-32 and length checked) and a raw file exactly its header and data:
 * bytes after the data are an error. Only regular files are read. */
CLVAE_API clvae_status clvae_idx_read(const char *path, int want_images, int *dims, int *rank, uint8_t **data);

/* Progress while reading a large set: done of total images (called from the reading threads'
 * owner, at most every few hundred images). */
typedef void (*clvae_load_progress)(int done, int total, void *user);

/* Loads the set `set` ("train" or "test") of `dir`:
 *  - a PNG folder if dir/train/ is a directory: dir/<set>/ holds PNG files, either all
 *    directly (unlabelled) or in one sub-folder per class (labels: the sorted folder
 *    names; the test set may only use classes the training set has, pass those as
 *    `classes_from`, else NULL). Any PNG libpng reads becomes 8-bit grey, or RGB if any
 *    image of the set is in colour; alpha is dropped. All images must be one size.
 *  - else IDX files: dir/<name>-images-idx3-ubyte or -idx4-ubyte (raw or .gz; the magic
 *    number, not the name, decides the rank) and dir/<name>-labels-idx1-ubyte, where name
 *    is "train" or "t10k" (for "test"). Label values may be 0..255.
 * Every refusal names the file. */
CLVAE_API clvae_status clvae_images_load(clvae_images *out, const char *dir, const char *set,
                                         const clvae_images *classes_from, clvae_load_progress progress,
                                         void *user);
/* What clvae_images_load would load, without reading the pixels: count, shape, source and
 * the number of classes (1 + the largest label; a PNG set's class folders) from the headers
 * and the labels (IDX) or the listing and every PNG header, each validated. */
CLVAE_API clvae_status clvae_images_probe(clvae_images *out, const char *dir, const char *set);
CLVAE_API void clvae_images_free(clvae_images *im);
/* "HxWxC" (or "HxW" for grey) into buf. */
CLVAE_API const char *clvae_images_shape(const clvae_images *im, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
