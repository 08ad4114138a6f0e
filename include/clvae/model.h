/* clvae model layer: a VAE described once, as data (a table of parameter tensors and a
 * list of layers), and run on a device. Parameters, gradients and both Adam moments each
 * live in one device buffer (an arena); tensors are views (offset, shape) into them.
 * Letters: B batch rows, D pixels per image (H·W·C), L latent dimensions. */
#ifndef CLVAE_MODEL_H
#define CLVAE_MODEL_H

#include "clvae/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLVAE_MAX_DEPTH 8    /* hidden layers on each side */
#define CLVAE_MAX_SIDE 16384 /* image height or width */
#define CLVAE_MAX_WIDTH 65536 /* units of a hidden layer */
#define CLVAE_MAX_LATENT 1024
#define CLVAE_MAX_ITEMS 16   /* items a side, reshapes included (at most CLVAE_MAX_DEPTH layers) */
#define CLVAE_MAX_FILTERS 4096
#define CLVAE_MAX_KERNEL 15
#define CLVAE_MAX_STRIDE 8

/* One item of --encoder / --decoder: a hidden layer (with ReLU) or a reshape. */
typedef enum clvae_item_kind {
  CLVAE_ITEM_DENSE = 1,      /* dense:N; after a spatial activation it flattens it (row, column, channel) */
  CLVAE_ITEM_CONV,           /* conv:F:K:S[:same|valid], Conv2D with F filters, K×K, stride S */
  CLVAE_ITEM_DECONV,         /* deconv:F:K:S[:same|valid], Conv2DTranspose */
  CLVAE_ITEM_RESHAPE         /* reshape:H:W:C of a vector of H·W·C */
} clvae_item_kind;

typedef struct clvae_item {
  int kind;                  /* clvae_item_kind */
  int units;                 /* DENSE: N; CONV, DECONV: filters F */
  int size, stride, valid;   /* CONV, DECONV: K, S, padding 'valid' (1) or 'same' (0) */
  int h, w, c;               /* RESHAPE */
} clvae_item;

/* "conv:32:3:2:valid": an item as the command line writes it (at least 48 bytes). */
CLVAE_API void clvae_item_format(const clvae_item *it, char *buf, size_t n);
/* Parses a comma-separated list; on failure the message names the bad item. */
CLVAE_API clvae_status clvae_items_parse(const char *list, clvae_item *items, int *count);

/* How kernels and biases start (clvae_init_params). */
typedef enum clvae_init_kind {
  CLVAE_INIT_AUTO = 0,       /* GLOROT for a model without convolutions (the TF.js example's), TORCH with them */
  CLVAE_INIT_GLOROT,         /* Glorot-normal kernels truncated at ±2σ, σ = √(2/(fan_in + fan_out)), zero biases (TF, TF.js) */
  CLVAE_INIT_TORCH           /* kernels and biases uniform in ±1/√fan_in (PyTorch's Linear and Conv default) */
} clvae_init_kind;

typedef struct clvae_config {
  int height, width, channels; /* image shape; channels 1 (grey) or 3 (RGB), stored H, W, C */
  /* The layers, either as `depth` dense widths from the image side that the decoder mirrors
   * (--hidden), or as item lists (nenc, ndec > 0). clvae_net_build's net->cfg has both
   * filled in: the items always, depth and hidden where the items are such a mirror of
   * dense layers (else depth 0), so that equal models have equal configurations. */
  int depth;                 /* hidden layers on each side, 0..CLVAE_MAX_DEPTH */
  int hidden[CLVAE_MAX_DEPTH]; /* encoder widths from the image side; the decoder mirrors them */
  int nenc, ndec;
  clvae_item enc[CLVAE_MAX_ITEMS], dec[CLVAE_MAX_ITEMS];
  int latent;                /* L */
  int loss;                  /* clvae_loss_kind */
  int batch;                 /* B */
  float lr, beta1, beta2, eps;
  uint64_t seed;
  int init;                  /* clvae_init_kind; clvae_net_build's net->cfg has AUTO resolved */
  /* A conditional VAE (classes K > 0, dense layers only): the one-hot class is appended to
   * the encoder's input (D + K columns) and to z (L + K columns) before the decoder. */
  int classes;               /* K, 0..CLVAE_MAX_CLASSES; 0: unconditional */
  float beta;                /* the KL term's weight (β-VAE), 0..1000; the default 1 is the plain VAE */
} clvae_config;

#define CLVAE_MAX_CLASSES 256

/* The TF.js example: 28×28 grey → 512 ReLU → (μ, logσ²) of 2 → z → 512 ReLU → 784 sigmoid,
 * 784·MSE + KL, Adam 1e-3 / 0.9 / 0.999 / 1e-7, batch 256, seed 1. */
CLVAE_API void clvae_config_default(clvae_config *c);
/* D = height·width·channels (0 if any is out of range). */
CLVAE_API int clvae_config_pixels(const clvae_config *c);

typedef enum clvae_layer_kind {
  CLVAE_LAYER_DENSE,         /* y = act(x·W + b), act NONE or RELU */
  CLVAE_LAYER_SAMPLE,        /* x = [μ | logσ²] (B, 2L) → z = μ + exp(logσ²/2)·ε (B, L), and the KL term */
  CLVAE_LAYER_OUTPUT,        /* y = x·W + b, the logits; sigmoid and the reconstruction loss follow */
  CLVAE_LAYER_CONV,          /* y = act(patches(x)·W + b), NHWC (see clvae_conv_geom) */
  CLVAE_LAYER_DECONV         /* y = act(col2im(x·Wᵀ) + b); as the last layer, the logits (SIGMOID) */
} clvae_layer_kind;

/* A parameter tensor: a (rows, cols) row-major view into each arena (a bias has one row). */
typedef struct clvae_tensor {
  char name[48];             /* "<layer>/kernel" or "<layer>/bias", as TF.js names weights */
  int rows, cols;
  size_t offset;             /* floats from the arena's start */
  int glorot_parts;          /* 0: zeros; n ≥ 1: Glorot-normal, the columns in n blocks each
                              * drawn as its own (rows, cols/n) kernel, in order */
  int fans;                  /* fan_in + fan_out of one block (σ = √(2/fans)): rows + cols/n for a
                              * dense kernel, K²·(C + F) for a conv or transposed conv's */
} clvae_tensor;

typedef struct clvae_activation {
  char name[32];
  int width;                 /* columns; the rows are the batch */
  int h, w, c;               /* a spatial activation's shape (width = h·w·c, stored NHWC); h = 0: a vector */
  int stride;                /* columns as stored: for the input of a dense layer that is not
                              * spatial, width + 1 rounded up to 16: column `width` holds ones,
                              * so that the GEMM of its weight gradient also yields the bias
                              * gradient (the row after the kernel's in the arena) */
} clvae_activation;

typedef struct clvae_layer {
  clvae_layer_kind kind;
  char name[32];
  clvae_act act;             /* DENSE, CONV, DECONV: NONE or RELU; the last layer: SIGMOID */
  int in, out;               /* widths of its input and output (per image, flattened) */
  int kernel, bias;          /* tensor indices (-1 for SAMPLE) */
  int x, y;                  /* activation indices of its input and output */
  int eps;                   /* SAMPLE: the activation that keeps ε for backward; else -1 */
  clvae_conv_geom geom;      /* CONV, DECONV: the geometry for one image (B = 1) */
  int valid;                 /* CONV, DECONV: padding 'valid' */
} clvae_layer;

#define CLVAE_MAX_LAYERS (2 * CLVAE_MAX_DEPTH + 3)

/* Everything the model is: built from a config by clvae_net_build, and the one source of
 * the arena layout, initialization, buffers and memory estimate, the forward list and
 * its mirror backward, the double reference, the checkpoint, the export and the GEMM
 * shapes the benchmarks and kernel checks use. Layers run in order: the encoder
 * (DENSE/CONV/DECONV…, DENSE heads), SAMPLE, the decoder (DENSE/CONV/DECONV…, then OUTPUT
 * or, after a spatial decoder, a DECONV to the image's channels); backward runs them
 * reversed. The last layer is the output layer, whatever its kind. */
typedef struct clvae_net {
  clvae_config cfg;
  int D, L;
  int nlayers, ntensors, nacts;
  clvae_layer layers[CLVAE_MAX_LAYERS];
  clvae_tensor tensors[2 * CLVAE_MAX_LAYERS];
  clvae_activation acts[CLVAE_MAX_LAYERS + 2]; /* acts[0] is the input x (B, D) */
  int sample;                /* index of the SAMPLE layer: layers[0..sample) are the encoder */
  int K;                     /* classes of a conditional model (acts[0] is then [x | one-hot], D + K
                              * wide, and the decoder's input [z | one-hot], L + K), else 0 */
  size_t total;              /* floats in each arena */
} clvae_net;

/* Validates c (every size, the ranges the CLI accepts, overflow) and derives the net; a
 * refusal names the item ("--encoder item 2 (conv:64:3:2:valid): ..."). */
CLVAE_API clvae_status clvae_net_build(clvae_net *net, const clvae_config *c);
/* Whether any layer is a convolution (CONV or DECONV). */
CLVAE_API int clvae_net_has_conv(const clvae_net *net);
/* One line describing layer i: kind, shapes, parameters ("conv 3x3/2 valid  28x28x1 -> 13x13x32  320"). */
CLVAE_API void clvae_net_describe(const clvae_net *net, int i, char *buf, size_t n);
/* Floats of the patch workspace a layer needs per image row of its batch (0: none), and its
 * row stride: a CONV keeps its patches (with the ones column) from forward to backward; the
 * DECONVs share one scratch. */
CLVAE_API int clvae_net_work_stride(const clvae_net *net, int layer);
/* Multiply-adds of layer i's forward pass for one image: the useful ones (a convolution's
 * taps that fall in the padding are not counted; a transposed conv inserts no zeros). */
CLVAE_API double clvae_net_layer_macs(const clvae_net *net, int i);
/* Useful FLOP of a training step at batch B: 2 per multiply-add, forward and both backward
 * products of every layer (the first layer's input gradient is not computed). */
CLVAE_API double clvae_net_step_flop(const clvae_net *net, int B);
/* Device memory for batches of B rows: all buffers together, and the largest one. */
CLVAE_API void clvae_net_memory(const clvae_net *net, int B, uint64_t *total, uint64_t *largest);

/* One GEMM of a training step (row-major C (M, N) = op(A)·op(B), K summed). */
typedef struct clvae_gemm_shape {
  int ta, tb, M, N, K;
  char what[64];             /* "encoder_hidden1 forward", "decoder_output dW", ... */
} clvae_gemm_shape;
/* The GEMMs of one training step at batch B, in the order the step runs them: the forward
 * list, then backward reversed (dW with db in one GEMM over [x | 1], then dx unless the
 * layer reads the image). Returns how many there are; writes at most max. */
CLVAE_API int clvae_net_step_gemms(const clvae_net *net, int B, clvae_gemm_shape *out, int max);

/* The gradient arena in the order backward completes it: one part per dense layer (its
 * kernel and bias rows, contiguous), from the output layer back. Returns the count. */
CLVAE_API int clvae_net_grad_parts(const clvae_net *net, size_t *offset, size_t *count, int max);

/* The parameters' initial values from the seed (host RNG; the same on every device), as
 * net->cfg.init says: GLOROT draws the kernels in tensor order (a tensor of n parts as n
 * kernels), TORCH each layer's kernel, then its bias, in layer order; fan_in is a kernel's
 * rows (a dense layer's inputs, K·K·C for a conv or transposed conv, as TF and PyTorch
 * count them). params: net->total. */
CLVAE_API void clvae_init_params(const clvae_net *net, float *params);

/* Whether the device can hold the model with batches of c->batch rows: CLVAE_ERR_LIMIT
 * naming the sizes if not. Needs only the device's description (clvae_select's), so a
 * refusal can come before anything is started, read or allocated. */
CLVAE_API clvae_status clvae_model_fits(const clvae_config *c, const clvae_device_info *in);

typedef struct clvae_model clvae_model;

/* Allocates the arenas and activations for batches of up to c->batch rows; refuses with
 * CLVAE_ERR_LIMIT (naming the sizes) what the device cannot hold, before allocating. */
CLVAE_API clvae_status clvae_model_create(clvae_model **out, clvae_device *dev, const clvae_config *c);
CLVAE_API void clvae_model_free(clvae_model *m);
CLVAE_API const clvae_net *clvae_model_net(const clvae_model *m);
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
 * the batch mean of recon + β·KL into the gradient arena. ε is drawn for (seed,
 * `noise_step`). labels: the images' classes (uint8, one per image, indexed like them),
 * read by a conditional model only (a NULL buffer otherwise). Enqueues only. */
CLVAE_API clvae_status clvae_model_forward_backward(clvae_model *m, clvae_view images, clvae_view labels,
                                                    clvae_view idx, int B, clvae_view recon, clvae_view kl,
                                                    uint64_t noise_step);
/* One replica's part of a batch split over several (data-parallel training): rows row0 ..
 * row0 + B of a batch of `rows` rows, so that ε is drawn for the batch's rows and the
 * gradients are those of the whole batch's mean (their sum over the parts). With `grads`
 * (net->total host floats), backward also copies each layer's gradients there as soon as
 * that layer has them (clvae_model_wait_grads), for a reduction that overlaps the rest. */
typedef struct clvae_batch_part {
  int row0, rows;
  float *grads;
} clvae_batch_part;
CLVAE_API clvae_status clvae_model_forward_backward_part(clvae_model *m, clvae_view images, clvae_view labels,
                                                         clvae_view idx, int B, clvae_view recon, clvae_view kl,
                                                         uint64_t noise_step, const clvae_batch_part *part);
/* Waits for the k-th copy of forward_backward_part's gradients (backward order: k = 0 is
 * the output layer's), telling which floats of the arena it holds; *count 0 past the last. */
CLVAE_API clvae_status clvae_model_wait_grads(clvae_model *m, int k, size_t *offset, size_t *count);
/* Reads the whole gradient arena (net->total floats) back, waiting for backward. */
CLVAE_API clvae_status clvae_model_get_grads(clvae_model *m, float *grads);
/* Uploads the whole gradient arena (net->total floats), e.g. once summed over the replicas. */
CLVAE_API clvae_status clvae_model_set_grads(clvae_model *m, const float *grads);
/* Forward only (evaluation): same losses, no gradients. */
CLVAE_API clvae_status clvae_model_forward(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx,
                                           int B, clvae_view recon, clvae_view kl, uint64_t noise_step);
/* One Adam update of all parameters from the gradient arena; advances the step. */
CLVAE_API clvae_status clvae_model_adam(clvae_model *m);
/* Decoder: probabilities out (n, D) for latent points z (n, L), host arrays, any n; an
 * unconditional model only. */
CLVAE_API clvae_status clvae_model_decode(clvae_model *m, const float *z, int n, float *out);
/* The same with the class input of a conditional model: cond (n, K), a one-hot row per
 * point (or any mixture: a walk between two classes), NULL for an unconditional model. */
CLVAE_API clvae_status clvae_model_decode_cond(clvae_model *m, const float *z, const float *cond, int n, float *out);
/* Encoder: [μ | logσ²] (B, 2L) to the host for the images images[idx[0..B)], B ≤ batch
 * (labels as for forward_backward). */
CLVAE_API clvae_status clvae_model_encode(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx, int B,
                                          float *musig);
/* forward_backward with ε for the current step, then Adam. */
CLVAE_API clvae_status clvae_model_train_step(clvae_model *m, clvae_view images, clvae_view labels, clvae_view idx,
                                              int B, clvae_view recon, clvae_view kl);

#ifdef __cplusplus
}
#endif

#endif
