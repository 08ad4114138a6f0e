/* The CPU reference for `clvae bench`: exactly the same training step (same data, same
 * initialization, same ε, same Adam) in plain C with OpenBLAS's cblas_sgemm, careful but
 * simple: the eleven GEMMs through BLAS, element-wise work in loops the compiler
 * vectorizes, denormals flushed to zero. Prints ms per step (median, p10, p90).
 * usage: ref_trainer [--steps N] [--warmup N] [--batch-size B] [--data DIR] [--json] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>

#include "clvae/data.h"
#include "clvae/model.h"
#include "ref/ref.h"
#include "util/timing.h"

/* C (M, N) = op(A)·op(B), row-major, β = 0. */
static void mm(int ta, int tb, int M, int N, int K, const float *A, const float *B, float *C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
              ta ? M : K, B, tb ? K : N, 0.0f, C, N);
}

static void bias_relu(float *y, const float *b, int B, int N, int relu) {
  for (int r = 0; r < B; r++)
    for (int j = 0; j < N; j++) {
      float v = y[(size_t)r * N + j] + b[j];
      y[(size_t)r * N + j] = relu && v < 0 ? 0 : v;
    }
}

static void colsum(float *out, const float *x, int B, int N) {
  memset(out, 0, (size_t)N * 4);
  for (int r = 0; r < B; r++)
    for (int j = 0; j < N; j++) out[j] += x[(size_t)r * N + j];
}

typedef struct net {
  clvae_config c;
  clvae_layout l;
  float *p, *g, *m, *v;
  float *x, *h1, *ms, *eps, *z, *h2, *y, *dh2, *dz, *dms, *dh1;
  long step;
} net;

/* One step on images idx[b0 .. b0+B); returns the batch's mean loss. */
static double train_step(net *n, const clvae_images *im, const uint32_t *idx, int B) {
  const int D = n->c.input, H = n->c.hidden, L = n->c.latent;
  const clvae_layout *l = &n->l;
  float *p = n->p, *g = n->g, q[4];
  double loss = 0;
  for (int r = 0; r < B; r++)
    for (int d = 0; d < D; d++) n->x[(size_t)r * D + d] = im->pixels[(size_t)idx[r] * D + d] / 255.0f;
  mm(0, 0, B, H, D, n->x, p + l->w1, n->h1), bias_relu(n->h1, p + l->b1, B, H, 1);
  mm(0, 0, B, 2 * L, H, n->h1, p + l->wh, n->ms), bias_relu(n->ms, p + l->bh, B, 2 * L, 0);
  for (int r = 0; r < B; r++)
    for (int j = 0; j < L; j++) {
      if (j % 4 == 0) ref_normal4(n->c.seed, (uint64_t)n->step, (uint32_t)r, (uint32_t)(j / 4), q);
      float mu = n->ms[r * 2 * L + j], lv = n->ms[r * 2 * L + L + j];
      n->eps[r * L + j] = q[j % 4];
      n->z[r * L + j] = mu + expf(0.5f * lv) * q[j % 4];
      loss += -0.5 * (1 + lv - mu * mu - expf(lv));
    }
  mm(0, 0, B, H, L, n->z, p + l->wd1, n->h2), bias_relu(n->h2, p + l->bd1, B, H, 1);
  mm(0, 0, B, D, H, n->h2, p + l->wd2, n->y);
  for (int r = 0; r < B; r++) { /* sigmoid, 784·MSE and its gradient, in place in y */
    float s = 0;
    for (int d = 0; d < D; d++) {
      size_t i = (size_t)r * D + d;
      float pr = 1.0f / (1.0f + expf(-(n->y[i] + p[l->bd2 + d]))), diff = pr - n->x[i];
      s += diff * diff;
      n->y[i] = 2.0f * diff * pr * (1.0f - pr) / B;
    }
    loss += s;
  }
  mm(1, 0, H, D, B, n->h2, n->y, g + l->wd2), colsum(g + l->bd2, n->y, B, D);
  mm(0, 1, B, H, D, n->y, p + l->wd2, n->dh2);
  for (size_t i = 0; i < (size_t)B * H; i++) n->dh2[i] = n->h2[i] > 0 ? n->dh2[i] : 0;
  mm(1, 0, L, H, B, n->z, n->dh2, g + l->wd1), colsum(g + l->bd1, n->dh2, B, H);
  mm(0, 1, B, L, H, n->dh2, p + l->wd1, n->dz);
  for (int r = 0; r < B; r++)
    for (int j = 0; j < L; j++) {
      float mu = n->ms[r * 2 * L + j], lv = n->ms[r * 2 * L + L + j], dz = n->dz[r * L + j], s = expf(0.5f * lv);
      n->dms[r * 2 * L + j] = dz + mu / B;
      n->dms[r * 2 * L + L + j] = dz * n->eps[r * L + j] * 0.5f * s + 0.5f * (s * s - 1.0f) / B;
    }
  mm(1, 0, H, 2 * L, B, n->h1, n->dms, g + l->wh), colsum(g + l->bh, n->dms, B, 2 * L);
  mm(0, 1, B, H, 2 * L, n->dms, p + l->wh, n->dh1);
  for (size_t i = 0; i < (size_t)B * H; i++) n->dh1[i] = n->h1[i] > 0 ? n->dh1[i] : 0;
  mm(1, 0, D, H, B, n->x, n->dh1, g + l->w1), colsum(g + l->b1, n->dh1, B, H);
  n->step++;
  const float b1 = n->c.beta1, b2 = n->c.beta2, lr = n->c.lr, e = n->c.eps;
  const float c1 = (float)(1 / (1 - pow(b1, (double)n->step))), c2 = (float)(1 / (1 - pow(b2, (double)n->step)));
  for (size_t i = 0; i < l->total; i++) { /* Adam, as TF.js */
    float gi = g[i], mi = b1 * n->m[i] + (1 - b1) * gi, vi = b2 * n->v[i] + (1 - b2) * gi * gi;
    n->m[i] = mi, n->v[i] = vi;
    p[i] -= lr * (mi * c1) / (sqrtf(vi * c2) + e);
  }
  return loss / B;
}

int main(int argc, char **argv) {
  int steps = 50, warmup = 5, B = 256, json = 0;
  const char *data = CLVAE_DEFAULT_DATA_DIR;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch-size") && i + 1 < argc) B = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
    else if (!strcmp(argv[i], "--json")) json = 1;
    else return fprintf(stderr, "usage: ref_trainer [--steps N] [--warmup N] [--batch-size B] [--data DIR] [--json]\n"), 2;
  }
  if (steps < 10 || B < 1 || warmup < 0) return fprintf(stderr, "ref_trainer: bad --steps/--batch-size/--warmup\n"), 2;
  _mm_setcsr(_mm_getcsr() | 0x8040); /* flush denormals to zero (FTZ | DAZ) */
  clvae_images im;
  if (clvae_images_load(&im, data, "train") != CLVAE_OK) return fprintf(stderr, "ref_trainer: %s\n", clvae_error_message()), 2;
  if (im.rows * im.cols != 784) return fprintf(stderr, "ref_trainer: expects 28x28 images\n"), 2;
  net n = {0};
  clvae_config_default(&n.c);
  n.c.batch = B;
  clvae_layout_of(&n.c, &n.l);
  const size_t P = n.l.total, D = 784, H = 512, L = 2, b = (size_t)B;
  float **bufs[] = {&n.p, &n.g, &n.m, &n.v, &n.x, &n.h1, &n.ms, &n.eps, &n.z, &n.h2, &n.y, &n.dh2, &n.dz, &n.dms, &n.dh1};
  size_t sizes[] = {P, P, P, P, b * D, b * H, b * 2 * L, b * L, b * L, b * H, b * D, b * H, b * L, b * 2 * L, b * H};
  for (int i = 0; i < 15; i++)
    if (!(*bufs[i] = calloc(sizes[i], 4))) return fprintf(stderr, "ref_trainer: out of memory\n"), 1;
  clvae_init_params(&n.c, n.p);
  uint32_t *idx = malloc((size_t)im.count * 4);
  for (int i = 0; i < im.count; i++) idx[i] = (uint32_t)i;
  double *t = malloc((size_t)steps * sizeof *t), loss = 0;
  for (int s = 0; s < warmup + steps; s++) {
    int b0 = (int)(((long long)s * B) % (im.count - B + 1));
    double t0 = clvae_now();
    loss = train_step(&n, &im, idx + b0, B);
    if (s >= warmup) t[s - warmup] = (clvae_now() - t0) * 1e3;
  }
  qsort(t, (size_t)steps, sizeof *t, clvae_cmp_double);
  if (json)
    printf("{\"impl\": \"openblas\", \"threads\": %d, \"batch_size\": %d, \"steps\": %d, \"ms_per_step\": %.4f, "
           "\"ms_p10\": %.4f, \"ms_p90\": %.4f, \"last_loss\": %.4f}\n", openblas_get_num_threads(), B, steps,
           t[steps / 2], t[steps / 10], t[steps * 9 / 10], loss);
  else
    printf("reference (C + OpenBLAS %d threads): %.2f ms median (p10 %.2f, p90 %.2f) over %d steps of %d; "
           "last batch loss %.3f\n", openblas_get_num_threads(), t[steps / 2], t[steps / 10], t[steps * 9 / 10], steps, B, loss);
  return 0;
}
