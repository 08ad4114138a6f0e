/* Reference VAE in double (see vae_ref.h): the forward list, then its mirror, as loops
 * over the net's layers, with each layer kind written out plainly. */
#include "ref/vae_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref.h"

/* C (M, N) = op(A)·op(B), row-major, op = transpose when t*. */
static void mm(double *C, const double *A, const double *B, int M, int N, int K, int ta, int tb) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < K; k++)
        s += (ta ? A[(size_t)k * M + i] : A[(size_t)i * K + k]) * (tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
      C[(size_t)i * N + j] = s;
    }
}

static void colsum(double *out, const double *x, int B, int N) {
  for (int j = 0; j < N; j++) {
    out[j] = 0;
    for (int r = 0; r < B; r++) out[j] += x[(size_t)r * N + j];
  }
}

/* y = x·W + b, then ReLU if asked (tracking the smallest |pre-activation|). */
static void dense(double *y, const double *x, const double *w, const double *b, int B, int in, int out, int relu,
                  double *minabs) {
  mm(y, x, w, B, out, in, 0, 0);
  for (size_t i = 0; i < (size_t)B * out; i++) {
    y[i] += b[i % (size_t)out];
    if (relu && fabs(y[i]) < *minabs) *minabs = fabs(y[i]);
    if (relu && y[i] < 0) y[i] = 0;
  }
}

/* Visits every (grid position, tap) of a convolution whose image pixel is inside: fn(ctx,
 * b, grid row index, image row index, tap), the row indices counting pixels (NHWC rows). */
typedef void (*tap_fn)(void *ctx, size_t grid, size_t pixel, int tap);
static void for_taps(const clvae_conv_geom *g, int B, tap_fn fn, void *ctx) {
  for (int b = 0; b < B; b++)
    for (int oy = 0; oy < g->Ho; oy++)
      for (int ox = 0; ox < g->Wo; ox++)
        for (int ky = 0; ky < g->K; ky++)
          for (int kx = 0; kx < g->K; kx++) {
            int y = oy * g->S + ky - g->pt, x = ox * g->S + kx - g->pl;
            if (y < 0 || y >= g->H || x < 0 || x >= g->W) continue;
            fn(ctx, ((size_t)b * g->Ho + oy) * g->Wo + ox, ((size_t)b * g->H + y) * g->W + x, ky * g->K + kx);
          }
}

/* What the tap visitors read and write: image side (pixels, C), grid side (positions, F),
 * the kernel W (K·K·C, F) and its gradient. */
typedef struct conv_ctx {
  const clvae_conv_geom *g;
  const double *img, *grid, *w; /* inputs */
  double *d_img, *d_grid, *dw;  /* outputs */
} conv_ctx;

static void conv_fwd_tap(void *p, size_t gi, size_t pi, int t) { /* grid += image·W */
  conv_ctx *c = p;
  const int C = c->g->C, F = c->g->F;
  for (int ch = 0; ch < C; ch++)
    for (int f = 0; f < F; f++) c->d_grid[gi * F + f] += c->img[pi * C + ch] * c->w[((size_t)t * C + ch) * F + f];
}
static void deconv_fwd_tap(void *p, size_t gi, size_t pi, int t) { /* image += grid·Wᵀ */
  conv_ctx *c = p;
  const int C = c->g->C, F = c->g->F;
  for (int ch = 0; ch < C; ch++)
    for (int f = 0; f < F; f++) c->d_img[pi * C + ch] += c->grid[gi * F + f] * c->w[((size_t)t * C + ch) * F + f];
}
static void conv_bwd_tap(void *p, size_t gi, size_t pi, int t) { /* given d_grid: dW and d_img */
  conv_ctx *c = p;
  const int C = c->g->C, F = c->g->F;
  for (int ch = 0; ch < C; ch++)
    for (int f = 0; f < F; f++) {
      c->dw[((size_t)t * C + ch) * F + f] += c->img[pi * C + ch] * c->d_grid[gi * F + f];
      if (c->d_img) c->d_img[pi * C + ch] += c->w[((size_t)t * C + ch) * F + f] * c->d_grid[gi * F + f];
    }
}
static void deconv_bwd_tap(void *p, size_t gi, size_t pi, int t) { /* given d_img: dW and d_grid */
  conv_ctx *c = p;
  const int C = c->g->C, F = c->g->F;
  for (int ch = 0; ch < C; ch++)
    for (int f = 0; f < F; f++) {
      c->dw[((size_t)t * C + ch) * F + f] += c->grid[gi * F + f] * c->d_img[pi * C + ch];
      if (c->d_grid) c->d_grid[gi * F + f] += c->w[((size_t)t * C + ch) * F + f] * c->d_img[pi * C + ch];
    }
}

/* A convolution layer's output (B rows of l->out), + bias, then ReLU if asked. */
static void conv_layer(const clvae_layer *l, double *y, const double *x, const double *w, const double *bias, int B,
                       int relu, double *minabs) {
  conv_ctx c = {&l->geom, NULL, NULL, w, NULL, NULL, NULL};
  memset(y, 0, (size_t)B * l->out * sizeof *y);
  if (l->kind == CLVAE_LAYER_CONV) c.img = x, c.d_grid = y, for_taps(&l->geom, B, conv_fwd_tap, &c);
  else c.grid = x, c.d_img = y, for_taps(&l->geom, B, deconv_fwd_tap, &c);
  int nb = l->kind == CLVAE_LAYER_CONV ? l->geom.F : l->geom.C;
  for (size_t i = 0; i < (size_t)B * l->out; i++) {
    y[i] += bias[i % (size_t)nb];
    if (relu && fabs(y[i]) < *minabs) *minabs = fabs(y[i]);
    if (relu && y[i] < 0) y[i] = 0;
  }
}

/* Its backward from dy (through its ReLU): dW, db (the column sums of dy as (pixels, nb))
 * and dx (if not NULL). */
static void conv_layer_backward(const clvae_layer *l, double *dw, double *db, double *dx, const double *x,
                                const double *dy, const double *w, int B) {
  size_t nw = (size_t)l->geom.K * l->geom.K * l->geom.C * l->geom.F;
  memset(dw, 0, nw * sizeof *dw);
  if (dx) memset(dx, 0, (size_t)B * l->in * sizeof *dx);
  conv_ctx c = {&l->geom, NULL, NULL, w, NULL, NULL, dw};
  if (l->kind == CLVAE_LAYER_CONV) c.img = x, c.d_grid = (double *)dy, c.d_img = dx, for_taps(&l->geom, B, conv_bwd_tap, &c);
  else c.grid = x, c.d_img = (double *)dy, c.d_grid = dx, for_taps(&l->geom, B, deconv_bwd_tap, &c);
  int nb = l->kind == CLVAE_LAYER_CONV ? l->geom.F : l->geom.C;
  colsum(db, dy, (int)((size_t)B * l->out / (size_t)nb), nb);
}

/* z = μ + exp(logσ²/2)·ε (rows ldz apart); returns Σ_b KL_b and writes kl (B) if given. */
static double sample(double *z, int ldz, double *eps, const double *ms, int B, int L, uint64_t seed, uint64_t step,
                     double *kl) {
  double total = 0;
  float n4[4];
  for (int b = 0; b < B; b++) {
    double klb = 0;
    for (int j = 0; j < L; j++) {
      if (j % 4 == 0) ref_normal4(seed, step, (uint32_t)b, (uint32_t)(j / 4), n4);
      double mu = ms[(size_t)b * 2 * L + j], lv = ms[(size_t)b * 2 * L + L + j];
      eps[(size_t)b * L + j] = n4[j % 4];
      z[(size_t)b * ldz + j] = mu + exp(0.5 * lv) * n4[j % 4];
      klb += 1 + lv - mu * mu - exp(lv);
    }
    if (kl) kl[b] = -0.5 * klb;
    total += -0.5 * klb;
  }
  return total;
}

/* Sigmoid of the logits y (+ bias), the reconstruction loss against x (rows ldx apart), and
 * dL/dy of the batch mean. Returns Σ_b recon_b. */
static double loss(int kind, double *dy, const double *y, const double *bias, const double *x, int ldx, int B, int D,
                   double *recon) {
  double total = 0;
  for (int b = 0; b < B; b++) {
    double rb = 0;
    for (int d = 0; d < D; d++) {
      size_t i = (size_t)b * D + d;
      double pp = 1 / (1 + exp(-(y[i] + (bias ? bias[d] : 0)))), xv = x[(size_t)b * ldx + d];
      if (kind == CLVAE_LOSS_MSE) {
        rb += (pp - xv) * (pp - xv);
        dy[i] = 2 * (pp - xv) * pp * (1 - pp) / B;
      } else {
        rb += -xv * log(pp) - (1 - xv) * log1p(-pp);
        dy[i] = (pp - xv) / B;
      }
    }
    if (recon) recon[b] = rb;
    total += rb;
  }
  return total;
}

double ref_vae_loss(const clvae_net *net, const double *p, const float *xf, const int *labels, int B,
                    uint64_t noise_step, double *grad, double *recon, double *kl, double *min_preact) {
  double *a[CLVAE_MAX_LAYERS + 2] = {0}, *d[CLVAE_MAX_LAYERS + 2] = {0}, total = 0, minabs = INFINITY;
  int ok = 1;
  for (int i = 0; i < net->nacts; i++) {
    a[i] = calloc((size_t)B * net->acts[i].width, sizeof(double));
    d[i] = calloc((size_t)B * net->acts[i].width, sizeof(double));
    ok &= a[i] && d[i];
  }
  if (!ok) total = NAN;
  const int X = net->acts[0].width, K = net->K; /* rows [x | one-hot] of X = D + K */
  const double beta = net->cfg.beta;
  for (int b = 0; ok && b < B; b++)
    for (int j = 0; j < X; j++)
      a[0][(size_t)b * X + j] = j < net->D ? xf[(size_t)b * net->D + j] : labels[b] == j - net->D;
  for (int i = 0; ok && i < net->nlayers; i++) { /* forward */
    const clvae_layer *l = &net->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) { /* z, then a conditional model's one-hot after it */
      const int W = net->acts[l->y].width;
      total += beta * sample(a[l->y], W, a[l->eps], a[l->x], B, l->out, net->cfg.seed, noise_step, kl);
      for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++) a[l->y][(size_t)b * W + l->out + k] = labels[b] == k;
      continue;
    }
    const double *w = p + net->tensors[l->kernel].offset, *b = p + net->tensors[l->bias].offset;
    const int last = i == net->nlayers - 1, relu = l->act == CLVAE_ACT_RELU;
    if (l->kind == CLVAE_LAYER_DENSE) dense(a[l->y], a[l->x], w, b, B, l->in, l->out, relu, &minabs);
    else if (l->kind == CLVAE_LAYER_OUTPUT) mm(a[l->y], a[l->x], w, B, l->out, l->in, 0, 0);
    else conv_layer(l, a[l->y], a[l->x], w, b, B, relu, &minabs);
    if (last) /* the logits, then the sigmoid and the loss (a dense output's bias is added there) */
      total += loss(net->cfg.loss, d[l->y], a[l->y], l->kind == CLVAE_LAYER_OUTPUT ? b : NULL, a[0], X, B, l->out, recon);
  }
  if (min_preact) *min_preact = minabs;
  for (int i = net->nlayers - 1; ok && grad && i >= 0; i--) { /* backward: the mirror */
    const clvae_layer *l = &net->layers[i];
    double *dy = d[l->y];
    if (l->kind == CLVAE_LAYER_SAMPLE) { /* dz: the first L columns of the decoder's input gradient */
      const int L = l->out, W = net->acts[l->y].width;
      for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++) {
          size_t r = (size_t)b * 2 * L, e = (size_t)b * L + j;
          double mu = a[l->x][r + j], lv = a[l->x][r + L + j], g = dy[(size_t)b * W + j];
          d[l->x][r + j] = g + beta * mu / B;
          d[l->x][r + L + j] = g * a[l->eps][e] * 0.5 * exp(0.5 * lv) + beta * 0.5 * (exp(lv) - 1) / B;
        }
      continue;
    }
    if (l->act == CLVAE_ACT_RELU)
      for (size_t k = 0; k < (size_t)B * l->out; k++) dy[k] = a[l->y][k] > 0 ? dy[k] : 0;
    if (l->kind == CLVAE_LAYER_CONV || l->kind == CLVAE_LAYER_DECONV) {
      conv_layer_backward(l, grad + net->tensors[l->kernel].offset, grad + net->tensors[l->bias].offset,
                          l->x != 0 ? d[l->x] : NULL, a[l->x], dy, p + net->tensors[l->kernel].offset, B);
      continue;
    }
    mm(grad + net->tensors[l->kernel].offset, a[l->x], dy, l->in, l->out, B, 1, 0);
    colsum(grad + net->tensors[l->bias].offset, dy, B, l->out);
    if (l->x != 0) mm(d[l->x], dy, p + net->tensors[l->kernel].offset, B, l->in, l->out, 0, 1);
  }
  for (int i = 0; i < net->nacts; i++) free(a[i]), free(d[i]);
  return total / B;
}
