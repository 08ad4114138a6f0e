/* clvae ops layer: one host function per operation. Each picks its kernel, sets the
 * arguments and enqueues without waiting; it knows shapes, not models.
 * Shapes: B batch rows, N/D columns, L latent dimension. Matrices are row-major.
 * A view is (buffer, offset) with the offset counted in elements of the op's type. */
#ifndef CLVAE_OPS_H
#define CLVAE_OPS_H

#include "clvae/device.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clvae_view {
  clvae_buffer *buf;
  size_t off;                /* in elements (floats, or bytes/uint32 where stated) */
} clvae_view;

static inline clvae_view clvae_at(clvae_buffer *buf, size_t off) {
  clvae_view v;
  v.buf = buf;
  v.off = off;
  return v;
}

/* Builds every op's kernels for the device now (otherwise each is built on first use). */
CLVAE_API clvae_status clvae_ops_build_all(clvae_device *dev);

typedef enum clvae_gemm_impl {
  CLVAE_GEMM_AUTO = 0,       /* builtin on CPU devices, CLBlast on GPUs */
  CLVAE_GEMM_BUILTIN,        /* clvae's own packed, register-blocked kernel */
  CLVAE_GEMM_CLBLAST
} clvae_gemm_impl;

CLVAE_API const char *clvae_gemm_impl_name(clvae_gemm_impl g);
/* Parses "auto", "builtin", "clblast"; returns -1 on anything else. */
CLVAE_API int clvae_gemm_impl_parse(const char *s);
/* Which implementation clvae_gemm uses on this device (AUTO resolves by device type). */
CLVAE_API clvae_status clvae_gemm_set_impl(clvae_device *dev, clvae_gemm_impl g);
/* The implementation in use (never AUTO); BUILTIN if it could not be determined. */
CLVAE_API clvae_gemm_impl clvae_gemm_get_impl(clvae_device *dev);

typedef enum clvae_act { CLVAE_ACT_NONE = 0, CLVAE_ACT_RELU = 1, CLVAE_ACT_SIGMOID = 2 } clvae_act;

/* C = alpha·op(A)·op(B) + beta·C; op(A) is M×K, op(B) is K×N, C is M×N; lda/ldb/ldc are
 * the row strides of A, B, C as stored. beta = 0 never reads C. */
CLVAE_API clvae_status clvae_gemm(clvae_device *dev, int trans_a, int trans_b, int M, int N,
                                  int K, float alpha, clvae_view A, int lda, clvae_view B,
                                  int ldb, float beta, clvae_view C, int ldc);

/* What is applied to C as it is stored, in this order: a bias per column (N), then an
 * activation (which needs the bias), then a mask: C[i][j] = 0 where mask[i][j] ≤ 0 (ReLU
 * backward from the stored output, (M, ldm)). A NULL buf means none. The builtin GEMM
 * does it in its epilogue; after CLBlast it takes bias_act and relu_backward. `panels`
 * (builtin GEMM only; at its buffer's start, clvae_gemm_panels_size(dev, M, N) floats):
 * C is also stored there as a later GEMM reads a B of M rows (clvae_gemm_from_panels);
 * with the mask alone the tile kernel does it, otherwise a packing kernel after. */
typedef struct clvae_epilogue {
  clvae_view bias;
  clvae_act act;
  clvae_view mask;
  int ldm;
  clvae_view panels;
} clvae_epilogue;

/* Floats of the panels in which the builtin GEMM reads a B of K rows and N columns; 0 when
 * the device's GEMM is another (then nothing is stored in panels). */
CLVAE_API size_t clvae_gemm_panels_size(clvae_device *dev, int K, int N);
/* C = ep(alpha·op(A)·B + beta·C) with B (K×N, K ≥ 1) given as panels (an epilogue's, or the
 * loss's); unlike those writers, this reader takes a view at any offset. */
CLVAE_API clvae_status clvae_gemm_from_panels(clvae_device *dev, int trans_a, int M, int N, int K, float alpha,
                                              clvae_view A, int lda, clvae_view panels, float beta, clvae_view C,
                                              int ldc, const clvae_epilogue *ep);

CLVAE_API clvae_status clvae_gemm_ex(clvae_device *dev, int trans_a, int trans_b, int M, int N, int K, float alpha,
                                     clvae_view A, int lda, clvae_view B, int ldb, float beta, clvae_view C, int ldc,
                                     const clvae_epilogue *ep);

/* B operands packed ahead, for the builtin GEMM: a plan of matrices of one buffer (each
 * op(B) of K×N: B stored at src_off with row stride ld, transposed if trans), packed all
 * in one launch into panels the GEMM then reads directly (the weights, once per optimizer
 * step, serve every GEMM that reads them). */
typedef struct clvae_pack_job {
  size_t src_off;            /* floats */
  int ld, trans, K, N;
} clvae_pack_job;
typedef struct clvae_gemm_plan clvae_gemm_plan;

CLVAE_API clvae_status clvae_gemm_plan_create(clvae_gemm_plan **out, clvae_device *dev, const clvae_pack_job *jobs,
                                              int n);
CLVAE_API void clvae_gemm_plan_free(clvae_gemm_plan *p);
/* Floats the packed buffer needs. */
CLVAE_API size_t clvae_gemm_plan_size(const clvae_gemm_plan *p);
/* Packs every matrix of the plan from src (offsets from its start) into dst. One launch. */
CLVAE_API clvae_status clvae_gemm_pack(clvae_device *dev, const clvae_gemm_plan *p, clvae_view src, clvae_view dst);
/* C = ep(alpha·op(A)·op(B)_job + beta·C) with op(B) = the plan's matrix `job`, packed in
 * `packed`; N and K are that matrix's. Needs the builtin GEMM. */
CLVAE_API clvae_status clvae_gemm_packed(clvae_device *dev, const clvae_gemm_plan *p, int job, int trans_a, int M,
                                         float alpha, clvae_view A, int lda, clvae_view packed, float beta, clvae_view C,
                                         int ldc, const clvae_epilogue *ep);

/* y = act(y + bias) in place.  y (B, N) with row stride ldy, bias (N). */
CLVAE_API clvae_status clvae_bias_act(clvae_device *dev, clvae_view y, int ldy, clvae_view bias, int B, int N,
                                      clvae_act act);
/* dx = dy · [y > 0], from the stored ReLU output y; dx may be dy.  All (B, N) with their
 * row strides. */
CLVAE_API clvae_status clvae_relu_backward(clvae_device *dev, clvae_view dx, int ldx, clvae_view dy, int ldy,
                                           clvae_view y, int ld_y, int B, int N);
/* out[j] = Σ_b x[b][j] (bias gradients).  x (B, N), out (N). Fixed summation order. */
CLVAE_API clvae_status clvae_colsum(clvae_device *dev, clvae_view out, clvae_view x, int B, int N);

/* The reparameterization. musig (B, 2L) holds [μ | logσ²] per row. Writes ε ~ N(0,1)
 * (B, L) from Philox4x32-10 keyed by (seed, step, row0 + row, column), independent of
 * device, work-group size and of how a batch is split over devices (row0: this part's
 * first row in the batch); z = μ + exp(0.5·logσ²)·ε (B, L, row stride ldz); kl (B) =
 * −0.5·Σ(1 + logσ² − μ² − e^logσ²). */
CLVAE_API clvae_status clvae_sample_forward(clvae_device *dev, clvae_view z, int ldz, clvae_view eps,
                                            clvae_view kl, clvae_view musig, int B, int L,
                                            uint64_t seed, uint64_t step, uint32_t row0);
/* dmusig (B, 2L) = gradient through z (dz (B, L)) plus kl_scale · ∂KL/∂[μ | logσ²]. */
CLVAE_API clvae_status clvae_sample_backward(clvae_device *dev, clvae_view dmusig, clvae_view dz,
                                             clvae_view eps, clvae_view musig, int B, int L,
                                             float kl_scale);

typedef enum clvae_loss_kind { CLVAE_LOSS_MSE = 0, CLVAE_LOSS_BCE = 1 } clvae_loss_kind;

/* Sigmoid output fused with the reconstruction loss. logits (B, D) are the raw GEMM
 * output, bias (D) is added here, x (B, D) are the targets with row stride ldx. loss (B)
 * per image: MSE: Σ_d (p − x)² (= D·mean), BCE: Σ_d −x·log p − (1−x)·log(1−p), computed
 * stably from the logits. If dlogits.buf is not NULL it receives
 * grad_scale · ∂loss_b/∂logits (B, D); it may be the logits buffer itself. If dpanels.buf
 * is not NULL too (builtin GEMM), the gradient is also stored there as panels, as an
 * epilogue's (clvae_gemm_panels_size(dev, B, D) floats at the buffer's start). */
CLVAE_API clvae_status clvae_loss_sigmoid(clvae_device *dev, clvae_loss_kind kind, clvae_view loss,
                                          clvae_view dlogits, clvae_view dpanels, clvae_view logits, clvae_view bias,
                                          clvae_view x, int ldx, int B, int D, float grad_scale);

/* One Adam step over n contiguous parameters, as TF.js does it:
 * m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − lr·m̂ / (√v̂ + ε),
 * with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t), t ≥ 1 the step number. */
CLVAE_API clvae_status clvae_adam(clvae_device *dev, clvae_view param, clvae_view grad,
                                  clvae_view m, clvae_view v, int n, float lr, float beta1,
                                  float beta2, float eps, int64_t t);

/* x[b][d] = images[idx[b]][d] / 255.  images: uint8 (count, D), offset in bytes;
 * idx: uint32 (B), offset in elements; x (B, D) float with row stride ldx. */
CLVAE_API clvae_status clvae_gather(clvae_device *dev, clvae_view x, int ldx, clvae_view images,
                                    clvae_view idx, int B, int D);

#ifdef __cplusplus
}
#endif

#endif
