/* Kernel verification against src/ref (see check.h). Every device buffer is surrounded
 * by guard bytes that must come back untouched, so out-of-bounds writes fail too.
 * Tolerances are stated next to each check and derived from float32 rounding. */
#include "ref/check.h"
#include "ref/check_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "ref/ref.h"

#define GUARD 64 /* bytes before and after each buffer's data */
#define GUARD_BYTE 0xA5

const char *const check_kernels[] = {"gemm", "bias_act", "relu_backward", "colsum",
                                     "sample_forward", "sample_backward", "rng",
                                     "loss_mse", "loss_bce", "adam", "gather", "conv", NULL};

/* ---- small helpers: random numbers, device buffers with guards, comparison ---- */

uint64_t chk_rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float chk_rng_uniform(uint64_t *s, float lo, float hi) {
  return lo + (hi - lo) * (float)((chk_rng_next(s) >> 40) * (1.0 / 16777216.0));
}

float *chk_rand_floats(size_t n, uint64_t *s, float lo, float hi) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  if (p)
    for (size_t i = 0; i < n; i++) p[i] = chk_rng_uniform(s, lo, hi);
  return p;
}


/* A buffer holding `n` elements at element offset `off_elems`, with guards, filled from host. */
int chk_dput(clvae_device *dev, check_result *r, dbuf *d, const void *host, size_t n,
                size_t elem, size_t off_elems) {
  size_t pre = off_elems * elem + GUARD, total = pre + n * elem + GUARD;
  d->off = off_elems + GUARD / elem;
  d->bytes = n * elem;
  d->elem = elem;
  unsigned char *img = malloc(total);
  if (!img) { snprintf(r->detail, sizeof r->detail, "out of host memory"); return 0; }
  memset(img, GUARD_BYTE, total);
  if (host) memcpy(img + d->off * elem, host, n * elem);
  clvae_status st = clvae_buffer_create(dev, total, &d->b);
  if (st == CLVAE_OK) st = clvae_buffer_write(dev, d->b, 0, total, img, 1);
  free(img);
  if (st != CLVAE_OK) snprintf(r->detail, sizeof r->detail, "%s", clvae_error_message());
  return st == CLVAE_OK;
}

/* Reads the data back into `host` and verifies the guards. */
int chk_dget(clvae_device *dev, check_result *r, dbuf *d, void *host, const char *name) {
  size_t total = clvae_buffer_size(d->b);
  unsigned char *img = malloc(total);
  if (!img) { snprintf(r->detail, sizeof r->detail, "out of host memory"); return 0; }
  if (clvae_buffer_read(dev, d->b, 0, total, img) != CLVAE_OK) {
    snprintf(r->detail, sizeof r->detail, "%s", clvae_error_message());
    free(img);
    return 0;
  }
  size_t lo = d->off * d->elem, hi = lo + d->bytes;
  for (size_t i = 0; i < total; i++)
    if ((i < lo || i >= hi) && img[i] != GUARD_BYTE) {
      snprintf(r->detail, sizeof r->detail, "%s: wrote outside its range (byte %zd from its start)",
               name, (ptrdiff_t)i - (ptrdiff_t)lo);
      r->bad++;
      free(img);
      return 0;
    }
  memcpy(host, img + lo, d->bytes);
  free(img);
  return 1;
}

void chk_dfree(dbuf *d) {
  clvae_buffer_free(d->b);
  d->b = NULL;
}

clvae_view chk_dv(const dbuf *d) { return clvae_at(d->b, d->off); }

/* Compares n outputs: passes where |got − want| ≤ atol + rtol·scale (scale: |want| when
 * NULL). Notes the first three mismatches. */
void chk_compare(check_result *r, const char *what, const float *got, const float *want,
                    const double *scale, size_t n, double atol, double rtol) {
  for (size_t i = 0; i < n; i++) {
    double g = got[i], w = want[i], err = fabs(g - w);
    double tol = atol + rtol * (scale ? scale[i] : fabs(w));
    if (isnan(g) != isnan(w) || isinf(g) != isinf(w)) err = INFINITY;
    else if (isnan(g) || (isinf(g) && g == w)) err = 0.0;
    double mag = scale ? scale[i] : fabs(w);
    r->checked++;
    if (err > r->max_abs) r->max_abs = err;
    if (mag > 0 && mag * rtol >= atol && err / mag > r->max_rel) r->max_rel = err / mag;
    double ratio = tol > 0 ? err / tol : (err > 0 ? INFINITY : 0.0);
    if (ratio > r->worst) r->worst = ratio;
    if (ratio > 1.0) {
      if (r->bad < 3) {
        size_t used = strlen(r->detail);
        snprintf(r->detail + used, sizeof r->detail - used, "%s%s[%zu]: got %.9g, want %.9g (tol %.3g)",
                 used ? "; " : "", what, i, g, w, tol);
      }
      r->bad++;
    }
  }
}

#ifdef __GNUC__
__attribute__((format(printf, 3, 4)))
#endif
void chk_begin(check_result *r, const char *kernel, const char *fmt, ...) {
  memset(r, 0, sizeof *r);
  snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->desc, sizeof r->desc, fmt, ap);
  va_end(ap);
}

void chk_finish(check_result *r, int ok) {
  if (!ok && r->bad == 0) r->bad = 1; /* a device error or broken guard */
  r->pass = ok && r->bad == 0 && r->checked > 0;
}

/* (rows, cols) with row stride ld: a copy of src with `pad` in the columns past cols, as the
 * model stores an activation with its ones column (pad 1) or a test of strides would. */
static float *strided(const float *src, int rows, int cols, int ld, float pad) {
  float *d = malloc((size_t)(rows > 0 ? rows : 1) * ld * sizeof *d);
  for (int i = 0; d && i < rows; i++)
    for (int j = 0; j < ld; j++) d[(size_t)i * ld + j] = j < cols && src ? src[(size_t)i * cols + j] : pad;
  return d;
}

/* The (rows, cols) part of a strided array, contiguous, into dst; counts a column past cols
 * that is not `pad` any more (a write outside the view) as a mismatch. */
static void unstride(check_result *r, const char *what, float *dst, const float *src, int rows, int cols, int ld,
                     float pad) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < ld; j++) {
      float v = src[(size_t)i * ld + j];
      if (j < cols) dst[(size_t)i * cols + j] = v;
      else if (memcmp(&v, &pad, sizeof v) != 0 && r->bad++ == 0) {
        size_t used = strlen(r->detail);
        snprintf(r->detail + used, sizeof r->detail - used, "%s%s: wrote the padding at row %d, column %d", used ? "; " : "",
                 what, i, j);
      }
    }
}

void chk_device_error(check_result *r) {
  snprintf(r->detail, sizeof r->detail, "%s", clvae_error_message());
}

/* ---- one check per kernel ---- */

/* Tolerance: |C − ref| ≤ 1e-6 + 1e-4·S, S = |α|·Σ_k|a_ik·b_kj| + |β·c_ij|, a float32
 * accumulation bound (K·2⁻²⁴ ≤ 5e-5 for K ≤ 784) with a 2× margin. beta = 0 fills C
 * with NaN first: C must not be read. Row strides are padded when off > 0, and the
 * padding must come back unchanged. */
void check_gemm(clvae_device *dev, check_result *r, int ta, int tb, int M, int N, int K,
                float alpha, float beta, size_t off, uint64_t seed) {
  chk_begin(r, "gemm", "%s%s M=%d N=%d K=%d alpha=%g beta=%g off=%zu [%s]", ta ? "T" : "N",
        tb ? "T" : "N", M, N, K, alpha, beta, off, clvae_gemm_impl_name(clvae_gemm_get_impl(dev)));
  int pad = off ? 3 : 0;
  int lda = (ta ? M : (K > 0 ? K : 1)) + pad, ldb = (tb ? (K > 0 ? K : 1) : N) + pad, ldc = N + pad;
  size_t an = (size_t)(ta ? K : M) * lda, bn = (size_t)(tb ? N : K) * ldb, cn = (size_t)M * ldc;
  uint64_t s = seed;
  float *A = chk_rand_floats(an, &s, -1, 1), *B = chk_rand_floats(bn, &s, -1, 1);
  float *C0 = chk_rand_floats(cn, &s, -1, 1), *want = malloc(cn * 4), *got = malloc(cn * 4);
  double *scale = calloc(cn ? cn : 1, sizeof *scale);
  dbuf da = {0}, db = {0}, dc = {0};
  int ok = 0;
  if (!A || !B || !C0 || !want || !got || !scale) { snprintf(r->detail, sizeof r->detail, "out of host memory"); goto done; }
  if (beta == 0.0f)
    for (size_t i = 0; i < cn; i++) C0[i] = NAN;
  memcpy(want, C0, cn * 4);
  ref_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, want, ldc);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double t = 0;
      for (int k = 0; k < K; k++)
        t += fabs((ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                  (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]));
      size_t c = (size_t)i * ldc + j;
      scale[c] = fabs(alpha) * t + (beta != 0.0f ? fabs(beta * C0[c]) : 0.0);
    }
  if (!chk_dput(dev, r, &da, A, an, 4, off) || !chk_dput(dev, r, &db, B, bn, 4, off + 1) ||
      !chk_dput(dev, r, &dc, C0, cn, 4, off))
    goto done;
  if (clvae_gemm(dev, ta, tb, M, N, K, alpha, chk_dv(&da), lda, chk_dv(&db), ldb, beta, chk_dv(&dc), ldc) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dc, got, "C")) goto done;
  chk_compare(r, "C", got, want, scale, cn, 1e-6, 1e-4);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&da), chk_dfree(&db), chk_dfree(&dc);
  free(A), free(B), free(C0), free(want), free(got), free(scale);
}

/* The epilogue applied to the reference product: bias, activation, mask (see ops.h). */
static void ref_epilogue(float *c, int M, int N, int ldc, const float *bias, int act, const float *mask, int ldm) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float *v = &c[(size_t)i * ldc + j];
      if (bias) *v += bias[j];
      if (act == CLVAE_ACT_RELU) *v = *v > 0 ? *v : 0.0f;
      else if (act == CLVAE_ACT_SIGMOID) *v = (float)(1.0 / (1.0 + exp(-(double)*v)));
      if (mask && !(mask[(size_t)i * ldm + j] > 0)) *v = 0.0f;
    }
}

/* Panels of a B with K rows and N columns (an epilogue's or the loss's) hold exactly the
 * (K, N) matrix `rows`: read back through clvae_gemm_from_panels with the identity as A,
 * which must give every element unchanged. Returns 0 (with a note) if not. */
static int panels_hold(clvae_device *dev, check_result *r, clvae_buffer *panels, int K, int N, const float *rows) {
  float *eye = calloc((size_t)K * K + 1, 4), *back = malloc((size_t)K * N * 4 + 4);
  dbuf de = {0}, dc = {0};
  int ok = 0;
  if (!eye || !back) goto done;
  for (int i = 0; i < K; i++) eye[(size_t)i * K + i] = 1.0f;
  if (!chk_dput(dev, r, &de, eye, (size_t)K * K, 4, 0) || !chk_dput(dev, r, &dc, NULL, (size_t)K * N, 4, 1)) goto done;
  if (clvae_gemm_from_panels(dev, 0, K, N, K, 1.0f, chk_dv(&de), K, clvae_at(panels, 0), 0.0f, chk_dv(&dc), N, NULL) !=
      CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dc, back, "panels")) goto done;
  ok = 1;
  for (size_t i = 0; i < (size_t)K * N && ok; i++)
    if (!(back[i] == rows[i])) {
      size_t used = strlen(r->detail);
      snprintf(r->detail + used, sizeof r->detail - used, "%spanels: element (%zu, %zu) reads back %.9g, not %.9g",
               used ? "; " : "", i / (size_t)N, i % (size_t)N, back[i], rows[i]);
      r->bad++;
      ok = 2;
    }
done:
  chk_dfree(&de), chk_dfree(&dc);
  free(eye), free(back);
  return ok;
}

/* A GEMM with an epilogue (bias, activation, ReLU-backward mask) against the unfused
 * reference: the product's tolerance as in check_gemm, the bias counted in its scale, plus
 * 2e-6 for the sigmoid (whose slope is at most 1/4); masked elements must be exactly 0.
 * With `plan`, op(B) comes packed ahead (clvae_gemm_pack, one launch for every matrix of
 * the plan) instead of in the call. A mask has exact zeros as a ReLU output has, and a
 * padded stride (ldm = N + 1). With `panels` (builtin GEMM), C is also stored in panels,
 * which must read back as C. */
static void check_gemm_fused(clvae_device *dev, check_result *r, int ta, int tb, int M, int N, int K, int has_bias,
                             clvae_act act, int has_mask, int packed, int panels, uint64_t seed) {
  static const char *acts[] = {"", "+relu", "+sigmoid"};
  chk_begin(r, "gemm", "%s%s M=%d N=%d K=%d epilogue%s%s%s%s%s [%s]", ta ? "T" : "N", tb ? "T" : "N", M, N, K,
        has_bias ? " bias" : "", acts[act], has_mask ? " mask" : "", panels ? " panels" : "",
        packed ? ", B packed ahead" : "", clvae_gemm_impl_name(clvae_gemm_get_impl(dev)));
  clvae_buffer *pan = NULL;
  const int lda = ta ? M : K, ldb = (tb ? K : N) + 2, ldm = N + 1, off = 3; /* B at an offset in its buffer */
  size_t an = (size_t)(ta ? K : M) * lda, bn = (size_t)(tb ? N : K) * ldb, cn = (size_t)M * N;
  uint64_t s = seed;
  float *A = chk_rand_floats(an, &s, -1, 1), *B = chk_rand_floats(bn + off, &s, -1, 1), *bias = chk_rand_floats((size_t)N, &s, -2, 2);
  float *mask = chk_rand_floats((size_t)M * ldm, &s, -1, 1), *want = calloc(cn + 1, 4), *got = malloc(cn * 4 + 4);
  double *scale = calloc(cn + 1, sizeof *scale);
  dbuf da = {0}, db = {0}, dc = {0}, dbias = {0}, dm = {0}, dp = {0};
  clvae_gemm_plan *plan = NULL;
  int ok = 0;
  if (!A || !B || !bias || !mask || !want || !got || !scale) goto done;
  for (size_t i = 0; i < (size_t)M * ldm; i++) mask[i] = mask[i] > 0 ? mask[i] : 0.0f;
  ref_gemm(ta, tb, M, N, K, 1.0f, A, lda, B + off, ldb, 0.0f, want, N);
  ref_epilogue(want, M, N, N, has_bias ? bias : NULL, (int)act, has_mask ? mask : NULL, ldm);
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double t = has_bias ? fabs(bias[j]) : 0;
      for (int k = 0; k < K; k++)
        t += fabs((ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[off + (size_t)j * ldb + k] : B[off + (size_t)k * ldb + j]));
      scale[(size_t)i * N + j] = t;
    }
  if (!chk_dput(dev, r, &da, A, an, 4, 0) || !chk_dput(dev, r, &db, B, bn + off, 4, 0) || !chk_dput(dev, r, &dc, NULL, cn, 4, 2) ||
      !chk_dput(dev, r, &dbias, bias, (size_t)N, 4, 1) || !chk_dput(dev, r, &dm, mask, (size_t)M * ldm, 4, 4))
    goto done;
  clvae_epilogue ep = {has_bias ? chk_dv(&dbias) : clvae_at(NULL, 0), act, has_mask ? chk_dv(&dm) : clvae_at(NULL, 0), ldm,
                       clvae_at(NULL, 0)};
  clvae_status st = CLVAE_OK;
  if (panels) {
    st = clvae_buffer_create(dev, clvae_gemm_panels_size(dev, M, N) * 4 + 4, &pan);
    if (st != CLVAE_OK) { chk_device_error(r); goto done; }
    ep.panels = clvae_at(pan, 0);
  }
  if (packed) {
    /* The plan's offsets count from its buffers' start (B's buffer holds guards before B).
     * Decoys before and after it in the plan (packed in the same launch) must not leak into
     * it: the one before is B read the other way round, the one after A. */
    clvae_pack_job jobs[3] = {{db.off + off, ldb, !tb, N, K}, {db.off + off, ldb, tb, K, N},
                              {db.off, 1, 0, 1, 1}};
    st = clvae_gemm_plan_create(&plan, dev, jobs, 3);
    if (st == CLVAE_OK) {
      float *zero = calloc(clvae_gemm_plan_size(plan) + 1, 4);
      dp.b = NULL;
      st = clvae_buffer_create(dev, clvae_gemm_plan_size(plan) * 4, &dp.b);
      if (st == CLVAE_OK && zero) st = clvae_buffer_write(dev, dp.b, 0, clvae_gemm_plan_size(plan) * 4, zero, 1);
      free(zero);
    }
    if (st == CLVAE_OK) st = clvae_gemm_pack(dev, plan, clvae_at(db.b, 0), clvae_at(dp.b, 0));
    if (st == CLVAE_OK) st = clvae_gemm_packed(dev, plan, 1, ta, M, 1.0f, chk_dv(&da), lda, clvae_at(dp.b, 0), 0.0f, chk_dv(&dc), N, &ep);
  } else {
    st = clvae_gemm_ex(dev, ta, tb, M, N, K, 1.0f, chk_dv(&da), lda, clvae_at(db.b, db.off + off), ldb, 0.0f, chk_dv(&dc), N, &ep);
  }
  if (st != CLVAE_OK) { chk_device_error(r); goto done; }
  if (!chk_dget(dev, r, &dc, got, "C")) goto done;
  chk_compare(r, "C", got, want, scale, cn, act == CLVAE_ACT_SIGMOID ? 2e-6 : 1e-6, 1e-4);
  if (pan && !panels_hold(dev, r, pan, M, N, got)) goto done;
  ok = 1;
done:
  chk_finish(r, ok);
  clvae_buffer_free(pan);
  clvae_gemm_plan_free(plan);
  chk_dfree(&da), chk_dfree(&db), chk_dfree(&dc), chk_dfree(&dbias), chk_dfree(&dm), chk_dfree(&dp);
  free(A), free(B), free(bias), free(mask), free(want), free(got), free(scale);
}

/* Tolerance 1e-6 + 2e-6·|y|: OpenCL's exp is within 3 ulp, the division 2.5 ulp. y has
 * a padding column (row stride N + 1), which must stay as it was. */
static void check_bias_act(clvae_device *dev, check_result *r, int B, int N, clvae_act act, uint64_t seed) {
  static const char *names[] = {"none", "relu", "sigmoid"};
  chk_begin(r, "bias_act", "B=%d N=%d act=%s", B, N, names[act]);
  uint64_t s = seed;
  size_t n = (size_t)B * N;
  const int ld = N + 1;
  float *y = chk_rand_floats(n, &s, -4, 4), *bias = chk_rand_floats((size_t)N, &s, -1, 1), *ys = strided(y, B, N, ld, 1.0f);
  float *want = malloc(n * 4 + 4), *got = malloc(n * 4 + 4), *gs = malloc((size_t)B * ld * 4 + 4);
  dbuf dy = {0}, dbias = {0};
  int ok = 0;
  if (!y || !bias || !ys || !want || !got || !gs) goto done;
  memcpy(want, y, n * 4);
  ref_bias_act(want, bias, B, N, (int)act);
  if (!chk_dput(dev, r, &dy, ys, (size_t)B * ld, 4, 3) || !chk_dput(dev, r, &dbias, bias, (size_t)N, 4, 1)) goto done;
  if (clvae_bias_act(dev, chk_dv(&dy), ld, chk_dv(&dbias), B, N, act) != CLVAE_OK) { chk_device_error(r); goto done; }
  if (!chk_dget(dev, r, &dy, gs, "y")) goto done;
  unstride(r, "y", got, gs, B, N, ld, 1.0f);
  chk_compare(r, "y", got, want, NULL, n, 1e-6, 2e-6);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dy), chk_dfree(&dbias);
  free(y), free(bias), free(ys), free(want), free(got), free(gs);
}

/* Exact: a select, no arithmetic. y has exact zeros as a ReLU output has, and a ones
 * column (row stride N + 1) as the model stores it. In place (dx = dy) when `inplace`, as
 * the step runs it after CLBlast; otherwise dx has a padded stride that must stay as it was. */
static void check_relu_backward(clvae_device *dev, check_result *r, int B, int N, int inplace, uint64_t seed) {
  chk_begin(r, "relu_backward", "B=%d N=%d%s", B, N, inplace ? " in-place" : "");
  uint64_t s = seed;
  size_t n = (size_t)B * N;
  const int ldy = N + 1, ldx = inplace ? N : N + 2;
  float *y = chk_rand_floats(n, &s, -1, 1), *dy = chk_rand_floats(n, &s, -2, 2), *ys = NULL, *xs = NULL;
  float *want = malloc(n * 4 + 4), *got = malloc(n * 4 + 4);
  dbuf dby = {0}, dbdy = {0}, dbdx = {0};
  int ok = 0;
  if (!y || !dy || !want || !got) goto done;
  for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0.0f;
  ref_relu_backward(want, dy, y, (int)n);
  if (!(ys = strided(y, B, N, ldy, 1.0f)) || !(xs = malloc((size_t)B * ldx * 4 + 4))) goto done;
  if (!chk_dput(dev, r, &dby, ys, (size_t)B * ldy, 4, 2) || !chk_dput(dev, r, &dbdy, dy, n, 4, 5)) goto done;
  float *init = inplace ? NULL : strided(NULL, B, 0, ldx, -3.0f);
  int put = inplace || (init && chk_dput(dev, r, &dbdx, init, (size_t)B * ldx, 4, 1));
  free(init);
  if (!put) goto done;
  dbuf *out = inplace ? &dbdy : &dbdx;
  if (clvae_relu_backward(dev, chk_dv(out), ldx, chk_dv(&dbdy), N, chk_dv(&dby), ldy, B, N) != CLVAE_OK) { chk_device_error(r); goto done; }
  if (!chk_dget(dev, r, out, xs, "dx")) goto done;
  unstride(r, "dx", got, xs, B, N, ldx, -3.0f);
  chk_compare(r, "dx", got, want, NULL, n, 0.0, 0.0);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dby), chk_dfree(&dbdy), chk_dfree(&dbdx);
  free(y), free(dy), free(ys), free(xs), free(want), free(got);
}

/* Tolerance 1e-7 + (B+1)·2⁻²⁴·Σ_b|x|: the bound of a sequential float sum. */
static void check_colsum(clvae_device *dev, check_result *r, int B, int N, uint64_t seed) {
  chk_begin(r, "colsum", "B=%d N=%d", B, N);
  uint64_t s = seed;
  size_t n = (size_t)B * N;
  float *x = chk_rand_floats(n, &s, -1, 1), *want = malloc((size_t)N * 4), *got = malloc((size_t)N * 4);
  double *scale = calloc((size_t)N, sizeof *scale);
  dbuf dx = {0}, dout = {0};
  int ok = 0;
  if (!x || !want || !got || !scale) goto done;
  ref_colsum(want, x, B, N);
  for (size_t i = 0; i < n; i++) scale[i % (size_t)N] += fabs(x[i]);
  if (!chk_dput(dev, r, &dx, x, n, 4, 7) || !chk_dput(dev, r, &dout, NULL, (size_t)N, 4, 2)) goto done;
  if (clvae_colsum(dev, chk_dv(&dout), chk_dv(&dx), B, N) != CLVAE_OK) { chk_device_error(r); goto done; }
  if (!chk_dget(dev, r, &dout, got, "out")) goto done;
  chk_compare(r, "out", got, want, scale, (size_t)N, 1e-7, (B + 1) / 16777216.0);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dx), chk_dfree(&dout);
  free(x), free(want), free(got), free(scale);
}

/* ε and z: 1e-5 absolute + 1e-5 relative (float log/sqrt/cos/sin/exp against double);
 * kl: 1e-5 + 1e-5·Σ|terms|. */
static void check_sample_forward(clvae_device *dev, check_result *r, int B, int L, uint32_t row0, uint64_t seed) {
  chk_begin(r, "sample_forward", "B=%d L=%d first row %u", B, L, row0);
  uint64_t s = seed;
  size_t n = (size_t)B * L;
  float *musig = chk_rand_floats(2 * n, &s, -2, 2);
  float *z = malloc(n * 4), *eps = malloc(n * 4), *kl = malloc((size_t)B * 4 + 4);
  float *gz = malloc(n * 4), *geps = malloc(n * 4), *gkl = malloc((size_t)B * 4 + 4);
  double *sz = malloc(n * sizeof(double)), *skl = calloc((size_t)B + 1, sizeof(double));
  dbuf dm = {0}, dz = {0}, de = {0}, dk = {0};
  int ok = 0;
  uint64_t rseed = chk_rng_next(&s), step = chk_rng_next(&s) >> 20;
  if (!musig || !z || !eps || !kl || !gz || !geps || !gkl || !sz || !skl) goto done;
  ref_sample_forward(z, eps, kl, musig, B, L, rseed, step, row0);
  for (int b = 0; b < B; b++)
    for (int l = 0; l < L; l++) {
      double mu = musig[(size_t)b * 2 * L + l], lv = musig[(size_t)b * 2 * L + L + l];
      sz[(size_t)b * L + l] = fabs(mu) + exp(0.5 * lv) * fabs(eps[(size_t)b * L + l]);
      skl[b] += 1.0 + fabs(lv) + mu * mu + exp(lv);
    }
  /* z with its ones column (row stride L + 1), as the decoder's input is stored */
  float *zs = strided(NULL, B, 0, L + 1, 1.0f), *zg = malloc((size_t)B * (L + 1) * 4 + 4);
  int put = zs && zg && chk_dput(dev, r, &dm, musig, 2 * n, 4, 1) && chk_dput(dev, r, &dz, zs, (size_t)B * (L + 1), 4, 2) &&
            chk_dput(dev, r, &de, NULL, n, 4, 3) && chk_dput(dev, r, &dk, NULL, (size_t)B, 4, 4);
  free(zs);
  if (!put) {
    free(zg);
    goto done;
  }
  if (clvae_sample_forward(dev, chk_dv(&dz), L + 1, chk_dv(&de), chk_dv(&dk), chk_dv(&dm), B, L, rseed, step, row0) != CLVAE_OK) {
    free(zg);
    chk_device_error(r);
    goto done;
  }
  int got_all = chk_dget(dev, r, &dz, zg, "z") && chk_dget(dev, r, &de, geps, "eps") && chk_dget(dev, r, &dk, gkl, "kl");
  if (got_all) unstride(r, "z", gz, zg, B, L, L + 1, 1.0f);
  free(zg);
  if (!got_all) goto done;
  chk_compare(r, "eps", geps, eps, NULL, n, 1e-5, 1e-5);
  chk_compare(r, "z", gz, z, sz, n, 1e-5, 1e-5);
  chk_compare(r, "kl", gkl, kl, skl, (size_t)B, 1e-5, 1e-5);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dm), chk_dfree(&dz), chk_dfree(&de), chk_dfree(&dk);
  free(musig), free(z), free(eps), free(kl), free(gz), free(geps), free(gkl), free(sz), free(skl);
}

/* 1e-6 absolute + 1e-5 relative (float exp within 3 ulp). */
static void check_sample_backward(clvae_device *dev, check_result *r, int B, int L, uint64_t seed) {
  chk_begin(r, "sample_backward", "B=%d L=%d", B, L);
  uint64_t s = seed;
  size_t n = (size_t)B * L;
  float *musig = chk_rand_floats(2 * n, &s, -2, 2), *dz = chk_rand_floats(n, &s, -1, 1);
  float *eps = chk_rand_floats(n, &s, -3, 3), *want = malloc(2 * n * 4), *got = malloc(2 * n * 4);
  float kl_scale = 1.0f / (float)(B > 0 ? B : 1);
  dbuf dm = {0}, ddz = {0}, de = {0}, dout = {0};
  int ok = 0;
  float *dzs = NULL;
  const int ldz = L + 3; /* rows apart, as a conditional decoder's input gradient (z, then the one-hot) */
  if (!musig || !dz || !eps || !want || !got || !(dzs = strided(dz, B, L, ldz, NAN))) goto done;
  ref_sample_backward(want, dz, eps, musig, B, L, kl_scale);
  if (!chk_dput(dev, r, &dm, musig, 2 * n, 4, 1) || !chk_dput(dev, r, &ddz, dzs, (size_t)B * ldz, 4, 2) ||
      !chk_dput(dev, r, &de, eps, n, 4, 3) || !chk_dput(dev, r, &dout, NULL, 2 * n, 4, 4))
    goto done;
  if (clvae_sample_backward(dev, chk_dv(&dout), chk_dv(&ddz), ldz, chk_dv(&de), chk_dv(&dm), B, L, kl_scale) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dout, got, "dmusig")) goto done;
  chk_compare(r, "dmusig", got, want, NULL, 2 * n, 1e-6, 1e-5);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dm), chk_dfree(&ddz), chk_dfree(&de), chk_dfree(&dout);
  free(musig), free(dz), free(dzs), free(eps), free(want), free(got);
}

/* The normals alone (μ = 0, logσ² = 0 so z = ε): equal to the reference (1e-5), mean
 * and variance of `count` draws within 5 standard errors of 0 and 1, identical for two
 * local sizes and two runs, different for another seed. */
void check_rng(clvae_device *dev, check_result *r, int count, uint64_t seed) {
  int L = 4, B = count / L;
  size_t n = (size_t)B * L;
  chk_begin(r, "rng", "%zu normals, seed %llu", n, (unsigned long long)seed);
  float *musig = calloc(2 * n, 4), *z = malloc(n * 4), *eps = malloc(n * 4), *kl = malloc((size_t)B * 4);
  float *g1 = malloc(n * 4), *g2 = malloc(n * 4), *g3 = malloc(n * 4);
  dbuf dm = {0}, dz = {0}, de = {0}, dk = {0};
  int ok = 0;
  if (!musig || !z || !eps || !kl || !g1 || !g2 || !g3 || B < 1) goto done;
  ref_sample_forward(z, eps, kl, musig, B, L, seed, 7, 0);
  if (!chk_dput(dev, r, &dm, musig, 2 * n, 4, 0) || !chk_dput(dev, r, &dz, NULL, n, 4, 0) ||
      !chk_dput(dev, r, &de, NULL, n, 4, 0) || !chk_dput(dev, r, &dk, NULL, (size_t)B, 4, 0))
    goto done;
  float *outs[3] = {g1, g2, g3};
  size_t locals[3] = {1, 64, 0};
  uint64_t seeds[3] = {seed, seed, seed + 1};
  for (int run = 0; run < 3; run++) {
    clvae_device_set_local_size(dev, locals[run]);
    clvae_status st = clvae_sample_forward(dev, chk_dv(&dz), L, chk_dv(&de), chk_dv(&dk), chk_dv(&dm), B, L, seeds[run], 7, 0);
    clvae_device_set_local_size(dev, 0);
    if (st != CLVAE_OK) { chk_device_error(r); goto done; }
    if (!chk_dget(dev, r, &de, outs[run], "eps")) goto done;
  }
  chk_compare(r, "eps", g1, eps, NULL, n, 1e-5, 1e-5);
  double mean = 0, var = 0;
  size_t same_other_seed = 0;
  for (size_t i = 0; i < n; i++) mean += g1[i];
  mean /= (double)n;
  for (size_t i = 0; i < n; i++) var += (g1[i] - mean) * (g1[i] - mean);
  var /= (double)(n > 1 ? n - 1 : 1);
  for (size_t i = 0; i < n; i++) same_other_seed += g1[i] == g3[i];
  size_t used = strlen(r->detail);
  if (memcmp(g1, g2, n * 4) != 0) {
    snprintf(r->detail + used, sizeof r->detail - used, "%soutput depends on the local size", used ? "; " : "");
    r->bad++;
  } else if (n >= 1000 && (fabs(mean) > 5.0 / sqrt((double)n) || fabs(var - 1.0) > 5.0 * sqrt(2.0 / (double)n))) {
    snprintf(r->detail + used, sizeof r->detail - used, "%smean %.5f, variance %.5f outside 5 standard errors",
             used ? "; " : "", mean, var);
    r->bad++;
  } else if (same_other_seed > n / 100) {
    snprintf(r->detail + used, sizeof r->detail - used, "%sseed %llu repeats %zu of seed %llu's numbers",
             used ? "; " : "", (unsigned long long)(seed + 1), same_other_seed, (unsigned long long)seed);
    r->bad++;
  }
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dm), chk_dfree(&dz), chk_dfree(&de), chk_dfree(&dk);
  free(musig), free(z), free(eps), free(kl), free(g1), free(g2), free(g3);
}

/* loss: 1e-5 + 1e-5·|loss| (the terms are ≥ 0); gradient: 1e-6·scale + 1e-5 relative.
 * Targets include exact 0 and 1, as real images do. */
static void check_loss(clvae_device *dev, check_result *r, clvae_loss_kind kind, int B, int D,
                       int inplace, uint64_t seed) {
  chk_begin(r, kind == CLVAE_LOSS_MSE ? "loss_mse" : "loss_bce", "B=%d D=%d%s", B, D, inplace ? " in-place" : "");
  uint64_t s = seed;
  size_t n = (size_t)B * D;
  float scale = 1.0f / (float)(B > 0 ? B : 1);
  float *lg = chk_rand_floats(n, &s, -8, 8), *bias = chk_rand_floats((size_t)D, &s, -1, 1);
  float *x = chk_rand_floats(n, &s, -0.3f, 1.3f), *wl = malloc((size_t)B * 4 + 4), *wg = malloc(n * 4 + 4);
  float *gl = malloc((size_t)B * 4 + 4), *gg = malloc(n * 4 + 4);
  dbuf dl = {0}, dg = {0}, dlg = {0}, db = {0}, dx = {0};
  clvae_buffer *pan = NULL;
  int ok = 0;
  if (!lg || !bias || !x || !wl || !wg || !gl || !gg) goto done;
  for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? 0.0f : x[i] > 1 ? 1.0f : x[i];
  ref_loss_sigmoid((int)kind, wl, wg, lg, bias, x, B, D, scale);
  float *xs = strided(x, B, D, D + 1, 1.0f); /* the targets as the model stores its input */
  int put = xs && chk_dput(dev, r, &dl, NULL, (size_t)B, 4, 1) && chk_dput(dev, r, &dlg, lg, n, 4, 2) &&
            chk_dput(dev, r, &db, bias, (size_t)D, 4, 3) && chk_dput(dev, r, &dx, xs, (size_t)B * (D + 1), 4, 4) &&
            (inplace || chk_dput(dev, r, &dg, NULL, n, 4, 5));
  free(xs);
  if (!put) goto done;
  dbuf *grad = inplace ? &dlg : &dg;
  /* with the builtin GEMM, the gradient also in the panels of the GEMM that reads it */
  size_t pn = B > 0 ? clvae_gemm_panels_size(dev, B, D) : 0;
  if (pn && clvae_buffer_create(dev, pn * 4, &pan) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (clvae_loss_sigmoid(dev, kind, chk_dv(&dl), chk_dv(grad), clvae_at(pan, 0), chk_dv(&dlg), chk_dv(&db), chk_dv(&dx), D + 1, B, D,
                         scale) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dl, gl, "loss") || !chk_dget(dev, r, grad, gg, "dlogits")) goto done;
  chk_compare(r, "loss", gl, wl, NULL, (size_t)B, 1e-5, 1e-5);
  chk_compare(r, "dlogits", gg, wg, NULL, n, 1e-6 * scale, 1e-5);
  if (pan && !panels_hold(dev, r, pan, B, D, gg)) goto done;
  ok = 1;
done:
  chk_finish(r, ok);
  clvae_buffer_free(pan);
  chk_dfree(&dl), chk_dfree(&dg), chk_dfree(&dlg), chk_dfree(&db), chk_dfree(&dx);
  free(lg), free(bias), free(x), free(wl), free(wg), free(gl), free(gg);
}

/* p: 1e-8 + 1e-6·|p| (an update of ≈ lr, relative error ≈ 1e-6); m, v: 1e-12 + 1e-6
 * relative to the magnitude of their two terms (β1·m and (1−β1)·g can cancel). */
static void check_adam(clvae_device *dev, check_result *r, int n, int64_t t, uint64_t seed) {
  chk_begin(r, "adam", "n=%d t=%lld", n, (long long)t);
  uint64_t s = seed;
  float *p = chk_rand_floats((size_t)n, &s, -0.5f, 0.5f), *g = chk_rand_floats((size_t)n, &s, -0.1f, 0.1f);
  float *m = chk_rand_floats((size_t)n, &s, -0.01f, 0.01f), *v = chk_rand_floats((size_t)n, &s, 0.0f, 1e-3f);
  float *gp = malloc((size_t)n * 4 + 4), *gm = malloc((size_t)n * 4 + 4), *gv = malloc((size_t)n * 4 + 4);
  double *sm = malloc((size_t)n * sizeof(double) + 8), *sv = malloc((size_t)n * sizeof(double) + 8);
  dbuf dp = {0}, dg = {0}, dm = {0}, dvb = {0};
  int ok = 0;
  if (!p || !g || !m || !v || !gp || !gm || !gv || !sm || !sv) goto done;
  for (int i = 0; i < n; i++) {
    sm[i] = 0.9 * fabs(m[i]) + 0.1 * fabs(g[i]);
    sv[i] = 0.999 * v[i] + 0.001 * (double)g[i] * g[i];
  }
  if (!chk_dput(dev, r, &dp, p, (size_t)n, 4, 1) || !chk_dput(dev, r, &dg, g, (size_t)n, 4, 2) ||
      !chk_dput(dev, r, &dm, m, (size_t)n, 4, 3) || !chk_dput(dev, r, &dvb, v, (size_t)n, 4, 4))
    goto done;
  ref_adam(p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-7f, t);
  if (clvae_adam(dev, chk_dv(&dp), chk_dv(&dg), chk_dv(&dm), chk_dv(&dvb), n, 1e-3f, 0.9f, 0.999f, 1e-7f, t) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!chk_dget(dev, r, &dp, gp, "p") || !chk_dget(dev, r, &dm, gm, "m") || !chk_dget(dev, r, &dvb, gv, "v")) goto done;
  chk_compare(r, "p", gp, p, NULL, (size_t)n, 1e-8, 1e-6);
  chk_compare(r, "m", gm, m, sm, (size_t)n, 1e-12, 1e-6);
  chk_compare(r, "v", gv, v, sv, (size_t)n, 1e-12, 1e-6);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dp), chk_dfree(&dg), chk_dfree(&dm), chk_dfree(&dvb);
  free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv), free(sm), free(sv);
}

/* Within 3e-7 relative: one float division (2.5 ulp in OpenCL). */
static void check_gather(clvae_device *dev, check_result *r, int B, int D, int count, uint64_t seed) {
  chk_begin(r, "gather", "B=%d D=%d from %d images", B, D, count);
  uint64_t s = seed;
  size_t n = (size_t)B * D, ni = (size_t)count * D;
  uint8_t *img = malloc(ni + 1);
  uint32_t *idx = malloc((size_t)B * 4 + 4);
  float *want = malloc(n * 4 + 4), *got = malloc(n * 4 + 4);
  dbuf dimg = {0}, didx = {0}, dx = {0};
  int ok = 0;
  if (!img || !idx || !want || !got) goto done;
  for (size_t i = 0; i < ni; i++) img[i] = (uint8_t)chk_rng_next(&s);
  for (int b = 0; b < B; b++) idx[b] = (uint32_t)(chk_rng_next(&s) % (uint64_t)count);
  ref_gather(want, img, idx, B, D);
  float *xs = strided(NULL, B, 0, D + 1, 1.0f), *xg = malloc((size_t)B * (D + 1) * 4 + 4); /* a ones column */
  int put = xs && xg && chk_dput(dev, r, &dimg, img, ni, 1, 5) && chk_dput(dev, r, &didx, idx, (size_t)B, 4, 3) &&
            chk_dput(dev, r, &dx, xs, (size_t)B * (D + 1), 4, 1);
  free(xs);
  if (put && clvae_gather(dev, chk_dv(&dx), D + 1, chk_dv(&dimg), chk_dv(&didx), B, D) != CLVAE_OK) {
    free(xg);
    chk_device_error(r);
    goto done;
  }
  put = put && chk_dget(dev, r, &dx, xg, "x");
  if (put) unstride(r, "x", got, xg, B, D, D + 1, 1.0f);
  free(xg);
  if (!put) goto done;
  chk_compare(r, "x", got, want, NULL, n, 0.0, 3e-7);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dimg), chk_dfree(&didx), chk_dfree(&dx);
  free(img), free(idx), free(want), free(got);
}

/* Exact: the one-hot class of each row into columns col0.. of a strided array whose other
 * columns must stay as they were (NaN here). */
static void check_onehot(clvae_device *dev, check_result *r, int B, int K, int count, uint64_t seed) {
  chk_begin(r, "onehot", "B=%d K=%d from %d labels", B, K, count);
  uint64_t s = seed;
  const int col0 = 5, ld = col0 + K + 2;
  uint8_t *lab = malloc((size_t)count + 1);
  uint32_t *idx = malloc((size_t)B * 4 + 4);
  float *want = malloc((size_t)B * K * 4 + 4), *got = malloc((size_t)B * K * 4 + 4), *xs = NULL, *xg = NULL;
  dbuf dlab = {0}, didx = {0}, dx = {0};
  int ok = 0;
  if (!lab || !idx || !want || !got) goto done;
  for (int i = 0; i < count; i++) lab[i] = (uint8_t)(chk_rng_next(&s) % (uint64_t)K);
  for (int b = 0; b < B; b++) idx[b] = (uint32_t)(chk_rng_next(&s) % (uint64_t)count);
  for (int b = 0; b < B; b++)
    for (int k = 0; k < K; k++) want[(size_t)b * K + k] = lab[idx[b]] == k;
  /* the pixels' columns before col0 and the ones column after: NaN, and must stay so */
  float *full = malloc(((size_t)B * ld + 1) * 4);
  for (size_t i = 0; full && i < (size_t)B * ld; i++) full[i] = NAN;
  xs = full, xg = malloc(((size_t)B * ld + 1) * 4);
  int put = xs && xg && chk_dput(dev, r, &dlab, lab, (size_t)count, 1, 5) && chk_dput(dev, r, &didx, idx, (size_t)B, 4, 3) &&
            chk_dput(dev, r, &dx, xs, (size_t)B * ld, 4, 1);
  if (put && clvae_onehot(dev, chk_dv(&dx), ld, col0, chk_dv(&dlab), chk_dv(&didx), B, K) != CLVAE_OK) {
    chk_device_error(r);
    goto done;
  }
  if (!put || !chk_dget(dev, r, &dx, xg, "x")) goto done;
  for (int b = 0; b < B; b++)
    for (int j = 0; j < ld; j++) {
      float v = xg[(size_t)b * ld + j];
      if (j >= col0 && j < col0 + K) got[(size_t)b * K + j - col0] = v;
      else if (!isnan(v) && r->bad++ == 0)
        snprintf(r->detail, sizeof r->detail, "x[%d][%d] = %g: written outside the one-hot columns", b, j, (double)v);
    }
  chk_compare(r, "x", got, want, NULL, (size_t)B * K, 0.0, 0.0);
  ok = 1;
done:
  chk_finish(r, ok);
  chk_dfree(&dlab), chk_dfree(&didx), chk_dfree(&dx);
  free(lab), free(idx), free(want), free(got), free(xs), free(xg);
}

/* ---- the suite: the real shapes of the default model, taken from its layer list (B 256,
 * 784 pixels, hidden 512, latent 2), and with `thorough` the odd sizes 1, 7, 33, 257 ---- */

typedef struct suite {
  clvae_device *dev;
  const char *only;
  check_report report;
  void *user;
  int failures;
  uint64_t seed;
  clvae_net net;             /* the default model */
  int B;
} suite;

/* Whether an earlier layer than i has the same (out, act): each distinct shape once. */
static int seen(const clvae_net *n, int i, int same_act) {
  for (int j = 0; j < i; j++)
    if (n->layers[j].kind != CLVAE_LAYER_SAMPLE && n->layers[j].out == n->layers[i].out &&
        (!same_act || n->layers[j].act == n->layers[i].act))
      return 1;
  return 0;
}

static int wanted(const suite *s, const char *kernel) { return !s->only || strcmp(s->only, kernel) == 0; }

static void done_case(suite *s, check_result *r) {
  if (!r->pass) s->failures++;
  s->seed++;
  if (s->report) s->report(r, s->user);
}

static const int odd[] = {1, 7, 33, 257};

/* The fused GEMMs of a training step, as the model runs them: each dense layer's forward
 * with its bias and activation (the output layer also as decoding, with the sigmoid), and
 * each backward GEMM that produces a ReLU layer's gradient with the mask; with the builtin
 * GEMM also with the weights packed ahead, the masked ones then storing their result in
 * panels as the model runs them. */
static void suite_fused(suite *s) {
  check_result r;
  const clvae_net *n = &s->net;
  int builtin = clvae_gemm_get_impl(s->dev) == CLVAE_GEMM_BUILTIN;
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE || seen(n, i, 1)) continue;
    clvae_act act = l->kind == CLVAE_LAYER_OUTPUT ? CLVAE_ACT_SIGMOID : l->act;
    int masked = i > 0 && n->layers[i - 1].act == CLVAE_ACT_RELU;
    for (int packed = 0; packed <= builtin; packed++) {
      check_gemm_fused(s->dev, &r, 0, 0, s->B, l->out, l->in, 1, act, 0, packed, 0, s->seed), done_case(s, &r);
      check_gemm_fused(s->dev, &r, 0, 1, s->B, l->in, l->out, 0, CLVAE_ACT_NONE, masked, packed, masked && packed, s->seed),
          done_case(s, &r);
    }
  }
}

static void suite_gemm(suite *s, int thorough, int nodd) {
  check_result r;
  clvae_gemm_shape g[4 * CLVAE_MAX_LAYERS];
  int n = clvae_net_step_gemms(&s->net, s->B, g, 4 * CLVAE_MAX_LAYERS);
  for (int i = 0; i < n; i++) { /* the GEMMs of one training step */
    check_gemm(s->dev, &r, g[i].ta, g[i].tb, g[i].M, g[i].N, g[i].K, 1.0f, 0.0f, 0, s->seed);
    done_case(s, &r);
  }
  /* blocks of a last panel with 1, 2 and 3 vectors of real columns (at the CPU's 64-column
   * block; other blocks see other splits), B transposed or not */
  static const int tails[] = {65, 84, 100};
  for (int t = 0; t < 3; t++)
    check_gemm(s->dev, &r, 0, t & 1, 5, tails[t], 9, 1.0f, 0.0f, 0, s->seed), done_case(s, &r);
  /* a B as wide as one panel of the build its N picks (16, 32, 64 columns), read in place as
   * its own panels; and a long K over few blocks of C (a conv's weight gradient), split into
   * parts whose sums gemm_ksum adds, with α and β */
  static const int panel_n[] = {16, 32, 64};
  for (int t = 0; t < 3; t++)
    check_gemm(s->dev, &r, t & 1, 0, 13, panel_n[t], 11, 1.0f, 0.0f, 0, s->seed), done_case(s, &r);
  check_gemm(s->dev, &r, 1, 0, 9, 32, 4099, 1.0f, 0.0f, 0, s->seed), done_case(s, &r);
  check_gemm(s->dev, &r, 1, 0, 10, 20, 3001, 0.7f, -1.3f, 0, s->seed), done_case(s, &r);
  suite_fused(s);
  int builtin = clvae_gemm_get_impl(s->dev) == CLVAE_GEMM_BUILTIN;
  for (int a = 0; a < nodd; a++) /* the epilogue's edge paths: odd sizes, every option, packed or not */
    for (int packed = 0; packed <= builtin; packed++)
      for (int e = 0; e < 4; e++) { /* bias + none/relu/sigmoid, and the mask alone */
        int M = odd[a], N = odd[(a + 1) % nodd], K = odd[(a + 2) % nodd];
        check_gemm_fused(s->dev, &r, a & 1, a >> 1 & 1, M, N, K, e < 3, (clvae_act)(e % 3), e == 3, packed,
                         packed && e == 3, s->seed);
        done_case(s, &r);
      }
  /* a mask with a bias: no tile kernel has both; a plain one and the element-wise kernels
   * (and, with panels, the packing kernel after them) */
  check_gemm_fused(s->dev, &r, 0, 1, 33, 17, 7, 1, CLVAE_ACT_RELU, 1, 0, builtin, s->seed), done_case(s, &r);
  /* a transposed B packed ahead in 16 × 16 blocks, with a partial block in each direction */
  if (builtin) check_gemm_fused(s->dev, &r, 0, 1, 7, 33, 33, 0, CLVAE_ACT_NONE, 0, 1, 0, s->seed), done_case(s, &r);
  if (!thorough) {
    check_gemm(s->dev, &r, 1, 1, 33, 257, 7, 0.7f, -1.3f, 5, s->seed);
    done_case(s, &r);
    return;
  }
  for (int t = 0; t < 4; t++)
    for (int a = 0; a < nodd; a++) {
      /* every odd size in each of M, N, K across the loop, α and β not 0/1, offsets */
      int M = odd[a], N = odd[(a + 1) % nodd], K = odd[(a + 2) % nodd];
      check_gemm(s->dev, &r, t & 1, t >> 1, M, N, K, 0.7f, a % 2 ? -1.3f : 0.0f, (size_t)a * 3, s->seed);
      done_case(s, &r);
    }
  if (nodd == 4) check_gemm(s->dev, &r, 0, 0, 257, 257, 257, -0.5f, 0.25f, 1, s->seed), done_case(s, &r);
  check_gemm(s->dev, &r, 1, 1, 33, 33, 0, 1.0f, 2.0f, 0, s->seed); /* K = 0: C = βC */
  done_case(s, &r);
}

int check_suite(clvae_device *dev, const char *only, int mode, check_report report, void *user) {
  suite s = {.dev = dev, .only = only, .report = report, .user = user, .seed = 1234};
  check_result r;
  clvae_config c;
  clvae_config_default(&c);
  if (mode == CHECK_SMALL) c.height = 5, c.width = 7, c.hidden[0] = 9, c.latent = 3, c.batch = 6;
  if (clvae_net_build(&s.net, &c) != CLVAE_OK) return 1;
  const clvae_net *net = &s.net;
  const int B = s.B = c.batch, D = net->D, L = net->L, nodd = mode == CHECK_THOROUGH ? 4 : mode == CHECK_SMALL ? 3 : 0;
  const int thorough = mode != CHECK_QUICK;
  if (wanted(&s, "gemm")) suite_gemm(&s, thorough, nodd);
  if (wanted(&s, "bias_act")) {
    for (int i = 0; i < net->nlayers; i++)
      if (net->layers[i].kind == CLVAE_LAYER_DENSE && !seen(net, i, 1))
        check_bias_act(dev, &r, B, net->layers[i].out, net->layers[i].act, s.seed), done_case(&s, &r);
    check_bias_act(dev, &r, B, D, CLVAE_ACT_SIGMOID, s.seed), done_case(&s, &r); /* decoding */
    for (int i = 0; i < nodd; i++)
      check_bias_act(dev, &r, odd[i], odd[(i + 1) % 4], (clvae_act)(i % 3), s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "relu_backward")) {
    for (int i = 0; i < net->nlayers; i++)
      if (net->layers[i].act == CLVAE_ACT_RELU && !seen(net, i, 1))
        check_relu_backward(dev, &r, B, net->layers[i].out, 1, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_relu_backward(dev, &r, odd[i], odd[(i + 1) % 4], i % 2, s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "colsum")) {
    for (int i = 0; i < net->nlayers; i++)
      if (net->layers[i].kind != CLVAE_LAYER_SAMPLE && !seen(net, i, 0))
        check_colsum(dev, &r, B, net->layers[i].out, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_colsum(dev, &r, odd[i], odd[(i + 3) % 4], s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "sample_forward")) {
    check_sample_forward(dev, &r, B, L, 0, s.seed), done_case(&s, &r);
    check_sample_forward(dev, &r, B / 2, L, (uint32_t)(B - B / 2), s.seed), done_case(&s, &r); /* a batch's second part */
    for (int i = 0; i < nodd; i++)
      check_sample_forward(dev, &r, odd[i], odd[(i + 1) % 4] % 9, (uint32_t)i, s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "sample_backward")) {
    check_sample_backward(dev, &r, B, L, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_sample_backward(dev, &r, odd[i], odd[(i + 1) % 4] % 9, s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "rng")) check_rng(dev, &r, mode == CHECK_SMALL ? 4000 : 1000000, 42), done_case(&s, &r);
  for (int k = 0; k < 2; k++) {
    clvae_loss_kind kind = k ? CLVAE_LOSS_BCE : CLVAE_LOSS_MSE;
    if (!wanted(&s, k ? "loss_bce" : "loss_mse")) continue;
    check_loss(dev, &r, kind, B, D, 1, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_loss(dev, &r, kind, odd[i], odd[(i + 1) % 4], i % 2, s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "adam")) {
    check_adam(dev, &r, (int)net->total, 1, s.seed), done_case(&s, &r);
    check_adam(dev, &r, (int)net->total, 2345, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_adam(dev, &r, odd[i], 1 + i * 100, s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "gather")) {
    check_gather(dev, &r, B, D, mode == CHECK_SMALL ? 20 : 1000, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++) check_gather(dev, &r, odd[i], odd[(i + 2) % 4], odd[(i + 1) % 4], s.seed), done_case(&s, &r);
    check_onehot(dev, &r, B, 10, mode == CHECK_SMALL ? 20 : 1000, s.seed), done_case(&s, &r);
    for (int i = 0; i < nodd; i++)
      check_onehot(dev, &r, odd[i], i == 3 ? 256 : odd[(i + 2) % 4] % 256, odd[(i + 1) % 4], s.seed), done_case(&s, &r);
  }
  if (wanted(&s, "conv")) s.failures += check_conv_suite(dev, mode, report, user, &s.seed);
  return s.failures;
}
