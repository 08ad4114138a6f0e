/* Host side of cl/loss.cl: sigmoid output fused with the reconstruction loss. */
#include <stdio.h>

#include "ops/registry.h"

int clvae__reduction_size(const clvae_device *dev) {
  int n = 1;
  while (dev->gpu_style && n < 64 && (size_t)n * 2 <= dev->info.max_work_group_size) n *= 2;
  return n;
}

static void loss_defines(clvae_device *dev, char *buf, size_t n) {
  snprintf(buf, n, "-DRED_LS=%d", clvae__reduction_size(dev));
}

const clvae_program_def clvae__program_loss = {"loss", loss_defines, NULL};
static const clvae_kernel_def k_mse = {&clvae__program_loss, "loss_sigmoid_mse"};
static const clvae_kernel_def k_bce = {&clvae__program_loss, "loss_sigmoid_bce"};

clvae_status clvae_loss_sigmoid(clvae_device *dev, clvae_loss_kind kind, clvae_view loss,
                                clvae_view dlogits, clvae_view dpanels, clvae_view logits, clvae_view bias,
                                clvae_view x, int ldx, int B, int D, float grad_scale) {
  cl_uint l_off, dl_off = 0, lg_off, b_off = 0, x_off, p_off = 0;
  clvae_status st;
  if (B < 0 || D < 1 || ldx < D || (kind != CLVAE_LOSS_MSE && kind != CLVAE_LOSS_BCE))
    return clvae__fail(CLVAE_ERR_ARG, "loss_sigmoid: bad arguments B=%d D=%d ldx=%d kind=%d", B, D, ldx, (int)kind);
  size_t n = (size_t)B * D;
  cl_int want_grad = dlogits.buf != NULL;
  if ((st = clvae__view("loss_sigmoid", "loss", loss, (size_t)B, 4, &l_off)) != CLVAE_OK ||
      (st = clvae__view("loss_sigmoid", "logits", logits, n, 4, &lg_off)) != CLVAE_OK ||
      (bias.buf && (st = clvae__view("loss_sigmoid", "bias", bias, (size_t)D, 4, &b_off)) != CLVAE_OK) ||
      (st = clvae__view("loss_sigmoid", "x", x, B ? (size_t)(B - 1) * ldx + D : 0, 4, &x_off)) != CLVAE_OK ||
      (want_grad && (st = clvae__view("loss_sigmoid", "dlogits", dlogits, n, 4, &dl_off)) != CLVAE_OK))
    return st;
  cl_int pnr = 0;
  if (dpanels.buf) {
    if (!want_grad) return clvae__fail(CLVAE_ERR_ARG, "loss_sigmoid: gradient panels without the gradient");
    if ((pnr = clvae__gemm_panel_width(dev, D)) == 0)
      return clvae__fail(CLVAE_ERR_ARG, "loss_sigmoid: gradient panels are for the builtin GEMM only");
    if ((st = clvae__view("loss_sigmoid", "dpanels", dpanels, clvae_gemm_panels_size(dev, B, D), 4, &p_off)) != CLVAE_OK)
      return st;
    if (p_off) return clvae__fail(CLVAE_ERR_ARG, "loss_sigmoid: gradient panels start at their buffer's start");
  }
  cl_mem dl = want_grad ? dlogits.buf->mem : logits.buf->mem; /* any valid buffer if unused */
  cl_mem pm = pnr ? dpanels.buf->mem : dl;
  /* the tree needs a power of two, at most what the kernel allows (a register-heavy kernel
   * may get less than the device's maximum) */
  size_t local = (size_t)clvae__reduction_size(dev), max = clvae__kernel_max_wg(dev, kind == CLVAE_LOSS_MSE ? &k_mse : &k_bce);
  if (!max) return CLVAE_ERR_BUILD;
  while (local > max) local /= 2;
  size_t global = (size_t)B * local;
  cl_int has_bias = bias.buf != NULL;
  cl_mem bm = has_bias ? bias.buf->mem : logits.buf->mem;
  karg args[] = {KARG(loss.buf->mem), KARG(l_off), KARG(dl), KARG(dl_off), KARG(want_grad),
                 KARG(logits.buf->mem), KARG(lg_off), KARG(has_bias), KARG(bm), KARG(b_off),
                 KARG(x.buf->mem), KARG(x_off), KARG(ldx), KARG(D), KARG(grad_scale), KARG(pm), KARG(pnr)};
  return clvae__launch(dev, kind == CLVAE_LOSS_MSE ? &k_mse : &k_bce, 1, &global, &local, 17, args);
}
