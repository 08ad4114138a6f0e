/* clvae model layer: the TF.js example's VAE on a device. Parameters, gradients and both
 * Adam moments each live in one device buffer (an arena); layers are views into them.
 * Letters: B batch rows, D input pixels (784), H hidden units (512), L latent dims (2). */
#ifndef CLVAE_MODEL_H
#define CLVAE_MODEL_H

#include "clvae/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clvae_config {
  int input;                 /* D */
  int hidden;                /* H */
  int latent;                /* L */
  int loss;                  /* clvae_loss_kind */
  int batch;                 /* B */
  float lr, beta1, beta2, eps;
  uint64_t seed;
} clvae_config;

/* The TF.js example: 784 → 512 ReLU → (μ, logσ²) of 2 → z → 512 ReLU → 784 sigmoid,
 * 784·MSE + KL, Adam 1e-3 / 0.9 / 0.999 / 1e-7, batch 256, seed 1. */
CLVAE_API void clvae_config_default(clvae_config *c);

/* Offsets (in floats) of each tensor in the parameter arena. Kernels are row-major
 * [in, out]; the two encoder heads are one [H, 2L] matrix with μ in columns 0..L-1. */
typedef struct clvae_layout {
  size_t w1, b1;             /* (D, H), (H)   encoder hidden */
  size_t wh, bh;             /* (H, 2L), (2L) encoder heads [μ | logσ²] */
  size_t wd1, bd1;           /* (L, H), (H)   decoder hidden */
  size_t wd2, bd2;           /* (H, D), (D)   decoder output (logits; sigmoid outside) */
  size_t total;
} clvae_layout;

CLVAE_API void clvae_layout_of(const clvae_config *c, clvae_layout *l);
/* Glorot-normal kernels truncated at ±2σ, σ = √(2/(fan_in + fan_out)), zero biases, from
 * the seed (host RNG; the same on every device). params has layout.total floats. */
CLVAE_API void clvae_init_params(const clvae_config *c, float *params);

typedef struct clvae_model clvae_model;

/* Allocates the arenas and activations for batches of up to c->batch rows. */
CLVAE_API clvae_status clvae_model_create(clvae_model **out, clvae_device *dev, const clvae_config *c);
CLVAE_API void clvae_model_free(clvae_model *m);
CLVAE_API const clvae_layout *clvae_model_layout(const clvae_model *m);
CLVAE_API const clvae_config *clvae_model_config(const clvae_model *m);
CLVAE_API clvae_device *clvae_model_device(const clvae_model *m);

/* Uploads parameters and Adam moments (m, v may be NULL: zeros) and the step count. */
CLVAE_API clvae_status clvae_model_set_state(clvae_model *m, const float *params, const float *adam_m,
                                             const float *adam_v, int64_t step);
/* Reads them back (waits for the queue); any pointer may be NULL. */
CLVAE_API clvae_status clvae_model_get_state(clvae_model *m, float *params, float *adam_m,
                                             float *adam_v, float *grads);
CLVAE_API int64_t clvae_model_step(const clvae_model *m);

/* Forward and backward on the B images images[idx[0..B)] (uint8, D bytes each): writes
 * per-image reconstruction loss and KL into recon[0..B), kl[0..B), and the gradients of
 * the batch mean into the gradient arena. ε is drawn for (seed, `noise_step`). Enqueues only. */
CLVAE_API clvae_status clvae_model_forward_backward(clvae_model *m, clvae_view images, clvae_view idx,
                                                    int B, clvae_view recon, clvae_view kl,
                                                    uint64_t noise_step);
/* Forward only (evaluation): same losses, no gradients. */
CLVAE_API clvae_status clvae_model_forward(clvae_model *m, clvae_view images, clvae_view idx, int B,
                                           clvae_view recon, clvae_view kl, uint64_t noise_step);
/* One Adam update of all parameters from the gradient arena; advances the step. */
CLVAE_API clvae_status clvae_model_adam(clvae_model *m);
/* Decoder: probabilities out (n, D) for latent points z (n, L), host arrays, any n. */
CLVAE_API clvae_status clvae_model_decode(clvae_model *m, const float *z, int n, float *out);
/* Encoder: [μ | logσ²] (B, 2L) to the host for the images images[idx[0..B)], B ≤ batch. */
CLVAE_API clvae_status clvae_model_encode(clvae_model *m, clvae_view images, clvae_view idx, int B,
                                          float *musig);
/* forward_backward with ε for the current step, then Adam. */
CLVAE_API clvae_status clvae_model_train_step(clvae_model *m, clvae_view images, clvae_view idx,
                                              int B, clvae_view recon, clvae_view kl);

#ifdef __cplusplus
}
#endif

#endif
