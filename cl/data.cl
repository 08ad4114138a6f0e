/* Batches built on the device: x[b][d] = images[idx[b]][d] / 255 from the uint8 image
 * set uploaded once and the shuffled index list uploaded each epoch. Work-item (c, b)
 * converts 16 pixels of row b as a vector (uchar16 → float16), the last partial chunk
 * one by one. */
__kernel void gather(__global float *x, uint x_off, int ldx, __global const uchar *images, uint img_off,
                     __global const uint *idx, uint idx_off, int B, int D) {
  int d = (int)get_global_id(0) * 16, b = (int)get_global_id(1);
  if (d >= D || b >= B) return;
  __global const uchar *src = images + img_off + (size_t)idx[idx_off + b] * D + d;
  __global float *dst = x + x_off + (size_t)b * ldx + d;
  if (d + 16 <= D) {
    vstore16(convert_float16(vload16(0, src)) / 255.0f, 0, dst);
    return;
  }
  for (int e = 0; d + e < D; e++) dst[e] = (float)src[e] / 255.0f;
}

/* The class of each row as a one-hot block: x[b][col0 + k] = (labels[idx[b]] == k) for
 * k < K (a conditional model's encoder input after the pixels, its decoder input after z).
 * One work-item per (k, b). */
__kernel void onehot(__global float *x, uint x_off, int ldx, int col0, __global const uchar *labels,
                     uint lab_off, __global const uint *idx, uint idx_off, int B, int K) {
  int k = (int)get_global_id(0), b = (int)get_global_id(1);
  if (k >= K || b >= B) return;
  x[x_off + (size_t)b * ldx + col0 + k] = labels[lab_off + idx[idx_off + b]] == (uint)k ? 1.0f : 0.0f;
}
