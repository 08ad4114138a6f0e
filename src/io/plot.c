/* Plots with cairo (text through its toy font API and fontconfig): a latent-space scatter
 * coloured by class, and the loss curves. Axes with "nice" ticks (1, 2, 5 × 10^k). */
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "clvae/files.h"
#include "clvae/image.h"
#include "device/internal.h"

#define PI 3.14159265358979323846

typedef struct axes {
  double x0, x1, y0, y1;     /* data range */
  double left, right, top, bottom; /* plot area, pixels */
  int x_whole;               /* x counts things (epochs): whole-number ticks only */
} axes;

int clvae_have_plots(void) { return 1; }

static double px(const axes *a, double x) { return a->left + (x - a->x0) / (a->x1 - a->x0) * (a->right - a->left); }
static double py(const axes *a, double y) { return a->bottom - (y - a->y0) / (a->y1 - a->y0) * (a->bottom - a->top); }

static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), r = raw / mag;
  return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

/* Widens [lo, hi] to whole ticks, with a margin if the range is empty. */
static void nice_range(double *lo, double *hi) {
  if (!(*hi > *lo)) *lo -= 1, *hi += 1;
  double s = nice_step(*hi - *lo, 6);
  *lo = floor(*lo / s) * s, *hi = ceil(*hi / s) * s;
}

/* s as valid UTF-8 (cairo refuses anything else): each byte that does not start or continue
 * a well-formed sequence becomes U+FFFD. */
static void utf8_valid(const char *s, char *out, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  while (*p && o + 4 < n) {
    int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
    for (int k = 1; k < len; k++)
      if ((p[k] & 0xc0) != 0x80) len = 0;
    if (len == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) len = 0; /* overlong, surrogate */
    if (len == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))) len = 0;
    if (!len) {
      memcpy(out + o, "\xef\xbf\xbd", 3), o += 3, p++;
      continue;
    }
    memcpy(out + o, p, (size_t)len), o += (size_t)len, p += len;
  }
  out[o] = '\0';
}

static void text(cairo_t *cr, double x, double y, const char *raw, double ax, double ay) {
  cairo_text_extents_t e;
  char s[1024];
  utf8_valid(raw, s, sizeof s);
  cairo_text_extents(cr, s, &e);
  cairo_move_to(cr, x - e.width * ax - e.x_bearing, y + e.height * ay - (e.height + e.y_bearing));
  cairo_show_text(cr, s);
}

static void draw_axes(cairo_t *cr, const axes *a, const char *xlabel, const char *ylabel, const char *title) {
  char buf[32];
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, a->left, a->top, a->right - a->left, a->bottom - a->top);
  cairo_stroke(cr);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  double sx = nice_step(a->x1 - a->x0, 6), sy = nice_step(a->y1 - a->y0, 6);
  if (a->x_whole && sx < 1) sx = 1;
  for (double v = ceil(a->x0 / sx - 1e-9) * sx; v <= a->x1 + 1e-9 * sx; v += sx) {
    snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 ? 0.0 : v);
    cairo_move_to(cr, px(a, v), a->bottom), cairo_line_to(cr, px(a, v), a->bottom + 5), cairo_stroke(cr);
    text(cr, px(a, v), a->bottom + 9, buf, 0.5, 1.0);
  }
  for (double v = ceil(a->y0 / sy - 1e-9) * sy; v <= a->y1 + 1e-9 * sy; v += sy) {
    snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 ? 0.0 : v);
    cairo_move_to(cr, a->left - 5, py(a, v)), cairo_line_to(cr, a->left, py(a, v)), cairo_stroke(cr);
    text(cr, a->left - 9, py(a, v), buf, 1.0, 0.5);
  }
  cairo_set_font_size(cr, 14);
  text(cr, (a->left + a->right) / 2, a->bottom + 32, xlabel, 0.5, 1.0);
  cairo_save(cr);
  cairo_translate(cr, a->left - 52, (a->top + a->bottom) / 2);
  cairo_rotate(cr, -PI / 2);
  text(cr, 0, 0, ylabel, 0.5, 0.5);
  cairo_restore(cr);
  cairo_set_font_size(cr, 16);
  text(cr, (a->left + a->right) / 2, a->top - 14, title, 0.5, 0.0);
}

static cairo_status_t to_file(void *f, const unsigned char *data, unsigned int n) {
  return fwrite(data, 1, n, f) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Writes the surface as a PNG through a temporary file renamed into place (files.h). */
static clvae_status finish(cairo_surface_t *s, cairo_t *cr, const char *path) {
  clvae_output out;
  cairo_status_t cs = cairo_status(cr);
  cairo_destroy(cr);
  clvae_status st = clvae_output_open(&out, path);
  if (st == CLVAE_OK && cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png_stream(s, to_file, out.f);
  cairo_surface_destroy(s);
  if (st != CLVAE_OK) return st;
  if (cs != CAIRO_STATUS_SUCCESS) {
    clvae_output_abort(&out);
    return clvae__fail(cs == CAIRO_STATUS_WRITE_ERROR ? CLVAE_ERR_WRITE : CLVAE_ERR_IO, "%s: cannot write the plot: %s",
                       path, cairo_status_to_string(cs));
  }
  return clvae_output_commit(&out, 0);
}

static cairo_t *canvas(int w, int h, cairo_surface_t **s) {
  *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(*s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  return cr;
}

/* Matplotlib's "tab10" colours. */
static const double palette[10][3] = {
  {0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74},
  {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81},
};

clvae_status clvae_plot_scatter(const char *path, const float *xy, int stride, const int *cls, int n, int classes,
                                const char *const *names, const char *xlabel, const char *ylabel, const char *title) {
  cairo_surface_t *s;
  cairo_t *cr = canvas(1000, 760, &s);
  axes a = {INFINITY, -INFINITY, INFINITY, -INFINITY, 90, 760, 50, 680, 0};
  for (int i = 0; i < n; i++) {
    double x = xy[(size_t)i * stride], y = xy[(size_t)i * stride + 1];
    if (!isfinite(x) || !isfinite(y)) continue;
    a.x0 = fmin(a.x0, x), a.x1 = fmax(a.x1, x), a.y0 = fmin(a.y0, y), a.y1 = fmax(a.y1, y);
  }
  if (!(a.x0 <= a.x1)) a.x0 = -1, a.x1 = 1, a.y0 = -1, a.y1 = 1;
  nice_range(&a.x0, &a.x1), nice_range(&a.y0, &a.y1);
  cairo_save(cr);
  cairo_rectangle(cr, a.left, a.top, a.right - a.left, a.bottom - a.top);
  cairo_clip(cr);
  for (int i = 0; i < n; i++) {
    const double *c = palette[cls && cls[i] >= 0 ? cls[i] % 10 : 0];
    cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.55);
    cairo_arc(cr, px(&a, xy[(size_t)i * stride]), py(&a, xy[(size_t)i * stride + 1]), 1.8, 0, 2 * PI);
    cairo_fill(cr);
  }
  cairo_restore(cr);
  draw_axes(cr, &a, xlabel, ylabel, title);
  cairo_set_font_size(cr, 13);
  for (int k = 0; cls && k < classes && k < 20; k++) { /* the legend, right of the plot */
    double y = a.top + 10 + k * 24;
    cairo_set_source_rgb(cr, palette[k % 10][0], palette[k % 10][1], palette[k % 10][2]);
    cairo_arc(cr, a.right + 30, y, 6, 0, 2 * PI);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, a.right + 44, y, k == 19 && classes > 20 ? "…" : names[k], 0.0, 0.5);
  }
  return finish(s, cr, path);
}

clvae_status clvae_plot_loss(const char *path, const double *train, const double *test, int n) {
  cairo_surface_t *s;
  cairo_t *cr = canvas(860, 520, &s);
  axes a = {n > 1 ? 1 : 0, n > 1 ? n : 2, INFINITY, -INFINITY, 90, 830, 50, 440, 1};
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 2; k++) {
      double v = k ? test[i] : train[i];
      if (isfinite(v)) a.y0 = fmin(a.y0, v), a.y1 = fmax(a.y1, v);
    }
  if (!(a.y0 <= a.y1)) a.y0 = 0, a.y1 = 1;
  nice_range(&a.y0, &a.y1);
  const double *series[2] = {train, test};
  for (int k = 0; k < 2; k++) {
    cairo_set_source_rgb(cr, palette[k][0], palette[k][1], palette[k][2]);
    cairo_set_line_width(cr, 2);
    for (int i = 0; i < n; i++) (i ? cairo_line_to : cairo_move_to)(cr, px(&a, i + 1), py(&a, series[k][i]));
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
      cairo_arc(cr, px(&a, i + 1), py(&a, series[k][i]), 3, 0, 2 * PI);
      cairo_fill(cr);
    }
  }
  draw_axes(cr, &a, "epoch", "loss per image (reconstruction + KL)", "Training and test loss");
  cairo_set_font_size(cr, 13);
  const char *labels[2] = {"train (mean over the epoch's batches)", "test"};
  for (int k = 0; k < 2; k++) {
    double y = a.top + 18 + k * 20;
    cairo_set_source_rgb(cr, palette[k][0], palette[k][1], palette[k][2]);
    cairo_rectangle(cr, a.right - 290, y - 2, 18, 4);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, a.right - 266, y, labels[k], 0.0, 0.5);
  }
  return finish(s, cr, path);
}
