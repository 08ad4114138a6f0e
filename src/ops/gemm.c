/* GEMM behind one wrapper: clvae's packed kernel (cl/gemm.cl) or CLBlast. Row-major,
 * all four transpose cases, any sizes, buffer offsets. */
#include <clblast_c.h>
#include <stdio.h>

#include "device/internal.h"

/* Grows the packing scratch buffer to at least `bytes`. Commands already enqueued keep
 * the old buffer alive: OpenCL frees a memory object only when they are done with it. */
static clvae_status ensure_pack_b(clvae_device *dev, size_t bytes) {
  if (dev->pack_b && dev->pack_b->size >= bytes) return CLVAE_OK;
  clvae_buffer_free(dev->pack_b);
  dev->pack_b = NULL;
  return clvae_buffer_create(dev, bytes + bytes / 4, &dev->pack_b);
}

/* op(B) is packed into panels first; A is read in place through its strides. */
static clvae_status gemm_builtin(clvae_device *dev, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, cl_mem c, cl_uint c_off,
                                 int ldc) {
  const int MR = dev->gemm_mr, NR = 16 * dev->gemm_nv;
  cl_int pa = (M + MR - 1) / MR, pb = (N + NR - 1) / NR, tb_ = tb;
  clvae_status st = ensure_pack_b(dev, (size_t)pb * K * NR * sizeof(float));
  if (st != CLVAE_OK) return st;
  cl_mem bp = dev->pack_b->mem;
  /* (k, panel) range; a local size along k keeps neighbouring rows in one work-group */
  size_t lk = dev->local_1d < 64 ? dev->local_1d : 64, pack_local[2] = {lk, 1};
  size_t gb[2] = {(size_t)K, (size_t)pb};
  karg pack_b[] = {KARG(bp), KARG(b), KARG(b_off), KARG(ldb), KARG(tb_), KARG(N), KARG(K), KARG(pb)};
  st = clvae__launch(dev, K_GEMM_PACK_B, 2, gb, pack_local, 8, pack_b);
  if (st != CLVAE_OK) return st;

  cl_int a_panel = ta ? MR : MR * lda, ask = ta ? lda : 1, asr = ta ? 1 : lda;
  size_t global[2] = {(size_t)pb, (size_t)pa};
  size_t local[2] = {(size_t)dev->gemm_lx, (size_t)dev->gemm_ly};
  karg tile[] = {KARG(M), KARG(N), KARG(K), KARG(alpha), KARG(beta), KARG(a), KARG(a_off), KARG(a_panel),
                 KARG(ask), KARG(asr), KARG(bp), KARG(c), KARG(c_off), KARG(ldc)};
  return clvae__launch(dev, K_GEMM_TILE, 2, global, local, 14, tile);
}

static clvae_status gemm_clblast(clvae_device *dev, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, cl_mem c, cl_uint c_off,
                                 int ldc) {
  dev->clblast_used = 1;
  cl_event *ev = clvae__prof_event(dev, "clblast_sgemm");
  CLBlastStatusCode s = CLBlastSgemm(
      CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
      tb ? CLBlastTransposeYes : CLBlastTransposeNo, (size_t)M, (size_t)N, (size_t)K, alpha, a,
      a_off, (size_t)lda, b, b_off, (size_t)ldb, beta, c, c_off, (size_t)ldc, &dev->queue, ev);
  if (s != CLBlastSuccess) {
    clvae__prof_cancel(dev, ev);
    char what[96];
    snprintf(what, sizeof what, "%s%s M=%d N=%d K=%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
    return CL_FAIL(s, "CLBlastSgemm", what);
  }
  return CLVAE_OK;
}

clvae_status clvae_gemm(clvae_device *dev, int trans_a, int trans_b, int M, int N, int K,
                        float alpha, clvae_view A, int lda, clvae_view B, int ldb, float beta,
                        clvae_view C, int ldc) {
  cl_uint a_off, b_off, c_off;
  clvae_status st;
  if (M < 0 || N < 0 || K < 0)
    return clvae__fail(CLVAE_ERR_ARG, "gemm: negative size M=%d N=%d K=%d", M, N, K);
  if (M == 0 || N == 0) return CLVAE_OK;
  /* Stored shapes: A is (M, K) or, transposed, (K, M); likewise B; C is (M, N). */
  int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  int b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < N)
    return clvae__fail(CLVAE_ERR_ARG, "gemm: leading dimension too small (lda=%d ldb=%d ldc=%d "
                       "for %s%s M=%d N=%d K=%d)", lda, ldb, ldc, trans_a ? "T" : "N",
                       trans_b ? "T" : "N", M, N, K);
  size_t a_n = a_rows ? (size_t)(a_rows - 1) * lda + a_cols : 0;
  size_t b_n = b_rows ? (size_t)(b_rows - 1) * ldb + b_cols : 0;
  if ((st = clvae__view("gemm", "A", A, a_n, 4, &a_off)) != CLVAE_OK ||
      (st = clvae__view("gemm", "B", B, b_n, 4, &b_off)) != CLVAE_OK ||
      (st = clvae__view("gemm", "C", C, (size_t)(M - 1) * ldc + N, 4, &c_off)) != CLVAE_OK)
    return st;
  /* CLBlast refuses K = 0, where BLAS defines C = βC; our kernel does exactly that. */
  if (dev->gemm == CLVAE_GEMM_CLBLAST && K > 0)
    return gemm_clblast(dev, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem,
                        b_off, ldb, beta, C.buf->mem, c_off, ldc);
  return gemm_builtin(dev, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem,
                      b_off, ldb, beta, C.buf->mem, c_off, ldc);
}

void clvae__gemm_release(clvae_device *dev) {
  /* CLBlast caches programs per context; drop them before the context goes. */
  if (dev->clblast_used) CLBlastClearCache();
  dev->clblast_used = 0;
}
