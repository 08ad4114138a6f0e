/* Plain-C reference of every op (see ref.h). Loops are the textbook ones; sums run in
 * double so that the reference is more accurate than what it checks. */
#include "ref/ref.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void ref_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double s = 0.0;
      for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += a * b;
      }
      float *c = &C[(size_t)i * ldc + j];
      *c = (float)(alpha * s + (beta != 0.0f ? (double)beta * *c : 0.0));
    }
}

void ref_bias_act(float *y, const float *bias, int B, int N, int act) {
  for (int b = 0; b < B; b++)
    for (int j = 0; j < N; j++) {
      double v = (double)y[(size_t)b * N + j] + bias[j];
      if (act == 1) v = v > 0.0 ? v : 0.0;
      else if (act == 2) v = 1.0 / (1.0 + exp(-v));
      y[(size_t)b * N + j] = (float)v;
    }
}

void ref_relu_backward(float *dx, const float *dy, const float *y, int n) {
  for (int i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void ref_colsum(float *out, const float *x, int B, int N) {
  for (int j = 0; j < N; j++) {
    double s = 0.0;
    for (int b = 0; b < B; b++) s += x[(size_t)b * N + j];
    out[j] = (float)s;
  }
}

void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Box–Muller on two 24-bit uniforms: u1 in (0, 1], u2 in [0, 1). */
static void box_muller(uint32_t a, uint32_t b, float *n0, float *n1) {
  double u1 = (double)((a >> 8) + 1u) / 16777216.0, u2 = (double)(b >> 8) / 16777216.0;
  double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
  *n0 = (float)(r * cos(t));
  *n1 = (float)(r * sin(t));
}

void ref_normal4(uint64_t seed, uint64_t step, uint32_t row, uint32_t group, float out[4]) {
  uint32_t ctr[4] = {group, row, (uint32_t)step, (uint32_t)(step >> 32)};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, r[4];
  ref_philox4x32_10(ctr, key, r);
  box_muller(r[0], r[1], &out[0], &out[1]);
  box_muller(r[2], r[3], &out[2], &out[3]);
}

void ref_sample_forward(float *z, float *eps, float *kl, const float *musig, int B, int L,
                        uint64_t seed, uint64_t step, uint32_t row0) {
  for (int b = 0; b < B; b++) {
    const float *mu = musig + (size_t)b * 2 * L, *lv = mu + L;
    double acc = 0.0;
    float n[4];
    for (int l = 0; l < L; l++) {
      if (l % 4 == 0) ref_normal4(seed, step, row0 + (uint32_t)b, (uint32_t)(l / 4), n);
      eps[(size_t)b * L + l] = n[l % 4];
      z[(size_t)b * L + l] = (float)(mu[l] + exp(0.5 * lv[l]) * n[l % 4]);
      acc += 1.0 + lv[l] - (double)mu[l] * mu[l] - exp(lv[l]);
    }
    kl[b] = (float)(-0.5 * acc);
  }
}

void ref_sample_backward(float *dmusig, const float *dz, const float *eps, const float *musig,
                         int B, int L, float kl_scale) {
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++) {
      size_t row = (size_t)b * 2 * L, i = (size_t)b * L + l;
      double mu = musig[row + l], lv = musig[row + L + l], g = dz[i];
      dmusig[row + l] = (float)(g + kl_scale * mu);
      dmusig[row + L + l] = (float)(g * eps[i] * 0.5 * exp(0.5 * lv) + kl_scale * 0.5 * (exp(lv) - 1.0));
    }
}

void ref_loss_sigmoid(int kind, float *loss, float *dlogits, const float *logits,
                      const float *bias, const float *x, int B, int D, float scale) {
  for (int b = 0; b < B; b++) {
    double s = 0.0;
    for (int d = 0; d < D; d++) {
      size_t i = (size_t)b * D + d;
      double y = (double)logits[i] + bias[d], p = 1.0 / (1.0 + exp(-y)), xv = x[i], g;
      if (kind == 0) {
        s += (p - xv) * (p - xv);
        g = 2.0 * (p - xv) * p * (1.0 - p);
      } else {
        s += (y > 0 ? y : 0.0) - y * xv + log1p(exp(-fabs(y)));
        g = p - xv;
      }
      if (dlogits) dlogits[i] = (float)(scale * g);
    }
    loss[b] = (float)s;
  }
}

void ref_adam(float *p, const float *g, float *m, float *v, int n, float lr, float beta1,
              float beta2, float eps, int64_t t) {
  double c1 = 1.0 / (1.0 - pow(beta1, (double)t)), c2 = 1.0 / (1.0 - pow(beta2, (double)t));
  for (int i = 0; i < n; i++) {
    double mi = beta1 * (double)m[i] + (1.0 - beta1) * g[i];
    double vi = beta2 * (double)v[i] + (1.0 - beta2) * (double)g[i] * g[i];
    m[i] = (float)mi;
    v[i] = (float)vi;
    p[i] = (float)(p[i] - lr * (mi * c1) / (sqrt(vi * c2) + eps));
  }
}

void ref_gather(float *x, const uint8_t *images, const uint32_t *idx, int B, int D) {
  for (int b = 0; b < B; b++)
    for (int d = 0; d < D; d++)
      x[(size_t)b * D + d] = (float)images[(size_t)idx[b] * D + d] / 255.0f;
}

/* ---- convolutions: direct loops over grid positions and taps ---- */

/* Calls fn for every (grid row, image row, tap) whose image pixel is inside. */
static void conv_taps(const clvae_conv_geom *g, void (*fn)(void *, size_t, size_t, int), void *ctx) {
  for (int b = 0; b < g->B; b++)
    for (int oy = 0; oy < g->Ho; oy++)
      for (int ox = 0; ox < g->Wo; ox++)
        for (int t = 0; t < g->K * g->K; t++) {
          int y = oy * g->S + t / g->K - g->pt, x = ox * g->S + t % g->K - g->pl;
          if (y >= 0 && y < g->H && x >= 0 && x < g->W)
            fn(ctx, ((size_t)b * g->Ho + oy) * g->Wo + ox, ((size_t)b * g->H + y) * g->W + x, t);
        }
}

typedef struct conv_acc {
  const clvae_conv_geom *g;
  const float *img, *grid, *w, *d_img, *d_grid; /* inputs (forward: img or grid; backward: the gradient) */
  double *out, *mag, *dw, *dw_mag;              /* sums and Σ|terms| */
  int to_grid;                                  /* forward conv (image → grid) or data gradient of a deconv */
} conv_acc;

/* forward: out on the grid (conv) or the image (deconv) += the other side · W */
static void acc_forward(void *p, size_t gi, size_t pi, int t) {
  conv_acc *a = p;
  const int C = a->g->C, F = a->g->F;
  for (int c = 0; c < C; c++)
    for (int f = 0; f < F; f++) {
      double w = a->w[((size_t)t * C + c) * F + f];
      double v = a->to_grid ? a->img[pi * C + c] * w : a->grid[gi * F + f] * w;
      size_t o = a->to_grid ? gi * F + f : pi * C + c;
      a->out[o] += v, a->mag[o] += fabs(v);
    }
}

/* backward: dW from the image side and the grid side values, and the other side's gradient */
static void acc_backward(void *p, size_t gi, size_t pi, int t) {
  conv_acc *a = p;
  const int C = a->g->C, F = a->g->F;
  for (int c = 0; c < C; c++)
    for (int f = 0; f < F; f++) {
      size_t k = ((size_t)t * C + c) * F + f;
      /* conv: dW += x_img · dy_grid, dx_img += W · dy_grid; deconv: dW += x_grid · dy_img, dx_grid += W · dy_img */
      double v = a->to_grid ? (double)a->grid[gi * F + f] * a->d_img[pi * C + c]
                            : (double)a->img[pi * C + c] * a->d_grid[gi * F + f];
      a->dw[k] += v, a->dw_mag[k] += fabs(v);
      if (!a->out) continue;
      double d = a->to_grid ? a->w[k] * a->d_img[pi * C + c] : a->w[k] * a->d_grid[gi * F + f];
      size_t o = a->to_grid ? gi * F + f : pi * C + c;
      a->out[o] += d, a->mag[o] += fabs(d);
    }
}

static void act_apply(float *y, double v, int act) {
  if (act == 1) v = v > 0 ? v : 0;
  else if (act == 2) v = 1 / (1 + exp(-v));
  *y = (float)v;
}

int ref_conv(int deconv, const clvae_conv_geom *g, const float *x, const float *w, const float *bias, int act, float *y,
             double *mag) {
  size_t n = deconv ? (size_t)g->B * g->H * g->W * g->C : (size_t)g->B * g->Ho * g->Wo * g->F;
  int nb = deconv ? g->C : g->F;
  double *s = calloc(n ? n : 1, sizeof *s), *m = mag ? mag : calloc(n ? n : 1, sizeof *m);
  if (!s || !m) {
    free(s);
    if (!mag) free(m);
    return 0;
  }
  if (mag) memset(mag, 0, n * sizeof *mag);
  conv_acc a = {g, deconv ? NULL : x, deconv ? x : NULL, w, NULL, NULL, s, m, NULL, NULL, !deconv};
  conv_taps(g, acc_forward, &a);
  for (size_t i = 0; i < n; i++) {
    double b = bias ? bias[i % (size_t)nb] : 0;
    m[i] += fabs(b);
    act_apply(&y[i], s[i] + b, act);
  }
  free(s);
  if (!mag) free(m);
  return 1;
}

int ref_conv_backward(int deconv, const clvae_conv_geom *g, const float *x, const float *dy, const float *w,
                      const float *mask, float *dw, float *db, float *dx, double *dw_mag, double *dx_mag) {
  size_t nw = (size_t)g->K * g->K * g->C * g->F;
  size_t nx = deconv ? (size_t)g->B * g->Ho * g->Wo * g->F : (size_t)g->B * g->H * g->W * g->C;
  size_t ny = deconv ? (size_t)g->B * g->H * g->W : (size_t)g->B * g->Ho * g->Wo; /* rows of dy */
  int nb = deconv ? g->C : g->F;
  double *sw = calloc(nw, sizeof *sw), *sx = dx ? calloc(nx, sizeof *sx) : NULL;
  if (!sw || (dx && !sx)) {
    free(sw), free(sx);
    return 0;
  }
  memset(dw_mag, 0, nw * sizeof *dw_mag);
  if (dx) memset(dx_mag, 0, nx * sizeof *dx_mag);
  /* a conv's x is the image and dy the grid; a deconv's the other way round */
  conv_acc a = {g, deconv ? NULL : x, deconv ? x : NULL, w, deconv ? dy : NULL, deconv ? NULL : dy,
                sx, dx ? dx_mag : NULL, sw, dw_mag, deconv};
  conv_taps(g, acc_backward, &a);
  for (size_t i = 0; i < nw; i++) dw[i] = (float)sw[i];
  for (int c = 0; c < nb; c++) {
    double s = 0;
    for (size_t r = 0; r < ny; r++) s += dy[r * nb + c];
    db[c] = (float)s;
  }
  for (size_t i = 0; dx && i < nx; i++) dx[i] = mask && !(mask[i] > 0) ? 0.0f : (float)sx[i];
  free(sw), free(sx);
  return 1;
}
