/* Reference VAE in double (see vae_ref.h): the forward list, then its mirror, as loops. */
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

static void add_bias(double *y, const double *b, int B, int N) {
  for (int r = 0; r < B; r++)
    for (int j = 0; j < N; j++) y[(size_t)r * N + j] += b[j];
}

static void colsum(double *out, const double *x, int B, int N) {
  for (int j = 0; j < N; j++) {
    out[j] = 0;
    for (int r = 0; r < B; r++) out[j] += x[(size_t)r * N + j];
  }
}

/* relu in place; tracks the smallest |pre-activation|. */
static void relu(double *y, size_t n, double *minabs) {
  for (size_t i = 0; i < n; i++) {
    if (fabs(y[i]) < *minabs) *minabs = fabs(y[i]);
    if (y[i] < 0) y[i] = 0;
  }
}

double ref_vae_loss(const clvae_config *c, const double *p, const float *xf, int B, uint64_t noise_step,
                    double *grad, double *recon, double *kl, double *min_preact) {
  const int D = c->input, H = c->hidden, L = c->latent;
  clvae_layout l;
  clvae_layout_of(c, &l);
  size_t nb = (size_t)B;
  double *x = malloc(nb * D * 8), *h1 = malloc(nb * H * 8), *ms = malloc(nb * 2 * L * 8);
  double *eps = malloc(nb * L * 8), *z = malloc(nb * L * 8), *h2 = malloc(nb * H * 8), *y = malloc(nb * D * 8);
  double *dy = malloc(nb * D * 8), *dh2 = malloc(nb * H * 8), *dz = malloc(nb * L * 8), *dms = malloc(nb * 2 * L * 8),
         *dh1 = malloc(nb * H * 8);
  double total = 0, minabs = INFINITY;
  for (size_t i = 0; i < nb * D; i++) x[i] = xf[i];
  /* forward */
  mm(h1, x, p + l.w1, B, H, D, 0, 0), add_bias(h1, p + l.b1, B, H), relu(h1, nb * H, &minabs);
  mm(ms, h1, p + l.wh, B, 2 * L, H, 0, 0), add_bias(ms, p + l.bh, B, 2 * L);
  for (int b = 0; b < B; b++) {
    double klb = 0;
    float n4[4];
    for (int j = 0; j < L; j++) {
      if (j % 4 == 0) ref_normal4(c->seed, noise_step, (uint32_t)b, (uint32_t)(j / 4), n4);
      double mu = ms[(size_t)b * 2 * L + j], lv = ms[(size_t)b * 2 * L + L + j];
      eps[(size_t)b * L + j] = n4[j % 4];
      z[(size_t)b * L + j] = mu + exp(0.5 * lv) * n4[j % 4];
      klb += 1 + lv - mu * mu - exp(lv);
    }
    if (kl) kl[b] = -0.5 * klb;
    total += -0.5 * klb;
  }
  mm(h2, z, p + l.wd1, B, H, L, 0, 0), add_bias(h2, p + l.bd1, B, H), relu(h2, nb * H, &minabs);
  mm(y, h2, p + l.wd2, B, D, H, 0, 0), add_bias(y, p + l.bd2, B, D);
  for (int b = 0; b < B; b++) {
    double rb = 0;
    for (int d = 0; d < D; d++) {
      size_t i = (size_t)b * D + d;
      double yy = y[i], pp = 1 / (1 + exp(-yy)), xv = x[i];
      if (c->loss == CLVAE_LOSS_MSE) {
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
  if (min_preact) *min_preact = minabs;
  if (grad) { /* backward: the mirror of the forward list */
    mm(grad + l.wd2, h2, dy, H, D, B, 1, 0), colsum(grad + l.bd2, dy, B, D);
    mm(dh2, dy, p + l.wd2, B, H, D, 0, 1);
    for (size_t i = 0; i < nb * H; i++) dh2[i] = h2[i] > 0 ? dh2[i] : 0;
    mm(grad + l.wd1, z, dh2, L, H, B, 1, 0), colsum(grad + l.bd1, dh2, B, H);
    mm(dz, dh2, p + l.wd1, B, L, H, 0, 1);
    for (int b = 0; b < B; b++)
      for (int j = 0; j < L; j++) {
        size_t r = (size_t)b * 2 * L, i = (size_t)b * L + j;
        double mu = ms[r + j], lv = ms[r + L + j];
        dms[r + j] = dz[i] + mu / B;
        dms[r + L + j] = dz[i] * eps[i] * 0.5 * exp(0.5 * lv) + 0.5 * (exp(lv) - 1) / B;
      }
    mm(grad + l.wh, h1, dms, H, 2 * L, B, 1, 0), colsum(grad + l.bh, dms, B, 2 * L);
    mm(dh1, dms, p + l.wh, B, H, 2 * L, 0, 1);
    for (size_t i = 0; i < nb * H; i++) dh1[i] = h1[i] > 0 ? dh1[i] : 0;
    mm(grad + l.w1, x, dh1, D, H, B, 1, 0), colsum(grad + l.b1, dh1, B, H);
  }
  free(x), free(h1), free(ms), free(eps), free(z), free(h2), free(y);
  free(dy), free(dh2), free(dz), free(dms), free(dh1);
  return total / B;
}
