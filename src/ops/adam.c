/* Host side of cl/adam.cl: one launch updates a whole parameter arena. */
#include <math.h>

#include "ops/registry.h"

const clvae_program_def clvae__program_adam = {"adam", NULL, NULL};
static const clvae_kernel_def k_adam = {&clvae__program_adam, "adam"};

clvae_status clvae_adam(clvae_device *dev, clvae_view param, clvae_view grad, clvae_view m,
                        clvae_view v, int n, float lr, float beta1, float beta2, float eps,
                        int64_t t) {
  cl_uint p_off, g_off, m_off, v_off;
  clvae_status st;
  if (n < 0 || t < 1)
    return clvae__fail(CLVAE_ERR_ARG, "adam: n=%d t=%lld (t counts from 1)", n, (long long)t);
  if ((st = clvae__view("adam", "param", param, (size_t)n, 4, &p_off)) != CLVAE_OK ||
      (st = clvae__view("adam", "grad", grad, (size_t)n, 4, &g_off)) != CLVAE_OK ||
      (st = clvae__view("adam", "m", m, (size_t)n, 4, &m_off)) != CLVAE_OK ||
      (st = clvae__view("adam", "v", v, (size_t)n, 4, &v_off)) != CLVAE_OK)
    return st;
  /* Bias corrections in double on the host: β^t for large t needs no care on the device. */
  float c1 = (float)(1.0 / (1.0 - pow(beta1, (double)t)));
  float c2 = (float)(1.0 / (1.0 - pow(beta2, (double)t)));
  size_t global = ((size_t)n + 15) / 16; /* 16 parameters per work-item */
  karg args[] = {KARG(param.buf->mem), KARG(p_off), KARG(grad.buf->mem), KARG(g_off),
                 KARG(m.buf->mem), KARG(m_off), KARG(v.buf->mem), KARG(v_off), KARG(n),
                 KARG(lr), KARG(beta1), KARG(beta2), KARG(eps), KARG(c1), KARG(c2)};
  return clvae__launch(dev, &k_adam, 1, &global, NULL, 15, args);
}
