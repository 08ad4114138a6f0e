/* PNG files through libpng; writes go to a temporary file renamed into place (files.h). */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/files.h"
#include "clvae/image.h"
#include "device/internal.h"

/* libpng's errors end the write through its longjmp, silently (the caller says what failed,
 * with errno of the failed write); its warnings are not ours to print either. */
static void png_failed(png_structp png, png_const_charp msg) {
  (void)msg;
  png_longjmp(png, 1);
}
static void png_warned(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

clvae_status clvae_png_write(const char *path, int w, int h, int channels, const uint8_t *px) {
  clvae_output out;
  clvae_status st = clvae_output_open(&out, path);
  if (st != CLVAE_OK) return st;
  FILE *f = out.f;
  errno = 0;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_failed, png_warned);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  volatile int ok = 0;
  if (png && info && !setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(px + (size_t)y * w * channels));
    png_write_end(png, NULL);
    ok = 1;
  }
  int e = errno;
  png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
  if (!ok) {
    clvae_output_abort(&out);
    return clvae__fail(CLVAE_ERR_WRITE, "%s: cannot write the PNG: %s", path, e ? strerror(e) : "out of memory in libpng");
  }
  return clvae_output_commit(&out, 0);
}

clvae_status clvae_png_read(const char *path, int *w, int *h, int *channels, uint8_t **px) {
  FILE *f;
  *px = NULL;
  clvae_status rs = clvae_fopen_regular(path, &f);
  if (rs != CLVAE_OK) return rs;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  uint8_t *volatile data = NULL;
  volatile clvae_status st = CLVAE_ERR_FORMAT;
  if (png && info && !setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_read_info(png, info);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (depth == 8 && (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_RGB)) {
      *w = (int)png_get_image_width(png, info), *h = (int)png_get_image_height(png, info);
      *channels = type == PNG_COLOR_TYPE_RGB ? 3 : 1;
      data = malloc((size_t)*w * *h * *channels);
      if (data) {
        for (int y = 0; y < *h; y++) png_read_row(png, data + (size_t)y * *w * *channels, NULL);
        st = CLVAE_OK;
      }
    }
  }
  png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
  fclose(f);
  if (st != CLVAE_OK) {
    free(data);
    return clvae__fail(st, "%s: not an 8-bit grey or RGB PNG", path);
  }
  *px = data;
  return CLVAE_OK;
}

void clvae_mosaic(uint8_t *dst, const float *imgs, int n, int cols, int th, int tw, int ch) {
  size_t rows = (size_t)(n + cols - 1) / cols, row = (size_t)tw * ch, W = (size_t)cols * row; /* bytes per line */
  memset(dst, 0, rows * th * W);
  for (int i = 0; i < n; i++)
    for (int y = 0; y < th; y++)
      for (size_t x = 0; x < row; x++) {
        float p = imgs[((size_t)i * th + y) * row + x];
        p = p < 0 ? 0 : p > 1 ? 1 : p;
        dst[((size_t)(i / cols) * th + y) * W + (size_t)(i % cols) * row + x] = (uint8_t)(255.0f * p + 0.5f); /* round */
      }
}
