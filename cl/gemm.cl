/* GEMM, C = alpha·op(A)·op(B) + beta·C, row-major, any M, N, K.
 * A cheap kernel first copies op(B) into zero-padded panels laid out the way the inner
 * loop reads them (read in place with a long row stride, B was 3x slower); then each
 * work-item of gemm_tile computes an MR × NR block of C (NR = 16·NV) in explicit float16
 * accumulators, which PoCL compiles to AVX-512 FMAs with broadcast A elements read in
 * place. MR and NV are set per device at build time. */

#define NR (16 * NV)

/* Bp[(q·K + k)·NR + c] = op(B)[k][q·NR + c], zero for columns ≥ N.
 * Work-item (k, q) writes one NR-wide row of panel q; an untransposed B row is copied
 * with vector loads. */
__kernel void gemm_pack_b(__global float *Bp, __global const float *B, uint b_off, int ldb,
                          int trans, int N, int K, int panels) {
  int k = (int)get_global_id(0), q = (int)get_global_id(1);
  if (k >= K || q >= panels) return;
  __global float *dst = Bp + ((size_t)q * K + k) * NR;
  int j0 = q * NR;
  if (!trans && j0 + NR <= N) {
    __global const float *src = B + b_off + (size_t)k * ldb + j0;
#pragma unroll
    for (int v = 0; v < NV; v++) vstore16(vload16(v, src), v, dst);
    return;
  }
  for (int c = 0; c < NR; c++) {
    int j = j0 + c;
    dst[c] = j >= N ? 0.0f : trans ? B[b_off + (size_t)j * ldb + k] : B[b_off + (size_t)k * ldb + j];
  }
}

/* Work-item (q, p) computes C[p·MR .. +MR][q·NR .. +NR]. Row r of op(A)'s rows p·MR.. is
 * read at A[a_off + p·a_panel + r·asr + k·ask]: untransposed (MR·lda, lda, 1) or
 * transposed (MR, 1, lda). Rows past M read row M − 1 instead (valid memory; their
 * results are never stored). */
__kernel void gemm_tile(int M, int N, int K, float alpha, float beta,
                        __global const float *A, uint a_off, int a_panel, int ask, int asr,
                        __global const float *Bp, __global float *C, uint c_off, int ldc) {
  int q = (int)get_global_id(0), p = (int)get_global_id(1);
  if (q * NR >= N || p * MR >= M) return;
  __global const float *arow[MR];
#pragma unroll
  for (int r = 0; r < MR; r++) {
    int rr = p * MR + r < M ? r : M - 1 - p * MR;
    arow[r] = A + a_off + (size_t)p * a_panel + (size_t)rr * asr;
  }
  __global const float *b = Bp + (size_t)q * K * NR;
  float16 acc[MR][NV];
#pragma unroll
  for (int r = 0; r < MR; r++)
#pragma unroll
    for (int v = 0; v < NV; v++) acc[r][v] = (float16)(0.0f);

  for (int k = 0; k < K; k++) {
    float16 bv[NV];
#pragma unroll
    for (int v = 0; v < NV; v++) bv[v] = vload16(k * NV + v, b);
#pragma unroll
    for (int r = 0; r < MR; r++) {
      float16 av = (float16)(arow[r][(size_t)k * ask]);
#pragma unroll
      for (int v = 0; v < NV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]);
    }
  }

#pragma unroll
  for (int r = 0; r < MR; r++) {
    int i = p * MR + r;
    if (i >= M) break;
    __global float *crow = C + c_off + (size_t)i * ldc;
#pragma unroll
    for (int v = 0; v < NV; v++) {
      int j0 = q * NR + v * 16;
      if (j0 + 16 <= N) {
        float16 c = alpha * acc[r][v];
        if (beta != 0.0f) c = fma((float16)(beta), vload16(0, crow + j0), c);
        vstore16(c, 0, crow + j0);
      } else {
        float tmp[16];
        vstore16(acc[r][v], 0, tmp);
        for (int e = 0; e < 16 && j0 + e < N; e++) {
          float c = alpha * tmp[e];
          if (beta != 0.0f) c = fma(beta, crow[j0 + e], c);
          crow[j0 + e] = c;
        }
      }
    }
  }
}
