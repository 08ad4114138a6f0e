/* The network described once: from a config, the layer list, the parameter tensors with
 * their offsets in the arenas, the activations, and what is derived from them alone
 * (initialization, memory, the GEMM shapes of a step). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "device/internal.h"

void clvae_config_default(clvae_config *c) {
  memset(c, 0, sizeof *c);
  c->height = 28, c->width = 28, c->channels = 1;
  c->depth = 1, c->hidden[0] = 512;
  c->latent = 2, c->loss = CLVAE_LOSS_MSE, c->batch = 256;
  c->lr = 1e-3f, c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-7f;
  c->seed = 1;
}

int clvae_config_pixels(const clvae_config *c) {
  if (c->height < 1 || c->height > CLVAE_MAX_SIDE || c->width < 1 || c->width > CLVAE_MAX_SIDE ||
      (c->channels != 1 && c->channels != 3))
    return 0;
  uint64_t d = (uint64_t)c->height * (uint64_t)c->width * (uint64_t)c->channels;
  return d <= (1u << 28) ? (int)d : 0;
}

/* Every field against the ranges the CLI accepts for the same settings. */
static clvae_status validate(const clvae_config *c) {
  if (!clvae_config_pixels(c))
    return clvae__fail(CLVAE_ERR_ARG, "image shape %dx%dx%d: height and width must be 1..%d, channels 1 or 3, "
                       "and at most 2^28 values per image", c->height, c->width, c->channels, CLVAE_MAX_SIDE);
  if (c->depth < 1 || c->depth > CLVAE_MAX_DEPTH)
    return clvae__fail(CLVAE_ERR_ARG, "%d hidden layers: 1..%d are supported", c->depth, CLVAE_MAX_DEPTH);
  for (int i = 0; i < c->depth; i++)
    if (c->hidden[i] < 1 || c->hidden[i] > CLVAE_MAX_WIDTH)
      return clvae__fail(CLVAE_ERR_ARG, "hidden layer %d has %d units: 1..%d are supported", i + 1, c->hidden[i],
                         CLVAE_MAX_WIDTH);
  if (c->latent < 1 || c->latent > CLVAE_MAX_LATENT)
    return clvae__fail(CLVAE_ERR_ARG, "latent dimension %d: 1..%d are supported", c->latent, CLVAE_MAX_LATENT);
  if (c->batch < 1 || c->batch > 65536)
    return clvae__fail(CLVAE_ERR_ARG, "batch size %d: 1..65536 are supported", c->batch);
  if (c->loss != CLVAE_LOSS_MSE && c->loss != CLVAE_LOSS_BCE)
    return clvae__fail(CLVAE_ERR_ARG, "loss kind %d is neither MSE (0) nor BCE (1)", c->loss);
  if (!(c->lr > 0 && c->lr < 10) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
      !(c->eps > 0 && c->eps < 1))
    return clvae__fail(CLVAE_ERR_ARG, "Adam settings lr %g, beta1 %g, beta2 %g, eps %g: need 0 < lr < 10, "
                       "0 <= beta < 1, 0 < eps < 1", (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->eps);
  return CLVAE_OK;
}

static int add_act(clvae_net *n, const char *name, int width) {
  clvae_activation *a = &n->acts[n->nacts];
  snprintf(a->name, sizeof a->name, "%s", name);
  a->width = a->stride = width;
  return n->nacts++;
}

static int add_tensor(clvae_net *n, const char *layer, const char *what, int rows, int cols, int glorot_parts) {
  clvae_tensor *t = &n->tensors[n->ntensors];
  snprintf(t->name, sizeof t->name, "%s/%s", layer, what);
  t->rows = rows, t->cols = cols, t->glorot_parts = glorot_parts;
  t->offset = n->total;
  n->total += (size_t)rows * (size_t)cols;
  return n->ntensors++;
}

/* A layer from activation x to a new activation of `out` columns; DENSE and OUTPUT get a
 * (in, out) kernel and an (out) bias. */
static void add_layer(clvae_net *n, clvae_layer_kind kind, const char *name, clvae_act act, int x, int out,
                      int glorot_parts) {
  clvae_layer *l = &n->layers[n->nlayers++];
  memset(l, 0, sizeof *l);
  l->kind = kind, l->act = act;
  snprintf(l->name, sizeof l->name, "%s", name);
  l->x = x, l->in = n->acts[x].width, l->out = out;
  l->kernel = l->bias = l->eps = -1;
  l->y = add_act(n, name, out);
  if (kind != CLVAE_LAYER_SAMPLE) {
    /* the ones column (see clvae_activation), rows kept 64-byte aligned: unaligned rows cost
     * the transposed-A GEMMs ≈ 10 % on a CPU */
    n->acts[x].stride = (n->acts[x].width + 1 + 15) / 16 * 16;
    l->kernel = add_tensor(n, name, "kernel", l->in, out, glorot_parts);
    l->bias = add_tensor(n, name, "bias", 1, out, 0);
  }
}

clvae_status clvae_net_build(clvae_net *n, const clvae_config *c) {
  char name[32];
  memset(n, 0, sizeof *n);
  clvae_status st = validate(c);
  if (st != CLVAE_OK) return st;
  n->cfg = *c;
  n->D = clvae_config_pixels(c), n->L = c->latent;
  int a = add_act(n, "x", n->D);
  for (int i = 0; i < c->depth; i++) {
    snprintf(name, sizeof name, "encoder_hidden%d", i + 1);
    add_layer(n, CLVAE_LAYER_DENSE, name, CLVAE_ACT_RELU, a, c->hidden[i], 1);
    a = n->layers[n->nlayers - 1].y;
  }
  /* Both heads in one (H, 2L) kernel, [μ | logσ²]; TF.js has two Dense(H → L) layers,
   * so each half is initialized as one of them. */
  add_layer(n, CLVAE_LAYER_DENSE, "z_heads", CLVAE_ACT_NONE, a, 2 * c->latent, 2);
  add_layer(n, CLVAE_LAYER_SAMPLE, "z", CLVAE_ACT_NONE, n->layers[n->nlayers - 1].y, c->latent, 0);
  n->sample = n->nlayers - 1;
  n->layers[n->sample].eps = add_act(n, "eps", c->latent);
  a = n->layers[n->sample].y;
  for (int i = 0; i < c->depth; i++) {
    snprintf(name, sizeof name, "decoder_hidden%d", i + 1);
    add_layer(n, CLVAE_LAYER_DENSE, name, CLVAE_ACT_RELU, a, c->hidden[c->depth - 1 - i], 1);
    a = n->layers[n->nlayers - 1].y;
  }
  add_layer(n, CLVAE_LAYER_OUTPUT, "decoder_output", CLVAE_ACT_SIGMOID, a, n->D, 1);
  /* Kernels read the arena through 32-bit offsets, and checkpoints hold at most 2^31 values. */
  if (n->total > 0x7fffffffu)
    return clvae__fail(CLVAE_ERR_LIMIT, "the model has %zu parameters (images of %dx%dx%d, %d hidden layers); "
                       "at most 2^31 - 1 are supported", n->total, c->height, c->width, c->channels, c->depth);
  return CLVAE_OK;
}

void clvae_net_memory(const clvae_net *n, int B, uint64_t *total, uint64_t *largest) {
  uint64_t arena = (uint64_t)n->total * 4, sum = 4 * arena, big = arena;
  for (int i = 0; i < n->nacts; i++) {
    uint64_t bytes = (uint64_t)B * (uint64_t)n->acts[i].stride * 4, grad = (uint64_t)B * (uint64_t)n->acts[i].width * 4;
    int has_grad = i != 0 && i != n->layers[n->sample].eps; /* no gradient for the image or ε */
    sum += bytes + (has_grad ? grad : 0);
    if (bytes > big) big = bytes;
  }
  /* the weights packed for the builtin GEMM, both orientations, and each layer's output
   * gradient (but the one sampling writes) in panels: a panel of 16·nv ≤ 64 columns pads
   * N to less than N + 64 whatever the block (CLVAE_GEMM_TUNE may choose nv = 3) */
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    sum += 4 * ((uint64_t)l->in * (uint64_t)(l->out + 63) + (uint64_t)l->out * (uint64_t)(l->in + 63));
    if (l->y == n->layers[n->sample].x) continue;
    uint64_t panels = 4 * (uint64_t)B * (uint64_t)(l->out + 63);
    sum += panels;
    if (panels > big) big = panels;
  }
  *total = sum, *largest = big;
}

int clvae_net_grad_parts(const clvae_net *n, size_t *offset, size_t *count, int max) {
  int k = 0;
  for (int i = n->nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    if (k < max) offset[k] = n->tensors[l->kernel].offset, count[k] = (size_t)(l->in + 1) * l->out;
    k++;
  }
  return k;
}

int clvae_net_step_gemms(const clvae_net *n, int B, clvae_gemm_shape *out, int max) {
  int k = 0;
#define PUT(ta_, tb_, M_, N_, K_, fmt, ...)                                              \
  do {                                                                                 \
    if (k < max) {                                                                     \
      out[k] = (clvae_gemm_shape){ta_, tb_, M_, N_, K_, ""};                           \
      snprintf(out[k].what, sizeof out[k].what, fmt, __VA_ARGS__);                     \
    }                                                                                  \
    k++;                                                                               \
  } while (0)
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind != CLVAE_LAYER_SAMPLE) PUT(0, 0, B, l->out, l->in, "%s forward", l->name);
  }
  for (int i = n->nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    PUT(1, 0, l->in + 1, l->out, B, "%s dW db", l->name); /* [x | 1]ᵀ·dy: the bias gradient too */
    if (l->x != 0) PUT(0, 1, B, l->in, l->out, "%s dx", l->name);
  }
#undef PUT
  return k;
}

/* Normal truncated at ±2σ by rejection, as TF.js's truncatedNormal does; (rows, cols)
 * written with row stride ld. */
static void glorot(float *w, int rows, int cols, size_t ld, uint64_t *s) {
  double sigma = sqrt(2.0 / (double)(rows + cols));
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      double v;
      do {
        double u1 = ((clvae__splitmix64(s) >> 11) + 1) * (1.0 / 9007199254740992.0);
        double u2 = (clvae__splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
        v = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
      } while (fabs(v) > 2.0);
      w[(size_t)r * ld + c] = (float)(sigma * v);
    }
}

void clvae_init_params(const clvae_net *n, float *p) {
  uint64_t s = n->cfg.seed ^ 0x1417a11c0ffee123ull;
  memset(p, 0, n->total * sizeof *p);
  for (int i = 0; i < n->ntensors; i++) {
    const clvae_tensor *t = &n->tensors[i];
    int parts = t->glorot_parts, w = parts ? t->cols / parts : 0;
    for (int k = 0; k < parts; k++) glorot(p + t->offset + (size_t)k * w, t->rows, w, (size_t)t->cols, &s);
  }
}
