/* Adam over one contiguous parameter buffer, as TF.js computes it; the bias corrections
 * c1 = 1/(1 − β1^t) and c2 = 1/(1 − β2^t) come from the host. Each work-item takes 16
 * parameters as float16 (PoCL compiles explicit vectors to AVX-512; a loop or scalar code
 * it would leave to ymm at best), the last partial chunk one by one. */

float adam1(__global float *p, __global float *m, __global float *v, float gi, float lr, float beta1, float beta2,
            float eps, float c1, float c2, size_t i) {
  float mi = beta1 * m[i] + (1.0f - beta1) * gi;
  float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  return p[i] - lr * (mi * c1) / (sqrt(vi * c2) + eps);
}

__kernel void adam(__global float *p, uint p_off, __global const float *g, uint g_off,
                   __global float *m, uint m_off, __global float *v, uint v_off, int n,
                   float lr, float beta1, float beta2, float eps, float c1, float c2) {
  int i0 = (int)get_global_id(0) * 16;
  if (i0 >= n) return;
  if (i0 + 16 <= n) {
    float16 gi = vload16(0, g + g_off + i0), mi = vload16(0, m + m_off + i0), vi = vload16(0, v + v_off + i0);
    mi = beta1 * mi + (1.0f - beta1) * gi;
    vi = beta2 * vi + (1.0f - beta2) * gi * gi;
    vstore16(mi, 0, m + m_off + i0);
    vstore16(vi, 0, v + v_off + i0);
    vstore16(vload16(0, p + p_off + i0) - lr * (mi * c1) / (sqrt(vi * c2) + eps), 0, p + p_off + i0);
    return;
  }
  for (int i = i0; i < n; i++) p[p_off + i] = adam1(p + p_off, m + m_off, v + v_off, g[g_off + i], lr, beta1, beta2, eps, c1, c2, (size_t)i);
}
