/* Adam over one contiguous parameter buffer, as TF.js computes it; the bias corrections
 * c1 = 1/(1 − β1^t) and c2 = 1/(1 − β2^t) come from the host. */
__kernel void adam(__global float *p, uint p_off, __global const float *g, uint g_off,
                   __global float *m, uint m_off, __global float *v, uint v_off, int n,
                   float lr, float beta1, float beta2, float eps, float c1, float c2) {
  int i = (int)get_global_id(0);
  if (i >= n) return;
  float gi = g[g_off + i];
  float mi = beta1 * m[m_off + i] + (1.0f - beta1) * gi;
  float vi = beta2 * v[v_off + i] + (1.0f - beta2) * gi * gi;
  m[m_off + i] = mi;
  v[v_off + i] = vi;
  p[p_off + i] -= lr * (mi * c1) / (sqrt(vi * c2) + eps);
}
