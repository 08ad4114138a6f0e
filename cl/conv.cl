/* Convolutions as GEMMs over patches (NHWC). The "image" side of a convolution is a conv's
 * input and a transposed conv's output, (B, H, W, C); the "grid" side the other, (B, Ho,
 * Wo, F). Row p = (b, oy, ox) of the patch matrix holds, in columns (ky, kx, c), the image
 * pixel (oy·S + ky − pt, ox·S + kx − pl), channel c, or 0 where that lies in the padding.
 * im2col writes that matrix; col2im adds each patch value back onto its pixel (the
 * transpose), in a fixed order, with an epilogue.
 * Two builds of the same arguments: ROWS 1 (CPU) gives each work-item a whole row of the
 * output (a grid row for im2col, an image row for col2im), so that the index arithmetic is
 * paid once per row and the channels go as float16 when C is a multiple of 16 (PoCL leaves
 * loops inside a work-item scalar, but vectorizes explicit vectors; one work-item per
 * element and tap cost 3-5x as much); ROWS 0 (GPU) one work-item per tap of a patch row
 * (im2col) and per pixel and channel (col2im), for the threads a GPU needs. */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_SIGMOID 2

/* The first tap row ky ≥ 0 (or column) with (y + pt − ky) a multiple of S, as a start
 * for a loop stepping by S. */
int first_tap(int y, int pt, int S) {
  int r = (y + pt) % S;
  return r < 0 ? r + S : r;
}

/* The epilogue of one image value: + bias, the activation, the ReLU-backward mask. */
float conv_epilogue(float v, int has_bias, float bias, int act, int has_mask, float mask) {
  if (has_bias) v += bias;
  if (act == ACT_RELU) v = fmax(v, 0.0f);
  else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));
  if (has_mask && !(mask > 0.0f)) v = 0.0f;
  return v;
}

/* Work-item (t, p) copies tap t = ky·K + kx of patch row p: C floats. Column K·K·C of each
 * row is set to 1 when `ones` (the GEMM of the weight gradient then also yields the bias
 * gradient). patches (rows, ldp); img (B·H·W, C). */
#if ROWS

/* Work-item r = (b, oy) writes grid row r's Wo patch rows: each tap a run of C floats
 * (zeros in the padding), and the ones column. */
__kernel void im2col(__global float *patches, uint p_off, int ldp, int ones, __global const float *img, uint i_off,
                     int rows, int H, int W, int C, int Ho, int Wo, int K, int S, int pt, int pl) {
  int r = (int)get_global_id(0);
  if (r >= rows / Wo) return;
  int oy = r % Ho, b = r / Ho, kc = K * C;
  for (int ox = 0; ox < Wo; ox++) {
    __global float *dst = patches + p_off + ((size_t)r * Wo + ox) * ldp;
    if (ones) dst[K * kc] = 1.0f;
    for (int ky = 0; ky < K; ky++) {
      int y = oy * S + ky - pt;
      __global float *d = dst + ky * kc;
      if (y < 0 || y >= H) {
        for (int e = 0; e < kc; e++) d[e] = 0.0f;
        continue;
      }
      __global const float *row = img + i_off + ((size_t)b * H + y) * W * C;
      for (int kx = 0; kx < K; kx++, d += C) {
        int x = ox * S + kx - pl;
        if (x < 0 || x >= W) {
          for (int c = 0; c < C; c++) d[c] = 0.0f;
          continue;
        }
        __global const float *src = row + (size_t)x * C;
        int c = 0;
        for (; c + 16 <= C; c += 16) vstore16(vload16(0, src + c), 0, d + c);
        for (; c < C; c++) d[c] = src[c];
      }
    }
  }
}

/* Work-item r = (b, y) writes image row r: for each pixel, the sum of the patch values that
 * cover it (taps in order ky, kx), then the epilogue; 16 channels at a time as float16
 * when C is a multiple of 16. */
__kernel void col2im(__global float *img, uint i_off, __global const float *patches, uint p_off, int ldp, int pixels,
                     int H, int W, int C, int Ho, int Wo, int K, int S, int pt, int pl, int has_bias,
                     __global const float *bias, uint b_off, int act, int has_mask, __global const float *mask,
                     uint m_off) {
  int r = (int)get_global_id(0);
  if (r >= pixels / W) return;
  int y = r % H, b = r / H, ky0 = first_tap(y, pt, S);
  for (int x = 0; x < W; x++) {
    size_t q = (size_t)r * W + x;
    int kx0 = first_tap(x, pl, S);
    for (int c0 = 0; c0 < C; c0 += 16) {
      int n = C - c0 < 16 ? C - c0 : 16;
      float16 acc16 = (float16)(0.0f);
      float acc[16];
      for (int e = 0; e < 16; e++) acc[e] = 0.0f;
      for (int ky = ky0; ky < K; ky += S) {
        int oy = (y + pt - ky) / S;
        if (oy < 0) break;
        if (oy >= Ho) continue;
        for (int kx = kx0; kx < K; kx += S) {
          int ox = (x + pl - kx) / S;
          if (ox < 0) break;
          if (ox >= Wo) continue;
          __global const float *src =
              patches + p_off + (((size_t)b * Ho + oy) * Wo + ox) * ldp + (size_t)(ky * K + kx) * C + c0;
          if (n == 16) acc16 += vload16(0, src);
          else
            for (int e = 0; e < n; e++) acc[e] += src[e];
        }
      }
      __global float *dst = img + i_off + q * C + c0;
      if (n == 16) {
        float16 v = acc16;
        if (has_bias) v += vload16(0, bias + b_off + c0);
        if (act == ACT_RELU) v = fmax(v, 0.0f);
        else if (act == ACT_SIGMOID) v = 1.0f / (1.0f + exp(-v));
        if (has_mask) v = select((float16)(0.0f), v, isgreater(vload16(0, mask + m_off + q * C + c0), 0.0f));
        vstore16(v, 0, dst);
      } else
        for (int e = 0; e < n; e++)
          dst[e] = conv_epilogue(acc[e], has_bias, has_bias ? bias[b_off + c0 + e] : 0.0f, act, has_mask,
                                 has_mask ? mask[m_off + q * C + c0 + e] : 0.0f);
    }
  }
}

#else

__kernel void im2col(__global float *patches, uint p_off, int ldp, int ones, __global const float *img, uint i_off,
                     int rows, int H, int W, int C, int Ho, int Wo, int K, int S, int pt, int pl) {
  int t = (int)get_global_id(0), p = (int)get_global_id(1);
  if (t >= K * K || p >= rows) return;
  int ox = p % Wo, q = p / Wo, oy = q % Ho, b = q / Ho;
  int ky = t / K, kx = t - ky * K, y = oy * S + ky - pt, x = ox * S + kx - pl;
  __global float *dst = patches + p_off + (size_t)p * ldp + (size_t)t * C;
  if (ones && t == 0) patches[p_off + (size_t)p * ldp + (size_t)K * K * C] = 1.0f;
  if (y < 0 || y >= H || x < 0 || x >= W) {
    for (int c = 0; c < C; c++) dst[c] = 0.0f;
    return;
  }
  __global const float *src = img + i_off + (((size_t)b * H + y) * W + x) * C;
  for (int c = 0; c < C; c++) dst[c] = src[c];
}

/* Work-item (c, q): pixel q = (b, y, x) of the image, channel c: the sum of the patch
 * values that cover it (taps in order ky, kx), then the epilogue. */
__kernel void col2im(__global float *img, uint i_off, __global const float *patches, uint p_off, int ldp, int pixels,
                     int H, int W, int C, int Ho, int Wo, int K, int S, int pt, int pl, int has_bias,
                     __global const float *bias, uint b_off, int act, int has_mask, __global const float *mask,
                     uint m_off) {
  int c = (int)get_global_id(0), q = (int)get_global_id(1);
  if (c >= C || q >= pixels) return;
  int x = q % W, r = q / W, y = r % H, b = r / H;
  float acc = 0.0f;
  for (int ky = first_tap(y, pt, S); ky < K; ky += S) {
    int oy = (y + pt - ky) / S;
    if (oy < 0) break;
    if (oy >= Ho) continue;
    for (int kx = first_tap(x, pl, S); kx < K; kx += S) {
      int ox = (x + pl - kx) / S;
      if (ox < 0) break;
      if (ox >= Wo) continue;
      acc += patches[p_off + (((size_t)b * Ho + oy) * Wo + ox) * ldp + (size_t)(ky * K + kx) * C + c];
    }
  }
  img[i_off + (size_t)q * C + c] = conv_epilogue(acc, has_bias, has_bias ? bias[b_off + c] : 0.0f, act, has_mask,
                                                 has_mask ? mask[m_off + (size_t)q * C + c] : 0.0f);
}

#endif
