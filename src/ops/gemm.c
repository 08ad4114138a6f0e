/* GEMM behind one wrapper: clvae's packed kernel (cl/gemm.cl) or CLBlast. Row-major,
 * all four transpose cases, any sizes, buffer offsets. The op owns its per-device state:
 * the implementation in use, the builtin kernel's block and work-group, its packing
 * scratch, and whether CLBlast holds caches for the device's context. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"

typedef struct gemm_state {
  clvae_gemm_impl impl;      /* resolved: BUILTIN or CLBLAST */
  int mr, nv;                /* builtin block: MR rows × 16·NV columns per work-item */
  int lx, ly;                /* its work-group: lx column panels × ly row panels */
  clvae_buffer *pack_b;      /* the packed op(B), grown on demand */
  int clblast_used;          /* CLBlast caches programs for this context */
} gemm_state;

/* CLVAE_GEMM_TUNE="mr,nv,lx,ly" overrides the builtin kernel's block and work-group for
 * tuning experiments. Results stay correct for any accepted values; the limits keep the
 * accumulators (mr·nv float16) in registers and the work-group within the device's. */
static clvae_status tune(clvae_device *dev, gemm_state *g) {
  const char *s = getenv("CLVAE_GEMM_TUNE");
  int v[4];
  char end;
  if (!s || !*s) return CLVAE_OK;
  size_t maxwg = dev->info.max_work_group_size ? dev->info.max_work_group_size : 1;
  if (sscanf(s, "%d,%d,%d,%d%c", &v[0], &v[1], &v[2], &v[3], &end) != 4 || v[0] < 1 || v[0] > 16 || v[1] < 1 ||
      v[1] > 4 || v[0] * v[1] > 32 || v[2] < 1 || v[3] < 1 || v[2] > 1024 || v[3] > 1024 ||
      (size_t)v[2] * (size_t)v[3] > maxwg)
    return clvae__fail(CLVAE_ERR_ARG,
                       "CLVAE_GEMM_TUNE '%s' is not mr,nv,lx,ly with mr 1..16, nv 1..4, mr*nv <= 32 and "
                       "lx*ly <= %zu (the device's largest work-group)", s, maxwg);
  g->mr = v[0], g->nv = v[1], g->lx = v[2], g->ly = v[3];
  return CLVAE_OK;
}

static clvae_status state_init(clvae_device *dev, void *p) {
  gemm_state *g = p;
  int gpu = dev->gpu_style;
  g->impl = dev->info.is_gpu ? CLVAE_GEMM_CLBLAST : CLVAE_GEMM_BUILTIN;
  g->mr = gpu ? 4 : 8, g->nv = gpu ? 1 : 2;
  g->lx = gpu ? 8 : 2, g->ly = gpu ? 8 : 4;
  return tune(dev, g);
}

static void state_release(clvae_device *dev, void *p) {
  gemm_state *g = p;
  (void)dev;
  /* CLBlast caches programs per context; drop them before the context goes. */
  if (g->clblast_used) CLBlastClearCache();
  clvae_buffer_free(g->pack_b);
}

static const clvae_state_def gemm_state_def = {sizeof(gemm_state), state_init, state_release};

static void gemm_defines(clvae_device *dev, char *buf, size_t n) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (g) snprintf(buf, n, "-DMR=%d -DNV=%d", g->mr, g->nv);
}

const clvae_program_def clvae__program_gemm = {"gemm", gemm_defines};
static const clvae_kernel_def k_pack_b = {&clvae__program_gemm, "gemm_pack_b"};
static const clvae_kernel_def k_tile = {&clvae__program_gemm, "gemm_tile"};

const char *clvae_gemm_impl_name(clvae_gemm_impl g) {
  switch (g) {
  case CLVAE_GEMM_AUTO: return "auto";
  case CLVAE_GEMM_BUILTIN: return "builtin";
  case CLVAE_GEMM_CLBLAST: return "clblast";
  }
  return "?";
}

int clvae_gemm_impl_parse(const char *s) {
  for (int g = CLVAE_GEMM_AUTO; g <= CLVAE_GEMM_CLBLAST; g++)
    if (strcmp(s, clvae_gemm_impl_name((clvae_gemm_impl)g)) == 0) return g;
  return -1;
}

clvae_status clvae_gemm_set_impl(clvae_device *dev, clvae_gemm_impl impl) {
  if (impl != CLVAE_GEMM_AUTO && impl != CLVAE_GEMM_BUILTIN && impl != CLVAE_GEMM_CLBLAST)
    return clvae__fail(CLVAE_ERR_ARG, "unknown GEMM implementation %d", (int)impl);
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  g->impl = impl != CLVAE_GEMM_AUTO ? impl : dev->info.is_gpu ? CLVAE_GEMM_CLBLAST : CLVAE_GEMM_BUILTIN;
  return CLVAE_OK;
}

clvae_gemm_impl clvae_gemm_get_impl(clvae_device *dev) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  return g ? g->impl : CLVAE_GEMM_BUILTIN;
}

/* Grows the packing scratch buffer to at least `bytes`. Commands already enqueued keep
 * the old buffer alive: OpenCL frees a memory object only when they are done with it. */
static clvae_status ensure_pack_b(clvae_device *dev, gemm_state *g, size_t bytes) {
  if (g->pack_b && g->pack_b->size >= bytes) return CLVAE_OK;
  clvae_buffer_free(g->pack_b);
  g->pack_b = NULL;
  return clvae_buffer_create(dev, bytes + bytes / 4, &g->pack_b);
}

/* op(B) is packed into panels first; A is read in place through its strides. */
static clvae_status gemm_builtin(clvae_device *dev, gemm_state *g, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, cl_mem c, cl_uint c_off,
                                 int ldc) {
  const int MR = g->mr, NR = 16 * g->nv;
  cl_int pa = (M + MR - 1) / MR, pb = (N + NR - 1) / NR, tb_ = tb;
  clvae_status st = ensure_pack_b(dev, g, (size_t)pb * K * NR * sizeof(float));
  if (st != CLVAE_OK) return st;
  cl_mem bp = g->pack_b->mem;
  /* (k, panel) range; a local size along k keeps neighbouring rows in one work-group */
  size_t lk = dev->local_1d < 64 ? dev->local_1d : 64, pack_local[2] = {lk, 1};
  size_t gb[2] = {(size_t)K, (size_t)pb};
  karg pack_b[] = {KARG(bp), KARG(b), KARG(b_off), KARG(ldb), KARG(tb_), KARG(N), KARG(K), KARG(pb)};
  st = clvae__launch(dev, &k_pack_b, 2, gb, pack_local, 8, pack_b);
  if (st != CLVAE_OK) return st;

  cl_int a_panel = ta ? MR : MR * lda, ask = ta ? lda : 1, asr = ta ? 1 : lda;
  size_t global[2] = {(size_t)pb, (size_t)pa};
  size_t local[2] = {(size_t)g->lx, (size_t)g->ly};
  karg tile[] = {KARG(M), KARG(N), KARG(K), KARG(alpha), KARG(beta), KARG(a), KARG(a_off), KARG(a_panel),
                 KARG(ask), KARG(asr), KARG(bp), KARG(c), KARG(c_off), KARG(ldc)};
  return clvae__launch(dev, &k_tile, 2, global, local, 14, tile);
}

static clvae_status gemm_clblast(clvae_device *dev, gemm_state *g, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, cl_mem c, cl_uint c_off,
                                 int ldc) {
  g->clblast_used = 1;
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
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  /* CLBlast refuses K = 0, where BLAS defines C = βC; our kernel does exactly that. */
  if (g->impl == CLVAE_GEMM_CLBLAST && K > 0)
    return gemm_clblast(dev, g, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem,
                        b_off, ldb, beta, C.buf->mem, c_off, ldc);
  return gemm_builtin(dev, g, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem,
                      b_off, ldb, beta, C.buf->mem, c_off, ldc);
}
