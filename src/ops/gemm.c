/* GEMM behind one wrapper: clvae's packed kernel (cl/gemm.cl) or CLBlast. Row-major,
 * all four transpose cases, any sizes, buffer offsets, and an epilogue (bias, activation,
 * ReLU-backward mask) that the builtin kernel applies as it stores C and that follows a
 * CLBlast call as element-wise kernels. B operands may also be packed ahead (a plan of
 * several matrices packed in one launch: the weights, once per optimizer step). The op owns
 * its per-device state: the implementation in use, the builtin kernel's block and
 * work-group, its packing scratch, and whether CLBlast holds caches for the context. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/registry.h"

typedef struct gemm_state {
  clvae_gemm_impl impl;      /* resolved: BUILTIN or CLBLAST */
  int mr, nv;                /* builtin block: MR rows × 16·NV columns per work-item */
  int lx, ly;                /* its work-group: lx column panels × ly row panels */
  int tuned;                 /* set by CLVAE_GEMM_TUNE: checked against each kernel's limit */
  clvae_buffer *pack_b;      /* the packed op(B), grown on demand */
  clvae_buffer *partial;     /* split-K partial products, grown on demand */
  clvae_buffer *clblast_tmp; /* CLBlast's temporary buffer (padded copies of the indirect GEMM) */
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
  /* digits and commas only, each value short: %d on a number past INT_MAX is undefined */
  int digits = 0, ok = 1;
  for (const char *q = s; *q && ok; q++) digits = *q == ',' ? 0 : digits + 1, ok = (*q == ',' || (*q >= '0' && *q <= '9')) && digits <= 4;
  if (!ok || sscanf(s, "%d,%d,%d,%d%c", &v[0], &v[1], &v[2], &v[3], &end) != 4 || v[0] < 1 || v[0] > 16 || v[1] < 1 ||
      v[1] > 4 || v[0] * v[1] > 32 || v[2] < 1 || v[3] < 1 || v[2] > 1024 || v[3] > 1024 ||
      (size_t)v[2] * (size_t)v[3] > maxwg)
    return clvae__fail(CLVAE_ERR_ARG,
                       "CLVAE_GEMM_TUNE '%s' is not mr,nv,lx,ly with mr 1..16, nv 1..4, mr*nv <= 32, lx and ly "
                       "1..1024 and lx*ly <= %zu (the device's largest work-group)", s, maxwg);
  g->mr = v[0], g->nv = v[1], g->lx = v[2], g->ly = v[3], g->tuned = 1;
  return CLVAE_OK;
}

static clvae_status state_init(clvae_device *dev, void *p) {
  gemm_state *g = p;
  int gpu = dev->gpu_style;
  g->impl = dev->info.is_gpu ? CLVAE_GEMM_CLBLAST : CLVAE_GEMM_BUILTIN;
  /* CPU: 6 rows × 64 columns (24 accumulators, 4 loads of B and 6 broadcasts of A per 24
   * FMAs) measured 7 % faster a step than 8 × 32 (10 loads per 16 FMAs) on AVX-512. */
  g->mr = gpu ? 4 : 6, g->nv = gpu ? 1 : 4;
  g->lx = gpu ? 8 : 1, g->ly = gpu ? 8 : 4;
  return tune(dev, g);
}

static void state_release(clvae_device *dev, void *p) {
  gemm_state *g = p;
  (void)dev;
  /* CLBlast caches programs per context; drop them before the context goes. */
  if (g->clblast_used) CLBlastClearCache();
  clvae_buffer_free(g->pack_b);
  clvae_buffer_free(g->partial);
  clvae_buffer_free(g->clblast_tmp);
}

static const clvae_state_def gemm_state_def = {sizeof(gemm_state), state_init, state_release};

static void gemm_defines(clvae_device *dev, char *buf, size_t n) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (g) snprintf(buf, n, "-DMR=%d -DNV=%d", g->mr, g->nv);
}

/* The same source built for GEMMs with N ≤ 16 where the wide block has more than 16
 * columns: MR_NARROW × 16. */
#define MR_NARROW 8
static void narrow_defines(clvae_device *dev, char *buf, size_t n) {
  (void)dev;
  snprintf(buf, n, "-DMR=%d -DNV=1", MR_NARROW);
}

/* And for 16 < N ≤ 32 where the wide block has more than 32 columns (a convolution's 32
 * channels): MR_MEDIUM × 32, 24 accumulators as the CPU's 6 × 64. A B of exactly one such
 * panel's width is then its own panels: read in place, not packed. */
#define MR_MEDIUM 12
static void medium_defines(clvae_device *dev, char *buf, size_t n) {
  (void)dev;
  snprintf(buf, n, "-DMR=%d -DNV=2", MR_MEDIUM);
}

const clvae_program_def clvae__program_gemm = {"gemm", gemm_defines, NULL};
const clvae_program_def clvae__program_gemm_narrow = {"gemm_narrow", narrow_defines, "gemm"};
const clvae_program_def clvae__program_gemm_medium = {"gemm_medium", medium_defines, "gemm"};
static const clvae_kernel_def k_pack_many = {&clvae__program_gemm, "gemm_pack_many"};
static const clvae_kernel_def k_ksum = {&clvae__program_gemm, "gemm_ksum"};

/* Each build's packing kernel and its tile kernels, one per epilogue (see cl/gemm.cl);
 * other epilogues combine a tile kernel and bias_act. */
enum { K_PACK_B, K_TILE, K_TILE_BIAS, K_TILE_BIAS_RELU, K_TILE_BIAS_SIGMOID, K_TILE_MASK, K_TILE_MASK_PANELS, K_COUNT };
#define GEMM_KERNELS(P)                                                                                    \
  {{P, "gemm_pack_b"}, {P, "gemm_tile"}, {P, "gemm_tile_bias"}, {P, "gemm_tile_bias_relu"},             \
   {P, "gemm_tile_bias_sigmoid"}, {P, "gemm_tile_mask"}, {P, "gemm_tile_mask_panels"}}
static const clvae_kernel_def k_wide[K_COUNT] = GEMM_KERNELS(&clvae__program_gemm);
static const clvae_kernel_def k_narrow[K_COUNT] = GEMM_KERNELS(&clvae__program_gemm_narrow);
static const clvae_kernel_def k_medium[K_COUNT] = GEMM_KERNELS(&clvae__program_gemm_medium);

/* The build a GEMM with N columns uses, and its block. */
typedef struct variant {
  const clvae_kernel_def *k;
  int mr, nv;
} variant;

static variant variant_for(const gemm_state *g, int N) {
  if (g->nv > 1 && N <= 16) return (variant){k_narrow, MR_NARROW, 1};
  if (g->nv > 2 && N <= 32) return (variant){k_medium, MR_MEDIUM, 2};
  return (variant){k_wide, g->mr, g->nv};
}

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
 * the old buffer alive: OpenCL frees a memory object only when they are done with it. The
 * new one is made before the old one goes: Oclgrind --uninitialized, which keeps a freed
 * buffer's record of what was written, otherwise reported the tile kernel's reads of a
 * larger scratch placed at the old one's address (past the old size) as uninitialized,
 * though the pack had just written them. */
static clvae_status ensure_pack_b(clvae_device *dev, gemm_state *g, size_t bytes) {
  if (g->pack_b && g->pack_b->size >= bytes) return CLVAE_OK;
  clvae_buffer *old = g->pack_b;
  g->pack_b = NULL;
  clvae_status st = clvae_buffer_create(dev, bytes + bytes / 4, &g->pack_b);
  clvae_buffer_free(old);
  return st;
}

/* The epilogue's views as kernel arguments; unused ones point at C (any valid buffer). */
typedef struct epi_args {
  cl_int has_bias, act, has_mask, ldm;
  cl_mem bias, mask;
  cl_uint bias_off, mask_off;
  cl_int has_panels, pnr;    /* C also stored in panels pnr columns wide (16 when unused) */
  cl_mem panels;
} epi_args;

/* A tile without its epilogue's options: C alone. */
static epi_args plain_args(cl_mem c) { return (epi_args){0, CLVAE_ACT_NONE, 0, 0, c, c, 0, 0, 0, 16, c}; }

static clvae_status epi_prepare(const clvae_epilogue *ep, int M, int N, cl_mem c, epi_args *e) {
  clvae_status st;
  *e = plain_args(c);
  if (!ep) return CLVAE_OK;
  if (ep->act < CLVAE_ACT_NONE || ep->act > CLVAE_ACT_SIGMOID || (ep->act != CLVAE_ACT_NONE && !ep->bias.buf))
    return clvae__fail(CLVAE_ERR_ARG, "gemm: epilogue activation %d (an activation comes with a bias)", (int)ep->act);
  e->act = (cl_int)ep->act;
  if (ep->bias.buf) {
    if ((st = clvae__view("gemm", "epilogue bias", ep->bias, (size_t)N, 4, &e->bias_off)) != CLVAE_OK) return st;
    e->has_bias = 1, e->bias = ep->bias.buf->mem;
  }
  if (ep->mask.buf) {
    if (ep->ldm < N) return clvae__fail(CLVAE_ERR_ARG, "gemm: epilogue mask stride %d < N=%d", ep->ldm, N);
    if ((st = clvae__view("gemm", "epilogue mask", ep->mask, (size_t)(M - 1) * ep->ldm + N, 4, &e->mask_off)) != CLVAE_OK)
      return st;
    e->has_mask = 1, e->mask = ep->mask.buf->mem, e->ldm = ep->ldm;
  }
  return CLVAE_OK;
}

/* Floats of the panels of a B of K rows and N columns for the builtin GEMM. */
static size_t panels_floats(const gemm_state *g, int K, int N) {
  int nr = 16 * variant_for(g, N).nv;
  return (size_t)(N + nr - 1) / nr * (size_t)K * nr;
}

/* The panels an epilogue asks for: the builtin GEMM's layout of a B of K = M rows and N
 * columns, from the start of their buffer. */
static clvae_status panels_prepare(gemm_state *g, const clvae_epilogue *ep, int M, int N, epi_args *e) {
  if (!ep || !ep->panels.buf) return CLVAE_OK;
  if (g->impl != CLVAE_GEMM_BUILTIN)
    return clvae__fail(CLVAE_ERR_ARG, "gemm: an epilogue's panels are for the builtin GEMM only");
  int nr = 16 * variant_for(g, N).nv;
  cl_uint off;
  clvae_status st = clvae__view("gemm", "epilogue panels", ep->panels, panels_floats(g, M, N), 4, &off);
  if (st != CLVAE_OK) return st;
  if (off) return clvae__fail(CLVAE_ERR_ARG, "gemm: an epilogue's panels start at their buffer's start");
  e->has_panels = 1, e->pnr = nr, e->panels = ep->panels.buf->mem;
  return CLVAE_OK;
}

int clvae__gemm_panel_width(clvae_device *dev, int N) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  return g && g->impl == CLVAE_GEMM_BUILTIN && N > 0 ? 16 * variant_for(g, N).nv : 0;
}

size_t clvae_gemm_panels_size(clvae_device *dev, int K, int N) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  return g && g->impl == CLVAE_GEMM_BUILTIN && K > 0 && N > 0 ? panels_floats(g, K, N) : 0;
}

/* The tile kernel of an epilogue (e must be one that fused_epilogue accepts). */
static const clvae_kernel_def *tile_kernel(const variant *v, const epi_args *e) {
  if (e->has_mask) return &v->k[e->has_panels ? K_TILE_MASK_PANELS : K_TILE_MASK];
  if (!e->has_bias) return &v->k[K_TILE];
  return &v->k[e->act == CLVAE_ACT_RELU ? K_TILE_BIAS_RELU : e->act == CLVAE_ACT_SIGMOID ? K_TILE_BIAS_SIGMOID : K_TILE_BIAS];
}

/* Whether a tile kernel applies the epilogue itself: every combination but a mask with a
 * bias (which the model never asks for; it gets a plain tile and the element-wise kernels),
 * and panels only with the mask alone (others get a packing kernel after). */
static int fused_epilogue(const epi_args *e) {
  return !(e->has_mask && e->has_bias) && (!e->has_panels || (e->has_mask && !e->has_bias && e->act == CLVAE_ACT_NONE));
}

/* Into how many parts K is split: where C has too few blocks to keep the device's compute
 * units busy and K is long (a conv's weight gradient: a few rows of C summed over every
 * pixel of the batch), each part on its own work-items, then gemm_ksum adds them. */
static int k_splits(const clvae_device *dev, const variant *v, int M, int N, int K) {
  long blocks = (long)((M + v->mr - 1) / v->mr) * ((N + 16 * v->nv - 1) / (16 * v->nv));
  long want = 8L * (dev->info.compute_units ? (long)dev->info.compute_units : 1L), s;
  if (blocks >= want || K < 2048) return 1;
  s = (want + blocks - 1) / blocks;
  if (s > K / 512) s = K / 512;
  return s > 64 ? 64 : s < 2 ? 1 : (int)s;
}

/* The tile kernel over op(B) packed at bp (panels of NR columns); A is read in place
 * through its strides. With `splits` > 1 (no epilogue, beta 0) each K part stores its
 * partial C at c + z·c_split. */
static clvae_status tile_launch(clvae_device *dev, gemm_state *g, int ta, int M, int N, int K, float alpha, cl_mem a,
                                cl_uint a_off, int lda, cl_mem bp, cl_uint bp_off, float beta, cl_mem c, cl_uint c_off,
                                int ldc, const epi_args *e, int splits, cl_uint c_split) {
  variant v = variant_for(g, N);
  const int MR = v.mr, NR = 16 * v.nv;
  cl_int pa = (M + MR - 1) / MR, pb = (N + NR - 1) / NR, kz = (K + splits - 1) / splits;
  cl_int a_panel = ta ? MR : MR * lda, ask = ta ? lda : 1, asr = ta ? 1 : lda;
  cl_uint zero = 0;
  size_t global[3] = {(size_t)pb, (size_t)pa, (size_t)splits};
  size_t local[3] = {(size_t)g->lx, (size_t)g->ly, 1};
  if (g->tuned) { /* a chosen work-group is checked against the built kernel, not shrunk behind the user's back */
    size_t max = clvae__kernel_max_wg(dev, tile_kernel(&v, e));
    if (!max) return CLVAE_ERR_BUILD;
    if (local[0] * local[1] > max)
      return clvae__fail(CLVAE_ERR_ARG, "CLVAE_GEMM_TUNE asks for work-groups of %d x %d; kernel %s allows %zu on this "
                         "device", g->lx, g->ly, tile_kernel(&v, e)->name, max);
  }
  karg args[] = {KARG(M), KARG(N), KARG(K), KARG(alpha), KARG(beta), KARG(a), KARG(a_off), KARG(a_panel),
                 KARG(ask), KARG(asr), KARG(bp), KARG(bp_off), KARG(c), KARG(c_off), KARG(ldc), KARG(e->bias),
                 KARG(e->bias_off), KARG(e->mask), KARG(e->mask_off), KARG(e->ldm), KARG(e->panels), KARG(zero),
                 KARG(e->pnr), KARG(kz), KARG(c_split)};
  return clvae__launch(dev, tile_kernel(&v, e), 3, global, local, 25, args);
}

static clvae_status tile(clvae_device *dev, gemm_state *g, int ta, int M, int N, int K, float alpha, cl_mem a,
                         cl_uint a_off, int lda, cl_mem bp, cl_uint bp_off, float beta, cl_mem c, cl_uint c_off, int ldc,
                         const epi_args *e) {
  variant v = variant_for(g, N);
  int splits = e->has_bias || e->has_mask || e->has_panels || e->act ? 1 : k_splits(dev, &v, M, N, K);
  if (splits == 1) return tile_launch(dev, g, ta, M, N, K, alpha, a, a_off, lda, bp, bp_off, beta, c, c_off, ldc, e, 1, 0);
  size_t mn = (size_t)M * N, bytes = mn * (size_t)splits * sizeof(float);
  clvae_status st = CLVAE_OK;
  if (mn > 0x7fffffffu / (size_t)splits) return clvae__fail(CLVAE_ERR_LIMIT, "gemm: split-K scratch too large");
  if (!g->partial || g->partial->size < bytes) { /* enqueued commands keep the old one alive */
    clvae_buffer *old = g->partial;
    g->partial = NULL;
    st = clvae_buffer_create(dev, bytes, &g->partial);
    clvae_buffer_free(old);
    if (st != CLVAE_OK) return st;
  }
  epi_args plain = plain_args(g->partial->mem);
  st = tile_launch(dev, g, ta, M, N, K, 1.0f, a, a_off, lda, bp, bp_off, 0.0f, g->partial->mem, 0, N, &plain, splits,
                   (cl_uint)mn);
  if (st != CLVAE_OK) return st;
  cl_int nsplit = splits;
  size_t global[2] = {(size_t)N, (size_t)M}, local[2] = {dev->local_1d < 64 ? dev->local_1d : 64, 1};
  karg args[] = {KARG(c), KARG(c_off), KARG(ldc), KARG(g->partial->mem), KARG(M), KARG(N), KARG(nsplit), KARG(alpha),
                 KARG(beta)};
  return clvae__launch(dev, &k_ksum, 2, global, local, 9, args);
}

/* The epilogue as element-wise kernels (after CLBlast, or after a tile kernel that does not
 * apply it), in the builtin kernel's order. */
static clvae_status epilogue_kernels(clvae_device *dev, const clvae_epilogue *ep, int M, int N, clvae_view C, int ldc) {
  clvae_status st = CLVAE_OK;
  if (ep && (ep->bias.buf || ep->act != CLVAE_ACT_NONE)) {
    if (!ep->bias.buf) return clvae__fail(CLVAE_ERR_ARG, "gemm: an epilogue activation without a bias");
    st = clvae_bias_act(dev, C, ldc, ep->bias, M, N, ep->act);
  }
  if (st == CLVAE_OK && ep && ep->mask.buf) st = clvae_relu_backward(dev, C, ldc, C, ldc, ep->mask, ep->ldm, M, N);
  return st;
}

/* op(B) (K×N: B at b_off, row stride ldb, transposed if tb) packed into the panels of the
 * build that multiplies N columns (gemm_pack_b over a (k, panel) range; a local size along
 * k keeps neighbouring rows in one work-group). */
static clvae_status pack_b(clvae_device *dev, gemm_state *g, cl_mem dst, cl_mem b, cl_uint b_off, int ldb, int tb,
                           int N, int K) {
  variant v = variant_for(g, N);
  const int NR = 16 * v.nv;
  cl_int pb = (N + NR - 1) / NR, tb_ = tb;
  size_t lk = dev->local_1d < 64 ? dev->local_1d : 64, pack_local[2] = {lk, 1};
  size_t gb[2] = {(size_t)K, (size_t)pb};
  karg args[] = {KARG(dst), KARG(b), KARG(b_off), KARG(ldb), KARG(tb_), KARG(N), KARG(K), KARG(pb)};
  return clvae__launch(dev, &v.k[K_PACK_B], 2, gb, pack_local, 8, args);
}

/* What a GEMM that did not apply its epilogue leaves to do: the element-wise kernels, then
 * the panels. */
static clvae_status unfused_rest(clvae_device *dev, gemm_state *g, const clvae_epilogue *ep, const epi_args *e, int M,
                                 int N, clvae_view C, cl_uint c_off, int ldc) {
  clvae_status st = epilogue_kernels(dev, ep, M, N, C, ldc);
  if (st == CLVAE_OK && e->has_panels) st = pack_b(dev, g, e->panels, C.buf->mem, c_off, ldc, 0, N, M);
  return st;
}

/* The tile kernel over op(B)'s panels at bp + bp_off with the epilogue: fused where a tile
 * kernel applies it, otherwise a plain tile and the rest after. */
static clvae_status tile_ep(clvae_device *dev, gemm_state *g, int ta, int M, int N, int K, float alpha, cl_mem a,
                            cl_uint a_off, int lda, cl_mem bp, cl_uint bp_off, float beta, clvae_view C, cl_uint c_off,
                            int ldc, const clvae_epilogue *ep, const epi_args *e) {
  if (fused_epilogue(e))
    return tile(dev, g, ta, M, N, K, alpha, a, a_off, lda, bp, bp_off, beta, C.buf->mem, c_off, ldc, e);
  epi_args plain = plain_args(C.buf->mem);
  clvae_status st = tile(dev, g, ta, M, N, K, alpha, a, a_off, lda, bp, bp_off, beta, C.buf->mem, c_off, ldc, &plain);
  return st == CLVAE_OK ? unfused_rest(dev, g, ep, e, M, N, C, c_off, ldc) : st;
}

/* op(B) is packed into the scratch panels first, then tiled. */
static clvae_status gemm_builtin(clvae_device *dev, gemm_state *g, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, clvae_view C, cl_uint c_off,
                                 int ldc, const clvae_epilogue *ep, const epi_args *e) {
  if (!tb && N == 16 * variant_for(g, N).nv && ldb == N) /* one panel, stored as one: B is its own panels */
    return tile_ep(dev, g, ta, M, N, K, alpha, a, a_off, lda, b, b_off, beta, C, c_off, ldc, ep, e);
  clvae_status st = ensure_pack_b(dev, g, panels_floats(g, K, N) * sizeof(float));
  if (st == CLVAE_OK) st = pack_b(dev, g, g->pack_b->mem, b, b_off, ldb, tb, N, K);
  if (st != CLVAE_OK) return st;
  return tile_ep(dev, g, ta, M, N, K, alpha, a, a_off, lda, g->pack_b->mem, 0, beta, C, c_off, ldc, ep, e);
}

/* Grows a scratch buffer to at least `bytes` (at least 4), the new one made before the old
 * one goes (see ensure_pack_b). */
static clvae_status grow_scratch(clvae_device *dev, clvae_buffer **buf, size_t bytes) {
  if (*buf && (*buf)->size >= bytes) return CLVAE_OK;
  clvae_buffer *old = *buf;
  *buf = NULL;
  clvae_status st = clvae_buffer_create(dev, bytes > 4 ? bytes : 4, buf);
  clvae_buffer_free(old);
  return st;
}

/* CLBlast with a temporary buffer of ours: without one, it allocates (and frees) one on
 * every call of a shape its indirect GEMM pads (784, 785, 513 rows; N = 4). */
static clvae_status gemm_clblast(clvae_device *dev, gemm_state *g, int ta, int tb, int M, int N, int K,
                                 float alpha, cl_mem a, cl_uint a_off, int lda, cl_mem b,
                                 cl_uint b_off, int ldb, float beta, cl_mem c, cl_uint c_off,
                                 int ldc) {
  char what[96];
  snprintf(what, sizeof what, "%s%s M=%d N=%d K=%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
  const CLBlastTranspose at = ta ? CLBlastTransposeYes : CLBlastTransposeNo, bt = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  size_t tmp = 0;
  CLBlastStatusCode s = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, at, bt, (size_t)M, (size_t)N, (size_t)K, a_off,
                                                   (size_t)lda, b_off, (size_t)ldb, c_off, (size_t)ldc, &dev->queue, &tmp);
  if (s != CLBlastSuccess) return CL_FAIL(s, "CLBlastSGemmTempBufferSize", what);
  clvae_status st = grow_scratch(dev, &g->clblast_tmp, tmp);
  if (st != CLVAE_OK) return st;
  g->clblast_used = 1;
  cl_event *ev = clvae__prof_event(dev, "clblast_sgemm");
  s = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, at, bt, (size_t)M, (size_t)N, (size_t)K, alpha, a, a_off,
                                 (size_t)lda, b, b_off, (size_t)ldb, beta, c, c_off, (size_t)ldc, &dev->queue, ev,
                                 g->clblast_tmp->mem);
  if (s != CLBlastSuccess) {
    clvae__prof_cancel(dev, ev);
    return CL_FAIL(s, "CLBlastSgemmWithTempBuffer", what);
  }
  return CLVAE_OK;
}

clvae_status clvae__gemm_warm(clvae_device *dev) {
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_NOMEM;
  if (g->impl == CLVAE_GEMM_BUILTIN && g->tuned) { /* a chosen work-group every tile kernel can run: refused now, not at a step */
    const int widths[4] = {1, 16, 48, 4096};
    for (int w = 0; w < 4; w++) {
      variant v = variant_for(g, widths[w]);
      for (int k = K_TILE; k < K_COUNT; k++) {
        size_t max = clvae__kernel_max_wg(dev, &v.k[k]);
        if (!max) return CLVAE_ERR_BUILD;
        if ((size_t)g->lx * (size_t)g->ly > max)
          return clvae__fail(CLVAE_ERR_ARG, "CLVAE_GEMM_TUNE asks for work-groups of %d x %d; kernel %s allows %zu on "
                             "this device", g->lx, g->ly, v.k[k].name, max);
      }
    }
  }
  if (g->impl != CLVAE_GEMM_CLBLAST) return CLVAE_OK;
  /* CLBlast compiles its programs on first use: its direct GEMM (small sizes) and its
   * indirect one (large), each with all four transpose cases. Run both now, when the
   * caller builds every program (signals held back, not timed as a step). */
  clvae_buffer *buf = NULL;
  const int sizes[2] = {16, 1024};
  clvae_status st = clvae_buffer_create(dev, (size_t)3 * 1024 * 1024 * 4, &buf);
  for (int i = 0; i < 2 && st == CLVAE_OK; i++)
    for (int t = 0; t < 4 && st == CLVAE_OK; t++) {
      const int n = sizes[i];
      st = gemm_clblast(dev, g, t & 1, t >> 1, n, n, n, 1.0f, buf->mem, 0, n, buf->mem, 1024 * 1024, n, 0.0f, buf->mem,
                        2 * 1024 * 1024, n);
    }
  if (st == CLVAE_OK) st = clvae_device_finish(dev);
  clvae_buffer_free(buf);
  return st;
}

/* The checks every entry point shares: sizes, strides, and that A and C fit their views. */
static clvae_status check_ac(int trans_a, int M, int N, int K, clvae_view A, int lda, clvae_view C, int ldc,
                             cl_uint *a_off, cl_uint *c_off) {
  int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  if (lda < (a_cols > 1 ? a_cols : 1) || ldc < N)
    return clvae__fail(CLVAE_ERR_ARG, "gemm: leading dimension too small (lda=%d ldc=%d for %s M=%d N=%d K=%d)", lda, ldc,
                       trans_a ? "T" : "N", M, N, K);
  size_t a_n = a_rows ? (size_t)(a_rows - 1) * lda + a_cols : 0;
  clvae_status st = clvae__view("gemm", "A", A, a_n, 4, a_off);
  return st != CLVAE_OK ? st : clvae__view("gemm", "C", C, (size_t)(M - 1) * ldc + N, 4, c_off);
}

clvae_status clvae_gemm_ex(clvae_device *dev, int trans_a, int trans_b, int M, int N, int K, float alpha, clvae_view A,
                           int lda, clvae_view B, int ldb, float beta, clvae_view C, int ldc, const clvae_epilogue *ep) {
  cl_uint a_off, b_off, c_off;
  clvae_status st;
  epi_args e;
  if (M < 0 || N < 0 || K < 0)
    return clvae__fail(CLVAE_ERR_ARG, "gemm: negative size M=%d N=%d K=%d", M, N, K);
  if (M == 0 || N == 0) return CLVAE_OK;
  /* Stored shapes: A is (M, K) or, transposed, (K, M); likewise B; C is (M, N). */
  int b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  if (ldb < (b_cols > 1 ? b_cols : 1))
    return clvae__fail(CLVAE_ERR_ARG, "gemm: leading dimension too small (ldb=%d for %s%s M=%d N=%d K=%d)", ldb,
                       trans_a ? "T" : "N", trans_b ? "T" : "N", M, N, K);
  size_t b_n = b_rows ? (size_t)(b_rows - 1) * ldb + b_cols : 0;
  if ((st = check_ac(trans_a, M, N, K, A, lda, C, ldc, &a_off, &c_off)) != CLVAE_OK ||
      (st = clvae__view("gemm", "B", B, b_n, 4, &b_off)) != CLVAE_OK ||
      (st = epi_prepare(ep, M, N, C.buf->mem, &e)) != CLVAE_OK)
    return st;
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  if ((st = panels_prepare(g, ep, M, N, &e)) != CLVAE_OK) return st;
  /* CLBlast refuses K = 0, where BLAS defines C = βC; our kernel does exactly that. */
  if (g->impl == CLVAE_GEMM_CLBLAST && K > 0) {
    st = gemm_clblast(dev, g, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem, b_off, ldb, beta,
                      C.buf->mem, c_off, ldc);
    return st == CLVAE_OK ? epilogue_kernels(dev, ep, M, N, C, ldc) : st;
  }
  return gemm_builtin(dev, g, trans_a, trans_b, M, N, K, alpha, A.buf->mem, a_off, lda, B.buf->mem, b_off, ldb, beta, C,
                      c_off, ldc, ep, &e);
}

clvae_status clvae_gemm(clvae_device *dev, int trans_a, int trans_b, int M, int N, int K, float alpha, clvae_view A,
                        int lda, clvae_view B, int ldb, float beta, clvae_view C, int ldc) {
  return clvae_gemm_ex(dev, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

/* ---- B operands packed ahead ---- */

struct clvae_gemm_plan {
  int n, nv;                 /* matrices; the wide block they were packed for (16·nv columns) */
  clvae_pack_job *jobs;
  size_t *dst;               /* each matrix's offset in the packed buffer, floats */
  size_t total;              /* floats */
  uint32_t units;            /* ⌈K/16⌉·panels, all matrices together (see gemm_pack_many) */
  clvae_buffer *table;       /* jobs as the kernel reads them: 8 uint per matrix */
  size_t src_end;            /* one past the last source float any job reads */
};

clvae_status clvae_gemm_plan_create(clvae_gemm_plan **out, clvae_device *dev, const clvae_pack_job *jobs, int n) {
  *out = NULL;
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  clvae_gemm_plan *p = calloc(1, sizeof *p);
  uint32_t *t = calloc((size_t)(n > 0 ? n : 1) * 8, sizeof *t);
  if (p) p->jobs = malloc((size_t)(n > 0 ? n : 1) * sizeof *jobs), p->dst = malloc((size_t)(n > 0 ? n : 1) * sizeof *p->dst);
  clvae_status st = p && t && p->jobs && p->dst ? CLVAE_OK : clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  uint64_t units = 0, total = 0;
  for (int i = 0; i < n && st == CLVAE_OK; i++) {
    const clvae_pack_job *j = &jobs[i];
    int nv = j->N > 0 ? variant_for(g, j->N).nv : 1, nr = 16 * nv, panels = (j->N + nr - 1) / nr;
    if (j->K < 1 || j->N < 1 || j->ld < (j->trans ? j->K : j->N) || j->src_off > 0xffffffffu)
      st = clvae__fail(CLVAE_ERR_ARG, "gemm pack plan: matrix %d has K=%d N=%d ld=%d", i, j->K, j->N, j->ld);
    p->jobs[i] = *j, p->dst[i] = (size_t)total;
    uint32_t *r = t + 8 * i;
    r[0] = (uint32_t)j->src_off, r[1] = (uint32_t)j->ld, r[2] = (uint32_t)j->trans, r[3] = (uint32_t)j->N;
    r[4] = (uint32_t)j->K, r[5] = (uint32_t)units, r[6] = (uint32_t)total, r[7] = (uint32_t)nv;
    units += (uint64_t)(j->K + 15) / 16 * panels, total += (uint64_t)j->K * panels * nr;
    if (st == CLVAE_OK) {
      size_t end = j->src_off + (size_t)((j->trans ? j->N : j->K) - 1) * j->ld + (j->trans ? j->K : j->N);
      if (end > p->src_end) p->src_end = end;
    }
    if (units > 0xffffffffu || total > 0xffffffffu) st = clvae__fail(CLVAE_ERR_LIMIT, "gemm pack plan: too large");
  }
  if (st == CLVAE_OK) {
    p->n = n, p->nv = g->nv, p->total = (size_t)total, p->units = (uint32_t)units;
    st = clvae_buffer_create(dev, (size_t)(n > 0 ? n : 1) * 8 * sizeof *t, &p->table);
  }
  if (st == CLVAE_OK) st = clvae_buffer_write(dev, p->table, 0, (size_t)n * 8 * sizeof *t, t, 1);
  free(t);
  if (st != CLVAE_OK) {
    clvae_gemm_plan_free(p);
    return st;
  }
  *out = p;
  return CLVAE_OK;
}

void clvae_gemm_plan_free(clvae_gemm_plan *p) {
  if (!p) return;
  clvae_buffer_free(p->table);
  free(p->jobs), free(p->dst), free(p);
}

size_t clvae_gemm_plan_size(const clvae_gemm_plan *p) { return p->total; }
size_t clvae_gemm_plan_offset(const clvae_gemm_plan *p, int job) { return p->dst[job]; }

clvae_status clvae_gemm_pack(clvae_device *dev, const clvae_gemm_plan *p, clvae_view src, clvae_view dst) {
  cl_uint s_off, d_off;
  clvae_status st;
  if ((st = clvae__view("gemm_pack", "src", src, p->src_end, 4, &s_off)) != CLVAE_OK ||
      (st = clvae__view("gemm_pack", "dst", dst, p->total, 4, &d_off)) != CLVAE_OK)
    return st;
  if (s_off || d_off) return clvae__fail(CLVAE_ERR_ARG, "gemm_pack: the plan's offsets are from its buffers' start");
  cl_int n = p->n;
  size_t global = p->units;
  karg args[] = {KARG(dst.buf->mem), KARG(src.buf->mem), KARG(p->table->mem), KARG(n), KARG(p->units)};
  size_t local = dev->local_1d < 16 ? dev->local_1d : 16; /* a unit is 16 rows: few work-items */
  return clvae__launch(dev, &k_pack_many, 1, &global, &local, 5, args);
}

clvae_status clvae_gemm_packed(clvae_device *dev, const clvae_gemm_plan *p, int job, int trans_a, int M, float alpha,
                               clvae_view A, int lda, clvae_view packed, float beta, clvae_view C, int ldc,
                               const clvae_epilogue *ep) {
  cl_uint a_off, c_off, pk_off;
  clvae_status st;
  epi_args e;
  if (job < 0 || job >= p->n) return clvae__fail(CLVAE_ERR_ARG, "gemm_packed: no matrix %d in the plan", job);
  const int N = p->jobs[job].N, K = p->jobs[job].K;
  if (M < 0) return clvae__fail(CLVAE_ERR_ARG, "gemm_packed: M=%d", M);
  if (M == 0) return CLVAE_OK;
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  if (g->impl != CLVAE_GEMM_BUILTIN || g->nv != p->nv)
    return clvae__fail(CLVAE_ERR_ARG, "gemm_packed: packed operands need the builtin GEMM it was planned for");
  if ((st = check_ac(trans_a, M, N, K, A, lda, C, ldc, &a_off, &c_off)) != CLVAE_OK ||
      (st = clvae__view("gemm_packed", "packed", packed, p->total, 4, &pk_off)) != CLVAE_OK ||
      (st = epi_prepare(ep, M, N, C.buf->mem, &e)) != CLVAE_OK || (st = panels_prepare(g, ep, M, N, &e)) != CLVAE_OK)
    return st;
  if (pk_off) return clvae__fail(CLVAE_ERR_ARG, "gemm_packed: the plan's offsets are from the packed buffer's start");
  return tile_ep(dev, g, trans_a, M, N, K, alpha, A.buf->mem, a_off, lda, packed.buf->mem, (cl_uint)p->dst[job], beta, C,
                 c_off, ldc, ep, &e);
}

clvae_status clvae_gemm_from_panels(clvae_device *dev, int trans_a, int M, int N, int K, float alpha, clvae_view A,
                                    int lda, clvae_view panels, float beta, clvae_view C, int ldc,
                                    const clvae_epilogue *ep) {
  cl_uint a_off, c_off, p_off;
  clvae_status st;
  epi_args e;
  if (M < 0 || N < 1 || K < 1) return clvae__fail(CLVAE_ERR_ARG, "gemm_from_panels: M=%d N=%d K=%d", M, N, K);
  if (M == 0) return CLVAE_OK;
  gemm_state *g = clvae__state(dev, &gemm_state_def);
  if (!g) return CLVAE_ERR_ARG;
  if (g->impl != CLVAE_GEMM_BUILTIN)
    return clvae__fail(CLVAE_ERR_ARG, "gemm_from_panels: panels are read by the builtin GEMM only");
  if ((st = check_ac(trans_a, M, N, K, A, lda, C, ldc, &a_off, &c_off)) != CLVAE_OK ||
      (st = clvae__view("gemm_from_panels", "panels", panels, clvae_gemm_panels_size(dev, K, N), 4, &p_off)) != CLVAE_OK ||
      (st = epi_prepare(ep, M, N, C.buf->mem, &e)) != CLVAE_OK || (st = panels_prepare(g, ep, M, N, &e)) != CLVAE_OK)
    return st;
  return tile_ep(dev, g, trans_a, M, N, K, alpha, A.buf->mem, a_off, lda, panels.buf->mem, p_off, beta, C, c_off, ldc, ep,
                 &e);
}

clvae_status clvae_gemm_weights(clvae_device *dev, int trans_a, int trans_w, int M, clvae_view A, int lda,
                                const clvae_weights *w, clvae_view C, int ldc, const clvae_epilogue *ep) {
  int job = trans_w ? w->job_t : w->job;
  if (w->plan && job >= 0 && clvae_gemm_get_impl(dev) == CLVAE_GEMM_BUILTIN)
    return clvae_gemm_packed(dev, w->plan, job, trans_a, M, 1.0f, A, lda, w->packed, 0.0f, C, ldc, ep);
  return clvae_gemm_ex(dev, trans_a, trans_w, M, trans_w ? w->rows : w->cols, trans_w ? w->cols : w->rows, 1.0f, A, lda,
                       w->w, w->cols, 0.0f, C, ldc, ep);
}
