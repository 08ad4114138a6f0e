/* Convolutions on the GEMM: im2col and col2im (cl/conv.cl) around clvae_gemm_weights,
 * whose epilogues carry bias, ReLU and the ReLU-backward mask as for dense layers. The
 * patches are materialized (im2col) rather than gathered by the GEMM's packing: the
 * patch matrix of a conv is also the A operand of its weight gradient, so forward's copy
 * serves backward too. Layout NHWC: an activation (B, H, W, C) is a (B·H·W, C) matrix. */
#include <stdio.h>

#include "ops/registry.h"

/* A row of the output per work-item on a CPU, an element on a GPU (see cl/conv.cl). */
static int rows_style(const clvae_device *dev) { return !dev->gpu_style; }

static void conv_defines(clvae_device *dev, char *buf, size_t n) { snprintf(buf, n, "-DROWS=%d", rows_style(dev)); }

const clvae_program_def clvae__program_conv = {"conv", conv_defines, NULL};
static const clvae_kernel_def k_im2col = {&clvae__program_conv, "im2col"};
static const clvae_kernel_def k_col2im = {&clvae__program_conv, "col2im"};

static size_t rows_grid(const clvae_conv_geom *g) { return (size_t)g->B * g->Ho * g->Wo; }
static size_t rows_image(const clvae_conv_geom *g) { return (size_t)g->B * g->H * g->W; }

clvae_status clvae_conv_geom_check(const clvae_conv_geom *g) {
  if (g->B < 1 || g->H < 1 || g->W < 1 || g->C < 1 || g->Ho < 1 || g->Wo < 1 || g->F < 1 || g->K < 1 || g->S < 1 ||
      g->pt < 0 || g->pl < 0 || g->pt >= g->K || g->pl >= g->K)
    return clvae__fail(CLVAE_ERR_ARG, "conv: geometry B=%d image %dx%dx%d grid %dx%dx%d K=%d S=%d pad %d,%d", g->B, g->H,
                       g->W, g->C, g->Ho, g->Wo, g->F, g->K, g->S, g->pt, g->pl);
  /* kernels index with 32-bit ints: pixels, patch rows and columns must fit */
  uint64_t kkc = (uint64_t)g->K * g->K * g->C;
  if (rows_grid(g) > 0x7fffffff || rows_image(g) > 0x7fffffff || kkc + 1 > 0x7fffffff)
    return clvae__fail(CLVAE_ERR_LIMIT, "conv: %zu grid rows, %zu pixels, %llu patch columns: too large", rows_grid(g),
                       rows_image(g), (unsigned long long)kkc);
  return CLVAE_OK;
}

/* Elements a (rows, cols) matrix with row stride ld spans. */
static size_t span(size_t rows, size_t cols, size_t ld) { return rows && cols ? (rows - 1) * ld + cols : 0; }

clvae_status clvae_im2col(clvae_device *dev, const clvae_conv_geom *g, clvae_view img, clvae_view patches, int ldp,
                          int ones) {
  cl_uint i_off, p_off;
  clvae_status st = clvae_conv_geom_check(g);
  if (st != CLVAE_OK) return st;
  const int kkc = g->K * g->K * g->C;
  if (ldp < kkc + (ones ? 1 : 0))
    return clvae__fail(CLVAE_ERR_ARG, "im2col: row stride %d < %d patch columns%s", ldp, kkc, ones ? " + ones" : "");
  if ((st = clvae__view("im2col", "image", img, rows_image(g) * g->C, 4, &i_off)) != CLVAE_OK ||
      (st = clvae__view("im2col", "patches", patches, span(rows_grid(g), (size_t)kkc + (ones ? 1 : 0), (size_t)ldp), 4,
                        &p_off)) != CLVAE_OK)
    return st;
  cl_int rows = (cl_int)rows_grid(g), on = ones;
  size_t global[2] = {(size_t)g->K * g->K, (size_t)rows}, local[2] = {1, 64};
  if (rows_style(dev)) global[0] = rows_grid(g) / (size_t)g->Wo, global[1] = 1, local[0] = 8, local[1] = 1;
  karg args[] = {KARG(patches.buf->mem), KARG(p_off), KARG(ldp), KARG(on), KARG(img.buf->mem), KARG(i_off),
                 KARG(rows), KARG(g->H), KARG(g->W), KARG(g->C), KARG(g->Ho), KARG(g->Wo), KARG(g->K), KARG(g->S),
                 KARG(g->pt), KARG(g->pl)};
  return clvae__launch(dev, &k_im2col, 2, global, local, 16, args);
}

clvae_status clvae_col2im(clvae_device *dev, const clvae_conv_geom *g, clvae_view patches, int ldp, clvae_view img,
                          const clvae_epilogue *ep) {
  cl_uint i_off, p_off, b_off = 0, m_off = 0;
  clvae_status st = clvae_conv_geom_check(g);
  if (st != CLVAE_OK) return st;
  const int kkc = g->K * g->K * g->C;
  cl_int has_bias = ep && ep->bias.buf, act = ep ? (cl_int)ep->act : 0, has_mask = ep && ep->mask.buf;
  if (ldp < kkc || act < CLVAE_ACT_NONE || act > CLVAE_ACT_SIGMOID || (act && !has_bias) || (ep && ep->panels.buf))
    return clvae__fail(CLVAE_ERR_ARG, "col2im: row stride %d for %d patch columns, activation %d%s", ldp, kkc, act,
                       ep && ep->panels.buf ? ", panels (not supported)" : "");
  const size_t pixels = rows_image(g);
  if ((st = clvae__view("col2im", "patches", patches, span(rows_grid(g), (size_t)kkc, (size_t)ldp), 4, &p_off)) != CLVAE_OK ||
      (st = clvae__view("col2im", "image", img, pixels * g->C, 4, &i_off)) != CLVAE_OK ||
      (has_bias && (st = clvae__view("col2im", "bias", ep->bias, (size_t)g->C, 4, &b_off)) != CLVAE_OK) ||
      (has_mask && (st = clvae__view("col2im", "mask", ep->mask, pixels * g->C, 4, &m_off)) != CLVAE_OK))
    return st;
  if (has_mask && ep->ldm != g->C) return clvae__fail(CLVAE_ERR_ARG, "col2im: mask stride %d, not C=%d", ep->ldm, g->C);
  cl_mem any = img.buf->mem, bias = has_bias ? ep->bias.buf->mem : any, mask = has_mask ? ep->mask.buf->mem : any;
  cl_int np = (cl_int)pixels;
  size_t global[2] = {(size_t)g->C, pixels}, local[2] = {1, 64};
  if (rows_style(dev)) global[0] = pixels / (size_t)g->W, global[1] = 1, local[0] = 8, local[1] = 1;
  karg args[] = {KARG(img.buf->mem), KARG(i_off), KARG(patches.buf->mem), KARG(p_off), KARG(ldp), KARG(np),
                 KARG(g->H), KARG(g->W), KARG(g->C), KARG(g->Ho), KARG(g->Wo), KARG(g->K), KARG(g->S), KARG(g->pt),
                 KARG(g->pl), KARG(has_bias), KARG(bias), KARG(b_off), KARG(act), KARG(has_mask), KARG(mask),
                 KARG(m_off)};
  return clvae__launch(dev, &k_col2im, 2, global, local, 22, args);
}

#define TRY(call)                    \
  do {                               \
    clvae_status st_ = (call);       \
    if (st_ != CLVAE_OK) return st_; \
  } while (0)

/* The kernel matrix must be (K·K·C, F). */
static clvae_status kernel_shape(const char *op, const clvae_conv_geom *g, const clvae_weights *w) {
  TRY(clvae_conv_geom_check(g));
  if (w->rows != g->K * g->K * g->C || w->cols != g->F)
    return clvae__fail(CLVAE_ERR_ARG, "%s: a %dx%d kernel for K=%d, C=%d, F=%d (K·K·C x F expected)", op, w->rows,
                       w->cols, g->K, g->C, g->F);
  return CLVAE_OK;
}

clvae_status clvae_conv_forward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x, const clvae_weights *w,
                                clvae_view bias, clvae_act act, clvae_view y, clvae_view work, int ldw) {
  TRY(kernel_shape("conv_forward", g, w));
  TRY(clvae_im2col(dev, g, x, work, ldw, 1));
  clvae_epilogue ep = {bias, act, clvae_at(NULL, 0), 0, clvae_at(NULL, 0)};
  return clvae_gemm_weights(dev, 0, 0, (int)rows_grid(g), work, ldw, w, y, g->F, &ep);
}

clvae_status clvae_conv_backward(clvae_device *dev, const clvae_conv_geom *g, clvae_view dy, clvae_view dy_panels,
                                 const clvae_weights *w, clvae_view dwb, clvae_view work, int ldw, clvae_view dx,
                                 clvae_view mask) {
  TRY(kernel_shape("conv_backward", g, w));
  const int rows = (int)rows_grid(g), kkc = w->rows;
  if (dy_panels.buf)
    TRY(clvae_gemm_from_panels(dev, 1, kkc + 1, g->F, rows, 1.0f, work, ldw, dy_panels, 0.0f, dwb, g->F, NULL));
  else
    TRY(clvae_gemm_ex(dev, 1, 0, kkc + 1, g->F, rows, 1.0f, work, ldw, dy, g->F, 0.0f, dwb, g->F, NULL));
  if (!dx.buf) return CLVAE_OK;
  TRY(clvae_gemm_weights(dev, 0, 1, rows, dy, g->F, w, work, ldw, NULL));
  clvae_epilogue ep = {clvae_at(NULL, 0), CLVAE_ACT_NONE, mask, g->C, clvae_at(NULL, 0)};
  return clvae_col2im(dev, g, work, ldw, dx, &ep);
}

clvae_status clvae_deconv_forward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x, const clvae_weights *w,
                                  clvae_view bias, clvae_act act, clvae_view y, clvae_view work, int ldw) {
  TRY(kernel_shape("deconv_forward", g, w));
  TRY(clvae_gemm_weights(dev, 0, 1, (int)rows_grid(g), x, g->F, w, work, ldw, NULL));
  clvae_epilogue ep = {bias, act, clvae_at(NULL, 0), 0, clvae_at(NULL, 0)};
  return clvae_col2im(dev, g, work, ldw, y, &ep);
}

clvae_status clvae_deconv_backward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x, clvae_view dy,
                                   const clvae_weights *w, clvae_view dw, clvae_view db, clvae_view work, int ldw,
                                   clvae_view dx, clvae_view mask) {
  TRY(kernel_shape("deconv_backward", g, w));
  const int rows = (int)rows_grid(g), kkc = w->rows;
  TRY(clvae_im2col(dev, g, dy, work, ldw, 0));
  TRY(clvae_gemm_ex(dev, 1, 0, kkc, g->F, rows, 1.0f, work, ldw, x, g->F, 0.0f, dw, g->F, NULL));
  TRY(clvae_colsum(dev, db, dy, (int)rows_image(g), g->C));
  if (!dx.buf) return CLVAE_OK;
  clvae_epilogue ep = {clvae_at(NULL, 0), CLVAE_ACT_NONE, mask, g->F, clvae_at(NULL, 0)};
  return clvae_gemm_weights(dev, 0, 0, rows, work, ldw, w, dx, g->F, mask.buf ? &ep : NULL);
}
