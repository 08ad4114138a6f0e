/* Checkpoint file: a header, then parameters, Adam m and v (float32), then a CRC-32 of
 * everything before it. All fields little-endian. Version 3 (written):
 *   0 "CLVAECKP"   8 u32 version   12 u32 header bytes (where the parameters start)
 *  16 i32 height, width, channels, depth, latent, loss, batch   44 f32 lr, beta1, beta2, eps
 *  60 u64 seed   68 i64 step   76 i32 epoch, epoch_step, train_limit   88 f64 epoch_loss_sum
 *  96 f64 epoch_seconds   104 u64 n   112 i32 hidden[8]   144 u32 layers   148 i32 train_count
 * 152 per layer, 32 bytes: u32 kind, act, in, out; u64 kernel and bias offsets (~0: none)
 *     then the extension area: records of u32 tag, u32 length, `length` bytes, up to a
 *     record of tag 0 (the end); then zero padding to a multiple of 16. Tags:
 *       1, 2  the encoder's, the decoder's items: 8 i32 each (kind, units, size, stride,
 *             valid, h, w, c; see clvae_item)
 *       3, 4  the training data's path as given, and absolute (UTF-8, no NUL)
 *       5     the initializer (u32 clvae_init_kind; formats 1 and 2: Glorot)
 *       6     β, the KL term's weight (f32; absent: 1)
 *       7     a conditional model's classes: u32 K, then K names, each u32 length and
 *             that many bytes (no NUL; empty: unnamed, "class k")
 *     A reader refuses a tag below 0x8000 that it does not know (it changes what the file
 *     means) and skips others. depth and hidden hold the dense mirror the items describe
 *     (depth 0 when they describe another net).
 * Version 2 (read): the same without the extension area; depth 1..8 dense layers a side.
 * Version 1 (read only): a 128-byte header; 16 i32 input, hidden, latent, loss, batch
 *  36 f32 lr, beta1, beta2, eps   52 u64 seed   60 i64 step   68 i32 epoch, epoch_step,
 *  train_limit   80 f64 epoch_loss_sum   88 u64 n   96 f64 epoch_seconds; square grey
 *  images of `input` pixels, one hidden layer. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "clvae/checkpoint.h"
#include "clvae/files.h"
#include "device/internal.h"

#define V1_HEADER 128
#define LAYERS_AT 152
#define LAYER_BYTES 32
static const char MAGIC[8] = {'C', 'L', 'V', 'A', 'E', 'C', 'K', 'P'};

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void putf(unsigned char *p, float f) { uint32_t u; memcpy(&u, &f, 4); put32(p, u); }
static float getf(const unsigned char *p) { uint32_t u = get32(p); float f; memcpy(&f, &u, 4); return f; }
static void putd(unsigned char *p, double d) { uint64_t u; memcpy(&u, &d, 8); put64(p, u); }
static double getd(const unsigned char *p) { uint64_t u = get64(p); double d; memcpy(&d, &u, 8); return d; }

enum { TAG_END = 0, TAG_ENCODER = 1, TAG_DECODER = 2, TAG_DATA = 3, TAG_DATA_ABS = 4, TAG_INIT = 5, TAG_BETA = 6,
       TAG_CLASSES = 7, TAG_OPTIONAL = 0x8000 };
#define ITEM_BYTES 32
#define MAX_HEADER (1u << 20)

/* The extension area's records, written into b (NULL: only counted); returns its bytes. */
static size_t put_extension(unsigned char *b, const clvae_checkpoint *c) {
  size_t at = 0;
  const clvae_config *g = &c->cfg;
  const struct { uint32_t tag; const clvae_item *items; int n; const char *text; } rec[] = {
      {TAG_ENCODER, g->enc, g->nenc, NULL}, {TAG_DECODER, g->dec, g->ndec, NULL},
      {TAG_DATA, NULL, 0, c->data}, {TAG_DATA_ABS, NULL, 0, c->data_abs}};
  for (size_t r = 0; r < sizeof rec / sizeof rec[0]; r++) {
    size_t len = rec[r].items ? (size_t)rec[r].n * ITEM_BYTES : strlen(rec[r].text);
    if (!rec[r].items && !len) continue; /* no data recorded */
    if (b) {
      put32(b + at, rec[r].tag), put32(b + at + 4, (uint32_t)len);
      for (int i = 0; rec[r].items && i < rec[r].n; i++) {
        const clvae_item *it = &rec[r].items[i];
        const int f[8] = {it->kind, it->units, it->size, it->stride, it->valid, it->h, it->w, it->c};
        for (int k = 0; k < 8; k++) put32(b + at + 8 + (size_t)i * ITEM_BYTES + 4 * (size_t)k, (uint32_t)f[k]);
      }
      if (rec[r].text) memcpy(b + at + 8, rec[r].text, len);
    }
    at += 8 + len;
  }
  if (b) put32(b + at, TAG_INIT), put32(b + at + 4, 4), put32(b + at + 8, (uint32_t)g->init);
  at += 12;
  if (g->beta != 1.0f) {
    if (b) put32(b + at, TAG_BETA), put32(b + at + 4, 4), putf(b + at + 8, g->beta);
    at += 12;
  }
  if (g->classes) {
    size_t len = 4, start = at;
    for (int k = 0; k < g->classes; k++) {
      const char *name = c->class_names ? c->class_names[k] : "";
      size_t nl = strlen(name);
      if (b) put32(b + at + 8 + len, (uint32_t)nl), memcpy(b + at + 12 + len, name, nl);
      len += 4 + nl;
    }
    if (b) put32(b + start, TAG_CLASSES), put32(b + start + 4, (uint32_t)len), put32(b + start + 8, (uint32_t)g->classes);
    at += 8 + len;
  }
  if (b) put32(b + at, TAG_END), put32(b + at + 4, 0);
  return at + 8;
}

static size_t header_bytes(int nlayers, size_t extension) {
  return (LAYERS_AT + (size_t)LAYER_BYTES * nlayers + extension + 15) / 16 * 16;
}

clvae_status clvae_checkpoint_alloc(clvae_checkpoint *c, const clvae_config *cfg) {
  clvae_net net;
  memset(c, 0, sizeof *c);
  clvae_status st = clvae_net_build(&net, cfg);
  if (st != CLVAE_OK) return st;
  c->cfg = *cfg;
  c->n = net.total;
  c->params = calloc(net.total, 4), c->adam_m = calloc(net.total, 4), c->adam_v = calloc(net.total, 4);
  if (!c->params || !c->adam_m || !c->adam_v) {
    clvae_checkpoint_free(c);
    return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for %zu parameters", net.total);
  }
  return CLVAE_OK;
}

void clvae_checkpoint_free(clvae_checkpoint *c) {
  free(c->params), free(c->adam_m), free(c->adam_v), free(c->class_names);
  c->params = c->adam_m = c->adam_v = NULL;
  c->class_names = NULL;
}

clvae_status clvae_checkpoint_set_classes(clvae_checkpoint *c, int K, const char *const *names) {
  size_t bytes = (size_t)K * sizeof(char *);
  for (int k = 0; k < K; k++) bytes += strlen(names && names[k] ? names[k] : "") + 1;
  char **block = K > 0 ? malloc(bytes) : NULL;
  if (K > 0 && !block) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory for %d class names", K);
  char *at = (char *)(block + (K > 0 ? K : 0));
  for (int k = 0; k < K; k++) {
    const char *n = names && names[k] ? names[k] : "";
    block[k] = at;
    memcpy(at, n, strlen(n) + 1);
    at += strlen(n) + 1;
  }
  free(c->class_names);
  c->class_names = block;
  return CLVAE_OK;
}

/* The layer records of a net: what a checkpoint stores and a reader compares. */
static void put_layers(unsigned char *b, const clvae_net *net) {
  put32(b + 144, (uint32_t)net->nlayers);
  for (int i = 0; i < net->nlayers; i++) {
    const clvae_layer *l = &net->layers[i];
    unsigned char *r = b + LAYERS_AT + (size_t)LAYER_BYTES * i;
    put32(r, (uint32_t)l->kind), put32(r + 4, (uint32_t)l->act), put32(r + 8, (uint32_t)l->in);
    put32(r + 12, (uint32_t)l->out);
    put64(r + 16, l->kernel >= 0 ? net->tensors[l->kernel].offset : ~(uint64_t)0);
    put64(r + 24, l->bias >= 0 ? net->tensors[l->bias].offset : ~(uint64_t)0);
  }
}

static unsigned char *serialize(const clvae_checkpoint *c, size_t *size) {
  clvae_net net;
  if (clvae_net_build(&net, &c->cfg) != CLVAE_OK || net.total != c->n) return NULL;
  clvae_checkpoint canon = *c; /* (shallow) with the canonical configuration: its items */
  canon.cfg = net.cfg;
  size_t ext = put_extension(NULL, &canon), n = c->n, hdr = header_bytes(net.nlayers, ext), total = hdr + 3 * n * 4 + 4;
  unsigned char *b = calloc(1, total);
  if (!b) return NULL;
  put_extension(b + LAYERS_AT + (size_t)LAYER_BYTES * net.nlayers, &canon);
  memcpy(b, MAGIC, 8);
  put32(b + 8, CLVAE_CHECKPOINT_VERSION), put32(b + 12, (uint32_t)hdr);
  const clvae_config *g = &net.cfg; /* canonical: the items, and depth/hidden when they are a dense mirror */
  const int ints[7] = {g->height, g->width, g->channels, g->depth, g->latent, g->loss, g->batch};
  for (int i = 0; i < 7; i++) put32(b + 16 + 4 * i, (uint32_t)ints[i]);
  putf(b + 44, g->lr), putf(b + 48, g->beta1), putf(b + 52, g->beta2), putf(b + 56, g->eps);
  put64(b + 60, g->seed), put64(b + 68, (uint64_t)c->step);
  put32(b + 76, (uint32_t)c->train.epoch), put32(b + 80, (uint32_t)c->train.epoch_step), put32(b + 84, (uint32_t)c->train_limit);
  putd(b + 88, c->train.epoch_loss_sum), putd(b + 96, c->train.epoch_seconds), put64(b + 104, n);
  for (int i = 0; i < CLVAE_MAX_DEPTH; i++) put32(b + 112 + 4 * i, (uint32_t)(i < g->depth ? g->hidden[i] : 0));
  put_layers(b, &net);
  put32(b + 148, (uint32_t)c->train_count);
  const float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) putf(b + hdr + (a * n + i) * 4, arrays[a][i]);
  put32(b + total - 4, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
  *size = total;
  return b;
}

/* Test hook (test builds only): CLVAE_TEST_SLOW_CHECKPOINT=1 writes in small, slow pieces
 * so that a test can kill the process in the middle of a write. */
static int slow_writes(void) {
#ifdef CLVAE_TEST_HOOKS
  const char *s = getenv("CLVAE_TEST_SLOW_CHECKPOINT");
  return s && *s == '1';
#else
  return 0;
#endif
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  int slow = slow_writes();
  size_t piece = slow ? 65536 : n;
  while (n > 0) {
    ssize_t w = write(fd, p, n < piece ? n : piece);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
    if (slow) nanosleep(&(struct timespec){0, 20000000}, NULL);
  }
  return 0;
}

clvae_status clvae_checkpoint_save(const char *path, const clvae_checkpoint *c) {
  size_t size;
  clvae_output out;
  unsigned char *b = serialize(c, &size);
  if (!b) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory writing %s", path);
  clvae_status st = clvae_output_open(&out, path);
  if (st != CLVAE_OK) {
    free(b);
    return st;
  }
  if (write_all(fileno(out.f), b, size) != 0) {
    int e = errno ? errno : EIO;
    free(b);
    clvae_output_abort(&out);
    return clvae__fail(CLVAE_ERR_WRITE, "%s: write failed: %s (the previous checkpoint, if any, is unchanged)", path,
                       strerror(e));
  }
  free(b);
  return clvae_output_commit(&out, 1);
}

static clvae_status damaged(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static clvae_status damaged(const char *path, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %s", path, msg);
}

/* A text record (a path): no NUL, shorter than the field. */
static clvae_status get_text(const char *path, const unsigned char *v, uint32_t len, char *out, size_t cap,
                             const char *what) {
  if (len >= cap || memchr(v, 0, len)) return damaged(path, "%s: a record of %u bytes", what, len);
  memcpy(out, v, len);
  out[len] = '\0';
  return CLVAE_OK;
}

/* The item lists of a version-3 extension area (from `at` to the header's end `hdr`). */
static clvae_status parse_extension(const char *path, const unsigned char *b, size_t at, size_t hdr, clvae_checkpoint *c) {
  clvae_config *g = &c->cfg;
  for (;;) {
    if (at + 8 > hdr) return damaged(path, "its extension area runs past the header (%zu bytes)", hdr);
    uint32_t tag = get32(b + at), len = get32(b + at + 4);
    const unsigned char *v = b + at + 8;
    if (tag == TAG_END) return CLVAE_OK;
    if (len > hdr - at - 8) return damaged(path, "extension record %u of %u bytes runs past the header", tag, len);
    if (tag == TAG_ENCODER || tag == TAG_DECODER) {
      clvae_item *items = tag == TAG_ENCODER ? g->enc : g->dec;
      int *n = tag == TAG_ENCODER ? &g->nenc : &g->ndec;
      if (len % ITEM_BYTES || len / ITEM_BYTES < 1 || len / ITEM_BYTES > CLVAE_MAX_ITEMS)
        return damaged(path, "%s items: a record of %u bytes", tag == TAG_ENCODER ? "encoder" : "decoder", len);
      *n = (int)(len / ITEM_BYTES);
      for (int i = 0; i < *n; i++) {
        int f[8];
        for (int k = 0; k < 8; k++) f[k] = (int32_t)get32(v + (size_t)i * ITEM_BYTES + 4 * (size_t)k);
        items[i] = (clvae_item){f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]};
      }
    } else if (tag == TAG_DATA || tag == TAG_DATA_ABS) {
      clvae_status st = tag == TAG_DATA ? get_text(path, v, len, c->data, sizeof c->data, "data path")
                                        : get_text(path, v, len, c->data_abs, sizeof c->data_abs, "absolute data path");
      if (st != CLVAE_OK) return st;
    } else if (tag == TAG_INIT) {
      if (len != 4 || get32(v) < CLVAE_INIT_GLOROT || get32(v) > CLVAE_INIT_TORCH)
        return damaged(path, "the initializer record (%u bytes, kind %u)", len, len >= 4 ? get32(v) : 0);
      g->init = (int)get32(v);
    } else if (tag == TAG_BETA) {
      if (len != 4 || !(getf(v) >= 0 && getf(v) <= 1000))
        return damaged(path, "beta: a record of %u bytes, %g (0..1000)", len, len >= 4 ? (double)getf(v) : 0.0);
      g->beta = getf(v);
    } else if (tag == TAG_CLASSES) {
      uint32_t K = len >= 4 ? get32(v) : 0, at2 = 4;
      if (K < 1 || K > CLVAE_MAX_CLASSES) return damaged(path, "classes: %u (1..%d)", K, CLVAE_MAX_CLASSES);
      const char *names[CLVAE_MAX_CLASSES];
      char *text = malloc((size_t)len + K); /* the names, each with its NUL */
      if (!text) return clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
      for (uint32_t k = 0, t = 0; k < K; k++) {
        uint32_t nl = at2 + 4 <= len ? get32(v + at2) : 0xffffffffu;
        if (nl > 255 || nl > len - at2 - 4 || memchr(v + at2 + 4, 0, nl)) {
          free(text);
          return damaged(path, "class names: name %u of %u does not fit its record of %u bytes", k, K, len);
        }
        memcpy(text + t, v + at2 + 4, nl), text[t + nl] = '\0', names[k] = text + t;
        t += nl + 1, at2 += 4 + nl;
      }
      clvae_status cs = at2 != len ? damaged(path, "class names: %u bytes after the last name", len - at2)
                                   : clvae_checkpoint_set_classes(c, (int)K, names);
      free(text);
      if (cs != CLVAE_OK) return cs;
      g->classes = (int)K;
    } else if (tag < TAG_OPTIONAL)
      return clvae__fail(CLVAE_ERR_FORMAT, "%s: the checkpoint has a record (tag %u) this clvae does not know: written "
                         "by a newer clvae, or damaged", path, tag);
    at += 8 + (size_t)len;
  }
}

/* The configuration and position of a version-2 or -3 header; `hdr` bytes are present. */
static clvae_status parse_v2(const char *path, const unsigned char *b, uint32_t version, size_t hdr,
                             clvae_checkpoint *c) {
  clvae_config *g = &c->cfg;
  memset(g, 0, sizeof *g);
  g->beta = 1.0f; /* unless a record says otherwise; unconditional (classes 0) */
  int *ints[7] = {&g->height, &g->width, &g->channels, &g->depth, &g->latent, &g->loss, &g->batch};
  for (int i = 0; i < 7; i++) *ints[i] = (int)get32(b + 16 + 4 * i);
  g->lr = getf(b + 44), g->beta1 = getf(b + 48), g->beta2 = getf(b + 52), g->eps = getf(b + 56);
  g->seed = get64(b + 60), c->step = (int64_t)get64(b + 68);
  c->train.epoch = (int32_t)get32(b + 76), c->train.epoch_step = (int32_t)get32(b + 80);
  c->train_limit = (int32_t)get32(b + 84), c->train_count = (int32_t)get32(b + 148);
  c->train.epoch_loss_sum = getd(b + 88), c->train.epoch_seconds = getd(b + 96);
  uint32_t nlayers = get32(b + 144);
  if (g->depth < (version == 2) || g->depth > CLVAE_MAX_DEPTH)
    return damaged(path, "%d hidden layers (%d..%d)", g->depth, version == 2, CLVAE_MAX_DEPTH);
  for (int i = 0; i < CLVAE_MAX_DEPTH; i++) g->hidden[i] = i < g->depth ? (int)get32(b + 112 + 4 * i) : 0;
  g->init = CLVAE_INIT_GLOROT; /* what format 2 was written with; format 3 says */
  if (version == 2) return CLVAE_OK;
  if (nlayers > CLVAE_MAX_LAYERS) return damaged(path, "%u layers (at most %d)", nlayers, CLVAE_MAX_LAYERS);
  clvae_status st = parse_extension(path, b, LAYERS_AT + (size_t)LAYER_BYTES * nlayers, hdr, c);
  if (st == CLVAE_OK && (g->nenc == 0 || g->ndec == 0)) st = damaged(path, "no %s items", g->nenc ? "decoder" : "encoder");
  return st;
}

/* Version 1: one hidden layer, and images of `input` pixels taken as a grey square. */
static clvae_status parse_v1(const char *path, const unsigned char *b, clvae_checkpoint *c) {
  clvae_config *g = &c->cfg;
  memset(g, 0, sizeof *g);
  g->beta = 1.0f;
  int input = (int)get32(b + 16), side = (int)lround(sqrt((double)(input > 0 ? input : 0)));
  if (input < 1 || side * side != input)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: a format-1 checkpoint for %d-pixel images: format 1 does not record "
                       "the image shape, and %d is not a square; it cannot be used", path, input, input);
  g->height = g->width = side, g->channels = 1, g->depth = 1, g->hidden[0] = (int)get32(b + 20);
  g->init = CLVAE_INIT_GLOROT;
  g->latent = (int)get32(b + 24), g->loss = (int)get32(b + 28), g->batch = (int)get32(b + 32);
  g->lr = getf(b + 36), g->beta1 = getf(b + 40), g->beta2 = getf(b + 44), g->eps = getf(b + 48);
  g->seed = get64(b + 52), c->step = (int64_t)get64(b + 60);
  c->train.epoch = (int32_t)get32(b + 68), c->train.epoch_step = (int32_t)get32(b + 72);
  c->train_limit = (int32_t)get32(b + 76);
  c->train.epoch_loss_sum = getd(b + 80), c->train.epoch_seconds = getd(b + 96);
  return CLVAE_OK;
}

/* Everything behind the checksum is still checked: it may have been edited and re-summed. */
static clvae_status check_fields(const char *path, const unsigned char *b, uint32_t version, clvae_checkpoint *c,
                                 uint64_t n, clvae_net *net) {
  if (clvae_net_build(net, &c->cfg) != CLVAE_OK)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %s", path, clvae_error_message());
  if (net->total != n)
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %llu parameters, but its configuration has %zu", path,
                       (unsigned long long)n, net->total);
  if (version >= 2) {
    unsigned char want[LAYERS_AT + LAYER_BYTES * CLVAE_MAX_LAYERS] = {0};
    put_layers(want, net);
    if (get32(b + 144) != (uint32_t)net->nlayers ||
        (version == 2 && get32(b + 12) != header_bytes(net->nlayers, 0)) ||
        memcmp(b + LAYERS_AT, want + LAYERS_AT, (size_t)LAYER_BYTES * net->nlayers) != 0)
      return damaged(path, "its layer list is not the one its configuration describes (%d layers expected)",
                     net->nlayers);
  }
  if (version == 3 && (c->cfg.depth != net->cfg.depth || memcmp(c->cfg.hidden, net->cfg.hidden, sizeof c->cfg.hidden)))
    return damaged(path, "depth %d and hidden widths do not match its items", c->cfg.depth);
  c->cfg = net->cfg; /* canonical */
  const clvae_train_state *t = &c->train;
  if (c->step < 0 || c->step > ((int64_t)1 << 53))
    return damaged(path, "step %lld (0..2^53)", (long long)c->step);
  if (t->epoch < 0 || t->epoch > 100000 || t->epoch_step < 0 || c->train_limit < 0 || c->train_count < 0 ||
      (c->train_limit && c->train_count > c->train_limit) ||
      !isfinite(t->epoch_loss_sum) || !(t->epoch_seconds >= 0 && t->epoch_seconds < 1e12))
    return damaged(path, "training position epoch %d, epoch step %d, limit %d, images %d, loss sum %g, seconds %g",
                   t->epoch, t->epoch_step, c->train_limit, c->train_count, t->epoch_loss_sum, t->epoch_seconds);
  if (c->train_count > 0) { /* every step is one batch: the step follows from the epoch and the position in it */
    int64_t per_epoch = (c->train_count + c->cfg.batch - 1) / c->cfg.batch;
    if (t->epoch_step >= per_epoch || c->step != (int64_t)t->epoch * per_epoch + t->epoch_step)
      return damaged(path, "step %lld is not epoch %d x %lld steps + %d (%d training images, batch %d)",
                     (long long)c->step, t->epoch, (long long)per_epoch, t->epoch_step, c->train_count, c->cfg.batch);
  }
  return CLVAE_OK;
}

static clvae_status read_file(const char *path, unsigned char **out, size_t *size) {
  struct stat sb;
  FILE *f;
  *out = NULL;
  clvae_status st = clvae_fopen_regular(path, &f);
  if (st != CLVAE_OK) return st;
  if (fstat(fileno(f), &sb) != 0 || sb.st_size < V1_HEADER + 4 || (uint64_t)sb.st_size > ((uint64_t)1 << 35)) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: %lld bytes: %s for a clvae checkpoint", path, (long long)sb.st_size,
                       sb.st_size < V1_HEADER + 4 ? "too short" : "too large");
  }
  /* the magic, and the size the header promises, before reading (and allocating) the rest */
  unsigned char head[V1_HEADER];
  if (fread(head, 1, sizeof head, f) != sizeof head || memcmp(head, MAGIC, 8) != 0) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: not a clvae checkpoint (bad magic)", path);
  }
  uint32_t version = get32(head + 8);
  uint64_t hdr = version == 1 ? V1_HEADER : get32(head + 12), n = get64(head + (version == 1 ? 88 : 104));
  int v1_like = version == 1 && get32(head + 12) != V1_HEADER; /* the full check names that */
  if (version >= 1 && version <= 3 && !v1_like && (n == 0 || n > 0x7fffffffu || (uint64_t)sb.st_size != hdr + 3 * n * 4 + 4)) {
    fclose(f);
    return clvae__fail(CLVAE_ERR_FORMAT, "%s: truncated or damaged: %lld bytes, but the header describes %llu "
                       "parameters", path, (long long)sb.st_size, (unsigned long long)n);
  }
  rewind(f);
  *size = (size_t)sb.st_size;
  unsigned char *b = malloc(*size);
  if (!b) st = clvae__fail(CLVAE_ERR_NOMEM, "%s: out of host memory for %zu bytes", path, *size);
  else if (fread(b, 1, *size, f) != *size || fgetc(f) != EOF)
    st = clvae__fail(CLVAE_ERR_IO, "%s: read failed (the file changed while it was read)", path);
  fclose(f);
  if (st != CLVAE_OK) free(b);
  else *out = b;
  return st;
}

clvae_status clvae_checkpoint_peek(const char *path, clvae_checkpoint *c) {
  unsigned char head[V1_HEADER], *b = NULL;
  FILE *f;
  memset(c, 0, sizeof *c);
  clvae_status st = clvae_fopen_regular(path, &f);
  if (st != CLVAE_OK) return st;
  size_t got = fread(head, 1, sizeof head, f);
  uint32_t version = got >= 16 ? get32(head + 8) : 0, hdr = got >= 16 ? get32(head + 12) : 0;
  if (got < V1_HEADER || memcmp(head, MAGIC, 8) != 0 || version < 1 || version > 3)
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s: not a clvae checkpoint (or a damaged one)", path);
  else if (version == 1)
    st = parse_v1(path, head, c);
  else if (hdr > MAX_HEADER || hdr < LAYERS_AT + 16) /* not one clvae wrote: the full load says why */
    st = clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: a header of %u bytes", path, hdr);
  else if (!(b = malloc(hdr)))
    st = clvae__fail(CLVAE_ERR_NOMEM, "out of host memory");
  else {
    memcpy(b, head, V1_HEADER);
    if (fread(b + V1_HEADER, 1, hdr - V1_HEADER, f) != hdr - V1_HEADER)
      st = clvae__fail(CLVAE_ERR_FORMAT, "%s: truncated: shorter than its header of %u bytes", path, hdr);
    else
      st = parse_v2(path, b, version, hdr, c);
  }
  fclose(f);
  free(b);
  free(c->class_names); /* a peek allocates nothing */
  c->class_names = NULL;
  return st;
}

clvae_status clvae_checkpoint_load(const char *path, clvae_checkpoint *c) {
  unsigned char *b;
  size_t size;
  clvae_net net;
  memset(c, 0, sizeof *c);
  clvae_status st = read_file(path, &b, &size);
  if (st != CLVAE_OK) return st;
  st = CLVAE_ERR_FORMAT;
  uint32_t version = get32(b + 8);
  uint64_t hdr = version == 1 ? V1_HEADER : get32(b + 12), n = get64(b + (version == 1 ? 88 : 104));
  if (memcmp(b, MAGIC, 8) != 0) {
    clvae__fail(st, "%s: not a clvae checkpoint (bad magic)", path);
    goto done;
  }
  if (version < 1 || version > 3) {
    clvae__fail(st, "%s: checkpoint format version %u; this clvae reads versions 1 to 3", path, version);
    goto done;
  }
  if (version == 1 && get32(b + 12) != V1_HEADER) { /* a later format's header with its version field changed */
    damaged(path, "format version 1, but a header of %u bytes (a format-1 header has 128)", get32(b + 12));
    goto done;
  }
  if (version >= 2 && (hdr < LAYERS_AT + 16 || hdr % 16 || hdr > (version == 2 ? header_bytes(CLVAE_MAX_LAYERS, 0) : MAX_HEADER))) {
    damaged(path, "a header of %llu bytes", (unsigned long long)hdr);
    goto done;
  }
  if (n == 0 || n > 0x7fffffffu || size != hdr + 3 * n * 4 + 4) {
    clvae__fail(st, "%s: truncated or damaged: %zu bytes, but the header describes %llu parameters", path, size,
                (unsigned long long)n);
    goto done;
  }
  if (get32(b + size - 4) != (uint32_t)crc32(0L, b, (uInt)(size - 4))) {
    clvae__fail(st, "%s: checksum mismatch: the file is damaged", path);
    goto done;
  }
  if ((version == 1 ? parse_v1(path, b, c) : parse_v2(path, b, version, (size_t)hdr, c)) != CLVAE_OK) goto done;
  if (check_fields(path, b, version, c, n, &net) != CLVAE_OK) goto done;
  clvae_checkpoint tmp = *c;
  if ((st = clvae_checkpoint_alloc(c, &tmp.cfg)) != CLVAE_OK) {
    free(tmp.class_names);
    goto done;
  }
  c->class_names = tmp.class_names; /* (set by the extension area) */
  c->step = tmp.step, c->train = tmp.train, c->train_limit = tmp.train_limit, c->train_count = tmp.train_count;
  memcpy(c->data, tmp.data, sizeof c->data), memcpy(c->data_abs, tmp.data_abs, sizeof c->data_abs);
  float *arrays[3] = {c->params, c->adam_m, c->adam_v};
  static const char *const names[3] = {"parameter", "Adam first moment", "Adam second moment"};
  for (int a = 0; a < 3; a++)
    for (size_t i = 0; i < n; i++) {
      float v = arrays[a][i] = getf(b + hdr + (a * n + i) * 4);
      if (!isfinite(v) || (a == 2 && v < 0)) {
        clvae_checkpoint_free(c);
        st = clvae__fail(CLVAE_ERR_FORMAT, "%s: damaged checkpoint: %s %zu is %g", path, names[a], i, (double)v);
        goto done;
      }
    }
  st = CLVAE_OK;
done:
  free(b);
  return st;
}
