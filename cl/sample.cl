/* The VAE's reparameterization with its KL term, forward and backward.
 * ε comes from Philox4x32-10 (Salmon et al., SC'11) keyed by the seed, with the counter
 * (column/4, row, step): the same numbers on every device and work-group size.
 * musig (B, 2L) holds [μ | logσ²] per row. */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int i = 0; i < 10; i++) {
    uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
    uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k.x += PHILOX_W0;
    k.y += PHILOX_W1;
  }
  return c;
}

/* Box–Muller on two 24-bit uniforms: u1 in (0, 1] (log finite), u2 in [0, 1). */
float2 box_muller(uint a, uint b) {
  float u1 = (float)((a >> 8) + 1u) * (1.0f / 16777216.0f);
  float u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
  float r = sqrt(-2.0f * log(u1));
  float t = 6.283185307179586f * u2;
  return (float2)(r * cos(t), r * sin(t));
}

/* One work-item per row b: ε, z = μ + exp(½·logσ²)·ε (rows ldz apart), kl[b] =
 * −½·Σ(1 + logσ² − μ² − e^logσ²). ε is keyed by row b + row0 of the global batch, so that
 * a batch split over several devices draws what one device would. */
__kernel void sample_forward(__global float *z, uint z_off, int ldz, __global float *eps, uint e_off,
                             __global float *kl, uint kl_off, __global const float *musig,
                             uint ms_off, int B, int L, uint seed_lo, uint seed_hi,
                             uint step_lo, uint step_hi, uint row0) {
  int b = (int)get_global_id(0);
  if (b >= B) return;
  __global const float *mu = musig + ms_off + (size_t)b * 2 * L;
  __global const float *lv = mu + L;
  float acc = 0.0f;
  for (int l0 = 0; l0 < L; l0 += 4) {
    uint4 r = philox4x32_10((uint4)((uint)(l0 / 4), (uint)b + row0, step_lo, step_hi),
                            (uint2)(seed_lo, seed_hi));
    /* the second pair only where it is used (L = 2: half the logarithms and sines) */
    float2 n01 = box_muller(r.x, r.y), n23 = l0 + 2 < L ? box_muller(r.z, r.w) : (float2)(0.0f);
    float n[4] = {n01.x, n01.y, n23.x, n23.y};
    for (int e = 0; e < 4 && l0 + e < L; e++) {
      int l = l0 + e;
      eps[e_off + (size_t)b * L + l] = n[e];
      z[z_off + (size_t)b * ldz + l] = mu[l] + exp(0.5f * lv[l]) * n[e];
      acc += 1.0f + lv[l] - mu[l] * mu[l] - exp(lv[l]);
    }
  }
  kl[kl_off + b] = -0.5f * acc;
}

/* dμ = dz + s·μ;  dlogσ² = dz·ε·½·exp(½·logσ²) + s·½·(exp(logσ²) − 1), s = kl_scale
 * (β over the rows); dz rows ldz apart (a conditional decoder's input has the one-hot
 * after z). One work-item per (b, l). */
__kernel void sample_backward(__global float *dmusig, uint dm_off, __global const float *dz,
                              uint dz_off, int ldz, __global const float *eps, uint e_off,
                              __global const float *musig, uint ms_off, int B, int L,
                              float kl_scale) {
  int i = (int)get_global_id(0);
  if (i >= B * L) return;
  int b = i / L, l = i % L;
  size_t row = (size_t)b * 2 * L;
  float mu = musig[ms_off + row + l], lv = musig[ms_off + row + L + l];
  float g = dz[dz_off + (size_t)b * ldz + l], s = exp(0.5f * lv);
  dmusig[dm_off + row + l] = g + kl_scale * mu;
  dmusig[dm_off + row + L + l] = g * eps[e_off + i] * 0.5f * s + kl_scale * 0.5f * (s * s - 1.0f);
}
