/* The network described once: from a config, the layer list, the parameter tensors with
 * their offsets in the arenas, the activations and their shapes, and what is derived from
 * them alone (initialization, memory, the GEMM shapes of a step, the layer summary). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clvae/model.h"
#include "device/internal.h"

void clvae_config_default(clvae_config *c) {
  memset(c, 0, sizeof *c);
  c->height = 28, c->width = 28, c->channels = 1;
  c->depth = 1, c->hidden[0] = 512;
  c->latent = 2, c->loss = CLVAE_LOSS_MSE, c->batch = 256, c->init = CLVAE_INIT_AUTO;
  c->lr = 1e-3f, c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-7f;
  c->seed = 1;
  c->beta = 1.0f;
}

int clvae_config_pixels(const clvae_config *c) {
  if (c->height < 1 || c->height > CLVAE_MAX_SIDE || c->width < 1 || c->width > CLVAE_MAX_SIDE ||
      (c->channels != 1 && c->channels != 3))
    return 0;
  uint64_t d = (uint64_t)c->height * (uint64_t)c->width * (uint64_t)c->channels;
  return d <= (1u << 28) ? (int)d : 0;
}

/* ---- items: the command line's layer syntax ---- */

void clvae_item_format(const clvae_item *it, char *buf, size_t n) {
  switch (it->kind) {
  case CLVAE_ITEM_DENSE: snprintf(buf, n, "dense:%d", it->units); break;
  case CLVAE_ITEM_CONV:
  case CLVAE_ITEM_DECONV:
    snprintf(buf, n, "%s:%d:%d:%d:%s", it->kind == CLVAE_ITEM_CONV ? "conv" : "deconv", it->units, it->size,
             it->stride, it->valid ? "valid" : "same");
    break;
  case CLVAE_ITEM_RESHAPE: snprintf(buf, n, "reshape:%d:%d:%d", it->h, it->w, it->c); break;
  default: snprintf(buf, n, "item of kind %d", it->kind);
  }
}

/* A decimal field of an item: digits only, 1..max. */
static int field(const char *s, size_t len, int max, int *out) {
  long v = 0;
  if (len == 0 || len > 9) return 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = (int)v;
  return v >= 1 && v <= max;
}

/* One item "kind:a:b..." (len bytes at s); the message says what is wrong with it. */
static clvae_status parse_item(const char *s, size_t len, int pos, clvae_item *it) {
  const char *part[6];
  size_t plen[6];
  int n = 0;
  memset(it, 0, sizeof *it);
  for (size_t i = 0, start = 0; i <= len && n < 6; i++)
    if (i == len || s[i] == ':') part[n] = s + start, plen[n++] = i - start, start = i + 1;
  const char *what = "a kind of dense, conv, deconv or reshape";
#define IS(word) (plen[0] == strlen(word) && !memcmp(part[0], word, plen[0]))
  if (IS("dense")) {
    it->kind = CLVAE_ITEM_DENSE, what = "dense:N with N 1..65536";
    if (n == 2 && field(part[1], plen[1], CLVAE_MAX_WIDTH, &it->units)) return CLVAE_OK;
  } else if (IS("conv") || IS("deconv")) {
    it->kind = IS("conv") ? CLVAE_ITEM_CONV : CLVAE_ITEM_DECONV;
    what = IS("conv") ? "conv:C:K:S[:same|valid] with C 1..4096, K 1..15, S 1..8"
                      : "deconv:C:K:S[:same|valid] with C 1..4096, K 1..15, S 1..8";
    int pad_ok = n == 4 || (n == 5 && ((plen[4] == 4 && !memcmp(part[4], "same", 4)) ||
                                       (plen[4] == 5 && !memcmp(part[4], "valid", 5))));
    if (pad_ok && field(part[1], plen[1], CLVAE_MAX_FILTERS, &it->units) &&
        field(part[2], plen[2], CLVAE_MAX_KERNEL, &it->size) && field(part[3], plen[3], CLVAE_MAX_STRIDE, &it->stride)) {
      it->valid = n == 5 && plen[4] == 5;
      return CLVAE_OK;
    }
  } else if (IS("reshape")) {
    it->kind = CLVAE_ITEM_RESHAPE, what = "reshape:H:W:C with each 1..16384";
    if (n == 4 && field(part[1], plen[1], CLVAE_MAX_SIDE, &it->h) && field(part[2], plen[2], CLVAE_MAX_SIDE, &it->w) &&
        field(part[3], plen[3], CLVAE_MAX_SIDE, &it->c))
      return CLVAE_OK;
  }
#undef IS
  return clvae__fail(CLVAE_ERR_ARG, "item %d '%.*s' is not %s", pos, (int)(len > 60 ? 60 : len), s, what);
}

clvae_status clvae_items_parse(const char *list, clvae_item *items, int *count) {
  *count = 0;
  if (!*list) return clvae__fail(CLVAE_ERR_ARG, "the list is empty");
  for (const char *s = list;; s++) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    if (*count == CLVAE_MAX_ITEMS)
      return clvae__fail(CLVAE_ERR_ARG, "more than %d items (at most %d layers and their reshapes)", CLVAE_MAX_ITEMS,
                         CLVAE_MAX_DEPTH);
    clvae_status st = parse_item(s, len, *count + 1, &items[*count]);
    if (st != CLVAE_OK) return st;
    (*count)++;
    if (!end) return CLVAE_OK;
    s = end;
  }
}

/* ---- validation ---- */

/* Every field but the layers against the ranges the CLI accepts for the same settings. */
static clvae_status validate(const clvae_config *c) {
  if (!clvae_config_pixels(c))
    return clvae__fail(CLVAE_ERR_ARG, "image shape %dx%dx%d: height and width must be 1..%d, channels 1 or 3, "
                       "and at most 2^28 values per image", c->height, c->width, c->channels, CLVAE_MAX_SIDE);
  if (c->latent < 1 || c->latent > CLVAE_MAX_LATENT)
    return clvae__fail(CLVAE_ERR_ARG, "latent dimension %d: 1..%d are supported", c->latent, CLVAE_MAX_LATENT);
  if (c->batch < 1 || c->batch > 65536)
    return clvae__fail(CLVAE_ERR_ARG, "batch size %d: 1..65536 are supported", c->batch);
  if (c->loss != CLVAE_LOSS_MSE && c->loss != CLVAE_LOSS_BCE)
    return clvae__fail(CLVAE_ERR_ARG, "loss kind %d is neither MSE (0) nor BCE (1)", c->loss);
  /* ε a normal float: the kernels flush denormals, and a flushed ε divides by zero */
  if (!(c->lr > 0 && c->lr < 10) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
      !(c->eps >= FLT_MIN && c->eps < 1))
    return clvae__fail(CLVAE_ERR_ARG, "Adam settings lr %g, beta1 %g, beta2 %g, eps %g: need 0 < lr < 10, "
                       "0 <= beta < 1, 1.2e-38 <= eps < 1", (double)c->lr, (double)c->beta1, (double)c->beta2,
                       (double)c->eps);
  if (c->init < CLVAE_INIT_AUTO || c->init > CLVAE_INIT_TORCH)
    return clvae__fail(CLVAE_ERR_ARG, "initializer kind %d is none of auto (0), glorot (1), torch (2)", c->init);
  if (c->seed > 2147483647u)
    return clvae__fail(CLVAE_ERR_ARG, "seed %llu: 0..2147483647 are supported", (unsigned long long)c->seed);
  if (!(c->beta >= 0 && c->beta <= 1000))
    return clvae__fail(CLVAE_ERR_ARG, "beta %g: 0..1000 is supported", (double)c->beta);
  if (c->classes < 0 || c->classes > CLVAE_MAX_CLASSES)
    return clvae__fail(CLVAE_ERR_ARG, "%d classes: 0 (unconditional) or 1..%d are supported", c->classes,
                       CLVAE_MAX_CLASSES);
  return CLVAE_OK;
}

/* The item lists: from --hidden's widths when none are given, and depth/hidden from the
 * lists when they mirror dense layers, so that both spellings give one configuration. */
static clvae_status canonical(clvae_config *c) {
  if (c->nenc == 0 && c->ndec == 0) {
    if (c->depth < 1 || c->depth > CLVAE_MAX_DEPTH)
      return clvae__fail(CLVAE_ERR_ARG, "%d hidden layers: 1..%d are supported", c->depth, CLVAE_MAX_DEPTH);
    for (int i = 0; i < c->depth; i++) {
      if (c->hidden[i] < 1 || c->hidden[i] > CLVAE_MAX_WIDTH)
        return clvae__fail(CLVAE_ERR_ARG, "hidden layer %d has %d units: 1..%d are supported", i + 1, c->hidden[i],
                           CLVAE_MAX_WIDTH);
      c->enc[i] = (clvae_item){CLVAE_ITEM_DENSE, c->hidden[i], 0, 0, 0, 0, 0, 0};
      c->dec[c->depth - 1 - i] = c->enc[i];
    }
    c->nenc = c->ndec = c->depth;
  }
  if (c->nenc < 1 || c->nenc > CLVAE_MAX_ITEMS || c->ndec < 1 || c->ndec > CLVAE_MAX_ITEMS)
    return clvae__fail(CLVAE_ERR_ARG, "%d encoder and %d decoder items: 1..%d each", c->nenc, c->ndec, CLVAE_MAX_ITEMS);
  int mirror = c->nenc == c->ndec && c->nenc <= CLVAE_MAX_DEPTH;
  for (int i = 0; i < c->nenc && mirror; i++)
    mirror = c->enc[i].kind == CLVAE_ITEM_DENSE && c->dec[c->nenc - 1 - i].kind == CLVAE_ITEM_DENSE &&
             c->enc[i].units == c->dec[c->nenc - 1 - i].units;
  memset(c->hidden, 0, sizeof c->hidden);
  c->depth = mirror ? c->nenc : 0;
  for (int i = 0; i < c->depth; i++) c->hidden[i] = c->enc[i].units;
  /* unused slots zeroed: configurations compare (and are stored) as bytes */
  memset(c->enc + c->nenc, 0, sizeof(clvae_item) * (size_t)(CLVAE_MAX_ITEMS - c->nenc));
  memset(c->dec + c->ndec, 0, sizeof(clvae_item) * (size_t)(CLVAE_MAX_ITEMS - c->ndec));
  return CLVAE_OK;
}

/* ---- building ---- */

static int add_act(clvae_net *n, const char *name, int width) {
  clvae_activation *a = &n->acts[n->nacts];
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  a->width = a->stride = a->c = width;
  return n->nacts++;
}

static int add_tensor(clvae_net *n, const char *layer, const char *what, int rows, int cols, int glorot_parts,
                      int fans) {
  clvae_tensor *t = &n->tensors[n->ntensors];
  snprintf(t->name, sizeof t->name, "%s/%s", layer, what);
  t->rows = rows, t->cols = cols, t->glorot_parts = glorot_parts, t->fans = fans;
  t->offset = n->total;
  n->total += (size_t)rows * (size_t)cols;
  return n->ntensors++;
}

/* A layer from activation x to a new activation of `out` columns, with its kernel (rows,
 * cols) and a bias of `nbias` right after it in the arena. */
static clvae_layer *add_layer(clvae_net *n, clvae_layer_kind kind, const char *name, clvae_act act, int x, int out,
                              int rows, int cols, int nbias, int glorot_parts, int fans) {
  clvae_layer *l = &n->layers[n->nlayers++];
  memset(l, 0, sizeof *l);
  l->kind = kind, l->act = act;
  snprintf(l->name, sizeof l->name, "%s", name);
  l->x = x, l->in = n->acts[x].width, l->out = out;
  l->kernel = l->bias = l->eps = -1;
  l->y = add_act(n, name, out);
  if (kind != CLVAE_LAYER_SAMPLE) {
    l->kernel = add_tensor(n, name, "kernel", rows, cols, glorot_parts, fans);
    l->bias = add_tensor(n, name, "bias", 1, nbias, 0, 0);
  }
  return l;
}

static int is_dense(clvae_layer_kind k) { return k == CLVAE_LAYER_DENSE || k == CLVAE_LAYER_OUTPUT; }
static int is_conv(clvae_layer_kind k) { return k == CLVAE_LAYER_CONV || k == CLVAE_LAYER_DECONV; }

/* The builder's position: which list, which item, for messages. */
typedef struct builder {
  clvae_net *n;
  const char *side;          /* "--encoder" or "--decoder" */
  const clvae_item *it;
  int pos;
  int a;                     /* the current activation */
} builder;

static clvae_status item_fail(const builder *b, const char *fmt, ...) {
  char what[64], msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  clvae_item_format(b->it, what, sizeof what);
  return clvae__fail(CLVAE_ERR_ARG, "%s item %d (%s): %s", b->side, b->pos, what, msg);
}

static void shape_text(const clvae_activation *a, char *buf, size_t n) {
  if (a->h) snprintf(buf, n, "%dx%dx%d", a->h, a->w, a->c);
  else snprintf(buf, n, "a vector of %d", a->width);
}

/* TF's sizes: conv 'same': out = ⌈in/S⌉, padding P = max((out−1)·S + K − in, 0), ⌊P/2⌋
 * before; 'valid': out = ⌊(in − K)/S⌋ + 1, no padding. The transposed conv is the
 * transpose of the conv whose input is its output: out = in·S ('same'), in·S + max(K − S, 0)
 * ('valid'). */
static void conv_size(int in, int K, int S, int valid, int *out, int *pad) {
  *out = valid ? (in - K) / S + 1 : (in + S - 1) / S;
  int P = (*out - 1) * S + K - in;
  *pad = valid || P < 0 ? 0 : P / 2;
}

static void deconv_size(int in, int K, int S, int valid, int *out, int *pad) {
  *out = valid ? in * S + (K > S ? K - S : 0) : in * S;
  int grid;
  conv_size(*out, K, S, valid, &grid, pad);
}

/* A conv or transposed conv item (or the output layer's) on spatial activation b->a. */
static clvae_status add_conv(builder *b, const char *name, clvae_layer_kind kind, int F, int K, int S, int valid,
                             clvae_act act) {
  clvae_net *n = b->n;
  const clvae_activation in = n->acts[b->a];
  char shape[64];
  shape_text(&in, shape, sizeof shape);
  if (!in.h) return item_fail(b, "needs a spatial input, but gets %s (use reshape:H:W:C first)", shape);
  clvae_conv_geom g = {1, 0, 0, 0, 0, 0, 0, K, S, 0, 0};
  if (kind == CLVAE_LAYER_CONV) {
    if (valid && (in.h < K || in.w < K)) return item_fail(b, "its input %s is smaller than the %dx%d kernel", shape, K, K);
    g.H = in.h, g.W = in.w, g.C = in.c, g.F = F;
    conv_size(in.h, K, S, valid, &g.Ho, &g.pt);
    conv_size(in.w, K, S, valid, &g.Wo, &g.pl);
  } else {
    g.Ho = in.h, g.Wo = in.w, g.F = in.c, g.C = F;
    uint64_t grow = valid && K > S ? (uint64_t)(K - S) : 0; /* deconv_size's, in 64 bits */
    if ((uint64_t)in.h * S + grow > CLVAE_MAX_SIDE || (uint64_t)in.w * S + grow > CLVAE_MAX_SIDE)
      return item_fail(b, "its output from %s would be larger than %d pixels a side", shape, CLVAE_MAX_SIDE);
    deconv_size(in.h, K, S, valid, &g.H, &g.pt);
    deconv_size(in.w, K, S, valid, &g.W, &g.pl);
  }
  int oh = kind == CLVAE_LAYER_CONV ? g.Ho : g.H, ow = kind == CLVAE_LAYER_CONV ? g.Wo : g.W;
  uint64_t out = (uint64_t)oh * ow * F, kkc = (uint64_t)K * K * g.C;
  if (out > (1u << 28) || kkc * (uint64_t)g.F > 0x7fffffffu)
    return item_fail(b, "its output %dx%dx%d or its kernel is too large", oh, ow, F);
  clvae_layer *l = add_layer(n, kind, name, act, b->a, (int)out, (int)kkc, g.F, F, 1, K * K * (g.C + g.F));
  l->geom = g, l->valid = valid;
  clvae_activation *y = &n->acts[l->y];
  y->h = oh, y->w = ow, y->c = F;
  b->a = l->y;
  return CLVAE_OK;
}

static clvae_status add_item(builder *b, const char *name) {
  clvae_net *n = b->n;
  const clvae_item *it = b->it;
  clvae_activation *in = &n->acts[b->a];
  char shape[64];
  if (it->kind == CLVAE_ITEM_RESHAPE) {
    shape_text(in, shape, sizeof shape);
    if (in->h || (uint64_t)it->h * it->w * it->c != (uint64_t)in->width)
      return item_fail(b, "must follow a vector of %llu values, but follows %s",
                       (unsigned long long)it->h * it->w * it->c, shape);
    in->h = it->h, in->w = it->w, in->c = it->c;
    return CLVAE_OK;
  }
  if (it->kind == CLVAE_ITEM_DENSE) {
    if (it->units < 1 || it->units > CLVAE_MAX_WIDTH) return item_fail(b, "1..%d units are supported", CLVAE_MAX_WIDTH);
    clvae_layer *l = add_layer(n, CLVAE_LAYER_DENSE, name, CLVAE_ACT_RELU, b->a, it->units, in->width, it->units,
                               it->units, 1, in->width + it->units);
    b->a = l->y;
    return CLVAE_OK;
  }
  if (it->kind != CLVAE_ITEM_CONV && it->kind != CLVAE_ITEM_DECONV) return item_fail(b, "unknown item kind");
  if (it->units < 1 || it->units > CLVAE_MAX_FILTERS || it->size < 1 || it->size > CLVAE_MAX_KERNEL ||
      it->stride < 1 || it->stride > CLVAE_MAX_STRIDE || (it->valid != 0 && it->valid != 1))
    return item_fail(b, "C 1..%d, K 1..%d and S 1..%d are supported", CLVAE_MAX_FILTERS, CLVAE_MAX_KERNEL,
                     CLVAE_MAX_STRIDE);
  return add_conv(b, name, it->kind == CLVAE_ITEM_CONV ? CLVAE_LAYER_CONV : CLVAE_LAYER_DECONV, it->units, it->size,
                  it->stride, it->valid, CLVAE_ACT_RELU);
}

/* One side's items from activation a; returns the activation it ends with (or -1). */
static clvae_status add_side(clvae_net *n, const char *side, const clvae_item *items, int count, int *a) {
  builder b = {n, side, NULL, 0, *a};
  int layers = 0;
  char name[32];
  for (int i = 0; i < count; i++) {
    b.it = &items[i], b.pos = i + 1;
    if (items[i].kind != CLVAE_ITEM_RESHAPE && ++layers > CLVAE_MAX_DEPTH)
      return item_fail(&b, "more than %d layers (reshapes not counted)", CLVAE_MAX_DEPTH);
    snprintf(name, sizeof name, "%s_hidden%d", side[2] == 'e' ? "encoder" : "decoder", layers);
    clvae_status st = add_item(&b, name);
    if (st != CLVAE_OK) return st;
  }
  if (!layers) {
    b.it = &items[0], b.pos = 1;
    return item_fail(&b, "a side needs at least one layer besides reshapes");
  }
  *a = b.a;
  return CLVAE_OK;
}

/* After the decoder: a dense layer of D units, or, after a spatial decoder, a transposed
 * conv to the image's channels (3×3, stride 1, 'same'), whose output must be the image's
 * height and width; then the sigmoid (with the loss). */
static clvae_status add_output(clvae_net *n, int a) {
  const clvae_config *c = &n->cfg;
  const clvae_activation *in = &n->acts[a];
  if (!in->h) {
    add_layer(n, CLVAE_LAYER_OUTPUT, "decoder_output", CLVAE_ACT_SIGMOID, a, n->D, in->width, n->D, n->D, 1,
              in->width + n->D);
    return CLVAE_OK;
  }
  clvae_item it = {CLVAE_ITEM_DECONV, c->channels, 3, 1, 0, 0, 0, 0};
  builder b = {n, "--decoder", &it, c->ndec, a};
  if (in->h != c->height || in->w != c->width) {
    char shape[64];
    shape_text(in, shape, sizeof shape);
    b.it = &c->dec[c->ndec - 1];
    return item_fail(&b, "the decoder ends spatial at %s, but the output layer (deconv:%d:3:1:same) needs the images' "
                     "%dx%d", shape, c->channels, c->height, c->width);
  }
  return add_conv(&b, "decoder_output", CLVAE_LAYER_DECONV, c->channels, 3, 1, 0, CLVAE_ACT_SIGMOID);
}

/* Strides: an activation that a dense layer reads gets the ones column (width + 1, rounded
 * up to 16 floats: unaligned rows cost the transposed-A GEMMs ≈ 10 % on a CPU) when its
 * writer can store rows with a stride: not a convolution's output, which is NHWC rows. */
static void set_strides(clvae_net *n) {
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (!is_dense(l->kind)) continue;
    int writer = -1;
    for (int j = 0; j < n->nlayers; j++)
      if (n->layers[j].y == l->x) writer = j;
    if (writer < 0 || !is_conv(n->layers[writer].kind)) n->acts[l->x].stride = (n->acts[l->x].width + 1 + 15) / 16 * 16;
  }
}

clvae_status clvae_net_build(clvae_net *n, const clvae_config *c) {
  memset(n, 0, sizeof *n);
  clvae_status st = validate(c);
  if (st != CLVAE_OK) return st;
  n->cfg = *c;
  if ((st = canonical(&n->cfg)) != CLVAE_OK) return st;
  c = &n->cfg;
  n->D = clvae_config_pixels(c), n->L = c->latent, n->K = c->classes;
  if (n->K) /* a conditional model: the one-hot joins the input of both sides' first dense layer */
    for (int i = 0; i < c->nenc + c->ndec; i++) {
      const clvae_item *it = i < c->nenc ? &c->enc[i] : &c->dec[i - c->nenc];
      if (it->kind != CLVAE_ITEM_DENSE) {
        builder b = {n, i < c->nenc ? "--encoder" : "--decoder", it, i < c->nenc ? i + 1 : i - c->nenc + 1, 0};
        return item_fail(&b, "a conditional model (--conditional) has dense layers only, for now");
      }
    }
  if ((uint64_t)n->D + (uint64_t)n->K > (1u << 28))
    return clvae__fail(CLVAE_ERR_ARG, "%d pixels and %d classes: at most 2^28 inputs", n->D, n->K);
  int a = add_act(n, "x", n->D + n->K);
  if (!n->K) n->acts[a].h = c->height, n->acts[a].w = c->width, n->acts[a].c = c->channels;
  if ((st = add_side(n, "--encoder", c->enc, c->nenc, &a)) != CLVAE_OK) return st;
  /* Both heads in one (H, 2L) kernel, [μ | logσ²], on the flattened encoder output; TF.js
   * has two Dense(H → L) layers, so each half is initialized as one of them. */
  const int H = n->acts[a].width;
  add_layer(n, CLVAE_LAYER_DENSE, "z_heads", CLVAE_ACT_NONE, a, 2 * c->latent, H, 2 * c->latent, 2 * c->latent, 2,
            H + c->latent);
  add_layer(n, CLVAE_LAYER_SAMPLE, "z", CLVAE_ACT_NONE, n->layers[n->nlayers - 1].y, c->latent, 0, 0, 0, 0, 0);
  n->sample = n->nlayers - 1;
  n->layers[n->sample].eps = add_act(n, "eps", c->latent);
  a = n->layers[n->sample].y;
  n->acts[a].width = n->acts[a].stride = n->acts[a].c = c->latent + n->K; /* [z | one-hot] */
  if ((st = add_side(n, "--decoder", c->dec, c->ndec, &a)) != CLVAE_OK) return st;
  if ((st = add_output(n, a)) != CLVAE_OK) return st;
  set_strides(n);
  if (n->cfg.init == CLVAE_INIT_AUTO) n->cfg.init = clvae_net_has_conv(n) ? CLVAE_INIT_TORCH : CLVAE_INIT_GLOROT;
  /* Kernels index a batch's activations and patch matrices with 32-bit offsets: each must
   * hold fewer than 2^31 values at the configured batch. */
  for (int i = 0; i < n->nacts; i++)
    if ((uint64_t)c->batch * (uint64_t)n->acts[i].stride > 0x7fffffffu)
      return clvae__fail(CLVAE_ERR_LIMIT, "the activation %s holds %llu values at batch %d; at most 2^31 - 1 are "
                         "supported (a smaller --batch-size)", n->acts[i].name,
                         (unsigned long long)c->batch * (unsigned long long)n->acts[i].stride, c->batch);
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    uint64_t rows = (uint64_t)c->batch * (uint64_t)l->geom.Ho * (uint64_t)l->geom.Wo;
    if (is_conv(l->kind) && rows * (uint64_t)clvae_net_work_stride(n, i) > 0x7fffffffu)
      return clvae__fail(CLVAE_ERR_LIMIT, "the patches of layer %s hold %llu values at batch %d; at most 2^31 - 1 are "
                         "supported (a smaller --batch-size)", l->name,
                         (unsigned long long)(rows * (uint64_t)clvae_net_work_stride(n, i)), c->batch);
  }
  /* Kernels read the arena through 32-bit offsets, and checkpoints hold at most 2^31 values. */
  if (n->total > 0x7fffffffu)
    return clvae__fail(CLVAE_ERR_LIMIT, "the model has %zu parameters (images of %dx%dx%d); at most 2^31 - 1 are "
                       "supported", n->total, c->height, c->width, c->channels);
  return CLVAE_OK;
}

int clvae_net_has_conv(const clvae_net *n) {
  for (int i = 0; i < n->nlayers; i++)
    if (is_conv(n->layers[i].kind)) return 1;
  return 0;
}

int clvae_net_work_stride(const clvae_net *n, int i) {
  const clvae_layer *l = &n->layers[i];
  if (!is_conv(l->kind)) return 0;
  int kkc = l->geom.K * l->geom.K * l->geom.C;
  return (kkc + (l->kind == CLVAE_LAYER_CONV) + 15) / 16 * 16; /* a conv's patches keep a ones column */
}

/* Taps of a K-wide kernel at stride S that land inside [0, in) over all `out` positions. */
static double taps_inside(int out, int in, int K, int S, int pad) {
  double t = 0;
  for (int o = 0; o < out; o++)
    for (int k = 0; k < K; k++) {
      int i = o * S + k - pad;
      t += i >= 0 && i < in;
    }
  return t;
}

double clvae_net_layer_macs(const clvae_net *n, int i) {
  const clvae_layer *l = &n->layers[i];
  const clvae_conv_geom *g = &l->geom;
  if (is_dense(l->kind)) return (double)l->in * l->out;
  if (!is_conv(l->kind)) return 0;
  return taps_inside(g->Ho, g->H, g->K, g->S, g->pt) * taps_inside(g->Wo, g->W, g->K, g->S, g->pl) * g->C * g->F;
}

double clvae_net_step_flop(const clvae_net *n, int B) {
  double macs = 0;
  for (int i = 0; i < n->nlayers; i++) macs += clvae_net_layer_macs(n, i) * (n->layers[i].x == 0 ? 2 : 3);
  return 2.0 * B * macs;
}

void clvae_net_describe(const clvae_net *n, int i, char *buf, size_t len) {
  const clvae_layer *l = &n->layers[i];
  char in[64], out[64];
  shape_text(&n->acts[l->x], in, sizeof in);
  shape_text(&n->acts[l->y], out, sizeof out);
  size_t params = l->kernel >= 0 ? (size_t)n->tensors[l->kernel].rows * n->tensors[l->kernel].cols +
                                       (size_t)n->tensors[l->bias].cols : 0;
  const char *act = l->act == CLVAE_ACT_RELU ? "relu" : l->act == CLVAE_ACT_SIGMOID ? "sigmoid" : "linear";
  if (l->kind == CLVAE_LAYER_SAMPLE)
    snprintf(buf, len, "%-16s sample      %s -> %s (z = mu + exp(logvar/2)*eps%s)", l->name, in, out,
             n->K ? ", then the class one-hot" : "");
  else if (is_conv(l->kind))
    snprintf(buf, len, "%-16s %s %dx%d/%d %s %s  %s -> %s  %zu parameters", l->name,
             l->kind == CLVAE_LAYER_CONV ? "conv" : "deconv", l->geom.K, l->geom.K, l->geom.S,
             l->valid ? "valid" : "same", act, in, out, params);
  else
    snprintf(buf, len, "%-16s dense %s  %s -> %s  %zu parameters", l->name, act, in, out, params);
}

/* ---- what follows from the layer list ---- */

void clvae_net_memory(const clvae_net *n, int B, uint64_t *total, uint64_t *largest) {
  uint64_t arena = (uint64_t)n->total * 4, sum = 4 * arena, big = arena, deconv_work = 0, pack = 0;
  for (int i = 0; i < n->nacts; i++) {
    uint64_t bytes = (uint64_t)B * (uint64_t)n->acts[i].stride * 4, grad = (uint64_t)B * (uint64_t)n->acts[i].width * 4;
    int has_grad = i != 0 && i != n->layers[n->sample].eps; /* no gradient for the image or ε */
    sum += bytes + (has_grad ? grad : 0);
    if (bytes > big) big = bytes;
  }
  /* the weights packed for the builtin GEMM, both orientations, and each dense layer's
   * output gradient in panels: a panel of 16·nv ≤ 64 columns pads N to less than N + 64
   * whatever the block (CLVAE_GEMM_TUNE may choose nv = 3); a conv's patches; the
   * transposed convs' shared scratch; the pack scratch of a GEMM whose B is not packed
   * ahead (a conv's gradient, as large as the largest such B) */
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    const clvae_tensor *k = &n->tensors[l->kernel];
    sum += 4 * ((uint64_t)k->rows * (uint64_t)(k->cols + 63) + (uint64_t)k->cols * (uint64_t)(k->rows + 63));
    uint64_t rows = is_conv(l->kind) ? (uint64_t)B * l->geom.Ho * l->geom.Wo : 0;
    uint64_t work = rows * (uint64_t)clvae_net_work_stride(n, i) * 4;
    if (l->kind == CLVAE_LAYER_CONV) sum += work;
    if (l->kind == CLVAE_LAYER_DECONV && work > deconv_work) deconv_work = work;
    if (work > big) big = work;
    uint64_t bpack = 4 * rows * (uint64_t)(l->geom.F + 63) * 5 / 4; /* dy or x (grid, F); grown by a quarter */
    if (bpack > pack) pack = bpack;
    if (bpack > big) big = bpack;
    if (l->y == n->layers[n->sample].x || !is_dense(l->kind)) continue;
    uint64_t panels = 4 * (uint64_t)B * (uint64_t)(l->out + 63);
    sum += panels;
    if (panels > big) big = panels;
  }
  *total = sum + deconv_work + pack, *largest = big;
}

int clvae_net_grad_parts(const clvae_net *n, size_t *offset, size_t *count, int max) {
  int k = 0;
  for (int i = n->nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &n->layers[i];
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    const clvae_tensor *w = &n->tensors[l->kernel], *b = &n->tensors[l->bias];
    if (k < max) offset[k] = w->offset, count[k] = (size_t)w->rows * w->cols + (size_t)b->cols;
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
    const int kkc = l->geom.K * l->geom.K * l->geom.C, grid = B * l->geom.Ho * l->geom.Wo;
    if (is_dense(l->kind)) PUT(0, 0, B, l->out, l->in, "%s forward", l->name);
    else if (l->kind == CLVAE_LAYER_CONV) PUT(0, 0, grid, l->geom.F, kkc, "%s forward", l->name);
    else if (l->kind == CLVAE_LAYER_DECONV) PUT(0, 1, grid, kkc, l->geom.F, "%s forward", l->name);
  }
  for (int i = n->nlayers - 1; i >= 0; i--) {
    const clvae_layer *l = &n->layers[i];
    const int kkc = l->geom.K * l->geom.K * l->geom.C, grid = B * l->geom.Ho * l->geom.Wo;
    if (l->kind == CLVAE_LAYER_SAMPLE) continue;
    if (l->kind == CLVAE_LAYER_CONV) {
      PUT(1, 0, kkc + 1, l->geom.F, grid, "%s dW db", l->name); /* [patches | 1]ᵀ·dy */
      if (l->x != 0) PUT(0, 1, grid, kkc, l->geom.F, "%s dx", l->name);
    } else if (l->kind == CLVAE_LAYER_DECONV) {
      PUT(1, 0, kkc, l->geom.F, grid, "%s dW", l->name);
      if (l->x != 0) PUT(0, 0, grid, l->geom.F, kkc, "%s dx", l->name);
    } else {
      int ones = n->acts[l->x].stride > n->acts[l->x].width; /* else db is a column sum */
      PUT(1, 0, l->in + ones, l->out, B, "%s dW%s", l->name, ones ? " db" : "");
      if (l->x != 0) PUT(0, 1, B, l->in, l->out, "%s dx", l->name);
    }
  }
#undef PUT
  return k;
}

/* Normal truncated at ±2σ by rejection, as TF.js's truncatedNormal does, σ = √(2/fans);
 * (rows, cols) written with row stride ld. */
static void glorot(float *w, int rows, int cols, size_t ld, int fans, uint64_t *s) {
  double sigma = sqrt(2.0 / (double)fans);
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

/* Uniform in [-bound, bound), n values from row-major (rows, cols) at p. */
static void uniform(float *p, size_t n, double bound, uint64_t *s) {
  for (size_t i = 0; i < n; i++) p[i] = (float)(bound * (2.0 * (double)(clvae__splitmix64(s) >> 11) / 9007199254740992.0 - 1));
}

/* PyTorch's default for its Linear and Conv layers: it lets the TF tutorial's conv VAE
 * learn as fast as PyTorch's (test loss ≈ 35.2-35.4 after one epoch, seeds 1 and 2, against
 * 42.8-44.9 with Glorot kernels and zero biases; PyTorch itself: 35.4, and 38.3-44.6 with
 * Glorot). */
static void init_torch(const clvae_net *n, float *p, uint64_t *s) {
  for (int i = 0; i < n->nlayers; i++) {
    const clvae_layer *l = &n->layers[i];
    if (l->kernel < 0) continue;
    const clvae_tensor *k = &n->tensors[l->kernel], *b = &n->tensors[l->bias];
    double bound = 1.0 / sqrt((double)k->rows);
    uniform(p + k->offset, (size_t)k->rows * k->cols, bound, s);
    uniform(p + b->offset, (size_t)b->cols, bound, s);
  }
}

void clvae_init_params(const clvae_net *n, float *p) {
  uint64_t s = n->cfg.seed ^ 0x1417a11c0ffee123ull;
  memset(p, 0, n->total * sizeof *p);
  if (n->cfg.init == CLVAE_INIT_TORCH) {
    init_torch(n, p, &s);
    return;
  }
  for (int i = 0; i < n->ntensors; i++) {
    const clvae_tensor *t = &n->tensors[i];
    int parts = t->glorot_parts, w = parts ? t->cols / parts : 0;
    for (int k = 0; k < parts; k++) glorot(p + t->offset + (size_t)k * w, t->rows, w, (size_t)t->cols, t->fans, &s);
  }
}
