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

/* A layer's weight matrix W (rows, cols), row-major in the parameter arena, as GEMMs read
 * it: in place, or (builtin GEMM) from a plan's packed copies of W and of Wᵀ. */
typedef struct clvae_weights {
  clvae_view w;
  int rows, cols;
  const clvae_gemm_plan *plan; /* NULL: W is read in place (packed per call, or by CLBlast) */
  clvae_view packed;         /* the plan's packed buffer */
  int job, job_t;            /* the plan's matrices holding W and Wᵀ */
} clvae_weights;

/* C (M, N) = ep(op(A)·op(W)) with op(W) = W (N = cols) or, if trans_w, Wᵀ (N = rows). */
CLVAE_API clvae_status clvae_gemm_weights(clvae_device *dev, int trans_a, int trans_w, int M, clvae_view A, int lda,
                                          const clvae_weights *w, clvae_view C, int ldc, const clvae_epilogue *ep);

/* ---- convolutions (NHWC), as GEMMs over patches (ops/conv.c, cl/conv.cl) ----
 * The "image" side of a convolution is a conv's input and a transposed conv's output,
 * (B, H, W, C); the "grid" side is the other, (B, Ho, Wo, F). Patches are K×K with stride
 * S, pt rows of padding at the top and pl columns at the left. Row p = (b, oy, ox) of the
 * patch matrix (B·Ho·Wo rows, K·K·C columns (ky, kx, c)) holds image pixel (oy·S + ky − pt,
 * ox·S + kx − pl), channel c, or 0 in the padding. A conv's kernel and a transposed conv's
 * are both W (K·K·C, F): TF's Conv2D [K, K, Cin, Cout] and Conv2DTranspose [K, K, Cout, Cin].
 * Conv: y = patches(x)·W; transposed conv: y = col2im(x·Wᵀ), its exact transpose. */
typedef struct clvae_conv_geom {
  int B, H, W, C;            /* image side */
  int Ho, Wo, F;             /* grid side */
  int K, S, pt, pl;
} clvae_conv_geom;

/* Checks a geometry: sizes ≥ 1, padding < K, and every grid position's patch within the
 * padded image. */
CLVAE_API clvae_status clvae_conv_geom_check(const clvae_conv_geom *g);
/* patches (B·Ho·Wo, ldp) from img (B·H·W, C); with `ones`, column K·K·C is set to 1
 * (ldp > K·K·C) so that a GEMM over [patches | 1] yields the bias gradient too. */
CLVAE_API clvae_status clvae_im2col(clvae_device *dev, const clvae_conv_geom *g, clvae_view img, clvae_view patches,
                                    int ldp, int ones);
/* img (B·H·W, C) = ep(the sum over the patch values that cover each pixel), the epilogue
 * (bias (C), activation, mask (B·H·W, C)) as clvae_gemm_ex's; summed in a fixed order. */
CLVAE_API clvae_status clvae_col2im(clvae_device *dev, const clvae_conv_geom *g, clvae_view patches, int ldp,
                                    clvae_view img, const clvae_epilogue *ep);

/* Conv2D: y (B·Ho·Wo, F) = act(patches(x)·W + bias), x (B·H·W, C). `work` (B·Ho·Wo rows,
 * ldw ≥ K·K·C + 1) receives the patches, with the ones column, for the backward pass. */
CLVAE_API clvae_status clvae_conv_forward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x,
                                          const clvae_weights *w, clvae_view bias, clvae_act act, clvae_view y,
                                          clvae_view work, int ldw);
/* Conv2D backward from dy (B·Ho·Wo, F) (already through this layer's activation) and
 * forward's `work`: [dW; db] = [patches | 1]ᵀ·dy into dwb (the kernel's K·K·C rows, then
 * the bias row after them; `dy_panels`, if not NULL, holds dy as the builtin GEMM's panels);
 * then, if dx.buf, dx (B·H·W, C) = col2im(dy·Wᵀ) masked where `mask` (the stored input,
 * if its layer had a ReLU) is not positive. `work` is overwritten by dy·Wᵀ. */
CLVAE_API clvae_status clvae_conv_backward(clvae_device *dev, const clvae_conv_geom *g, clvae_view dy,
                                           clvae_view dy_panels, const clvae_weights *w, clvae_view dwb,
                                           clvae_view work, int ldw, clvae_view dx, clvae_view mask);
/* Conv2DTranspose: y (B·H·W, C) = act(col2im(x·Wᵀ) + bias), x (B·Ho·Wo, F); work
 * (B·Ho·Wo, ldw ≥ K·K·C) is scratch. */
CLVAE_API clvae_status clvae_deconv_forward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x,
                                            const clvae_weights *w, clvae_view bias, clvae_act act, clvae_view y,
                                            clvae_view work, int ldw);
/* Conv2DTranspose backward from dy (B·H·W, C): P = patches(dy) into work; dW (K·K·C, F) =
 * Pᵀ·x; db (C) = the column sums of dy; then, if dx.buf, dx (B·Ho·Wo, F) = P·W, masked. */
CLVAE_API clvae_status clvae_deconv_backward(clvae_device *dev, const clvae_conv_geom *g, clvae_view x,
                                             clvae_view dy, const clvae_weights *w, clvae_view dw, clvae_view db,
                                             clvae_view work, int ldw, clvae_view dx, clvae_view mask);

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
/* dmusig (B, 2L) = gradient through z (dz (B, L), row stride ldz) plus kl_scale ·
 * ∂KL/∂[μ | logσ²] (β over the batch's rows, for a β-VAE). */
CLVAE_API clvae_status clvae_sample_backward(clvae_device *dev, clvae_view dmusig, clvae_view dz, int ldz,
                                             clvae_view eps, clvae_view musig, int B, int L,
                                             float kl_scale);

typedef enum clvae_loss_kind { CLVAE_LOSS_MSE = 0, CLVAE_LOSS_BCE = 1 } clvae_loss_kind;

/* Sigmoid output fused with the reconstruction loss. logits (B, D) are the raw GEMM
 * output, bias (D) is added here (a NULL buf: none), x (B, D) are the targets with row stride ldx. loss (B)
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
/* x[b][col0 + k] = (labels[idx[b]] == k) for k < K ≤ 256: the one-hot class of each row.
 * labels: uint8 (count), offset in bytes; idx as for gather; x with row stride ldx. */
CLVAE_API clvae_status clvae_onehot(clvae_device *dev, clvae_view x, int ldx, int col0, clvae_view labels,
                                    clvae_view idx, int B, int K);

#ifdef __cplusplus
}
#endif

#endif
