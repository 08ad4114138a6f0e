/* Sigmoid output fused with the reconstruction loss and its gradient. One work-group of
 * up to RED_LS work-items per image (1 on CPU devices, where explicit vectors do the work;
 * 64 on GPUs, or the power of two the kernel's own work-group limit allows); each work-item takes 16-pixel chunks as float16, which PoCL compiles to
 * AVX-512 and a GPU reads coalesced. Sums run in a fixed order (lanes, then a tree over
 * the work-group), so the result is deterministic. The output layer's bias is added here
 * (unless has_bias is 0: a transposed conv's output comes with its bias). */

/* 784·MSE terms (p − x)² and the gradient scale·2(p − x)·p(1 − p). */
float16 mse_terms(float16 y, float16 x, float scale, float16 *g) {
  float16 p = 1.0f / (1.0f + exp(-y)), diff = p - x;
  *g = scale * 2.0f * diff * p * (1.0f - p);
  return diff * diff;
}

/* BCE terms max(y, 0) − y·x + log(1 + e^−|y|) (= −x·log p − (1−x)·log(1−p), stable from the
 * logits) and the gradient scale·(p − x). */
float16 bce_terms(float16 y, float16 x, float scale, float16 *g) {
  *g = scale * (1.0f / (1.0f + exp(-y)) - x);
  return fmax(y, 0.0f) - y * x + log1p(exp(-fabs(y)));
}

float sum16(float16 v) {
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

/* Writes the sum of every work-item's `s` to *out (a fixed tree in local memory). */
void reduce_store(__local float *part, float s, __global float *out) {
  int t = (int)get_local_id(0);
  part[t] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = (int)get_local_size(0) / 2; w > 0; w >>= 1) {
    if (t < w) part[t] += part[t + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t == 0) *out = part[0];
}

/* loss[b] = Σ_d terms(logits[b][d] (+ bias[d]), x[b][d]) (x rows ldx apart); dlogits (if
 * want_grad; may alias logits) = the gradient terms, also stored in P as the GEMM's panels
 * of pnr columns read them (B rows; none if pnr = 0). The last chunk of a row that is not
 * a multiple of 16 goes through private arrays, its padding masked out. */
#define LOSS_KERNEL(NAME, TERMS)                                                                   \
  __kernel void NAME(                                                                              \
      __global float *loss, uint loss_off, __global float *dlogits, uint dl_off, int want_grad,    \
      __global const float *logits, uint lg_off, int has_bias, __global const float *bias, uint b_off, \
      __global const float *x, uint x_off, int ldx, int D, float scale, __global float *P, int pnr) { \
    __local float part[RED_LS];                                                                    \
    int b = (int)get_group_id(0), t = (int)get_local_id(0), chunks = (D + 15) / 16;                \
    int rows = (int)get_num_groups(0), pw = pnr > 0 ? pnr : 16;                                    \
    size_t row = (size_t)b * D;                                                                    \
    __global const float *yr = logits + lg_off + row, *bs = bias + b_off;                          \
    __global const float *xr = x + x_off + (size_t)b * ldx;                                        \
    __global float *gr = dlogits + dl_off + row;                                                   \
    float16 acc = (float16)(0.0f), g;                                                              \
    float tail = 0.0f;                                                                             \
    for (int c = t; c < chunks; c += (int)get_local_size(0)) {                                     \
      int d = c * 16;                                                                              \
      __global float *pr = P + (size_t)(d / pw) * rows * pw + (size_t)b * pw + d % pw;            \
      if (d + 16 <= D) {                                                                           \
        float16 bv = has_bias ? vload16(0, bs + d) : (float16)(0.0f);                            \
        acc += TERMS(vload16(0, yr + d) + bv, vload16(0, xr + d), scale, &g);                      \
        if (want_grad) vstore16(g, 0, gr + d);                                                     \
        if (pnr) vstore16(g, 0, pr);                                                               \
      } else {                                                                                     \
        float yy[16], xx[16], tt[16], gg[16];                                                      \
        for (int e = 0; e < 16; e++) {                                                             \
          yy[e] = d + e < D ? yr[d + e] + (has_bias ? bs[d + e] : 0.0f) : 0.0f;                    \
          xx[e] = d + e < D ? xr[d + e] : 0.0f;                                                    \
        }                                                                                          \
        vstore16(TERMS(vload16(0, yy), vload16(0, xx), scale, &g), 0, tt);                         \
        vstore16(g, 0, gg);                                                                        \
        for (int e = 0; e < 16 && d + e < D; e++) {                                                \
          tail += tt[e];                                                                           \
          if (want_grad) gr[d + e] = gg[e];                                                        \
          if (pnr) pr[e] = gg[e];                                                                  \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    reduce_store(part, sum16(acc) + tail, loss + loss_off + b);                                    \
  }

LOSS_KERNEL(loss_sigmoid_mse, mse_terms)
LOSS_KERNEL(loss_sigmoid_bce, bce_terms)
