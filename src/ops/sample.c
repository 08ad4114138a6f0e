/* Host side of cl/sample.cl: the reparameterization with its KL term. */
#include "ops/registry.h"

const clvae_program_def clvae__program_sample = {"sample", NULL, NULL};
static const clvae_kernel_def k_forward = {&clvae__program_sample, "sample_forward"};
static const clvae_kernel_def k_backward = {&clvae__program_sample, "sample_backward"};

clvae_status clvae_sample_forward(clvae_device *dev, clvae_view z, int ldz, clvae_view eps, clvae_view kl,
                                  clvae_view musig, int B, int L, uint64_t seed, uint64_t step, uint32_t row0) {
  cl_uint z_off, e_off, kl_off, ms_off;
  clvae_status st;
  if (B < 0 || L < 1 || ldz < L) return clvae__fail(CLVAE_ERR_ARG, "sample_forward: B=%d L=%d ldz=%d", B, L, ldz);
  if ((st = clvae__view("sample_forward", "z", z, B ? (size_t)(B - 1) * ldz + L : 0, 4, &z_off)) != CLVAE_OK ||
      (st = clvae__view("sample_forward", "eps", eps, (size_t)B * L, 4, &e_off)) != CLVAE_OK ||
      (st = clvae__view("sample_forward", "kl", kl, (size_t)B, 4, &kl_off)) != CLVAE_OK ||
      (st = clvae__view("sample_forward", "musig", musig, (size_t)B * 2 * L, 4, &ms_off)) != CLVAE_OK)
    return st;
  cl_uint s_lo = (cl_uint)seed, s_hi = (cl_uint)(seed >> 32);
  cl_uint t_lo = (cl_uint)step, t_hi = (cl_uint)(step >> 32);
  size_t global = (size_t)B;
  karg args[] = {KARG(z.buf->mem), KARG(z_off), KARG(ldz), KARG(eps.buf->mem), KARG(e_off),
                 KARG(kl.buf->mem), KARG(kl_off), KARG(musig.buf->mem), KARG(ms_off),
                 KARG(B), KARG(L), KARG(s_lo), KARG(s_hi), KARG(t_lo), KARG(t_hi), KARG(row0)};
  return clvae__launch(dev, &k_forward, 1, &global, NULL, 16, args);
}

clvae_status clvae_sample_backward(clvae_device *dev, clvae_view dmusig, clvae_view dz, int ldz,
                                   clvae_view eps, clvae_view musig, int B, int L, float kl_scale) {
  cl_uint dm_off, dz_off, e_off, ms_off;
  clvae_status st;
  if (B < 0 || L < 1 || ldz < L) return clvae__fail(CLVAE_ERR_ARG, "sample_backward: B=%d L=%d ldz=%d", B, L, ldz);
  if ((st = clvae__view("sample_backward", "dmusig", dmusig, (size_t)B * 2 * L, 4, &dm_off)) != CLVAE_OK ||
      (st = clvae__view("sample_backward", "dz", dz, B ? (size_t)(B - 1) * ldz + L : 0, 4, &dz_off)) != CLVAE_OK ||
      (st = clvae__view("sample_backward", "eps", eps, (size_t)B * L, 4, &e_off)) != CLVAE_OK ||
      (st = clvae__view("sample_backward", "musig", musig, (size_t)B * 2 * L, 4, &ms_off)) != CLVAE_OK)
    return st;
  size_t global = (size_t)B * L;
  karg args[] = {KARG(dmusig.buf->mem), KARG(dm_off), KARG(dz.buf->mem), KARG(dz_off), KARG(ldz),
                 KARG(eps.buf->mem), KARG(e_off), KARG(musig.buf->mem), KARG(ms_off),
                 KARG(B), KARG(L), KARG(kl_scale)};
  return clvae__launch(dev, &k_backward, 1, &global, NULL, 12, args);
}
