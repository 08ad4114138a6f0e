/* Host side of cl/act.cl: bias + activation, ReLU backward, column sums. */
#include <stdio.h>

#include "ops/registry.h"

/* Column sums: 16 columns per work-item in float16 vectors on CPU-style devices, one
 * column per work-item on GPUs (many threads, coalesced reads). */
static int colsum_width(const clvae_device *dev) { return dev->gpu_style ? 1 : 16; }

static void act_defines(clvae_device *dev, char *buf, size_t n) {
  snprintf(buf, n, "-DCOLSUM_W=%d", colsum_width(dev));
}

const clvae_program_def clvae__program_act = {"act", act_defines, NULL};
static const clvae_kernel_def k_bias_act = {&clvae__program_act, "bias_act"};
static const clvae_kernel_def k_relu_backward = {&clvae__program_act, "relu_backward"};
static const clvae_kernel_def k_colsum = {&clvae__program_act, "colsum"};

/* Elements a (rows, cols) view with row stride ld spans. */
static size_t span(int rows, int cols, int ld) { return rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + cols : 0; }

clvae_status clvae_bias_act(clvae_device *dev, clvae_view y, int ldy, clvae_view bias, int B, int N, clvae_act act) {
  cl_uint y_off, b_off;
  clvae_status st;
  if (B < 0 || N < 0 || ldy < N || act < CLVAE_ACT_NONE || act > CLVAE_ACT_SIGMOID)
    return clvae__fail(CLVAE_ERR_ARG, "bias_act: bad arguments B=%d N=%d ldy=%d act=%d", B, N, ldy, (int)act);
  if ((st = clvae__view("bias_act", "y", y, span(B, N, ldy), 4, &y_off)) != CLVAE_OK ||
      (st = clvae__view("bias_act", "bias", bias, (size_t)N, 4, &b_off)) != CLVAE_OK)
    return st;
  cl_int a = (cl_int)act;
  size_t global[2] = {(size_t)N, (size_t)B}, local[2] = {dev->local_1d, 1};
  karg args[] = {KARG(y.buf->mem), KARG(y_off), KARG(ldy), KARG(bias.buf->mem), KARG(b_off), KARG(B), KARG(N), KARG(a)};
  return clvae__launch(dev, &k_bias_act, 2, global, local, 8, args);
}

clvae_status clvae_relu_backward(clvae_device *dev, clvae_view dx, int ldx, clvae_view dy, int ldy, clvae_view y,
                                 int ld_y, int B, int N) {
  cl_uint dx_off, dy_off, y_off;
  clvae_status st;
  if (B < 0 || N < 0 || ldx < N || ldy < N || ld_y < N)
    return clvae__fail(CLVAE_ERR_ARG, "relu_backward: B=%d N=%d strides %d, %d, %d", B, N, ldx, ldy, ld_y);
  if ((st = clvae__view("relu_backward", "dx", dx, span(B, N, ldx), 4, &dx_off)) != CLVAE_OK ||
      (st = clvae__view("relu_backward", "dy", dy, span(B, N, ldy), 4, &dy_off)) != CLVAE_OK ||
      (st = clvae__view("relu_backward", "y", y, span(B, N, ld_y), 4, &y_off)) != CLVAE_OK)
    return st;
  size_t global[2] = {(size_t)N, (size_t)B}, local[2] = {dev->local_1d, 1};
  karg args[] = {KARG(dx.buf->mem), KARG(dx_off), KARG(ldx), KARG(dy.buf->mem), KARG(dy_off), KARG(ldy),
                 KARG(y.buf->mem), KARG(y_off), KARG(ld_y), KARG(B), KARG(N)};
  return clvae__launch(dev, &k_relu_backward, 2, global, local, 11, args);
}

/* The column sums' scratch for tall matrices (see clvae_colsum). */
typedef struct colsum_state {
  clvae_buffer *partial;
} colsum_state;

static void colsum_release(clvae_device *dev, void *p) {
  (void)dev;
  clvae_buffer_free(((colsum_state *)p)->partial);
}

static const clvae_state_def colsum_state_def = {sizeof(colsum_state), NULL, colsum_release};

/* One launch: out (N) = the column sums of x (B, N) at x_off. */
static clvae_status colsum_launch(clvae_device *dev, cl_mem out, cl_uint o_off, cl_mem x, cl_uint x_off, int B, int N) {
  size_t w = (size_t)colsum_width(dev), global = ((size_t)N + w - 1) / w;
  size_t local = w > 1 && dev->local_1d > 16 ? 16 : dev->local_1d;
  karg args[] = {KARG(out), KARG(o_off), KARG(x), KARG(x_off), KARG(B), KARG(N)};
  return clvae__launch(dev, &k_colsum, 1, &global, &local, 6, args);
}

clvae_status clvae_colsum(clvae_device *dev, clvae_view out, clvae_view x, int B, int N) {
  cl_uint o_off, x_off;
  clvae_status st;
  if (B < 0 || N < 0) return clvae__fail(CLVAE_ERR_ARG, "colsum: B=%d N=%d", B, N);
  if ((st = clvae__view("colsum", "out", out, (size_t)N, 4, &o_off)) != CLVAE_OK ||
      (st = clvae__view("colsum", "x", x, (size_t)B * N, 4, &x_off)) != CLVAE_OK)
    return st;
  /* A tall, narrow matrix (a transposed conv's bias gradient: B·H·W rows of C) would give
   * a work-item or two all the rows: read as (B/k, k·N) it has k·N columns, whose sums are
   * the partial sums over the rows ≡ i (mod k); a second pass adds those k rows in order. */
  int k = 1;
  while (B >= 4096 && (long)k * 2 * N <= 1024 && B % (k * 2) == 0) k *= 2;
  if (k == 1 || N == 0) return colsum_launch(dev, out.buf->mem, o_off, x.buf->mem, x_off, B, N);
  colsum_state *cs = clvae__state(dev, &colsum_state_def);
  if (!cs) return CLVAE_ERR_NOMEM;
  size_t bytes = (size_t)k * N * 4;
  if (!cs->partial || clvae_buffer_size(cs->partial) < bytes) { /* new before old: see gemm.c's ensure_pack_b */
    clvae_buffer *old = cs->partial;
    cs->partial = NULL;
    st = clvae_buffer_create(dev, bytes, &cs->partial);
    clvae_buffer_free(old);
    if (st != CLVAE_OK) return st;
  }
  if ((st = colsum_launch(dev, cs->partial->mem, 0, x.buf->mem, x_off, B / k, k * N)) != CLVAE_OK) return st;
  return colsum_launch(dev, out.buf->mem, o_off, cs->partial->mem, 0, k, N);
}
