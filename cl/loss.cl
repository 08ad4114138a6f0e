/* Sigmoid output fused with the reconstruction loss and its gradient. One work-group of
 * RED_LS work-items per image; the per-image sum is a fixed tree in local memory, so it
 * is deterministic. The output layer's bias is added here. */

/* Writes loss[b] = Σ of part[] over the work-group (part holds this work-item's share). */
void reduce_store(__local float *part, float s, __global float *out) {
  int t = (int)get_local_id(0);
  part[t] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = RED_LS / 2; w > 0; w >>= 1) {
    if (t < w) part[t] += part[t + w];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t == 0) *out = part[0];
}

/* loss[b] = Σ_d (σ(y) − x)²;  dlogits = scale·2(p − x)·p(1 − p). */
__kernel __attribute__((reqd_work_group_size(RED_LS, 1, 1)))
void loss_sigmoid_mse(__global float *loss, uint loss_off, __global float *dlogits, uint dl_off,
                      int want_grad, __global const float *logits, uint lg_off,
                      __global const float *bias, uint b_off, __global const float *x,
                      uint x_off, int D, float scale) {
  __local float part[RED_LS];
  int b = (int)get_group_id(0), t = (int)get_local_id(0);
  size_t row = (size_t)b * D;
  float s = 0.0f;
  for (int d = t; d < D; d += RED_LS) {
    float p = 1.0f / (1.0f + exp(-(logits[lg_off + row + d] + bias[b_off + d])));
    float diff = p - x[x_off + row + d];
    s += diff * diff;
    if (want_grad) dlogits[dl_off + row + d] = scale * 2.0f * diff * p * (1.0f - p);
  }
  reduce_store(part, s, loss + loss_off + b);
}

/* loss[b] = Σ_d max(y, 0) − y·x + log(1 + e^−|y|)  (= −x·log p − (1−x)·log(1−p));
 * dlogits = scale·(p − x). */
__kernel __attribute__((reqd_work_group_size(RED_LS, 1, 1)))
void loss_sigmoid_bce(__global float *loss, uint loss_off, __global float *dlogits, uint dl_off,
                      int want_grad, __global const float *logits, uint lg_off,
                      __global const float *bias, uint b_off, __global const float *x,
                      uint x_off, int D, float scale) {
  __local float part[RED_LS];
  int b = (int)get_group_id(0), t = (int)get_local_id(0);
  size_t row = (size_t)b * D;
  float s = 0.0f;
  for (int d = t; d < D; d += RED_LS) {
    float y = logits[lg_off + row + d] + bias[b_off + d], xv = x[x_off + row + d];
    s += fmax(y, 0.0f) - y * xv + log1p(exp(-fabs(y)));
    if (want_grad) dlogits[dl_off + row + d] = scale * (1.0f / (1.0f + exp(-y)) - xv);
  }
  reduce_store(part, s, loss + loss_off + b);
}
