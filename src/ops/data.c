/* Host side of cl/data.cl: batches gathered on the device from the resident image set. */
#include "ops/registry.h"

const clvae_program_def clvae__program_data = {"data", NULL, NULL};
static const clvae_kernel_def k_gather = {&clvae__program_data, "gather"};
static const clvae_kernel_def k_onehot = {&clvae__program_data, "onehot"};

clvae_status clvae_gather(clvae_device *dev, clvae_view x, int ldx, clvae_view images, clvae_view idx,
                          int B, int D) {
  cl_uint x_off, i_off, idx_off;
  clvae_status st;
  if (B < 0 || D < 1 || ldx < D) return clvae__fail(CLVAE_ERR_ARG, "gather: B=%d D=%d ldx=%d", B, D, ldx);
  /* The images view is checked for one image here; the kernel trusts idx to be in range
   * (the caller builds it from the image count). */
  if ((st = clvae__view("gather", "x", x, B ? (size_t)(B - 1) * ldx + D : 0, 4, &x_off)) != CLVAE_OK ||
      (st = clvae__view("gather", "images", images, (size_t)D, 1, &i_off)) != CLVAE_OK ||
      (st = clvae__view("gather", "idx", idx, (size_t)B, 4, &idx_off)) != CLVAE_OK)
    return st;
  size_t global[2] = {((size_t)D + 15) / 16, (size_t)B}, local[2] = {dev->local_1d < 64 ? dev->local_1d : 64, 1};
  karg args[] = {KARG(x.buf->mem), KARG(x_off), KARG(ldx), KARG(images.buf->mem), KARG(i_off),
                 KARG(idx.buf->mem), KARG(idx_off), KARG(B), KARG(D)};
  return clvae__launch(dev, &k_gather, 2, global, local, 9, args);
}

clvae_status clvae_onehot(clvae_device *dev, clvae_view x, int ldx, int col0, clvae_view labels, clvae_view idx,
                          int B, int K) {
  cl_uint x_off, l_off, idx_off;
  clvae_status st;
  if (B < 0 || K < 1 || K > 256 || col0 < 0 || ldx < col0 + K)
    return clvae__fail(CLVAE_ERR_ARG, "onehot: B=%d K=%d col0=%d ldx=%d", B, K, col0, ldx);
  /* as in gather: the kernel trusts idx to be in range of the labels */
  if ((st = clvae__view("onehot", "x", x, B ? (size_t)(B - 1) * ldx + col0 + K : 0, 4, &x_off)) != CLVAE_OK ||
      (st = clvae__view("onehot", "labels", labels, 1, 1, &l_off)) != CLVAE_OK ||
      (st = clvae__view("onehot", "idx", idx, (size_t)B, 4, &idx_off)) != CLVAE_OK)
    return st;
  size_t global[2] = {(size_t)K, (size_t)B};
  karg args[] = {KARG(x.buf->mem), KARG(x_off), KARG(ldx), KARG(col0), KARG(labels.buf->mem), KARG(l_off),
                 KARG(idx.buf->mem), KARG(idx_off), KARG(B), KARG(K)};
  return clvae__launch(dev, &k_onehot, 2, global, NULL, 10, args);
}
