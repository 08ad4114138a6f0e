/* Activations and bias gradients: bias + activation in place, ReLU backward from the
 * stored output, and column sums in a fixed order (deterministic bias gradients). */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2

/* y (B, N, rows ldy apart) = act(y + bias).  2-D: (column, row). */
__kernel void bias_act(__global float *y, uint y_off, int ldy, __global const float *bias, uint b_off,
                       int B, int N, int act) {
  int j = (int)get_global_id(0), b = (int)get_global_id(1);
  if (j >= N || b >= B) return;
  size_t i = y_off + (size_t)b * ldy + j;
  float v = y[i] + bias[b_off + j];
  if (act == ACT_RELU) v = fmax(v, 0.0f);
  else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));
  y[i] = v;
}

/* dx = dy · [y > 0], all (B, N) with their row strides; dx may alias dy. 2-D: (column, row). */
__kernel void relu_backward(__global float *dx, uint dx_off, int ldx, __global const float *dy, uint dy_off, int ldy,
                            __global const float *y, uint y_off, int ld_y, int B, int N) {
  int j = (int)get_global_id(0), b = (int)get_global_id(1);
  if (j >= N || b >= B) return;
  dx[dx_off + (size_t)b * ldx + j] = y[y_off + (size_t)b * ld_y + j] > 0.0f ? dy[dy_off + (size_t)b * ldy + j] : 0.0f;
}

/* out[j] = Σ_b x[b][j], rows summed in order. Work-item w takes COLSUM_W columns: 16 on a
 * CPU, as float16 (a loop inside a work-item stays scalar on PoCL otherwise), with the
 * columns past the last multiple of 16 one by one; 1 on a GPU, which needs the threads. */
__kernel void colsum(__global float *out, uint out_off, __global const float *x, uint x_off,
                     int B, int N) {
  int j0 = (int)get_global_id(0) * COLSUM_W;
  if (j0 >= N) return;
  __global const float *col = x + x_off + j0;
  if (COLSUM_W == 16 && j0 + 16 <= N) {
    float16 s = (float16)(0.0f);
    for (int b = 0; b < B; b++) s += vload16(0, col + (size_t)b * N);
    vstore16(s, 0, out + out_off + j0);
    return;
  }
  for (int j = j0; j < N && j < j0 + COLSUM_W; j++) {
    float s = 0.0f;
    for (int b = 0; b < B; b++) s += x[x_off + (size_t)b * N + j];
    out[out_off + j] = s;
  }
}
