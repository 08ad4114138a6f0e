/* The plot functions of a build without cairo (meson setup -Dcairo=disabled, or cairo not
 * found): they refuse, saying how to get them. */
#include "clvae/image.h"
#include "device/internal.h"

int clvae_have_plots(void) { return 0; }

static clvae_status no_plots(const char *path) {
  return clvae__fail(CLVAE_ERR_ARG, "%s: this clvae was built without plots (cairo); install libcairo2-dev and "
                     "rebuild (meson setup --reconfigure -Dcairo=enabled)", path);
}

clvae_status clvae_plot_scatter(const char *path, const float *xy, int stride, const int *cls, int n, int classes,
                                const char *const *names, const char *xlabel, const char *ylabel, const char *title) {
  (void)xy, (void)stride, (void)cls, (void)n, (void)classes, (void)names, (void)xlabel, (void)ylabel, (void)title;
  return no_plots(path);
}

clvae_status clvae_plot_loss(const char *path, const double *train, const double *test, int n) {
  (void)train, (void)test, (void)n;
  return no_plots(path);
}
