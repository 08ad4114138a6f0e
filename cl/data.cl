/* Batches built on the device: x[b][d] = images[idx[b]][d] / 255 from the uint8 image
 * set uploaded once and the shuffled index list uploaded each epoch. */
__kernel void gather(__global float *x, uint x_off, __global const uchar *images, uint img_off,
                     __global const uint *idx, uint idx_off, int B, int D) {
  int d = (int)get_global_id(0), b = (int)get_global_id(1);
  if (d >= D || b >= B) return;
  uchar v = images[img_off + (size_t)idx[idx_off + b] * D + d];
  x[x_off + (size_t)b * D + d] = (float)v / 255.0f;
}
