/* GEMM, C = ep(alpha·op(A)·op(B) + beta·C), row-major, any M, N, K.
 * op(B) is first copied into zero-padded panels laid out the way the inner loop reads them
 * (read in place with a long row stride, B was 3x slower): by gemm_pack_b for one matrix,
 * or by gemm_pack_many for a list of them at once (the weights, once per optimizer step).
 * Each work-item of gemm_tile then computes an MR × NR block of C (NR = 16·NV) in explicit
 * float16 accumulators, which PoCL compiles to AVX-512 FMAs with broadcast A elements read
 * in place. MR and NV are set per device at build time (a CPU builds the program twice:
 * a wide block, and 16 columns for N ≤ 16, where the wide one would mostly compute
 * padding). The epilogue ep, applied as C is stored, is what would otherwise take a kernel
 * each: a bias per column, then ReLU or sigmoid, then a mask that zeroes C where a stored
 * ReLU output is not positive (ReLU backward). */

#define NR (16 * NV)
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2

/* Row k of panel q, nv·16 columns wide: dst[c] = op(B)[k][q·16·nv + c], zero for columns
 * ≥ N. An untransposed B row is copied with vector loads. */
void pack_row(__global float *dst, __global const float *B, size_t b_off, int ldb, int trans, int N, int k, int q,
              int nv) {
  int nr = 16 * nv, j0 = q * nr;
  if (!trans && j0 + nr <= N) {
    __global const float *src = B + b_off + (size_t)k * ldb + j0;
    for (int v = 0; v < nv; v++) vstore16(vload16(v, src), v, dst);
    return;
  }
  for (int c = 0; c < nr; c++) {
    int j = j0 + c;
    dst[c] = j >= N ? 0.0f : trans ? B[b_off + (size_t)j * ldb + k] : B[b_off + (size_t)k * ldb + j];
  }
}

/* Bp[(q·K + k)·NR + c] = op(B)[k][q·NR + c]. Work-item (k, q) writes one NR-wide row. */
__kernel void gemm_pack_b(__global float *Bp, __global const float *B, uint b_off, int ldb,
                          int trans, int N, int K, int panels) {
  int k = (int)get_global_id(0), q = (int)get_global_id(1);
  if (k >= K || q >= panels) return;
  pack_row(Bp + ((size_t)q * K + k) * NR, B, b_off, ldb, trans, N, k, q, NV);
}

/* Several matrices of one buffer packed in one launch. jobs[8·m ..] describes matrix m:
 * source offset, ldb, trans, N, K, its first unit among all units, destination offset (in
 * floats), and its panels' width in 16-float vectors (the GEMM that reads it decides). A
 * unit is 16 rows of one panel, numbered panel by panel through the matrices in order
 * (panels·⌈K/16⌉ each); work-item u packs unit u. A transposed source is read as 16 × 16
 * blocks (16 of its rows, 16 k each: 16 cache lines): each row of the unit's block is
 * gathered down the block's columns and stored as one vector. Storing each source row down
 * the unit's columns instead (16 scalar stores per row) took 1.8× as long; transposing the
 * block in registers with shuffles, 1.35× (PoCL spills them). */
__kernel void gemm_pack_many(__global float *dst, __global const float *src, __global const uint *jobs, int njobs,
                             uint units) {
  uint u = (uint)get_global_id(0);
  if (u >= units) return;
  int m = 0;
  while (m + 1 < njobs && jobs[8 * (m + 1) + 5] <= u) m++;
  __global const uint *j = jobs + 8 * m;
  int ldb = (int)j[1], trans = (int)j[2], N = (int)j[3], K = (int)j[4], nv = (int)j[7], nr = 16 * nv;
  int kb = (K + 15) / 16, nth = (int)(u - j[5]), q = nth / kb, k0 = (nth - q * kb) * 16;
  __global float *d = dst + j[6] + ((size_t)q * K + k0) * nr;
  __global const float *b = src + j[0];
  if (!trans || k0 + 16 > K) {
    for (int k = k0; k < K && k < k0 + 16; k++) pack_row(d + (size_t)(k - k0) * nr, b, 0, ldb, trans, N, k, q, nv);
    return;
  }
  for (int g = 0; g < nv; g++) {
    int j0 = q * nr + g * 16;
    __global const float *r = b + (size_t)j0 * ldb + k0;
    if (j0 + 16 <= N) {
      for (int e = 0; e < 16; e++) {
        float16 v = (float16)(r[e], r[ldb + e], r[2 * ldb + e], r[3 * ldb + e], r[4 * ldb + e], r[5 * ldb + e],
                              r[6 * ldb + e], r[7 * ldb + e], r[8 * ldb + e], r[9 * ldb + e], r[10 * ldb + e],
                              r[11 * ldb + e], r[12 * ldb + e], r[13 * ldb + e], r[14 * ldb + e], r[15 * ldb + e]);
        vstore16(v, 0, d + (size_t)e * nr + g * 16);
      }
    } else {
      for (int e = 0; e < 16; e++)
        for (int c = 0; c < 16; c++) d[(size_t)e * nr + g * 16 + c] = j0 + c < N ? r[(size_t)c * ldb + e] : 0.0f;
    }
  }
}

/* One row chunk of C: alpha·acc (+ beta·C), then the epilogue. */
float16 epilogue16(float16 acc, float alpha, float beta, __global const float *c, int has_bias,
                   __global const float *bias, int act, int has_mask, __global const float *mask) {
  float16 v = alpha * acc;
  if (beta != 0.0f) v = fma((float16)(beta), vload16(0, c), v);
  if (has_bias) v += vload16(0, bias);
  if (act == ACT_RELU) v = fmax(v, 0.0f);
  else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));
  if (has_mask) v = select((float16)(0.0f), v, isgreater(vload16(0, mask), 0.0f));
  return v;
}

float epilogue1(float acc, float alpha, float beta, float c, int has_bias, float bias, int act, int has_mask,
                float mask) {
  float v = alpha * acc;
  if (beta != 0.0f) v = fma(beta, c, v);
  if (has_bias) v += bias;
  if (act == ACT_RELU) v = fmax(v, 0.0f);
  else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));
  if (has_mask && !(mask > 0.0f)) v = 0.0f;
  return v;
}

/* The k loop over the first NVX vectors of the block's panel. A block of the last panel
 * that has fewer than NV vectors of real columns (N = 784 = 12·64 + 16) runs a loop over
 * those alone: padding would have been 6 % of those GEMMs' work. */
#define K_LOOP(NVX)                                                                        \
  for (int k = k0; k < k1; k++) {                                                          \
    float16 bv[NVX];                                                                       \
    _Pragma("unroll") for (int v = 0; v < NVX; v++) bv[v] = vload16(k * NV + v, b);       \
    _Pragma("unroll") for (int r = 0; r < MR; r++) {                                       \
      float16 av = (float16)(arow[r][(size_t)k * ask]);                                    \
      _Pragma("unroll") for (int v = 0; v < NVX; v++) acc[r][v] = fma(av, bv[v], acc[r][v]); \
    }                                                                                      \
  }

/* Work-item (q, p) computes C[p·MR .. +MR][q·NR .. +NR]. Row r of op(A)'s rows p·MR.. is
 * read at A[a_off + p·a_panel + r·asr + k·ask]: untransposed (MR·lda, lda, 1) or
 * transposed (MR, 1, lda). Rows past M read row M − 1 instead (valid memory; their
 * results are never stored). op(B)'s panels start at Bp + bp_off. The epilogue's bias is
 * (N) at bias_off, its mask (M, ldm). The epilogue's options are constants of each kernel
 * below, so that each compiles to its own code: with them as run-time flags PoCL kept
 * several copies of the loop and spilled registers in the one without epilogue.
 * Not `inline`: in OpenCL C (C99 rules) a plain inline definition emits no callable copy,
 * and a compiler that keeps one call (clang for amdgcn, nvptx, spir64) leaves the program
 * unlinkable; `static` is not OpenCL C 1.1. An ordinary definition, forced inline. */
__attribute__((always_inline)) void tile(int M, int N, int K, float alpha, float beta, __global const float *A,
                                         uint a_off, int a_panel,
                                         int ask, int asr, __global const float *Bp, uint bp_off, __global float *C,
                                         uint c_off, int ldc, __global const float *bias, uint bias_off,
                                         __global const float *mask, uint mask_off, int ldm, __global float *P,
                                         uint p_off, int pnr, int kz, uint c_split, const int has_bias,
                                         const int act, const int has_mask, const int has_panels) {
  int q = (int)get_global_id(0), p = (int)get_global_id(1), z = (int)get_global_id(2);
  if (q * NR >= N || p * MR >= M) return;
  /* split K: work-items z take k in [z·kz, (z + 1)·kz) and store C at z·c_split (partial
   * sums that gemm_ksum adds; kz = K and one z otherwise) */
  int k0 = z * kz, k1 = k0 + kz < K ? k0 + kz : K;
  C += (size_t)z * c_split;
  __global const float *arow[MR];
#pragma unroll
  for (int r = 0; r < MR; r++) {
    int rr = p * MR + r < M ? r : M - 1 - p * MR;
    arow[r] = A + a_off + (size_t)p * a_panel + (size_t)rr * asr;
  }
  __global const float *b = Bp + bp_off + (size_t)q * K * NR;
  float16 acc[MR][NV];
#pragma unroll
  for (int r = 0; r < MR; r++)
#pragma unroll
    for (int v = 0; v < NV; v++) acc[r][v] = (float16)(0.0f);

#if NV > 1
  int nvalid = (N - q * NR + 15) / 16;
  if (nvalid >= NV) {
    K_LOOP(NV)
  } else if (nvalid == 1) {
    K_LOOP(1)
  }
#if NV > 2
  else if (nvalid == 2) {
    K_LOOP(2)
  }
#endif
#if NV > 3
  else {
    K_LOOP(3)
  }
#endif
#else
  K_LOOP(NV)
#endif

#pragma unroll
  for (int r = 0; r < MR; r++) {
    int i = p * MR + r;
    if (i >= M) break;
    __global float *crow = C + c_off + (size_t)i * ldc;
    __global const float *mrow = mask + mask_off + (size_t)i * ldm;
#pragma unroll
    for (int v = 0; v < NV; v++) {
      int j0 = q * NR + v * 16;
      /* C's row i in the panels a later GEMM reads as its B (K = M rows; pnr a multiple of 16) */
      int pw = has_panels ? pnr : 16;
      __global float *prow = P + p_off + (size_t)(j0 / pw) * M * pw + (size_t)i * pw + j0 % pw;
      if (j0 + 16 <= N) {
        float16 o = epilogue16(acc[r][v], alpha, beta, crow + j0, has_bias, bias + bias_off + j0, act, has_mask,
                               mrow + j0);
        vstore16(o, 0, crow + j0);
        if (has_panels) vstore16(o, 0, prow);
      } else {
        float tmp[16];
        vstore16(acc[r][v], 0, tmp);
        for (int e = 0; e < 16 && j0 + e < N; e++) {
          float o = epilogue1(tmp[e], alpha, beta, beta != 0.0f ? crow[j0 + e] : 0.0f, has_bias,
                              has_bias ? bias[bias_off + j0 + e] : 0.0f, act, has_mask, has_mask ? mrow[j0 + e] : 0.0f);
          crow[j0 + e] = o;
          if (has_panels) prow[e] = o;
        }
      }
    }
  }
}

/* The kernels: one per epilogue the model uses, all with the same arguments. The last also
 * stores C in panels: a ReLU layer's gradient, for the GEMM of its weights' gradient. */
#define TILE_KERNEL(NAME, HAS_BIAS, ACT, HAS_MASK, HAS_PANELS)                                                \
  __kernel void NAME(int M, int N, int K, float alpha, float beta, __global const float *A, uint a_off,     \
                     int a_panel, int ask, int asr, __global const float *Bp, uint bp_off, __global float *C, \
                     uint c_off, int ldc, __global const float *bias, uint bias_off,                         \
                     __global const float *mask, uint mask_off, int ldm, __global float *P, uint p_off,      \
                     int pnr, int kz, uint c_split) {                                                        \
    tile(M, N, K, alpha, beta, A, a_off, a_panel, ask, asr, Bp, bp_off, C, c_off, ldc, bias, bias_off, mask,   \
         mask_off, ldm, P, p_off, pnr, kz, c_split, HAS_BIAS, ACT, HAS_MASK, HAS_PANELS);                    \
  }

TILE_KERNEL(gemm_tile, 0, ACT_NONE, 0, 0)
TILE_KERNEL(gemm_tile_bias, 1, ACT_NONE, 0, 0)
TILE_KERNEL(gemm_tile_bias_relu, 1, ACT_RELU, 0, 0)
TILE_KERNEL(gemm_tile_bias_sigmoid, 1, ACT_SIGMOID, 0, 0)
TILE_KERNEL(gemm_tile_mask, 0, ACT_NONE, 1, 0)
TILE_KERNEL(gemm_tile_mask_panels, 0, ACT_NONE, 1, 1)

/* C (M, N, rows ldc apart) = alpha·Σ_z P[z] + beta·C: the partial products of a GEMM whose K
 * was split (P[z] (M, N) at z·M·N), added in order z = 0, 1, ... (deterministic). */
__kernel void gemm_ksum(__global float *C, uint c_off, int ldc, __global const float *P, int M, int N, int splits,
                        float alpha, float beta) {
  int j = (int)get_global_id(0), i = (int)get_global_id(1);
  if (j >= N || i >= M) return;
  float s = 0.0f;
  for (int z = 0; z < splits; z++) s += P[((size_t)z * M + i) * N + j];
  __global float *c = C + c_off + (size_t)i * ldc + j;
  *c = beta != 0.0f ? fma(beta, *c, alpha * s) : alpha * s;
}
