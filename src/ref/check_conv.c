/* The convolution ops (ops/conv.c: im2col and col2im around the GEMM) against the
 * direct-loop reference (ref_conv*), forward and backward, both kinds, at the TF tutorial's
 * shapes and odd ones. Tolerance as for GEMM: |got − ref| ≤ 1e-6 + 1e-4·Σ|terms| (a float32
 * accumulation bound with a margin; Σ|terms| includes |bias|). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/check_internal.h"
#include "ref/ref.h"

static size_t image_size(const clvae_conv_geom *g) { return (size_t)g->B * g->H * g->W * g->C; }
static size_t grid_size(const clvae_conv_geom *g) { return (size_t)g->B * g->Ho * g->Wo * g->F; }

/* W (K·K·C, F) as the ops read it: in place, or packed ahead (both orientations). */
static int weights(clvae_device *dev, check_result *r, const dbuf *dw, int rows, int cols, int packed,
                   clvae_gemm_plan **plan, dbuf *dpk, clvae_weights *w) {
  *w = (clvae_weights){chk_dv(dw), rows, cols, NULL, clvae_at(NULL, 0), -1, -1};
  if (!packed) return 1;
  clvae_pack_job jobs[2] = {{dw->off, cols, 0, rows, cols}, {dw->off, cols, 1, cols, rows}};
  if (clvae_gemm_plan_create(plan, dev, jobs, 2) != CLVAE_OK ||
      !chk_dput(dev, r, dpk, NULL, clvae_gemm_plan_size(*plan), 4, 0) ||
      clvae_gemm_pack(dev, *plan, clvae_at(dw->b, 0), clvae_at(dpk->b, 0)) != CLVAE_OK)
    return 0;
  w->plan = *plan, w->packed = clvae_at(dpk->b, 0), w->job = 0, w->job_t = 1;
  return 1;
}

void check_conv(clvae_device *dev, check_result *r, int deconv, const clvae_conv_geom *g, clvae_act act, int masked,
                int packed, uint64_t seed) {
  chk_begin(r, "conv", "%s B=%d %dx%dx%d %s %dx%dx%d K=%d S=%d pad %d,%d %s%s%s", deconv ? "deconv" : "conv", g->B,
            deconv ? g->Ho : g->H, deconv ? g->Wo : g->W, deconv ? g->F : g->C, "->", deconv ? g->H : g->Ho,
            deconv ? g->W : g->Wo, deconv ? g->C : g->F, g->K, g->S, g->pt, g->pl,
            act == CLVAE_ACT_RELU ? "relu" : act == CLVAE_ACT_SIGMOID ? "sigmoid" : "linear", masked ? " masked" : "",
            packed ? " packed" : "");
  const int kkc = g->K * g->K * g->C, nb = deconv ? g->C : g->F;
  const int ldw = (kkc + !deconv + 15) / 16 * 16;
  const size_t nx = deconv ? grid_size(g) : image_size(g), ny = deconv ? image_size(g) : grid_size(g);
  const size_t nw = (size_t)kkc * g->F, nwork = (size_t)g->B * g->Ho * g->Wo * ldw;
  uint64_t s = seed;
  float *x = chk_rand_floats(nx, &s, -1, 1), *w = chk_rand_floats(nw, &s, -0.5f, 0.5f), *b = chk_rand_floats(nb, &s, -1, 1);
  float *dy = chk_rand_floats(ny, &s, -1, 1), *mask = chk_rand_floats(nx, &s, -1, 1);
  float *y = malloc(ny * 4), *yr = malloc(ny * 4), *gw = malloc((nw + nb) * 4), *rw = malloc(nw * 4), *rb = malloc(nb * 4);
  float *gx = malloc(nx * 4), *rx = malloc(nx * 4);
  double *ymag = malloc(ny * 8), *wmag = malloc(nw * 8), *bmag = calloc((size_t)nb, 8), *xmag = malloc(nx * 8);
  dbuf dx = {0}, dw = {0}, db = {0}, dyb = {0}, dgx = {0}, dgw = {0}, dgb = {0}, dm = {0}, dwork = {0}, dpk = {0};
  clvae_gemm_plan *plan = NULL;
  clvae_weights wt;
  int ok = 0;
  if (!x || !w || !b || !dy || !mask || !y || !yr || !gw || !rw || !rb || !gx || !rx || !ymag || !wmag || !bmag || !xmag) {
    snprintf(r->detail, sizeof r->detail, "out of host memory");
    goto done;
  }
  for (size_t i = 0; i < nx; i += 5) mask[i] = 0.0f; /* a ReLU output of 0 masks its gradient: > 0, not ≥ 0 */
  if (!ref_conv(deconv, g, x, w, b, act, yr, ymag) ||
      !ref_conv_backward(deconv, g, x, dy, w, masked ? mask : NULL, rw, rb, rx, wmag, xmag)) {
    snprintf(r->detail, sizeof r->detail, "out of host memory");
    goto done;
  }
  for (size_t i = 0; i < ny; i++) bmag[i % (size_t)nb] += fabs(dy[i]);
  /* the device: forward, then backward from dy, into buffers with guards */
  if (!chk_dput(dev, r, &dx, x, nx, 4, 3) || !chk_dput(dev, r, &dw, w, nw, 4, 5) || !chk_dput(dev, r, &db, b, nb, 4, 1) ||
      !chk_dput(dev, r, &dyb, dy, ny, 4, 2) || !chk_dput(dev, r, &dgx, NULL, nx, 4, 0) ||
      !chk_dput(dev, r, &dgw, NULL, nw + (deconv ? 0 : nb), 4, 0) || !chk_dput(dev, r, &dgb, NULL, nb, 4, 0) ||
      !chk_dput(dev, r, &dm, mask, nx, 4, 0) || !chk_dput(dev, r, &dwork, NULL, nwork, 4, 0) ||
      !weights(dev, r, &dw, kkc, g->F, packed, &plan, &dpk, &wt))
    goto done;
  clvae_view none = clvae_at(NULL, 0), mk = masked ? chk_dv(&dm) : none, yv = chk_dv(&dgx);
  dbuf dy_out = {0};
  if (!chk_dput(dev, r, &dy_out, NULL, ny, 4, 0)) goto done;
  yv = chk_dv(&dy_out);
  clvae_status st = deconv ? clvae_deconv_forward(dev, g, chk_dv(&dx), &wt, chk_dv(&db), act, yv, chk_dv(&dwork), ldw)
                           : clvae_conv_forward(dev, g, chk_dv(&dx), &wt, chk_dv(&db), act, yv, chk_dv(&dwork), ldw);
  if (st == CLVAE_OK && !chk_dget(dev, r, &dy_out, y, "y")) st = CLVAE_ERR_IO;
  chk_dfree(&dy_out);
  if (st == CLVAE_OK)
    st = deconv ? clvae_deconv_backward(dev, g, chk_dv(&dx), chk_dv(&dyb), &wt, chk_dv(&dgw), chk_dv(&dgb),
                                        chk_dv(&dwork), ldw, chk_dv(&dgx), mk)
                : clvae_conv_backward(dev, g, chk_dv(&dyb), none, &wt, chk_dv(&dgw), chk_dv(&dwork), ldw, chk_dv(&dgx), mk);
  if (st != CLVAE_OK) {
    if (st != CLVAE_ERR_IO) chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dgw, gw, "dW") || !chk_dget(dev, r, &dgx, gx, "dx")) goto done;
  if (deconv && !chk_dget(dev, r, &dgb, gw + nw, "db")) goto done;
  chk_compare(r, "y", y, yr, ymag, ny, 1e-6, 1e-4);
  chk_compare(r, "dW", gw, rw, wmag, nw, 1e-6, 1e-4);
  chk_compare(r, "db", gw + nw, rb, bmag, (size_t)nb, 1e-6, 1e-4);
  chk_compare(r, "dx", gx, rx, xmag, nx, 1e-6, 1e-4);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dx), chk_dfree(&dw), chk_dfree(&db), chk_dfree(&dyb), chk_dfree(&dgx), chk_dfree(&dgw), chk_dfree(&dgb);
  chk_dfree(&dm), chk_dfree(&dwork), chk_dfree(&dpk);
  clvae_gemm_plan_free(plan);
  free(x), free(w), free(b), free(dy), free(mask), free(y), free(yr), free(gw), free(rw), free(rb), free(gx), free(rx);
  free(ymag), free(wmag), free(bmag), free(xmag);
}

/* A geometry from the image side's size and TF's padding rule (see src/model/net.c). */
static clvae_conv_geom conv_geom(int B, int H, int W, int C, int F, int K, int S, int valid) {
  clvae_conv_geom g = {B, H, W, C, 0, 0, F, K, S, 0, 0};
  g.Ho = valid ? (H - K) / S + 1 : (H + S - 1) / S, g.Wo = valid ? (W - K) / S + 1 : (W + S - 1) / S;
  int ph = (g.Ho - 1) * S + K - H, pw = (g.Wo - 1) * S + K - W;
  g.pt = valid || ph < 0 ? 0 : ph / 2, g.pl = valid || pw < 0 ? 0 : pw / 2;
  return g;
}

int check_conv_suite(clvae_device *dev, int mode, void (*report)(const check_result *, void *), void *user,
                     uint64_t *seed) {
  typedef struct { int deconv, B, H, W, C, F, K, S, valid, act, masked; } conv_case;
  /* the TF tutorial's layers (image side, grid side's channels), batch 7; in small mode a
   * scaled-down set of the same kinds */
  static const conv_case real[] = {
      {0, 7, 28, 28, 1, 32, 3, 2, 1, 1, 0}, {0, 7, 13, 13, 32, 64, 3, 2, 1, 1, 1}, {1, 7, 14, 14, 64, 32, 3, 2, 0, 1, 0},
      {1, 7, 28, 28, 32, 64, 3, 2, 0, 1, 1}, {1, 7, 28, 28, 1, 32, 3, 1, 0, 2, 1}};
  static const conv_case odd[] = {
      {0, 1, 5, 7, 3, 4, 1, 1, 0, 1, 1},   /* a 1x1 kernel, RGB, non-square, batch 1 */
      {0, 7, 7, 5, 1, 3, 3, 3, 1, 0, 0},   /* stride 3, valid */
      {0, 3, 9, 6, 3, 17, 4, 2, 0, 1, 1},  /* an even kernel, same: padding 1 before, 2 after */
      {1, 1, 6, 9, 3, 5, 2, 2, 1, 1, 1},   /* transposed, K = S, valid */
      {1, 7, 9, 6, 1, 2, 4, 3, 0, 0, 0},   /* transposed, stride 3, same */
      {1, 2, 7, 7, 33, 16, 3, 2, 1, 2, 0}, /* transposed, valid, K > S, 33 channels (16 + 16 + 1) */
      {0, 2, 8, 8, 32, 16, 3, 1, 0, 1, 1}, /* 32 channels: the vector path */
  };
  static const conv_case small[] = {
      {0, 2, 6, 5, 1, 4, 3, 2, 1, 1, 0}, {1, 2, 6, 6, 3, 4, 3, 2, 0, 1, 1}, {1, 2, 5, 5, 1, 3, 3, 1, 0, 2, 1}};
  const conv_case *sets[2] = {mode == CHECK_SMALL ? small : real, odd};
  const int counts[2] = {mode == CHECK_SMALL ? 3 : 5, mode == CHECK_QUICK ? 2 : 7};
  int failures = 0, builtin = clvae_gemm_get_impl(dev) == CLVAE_GEMM_BUILTIN;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < counts[k]; i++) {
      const conv_case *c = &sets[k][i];
      /* a transposed conv's geometry is that of the conv whose input is its output */
      clvae_conv_geom g = conv_geom(c->B, c->H, c->W, c->C, c->F, c->K, c->S, c->valid);
      for (int packed = 0; packed <= (builtin && k == 0); packed++) {
        check_result r;
        check_conv(dev, &r, c->deconv, &g, (clvae_act)c->act, c->masked, packed, (*seed)++);
        failures += !r.pass;
        if (report) report(&r, user);
      }
    }
  return failures;
}
