/* clvae images: 8-bit PNGs through libpng (written to a temporary file and renamed),
 * mosaics of decoded images, and plots drawn with cairo. */
#ifndef CLVAE_IMAGE_H
#define CLVAE_IMAGE_H

#include "clvae/clvae.h"

#ifdef __cplusplus
extern "C" {
#endif

/* channels 1 (grey) or 3 (RGB); px is (h, w, channels), row-major. */
CLVAE_API clvae_status clvae_png_write(const char *path, int w, int h, int channels, const uint8_t *px);
/* Reads an 8-bit grey or RGB PNG; *px is malloc'ed. */
CLVAE_API clvae_status clvae_png_read(const char *path, int *w, int *h, int *channels, uint8_t **px);

/* Lays out n images of (th, tw, ch) probabilities as a grid of `cols` columns, no
 * borders, value = round(255·p). dst is (rows·th, cols·tw, ch) with rows = ceil(n / cols);
 * empty cells are black. */
CLVAE_API void clvae_mosaic(uint8_t *dst, const float *imgs, int n, int cols, int th, int tw, int ch);

/* Whether this build draws plots (cairo was found at build time); without it the plot
 * functions return CLVAE_ERR_ARG saying so. */
CLVAE_API int clvae_have_plots(void);

/* Scatter of n points (x, y) coloured by class (cls[i] in 0..classes-1, or NULL: one
 * colour) with axes, ticks and a legend of the class names (up to 20 entries). */
CLVAE_API clvae_status clvae_plot_scatter(const char *path, const float *xy, int stride, const int *cls, int n,
                                          int classes, const char *const *names, const char *xlabel,
                                          const char *ylabel, const char *title);
/* Train and test loss per epoch (epochs 1..n). */
CLVAE_API clvae_status clvae_plot_loss(const char *path, const double *train, const double *test, int n);

#ifdef __cplusplus
}
#endif

#endif
