/* Shared by the readers of src/data. */
#ifndef CLVAE_DATA_INTERNAL_H
#define CLVAE_DATA_INTERNAL_H

#include "clvae/data.h"
#include "device/internal.h"

/* A folder of PNG files (see clvae_images_load); `out` is zeroed by the caller. With
 * `probe`, the listing and the headers only: count and shape, no pixels or labels. */
clvae_status clvae__load_png_set(clvae_images *out, const char *dir, const char *set, const clvae_images *classes_from,
                                 clvae_load_progress progress, void *user, int probe);

#endif
