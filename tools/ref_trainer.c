/* The CPU reference for `clvae bench`: exactly the same training step (same data, same
 * initialization, same ε, same Adam) in plain C with OpenBLAS's cblas_sgemm, careful but
 * simple: the eleven GEMMs through BLAS, element-wise work in loops the compiler
 * vectorizes, denormals flushed to zero. Prints ms per step (median, p10, p90).
 * usage: ref_trainer [--steps N] [--warmup N] [--batch-size B] [--data DIR] [--json] [--core]
 *                    [--encoder LIST --decoder LIST]   (dense items only: conv models exit 2)
 * (--core: the CPU core OpenBLAS chose; bench-vs-blas.sh sets OPENBLAS_CORETYPE when it guesses wrong) */
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

typedef struct trainer {
  clvae_net net;
  float *p, *g, *m, *v;
  float *a[CLVAE_MAX_LAYERS + 2], *d[CLVAE_MAX_LAYERS + 2]; /* activations (B, width) and their gradients */
  long step;
} trainer;

/* Sigmoid, D·MSE and its gradient (of the batch mean) in place of the logits y; returns Σ loss. */
static double mse_loss(float *y, const float *bias, const float *x, int B, int D) {
  double loss = 0;
  for (int r = 0; r < B; r++) {
    float s = 0;
    for (int d = 0; d < D; d++) {
      size_t i = (size_t)r * D + d;
      float pr = 1.0f / (1.0f + expf(-(y[i] + bias[d]))), diff = pr - x[i];
      s += diff * diff;
      y[i] = 2.0f * diff * pr * (1.0f - pr) / B;
    }
    loss += s;
  }
  return loss;
}

/* One step on images idx[0..B); returns the batch's mean loss. The same layer list as the
 * device, forward then reversed. */
static double train_step(trainer *t, const clvae_images *im, const uint32_t *idx, int B) {
  const clvae_net *n = &t->net;
  const int D = n->D;
  float *p = t->p, *g = t->g, **a = t->a, **d = t->d, q[4];
  double loss = 0;
  for (int r = 0; r < B; r++)
    for (int k = 0; k < D; k++) a[0][(size_t)r * D + k] = im->pixels[(size_t)idx[r] * D + k] / 255.0f;
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) {
      const int L = l->out;
      const float *ms = a[l->x];
      for (int r = 0; r < B; r++)
        for (int j = 0; j < L; j++) {
          if (j % 4 == 0) ref_normal4(n->cfg.seed, (uint64_t)t->step, (uint32_t)r, (uint32_t)(j / 4), q);
          float mu = ms[r * 2 * L + j], lv = ms[r * 2 * L + L + j];
          a[l->eps][r * L + j] = q[j % 4];
          a[l->y][r * L + j] = mu + expf(0.5f * lv) * q[j % 4];
          loss += -0.5 * (1 + lv - mu * mu - expf(lv));
        }
      continue;
    }
    mm(0, 0, B, l->out, l->in, a[l->x], p + n->tensors[l->kernel].offset, a[l->y]);
    if (l->kind == CLVAE_LAYER_DENSE) bias_relu(a[l->y], p + n->tensors[l->bias].offset, B, l->out, l->act == CLVAE_ACT_RELU);
    else { /* the output: the loss writes dL/dy into d[y] */
      memcpy(d[l->y], a[l->y], (size_t)B * D * 4);
      loss += mse_loss(d[l->y], p + n->tensors[l->bias].offset, a[0], B, D);
    }
  }
  for (int i = n->nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &n->layers[i];
    float *dy = d[l->y];
    if (l->kind == CLVAE_LAYER_SAMPLE) {
      const int L = l->out;
      const float *ms = a[l->x];
      for (int r = 0; r < B; r++)
        for (int j = 0; j < L; j++) {
          float mu = ms[r * 2 * L + j], lv = ms[r * 2 * L + L + j], dz = dy[r * L + j], s = expf(0.5f * lv);
          d[l->x][r * 2 * L + j] = dz + mu / B;
          d[l->x][r * 2 * L + L + j] = dz * a[l->eps][r * L + j] * 0.5f * s + 0.5f * (s * s - 1.0f) / B;
        }
      continue;
    }
    if (l->act == CLVAE_ACT_RELU)
      for (size_t k = 0; k < (size_t)B * l->out; k++) dy[k] = a[l->y][k] > 0 ? dy[k] : 0;
    mm(1, 0, l->in, l->out, B, a[l->x], dy, g + n->tensors[l->kernel].offset);
    colsum(g + n->tensors[l->bias].offset, dy, B, l->out);
    if (l->x != 0) mm(0, 1, B, l->in, l->out, dy, p + n->tensors[l->kernel].offset, d[l->x]);
  }
  t->step++;
  const clvae_config *c = &n->cfg;
  const float b1 = c->beta1, b2 = c->beta2, lr = c->lr, e = c->eps;
  const float c1 = (float)(1 / (1 - pow(b1, (double)t->step))), c2 = (float)(1 / (1 - pow(b2, (double)t->step)));
  for (size_t i = 0; i < n->total; i++) { /* Adam, as TF.js */
    float gi = g[i], mi = b1 * t->m[i] + (1 - b1) * gi, vi = b2 * t->v[i] + (1 - b2) * gi * gi;
    t->m[i] = mi, t->v[i] = vi;
    p[i] -= lr * (mi * c1) / (sqrtf(vi * c2) + e);
  }
  return loss / B;
}

#define TOOL "ref_trainer"
int main(int argc, char **argv) {
  int steps = 50, warmup = 5, B = 256, json = 0;
  const char *data = CLVAE_DEFAULT_DATA_DIR;
  clvae_config c;
  clvae_config_default(&c);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch-size") && i + 1 < argc) B = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
    else if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--core")) return printf("%s\n", openblas_get_corename()), 0;
    else if ((!strcmp(argv[i], "--encoder") || !strcmp(argv[i], "--decoder")) && i + 1 < argc) {
      int enc = argv[i][2] == 'e';
      if (clvae_items_parse(argv[i + 1], enc ? c.enc : c.dec, enc ? &c.nenc : &c.ndec) != CLVAE_OK)
        return fprintf(stderr, "%s: %s '%s': %s\n", TOOL, argv[i], argv[i + 1], clvae_error_message()), 2;
      i++;
    }
    else return fprintf(stderr, "usage: ref_trainer [--steps N] [--warmup N] [--batch-size B] [--data DIR] [--json] [--core]\n"), 2;
  }
  if (steps < 10 || B < 1 || warmup < 0) return fprintf(stderr, "ref_trainer: bad --steps/--batch-size/--warmup\n"), 2;
  _mm_setcsr(_mm_getcsr() | 0x8040); /* flush denormals to zero (FTZ | DAZ) */
  clvae_images im;
  if (clvae_images_load(&im, data, "train", NULL, NULL, NULL) != CLVAE_OK)
    return fprintf(stderr, "ref_trainer: %s\n", clvae_error_message()), 2;
  static trainer n;
  if (!c.nenc != !c.ndec) return fprintf(stderr, "ref_trainer: --encoder and --decoder go together\n"), 2;
  if (c.nenc) c.depth = 0;
  c.batch = B, c.height = im.height, c.width = im.width, c.channels = im.channels;
  if (clvae_net_build(&n.net, &c) != CLVAE_OK) return fprintf(stderr, "ref_trainer: %s\n", clvae_error_message()), 2;
  if (clvae_net_has_conv(&n.net))
    return fprintf(stderr, "ref_trainer: convolutional layers are not supported: this OpenBLAS trainer has dense layers "
                           "only (`clvae bench --encoder ... --decoder ...` times a conv model)\n"), 2;
  float **arenas[] = {&n.p, &n.g, &n.m, &n.v};
  for (int i = 0; i < 4; i++)
    if (!(*arenas[i] = calloc(n.net.total, 4))) return fprintf(stderr, "ref_trainer: out of memory\n"), 1;
  for (int i = 0; i < n.net.nacts; i++)
    if (!(n.a[i] = calloc((size_t)B * n.net.acts[i].width, 4)) || !(n.d[i] = calloc((size_t)B * n.net.acts[i].width, 4)))
      return fprintf(stderr, "ref_trainer: out of memory\n"), 1;
  clvae_init_params(&n.net, n.p);
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
    printf("{\"impl\": \"openblas\", \"core\": \"%s\", \"threads\": %d, \"batch_size\": %d, \"steps\": %d, \"ms_per_step\": %.4f, "
           "\"ms_p10\": %.4f, \"ms_p90\": %.4f, \"last_loss\": %.4f}\n", openblas_get_corename(), openblas_get_num_threads(), B, steps,
           t[steps / 2], t[steps / 10], t[steps * 9 / 10], loss);
  else
    printf("reference (C + OpenBLAS %s, %d threads): %.2f ms median (p10 %.2f, p90 %.2f) over %d steps of %d; "
           "last batch loss %.3f\n", openblas_get_corename(), openblas_get_num_threads(), t[steps / 2], t[steps / 10], t[steps * 9 / 10], steps, B, loss);
  return 0;
}
