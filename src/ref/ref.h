/* Plain-C reference of every op, written for clarity, with double accumulators where
 * it sums. Tests and `clvae selftest` compare the kernels against it. Shapes and
 * semantics are those of include/clvae/ops.h. */
#ifndef CLVAE_REF_H
#define CLVAE_REF_H

#include <stdint.h>

#include "clvae/ops.h"

void ref_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void ref_bias_act(float *y, const float *bias, int B, int N, int act);
void ref_relu_backward(float *dx, const float *dy, const float *y, int n);
void ref_colsum(float *out, const float *x, int B, int N);

/* Philox4x32-10 with the counter (c0..c3) and key (k0, k1). */
void ref_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* The four normals for (seed, step, row, column group), as the kernel draws them. */
void ref_normal4(uint64_t seed, uint64_t step, uint32_t row, uint32_t group, float out[4]);
void ref_sample_forward(float *z, float *eps, float *kl, const float *musig, int B, int L,
                        uint64_t seed, uint64_t step, uint32_t row0);
void ref_sample_backward(float *dmusig, const float *dz, const float *eps, const float *musig,
                         int B, int L, float kl_scale);
/* kind 0: MSE, 1: BCE; dlogits may be NULL. */
void ref_loss_sigmoid(int kind, float *loss, float *dlogits, const float *logits,
                      const float *bias, const float *x, int B, int D, float scale);
void ref_adam(float *p, const float *g, float *m, float *v, int n, float lr, float beta1,
              float beta2, float eps, int64_t t);
void ref_gather(float *x, const uint8_t *images, const uint32_t *idx, int B, int D);

/* Convolutions (NHWC, clvae_conv_geom), by direct loops over grid positions and taps.
 * A conv (deconv 0) maps x (B·H·W, C) to y (B·Ho·Wo, F); a transposed conv x (B·Ho·Wo, F)
 * to y (B·H·W, C); W (K·K·C, F). y = act(Σ + bias) (act 0 none, 1 ReLU, 2 sigmoid); mag,
 * if not NULL, receives Σ|terms| per output (the tolerance's scale). 0 if out of memory. */
int ref_conv(int deconv, const clvae_conv_geom *g, const float *x, const float *w, const float *bias, int act,
             float *y, double *mag);
/* From dy (y's shape): dw (K·K·C, F), db (y's channels), and, if dx is not NULL, dx (x's
 * shape) zeroed where mask (x's shape, may be NULL) is not positive; *_mag as above. */
int ref_conv_backward(int deconv, const clvae_conv_geom *g, const float *x, const float *dy, const float *w,
                      const float *mask, float *dw, float *db, float *dx, double *dw_mag, double *dx_mag);

#endif
